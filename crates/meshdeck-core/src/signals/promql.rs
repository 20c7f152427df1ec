//! The PromQL meshdeck sends. Few queries, aggregated on the server: per view one request-rate
//! query (grouped by the row's labels and the response code) and one latency query (the
//! histogram's buckets summed per row, then `histogram_quantile`).

use super::{Subject, View};

/// How a source's answers map to clusters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The Prometheus of one cluster: every row is that cluster's.
    OneCluster,
    /// A Prometheus shared by several clusters: rows are grouped by the view's cluster label
    /// (`source_cluster`/`destination_cluster`), whose values are meshdeck's cluster names.
    Shared,
}

fn by(view: View, scope: &Scope, extra: &[&str]) -> String {
    let mut labels: Vec<&str> = Vec::new();
    if *scope == Scope::Shared {
        labels.push(view.cluster_label());
    }
    labels.extend_from_slice(view.group_labels());
    labels.extend_from_slice(extra);
    labels.join(", ")
}

/// Requests per second of every row of `view`, by protocol and result.
pub fn requests(view: View, scope: &Scope, window: &str) -> String {
    format!(
        "sum by ({}) (rate(istio_requests_total{{reporter=\"{}\"}}[{window}]))",
        by(
            view,
            scope,
            &["request_protocol", "response_code", "grpc_response_status"]
        ),
        view.reporter()
    )
}

/// The rows of `view` whose request counters the source holds at all (whatever their rate):
/// a row here and not in the rate answer is pending, not idle.
pub fn seen(view: View, scope: &Scope) -> String {
    format!(
        "count by ({}) (istio_requests_total{{reporter=\"{}\"}})",
        by(view, scope, &[]),
        view.reporter()
    )
}

/// The 99th percentile request duration of every row of `view`, in milliseconds.
pub fn p99(view: View, scope: &Scope, window: &str) -> String {
    format!(
        "histogram_quantile(0.99, sum by ({}) (rate(istio_request_duration_milliseconds_bucket{{reporter=\"{}\"}}[{window}])))",
        by(view, scope, &["le"]),
        view.reporter()
    )
}

/// A label value inside double quotes.
pub fn quote(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

fn selector(view: View, scope: &Scope, who: &Subject) -> String {
    let (ns, name) = match view {
        View::Workloads => ("destination_workload_namespace", "destination_workload"),
        View::Services | View::Edges => {
            ("destination_service_namespace", "destination_service_name")
        }
    };
    let mut s = format!(
        "reporter=\"{}\", {ns}={}, {name}={}",
        view.reporter(),
        quote(&who.namespace),
        quote(&who.name)
    );
    if *scope == Scope::Shared {
        s.push_str(&format!(
            ", {}={}",
            view.cluster_label(),
            quote(&who.cluster)
        ));
    }
    s
}

/// The three range queries of one subject's sparklines: requests per second, error percent,
/// p99 milliseconds.
pub fn history(view: View, scope: &Scope, who: &Subject, window: &str) -> [String; 3] {
    let sel = selector(view, scope, who);
    [
        format!("sum(rate(istio_requests_total{{{sel}}}[{window}]))"),
        format!(
            "100 * sum(rate(istio_requests_total{{{sel}, response_code=~\"[45]..|0\"}}[{window}])) / sum(rate(istio_requests_total{{{sel}}}[{window}]))"
        ),
        format!(
            "histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{{{sel}}}[{window}])))"
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queries_of_each_view() {
        assert_eq!(
            requests(View::Services, &Scope::OneCluster, "1m"),
            "sum by (destination_service_namespace, destination_service_name, request_protocol, response_code, grpc_response_status) (rate(istio_requests_total{reporter=\"source\"}[1m]))"
        );
        assert_eq!(
            requests(View::Workloads, &Scope::Shared, "1m"),
            "sum by (destination_cluster, destination_workload_namespace, destination_workload, request_protocol, response_code, grpc_response_status) (rate(istio_requests_total{reporter=\"destination\"}[1m]))"
        );
        assert_eq!(
            p99(View::Edges, &Scope::Shared, "1m"),
            "histogram_quantile(0.99, sum by (source_cluster, source_workload_namespace, source_workload, destination_service_namespace, destination_service_name, le) (rate(istio_request_duration_milliseconds_bucket{reporter=\"source\"}[1m])))"
        );
    }

    #[test]
    fn history_selects_one_subject_and_quotes_its_names() {
        let who = Subject::new("eu-west", "book\"store", "reviews");
        let [rps, err, p99] = history(View::Services, &Scope::Shared, &who, "1m");
        assert_eq!(
            rps,
            "sum(rate(istio_requests_total{reporter=\"source\", destination_service_namespace=\"book\\\"store\", destination_service_name=\"reviews\", source_cluster=\"eu-west\"}[1m]))"
        );
        assert!(err.starts_with("100 * sum(rate(istio_requests_total{reporter=\"source\""));
        assert!(err.contains("response_code=~\"[45]..|0\""), "{err}");
        assert!(p99.contains("sum by (le)"), "{p99}");
        let [w, _, _] = history(View::Workloads, &Scope::OneCluster, &who, "1m");
        assert!(w.contains("destination_workload=\"reviews\""), "{w}");
        assert!(!w.contains("cluster"), "{w}");
    }
}
