//! The live fleet: one task per cluster, kube-runtime watchers feeding trimmed caches, a
//! connection state machine per cluster, and one aggregator that derives and publishes an
//! `Arc<Snapshot>` at most every 100 ms when something changed. A dead or slow cluster never
//! blocks the others, the snapshot, or the caller. The only place that reads from clusters.

pub mod fetch;
pub mod kubeconfig;
pub mod slim;

use crate::fleet::slim::SlimPod;
use crate::model::raw::*;
use crate::model::{ClusterInput, ClusterView, ConnState, Snapshot, derive_cluster};
use chrono::Utc;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Namespace, Service};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::watcher;
pub use kubeconfig::{Selection, Target};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

/// How long a cluster may fail before stale becomes unreachable.
pub const UNREACHABLE_AFTER: Duration = Duration::from_secs(30);
/// How often each cluster is pinged (`/version`) for reachability and latency.
pub const PING_EVERY: Duration = Duration::from_secs(2);
/// How long a ping may take before the cluster counts as not answering. Slow is not dead: a
/// cluster that answers in 3 s is shown with its latency, not as stale.
pub const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a cluster that is still syncing is re-derived.
pub const DERIVE_WHILE_SYNCING: Duration = Duration::from_secs(1);
/// The least time between two published snapshots.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(100);

pub use meshdeck_core::kinds::{ISTIO_KINDS, POLICY_KINDS};

type Key = (String, String);

/// One kind's cache: the live map, and the buffer of a (re-)list in progress.
struct KindStore<T> {
    items: HashMap<Key, Arc<T>>,
    buffer: Option<HashMap<Key, Arc<T>>>,
    synced: bool,
}

impl<T> Default for KindStore<T> {
    fn default() -> Self {
        KindStore {
            items: HashMap::new(),
            buffer: None,
            synced: false,
        }
    }
}

impl<T> KindStore<T> {
    fn sorted(&self) -> Vec<Arc<T>> {
        let mut v: Vec<(&Key, &Arc<T>)> = self.items.iter().collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v.into_iter().map(|(_, t)| t.clone()).collect()
    }
}

#[derive(Default)]
struct Cache {
    namespaces: KindStore<RawNamespace>,
    services: KindStore<RawService>,
    endpoints: KindStore<RawEndpoints>,
    pods: KindStore<RawPod>,
    deployments: KindStore<RawWorkload>,
    statefulsets: KindStore<RawWorkload>,
    replicasets: KindStore<RawReplicaSet>,
    configmaps: KindStore<RawConfigMap>,
    istio: BTreeMap<String, KindStore<RawObject>>,
    policies: BTreeMap<String, KindStore<RawObject>>,
    /// Kinds whose watcher runs (discovered); `None` until discovery answered.
    kinds_total: Option<usize>,
    version: Option<String>,
    latency_ms: Option<u64>,
    ever_ok: bool,
    /// When the current run of failures started, when, and the last error.
    failing: Option<(Instant, String, String)>,
    auth_error: Option<String>,
    dirty: bool,
}

impl Cache {
    fn synced_count(&self) -> usize {
        [
            self.namespaces.synced,
            self.services.synced,
            self.endpoints.synced,
            self.pods.synced,
            self.deployments.synced,
            self.statefulsets.synced,
            self.replicasets.synced,
            self.configmaps.synced,
        ]
        .iter()
        .filter(|s| **s)
        .count()
            + self.istio.values().filter(|s| s.synced).count()
            + self.policies.values().filter(|s| s.synced).count()
    }

    fn state(&self, now: Instant) -> ConnState {
        if let Some(e) = &self.auth_error {
            return ConnState::AuthError { error: e.clone() };
        }
        if let Some((since, since_text, error)) = &self.failing {
            if !self.ever_ok || now.duration_since(*since) >= UNREACHABLE_AFTER {
                return ConnState::Unreachable {
                    since: since_text.clone(),
                    error: error.clone(),
                };
            }
            return ConnState::Stale {
                since: since_text.clone(),
                error: error.clone(),
            };
        }
        match self.kinds_total {
            None => ConnState::Connecting,
            Some(total) => {
                let synced = self.synced_count();
                if synced >= total {
                    ConnState::Synced
                } else {
                    ConnState::Syncing { synced, total }
                }
            }
        }
    }

