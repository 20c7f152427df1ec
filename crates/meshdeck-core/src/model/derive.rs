//! Deriving one cluster's view: in full from its caches ([`Deriver::new`]), then change by
//! change ([`Deriver::apply`]) in time proportional to what changed.
//!
//! Both paths build every row with the same unit functions (a pod's row, a workload, a service,
//! a mesh's health, the cluster's health), so they can differ only in *which* units are rebuilt:
//! a watch event rebuilds the pod's row, its old and new workloads, the services those back,
//! its mesh's proxy counts and the cluster's health. What cannot be followed cheaply (a
//! namespace, Service, ConfigMap, Istio or policy object, istiod itself) is not offered to
//! `apply`: the fleet derives in full then, as it does after every (re-)list.
//! `tests/it/model_props.rs` checks, over random event sequences, that the two agree.

use super::health;
use super::raw::*;
use super::{
    ClusterInput, ClusterView, ConnState, Counts, Health, Level, Mesh, PodRow, Service, Sidecar,
    Workload,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// A namespaced object's key: (namespace, name).
pub type Key = (String, String);

/// A workload's identity: namespace, name, kind (the view's order: a Deployment before a
/// StatefulSet of the same name).
type WKey = (String, String, WorkloadKind);

/// What changed in a cluster's caches since the last derivation, for the kinds `apply` can
/// follow: each key with its current value (`None`: deleted). A key may appear more than once;
/// its last entry counts.
#[derive(Debug, Clone, Default)]
pub struct Delta {
    pub pods: Vec<(Key, Option<Arc<RawPod>>)>,
    pub endpoints: Vec<(Key, Option<Arc<RawEndpoints>>)>,
    pub workloads: Vec<(WorkloadKind, Key, Option<Arc<RawWorkload>>)>,
    pub replicasets: Vec<(Key, Option<Arc<RawReplicaSet>>)>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
            && self.endpoints.is_empty()
            && self.workloads.is_empty()
            && self.replicasets.is_empty()
    }
    pub fn len(&self) -> usize {
        self.pods.len() + self.endpoints.len() + self.workloads.len() + self.replicasets.len()
    }
}

/// `apply` cannot follow this change: derive in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedsFull(pub &'static str);

/// What every unit reads and no event `apply` follows can change.
struct Ctx {
    cluster: String,
    cluster_arc: Arc<str>,
    /// The health of every pod that is fine (most of them): one shared value, not 56 bytes
    /// per pod.
    ok_health: Arc<Health>,
    stale: Option<String>,
    ns_injected: HashMap<String, Option<String>>,
    default_mesh_version: Option<String>,
    /// namespace → ReplicaSet → its owner (kind, name): looked up by `&str`, no key built.
    rs_owner: HashMap<String, HashMap<String, (String, String)>>,
    istiods: Vec<Arc<RawWorkload>>,
    istio_hosts: Vec<(Arc<RawObject>, Vec<String>)>,
    /// AuthorizationPolicies and PeerAuthentications: the object's `Kind/ns/name`, its
    /// namespace and its selector.
    selecting: Vec<(String, String, Labels)>,
    endpoints: HashMap<Key, Arc<RawEndpoints>>,
}

impl Ctx {
    fn injected(&self, ns: &str) -> Option<&str> {
        self.ns_injected.get(ns).and_then(|o| o.as_deref())
    }

    fn workload_of(&self, p: &RawPod) -> Option<WKey> {
        let (kind, name) = p.owner.as_ref()?;
        match &**kind {
            "ReplicaSet" => {
                let (k, n) = self.rs_owner.get(&*p.namespace)?.get(&**name)?;
                (k == "Deployment")
                    .then(|| (p.namespace.to_string(), n.clone(), WorkloadKind::Deployment))
            }
            "StatefulSet" => Some((
                p.namespace.to_string(),
                name.to_string(),
                WorkloadKind::StatefulSet,
            )),
            _ => None,
        }
    }

    fn sidecar_of(&self, p: &RawPod) -> Sidecar {
        let pv = super::proxy_version(p);
        if super::is_gateway_pod(p) {
            Sidecar::Gateway
        } else if p.injected && pv.is_some() {
            Sidecar::Injected
        } else if self.injected(&p.namespace).is_some() && !p.opted_out && !p.ambient {
            Sidecar::Missing
        } else {
            Sidecar::None
        }
    }

