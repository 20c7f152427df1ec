//! A hostile server (issue #31): the simulator's faults answer below validation as a broken
//! proxy, a compaction storm, a rate-limiting front end or a confused aggregated server would,
//! one cluster at a time beside a healthy one. Each test asserts the cause meshdeck names, what
//! it asks of the failing server, and that the healthy cluster stays synced with the true
//! counts. Rates are asserted as ceilings over the test's own run, so a busy machine (which only
//! makes meshdeck ask less) cannot fail them.

use crate::common::*;
use meshdeck::fleet::FleetHandle;
use meshdeck::model::ConnState;
use meshdeck::sim::{FaultSpec, Fleet};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The cluster's error, once it says `what` (within two minutes, however busy the machine).
async fn cause(h: &FleetHandle, cluster: &str, what: &str) -> String {
    let found = eventually(120, || {
        h.latest()
            .cluster(cluster)
            .and_then(|c| c.state.error().map(|e| e.contains(what)))
            .unwrap_or(false)
    })
    .await;
    let state = h.latest().cluster(cluster).map(|c| c.state.clone());
    assert!(found, "{cluster} never said {what:?}: {state:?}");
    state
        .and_then(|s| s.error().map(str::to_string))
        .unwrap_or_default()
}

/// The healthy cluster is synced, with the simulator's own counts.
async fn healthy(f: &Fleet, h: &FleetHandle, cluster: &str) {
    let ok = eventually(60, || {
        h.latest()
            .cluster(cluster)
            .is_some_and(|c| c.state == ConnState::Synced)
    })
    .await;
    assert!(ok, "{cluster} synced: {:?}", h.latest().cluster(cluster));
    let s = h.latest();
    let c = s.cluster(cluster).expect("cluster");
    let truth = |k: &str| f.cluster(cluster).expect("cluster").state.store.count(k);
    assert_eq!(c.counts.pods, truth("pods"));
    assert_eq!(c.counts.services, truth("services"));
}

/// Requests to `cluster` by path (watches apart), and how many in all.
fn requests(f: &Fleet, cluster: &str) -> (BTreeMap<String, usize>, usize) {
    let log = f.requests(cluster).expect("requests");
    let mut by = BTreeMap::new();
    for r in &log {
        let watch = r
            .query
            .split('&')
            .any(|kv| kv == "watch=true" || kv == "watch=1");
        let key = format!(
            "{} {}{}",
            r.method,
            r.path,
            if watch { " (watch)" } else { "" }
        );
        *by.entry(key).or_insert(0) += 1;
    }
    (by, log.len())
}

/// What a failing watch costs its server: a watch that fails right after a good list is
/// re-listed with a backoff that doubles (it was every 200 ms for ever, a 410 at once: 51–488
/// requests a second). Over the test's run — the first dozen seconds, where the backoff is
/// shortest — no kind is listed more than 9 times, and the cluster gets no more than the
/// ceiling allows (its burst, then its rate). The sustained rate is the soak's
/// (scripts/soak-410.sh, docs/benchmarks.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_failing_after_its_list_backs_off() {
    for (fault, says) in [
        (FaultSpec::WatchError(410), "simulated watch error 410"),
        (FaultSpec::WatchError(500), "simulated watch error 500"),
        (FaultSpec::GarbageWatch, "a watch event was not JSON"),
    ] {
        let f = fleet(2).await;
        f.fault("us-east", &fault).expect("fault");
        let t0 = Instant::now();
        let (h, _d) = connect(&f, &["eu-west", "us-east"]).await;
        let why = cause(&h, "us-east", says).await;
        assert!(why.contains("next try in"), "{fault:?}: {why}");
        healthy(&f, &h, "eu-west").await;
        // let the backoff run a while
        tokio::time::sleep(Duration::from_secs(8)).await;
        let (by, total) = requests(&f, "us-east");
        let secs = t0.elapsed().as_secs_f64();
        let pod_lists = by.get("GET /api/v1/pods").copied().unwrap_or(0);
        eprintln!("{fault:?}: {total} requests in {secs:.1} s; pod lists {pod_lists}");
        assert!(
            (1..=9).contains(&pod_lists),
            "{fault:?}: {pod_lists} lists of pods in {secs:.1} s: {by:#?}"
        );
        // the ceiling is a bucket: its burst, then its rate
        let most = f64::from(meshdeck::pace::CEILING_BURST)
            + f64::from(meshdeck::pace::CEILING_PER_SEC) * secs;
        assert!(
            (total as f64) <= most,
            "{fault:?}: {total} requests in {secs:.1} s: {by:#?}"
        );
        drop(h);
        f.shutdown().await;
    }
}

