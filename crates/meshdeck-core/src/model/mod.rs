//! The fleet snapshot: clusters, meshes, services (destinations), workloads, pods and their
//! health, derived from trimmed raw objects. Pure: no client, no clock (time comes in as data),
//! no terminal. Each cluster derives on its own, so a change in one cluster re-derives only it.

pub mod health;
pub mod ingest;
pub mod raw;
pub mod slim;

pub use health::{Health, Level};
use raw::*;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// How meshdeck's connection to a cluster stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum ConnState {
    Connecting,
    Syncing {
        synced: usize,
        total: usize,
    },
    Synced,
    /// Reached before, failing now: the data shown is the last known.
    Stale {
        since: String,
        error: String,
    },
    Unreachable {
        since: String,
        error: String,
    },
    AuthError {
        error: String,
    },
    /// Synced, for what this session may see: some kinds or namespaces are forbidden (what,
    /// in a line). The rows are current; they are not the whole cluster.
    Partial {
        forbidden: String,
    },
    /// A credential plugin is running and has given no credentials yet.
    WaitingForCredentials {
        plugin: String,
    },
}

impl ConnState {
    pub fn word(&self) -> &'static str {
        match self {
            ConnState::Connecting => "connecting",
            ConnState::Syncing { .. } => "syncing",
            ConnState::Synced => "synced",
            ConnState::Stale { .. } => "stale",
            ConnState::Unreachable { .. } => "unreachable",
            ConnState::AuthError { .. } => "auth-error",
            ConnState::Partial { .. } => "partial",
            ConnState::WaitingForCredentials { .. } => "waiting",
        }
    }
    /// The rows are current (everything, or everything this session may see).
    pub fn is_current(&self) -> bool {
        matches!(self, ConnState::Synced | ConnState::Partial { .. })
    }
    pub fn is_stale(&self) -> bool {
        matches!(
            self,
            ConnState::Stale { .. } | ConnState::Unreachable { .. } | ConnState::AuthError { .. }
        )
    }
    pub fn error(&self) -> Option<&str> {
        match self {
            ConnState::Stale { error, .. }
            | ConnState::Unreachable { error, .. }
            | ConnState::AuthError { error } => Some(error),
            ConnState::Partial { forbidden } => Some(forbidden),
            ConnState::WaitingForCredentials { plugin } => Some(plugin),
            _ => None,
        }
    }
}

