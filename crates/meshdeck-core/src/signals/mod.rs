//! Golden signals: request rate, errors and latency per service, workload and edge, from Istio's
//! standard metrics (`istio_requests_total`, `istio_request_duration_milliseconds`), and traffic
//! health with Kiali's tolerances.
//!
//! Pure: the PromQL meshdeck sends ([`promql`]), the folding of Prometheus answers and of
//! sidecar scrapes into [`Traffic`] values ([`prom`], [`scrape`]), and the tolerance rules
//! ([`health`]). The I/O half (the HTTP client, the refresh task) is `meshdeck_kube::signals`.
//!
//! What a row means:
//! - a **service** row is what the service's callers in that cluster see (`reporter="source"`,
//!   grouped by `source_cluster`): it includes fault-injection aborts, missing subsets and
//!   routes to no endpoint, which never reach the service's pods;
//! - a **workload** row is what the workload's pods served (`reporter="destination"`, grouped
//!   by `destination_cluster`): a traffic shift shows here;
//! - an **edge** is one source workload calling one destination service (`reporter="source"`).

pub mod health;
pub mod prom;
pub mod promql;
pub mod scrape;

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// The annotation that sets an object's own tolerances (Kiali's).
pub const RATE_ANNOTATION: &str = "health.kiali.io/rate";

/// The rate window of the instant queries and of the sidecar fallback's two samples.
pub const WINDOW: &str = "1m";

/// Rates of one subject over the window, requests per second.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Traffic {
    pub rps: f64,
    /// HTTP requests per second by response code (`"200"`, `"503"`; `"-"`: no response).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub http: BTreeMap<String, f64>,
    /// gRPC requests per second by gRPC status (`"0"` is OK).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub grpc: BTreeMap<String, f64>,
    /// 99th percentile of request duration, milliseconds (None: no histogram data).
    pub p99_ms: Option<f64>,
    /// The source holds this subject's request counters but cannot give a rate yet (fewer
    /// than two samples in the window: a Prometheus that just started scraping it): its
    /// cells read `…`, never `-` (no requests) or 0.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

impl Traffic {
    /// Its RPS, ERR % and P99 cells: `…` while pending (counters, no rate yet), `-` where
    /// there is no such figure.
    pub fn cells(&self) -> [String; 3] {
        if self.pending {
            return ["…".into(), "…".into(), "…".into()];
        }
        [
            fmt_rps(self.rps),
            self.err_pct().map_or_else(|| "-".into(), fmt_pct),
            self.p99_ms.map_or_else(|| "-".into(), fmt_ms),
        ]
    }

    /// Count `rate` requests of one protocol and result.
    pub fn add(&mut self, protocol: &str, response_code: &str, grpc_status: &str, rate: f64) {
        if !rate.is_finite() || rate <= 0.0 {
            return;
        }
        self.rps += rate;
        if protocol == "grpc" && !grpc_status.is_empty() {
            *self.grpc.entry(grpc_status.to_string()).or_default() += rate;
        } else {
            // Istio reports a request that got no response with code 0; Kiali calls it "-"
            let code = match response_code {
                "0" | "" | "-" => "-",
                c => c,
            };
            *self.http.entry(code.to_string()).or_default() += rate;
        }
    }

    /// Requests per second that failed: HTTP 4xx/5xx, no response, gRPC status ≠ 0.
    pub fn error_rps(&self) -> f64 {
        let http: f64 = self
            .http
            .iter()
            .filter(|(c, _)| c.as_str() == "-" || c.starts_with('4') || c.starts_with('5'))
            .map(|(_, r)| r)
            .sum();
        let grpc: f64 = self
            .grpc
            .iter()
            .filter(|(c, _)| c.as_str() != "0")
            .map(|(_, r)| r)
            .sum();
        http + grpc
    }

    /// The share of failed requests in percent; None without requests.
    pub fn err_pct(&self) -> Option<f64> {
        (self.rps > 0.0).then(|| 100.0 * self.error_rps() / self.rps)
    }

    /// Requests per second whose code starts with `class` (`'5'`).
    pub fn class_rps(&self, class: char) -> f64 {
        self.http
            .iter()
            .filter(|(c, _)| c.starts_with(class))
            .map(|(_, r)| r)
            .sum()
    }
}

/// One service or workload of one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Subject {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
}

impl Subject {
    pub fn new(cluster: &str, namespace: &str, name: &str) -> Self {
        Subject {
            cluster: cluster.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

/// One source workload calling one destination service, as the source's cluster saw it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Edge {
    pub cluster: String,
    pub source_namespace: String,
    pub source_workload: String,
    pub dest_namespace: String,
    pub dest_service: String,
}

/// Which rows a query or fold is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum View {
    Services,
    Workloads,
    Edges,
}

impl View {
    pub const ALL: [View; 3] = [View::Services, View::Workloads, View::Edges];

