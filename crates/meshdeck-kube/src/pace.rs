//! How fast meshdeck asks one cluster. Every request of a cluster's watchers and fetches passes
//! one [`Pace`]: a ceiling no failure mode can push meshdeck past ([`CEILING_PER_SEC`] a
//! second, bursts of [`CEILING_BURST`]: kubectl's own limits), and the server's own `Retry-After`: after a 429 or 503 that carries one, nothing more is
//! sent to that cluster until then, and every request held back fails at once with an error that
//! says so and when the next try is ([`Held`]). Both are counted for describe.

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tower::BoxError;

/// The most requests a second meshdeck sends one cluster, sustained. A safety net under the
/// watchers' backoff (which keeps every failure mode measured far below it): lower, it queued
/// a recovery behind the retries of a session's per-namespace watchers (a 403 blip took over
/// 10 s to clear at 10 a second).
pub const CEILING_PER_SEC: u32 = 50;
/// The most it sends at once after a quiet while (a first sync: discovery, ~25 lists and
/// watches, the pages of a large kind; a session watching namespace by namespace).
pub const CEILING_BURST: u32 = 300;
/// The longest a server's `Retry-After` is honoured (a day: a bigger one is a broken server).
const MOST_HOLD: Duration = Duration::from_secs(24 * 3600);

/// One cluster's pace.
pub struct Pace {
    limiter: governor::DefaultDirectRateLimiter,
    state: parking_lot::Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Requests that waited for the ceiling, and when the last one did.
    waited: u64,
    last_wait: Option<chrono::DateTime<chrono::Utc>>,
    hold: Option<Hold>,
    /// Requests refused because of a hold.
    held: u64,
}

/// The server asked meshdeck to wait (`Retry-After`).
#[derive(Debug, Clone)]
pub struct Hold {
    pub until: Instant,
    /// The same, on the wall clock (what describe shows).
    pub until_wall: chrono::DateTime<chrono::Utc>,
    /// The answer that asked: `429 Too Many Requests`.
    pub status: String,
}

impl std::fmt::Debug for Pace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pace")
            .field("state", &*self.state.lock())
            .finish()
    }
}

impl Default for Pace {
    fn default() -> Self {
        Pace::new(CEILING_PER_SEC, CEILING_BURST)
    }
}

/// A request not sent because the server asked meshdeck to wait.
#[derive(Debug, Clone, thiserror::Error)]
#[error("rate-limited by the server ({status}): retrying in {}", human(*.left))]
pub struct Held {
    pub status: String,
    pub left: Duration,
}

/// `58 min`, `12 s`, `2 h 5 min`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s.div_ceil(60)),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

impl Pace {
    /// A pace of `per_sec` requests a second with bursts of `burst` (both at least 1).
    pub fn new(per_sec: u32, burst: u32) -> Pace {
        let quota =
            governor::Quota::per_second(NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN))
                .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        Pace {
            limiter: governor::RateLimiter::direct(quota),
            state: Default::default(),
        }
    }

    /// The server's hold in force now, if any.
    pub fn hold(&self) -> Option<Held> {
        let s = self.state.lock();
        let h = s.hold.as_ref()?;
        let left = h.until.checked_duration_since(Instant::now())?;
        Some(Held {
            status: h.status.clone(),
            left,
        })
    }

    /// What describe says about the pace when it has bitten: `None` while it never has. Times
    /// are the wall clock's (a snapshot keeps the text).
    pub fn summary(&self) -> Option<String> {
        let mut out = Vec::new();
        let s = self.state.lock();
        if let Some(h) = &s.hold
            && h.until > Instant::now()
        {
            out.push(format!(
                "rate-limited by the server ({}) until {}",
                h.status,
                h.until_wall.format("%H:%M:%SZ")
            ));
        }
        if let Some(t) = s.last_wait {
            out.push(format!(
                "{} waited for meshdeck's ceiling ({CEILING_PER_SEC}/s, bursts of {CEILING_BURST}), the last at {}",
                meshdeck_core::count(s.waited as usize, "request", "requests"),
                t.format("%H:%M:%SZ")
            ));
        }
        if s.held > 0 {
            out.push(format!(
                "{} not sent while the server asked to wait",
                meshdeck_core::count(s.held as usize, "request", "requests")
            ));
        }
        (!out.is_empty()).then(|| out.join("; "))
    }

    /// Wait for the ceiling; refuse at once while the server asked to wait.
    async fn admit(&self) -> Result<(), Held> {
        if let Some(h) = self.hold() {
            self.state.lock().held += 1;
            return Err(h);
        }
        if self.limiter.check().is_err() {
            {
                let mut s = self.state.lock();
                s.waited += 1;
                s.last_wait = Some(chrono::Utc::now());
            }
            self.limiter.until_ready().await;
        }
        Ok(())
    }

    /// Note an answer: a 429 or 503 with `Retry-After` holds the cluster until then.
    fn answered(&self, status: http::StatusCode, headers: &http::HeaderMap) {
        if status != http::StatusCode::TOO_MANY_REQUESTS
            && status != http::StatusCode::SERVICE_UNAVAILABLE
        {
            return;
        }
        let Some(wait) = headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(retry_after)
        else {
            return;
        };
        if wait.is_zero() {
            return;
        }
        let text = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        tracing::warn!(
            "the server answered {text} with Retry-After: waiting {}",
            human(wait)
        );
        let wait = wait.min(MOST_HOLD);
        self.state.lock().hold = Some(Hold {
            until: Instant::now() + wait,
            until_wall: chrono::Utc::now()
                + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero()),
            status: text.trim().to_string(),
        });
    }
}