/// Everything one cluster's cache holds, as the fleet hands it to the model.
#[derive(Debug, Clone, Default)]
pub struct ClusterInput {
    pub name: String,
    pub context: String,
    /// Other contexts that reach the same API server.
    pub aliases: Vec<String>,
    pub server: String,
    pub user: String,
    pub version: Option<String>,
    pub latency_ms: Option<u64>,
    pub namespaces: Vec<Arc<RawNamespace>>,
    pub services: Vec<Arc<RawService>>,
    pub endpoints: Vec<Arc<RawEndpoints>>,
    pub pods: Vec<Arc<RawPod>>,
    pub workloads: Vec<Arc<RawWorkload>>,
    pub replicasets: Vec<Arc<RawReplicaSet>>,
    pub configmaps: Vec<Arc<RawConfigMap>>,
    /// Istio objects (VirtualService, DestinationRule, ...).
    pub istio: Vec<Arc<RawObject>>,
    /// meshdeck/Gloo Mesh policy objects stored in the cluster.
    pub policies: Vec<Arc<RawObject>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Mesh {
    pub cluster: String,
    /// `istiod-<namespace>-<cluster>` (policy-api.md's mesh naming).
    pub name: String,
    pub namespace: String,
    pub revision: String,
    pub version: String,
    pub ready: i32,
    pub desired: i32,
    pub trust_domain: Option<String>,
    pub injected_namespaces: Vec<String>,
    pub sidecars: usize,
    pub proxy_versions: BTreeMap<String, usize>,
    pub health: Health,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sidecar {
    /// Envoy runs as the pod's main container (a gateway).
    Gateway,
    Injected,
    /// The namespace is injected but the pods have no sidecar.
    Missing,
    /// Not in the mesh and not expected to be.
    None,
}

#[derive(Debug, Clone, Serialize)]
pub struct Workload {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    pub kind: WorkloadKind,
    pub desired: i32,
    pub ready: i32,
    pub available: i32,
    pub pods: Vec<String>,
    pub restarts: i32,
    pub sidecar: Sidecar,
    pub proxy_version: Option<String>,
    pub service_account: String,
    pub labels: Labels,
    pub created: Option<String>,
    pub health: Health,
    /// The pod template opts out of injection (`sidecar.istio.io/inject: "false"`).
    #[serde(skip)]
    pub inject_off: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    pub ports: Vec<String>,
    pub selector: Labels,
    pub labels: Labels,
    pub workloads: Vec<String>,
    pub ready_endpoints: usize,
    pub total_endpoints: usize,
    pub in_mesh: bool,
    /// `Kind/namespace/name` of Istio objects that refer to this service.
    pub istio_refs: Vec<String>,
    pub created: Option<String>,
    pub health: Health,
    /// The Service as read (numeric ports, type, load-balancer address) for the translator.
    #[serde(skip)]
    pub raw: Arc<RawService>,
}

/// A pod as the fleet views show it. It shares the cache's trimmed pod (`raw`) instead of
/// copying its strings: a snapshot of 100k pods costs a pointer and a health per pod.
#[derive(Debug, Clone)]
pub struct PodRow {
    pub cluster: Arc<str>,
    pub raw: Arc<RawPod>,
    /// `Kind/name` of the owning workload.
    pub workload: Option<String>,
    pub health: Health,
}

impl PodRow {
    pub fn namespace(&self) -> &str {
        &self.raw.namespace
    }
    pub fn name(&self) -> &str {
        &self.raw.name
    }
    /// `ready/total` containers.
    pub fn ready(&self) -> String {
        let ready = self.raw.containers.iter().filter(|c| c.ready).count();
        format!("{ready}/{}", self.raw.containers.len())
    }
    /// Terminating, a container's waiting reason (CrashLoopBackOff...), else the phase.
    pub fn status(&self) -> &str {
        if self.raw.deleting {
            return "Terminating";
        }
        self.raw
            .containers
            .iter()
            .find_map(|c| c.waiting.as_deref())
            .unwrap_or(&self.raw.phase)
    }
    pub fn restarts(&self) -> i32 {
        self.raw.containers.iter().map(|c| c.restarts).sum()
    }
    pub fn node(&self) -> &str {
        &self.raw.node
    }
    pub fn ip(&self) -> &str {
        &self.raw.ip
    }
    pub fn proxy_version(&self) -> Option<&str> {
        proxy_version(&self.raw)
    }
    pub fn labels(&self) -> &Labels {
        &self.raw.labels
    }
    pub fn created(&self) -> Option<&str> {
        self.raw.created.as_deref()
    }
}

impl Serialize for PodRow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("PodRow", 12)?;
        st.serialize_field("cluster", &*self.cluster)?;
        st.serialize_field("namespace", self.namespace())?;
        st.serialize_field("name", self.name())?;
        st.serialize_field("ready", &self.ready())?;
        st.serialize_field("status", self.status())?;
        st.serialize_field("restarts", &self.restarts())?;
        st.serialize_field("node", self.node())?;
        st.serialize_field("ip", self.ip())?;
        st.serialize_field("workload", &self.workload)?;
        st.serialize_field("proxy_version", &self.proxy_version())?;
        st.serialize_field("created", &self.created())?;
        st.serialize_field("health", &self.health)?;
        st.end()
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub namespaces: usize,
    pub services: usize,
    pub workloads: usize,
    pub pods: usize,
    pub istio_objects: usize,
    pub policies: usize,
}

/// One cluster, derived.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    pub name: String,
    pub context: String,
    /// Other contexts that reach the same API server.
    pub aliases: Vec<String>,
    pub server: String,
    pub user: String,
    pub version: Option<String>,
    pub latency_ms: Option<u64>,
    pub state: ConnState,
    pub counts: Counts,
    pub meshes: Vec<Mesh>,
    pub services: Vec<Service>,
    pub workloads: Vec<Workload>,
    pub pods: Vec<PodRow>,
    #[serde(skip)]
    pub istio: Vec<Arc<RawObject>>,
    #[serde(skip)]
    pub policies: Vec<Arc<RawObject>>,
    #[serde(skip)]
    pub namespaces: Vec<Arc<RawNamespace>>,
    /// Worst health over the cluster's meshes and workloads, with the counts by level.
    pub health: Health,
    pub health_counts: BTreeMap<Level, usize>,
}

/// The whole fleet at one moment. Cheap to clone (Arcs); the UI renders the newest.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub clusters: Vec<Arc<ClusterView>>,
    /// Increases with every published snapshot.
    pub seq: u64,
}