    fn fail(&mut self, error: String) {
        match &mut self.failing {
            Some((_, _, e)) => *e = error,
            None => {
                self.failing = Some((
                    Instant::now(),
                    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    error,
                ))
            }
        }
        self.dirty = true;
    }

    fn ok(&mut self) {
        self.ever_ok = true;
        if self.failing.take().is_some() {
            self.dirty = true;
        }
        if self.auth_error.take().is_some() {
            self.dirty = true;
        }
    }

    fn input(&self, t: &Target) -> ClusterInput {
        let mut workloads = self.deployments.sorted();
        workloads.extend(self.statefulsets.sorted());
        ClusterInput {
            name: t.context.clone(),
            context: t.context.clone(),
            server: t.server.clone(),
            user: t.user.clone(),
            version: self.version.clone(),
            latency_ms: self.latency_ms,
            namespaces: self.namespaces.sorted(),
            services: self.services.sorted(),
            endpoints: self.endpoints.sorted(),
            pods: self.pods.sorted(),
            workloads,
            replicasets: self.replicasets.sorted(),
            configmaps: self.configmaps.sorted(),
            istio: self.istio.values().flat_map(KindStore::sorted).collect(),
            policies: self.policies.values().flat_map(KindStore::sorted).collect(),
        }
    }
}

/// A readable error: the server's message, or the transport's, or an exec plugin's stderr.
pub fn describe_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({} {})", s.message, s.code, s.reason),
        kube::Error::Auth(a) => {
            let text = a.to_string();
            if let kube::client::AuthError::AuthExecRun { out, .. } = a {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let stderr = stderr.trim();
                if !stderr.is_empty() {
                    return format!("credential plugin failed: {stderr}");
                }
            }
            format!("authentication: {text}")
        }
        other => {
            // the innermost cause says the most (connection refused, certificate, timeout)
            let mut msg = other.to_string();
            let mut src: Option<&dyn std::error::Error> = std::error::Error::source(other);
            while let Some(s) = src {
                msg = s.to_string();
                src = s.source();
            }
            msg
        }
    }
}

fn is_auth(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 401) || matches!(e, kube::Error::Auth(_))
}

/// Reconnect quickly: 200 ms, doubling, at most 3 s apart (kube-runtime's default waits up to
/// 30 s, too long for an operator watching a cluster come back).
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(3);
/// How often a kind the user may not list is tried again.
const FORBIDDEN_RETRY: Duration = Duration::from_secs(60);

/// One shared copy of each distinct label set (and container name and image). Values no pod
/// holds any more are dropped whenever a table has doubled since its last sweep, so churn does
/// not grow it without bound.
#[derive(Default)]
struct LabelInterner {
    set: std::collections::HashSet<Arc<crate::model::raw::Labels>>,
    sweep_at: usize,
    strs: std::collections::HashSet<Arc<str>>,
    strs_sweep_at: usize,
}

impl LabelInterner {
    fn intern_str(&mut self, s: &Arc<str>) -> Arc<str> {
        if let Some(a) = self.strs.get(&**s) {
            return a.clone();
        }
        if self.strs.len() >= self.strs_sweep_at.max(1024) {
            self.strs.retain(|a| Arc::strong_count(a) > 1);
            self.strs_sweep_at = self.strs.len() * 2;
        }
        self.strs.insert(s.clone());
        s.clone()
    }

    fn intern(&mut self, l: crate::model::raw::Labels) -> Arc<crate::model::raw::Labels> {
        if let Some(a) = self.set.get(&l) {
            return a.clone();
        }
        if self.set.len() >= self.sweep_at.max(1024) {
            self.set.retain(|a| Arc::strong_count(a) > 1);
            self.sweep_at = self.set.len() * 2;
        }
        let a = Arc::new(l);
        self.set.insert(a.clone());
        a
    }
}

