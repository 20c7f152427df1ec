//! Golden signals end to end: the simulator's traffic, a real Prometheus (Debian's package)
//! scraping it, meshdeck's refresh task and `status --signals`, compared with the simulator's
//! ground truth; the sidecar fallback without Prometheus; dead, slow and HTML-answering
//! Prometheus endpoints.

use crate::common::*;
use meshdeck::fleet;
use meshdeck::signals::{self as sig, Config};
use meshdeck::signals_core::{Subject, Traffic};
use meshdeck::sim::Fleet;
use std::time::Duration;

/// How far meshdeck's rate may be from the simulator's (Prometheus extrapolates a window's
/// edges; the simulator's counters advance once a second).
const TOLERANCE: f64 = 0.12;

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= TOLERANCE * want.max(1.0)
}

/// A real Prometheus scraping the fleet every second, or None where none can run (then the
/// test says so; CI installs Debian's `prometheus`, so there it must run).
fn prometheus(f: &Fleet) -> Option<meshdeck::sim::prometheus::Prometheus> {
    match f.start_prometheus(Duration::from_secs(1)) {
        Ok(Some(p)) => Some(p),
        Ok(None) if std::env::var_os("CI").is_some() => {
            panic!("CI must have a prometheus binary (.ci/run installs Debian's package)")
        }
        Ok(None) => {
            eprintln!(
                "SKIP: no prometheus binary (apt-get install prometheus); this test needs it"
            );
            None
        }
        Err(e) => panic!("prometheus: {e:#}"),
    }
}

fn fast(shared: Option<String>) -> Config {
    Config {
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(3),
        shared,
        // a 10 s window follows a change within seconds (the default 1m is for people)
        window: "10s".into(),
        ..Config::default()
    }
}

/// Wait until `cond` holds for the latest signals (at most `secs`), and return them.
async fn until_signals(
    h: &mut sig::Handle,
    secs: u64,
    cond: impl Fn(&meshdeck::signals_core::Signals) -> bool,
) -> std::sync::Arc<meshdeck::signals_core::Signals> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let s = h.latest();
        if cond(&s) {
            return s;
        }
        if tokio::time::timeout_at(deadline, h.signals.changed())
            .await
            .is_err()
        {
            return h.latest();
        }
    }
}