/// A `Retry-After` value: seconds, or an HTTP date.
pub fn retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let left = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(left.to_std().unwrap_or(Duration::ZERO))
}

/// The tower layer of a cluster's [`Pace`].
#[derive(Clone)]
pub struct PaceLayer(pub Arc<Pace>);

impl<S> tower::Layer<S> for PaceLayer {
    type Service = Paced<S>;
    fn layer(&self, inner: S) -> Paced<S> {
        Paced {
            inner,
            pace: self.0.clone(),
            admitting: None,
            admitted: None,
        }
    }
}

type Admit = Pin<Box<dyn Future<Output = Result<(), Held>> + Send>>;

/// A service behind a cluster's [`Pace`]: ready once the pace admits the next request (a
/// request held back by the server fails in `call` without being sent).
pub struct Paced<S> {
    inner: S,
    pace: Arc<Pace>,
    admitting: Option<Admit>,
    admitted: Option<Result<(), Held>>,
}

impl<S: Clone> Clone for Paced<S> {
    fn clone(&self) -> Self {
        Paced {
            inner: self.inner.clone(),
            pace: self.pace.clone(),
            admitting: None,
            admitted: None,
        }
    }
}

impl<S, B, R> tower::Service<http::Request<B>> for Paced<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    R: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<R>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.admitted.is_none() {
            let pace = &self.pace;
            let fut = self.admitting.get_or_insert_with(|| {
                let p = pace.clone();
                Box::pin(async move { p.admit().await })
            });
            match fut.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => {
                    self.admitting = None;
                    self.admitted = Some(r);
                }
            }
        }
        if matches!(self.admitted, Some(Err(_))) {
            // `call` fails it without the inner service
            return Poll::Ready(Ok(()));
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        match self.admitted.take() {
            Some(Err(held)) => Box::pin(std::future::ready(Err(Box::new(held) as BoxError))),
            // admitted (or called without poll_ready, which tower forbids: sent as it is)
            _ => {
                let fut = self.inner.call(req);
                let pace = self.pace.clone();
                Box::pin(async move {
                    let resp = fut.await.map_err(Into::into)?;
                    pace.answered(resp.status(), resp.headers());
                    Ok(resp)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_a_date() {
        assert_eq!(retry_after("3600"), Some(Duration::from_secs(3600)));
        assert_eq!(retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }

    #[test]
    fn a_hold_refuses_until_it_ends_and_says_so() {
        let p = Pace::default();
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("3600"),
        );
        // a 500 with Retry-After is not a hold; a 429 is
        p.answered(http::StatusCode::INTERNAL_SERVER_ERROR, &h);
        assert!(p.hold().is_none());
        p.answered(http::StatusCode::TOO_MANY_REQUESTS, &h);
        let held = p.hold().expect("held");
        assert_eq!(
            held.to_string(),
            "rate-limited by the server (429 Too Many Requests): retrying in 60 min"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("rt");
        assert!(rt.block_on(p.admit()).is_err());
        let s = p.summary().expect("summary");
        assert!(s.contains("1 request not sent"), "{s}");
    }

    #[test]
    fn the_ceiling_counts_what_waited() {
        let p = Pace::new(1000, 2);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("rt");
        assert!(p.summary().is_none());
        for _ in 0..3 {
            rt.block_on(p.admit()).expect("admitted");
        }
        let s = p.summary().expect("summary");
        assert!(s.starts_with("1 request waited"), "{s}");
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human(Duration::from_secs(12)), "12 s");
        assert_eq!(human(Duration::from_millis(3_480_500)), "59 min");
        assert_eq!(human(Duration::from_secs(3 * 3600 + 300)), "3 h 5 min");
    }
}
