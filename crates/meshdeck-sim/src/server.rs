//! One simulated cluster's HTTPS server: TLS, connections, faults, authentication and the
//! request log around the API (`api::handle`). Split from `cluster.rs` (the state) so the
//! state and the API do not import each other.

use super::api::{self, ApiError, Req};
use super::auth::User;
use super::cluster::{ClusterState, LogEntry};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Who a request is: its bearer token's user, or the user it impersonates (if allowed).
fn authenticate(state: &ClusterState, headers: &http::HeaderMap) -> Result<User, ApiError> {
    let auth = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let user = match auth {
        None => User::anonymous(),
        Some(a) => {
            let token = a.strip_prefix("Bearer ").unwrap_or("").trim();
            state
                .users
                .iter()
                .find(|u| !u.token.is_empty() && u.token == token)
                .cloned()
                .ok_or_else(|| ApiError::new(401, "Unauthorized", "Unauthorized"))?
        }
    };
    let groups: Vec<String> = headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    match headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok())
    {
        None if groups.is_empty() => Ok(user),
        None => Err(ApiError::new(
            403,
            "Forbidden",
            "requested impersonation of groups without impersonating a user",
        )),
        Some(name) if user.impersonate => {
            let mut as_user = state
                .users
                .iter()
                .find(|u| u.name == name)
                .cloned()
                .unwrap_or_else(|| User {
                    name: name.to_string(),
                    groups: vec!["system:authenticated".into()],
                    rules: vec![],
                    ..User::anonymous()
                });
            if !groups.is_empty() {
                // the groups' rules come with them (a user in group `admins` is an admin)
                for g in &groups {
                    if let Some(u) = state.users.iter().find(|u| u.groups.contains(g)) {
                        as_user.rules.extend(u.rules.iter().cloned());
                    }
                }
                as_user.groups = groups;
            }
            as_user.impersonated_by = user.name.clone();
            Ok(as_user)
        }
        Some(_) => Err(ApiError::new(
            403,
            "Forbidden",
            format!(
                "users is forbidden: User \"{}\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope",
                user.name
            ),
        )),
    }
}

async fn serve_request(
    state: Arc<ClusterState>,
    req: http::Request<hyper::body::Incoming>,
) -> http::Response<api::Body> {
    let (parts, body) = req.into_parts();
    let query_str = parts.uri.query().unwrap_or("").to_string();
    let query = api::parse_query(Some(&query_str));
    let mut entry = LogEntry {
        time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        cluster: state.name.clone(),
        user: String::new(),
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: query_str,
        content_type: parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        status: 0,
        dry_run: query.iter().any(|(k, v)| k == "dryRun" && v == "All"),
        field_manager: query
            .iter()
            .find(|(k, _)| k == "fieldManager")
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
        user_agent: parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        impersonated_by: String::new(),
    };
    // faults first: a hung or failing server answers nobody
    let faults = state.faults();
    if faults.hang {
        let mut rx = state.faults.subscribe();
        while rx.borrow_and_update().hang {
            if rx.changed().await.is_err() {
                break;
            }
        }
    }
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    let watching = entry
        .query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    if (faults.huge_body && !watching && parts.method == http::Method::GET)
        || (faults.endless_line && watching)
    {
        entry.status = 200;
        state.record(entry);
        // generated as it is sent: the simulator holds one chunk, not the whole body
        let chunk = bytes::Bytes::from(vec![b' '; 1 << 20]);
        let limit = if watching { usize::MAX } else { 100 };
        let stream = futures::stream::iter(
            std::iter::repeat_n(chunk, limit)
                .map(|b| Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(b))),
        );
        let mut r = http::Response::new(http_body_util::BodyExt::boxed(
            http_body_util::StreamBody::new(stream),
        ));
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        return r;
    }
    if faults.html {
        entry.status = 200;
        state.record(entry);
        let mut r = http::Response::new(api::full(
            "<!DOCTYPE html><html><head><title>Sign in</title></head><body><form action=\"/login\">Corporate SSO</form></body></html>\n",
        ));
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/html; charset=utf-8"),
        );
        return r;
    }
    let asked = super::hostile::Asked {
        path: parts.uri.path(),
        query: &query,
        watching,
        get: parts.method == http::Method::GET,
    };
    if let Some(r) = super::hostile::answer(&faults, &asked) {
        entry.status = r.status().as_u16();
        state.record(entry);
        return r;
    }
    let response = async {
        if let Some(code) = faults.error {
            let reason = match code {
                429 => "TooManyRequests",
                503 => "ServiceUnavailable",
                500 => "InternalError",
                504 => "Timeout",
                _ => "InternalError",
            };
            return Err(ApiError::new(
                code,
                reason,
                format!("simulated fault: the server answered {code}"),
            ));
        }
        let user = authenticate(&state, &parts.headers)?;
        let body = api::read_body(body).await?;
        Ok((user, body))
    }
    .await;
    let resp = match response {
        Err(e) => api::error_response(&e),
        Ok((user, body)) => {
            entry.user = user.name.clone();
            entry.impersonated_by = user.impersonated_by.clone();
            // DeleteOptions carry dryRun in the body (kubectl, kube-rs)
            if parts.method == http::Method::DELETE && !body.is_empty() {
                entry.dry_run |= serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("dryRun").cloned())
                    .and_then(|d| d.as_array().cloned())
                    .is_some_and(|a| a.iter().any(|x| x == "All"));
            }
            if faults.hang_writes && entry.is_mutating() {
                let mut rx = state.faults.subscribe();
                while rx.borrow_and_update().hang_writes {
                    if rx.changed().await.is_err() {
                        break;
                    }
                }
            }
            let req = Req {
                method: parts.method.clone(),
                path: parts.uri.path().to_string(),
                query,
                headers: parts.headers.clone(),
                body,
                user,
            };
            api::handle(&state, req).await
        }
    };
    entry.status = resp.status().as_u16();
    tracing::debug!(cluster = %entry.cluster, method = %entry.method, path = %entry.path, status = entry.status, "request");
    state.record(entry);
    resp
}

