//! Golden signals, the I/O half: where each cluster's signals come from, and the refresh task
//! that reads them off the UI thread and publishes [`Signals`] snapshots.
//!
//! Sources, per cluster, first match wins:
//! 1. the settings' `prometheus:` URL of the cluster's context;
//! 2. the settings' global `prometheus:` URL (one Prometheus for several clusters: rows are
//!    told apart by Istio's `source_cluster`/`destination_cluster` labels);
//! 3. a `prometheus` Service in `istio-system`, reached through the API server's service
//!    proxy (a bastion user needs nothing but the kubeconfig);
//! 4. the sidecars themselves (`:15020/stats/prometheus` through the pod proxy): two scrapes
//!    give the rates, for at most `max_pods` pods per refresh, those on screen first.
//!
//! Every request has a timeout; a failing source marks its clusters' signals stale (the last
//! good rows stay, with the error), never the cluster.

use crate::fleet::Target;
use crate::session::{Purpose, client};
use futures::StreamExt;
use meshdeck_core::model::Snapshot;
use meshdeck_core::signals::promql::{self, Scope};
use meshdeck_core::signals::scrape::{self, PodSample};
use meshdeck_core::signals::{History, Rows, Signals, SourceState, Subject, View, prom};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// How the signals are read.
#[derive(Debug, Clone)]
pub struct Config {
    /// Time between refreshes (default 15 s).
    pub interval: Duration,
    /// Timeout of each request (default 5 s).
    pub timeout: Duration,
    /// At most this many pods are scraped per refresh without Prometheus (default 200).
    pub max_pods: usize,
    /// One Prometheus for every cluster (the settings' global `prometheus:`).
    pub shared: Option<String>,
    /// A cluster's own Prometheus (the settings' per-context `prometheus:`), by cluster name.
    pub per_cluster: BTreeMap<String, String>,
    /// Look for `istio-system/prometheus` through the service proxy.
    pub discover: bool,
    /// Without any Prometheus, scrape the sidecars through the pod proxy.
    pub sidecars: bool,
    /// The rate window (`1m`).
    pub window: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(5),
            max_pods: 200,
            shared: None,
            per_cluster: BTreeMap::new(),
            discover: true,
            sidecars: true,
            window: meshdeck_core::signals::WINDOW.to_string(),
        }
    }
}

/// What the console shows: the sidecar fallback scrapes these namespaces' pods first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Focus {
    /// (cluster, namespace); empty: every namespace.
    pub namespaces: BTreeSet<(String, String)>,
}

/// A running refresh task. Dropping it stops the task.
pub struct Handle {
    pub signals: watch::Receiver<Arc<Signals>>,
    pub focus: watch::Sender<Focus>,
    /// Ask for a subject's last 30 minutes (answered into `Signals::history`).
    pub history: mpsc::Sender<(View, Subject)>,
    /// Ask for a refresh now.
    pub refresh: mpsc::Sender<()>,
    stop: CancellationToken,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Handle {
    pub fn latest(&self) -> Arc<Signals> {
        self.signals.borrow().clone()
    }

    /// Wait for a published refresh whose every cluster has a state (true), or `timeout`.
    pub async fn wait_refreshed(&mut self, clusters: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.signals.borrow_and_update().clusters.len() >= clusters {
                return true;
            }
            match tokio::time::timeout_at(deadline, self.signals.changed()).await {
                Ok(Ok(())) => {}
                _ => return false,
            }
        }
    }
}

/// Why a GET got no text.
enum GetError {
    Timeout(Duration),
    Kube(kube::Error),
    Request(String),
}

impl GetError {
    fn describe(&self) -> String {
        match self {
            GetError::Timeout(t) => format!("no answer within {} s", t.as_secs_f64()),
            GetError::Kube(e) => crate::fleet::describe_error(e),
            GetError::Request(e) => e.clone(),
        }
    }
}

/// GET `uri` through `client` as text, within `timeout`: the one shape of every signal request.
async fn get_text(
    client: &kube::Client,
    uri: String,
    timeout: Duration,
) -> Result<String, GetError> {
    let req = http::Request::get(uri)
        .body(Vec::new())
        .map_err(|e| GetError::Request(e.to_string()))?;
    match tokio::time::timeout(timeout, client.request_text(req)).await {
        Err(_) => Err(GetError::Timeout(timeout)),
        Ok(r) => r.map_err(GetError::Kube),
    }
}

