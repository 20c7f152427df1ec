//! The live fleet: one task per cluster, kube-runtime watchers feeding trimmed caches, a
//! connection state machine per cluster, and one aggregator that derives and publishes an
//! `Arc<Snapshot>` at most every 100 ms when something changed. A dead or slow cluster never
//! blocks the others, the snapshot, or the caller. The only place that reads from clusters.

pub mod fetch;
pub mod kubeconfig;
/// Pods as meshdeck decodes them (the core's).
pub use meshdeck_core::model::slim;

use crate::model::raw::*;
use crate::model::slim::SlimPod;
use crate::model::{ClusterInput, ClusterView, ConnState, Delta, Deriver, Snapshot};
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
/// How often each cluster is pinged (`/version`) for reachability and latency while it does
/// not answer at all (its return shows within this, and the watchers waiting for it start).
pub const PING_EVERY: Duration = Duration::from_secs(1);
/// How often a cluster that answers is pinged: its watches report a dropped connection at
/// once, the ping is for latency and a server that hangs (20 clusters: 4 requests a second
/// at rest, was 10).
pub const PING_EVERY_HEALTHY: Duration = Duration::from_secs(5);
/// How long a ping may take before the cluster counts as not answering. Slow is not dead: a
/// cluster that answers in 3 s is shown with its latency, not as stale.
pub const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a cluster that is still syncing is re-derived.
pub const DERIVE_WHILE_SYNCING: Duration = Duration::from_secs(2);
/// The least time between two published snapshots.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(100);

pub use meshdeck_core::kinds::{ISTIO_KINDS, POLICY_KINDS};

/// (namespace, name). `Arc`s: a pod's key shares the pod's own (interned) strings.
type Key = (Arc<str>, Arc<str>);

/// Where one watcher looks: every namespace (`None`), or one.
type Scope = Option<Arc<str>>;

/// The most namespaces a kind the user may not list cluster-wide is watched in, one by one.
pub const MAX_FALLBACK_NAMESPACES: usize = 64;

/// What one watcher of a kind has: its items, the buffer of a (re-)list in progress, and
/// whether its last list answered or was forbidden.
struct Part<T> {
    items: HashMap<Key, Arc<T>>,
    buffer: Option<HashMap<Key, Arc<T>>>,
    synced: bool,
    /// The server refused to list here (403): what it said. What was listed before stays.
    forbidden: Option<String>,
    /// A list here answered once: a later 403 is a blip, retried quickly.
    ever_listed: bool,
}

impl<T> Default for Part<T> {
    fn default() -> Self {
        Part {
            items: HashMap::new(),
            buffer: None,
            synced: false,
            forbidden: None,
            ever_listed: false,
        }
    }
}

/// One kind's cache: a part per watcher. Normally one, across every namespace; when the
/// cluster-wide list is forbidden, also one per namespace it is watched in instead.
struct KindStore<T> {
    kind: String,
    parts: BTreeMap<Scope, Part<T>>,
    /// Keys applied or deleted since the aggregator last looked, while the store is one
    /// cluster-wide part: what an incremental derivation follows.
    changed: Vec<Key>,
    /// Something changed that `changed` does not say (a list answered, a part started or
    /// stopped, too many changes): derive in full.
    relisted: bool,
}

/// The most changes one kind keeps between derivations; past it, the next one is full.
const MAX_PENDING_CHANGES: usize = 20_000;

impl<T> KindStore<T> {
    fn new(kind: &str) -> Self {
        KindStore {
            kind: kind.to_string(),
            parts: BTreeMap::new(),
            changed: Vec::new(),
            relisted: true,
        }
    }

    /// Record a change of `key` in the part at `scope`.
    fn note(&mut self, scope: &Scope, key: &Key) {
        if scope.is_none() && self.parts.len() == 1 && self.changed.len() < MAX_PENDING_CHANGES {
            self.changed.push(key.clone());
        } else {
            self.relisted = true;
            self.changed.clear();
        }
    }

    /// Whether anything changed since the last `take`/`clear`.
    fn touched(&self) -> bool {
        self.relisted || !self.changed.is_empty()
    }

    fn clear(&mut self) {
        self.relisted = false;
        self.changed.clear();
    }

    /// The changed keys with their current values (None: deleted), or None when only a full
    /// derivation says what changed.
    fn take(&mut self) -> Option<Vec<(crate::model::derive::Key, Option<Arc<T>>)>> {
        if self.relisted {
            return None;
        }
        let part = self.parts.get(&None)?;
        let out = self
            .changed
            .drain(..)
            .map(|k| {
                let v = part.items.get(&k).cloned();
                ((k.0.to_string(), k.1.to_string()), v)
            })
            .collect();
        Some(out)
    }

    fn part(&mut self, scope: &Scope) -> &mut Part<T> {
        self.parts.entry(scope.clone()).or_default()
    }

    /// Every watcher's list answered or was refused.
    fn settled(&self) -> bool {
        !self.parts.is_empty()
            && self
                .parts
                .values()
                .all(|p| p.synced || p.forbidden.is_some())
    }

    fn forbidden_all(&self) -> bool {
        self.parts.get(&None).is_some_and(|p| p.forbidden.is_some())
    }

    fn sorted(&self) -> Vec<Arc<T>> {
        let mut v: Vec<(&Key, &Arc<T>)> = self.parts.values().flat_map(|p| &p.items).collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        // a blip's kept cluster-wide rows and the namespace watchers' rows name the same objects
        v.dedup_by(|a, b| a.0 == b.0);
        v.into_iter().map(|(_, t)| t.clone()).collect()
    }
}

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
    /// When the server last answered a ping: a cluster whose watches fail while it answers is
    /// stale, never unreachable.
    answered: Option<Instant>,
    auth_error: Option<String>,
    /// A credential plugin is running and no credentials came yet: since when, and which.
    waiting_for_credentials: Option<String>,
    /// The last watch event or list answer: the watches delivering is reachability.
    delivered: Option<Instant>,
    /// Who the server says this session is (SelfSubjectReview): the name, or why it could
    /// not say; None until asked (a read-only session never asks: the review is a POST).
    whoami: Option<Result<String, String>>,
    dirty: bool,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            namespaces: KindStore::new("Namespace"),
            services: KindStore::new("Service"),
            endpoints: KindStore::new("Endpoints"),
            pods: KindStore::new("Pod"),
            deployments: KindStore::new("Deployment"),
            statefulsets: KindStore::new("StatefulSet"),
            replicasets: KindStore::new("ReplicaSet"),
            configmaps: KindStore::new("ConfigMap"),
            istio: BTreeMap::new(),
            policies: BTreeMap::new(),
            kinds_total: None,
            version: None,
            latency_ms: None,
            ever_ok: false,
            failing: None,
            answered: None,
            auth_error: None,
            waiting_for_credentials: None,
            delivered: None,
            whoami: None,
            dirty: true,
        }
    }
}

