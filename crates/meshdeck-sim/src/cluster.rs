//! One simulated cluster at run time: its store, users, faults, request log, and the HTTPS
//! server that serves its API on 127.0.0.1.

use super::api::{self, ApiError, Req};
use super::auth::User;
use super::store::Store;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Faults in force on a cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Faults {
    /// The listener is closed and every open connection dropped: connection refused.
    pub down: bool,
    /// Delay before every response.
    pub latency_ms: u64,
    /// Answer every request with this HTTP status (a `v1 Status`).
    pub error: Option<u16>,
    /// Never answer.
    pub hang: bool,
    /// Never answer a write that would persist (reads, self-subject reviews and server-side
    /// dry runs still answer): a server that accepts the dry run and then never commits.
    pub hang_writes: bool,
}

/// A fault command, as `meshdeck sim ctl fault CLUSTER SPEC` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultSpec {
    Down,
    Up,
    Latency(u64),
    Error(u16),
    Hang,
    HangWrites,
    ExpireWatches,
    Clear,
}

impl FromStr for FaultSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let num = |v: &str, what: &str| -> Result<u64, String> {
            v.parse::<u64>()
                .map_err(|_| format!("{what} needs a whole number, got {v:?}"))
        };
        match s.split_once('=') {
            Some(("latency", v)) => Ok(FaultSpec::Latency(num(v, "latency")?)),
            Some(("error", v)) => {
                let code = num(v, "error")?;
                if !(400..=599).contains(&code) {
                    return Err(format!(
                        "error needs an HTTP status from 400 to 599, got {code}"
                    ));
                }
                Ok(FaultSpec::Error(code as u16))
            }
            Some((k, _)) => Err(format!(
                "unknown fault {k:?}: expected down, up, latency=MS, error=CODE, hang, hang-writes, expire-watches or clear"
            )),
            None => match s {
                "down" => Ok(FaultSpec::Down),
                "up" => Ok(FaultSpec::Up),
                "hang" => Ok(FaultSpec::Hang),
                "hang-writes" => Ok(FaultSpec::HangWrites),
                "expire-watches" => Ok(FaultSpec::ExpireWatches),
                "clear" => Ok(FaultSpec::Clear),
                other => Err(format!(
                    "unknown fault {other:?}: expected down, up, latency=MS, error=CODE, hang, hang-writes, expire-watches or clear"
                )),
            },
        }
    }
}

/// One logged request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogEntry {
    pub time: String,
    pub cluster: String,
    pub user: String,
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub status: u16,
    pub dry_run: bool,
    pub field_manager: String,
    /// The client's User-Agent header.
    #[serde(default)]
    pub user_agent: String,
    /// The authenticated user when it impersonated `user` (Impersonate-User).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub impersonated_by: String,
}

impl LogEntry {
    /// A request that asks the server to change something (dry runs included): every method
    /// but GET/HEAD/OPTIONS, except the POSTs of the self-subject reviews, which only ask.
    pub fn is_write(&self) -> bool {
        if matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS") {
            return false;
        }
        !(self.method == "POST"
            && (self.path.ends_with("/selfsubjectaccessreviews")
                || self.path.ends_with("/selfsubjectrulesreviews")
                || self.path.ends_with("/selfsubjectreviews")))
    }
    /// A write that would persist (not a server-side dry run).
    pub fn is_mutating(&self) -> bool {
        self.is_write() && !self.dry_run
    }
}

const LOG_CAP: usize = 200_000;

pub struct ClusterState {
    pub name: String,
    pub store: Store,
    pub users: Vec<User>,
    pub k8s_version: String,
    pub bookmark_interval: Duration,
    faults: watch::Sender<Faults>,
    log: Mutex<VecDeque<LogEntry>>,
    addr: Mutex<SocketAddr>,
}

impl ClusterState {
    pub fn new(
        name: String,
        store: Store,
        users: Vec<User>,
        k8s_version: String,
        bookmark_interval: Duration,
    ) -> Self {
        ClusterState {
            name,
            store,
            users,
            k8s_version,
            bookmark_interval,
            faults: watch::channel(Faults::default()).0,
            log: Mutex::new(VecDeque::new()),
            addr: Mutex::new(SocketAddr::from(([127, 0, 0, 1], 0))),
        }
    }

