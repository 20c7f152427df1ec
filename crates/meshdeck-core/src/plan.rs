//! Generated objects vs what is live → create / update / unchanged / delete, with a readable
//! unified diff per object (the `similar` crate). Pure: values in, a plan out.
//!
//! Compared: `spec`, and the labels and annotations meshdeck owns (`app.kubernetes.io/managed-by`,
//! `meshdeck.io/*`). Everything the server sets (status, managedFields, resourceVersion, other
//! people's labels) is ignored. A live object with the generated identity that meshdeck does not
//! own (no managed-by label) is a `Conflict`: reported, never overwritten.

use crate::object::Identified;
use crate::policy::PolicyId;
use crate::translate::{Generated, MANAGED_BY};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Unchanged,
    Delete,
    /// A live object of that name exists and is not meshdeck's.
    Conflict,
}

impl Action {
    pub fn word(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Unchanged => "unchanged",
            Action::Delete => "delete",
            Action::Conflict => "conflict",
        }
    }
    pub fn changes(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Delete)
    }
}

/// A live object as the planner needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    pub cluster: String,
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub spec: Value,
}

impl Live {
    pub fn from_raw(cluster: &str, o: &crate::model::raw::RawObject) -> Live {
        Live {
            cluster: cluster.to_string(),
            api_version: o.api_version.clone(),
            kind: o.kind.clone(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
            labels: o.labels.clone(),
            annotations: o.annotations.clone(),
            spec: o.spec.clone(),
        }
    }
    /// The policies its `meshdeck.io/policies` annotation names (`Kind/namespace/name`).
    pub fn policies(&self) -> impl Iterator<Item = &str> {
        crate::policy::annotation::parse(
            self.annotations
                .get(crate::translate::POLICIES_ANNOTATION)
                .map(String::as_str)
                .unwrap_or(""),
        )
    }
    pub fn managed(&self) -> bool {
        self.labels.get(MANAGED_BY).map(String::as_str) == Some("meshdeck")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    pub cluster: String,
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub action: Action,
    /// What would be applied (None for a delete).
    #[serde(skip)]
    pub desired: Option<Value>,
    /// Unified diff, live → desired (empty when unchanged).
    pub diff: String,
    /// The policies behind it (for a delete: those named on the live object).
    pub policies: Vec<String>,
}

impl Item {
    /// `cluster Kind ns/name`.
    pub fn id(&self) -> String {
        self.object_ref().to_string()
    }
}

impl crate::object::Identified for Item {
    fn object_ref(&self) -> crate::object::ObjectRef {
        crate::object::ObjectRef::new(&self.cluster, &self.kind, &self.namespace, &self.name)
    }
}

impl crate::object::Identified for Live {
    fn object_ref(&self) -> crate::object::ObjectRef {
        crate::object::ObjectRef::new(&self.cluster, &self.kind, &self.namespace, &self.name)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    pub items: Vec<Item>,
}

impl Plan {
    pub fn changes(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|i| i.action.changes())
    }
    pub fn has_changes(&self) -> bool {
        self.changes().next().is_some()
    }
    pub fn clusters(&self) -> BTreeSet<&str> {
        self.changes().map(|i| i.cluster.as_str()).collect()
    }
    /// `cluster → kind → action → count` for the summary table.
    pub fn summary(&self) -> BTreeMap<(String, String), BTreeMap<Action, usize>> {
        let mut out: BTreeMap<(String, String), BTreeMap<Action, usize>> = BTreeMap::new();
        for i in &self.items {
            *out.entry((i.cluster.clone(), i.kind.clone()))
                .or_default()
                .entry(i.action)
                .or_default() += 1;
        }
        out
    }
}

/// The part of an object that is compared and shown in diffs.
fn comparable(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    spec: &Value,
) -> Value {
    let owned = |m: &BTreeMap<String, String>| -> Map<String, Value> {
        m.iter()
            .filter(|(k, _)| *k == MANAGED_BY || k.starts_with("meshdeck.io/"))
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect()
    };
    json!({"metadata": {"labels": owned(labels), "annotations": owned(annotations)}, "spec": spec})
}

fn desired_parts(g: &Generated) -> (BTreeMap<String, String>, BTreeMap<String, String>, Value) {
    let obj = g.to_object();
    let map = |v: &Value| -> BTreeMap<String, String> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    };
    (
        map(&obj["metadata"]["labels"]),
        map(&obj["metadata"]["annotations"]),
        g.spec.clone(),
    )
}

fn yaml(v: &Value) -> String {
    crate::yaml::to_string(v).unwrap_or_else(|e| format!("# cannot show: {e}\n"))
}

fn unified(id: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("live {id}"), &format!("generated {id}"))
        .to_string()
}

