//! The API server's proxy subresources, as far as meshdeck uses them:
//! - `pods/NAME:15020/proxy/stats/prometheus`: a pod's sidecar metrics (the fleet's traffic);
//! - `services/prometheus:9090/proxy/...` in `istio-system`: forwarded to the cluster's
//!   Prometheus when one runs.
//!
//! Errors are the ones a real API server gives: 403 without `get` on `pods/proxy`, 404 for an
//! unknown object, 503 `connection refused` for a port nothing listens on, 503 `no endpoints
//! available` for a service without a backend.

use super::api::{ApiError, Body, Req, full, json_response};
use super::auth::Attributes;
use super::cluster::ClusterState;
use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The sidecar's merged metrics port and path.
pub const SIDECAR_PORT: &str = "15020";
pub const SIDECAR_PATH: &str = "stats/prometheus";

/// `[scheme:]name[:port]` → (name, port).
fn name_port(s: &str) -> (&str, Option<&str>) {
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        [n] => (n, None),
        ["http" | "https", n, p] => (n, Some(p)),
        [n, p] => (n, Some(p)),
        _ => (s, None),
    }
}

fn text_response(code: u16, text: impl Into<Bytes>, content_type: &str) -> Response<Body> {
    let mut r = Response::new(full(text.into()));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

fn unreachable(ip: &str, port: &str) -> ApiError {
    ApiError::new(
        503,
        "ServiceUnavailable",
        format!("error trying to reach service: dial tcp {ip}:{port}: connect: connection refused"),
    )
}

pub async fn proxy(
    state: &Arc<ClusterState>,
    req: &Req,
    ns: &str,
    kind: &str,
    target: &str,
    rest: &[&str],
) -> Result<Response<Body>, ApiError> {
    let (name, port) = name_port(target);
    let verb = match req.method {
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "get",
    };
    let attrs = Attributes {
        verb: verb.into(),
        group: String::new(),
        version: "v1".into(),
        resource: kind.into(),
        subresource: Some("proxy".into()),
        namespace: Some(ns.into()),
        name: Some(name.into()),
    };
    if !req.user.allowed(&attrs) {
        return Err(
            ApiError::new(403, "Forbidden", attrs.forbidden_message(&req.user.name))
                .with_details(json!({"name": name, "group": "", "kind": kind})),
        );
    }
    let obj = state.store.get(kind, ns, name).ok_or_else(|| {
        ApiError::new(404, "NotFound", format!("{kind} \"{name}\" not found"))
            .with_details(json!({"name": name, "kind": kind}))
    })?;
    let v = obj.value();
    let path = rest.join("/");
    match kind {
        "pods" => {
            let ip = v
                .pointer("/status/podIP")
                .and_then(Value::as_str)
                .unwrap_or("");
            let port = port.unwrap_or("80");
            let sidecar = v
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .is_some_and(|cs| cs.iter().any(|c| c["name"] == "istio-proxy"));
            let running = v.pointer("/status/phase").and_then(Value::as_str) == Some("Running");
            if port != SIDECAR_PORT || !sidecar || !running || ip.is_empty() {
                return Err(unreachable(ip, port));
            }
            if path != SIDECAR_PATH {
                return Ok(text_response(
                    404,
                    "404 page not found\n",
                    "text/plain; charset=utf-8",
                ));
            }
            let traffic = state.traffic.get().and_then(std::sync::Weak::upgrade);
            let text = traffic
                .and_then(|t| t.pod_text(&state.name, ns, name))
                .unwrap_or_default();
            Ok(text_response(
                200,
                text,
                "text/plain; version=0.0.4; charset=utf-8",
            ))
        }
        _ => {
            let upstream = state.prometheus.lock().clone();
            let is_prometheus = ns == "istio-system" && name == "prometheus";
            let Some(base) = upstream.filter(|_| is_prometheus && req.method == Method::GET) else {
                return Err(ApiError::new(
                    503,
                    "ServiceUnavailable",
                    format!("no endpoints available for service \"{name}\""),
                ));
            };
            let query: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(req.query.iter())
                .finish();
            let uri = format!("{}/{path}?{query}", base.trim_end_matches('/'));
            forward(&uri).await
        }
    }
}

async fn forward(uri: &str) -> Result<Response<Body>, ApiError> {
    let bad = |e: String| {
        ApiError::new(
            503,
            "ServiceUnavailable",
            format!("error trying to reach service: {e}"),
        )
    };
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let request = http::Request::get(uri)
        .body(Full::new(Bytes::new()))
        .map_err(|e| bad(e.to_string()))?;
    let resp = tokio::time::timeout(Duration::from_secs(30), client.request(request))
        .await
        .map_err(|_| bad("timeout".into()))?
        .map_err(|e| bad(e.to_string()))?;
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| bad(e.to_string()))?
        .to_bytes();
    if ct.starts_with("application/json") {
        // keep the upstream's own JSON as it is
        let mut r = json_response(status, &Value::Null);
        *r.body_mut() = full(body);
        return Ok(r);
    }
    Ok(text_response(status, body, &ct))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_targets() {
        assert_eq!(
            name_port("reviews-v1-x:15020"),
            ("reviews-v1-x", Some("15020"))
        );
        assert_eq!(
            name_port("http:prometheus:9090"),
            ("prometheus", Some("9090"))
        );
        assert_eq!(name_port("prometheus"), ("prometheus", None));
    }
}
