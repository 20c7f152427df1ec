//! Configuration analysis: what Istio accepts but cannot honour, found from the fleet
//! snapshot (the watch caches or an inventory), per cluster, with Istio's message codes where
//! istioctl has one. Pure: a snapshot in, findings out.
//!
//! Analyzers (istioctl's names): `virtualservice.DestinationRuleAnalyzer` (IST0101: a route or
//! mirror names a subset no DestinationRule defines), `destinationrule.SubsetSelectPodAnalyzer`
//! (IST0173: a subset selects no pod), `auth.AuthorizationPoliciesAnalyzer` (IST0127: selects no
//! workload; IST0101: a source namespace pattern matches no namespace), `injection.Analyzer`
//! (IST0102 a namespace not in the mesh, IST0123 several injection labels, IST0103 a pod without
//! its proxy in an injected namespace),
//! `virtualservice.ConflictingMeshGatewayHostsAnalyzer` (IST0109),
//! `deployment.MultiServiceAnalyzer` (IST0116, IST0137), `sidecar.SelectorAnalyzer` (IST0101,
//! IST0110, IST0111), `destinationrule.CaCertificateAnalyzer` (IST0128, IST0129),
//! `virtualservice.DestinationHostAnalyzer` (IST0101 hosts and ports, IST0112), the route half
//! of `schema.ValidationAnalyzer.VirtualService` (IST0130, IST0131). Each is
//! checked against
//! istioctl's own test inputs (tests/it/analyze.rs).

mod authz;
mod fleet;
mod gateways;
mod hosts;
mod matches;
mod namespaces;
mod sidecars;
mod subsets;
mod tls;
mod workloads;

use crate::model::{ClusterView, Snapshot};
use serde::Serialize;

/// How bad a finding is (istioctl's levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
    Error,
}

impl Level {
    pub fn word(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }

    /// The health a finding of this level gives the object it names: an error fails it, a
    /// warning degrades it, an info leaves it ok.
    pub fn health(self) -> crate::model::Level {
        match self {
            Level::Error => crate::model::Level::Failure,
            Level::Warning => crate::model::Level::Degraded,
            Level::Info => crate::model::Level::Ok,
        }
    }
}

/// One thing wrong, where, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Istio's message code (`IST0101`), or meshdeck's for what no single-cluster tool sees.
    pub code: &'static str,
    pub level: Level,
    pub cluster: String,
    /// `VirtualService default/reviews` (`Kind name` when cluster-scoped), as istioctl writes it.
    pub object: String,
    /// The field the finding is about (`spec.http[0].route[0].destination.subset`).
    pub path: String,
    pub message: String,
    /// One line on how to fix it.
    pub hint: String,
}

impl std::fmt::Display for Finding {
    /// `Error [IST0101] (VirtualService default/reviews) in eu-west: message`, as istioctl
    /// prints, with the cluster.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.level {
            Level::Error => "Error",
            Level::Warning => "Warning",
            Level::Info => "Info",
        };
        write!(
            f,
            "{level} [{}] ({}) in {}: {}",
            self.code, self.object, self.cluster, self.message
        )
    }
}

/// The object name as istioctl writes it.
pub fn object_name(kind: &str, namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        format!("{kind} {name}")
    } else {
        format!("{kind} {namespace}/{name}")
    }
}

/// A JSON object of string values (`matchLabels`, a subset's `labels`) as labels.
pub(crate) fn json_labels(v: Option<&serde_json::Value>) -> crate::model::raw::Labels {
    v.and_then(serde_json::Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The items of the list at `key` of `v` (none when it is absent or not a list).
pub(crate) fn items<'a>(
    v: &'a serde_json::Value,
    key: &str,
) -> std::slice::Iter<'a, serde_json::Value> {
    v.get(key)
        .and_then(serde_json::Value::as_array)
        .map(|a| a.iter())
        .unwrap_or_default()
}

/// The strings of the list at `key` of `v` (`exportTo`, `hosts`, `gateways`).
pub(crate) fn strings<'a>(v: &'a serde_json::Value, key: &str) -> Vec<&'a str> {
    items(v, key)
        .filter_map(serde_json::Value::as_str)
        .collect()
}

/// `k=v,k=v`, as istioctl prints a selector.
pub(crate) fn labels_text(l: &crate::model::raw::Labels) -> String {
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) use crate::policy::select::labels_match;

/// A host as Istio resolves it from an object in `namespace`: a short name is a Service there.
pub(crate) fn resolve_host(host: &str, namespace: &str) -> String {
    if host.contains('.') {
        host.to_string()
    } else {
        format!("{host}.{namespace}.svc.cluster.local")
    }
}

/// One single-cluster analyzer: it adds its findings for a cluster.
pub type AnalyzerFn = fn(&ClusterView, &mut Vec<Finding>);

/// The single-cluster analyzers, by istioctl's names, in the order they run.
pub const ANALYZERS: &[(&str, AnalyzerFn)] = &[
    (
        "virtualservice.DestinationRuleAnalyzer",
        subsets::virtual_service_subsets,
    ),
    (
        "destinationrule.SubsetSelectPodAnalyzer",
        subsets::subsets_select_pods,
    ),
    (
        "auth.AuthorizationPoliciesAnalyzer",
        authz::authorization_policies,
    ),
    ("injection.Analyzer", namespaces::injection),
    ("injection.Analyzer", namespaces::pods_missing_proxy),
    (
        "virtualservice.ConflictingMeshGatewayHostsAnalyzer",
        gateways::conflicting_mesh_hosts,
    ),
    ("deployment.MultiServiceAnalyzer", workloads::multi_service),
    ("sidecar.SelectorAnalyzer", sidecars::selectors),
    (
        "destinationrule.CaCertificateAnalyzer",
        tls::ca_certificates,
    ),
    (
        "virtualservice.DestinationHostAnalyzer",
        hosts::destination_hosts,
    ),
    (
        "schema.ValidationAnalyzer.VirtualService",
        matches::unreachable_rules,
    ),
];