/// Serve the cluster's API until `shutdown`. `down` faults close the listener and every
/// connection; `up` binds the same address again.
pub async fn serve(
    state: Arc<ClusterState>,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shutdown: CancellationToken,
) {
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(cluster = %state.name, "listener has no address: {e}");
            return;
        }
    };
    *state.addr.lock() = addr;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut faults = state.faults.subscribe();
    let mut listener = Some(listener);
    loop {
        // wait out a `down` fault
        while faults.borrow_and_update().down {
            listener = None;
            tokio::select! {
                r = faults.changed() => if r.is_err() { return },
                _ = shutdown.cancelled() => return,
            }
        }
        let l = match listener.take() {
            Some(l) => l,
            None => match bind_again(addr, &shutdown).await {
                Some(l) => l,
                None => return,
            },
        };
        let conns = shutdown.child_token();
        loop {
            tokio::select! {
                r = l.accept() => {
                    let Ok((tcp, _peer)) = r else { continue };
                    let _ = tcp.set_nodelay(true);
                    let acceptor = acceptor.clone();
                    let st = state.clone();
                    let token = conns.clone();
                    tokio::spawn(async move {
                        let tls = tokio::select! {
                            r = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)) => match r {
                                Ok(Ok(s)) => s,
                                _ => return,
                            },
                            _ = token.cancelled() => return,
                        };
                        let svc = service_fn(move |req| {
                            let st = st.clone();
                            async move { Ok::<_, Infallible>(serve_request(st, req).await) }
                        });
                        // HTTP/1.1 or HTTP/2, as the client chose in ALPN (a real API server
                        // offers both; kubectl and meshdeck pick HTTP/2)
                        let conn = hyper_util::server::conn::auto::Builder::new(
                            hyper_util::rt::TokioExecutor::new(),
                        );
                        let conn = conn.serve_connection(TokioIo::new(tls), svc);
                        tokio::select! {
                            _ = conn => {}
                            _ = token.cancelled() => {}
                        }
                    });
                }
                r = faults.changed() => {
                    if r.is_err() { return; }
                    if faults.borrow().down {
                        conns.cancel();
                        break;
                    }
                }
                _ = shutdown.cancelled() => { conns.cancel(); return; }
            }
        }
        drop(l);
    }
}

async fn bind_again(addr: SocketAddr, shutdown: &CancellationToken) -> Option<TcpListener> {
    for _ in 0..100 {
        match TcpListener::bind(addr).await {
            Ok(l) => return Some(l),
            Err(e) => {
                tracing::warn!("rebinding {addr}: {e}");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    _ = shutdown.cancelled() => return None,
                }
            }
        }
    }
    None
}