/// Make a closure's signature higher-ranked over the borrow (the compiler cannot infer it).
fn higher_ranked<F: Fn(&mut Cache) -> &mut KindStore<RawObject>>(f: F) -> F {
    f
}

/// Run one watcher, applying its events to one slot of the cache. After any error the watcher
/// starts over with a fresh list (after a backoff), so `synced` always means "a list since the
/// last error completed": a resumed watch would say nothing about recovery.
async fn watch_into<K, T>(
    api: Api<K>,
    cfg: watcher::Config,
    cache: Arc<Mutex<Cache>>,
    changed: Arc<Notify>,
    slot: impl Fn(&mut Cache) -> &mut KindStore<T> + Send + 'static,
    conv: impl Fn(&K) -> Option<(Key, T)> + Send + 'static,
    stop: CancellationToken,
) where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    T: Send + Sync + 'static,
{
    let mut delay = BACKOFF_MIN;
    loop {
        let mut stream = watcher::watcher(api.clone(), cfg.clone()).boxed();
        let mut wait = delay;
        loop {
            let ev = tokio::select! {
                ev = stream.next() => ev,
                _ = stop.cancelled() => return,
            };
            let Some(ev) = ev else { break };
            let mut c = cache.lock();
            match ev {
                Ok(watcher::Event::Init) => slot(&mut c).buffer = Some(HashMap::new()),
                Ok(watcher::Event::InitApply(o)) => {
                    if let Some((k, t)) = conv(&o) {
                        slot(&mut c)
                            .buffer
                            .get_or_insert_with(HashMap::new)
                            .insert(k, Arc::new(t));
                    }
                }
                Ok(watcher::Event::InitDone) => {
                    // a list that answered proves the credentials work again: a 401 that
                    // cleared is not an auth error any more
                    if c.auth_error.take().is_some() {
                        c.dirty = true;
                    }
                    let s = slot(&mut c);
                    s.items = s.buffer.take().unwrap_or_default();
                    s.synced = true;
                    delay = BACKOFF_MIN;
                    if c.kinds_total.is_some_and(|n| c.synced_count() >= n) {
                        c.ok();
                    }
                    c.dirty = true;
                }
                Ok(watcher::Event::Apply(o)) => {
                    if let Some((k, t)) = conv(&o) {
                        slot(&mut c).items.insert(k, Arc::new(t));
                        c.dirty = true;
                    }
                }
                Ok(watcher::Event::Delete(o)) => {
                    if let Some((k, _)) = conv(&o) {
                        slot(&mut c).items.remove(&k);
                        c.dirty = true;
                    }
                }
                Err(e) => {
                    let (msg, code) = match &e {
                        watcher::Error::InitialListFailed(k)
                        | watcher::Error::WatchStartFailed(k)
                        | watcher::Error::WatchFailed(k) => {
                            if is_auth(k) {
                                c.auth_error = Some(describe_error(k));
                            }
                            (describe_error(k), api_code(k))
                        }
                        watcher::Error::WatchError(s) => {
                            (format!("{} ({})", s.message, s.code), Some(s.code))
                        }
                        other => (other.to_string(), None),
                    };
                    tracing::debug!("watch error: {msg}");
                    let s = slot(&mut c);
                    s.buffer = None;
                    match code {
                        // expired: routine, re-list at once
                        Some(410) => wait = Duration::ZERO,
                        // this user may not list this kind: not a failure. What was listed
                        // before stays (a 403 that clears must not wipe the rows), and the
                        // kind is asked again soon, then less and less often.
                        Some(403) => {
                            s.synced = true;
                            wait = delay;
                            delay = (delay * 2).min(FORBIDDEN_RETRY);
                        }
                        _ => {
                            s.synced = false;
                            c.fail(msg);
                            delay = (delay * 2).min(BACKOFF_MAX);
                        }
                    }
                    c.dirty = true;
                    drop(c);
                    changed.notify_one();
                    break;
                }
            }
            drop(c);
            changed.notify_one();
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => return,
        }
    }
}

fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

fn key_of(m: &kube::api::ObjectMeta) -> Key {
    (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
    )
}

/// Trim a dynamic object: its JSON without managedFields.
fn raw_object(o: &DynamicObject) -> Option<(Key, RawObject)> {
    let mut v = serde_json::to_value(o).ok()?;
    if let Some(m) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        m.remove("managedFields");
    }
    Some((key_of(&o.metadata), RawObject::from_value(&v)?))
}

async fn run_cluster(
    target: Target,
    cache: Arc<Mutex<Cache>>,
    changed: Arc<Notify>,
    stop: CancellationToken,
) {
    let client = match crate::session::client(&target, crate::session::Purpose::Watch) {
        Ok(c) => c,
        Err(e) => {
            cache
                .lock()
                .fail(format!("cannot build a client: {}", describe_error(&e)));
            changed.notify_one();
            return;
        }
    };
    // reachability and latency
    {
        let (client, cache, changed, stop) =
            (client.clone(), cache.clone(), changed.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let t = Instant::now();
                let r = tokio::time::timeout(PING_TIMEOUT, client.apiserver_version()).await;
                {
                    let mut c = cache.lock();
                    match r {
                        Ok(Ok(v)) => {
                            let latency = t.elapsed().as_millis() as u64;
                            // a new latency is published when it moved by more than a fifth (and
                            // 50 ms), not on every ping
                            let moved = c
                                .latency_ms
                                .is_none_or(|old| old.abs_diff(latency) > 50.max(old / 5));
                            if c.version.as_deref() != Some(v.git_version.as_str()) || moved {
                                c.dirty = true;
                            }
                            c.version = Some(v.git_version);
                            c.latency_ms = Some(latency);
                            // a ping clears failures only once the watchers answer again
                            if c.kinds_total.is_some_and(|n| c.synced_count() >= n) {
                                c.ok();
                            }
                        }
                        Ok(Err(e)) => {
                            if is_auth(&e) {
                                c.auth_error = Some(describe_error(&e));
                            }
                            c.fail(describe_error(&e));
                        }
                        Err(_) => c.fail(format!("no answer within {}s", PING_TIMEOUT.as_secs())),
                    }
                }
                changed.notify_one();
                tokio::select! {
                    _ = tokio::time::sleep(PING_EVERY) => {}
                    _ = stop.cancelled() => return,
                }
            }
        });
    }
    // which optional kinds does the cluster serve?
    let mut delay = Duration::from_millis(200);
    let served: Vec<(bool, ApiResource)> = loop {
        let groups = [
            "networking.istio.io",
            "security.istio.io",
            "networking.mesh.gloo.solo.io",
            "rbac.enterprise.mesh.gloo.solo.io",
        ];
        let disc = kube::discovery::Discovery::new(client.clone()).filter(&groups);
        let r = tokio::select! {
            r = disc.run() => r,
            _ = stop.cancelled() => return,
        };
        match r {
            Ok(d) => {
                let mut out = Vec::new();
                for (istio, kinds) in [(true, ISTIO_KINDS), (false, POLICY_KINDS)] {
                    for (g, v, k, _) in kinds {
                        let gvk = kube::api::GroupVersionKind::gvk(g, v, k);
                        if let Some((ar, _)) = d.resolve_gvk(&gvk) {
                            out.push((istio, ar));
                        }
                    }
                }
                break out;
            }
            Err(e) => {
                {
                    let mut c = cache.lock();
                    if is_auth(&e) {
                        c.auth_error = Some(describe_error(&e));
                    }
                    c.fail(describe_error(&e));
                }
                changed.notify_one();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.cancelled() => return,
                }
                delay = (delay * 2).min(Duration::from_secs(3));
            }
        }
    };
    {
        let mut c = cache.lock();
        c.kinds_total = Some(8 + served.len());
        for (istio, ar) in &served {
            let map = if *istio {
                &mut c.istio
            } else {
                &mut c.policies
            };
            map.insert(ar.kind.clone(), KindStore::default());
        }
        c.dirty = true;
    }
    changed.notify_one();

    let cfg = watcher::Config::default();
    let mut tasks = tokio::task::JoinSet::new();
    macro_rules! typed {
        ($k:ty, $field:ident, $conv:expr, $cfg:expr) => {
            tasks.spawn(watch_into(
                Api::<$k>::all(client.clone()),
                $cfg,
                cache.clone(),
                changed.clone(),
                |c: &mut Cache| &mut c.$field,
                $conv,
                stop.clone(),
            ));
        };
    }
    typed!(
        Namespace,
        namespaces,
        |o: &Namespace| Some((key_of(&o.metadata), RawNamespace::from(o))),
        cfg.clone()
    );
    typed!(
        Service,
        services,
        |o: &Service| Some((key_of(&o.metadata), RawService::from(o))),
        cfg.clone()
    );
    typed!(
        Endpoints,
        endpoints,
        |o: &Endpoints| Some((key_of(&o.metadata), RawEndpoints::from(o))),
        cfg.clone()
    );
    // pods decode into the slim type: serde skips what meshdeck never reads; the pods of one
    // ReplicaSet carry the same labels, so they share one copy
    let interner = Mutex::new(LabelInterner::default());
    typed!(
        SlimPod,
        pods,
        move |o: &SlimPod| {
            let mut p = RawPod::from(o);
            let mut i = interner.lock();
            p.labels = i.intern(Arc::unwrap_or_clone(std::mem::take(&mut p.labels)));
            for c in &mut p.containers {
                c.name = i.intern_str(&c.name);
                c.image = i.intern_str(&c.image);
            }
            Some((key_of(&o.metadata), p))
        },
        cfg.clone()
    );
    typed!(
        Deployment,
        deployments,
        |o: &Deployment| Some((key_of(&o.metadata), RawWorkload::from(o))),
        cfg.clone()
    );
    typed!(
        StatefulSet,
        statefulsets,
        |o: &StatefulSet| Some((key_of(&o.metadata), RawWorkload::from(o))),
        cfg.clone()
    );
    typed!(
        ReplicaSet,
        replicasets,
        |o: &ReplicaSet| Some((key_of(&o.metadata), RawReplicaSet::from(o))),
        cfg.clone()
    );
    // only Istio's mesh ConfigMaps (they carry istio.io/rev); never Secrets
    typed!(
        ConfigMap,
        configmaps,
        |o: &ConfigMap| Some((key_of(&o.metadata), RawConfigMap::from(o))),
        cfg.clone().labels("istio.io/rev")
    );
    for (istio, ar) in served {
        let kind = ar.kind.clone();
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let slot = higher_ranked(move |c: &mut Cache| {
            let map = if istio { &mut c.istio } else { &mut c.policies };
            map.entry(kind.clone()).or_default()
        });
        tasks.spawn(watch_into(
            api,
            cfg.clone(),
            cache.clone(),
            changed.clone(),
            slot,
            raw_object,
            stop.clone(),
        ));
    }
    stop.cancelled().await;
    tasks.shutdown().await;
}