/// A server that answers 429 with `Retry-After: 3600` is left alone for the hour, and the
/// cluster says so: no request reaches it after the first answers (they were re-sent at once,
/// or after an hour in silence).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_and_shown() {
    let f = fleet(2).await;
    f.fault("us-east", &FaultSpec::RetryAfter(3600))
        .expect("fault");
    let (h, _d) = connect(&f, &["eu-west", "us-east"]).await;
    let why = cause(
        &h,
        "us-east",
        "rate-limited by the server (429 Too Many Requests): retrying in",
    )
    .await;
    assert!(why.contains("min"), "{why}");
    healthy(&f, &h, "eu-west").await;
    let (_, before) = requests(&f, "us-east");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (by, after) = requests(&f, "us-east");
    assert_eq!(before, after, "requests went on: {by:#?}");
    assert!(after <= 8, "{after} requests before the hold: {by:#?}");
    // describe says how often meshdeck held back
    let s = h.latest();
    let c = s.cluster("us-east").expect("us-east");
    assert!(
        c.pace
            .as_deref()
            .is_some_and(|p| p.contains("not sent while the server asked to wait")),
        "{:?}",
        c.pace
    );
}

/// Services sent in the pods' watch are refused with a cause and never counted as pods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_of_another_kind_are_refused_not_counted() {
    let f = fleet(2).await;
    f.fault("us-east", &FaultSpec::WrongKind).expect("fault");
    let (h, _d) = connect(&f, &["eu-west", "us-east"]).await;
    let why = cause(
        &h,
        "us-east",
        "a v1 Service came where a v1 Pod was expected",
    )
    .await;
    assert!(why.starts_with("Pod"), "{why}");
    healthy(&f, &h, "eu-west").await;
    let s = h.latest();
    let pods = s
        .clusters
        .iter()
        .find(|c| c.name == "us-east")
        .map(|c| c.counts.pods)
        .unwrap_or_default();
    let truth = f
        .cluster("us-east")
        .expect("us-east")
        .state
        .store
        .count("pods");
    assert!(pods <= truth, "{pods} pods counted, {truth} exist");
    assert!(
        !s.pods().any(|p| p.name().starts_with("not-a-pod")),
        "a Service counted as a pod"
    );
}

/// Objects past Kubernetes' own bounds (a 1.5 MiB label; a label value may hold 63 characters)
/// are refused before they are kept: the watch that sent them fails, named, and none is counted
/// (a watch adding such ConfigMaps took the console to 2.2–2.7 GiB in 20 s while the cluster read
/// `synced ✓ ok`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_past_kubernetes_bounds_are_refused() {
    let f = fleet(2).await;
    f.fault("us-east", &FaultSpec::BigObjects).expect("fault");
    let (h, _d) = connect(&f, &["eu-west", "us-east"]).await;
    let why = cause(&h, "us-east", "carries a label of 1572").await;
    assert!(why.starts_with("ConfigMap: default/big-0"), "{why}");
    healthy(&f, &h, "eu-west").await;
    let s = h.latest();
    let c = s.cluster("us-east").expect("us-east");
    assert!(!matches!(c.state, ConnState::Synced), "{:?}", c.state);
}

