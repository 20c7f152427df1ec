//! What the translator needs to know of the fleet, indexed once per snapshot: destinations
//! (Services in clusters that have a mesh), meshes with their trust domain and gateway, and
//! workloads. Building it is the expensive part; a `Translator` keeps it across policy edits.

use crate::model::{Mesh, Service, Snapshot, Workload};
use crate::policy::select;
use crate::policy::{DestinationSelector, KubeMatcher};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Dest {
    pub cluster: Arc<str>,
    pub namespace: String,
    pub name: String,
    pub labels: Arc<BTreeMap<String, String>>,
    pub selector: Arc<BTreeMap<String, String>>,
    pub in_mesh: bool,
    /// (name, number, Istio protocol, container port)
    pub ports: Vec<(String, u32, &'static str, u32)>,
    pub mesh: usize,
}

impl Dest {
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.cluster, self.namespace, self.name)
    }
    pub fn local_host(&self) -> String {
        format!("{}.{}.svc.cluster.local", self.name, self.namespace)
    }
    pub fn federated_host(&self, suffix: &str) -> String {
        format!(
            "{}.{}.svc.{}.{}",
            self.name, self.namespace, self.cluster, suffix
        )
    }
}

/// An ingress gateway of a cluster: a Service selecting `istio: ingressgateway` (or
/// `eastwestgateway`) workloads.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub namespace: String,
    pub name: String,
    pub selector: BTreeMap<String, String>,
    /// The external address (LoadBalancer status, else an external IP).
    pub address: Option<String>,
    /// The port named `tls`: (container port = its numeric targetPort, external port = the
    /// Service port, or its nodePort when there is no external address).
    pub tls: Option<(u32, u32)>,
}

#[derive(Debug, Clone)]
pub struct MeshInfo {
    /// `istiod-<ns>-<cluster>`
    pub name: String,
    pub cluster: Arc<str>,
    /// The root namespace (istiod's).
    pub namespace: String,
    pub trust_domain: String,
    /// Every ingress gateway of the mesh's cluster.
    pub gateways: Vec<Gateway>,
}

impl MeshInfo {
    /// The gateway federated traffic enters through, as Gloo found it: a gateway in the mesh's
    /// namespace with a port named `tls` (an east-west gateway first).
    pub fn federation_gateway(&self) -> Option<&Gateway> {
        let ok = |g: &&Gateway| g.namespace == self.namespace && g.tls.is_some();
        self.gateways
            .iter()
            .filter(ok)
            .find(|g| g.selector.get("istio").map(String::as_str) == Some("eastwestgateway"))
            .or_else(|| self.gateways.iter().find(ok))
    }
}

#[derive(Debug, Clone)]
pub struct WorkloadInfo {
    pub cluster: Arc<str>,
    pub namespace: String,
    pub name: String,
    pub labels: Arc<BTreeMap<String, String>>,
    pub service_account: String,
}

#[derive(Debug, Default)]
pub struct Index {
    pub dests: Vec<Dest>,
    pub meshes: Vec<MeshInfo>,
    pub workloads: Vec<WorkloadInfo>,
    by_ref: HashMap<(String, String, String), usize>,
    by_ns: HashMap<String, Vec<usize>>,
    by_label: HashMap<(String, String), Vec<usize>>,
    by_cluster: HashMap<String, Vec<usize>>,
    mesh_by_name: HashMap<String, usize>,
    /// cluster → its (first) mesh
    mesh_of_cluster: HashMap<String, usize>,
    /// Every cluster of the snapshot and the namespaces seen in it (selectors are checked
    /// against them, whether or not the cluster has a mesh).
    pub namespaces: BTreeMap<String, std::collections::BTreeSet<String>>,
    /// cluster → the hosts its live Gateways pass TLS through for (`AUTO_PASSTHROUGH`
    /// servers: what an east-west gateway accepts from other clusters).
    pub passthrough: HashMap<String, Vec<String>>,
    /// The clusters' views, for what few passes read and most never do (a destination's pods).
    views: HashMap<String, Arc<crate::model::ClusterView>>,
}

/// Whether a Gateway host pattern (`*`, `*.global`, `ratings.global`) covers `host`.
pub fn host_covers(pattern: &str, host: &str) -> bool {
    let pattern = pattern.rsplit('/').next().unwrap_or(pattern); // `ns/host`
    match pattern.strip_prefix('*') {
        Some(suffix) => host.ends_with(suffix),
        None => pattern == host,
    }
}

