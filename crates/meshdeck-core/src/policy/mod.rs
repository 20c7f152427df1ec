//! The policy API: types, loading with exact error positions, validation, selectors.
//! Pure: text or values in, policies and diagnostics out.

pub mod located;
pub mod select;
pub mod types;
mod validate;

pub use located::{Located, Pos};
pub use types::*;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::cmp::Ordering;
use std::fmt;

use std::sync::Arc;

/// The kinds meshdeck reads, with the API versions each is read under (the first is its own;
/// VirtualDestination was read under `networking.mesh.gloo.solo.io/v1` before, still accepted).
pub(crate) const KINDS: &[(&str, &[&str])] = &[
    ("TrafficPolicy", &["networking.mesh.gloo.solo.io/v1"]),
    ("AccessPolicy", &["networking.mesh.gloo.solo.io/v1"]),
    ("VirtualMesh", &["networking.mesh.gloo.solo.io/v1"]),
    (
        "VirtualDestination",
        &[
            "networking.enterprise.mesh.gloo.solo.io/v1beta1",
            "networking.mesh.gloo.solo.io/v1",
        ],
    ),
    ("Role", &["rbac.enterprise.mesh.gloo.solo.io/v1"]),
    ("RoleBinding", &["rbac.enterprise.mesh.gloo.solo.io/v1"]),
];

/// The API version a kind is written under.
pub fn api_version_of(kind: &str) -> &'static str {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, v)| v[0])
        .unwrap_or("networking.mesh.gloo.solo.io/v1")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding, placed as exactly as the input allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A file path, or `cluster/<name>` for custom resources read from a cluster.
    pub origin: String,
    pub pos: Option<Pos>,
    /// The field path inside the document (`spec.policy.retries.attempts`), empty for the whole.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(p) = self.pos {
            write!(f, ":{}:{}", p.line, p.col)?;
        }
        if self.severity == Severity::Warning {
            write!(f, ": warning")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// How the origin of what a cluster stores begins (`cluster/eu-west`).
const STORED: &str = "cluster/";

/// The origin of a policy stored as a custom resource in `cluster`.
pub fn stored_origin(cluster: &str) -> String {
    format!("{STORED}{cluster}")
}

/// The cluster an origin names when the policy (or diagnostic) comes from one, not a file:
/// `cluster/eu-west` and `cluster/eu-west TrafficPolicy ns/name` are both `eu-west`.
pub fn stored_in(origin: &str) -> Option<&str> {
    origin
        .strip_prefix(STORED)
        .map(|rest| rest.split(' ').next().unwrap_or(rest))
}

/// Where a policy came from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// File path or `cluster/<name>` ([`stored_origin`]).
    pub name: String,
    /// 1-based index of the document in its stream.
    pub document: usize,
    pub located: Arc<Located>,
}

impl PartialEq for Origin {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.document == other.document
    }
}

impl Origin {
    /// A diagnostic at the value of `path` in this policy's document.
    pub fn at(&self, severity: Severity, path: &str, message: impl Into<String>) -> Diagnostic {
        // A block mapping or list starts on the line after its key: point at the key then.
        let value = self.located.value_pos(path);
        let key = self.located.key_pos(path);
        let pos = match (key, value) {
            (Some(k), Some(v)) if v.line > k.line => Some(k),
            (_, v) => v,
        };
        Diagnostic {
            severity,
            origin: self.name.clone(),
            pos: pos.or(Some(self.located.start)).filter(|p| p.line > 0),
            path: path.to_string(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    Traffic(Box<TrafficPolicySpec>),
    Access(AccessPolicySpec),
    VirtualMesh(VirtualMeshSpec),
    VirtualDestination(VirtualDestinationSpec),
}

/// A policy: metadata, spec and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub meta: Meta,
    pub spec: Spec,
    pub origin: Origin,
}

/// `Kind namespace/name`, the policy's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PolicyId {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
}

impl PolicyId {
    /// `Kind/namespace/name`: the form of the `meshdeck.io/policies` annotation.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// The `meshdeck.io/policies` annotation every generated object carries: the keys of the
/// policies it came from ([`PolicyId::key`]), comma-separated. The one writer and reader of it.
pub mod annotation {
    use super::PolicyId;