/// What every kind's store says about access, without its type.
struct Access<'a> {
    kind: &'a str,
    settled: bool,
    forbidden_all: bool,
    /// Namespaces watched one by one: whether each was listed (true) or forbidden (false).
    namespaces: Vec<(&'a str, bool)>,
}

impl<T> KindStore<T> {
    fn access(&self) -> Access<'_> {
        Access {
            kind: &self.kind,
            settled: self.settled(),
            forbidden_all: self.forbidden_all(),
            namespaces: self
                .parts
                .iter()
                .filter_map(|(s, p)| s.as_deref().map(|ns| (ns, p.forbidden.is_none())))
                .collect(),
        }
    }
}

impl Cache {
    fn access(&self) -> Vec<Access<'_>> {
        let mut v = vec![
            self.namespaces.access(),
            self.services.access(),
            self.endpoints.access(),
            self.pods.access(),
            self.deployments.access(),
            self.statefulsets.access(),
            self.replicasets.access(),
            self.configmaps.access(),
        ];
        v.extend(self.istio.values().map(KindStore::access));
        v.extend(self.policies.values().map(KindStore::access));
        v
    }

    fn synced_count(&self) -> usize {
        self.access().iter().filter(|a| a.settled).count()
    }

    /// Every kind the cluster serves has listed.
    fn synced(&self) -> bool {
        self.kinds_total.is_some_and(|n| self.synced_count() >= n)
    }

    /// What this session may not see here, in a line; `None` when it sees everything.
    fn forbidden(&self) -> Option<String> {
        let access = self.access();
        let all: Vec<&str> = access
            .iter()
            .filter(|a| a.forbidden_all)
            .map(|a| a.kind)
            .collect();
        let refused_in: BTreeMap<&str, Vec<&str>> =
            access.iter().fold(BTreeMap::new(), |mut m, a| {
                for (ns, ok) in &a.namespaces {
                    if !ok {
                        m.entry(*ns).or_insert_with(Vec::new).push(a.kind);
                    }
                }
                m
            });
        if all.is_empty() && refused_in.is_empty() {
            return None;
        }
        let watched: std::collections::BTreeSet<&str> = access
            .iter()
            .flat_map(|a| a.namespaces.iter().filter(|(_, ok)| *ok).map(|(ns, _)| *ns))
            .collect();
        // what is shown first: it is what the user reads the rows by
        let mut text = String::new();
        if !all.is_empty() {
            if watched.is_empty() {
                text.push_str(&format!(
                    "nothing of {} is visible (set the context's namespace, or `namespaces:` for this context in the settings): may not list them in all namespaces",
                    all.join(", ")
                ));
            } else {
                text.push_str(&format!(
                    "shown for namespace{} {} only: may not list {} in all namespaces",
                    if watched.len() == 1 { "" } else { "s" },
                    watched.iter().copied().collect::<Vec<_>>().join(", "),
                    all.join(", ")
                ));
            }
        }
        for (ns, kinds) in refused_in {
            if !text.is_empty() {
                text.push_str("; ");
            }
            text.push_str(&format!("forbidden in {ns}: {}", kinds.join(", ")));
        }
        Some(text)
    }

    fn state(&self, now: Instant) -> ConnState {
        if let Some(e) = &self.auth_error {
            return ConnState::AuthError { error: e.clone() };
        }
        if let Some((since, since_text, error)) = &self.failing {
            let answering = self
                .answered
                .is_some_and(|t| now.duration_since(t) < PING_TIMEOUT + PING_EVERY_HEALTHY);
            if !self.ever_ok || (!answering && now.duration_since(*since) >= UNREACHABLE_AFTER) {
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
        if let Some(plugin) = &self.waiting_for_credentials {
            return ConnState::WaitingForCredentials {
                plugin: plugin.clone(),
            };
        }
        match self.kinds_total {
            None => ConnState::Connecting,
            Some(total) => {
                let synced = self.synced_count();
                if synced < total {
                    ConnState::Syncing { synced, total }
                } else if let Some(forbidden) = self.forbidden() {
                    ConnState::Partial { forbidden }
                } else {
                    ConnState::Synced
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

    /// What changed since the last derivation, when an incremental one can follow it: only
    /// pods, endpoints, workloads and ReplicaSets, each applied or deleted one by one.
    fn take_delta(&mut self) -> Option<Delta> {
        let untracked = self.namespaces.touched()
            || self.services.touched()
            || self.configmaps.touched()
            || self.istio.values().any(KindStore::touched)
            || self.policies.values().any(KindStore::touched);
        if untracked {
            return None;
        }
        let mut d = Delta {
            pods: self.pods.take()?,
            endpoints: self.endpoints.take()?,
            replicasets: self.replicasets.take()?,
            workloads: Vec::new(),
        };
        for (kind, store) in [
            (WorkloadKind::Deployment, &mut self.deployments),
            (WorkloadKind::StatefulSet, &mut self.statefulsets),
        ] {
            d.workloads
                .extend(store.take()?.into_iter().map(|(k, w)| (kind, k, w)));
        }
        Some(d)
    }

    /// A full derivation reads everything: forget what changed.
    fn clear_changes(&mut self) {
        self.namespaces.clear();
        self.services.clear();
        self.endpoints.clear();
        self.pods.clear();
        self.deployments.clear();
        self.statefulsets.clear();
        self.replicasets.clear();
        self.configmaps.clear();
        self.istio.values_mut().for_each(KindStore::clear);
        self.policies.values_mut().for_each(KindStore::clear);
    }

    fn input(&self, t: &Target) -> ClusterInput {
        let mut workloads = self.deployments.sorted();
        workloads.extend(self.statefulsets.sorted());
        ClusterInput {
            name: t.cluster.clone(),
            context: t.context.clone(),
            aliases: t.aliases.clone(),
            server: t.server.clone(),
            // who the session acts as there
            user: t.shown_identity(self.whoami.as_ref().map(|r| r.as_deref().map_err(|_| ()))),
            version: self.version.clone(),
            latency_ms: self.latency_ms,
            pace: t.pace.summary(),
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
        kube::Error::Api(s) => status_text(s),
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
    if matches!(e, kube::Error::Api(s) if s.code == 401) || matches!(e, kube::Error::Auth(_)) {
        return true;
    }
    // a credential plugin that failed is an auth error with the plugin's words
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = src {
        if s.is::<crate::credentials::CredentialError>() {
            return true;
        }
        src = s.source();
    }
    false
}

/// A kind's watcher starts over after an error, with a backoff that doubles (with a fifth of
/// jitter either way) up to a ceiling that depends on what failed. A server that answered (an
/// error status, a watch ERROR, a body that is not the API's, a watch that failed right after
/// its list) is asked again as client-go's reflectors do: from [`BACKOFF_ANSWERED`] up to
/// [`BACKOFF_MAX_ANSWERED`] apart, since every try is a full list. One that did not answer at all
/// (connection refused, reset, timed out) costs it nothing: from [`BACKOFF_MIN`] up to
/// [`BACKOFF_MAX`] apart. Either way a waiting watcher starts at once when the cluster's ping
/// succeeds after it failed (it runs every [`PING_EVERY`] while the server does not answer, so
/// a returning cluster is seen within it; a 401 or 403 that clears, within a healthy ping). The
/// backoff resets only after a watch has run [`STABLE`] without an error — not on every list,
/// which made a watch that fails right after a good list re-list every 200 ms for ever.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const BACKOFF_ANSWERED: Duration = Duration::from_millis(800);
const BACKOFF_MAX_ANSWERED: Duration = Duration::from_secs(30);
/// How long a watch must have run before its next error counts as a fresh start (a 410 then
/// is routine: the watch is re-listed at once, once). client-go's reflector resets its
/// backoff after two minutes.
const STABLE: Duration = Duration::from_secs(120);
/// How often a kind that was listed and is now refused (403) is tried again at most: a
/// refusal costs the server nothing (the authorizer answers before any storage is read), and a
/// permission fixed should show within seconds.
const FORBIDDEN_BLIP_MAX: Duration = Duration::from_secs(3);
/// How often a kind the user may not list is tried again.
const FORBIDDEN_RETRY: Duration = Duration::from_secs(60);

/// One shared copy of each distinct label set and of a pod's repeated strings (namespace,
/// phase, owner, service account, node, container names and images). Values no pod
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

/// The API of a kind across every namespace (`None`) or in one.
type ApiFor<K> = Arc<dyn Fn(Option<&str>) -> Api<K> + Send + Sync>;
/// Where a kind's store is in the cache.
type Slot<T> = Arc<dyn Fn(&mut Cache) -> &mut KindStore<T> + Send + Sync>;
/// An API object as the cache keeps it.
type Conv<K, T> = Arc<dyn Fn(&K) -> Option<(Key, T)> + Send + Sync>;

/// One kind's watchers: across every namespace, and — when that is forbidden — one per
/// namespace the session may see instead.
struct KindWatch<K: kube::Resource, T> {
    api: ApiFor<K>,
    cfg: watcher::Config,
    cache: Arc<Mutex<Cache>>,
    changed: Arc<Notify>,
    slot: Slot<T>,
    conv: Conv<K, T>,
    /// Namespaced kinds can fall back to per-namespace watches.
    namespaced: bool,
    /// The namespaces to try first when the cluster-wide list is forbidden: the context's and
    /// the settings'.
    namespaces: Arc<Vec<String>>,
    /// What an object must be to count (dynamic kinds decode anything): why not, if it is not.
    check: Option<Check<K>>,
    /// The cluster answers again after it did not: watchers waiting for that start at once.
    back: Arc<Notify>,
    /// The cluster's pace: a server's Retry-After outlasts any backoff.
    pace: Arc<crate::pace::Pace>,
}

/// Whether an object is what its watch asked for.
type Check<K> = Arc<dyn Fn(&K) -> Result<(), String> + Send + Sync>;

impl<K: kube::Resource, T> Clone for KindWatch<K, T> {
    fn clone(&self) -> Self {
        KindWatch {
            api: self.api.clone(),
            cfg: self.cfg.clone(),
            cache: self.cache.clone(),
            changed: self.changed.clone(),
            slot: self.slot.clone(),
            conv: self.conv.clone(),
            namespaced: self.namespaced,
            namespaces: self.namespaces.clone(),
            check: self.check.clone(),
            back: self.back.clone(),
            pace: self.pace.clone(),
        }
    }
}

impl<K, T> KindWatch<K, T>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    T: Send + Sync + 'static,
{
    /// Run one watcher, applying its events to its part of the kind's store. After any error
    /// the watcher starts over with a fresh list (after a backoff), so `synced` always means
    /// "a list since the last error completed": a resumed watch would say nothing about
    /// recovery. A 403 across every namespace starts the per-namespace watchers (and they
    /// stop when the cluster-wide list answers again).
    fn run(self, scope: Scope, stop: CancellationToken) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(self.run_inner(scope, stop))
    }

    async fn run_inner(self, scope: Scope, stop: CancellationToken) {
        let api = (self.api)(scope.as_deref());
        // the kind's name (`Pod`), for the errors
        let kind = (self.slot)(&mut self.cache.lock()).kind.clone();
        let mut delay = BACKOFF_MIN;
        let mut fallback: Option<CancellationToken> = None;
        // when this round's list completed
        let mut listed_at: Option<Instant> = None;
        loop {
            let mut stream = watcher::watcher(api.clone(), self.cfg.clone()).boxed();
            let mut wait = delay;
            // a failed ping that succeeds again ends the wait (else the backoff does)
            let mut until_back = false;
            // this round's list: items so far, and when it must have ended
            let mut listing: Option<(usize, tokio::time::Instant)> = None;
            loop {
                let deadline = listing.map(|(_, d)| d);
                let ev = tokio::select! {
                    ev = stream.next() => ev,
                    _ = stop.cancelled() => return,
                    _ = async {
                        match deadline {
                            Some(d) => tokio::time::sleep_until(d).await,
                            None => std::future::pending().await,
                        }
                    } => Some(Err(bounded_list(&kind, listing.map_or(0, |(n, _)| n), true))),
                };
                let Some(ev) = ev else { break };
                // a first list is bounded in items and in time
                let ev = match ev {
                    Ok(watcher::Event::Init) => {
                        listing = Some((0, tokio::time::Instant::now() + MAX_LIST_TIME));
                        Ok(watcher::Event::Init)
                    }
                    Ok(watcher::Event::InitApply(o)) => match &mut listing {
                        Some((n, _)) if *n >= MAX_LIST_ITEMS => Err(bounded_list(&kind, *n, false)),
                        Some((n, _)) => {
                            *n += 1;
                            Ok(watcher::Event::InitApply(o))
                        }
                        None => Ok(watcher::Event::InitApply(o)),
                    },
                    Ok(watcher::Event::InitDone) => {
                        listing = None;
                        Ok(watcher::Event::InitDone)
                    }
                    other => other,
                };
                if ev.is_err() {
                    listing = None;
                }
                let mut c = self.cache.lock();
                if stop.is_cancelled() {
                    // a per-namespace watcher told to stop applies nothing more
                    return;
                }
                if ev.is_ok() {
                    c.delivered = Some(Instant::now());
                }
                // an object that is not what was asked for fails the watch, named
                let ev = match ev {
                    Ok(watcher::Event::InitApply(o) | watcher::Event::Apply(o))
                        if let Some(why) = past_bounds(o.meta())
                            .or_else(|| self.check.as_ref().and_then(|f| f(&o).err())) =>
                    {
                        Err(refused(&why))
                    }
                    other => other,
                };
                match ev {
                    // A first list fills the items page by page, so its rows show while the
                    // cluster syncs (nothing is there to keep); a re-list fills a buffer
                    // that replaces the items when it is done, so what was deleted meanwhile
                    // goes and nothing shows twice or half.
                    Ok(watcher::Event::Init) => {
                        let store = (self.slot)(&mut c);
                        let part = store.part(&scope);
                        if part.ever_listed {
                            part.buffer = Some(HashMap::new());
                        } else if !part.items.is_empty() {
                            // a first list that failed midway starts again from nothing, and
                            // the rows it had shown go with it
                            part.buffer = None;
                            part.items.clear();
                            store.relisted = true;
                            c.dirty = true;
                        }
                    }
                    Ok(watcher::Event::InitApply(o)) => {
                        if let Some((k, t)) = (self.conv)(&o) {
                            let store = (self.slot)(&mut c);
                            let part = store.part(&scope);
                            match &mut part.buffer {
                                Some(b) => {
                                    b.insert(k, Arc::new(t));
                                }
                                None => {
                                    part.items.insert(k, Arc::new(t));
                                    store.relisted = true;
                                    c.dirty = true;
                                }
                            }
                        }
                    }
                    Ok(watcher::Event::InitDone) => {
                        // a list that answered proves the credentials work again: a 401 that
                        // cleared is not an auth error any more
                        if c.auth_error.take().is_some() {
                            c.dirty = true;
                        }
                        let store = (self.slot)(&mut c);
                        store.relisted = true;
                        let part = store.part(&scope);
                        if let Some(b) = part.buffer.take() {
                            part.items = b;
                        }
                        part.synced = true;
                        part.forbidden = None;
                        part.ever_listed = true;
                        if scope.is_none() {
                            // every namespace is visible again: the per-namespace watchers go
                            if let Some(f) = fallback.take() {
                                f.cancel();
                            }
                            store.parts.retain(|s, _| s.is_none());
                        }
                        listed_at = Some(Instant::now());
                        if c.synced() {
                            c.ok();
                        }
                        c.dirty = true;
                    }
                    Ok(watcher::Event::Apply(o)) => {
                        if let Some((k, t)) = (self.conv)(&o) {
                            let store = (self.slot)(&mut c);
                            store.note(&scope, &k);
                            store.part(&scope).items.insert(k, Arc::new(t));
                            c.dirty = true;
                        }
                    }
                    Ok(watcher::Event::Delete(o)) => {
                        if let Some((k, _)) = (self.conv)(&o) {
                            let store = (self.slot)(&mut c);
                            store.note(&scope, &k);
                            store.part(&scope).items.remove(&k);
                            c.dirty = true;
                        }
                    }
                    Err(e) => {
                        let (msg, code) = match &e {
                            // what came decoded, but not as the API's JSON: say which
                            watcher::Error::InitialListFailed(kube::Error::SerdeError(se)) => {
                                (decode_failed("the list's answer", se), None)
                            }
                            watcher::Error::WatchFailed(kube::Error::SerdeError(se)) => {
                                (decode_failed("a watch event", se), None)
                            }
                            // kube reads a watch line that is not the kind as a Status: any
                            // JSON object is one, with nothing in it
                            watcher::Error::WatchFailed(kube::Error::Api(st))
                                if st.code == 0 && st.message.is_empty() =>
                            {
                                (
                                    format!(
                                        "a watch event that is not a {kind} (another kind, or an object that does not decode)"
                                    ),
                                    None,
                                )
                            }
                            watcher::Error::InitialListFailed(k)
                            | watcher::Error::WatchStartFailed(k)
                            | watcher::Error::WatchFailed(k) => {
                                if is_auth(k) {
                                    c.auth_error = Some(describe_error(k));
                                }
                                (describe_error(k), api_code(k))
                            }
                            watcher::Error::WatchError(s) => (status_text(s), Some(s.code)),
                            other => (other.to_string(), None),
                        };
                        let answered = match &e {
                            watcher::Error::InitialListFailed(k)
                            | watcher::Error::WatchStartFailed(k)
                            | watcher::Error::WatchFailed(k) => !no_answer(k),
                            _ => true,
                        };
                        // a watch that ran a while starts afresh; one that failed right after
                        // its list keeps backing off
                        let stable = listed_at.take().is_some_and(|t| t.elapsed() >= STABLE);
                        if stable {
                            delay = BACKOFF_MIN;
                        }
                        // an expired watch is routine; any other failure is worth a line
                        if code == Some(410) && stable {
                            tracing::debug!(scope = ?scope, "watch error: {msg}");
                        } else {
                            tracing::warn!(scope = ?scope, "watch error: {msg}");
                        }
                        let store = (self.slot)(&mut c);
                        let part = store.part(&scope);
                        part.buffer = None;
                        // a first list that failed midway keeps nothing of what it brought
                        // (an endless list's 150,000 items go at once, not at the next try)
                        if !part.ever_listed && !part.items.is_empty() {
                            part.items = HashMap::new();
                            store.relisted = true;
                        }
                        let part = store.part(&scope);
                        match code {
                            // expired after a watch that ran: re-list at once
                            Some(410) if stable => wait = Duration::ZERO,
                            // this session may not list this kind here: not a failure of the
                            // cluster. What was listed before stays (a 403 that clears must not
                            // wipe the rows); a blip is retried quickly, a standing refusal
                            // less and less often.
                            Some(403) => {
                                part.forbidden = Some(msg);
                                wait = delay;
                                let most = if part.ever_listed {
                                    FORBIDDEN_BLIP_MAX
                                } else {
                                    FORBIDDEN_RETRY
                                };
                                delay = (delay * 2).min(most);
                                until_back = true;
                                if scope.is_none() && self.namespaced && fallback.is_none() {
                                    let token = stop.child_token();
                                    tokio::spawn(self.clone().fallback(token.clone()));
                                    fallback = Some(token);
                                }
                            }
                            _ => {
                                if answered {
                                    delay = delay.max(BACKOFF_ANSWERED);
                                }
                                wait = jitter(delay);
                                let most = if answered {
                                    BACKOFF_MAX_ANSWERED
                                } else {
                                    BACKOFF_MAX
                                };
                                delay = (delay * 2).min(most);
                                // the server asked for a pause: nothing before it ends
                                if let Some(h) = self.pace.hold() {
                                    wait = wait.max(h.left);
                                }
                                until_back = true;
                                part.synced = false;
                                let next = crate::pace::human(wait);
                                c.fail(format!("{kind}: {msg} (next try in {next})"));
                            }
                        }
                        c.dirty = true;
                        drop(c);
                        self.changed.notify_one();
                        break;
                    }
                }
                drop(c);
                self.changed.notify_one();
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.back.notified(), if until_back => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Watch the kind namespace by namespace: the context's and the settings' namespaces, and
    /// the listed ones (when namespaces may be listed), at most `MAX_FALLBACK_NAMESPACES`.
    async fn fallback(self, stop: CancellationToken) {
        // the namespace list (if this session may see it) names more candidates: wait for it
        // to answer or be refused, a few seconds at most
        for _ in 0..50 {
            if self.cache.lock().namespaces.settled() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = stop.cancelled() => return,
            }
        }
        let mut candidates: Vec<String> = self.namespaces.as_ref().clone();
        {
            let c = self.cache.lock();
            for ns in c.namespaces.sorted() {
                if !candidates.contains(&ns.name) {
                    candidates.push(ns.name.clone());
                }
            }
        }
        if candidates.len() > MAX_FALLBACK_NAMESPACES {
            tracing::warn!(
                "watching {MAX_FALLBACK_NAMESPACES} of {} namespaces one by one",
                candidates.len()
            );
            candidates.truncate(MAX_FALLBACK_NAMESPACES);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for ns in candidates {
            let scope: Scope = Some(ns.as_str().into());
            {
                // the part exists (unsettled) from now, so the kind is not settled before it
                let mut c = self.cache.lock();
                (self.slot)(&mut c).part(&scope);
            }
            tasks.spawn(self.clone().run(scope, stop.clone()));
        }
        stop.cancelled().await;
        tasks.shutdown().await;
    }
}

/// What a body that failed to decode was: not JSON at all (a proxy's page, a broken stream), or
/// JSON that is not what was asked for (another kind, a wrong shape).
fn decode_failed(what: &str, e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => {
            format!("{what} was not JSON ({e}): a proxy that breaks streaming answers?")
        }
        Category::Data | Category::Io => format!("{what} was not what was asked for: {e}"),
    }
}

/// The most items one kind's list may bring: Kubernetes' own scalability limit is 150,000 pods
/// per cluster. A list whose `continue` never ends (532,000 pods and rising, before) is refused.
const MAX_LIST_ITEMS: usize = 150_000;
/// The longest one kind's list may take, all its pages.
const MAX_LIST_TIME: Duration = Duration::from_secs(300);

/// The error of a list that passed its bound (in items, or in time).
fn bounded_list(kind: &str, items: usize, timed_out: bool) -> watcher::Error {
    let pages = items.div_ceil(500);
    let why = if timed_out {
        format!(
            "the list of {kind} objects did not end within {} min ({items} items in {pages} pages so far): refused",
            MAX_LIST_TIME.as_secs() / 60
        )
    } else {
        format!(
            "the list of {kind} objects did not end after {items} items ({pages} pages): refused (Kubernetes supports at most {MAX_LIST_ITEMS} pods per cluster)"
        )
    };
    refused(&why)
}

/// A watch failed by meshdeck itself, for what came (`why`): an error like the server's own.
fn refused(why: &str) -> watcher::Error {
    watcher::Error::WatchError(Box::new(kube::core::Status::failure(why, "")))
}

/// Kubernetes' bounds on an object's metadata (apimachinery's validation): a label value of at
/// most 63 characters, a key of at most 253 + 1 + 63, all annotations together at most 256 KiB.
/// An API server never sends more; a server that does is refused here, before the object is kept.
const LABEL_VALUE_MAX: usize = 63;
const LABEL_KEY_MAX: usize = 317;
const ANNOTATIONS_MAX: usize = 256 << 10;

/// Why an object's metadata passes Kubernetes' bounds, if it does.
fn past_bounds(m: &kube::api::ObjectMeta) -> Option<String> {
    let name = || {
        meshdeck_core::text::escape(&format!(
            "{}/{}",
            m.namespace.as_deref().unwrap_or(""),
            m.name.as_deref().unwrap_or("")
        ))
        .into_owned()
    };
    if let Some(l) = &m.labels {
        for (k, v) in l {
            if k.len() > LABEL_KEY_MAX || v.len() > LABEL_VALUE_MAX {
                return Some(format!(
                    "{} carries a label of {} bytes (Kubernetes allows {LABEL_VALUE_MAX} for a value, {LABEL_KEY_MAX} for a key): refused",
                    name(),
                    k.len() + v.len()
                ));
            }
        }
    }
    if let Some(a) = &m.annotations {
        let total: usize = a.iter().map(|(k, v)| k.len() + v.len()).sum();
        if total > ANNOTATIONS_MAX {
            return Some(format!(
                "{} carries {} KiB of annotations (Kubernetes allows 256 KiB): refused",
                name(),
                total >> 10
            ));
        }
    }
    None
}

/// A fifth either way, so a fleet's watchers do not retry in step.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.8 + 0.4 * fastrand::f64())
}

/// Whether a request failed without the server answering at all: refused, reset, timed out.
fn no_answer(e: &kube::Error) -> bool {
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = src {
        if let Some(h) = s.downcast_ref::<hyper_util::client::legacy::Error>()
            && h.is_connect()
        {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            return matches!(
                io.kind(),
                K::ConnectionRefused
                    | K::ConnectionReset
                    | K::ConnectionAborted
                    | K::NotConnected
                    | K::TimedOut
                    | K::BrokenPipe
            );
        }
        src = s.source();
    }
    false
}

/// A Status's words (an error answer, a watch `ERROR`), and what came when it says nothing.
fn status_text(s: &kube::core::Status) -> String {
    if s.message.trim().is_empty() && s.reason.trim().is_empty() {
        format!("the server answered with an empty Status (code {})", s.code)
    } else if s.code == 0 {
        s.message.clone()
    } else {
        format!("{} ({} {})", s.message, s.code, s.reason)
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
        m.namespace.as_deref().unwrap_or_default().into(),
        m.name.as_deref().unwrap_or_default().into(),
    )
}

/// A dynamic object as the model keeps it (`RawObject::from_value` reads the few metadata
/// fields it needs: managedFields and the last-applied annotation are never kept).
fn raw_object(o: &DynamicObject) -> Option<(Key, RawObject)> {
    let v = serde_json::to_value(o).ok()?;
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
    // who the server says this session is, asked once it answers (not by a read-only
    // session: a SelfSubjectReview is a POST); a server without the API (Kubernetes < 1.27)
    // cannot say, and that is what is shown
    if !target.readonly {
        let (client, cache, changed, stop) =
            (client.clone(), cache.clone(), changed.clone(), stop.clone());
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(500);
            loop {
                let asked = tokio::select! {
                    r = tokio::time::timeout(PING_TIMEOUT, crate::rbac::whoami_answer(&client)) => r,
                    _ = stop.cancelled() => return,
                };
                let settled = match asked {
                    Ok(crate::rbac::WhoAmI::Is(u)) => Some(Ok(u)),
                    Ok(crate::rbac::WhoAmI::CannotSay(why)) => Some(Err(why)),
                    // no answer yet (a timeout, a 5xx): ask again later
                    Ok(crate::rbac::WhoAmI::Failed(_)) | Err(_) => None,
                };
                if let Some(answer) = settled {
                    let mut c = cache.lock();
                    c.whoami = Some(answer);
                    c.dirty = true;
                    drop(c);
                    changed.notify_one();
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.cancelled() => return,
                }
                wait = (wait * 2).min(Duration::from_secs(60));
            }
        });
    }
    // the cluster answers again after it did not: the watchers waiting for that start at once
    let back = Arc::new(Notify::new());
    // reachability and latency
    {
        let (client, cache, changed, stop) =
            (client.clone(), cache.clone(), changed.clone(), stop.clone());
        let credentials = target.credentials.clone();
        let back = back.clone();
        tokio::spawn(async move {
            let mut unanswered: bool;
            let mut failed = false;
            loop {
                // a credential plugin's run is not the server's latency: the ping's clock
                // starts once there are credentials (a plugin's failure is the request's)
                if let Some(c) = &credentials {
                    tokio::select! {
                        _ = c.clone().header() => {}
                        _ = stop.cancelled() => return,
                    }
                }
                let t = Instant::now();
                let r = tokio::time::timeout(PING_TIMEOUT, client.apiserver_version()).await;
                match &r {
                    Ok(Ok(_)) => {
                        unanswered = false;
                        // the server is well again after a failed ping (refused, 401, 403,
                        // 5xx): the watchers waiting out a backoff start now
                        if std::mem::take(&mut failed) {
                            back.notify_waiters();
                        }
                    }
                    Ok(Err(e)) => {
                        failed = true;
                        unanswered = no_answer(e);
                    }
                    Err(_) => {
                        failed = true;
                        unanswered = true;
                    }
                }
                let every = {
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
                            c.answered = Some(Instant::now());
                            // a ping clears failures only once the watchers answer again
                            if c.synced() {
                                c.ok();
                            }
                        }
                        Ok(Err(e)) => {
                            if is_auth(&e) {
                                c.auth_error = Some(describe_error(&e));
                            }
                            c.fail(describe_error(&e));
                        }
                        // the watches delivering is reachability: a slow ping is latency
                        Err(_)
                            if c.delivered.is_some_and(|d| {
                                d.elapsed() < PING_TIMEOUT + PING_EVERY_HEALTHY * 2
                            }) =>
                        {
                            let slow = PING_TIMEOUT.as_millis() as u64;
                            if c.latency_ms.is_none_or(|l| l < slow) {
                                c.latency_ms = Some(slow);
                                c.dirty = true;
                            }
                        }
                        Err(_) => c.fail(format!("no answer within {}s", PING_TIMEOUT.as_secs())),
                    }
                    // quickly only while the server does not answer at all (its return is what
                    // the waiting watchers start on); a server that answers, even with errors,
                    // is asked at the healthy pace
                    if !unanswered {
                        PING_EVERY_HEALTHY
                    } else {
                        PING_EVERY
                    }
                };
                changed.notify_one();
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.cancelled() => return,
                }
            }
        });
    }
    // which optional kinds does the cluster serve?
    let mut delay = Duration::from_millis(200);
    let served: Vec<(bool, ApiResource, bool)> = loop {
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
                        if let Some((ar, caps)) = d.resolve_gvk(&gvk) {
                            let namespaced = caps.scope == kube::discovery::Scope::Namespaced;
                            out.push((istio, ar, namespaced));
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
        for (istio, ar, _) in &served {
            let map = if *istio {
                &mut c.istio
            } else {
                &mut c.policies
            };
            // by group and kind: one kind may be served under two groups (VirtualDestination)
            map.insert(
                format!("{}/{}", ar.api_version, ar.kind),
                KindStore::new(&ar.kind),
            );
        }
        c.dirty = true;
    }
    changed.notify_one();

    let cfg = watcher::Config::default();
    let namespaces = Arc::new(target.watch_namespaces());
    let mut tasks = tokio::task::JoinSet::new();
    macro_rules! typed {
        ($k:ty, $field:ident, $conv:expr, $cfg:expr) => {
            typed!($k, $field, $conv, $cfg, None)
        };
        ($k:ty, $field:ident, $conv:expr, $cfg:expr, $check:expr) => {{
            let client = client.clone();
            let w = KindWatch::<$k, _> {
                api: Arc::new(move |ns: Option<&str>| match ns {
                    Some(ns) => Api::namespaced(client.clone(), ns),
                    None => Api::all(client.clone()),
                }),
                cfg: $cfg,
                cache: cache.clone(),
                changed: changed.clone(),
                slot: Arc::new(|c: &mut Cache| &mut c.$field),
                conv: Arc::new($conv),
                namespaced: true,
                namespaces: namespaces.clone(),
                check: $check,
                back: back.clone(),
                pace: target.pace.clone(),
            };
            tasks.spawn(w.run(None, stop.clone()));
        }};
    }
    {
        // cluster-scoped: nothing to fall back to
        let client = client.clone();
        let w = KindWatch::<Namespace, _> {
            api: Arc::new(move |_: Option<&str>| Api::all(client.clone())),
            cfg: cfg.clone(),
            cache: cache.clone(),
            changed: changed.clone(),
            slot: Arc::new(|c: &mut Cache| &mut c.namespaces),
            conv: Arc::new(|o: &Namespace| Some((key_of(&o.metadata), RawNamespace::from(o)))),
            namespaced: false,
            namespaces: namespaces.clone(),
            check: None,
            back: back.clone(),
            pace: target.pace.clone(),
        };
        tasks.spawn(w.run(None, stop.clone()));
    }
    // one label interner for the cluster: the pods of one ReplicaSet carry the same labels, a
    // workload's own labels are most often its template's, a Service's selector its app's
    let interner = Arc::new(Mutex::new(LabelInterner::default()));
    let share = |l: &mut Arc<crate::model::raw::Labels>, i: &mut LabelInterner| {
        *l = i.intern(Arc::unwrap_or_clone(std::mem::take(l)));
    };
    let i = interner.clone();
    typed!(
        Service,
        services,
        move |o: &Service| {
            let mut s = RawService::from(o);
            let mut i = i.lock();
            share(&mut s.labels, &mut i);
            share(&mut s.selector, &mut i);
            Some((key_of(&o.metadata), s))
        },
        cfg.clone()
    );
    typed!(
        Endpoints,
        endpoints,
        |o: &Endpoints| Some((key_of(&o.metadata), RawEndpoints::from(o))),
        cfg.clone()
    );
    // pods decode into the slim type: serde skips what meshdeck never reads
    let i = interner.clone();
    typed!(
        SlimPod,
        pods,
        move |o: &SlimPod| {
            let mut p = RawPod::from(o);
            let mut i = i.lock();
            p.labels = i.intern(Arc::unwrap_or_clone(std::mem::take(&mut p.labels)));
            p.namespace = i.intern_str(&p.namespace);
            p.phase = i.intern_str(&p.phase);
            p.service_account = i.intern_str(&p.service_account);
            p.node = i.intern_str(&p.node);
            if let Some((k, n)) = &mut p.owner {
                *k = i.intern_str(k);
                *n = i.intern_str(n);
            }
            for c in &mut p.containers {
                c.name = i.intern_str(&c.name);
                c.image = i.intern_str(&c.image);
            }
            Some(((p.namespace.clone(), p.name.clone()), p))
        },
        cfg.clone(),
        Some(Arc::new(|p: &SlimPod| p.not_a_pod().map_or(Ok(()), Err)))
    );
    let workload = move |mut w: RawWorkload, i: &Mutex<LabelInterner>| {
        let mut i = i.lock();
        share(&mut w.labels, &mut i);
        share(&mut w.template_labels, &mut i);
        w
    };
    let i = interner.clone();
    typed!(
        Deployment,
        deployments,
        move |o: &Deployment| Some((key_of(&o.metadata), workload(RawWorkload::from(o), &i))),
        cfg.clone()
    );
    let i = interner.clone();
    typed!(
        StatefulSet,
        statefulsets,
        move |o: &StatefulSet| Some((key_of(&o.metadata), workload(RawWorkload::from(o), &i))),
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
    for (istio, ar, namespaced) in served {
        let kind = ar.kind.clone();
        let key = format!("{}/{}", ar.api_version, ar.kind);
        let (client, ar2) = (client.clone(), ar.clone());
        let w = KindWatch::<DynamicObject, RawObject> {
            api: Arc::new(move |ns: Option<&str>| match ns {
                Some(ns) => Api::namespaced_with(client.clone(), ns, &ar2),
                None => Api::all_with(client.clone(), &ar2),
            }),
            cfg: cfg.clone(),
            cache: cache.clone(),
            changed: changed.clone(),
            slot: Arc::new(move |c: &mut Cache| {
                let map = if istio { &mut c.istio } else { &mut c.policies };
                map.entry(key.clone())
                    .or_insert_with(|| KindStore::new(&kind))
            }),
            conv: Arc::new(raw_object),
            namespaced,
            namespaces: namespaces.clone(),
            check: Some(Arc::new(move |o: &DynamicObject| {
                // a dynamic object decodes whatever came: its apiVersion and kind must be
                // the watched ones (an object without them is taken as the list's)
                match &o.types {
                    Some(t) if t.kind != ar.kind || t.api_version != ar.api_version => {
                        Err(format!(
                            "a {} {} came where a {} {} was expected",
                            t.api_version, t.kind, ar.api_version, ar.kind
                        ))
                    }
                    _ => Ok(()),
                }
            })),
            back: back.clone(),
            pace: target.pace.clone(),
        };
        tasks.spawn(w.run(None, stop.clone()));
    }
    stop.cancelled().await;
    tasks.shutdown().await;
}

static VERIFY_INCREMENTAL: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);
static MISMATCHES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static VERIFIED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Tests: check every incremental derivation against a full one of the same cache (costly).
#[doc(hidden)]
pub fn set_verify_incremental(on: bool) {
    VERIFY_INCREMENTAL.store(on, std::sync::atomic::Ordering::SeqCst);
}

/// Tests: how many incremental derivations were checked, and how many differed.
#[doc(hidden)]
pub fn incremental_checks() -> (usize, usize) {
    use std::sync::atomic::Ordering::SeqCst;
    (VERIFIED.load(SeqCst), MISMATCHES.load(SeqCst))
}

fn verify_incremental() -> bool {
    VERIFY_INCREMENTAL.load(std::sync::atomic::Ordering::Relaxed)
}

fn verify(d: &Deriver, input: &ClusterInput, state: &ConnState) {
    use std::sync::atomic::Ordering::SeqCst;
    let full = Deriver::new(input, state.clone()).view();
    VERIFIED.fetch_add(1, SeqCst);
    if format!("{:?}", d.view()) != format!("{full:?}") {
        MISMATCHES.fetch_add(1, SeqCst);
        tracing::error!(cluster = %input.name, "an incremental derivation differs from a full one");
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

    /// Wait until every cluster is synced, or partial (synced for what the session may see)
    /// (true), or `timeout` passes (false).
    pub async fn wait_synced(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let all = {
                let s = self.snapshots.borrow_and_update();
                // a context that could not be used never syncs: it is not waited for
                let live = || {
                    s.clusters
                        .iter()
                        .filter(|c| !matches!(c.state, ConnState::ConfigError { .. }))
                };
                live().next().is_some() && live().all(|c| c.state.is_current())
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

/// Give the memory the allocator holds free back to the system (glibc keeps what a burst of
/// list pages freed in its arenas: ~100 MiB after a 100k-pod sync). A no-op elsewhere.
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Connect to every target and start publishing snapshots.
pub fn start(targets: Vec<Target>) -> FleetHandle {
    start_with(targets, Vec::new())
}

/// A kubeconfig context that could not be used, shown as a cluster that never connects (its
/// chip, its row, its reason) instead of vanishing from the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenContext {
    pub context: String,
    pub error: String,
}

/// [`start`], with the contexts that could not be used kept in the snapshot as clusters in
/// `ConnState::ConfigError` (after the real ones; they never change).
pub fn start_with(targets: Vec<Target>, broken: Vec<BrokenContext>) -> FleetHandle {
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
    let mut derivers: Vec<Deriver> = caches
        .iter()
        .map(|(t, c)| Deriver::new(&c.lock().input(t), ConnState::Connecting))
        .collect();
    let placeholders: Vec<Arc<ClusterView>> = broken
        .iter()
        .filter(|b| !targets_have(&caches, &b.context))
        .map(|b| {
            let input = ClusterInput {
                name: b.context.clone(),
                context: b.context.clone(),
                ..ClusterInput::default()
            };
            Deriver::new(
                &input,
                ConnState::ConfigError {
                    error: b.error.clone(),
                },
            )
            .view()
        })
        .collect();
    let (tx, rx) = watch::channel(Arc::new(Snapshot {
        clusters: derivers
            .iter()
            .map(Deriver::view)
            .chain(placeholders.iter().cloned())
            .collect(),
        seq: 0,
    }));
    let agg_stop = stop.clone();
    tokio::spawn(async move {
        let mut views: Vec<Arc<ClusterView>> = tx.borrow().clusters.clone();
        let mut states: Vec<ConnState> = vec![ConnState::Connecting; caches.len()];
        let mut derived: Vec<Instant> = vec![Instant::now(); caches.len()];
        // whether a derivation of the cluster already had pods
        let mut shown_pods: Vec<bool> = vec![false; caches.len()];
        let mut seq = 0u64;
        // full derivations (lists) happened since freed memory was last given back
        let mut listed_since_trim = false;
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
                    c.waiting_for_credentials = t.credentials.as_ref().and_then(|p| p.waiting());
                    let state = c.state(now);
                    if !c.dirty && state == states[i] {
                        continue;
                    }
                    // While a cluster is still syncing, every page of every list would
                    // re-derive it: its first pods are shown at once, then once every
                    // DERIVE_WHILE_SYNCING until it is synced (a sync's CPU goes to listing).
                    let syncing = |s: &ConnState| matches!(s, ConnState::Syncing { .. });
                    let first_rows =
                        !shown_pods[i] && c.pods.parts.values().any(|p| !p.items.is_empty());
                    if syncing(&state)
                        && syncing(&states[i])
                        && !first_rows
                        && now.duration_since(derived[i]) < DERIVE_WHILE_SYNCING
                    {
                        continue;
                    }
                    shown_pods[i] |= first_rows;
                    c.dirty = false;
                    // the same state and only row changes: follow them (cost per change)
                    if state == states[i]
                        && let Some(delta) = c.take_delta()
                    {
                        let d = &mut derivers[i];
                        d.set_header(c.version.clone(), c.latency_ms, t.pace.summary());
                        if d.apply(&delta).is_ok() {
                            if verify_incremental() {
                                verify(d, &c.input(t), &state);
                            }
                            let v = d.view();
                            if !Arc::ptr_eq(&v, &views[i]) {
                                views[i] = v;
                                any = true;
                            }
                            continue;
                        }
                    }
                    c.clear_changes();
                    (c.input(t), state)
                };
                states[i] = state.clone();
                derived[i] = now;
                derivers[i] = Deriver::new(&input, state);
                views[i] = derivers[i].view();
                any = true;
                listed_since_trim = true;
            }
            // a sync's list pages are transient but stay resident in the allocator's arenas:
            // once no cluster is listing any more, give them back
            if listed_since_trim
                && !states
                    .iter()
                    .any(|s| matches!(s, ConnState::Connecting | ConnState::Syncing { .. }))
            {
                listed_since_trim = false;
                return_freed_memory();
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

/// Whether a context already names one of the fleet's clusters (a broken alias of a working
/// context is not a second cluster).
fn targets_have(caches: &[(Target, Arc<Mutex<Cache>>)], context: &str) -> bool {
    caches.iter().any(|(t, _)| {
        t.cluster == context || t.context == context || t.aliases.iter().any(|a| a == context)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cluster whose watches fail while it answers its pings is stale for as long as that
    /// lasts, with the error; unreachable only once it stops answering (a 410 storm read
    /// `unreachable` after 30 s while the server answered in 2 ms).
    #[test]
    fn a_cluster_that_answers_is_never_unreachable() {
        let mut c = Cache {
            ever_ok: true,
            ..Cache::default()
        };
        let t0 = Instant::now();
        c.fail("Pod: watch error 410".into());
        c.answered = Some(t0);
        let later = t0 + UNREACHABLE_AFTER + Duration::from_secs(1);
        c.answered = Some(later);
        assert!(
            matches!(c.state(later), ConnState::Stale { .. }),
            "{:?}",
            c.state(later)
        );
        // no answer for longer than a ping's timeout and the healthy ping interval
        let silent = later + PING_TIMEOUT + PING_EVERY_HEALTHY;
        assert!(
            matches!(c.state(silent), ConnState::Unreachable { .. }),
            "{:?}",
            c.state(silent)
        );
    }

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