/// How one query reaches a Prometheus.
#[derive(Clone)]
enum Endpoint {
    Direct {
        url: String,
        client: kube::Client,
    },
    ServiceProxy {
        client: kube::Client,
        prefix: String,
    },
}

impl Endpoint {
    fn describe(&self) -> String {
        match self {
            Endpoint::Direct { url, .. } => format!("prometheus {url}"),
            // discovery looks for this one Service
            Endpoint::ServiceProxy { .. } => {
                "in-cluster prometheus (istio-system/prometheus, service proxy)".into()
            }
        }
    }

    async fn get(
        &self,
        path: &str,
        params: &[(&str, String)],
        timeout: Duration,
    ) -> Result<Vec<u8>, String> {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let (client, uri) = match self {
            Endpoint::Direct { client, .. } => (client, format!("{path}?{q}")),
            Endpoint::ServiceProxy { client, prefix } => (client, format!("{prefix}{path}?{q}")),
        };
        get_text(client, uri, timeout)
            .await
            .map(String::into_bytes)
            .map_err(|e| e.describe())
    }

    async fn query(&self, q: &str, timeout: Duration) -> Result<Vec<prom::Sample>, String> {
        let body = self
            .get("/api/v1/query", &[("query", q.to_string())], timeout)
            .await?;
        prom::vector(&body)
    }
}

/// Read every view's rows from one Prometheus: 6 queries, concurrently.
async fn read_prometheus(
    ep: &Endpoint,
    scope: &Scope,
    own: &str,
    wanted: &BTreeSet<String>,
    cfg: &Config,
) -> Result<Rows, String> {
    let queries: Vec<(View, bool, String)> = View::ALL
        .iter()
        .flat_map(|v| {
            [
                (*v, false, promql::requests(*v, scope, &cfg.window)),
                (*v, true, promql::p99(*v, scope, &cfg.window)),
            ]
        })
        .collect();
    // which rows the source holds counters of: those without a rate yet are pending
    let seen_queries: Vec<String> = View::ALL.iter().map(|v| promql::seen(*v, scope)).collect();
    let (answers, seen) = futures::future::join(
        futures::future::join_all(queries.iter().map(|(_, _, q)| ep.query(q, cfg.timeout))),
        futures::future::join_all(seen_queries.iter().map(|q| ep.query(q, cfg.timeout))),
    )
    .await;
    let mut rows = Rows::default();
    let want = |c: &str| wanted.contains(c);
    // rates first: the latency answers only fill rows that have requests
    for ((view, is_p99, _), answer) in queries.iter().zip(&answers) {
        if !is_p99 {
            prom::fold_requests(
                &mut rows,
                *view,
                scope,
                own,
                &want,
                answer.as_ref().map_err(Clone::clone)?,
            );
        }
    }
    for ((view, is_p99, _), answer) in queries.iter().zip(&answers) {
        if *is_p99 {
            prom::fold_p99(
                &mut rows,
                *view,
                scope,
                own,
                &want,
                answer.as_ref().map_err(Clone::clone)?,
            );
        }
    }
    let rates = queries
        .iter()
        .zip(&answers)
        .filter(|((_, is_p99, _), _)| !is_p99)
        .map(|((v, _, _), a)| (*v, a));
    for ((view, rate), seen) in rates.zip(&seen) {
        if let (Ok(rate), Ok(seen)) = (rate, seen) {
            prom::fold_seen(&mut rows, view, scope, own, &want, rate, seen);
        }
    }
    Ok(rows)
}

/// One cluster's scrape candidates: running pods with a sidecar, as indices into its view's
/// pod list (sorted by namespace and name), the first `max` of those on screen and the first
/// `max` of the others, with how many there are in all.
struct Candidates {
    /// The view they index: the list is computed again only when the cluster's view changed
    /// (a weak reference: the cache keeps no older generation of the fleet alive).
    view: std::sync::Weak<meshdeck_core::model::ClusterView>,
    /// The namespaces on screen it was split by (None: every namespace is).
    focused: Option<Vec<String>>,
    max: usize,
    tiers: [Vec<u32>; 2],
    total: usize,
}

