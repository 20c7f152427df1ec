//! Sidecar resources and the workloads they select (istioctl's sidecar.SelectorAnalyzer).

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
    // IST0110: a pod selected by two sidecars
    let mut conflicting: BTreeSet<usize> = BTreeSet::new();
    for v in selected_by.values().filter(|v| v.len() > 1) {
        conflicting.extend(v.iter().copied());
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
