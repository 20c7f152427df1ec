//! Snapshot rebuild cost: after one pod change the fleet re-derives only that cluster, so the
//! rebuild time is one `derive_cluster` over a 5,000-pod cluster (target: ≤ 20 ms).
use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Namespace, Pod, Service};
use meshdeck::model::raw::*;
use meshdeck::model::{ClusterInput, ConnState, derive_cluster};
use meshdeck::sim::scenario::{Scenario, populate};
use meshdeck::sim::store::Store;
use serde::de::DeserializeOwned;
use std::sync::Arc;

fn typed<T: DeserializeOwned>(store: &Store, key: &str) -> Vec<T> {
    store
        .list(key, None)
        .1
        .iter()
        .map(|o| serde_json::from_slice(&o.bytes).expect("typed"))
        .collect()
}

fn conv<K, R>(v: &[K]) -> Vec<Arc<R>>
where
    for<'a> R: From<&'a K>,
{
    v.iter().map(|k| Arc::new(R::from(k))).collect()
}

fn input(pods: usize) -> ClusterInput {
    let store = Store::new(1_000_000);
    populate(&store, Scenario::Demo, 0, "bench", 7, Some(pods));
    let mut workloads: Vec<Arc<RawWorkload>> =
        conv(&typed::<Deployment>(&store, "deployments.apps"));
    workloads.extend(conv::<StatefulSet, RawWorkload>(&typed(
        &store,
        "statefulsets.apps",
    )));
    ClusterInput {
        name: "bench".into(),
        namespaces: conv::<Namespace, RawNamespace>(&typed(&store, "namespaces")),
        services: conv::<Service, RawService>(&typed(&store, "services")),
        endpoints: conv::<Endpoints, RawEndpoints>(&typed(&store, "endpoints")),
        pods: conv::<Pod, RawPod>(&typed(&store, "pods")),
        workloads,
        replicasets: conv::<ReplicaSet, RawReplicaSet>(&typed(&store, "replicasets.apps")),
        configmaps: conv::<ConfigMap, RawConfigMap>(&typed(&store, "configmaps")),
        ..Default::default()
    }
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
    g.bench_function("trim one Pod into RawPod", |b| {
        b.iter(|| RawPod::from(&pod))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
