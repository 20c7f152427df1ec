//! Findings no single-cluster tool can give: they compare clusters. meshdeck's own codes.
//!
//! - **MD0001** a federated host (`<svc>.<ns>.svc.<cluster>.<suffix>` in a ServiceEntry) whose
//!   cluster has no such Service: every request for it fails.
//! - **MD0002** one Service (namespace/name) with different ports in two clusters of one
//!   VirtualMesh (stored in the fleet): federated clients get the ports of the cluster they
//!   were federated from.
//! - **MD0003** a route to a federated host that no ServiceEntry of the route's cluster defines
//!   (a traffic shift to a cluster that is not federated here): 503s.

use super::{Finding, Level, object_name};
use crate::model::Snapshot;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// `(service, namespace, cluster)` of a federated host naming a cluster of the fleet.
fn federated<'a>(host: &'a str, clusters: &BTreeSet<&str>) -> Option<(&'a str, &'a str, &'a str)> {
    let mut parts = host.splitn(5, '.');
    let (svc, ns, tag, cluster, _suffix) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    (tag == "svc" && clusters.contains(cluster)).then_some((svc, ns, cluster))
}

pub(super) fn cross_cluster(snap: &Snapshot, out: &mut Vec<Finding>) {
    let current: Vec<&crate::model::ClusterView> = snap
        .clusters
        .iter()
        .map(|c| &**c)
        .filter(|c| c.state.is_current())
        .collect();
    let names: BTreeSet<&str> = snap.clusters.iter().map(|c| c.name.as_str()).collect();
    let has_service = |cluster: &str, ns: &str, name: &str| {
        snap.cluster(cluster).is_some_and(|c| {
            c.services
                .iter()
                .any(|s| s.namespace == ns && s.name == name)
        })
    };
    for c in &current {
        // MD0001
        let mut se_hosts: BTreeSet<&str> = BTreeSet::new();
        for se in c.istio.iter().filter(|o| o.kind == "ServiceEntry") {
            for (i, h) in super::items(&se.spec, "hosts").enumerate() {
                let Some(h) = h.as_str() else { continue };
                se_hosts.insert(h);
                let Some((svc, ns, home)) = federated(h, &names) else {
                    continue;
                };
                // a cluster without current data says nothing either way
                let known = snap.cluster(home).is_some_and(|x| x.state.is_current());
                if known && !has_service(home, ns, svc) {
                    out.push(Finding {
                        code: "MD0001",
                        level: Level::Error,
                        cluster: c.name.clone(),
                        object: object_name("ServiceEntry", &se.namespace, &se.name),
                        path: format!("spec.hosts[{i}]"),
                        message: format!(
                            "federated host {h} names service {ns}/{svc} in cluster {home}, which has no such service: every request for it fails"
                        ),
                        hint: format!("deploy {ns}/{svc} in {home}, or stop federating it"),
                    });
                }
            }
        }
        // MD0003 (routes only: a mirror's failures are not the caller's)
        for vs in c.istio.iter().filter(|o| o.kind == "VirtualService") {
            for (path, d) in super::subsets::destinations(vs) {
                if !path.contains("].route[") {
                    continue;
                }
                let Some(h) = d.get("host").and_then(Value::as_str) else {
                    continue;
                };
                let Some((_, _, home)) = federated(h, &names) else {
                    continue;
                };
                if home == c.name || se_hosts.contains(h) {
                    continue;
                }
                out.push(Finding {
                    code: "MD0003",
                    level: Level::Error,
                    cluster: c.name.clone(),
                    object: object_name("VirtualService", &vs.namespace, &vs.name),
                    path: format!("{path}.host"),
                    message: format!(
                        "routes to {h} in cluster {home}, but no ServiceEntry in {} defines that host: {home} is not federated here, and the share of traffic sent there fails",
                        c.name
                    ),
                    hint: format!("federate {home} into {} (a VirtualMesh with both meshes), or route locally", c.name),
                });
            }
        }
    }
    // MD0002: within each stored VirtualMesh
    let mut meshes_of_vm: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in &snap.clusters {
        for vm in c.policies.iter().filter(|o| o.kind == "VirtualMesh") {
            let members = meshes_of_vm
                .entry(format!("{}/{}", vm.namespace, vm.name))
                .or_default();
            for m in super::items(&vm.spec, "meshes") {
                if let Some(n) = m.get("name").and_then(Value::as_str) {
                    members.insert(n.to_string());
                }
            }
        }
    }
    for (vm, meshes) in &meshes_of_vm {
        let members: Vec<&crate::model::ClusterView> = current
            .iter()
            .copied()
            .filter(|c| c.meshes.iter().any(|m| meshes.contains(&m.name)))
            .collect();
        // (ns, name) → cluster → ports
        let mut ports: BTreeMap<(&str, &str), BTreeMap<&str, Vec<String>>> = BTreeMap::new();
        for c in &members {
            for s in c.services.iter().filter(|s| s.in_mesh) {
                ports
                    .entry((s.namespace.as_str(), s.name.as_str()))
                    .or_default()
                    .insert(c.name.as_str(), s.ports.clone());
            }
        }
        for ((ns, name), by) in ports {
            let distinct: BTreeSet<&Vec<String>> = by.values().collect();
            if distinct.len() < 2 {
                continue;
            }
            let how: Vec<String> = by
                .iter()
                .map(|(c, p)| format!("{c}: {}", p.join(",")))
                .collect();
            for cluster in by.keys() {
                out.push(Finding {
                    code: "MD0002",
                    level: Level::Warning,
                    cluster: cluster.to_string(),
                    object: object_name("Service", ns, name),
                    path: "spec.ports".into(),
                    message: format!(
                        "{ns}/{name} has different ports in the clusters of VirtualMesh {vm} ({}): federated clients see only one set",
                        how.join("; ")
                    ),
                    hint: "give the service the same ports in every cluster of the mesh".into(),
                });
            }
        }
    }
}
