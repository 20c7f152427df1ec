//! Translation cost: 1,000 TrafficPolicies over 10,000 destinations (10 clusters × 1,000
//! services; targets: full ≤ 200 ms, re-translate after one policy edit ≤ 10 ms), and the
//! loader on the same 1,000 policies.
use criterion::{Criterion, criterion_group, criterion_main};
use meshdeck::policy::load_str;
use meshdeck::sim::fixture::{synthetic_policies, synthetic_snapshot};
use meshdeck::translate::{Translator, translate};
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let snap = synthetic_snapshot(10, 1000);
    let dests: usize = snap.clusters.iter().map(|c| c.services.len()).sum();
    assert!(dests >= 10_000, "{dests}");
    let text = synthetic_policies(1000, 10, 1000);
    let loaded = load_str(&text, "bench.yaml");
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics.first());
    assert_eq!(loaded.policies.len(), 1000);
    let out = translate(&loaded.policies, &snap);
    eprintln!(
        "1,000 policies over {dests} destinations: {} objects ({} from policies)",
        out.objects.len(),
        out.objects.iter().filter(|o| !o.sources.is_empty()).count()
    );

    let mut g = c.benchmark_group("translate");
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    g.bench_function("load 1,000 policies (YAML, positions, validation)", |b| {
        b.iter(|| load_str(&text, "bench.yaml"))
    });
    g.bench_function(
        "translate 1,000 policies × 10,000 destinations (index + translate)",
        |b| b.iter(|| translate(&loaded.policies, &snap)),
    );
    let t = Translator::new(&snap);
    let mut edited = loaded.policies.clone();
    g.bench_function("re-translate after one policy edit (index kept)", |b| {
        let mut n = 0u32;
        b.iter(|| {
            n += 1;
            if let meshdeck::policy::Spec::Traffic(tp) = &mut edited[0].spec {
                tp.policy.request_timeout = Some(format!("{}s", n % 50 + 1));
            }
            t.translate(&edited)
        })
    });
    g.bench_function("index the fleet (Translator::new)", |b| {
        b.iter(|| Translator::new(&snap))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
