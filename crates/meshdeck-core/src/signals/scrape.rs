//! Without Prometheus: the sidecars' own endpoint (`:15020/stats/prometheus`, read through the
//! API server's pod proxy). Two scrapes of one pod give its rates; the pods' rates fold into
//! the same rows the Prometheus queries give.

use super::{Rows, View, histogram_quantile};
use std::collections::{BTreeMap, HashMap};

/// The labels meshdeck keeps of a sidecar's series (every view's, plus the result's).
const KEPT: &[&str] = &[
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "destination_workload",
    "destination_workload_namespace",
    "destination_service_name",
    "destination_service_namespace",
    "request_protocol",
    "response_code",
    "grpc_response_status",
];

/// A series' kept labels, in `KEPT` order.
pub type SeriesKey = Vec<(String, String)>;
/// Histogram buckets: (upper bound, count).
pub type Buckets = Vec<(f64, f64)>;

/// One scrape of one pod's sidecar.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodSample {
    /// Seconds (any epoch; only differences count).
    pub at: f64,
    /// `istio_requests_total` series: kept labels → count.
    pub requests: BTreeMap<SeriesKey, f64>,
    /// `istio_request_duration_milliseconds` histograms: kept labels → (le, cumulative count).
    pub buckets: BTreeMap<SeriesKey, Buckets>,
}

