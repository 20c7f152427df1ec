//! Analysis cost: every analyzer over 20 clusters × 500 services (each with a Deployment, a
//! pod, and — in one service in ten — a VirtualService and DestinationRule with a subset).
//! Targets: full analysis ≤ 50 ms; after one object change (a kept `Analyzer`, one cluster's
//! view replaced) ≤ 5 ms.
use criterion::{Criterion, criterion_group, criterion_main};
use meshdeck::model::raw::RawObject;
use meshdeck::sim::fixture::synthetic_snapshot;
use std::sync::Arc;

fn bench(c: &mut Criterion) {
    let mut snap = synthetic_snapshot(20, 500);
    for cl in snap.clusters.iter_mut() {
        let mut v = (**cl).clone();
        let services: Vec<(String, String)> = v
            .services
            .iter()
            .step_by(10)
            .map(|s| (s.namespace.clone(), s.name.clone()))
            .collect();
        for (ns, name) in services {
            for obj in [
                serde_json::json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {"hosts": [name], "http": [{"route": [{"destination": {"host": name, "subset": "v1"}}]}]}}),
                serde_json::json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {"host": name, "subsets": [{"name": "v1", "labels": {"app": name}}]}}),
            ] {
                if let Some(o) = RawObject::from_value(&obj) {
                    v.istio.push(Arc::new(o));
                }
            }
        }
        *cl = Arc::new(v);
    }
    let n = meshdeck::analyze::analyze(&snap).len();
    eprintln!("20 clusters × 500 services: {n} findings");
    let mut g = c.benchmark_group("analyze");
    g.sample_size(20);
    g.bench_function("full analysis, 20 clusters × 500 services", |b| {
        b.iter(|| meshdeck::analyze::analyze(&snap))
    });
    // One object changes in one cluster: the fleet publishes a new view of that cluster only
    // (here: cluster 0 toggles between its view and one with one object less).
    let mut a = meshdeck::analyze::Analyzer::new();
    a.analyze(&snap);
    let orig = snap.clusters[0].clone();
    let mut v = (*orig).clone();
    v.istio.pop();
    let alt = Arc::new(v);
    let mut edited = snap.clone();
    let mut n = 0usize;
    g.bench_function(
        "after one object change, kept Analyzer, 20 clusters × 500 services",
        |b| {
            b.iter(|| {
                n += 1;
                edited.clusters[0] = if n % 2 == 1 {
                    alt.clone()
                } else {
                    orig.clone()
                };
                let (found, redone) = a.analyze_counting(&edited);
                assert_eq!(redone, 1);
                found
            })
        },
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
