//! Server-side apply for the simulated API server: field ownership (`managedFields`,
//! `FieldsV1`), merging, conflicts and forced takeover.
//!
//! Granularity: every leaf of the object is a field; maps are descended into (labels and
//! annotations are owned key by key); lists are atomic (owned as one field). Real Kubernetes
//! descends into lists with merge keys (`k:{...}`); the simulator treats every list as
//! `x-kubernetes-list-type: atomic`, which is what Istio's CRDs declare for most lists and
//! makes conflicts strictly more likely, never less.

use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

pub type Path = Vec<String>;
pub type FieldSet = BTreeSet<Path>;

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq)]
pub struct Manager {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

/// A conflict: another manager owns `field` and the apply would change its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub manager: String,
    pub api_version: String,
    pub field: Path,
}

impl Conflict {
    /// `.spec.http` — the path as Kubernetes prints it in conflict causes.
    pub fn field_string(&self) -> String {
        self.field.iter().map(|s| format!(".{s}")).collect()
    }
}

const SYSTEM_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
];

fn leaves(v: &Value, prefix: &mut Path, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                prefix.push(k.clone());
                leaves(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
        }
    }
}

/// The fields a manager owns when it sets this object (or this part of it).
pub fn owned_paths(obj: &Value, subresource: Option<&str>) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(m) = obj.as_object() else {
        return out;
    };
    for (k, v) in m {
        let status_only = subresource == Some("status");
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "status" => {
                if status_only {
                    leaves(v, &mut vec![k.clone()], &mut out);
                }
            }
            _ if status_only => {}
            "metadata" => {
                if let Some(meta) = v.as_object() {
                    for (mk, mv) in meta {
                        if SYSTEM_META.contains(&mk.as_str()) {
                            continue;
                        }
                        leaves(mv, &mut vec!["metadata".into(), mk.clone()], &mut out);
                    }
                }
            }
            _ => leaves(v, &mut vec![k.clone()], &mut out),
        }
    }
    out
}

pub fn get_path<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path {
        cur = cur.as_object()?.get(seg)?;
    }
    Some(cur)
}

/// Remove the field at `path`, and the maps above it that become empty.
pub fn remove_path(v: &mut Value, path: &[String]) {
    fn rec(v: &mut Value, path: &[String]) -> bool {
        let Some(m) = v.as_object_mut() else {
            return false;
        };
        match path {
            [] => false,
            [last] => {
                m.remove(last);
                m.is_empty()
            }
            [first, rest @ ..] => {
                let emptied = m.get_mut(first).is_some_and(|c| rec(c, rest));
                if emptied {
                    m.remove(first);
                }
                m.is_empty()
            }
        }
    }
    rec(v, path);
}

/// Deep-merge `src` into `dst`: maps merge key by key, everything else is replaced.
pub fn merge(dst: &mut Value, src: &Value) {
    match (dst, src) {
        (Value::Object(d), Value::Object(s)) => {
            for (k, sv) in s {
                match d.get_mut(k) {
                    Some(dv) if dv.is_object() && sv.is_object() => merge(dv, sv),
                    _ => {
                        d.insert(k.clone(), sv.clone());
                    }
                }
            }
        }
        (d, s) => *d = s.clone(),
    }
}

fn overlaps(a: &[String], b: &[String]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// FieldsV1 form: `{"f:spec": {"f:hosts": {}}}`.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for seg in path {
            let entry = cur
                .entry(format!("f:{seg}"))
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(next) = entry else { break };
            cur = next;
        }
    }
    Value::Object(root)
}

/// Leaves of a FieldsV1 tree; `k:`/`v:`/`i:` list-element keys (from real servers) are owned
/// as their whole list, the simulator's granularity.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    fn rec(v: &Value, prefix: &mut Path, out: &mut FieldSet) {
        let Some(m) = v.as_object() else { return };
        let children: Vec<(&String, &Value)> = m.iter().filter(|(k, _)| *k != ".").collect();
        if children.is_empty() || children.iter().any(|(k, _)| !k.starts_with("f:")) {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
            return;
        }
        for (k, child) in children {
            prefix.push(k[2..].to_string());
            rec(child, prefix, out);
            prefix.pop();
        }
    }
    let mut out = FieldSet::new();
    rec(v, &mut Vec::new(), &mut out);
    out
}