fn service<'a>(
    s: &'a meshdeck::signals_core::Signals,
    c: &str,
    ns: &str,
    n: &str,
) -> Option<&'a Traffic> {
    s.service(c, ns, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_signals_equal_the_simulators_truth() {
    let f = fleet(2).await;
    let Some(p) = prometheus(&f) else { return };
    let (t, _dir) = targets(&f, &["eu-west", "us-east"]).await;
    let fl = fleet::start(t.clone());
    let mut h = sig::start(&t, fast(Some(p.url.clone())), fl.snapshots.clone());
    // us-east's warehouse answers 12 % 503 by itself
    // (a young series' rate is low until the window has filled: wait for it)
    let truth = f.traffic.truth();
    let s = until_signals(&mut h, 90, |s| {
        service(s, "us-east", "inventory", "warehouse")
            .is_some_and(|w| w.err_pct().unwrap_or(0.0) > 8.0)
            && truth
                .services
                .iter()
                .all(|(k, w)| s.services.get(k).is_some_and(|g| close(g.rps, w.rps)))
    })
    .await;
    let mut compared = 0;
    for (k, want) in &truth.services {
        let got = s
            .services
            .get(k)
            .unwrap_or_else(|| panic!("{k:?} missing: {:?}", s.clusters));
        assert!(
            close(got.rps, want.rps),
            "{k:?}: rps {} vs truth {}",
            got.rps,
            want.rps
        );
        let (ge, we) = (got.err_pct().unwrap_or(0.0), want.err_pct().unwrap_or(0.0));
        assert!((ge - we).abs() <= 2.0, "{k:?}: err {ge} % vs truth {we} %");
        compared += 1;
    }
    assert!(compared >= 10, "{compared} services compared");
    for (k, want) in &truth.workloads {
        let got = s
            .workloads
            .get(k)
            .unwrap_or_else(|| panic!("{k:?} missing"));
        assert!(
            close(got.rps, want.rps),
            "{k:?}: rps {} vs truth {}",
            got.rps,
            want.rps
        );
    }
    // latencies come from the histograms: 99.5 % of the frontend's calls take ≤ 1.6 × 31 ms
    // (49.6 ms, bucket (25, 50]), the slowest 0.5 % 3.5 × 31 ms: p99 inside (25, 50]
    let fe = service(&s, "eu-west", "bookstore", "frontend").expect("frontend");
    assert!(fe.p99_ms.is_some_and(|p| p > 25.0 && p <= 50.0), "{fe:?}");
    // edges: the gateway calls the frontend
    assert!(s.edges.keys().any(|e| e.cluster == "eu-west"
        && e.source_workload == "istio-ingressgateway"
        && e.dest_service == "frontend"));
    // the source is named, and it is current
    let st = s.state("eu-west").expect("state");
    assert!(
        st.source.starts_with("prometheus http://127.0.0.1:"),
        "{st:?}"
    );
    assert!(st.stale.is_none(), "{st:?}");
    // the tolerances judge the overloaded warehouse a failure, with the reason
    let tol = meshdeck::signals_core::health::Tolerances::default();
    let w = service(&s, "us-east", "inventory", "warehouse").expect("warehouse");
    let th = tol
        .evaluate("service", "inventory", "warehouse", None, w, &s.window)
        .expect("traffic");
    assert_eq!(th.level, meshdeck::model::Level::Failure, "{th:?}");
    assert!(
        th.reason.as_deref().unwrap_or("").starts_with("5xx 1"),
        "{th:?}"
    );
    // a sparkline from a range query
    h.history
        .send((
            meshdeck::signals_core::View::Services,
            Subject::new("eu-west", "bookstore", "frontend"),
        ))
        .await
        .expect("ask");
    let s = until_signals(&mut h, 20, |s| !s.history.is_empty()).await;
    let hist = s.history.values().next().expect("history");
    assert!(
        !hist.rps.is_empty() && hist.rps.iter().all(|(_, v)| *v >= 0.0),
        "{hist:?}"
    );
}

fn write_settings(home: &std::path::Path, yaml: &str) {
    let dir = home.join("config").join("meshdeck");
    std::fs::create_dir_all(&dir).expect("config dir");
    std::fs::write(dir.join("config.yaml"), yaml).expect("settings");
}

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", output_text(o)))
}

fn status_service(v: &serde_json::Value, c: &str, ns: &str, n: &str) -> Option<serde_json::Value> {
    v.pointer("/signals/services")?
        .as_array()?
        .iter()
        .find(|r| r["cluster"] == c && r["namespace"] == ns && r["name"] == n)
        .cloned()
}

