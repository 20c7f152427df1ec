//! Credential plugins (`users[].user.exec` in a kubeconfig: `aws eks get-token`,
//! `gke-gcloud-auth-plugin`, `kubelogin`, an SSO helper), run off the fleet's path.
//!
//! kube-rs runs a plugin synchronously while it builds a client, on whichever runtime thread
//! asks: a plugin that takes 30 s stalls that thread (on two cores, the whole console), may
//! write to `/dev/tty` over the screen, and is not tried again after it failed once. meshdeck
//! takes the plugin out of the client configuration and runs it itself:
//!
//! - asynchronously (`tokio::process`), with a timeout, in its own session (`setsid`: no
//!   controlling terminal, so nothing it prints reaches the screen), stdin closed, its stdout
//!   parsed as an `ExecCredential`, its stderr kept as the error;
//! - once per expiry for every client of the cluster (the token is cached until a minute before
//!   its `expirationTimestamp`, or for `UNDATED_TOKEN_TTL`);
//! - after a failure, again with backoff (1 s doubling to 30 s): "SSO session expired" clears
//!   itself once the user logs in elsewhere.
//!
//! Clients get the token through a tower layer that waits for it in `poll_ready` (never a
//! runtime thread), so a cluster whose plugin is slow waits alone while the others sync.

use http::HeaderValue;
use kube::config::ExecConfig;
use parking_lot::Mutex;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// How long one run of a plugin may take.
pub const PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a token without an `expirationTimestamp` is used before the plugin runs again.
pub const UNDATED_TOKEN_TTL: Duration = Duration::from_secs(10 * 60);
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// A plugin's stderr is kept up to this many bytes (the error names the rest as cut).
const STDERR_KEEP: usize = 2048;

/// Why a plugin gave no credentials; each names the plugin.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialError {
    #[error("credential plugin {plugin}: cannot start it: {message}")]
    Start { plugin: String, message: String },
    #[error("credential plugin {plugin} gave no answer within {}s", PLUGIN_TIMEOUT.as_secs())]
    Timeout { plugin: String },
    #[error("credential plugin {plugin} failed ({status}): {stderr}")]
    Failed {
        plugin: String,
        status: String,
        stderr: String,
    },
    #[error("credential plugin {plugin} printed no ExecCredential: {message}")]
    Parse { plugin: String, message: String },
    #[error("credential plugin {plugin} returned an empty token")]
    EmptyToken { plugin: String },
    #[error(
        "credential plugin {plugin} returned a client certificate, not a token: meshdeck runs token plugins only"
    )]
    Certificate { plugin: String },
}

#[derive(Default)]
struct State {
    token: Option<(HeaderValue, Instant)>,
    running_since: Option<Instant>,
    failed: Option<(CredentialError, Instant)>,
    retry: Duration,
}

/// One kubeconfig user's plugin, shared by every client of its cluster.
pub struct ExecCredentials {
    exec: ExecConfig,
    /// The plugin as the user knows it (its command's file name).
    pub plugin: String,
    state: Mutex<State>,
    /// One run at a time: the others wait for its answer.
    run: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for ExecCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecCredentials")
            .field("plugin", &self.plugin)
            .finish()
    }
}

