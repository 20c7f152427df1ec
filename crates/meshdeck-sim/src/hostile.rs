//! The hostile server's answers: what a broken proxy, a compaction storm, a rate-limiting
//! front end or a confused aggregated API sends instead of the API's answer. Each is a fault
//! (`cluster::Faults`) and answers below validation and authentication, as such a server
//! would.

use super::api::{self, Body};
use super::cluster::Faults;
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::json;
use std::convert::Infallible;

/// What the request is, as the faults tell requests apart.
pub struct Asked<'a> {
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub watching: bool,
    pub get: bool,
}

impl Asked<'_> {
    fn q(&self, k: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
}

/// The fault's answer to `asked`, if a fault in force answers it.
pub fn answer(f: &Faults, asked: &Asked<'_>) -> Option<Response<Body>> {
    if f.redirect {
        let mut r = Response::new(api::full(Bytes::new()));
        *r.status_mut() = StatusCode::FOUND;
        r.headers_mut().insert(
            header::LOCATION,
            HeaderValue::from_static("https://login.example.com/sso?return=%2Fapi"),
        );
        return Some(r);
    }
    if let Some(secs) = f.retry_after {
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": "the server is rate-limiting this client",
            "reason": "TooManyRequests", "code": 429, "details": {"retryAfterSeconds": secs}});
        let mut r = api::json_response(429, &status);
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Some(r);
    }
    if let Some(form) = &f.content_type {
        let (ct, body): (&'static str, Bytes) = if form == "yaml" {
            (
                "application/yaml",
                Bytes::from_static(b"apiVersion: v1\nkind: List\nmetadata: {}\nitems: []\n"),
            )
        } else {
            // the protobuf envelope's magic number, then a (truncated) unknown message
            (
                "application/vnd.kubernetes.protobuf",
                Bytes::from_static(b"k8s\x00\n\x0c\n\x02v1\x12\x04List\x12\x00\x1a\x00\"\x00"),
            )
        };
        let mut r = Response::new(api::full(body));
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        return Some(r);
    }
    if asked.watching {
        if let Some(code) = f.watch_error {
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "message": format!("simulated watch error {code}"),
                "reason": if code == 410 { "Expired" } else { "InternalError" }, "code": code});
            let line = event_line("ERROR", &status);
            return Some(json_stream(futures::stream::iter([line])));
        }
        if f.garbage_watch {
            let lines = ["<html>502 Bad Gateway</html>\n", "\u{1}\u{2}garbage\n"]
                .map(|l| Bytes::from_static(l.as_bytes()));
            return Some(json_stream(futures::stream::iter(lines)));
        }
        if f.wrong_kind && asked.path.ends_with("/pods") {
            // Services where Pods were asked for, then a watch that stays open
            let lines = (0..3).map(|i| {
                event_line(
                    "ADDED",
                    &json!({"kind": "Service", "apiVersion": "v1",
                        "metadata": {"name": format!("not-a-pod-{i}"), "namespace": "default",
                            "resourceVersion": "1"},
                        "spec": {"ports": [{"port": 80}]}}),
                )
            });
            let stream =
                futures::stream::iter(lines.collect::<Vec<_>>()).chain(futures::stream::pending());
            return Some(json_stream(stream));
        }
        if f.big_objects && asked.path.ends_with("/configmaps") {
            // a ConfigMap with a 1.5 MiB label, again and again, as fast as it is read
            let big = "x".repeat(1536 << 10);
            let stream = futures::stream::iter(0u64..).map(move |i| {
                event_line(
                    "ADDED",
                    &json!({"kind": "ConfigMap", "apiVersion": "v1",
                        "metadata": {"name": format!("big-{i}"), "namespace": "default",
                            "resourceVersion": (i + 2).to_string(),
                            "labels": {"istio.io/rev": "default", "big": big}}}),
                )
            });
            return Some(json_stream(stream));
        }
    } else if f.endless_pages && asked.get && asked.path.ends_with("/pods") {
        // a page of pods and a `continue` that never runs out
        let from: u64 = asked
            .q("continue")
            .and_then(|c| c.strip_prefix("page-"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let limit = asked
            .q("limit")
            .and_then(|l| l.parse::<u64>().ok())
            .unwrap_or(500)
            .clamp(1, 500);
        let items: Vec<_> = (from..from + limit)
            .map(|i| {
                json!({"metadata": {"name": format!("endless-{i}"), "namespace": "default",
                    "resourceVersion": "1", "uid": format!("endless-{i}")},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                    "status": {"phase": "Running"}})
            })
            .collect();
        let list = json!({"kind": "PodList", "apiVersion": "v1",
            "metadata": {"resourceVersion": "1", "continue": format!("page-{}", from + limit)},
            "items": items});
        return Some(api::json_response(200, &list));
    }
    None
}

fn event_line(type_: &str, object: &serde_json::Value) -> Bytes {
    Bytes::from(format!("{}\n", json!({"type": type_, "object": object})))
}

fn json_stream(s: impl futures::Stream<Item = Bytes> + Send + Sync + 'static) -> Response<Body> {
    let body = StreamBody::new(s.map(|b| Ok::<_, Infallible>(Frame::data(b))));
    let mut r = Response::new(BodyExt::boxed(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
