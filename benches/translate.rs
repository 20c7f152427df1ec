//! Translation cost: 1,000 TrafficPolicies over 10,000 destinations (10 clusters × 1,000
//! services; targets: full ≤ 120 ms, re-translate after one policy edit ≤ 10 ms), and the
//! loader on the same 1,000 policies.
use criterion::{Criterion, criterion_group, criterion_main};
use meshdeck::policy::load_str;
use meshdeck::sim::fixture::{synthetic_policies, synthetic_snapshot};
use meshdeck::translate::{Pass, Translator, translate};
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
    // One edit, then the kept translator: only what the edited policy can touch is redone.
    // p0 names one service; p7 selects a team label across a cluster.
    for (i, what) in [(0, "one service"), (7, "a team label")] {
        let t = Translator::new(&snap);
        let mut edited = loaded.policies.clone();
        let (_, first) = t.translate_with_pass(&edited);
        assert_eq!(first, Pass::Full);
        let edit = |edited: &mut Vec<meshdeck::policy::Policy>, n: u32| {
            if let meshdeck::policy::Spec::Traffic(tp) = &mut edited[i].spec {
                tp.policy.request_timeout = Some(format!("{}s", n % 50 + 1));
            }
        };
        edit(&mut edited, 1);
        let (out, pass) = t.translate_with_pass(&edited);
        assert!(matches!(pass, Pass::Incremental { .. }), "{pass:?}");
        assert_eq!(out.objects, translate(&edited, &snap).objects);
        eprintln!("edit of p{i} ({what}): {pass:?}");
        g.bench_function(
            format!("re-translate after editing a policy on {what} (incremental)"),
            |b| {
                let mut n = 1u32;
                b.iter(|| {
                    n += 1;
                    edit(&mut edited, n);
                    t.translate_with(&edited, |out, _| out.objects.len())
                })
            },
        );
    }
    // What an owned answer costs on top: a copy of the 10,900 objects, and freeing it.
    let t = Translator::new(&snap);
    let mut edited = loaded.policies.clone();
    t.translate(&edited);
    g.bench_function(
        "re-translate after editing p0, owned copy (translate)",
        |b| {
            let mut n = 1u32;
            b.iter(|| {
                n += 1;
                if let meshdeck::policy::Spec::Traffic(tp) = &mut edited[0].spec {
                    tp.policy.request_timeout = Some(format!("{}s", n % 50 + 1));
                }
                t.translate(&edited)
            })
        },
    );
    g.bench_function("index the fleet (Translator::new)", |b| {
        b.iter(|| Translator::new(&snap))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