impl ExecCredentials {
    pub fn new(exec: ExecConfig) -> ExecCredentials {
        let plugin = exec
            .command
            .as_deref()
            .map(|c| {
                std::path::Path::new(c)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| c.to_string())
            })
            .unwrap_or_else(|| "(no command)".to_string());
        ExecCredentials {
            exec,
            plugin,
            state: Mutex::new(State {
                retry: RETRY_MIN,
                ..Default::default()
            }),
            run: tokio::sync::Mutex::new(()),
        }
    }

    /// "waiting for credentials (plugin, 12s)" while a first run has no answer yet.
    pub fn waiting(&self) -> Option<String> {
        let s = self.state.lock();
        match (&s.token, s.running_since) {
            (None, Some(since)) => Some(format!(
                "waiting for credentials: {} ({}s)",
                self.plugin,
                since.elapsed().as_secs()
            )),
            _ => None,
        }
    }

    fn cached(&self) -> Option<Result<HeaderValue, CredentialError>> {
        let s = self.state.lock();
        if let Some((h, until)) = &s.token
            && Instant::now() < *until
        {
            return Some(Ok(h.clone()));
        }
        if let Some((e, at)) = &s.failed
            && at.elapsed() < s.retry
        {
            return Some(Err(e.clone()));
        }
        None
    }

    /// The `Authorization` header: cached, or from a run of the plugin.
    pub async fn header(self: Arc<Self>) -> Result<HeaderValue, CredentialError> {
        if let Some(r) = self.cached() {
            return r;
        }
        let _one = self.run.lock().await;
        // another caller may have run it while this one waited
        if let Some(r) = self.cached() {
            return r;
        }
        self.state.lock().running_since = Some(Instant::now());
        let r = self.run_plugin().await;
        let mut s = self.state.lock();
        s.running_since = None;
        match r {
            Ok((h, ttl)) => {
                s.token = Some((h.clone(), Instant::now() + ttl));
                s.failed = None;
                s.retry = RETRY_MIN;
                Ok(h)
            }
            Err(e) => {
                tracing::warn!(plugin = %self.plugin, error = %e, "credential plugin");
                if s.failed.is_some() {
                    s.retry = (s.retry * 2).min(RETRY_MAX);
                }
                s.failed = Some((e.clone(), Instant::now()));
                s.token = None;
                Err(e)
            }
        }
    }

    async fn run_plugin(&self) -> Result<(HeaderValue, Duration), CredentialError> {
        let plugin = self.plugin.clone();
        let Some(command) = &self.exec.command else {
            return Err(CredentialError::Start {
                plugin,
                message: "the kubeconfig's exec entry has no command".into(),
            });
        };
        let mut cmd = tokio::process::Command::new(command);
        cmd.args(self.exec.args.iter().flatten());
        for e in self.exec.env.iter().flatten() {
            if let (Some(k), Some(v)) = (e.get("name"), e.get("value")) {
                cmd.env(k, v);
            }
        }
        for k in self.exec.drop_env.iter().flatten() {
            cmd.env_remove(k);
        }
        let mut spec = serde_json::json!({"interactive": false});
        if self.exec.provide_cluster_info
            && let Some(c) = &self.exec.cluster
            && let Ok(v) = serde_json::to_value(c)
        {
            spec["cluster"] = v;
        }
        let info = serde_json::json!({
            "apiVersion": self.exec.api_version.clone()
                .unwrap_or_else(|| "client.authentication.k8s.io/v1".into()),
            "kind": "ExecCredential",
            "spec": spec,
        });
        cmd.env("KUBERNETES_EXEC_INFO", info.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        // SAFETY: setsid is async-signal-safe and touches nothing of the parent: the child
        // gets a session of its own, without a controlling terminal, so it cannot open
        // /dev/tty and write over the console.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| CredentialError::Start {
            plugin: plugin.clone(),
            message: e.to_string(),
        })?;
        let out = match tokio::time::timeout(PLUGIN_TIMEOUT, child.wait_with_output()).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => {
                return Err(CredentialError::Start {
                    plugin,
                    message: e.to_string(),
                });
            }
            // dropping the future kills the child (kill_on_drop)
            Err(_) => return Err(CredentialError::Timeout { plugin }),
        };
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr);
            let mut stderr = text.trim().to_string();
            if stderr.len() > STDERR_KEEP {
                let mut cut = STDERR_KEEP;
                while !stderr.is_char_boundary(cut) {
                    cut -= 1;
                }
                stderr.truncate(cut);
                stderr.push_str(" … (cut)");
            }
            if stderr.is_empty() {
                stderr = "(it wrote nothing to stderr)".into();
            }
            return Err(CredentialError::Failed {
                plugin,
                status: out.status.to_string(),
                stderr,
            });
        }
        parse(&plugin, &out.stdout)
    }
}

