//! The session: built once from the flags, the settings and the kubeconfig. It holds the
//! targets (one per selected context), what each may do (read-only per context or for the whole
//! session), as whom (impersonation), and the request timeout. It is the only place that can
//! hand out the write capability, and the only place that builds `kube::Client`s: every client
//! carries `User-Agent: meshdeck/<version>`, the impersonation headers, and — for a read-only
//! target — a transport layer that refuses any request that is not a read before it leaves the
//! process (a second wall under the type-level one in `apply`).

use crate::apply::{Access, Writer};
use crate::fleet::Target;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// The default longest time one request may take.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting to an API server may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `meshdeck/<version>`, on every request.
pub fn user_agent() -> String {
    format!("meshdeck/{}", env!("CARGO_PKG_VERSION"))
}

/// What a client is for: watches stream for minutes with nothing to read, so only requests
/// get a read timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Watch,
    Request,
}

/// The error a read-only client gives for a request that would change something.
#[derive(Debug, Clone, thiserror::Error)]
#[error("read-only session: refused {method} {path} before it was sent")]
pub struct Refused {
    pub method: String,
    pub path: String,
}

/// A tower layer that lets only reads through (GET, HEAD, OPTIONS).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOnlyLayer;

impl<S> tower::Layer<S> for ReadOnlyLayer {
    type Service = ReadOnly<S>;
    fn layer(&self, inner: S) -> ReadOnly<S> {
        ReadOnly { inner }
    }
}

#[derive(Debug, Clone)]
pub struct ReadOnly<S> {
    inner: S,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, B> tower::Service<http::Request<B>> for ReadOnly<S>
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
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        use http::Method;
        if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
            let refused = Refused {
                method: req.method().to_string(),
                path: req
                    .uri()
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
            };
            tracing::error!(%refused, "read-only layer");
            return Box::pin(std::future::ready(Err(Box::new(refused) as BoxError)));
        }
        let fut = self.inner.call(req);
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}

/// What a response said when it was not the Kubernetes API.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the server answered {what} ({status} {content_type}) for {path}, not the Kubernetes API's JSON: {hint}"
)]
pub struct NotTheApi {
    pub what: String,
    pub content_type: String,
    pub status: u16,
    pub path: String,
    pub hint: &'static str,
}

/// What an answer is when it is plainly not the API's JSON (`None` when it may be): an HTML
/// page, a redirect, YAML, protobuf. Plain text passes (pod logs and sidecar metrics are
/// text), and so does an answer without a type.
fn not_the_api(
    status: http::StatusCode,
    headers: &http::HeaderMap,
) -> Option<(String, &'static str)> {
    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if status.is_redirection() {
        let to = headers
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("nowhere");
        return Some((
            format!("a redirect to {}", crate::text::escape(to)),
            "a login proxy in front of the API server? (meshdeck does not follow redirects)",
        ));
    }
    if ct.starts_with("text/html") {
        return Some((
            "an HTML page".into(),
            "a login proxy in front of the API server?",
        ));
    }
    if ct.contains("yaml") {
        return Some((
            "YAML".into(),
            "not an API server, or a proxy that rewrites its answers",
        ));
    }
    if ct.contains("protobuf") {
        return Some((
            "protobuf".into(),
            "meshdeck asks for JSON: a proxy that changes the Accept header?",
        ));
    }
    None
}

/// A tower layer that turns an answer that is plainly not the Kubernetes API (an HTML page: an
/// SSO login, a proxy's error page) into an error that says so, instead of a JSON decoder's
/// `expected value at line 1 column 1`.
/// The bodies are counted against the cluster's [`InFlight`] budget.
#[derive(Debug, Clone, Default)]
pub struct ApiOnlyLayer(pub Arc<InFlight>);

