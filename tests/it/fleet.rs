//! The live fleet against simulated clusters over real HTTPS: sync, change propagation, faults,
//! expired watches, viewer contexts, and kubeconfig errors.

use crate::common::*;
use meshdeck::fleet::{self, Selection};
use meshdeck::model::ConnState;
use meshdeck::sim::{FaultSpec, Fleet, FleetSpec};
use std::sync::Arc;
use std::time::Duration;

fn truth(f: &Fleet, cluster: &str, key: &str) -> usize {
    f.cluster(cluster).expect("cluster").state.store.count(key)
}

#[tokio::test]
async fn three_clusters_sync_with_counts_equal_to_the_truth() {
    let f = fleet(3).await;
    let (mut h, _d) = connect(&f, &["eu-west", "us-east", "ap-south"]).await;
    assert!(h.wait_synced(Duration::from_secs(10)).await, "all synced");
    let s = h.latest();
    assert_eq!(s.clusters.len(), 3);
    for c in &s.clusters {
        assert_eq!(c.state, ConnState::Synced);
        assert_eq!(c.counts.pods, truth(&f, &c.name, "pods"), "{}", c.name);
        assert_eq!(
            c.counts.services,
            truth(&f, &c.name, "services"),
            "{}",
            c.name
        );
        assert_eq!(
            c.counts.namespaces,
            truth(&f, &c.name, "namespaces"),
            "{}",
            c.name
        );
        assert_eq!(
            c.counts.workloads,
            truth(&f, &c.name, "deployments.apps") + truth(&f, &c.name, "statefulsets.apps")
        );
        // the third cluster also carries two planted mistakes for the analysis
        let planted = if c.name == f.names()[2] { 2 } else { 0 };
        assert_eq!(
            c.counts.istio_objects,
            4 + planted,
            "gateway, 2 virtual services, 1 destination rule (+ a VirtualService and an AuthorizationPolicy)"
        );
        assert_eq!(
            c.version.as_deref(),
            Some(
                meshdeck::sim::scenario::k8s_version(
                    f.names().iter().position(|n| *n == c.name).expect("index")
                )
                .as_str()
            )
        );
        let mesh = &c.meshes[0];
        assert_eq!(mesh.name, format!("istiod-istio-system-{}", c.name));
        assert_eq!(
            mesh.trust_domain.as_deref(),
            Some(format!("{}.local", c.name).as_str())
        );
        assert!(mesh.injected_namespaces.contains(&"bookstore".to_string()));
        assert!(!mesh.injected_namespaces.contains(&"legacy".to_string()));
    }
    // the planted faults are found, with their reasons
    let us = s.cluster("us-east").expect("us-east");
    assert_eq!(
        us.meshes[0].version,
        meshdeck::sim::scenario::ISTIO_OLD_VERSION
    );
    let fraud = us
        .workloads
        .iter()
        .find(|w| w.name == "fraud-check")
        .expect("fraud-check");
    assert_eq!(
        fraud.health.reasons,
        vec!["no sidecar in injected namespace payments"]
    );
    let eu = s.cluster("eu-west").expect("eu-west");
    let details = eu
        .workloads
        .iter()
        .find(|w| w.name == "details")
        .expect("details");
    assert_eq!(details.health.level, meshdeck::model::Level::Warning);
    let reviews = eu
        .services
        .iter()
        .find(|v| v.name == "reviews")
        .expect("reviews svc");
    assert_eq!(
        reviews.workloads,
        vec!["reviews-v1", "reviews-v2", "reviews-v3"]
    );
    assert!(reviews.in_mesh);
    assert!(
        reviews
            .istio_refs
            .contains(&"VirtualService/bookstore/reviews".to_string()),
        "{:?}",
        reviews.istio_refs
    );
    assert!(
        reviews
            .istio_refs
            .contains(&"DestinationRule/bookstore/reviews".to_string())
    );
    let legacy = eu
        .services
        .iter()
        .find(|v| v.name == "legacy-billing")
        .expect("legacy");
    assert!(!legacy.in_mesh);
    let ap = s.cluster("ap-south").expect("ap-south");
    let ratings = ap
        .workloads
        .iter()
        .find(|w| w.name == "ratings")
        .expect("ratings");
    assert!(
        ratings
            .health
            .reasons
            .iter()
            .any(|r| r.contains("CrashLoopBackOff"))
    );
    // the cache keeps one copy of a pod's repeated strings: two pods of one ReplicaSet share
    // their namespace, owner, service account, phase, labels and images
    let mut by_owner: std::collections::HashMap<
        String,
        Vec<&Arc<meshdeck_core::model::raw::RawPod>>,
    > = Default::default();
    for p in &eu.pods {
        if let Some((_, n)) = &p.raw.owner {
            by_owner.entry(n.to_string()).or_default().push(&p.raw);
        }
    }
    let (a, b) = by_owner
        .values()
        .find_map(|v| (v.len() >= 2).then(|| (v[0], v[1])))
        .expect("a ReplicaSet with two pods");
    let owner = |p: &meshdeck_core::model::raw::RawPod| p.owner.clone().expect("owner");
    assert!(Arc::ptr_eq(&a.namespace, &b.namespace), "namespace shared");
    assert!(Arc::ptr_eq(&owner(a).1, &owner(b).1), "owner name shared");
    assert!(
        Arc::ptr_eq(&a.service_account, &b.service_account),
        "service account shared"
    );
    assert!(Arc::ptr_eq(&a.phase, &b.phase), "phase shared");
    assert!(Arc::ptr_eq(&a.labels, &b.labels), "labels shared");
    assert!(
        Arc::ptr_eq(&a.containers[0].image, &b.containers[0].image),
        "image shared"
    );
}

