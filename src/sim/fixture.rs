//! A fleet snapshot made without a network: the demo scenario's objects, converted as the
//! fleet's watchers convert them. Same seed and moment, same snapshot: the console's snapshot
//! tests, the benches and the screenshots of fixed data use it.

use crate::fleet::{ISTIO_KINDS, POLICY_KINDS};
use crate::model::raw::*;
use crate::model::{ClusterInput, ConnState, Snapshot, derive_cluster};
use chrono::{DateTime, Utc};
use meshdeck_sim::scenario::{Scenario, cluster_names, populate_at};
use meshdeck_sim::store::Store;
use std::sync::Arc;

/// Every object of the store the fleet would watch, through the one ingest.
fn ingest_store(store: &Store, input: &mut ClusterInput) {
    let mut keys: Vec<String> = [
        "namespaces",
        "services",
        "endpoints",
        "pods",
        "deployments.apps",
        "statefulsets.apps",
        "replicasets.apps",
        "configmaps",
    ]
    .iter()
    .map(|k| k.to_string())
    .collect();
    for (group, _, _, plural) in ISTIO_KINDS.iter().chain(POLICY_KINDS) {
        keys.push(format!("{plural}.{group}"));
    }
    for key in keys {
        for o in store.list(&key, None).1.iter() {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&o.bytes) {
                // the simulator's own objects: what does not decode is its bug, shown in tests
                if let Err(e) = crate::model::ingest::ingest(input, &v) {
                    tracing::warn!("fixture: {e}");
                }
            }
        }
    }
    crate::model::ingest::sort(input);
}

/// One cluster's watcher input for the demo scenario.
pub fn demo_input(
    idx: usize,
    name: &str,
    pods: Option<usize>,
    seed: u64,
    now: DateTime<Utc>,
) -> ClusterInput {
    let store = Store::new(1_000_000);
    populate_at(&store, Scenario::Demo, idx, name, seed, pods, now);
    let mut input = ClusterInput {
        name: name.into(),
        context: name.into(),
        server: format!("https://127.0.0.1:{}", 6443 + idx),
        user: "admin".into(),
        version: Some("v1.34.1".into()),
        latency_ms: Some(3 + idx as u64),
        ..Default::default()
    };
    ingest_store(&store, &mut input);
    input
}

/// The golden signals of the demo fleet as the simulator's traffic makes them (its ground
/// truth, p99 included), as if a Prometheus had answered at `now`; clusters for which `stale`
/// holds answered nothing this time (their last rows stay, marked stale).
pub fn demo_signals(
    clusters: usize,
    now: DateTime<Utc>,
    stale: impl Fn(usize) -> bool,
) -> crate::signals_core::Signals {
    let names = cluster_names(clusters);
    let states: Vec<Arc<meshdeck_sim::ClusterState>> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let store = Store::new(1_000_000);
            populate_at(&store, Scenario::Demo, i, n, 7, None, now);
            Arc::new(meshdeck_sim::ClusterState::new(
                n.clone(),
                store,
                vec![],
                "v1.34.1".into(),
                std::time::Duration::from_secs(5),
            ))
        })
        .collect();
    let rows = meshdeck_sim::traffic::Traffic::new(states).truth();
    let at = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut s = crate::signals_core::Signals {
        window: crate::signals_core::WINDOW.into(),
        ..Default::default()
    };
    for (i, n) in names.iter().enumerate() {
        s.replace_cluster(n, rows.of_cluster(n));
        s.clusters.insert(
            n.clone(),
            crate::signals_core::SourceState {
                source: "prometheus http://prometheus.example:9090".into(),
                refreshed: Some(at.clone()),
                stale: stale(i).then(|| "no answer within 5 s".to_string()),
            },
        );
    }
    s
}

/// The demo fleet as a snapshot: `clusters` clusters, each in the state `state(i)` gives.
pub fn demo_snapshot(
    clusters: usize,
    pods: Option<usize>,
    now: DateTime<Utc>,
    state: impl Fn(usize) -> ConnState,
) -> Snapshot {
    let names = cluster_names(clusters);
    Snapshot {
        clusters: names
            .iter()
            .enumerate()
            .map(|(i, n)| Arc::new(derive_cluster(&demo_input(i, n, pods, 7, now), state(i))))
            .collect(),
        seq: 1,
    }
}

