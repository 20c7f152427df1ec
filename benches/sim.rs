//! The simulator must not be the bottleneck of later benchmarks: list latency of 5,000 pods
//! through kube-rs, and the server-side cost of one apply.
use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use meshdeck::sim::{Fleet, FleetSpec};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (fleet, client) = rt.block_on(async {
        let fleet = Fleet::start(FleetSpec {
            clusters: 1,
            pods_per_cluster: Some(5000),
            ..FleetSpec::default()
        })
        .await
        .expect("fleet");
        let kc: Kubeconfig = serde_json::from_value(fleet.kubeconfig()).expect("kubeconfig");
        let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .expect("config");
        let client = kube::Client::try_from(cfg).expect("client");
        (fleet, client)
    });
    let pods: Api<Pod> = Api::all(client);
    let n = rt
        .block_on(pods.list(&ListParams::default()))
        .expect("list")
        .items
        .len();
    assert!(n >= 5000);
    let mut g = c.benchmark_group("sim");
    g.sample_size(20);
    g.bench_function("list 5000 pods via kube-rs (typed)", |b| {
        b.iter(|| {
            rt.block_on(pods.list(&ListParams::default()))
                .expect("list")
        })
    });
    g.bench_function("list 5000 pods via kube-rs, pages of 500", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut lp = ListParams::default().limit(500);
                let mut total = 0;
                loop {
                    let page = pods.list(&lp).await.expect("page");
                    total += page.items.len();
                    match page.metadata.continue_.filter(|c| !c.is_empty()) {
                        Some(t) => lp = ListParams::default().limit(500).continue_token(&t),
                        None => break total,
                    }
                }
            })
        })
    });
    g.finish();
    drop(fleet);
}

criterion_group!(benches, bench);
criterion_main!(benches);
