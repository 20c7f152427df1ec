//! The fleet snapshot: clusters, meshes, services (destinations), workloads, pods and their
//! health, derived from trimmed raw objects. Pure: no client, no clock (time comes in as data),
//! no terminal. Each cluster derives on its own, so a change in one cluster re-derives only it.

pub mod derive;
pub mod health;
pub mod ingest;
pub mod raw;
pub mod slim;

pub use derive::{Delta, Deriver, NeedsFull};
pub use health::{Health, Level};
use raw::*;
use serde::Serialize;
use std::collections::BTreeMap;
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
    /// The kubeconfig context could not be used (its cluster or user entry is missing, its
    /// name is taken, ...): never connected, with why.
    ConfigError {
        error: String,
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
            ConnState::ConfigError { .. } => "config",
        }
    }
    /// The rows are current (everything, or everything this session may see).
    pub fn is_current(&self) -> bool {
        matches!(self, ConnState::Synced | ConnState::Partial { .. })
    }
    /// The server answers now (whatever it answers: an auth error is an answer). A cluster
    /// that is stale, unreachable or never connected has no latency to show now.
    pub fn answers(&self) -> bool {
        !matches!(
            self,
            ConnState::Stale { .. } | ConnState::Unreachable { .. } | ConnState::ConfigError { .. }
        )
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
            | ConnState::AuthError { error }
            | ConnState::ConfigError { error } => Some(error),
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
    /// How meshdeck's request pace has bitten on this cluster (its ceiling, the server's
    /// Retry-After), once it has.
    pub pace: Option<String>,
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
    pub pods: Vec<Arc<str>>,
    pub restarts: i32,
    pub sidecar: Sidecar,
    pub proxy_version: Option<String>,
    pub service_account: String,
    pub labels: Arc<Labels>,
    pub created: Option<String>,
    pub health: Health,
    /// The pod template opts out of injection (`sidecar.istio.io/inject: "false"`).
    #[serde(skip)]
    pub inject_off: bool,
    /// Its own traffic tolerances (`health.kiali.io/rate`).
    #[serde(skip)]
    pub rate_annotation: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    pub ports: Vec<String>,
    pub selector: Arc<Labels>,
    pub labels: Arc<Labels>,
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
    /// `Kind/name` of the owning workload (inline up to 24 bytes).
    pub workload: Option<compact_str::CompactString>,
    /// Shared by the cluster's healthy pods.
    pub health: Arc<Health>,
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
        st.serialize_field("health", &*self.health)?;
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
    /// How meshdeck's request pace has bitten on this cluster, once it has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pace: Option<String>,
    pub state: ConnState,
    pub counts: Counts,
    pub meshes: Vec<Mesh>,
    /// Rows are shared between snapshots: a change copies pointers, never rows.
    pub services: Vec<Arc<Service>>,
    pub workloads: Vec<Arc<Workload>>,
    pub pods: Vec<Arc<PodRow>>,
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

/// The run of rows of one namespace in a list sorted by namespace (as a view's lists are).
fn in_namespace<'a, T>(rows: &'a [T], ns: &str, ns_of: impl Fn(&T) -> &str) -> &'a [T] {
    let start = rows.partition_point(|r| ns_of(r) < ns);
    let len = rows[start..].partition_point(|r| ns_of(r) == ns);
    &rows[start..start + len]
}

impl ClusterView {
    pub fn pods_in(&self, ns: &str) -> &[Arc<PodRow>] {
        in_namespace(&self.pods, ns, |p| p.namespace())
    }
    pub fn services_in(&self, ns: &str) -> &[Arc<Service>] {
        in_namespace(&self.services, ns, |s| &s.namespace)
    }
    pub fn workloads_in(&self, ns: &str) -> &[Arc<Workload>] {
        in_namespace(&self.workloads, ns, |w| &w.namespace)
    }
}

impl Snapshot {
    pub fn cluster(&self, name: &str) -> Option<&Arc<ClusterView>> {
        self.clusters.iter().find(|c| c.name == name)
    }
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.clusters
            .iter()
            .flat_map(|c| c.services.iter().map(|r| &**r))
    }
    pub fn workloads(&self) -> impl Iterator<Item = &Workload> {
        self.clusters
            .iter()
            .flat_map(|c| c.workloads.iter().map(|r| &**r))
    }
    pub fn pods(&self) -> impl Iterator<Item = &PodRow> {
        self.clusters
            .iter()
            .flat_map(|c| c.pods.iter().map(|r| &**r))
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

/// A mesh for one istiod deployment, before its pods are counted.
fn mesh_of(input: &ClusterInput, w: &RawWorkload, cluster: &str) -> Mesh {
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
        cluster: cluster.to_string(),
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
}

/// Derive one cluster's view in full. `state` comes from the fleet (or is Synced for
/// inventories). The fleet keeps a [`Deriver`] instead, to follow changes one by one.
pub fn derive_cluster(input: &ClusterInput, state: ConnState) -> ClusterView {
    let d = Deriver::new(input, state);
    Arc::unwrap_or_clone(d.view())
}