impl Snapshot {
    pub fn cluster(&self, name: &str) -> Option<&Arc<ClusterView>> {
        self.clusters.iter().find(|c| c.name == name)
    }
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.clusters.iter().flat_map(|c| c.services.iter())
    }
    pub fn workloads(&self) -> impl Iterator<Item = &Workload> {
        self.clusters.iter().flat_map(|c| c.workloads.iter())
    }
    pub fn pods(&self) -> impl Iterator<Item = &PodRow> {
        self.clusters.iter().flat_map(|c| c.pods.iter())
    }
    pub fn meshes(&self) -> impl Iterator<Item = &Mesh> {
        self.clusters.iter().flat_map(|c| c.meshes.iter())
    }
}

fn namespace_injected(ns: &RawNamespace) -> Option<String> {
    if ns.labels.get("istio-injection").map(String::as_str) == Some("disabled") {
        return None;
    }
    if ns.labels.get("istio-injection").map(String::as_str) == Some("enabled") {
        return Some("default".into());
    }
    ns.labels.get("istio.io/rev").cloned()
}

fn is_istiod(w: &RawWorkload) -> bool {
    w.kind == WorkloadKind::Deployment
        && (w.labels.get("app").map(String::as_str) == Some("istiod")
            || w.template_labels.get("app").map(String::as_str) == Some("istiod"))
}

fn is_gateway_pod(p: &RawPod) -> bool {
    p.labels
        .get("istio")
        .is_some_and(|v| v.ends_with("gateway"))
        || p.labels
            .get("app")
            .is_some_and(|v| v.starts_with("istio-") && v.ends_with("gateway"))
}

fn proxy_version(p: &RawPod) -> Option<&str> {
    p.containers
        .iter()
        .find(|c| &*c.name == "istio-proxy")
        .and_then(|c| image_tag(&c.image))
}

fn selector_matches(selector: &Labels, labels: &Labels) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The trust domain from an istio mesh ConfigMap (`data.mesh`, YAML).
fn trust_domain(cm: &RawConfigMap) -> Option<String> {
    let mesh = cm.data.get("mesh")?;
    let v: serde_json::Value = crate::yaml::from_str(mesh).ok()?;
    v.get("trustDomain")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
}

/// Whether an Istio host string names this service (`reviews`, `reviews.bookstore`,
/// `reviews.bookstore.svc`, `reviews.bookstore.svc.cluster.local`), seen from `from_ns`.
fn host_names(host: &str, from_ns: &str, svc_ns: &str, svc: &str) -> bool {
    let h = host.trim_end_matches('.');
    match h.split('.').collect::<Vec<_>>().as_slice() {
        [name] => *name == svc && from_ns == svc_ns,
        [name, ns] | [name, ns, "svc"] => *name == svc && *ns == svc_ns,
        [name, ns, "svc", ..] => *name == svc && *ns == svc_ns,
        _ => false,
    }
}

fn hosts_of(o: &RawObject) -> Vec<String> {
    let mut out = Vec::new();
    let push = |v: Option<&serde_json::Value>, out: &mut Vec<String>| {
        if let Some(s) = v.and_then(serde_json::Value::as_str) {
            out.push(s.to_string());
        }
    };
    match o.kind.as_str() {
        "VirtualService" => {
            for h in o
                .spec
                .get("hosts")
                .and_then(|h| h.as_array())
                .into_iter()
                .flatten()
            {
                push(Some(h), &mut out);
            }
            for route in ["http", "tcp", "tls"] {
                for r in o
                    .spec
                    .get(route)
                    .and_then(|h| h.as_array())
                    .into_iter()
                    .flatten()
                {
                    for d in r
                        .get("route")
                        .and_then(|h| h.as_array())
                        .into_iter()
                        .flatten()
                    {
                        push(d.pointer("/destination/host"), &mut out);
                    }
                }
            }
        }
        "DestinationRule" => push(o.spec.get("host"), &mut out),
        "ServiceEntry" => {
            for h in o
                .spec
                .get("hosts")
                .and_then(|h| h.as_array())
                .into_iter()
                .flatten()
            {
                push(Some(h), &mut out);
            }
        }
        _ => {}
    }
    out
}