pub fn read_managers(obj: &Value) -> Vec<Manager> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    Some(Manager {
                        manager: e.get("manager")?.as_str()?.to_string(),
                        operation: e
                            .get("operation")
                            .and_then(Value::as_str)
                            .unwrap_or("Update")
                            .to_string(),
                        api_version: e
                            .get("apiVersion")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        time: e
                            .get("time")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        subresource: e
                            .get("subresource")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        fields: e.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn write_managers(obj: &mut Value, managers: &[Manager]) {
    let entries: Vec<Value> = managers
        .iter()
        .filter(|m| !m.fields.is_empty())
        .map(|m| {
            let mut e = json!({
                "manager": m.manager,
                "operation": m.operation,
                "apiVersion": m.api_version,
                "time": m.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&m.fields),
            });
            if let Some(s) = &m.subresource {
                e["subresource"] = Value::String(s.clone());
            }
            e
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if entries.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(entries));
        }
    }
}

/// Request facts an apply or update needs.
pub struct Op<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub now: &'a str,
    pub subresource: Option<&'a str>,
}

fn same_slot(m: &Manager, op: &Op, operation: &str) -> bool {
    m.manager == op.manager
        && m.operation == operation
        && m.subresource.as_deref() == op.subresource
}

/// Server-side apply of `applied` (already stripped of system fields by the caller) onto
/// `existing` (None: create). Returns the merged object with updated managedFields, or the
/// conflicts when `force` is false.
pub fn apply(
    existing: Option<&Value>,
    applied: &Value,
    op: &Op,
    force: bool,
) -> Result<Value, Vec<Conflict>> {
    let base = existing.cloned().unwrap_or_else(|| json!({}));
    let mut managers = read_managers(&base);
    let new_owned = owned_paths(applied, op.subresource);
    let mut result = base.clone();
    if let Some(meta) = result.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    // Fields this manager applied before and no longer applies are removed, unless another
    // manager also owns them.
    if let Some(prev) = managers.iter().find(|m| same_slot(m, op, "Apply")) {
        for p in prev.fields.difference(&new_owned) {
            let shared = managers
                .iter()
                .filter(|m| !same_slot(m, op, "Apply"))
                .any(|m| m.fields.iter().any(|q| overlaps(p, q)));
            if !shared {
                remove_path(&mut result, p);
            }
        }
    }
    let mut payload = applied.clone();
    if op.subresource == Some("status") {
        payload = json!({"status": applied.get("status").cloned().unwrap_or(json!({}))});
    } else if let Some(m) = payload.as_object_mut() {
        m.remove("status");
    }
    merge(&mut result, &payload);

    let mut conflicts = Vec::new();
    for m in managers.iter().filter(|m| m.manager != op.manager) {
        for q in &m.fields {
            if new_owned.iter().any(|p| overlaps(p, q))
                && get_path(&base, q) != get_path(&result, q)
            {
                conflicts.push(Conflict {
                    manager: m.manager.clone(),
                    api_version: m.api_version.clone(),
                    field: q.clone(),
                });
            }
        }
    }
    if !conflicts.is_empty() {
        if !force {
            return Err(conflicts);
        }
        for c in &conflicts {
            for m in managers.iter_mut().filter(|m| m.manager == c.manager) {
                m.fields.remove(&c.field);
            }
        }
    }
    match managers.iter_mut().find(|m| same_slot(m, op, "Apply")) {
        Some(m) => {
            if m.fields != new_owned || m.api_version != op.api_version {
                m.time = op.now.to_string();
            }
            m.fields = new_owned;
            m.api_version = op.api_version.to_string();
        }
        None => managers.push(Manager {
            manager: op.manager.to_string(),
            operation: "Apply".into(),
            api_version: op.api_version.to_string(),
            time: op.now.to_string(),
            subresource: op.subresource.map(str::to_string),
            fields: new_owned,
        }),
    }
    write_managers(&mut result, &managers);
    Ok(result)
}

