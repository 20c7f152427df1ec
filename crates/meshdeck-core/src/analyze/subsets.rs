//! Subsets: named by routes, defined by DestinationRules, selecting pods.

use super::{Finding, Level, json_labels, labels_match, object_name, resolve_host};
use crate::model::ClusterView;
use crate::model::raw::RawObject;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The subsets each host's DestinationRules define (host resolved from the rule's namespace).
fn defined_subsets(c: &ClusterView) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for o in c.istio.iter().filter(|o| o.kind == "DestinationRule") {
        let Some(host) = o.spec.get("host").and_then(Value::as_str) else {
            continue;
        };
        let set = out.entry(resolve_host(host, &o.namespace)).or_default();
        for s in super::items(&o.spec, "subsets") {
            if let Some(n) = s.get("name").and_then(Value::as_str) {
                set.insert(n.to_string());
            }
        }
    }
    out
}

/// Every (path, destination) of a VirtualService's routes and mirrors.
/// A route entry without a destination (`- {}`) is given as `null`: it routes to no host.
pub(super) fn destinations(vs: &RawObject) -> Vec<(String, &Value)> {
    static NONE: Value = Value::Null;
    let mut out = Vec::new();
    for proto in ["http", "tcp", "tls"] {
        for (i, r) in super::items(&vs.spec, proto).enumerate() {
            for (j, d) in super::items(r, "route").enumerate() {
                let dest = d.get("destination").unwrap_or(&NONE);
                out.push((format!("spec.{proto}[{i}].route[{j}].destination"), dest));
            }
            if let Some(m) = r.get("mirror") {
                out.push((format!("spec.{proto}[{i}].mirror"), m));
            }
            for (j, m) in super::items(r, "mirrors").enumerate() {
                if let Some(dest) = m.get("destination") {
                    out.push((format!("spec.{proto}[{i}].mirrors[{j}].destination"), dest));
                }
            }
        }
    }
    out
}

/// IST0101: a route or mirror names a subset that no DestinationRule for its host defines
/// (istioctl's virtualservice.DestinationRuleAnalyzer).
pub(super) fn virtual_service_subsets(c: &ClusterView, out: &mut Vec<Finding>) {
    let defined = defined_subsets(c);
    for vs in c.istio.iter().filter(|o| o.kind == "VirtualService") {
        for (path, d) in destinations(vs) {
            let (Some(host), Some(subset)) = (
                d.get("host").and_then(Value::as_str),
                d.get("subset").and_then(Value::as_str),
            ) else {
                continue;
            };
            let fqdn = resolve_host(host, &vs.namespace);
            if defined.get(&fqdn).is_some_and(|s| s.contains(subset)) {
                continue;
            }
            out.push(Finding {
                code: "IST0101",
                level: Level::Error,
                cluster: c.name.clone(),
                object: object_name("VirtualService", &vs.namespace, &vs.name),
                path: format!("{path}.subset"),
                message: format!(
                    "Referenced host+subset in destinationrule not found: \"{host}+{subset}\""
                ),
                hint: format!(
                    "define subset {subset} in a DestinationRule for {fqdn}, or route without it"
                ),
            });
        }
    }
}

/// IST0173: a DestinationRule subset whose labels (with the Service's selector) select no pod
/// (istioctl's destinationrule.SubsetSelectPodAnalyzer).
pub(super) fn subsets_select_pods(c: &ClusterView, out: &mut Vec<Finding>) {
    for dr in c.istio.iter().filter(|o| o.kind == "DestinationRule") {
        let Some(host) = dr.spec.get("host").and_then(Value::as_str) else {
            continue;
        };
        let fqdn = resolve_host(host, &dr.namespace);
        // only hosts that are Services of this cluster (a ServiceEntry host has no pods)
        let Some(svc) = c
            .services
            .iter()
            .find(|s| format!("{}.{}.svc.cluster.local", s.name, s.namespace) == fqdn)
        else {
            continue;
        };
        for (i, s) in super::items(&dr.spec, "subsets").enumerate() {
            let labels = json_labels(s.get("labels"));
            let selects = c.pods.iter().any(|p| {
                p.namespace() == svc.namespace
                    && labels_match(&svc.raw.selector, p.labels())
                    && labels_match(&labels, p.labels())
            });
            if selects {
                continue;
            }
            let name = s.get("name").and_then(Value::as_str).unwrap_or("");
            out.push(Finding {
                code: "IST0173",
                level: Level::Warning,
                cluster: c.name.clone(),
                object: object_name("DestinationRule", &dr.namespace, &dr.name),
                path: format!("spec.subsets[{i}]"),
                message: format!(
                    "The Subset {name} defined in the DestinationRule does not select any pods, which may lead to 503 UH (NoHealthyUpstream)"
                ),
                hint: format!(
                    "no pod of {}/{} carries the subset's labels: fix the labels or the workloads",
                    svc.namespace, svc.name
                ),
            });
        }
    }
}