/// The Istio protocol of a Service port, from appProtocol or the name's prefix (Istio's rule).
pub fn port_protocol(name: &str, app_protocol: Option<&str>, k8s_protocol: &str) -> &'static str {
    if k8s_protocol == "UDP" {
        return "UDP";
    }
    let p = app_protocol
        .unwrap_or_else(|| name.split('-').next().unwrap_or(""))
        .to_ascii_lowercase();
    match p.as_str() {
        "http" => "HTTP",
        "http2" | "h2c" => "HTTP2",
        "grpc" | "grpc-web" => "GRPC",
        "https" => "HTTPS",
        "tls" => "TLS",
        "mongo" => "MONGO",
        _ => "TCP",
    }
}

fn gateways_of(services: &[Arc<Service>]) -> Vec<Gateway> {
    services
        .iter()
        .filter(|s| {
            matches!(
                s.selector.get("istio").map(String::as_str),
                Some("ingressgateway" | "eastwestgateway")
            )
        })
        .map(|s| {
            let address = s.raw.external.clone();
            let tls = s.raw.ports.iter().find(|p| p.name == "tls").and_then(|p| {
                let container = u32::try_from(p.target_port?).ok()?;
                let external = match (&address, p.node_port) {
                    (None, Some(np)) => u32::try_from(np).ok()?,
                    _ => u32::try_from(p.port).ok()?,
                };
                Some((container, external))
            });
            Gateway {
                namespace: s.namespace.clone(),
                name: s.name.clone(),
                selector: (*s.selector).clone(),
                address,
                tls,
            }
        })
        .collect()
}

fn mesh_info(m: &Mesh, cluster: &Arc<str>, services: &[Arc<Service>]) -> MeshInfo {
    MeshInfo {
        name: m.name.clone(),
        cluster: cluster.clone(),
        namespace: m.namespace.clone(),
        trust_domain: m
            .trust_domain
            .clone()
            .unwrap_or_else(|| "cluster.local".into()),
        gateways: gateways_of(services),
    }
}

impl Index {
    pub fn new(snap: &Snapshot) -> Index {
        let mut ix = Index::default();
        for c in &snap.clusters {
            ix.views.insert(c.name.clone(), c.clone());
            let seen = ix.namespaces.entry(c.name.clone()).or_default();
            seen.extend(c.namespaces.iter().map(|n| n.name.clone()));
            // a user who may not list namespaces still sees those of its services
            seen.extend(c.services.iter().map(|s| s.namespace.clone()));
            let through: Vec<String> = c
                .istio
                .iter()
                .filter(|o| o.kind == "Gateway")
                .flat_map(|o| {
                    o.spec
                        .get("servers")
                        .and_then(|v| v.as_array())
                        .into_iter()
                        .flatten()
                })
                .filter(|sv| {
                    sv.pointer("/tls/mode").and_then(|m| m.as_str()) == Some("AUTO_PASSTHROUGH")
                })
                .flat_map(|sv| {
                    sv.get("hosts")
                        .and_then(|h| h.as_array())
                        .into_iter()
                        .flatten()
                })
                .filter_map(|h| h.as_str().map(str::to_string))
                .collect();
            if !through.is_empty() {
                ix.passthrough.insert(c.name.clone(), through);
            }
            if c.meshes.is_empty() {
                continue;
            }
            let cluster: Arc<str> = Arc::from(c.name.as_str());
            let first_mesh = ix.meshes.len();
            for m in &c.meshes {
                ix.mesh_by_name.insert(m.name.clone(), ix.meshes.len());
                ix.meshes.push(mesh_info(m, &cluster, &c.services));
            }
            ix.mesh_of_cluster.insert(c.name.clone(), first_mesh);
            for s in &c.services {
                let i = ix.dests.len();
                ix.dests.push(Dest {
                    cluster: cluster.clone(),
                    namespace: s.namespace.clone(),
                    name: s.name.clone(),
                    labels: s.labels.clone(),
                    selector: s.selector.clone(),
                    in_mesh: s.in_mesh,
                    ports: s
                        .raw
                        .ports
                        .iter()
                        .map(|p| {
                            (
                                p.name.clone(),
                                p.port.max(0) as u32,
                                port_protocol(&p.name, p.app_protocol.as_deref(), &p.protocol),
                                p.target_port.unwrap_or(p.port).max(0) as u32,
                            )
                        })
                        .collect(),
                    mesh: first_mesh,
                });
                ix.by_ref
                    .insert((c.name.clone(), s.namespace.clone(), s.name.clone()), i);
                ix.by_ns.entry(s.namespace.clone()).or_default().push(i);
                ix.by_cluster.entry(c.name.clone()).or_default().push(i);
                for (k, v) in s.labels.iter() {
                    ix.by_label
                        .entry((k.clone(), v.clone()))
                        .or_default()
                        .push(i);
                }
            }
            for w in &c.workloads {
                ix.workloads.push(workload_info(w, &cluster));
            }
        }
        ix
    }