    pub fn address(&self) -> String {
        self.addr.lock().to_string()
    }

    pub fn socket_addr(&self) -> SocketAddr {
        *self.addr.lock()
    }

    pub fn git_version(&self) -> String {
        self.k8s_version.clone()
    }

    pub fn version_json(&self) -> serde_json::Value {
        let v = self.k8s_version.trim_start_matches('v');
        let mut parts = v.split('.');
        let major = parts.next().unwrap_or("1");
        let minor = parts.next().unwrap_or("0");
        serde_json::json!({
            "major": major, "minor": minor, "gitVersion": self.k8s_version,
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": "2026-10-01T00:00:00Z", "goVersion": "go1.24.6", "compiler": "gc",
            "platform": "linux/amd64",
        })
    }

    /// Changes whenever the set of served types changes (OpenAPI `hash`).
    pub fn generation_hash(&self) -> String {
        let reg = self.store.registry();
        let h = reg.types().iter().fold(17u64, |h, t| {
            t.key
                .bytes()
                .fold(h, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        });
        format!("{h:016X}")
    }

    pub fn faults(&self) -> Faults {
        self.faults.borrow().clone()
    }

    pub fn apply_fault(&self, f: &FaultSpec) {
        match f {
            FaultSpec::ExpireWatches => self.store.expire_watches(),
            other => self.faults.send_modify(|s| match other {
                FaultSpec::Down => s.down = true,
                FaultSpec::Up => s.down = false,
                FaultSpec::Latency(ms) => s.latency_ms = *ms,
                FaultSpec::Error(c) => s.error = Some(*c),
                FaultSpec::Hang => s.hang = true,
                FaultSpec::HangWrites => s.hang_writes = true,
                FaultSpec::Clear => *s = Faults::default(),
                FaultSpec::ExpireWatches => {}
            }),
        }
    }

    pub fn requests(&self) -> Vec<LogEntry> {
        self.log.lock().iter().cloned().collect()
    }

    pub fn clear_requests(&self) {
        self.log.lock().clear();
    }

    fn record(&self, e: LogEntry) {
        let mut log = self.log.lock();
        if log.len() >= LOG_CAP {
            log.pop_front();
        }
        log.push_back(e);
    }

    fn authenticate(&self, headers: &http::HeaderMap) -> Result<User, ApiError> {
        let auth = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let user = match auth {
            None => User::anonymous(),
            Some(a) => {
                let token = a.strip_prefix("Bearer ").unwrap_or("").trim();
                self.users
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
                let mut as_user = self
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
                        if let Some(u) = self.users.iter().find(|u| u.groups.contains(g)) {
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
        let user = state.authenticate(&parts.headers)?;
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
                        let conn = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), svc);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs_parse_and_bad_ones_say_what_is_expected() {
        assert_eq!("down".parse(), Ok(FaultSpec::Down));
        assert_eq!("latency=250".parse(), Ok(FaultSpec::Latency(250)));
        assert_eq!("error=503".parse(), Ok(FaultSpec::Error(503)));
        assert_eq!("expire-watches".parse(), Ok(FaultSpec::ExpireWatches));
        let e = "error=200"
            .parse::<FaultSpec>()
            .expect_err("200 is no error");
        assert!(e.contains("400 to 599"), "{e}");
        let e = "sideways".parse::<FaultSpec>().expect_err("unknown");
        assert!(e.contains("expected down, up"), "{e}");
        assert!("latency=fast".parse::<FaultSpec>().is_err());
    }

    #[test]
    fn reviews_are_not_writes_and_dry_runs_are_not_mutations() {
        let mut e = LogEntry {
            time: String::new(),
            cluster: "c".into(),
            user: "u".into(),
            method: "POST".into(),
            path: "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews".into(),
            query: String::new(),
            content_type: String::new(),
            status: 201,
            dry_run: false,
            field_manager: String::new(),
            user_agent: String::new(),
            impersonated_by: String::new(),
        };
        assert!(!e.is_write());
        e.path = "/api/v1/namespaces/default/configmaps".into();
        assert!(e.is_write() && e.is_mutating());
        e.dry_run = true;
        assert!(e.is_write() && !e.is_mutating());
        e.method = "GET".into();
        assert!(!e.is_write());
    }
}