/// Write `yaml` as `home/file` and apply it to context eu-west through meshdeck's one writer
/// (`meshdeck apply --yes`); the run must succeed.
async fn apply_policy(home: &std::path::Path, kc: &str, file: &str, yaml: &str) {
    let policy = home.join(file);
    std::fs::write(&policy, yaml).expect("policy");
    let out = meshdeck(
        home,
        &[
            "apply",
            "--yes",
            "-f",
            policy.to_str().expect("p"),
            "--kubeconfig",
            kc,
            "--context",
            "eu-west",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_policy_applied_by_meshdeck_raises_5xx_and_fails_health() {
    let f = fleet(1).await;
    let Some(p) = prometheus(&f) else { return };
    let home = tempfile::tempdir().expect("home");
    let kc = home.path().join("kc");
    f.write_kubeconfig(&kc).expect("kc");
    let kc = kc.to_str().expect("path").to_string();
    write_settings(
        home.path(),
        &format!(
            "prometheus: {}\nsignals:\n  window: 10s\n  interval: 2\n",
            p.url
        ),
    );
    let status = |home: std::path::PathBuf, kc: String| async move {
        meshdeck(
            &home,
            &[
                "status",
                "--signals",
                "-o",
                "json",
                "--kubeconfig",
                &kc,
                "--context",
                "eu-west",
            ],
        )
        .await
    };
    // before: details answers everything
    let mut before = serde_json::Value::Null;
    for _ in 0..20 {
        before = json(&status(home.path().to_path_buf(), kc.clone()).await);
        if status_service(&before, "eu-west", "bookstore", "details").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let d =
        status_service(&before, "eu-west", "bookstore", "details").expect("details has traffic");
    assert_eq!(d["err_pct"], 0.0, "{d}");
    assert_eq!(d["health"]["level"], "ok", "{d}");
    // apply a 50 % abort through meshdeck's one writer
    apply_policy(
        home.path(),
        &kc,
        "fault.yaml",
        "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {name: details-fault, namespace: bookstore}\nspec:\n  destinationSelector:\n  - kubeServiceRefs:\n      services: [{name: details, namespace: bookstore, clusterName: eu-west}]\n  policy:\n    faultInjection: {abort: {httpStatus: 503}, percentage: 50}\n",
    )
    .await;
    // within a few refreshes of a 10 s window the 5xx rate is ~50 % and the health a failure
    let mut after = serde_json::Value::Null;
    for _ in 0..30 {
        after = json(&status(home.path().to_path_buf(), kc.clone()).await);
        let e = status_service(&after, "eu-west", "bookstore", "details")
            .and_then(|d| d["err_pct"].as_f64())
            .unwrap_or(0.0);
        if (e - 50.0).abs() < 6.0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let d = status_service(&after, "eu-west", "bookstore", "details").expect("details");
    let e = d["err_pct"].as_f64().unwrap_or(0.0);
    assert!((e - 50.0).abs() < 6.0, "5xx share {e}: {d}");
    assert_eq!(d["health"]["level"], "failure", "{d}");
    let reason = d["health"]["reason"].as_str().unwrap_or("");
    assert!(
        reason.starts_with("5xx ") && reason.ends_with("over 10s ≥ 10 %"),
        "{reason}"
    );
    // the aborted calls never reach the pods: the workload serves about half as much
    let truth = f.traffic.service_truth("eu-west", "bookstore", "details");
    assert!(
        (truth.err_pct().unwrap_or(0.0) - 50.0).abs() < 1e-6,
        "{truth:?}"
    );
    // the table says the same
    let table = meshdeck(
        home.path(),
        &[
            "status",
            "--signals",
            "--kubeconfig",
            &kc,
            "--context",
            "eu-west",
        ],
    )
    .await;
    let text = output_text(&table);
    let line = text
        .lines()
        .find(|l| l.contains(" details ") && l.starts_with("eu-west"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("failure: 5xx "), "{line}");
    assert!(
        text.contains(&format!("eu-west: signals from prometheus {}", p.url)),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traffic_shift_80_20_shows_on_the_subsets_workloads() {
    let f = fleet(1).await;
    let Some(p) = prometheus(&f) else { return };
    // the hand-written reviews route (all to v1) goes: the policy owns reviews' routing
    let store = &f.cluster("eu-west").expect("c").state.store;
    store.remove(
        "virtualservices.networking.istio.io",
        "bookstore",
        "reviews",
    );
    store.remove(
        "destinationrules.networking.istio.io",
        "bookstore",
        "reviews",
    );
    let home = tempfile::tempdir().expect("home");
    let kc = home.path().join("kc");
    f.write_kubeconfig(&kc).expect("kc");
    apply_policy(
        home.path(),
        kc.to_str().expect("kc"),
        "shift.yaml",
        "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {name: reviews-shift, namespace: bookstore}\nspec:\n  destinationSelector:\n  - kubeServiceRefs:\n      services: [{name: reviews, namespace: bookstore, clusterName: eu-west}]\n  policy:\n    trafficShift:\n      destinations:\n      - kubeService: {name: reviews, namespace: bookstore, clusterName: eu-west, subset: {version: v1}}\n        weight: 80\n      - kubeService: {name: reviews, namespace: bookstore, clusterName: eu-west, subset: {version: v2}}\n        weight: 20\n",
    )
    .await;
    let (t, _dir) = targets(&f, &["eu-west"]).await;
    let fl = fleet::start(t.clone());
    let mut h = sig::start(&t, fast(Some(p.url.clone())), fl.snapshots.clone());
    let wl = |s: &meshdeck::signals_core::Signals, n: &str| {
        s.workload("eu-west", "bookstore", n).map_or(0.0, |t| t.rps)
    };
    let s = until_signals(&mut h, 60, |s| {
        let (a, b) = (wl(s, "reviews-v1"), wl(s, "reviews-v2"));
        a + b > 15.0 && (b / (a + b) - 0.2).abs() < 0.03
    })
    .await;
    let (a, b) = (wl(&s, "reviews-v1"), wl(&s, "reviews-v2"));
    assert!((b / (a + b) - 0.2).abs() < 0.03, "v1 {a} rps, v2 {b} rps");
    assert_eq!(wl(&s, "reviews-v3"), 0.0);
    // v2 calls ratings: the shift shows downstream too
    assert!(close(
        s.service("eu-west", "bookstore", "ratings")
            .map_or(0.0, |t| t.rps),
        b
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_fallback_gives_the_same_numbers_without_prometheus() {
    let f = fleet(2).await;
    let (t, _dir) = targets(&f, &["eu-west", "us-east"]).await;
    let mut fl = fleet::start(t.clone());
    assert!(fl.wait_synced(Duration::from_secs(30)).await);
    let mut h = sig::start(&t, fast(None), fl.snapshots.clone());
    let s = until_signals(&mut h, 30, |s| {
        s.services.len() >= 10 && s.clusters.values().all(|c| c.refreshed.is_some())
    })
    .await;
    let truth = f.traffic.truth();
    for (k, want) in &truth.services {
        let got = s
            .services
            .get(k)
            .unwrap_or_else(|| panic!("{k:?} missing: {:?}", s.clusters));
        assert!(
            close(got.rps, want.rps),
            "{k:?}: rps {} vs truth {}",
            got.rps,
            want.rps
        );
        let (ge, we) = (got.err_pct().unwrap_or(0.0), want.err_pct().unwrap_or(0.0));
        assert!((ge - we).abs() <= 2.0, "{k:?}: err {ge} % vs truth {we} %");
    }
    let st = s.state("eu-west").expect("state");
    assert!(st.source.starts_with("sidecars (pod proxy, "), "{st:?}");
    // bounded: at most max_pods pods per refresh across the fleet, shared out
    let scraped = |s: &meshdeck::signals_core::Signals, c: &str| -> usize {
        let src = &s.state(c).expect("state").source;
        let n = src
            .strip_prefix("sidecars (pod proxy, ")
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok());
        n.unwrap_or_else(|| panic!("{c}: {src:?}"))
    };
    let mut cfg = fast(None);
    cfg.max_pods = 3;
    let mut h = sig::start(&t, cfg.clone(), fl.snapshots.clone());
    let s = until_signals(&mut h, 30, |s| s.clusters.len() == 2).await;
    let (a, b) = (scraped(&s, "eu-west"), scraped(&s, "us-east"));
    assert_eq!((a + b, a.min(b)), (3, 1), "{:?}", s.clusters);
    // the namespaces on screen take the budget first; a cluster left without any is unknown
    // (stale, with why), not idle
    let mut h = sig::start(&t, cfg, fl.snapshots.clone());
    h.focus
        .send(sig::Focus {
            namespaces: [("us-east".to_string(), "bookstore".to_string())].into(),
        })
        .expect("focus");
    // the focus reaches the task at its next round at the latest (the first round may have
    // begun before it was sent): wait for a round that read it, however busy the machine
    let s = until_signals(&mut h, 60, |s| {
        s.clusters.len() == 2
            && s.state("eu-west")
                .and_then(|w| w.stale.as_deref())
                .is_some_and(|e| e.contains("maxPods"))
    })
    .await;
    assert_eq!(scraped(&s, "us-east"), 3, "{:?}", s.clusters);
    let west = s.state("eu-west").expect("state");
    assert!(
        west.stale.as_deref().is_some_and(|e| e.contains("maxPods")),
        "{west:?}"
    );
    // only GETs went out, to the pod proxy
    let proxied: Vec<_> = f
        .requests("eu-west")
        .expect("log")
        .into_iter()
        .filter(|r| r.path.contains("/proxy/"))
        .collect();
    assert!(!proxied.is_empty());
    assert!(
        proxied
            .iter()
            .all(|r| r.method == "GET" && r.path.ends_with(":15020/proxy/stats/prometheus"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_cluster_prometheus_is_found_through_the_service_proxy() {
    let f = fleet(1).await;
    let Some(p) = prometheus(&f) else { return };
    f.set_prometheus("eu-west", Some(&p.url))
        .expect("prometheus service");
    let (t, _dir) = targets(&f, &["eu-west-viewer"]).await;
    let fl = fleet::start(t.clone());
    let mut h = sig::start(&t, fast(None), fl.snapshots.clone());
    let truth = f.traffic.service_truth("eu-west", "bookstore", "frontend");
    let s = until_signals(&mut h, 90, |s| {
        s.service("eu-west", "bookstore", "frontend")
            .is_some_and(|x| close(x.rps, truth.rps))
    })
    .await;
    let st = s.state("eu-west").expect("state");
    assert_eq!(
        st.source,
        "in-cluster prometheus (istio-system/prometheus, service proxy)"
    );
    let got = s
        .service("eu-west", "bookstore", "frontend")
        .expect("frontend");
    assert!(close(got.rps, truth.rps), "{} vs {}", got.rps, truth.rps);
    // every query went through the API server as a GET of the service proxy
    let log = f.requests("eu-west").expect("log");
    assert!(log.iter().any(|r| r.path.starts_with(
        "/api/v1/namespaces/istio-system/services/prometheus:9090/proxy/api/v1/query"
    )));
    assert!(
        log.iter()
            .all(|r| r.method == "GET" || !r.path.contains("/proxy/"))
    );
}

/// A TCP server that accepts and answers `reply` (None: never answers).
async fn fake_prometheus(reply: Option<&'static str>) -> String {
    let l = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut s, _)) = l.accept().await {
            match reply {
                Some(body) => {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(resp.as_bytes()).await;
                }
                None => held.push(s),
            }
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_slow_and_html_prometheus_mark_signals_stale_and_never_block() {
    let f = fleet(1).await;
    let (t, _dir) = targets(&f, &["eu-west"]).await;
    let fl = fleet::start(t.clone());
    // dead: nothing listens
    let dead = {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let slow = fake_prometheus(None).await;
    let html = fake_prometheus(Some("<!DOCTYPE html><html><title>Sign in</title></html>")).await;
    for (url, want) in [
        (dead, "error"),
        (slow, "no answer within 1 s"),
        (html, "HTML"),
    ] {
        let mut cfg = fast(Some(url.clone()));
        cfg.timeout = Duration::from_secs(1);
        let started = std::time::Instant::now();
        let mut h = sig::start(&t, cfg, fl.snapshots.clone());
        // the handle answers at once: nothing waits on the source
        assert!(h.latest().clusters.is_empty());
        let s = until_signals(&mut h, 20, |s| s.clusters.contains_key("eu-west")).await;
        let st = s.state("eu-west").expect("a state");
        let stale = st.stale.clone().unwrap_or_default();
        assert!(
            stale.contains(want) || (want == "error" && !stale.is_empty()),
            "{url}: {st:?}"
        );
        assert!(st.refreshed.is_none(), "{st:?}");
        assert!(s.services.is_empty());
        // a refresh ends within the timeouts (6 queries, concurrently)
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{:?}",
            started.elapsed()
        );
        // the fleet is not touched: the cluster stays synced
        assert!(fl.latest().clusters.iter().all(|c| !c.state.is_stale()));
    }
}