    pub fn format<'a>(ids: impl IntoIterator<Item = &'a PolicyId>) -> String {
        ids.into_iter()
            .map(PolicyId::key)
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn parse(text: &str) -> impl Iterator<Item = &str> {
        text.split(',').map(str::trim).filter(|x| !x.is_empty())
    }
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

impl Policy {
    pub fn kind(&self) -> &'static str {
        match self.spec {
            Spec::Traffic(_) => "TrafficPolicy",
            Spec::Access(_) => "AccessPolicy",
            Spec::VirtualMesh(_) => "VirtualMesh",
            Spec::VirtualDestination(_) => "VirtualDestination",
        }
    }
    pub fn namespace(&self) -> &str {
        self.meta.namespace.as_deref().unwrap_or("default")
    }
    pub fn id(&self) -> PolicyId {
        PolicyId {
            kind: self.kind(),
            namespace: self.namespace().to_string(),
            name: self.meta.name.clone(),
        }
    }
    /// Gloo Mesh's precedence: the older policy wins (creationTimestamp, then name.namespace).
    /// A policy without a timestamp (a file not yet applied) counts as newer than any stored one.
    pub fn precedence(&self, other: &Policy) -> Ordering {
        let t = |p: &Policy| p.meta.creation_timestamp.clone();
        match (t(self), t(other)) {
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
        .then_with(|| self.meta.name.cmp(&other.meta.name))
        .then_with(|| self.namespace().cmp(other.namespace()))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub meta: Meta,
    pub spec: RoleSpec,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoleBinding {
    pub meta: Meta,
    pub spec: RoleBindingSpec,
    pub origin: Origin,
}

/// Everything read from a set of inputs: what loaded, and every problem found.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub policies: Vec<Policy>,
    pub roles: Vec<Role>,
    pub bindings: Vec<RoleBinding>,
    pub diagnostics: Vec<Diagnostic>,
    /// Custom resources read from the fleet that did not load: (cluster, `Kind/namespace/name`).
    pub invalid: Vec<(String, String)>,
    /// Documents that did not load (each may have many errors).
    pub invalid_documents: usize,
}

impl Loaded {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }
    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }
    pub fn extend(&mut self, other: Loaded) {
        self.policies.extend(other.policies);
        self.roles.extend(other.roles);
        self.bindings.extend(other.bindings);
        self.diagnostics.extend(other.diagnostics);
        self.invalid.extend(other.invalid);
        self.invalid_documents += other.invalid_documents;
    }
}

/// Load every document of a YAML stream. `origin` names it in diagnostics.
pub fn load_str(text: &str, origin: &str) -> Loaded {
    let mut out = load_documents(text, origin);
    check_duplicates(&mut out);
    out
}

/// Load every document of a YAML stream without the duplicate check (a caller that loads many
/// files checks duplicates once over all of them).
pub fn load_documents(text: &str, origin: &str) -> Loaded {
    let mut out = Loaded::default();
    for (i, doc) in located::parse_stream(text).into_iter().enumerate() {
        let before = out.errors().count();
        match doc {
            Ok(loc) => {
                load_document(Arc::new(loc), origin, i + 1, &mut out);
                if out.errors().count() > before {
                    out.invalid_documents += 1;
                }
            }
            Err(e) => {
                out.invalid_documents += 1;
                out.diagnostics.push(Diagnostic {
                    severity: Severity::Error,
                    origin: origin.to_string(),
                    pos: Some(e.pos),
                    path: String::new(),
                    message: format!("invalid YAML: {}", e.message),
                })
            }
        }
    }
    out
}

/// Policies stored as custom resources in a cluster (no positions: the origin names the
/// cluster and the object).
pub(crate) fn load_objects(cluster: &str, objects: &[Value]) -> Loaded {
    let mut out = Loaded::default();
    for (i, v) in objects.iter().enumerate() {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("managedFields");
        }
        let origin = stored_origin(cluster);
        load_document(Arc::new(Located::unplaced(v)), &origin, i + 1, &mut out);
    }
    check_duplicates(&mut out);
    out
}

/// Policies stored as custom resources in the fleet's clusters.
pub fn load_snapshot(snap: &crate::model::Snapshot) -> Loaded {
    let mut out = Loaded::default();
    for c in &snap.clusters {
        for o in &c.policies {
            let v = serde_json::json!({
                "apiVersion": o.api_version,
                "kind": o.kind,
                "metadata": {
                    "name": o.name,
                    "namespace": o.namespace,
                    "creationTimestamp": o.created,
                    "generation": o.generation,
                    "labels": o.labels,
                    "annotations": o.annotations,
                },
                "spec": o.spec,
            });
            let one = load_objects(&c.name, std::slice::from_ref(&v));
            if one.has_errors() {
                out.invalid.push((
                    c.name.clone(),
                    format!("{}/{}/{}", o.kind, o.namespace, o.name),
                ));
                // each error names the cluster and the object it is about
                let what = format!(
                    "{} {} {}/{}",
                    stored_origin(&c.name),
                    o.kind,
                    o.namespace,
                    o.name
                );
                out.diagnostics
                    .extend(one.diagnostics.into_iter().map(|mut d| {
                        d.origin = what.clone();
                        d
                    }));
                continue;
            }
            out.extend(one);
        }
    }
    out
}

/// Report policies defined twice (same kind, namespace and name).
pub fn check_duplicates(out: &mut Loaded) {
    let mut seen: std::collections::HashMap<PolicyId, &Origin> = Default::default();
    let mut diags = Vec::new();
    for p in &out.policies {
        if let Some(first) = seen.get(&p.id()) {
            diags.push(p.origin.at(
                Severity::Error,
                "metadata.name",
                format!(
                    "duplicate {}: also defined in {} (document {})",
                    p.id(),
                    first.name,
                    first.document
                ),
            ));
        } else {
            seen.insert(p.id(), &p.origin);
        }
    }
    out.diagnostics.extend(diags);
}

fn err(origin: &Origin, path: &str, message: impl Into<String>) -> Diagnostic {
    origin.at(Severity::Error, path, message)
}

fn load_document(loc: Arc<Located>, name: &str, document: usize, out: &mut Loaded) {
    let origin = Origin {
        name: name.to_string(),
        document,
        located: loc.clone(),
    };
    let Some(obj) = loc.value.as_object() else {
        out.diagnostics.push(err(
            &origin,
            "",
            format!(
                "expected a Kubernetes object (a mapping with apiVersion and kind), found {}",
                describe(&loc.value)
            ),
        ));
        return;
    };
    let kind = match obj.get("kind") {
        Some(Value::String(k)) => k.as_str(),
        Some(other) => {
            out.diagnostics.push(err(
                &origin,
                "kind",
                format!("expected string, found {}", describe(other)),
            ));
            return;
        }
        None => {
            out.diagnostics
                .push(err(&origin, "", "missing required field \"kind\""));
            return;
        }
    };
    let Some((kind, versions)) = KINDS.iter().find(|(k, _)| *k == kind).copied() else {
        let names: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
        out.diagnostics.push(err(
            &origin,
            "kind",
            format!(
                "unknown kind {kind:?}{}; meshdeck reads {}",
                did_you_mean(kind, &names),
                names.join(", ")
            ),
        ));
        return;
    };
    let mut bad = false;
    match obj.get("apiVersion") {
        Some(Value::String(v)) if versions.contains(&v.as_str()) => {}
        Some(Value::String(v)) => {
            out.diagnostics.push(err(
                &origin,
                "apiVersion",
                format!("{kind} is {}, found {v:?}", versions[0]),
            ));
            bad = true;
        }
        Some(other) => {
            out.diagnostics.push(err(
                &origin,
                "apiVersion",
                format!("expected string, found {}", describe(other)),
            ));
            bad = true;
        }
        None => {
            out.diagnostics.push(err(
                &origin,
                "",
                format!("missing required field \"apiVersion\" ({})", versions[0]),
            ));
            bad = true;
        }
    }
    for k in obj.keys() {
        if !matches!(
            k.as_str(),
            "apiVersion" | "kind" | "metadata" | "spec" | "status"
        ) {
            out.diagnostics.push(Diagnostic {
                pos: loc.key_pos(k).or(Some(loc.start)),
                ..err(
                    &origin,
                    k,
                    format!(
                        "unknown field {k:?}{}",
                        did_you_mean(k, &["apiVersion", "kind", "metadata", "spec", "status"])
                    ),
                )
            });
            bad = true;
        }
    }
    let meta: Option<Meta> = match obj.get("metadata") {
        None => {
            out.diagnostics
                .push(err(&origin, "", "missing required field \"metadata\""));
            None
        }
        Some(m) => typed::<Meta>(m, "metadata", &origin, &mut out.diagnostics),
    };
    let spec_value = obj
        .get("spec")
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    if obj.get("spec").is_none() && kind != "Role" {
        out.diagnostics
            .push(err(&origin, "", "missing required field \"spec\""));
        bad = true;
    }
    let Some(mut meta) = meta else { return };
    if meta.name.is_empty() {
        out.diagnostics
            .push(err(&origin, "metadata", "missing required field \"name\""));
        bad = true;
    } else if let Some(why) = validate::dns_subdomain(&meta.name) {
        out.diagnostics.push(err(
            &origin,
            "metadata.name",
            format!("{:?} {why}", meta.name),
        ));
        bad = true;
    }
    if meta.namespace.as_deref().is_some_and(str::is_empty) {
        meta.namespace = None;
    }
    let diags = &mut out.diagnostics;
    let before = diags.len();
    match kind {
        "TrafficPolicy" => {
            if let Some(s) = typed::<TrafficPolicySpec>(&spec_value, "spec", &origin, diags) {
                validate::traffic(&s, &origin, diags);
                if !bad
                    && diags[before..]
                        .iter()
                        .all(|d| d.severity != Severity::Error)
                {
                    out.policies.push(Policy {
                        meta,
                        spec: Spec::Traffic(Box::new(s)),
                        origin,
                    });
                }
            }
        }
        "AccessPolicy" => {
            if let Some(s) = typed::<AccessPolicySpec>(&spec_value, "spec", &origin, diags) {
                validate::access(&s, &origin, diags);
                if !bad
                    && diags[before..]
                        .iter()
                        .all(|d| d.severity != Severity::Error)
                {
                    out.policies.push(Policy {
                        meta,
                        spec: Spec::Access(s),
                        origin,
                    });
                }
            }
        }
        "VirtualMesh" => {
            if let Some(s) = typed::<VirtualMeshSpec>(&spec_value, "spec", &origin, diags) {
                validate::virtual_mesh(&s, &origin, diags);
                if !bad
                    && diags[before..]
                        .iter()
                        .all(|d| d.severity != Severity::Error)
                {
                    out.policies.push(Policy {
                        meta,
                        spec: Spec::VirtualMesh(s),
                        origin,
                    });
                }
            }
        }
        "VirtualDestination" => {
            if let Some(s) = typed::<VirtualDestinationSpec>(&spec_value, "spec", &origin, diags) {
                validate::virtual_destination(&s, &origin, diags);
                if !bad
                    && diags[before..]
                        .iter()
                        .all(|d| d.severity != Severity::Error)
                {
                    out.policies.push(Policy {
                        meta,
                        spec: Spec::VirtualDestination(s),
                        origin,
                    });
                }
            }
        }
        "Role" => {
            if let Some(s) = typed::<RoleSpec>(&spec_value, "spec", &origin, diags)
                && !bad
                && diags.len() == before
            {
                out.roles.push(Role {
                    meta,
                    spec: s,
                    origin,
                });
            }
        }
        "RoleBinding" => {
            if let Some(s) = typed::<RoleBindingSpec>(&spec_value, "spec", &origin, diags) {
                if s.role_ref.name.is_empty() {
                    diags.push(err(&origin, "spec.roleRef.name", "must name a Role"));
                }
                if s.subjects.is_empty() {
                    diags.push(err(
                        &origin,
                        "spec.subjects",
                        "must list at least one subject",
                    ));
                }
                if !bad && diags.len() == before {
                    out.bindings.push(RoleBinding {
                        meta,
                        spec: s,
                        origin,
                    });
                }
            }
        }
        _ => unreachable!("kind checked against KINDS"),
    }
}

/// A short description of a JSON value for "found ..." messages.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) if s.chars().count() > 40 => {
            format!("\"{}…\"", s.chars().take(40).collect::<String>())
        }
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// ` (did you mean "x"?)` when a candidate is close enough, else empty.
pub fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    let lower = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!(" (did you mean {c:?}?)"))
        .unwrap_or_default()
}