/// A list whose `continue` never ends is refused after Kubernetes' own limit of 150,000 pods,
/// named, and what it brought goes (it kept the cluster `syncing` for ever with no reason, at
/// 532,000 pods and rising).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_that_never_ends_is_refused() {
    let f = fleet(2).await;
    f.fault("us-east", &FaultSpec::EndlessPages).expect("fault");
    let (h, _d) = connect(&f, &["eu-west", "us-east"]).await;
    let why = cause(
        &h,
        "us-east",
        "the list of Pod objects did not end after 150000 items (300 pages): refused",
    )
    .await;
    assert!(why.starts_with("Pod: "), "{why}");
    healthy(&f, &h, "eu-west").await;
    let s = h.latest();
    let c = s.cluster("us-east").expect("us-east");
    assert!(c.counts.pods <= 150_000, "{}", c.counts.pods);
}

/// Answers that are not the API's JSON say what came: a redirect (and where to), YAML,
/// protobuf.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_are_not_the_api_say_what_came() {
    for (fault, says) in [
        (
            FaultSpec::Redirect,
            "a redirect to https://login.example.com/sso",
        ),
        (
            FaultSpec::ContentType("yaml".into()),
            "the server answered YAML",
        ),
        (
            FaultSpec::ContentType("protobuf".into()),
            "the server answered protobuf",
        ),
    ] {
        let f = fleet(2).await;
        f.fault("us-east", &fault).expect("fault");
        let (h, _d) = connect(&f, &["eu-west", "us-east"]).await;
        let why = cause(&h, "us-east", says).await;
        assert!(
            why.contains("not the Kubernetes API's JSON"),
            "{fault:?}: {why}"
        );
        healthy(&f, &h, "eu-west").await;
        drop(h);
        f.shutdown().await;
    }
}

/// Names carrying terminal escapes (OSC 52 writes the clipboard, OSC 0 the title, CSI 2J
/// clears the screen) reach `status --services` and `--workloads` as visible text: the output
/// holds no ESC, BEL or C1 byte (kubectl's CVE-2021-25743).
#[tokio::test]
async fn no_escape_reaches_the_terminal_from_status() {
    let f = fleet(1).await;
    let store = &f.cluster("eu-west").expect("eu-west").state.store;
    for (i, name) in [
        "clip\x1b]52;c;cm0gLXJmIH4=\x07board",
        "title\x1b]0;pwned\x1b\\",
        "clear\x1b[2J\u{9b}2J",
    ]
    .iter()
    .enumerate()
    {
        // below validation, as a hostile server would send it
        store.upsert(
            "services",
            serde_json::json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": "default", "uid": format!("evil-{i}"),
                    "labels": {"x": name}},
                "spec": {"ports": [{"port": 80, "name": name}], "selector": {"app": name}}}),
        );
        store.upsert(
            "deployments.apps",
            serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": "default", "uid": format!("evil-d{i}")},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "x"}},
                    "template": {"metadata": {"labels": {"app": "x"}}}}}),
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let out = meshdeck(
        dir.path(),
        &[
            "status",
            "--kubeconfig",
            kc.to_str().expect("kc"),
            "--context",
            "eu-west",
            "--services",
            "--workloads",
        ],
    )
    .await;
    let text = output_text(&out);
    assert!(text.contains("clip\\x1b]52;c;"), "{text}");
    assert!(text.contains("title\\x1b]0;pwned"), "{text}");
    for bytes in [&out.stdout, &out.stderr] {
        let s = String::from_utf8_lossy(bytes);
        assert!(
            !s.contains(['\x1b', '\x07', '\u{9b}', '\u{9d}']),
            "an escape reached the terminal: {s:?}"
        );
    }
}

/// A `--as` that cannot travel in a header is a flag error (exit 2), not every cluster
/// unreachable (exit 5).
#[tokio::test]
async fn a_bad_as_is_a_flag_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    for bad in ["", "al\nice", "bob\x1b[2J"] {
        let out = meshdeck(dir.path(), &["status", "--as", bad]).await;
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", output_text(&out));
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(text.contains("--as <USER>"), "{text}");
    }
}