/// Plan `generated` against `live`. With `prune`, live objects meshdeck owns in the clusters
/// given that nothing generates any more are deleted; only clusters in `clusters` are touched.
pub fn plan(
    generated: &[Generated],
    live: &[Live],
    clusters: &BTreeSet<String>,
    prune: bool,
) -> Plan {
    type Key<'a> = (&'a str, &'a str, &'a str, &'a str);
    let live_by: BTreeMap<Key<'_>, &Live> = live
        .iter()
        .map(|l| {
            (
                (
                    l.cluster.as_str(),
                    l.kind.as_str(),
                    l.namespace.as_str(),
                    l.name.as_str(),
                ),
                l,
            )
        })
        .collect();
    let mut wanted: BTreeSet<Key<'_>> = BTreeSet::new();
    let mut items = Vec::new();
    for g in generated.iter().filter(|g| clusters.contains(&g.cluster)) {
        let key = (
            g.cluster.as_str(),
            g.kind,
            g.namespace.as_str(),
            g.name.as_str(),
        );
        wanted.insert(key);
        let (labels, annotations, spec) = desired_parts(g);
        let new = comparable(&labels, &annotations, &spec);
        let id = g.object_ref().to_string();
        let (action, diff) = match live_by.get(&key) {
            None => (Action::Create, unified(&id, "", &yaml(&new))),
            Some(l) if !l.managed() => (
                Action::Conflict,
                unified(
                    &id,
                    &yaml(&comparable(&l.labels, &l.annotations, &l.spec)),
                    &yaml(&new),
                ),
            ),
            Some(l) => {
                let old = comparable(&l.labels, &l.annotations, &l.spec);
                if old == new {
                    (Action::Unchanged, String::new())
                } else {
                    (Action::Update, unified(&id, &yaml(&old), &yaml(&new)))
                }
            }
        };
        items.push(Item {
            cluster: g.cluster.clone(),
            api_version: g.api_version.to_string(),
            kind: g.kind.to_string(),
            namespace: g.namespace.clone(),
            name: g.name.clone(),
            action,
            desired: Some(g.to_object()),
            diff,
            policies: g.sources.iter().map(PolicyId::key).collect(),
        });
    }
    if prune {
        for l in live
            .iter()
            .filter(|l| l.managed() && clusters.contains(&l.cluster))
        {
            let key = (
                l.cluster.as_str(),
                l.kind.as_str(),
                l.namespace.as_str(),
                l.name.as_str(),
            );
            if wanted.contains(&key) {
                continue;
            }
            let id = l.object_ref().to_string();
            items.push(Item {
                cluster: l.cluster.clone(),
                api_version: l.api_version.clone(),
                kind: l.kind.clone(),
                namespace: l.namespace.clone(),
                name: l.name.clone(),
                action: Action::Delete,
                desired: None,
                diff: unified(
                    &id,
                    &yaml(&comparable(&l.labels, &l.annotations, &l.spec)),
                    "",
                ),
                policies: l.policies().map(str::to_string).collect(),
            });
        }
    }
    items.sort_by(|a, b| {
        (&a.cluster, &a.kind, &a.namespace, &a.name).cmp(&(
            &b.cluster,
            &b.kind,
            &b.namespace,
            &b.name,
        ))
    });
    Plan { items }
}