    pub fn reporter(self) -> &'static str {
        match self {
            View::Workloads => "destination",
            View::Services | View::Edges => "source",
        }
    }

    /// The Istio label naming the cluster a row belongs to.
    pub fn cluster_label(self) -> &'static str {
        match self {
            View::Workloads => "destination_cluster",
            View::Services | View::Edges => "source_cluster",
        }
    }

    /// The Istio labels that identify a row (without the cluster).
    pub fn group_labels(self) -> &'static [&'static str] {
        match self {
            View::Services => &["destination_service_namespace", "destination_service_name"],
            View::Workloads => &["destination_workload_namespace", "destination_workload"],
            View::Edges => &[
                "source_workload_namespace",
                "source_workload",
                "destination_service_namespace",
                "destination_service_name",
            ],
        }
    }
}

/// Where one cluster's signals came from and whether they are current.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceState {
    /// `prometheus http://…`, `in-cluster prometheus (istio-system/prometheus)`,
    /// `sidecars (pod proxy, 40 of 112 pods)`.
    pub source: String,
    /// RFC 3339 time of the last successful refresh.
    pub refreshed: Option<String>,
    /// Why the last refresh failed: the signals shown are the last good ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale: Option<String>,
}

/// One time series of a sparkline: (unix seconds, value).
pub type Series = Vec<(f64, f64)>;

/// The last 30 minutes of one subject.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct History {
    pub rps: Series,
    pub err_pct: Series,
    pub p99_ms: Series,
}

/// What the signal refresh publishes: every cluster's rows, and where they came from.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Signals {
    pub window: String,
    pub clusters: BTreeMap<String, SourceState>,
    #[serde(serialize_with = "sorted")]
    pub services: HashMap<Subject, Traffic>,
    #[serde(serialize_with = "sorted")]
    pub workloads: HashMap<Subject, Traffic>,
    #[serde(serialize_with = "sorted")]
    pub edges: HashMap<Edge, Traffic>,
    /// Sparklines, keyed by `(view, subject)`: filled by range queries, or by the refreshes
    /// themselves where no Prometheus keeps history.
    #[serde(skip)]
    pub history: HashMap<(View, Subject), History>,
}

/// A map as a list of rows sorted by key (stable JSON for a `HashMap`).
fn sorted<K: Ord + Serialize, S: serde::Serializer>(
    m: &HashMap<K, Traffic>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut v: Vec<_> = m.iter().collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for (k, t) in v {
        seq.serialize_element(&Row { key: k, traffic: t })?;
    }
    seq.end()
}

#[derive(Serialize)]
struct Row<'a, K: Serialize> {
    #[serde(flatten)]
    key: &'a K,
    #[serde(flatten)]
    traffic: &'a Traffic,
}

impl Signals {
    /// Whether a cluster's signals are known and current.
    pub fn state(&self, cluster: &str) -> Option<&SourceState> {
        self.clusters.get(cluster)
    }

    pub fn service(&self, cluster: &str, namespace: &str, name: &str) -> Option<&Traffic> {
        self.services.get(&Subject::new(cluster, namespace, name))
    }

    pub fn workload(&self, cluster: &str, namespace: &str, name: &str) -> Option<&Traffic> {
        self.workloads.get(&Subject::new(cluster, namespace, name))
    }

    /// A service's signals and traffic health (None: no requests seen).
    pub fn judge_service(
        &self,
        tol: &health::Tolerances,
        s: &crate::model::Service,
    ) -> Option<(&Traffic, Option<health::TrafficHealth>)> {
        let t = self.service(&s.cluster, &s.namespace, &s.name)?;
        let h = tol.evaluate(
            "service",
            &s.namespace,
            &s.name,
            s.raw.rate_annotation.as_deref(),
            t,
            &self.window,
        );
        Some((t, h))
    }

    /// A workload's signals and traffic health (None: no requests seen).
    pub fn judge_workload(
        &self,
        tol: &health::Tolerances,
        w: &crate::model::Workload,
    ) -> Option<(&Traffic, Option<health::TrafficHealth>)> {
        let t = self.workload(&w.cluster, &w.namespace, &w.name)?;
        let h = tol.evaluate(
            "workload",
            &w.namespace,
            &w.name,
            w.rate_annotation.as_deref(),
            t,
            &self.window,
        );
        Some((t, h))
    }