fn kept(l: &HashMap<String, String>) -> Vec<(String, String)> {
    KEPT.iter()
        .filter_map(|k| l.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect()
}

/// The two metric families meshdeck reads of a sidecar.
const REQUESTS: &str = "istio_requests_total";
const DURATION: &str = "istio_request_duration_milliseconds";

/// Whether a line of Prometheus text belongs to one of the two families read (a sample, or its
/// `# TYPE` / `# HELP`). A real sidecar serves a few thousand lines, nearly all Envoy's own
/// (`envoy_*`, `istio_agent_*`); only these few dozen go through the parser.
fn wanted(line: &str) -> bool {
    let l = line.trim_start();
    let name = match l.strip_prefix('#') {
        Some(rest) => {
            let mut w = rest.split_whitespace();
            match w.next() {
                Some("TYPE" | "HELP") => w.next().unwrap_or(""),
                _ => return false,
            }
        }
        None => l
            .split(|c: char| c == '{' || c.is_whitespace())
            .next()
            .unwrap_or(""),
    };
    name == REQUESTS
        || name
            .strip_prefix(DURATION)
            .is_some_and(|s| matches!(s, "" | "_bucket" | "_sum" | "_count"))
}

/// Parse a sidecar's Prometheus text. Text with no sample at all that looks like HTML (a proxy's
/// page) is an error; a sidecar with no Istio series yet is an empty sample.
pub fn parse(text: &str, at: f64) -> Result<PodSample, String> {
    use prometheus_parse::{Scrape, Value};
    let t0 = chrono::DateTime::<chrono::Utc>::from_timestamp(at as i64, 0).unwrap_or_default();
    let lines = text
        .lines()
        .filter(|l| wanted(l))
        .map(|l| Ok(l.to_string()));
    let scrape =
        Scrape::parse_at(lines, t0).map_err(|e| format!("reading the sidecar's metrics: {e}"))?;
    if scrape.samples.is_empty() && text.trim_start().starts_with('<') {
        let first: String = text.lines().next().unwrap_or("").chars().take(60).collect();
        return Err(format!("not Prometheus text (HTML: {first:?})"));
    }
    let mut out = PodSample {
        at,
        ..PodSample::default()
    };
    for s in scrape.samples {
        match (s.metric.as_str(), s.value) {
            (REQUESTS, Value::Counter(v) | Value::Untyped(v)) => {
                *out.requests.entry(kept(&s.labels)).or_default() += v;
            }
            (DURATION, Value::Histogram(h)) => {
                let b = out.buckets.entry(kept(&s.labels)).or_default();
                for c in h {
                    match b.iter_mut().find(|(le, _)| *le == c.less_than) {
                        Some(x) => x.1 += c.count,
                        None => b.push((c.less_than, c.count)),
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn per_second(prev: Option<f64>, cur: f64, dt: f64) -> f64 {
    match prev {
        // a counter that fell was reset (the sidecar restarted): all of it is new
        Some(p) if cur >= p => (cur - p) / dt,
        Some(_) => cur / dt,
        // a series that appeared between the scrapes started from zero
        None => cur / dt,
    }
}

/// Fold the rates between two scrapes of each pod into `rows` of `cluster`. Pods with one
/// scrape only, or two at the same instant, add nothing.
pub fn fold(rows: &mut Rows, cluster: &str, pairs: &[(&PodSample, &PodSample)]) {
    // per view and row: summed bucket rates, for the row's p99
    let mut hist: HashMap<(View, Vec<Option<String>>), Buckets> = HashMap::new();
    for (prev, cur) in pairs {
        let dt = cur.at - prev.at;
        if dt <= 0.0 {
            continue;
        }
        for (k, v) in &cur.requests {
            let rate = per_second(prev.requests.get(k).copied(), *v, dt);
            let l = |name: &str| {
                k.iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
                    .unwrap_or("")
            };
            for view in View::ALL {
                if l("reporter") != view.reporter() {
                    continue;
                }
                if let Some(t) = rows.entry(view, cluster, |n| Some(l(n).to_string())) {
                    t.add(
                        l("request_protocol"),
                        l("response_code"),
                        l("grpc_response_status"),
                        rate,
                    );
                }
            }
        }
        for (k, b) in &cur.buckets {
            let old = prev.buckets.get(k);
            let l = |name: &str| k.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
            for view in View::ALL {
                if l("reporter").as_deref() != Some(view.reporter()) {
                    continue;
                }
                let id: Vec<Option<String>> = view.group_labels().iter().map(|n| l(n)).collect();
                let acc = hist.entry((view, id)).or_default();
                for (le, c) in b {
                    let p = old.and_then(|o| o.iter().find(|(x, _)| x == le).map(|(_, c)| *c));
                    let r = per_second(p, *c, dt);
                    match acc.iter_mut().find(|(x, _)| x == le) {
                        Some(x) => x.1 += r,
                        None => acc.push((*le, r)),
                    }
                }
            }
        }
    }
    for ((view, id), buckets) in hist {
        let Some(q) = histogram_quantile(0.99, &buckets) else {
            continue;
        };
        let get = |n: &str| {
            view.group_labels()
                .iter()
                .position(|x| *x == n)
                .and_then(|i| id[i].clone())
        };
        // a row without requests is dropped below
        if let Some(t) = rows.entry(view, cluster, get) {
            t.p99_ms = Some(q);
        }
    }
    rows.drop_idle();
}

#[cfg(test)]
mod tests {
    use super::super::Subject;
    use super::*;

    fn text(ok: u64, err: u64, fast: u64, slow: u64) -> String {
        let l = r#"reporter="destination",source_workload="frontend",source_workload_namespace="bookstore",destination_workload="reviews-v1",destination_workload_namespace="bookstore",destination_service_name="reviews",destination_service_namespace="bookstore",request_protocol="http""#;
        let total = fast + slow;
        format!(
            "# TYPE istio_requests_total counter\n\
             istio_requests_total{{{l},response_code=\"200\"}} {ok}\n\
             istio_requests_total{{{l},response_code=\"503\"}} {err}\n\
             # TYPE istio_request_duration_milliseconds histogram\n\
             istio_request_duration_milliseconds_bucket{{{l},response_code=\"200\",le=\"10\"}} {fast}\n\
             istio_request_duration_milliseconds_bucket{{{l},response_code=\"200\",le=\"100\"}} {total}\n\
             istio_request_duration_milliseconds_bucket{{{l},response_code=\"200\",le=\"+Inf\"}} {total}\n\
             istio_request_duration_milliseconds_sum{{{l},response_code=\"200\"}} 1\n\
             istio_request_duration_milliseconds_count{{{l},response_code=\"200\"}} {total}\n"
        )
    }

    #[test]
    fn two_scrapes_give_rates_and_a_p99() {
        let a = parse(&text(100, 10, 100, 0), 1000.0).expect("a");
        let b = parse(&text(190, 20, 190, 10), 1010.0).expect("b");
        let mut rows = Rows::default();
        fold(&mut rows, "eu-west", &[(&a, &b)]);
        let w = &rows.workloads[&Subject::new("eu-west", "bookstore", "reviews-v1")];
        assert!((w.rps - 10.0).abs() < 1e-9, "{w:?}");
        assert!((w.err_pct().unwrap_or_default() - 10.0).abs() < 1e-9);
        // 90 fast and 10 slow per 10 s: p99 inside (10, 100]
        let p = w.p99_ms.unwrap_or_default();
        assert!(p > 10.0 && p <= 100.0, "{p}");
        // the destination reporter makes no service row (those are what callers see)
        assert!(rows.services.is_empty());
    }

    #[test]
    fn a_restarted_sidecar_and_html_are_handled() {
        let a = parse(&text(1000, 0, 0, 0), 0.0).expect("a");
        let b = parse(&text(50, 0, 0, 0), 10.0).expect("b");
        let mut rows = Rows::default();
        fold(&mut rows, "c", &[(&a, &b)]);
        let w = &rows.workloads[&Subject::new("c", "bookstore", "reviews-v1")];
        assert!((w.rps - 5.0).abs() < 1e-9, "reset counts from zero: {w:?}");
        let e = parse("<html><body>proxy login</body></html>", 0.0).expect_err("html");
        assert!(e.contains("HTML"), "{e}");
        assert_eq!(parse("", 0.0).expect("empty").requests.len(), 0);
    }

    /// Envoy's own series around, between and inside the Istio families (as a real sidecar
    /// serves them) change nothing of what is read.
    #[test]
    fn envoy_series_are_skipped_not_misread() {
        let plain = text(190, 20, 190, 10);
        let noise = "# HELP envoy_cluster_upstream_rq_total Total requests.\n\
                     # TYPE envoy_cluster_upstream_rq_total counter\n\
                     envoy_cluster_upstream_rq_total{cluster_name=\"outbound|9080||reviews\"} 77\n\
                     # TYPE istio_requests_total_extra counter\n\
                     istio_requests_total_extra{reporter=\"destination\"} 5\n\
                     # TYPE envoy_cluster_upstream_rq_time histogram\n\
                     envoy_cluster_upstream_rq_time_bucket{le=\"0.5\"} 3\n\
                     envoy_cluster_upstream_rq_time_bucket{le=\"+Inf\"} 9\n\
                     envoy_cluster_upstream_rq_time_sum 12\n\
                     envoy_cluster_upstream_rq_time_count 9\n\
                     istio_agent_go_goroutines 41\n";
        let (req, dur) = plain
            .split_once("# TYPE istio_request_duration")
            .expect("two families");
        let mixed = format!("{noise}{req}{noise}# TYPE istio_request_duration{dur}{noise}");
        let a = parse(&plain, 1.0).expect("plain");
        let b = parse(&mixed, 1.0).expect("mixed");
        assert_eq!(a, b);
        assert_eq!(b.requests.len(), 2, "{b:?}");
        assert_eq!(b.buckets.len(), 1, "{b:?}");
        assert!(wanted(
            "istio_request_duration_milliseconds_bucket{le=\"1\"} 2"
        ));
        assert!(wanted("  # TYPE istio_requests_total counter"));
        assert!(!wanted("istio_request_duration_milliseconds_extra 2"));
        assert!(!wanted("# comment about istio_requests_total"));
    }
}