/// One analyzer (by istioctl's name) over one cluster, as istioctl's own tests run them.
pub fn analyze_with(c: &ClusterView, analyzer: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for (name, f) in ANALYZERS {
        if *name == analyzer {
            f(c, &mut out);
        }
    }
    out
}

/// Every analyzer over one cluster.
pub fn analyze_cluster(c: &ClusterView) -> Vec<Finding> {
    let mut out = Vec::new();
    for (_, f) in ANALYZERS {
        f(c, &mut out);
    }
    out.sort_by(|a, b| {
        (
            &a.cluster,
            std::cmp::Reverse(a.level),
            a.code,
            &a.object,
            &a.path,
        )
            .cmp(&(
                &b.cluster,
                std::cmp::Reverse(b.level),
                b.code,
                &b.object,
                &b.path,
            ))
    });
    out
}

/// Every analyzer over every cluster whose data is current (a cluster without data says
/// nothing, rather than something false).
pub fn analyze(snap: &Snapshot) -> Vec<Finding> {
    let mut out: Vec<Finding> = snap
        .clusters
        .iter()
        .filter(|c| c.state.is_current())
        .flat_map(|c| analyze_cluster(c))
        .collect();
    fleet::cross_cluster(snap, &mut out);
    out
}

/// Every analyzer over a stream of snapshots, keeping each cluster's findings while its view
/// is the same (`Arc`-identical: the fleet replaces only the view of a cluster that changed),
/// so after one object change only that cluster is analysed again, then the cross-cluster
/// analyzers. The answer equals [`analyze`] of the same snapshot.
#[derive(Default)]
pub struct Analyzer {
    /// Per cluster, the view its findings came from (weak: the cache must not keep an older
    /// generation of the fleet alive; the allocation a `Weak` pins cannot be reused by a newer
    /// view, so equal pointers are the same view).
    cache: std::collections::HashMap<String, (std::sync::Weak<ClusterView>, Vec<Finding>)>,
}

impl Analyzer {
    pub fn new() -> Analyzer {
        Analyzer::default()
    }

    pub fn analyze(&mut self, snap: &Snapshot) -> Vec<Finding> {
        self.analyze_counting(snap).0
    }

    /// [`Analyzer::analyze`], and how many clusters were analysed again.
    pub fn analyze_counting(&mut self, snap: &Snapshot) -> (Vec<Finding>, usize) {
        let mut out = Vec::new();
        let mut redone = 0;
        for c in snap.clusters.iter().filter(|c| c.state.is_current()) {
            match self.cache.get(&c.name) {
                Some((seen, found)) if std::ptr::eq(seen.as_ptr(), std::sync::Arc::as_ptr(c)) => {
                    out.extend(found.iter().cloned())
                }
                _ => {
                    redone += 1;
                    let found = analyze_cluster(c);
                    out.extend(found.iter().cloned());
                    self.cache
                        .insert(c.name.clone(), (std::sync::Arc::downgrade(c), found));
                }
            }
        }
        // clusters gone from the fleet or without current data: forget them
        self.cache
            .retain(|name, _| snap.cluster(name).is_some_and(|c| c.state.is_current()));
        fleet::cross_cluster(snap, &mut out);
        (out, redone)
    }
}

/// What applying a plan would change in the findings of the clusters it touches: the
/// findings it adds, and those it fixes (the fleet as it would be = live + the plan).
pub fn plan_effect(snap: &Snapshot, plan: &crate::plan::Plan) -> (Vec<Finding>, Vec<Finding>) {
    use crate::plan::Action;
    let mut added = Vec::new();
    let mut fixed = Vec::new();
    for cluster in plan.clusters() {
        let Some(c) = snap.cluster(cluster) else {
            continue;
        };
        let items: Vec<&crate::plan::Item> = plan
            .items
            .iter()
            .filter(|i| i.cluster == cluster && i.action.changes())
            .filter(|i| i.api_version.contains("istio.io"))
            .collect();
        if items.is_empty() {
            continue;
        }
        let mut after = ClusterView::clone(c);
        after.istio.retain(|o| {
            !items
                .iter()
                .any(|i| i.kind == o.kind && i.namespace == o.namespace && i.name == o.name)
        });
        for i in items.iter().filter(|i| i.action != Action::Delete) {
            if let Some(o) = i
                .desired
                .as_ref()
                .and_then(crate::model::raw::RawObject::from_value)
            {
                after.istio.push(std::sync::Arc::new(o));
            }
        }
        let before = analyze_cluster(c);
        let now = analyze_cluster(&after);
        let same =
            |a: &Finding, b: &Finding| a.code == b.code && a.object == b.object && a.path == b.path;
        added.extend(
            now.iter()
                .filter(|n| !before.iter().any(|b| same(n, b)))
                .cloned(),
        );
        fixed.extend(
            before
                .iter()
                .filter(|b| !now.iter().any(|n| same(n, b)))
                .cloned(),
        );
    }
    (added, fixed)
}