impl Candidates {
    fn of(
        view: &Arc<meshdeck_core::model::ClusterView>,
        focused: Option<Vec<String>>,
        max: usize,
    ) -> Self {
        let mut tiers: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
        let mut total = 0;
        for (i, p) in view.pods.iter().enumerate() {
            let raw = &p.raw;
            if &*raw.phase != "Running" || !raw.containers.iter().any(|x| &*x.name == "istio-proxy")
            {
                continue;
            }
            total += 1;
            let on_screen = focused
                .as_ref()
                .is_none_or(|f| f.iter().any(|ns| **ns == *raw.namespace));
            let tier = &mut tiers[usize::from(!on_screen)];
            // the list is sorted, so the first `max` in order are the ones a sort would keep
            if tier.len() < max {
                tier.push(u32::try_from(i).unwrap_or(u32::MAX));
            }
        }
        Self {
            view: Arc::downgrade(view),
            focused,
            max,
            tiers,
            total,
        }
    }

    fn still_for(
        &self,
        view: &Arc<meshdeck_core::model::ClusterView>,
        focused: &Option<Vec<String>>,
        max: usize,
    ) -> bool {
        // (the weak reference keeps the allocation, so no newer view can have its address)
        std::ptr::eq(self.view.as_ptr(), Arc::as_ptr(view))
            && self.focused == *focused
            && self.max == max
    }
}

/// Per cluster, its last [`Candidates`]: at rest (no view changed) a refresh walks no pod.
#[derive(Default)]
struct CandidateCache(HashMap<String, Candidates>);

/// Which pods the sidecar fallback scrapes this refresh, per cluster (with how many it could):
/// at most `max` across the fleet, the namespaces on screen first, shared out round-robin over
/// the clusters so each gets its turn (a fleet of 20 clusters × 5,000 pods costs `max` pod-proxy
/// requests per refresh, not 20 × `max`).
fn pods_to_scrape(
    snap: &Snapshot,
    clusters: &[&str],
    focus: &Focus,
    max: usize,
    cache: &mut CandidateCache,
) -> BTreeMap<String, (Vec<(String, String)>, usize)> {
    let mut out = BTreeMap::new();
    let mut views = Vec::new();
    for &cluster in clusters {
        let Some(c) = snap.clusters.iter().find(|c| c.name == cluster) else {
            out.insert(cluster.to_string(), (Vec::new(), 0));
            continue;
        };
        views.push((cluster, c));
        let focused = (!focus.namespaces.is_empty()).then(|| {
            focus
                .namespaces
                .iter()
                .filter(|(c, _)| c == cluster)
                .map(|(_, ns)| ns.clone())
                .collect::<Vec<_>>()
        });
        let fresh = cache
            .0
            .get(cluster)
            .is_some_and(|k| k.still_for(c, &focused, max));
        if !fresh {
            cache
                .0
                .insert(cluster.to_string(), Candidates::of(c, focused, max));
        }
    }
    cache.0.retain(|c, _| clusters.contains(&c.as_str()));
    let mut lists = Vec::new();
    for (cluster, c) in views {
        if let Some(k) = cache.0.get(cluster) {
            out.insert(cluster.to_string(), (Vec::new(), k.total));
            lists.push((cluster, c, k));
        }
    }
    let mut left = max;
    for tier in 0..2 {
        let mut next = vec![0usize; lists.len()];
        let mut progressed = true;
        while left > 0 && progressed {
            progressed = false;
            for (i, (cluster, view, k)) in lists.iter().enumerate() {
                if left == 0 {
                    break;
                }
                let Some(&at) = k.tiers[tier].get(next[i]) else {
                    continue;
                };
                next[i] += 1;
                progressed = true;
                if let (Some(p), Some((pods, _))) =
                    (view.pods.get(at as usize), out.get_mut(*cluster))
                {
                    left -= 1;
                    pods.push((p.raw.namespace.to_string(), p.raw.name.to_string()));
                }
            }
        }
    }
    out
}

