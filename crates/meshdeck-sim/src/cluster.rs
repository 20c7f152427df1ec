//! One simulated cluster at run time: its store, users, faults, request log, and the HTTPS
//! server that serves its API on 127.0.0.1.

use super::auth::User;
use super::store::Store;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::watch;

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
    /// Answer every request with a login page (`200 text/html`), as an SSO proxy in front of
    /// the API server does for a client without its cookie.
    pub html: bool,
    /// Answer every list and get with a 100 MiB body (a misbehaving server or proxy).
    pub huge_body: bool,
    /// Answer every watch with one line that never ends.
    pub endless_line: bool,
    /// Answer every watch with a watch `ERROR` event of this code at once (410: an etcd
    /// compaction storm; 500: a broken aggregation layer).
    pub watch_error: Option<u16>,
    /// Answer every watch with lines that are not JSON (a proxy that breaks streaming).
    pub garbage_watch: bool,
    /// Answer every request `429 Too Many Requests` with `Retry-After: this many seconds`.
    pub retry_after: Option<u64>,
    /// Send Services in the pods' lists and watches (a confused proxy or aggregated server).
    pub wrong_kind: bool,
    /// Pod lists never end: every page carries a `continue` token and more pods.
    pub endless_pages: bool,
    /// Every watch adds ConfigMaps carrying a 1.5 MiB label each, one after the other.
    pub big_objects: bool,
    /// Answer every request `302 Found` to a login page (an SSO proxy).
    pub redirect: bool,
    /// Answer every request `200` in this form instead of JSON: `yaml` or `protobuf`.
    pub content_type: Option<String>,
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
    Html,
    HugeBody,
    EndlessLine,
    ExpireWatches,
    WatchError(u16),
    GarbageWatch,
    RetryAfter(u64),
    WrongKind,
    EndlessPages,
    BigObjects,
    Redirect,
    ContentType(String),
    Clear,
}

/// Every fault spec, as an error message lists them.
const FAULTS: &str = "down, up, latency=MS, error=CODE, hang, hang-writes, html, huge-body, endless-line, expire-watches, watch-error=CODE, garbage-watch, retry-after=SECS, wrong-kind, endless-pages, big-objects, redirect, content-type=yaml|protobuf or clear";

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
            Some(("watch-error", v)) => {
                let code = num(v, "watch-error")?;
                if !(400..=599).contains(&code) {
                    return Err(format!(
                        "watch-error needs an HTTP status from 400 to 599, got {code}"
                    ));
                }
                Ok(FaultSpec::WatchError(code as u16))
            }
            Some(("retry-after", v)) => Ok(FaultSpec::RetryAfter(num(v, "retry-after")?)),
            Some(("content-type", v)) if v == "yaml" || v == "protobuf" => {
                Ok(FaultSpec::ContentType(v.to_string()))
            }
            Some(("content-type", v)) => {
                Err(format!("content-type needs yaml or protobuf, got {v:?}"))
            }
            Some((k, _)) => Err(format!("unknown fault {k:?}: expected {FAULTS}")),
            None => match s {
                "down" => Ok(FaultSpec::Down),
                "up" => Ok(FaultSpec::Up),
                "hang" => Ok(FaultSpec::Hang),
                "hang-writes" => Ok(FaultSpec::HangWrites),
                "html" => Ok(FaultSpec::Html),
                "huge-body" => Ok(FaultSpec::HugeBody),
                "endless-line" => Ok(FaultSpec::EndlessLine),
                "expire-watches" => Ok(FaultSpec::ExpireWatches),
                "garbage-watch" => Ok(FaultSpec::GarbageWatch),
                "wrong-kind" => Ok(FaultSpec::WrongKind),
                "endless-pages" => Ok(FaultSpec::EndlessPages),
                "big-objects" => Ok(FaultSpec::BigObjects),
                "redirect" => Ok(FaultSpec::Redirect),
                "clear" => Ok(FaultSpec::Clear),
                other => Err(format!("unknown fault {other:?}: expected {FAULTS}")),
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
    pub(crate) faults: watch::Sender<Faults>,
    log: Mutex<VecDeque<LogEntry>>,
    pub(crate) addr: Mutex<SocketAddr>,
    /// The fleet's traffic, for the sidecars' metrics behind the pod proxy.
    pub(crate) traffic: std::sync::OnceLock<std::sync::Weak<crate::traffic::Traffic>>,
    /// Where the service proxy of `istio-system/prometheus` forwards (the cluster's
    /// Prometheus), when one runs.
    pub(crate) prometheus: Mutex<Option<String>>,
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
            traffic: std::sync::OnceLock::new(),
            prometheus: Mutex::new(None),
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
                FaultSpec::Html => s.html = true,
                FaultSpec::HugeBody => s.huge_body = true,
                FaultSpec::EndlessLine => s.endless_line = true,
                FaultSpec::WatchError(c) => s.watch_error = Some(*c),
                FaultSpec::GarbageWatch => s.garbage_watch = true,
                FaultSpec::RetryAfter(secs) => s.retry_after = Some(*secs),
                FaultSpec::WrongKind => s.wrong_kind = true,
                FaultSpec::EndlessPages => s.endless_pages = true,
                FaultSpec::BigObjects => s.big_objects = true,
                FaultSpec::Redirect => s.redirect = true,
                FaultSpec::ContentType(t) => s.content_type = Some(t.clone()),
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

    pub(crate) fn record(&self, e: LogEntry) {
        let mut log = self.log.lock();
        if log.len() >= LOG_CAP {
            log.pop_front();
        }
        log.push_back(e);
    }
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
        assert_eq!("watch-error=410".parse(), Ok(FaultSpec::WatchError(410)));
        assert_eq!("retry-after=3600".parse(), Ok(FaultSpec::RetryAfter(3600)));
        assert_eq!(
            "content-type=yaml".parse(),
            Ok(FaultSpec::ContentType("yaml".into()))
        );
        assert!("content-type=xml".parse::<FaultSpec>().is_err());
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
