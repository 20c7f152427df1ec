//! The resource registry of a simulated cluster: which kinds it serves, in which group
//! versions, with which names and verbs. Built-in kinds are fixed; custom resources come from
//! the CustomResourceDefinition objects in the cluster's store, so a CRD created over the API
//! is served at once, as on a real API server.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// A printer column for Table output (`kubectl get`).
#[derive(Debug, Clone)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub json_path: String,
    pub priority: i64,
}

/// One served resource (a plural name in a group), with every version it is served in.
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    /// Served versions, the storage version first.
    pub versions: Vec<String>,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub verbs: Vec<&'static str>,
    pub printer_columns: Vec<PrinterColumn>,
    /// Whether the kind has a status subresource (writes to the main resource keep status).
    pub status_subresource: bool,
    /// The key objects of this type are stored under: `plural` or `plural.group`.
    pub key: Arc<str>,
}

impl ResourceType {
    pub fn storage_version(&self) -> &str {
        &self.versions[0]
    }
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{}", self.group, version)
        }
    }
    pub fn is_custom(&self) -> bool {
        !matches!(
            self.group.as_str(),
            "" | "apps" | "authorization.k8s.io" | "authentication.k8s.io" | "apiextensions.k8s.io"
        )
    }
}

const RW: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn key_of(group: &str, plural: &str) -> Arc<str> {
    if group.is_empty() {
        Arc::from(plural)
    } else {
        Arc::from(format!("{plural}.{group}"))
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    verbs: &[&'static str],
    status: bool,
) -> ResourceType {
    ResourceType {
        group: group.into(),
        versions: vec![version.into()],
        plural: plural.into(),
        singular: kind.to_ascii_lowercase(),
        kind: kind.into(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: if verbs.len() > 1 && group != "apiextensions.k8s.io" {
            vec!["all".into()]
        } else {
            vec![]
        },
        verbs: verbs.to_vec(),
        printer_columns: vec![],
        status_subresource: status,
        key: key_of(group, plural),
    }
}

/// The built-in kinds every simulated cluster serves.
pub fn builtins() -> Vec<ResourceType> {
    let mut v = vec![
        builtin(
            "",
            "v1",
            "namespaces",
            "Namespace",
            false,
            &["ns"],
            RW,
            true,
        ),
        builtin("", "v1", "services", "Service", true, &["svc"], RW, true),
        builtin("", "v1", "endpoints", "Endpoints", true, &["ep"], RW, false),
        builtin("", "v1", "pods", "Pod", true, &["po"], RW, true),
        builtin(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            &["sa"],
            RW,
            false,
        ),
        builtin(
            "",
            "v1",
            "configmaps",
            "ConfigMap",
            true,
            &["cm"],
            RW,
            false,
        ),
        builtin("", "v1", "secrets", "Secret", true, &[], RW, false),
        builtin(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            true,
            &["deploy"],
            RW,
            true,
        ),
        builtin(
            "apps",
            "v1",
            "statefulsets",
            "StatefulSet",
            true,
            &["sts"],
            RW,
            true,
        ),
        builtin(
            "apps",
            "v1",
            "replicasets",
            "ReplicaSet",
            true,
            &["rs"],
            RW,
            true,
        ),
        builtin(
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            false,
            &[],
            &["create"],
            false,
        ),
        builtin(
            "authorization.k8s.io",
            "v1",
            "selfsubjectrulesreviews",
            "SelfSubjectRulesReview",
            false,
            &[],
            &["create"],
            false,
        ),
        builtin(
            "authentication.k8s.io",
            "v1",
            "selfsubjectreviews",
            "SelfSubjectReview",
            false,
            &[],
            &["create"],
            false,
        ),
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            RW,
            true,
        ),
    ];
    for r in &mut v {
        if r.plural == "endpoints" {
            r.singular = "endpoints".into();
        }
    }
    v
}

/// Sort key of a version name by Kubernetes' priority: GA, then beta, then alpha, higher
/// numbers first; names that do not follow the pattern last, alphabetically.
pub fn version_priority(v: &str) -> (u8, i64, i64, String) {
    let Some(rest) = v.strip_prefix('v') else {
        return (3, 0, 0, v.to_string());
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<i64>() else {
        return (3, 0, 0, v.to_string());
    };
    let tail = &rest[digits.len()..];
    let (class, minor_str) = if tail.is_empty() {
        (0, "")
    } else if let Some(m) = tail.strip_prefix("beta") {
        (1, m)
    } else if let Some(m) = tail.strip_prefix("alpha") {
        (2, m)
    } else {
        return (3, 0, 0, v.to_string());
    };
    let minor = if minor_str.is_empty() {
        0
    } else {
        minor_str.parse().unwrap_or(0)
    };
    (class, -major, -minor, String::new())
}

/// Build a resource type from a CustomResourceDefinition object. Returns None when the object
/// is not a usable CRD (no group, names or served versions).
pub fn from_crd(crd: &Value) -> Option<ResourceType> {
    let spec = crd.get("spec")?;
    let group = spec.get("group")?.as_str()?.to_string();
    let names = spec.get("names")?;
    let plural = names.get("plural")?.as_str()?.to_string();
    let kind = names.get("kind")?.as_str()?.to_string();
    let singular = names
        .get("singular")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_ascii_lowercase());
    let strs = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let short_names = strs(names.get("shortNames"));
    let categories = strs(names.get("categories"));
    let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
    let mut versions: Vec<(bool, String, &Value)> = spec
        .get("versions")?
        .as_array()?
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(true))
        .filter_map(|v| {
            let name = v.get("name")?.as_str()?.to_string();
            let storage = v.get("storage").and_then(Value::as_bool).unwrap_or(false);
            Some((storage, name, v))
        })
        .collect();
    if versions.is_empty() {
        return None;
    }
    // storage version first, then by Kubernetes version priority (v1 > v1beta1 > v1alpha3)
    versions.sort_by_key(|(storage, name, _)| (!*storage, version_priority(name)));
    let first = versions[0].2;
    let printer_columns = first
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .map(|cols| {
            cols.iter()
                .filter_map(|c| {
                    Some(PrinterColumn {
                        name: c.get("name")?.as_str()?.to_string(),
                        type_: c
                            .get("type")
                            .and_then(Value::as_str)
                            .unwrap_or("string")
                            .to_string(),
                        json_path: c.get("jsonPath")?.as_str()?.to_string(),
                        priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let status_subresource = first
        .get("subresources")
        .and_then(|s| s.get("status"))
        .is_some();
    Some(ResourceType {
        key: key_of(&group, &plural),
        group,
        versions: versions.into_iter().map(|(_, n, _)| n).collect(),
        plural,
        singular,
        kind,
        namespaced,
        short_names,
        categories,
        verbs: RW.to_vec(),
        printer_columns,
        status_subresource,
    })
}

/// Istio's published CRDs (vendored from istio/istio 1.30.3, see assets/), parsed once.
pub fn istio_crds() -> &'static [Value] {
    static CRDS: OnceLock<Vec<Value>> = OnceLock::new();
    CRDS.get_or_init(|| {
        let text = include_str!("../../../assets/istio-crd-all.gen.yaml");
        // The vendored file is fixed at build time and covered by a test, so a parse failure
        // here is a build defect, not bad input.
        meshdeck_core::yaml::from_str_multi(text)
            .map(|docs| docs.into_iter().filter(|d| d.is_object()).collect())
            .unwrap_or_default()
    })
}

/// CRDs for meshdeck's policy kinds (Gloo Mesh v1 compatible), with open schemas: the policy
/// module validates them, the API server only stores them.
pub fn policy_crds() -> Vec<Value> {
    let mk_v = |group: &str,
                version: &str,
                kind: &str,
                plural: &str,
                short: &[&str],
                cols: Value| {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.{group}"), "labels": {"app.kubernetes.io/part-of": "meshdeck"}},
            "spec": {
                "group": group,
                "names": {"kind": kind, "listKind": format!("{kind}List"), "plural": plural,
                          "singular": kind.to_ascii_lowercase(), "shortNames": short,
                          "categories": ["meshdeck"]},
                "scope": "Namespaced",
                "versions": [{
                    "name": version, "served": true, "storage": true,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": cols,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    }}}
                }]
            }
        })
    };
    let mk = |group: &str, kind: &str, plural: &str, short: &[&str], cols: Value| {
        mk_v(group, "v1", kind, plural, short, cols)
    };
    let state = json!([
        {"name": "State", "type": "string", "jsonPath": ".status.state"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    ]);
    let age = json!([{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]);
    let net = "networking.mesh.gloo.solo.io";
    let rbac = "rbac.enterprise.mesh.gloo.solo.io";
    vec![
        mk(
            net,
            "TrafficPolicy",
            "trafficpolicies",
            &["tp"],
            state.clone(),
        ),
        mk(
            net,
            "AccessPolicy",
            "accesspolicies",
            &["ap-gm"],
            state.clone(),
        ),
        mk(net, "VirtualMesh", "virtualmeshes", &["vm"], state.clone()),
        // meshdeck's earlier group, still served next to Gloo's own
        mk(
            net,
            "VirtualDestination",
            "virtualdestinations",
            &["vd"],
            state.clone(),
        ),
        mk_v(
            "networking.enterprise.mesh.gloo.solo.io",
            "v1beta1",
            "VirtualDestination",
            "virtualdestinations",
            &["gmvd"],
            state,
        ),
        mk(rbac, "Role", "roles", &["gmrole"], age.clone()),
        mk(rbac, "RoleBinding", "rolebindings", &["gmrb"], age),
    ]
}

/// The set of resource types one cluster serves at a moment.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    types: Vec<Arc<ResourceType>>,
    by_gvr: BTreeMap<(String, String, String), usize>,
}

impl Registry {
    pub fn new(custom: impl IntoIterator<Item = ResourceType>) -> Self {
        let mut types: Vec<Arc<ResourceType>> = builtins().into_iter().map(Arc::new).collect();
        for c in custom {
            // a CRD never shadows a built-in
            if types
                .iter()
                .any(|t| t.group == c.group && t.plural == c.plural)
            {
                continue;
            }
            types.push(Arc::new(c));
        }
        let mut by_gvr = BTreeMap::new();
        for (i, t) in types.iter().enumerate() {
            for v in &t.versions {
                by_gvr.insert((t.group.clone(), v.clone(), t.plural.clone()), i);
            }
        }
        Registry { types, by_gvr }
    }

    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<&Arc<ResourceType>> {
        self.by_gvr
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .map(|&i| &self.types[i])
    }

    pub fn types(&self) -> &[Arc<ResourceType>] {
        &self.types
    }

    /// Every (group, version) served, sorted with the core group first.
    pub fn group_versions(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in &self.types {
            let e = out.entry(t.group.clone()).or_default();
            for v in &t.versions {
                if !e.contains(v) {
                    e.push(v.clone());
                }
            }
        }
        out
    }

    /// Types served in one group version.
    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a Arc<ResourceType>> + 'a {
        self.types
            .iter()
            .filter(move |t| t.group == group && t.versions.iter().any(|v| v == version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_bundle_parses_into_fifteen_crds() {
        let crds = istio_crds();
        assert_eq!(crds.len(), 15);
        let types: Vec<ResourceType> = crds.iter().filter_map(from_crd).collect();
        assert_eq!(types.len(), 15);
        let vs = types
            .iter()
            .find(|t| t.kind == "VirtualService")
            .expect("VirtualService CRD");
        assert_eq!(vs.versions, vec!["v1", "v1beta1", "v1alpha3"]);
        assert_eq!(vs.short_names, vec!["vs"]);
        assert!(vs.namespaced);
        assert!(vs.status_subresource);
        assert_eq!(&*vs.key, "virtualservices.networking.istio.io");
        assert!(vs.printer_columns.iter().any(|c| c.name == "Hosts"));
    }

    #[test]
    fn registry_looks_up_every_served_version_and_never_lets_a_crd_shadow_a_builtin() {
        let mut fake = from_crd(&policy_crds()[0]).expect("policy crd");
        let reg = Registry::new(
            istio_crds()
                .iter()
                .filter_map(from_crd)
                .chain([fake.clone()]),
        );
        assert!(
            reg.lookup("networking.istio.io", "v1alpha3", "virtualservices")
                .is_some()
        );
        assert!(
            reg.lookup("networking.mesh.gloo.solo.io", "v1", "trafficpolicies")
                .is_some()
        );
        assert!(reg.lookup("", "v1", "pods").is_some());
        assert!(reg.lookup("", "v2", "pods").is_none());
        fake.group = String::new();
        fake.plural = "pods".into();
        let reg = Registry::new([fake]);
        assert_eq!(
            reg.lookup("", "v1", "pods").map(|t| t.kind.as_str()),
            Some("Pod")
        );
    }
}
