//! Sidecar resources and the workloads they select (istioctl's sidecar.SelectorAnalyzer):
//! IST0101 selects nothing, IST0110 two select one pod, IST0111 two without a selector in a
//! namespace, IST0167 a Sidecar for ambient workloads or an ambient namespace.

use super::{Finding, Level, json_labels, labels_match, labels_text, object_name};
use crate::model::ClusterView;
use std::collections::{BTreeMap, BTreeSet};

pub(super) fn selectors(c: &ClusterView, out: &mut Vec<Finding>) {
    let sidecars: Vec<_> = c.istio.iter().filter(|o| o.kind == "Sidecar").collect();
    // pod (ns, name) → the sidecars with a selector that select it
    let mut selected_by: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    let mut without: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in sidecars.iter().enumerate() {
        let labels = json_labels(s.spec.pointer("/workloadSelector/labels"));
        if labels.is_empty() {
            without.entry(s.namespace.as_str()).or_default().push(i);
            continue;
        }
        let mut any = false;
        for p in c.pods.iter().filter(|p| p.namespace() == s.namespace) {
            if labels_match(&labels, p.labels()) {
                any = true;
                selected_by
                    .entry((p.namespace(), p.name()))
                    .or_default()
                    .push(i);
            }
        }
        if !any {
            out.push(Finding {
                code: "IST0101",
                level: Level::Error,
                cluster: c.name.clone(),
                object: object_name("Sidecar", &s.namespace, &s.name),
                path: "spec.workloadSelector.labels".into(),
                message: format!(
                    "Referenced selector not found: \"{}\"",
                    labels_text(&labels)
                ),
                hint: format!("no pod in namespace {} has these labels", s.namespace),
            });
        }
    }
    // IST0167: a Sidecar for workloads in ambient mode (no sidecar to configure)
    let ambient_pods: BTreeSet<(&str, &str)> = c
        .pods
        .iter()
        .filter(|p| p.raw.ambient)
        .map(|p| (p.namespace(), p.name()))
        .collect();
    let mut ineffective: BTreeMap<usize, &str> = BTreeMap::new();
    for (pod, v) in &selected_by {
        if ambient_pods.contains(pod) {
            for &i in v {
                ineffective
                    .entry(i)
                    .or_insert("selected workload is in ambient mode, the policy has no impact");
            }
        }
    }
    let ambient_ns: BTreeSet<&str> = c
        .namespaces
        .iter()
        .filter(|ns| {
            let l = &ns.labels;
            l.get("istio.io/dataplane-mode").map(String::as_str) == Some("ambient")
                && !l.contains_key("istio.io/rev")
                && l.get("istio-injection").map(String::as_str) != Some("enabled")
        })
        .map(|ns| ns.name.as_str())
        .collect();
    without.retain(|ns, v| {
        if !ambient_ns.contains(ns) {
            return true;
        }
        for &i in v.iter() {
            ineffective
                .entry(i)
                .or_insert("namespace is in ambient mode, the policy has no impact");
        }
        false
    });
    for (&i, why) in &ineffective {
        let s = sidecars[i];
        out.push(Finding {
            code: "IST0167",
            level: Level::Warning,
            cluster: c.name.clone(),
            object: object_name("Sidecar", &s.namespace, &s.name),
            path: "spec".into(),
            message: format!("The policy has no impact: {why}."),
            hint: "remove it: ambient workloads have no sidecar (configure their waypoint instead)"
                .into(),
        });
    }
    // IST0110: a pod selected by two sidecars (not in ambient mode)
    let mut conflicting: BTreeSet<usize> = BTreeSet::new();
    for (pod, v) in selected_by.iter().filter(|(_, v)| v.len() > 1) {
        if !ambient_pods.contains(pod) {
            conflicting.extend(v.iter().copied());
        }
    }
    for i in conflicting {
        let s = sidecars[i];
        out.push(Finding {
            code: "IST0110",
            level: Level::Error,
            cluster: c.name.clone(),
            object: object_name("Sidecar", &s.namespace, &s.name),
            path: "spec.workloadSelector".into(),
            message: "Selector selects a workload that another Sidecar selects too: which one applies is undefined".into(),
            hint: "make the Sidecars' selectors select disjoint workloads".into(),
        });
    }
    // IST0111: several sidecars without a selector in one namespace
    for (_, v) in without.iter().filter(|(_, v)| v.len() > 1) {
        for &i in v {
            let s = sidecars[i];
            out.push(Finding {
                code: "IST0111",
                level: Level::Error,
                cluster: c.name.clone(),
                object: object_name("Sidecar", &s.namespace, &s.name),
                path: "spec".into(),
                message: "This Sidecar has no workload selector, and neither has another one in its namespace: which one applies is undefined".into(),
                hint: "keep one Sidecar without a selector per namespace".into(),
            });
        }
    }
}