/// (cluster, namespace, name) of a pod.
type PodKey = (String, String, String);
/// One pod's scrape.
type Scraped = (PodKey, Result<PodSample, String>);

struct Sidecars {
    samples: HashMap<PodKey, PodSample>,
}

/// Scrape these pods (cluster, client, namespace, name) through the pod proxy, 8 at a time.
async fn scrape_pods(
    pods: Vec<(String, kube::Client, String, String)>,
    t0: Instant,
    timeout: Duration,
) -> Vec<Scraped> {
    futures::stream::iter(pods)
        .map(|(cluster, client, ns, name)| async move {
            let uri = format!("/api/v1/namespaces/{ns}/pods/{name}:15020/proxy/stats/prometheus");
            let res = match get_text(&client, uri, timeout).await {
                Err(e) => Err(e.describe()),
                Ok(text) => scrape::parse(&text, t0.elapsed().as_secs_f64()),
            };
            ((cluster, ns, name), res)
        })
        .buffer_unordered(8)
        .collect()
        .await
}

/// The scrapes for these targets: every pod, or (given the samples) those never scraped.
fn jobs(
    targets: &[SidecarTarget<'_>],
    unless_in: Option<&HashMap<PodKey, PodSample>>,
) -> Vec<(String, kube::Client, String, String)> {
    let mut out = Vec::new();
    for t in targets {
        for (ns, n) in &t.pods {
            let key = (t.cluster.to_string(), ns.clone(), n.clone());
            if unless_in.is_some_and(|s| s.contains_key(&key)) {
                continue;
            }
            out.push((key.0, t.client.clone(), key.1, key.2));
        }
    }
    out
}

/// One cluster's share of a sidecar refresh.
struct SidecarTarget<'a> {
    cluster: &'a str,
    client: &'a kube::Client,
    pods: Vec<(String, String)>,
    total: usize,
}