/// Record ownership for a non-apply write (create, update, merge/JSON patch): the manager
/// takes every field it changed, from whoever owned it, without conflicts.
pub fn update(before: Option<&Value>, after: &mut Value, op: &Op) {
    let mut managers = before.map(read_managers).unwrap_or_default();
    let before_paths = before
        .map(|b| owned_paths(b, op.subresource))
        .unwrap_or_default();
    let after_paths = owned_paths(after, op.subresource);
    let empty = json!({});
    let b = before.unwrap_or(&empty);
    let changed: FieldSet = after_paths
        .iter()
        .filter(|p| get_path(b, p) != get_path(after, p))
        .cloned()
        .collect();
    let removed: FieldSet = before_paths.difference(&after_paths).cloned().collect();
    for m in managers.iter_mut() {
        m.fields
            .retain(|q| !changed.iter().chain(removed.iter()).any(|p| overlaps(p, q)));
    }
    if !changed.is_empty() {
        match managers.iter_mut().find(|m| same_slot(m, op, "Update")) {
            Some(m) => {
                m.fields.extend(changed);
                m.time = op.now.to_string();
                m.api_version = op.api_version.to_string();
            }
            None => managers.push(Manager {
                manager: op.manager.to_string(),
                operation: "Update".into(),
                api_version: op.api_version.to_string(),
                time: op.now.to_string(),
                subresource: op.subresource.map(str::to_string),
                fields: changed,
            }),
        }
    }
    write_managers(after, &managers);
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-11-24T00:00:00Z";

    fn op(manager: &str) -> Op<'_> {
        Op {
            manager,
            api_version: "networking.istio.io/v1",
            now: NOW,
            subresource: None,
        }
    }

    fn vs(hosts: &[&str], timeout: Option<&str>) -> Value {
        let mut v = json!({
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "reviews", "namespace": "default", "labels": {"team": "a"}},
            "spec": {"hosts": hosts}
        });
        if let Some(t) = timeout {
            v["spec"]["http"] = json!([{"timeout": t}]);
        }
        v
    }

    #[test]
    fn fields_v1_round_trips() {
        let set = owned_paths(&vs(&["a"], Some("1s")), None);
        assert!(set.contains(&vec!["spec".to_string(), "hosts".to_string()]));
        assert!(set.contains(&vec![
            "metadata".to_string(),
            "labels".to_string(),
            "team".to_string()
        ]));
        assert!(!set.iter().any(|p| p[1] == "name"));
        assert_eq!(from_fields_v1(&to_fields_v1(&set)), set);
    }

    #[test]
    fn apply_creates_then_conflicts_with_another_manager_unless_forced() {
        let created = apply(None, &vs(&["a"], None), &op("kubectl"), false).expect("create");
        assert_eq!(read_managers(&created).len(), 1);
        // same value from another manager: shared ownership, no conflict
        let shared =
            apply(Some(&created), &vs(&["a"], None), &op("meshdeck"), false).expect("shared");
        assert_eq!(read_managers(&shared).len(), 2);
        // different value: conflict naming the owner and the field
        let err =
            apply(Some(&created), &vs(&["b"], None), &op("meshdeck"), false).expect_err("conflict");
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].manager, "kubectl");
        assert_eq!(err[0].field_string(), ".spec.hosts");
        // forced: meshdeck takes the field, kubectl loses it
        let forced =
            apply(Some(&created), &vs(&["b"], None), &op("meshdeck"), true).expect("forced");
        assert_eq!(forced["spec"]["hosts"], json!(["b"]));
        let ms = read_managers(&forced);
        let kubectl = ms.iter().find(|m| m.manager == "kubectl").expect("kubectl");
        assert!(!kubectl.fields.iter().any(|p| p.join(".") == "spec.hosts"));
    }

    #[test]
    fn a_field_the_manager_stops_applying_is_removed() {
        let a = apply(None, &vs(&["a"], Some("2s")), &op("meshdeck"), false).expect("a");
        assert_eq!(a["spec"]["http"][0]["timeout"], "2s");
        let b = apply(Some(&a), &vs(&["a"], None), &op("meshdeck"), false).expect("b");
        assert!(b["spec"].get("http").is_none(), "{b}");
    }

    #[test]
    fn re_applying_the_same_object_changes_nothing() {
        let a = apply(None, &vs(&["a"], Some("2s")), &op("meshdeck"), false).expect("a");
        let b = apply(Some(&a), &vs(&["a"], Some("2s")), &op("meshdeck"), false).expect("b");
        assert_eq!(a, b);
    }

    #[test]
    fn an_update_takes_ownership_of_changed_fields() {
        let a = apply(None, &vs(&["a"], None), &op("meshdeck"), false).expect("a");
        let mut edited = a.clone();
        edited["spec"]["hosts"] = json!(["edited"]);
        update(Some(&a), &mut edited, &op("kubectl-edit"));
        let ms = read_managers(&edited);
        let md = ms
            .iter()
            .find(|m| m.manager == "meshdeck")
            .expect("meshdeck");
        assert!(!md.fields.iter().any(|p| p.join(".") == "spec.hosts"));
        let ke = ms
            .iter()
            .find(|m| m.manager == "kubectl-edit")
            .expect("kubectl-edit");
        assert_eq!(ke.operation, "Update");
        // meshdeck re-applying its value now conflicts with kubectl-edit
        let err =
            apply(Some(&edited), &vs(&["a"], None), &op("meshdeck"), false).expect_err("conflict");
        assert_eq!(err[0].manager, "kubectl-edit");
    }
}
