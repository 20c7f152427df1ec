//! Snapshot rebuild cost. A (re-)list derives a cluster in full (`derive_cluster`); a watch
//! event of a pod is followed by the kept `Deriver` (issue #20's target: ≤ 0.2 ms at 5,000 pods
//! per cluster, the published view of the last event still held, as the UI holds it).
use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::Pod;
use meshdeck::fleet::slim::SlimPod;
use meshdeck::model::raw::*;
use meshdeck::model::{ClusterInput, ConnState, Delta, Deriver, derive_cluster};
use std::sync::Arc;

fn input(pods: usize) -> ClusterInput {
    meshdeck::sim::fixture::demo_input(0, "bench", Some(pods), 7, chrono::Utc::now())
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("model");
    for pods in [500usize, 5000] {
        let inp = input(pods);
        assert!(inp.pods.len() >= pods);
        g.bench_function(format!("derive_cluster {pods} pods"), |b| {
            b.iter(|| derive_cluster(&inp, ConnState::Synced))
        });
    }
    for pods in [500usize, 5000] {
        let inp = input(pods);
        let mut d = Deriver::new(&inp, ConnState::Synced);
        let victim = inp.pods[inp.pods.len() / 2].clone();
        let key = (victim.namespace.to_string(), victim.name.to_string());
        let mut n = 0;
        let mut held = d.view();
        g.bench_function(format!("one pod event -> new view, {pods} pods"), |b| {
            b.iter(|| {
                // a container restarts: the pod's row, its workload, the services it backs,
                // the mesh's counts and the cluster's health follow
                n += 1;
                let mut p = (*victim).clone();
                if let Some(c) = p.containers.first_mut() {
                    c.restarts = n;
                }
                let delta = Delta {
                    pods: vec![(key.clone(), Some(Arc::new(p)))],
                    ..Default::default()
                };
                d.apply(&delta).expect("incremental");
                held = d.view();
                held.counts.pods
            })
        });
    }
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p", "namespace": "n", "annotations": {"sidecar.istio.io/status": "{}"}},
        "spec": {"containers": [{"name": "app", "image": "a:1"}, {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.30.3"}]},
        "status": {"phase": "Running"}
    }))
    .expect("pod");
    let json = serde_json::to_vec(&pod).expect("json");
    g.bench_function("decode one Pod (k8s-openapi)", |b| {
        b.iter(|| serde_json::from_slice::<Pod>(&json).expect("pod"))
    });
    g.bench_function("decode one Pod as SlimPod and trim into RawPod", |b| {
        b.iter(|| RawPod::from(&serde_json::from_slice::<SlimPod>(&json).expect("slim")))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
