//! VirtualServices bound to the mesh gateway that claim the same host (istioctl's
//! virtualservice.ConflictingMeshGatewayHostsAnalyzer, IST0109).

use super::{Finding, Level, object_name, resolve_host};
use crate::model::ClusterView;
use crate::model::raw::RawObject;
use std::collections::{BTreeMap, BTreeSet};

/// Where an object is visible: None = every namespace.
fn visible(o: &RawObject) -> Option<BTreeSet<String>> {
    let list: Vec<&str> = super::strings(&o.spec, "exportTo");
    if list.is_empty() || list.contains(&"*") {
        return None;
    }
    Some(
        list.iter()
            .map(|n| {
                if *n == "." {
                    o.namespace.clone()
                } else {
                    n.to_string()
                }
            })
            .collect(),
    )
}

fn overlap(a: &Option<BTreeSet<String>>, b: &Option<BTreeSet<String>>) -> bool {
    match (a, b) {
        (None, _) | (_, None) => true,
        (Some(x), Some(y)) => !x.is_disjoint(y),
    }
}

pub(super) fn conflicting_mesh_hosts(c: &ClusterView, out: &mut Vec<Finding>) {
    // host → the mesh-bound VirtualServices claiming it
    let mut by_host: BTreeMap<String, Vec<&RawObject>> = BTreeMap::new();
    for vs in c.istio.iter().filter(|o| o.kind == "VirtualService") {
        let gateways: Vec<&str> = super::strings(&vs.spec, "gateways");
        if !gateways.is_empty() && !gateways.contains(&"mesh") {
            continue;
        }
        for h in super::items(&vs.spec, "hosts") {
            if let Some(h) = h.as_str() {
                by_host
                    .entry(resolve_host(h, &vs.namespace))
                    .or_default()
                    .push(vs);
            }
        }
    }
    let mut flagged: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for (host, list) in &by_host {
        for (i, a) in list.iter().enumerate() {
            let others: Vec<String> = list
                .iter()
                .enumerate()
                .filter(|(j, b)| *j != i && overlap(&visible(a), &visible(b)))
                .map(|(_, b)| format!("{}/{}", b.namespace, b.name))
                .collect();
            if !others.is_empty() {
                let key = format!("{}/{}", a.namespace, a.name);
                flagged.entry(key).or_insert_with(|| (host.clone(), others));
            }
        }
    }
    for (vs, (host, others)) in flagged {
        let (ns, name) = vs.split_once('/').unwrap_or(("", &vs));
        out.push(Finding {
            code: "IST0109",
            level: Level::Error,
            cluster: c.name.clone(),
            object: object_name("VirtualService", ns, name),
            path: "spec.hosts".into(),
            message: format!(
                "The VirtualServices {vs},{} associated with mesh gateway define the same host {host} which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.",
                others.join(",")
            ),
            hint: "merge them into one VirtualService per host, or narrow exportTo".into(),
        });
    }
}