/// Deserialize `value` (found at `base`) into `T`; on failure push one placed diagnostic.
/// The most type and unknown-field errors reported for one value.
const MAX_TYPE_ERRORS: usize = 32;

/// Deserialize `value` as `T`, reporting **every** type and unknown-field error with its
/// position, not just the first: after an error the offending field is taken out of a copy
/// (an unknown key removed, a wrongly typed value removed or emptied) and decoding runs again.
fn typed<T: DeserializeOwned>(
    value: &Value,
    base: &str,
    origin: &Origin,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    let mut v = value.clone();
    let mut failed = false;
    let mut seen: std::collections::BTreeSet<String> = Default::default();
    let mut found_here: Vec<Diagnostic> = Vec::new();
    let out = typed_all(
        &mut v,
        base,
        origin,
        &mut failed,
        &mut seen,
        &mut found_here,
    );
    // in the order they stand in the file
    found_here.sort_by_key(|d| d.pos.map(|p| (p.line, p.col)));
    diags.extend(found_here);
    out
}

fn typed_all<T: DeserializeOwned>(
    v: &mut Value,
    base: &str,
    origin: &Origin,
    failed: &mut bool,
    seen: &mut std::collections::BTreeSet<String>,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    for _ in 0..MAX_TYPE_ERRORS {
        let e = match serde_path_to_error::deserialize::<_, T>(&*v) {
            Ok(t) => return (!*failed).then_some(t),
            Err(e) => e,
        };
        *failed = true;
        let mut path = base.to_string();
        let mut segs: Vec<Seg> = Vec::new();
        for seg in e.path().iter() {
            use serde_path_to_error::Segment;
            path = match seg {
                Segment::Seq { index } => {
                    segs.push(Seg::Index(*index));
                    located::join_index(&path, *index)
                }
                Segment::Map { key } => {
                    segs.push(Seg::Key(key.clone()));
                    located::join_key(&path, key)
                }
                Segment::Enum { variant } => located::join_key(&path, variant),
                Segment::Unknown => path,
            };
        }
        let found = lookup(&origin.located.value, &path);
        let (msg, field) = serde_message(&e.inner().to_string(), found);
        let d = match &field {
            // Unknown field: serde's path already ends with it; point at the key.
            Some(f) => {
                let p = if path.ends_with(&located::join_key("", f)) {
                    path.clone()
                } else {
                    segs.push(Seg::Key(f.clone()));
                    located::join_key(&path, f)
                };
                Diagnostic {
                    pos: origin
                        .located
                        .key_pos(&p)
                        .or(Some(origin.located.start))
                        .filter(|p| p.line > 0),
                    ..err(origin, &p, msg)
                }
            }
            None => err(origin, &path, msg),
        };
        let key = d.to_string();
        if !seen.insert(key) {
            break;
        }
        diags.push(d);
        // take the offending field out and decode again, for the next error
        if !take_out(v, &segs) {
            break;
        }
    }
    None
}