/// A large synthetic fleet for benchmarks: `clusters` clusters with istiod and an ingress
/// gateway, each with `services` in-mesh services spread over 50 namespaces (label `app=svc-N`,
/// `team=tK`), one Deployment and one injected pod behind each.
pub fn synthetic_snapshot(clusters: usize, services: usize) -> Snapshot {
    let labels = |kv: &[(&str, String)]| -> Labels {
        kv.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    };
    let svc = |ns: &str, name: &str, l: Labels, sel: Labels, port: i32, ext: Option<String>| {
        Arc::new(RawService {
            namespace: ns.into(),
            name: name.into(),
            labels: l.into(),
            selector: sel.into(),
            ports: vec![Port {
                name: "http".into(),
                port,
                protocol: "TCP".into(),
                app_protocol: None,
                ..Default::default()
            }],
            type_: "ClusterIP".into(),
            cluster_ip: String::new(),
            external: ext,
            created: None,
            export_to: None,
            rate_annotation: None,
        })
    };
    let workload = |ns: &str, name: &str, l: Labels, image: &str| {
        Arc::new(RawWorkload {
            kind: WorkloadKind::Deployment,
            namespace: ns.into(),
            name: name.into(),
            labels: l.clone().into(),
            template_labels: l.into(),
            service_account: name.into(),
            images: vec![image.into()],
            desired: 1,
            ready: 1,
            available: 1,
            updated: 1,
            created: None,
            inject_off: false,
            rate_annotation: None,
        })
    };
    let out = (0..clusters)
        .map(|c| {
            let name = format!("c{c:02}");
            let mut input = ClusterInput {
                name: name.clone(),
                context: name.clone(),
                aliases: vec![],
                server: String::new(),
                user: String::new(),
                version: None,
                latency_ms: None,
                pace: None,
                namespaces: (0..50)
                    .map(|n| {
                        Arc::new(RawNamespace {
                            name: format!("ns-{n}"),
                            labels: labels(&[("istio-injection", "enabled".into())]),
                        })
                    })
                    .collect(),
                services: vec![],
                endpoints: vec![],
                pods: vec![],
                workloads: vec![],
                replicasets: vec![],
                configmaps: vec![],
                istio: vec![],
                policies: vec![],
            };
            input.workloads.push(workload(
                "istio-system",
                "istiod",
                labels(&[("app", "istiod".into())]),
                "docker.io/istio/pilot:1.30.3",
            ));
            let gw = labels(&[("istio", "ingressgateway".into())]);
            input.services.push(svc(
                "istio-system",
                "istio-ingressgateway",
                gw.clone(),
                gw,
                15443,
                Some(format!("172.18.{c}.1")),
            ));
            for i in 0..services {
                let ns = format!("ns-{}", i % 50);
                let app = format!("svc-{i}");
                let l = labels(&[("app", app.clone()), ("team", format!("t{}", i % 20))]);
                input.services.push(svc(
                    &ns,
                    &app,
                    l.clone(),
                    labels(&[("app", app.clone())]),
                    8080,
                    None,
                ));
                input
                    .workloads
                    .push(workload(&ns, &app, l.clone(), "example/app:1"));
                input.replicasets.push(Arc::new(RawReplicaSet {
                    namespace: ns.clone(),
                    name: format!("{app}-rs"),
                    owner: Some(("Deployment".into(), app.clone())),
                }));
                input.pods.push(Arc::new(RawPod {
                    namespace: ns.as_str().into(),
                    name: format!("{app}-0").into(),
                    labels: Arc::new(l),
                    injected: true,
                    opted_out: false,
                    ambient: false,
                    containers: vec![RawContainer {
                        name: "istio-proxy".into(),
                        image: "docker.io/istio/proxyv2:1.30.3".into(),
                        ready: true,
                        restarts: 0,
                        waiting: None,
                    }],
                    phase: "Running".into(),
                    ready: true,
                    owner: Some(("ReplicaSet".into(), format!("{app}-rs").into())),
                    service_account: app.as_str().into(),
                    ip: format!("10.{c}.{}.{}", i / 250, i % 250).as_str().into(),
                    node: "".into(),
                    created: None,
                    deleting: false,
                }));
            }
            Arc::new(derive_cluster(&input, ConnState::Synced))
        })
        .collect();
    Snapshot {
        clusters: out,
        seq: 1,
    }
}

/// `n` TrafficPolicies over a [`synthetic_snapshot`] (as one YAML stream): most name one service
/// by reference, some select a team by label; fields rotate through the whole policy API.
pub fn synthetic_policies(n: usize, clusters: usize, services: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let c = i % clusters.max(1);
        let s = (i * 7) % services.max(1);
        let dest = if i % 10 < 7 {
            format!(
                "  - kubeServiceRefs: {{services: [{{name: svc-{s}, namespace: ns-{}, clusterName: c{c:02}}}]}}\n",
                s % 50
            )
        } else {
            format!(
                "  - kubeServiceMatcher: {{labels: {{team: t{}}}, clusters: [c{c:02}]}}\n",
                i % 20
            )
        };
        let policy = match i % 6 {
            0 => "    requestTimeout: 3s\n".to_string(),
            1 => format!(
                "    retries: {{attempts: {}, perTryTimeout: 1s}}\n",
                i % 5 + 1
            ),
            2 => "    faultInjection: {fixedDelay: 2s, percentage: 1}\n".to_string(),
            3 => "    outlierDetection: {consecutiveErrors: 3}\n".to_string(),
            4 => format!(
                "    trafficShift:\n      destinations:\n      - {{kubeService: {{name: svc-{s}, namespace: ns-{}, clusterName: c{c:02}, subset: {{team: t{}}}}}, weight: 100}}\n",
                s % 50,
                s % 20
            ),
            _ => "    headerManipulation: {appendRequestHeaders: {x-policy: bench}}\n".to_string(),
        };
        let matcher = if i % 3 == 0 {
            format!("  httpRequestMatchers: [{{uri: {{prefix: /p{i}}}}}]\n")
        } else {
            String::new()
        };
        out.push_str(&format!(
            "---\napiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {{name: p{i}, namespace: ns-{}, creationTimestamp: \"2026-01-01T00:00:{:02}Z\"}}\nspec:\n  destinationSelector:\n{dest}{matcher}  policy:\n{policy}",
            i % 50,
            i % 60
        ));
    }
    out
}
