//! AuthorizationPolicies that select nothing, or name namespaces that do not exist
//! (istioctl's auth.AuthorizationPoliciesAnalyzer).

use super::{Finding, Level, json_labels, labels_match, labels_text, object_name};
use crate::model::ClusterView;
use serde_json::Value;
use std::collections::BTreeSet;

/// Istio's root namespace (no mesh config is read for it here).
const ROOT: &str = "istio-system";

/// Whether a namespace pattern (`*`, `prefix*`, `*suffix`, exact) matches a name.
fn matches(pattern: &str, name: &str) -> bool {
    if pattern == "*" {
        true
    } else if let Some(p) = pattern.strip_suffix('*') {
        name.starts_with(p)
    } else if let Some(s) = pattern.strip_prefix('*') {
        name.ends_with(s)
    } else {
        pattern == name
    }
}

pub(super) fn authorization_policies(c: &ClusterView, out: &mut Vec<Finding>) {
    let namespaces: BTreeSet<&str> = c
        .namespaces
        .iter()
        .map(|n| n.name.as_str())
        .chain(c.pods.iter().map(|p| p.namespace()))
        .collect();
    for ap in c.istio.iter().filter(|o| o.kind == "AuthorizationPolicy") {
        let object = object_name("AuthorizationPolicy", &ap.namespace, &ap.name);
        // IST0127: the policy applies to no workload
        let selector = json_labels(ap.spec.pointer("/selector/matchLabels"));
        let mesh_wide = ap.namespace == ROOT;
        let targets_refs =
            ap.spec.get("targetRef").is_some() || ap.spec.get("targetRefs").is_some();
        // a mesh-wide policy without a selector applies to every workload; one bound by
        // targetRefs (waypoints) is not about pods
        let applies_to_all = mesh_wide && selector.is_empty();
        if !(targets_refs || applies_to_all) {
            let any = c.pods.iter().any(|p| {
                (mesh_wide || p.namespace() == ap.namespace) && labels_match(&selector, p.labels())
            });
            if !any {
                out.push(Finding {
                    code: "IST0127",
                    level: Level::Error,
                    cluster: c.name.clone(),
                    object: object.clone(),
                    path: "spec.selector".into(),
                    message: format!(
                        "No matching workloads for this resource with the following labels: {}",
                        labels_text(&selector)
                    ),
                    hint: if selector.is_empty() {
                        format!(
                            "namespace {} has no pods: the policy guards nothing",
                            ap.namespace
                        )
                    } else {
                        "no pod carries these labels: fix the selector or the workload's labels"
                            .into()
                    },
                });
            }
        }
        // IST0101: a source namespace (or notNamespace) pattern that matches no namespace
        for (i, rule) in super::items(&ap.spec, "rules").enumerate() {
            for (j, from) in super::items(rule, "from").enumerate() {
                for field in ["namespaces", "notNamespaces"] {
                    let list = from
                        .pointer(&format!("/source/{field}"))
                        .and_then(Value::as_array);
                    for (k, ns) in list.into_iter().flatten().enumerate() {
                        let Some(ns) = ns.as_str() else { continue };
                        if namespaces.iter().any(|n| matches(ns, n)) {
                            continue;
                        }
                        out.push(Finding {
                            code: "IST0101",
                            level: Level::Error,
                            cluster: c.name.clone(),
                            object: object.clone(),
                            path: format!("spec.rules[{i}].from[{j}].source.{field}[{k}]"),
                            message: format!("Referenced namespace not found: \"{ns}\""),
                            hint: "no namespace of the cluster matches: a typo, or a namespace not created yet".into(),
                        });
                    }
                }
            }
        }
    }
}
