//! Users and RBAC of a simulated cluster: bearer tokens map to users, users carry simple
//! allow rules, evaluated for every request and for SelfSubjectAccessReviews.

use super::proto::fields;
use serde_json::{Value, json};

/// An allow rule: every list may hold `*`. An empty namespace list means every namespace and
/// cluster-scoped resources too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub verbs: Vec<String>,
    pub groups: Vec<String>,
    pub resources: Vec<String>,
    pub namespaces: Vec<String>,
}

impl Rule {
    pub fn new(verbs: &[&str], groups: &[&str], resources: &[&str], namespaces: &[&str]) -> Self {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
        Rule {
            verbs: s(verbs),
            groups: s(groups),
            resources: s(resources),
            namespaces: s(namespaces),
        }
    }

    fn allows(&self, a: &Attributes) -> bool {
        let any = |list: &[String], x: &str| list.iter().any(|l| l == "*" || l == x);
        let resource = match &a.subresource {
            Some(sub) if !sub.is_empty() => format!("{}/{}", a.resource, sub),
            _ => a.resource.clone(),
        };
        any(&self.verbs, &a.verb)
            && any(&self.groups, &a.group)
            && (any(&self.resources, &resource)
                || (a.subresource.is_none() && any(&self.resources, &a.resource)))
            && (self.namespaces.is_empty()
                || a.namespace
                    .as_deref()
                    .is_some_and(|ns| any(&self.namespaces, ns)))
    }
}

/// A user of a simulated cluster.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
    pub token: String,
    pub rules: Vec<Rule>,
    /// Whether Secret `data`/`stringData` is returned to this user.
    pub secret_data: bool,
    /// Whether the user may impersonate others (`Impersonate-User`).
    pub impersonate: bool,
    /// Who authenticated when this user is impersonated.
    pub impersonated_by: String,
}

impl User {
    pub fn admin(token: String) -> Self {
        User {
            name: "admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            token,
            rules: vec![Rule::new(&["*"], &["*"], &["*"], &[])],
            secret_data: true,
            impersonate: true,
            impersonated_by: String::new(),
        }
    }

    pub fn viewer(token: String) -> Self {
        User {
            name: "viewer".into(),
            groups: vec!["viewers".into(), "system:authenticated".into()],
            token,
            rules: vec![
                Rule::new(&["get", "list", "watch"], &["*"], &["*"], &[]),
                Rule::new(
                    &["create"],
                    &["authorization.k8s.io", "authentication.k8s.io"],
                    &[
                        "selfsubjectaccessreviews",
                        "selfsubjectrulesreviews",
                        "selfsubjectreviews",
                    ],
                    &[],
                ),
            ],
            secret_data: false,
            impersonate: false,
            impersonated_by: String::new(),
        }
    }

    /// A namespace-scoped reader (the common multi-tenant setup): a Role in one namespace
    /// granting get, list and watch of everything there, and nothing cluster-wide but the
    /// self-reviews.
    pub fn namespace_reader(name: &str, token: String, namespace: &str) -> Self {
        let mut rules = vec![Rule::new(
            &["get", "list", "watch"],
            &["*"],
            &["*"],
            &[namespace],
        )];
        rules.extend(
            User::viewer(String::new())
                .rules
                .into_iter()
                .filter(|r| r.verbs == ["create"]),
        );
        User {
            name: name.to_string(),
            groups: vec![format!("team-{namespace}"), "system:authenticated".into()],
            token,
            rules,
            secret_data: false,
            impersonate: false,
            impersonated_by: String::new(),
        }
    }

    /// A team member: reads everything, writes Istio and meshdeck policy objects in one
    /// namespace only. No token: reached by impersonation (`--as NAME`).
    pub fn team_member(name: &str, namespace: &str) -> Self {
        let mut rules = User::viewer(String::new()).rules;
        rules.push(Rule::new(
            &["create", "patch", "update", "delete"],
            &[
                "networking.istio.io",
                "security.istio.io",
                "networking.mesh.gloo.solo.io",
            ],
            &["*"],
            &[namespace],
        ));
        User {
            name: name.to_string(),
            groups: vec![format!("team-{namespace}"), "system:authenticated".into()],
            token: String::new(),
            rules,
            secret_data: false,
            impersonate: false,
            impersonated_by: String::new(),
        }
    }

    pub fn anonymous() -> Self {
        User {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
            token: String::new(),
            rules: vec![],
            secret_data: false,
            impersonate: false,
            impersonated_by: String::new(),
        }
    }

    pub fn allowed(&self, a: &Attributes) -> bool {
        self.rules.iter().any(|r| r.allows(a))
    }
}

/// What a request (or an SSAR) asks to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub verb: String,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl Attributes {
    /// Kubernetes' 403 message.
    pub fn forbidden_message(&self, user: &str) -> String {
        let res = if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        };
        let res_sub = match &self.subresource {
            Some(s) => format!("{}/{}", self.resource, s),
            None => self.resource.clone(),
        };
        let mut msg = match &self.name {
            Some(n) => format!("{res} \"{n}\" is forbidden: "),
            None => format!("{res} is forbidden: "),
        };
        msg.push_str(&format!(
            "User \"{user}\" cannot {} resource \"{res_sub}\" in API group \"{}\"",
            self.verb, self.group
        ));
        match &self.namespace {
            Some(ns) => msg.push_str(&format!(" in the namespace \"{ns}\"")),
            None => msg.push_str(" at the cluster scope"),
        }
        msg
    }
}

