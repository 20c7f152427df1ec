//! The control endpoint of `meshdeck sim serve --control ADDR` (plain HTTP on loopback), and
//! its client, `meshdeck sim ctl`:
//!
//! - `GET  /clusters`                    the clusters, their URLs and faults (JSON)
//! - `POST /clusters/NAME/fault`         body: a fault spec (`down`, `latency=200`, ...)
//! - `GET  /clusters/NAME/requests`      the request log as JSON lines
//! - `DELETE /clusters/NAME/requests`    clear the request log
//! - `POST /churn/stop`, `/churn/start`  pause or resume every cluster's churn

use super::{FaultSpec, Fleet};
use anyhow::Context;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn text(code: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = code;
    r
}

async fn handle(fleet: Arc<Fleet>, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match (method, segs.as_slice()) {
        (Method::GET, ["clusters"]) => {
            let list: Vec<_> = fleet
                .clusters
                .iter()
                .map(|c| json!({"name": c.name(), "url": c.url(), "faults": c.state.faults()}))
                .collect();
            text(
                StatusCode::OK,
                serde_json::to_vec(&list).unwrap_or_default(),
            )
        }
        (Method::POST, ["clusters", name, "fault"]) => {
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return text(StatusCode::BAD_REQUEST, format!("reading body: {e}\n")),
            };
            let spec = String::from_utf8_lossy(&body).to_string();
            match spec.parse::<FaultSpec>() {
                Err(e) => text(StatusCode::BAD_REQUEST, format!("{e}\n")),
                Ok(f) => match fleet.fault(name, &f) {
                    Ok(()) => text(StatusCode::OK, format!("{name}: {}\n", spec.trim())),
                    Err(e) => text(StatusCode::NOT_FOUND, format!("{e}\n")),
                },
            }
        }
        (Method::GET, ["clusters", name, "requests"]) => match fleet.requests(name) {
            Ok(entries) => {
                let mut out = Vec::new();
                for e in entries {
                    out.extend(serde_json::to_vec(&e).unwrap_or_default());
                    out.push(b'\n');
                }
                text(StatusCode::OK, out)
            }
            Err(e) => text(StatusCode::NOT_FOUND, format!("{e}\n")),
        },
        (Method::DELETE, ["clusters", name, "requests"]) => match fleet.cluster(name) {
            Ok(c) => {
                c.state.clear_requests();
                text(StatusCode::OK, "cleared\n")
            }
            Err(e) => text(StatusCode::NOT_FOUND, format!("{e}\n")),
        },
        (Method::POST, ["churn", what @ ("stop" | "start")]) => {
            fleet
                .churn_paused
                .store(*what == "stop", std::sync::atomic::Ordering::Relaxed);
            text(StatusCode::OK, format!("churn: {what}\n"))
        }
        _ => text(StatusCode::NOT_FOUND, "unknown control path\n"),
    }
}

/// Serve the control endpoint until `stop`.
pub async fn serve(fleet: Arc<Fleet>, listener: TcpListener, stop: CancellationToken) {
    loop {
        tokio::select! {
            r = listener.accept() => {
                let Ok((tcp, _)) = r else { continue };
                let fleet = fleet.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let fleet = fleet.clone();
                        async move { Ok::<_, Infallible>(handle(fleet, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
            _ = stop.cancelled() => return,
        }
    }
}

/// Send one control request; returns the body, or an error with the server's words.
pub async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: &str,
) -> anyhow::Result<String> {
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::from(body.to_string())))?;
    let resp = client
        .request(req)
        .await
        .with_context(|| format!("cannot reach the simulator's control endpoint at {addr}"))?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    let text = String::from_utf8_lossy(&bytes).to_string();
    anyhow::ensure!(status.is_success(), "{}", text.trim_end());
    Ok(text)
}

/// Inject a fault through a running simulator's control endpoint.
pub async fn fault(
    addr: std::net::SocketAddr,
    cluster: &str,
    spec: &str,
) -> anyhow::Result<String> {
    request(
        addr,
        http::Method::POST,
        &format!("/clusters/{cluster}/fault"),
        spec,
    )
    .await
}

/// Pause (`stop`) or resume (`start`) every cluster's churn.
pub async fn churn(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<String> {
    request(addr, http::Method::POST, &format!("/churn/{what}"), "").await
}

/// Empty a simulated cluster's request log.
pub async fn clear_requests(addr: std::net::SocketAddr, cluster: &str) -> anyhow::Result<String> {
    request(
        addr,
        http::Method::DELETE,
        &format!("/clusters/{cluster}/requests"),
        "",
    )
    .await
}
