//! Snapshot rebuild cost: after one pod change the fleet re-derives only that cluster, so the
//! rebuild time is one `derive_cluster` over a 5,000-pod cluster (target: ≤ 20 ms).
use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::Pod;
use meshdeck::fleet::slim::SlimPod;
use meshdeck::model::raw::*;
use meshdeck::model::{ClusterInput, ConnState, derive_cluster};

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
