//! Prometheus HTTP API answers (`/api/v1/query`, `/api/v1/query_range`) read into rows. A reply
//! that is not Prometheus JSON (a proxy's HTML login page, say) is an error that says what came.

use super::promql::Scope;
use super::{Rows, Series, View};
use serde_json::Value;
use std::collections::BTreeMap;

/// One sample of an instant vector: its labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// One series of a range answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    pub labels: BTreeMap<String, String>,
    pub points: Series,
}

fn body_error(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let first: String = first.chars().take(80).collect();
    if text.trim_start().starts_with('<') {
        format!("not a Prometheus API reply (HTML: {first:?})")
    } else {
        format!("not a Prometheus API reply ({first:?})")
    }
}

/// A reply of the HTTP API, read straight into what meshdeck keeps (no JSON tree in between:
/// an answer for a big fleet is megabytes).
#[derive(serde::Deserialize)]
struct Reply {
    status: String,
    #[serde(rename = "errorType", default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(serde::Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(default)]
    result: Vec<Entry>,
}

/// One series of a vector (`value`) or matrix (`values`); values are strings ("NaN", "+Inf").
#[derive(serde::Deserialize)]
struct Entry {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    value: Option<(f64, String)>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// A reply the typed read refused, read again as any JSON to say what it was (errors only).
fn refused(body: &[u8], want: &str) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return body_error(body);
    };
    match v.get("status").and_then(Value::as_str) {
        Some("success") => {}
        Some("error") => {
            let field = |k: &str| v.get(k).and_then(Value::as_str);
            return prometheus_error(field("errorType"), field("error"));
        }
        _ => return body_error(body),
    }
    let kind = v
        .pointer("/data/resultType")
        .and_then(Value::as_str)
        .unwrap_or("");
    if kind != want {
        return format!("Prometheus answered a {kind:?}, not a {want:?}");
    }
    let first: String = String::from_utf8_lossy(body).chars().take(80).collect();
    format!("not a Prometheus API reply ({first:?})")
}

/// What an `"status": "error"` reply says.
fn prometheus_error(error_type: Option<&str>, error: Option<&str>) -> String {
    format!(
        "Prometheus: {}: {}",
        error_type.unwrap_or("error"),
        error.unwrap_or("")
    )
}

fn data(body: &[u8], want: &str) -> Result<Vec<Entry>, String> {
    let r: Reply = serde_json::from_slice(body).map_err(|_| refused(body, want))?;
    match r.status.as_str() {
        "success" => {}
        "error" => {
            return Err(prometheus_error(
                r.error_type.as_deref(),
                r.error.as_deref(),
            ));
        }
        _ => return Err(body_error(body)),
    }
    let d = r.data.ok_or_else(|| body_error(body))?;
    if d.result_type != want {
        return Err(format!(
            "Prometheus answered a {:?}, not a {want:?}",
            d.result_type
        ));
    }
    Ok(d.result)
}

fn number(v: &str) -> Option<f64> {
    v.parse().ok()
}

/// An instant query's vector. NaN samples (a quantile of no requests) are dropped.
pub fn vector(body: &[u8]) -> Result<Vec<Sample>, String> {
    Ok(data(body, "vector")?
        .into_iter()
        .filter_map(|r| {
            let value = number(&r.value?.1)?;
            value.is_finite().then_some(Sample {
                labels: r.metric,
                value,
            })
        })
        .collect())
}

/// A range query's matrix. NaN points are dropped.
pub fn matrix(body: &[u8]) -> Result<Vec<RangeSeries>, String> {
    Ok(data(body, "matrix")?
        .into_iter()
        .map(|r| RangeSeries {
            points: r
                .values
                .iter()
                .filter_map(|(t, v)| Some((*t, number(v)?)))
                .filter(|(_, v)| v.is_finite())
                .collect(),
            labels: r.metric,
        })
        .collect())
}