/// A first list shows its rows page by page while the cluster syncs.
#[tokio::test]
async fn a_first_list_shows_its_pages_while_syncing() {
    let f = fleet_with(FleetSpec {
        clusters: 1,
        pods_per_cluster: Some(2_000),
        bookmark_interval: Duration::from_millis(300),
        ..FleetSpec::default()
    })
    .await;
    let total = truth(&f, "eu-west", "pods");
    assert!(total >= 2_000, "four pages of 500 at least: {total}");
    // every request waits 1.5 s: the pod list's four pages take 6 s or more
    f.fault("eu-west", &FaultSpec::Latency(1_500))
        .expect("latency");
    let (mut h, _d) = connect(&f, &["eu-west"]).await;
    let s = until(&mut h, 30, |s| {
        s.cluster("eu-west")
            .is_some_and(|c| matches!(c.state, ConnState::Syncing { .. }) && c.counts.pods > 0)
    })
    .await;
    let c = s.cluster("eu-west").expect("c");
    assert!(
        matches!(c.state, ConnState::Syncing { .. }) && c.counts.pods > 0 && c.counts.pods < total,
        "some pages of pods shown while syncing: {:?}, {} of {total}",
        c.state,
        c.counts.pods
    );
    assert_eq!(c.counts.pods % 500, 0, "whole pages: {}", c.counts.pods);
    assert!(h.wait_synced(Duration::from_secs(60)).await, "synced");
    assert_eq!(h.latest().cluster("eu-west").expect("c").counts.pods, total);
    // (a re-list keeps filling a buffer that replaces the rows when done: the watcher's
    // code for it is unchanged and `expired_watches_relist_without_duplicates` covers it)
}

#[tokio::test]
async fn a_change_in_the_cluster_reaches_the_snapshot() {
    let f = fleet(2).await;
    let (mut h, _d) = connect(&f, &["eu-west", "us-east"]).await;
    assert!(h.wait_synced(Duration::from_secs(10)).await);
    let before = h.latest().cluster("eu-west").expect("c").counts.pods;
    let store = &f.cluster("eu-west").expect("c").state.store;
    let victim = store.list("pods", Some("bookstore")).1[0].name.clone();
    store.remove("pods", "bookstore", &victim);
    let s = until(&mut h, 5, |s| {
        s.cluster("eu-west")
            .is_some_and(|c| c.counts.pods == before - 1)
    })
    .await;
    let c = s.cluster("eu-west").expect("c");
    assert_eq!(c.counts.pods, before - 1);
    assert!(!c.pods.iter().any(|p| p.name() == victim));
}

