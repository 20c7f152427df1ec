//! `virtualservice.DestinationHostAnalyzer`: every host a VirtualService routes or mirrors to
//! must be a Service or a ServiceEntry host visible from the VirtualService's namespace (its
//! `exportTo`, the Service's `networking.istio.io/exportTo`, wildcard ServiceEntry hosts), on a
//! port it has (IST0101), and a destination of a service with several ports must name one
//! (IST0112). As istioctl's analyzer does it, down to its messages.

use super::{Finding, Level, object_name};
use crate::model::ClusterView;
use serde_json::Value;
use std::collections::HashMap;

const ALL: &str = "*";

/// istioctl's `ConvertHostToFQDN`: [`super::resolve_host`], but a wildcard stays as it is.
fn fqdn(namespace: &str, host: &str) -> String {
    if host.starts_with('*') {
        host.to_string()
    } else {
        super::resolve_host(host, namespace)
    }
}

/// (scope, host) → the ports of what defines it (None: a ServiceEntry without ports).
type Hosts = HashMap<(String, String), Vec<u32>>;

fn known_hosts(c: &ClusterView) -> Hosts {
    let mut out: Hosts = HashMap::new();
    for se in c.istio.iter().filter(|o| o.kind == "ServiceEntry") {
        let ports: Vec<u32> = super::items(&se.spec, "ports")
            .filter_map(|p| p.get("number").and_then(Value::as_u64))
            .map(|n| n as u32)
            .collect();
        let export = super::strings(&se.spec, "exportTo");
        let scopes: Vec<String> = if export.is_empty() || export.contains(&ALL) {
            vec![ALL.into()]
        } else {
            export
                .iter()
                .map(|e| {
                    if *e == "." {
                        se.namespace.clone()
                    } else {
                        e.to_string()
                    }
                })
                .collect()
        };
        for h in super::strings(&se.spec, "hosts") {
            for s in &scopes {
                out.insert((s.clone(), fqdn(&se.namespace, h)), ports.clone());
            }
        }
    }
    for s in &c.services {
        let raw = &s.raw;
        let ports: Vec<u32> = raw.ports.iter().map(|p| p.port.max(0) as u32).collect();
        let host = fqdn(&raw.namespace, &raw.name);
        for ns in raw.export_to.as_deref().unwrap_or(ALL).split(',') {
            let ns = ns.trim();
            let ns = if ns == "." {
                raw.namespace.as_str()
            } else {
                ns
            };
            out.insert((ns.to_string(), host.clone()), ports.clone());
        }
    }
    out
}

/// istioctl's `GetDestinationHost`: what defines `host` for a VirtualService in `ns`.
fn lookup<'a>(hosts: &'a Hosts, ns: &str, export: &[&str], host: &str) -> Option<&'a Vec<u32>> {
    let full = fqdn(ns, host);
    if let Some(p) = hosts.get(&(ALL.to_string(), full.clone())) {
        return Some(p);
    }
    if export.is_empty() {
        if let Some(p) = hosts.get(&(ns.to_string(), full.clone())) {
            return Some(p);
        }
    } else {
        for e in export {
            let e = if *e == "." { ns } else { e };
            if let Some(p) = hosts.get(&(e.to_string(), full.clone())) {
                return Some(p);
            }
        }
    }
    // wildcard ServiceEntry hosts visible here (the costly check last, as istioctl)
    let bare = full.trim_start_matches('*');
    let mut wild: Vec<(&(String, String), &Vec<u32>)> = hosts
        .iter()
        .filter(|((scope, h), _)| h.starts_with('*') && (scope == ALL || scope == ns))
        .filter(|((_, h), _)| bare.ends_with(h.trim_start_matches('*')))
        .collect();
    wild.sort_by(|a, b| a.0.cmp(b.0)); // deterministic
    wild.first().map(|(_, p)| *p)
}

pub(super) fn destination_hosts(c: &ClusterView, out: &mut Vec<Finding>) {
    let vss: Vec<_> = c
        .istio
        .iter()
        .filter(|o| o.kind == "VirtualService")
        .collect();
    if vss.is_empty() {
        return;
    }
    let hosts = known_hosts(c);
    for vs in vss {
        let export = super::strings(&vs.spec, "exportTo");
        let object = object_name("VirtualService", &vs.namespace, &vs.name);
        let mut report = |code: &'static str, path: String, message: String, hint: String| {
            out.push(Finding {
                code,
                level: Level::Error,
                cluster: c.name.clone(),
                object: object.clone(),
                path,
                message,
                hint,
            })
        };
        for (path, d) in super::subsets::destinations(vs) {
            let what = if path.contains(".mirror") {
                "mirror host"
            } else {
                "host"
            };
            let host = d.get("host").and_then(Value::as_str).unwrap_or("");
            let port = d
                .get("port")
                .and_then(|p| p.get("number"))
                .and_then(Value::as_u64);
            let Some(ports) = lookup(&hosts, &vs.namespace, &export, host) else {
                report(
                    "IST0101",
                    format!("{path}.host"),
                    format!("Referenced {what} not found: {host:?}"),
                    format!(
                        "deploy a Service or ServiceEntry for {host:?} visible from namespace {} (exportTo), or fix the host",
                        vs.namespace
                    ),
                );
                continue;
            };
            match port {
                None if ports.len() > 1 => {
                    let list: Vec<String> = ports.iter().map(u32::to_string).collect();
                    report(
                        "IST0112",
                        format!("{path}.port"),
                        format!(
                            "This VirtualService routes to a service {host:?} that exposes multiple ports [{}]. Specifying a port in the destination is required to disambiguate.",
                            list.join(" ")
                        ),
                        format!("set port.number to one of {}", list.join(", ")),
                    );
                }
                Some(p) if !ports.contains(&(p as u32)) => {
                    report(
                        "IST0101",
                        format!("{path}.port.number"),
                        format!("Referenced host:port not found: \"{host}:{p}\""),
                        format!(
                            "{host} has no port {p}: use one of its ports or add it to the service"
                        ),
                    );
                }
                _ => {}
            }
        }
    }
}