impl<S> tower::Layer<S> for ApiOnlyLayer {
    type Service = ApiOnly<S>;
    fn layer(&self, inner: S) -> ApiOnly<S> {
        ApiOnly {
            inner,
            budget: self.0.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiOnly<S> {
    inner: S,
    budget: Arc<InFlight>,
}

/// The most one cluster's answers may hold at once while they arrive, across all its lists,
/// gets and watch lines: every kind lists at once on a sync, and one bound per answer let a
/// server that answers 100 MiB to each hold 606 MiB of the process.
pub const MAX_IN_FLIGHT: u64 = 96 << 20;

/// Bytes of one cluster's answers received and not yet whole (a list's body, a watch's current
/// line).
#[derive(Debug, Default)]
pub struct InFlight {
    bytes: std::sync::atomic::AtomicU64,
}

impl InFlight {
    /// Hold `n` more bytes: false (and nothing held) past the budget.
    fn take(&self, n: u64) -> bool {
        use std::sync::atomic::Ordering;
        let mut cur = self.bytes.load(Ordering::Relaxed);
        loop {
            if cur + n > MAX_IN_FLIGHT {
                return false;
            }
            match self.bytes.compare_exchange_weak(
                cur,
                cur + n,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    fn give(&self, n: u64) {
        self.bytes
            .fetch_sub(n, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The most one answer may hold (a page of a list, a get): more is a misbehaving server.
pub const MAX_BODY: u64 = 64 << 20;
/// The most one watch event may hold before its line ends (etcd refuses objects over 1.5 MiB).
pub const MAX_LINE: u64 = 2 << 20;

/// An answer that passed its bound.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Oversized {
    #[error("the answer to {path} passed {} MiB: refused (a misbehaving server or proxy?)", limit >> 20)]
    Body { path: String, limit: u64 },
    #[error("a watch event from {path} passed {} MiB without a line end: refused", limit >> 20)]
    Line { path: String, limit: u64 },
    #[error("the cluster's answers in flight passed {} MiB (at {path}): refused (a misbehaving server or proxy?)", limit >> 20)]
    InFlight { path: String, limit: u64 },
}

/// A response body with bounds: the whole answer for requests, each line for watches. What is
/// past a bound is never buffered: the body fails there.
pub struct Bounded<B> {
    inner: B,
    path: Arc<str>,
    watch: bool,
    /// What this body holds: all of it so far (a request), or its current line (a watch); held
    /// of the cluster's budget, given back as lines end and when the body goes.
    held: u64,
    budget: Arc<InFlight>,
}

impl<B> Drop for Bounded<B> {
    fn drop(&mut self) {
        self.budget.give(self.held);
    }
}

impl<B> http_body::Body for Bounded<B>
where
    B: http_body::Body<Data = bytes::Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = bytes::Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    // what this body holds after the frame: the whole body so far (a request),
                    // or the part of the current line (a watch: a whole line goes to the decoder)
                    let next = match (this.watch, data.iter().rposition(|b| *b == b'\n')) {
                        (true, Some(i)) => (data.len() - 1 - i) as u64,
                        _ => this.held + data.len() as u64,
                    };
                    if next > this.held {
                        if !this.budget.take(next - this.held) {
                            return Poll::Ready(Some(Err(Box::new(Oversized::InFlight {
                                path: this.path.to_string(),
                                limit: MAX_IN_FLIGHT,
                            }))));
                        }
                    } else {
                        this.budget.give(this.held - next);
                    }
                    this.held = next;
                    let path = || this.path.to_string();
                    let over = if this.watch {
                        (this.held > MAX_LINE).then(|| Oversized::Line {
                            path: path(),
                            limit: MAX_LINE,
                        })
                    } else {
                        (this.held > MAX_BODY).then(|| Oversized::Body {
                            path: path(),
                            limit: MAX_BODY,
                        })
                    };
                    if let Some(e) = over {
                        return Poll::Ready(Some(Err(Box::new(e))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl<S, B, R> tower::Service<http::Request<B>> for ApiOnly<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    R: http_body::Body<Data = bytes::Bytes> + Unpin + Send + 'static,
    R::Error: Into<BoxError>,
{
    type Response = http::Response<Bounded<R>>;
    type Error = BoxError;
    type Future =
        Pin<Box<dyn Future<Output = Result<http::Response<Bounded<R>>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let watch = req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"))
            // followed logs stream like a watch: bounded per line, not in total
            || (req.uri().path().ends_with("/log")
                && req.uri().query().is_some_and(|q| q.contains("follow=true")));
        let fut = self.inner.call(req);
        let budget = self.budget.clone();
        Box::pin(async move {
            let resp = fut.await.map_err(Into::into)?;
            match not_the_api(resp.status(), resp.headers()) {
                Some((what, hint)) => Err(Box::new(NotTheApi {
                    what,
                    content_type: resp
                        .headers()
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(|v| crate::text::escape(v).into_owned())
                        .unwrap_or_default(),
                    status: resp.status().as_u16(),
                    path: crate::text::escape(&path).into_owned(),
                    hint,
                }) as BoxError),
                None => {
                    let path: Arc<str> = path.into();
                    Ok(resp.map(|inner| Bounded {
                        inner,
                        path,
                        watch,
                        held: 0,
                        budget,
                    }))
                }
            }
        })
    }
}

/// The most a connection buffers of what it reads. hyper's default (~400 KiB) stays allocated
/// for the connection's life once a list page has grown it, and every watch of every kind holds
/// a connection of its own: at 20 clusters × 25 kinds that was 38 MiB of idle buffers. A list
/// page still streams through in chunks of this size.
pub const MAX_READ_BUFFER: usize = 64 << 10;

/// HTTP/2 flow-control windows (hyper's defaults are 2 MiB per stream and 5 MiB per connection).
const H2_STREAM_WINDOW: u32 = 1 << 20;
const H2_CONNECTION_WINDOW: u32 = 2 << 20;

/// What `transport` builds: kube's boxed service type.
type Transport = tower::util::BoxService<
    http::Request<kube::client::Body>,
    http::Response<Box<kube::client::DynBody>>,
    BoxError,
>;

/// kube's own transport stack (`ClientBuilder::try_from`: rustls, connect/read/write timeouts,
/// the base URI, retries of 429/503/504, authentication, extra headers), with a bounded read
/// buffer per connection. A proxied context keeps kube's stack as it is.
fn transport(
    config: kube::Config,
    pace: Option<Arc<crate::pace::Pace>>,
) -> Result<kube::client::ClientBuilder<Transport>, kube::Error> {
    use kube::client::ConfigExt;
    use tower::ServiceExt;
    if config.proxy_url.is_some() {
        // kube's own stack, paced as a whole
        let builder = kube::client::ClientBuilder::try_from(config)?;
        return Ok(match pace {
            Some(p) => builder.with_layer(&tower::layer::layer_fn(move |s| {
                use tower::Layer;
                tower::util::BoxService::new(crate::pace::PaceLayer(p.clone()).layer(s))
            })),
            None => builder,
        });
    }
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    // HTTP/2 when the server offers it (every API server does): the ~25 watches and the
    // requests of a cluster share one connection instead of holding one each (kube's own
    // connector offers HTTP/1.1 only). A context with `tls-server-name` keeps kube's.
    let https = match &config.tls_server_name {
        Some(_) => config.rustls_https_connector_with_connector(http)?,
        None => hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config.rustls_client_config()?)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http),
    };
    let mut connector = hyper_timeout::TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let hyper: hyper_util::client::legacy::Client<_, kube::client::Body> =
        hyper_util::client::legacy::Builder::new(hyper_util::rt::TokioExecutor::new())
            .http1_max_buf_size(MAX_READ_BUFFER)
            // what one connection buffers of unread data: every watch and list of a cluster
            // shares it, so it bounds a slow reader's memory (and keeps a list page moving)
            .http2_initial_stream_window_size(H2_STREAM_WINDOW)
            .http2_initial_connection_window_size(H2_CONNECTION_WINDOW)
            .build(connector);
    // kube's server-aware policy retries 429/503/504 up to 15 times, waiting as long as a
    // Retry-After says (an hour, silently): here 3 tries at most 5 s apart, and a Retry-After
    // holds the whole cluster in the pace below, which says so (crate::pace)
    let retry = config
        .default_retry
        .then(|| tower::retry::RetryLayer::new(kube::client::retry::RetryPolicy::default()));
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(retry)
        .option_layer(pace.map(crate::pace::PaceLayer))
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(hyper)
        .map_response(|r: http::Response<hyper::body::Incoming>| {
            r.map(|body| {
                Box::new(http_body_util::BodyExt::map_err(body, BoxError::from))
                    as Box<kube::client::DynBody>
            })
        })
        .boxed();
    Ok(kube::client::ClientBuilder::new(
        service,
        config.default_namespace,
    ))
}

/// A client for a Prometheus reached by URL (golden signals). It only ever reads: it refuses
/// any request that is not a GET, whatever the session.
pub fn prometheus_client(url: http::Uri) -> Result<kube::Client, kube::Error> {
    let config = kube::Config::new(url);
    Ok(transport(config, None)?.with_layer(&ReadOnlyLayer).build())
}

/// The one way meshdeck builds a client for a target.
pub fn client(t: &Target, purpose: Purpose) -> Result<kube::Client, kube::Error> {
    let mut config = t.config.clone();
    if purpose == Purpose::Watch {
        config.read_timeout = None;
    }
    let builder = transport(config, Some(t.pace.clone()))?
        .with_layer(&tower::util::option_layer(
            t.credentials
                .clone()
                .map(crate::credentials::CredentialLayer),
        ))
        .with_layer(&ApiOnlyLayer(t.in_flight.clone()));
    Ok(if t.readonly {
        builder.with_layer(&ReadOnlyLayer).build()
    } else {
        builder.build()
    })
}

/// Who the session acts as: the impersonated user, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Impersonation {
    pub user: Option<String>,
    pub groups: Vec<String>,
}

/// Prepare a target's client configuration: user agent, impersonation, timeouts.
pub fn prepare(t: &mut Target, who: &Impersonation, request_timeout: Duration, readonly: bool) {
    if let Ok(v) = http::HeaderValue::from_str(&user_agent()) {
        t.config
            .headers
            .retain(|(k, _)| k != http::header::USER_AGENT);
        t.config.headers.push((http::header::USER_AGENT, v));
    }
    if let Some(u) = &who.user {
        t.config.auth_info.impersonate = Some(u.clone());
        t.identity = u.clone();
    }
    if !who.groups.is_empty() {
        t.config.auth_info.impersonate_groups = Some(who.groups.clone());
    }
    t.config.connect_timeout = Some(CONNECT_TIMEOUT.min(request_timeout));
    t.config.read_timeout = Some(request_timeout);
    t.config.write_timeout = Some(request_timeout);
    t.readonly = readonly;
}

/// A built session.
pub struct Session {
    pub targets: Vec<Target>,
    /// Nothing may be written anywhere (`--readonly`, or every context is `readOnly`).
    pub readonly: bool,
    pub impersonation: Impersonation,
    pub request_timeout: Duration,
    /// Contexts that could not be resolved (a missing cluster or user entry), with why: each
    /// fails alone, the others run.
    pub broken: Vec<String>,
    /// Of those, the ones about one context: kept in the fleet as clusters that never
    /// connect (`ConnState::ConfigError`), so they keep a chip and count.
    pub broken_contexts: Vec<crate::fleet::BrokenContext>,
    access: Access,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("targets", &self.targets)
            .field("readonly", &self.readonly)
            .field("impersonation", &self.impersonation)
            .finish()
    }
}

impl Session {
    /// A session over resolved targets. `readonly` covers every target; `context_readonly`
    /// marks single contexts (the settings' `readOnly`).
    pub fn from_targets(
        mut targets: Vec<Target>,
        readonly: bool,
        context_readonly: impl Fn(&str) -> bool,
        impersonation: Impersonation,
        request_timeout: Duration,
    ) -> Session {
        for t in &mut targets {
            // a cluster reached through several contexts is read-only if any of them is
            let ro = readonly
                || context_readonly(&t.context)
                || t.aliases.iter().any(|a| context_readonly(a));
            prepare(t, &impersonation, request_timeout, ro);
        }
        let all_ro = readonly || (!targets.is_empty() && targets.iter().all(|t| t.readonly));
        Session {
            access: Access::new(all_ro),
            readonly: all_ro,
            targets,
            impersonation,
            request_timeout,
            broken: vec![],
            broken_contexts: vec![],
        }
    }

    /// The clusters that may not be written (all of them in a read-only session).
    pub fn readonly_clusters(&self) -> Vec<String> {
        self.targets
            .iter()
            .filter(|t| t.readonly)
            .map(|t| t.cluster.clone())
            .collect()
    }

    /// Request clients for the targets that may be written (none in a read-only session), by
    /// cluster name.
    pub fn write_clients(&self) -> BTreeMap<String, kube::Client> {
        let mut out = BTreeMap::new();
        for t in self.targets.iter().filter(|t| !t.readonly) {
            match client(t, Purpose::Request) {
                Ok(c) => {
                    out.insert(t.cluster.clone(), c);
                }
                Err(e) => tracing::warn!(cluster = %t.cluster, error = %e, "no client"),
            }
        }
        out
    }

    /// The writer of this session, over the targets that may be written; `None` when the
    /// session is read-only (the write capability exists nowhere then).
    pub fn writer(
        &self,
        force: bool,
        audit_log: &std::path::Path,
    ) -> Result<Option<Writer>, crate::files::FileError> {
        let Access::ReadWrite(token) = &self.access else {
            return Ok(None);
        };
        let identities = self
            .targets
            .iter()
            .filter(|t| !t.readonly)
            // what the audit says when the server cannot say who this is (no
            // SelfSubjectReview before Kubernetes 1.27); the writer asks before it writes
            .map(|t| (t.cluster.clone(), t.shown_identity(Some(Err(())))))
            .collect();
        Ok(Some(Writer::new(
            token.share(),
            self.write_clients(),
            identities,
            force,
            audit_log,
            self.request_timeout,
        )?))
    }

    /// The user meshdeck Roles are checked for: `--as`, else the first context's user.
    pub fn subject(&self) -> crate::rbac::Subject {
        crate::rbac::Subject {
            user: self
                .impersonation
                .user
                .clone()
                .or_else(|| self.targets.first().map(|t| t.identity.clone()))
                .unwrap_or_default(),
            groups: self.impersonation.groups.clone(),
        }
    }
}