    /// The pods behind a destination, with an IP (federated endpoints carry their labels, so
    /// client-side subsets select them), in the view's order. Read when a pass needs them (a
    /// federated host, a locality), not for every destination on every build.
    pub fn pods(&self, d: &Dest) -> Vec<Arc<crate::model::raw::RawPod>> {
        let Some(c) = self.views.get(&*d.cluster) else {
            return Vec::new();
        };
        if d.selector.is_empty() {
            return Vec::new();
        }
        c.pods_in(&d.namespace)
            .iter()
            .filter(|p| {
                !p.ip().is_empty() && d.selector.iter().all(|(k, v)| p.labels().get(k) == Some(v))
            })
            .map(|p| p.raw.clone())
            .collect()
    }

    pub fn dest(&self, cluster: &str, namespace: &str, name: &str) -> Option<usize> {
        self.by_ref
            .get(&(cluster.to_string(), namespace.to_string(), name.to_string()))
            .copied()
    }

    pub fn mesh(&self, name: &str) -> Option<usize> {
        self.mesh_by_name.get(name).copied()
    }

    pub fn mesh_of_cluster(&self, cluster: &str) -> Option<usize> {
        self.mesh_of_cluster.get(cluster).copied()
    }

    /// The destinations a selector list picks, in index order (empty list: all).
    pub fn select(&self, sels: &[DestinationSelector]) -> Vec<usize> {
        if sels.is_empty() {
            return (0..self.dests.len()).collect();
        }
        let mut out: Vec<usize> = Vec::new();
        for s in sels {
            if let Some(r) = &s.kube_service_refs {
                out.extend(
                    r.services
                        .iter()
                        .filter_map(|x| self.dest(&x.cluster_name, &x.namespace, &x.name)),
                );
            } else if let Some(m) = &s.kube_service_matcher {
                self.candidates(m, &mut out);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    fn candidates(&self, m: &KubeMatcher, out: &mut Vec<usize>) {
        let check = |i: &usize| {
            let d = &self.dests[*i];
            m.matches(&d.cluster, &d.namespace, &d.labels)
        };
        if !m.namespaces.is_empty() {
            for ns in &m.namespaces {
                if let Some(v) = self.by_ns.get(ns) {
                    out.extend(v.iter().filter(|i| check(i)));
                }
            }
        } else if let Some((k, v)) = m.labels.iter().next() {
            if let Some(v) = self.by_label.get(&(k.clone(), v.clone())) {
                out.extend(v.iter().filter(|i| check(i)));
            }
        } else if !m.clusters.is_empty() {
            for c in &m.clusters {
                if let Some(v) = self.by_cluster.get(c) {
                    out.extend(v.iter().filter(|i| check(i)));
                }
            }
        } else {
            out.extend(0..self.dests.len());
        }
    }

    /// Workloads a source selector picks (empty list: all), as `cluster/ns/name`.
    pub fn select_workloads(&self, sels: &[crate::policy::WorkloadSelector]) -> Vec<usize> {
        (0..self.workloads.len())
            .filter(|&i| {
                let w = &self.workloads[i];
                select::workload_selected(sels, &w.cluster, &w.namespace, &w.labels)
            })
            .collect()
    }
}

fn workload_info(w: &Workload, cluster: &Arc<str>) -> WorkloadInfo {
    WorkloadInfo {
        cluster: cluster.clone(),
        namespace: w.namespace.clone(),
        name: w.name.clone(),
        labels: w.labels.clone(),
        service_account: w.service_account.clone(),
    }
}