#[tokio::test]
async fn a_dead_cluster_turns_stale_while_the_others_keep_updating_and_recovers() {
    let f = fleet(3).await;
    let (mut h, _d) = connect(&f, &["eu-west", "us-east", "ap-south"]).await;
    assert!(h.wait_synced(Duration::from_secs(10)).await);
    let pods_us = h.latest().cluster("us-east").expect("c").counts.pods;
    f.fault("us-east", &FaultSpec::Down).expect("down");
    let t = tokio::time::Instant::now();
    let s = until(&mut h, 5, |s| {
        s.cluster("us-east").is_some_and(|c| c.state.is_stale())
    })
    .await;
    let us = s.cluster("us-east").expect("c");
    assert!(
        matches!(us.state, ConnState::Stale { .. }),
        "stale within 5 s, got {:?}",
        us.state
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    // the last known data stays, marked stale
    assert_eq!(us.counts.pods, pods_us);
    assert!(us.workloads.iter().all(|w| w.health.stale.is_some()));
    assert!(us.state.error().is_some_and(|e| !e.is_empty()));
    // the others keep updating
    let store = &f.cluster("eu-west").expect("c").state.store;
    let before = s.cluster("eu-west").expect("c").counts.pods;
    let victim = store.list("pods", Some("bookstore")).1[0].name.clone();
    store.remove("pods", "bookstore", &victim);
    let s = until(&mut h, 5, |s| {
        s.cluster("eu-west")
            .is_some_and(|c| c.counts.pods == before - 1)
    })
    .await;
    assert_eq!(s.cluster("eu-west").expect("c").counts.pods, before - 1);
    assert_eq!(s.cluster("eu-west").expect("c").state, ConnState::Synced);
    // back up: synced again within 5 s
    f.fault("us-east", &FaultSpec::Up).expect("up");
    let t = tokio::time::Instant::now();
    let s = until(&mut h, 5, |s| {
        s.cluster("us-east")
            .is_some_and(|c| c.state == ConnState::Synced)
    })
    .await;
    assert_eq!(
        s.cluster("us-east").expect("c").state,
        ConnState::Synced,
        "synced again"
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(
        s.cluster("us-east")
            .expect("c")
            .workloads
            .iter()
            .all(|w| w.health.stale.is_none())
    );
}

#[tokio::test]
async fn expired_watches_relist_without_duplicates() {
    let f = fleet(1).await;
    let (mut h, _d) = connect(&f, &["eu-west"]).await;
    assert!(h.wait_synced(Duration::from_secs(10)).await);
    let lists_before = f
        .requests("eu-west")
        .expect("log")
        .iter()
        .filter(|e| e.path == "/api/v1/pods" && !e.query.contains("watch"))
        .count();
    f.fault("eu-west", &FaultSpec::ExpireWatches)
        .expect("expire");
    // a change after the expiry must still arrive, exactly once
    let store = &f.cluster("eu-west").expect("c").state.store;
    let victim = store.list("pods", Some("bookstore")).1[0].name.clone();
    tokio::time::sleep(Duration::from_millis(500)).await;
    store.remove("pods", "bookstore", &victim);
    let want = truth(&f, "eu-west", "pods");
    let s = until(&mut h, 5, |s| {
        s.cluster("eu-west")
            .is_some_and(|c| c.counts.pods == want && c.state == ConnState::Synced)
    })
    .await;
    let c = s.cluster("eu-west").expect("c");
    assert_eq!(c.counts.pods, want);
    let mut names: Vec<&str> = c.pods.iter().map(|p| p.name()).collect();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n, "no duplicate pods after the re-list");
    let lists_after = f
        .requests("eu-west")
        .expect("log")
        .iter()
        .filter(|e| e.path == "/api/v1/pods" && !e.query.contains("watch"))
        .count();
    assert!(
        lists_after > lists_before,
        "the watcher re-listed pods after the 410"
    );
}

#[tokio::test]
async fn a_viewer_context_syncs_and_sends_no_writes() {
    let f = fleet(1).await;
    let (mut h, _d) = connect(&f, &["eu-west-viewer"]).await;
    assert!(h.wait_synced(Duration::from_secs(10)).await);
    let s = h.latest();
    assert_eq!(
        s.clusters[0].name, "eu-west",
        "the cluster keeps its name under any context"
    );
    assert_eq!(s.clusters[0].context, "eu-west-viewer");
    assert!(s.clusters[0].counts.pods > 0);
    let log = f.requests("eu-west").expect("log");
    assert!(log.iter().any(|e| e.user == "viewer"));
    assert!(
        log.iter().all(|e| !e.is_write()),
        "only reads: {:?}",
        log.iter().filter(|e| e.is_write()).collect::<Vec<_>>()
    );
    // never Secrets
    assert!(!log.iter().any(|e| e.path.contains("secrets")));
}

#[tokio::test]
async fn bad_kubeconfigs_and_unknown_contexts_name_the_file_and_context() {
    let f = fleet(1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kc.yaml");
    f.write_kubeconfig(&kc).expect("write");
    let e = fleet::kubeconfig::targets(
        std::slice::from_ref(&kc),
        &Selection::Named(vec!["nope".into()]),
    )
    .await
    .expect_err("unknown context")
    .to_string();
    assert!(
        e.contains("context \"nope\" not found")
            && e.contains(&kc.display().to_string())
            && e.contains("eu-west-viewer"),
        "{e}"
    );
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: v1\nclusters: [\n").expect("write");
    let e = format!(
        "{:#}",
        fleet::kubeconfig::targets(std::slice::from_ref(&bad), &Selection::Current)
            .await
            .expect_err("bad yaml")
    );
    assert!(e.contains(&bad.display().to_string()), "{e}");
    let missing = dir.path().join("missing.yaml");
    let e = fleet::kubeconfig::targets(std::slice::from_ref(&missing), &Selection::Current)
        .await
        .expect_err("missing")
        .to_string();
    assert!(
        e.contains("does not exist") && e.contains(&missing.display().to_string()),
        "{e}"
    );
}

/// A 403 blip keeps the rows (it used to wipe them and read `synced` and empty for a minute)
/// and clears by itself; a 401 blip is an auth error while it lasts and clears by itself (it
/// used to stay `auth-error` for good while the data kept updating).
#[tokio::test]
async fn a_401_or_403_that_clears_recovers_by_itself_and_wipes_nothing() {
    let f = fleet(1).await;
    let (mut h, _d) = connect(&f, &["eu-west"]).await;
    assert!(h.wait_synced(Duration::from_secs(10)).await);
    let pods = h.latest().cluster("eu-west").expect("c").counts.pods;
    assert!(pods > 0);
    let served = |code: u16| {
        f.requests("eu-west")
            .expect("log")
            .iter()
            .any(|e| e.status == code && e.path.ends_with("/pods"))
    };

    // 403: every request refused, the live watches end and re-list into the refusal
    f.fault("eu-west", &FaultSpec::Error(403)).expect("fault");
    f.fault("eu-west", &FaultSpec::ExpireWatches)
        .expect("expire");
    assert!(
        eventually(10, || served(403)).await,
        "the re-list met the 403"
    );
    // the next snapshot shows what the fleet made of it (the refusal marks the cache changed)
    let seq = h.latest().seq;
    let s = until(&mut h, 10, |s| s.seq > seq).await;
    assert!(s.seq > seq, "a snapshot after the 403");
    let c = s.cluster("eu-west").expect("c");
    assert_eq!(c.counts.pods, pods, "a 403 wipes no rows");
    f.fault("eu-west", &FaultSpec::Clear).expect("clear");
    f.fault("eu-west", &FaultSpec::ExpireWatches)
        .expect("expire");
    let s = until(&mut h, 10, |s| {
        s.cluster("eu-west")
            .is_some_and(|c| c.state == ConnState::Synced && c.counts.pods == pods)
    })
    .await;
    let c = s.cluster("eu-west").expect("c");
    assert_eq!(
        (&c.state, c.counts.pods),
        (&ConnState::Synced, pods),
        "recovered (by design within the 3 s reconnect backoff; the test allows 10 s on a busy machine)"
    );

    // 401: an auth error while it lasts, then synced again without a restart
    f.clear_requests_all();
    f.fault("eu-west", &FaultSpec::Error(401)).expect("fault");
    f.fault("eu-west", &FaultSpec::ExpireWatches)
        .expect("expire");
    let s = until(&mut h, 10, |s| {
        s.cluster("eu-west")
            .is_some_and(|c| matches!(c.state, ConnState::AuthError { .. }))
    })
    .await;
    assert!(
        matches!(
            s.cluster("eu-west").expect("c").state,
            ConnState::AuthError { .. }
        ),
        "{:?}",
        s.cluster("eu-west").map(|c| c.state.clone())
    );
    f.fault("eu-west", &FaultSpec::Clear).expect("clear");
    let s = until(&mut h, 10, |s| {
        s.cluster("eu-west")
            .is_some_and(|c| c.state == ConnState::Synced)
    })
    .await;
    assert_eq!(
        s.cluster("eu-west").expect("c").state,
        ConnState::Synced,
        "a 401 that cleared recovers (reconnect backoff ≤ 3 s; 10 s allowed here)"
    );
}

/// Slow is not dead: with 3 s of latency on every answer the watch events still arrive and the
/// cluster stays synced, showing the latency (it used to turn stale, then unreachable, because
/// the ping gave up after 2 s).
#[tokio::test]
async fn three_seconds_of_latency_is_not_stale() {
    let f = fleet(1).await;
    let (mut h, _d) = connect(&f, &["eu-west"]).await;
    assert!(h.wait_synced(Duration::from_secs(10)).await);
    let before = h.latest().cluster("eu-west").expect("c").counts.pods;
    f.fault("eu-west", &FaultSpec::Latency(3000))
        .expect("fault");
    let store = &f.cluster("eu-west").expect("c").state.store;
    let victim = store.list("pods", Some("bookstore")).1[0].name.clone();
    store.remove("pods", "bookstore", &victim);
    // watch until the slow ping has answered twice; no snapshot on the way may be stale
    let mut seen_stale = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut pinged_slow = false;
    let mut event_arrived = false;
    while tokio::time::Instant::now() < deadline && !(pinged_slow && event_arrived) {
        let s = h.latest();
        let c = s.cluster("eu-west").expect("c");
        if c.state != ConnState::Synced {
            seen_stale = Some(c.state.clone());
            break;
        }
        pinged_slow |= c.latency_ms.is_some_and(|l| l >= 3000);
        event_arrived |= c.counts.pods == before - 1;
        let _ = tokio::time::timeout(Duration::from_millis(500), h.snapshots.changed()).await;
    }
    assert_eq!(seen_stale, None, "slow is not dead");
    assert!(event_arrived, "the watch event arrived despite the latency");
    assert!(
        pinged_slow,
        "the latency is shown: {:?}",
        h.latest().cluster("eu-west").map(|c| c.latency_ms)
    );
    f.fault("eu-west", &FaultSpec::Clear).expect("clear");
}

/// Under churn (restarts, scaling, rollouts every 20 ms in each cluster) and an expired watch,
/// the fleet follows pod, endpoint, workload and ReplicaSet events incrementally, and every one
/// of those views equals a full derivation of the same cache (checked inside the aggregator).
#[tokio::test]
async fn churn_is_followed_incrementally_and_equals_full_derivations() {
    let f = fleet_with(meshdeck::sim::FleetSpec {
        clusters: 2,
        churn: Some(Duration::from_millis(20)),
        bookmark_interval: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    fleet::set_verify_incremental(true);
    let (before, bad_before) = fleet::incremental_checks();
    assert_eq!(bad_before, 0, "an earlier check differed");
    let (mut h, _d) = connect(&f, &["eu-west", "us-east"]).await;
    assert!(h.wait_synced(Duration::from_secs(10)).await, "all synced");
    let enough = |n: usize| eventually(30, move || fleet::incremental_checks().0 >= before + n);
    assert!(
        enough(40).await,
        "incremental derivations happen under churn: {:?}",
        fleet::incremental_checks()
    );
    // a 410 re-lists every kind: a full derivation, then incremental again
    f.fault("eu-west", &FaultSpec::ExpireWatches)
        .expect("fault");
    let mid = fleet::incremental_checks().0;
    assert!(
        eventually(30, || fleet::incremental_checks().0 >= mid + 40).await,
        "incremental again after the re-list"
    );
    // stop the churn: the last view counts what the store holds
    f.churn_paused
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let s = until(&mut h, 10, |s| {
        s.clusters
            .iter()
            .all(|c| c.counts.pods == truth(&f, &c.name, "pods"))
    })
    .await;
    for c in &s.clusters {
        assert_eq!(c.counts.pods, truth(&f, &c.name, "pods"), "{}", c.name);
    }
    let (_, bad) = fleet::incremental_checks();
    assert_eq!(
        bad, 0,
        "an incremental view differed from a full derivation (see the log)"
    );
}