    /// The signal cells of a row: RPS, ERR %, P99 (`-` without data, `?` when the
    /// cluster's source is stale and has nothing).
    pub fn cells(&self, cluster: &str, t: Option<&Traffic>) -> [String; 3] {
        match t {
            Some(t) => t.cells(),
            None => {
                let unknown = self
                    .clusters
                    .get(cluster)
                    .is_none_or(|s| s.refreshed.is_none());
                let c = if unknown { "?" } else { "-" };
                [c.into(), c.into(), c.into()]
            }
        }
    }

    /// Replace one cluster's rows with a fresh refresh's.
    pub fn replace_cluster(&mut self, cluster: &str, fresh: Rows) {
        self.services.retain(|k, _| k.cluster != cluster);
        self.workloads.retain(|k, _| k.cluster != cluster);
        self.edges.retain(|k, _| k.cluster != cluster);
        self.services.extend(fresh.services);
        self.workloads.extend(fresh.workloads);
        self.edges.extend(fresh.edges);
    }
}

/// The rows of one refresh (one cluster, or several for a shared Prometheus).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    pub services: HashMap<Subject, Traffic>,
    pub workloads: HashMap<Subject, Traffic>,
    pub edges: HashMap<Edge, Traffic>,
}

impl Rows {
    /// The row of `view` named by these Istio labels, in `cluster`.
    pub fn entry(
        &mut self,
        view: View,
        cluster: &str,
        get: impl Fn(&str) -> Option<String>,
    ) -> Option<&mut Traffic> {
        let g = |k: &str| get(k).filter(|v| !v.is_empty() && v != "unknown");
        Some(match view {
            View::Services => self
                .services
                .entry(Subject {
                    cluster: cluster.to_string(),
                    namespace: g("destination_service_namespace")?,
                    name: g("destination_service_name")?,
                })
                .or_default(),
            View::Workloads => self
                .workloads
                .entry(Subject {
                    cluster: cluster.to_string(),
                    namespace: g("destination_workload_namespace")?,
                    name: g("destination_workload")?,
                })
                .or_default(),
            View::Edges => self
                .edges
                .entry(Edge {
                    cluster: cluster.to_string(),
                    source_namespace: get("source_workload_namespace").unwrap_or_default(),
                    // a caller outside the mesh is reported as "unknown"
                    source_workload: get("source_workload")
                        .filter(|v| !v.is_empty())
                        .unwrap_or_else(|| "unknown".into()),
                    dest_namespace: g("destination_service_namespace")?,
                    dest_service: g("destination_service_name")?,
                })
                .or_default(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && self.workloads.is_empty() && self.edges.is_empty()
    }

    /// Drop rows without requests (a latency answer alone makes no row).
    pub fn drop_idle(&mut self) {
        self.services.retain(|_, t| t.rps > 0.0 || t.pending);
        self.workloads.retain(|_, t| t.rps > 0.0 || t.pending);
        self.edges.retain(|_, t| t.rps > 0.0 || t.pending);
    }

    /// Mark pending every subject of `seen` (the source holds its counters) that `answered`
    /// (the rate answer named it, with any value) does not have, unless a row exists.
    pub fn add_pending(&mut self, seen: Rows, answered: &Rows) {
        fn mark<K: Eq + std::hash::Hash>(
            rows: &mut HashMap<K, Traffic>,
            seen: HashMap<K, Traffic>,
            answered: &HashMap<K, Traffic>,
        ) {
            for (k, _) in seen {
                if !answered.contains_key(&k) {
                    rows.entry(k).or_insert_with(|| Traffic {
                        pending: true,
                        ..Traffic::default()
                    });
                }
            }
        }
        mark(&mut self.services, seen.services, &answered.services);
        mark(&mut self.workloads, seen.workloads, &answered.workloads);
        mark(&mut self.edges, seen.edges, &answered.edges);
    }

    /// The rows of one cluster.
    pub fn of_cluster(&self, cluster: &str) -> Rows {
        fn pick<K: Clone + Eq + std::hash::Hash>(
            m: &HashMap<K, Traffic>,
            keep: impl Fn(&K) -> bool,
        ) -> HashMap<K, Traffic> {
            m.iter()
                .filter(|(k, _)| keep(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }
        Rows {
            services: pick(&self.services, |k| k.cluster == cluster),
            workloads: pick(&self.workloads, |k| k.cluster == cluster),
            edges: pick(&self.edges, |k| k.cluster == cluster),
        }
    }
}

/// Prometheus's `histogram_quantile`: `buckets` are (upper bound, cumulative count), in any
/// order, the last being `+Inf`. Linear interpolation inside the bucket the rank falls in; a
/// rank in the `+Inf` bucket answers the highest finite bound. None without observations.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let mut b: Vec<(f64, f64)> = buckets
        .iter()
        .copied()
        .filter(|(le, c)| !le.is_nan() && c.is_finite())
        .collect();
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    // cumulative counts must not fall (rates of separately scraped buckets can jitter)
    for i in 1..b.len() {
        if b[i].1 < b[i - 1].1 {
            b[i].1 = b[i - 1].1;
        }
    }
    let &(last_le, total) = b.last()?;
    if !last_le.is_infinite() || total <= 0.0 || b.len() < 2 {
        return None;
    }
    let rank = q * total;
    let i = b.iter().position(|(_, c)| *c >= rank)?;
    if i == b.len() - 1 {
        return Some(b[b.len() - 2].0);
    }
    let (upper, count) = b[i];
    let (lower, below) = if i == 0 { (0.0, 0.0) } else { b[i - 1] };
    if i == 0 && upper <= 0.0 {
        return Some(upper);
    }
    let in_bucket = count - below;
    if in_bucket <= 0.0 {
        return Some(upper);
    }
    Some(lower + (upper - lower) * (rank - below) / in_bucket)
}

/// Format a rate for a column: `0`, `0.42`, `12.3`, `1.2k`.
pub fn fmt_rps(v: f64) -> String {
    if v <= 0.0 {
        "0".into()
    } else if v < 10.0 {
        format!("{v:.2}")
    } else if v < 1000.0 {
        format!("{v:.1}")
    } else {
        format!("{:.1}k", v / 1000.0)
    }
}

/// Format a percentage for a column: `0 %`, `0.3 %`, `12.4 %`, `100 %`.
pub fn fmt_pct(v: f64) -> String {
    if v <= 0.0 {
        "0%".into()
    } else if v >= 99.95 {
        "100%".into()
    } else {
        format!("{v:.1}%")
    }
}

/// Format a latency for a column: `4ms`, `12ms`, `1.2s`.
pub fn fmt_ms(v: f64) -> String {
    if v < 1000.0 {
        format!("{v:.0}ms")
    } else {
        format!("{:.1}s", v / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_counts_errors_by_class_and_protocol() {
        let mut t = Traffic::default();
        t.add("http", "200", "", 8.0);
        t.add("http", "503", "", 1.0);
        t.add("http", "404", "", 0.5);
        t.add("http", "0", "", 0.5);
        t.add("grpc", "200", "14", 1.0);
        t.add("grpc", "200", "0", 1.0);
        t.add("http", "200", "", f64::NAN);
        assert_eq!(t.rps, 12.0);
        assert_eq!(t.http.get("-"), Some(&0.5));
        assert_eq!(t.error_rps(), 3.0);
        assert_eq!(t.err_pct(), Some(25.0));
        assert_eq!(t.class_rps('5'), 1.0);
        assert_eq!(Traffic::default().err_pct(), None);
    }

    #[test]
    fn histogram_quantile_interpolates_like_prometheus() {
        // 100 observations: 50 ≤ 10 ms, 40 in (10, 25], 9 in (25, 50], 1 above 100
        let b = [
            (10.0, 50.0),
            (25.0, 90.0),
            (50.0, 99.0),
            (100.0, 99.0),
            (f64::INFINITY, 100.0),
        ];
        // rank 50 → the first bucket's top
        assert_eq!(histogram_quantile(0.5, &b), Some(10.0));
        // rank 95: 5 of the 9 in (25, 50]
        let p95 = histogram_quantile(0.95, &b).unwrap_or_default();
        assert!((p95 - (25.0 + 25.0 * 5.0 / 9.0)).abs() < 1e-9, "{p95}");
        // rank 99.5 lands in +Inf: the highest finite bound
        assert_eq!(histogram_quantile(0.995, &b), Some(100.0));
        assert_eq!(histogram_quantile(0.99, &[]), None);
        assert_eq!(
            histogram_quantile(0.99, &[(f64::INFINITY, 0.0), (1.0, 0.0)]),
            None
        );
        // without +Inf there is no quantile (Prometheus answers NaN)
        assert_eq!(histogram_quantile(0.99, &[(1.0, 3.0)]), None);
    }

    #[test]
    fn columns_keep_a_fixed_shape() {
        assert_eq!(fmt_rps(0.0), "0");
        assert_eq!(fmt_rps(0.4199), "0.42");
        assert_eq!(fmt_rps(12.34), "12.3");
        assert_eq!(fmt_rps(1234.0), "1.2k");
        assert_eq!(fmt_pct(12.44), "12.4%");
        assert_eq!(fmt_pct(99.99), "100%");
        assert_eq!(fmt_ms(12.4), "12ms");
        assert_eq!(fmt_ms(1500.0), "1.5s");
    }
}