/// Derive one cluster's view. `state` comes from the fleet (or is Synced for inventories).
pub fn derive_cluster(input: &ClusterInput, state: ConnState) -> ClusterView {
    let cluster = input.name.clone();
    let stale = state.is_stale().then(|| {
        format!(
            "cluster {cluster} is {}: {}",
            state.word(),
            state.error().unwrap_or("no answer")
        )
    });
    let ns_injected: HashMap<&str, Option<String>> = input
        .namespaces
        .iter()
        .map(|n| (n.name.as_str(), namespace_injected(n)))
        .collect();

    // meshes: one per istiod deployment
    let istiods: Vec<&Arc<RawWorkload>> = input.workloads.iter().filter(|w| is_istiod(w)).collect();
    let mut meshes: Vec<Mesh> = istiods
        .iter()
        .map(|w| {
            let revision = w
                .labels
                .get("istio.io/rev")
                .or_else(|| w.template_labels.get("istio.io/rev"))
                .cloned()
                .unwrap_or_else(|| "default".into());
            let version = w
                .images
                .first()
                .and_then(|i| image_tag(i))
                .unwrap_or("unknown")
                .to_string();
            let cm_name = if revision == "default" {
                "istio".to_string()
            } else {
                format!("istio-{revision}")
            };
            let trust = input
                .configmaps
                .iter()
                .find(|c| c.namespace == w.namespace && c.name == cm_name)
                .and_then(|c| trust_domain(c));
            let injected_namespaces: Vec<String> = input
                .namespaces
                .iter()
                .filter(|n| namespace_injected(n).as_deref() == Some(revision.as_str()))
                .map(|n| n.name.clone())
                .collect();
            Mesh {
                cluster: cluster.clone(),
                name: format!("istiod-{}-{}", w.namespace, cluster),
                namespace: w.namespace.clone(),
                revision,
                version,
                ready: w.ready,
                desired: w.desired,
                trust_domain: trust,
                injected_namespaces,
                sidecars: 0,
                proxy_versions: BTreeMap::new(),
                health: Health::ok(),
            }
        })
        .collect();
    meshes.sort_by(|a, b| a.name.cmp(&b.name));
    let default_mesh_version = meshes.first().map(|m| m.version.clone());

    // pods → workloads
    let rs_owner: HashMap<(&str, &str), &(String, String)> = input
        .replicasets
        .iter()
        .filter_map(|r| {
            r.owner
                .as_ref()
                .map(|o| ((r.namespace.as_str(), r.name.as_str()), o))
        })
        .collect();
    let workload_of = |p: &RawPod| -> Option<(WorkloadKind, String)> {
        let (kind, name) = p.owner.as_ref()?;
        match kind.as_str() {
            "ReplicaSet" => {
                let (k, n) = rs_owner.get(&(p.namespace.as_str(), name.as_str()))?;
                (k == "Deployment").then(|| (WorkloadKind::Deployment, n.clone()))
            }
            "StatefulSet" => Some((WorkloadKind::StatefulSet, name.clone())),
            _ => None,
        }
    };
    let mut pods_by_workload: HashMap<(WorkloadKind, &str, String), Vec<&RawPod>> = HashMap::new();
    let mut pod_rows = Vec::with_capacity(input.pods.len());
    let cluster_arc: Arc<str> = Arc::from(cluster.as_str());
    for p in &input.pods {
        let wl = workload_of(p);
        let injected_ns: Option<&str> = ns_injected
            .get(p.namespace.as_str())
            .and_then(|o| o.as_deref());
        let pv = proxy_version(p);
        let sidecar = if is_gateway_pod(p) {
            Sidecar::Gateway
        } else if p.injected && pv.is_some() {
            Sidecar::Injected
        } else if injected_ns.is_some() && !p.opted_out && !p.ambient {
            Sidecar::Missing
        } else {
            Sidecar::None
        };
        if matches!(sidecar, Sidecar::Injected | Sidecar::Gateway)
            && let Some(v) = pv
        {
            let rev = injected_ns.unwrap_or("default");
            if let Some(m) = meshes.iter_mut().find(|m| m.revision == rev) {
                m.sidecars += 1;
                match m.proxy_versions.get_mut(v) {
                    Some(n) => *n += 1,
                    None => {
                        m.proxy_versions.insert(v.to_string(), 1);
                    }
                }
            }
        }
        let mesh_version: Option<&str> = injected_ns
            .and_then(|rev| meshes.iter().find(|m| m.revision == rev))
            .map(|m| m.version.as_str())
            .or(default_mesh_version.as_deref());
        let health = health::pod(p, sidecar, pv, mesh_version);
        pod_rows.push(PodRow {
            cluster: cluster_arc.clone(),
            raw: p.clone(),
            workload: wl.as_ref().map(|(k, n)| format!("{}/{n}", k.as_str())),
            health: health.stale_if(stale.as_deref()),
        });
        if let Some((k, n)) = wl {
            pods_by_workload
                .entry((k, p.namespace.as_str(), n))
                .or_default()
                .push(p);
        }
    }

    let mut workloads: Vec<Workload> = input
        .workloads
        .iter()
        .map(|w| {
            let pods = pods_by_workload
                .get(&(w.kind, w.namespace.as_str(), w.name.clone()))
                .cloned()
                .unwrap_or_default();
            let injected_ns = ns_injected.get(w.namespace.as_str()).cloned().flatten();
            let gateway = pods.iter().any(|p| is_gateway_pod(p));
            let proxies: Vec<Option<&str>> = pods
                .iter()
                .map(|p| if p.injected { proxy_version(p) } else { None })
                .collect();
            let sidecar = if gateway {
                Sidecar::Gateway
            } else if !pods.is_empty() && proxies.iter().all(Option::is_some) {
                Sidecar::Injected
            } else if injected_ns.is_some()
                && !is_istiod(w)
                && (pods.is_empty() || !pods.iter().all(|p| p.opted_out))
            {
                // (pods that all stay out on purpose are not missing a sidecar)
                Sidecar::Missing
            } else {
                Sidecar::None
            };
            let proxy_version = proxies
                .iter()
                .flatten()
                .min_by(|a, b| health::cmp_versions(a, b))
                .map(|v| v.to_string());
            let mesh_version = injected_ns
                .as_deref()
                .and_then(|rev| meshes.iter().find(|m| m.revision == rev))
                .map(|m| m.version.clone());
            let h = health::workload(
                w,
                &pods,
                sidecar,
                proxy_version.as_deref(),
                mesh_version.as_deref(),
                injected_ns.is_some(),
            );
            Workload {
                cluster: cluster.clone(),
                namespace: w.namespace.clone(),
                name: w.name.clone(),
                kind: w.kind,
                desired: w.desired,
                ready: w.ready,
                available: w.available,
                pods: pods.iter().map(|p| p.name.clone()).collect(),
                restarts: pods
                    .iter()
                    .flat_map(|p| p.containers.iter())
                    .map(|c| c.restarts)
                    .sum(),
                sidecar,
                proxy_version,
                service_account: w.service_account.clone(),
                labels: w.template_labels.clone(),
                created: w.created.clone(),
                health: h.stale_if(stale.as_deref()),
                inject_off: w.inject_off,
            }
        })
        .collect();
    workloads.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));

    for m in &mut meshes {
        let w = istiods
            .iter()
            .find(|w| format!("istiod-{}-{}", w.namespace, cluster) == m.name);
        m.health = health::mesh(m, w.map(|w| w.as_ref())).stale_if(stale.as_deref());
    }

    let endpoints: HashMap<(&str, &str), &RawEndpoints> = input
        .endpoints
        .iter()
        .map(|e| ((e.namespace.as_str(), e.name.as_str()), e.as_ref()))
        .collect();
    let istio_hosts: Vec<(&RawObject, Vec<String>)> = input
        .istio
        .iter()
        .map(|o| (o.as_ref(), hosts_of(o)))
        .collect();
    // index workloads by (namespace, label, value): a service's candidates are the workloads
    // carrying its first selector pair (O(labels), not services x workloads)
    let mut by_label: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
    for (i, w) in workloads.iter().enumerate() {
        for (k, v) in &w.labels {
            by_label
                .entry((w.namespace.as_str(), k.as_str(), v.as_str()))
                .or_default()
                .push(i);
        }
    }
    let mut services: Vec<Service> = input
        .services
        .iter()
        .map(|s| {
            let backing: Vec<&Workload> = s
                .selector
                .iter()
                .next()
                .and_then(|(k, v)| by_label.get(&(s.namespace.as_str(), k.as_str(), v.as_str())))
                .map(|idx| {
                    idx.iter()
                        .map(|&i| &workloads[i])
                        .filter(|w| selector_matches(&s.selector, &w.labels))
                        .collect()
                })
                .unwrap_or_default();
            let ep = endpoints.get(&(s.namespace.as_str(), s.name.as_str()));
            let ready = ep.map_or(0, |e| e.ready);
            let total = ep.map_or(0, |e| e.ready + e.not_ready);
            let in_mesh = backing
                .iter()
                .any(|w| matches!(w.sidecar, Sidecar::Injected));
            let mut refs: BTreeSet<String> = BTreeSet::new();
            for (o, hosts) in &istio_hosts {
                if hosts
                    .iter()
                    .any(|h| host_names(h, &o.namespace, &s.namespace, &s.name))
                {
                    refs.insert(format!("{}/{}/{}", o.kind, o.namespace, o.name));
                }
            }
            for o in input.istio.iter().filter(|o| {
                matches!(
                    o.kind.as_str(),
                    "AuthorizationPolicy" | "PeerAuthentication"
                ) && o.namespace == s.namespace
            }) {
                let sel: Labels = o
                    .spec
                    .pointer("/selector/matchLabels")
                    .and_then(|m| serde_json::from_value(m.clone()).ok())
                    .unwrap_or_default();
                if sel.is_empty() || backing.iter().any(|w| selector_matches(&sel, &w.labels)) {
                    refs.insert(format!("{}/{}/{}", o.kind, o.namespace, o.name));
                }
            }
            let h = health::service(s, ready, total, &backing);
            Service {
                cluster: cluster.clone(),
                namespace: s.namespace.clone(),
                name: s.name.clone(),
                ports: s
                    .ports
                    .iter()
                    .map(|p| format!("{}/{}", p.port, p.protocol))
                    .collect(),
                selector: s.selector.clone(),
                labels: s.labels.clone(),
                workloads: backing.iter().map(|w| w.name.clone()).collect(),
                ready_endpoints: ready,
                total_endpoints: total,
                in_mesh,
                istio_refs: refs.into_iter().collect(),
                created: s.created.clone(),
                health: h.stale_if(stale.as_deref()),
                raw: s.clone(),
            }
        })
        .collect();
    services.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    pod_rows.sort_by(|a, b| (a.namespace(), a.name()).cmp(&(b.namespace(), b.name())));

    let mut health_counts: BTreeMap<Level, usize> = BTreeMap::new();
    let mut worst = Health::ok();
    for h in meshes
        .iter()
        .map(|m| &m.health)
        .chain(workloads.iter().map(|w| &w.health))
    {
        *health_counts.entry(h.level).or_default() += 1;
        if h.level > worst.level {
            worst = h.clone();
        }
    }
    if let Some(s) = &stale {
        worst = worst.stale_if(Some(s));
    }
    // Unknown is not ok: a cluster without current data (still connecting or syncing,
    // unreachable, refused) says so, whatever its last rows said.
    let no_data = meshes.is_empty() && workloads.is_empty() && services.is_empty();
    let unknown_why = match &state {
        ConnState::Synced | ConnState::Partial { .. } => None,
        ConnState::Stale { .. } if !no_data => None,
        ConnState::Connecting => Some("no data yet: connecting".to_string()),
        ConnState::WaitingForCredentials { plugin } => {
            Some(format!("no data yet: waiting for credentials ({plugin})"))
        }
        ConnState::Syncing { synced, total } => Some(format!(
            "no data yet: syncing ({synced}/{total} kinds listed)"
        )),
        other => Some(format!(
            "{}: {}",
            other.word(),
            other.error().unwrap_or("no answer")
        )),
    };
    if let ConnState::Partial { forbidden } = &state {
        // the health is of what is visible, and says it is not the whole cluster
        worst.reasons.push(format!("partial view: {forbidden}"));
    }
    if let Some(why) = unknown_why
        && worst.level < Level::Unknown
    {
        worst.level = Level::Unknown;
        worst.reasons.insert(0, why);
    }
    ClusterView {
        name: cluster,
        context: input.context.clone(),
        aliases: input.aliases.clone(),
        server: input.server.clone(),
        user: input.user.clone(),
        version: input.version.clone(),
        latency_ms: input.latency_ms,
        state,
        counts: Counts {
            namespaces: input.namespaces.len(),
            services: services.len(),
            workloads: workloads.len(),
            pods: pod_rows.len(),
            istio_objects: input.istio.len(),
            policies: input.policies.len(),
        },
        meshes,
        services,
        workloads,
        pods: pod_rows,
        istio: input.istio.clone(),
        policies: input.policies.clone(),
        namespaces: input.namespaces.clone(),
        health: worst,
        health_counts,
    }
}
