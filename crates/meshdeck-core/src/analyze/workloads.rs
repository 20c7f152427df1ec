//! Deployments behind several Services (istioctl's deployment.MultiServiceAnalyzer): one port
//! number with two protocols (IST0116), or one container port behind two service ports
//! (IST0137). Only workloads in the mesh: an injected namespace, not opted out.

use super::{Finding, Level, object_name};
use crate::model::ClusterView;
use crate::translate::index::port_protocol;
use std::collections::{BTreeMap, BTreeSet};

pub(super) fn multi_service(c: &ClusterView, out: &mut Vec<Finding>) {
    let injected: BTreeSet<&str> = c
        .namespaces
        .iter()
        .filter(|n| {
            n.labels.get("istio-injection").map(String::as_str) == Some("enabled")
                || n.labels.contains_key("istio.io/rev")
        })
        .map(|n| n.name.as_str())
        .collect();
    // the services backing each workload name, from the derived rows (each service names the
    // workloads its selector matches), checked again below against the workload's own labels
    let mut by_workload: std::collections::HashMap<(&str, &str), Vec<&crate::model::Service>> =
        std::collections::HashMap::new();
    for s in &c.services {
        for w in &s.workloads {
            by_workload
                .entry((s.namespace.as_str(), w.as_str()))
                .or_default()
                .push(s);
        }
    }
    for w in &c.workloads {
        if w.kind != crate::model::raw::WorkloadKind::Deployment
            || w.inject_off
            || !injected.contains(w.namespace.as_str())
        {
            continue;
        }
        let services: Vec<&crate::model::Service> = by_workload
            .get(&(w.namespace.as_str(), w.name.as_str()))
            .into_iter()
            .flatten()
            .copied()
            .filter(|s| {
                !s.raw.selector.is_empty()
                    && s.raw
                        .selector
                        .iter()
                        .all(|(k, v)| w.labels.get(k) == Some(v))
            })
            .collect();
        if services.len() < 2 {
            continue;
        }
        // port number → protocols; container port → service ports
        let mut protocols: BTreeMap<i32, BTreeSet<&'static str>> = BTreeMap::new();
        let mut targets: BTreeMap<i32, BTreeSet<i32>> = BTreeMap::new();
        for s in &services {
            for p in &s.raw.ports {
                protocols.entry(p.port).or_default().insert(port_protocol(
                    &p.name,
                    p.app_protocol.as_deref(),
                    &p.protocol,
                ));
                targets
                    .entry(p.target_port.unwrap_or(p.port))
                    .or_default()
                    .insert(p.port);
            }
        }
        let names: Vec<String> = services.iter().map(|s| s.name.clone()).collect();
        let object = object_name("Deployment", &w.namespace, &w.name);
        if let Some((port, _)) = protocols.iter().find(|(_, p)| p.len() > 1) {
            out.push(Finding {
                code: "IST0116",
                level: Level::Warning,
                cluster: c.name.clone(),
                object: object.clone(),
                path: "spec.template.metadata.labels".into(),
                message: format!(
                    "This deployment {} is associated with multiple services using port {port} but different protocols: {}",
                    w.name,
                    names.join(",")
                ),
                hint: "give the port one protocol in every Service that selects the workload".into(),
            });
        }
        if let Some((target, ports)) = targets.iter().find(|(_, p)| p.len() > 1) {
            out.push(Finding {
                code: "IST0137",
                level: Level::Warning,
                cluster: c.name.clone(),
                object,
                path: "spec.template.spec.containers.ports".into(),
                message: format!(
                    "This deployment {} has container port {target} served by several service ports: {}",
                    w.name,
                    ports.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
                ),
                hint: "serve one container port through one service port".into(),
            });
        }
    }
}