/// Decode kubectl's protobuf SelfSubjectAccessReview (`k8s\0` + runtime.Unknown) into its
/// JSON form. None when the body is not such a message.
pub fn decode_ssar_protobuf(body: &[u8]) -> Option<Value> {
    let unknown = body.strip_prefix(b"k8s\0")?;
    let raw = fields(unknown)?.into_iter().find(|(f, _)| *f == 2)?.1;
    let spec = fields(raw)?.into_iter().find(|(f, _)| *f == 2)?.1;
    let mut spec_json = serde_json::Map::new();
    for (f, bytes) in fields(spec)? {
        let mut obj = serde_json::Map::new();
        let names: &[&str] = match f {
            1 => &[
                "namespace",
                "verb",
                "group",
                "version",
                "resource",
                "subresource",
                "name",
            ],
            2 => &["path", "verb"],
            _ => continue,
        };
        for (n, v) in fields(bytes)? {
            if let Some(name) = usize::try_from(n)
                .ok()
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| names.get(i))
            {
                obj.insert(
                    name.to_string(),
                    Value::String(String::from_utf8_lossy(v).into_owned()),
                );
            }
        }
        let key = if f == 1 {
            "resourceAttributes"
        } else {
            "nonResourceAttributes"
        };
        spec_json.insert(key.into(), Value::Object(obj));
    }
    Some(json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "metadata": {},
        "spec": Value::Object(spec_json),
    }))
}

/// Answer a SelfSubjectAccessReview for `user`: the review with `status` filled in.
pub fn review(user: &User, mut ssar: Value) -> Value {
    let ra = ssar.pointer("/spec/resourceAttributes").cloned();
    let (allowed, reason) = match ra {
        Some(ra) => {
            let s = |k: &str| ra.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let opt = |k: &str| Some(s(k)).filter(|x| !x.is_empty());
            let a = Attributes {
                verb: s("verb"),
                group: s("group"),
                version: s("version"),
                resource: s("resource"),
                subresource: opt("subresource"),
                namespace: opt("namespace"),
                name: opt("name"),
            };
            let ok = user.allowed(&a);
            (
                ok,
                if ok {
                    format!("allowed by the simulator's rules for user {:?}", user.name)
                } else {
                    String::new()
                },
            )
        }
        // non-resource URLs (discovery, /version) are open to every authenticated user
        None => (
            !user.groups.iter().any(|g| g == "system:unauthenticated"),
            String::new(),
        ),
    };
    let mut status = json!({"allowed": allowed});
    if !reason.is_empty() {
        status["reason"] = Value::String(reason);
    }
    ssar["status"] = status;
    ssar
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::proto::tests::field;

    #[test]
    fn decodes_kubectl_protobuf_ssar() {
        let mut ra = Vec::new();
        field(1, b"default", &mut ra);
        field(2, b"patch", &mut ra);
        field(3, b"networking.istio.io", &mut ra);
        field(5, b"virtualservices", &mut ra);
        let mut spec = Vec::new();
        field(1, &ra, &mut spec);
        let mut ssar = Vec::new();
        field(2, &spec, &mut ssar);
        let mut tm = Vec::new();
        field(1, b"authorization.k8s.io/v1", &mut tm);
        field(2, b"SelfSubjectAccessReview", &mut tm);
        let mut unknown = b"k8s\0".to_vec();
        field(1, &tm, &mut unknown);
        field(2, &ssar, &mut unknown);
        let v = decode_ssar_protobuf(&unknown).expect("decodes");
        assert_eq!(v["spec"]["resourceAttributes"]["verb"], "patch");
        assert_eq!(v["spec"]["resourceAttributes"]["namespace"], "default");
        assert_eq!(
            v["spec"]["resourceAttributes"]["resource"],
            "virtualservices"
        );
        let admin = review(&User::admin("t".into()), v.clone());
        assert_eq!(admin["status"]["allowed"], true);
        let viewer = review(&User::viewer("t".into()), v);
        assert_eq!(viewer["status"]["allowed"], false);
        // garbage is not a message
        assert!(decode_ssar_protobuf(b"k8s\0\xff\xff").is_none());
        assert!(decode_ssar_protobuf(b"{}").is_none());
    }

    #[test]
    fn rules_scope_by_namespace_and_subresource() {
        let u = User {
            rules: vec![Rule::new(
                &["patch"],
                &["networking.istio.io"],
                &["virtualservices"],
                &["team-a"],
            )],
            ..User::viewer("x".into())
        };
        let mut a = Attributes {
            verb: "patch".into(),
            group: "networking.istio.io".into(),
            resource: "virtualservices".into(),
            namespace: Some("team-a".into()),
            ..Default::default()
        };
        assert!(u.allowed(&a));
        a.namespace = Some("team-b".into());
        assert!(!u.allowed(&a));
        assert_eq!(
            a.forbidden_message("viewer"),
            "virtualservices.networking.istio.io is forbidden: User \"viewer\" cannot patch resource \"virtualservices\" in API group \"networking.istio.io\" in the namespace \"team-b\""
        );
        a.namespace = Some("team-a".into());
        a.subresource = Some("status".into());
        assert!(!u.allowed(&a), "a subresource needs its own grant");
    }
}