/// The cluster a sample belongs to: the source's own, or the view's cluster label for a
/// shared Prometheus (a sample without it, or of a cluster not asked for, is skipped).
fn cluster_of<'a>(
    view: View,
    scope: &Scope,
    own: &'a str,
    s: &'a Sample,
    wanted: &dyn Fn(&str) -> bool,
) -> Option<&'a str> {
    match scope {
        Scope::OneCluster => Some(own),
        Scope::Shared => s
            .labels
            .get(view.cluster_label())
            .map(String::as_str)
            .filter(|c| wanted(c)),
    }
}

/// Fold a request-rate answer of `view` into `rows`.
pub fn fold_requests(
    rows: &mut Rows,
    view: View,
    scope: &Scope,
    own: &str,
    wanted: &dyn Fn(&str) -> bool,
    samples: &[Sample],
) {
    for s in samples {
        let Some(cluster) = cluster_of(view, scope, own, s, wanted) else {
            continue;
        };
        let get = |k: &str| s.labels.get(k).cloned();
        if let Some(t) = rows.entry(view, cluster, get) {
            let l = |k: &str| s.labels.get(k).map(String::as_str).unwrap_or("");
            t.add(
                l("request_protocol"),
                l("response_code"),
                l("grpc_response_status"),
                s.value,
            );
        }
    }
}

/// Fold a `seen` answer of `view` (see [`super::promql::seen`]) into `rows`: a subject the
/// source holds counters of and that the rate answer did not name is pending.
pub fn fold_seen(
    rows: &mut Rows,
    view: View,
    scope: &Scope,
    own: &str,
    wanted: &dyn Fn(&str) -> bool,
    rates: &[Sample],
    seen: &[Sample],
) {
    let keys = |samples: &[Sample]| {
        let mut r = Rows::default();
        for s in samples {
            if let Some(cluster) = cluster_of(view, scope, own, s, wanted) {
                r.entry(view, cluster, |k: &str| s.labels.get(k).cloned());
            }
        }
        r
    };
    let answered = keys(rates);
    rows.add_pending(keys(seen), &answered);
}

