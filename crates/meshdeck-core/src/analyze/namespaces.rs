//! Namespaces and injection (istioctl's injection.Analyzer, the namespace half).

use super::{Finding, Level, object_name};
use crate::model::ClusterView;

/// Namespaces Istio never expects a sidecar in.
const SYSTEM: &[&str] = &[
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "local-path-storage",
    "istio-system",
];

pub(super) fn injection(c: &ClusterView, out: &mut Vec<Finding>) {
    for ns in &c.namespaces {
        if SYSTEM.contains(&ns.name.as_str()) {
            continue;
        }
        let l = &ns.labels;
        let legacy = l.get("istio-injection").map(String::as_str);
        let rev = l.contains_key("istio.io/rev");
        let ambient = l.get("istio.io/dataplane-mode").map(String::as_str) == Some("ambient");
        let object = object_name("Namespace", "", &ns.name);
        // IST0123: more than one way of saying how the namespace joins the mesh
        let ways = [legacy.is_some_and(|v| v != "disabled"), rev, ambient]
            .iter()
            .filter(|b| **b)
            .count();
        if ways > 1 {
            out.push(Finding {
                code: "IST0123",
                level: Level::Warning,
                cluster: c.name.clone(),
                object: object.clone(),
                path: "metadata.labels".into(),
                message: format!(
                    "The namespace has more than one injection setting (istio-injection, istio.io/rev, istio.io/dataplane-mode): which one wins is not what you expect. Run 'kubectl label namespace {} istio.io/rev-' or 'kubectl label namespace {} istio-injection-'",
                    ns.name, ns.name
                ),
                hint: "keep one of istio-injection, istio.io/rev, istio.io/dataplane-mode".into(),
            });
        }
        // IST0102: not in the mesh, and not said to stay out of it
        if legacy.is_none() && !rev && !ambient {
            out.push(Finding {
                code: "IST0102",
                level: Level::Info,
                cluster: c.name.clone(),
                object,
                path: "metadata.labels".into(),
                message: format!(
                    "The namespace is not enabled for Istio injection. Run 'kubectl label namespace {0} istio-injection=enabled' to enable it, or 'kubectl label namespace {0} istio-injection=disabled' to explicitly mark it as not needing injection.",
                    ns.name
                ),
                hint: "label it istio-injection=enabled, or =disabled to say it stays out".into(),
            });
        }
    }
}

/// IST0103, the pod half of istioctl's injection.Analyzer: a pod in an injected namespace
/// (`istio-injection=enabled` or `istio.io/rev`) without the Istio proxy, unless it stays out
/// on purpose (`sidecar.istio.io/inject: "false"`, label or annotation, or `hostNetwork`). A
/// pod the injector annotated has its proxy (also as a native sidecar, an init container).
pub(super) fn pods_missing_proxy(c: &ClusterView, out: &mut Vec<Finding>) {
    let injected: std::collections::HashSet<&str> = c
        .namespaces
        .iter()
        .filter(|ns| {
            let l = &ns.labels;
            l.contains_key("istio.io/rev")
                || l.get("istio-injection").map(String::as_str) == Some("enabled")
        })
        .map(|ns| ns.name.as_str())
        .collect();
    if injected.is_empty() {
        return;
    }
    for p in &c.pods {
        let raw = &p.raw;
        if !injected.contains(&*raw.namespace) || raw.opted_out || raw.ambient || raw.injected {
            continue;
        }
        if raw.containers.iter().any(|k| &*k.name == "istio-proxy") {
            continue;
        }
        out.push(Finding {
            code: "IST0103",
            level: Level::Warning,
            cluster: c.name.clone(),
            object: object_name("Pod", &raw.namespace, &raw.name),
            path: "spec.containers".into(),
            message: format!("The pod {} is missing the Istio proxy.", raw.name),
            hint: format!(
                "restart it so the injector adds the sidecar (kubectl rollout restart of its workload), or annotate it sidecar.istio.io/inject: \"false\" if it stays out of {}",
                raw.namespace
            ),
        });
    }
}