/// Pods are watched as `SlimPod` (the same API path as `Pod`).
impl kube::Resource for SlimPod {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> std::borrow::Cow<'_, str> {
        "Pod".into()
    }
    fn group(_: &()) -> std::borrow::Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> std::borrow::Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> std::borrow::Cow<'_, str> {
        "pods".into()
    }
    fn meta(&self) -> &kube::api::ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut kube::api::ObjectMeta {
        &mut self.metadata
    }
}

/// A running fleet connection. Dropping it stops every task.
pub struct FleetHandle {
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    stop: CancellationToken,
}

impl Drop for FleetHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl FleetHandle {
    pub fn latest(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    /// Wait until every cluster is synced (true) or `timeout` passes (false).
    pub async fn wait_synced(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let all = {
                let s = self.snapshots.borrow_and_update();
                !s.clusters.is_empty() && s.clusters.iter().all(|c| c.state == ConnState::Synced)
            };
            if all {
                return true;
            }
            match tokio::time::timeout_at(deadline, self.snapshots.changed()).await {
                Ok(Ok(())) => {}
                _ => return false,
            }
        }
    }
}

/// Connect to every target and start publishing snapshots.
pub fn start(targets: Vec<Target>) -> FleetHandle {
    let stop = CancellationToken::new();
    let changed = Arc::new(Notify::new());
    let caches: Vec<(Target, Arc<Mutex<Cache>>)> = targets
        .into_iter()
        .map(|t| {
            (
                t,
                Arc::new(Mutex::new(Cache {
                    dirty: true,
                    ..Default::default()
                })),
            )
        })
        .collect();
    for (t, c) in &caches {
        tokio::spawn(run_cluster(
            t.clone(),
            c.clone(),
            changed.clone(),
            stop.child_token(),
        ));
    }
    let initial: Vec<Arc<ClusterView>> = caches
        .iter()
        .map(|(t, c)| Arc::new(derive_cluster(&c.lock().input(t), ConnState::Connecting)))
        .collect();
    let (tx, rx) = watch::channel(Arc::new(Snapshot {
        clusters: initial,
        seq: 0,
    }));
    let agg_stop = stop.clone();
    tokio::spawn(async move {
        let mut views: Vec<Arc<ClusterView>> = tx.borrow().clusters.clone();
        let mut states: Vec<ConnState> = vec![ConnState::Connecting; caches.len()];
        let mut derived: Vec<Instant> = vec![Instant::now(); caches.len()];
        let mut seq = 0u64;
        let mut tick = tokio::time::interval(PUBLISH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = agg_stop.cancelled() => return,
            }
            let now = Instant::now();
            let mut any = false;
            for (i, (t, cache)) in caches.iter().enumerate() {
                let (input, state) = {
                    let mut c = cache.lock();
                    let state = c.state(now);
                    if !c.dirty && state == states[i] {
                        continue;
                    }
                    // While a cluster is still syncing, every kind that finishes its list
                    // would re-derive it; once a second is enough until it is synced.
                    let syncing = |s: &ConnState| matches!(s, ConnState::Syncing { .. });
                    if syncing(&state)
                        && syncing(&states[i])
                        && now.duration_since(derived[i]) < DERIVE_WHILE_SYNCING
                    {
                        continue;
                    }
                    c.dirty = false;
                    (c.input(t), state)
                };
                states[i] = state.clone();
                derived[i] = now;
                views[i] = Arc::new(derive_cluster(&input, state));
                any = true;
            }
            if any {
                seq += 1;
                let _ = tx.send(Arc::new(Snapshot {
                    clusters: views.clone(),
                    seq,
                }));
            }
            // sleep until something changes or the next tick (stale → unreachable needs time)
            tokio::select! {
                _ = changed.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = agg_stop.cancelled() => return,
            }
        }
    });
    FleetHandle {
        snapshots: rx,
        stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_label_sets_share_one_copy_and_dead_ones_are_swept() {
        let mut i = LabelInterner::default();
        let l = |n: usize| -> crate::model::raw::Labels {
            [("app".to_string(), format!("a{n}"))].into()
        };
        let a = i.intern(l(1));
        let b = i.intern(l(1));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &i.intern(l(2))));
        // 5,000 distinct sets nobody keeps: the table stays bounded
        for n in 10..5010 {
            drop(i.intern(l(n)));
        }
        assert!(i.set.len() <= 2048, "{}", i.set.len());
        assert!(
            Arc::ptr_eq(&a, &i.intern(l(1))),
            "a live set survives sweeps"
        );
        let s: Arc<str> = "docker.io/istio/proxyv2:1.30.3".into();
        let t: Arc<str> = "docker.io/istio/proxyv2:1.30.3".into();
        assert!(Arc::ptr_eq(&i.intern_str(&s), &i.intern_str(&t)));
    }
}