/// Fold a p99 answer of `view` into `rows` (rows without requests are not made by it).
pub fn fold_p99(
    rows: &mut Rows,
    view: View,
    scope: &Scope,
    own: &str,
    wanted: &dyn Fn(&str) -> bool,
    samples: &[Sample],
) {
    for s in samples {
        let Some(cluster) = cluster_of(view, scope, own, s, wanted) else {
            continue;
        };
        let get = |k: &str| s.labels.get(k).cloned();
        if let Some(t) = rows.entry(view, cluster, get) {
            t.p99_ms = Some(s.value);
        }
    }
    // a quantile without a rate answer made an empty row: drop it
    rows.drop_idle();
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR: &str = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"source_cluster":"eu-west","destination_service_namespace":"bookstore","destination_service_name":"reviews","request_protocol":"http","response_code":"200"},"value":[1700000000.1,"9"]},
        {"metric":{"source_cluster":"eu-west","destination_service_namespace":"bookstore","destination_service_name":"reviews","request_protocol":"http","response_code":"503"},"value":[1700000000.1,"1"]},
        {"metric":{"source_cluster":"us-east","destination_service_namespace":"bookstore","destination_service_name":"reviews","request_protocol":"http","response_code":"200"},"value":[1700000000.1,"4"]},
        {"metric":{"source_cluster":"elsewhere","destination_service_namespace":"bookstore","destination_service_name":"reviews","request_protocol":"http","response_code":"200"},"value":[1700000000.1,"4"]},
        {"metric":{"source_cluster":"eu-west","destination_service_namespace":"unknown","destination_service_name":"unknown","response_code":"503"},"value":[1700000000.1,"2"]},
        {"metric":{"source_cluster":"eu-west","destination_service_namespace":"bookstore","destination_service_name":"ratings","response_code":"200"},"value":[1700000000.1,"NaN"]}
    ]}}"#;

    #[test]
    fn a_shared_answer_folds_into_each_clusters_rows() {
        let samples = vector(VECTOR.as_bytes()).expect("vector");
        assert_eq!(samples.len(), 5, "NaN dropped");
        let mut rows = Rows::default();
        let wanted = |c: &str| c == "eu-west" || c == "us-east";
        fold_requests(
            &mut rows,
            View::Services,
            &Scope::Shared,
            "",
            &wanted,
            &samples,
        );
        let eu = &rows.services[&super::super::Subject::new("eu-west", "bookstore", "reviews")];
        assert_eq!(eu.rps, 10.0);
        assert_eq!(eu.err_pct(), Some(10.0));
        let us = &rows.services[&super::super::Subject::new("us-east", "bookstore", "reviews")];
        assert_eq!(us.rps, 4.0);
        assert_eq!(
            rows.services.len(),
            2,
            "unknown and unwanted clusters skipped"
        );
    }

    /// Unknown is not zero: a subject whose counters the source holds but whose rate it
    /// cannot give yet (one sample in the window) is pending (`…`), one the rate answer names
    /// with 0 is idle (`-`), and one the source never saw is `-` too.
    #[test]
    fn counters_without_a_rate_are_pending_not_idle() {
        let sample = |name: &str, v: f64| Sample {
            labels: [
                ("destination_service_namespace", "bookstore"),
                ("destination_service_name", name),
                ("response_code", "200"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            value: v,
        };
        let rates = vec![sample("busy", 20.0), sample("idle", 0.0)];
        let seen = vec![sample("busy", 1.0), sample("idle", 1.0), sample("new", 1.0)];
        let mut rows = Rows::default();
        let all = |_: &str| true;
        let (v, sc) = (View::Services, Scope::OneCluster);
        fold_requests(&mut rows, v, &sc, "eu-west", &all, &rates);
        fold_p99(&mut rows, v, &sc, "eu-west", &all, &[]);
        fold_seen(&mut rows, v, &sc, "eu-west", &all, &rates, &seen);
        let sig = super::super::Signals {
            services: rows.services.clone(),
            clusters: [(
                "eu-west".to_string(),
                super::super::SourceState {
                    source: "prometheus".into(),
                    refreshed: Some("now".into()),
                    stale: None,
                },
            )]
            .into(),
            ..Default::default()
        };
        let cells = |n: &str| {
            sig.cells(
                "eu-west",
                rows.services
                    .get(&super::super::Subject::new("eu-west", "bookstore", n)),
            )
        };
        assert_eq!(cells("new"), ["…", "…", "…"], "counters, no rate yet");
        assert_eq!(cells("idle")[0], "-", "a rate of 0: answered, no request");
        assert_eq!(cells("never")[0], "-", "never seen: no request");
        assert_ne!(cells("busy")[0], "…");
        assert!(
            !rows.services[&super::super::Subject::new("eu-west", "bookstore", "busy")].pending
        );
    }

    #[test]
    fn replies_that_are_not_prometheus_say_what_came() {
        let html = b"<!DOCTYPE html>\n<html><title>Sign in</title>";
        let e = vector(html).expect_err("html");
        assert!(e.contains("HTML") && e.contains("DOCTYPE"), "{e}");
        let e =
            vector(br#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#)
                .expect_err("error");
        assert_eq!(e, "Prometheus: bad_data: parse error at char 3");
        let e = vector(br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#)
            .expect_err("kind");
        assert!(e.contains("matrix"), "{e}");
        let m = matrix(br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1.5"],[2,"NaN"],[3,"2"]]}]}}"#)
            .expect("matrix");
        assert_eq!(m[0].points, vec![(1.0, 1.5), (3.0, 2.0)]);
        // a scalar's result is not a list of series: still named for what it is
        let e = vector(br#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#)
            .expect_err("scalar");
        assert_eq!(e, r#"Prometheus answered a "scalar", not a "vector""#);
        let e = vector(
            br#"{"status":"error","errorType":"timeout","error":"query timed out","data":null}"#,
        )
        .expect_err("error with data null");
        assert_eq!(e, "Prometheus: timeout: query timed out");
        let e = vector(br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":1},"value":[1,"2"]}]}}"#)
            .expect_err("a label that is not a string");
        assert!(e.starts_with("not a Prometheus API reply"), "{e}");
        let e = vector(b"{\"status\":\"succ").expect_err("cut short");
        assert!(e.starts_with("not a Prometheus API reply"), "{e}");
    }
}