impl Sidecars {
    /// Scrape every target's pods, pair each with its previous scrape, fold per cluster. Pods
    /// never scraped before are scraped twice, 2 s apart (once for the whole fleet), so the
    /// first refresh already has rates.
    async fn read(
        &mut self,
        targets: &[SidecarTarget<'_>],
        t0: Instant,
        timeout: Duration,
    ) -> Vec<(String, Result<(Rows, String), String>)> {
        let fresh = jobs(targets, Some(&self.samples));
        if !fresh.is_empty() {
            for (k, r) in scrape_pods(fresh, t0, timeout).await {
                if let Ok(s) = r {
                    self.samples.insert(k, s);
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let mut results: HashMap<String, Vec<Scraped>> = HashMap::new();
        for (k, r) in scrape_pods(jobs(targets, None), t0, timeout).await {
            results.entry(k.0.clone()).or_default().push((k, r));
        }
        // forget pods no longer scraped (of these clusters)
        let keep: BTreeSet<(&str, &str, &str)> = targets
            .iter()
            .flat_map(|t| {
                t.pods
                    .iter()
                    .map(|(ns, n)| (t.cluster, ns.as_str(), n.as_str()))
            })
            .collect();
        let scraped: BTreeSet<&str> = targets.iter().map(|t| t.cluster).collect();
        self.samples.retain(|(c, ns, n), _| {
            !scraped.contains(c.as_str()) || keep.contains(&(c.as_str(), ns.as_str(), n.as_str()))
        });
        targets
            .iter()
            .map(|t| {
                let mut errors = Vec::new();
                let mut pairs_owned = Vec::new();
                for (k, r) in results.remove(t.cluster).unwrap_or_default() {
                    match r {
                        Ok(cur) => {
                            if let Some(prev) = self.samples.insert(k, cur.clone()) {
                                pairs_owned.push((prev, cur));
                            }
                        }
                        Err(e) => errors.push(format!("{}/{}: {e}", k.1, k.2)),
                    }
                }
                if t.pods.is_empty() && t.total > 0 {
                    // the fleet's budget went elsewhere: unknown, not idle
                    let e = format!(
                        "none of its {} sidecars scraped this refresh (the maxPods budget went to the namespaces on screen)",
                        t.total
                    );
                    return (t.cluster.to_string(), Err(e));
                }
                if !t.pods.is_empty() && errors.len() == t.pods.len() {
                    let e = format!("every sidecar failed; first: {}", errors[0]);
                    return (t.cluster.to_string(), Err(e));
                }
                let pairs: Vec<(&PodSample, &PodSample)> =
                    pairs_owned.iter().map(|(a, b)| (a, b)).collect();
                let mut rows = Rows::default();
                scrape::fold(&mut rows, t.cluster, &pairs);
                let mut what = format!("sidecars (pod proxy, {} of {} pods", t.pods.len(), t.total);
                if !errors.is_empty() {
                    what.push_str(&format!("; {} failed: {}", errors.len(), errors[0]));
                }
                what.push(')');
                (t.cluster.to_string(), Ok((rows, what)))
            })
            .collect()
    }
}

/// Where a cluster's signals come from this round.
#[derive(Clone)]
enum Plan {
    Own(Endpoint),
    Shared,
    Sidecars,
    Nothing(String),
}

/// Start the refresh task for these targets; `snapshots` is the fleet's (the sidecar
/// fallback scrapes the pods it shows).
pub fn start(targets: &[Target], cfg: Config, snapshots: watch::Receiver<Arc<Snapshot>>) -> Handle {
    let stop = CancellationToken::new();
    let (tx, rx) = watch::channel(Arc::new(Signals {
        window: cfg.window.clone(),
        ..Signals::default()
    }));
    let (focus_tx, focus_rx) = watch::channel(Focus::default());
    let (hist_tx, hist_rx) = mpsc::channel(16);
    let (refresh_tx, refresh_rx) = mpsc::channel(4);
    let clients: Vec<(String, Result<kube::Client, String>)> = targets
        .iter()
        .map(|t| {
            (
                t.cluster.clone(),
                client(t, Purpose::Request).map_err(|e| crate::fleet::describe_error(&e)),
            )
        })
        .collect();
    tokio::spawn(run(
        clients,
        cfg,
        snapshots,
        focus_rx,
        hist_rx,
        refresh_rx,
        tx,
        stop.clone(),
    ));
    Handle {
        signals: rx,
        focus: focus_tx,
        history: hist_tx,
        refresh: refresh_tx,
        stop,
    }
}

fn direct(url: &str) -> Result<Endpoint, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("prometheus URL {url:?}: {e}"))?;
    let client =
        crate::session::prometheus_client(uri).map_err(|e| format!("prometheus {url}: {e}"))?;
    Ok(Endpoint::Direct {
        url: url.to_string(),
        client,
    })
}

/// Look for `istio-system/prometheus`: its service-proxy prefix, or why not.
async fn discover(client: &kube::Client, timeout: Duration) -> Result<Option<String>, String> {
    let uri = "/api/v1/namespaces/istio-system/services/prometheus".to_string();
    match get_text(client, uri, timeout).await {
        Err(GetError::Kube(kube::Error::Api(s))) if s.code == 404 || s.code == 403 => Ok(None),
        Err(e) => Err(e.describe()),
        Ok(text) => {
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            let ports = v
                .pointer("/spec/ports")
                .and_then(|p| p.as_array())
                .cloned()
                .unwrap_or_default();
            let port = ports
                .iter()
                .find(|p| p["name"] == "http" || p["name"] == "web" || p["port"] == 9090)
                .or_else(|| ports.first())
                .and_then(|p| p["port"].as_i64())
                .unwrap_or(9090);
            Ok(Some(format!(
                "/api/v1/namespaces/istio-system/services/prometheus:{port}/proxy"
            )))
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    clients: Vec<(String, Result<kube::Client, String>)>,
    cfg: Config,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    focus: watch::Receiver<Focus>,
    mut history: mpsc::Receiver<(View, Subject)>,
    mut refresh: mpsc::Receiver<()>,
    tx: watch::Sender<Arc<Signals>>,
    stop: CancellationToken,
) {
    let t0 = Instant::now();
    let shared = cfg.shared.as_deref().map(direct);
    let own: HashMap<String, Result<Endpoint, String>> = cfg
        .per_cluster
        .iter()
        .map(|(c, u)| (c.clone(), direct(u)))
        .collect();
    let mut discovered: HashMap<String, Option<String>> = HashMap::new();
    let mut sidecars = Sidecars {
        samples: HashMap::new(),
    };
    let mut signals = Signals {
        window: cfg.window.clone(),
        ..Signals::default()
    };
    let mut candidates = CandidateCache::default();
    let mut round = 0u64;
    loop {
        // ---- plan: who reads each cluster ----
        let mut plans: Vec<(String, Plan)> = Vec::new();
        for (name, c) in &clients {
            let plan = if let Some(e) = own.get(name) {
                match e {
                    Ok(e) => Plan::Own(e.clone()),
                    Err(e) => Plan::Nothing(e.clone()),
                }
            } else if shared.is_some() {
                Plan::Shared
            } else {
                match c {
                    Err(e) => Plan::Nothing(e.clone()),
                    Ok(client) => {
                        if cfg.discover
                            && (round.is_multiple_of(8) || !discovered.contains_key(name))
                            && let Ok(found) = discover(client, cfg.timeout).await
                        {
                            discovered.insert(name.clone(), found);
                        }
                        match discovered.get(name).cloned().flatten() {
                            Some(prefix) => Plan::Own(Endpoint::ServiceProxy {
                                client: client.clone(),
                                prefix,
                            }),
                            None if cfg.sidecars => Plan::Sidecars,
                            None => Plan::Nothing("no Prometheus configured or found".into()),
                        }
                    }
                }
            };
            plans.push((name.clone(), plan));
        }
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mark = |signals: &mut Signals,
                    cluster: &str,
                    source: String,
                    r: Result<Option<Rows>, String>| {
            let prev = signals.clusters.get(cluster).cloned();
            match r {
                Ok(rows) => {
                    if let Some(rows) = rows {
                        signals.replace_cluster(cluster, rows);
                    }
                    signals.clusters.insert(
                        cluster.to_string(),
                        SourceState {
                            source,
                            refreshed: Some(now.clone()),
                            stale: None,
                        },
                    );
                }
                Err(e) => {
                    signals.clusters.insert(
                        cluster.to_string(),
                        SourceState {
                            source,
                            refreshed: prev.and_then(|p| p.refreshed),
                            stale: Some(e),
                        },
                    );
                }
            }
        };
        // ---- the shared Prometheus: one set of queries for its clusters ----
        let shared_clusters: BTreeSet<String> = plans
            .iter()
            .filter(|(_, p)| matches!(p, Plan::Shared))
            .map(|(c, _)| c.clone())
            .collect();
        if !shared_clusters.is_empty() {
            let r = match &shared {
                Some(Ok(ep)) => {
                    read_prometheus(ep, &Scope::Shared, "", &shared_clusters, &cfg).await
                }
                Some(Err(e)) => Err(e.clone()),
                None => Err("no shared Prometheus".into()),
            };
            let source = match &shared {
                Some(Ok(ep)) => ep.describe(),
                _ => format!("prometheus {}", cfg.shared.clone().unwrap_or_default()),
            };
            for c in &shared_clusters {
                let mine = r.as_ref().map(|rows| Some(rows.of_cluster(c)));
                mark(&mut signals, c, source.clone(), mine.map_err(Clone::clone));
            }
        }
        // ---- each cluster's own Prometheus, concurrently ----
        let owns = futures::future::join_all(plans.iter().filter_map(|(c, p)| match p {
            Plan::Own(ep) => Some(async {
                let wanted = BTreeSet::from([c.clone()]);
                (
                    c.clone(),
                    ep.describe(),
                    read_prometheus(ep, &Scope::OneCluster, c, &wanted, &cfg).await,
                )
            }),
            _ => None,
        }))
        .await;
        for (c, source, r) in owns {
            mark(&mut signals, &c, source, r.map(Some));
        }
        // ---- the sidecars (one budget for the fleet) ----
        let snap = snapshots.borrow().clone();
        let focused = focus.borrow().clone();
        let scraped: Vec<&str> = plans
            .iter()
            .filter(|(_, p)| matches!(p, Plan::Sidecars))
            .map(|(c, _)| c.as_str())
            .collect();
        let mut chosen = pods_to_scrape(&snap, &scraped, &focused, cfg.max_pods, &mut candidates);
        // not held through the scrapes and the wait (it would keep an older generation of
        // every cluster's views alive while the fleet changes)
        drop(snap);
        let targets: Vec<SidecarTarget<'_>> = scraped
            .iter()
            .filter_map(|&c| {
                let Some(Ok(client)) = clients.iter().find(|(n, _)| n == c).map(|(_, k)| k) else {
                    return None;
                };
                let (pods, total) = chosen.remove(c).unwrap_or_default();
                Some(SidecarTarget {
                    cluster: c,
                    client,
                    pods,
                    total,
                })
            })
            .collect();
        for (c, r) in sidecars.read(&targets, t0, cfg.timeout).await {
            match r {
                Ok((rows, what)) => {
                    record_history(&mut signals, &rows);
                    mark(&mut signals, &c, what, Ok(Some(rows)));
                }
                Err(e) => mark(&mut signals, &c, "sidecars (pod proxy)".into(), Err(e)),
            }
        }
        drop(targets);
        for (c, p) in &plans {
            if let Plan::Nothing(why) = p {
                mark(&mut signals, c, "none".into(), Err(why.clone()));
            }
        }
        round += 1;
        tx.send_replace(Arc::new(signals.clone()));
        // ---- wait: the next round, a history request, or stop ----
        let deadline = tokio::time::sleep(cfg.interval);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                Some(()) = refresh.recv() => break,
                Some((view, who)) = history.recv() => {
                    let ep = plans.iter().find(|(c, _)| *c == who.cluster).and_then(|(_, p)| match p {
                        Plan::Own(ep) => Some((ep.clone(), Scope::OneCluster)),
                        Plan::Shared => shared.as_ref().and_then(|s| s.as_ref().ok()).map(|e| (e.clone(), Scope::Shared)),
                        _ => None,
                    });
                    if let Some((ep, scope)) = ep
                        && let Ok(h) = range(&ep, &scope, view, &who, &cfg).await
                    {
                        signals.history.insert((view, who), h);
                        tx.send_replace(Arc::new(signals.clone()));
                    }
                }
                _ = stop.cancelled() => return,
            }
        }
    }
}

/// Points kept per sparkline where meshdeck records the history itself (30 min at 15 s).
const HISTORY_POINTS: usize = 120;

fn record_history(signals: &mut Signals, rows: &Rows) {
    let now = chrono::Utc::now().timestamp() as f64;
    for (view, map) in [
        (View::Services, &rows.services),
        (View::Workloads, &rows.workloads),
    ] {
        for (k, t) in map {
            let h = signals.history.entry((view, k.clone())).or_default();
            h.rps.push((now, t.rps));
            h.err_pct.push((now, t.err_pct().unwrap_or(0.0)));
            if let Some(p) = t.p99_ms {
                h.p99_ms.push((now, p));
            }
            for s in [&mut h.rps, &mut h.err_pct, &mut h.p99_ms] {
                if s.len() > HISTORY_POINTS {
                    s.drain(..s.len() - HISTORY_POINTS);
                }
            }
        }
    }
}

/// The last 30 minutes of one subject, one point a minute.
async fn range(
    ep: &Endpoint,
    scope: &Scope,
    view: View,
    who: &Subject,
    cfg: &Config,
) -> Result<History, String> {
    let end = chrono::Utc::now().timestamp();
    let start = end - 30 * 60;
    let qs = promql::history(view, scope, who, &cfg.window);
    let mut out = Vec::new();
    for q in qs {
        let body = ep
            .get(
                "/api/v1/query_range",
                &[
                    ("query", q),
                    ("start", start.to_string()),
                    ("end", end.to_string()),
                    ("step", "60".into()),
                ],
                cfg.timeout,
            )
            .await?;
        let m = prom::matrix(&body)?;
        out.push(m.into_iter().next().map(|s| s.points).unwrap_or_default());
    }
    let mut it = out.into_iter();
    Ok(History {
        rps: it.next().unwrap_or_default(),
        err_pct: it.next().unwrap_or_default(),
        p99_ms: it.next().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshdeck_core::model::raw::{RawContainer, RawPod};
    use meshdeck_core::model::{ClusterInput, ConnState, derive_cluster};

    fn pod(ns: &str, name: &str, phase: &str, sidecar: bool) -> Arc<RawPod> {
        let c = |n: &str| RawContainer {
            name: n.into(),
            image: "img".into(),
            ready: true,
            restarts: 0,
            waiting: None,
        };
        let mut containers = vec![c("app")];
        if sidecar {
            containers.push(c("istio-proxy"));
        }
        Arc::new(RawPod {
            namespace: ns.into(),
            name: name.into(),
            labels: Default::default(),
            injected: sidecar,
            opted_out: false,
            ambient: false,
            containers,
            phase: phase.into(),
            ready: true,
            owner: None,
            service_account: "default".into(),
            ip: "10.0.0.1".into(),
            node: "n1".into(),
            created: None,
            deleting: false,
        })
    }

    fn view(name: &str, pods: Vec<Arc<RawPod>>) -> Arc<meshdeck_core::model::ClusterView> {
        let input = ClusterInput {
            name: name.into(),
            context: name.into(),
            pods,
            ..ClusterInput::default()
        };
        Arc::new(derive_cluster(&input, ConnState::Synced))
    }

    fn names(v: &[(String, String)]) -> Vec<String> {
        v.iter().map(|(ns, n)| format!("{ns}/{n}")).collect()
    }

    /// The choice with the cache equals the choice without one, and follows every change of
    /// a view (a pod added, one that stops running) and of the namespaces on screen.
    #[test]
    fn candidates_follow_the_views_and_the_focus() {
        let a = |extra: Vec<Arc<RawPod>>| {
            let mut p = vec![
                pod("shop", "cart-2", "Running", true),
                pod("shop", "cart-1", "Running", true),
                pod("bank", "ledger-1", "Running", true),
                pod("bank", "batch-1", "Succeeded", true),
                pod("bank", "plain-1", "Running", false),
            ];
            p.extend(extra);
            view("a", p)
        };
        let b = view("b", vec![pod("shop", "web-1", "Running", true)]);
        let snap = |a: &Arc<_>| Snapshot {
            clusters: vec![Arc::clone(a), Arc::clone(&b)],
            seq: 1,
        };
        let all = Focus::default();
        let mut cache = CandidateCache::default();
        let v1 = a(vec![]);
        let got = pods_to_scrape(&snap(&v1), &["a", "b"], &all, 3, &mut cache);
        assert_eq!(names(&got["a"].0), ["bank/ledger-1", "shop/cart-1"]);
        assert_eq!(got["a"].1, 3, "running pods with a sidecar");
        assert_eq!(names(&got["b"].0), ["shop/web-1"]);
        // the same views again: the cached answer, equal to a fresh one
        let again = pods_to_scrape(&snap(&v1), &["a", "b"], &all, 3, &mut cache);
        let fresh = pods_to_scrape(
            &snap(&v1),
            &["a", "b"],
            &all,
            3,
            &mut CandidateCache::default(),
        );
        assert_eq!(again, got);
        assert_eq!(fresh, got);
        // a new view of cluster a (a pod that sorts first): seen at once
        let v2 = a(vec![pod("app", "api-1", "Running", true)]);
        let got = pods_to_scrape(&snap(&v2), &["a", "b"], &all, 3, &mut cache);
        assert_eq!(names(&got["a"].0), ["app/api-1", "bank/ledger-1"]);
        assert_eq!(got["a"].1, 4);
        // the namespaces on screen change: they go first
        let shop = Focus {
            namespaces: [("a".to_string(), "shop".to_string())].into(),
        };
        let got = pods_to_scrape(&snap(&v2), &["a", "b"], &shop, 3, &mut cache);
        assert_eq!(
            names(&got["a"].0),
            ["shop/cart-1", "shop/cart-2", "app/api-1"]
        );
        // b shows nothing on screen: the budget is gone before its turn
        assert_eq!(got["b"], (Vec::new(), 1));
        // a cluster no longer scraped leaves the cache
        pods_to_scrape(&snap(&v2), &["b"], &shop, 3, &mut cache);
        assert!(!cache.0.contains_key("a"));
    }
}