    /// The mesh (index into the sorted meshes) a pod's proxy counts for, and its version.
    fn contribution<'p>(&self, meshes: &[Mesh], p: &'p RawPod) -> Option<(usize, &'p str)> {
        self.contribution_of(meshes, p, self.sidecar_of(p))
    }

    fn contribution_of<'p>(
        &self,
        meshes: &[Mesh],
        p: &'p RawPod,
        sidecar: Sidecar,
    ) -> Option<(usize, &'p str)> {
        if !matches!(sidecar, Sidecar::Injected | Sidecar::Gateway) {
            return None;
        }
        let v = super::proxy_version(p)?;
        let rev = self.injected(&p.namespace).unwrap_or("default");
        meshes
            .iter()
            .position(|m| m.revision == rev)
            .map(|i| (i, v))
    }

    /// A pod's row, its workload, and the mesh its proxy counts for.
    fn pod_row<'p>(
        &self,
        meshes: &[Mesh],
        p: &'p Arc<RawPod>,
    ) -> (PodRow, Option<WKey>, Option<(usize, &'p str)>) {
        let wl = self.workload_of(p);
        let injected_ns = self.injected(&p.namespace);
        let pv = super::proxy_version(p);
        let sidecar = self.sidecar_of(p);
        let mesh_version: Option<&str> = injected_ns
            .and_then(|rev| meshes.iter().find(|m| m.revision == rev))
            .map(|m| m.version.as_str())
            .or(self.default_mesh_version.as_deref());
        let health = health::pod(p, sidecar, pv, mesh_version);
        let row = PodRow {
            cluster: self.cluster_arc.clone(),
            raw: p.clone(),
            workload: wl
                .as_ref()
                .map(|(_, n, k)| compact_str::format_compact!("{}/{n}", k.as_str())),
            health: if health == Health::ok() {
                self.ok_health.clone()
            } else {
                Arc::new(health.stale_if(self.stale.as_deref()))
            },
        };
        (row, wl, self.contribution_of(meshes, p, sidecar))
    }

    fn workload(&self, meshes: &[Mesh], w: &RawWorkload, pods: &[&RawPod]) -> Workload {
        let injected_ns = self.injected(&w.namespace);
        let gateway = pods.iter().any(|p| super::is_gateway_pod(p));
        let proxies: Vec<Option<&str>> = pods
            .iter()
            .map(|p| {
                if p.injected {
                    super::proxy_version(p)
                } else {
                    None
                }
            })
            .collect();
        let sidecar = if gateway {
            Sidecar::Gateway
        } else if !pods.is_empty() && proxies.iter().all(Option::is_some) {
            Sidecar::Injected
        } else if injected_ns.is_some()
            && !super::is_istiod(w)
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
            .and_then(|rev| meshes.iter().find(|m| m.revision == rev))
            .map(|m| m.version.as_str());
        let h = health::workload(
            w,
            pods,
            sidecar,
            proxy_version.as_deref(),
            mesh_version,
            injected_ns.is_some(),
        );
        Workload {
            cluster: self.cluster.clone(),
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
            health: h.stale_if(self.stale.as_deref()),
            inject_off: w.inject_off,
            rate_annotation: w.rate_annotation.clone(),
        }
    }

    fn service(&self, s: &Arc<RawService>, backing: &[&Workload]) -> Service {
        let ep = self.endpoints.get(&(s.namespace.clone(), s.name.clone()));
        let ready = ep.map_or(0, |e| e.ready);
        let total = ep.map_or(0, |e| e.ready + e.not_ready);
        let in_mesh = backing
            .iter()
            .any(|w| matches!(w.sidecar, Sidecar::Injected));
        let mut refs: BTreeSet<String> = BTreeSet::new();
        for (o, hosts) in &self.istio_hosts {
            if hosts
                .iter()
                .any(|h| super::host_names(h, &o.namespace, &s.namespace, &s.name))
            {
                refs.insert(format!("{}/{}/{}", o.kind, o.namespace, o.name));
            }
        }
        for (id, ns, sel) in &self.selecting {
            if *ns == s.namespace
                && (sel.is_empty()
                    || backing
                        .iter()
                        .any(|w| super::selector_matches(sel, &w.labels)))
            {
                refs.insert(id.clone());
            }
        }
        let h = health::service(s, ready, total, backing);
        Service {
            cluster: self.cluster.clone(),
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
            health: h.stale_if(self.stale.as_deref()),
            raw: s.clone(),
        }
    }

    fn mesh_healths(&self, meshes: &mut [Mesh]) {
        for m in meshes {
            let w = self
                .istiods
                .iter()
                .find(|w| format!("istiod-{}-{}", w.namespace, self.cluster) == m.name);
            m.health = health::mesh(m, w.map(|w| w.as_ref())).stale_if(self.stale.as_deref());
        }
    }
}

