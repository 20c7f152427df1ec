//! Which object, in which cluster: the one identity the translator's output, the live objects,
//! the plan's items and the writer's outcomes share, with one spelling (`cluster Kind ns/name`).

use serde::Serialize;
use std::fmt;

/// An object's identity in the fleet. Orders by cluster, kind, namespace, name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectRef {
    pub cluster: String,
    pub kind: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    pub fn new(cluster: &str, kind: &str, namespace: &str, name: &str) -> ObjectRef {
        ObjectRef {
            cluster: cluster.to_string(),
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

/// `eu-west VirtualService bookstore/reviews`; `eu-west Namespace bookstore` when cluster-scoped.
impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {} {}", self.cluster, self.kind, self.name)
        } else {
            write!(
                f,
                "{} {} {}/{}",
                self.cluster, self.kind, self.namespace, self.name
            )
        }
    }
}

/// What names one object of the fleet.
pub trait Identified {
    fn object_ref(&self) -> ObjectRef;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_spelling_and_one_order() {
        let a = ObjectRef::new("eu-west", "VirtualService", "bookstore", "reviews");
        assert_eq!(a.to_string(), "eu-west VirtualService bookstore/reviews");
        let b = ObjectRef::new("eu-west", "Namespace", "", "bookstore");
        assert_eq!(b.to_string(), "eu-west Namespace bookstore");
        assert!(b < a, "by kind within a cluster");
    }
}