/// The plan as text: a summary table, then every change's diff (ANSI colours when `color`).
pub fn render(plan: &Plan, color: bool) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<16} {:<22} {:>6} {:>6} {:>6} {:>9} {:>8}",
        "CLUSTER", "KIND", "CREATE", "UPDATE", "DELETE", "UNCHANGED", "CONFLICT"
    );
    for ((cluster, kind), counts) in plan.summary() {
        let n = |a: Action| counts.get(&a).copied().unwrap_or(0);
        let _ = writeln!(
            s,
            "{cluster:<16} {kind:<22} {:>6} {:>6} {:>6} {:>9} {:>8}",
            n(Action::Create),
            n(Action::Update),
            n(Action::Delete),
            n(Action::Unchanged),
            n(Action::Conflict)
        );
    }
    for i in plan.items.iter().filter(|i| i.action != Action::Unchanged) {
        s.push('\n');
        let _ = writeln!(s, "{} {}", i.action.word(), i.id());
        if i.action == Action::Conflict {
            let _ = writeln!(
                s,
                "  exists and is not managed by meshdeck (no {MANAGED_BY}: meshdeck label): left alone"
            );
        }
        for line in i.diff.lines() {
            if !color {
                let _ = writeln!(s, "{line}");
            } else if line.starts_with('+') && !line.starts_with("+++") {
                let _ = writeln!(s, "\x1b[32m{line}\x1b[0m");
            } else if line.starts_with('-') && !line.starts_with("---") {
                let _ = writeln!(s, "\x1b[31m{line}\x1b[0m");
            } else if line.starts_with("@@") {
                let _ = writeln!(s, "\x1b[36m{line}\x1b[0m");
            } else {
                let _ = writeln!(s, "{line}");
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyId;

    fn mk(name: &str, timeout: &str) -> Generated {
        Generated {
            cluster: "east".into(),
            api_version: "networking.istio.io/v1",
            kind: "VirtualService",
            namespace: "bookinfo".into(),
            name: name.into(),
            sources: [PolicyId {
                kind: "TrafficPolicy",
                namespace: "bookinfo".into(),
                name: "t".into(),
            }]
            .into(),
            spec: json!({"hosts": [name], "http": [{"timeout": timeout}]}),
        }
    }

    fn live_of(g: &Generated) -> Live {
        let o = g.to_object();
        let map = |v: &Value| -> BTreeMap<String, String> {
            v.as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut labels = map(&o["metadata"]["labels"]);
        labels.insert("someone-else".into(), "x".into()); // not compared
        Live {
            cluster: g.cluster.clone(),
            api_version: g.api_version.into(),
            kind: g.kind.into(),
            namespace: g.namespace.clone(),
            name: g.name.clone(),
            labels,
            annotations: map(&o["metadata"]["annotations"]),
            spec: g.spec.clone(),
        }
    }

    #[test]
    fn create_update_unchanged_delete_conflict() {
        let east: BTreeSet<String> = ["east".to_string()].into();
        let a = mk("a", "1s");
        let b = mk("b", "1s");
        let c = mk("c", "1s");
        let mut unowned = live_of(&c);
        unowned.labels.clear();
        let old = live_of(&mk("old", "1s"));
        let live = vec![live_of(&a), live_of(&mk("b", "2s")), unowned, old];
        let p = plan(&[a, b, c, mk("d", "1s")], &live, &east, true);
        let actions: Vec<(&str, Action)> = p
            .items
            .iter()
            .map(|i| (i.name.as_str(), i.action))
            .collect();
        assert_eq!(
            actions,
            [
                ("a", Action::Unchanged),
                ("b", Action::Update),
                ("c", Action::Conflict),
                ("d", Action::Create),
                ("old", Action::Delete)
            ]
        );
        let b = &p.items[1];
        assert!(
            b.diff.contains("-  - timeout: 2s") && b.diff.contains("+  - timeout: 1s"),
            "{}",
            b.diff
        );
        assert_eq!(p.items[4].policies, ["TrafficPolicy/bookinfo/t"]);
        // without prune nothing is deleted; other clusters are never touched
        let p = plan(&[mk("a", "1s")], &live, &east, false);
        assert!(p.items.iter().all(|i| i.action != Action::Delete));
        let west: BTreeSet<String> = ["west".to_string()].into();
        assert!(plan(&[mk("a", "1s")], &live, &west, true).items.is_empty());
    }
}