fn add_proxy(m: &mut Mesh, v: &str) {
    m.sidecars += 1;
    match m.proxy_versions.get_mut(v) {
        Some(n) => *n += 1,
        None => {
            m.proxy_versions.insert(v.to_string(), 1);
        }
    }
}

fn remove_proxy(m: &mut Mesh, v: &str) {
    m.sidecars = m.sidecars.saturating_sub(1);
    if let Some(n) = m.proxy_versions.get_mut(v) {
        *n -= 1;
        if *n == 0 {
            m.proxy_versions.remove(v);
        }
    }
}

/// The cluster's health: the worst over its meshes and workloads (the first of them at that
/// level), with the counts by level, and what its connection state says.
fn cluster_health(
    state: &ConnState,
    stale: Option<&str>,
    meshes: &[Mesh],
    workloads: &[Arc<Workload>],
    services_empty: bool,
) -> (Health, BTreeMap<Level, usize>) {
    let mut health_counts: BTreeMap<Level, usize> = BTreeMap::new();
    let mut worst: Option<&Health> = None;
    for h in meshes
        .iter()
        .map(|m| &m.health)
        .chain(workloads.iter().map(|w| &w.health))
    {
        *health_counts.entry(h.level).or_default() += 1;
        if h.level > worst.map_or(Level::Ok, |w| w.level) {
            worst = Some(h);
        }
    }
    let mut worst = worst.cloned().unwrap_or_else(Health::ok);
    if let Some(s) = stale {
        worst = worst.stale_if(Some(s));
    }
    // Unknown is not ok: a cluster without current data (still connecting or syncing,
    // unreachable, refused) says so, whatever its last rows said.
    let no_data = meshes.is_empty() && workloads.is_empty() && services_empty;
    let unknown_why = match state {
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
    if let ConnState::Partial { forbidden } = state {
        // the health is of what is visible, and says it is not the whole cluster
        worst.reasons.push(format!("partial view: {forbidden}"));
    }
    if let Some(why) = unknown_why
        && worst.level < Level::Unknown
    {
        worst.level = Level::Unknown;
        worst.reasons.insert(0, why);
    }
    (worst, health_counts)
}

/// A workload's pod, ordered (and found) by its name.
#[derive(Clone)]
struct ByName(Arc<RawPod>);

impl PartialEq for ByName {
    fn eq(&self, o: &Self) -> bool {
        self.0.name == o.0.name
    }
}
impl Eq for ByName {}
impl PartialOrd for ByName {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for ByName {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.name.cmp(&o.0.name)
    }
}
impl std::borrow::Borrow<str> for ByName {
    fn borrow(&self) -> &str {
        &self.0.name
    }
}

fn wkey(w: &RawWorkload) -> WKey {
    (w.namespace.clone(), w.name.clone(), w.kind)
}

/// A pod row's workload key, read back from its `Kind/name` (written by `pod_row`).
fn wkey_of_row(r: &PodRow) -> Option<WKey> {
    let (kind, name) = r.workload.as_deref()?.split_once('/')?;
    let kind = match kind {
        "Deployment" => WorkloadKind::Deployment,
        "StatefulSet" => WorkloadKind::StatefulSet,
        _ => return None,
    };
    Some((r.raw.namespace.to_string(), name.to_string(), kind))
}

/// One cluster's derivation, kept between events: the last view and the indexes `apply`
/// needs (the raw workloads, each workload's pods).
pub struct Deriver {
    ctx: Ctx,
    workloads_raw: BTreeMap<WKey, Arc<RawWorkload>>,
    pods_by_workload: HashMap<WKey, BTreeSet<ByName>>,
    view: Arc<ClusterView>,
}

impl Deriver {
    /// Derive a cluster in full.
    pub fn new(input: &ClusterInput, state: ConnState) -> Deriver {
        let cluster = input.name.clone();
        let stale = state.is_stale().then(|| {
            format!(
                "cluster {cluster} is {}: {}",
                state.word(),
                state.error().unwrap_or("no answer")
            )
        });
        let ns_injected: HashMap<String, Option<String>> = input
            .namespaces
            .iter()
            .map(|n| (n.name.clone(), super::namespace_injected(n)))
            .collect();
        // meshes: one per istiod deployment
        let istiods: Vec<Arc<RawWorkload>> = input
            .workloads
            .iter()
            .filter(|w| super::is_istiod(w))
            .cloned()
            .collect();
        let mut meshes: Vec<Mesh> = istiods
            .iter()
            .map(|w| super::mesh_of(input, w, &cluster))
            .collect();
        meshes.sort_by(|a, b| a.name.cmp(&b.name));
        let selecting = input
            .istio
            .iter()
            .filter(|o| {
                matches!(
                    o.kind.as_str(),
                    "AuthorizationPolicy" | "PeerAuthentication"
                )
            })
            .map(|o| {
                let sel: Labels = o
                    .spec
                    .pointer("/selector/matchLabels")
                    .and_then(|m| serde_json::from_value(m.clone()).ok())
                    .unwrap_or_default();
                (
                    format!("{}/{}/{}", o.kind, o.namespace, o.name),
                    o.namespace.clone(),
                    sel,
                )
            })
            .collect();
        let ctx = Ctx {
            cluster_arc: Arc::from(cluster.as_str()),
            ok_health: Arc::new(Health::ok().stale_if(stale.as_deref())),
            stale,
            default_mesh_version: meshes.first().map(|m| m.version.clone()),
            ns_injected,
            rs_owner: {
                let mut m: HashMap<String, HashMap<String, (String, String)>> = HashMap::new();
                for r in &input.replicasets {
                    if let Some(o) = &r.owner {
                        m.entry(r.namespace.clone())
                            .or_default()
                            .insert(r.name.clone(), o.clone());
                    }
                }
                m
            },
            istiods,
            istio_hosts: input
                .istio
                .iter()
                .map(|o| (o.clone(), super::hosts_of(o)))
                .collect(),
            selecting,
            endpoints: input
                .endpoints
                .iter()
                .map(|e| ((e.namespace.clone(), e.name.clone()), e.clone()))
                .collect(),
            cluster,
        };

        // pods → workloads
        let mut pods_by_workload: HashMap<WKey, BTreeSet<ByName>> = HashMap::new();
        let mut pods: Vec<&Arc<RawPod>> = input.pods.iter().collect();
        pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        pods.dedup_by(|a, b| (&a.namespace, &a.name) == (&b.namespace, &b.name));
        let mut pod_rows: Vec<Arc<PodRow>> = Vec::with_capacity(pods.len());
        for p in pods {
            let (row, wl, counts) = ctx.pod_row(&meshes, p);
            if let Some((i, v)) = counts {
                add_proxy(&mut meshes[i], v);
            }
            pod_rows.push(Arc::new(row));
            if let Some(k) = wl {
                pods_by_workload
                    .entry(k)
                    .or_default()
                    .replace(ByName(p.clone()));
            }
        }

        let workloads_raw: BTreeMap<WKey, Arc<RawWorkload>> = input
            .workloads
            .iter()
            .map(|w| (wkey(w), w.clone()))
            .collect();
        let workloads: Vec<Arc<Workload>> = workloads_raw
            .iter()
            .map(|(k, w)| {
                let pods: Vec<&RawPod> = pods_by_workload
                    .get(k)
                    .map(|m| m.iter().map(|p| p.0.as_ref()).collect())
                    .unwrap_or_default();
                Arc::new(ctx.workload(&meshes, w, &pods))
            })
            .collect();
        ctx.mesh_healths(&mut meshes);

        // index workloads by (namespace, label, value): a service's candidates are the workloads
        // carrying its first selector pair (O(labels), not services x workloads)
        let mut by_label: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
        for (i, w) in workloads.iter().enumerate() {
            for (k, v) in w.labels.iter() {
                by_label
                    .entry((w.namespace.as_str(), k.as_str(), v.as_str()))
                    .or_default()
                    .push(i);
            }
        }
        let mut services: Vec<Arc<Service>> = input
            .services
            .iter()
            .map(|s| {
                let backing: Vec<&Workload> = s
                    .selector
                    .iter()
                    .next()
                    .and_then(|(k, v)| {
                        by_label.get(&(s.namespace.as_str(), k.as_str(), v.as_str()))
                    })
                    .map(|idx| {
                        idx.iter()
                            .map(|&i| workloads[i].as_ref())
                            .filter(|w| super::selector_matches(&s.selector, &w.labels))
                            .collect()
                    })
                    .unwrap_or_default();
                Arc::new(ctx.service(s, &backing))
            })
            .collect();
        services.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        services.dedup_by(|a, b| (&a.namespace, &a.name) == (&b.namespace, &b.name));

        let (health, health_counts) = cluster_health(
            &state,
            ctx.stale.as_deref(),
            &meshes,
            &workloads,
            services.is_empty(),
        );
        let view = ClusterView {
            name: ctx.cluster.clone(),
            context: input.context.clone(),
            aliases: input.aliases.clone(),
            server: input.server.clone(),
            user: input.user.clone(),
            version: input.version.clone(),
            latency_ms: input.latency_ms,
            pace: input.pace.clone(),
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
            health,
            health_counts,
        };
        Deriver {
            ctx,
            workloads_raw,
            pods_by_workload,
            view: Arc::new(view),
        }
    }

    /// The current view (shared: publishing it copies nothing).
    pub fn view(&self) -> Arc<ClusterView> {
        self.view.clone()
    }

    /// The header fields a ping changes, without re-deriving anything.
    pub fn set_header(
        &mut self,
        version: Option<String>,
        latency_ms: Option<u64>,
        pace: Option<String>,
    ) {
        if self.view.version != version
            || self.view.latency_ms != latency_ms
            || self.view.pace != pace
        {
            let v = Arc::make_mut(&mut self.view);
            v.version = version;
            v.latency_ms = latency_ms;
            v.pace = pace;
        }
    }

    /// Follow a change of pods, endpoints, workloads or ReplicaSets. On `Err` the deriver is
    /// left half-updated: derive in full (`Deriver::new`).
    pub fn apply(&mut self, delta: &Delta) -> Result<(), NeedsFull> {
        if delta.is_empty() {
            return Ok(());
        }
        // the last entry of a key counts
        let mut pods: BTreeMap<&Key, Option<&Arc<RawPod>>> = BTreeMap::new();
        for (k, p) in &delta.pods {
            pods.insert(k, p.as_ref());
        }
        let mut dirty_workloads: BTreeSet<WKey> = BTreeSet::new();
        let mut dirty_services: BTreeSet<Key> = BTreeSet::new();
        // services of a namespace whose backing may have changed (labels came or went)
        let mut relabelled: BTreeSet<String> = BTreeSet::new();
        let v = Arc::make_mut(&mut self.view);

        // workloads: istiod makes meshes, which every row reads
        for (kind, (ns, name), w) in &delta.workloads {
            let k = (ns.clone(), name.clone(), *kind);
            let old = self.workloads_raw.get(&k);
            if old.is_some_and(|o| super::is_istiod(o))
                || w.as_ref().is_some_and(|w| super::is_istiod(w))
            {
                return Err(NeedsFull("an istiod deployment changed"));
            }
            if old.map(|o| &o.template_labels) != w.as_ref().map(|w| &w.template_labels) {
                relabelled.insert(ns.clone());
            }
            match w {
                Some(w) => self.workloads_raw.insert(k.clone(), w.clone()),
                None => self.workloads_raw.remove(&k),
            };
            dirty_workloads.insert(k);
        }

        // ReplicaSets: a changed owner moves the pods it owns
        let mut reowned: Vec<(String, String)> = Vec::new();
        for ((ns, name), rs) in &delta.replicasets {
            let new = rs.as_ref().and_then(|r| r.owner.clone());
            let in_ns = self.ctx.rs_owner.entry(ns.clone()).or_default();
            if in_ns.get(name.as_str()) != new.as_ref() {
                match new {
                    Some(o) => in_ns.insert(name.clone(), o),
                    None => in_ns.remove(name.as_str()),
                };
                reowned.push((ns.clone(), name.clone()));
            }
        }
        let mut moved: Vec<(Key, Arc<RawPod>)> = Vec::new();
        for (ns, rs) in &reowned {
            for r in v.pods_in(ns) {
                if r.raw
                    .owner
                    .as_ref()
                    .is_some_and(|(k, n)| &**k == "ReplicaSet" && **n == **rs)
                {
                    moved.push(((ns.clone(), r.name().to_string()), r.raw.clone()));
                }
            }
        }
        for (k, p) in &moved {
            pods.entry(k).or_insert(Some(p));
        }

        // pods
        for (k, new) in pods {
            let at = v
                .pods
                .binary_search_by(|r| (r.namespace(), r.name()).cmp(&(k.0.as_str(), k.1.as_str())));
            if let Ok(i) = at {
                let old = v.pods[i].clone();
                if let Some((mi, ver)) = self.ctx.contribution(&v.meshes, &old.raw) {
                    remove_proxy(&mut v.meshes[mi], ver);
                }
                if let Some(wk) = wkey_of_row(&old) {
                    if let Some(m) = self.pods_by_workload.get_mut(&wk) {
                        m.remove(old.name());
                        if m.is_empty() {
                            self.pods_by_workload.remove(&wk);
                        }
                    }
                    dirty_workloads.insert(wk);
                }
            }
            match new {
                Some(p) => {
                    let (row, wl, counts) = self.ctx.pod_row(&v.meshes, p);
                    if let Some((mi, ver)) = counts {
                        add_proxy(&mut v.meshes[mi], ver);
                    }
                    if let Some(wk) = wl {
                        self.pods_by_workload
                            .entry(wk.clone())
                            .or_default()
                            .replace(ByName(p.clone()));
                        dirty_workloads.insert(wk);
                    }
                    match at {
                        Ok(i) => v.pods[i] = Arc::new(row),
                        Err(i) => v.pods.insert(i, Arc::new(row)),
                    }
                }
                None => {
                    if let Ok(i) = at {
                        v.pods.remove(i);
                    }
                }
            }
        }

        // endpoints
        for (k, e) in &delta.endpoints {
            match e {
                Some(e) => self.ctx.endpoints.insert(k.clone(), e.clone()),
                None => self.ctx.endpoints.remove(k),
            };
            dirty_services.insert(k.clone());
        }

        // workloads, and the services they back
        for wk in &dirty_workloads {
            let at = v.workloads.binary_search_by(|w| {
                (w.namespace.as_str(), w.name.as_str(), w.kind).cmp(&(
                    wk.0.as_str(),
                    wk.1.as_str(),
                    wk.2,
                ))
            });
            let old = at.ok().map(|i| v.workloads[i].clone());
            let new = self.workloads_raw.get(wk).map(|raw| {
                let pods: Vec<&RawPod> = self
                    .pods_by_workload
                    .get(wk)
                    .map(|m| m.iter().map(|p| p.0.as_ref()).collect())
                    .unwrap_or_default();
                Arc::new(self.ctx.workload(&v.meshes, raw, &pods))
            });
            for w in old.iter().chain(new.iter()) {
                for s in v.services_in(&w.namespace) {
                    if super::selector_matches(&s.selector, &w.labels) {
                        dirty_services.insert((s.namespace.clone(), s.name.clone()));
                    }
                }
            }
            match (at, new) {
                (Ok(i), Some(w)) => v.workloads[i] = w,
                (Err(i), Some(w)) => v.workloads.insert(i, w),
                (Ok(i), None) => {
                    v.workloads.remove(i);
                }
                (Err(_), None) => {}
            }
        }
        for ns in &relabelled {
            for s in v.services_in(ns) {
                dirty_services.insert((s.namespace.clone(), s.name.clone()));
            }
        }
        for (ns, name) in &dirty_services {
            let Ok(i) = v
                .services
                .binary_search_by(|s| (s.namespace.as_str(), s.name.as_str()).cmp(&(ns, name)))
            else {
                continue;
            };
            let raw = v.services[i].raw.clone();
            let backing: Vec<&Workload> = v
                .workloads_in(ns)
                .iter()
                .map(|w| w.as_ref())
                .filter(|w| super::selector_matches(&raw.selector, &w.labels))
                .collect();
            let s = Arc::new(self.ctx.service(&raw, &backing));
            v.services[i] = s;
        }

        self.ctx.mesh_healths(&mut v.meshes);
        let (health, counts) = cluster_health(
            &v.state,
            self.ctx.stale.as_deref(),
            &v.meshes,
            &v.workloads,
            v.services.is_empty(),
        );
        v.health = health;
        v.health_counts = counts;
        v.counts.pods = v.pods.len();
        v.counts.workloads = v.workloads.len();
        Ok(())
    }
}