enum Seg {
    Key(String),
    Index(usize),
}

/// Remove what `segs` names from `v` (a map entry; a list element is emptied, so the indexes
/// of the others stay true). False when there is nothing to remove.
fn take_out(v: &mut Value, segs: &[Seg]) -> bool {
    let Some((last, parents)) = segs.split_last() else {
        return false;
    };
    let mut cur = v;
    for s in parents {
        cur = match (s, cur) {
            (Seg::Key(k), Value::Object(m)) => match m.get_mut(k) {
                Some(x) => x,
                None => return false,
            },
            (Seg::Index(i), Value::Array(a)) => match a.get_mut(*i) {
                Some(x) => x,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, cur) {
        (Seg::Key(k), Value::Object(m)) => m.remove(k).is_some(),
        (Seg::Index(i), Value::Array(a)) => match a.get_mut(*i) {
            Some(x) if *x != Value::Object(Default::default()) => {
                *x = Value::Object(Default::default());
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// The value at a field path built by [`located::join_key`] / [`located::join_index`].
fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut v = root;
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
        }
        if let Some(r) = rest.strip_prefix('[') {
            let end = if r.starts_with('"') {
                // A quoted key: find the closing `"]`.
                r.find("\"]").map(|i| i + 1)?
            } else {
                r.find(']')?
            };
            let inner = &r[..end];
            rest = &r[end + 1..];
            v = if let Ok(i) = inner.parse::<usize>() {
                v.get(i)?
            } else {
                let key: String = serde_json::from_str(inner).ok()?;
                v.get(key)?
            };
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            v = v.get(&rest[..end])?;
            rest = &rest[end..];
        }
    }
    Some(v)
}

/// Turn serde's message into meshdeck's (`expected integer, found "three"`); for an unknown
/// field also return the field's name.
fn serde_message(msg: &str, found: Option<&Value>) -> (String, Option<String>) {
    let ticks = |s: &str| -> Vec<String> {
        s.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        let names = ticks(rest);
        if let Some((field, expected)) = names.split_first() {
            let exp: Vec<&str> = expected.iter().map(String::as_str).collect();
            let hint = did_you_mean(field, &exp);
            let known = if exp.is_empty() {
                " (this object takes no fields)".to_string()
            } else if hint.is_empty() {
                format!("; known fields: {}", exp.join(", "))
            } else {
                hint
            };
            return (
                format!("unknown field {field:?}{known}"),
                Some(field.clone()),
            );
        }
    }
    if let Some(rest) = msg.strip_prefix("unknown variant ") {
        let names = ticks(rest);
        if let Some((value, expected)) = names.split_first() {
            let exp: Vec<&str> = expected.iter().map(String::as_str).collect();
            return (
                format!(
                    "unknown value {value:?}{}; expected one of {}",
                    did_you_mean(value, &exp),
                    exp.join(", ")
                ),
                None,
            );
        }
    }
    if let Some(rest) = msg.strip_prefix("missing field ") {
        let names = ticks(rest);
        if let Some(f) = names.first() {
            return (format!("missing required field {f:?}"), None);
        }
    }
    if msg.starts_with("invalid type: ") || msg.starts_with("invalid value: ") {
        let expected = msg.rsplit_once(", expected ").map(|(_, e)| e).unwrap_or("");
        let want = expected_word(expected);
        let got = found
            .map(describe)
            .unwrap_or_else(|| "another value".into());
        let neg = msg.starts_with("invalid value: integer `-");
        let want = if neg {
            format!("a non-negative {want}")
        } else {
            want
        };
        return (format!("expected {want}, found {got}"), None);
    }
    (msg.to_string(), None)
}

fn expected_word(serde_expected: &str) -> String {
    let e = serde_expected.trim();
    match e {
        "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" | "usize" | "isize" => {
            "integer".into()
        }
        "f32" | "f64" => "number".into(),
        "a boolean" => "boolean".into(),
        "a string" => "string".into(),
        "a sequence" => "a list".into(),
        "a map" => "a mapping".into(),
        _ if e.starts_with("struct ") => "a mapping".into(),
        _ if e.starts_with("unit variant") || e.starts_with("variant identifier") => {
            "one of the listed values".into()
        }
        _ => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_follows_paths() {
        let v = serde_json::json!({"a": {"b": [1, {"c": 2}], "x.y": 3}});
        assert_eq!(lookup(&v, "a.b[1].c"), Some(&serde_json::json!(2)));
        assert_eq!(lookup(&v, "a[\"x.y\"]"), Some(&serde_json::json!(3)));
        assert_eq!(lookup(&v, "a.zz"), None);
    }

    #[test]
    fn serde_messages_are_rewritten() {
        let (m, f) = serde_message(
            "unknown field `retires`, expected one of `retries`, `mirror`",
            None,
        );
        assert_eq!(m, "unknown field \"retires\" (did you mean \"retries\"?)");
        assert_eq!(f.as_deref(), Some("retires"));
        let (m, _) = serde_message(
            "invalid type: string \"three\", expected i32",
            Some(&serde_json::json!("three")),
        );
        assert_eq!(m, "expected integer, found \"three\"");
    }
}