/// An `ExecCredential`'s token and how long to use it.
fn parse(plugin: &str, stdout: &[u8]) -> Result<(HeaderValue, Duration), CredentialError> {
    let v: serde_json::Value =
        serde_json::from_slice(stdout).map_err(|e| CredentialError::Parse {
            plugin: plugin.into(),
            message: e.to_string(),
        })?;
    let status = v.get("status").ok_or_else(|| CredentialError::Parse {
        plugin: plugin.into(),
        message: "no status".into(),
    })?;
    let token = status.get("token").and_then(|t| t.as_str()).unwrap_or("");
    if token.is_empty() {
        if status.get("clientCertificateData").is_some() {
            return Err(CredentialError::Certificate {
                plugin: plugin.into(),
            });
        }
        return Err(CredentialError::EmptyToken {
            plugin: plugin.into(),
        });
    }
    let mut h =
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| CredentialError::Parse {
            plugin: plugin.into(),
            message: "the token is not a valid header value".into(),
        })?;
    h.set_sensitive(true);
    let ttl = match status
        .get("expirationTimestamp")
        .and_then(|t| t.as_str())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    {
        Some(at) => {
            let left = (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .unwrap_or_default();
            // renewed a minute early; a token about to expire is used once
            left.saturating_sub(Duration::from_secs(60))
        }
        None => UNDATED_TOKEN_TTL,
    };
    Ok((h, ttl))
}

/// A tower layer that puts the plugin's token on every request.
#[derive(Clone)]
pub struct CredentialLayer(pub Arc<ExecCredentials>);

impl<S> tower::Layer<S> for CredentialLayer {
    type Service = WithCredentials<S>;
    fn layer(&self, inner: S) -> WithCredentials<S> {
        WithCredentials {
            inner,
            creds: self.0.clone(),
            pending: None,
            got: None,
        }
    }
}

type HeaderFuture = Pin<Box<dyn Future<Output = Result<HeaderValue, CredentialError>> + Send>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Waits for credentials in `poll_ready`; a failure is the request's error (never the
/// service's: a client stays usable after a plugin failed).
pub struct WithCredentials<S> {
    inner: S,
    creds: Arc<ExecCredentials>,
    pending: Option<HeaderFuture>,
    got: Option<Result<HeaderValue, CredentialError>>,
}

impl<S, B> tower::Service<http::Request<B>> for WithCredentials<S>
where
    S: tower::Service<http::Request<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.got.is_none() {
            let fut = self
                .pending
                .get_or_insert_with(|| Box::pin(self.creds.clone().header()));
            match fut.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => {
                    self.pending = None;
                    self.got = Some(r);
                }
            }
        }
        if matches!(self.got, Some(Err(_))) {
            // the request fails in `call`; the inner service is not asked
            return Poll::Ready(Ok(()));
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        match self.got.take() {
            Some(Ok(h)) => {
                req.headers_mut().insert(http::header::AUTHORIZATION, h);
                let fut = self.inner.call(req);
                Box::pin(async move { fut.await.map_err(Into::into) })
            }
            Some(Err(e)) => Box::pin(std::future::ready(Err(Box::new(e) as BoxError))),
            None => Box::pin(std::future::ready(Err(
                "credentials were not ready (poll_ready was not called)".into(),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_with_their_expiry_and_empty_ones_are_named() {
        let (h, ttl) = parse(
            "p",
            br#"{"kind":"ExecCredential","status":{"token":"abc","expirationTimestamp":"2999-01-01T00:00:00Z"}}"#,
        )
        .expect("token");
        assert_eq!(h.to_str().expect("ascii"), "Bearer abc");
        assert!(ttl > Duration::from_secs(3600));
        let (_, ttl) = parse("p", br#"{"status":{"token":"abc"}}"#).expect("undated");
        assert_eq!(ttl, UNDATED_TOKEN_TTL);
        let e = parse("aws", br#"{"status":{"token":""}}"#)
            .expect_err("empty")
            .to_string();
        assert_eq!(e, "credential plugin aws returned an empty token");
        let e = parse("aws", b"<html>").expect_err("not json").to_string();
        assert!(
            e.starts_with("credential plugin aws printed no ExecCredential"),
            "{e}"
        );
        let e = parse("x", br#"{"status":{"clientCertificateData":"..."}}"#)
            .expect_err("cert")
            .to_string();
        assert!(e.contains("client certificate"), "{e}");
    }
}
