//! Golden signals at fleet scale.
//! - refresh: one shared Prometheus answering for 20 clusters x 500 services (the request-rate
//!   answer with 3 response codes per service, and the p99 answer), parsed and folded into rows;
//! - frame: the services view with RPS / ERR% / P99 columns over 100k services.
use criterion::{Criterion, criterion_group};
use meshdeck::signals_core::promql::Scope;
use meshdeck::signals_core::{Rows, Signals, SourceState, Subject, Traffic, View, prom};
use meshdeck::ui::app::App;
use meshdeck::ui::{draw, keymap, theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

#[path = "common/frames.rs"]
mod frames;

const CLUSTERS: usize = 20;
const SERVICES: usize = 500;

/// What Prometheus answers to the services' request-rate query, and to their p99 query.
fn answers() -> (String, String) {
    let mut req = String::from(r#"{"status":"success","data":{"resultType":"vector","result":["#);
    let mut p99 = req.clone();
    let mut first = true;
    for c in 0..CLUSTERS {
        for s in 0..SERVICES {
            for (code, v) in [("200", 9.5), ("503", 0.3), ("404", 0.2)] {
                if !first {
                    req.push(',');
                }
                req.push_str(&format!(
                    r#"{{"metric":{{"source_cluster":"c{c:02}","destination_service_namespace":"ns-{}","destination_service_name":"svc-{s:04}","request_protocol":"http","response_code":"{code}","grpc_response_status":""}},"value":[1764650000.1,"{v}"]}}"#,
                    s % 20
                ));
                first = false;
            }
            if c + s > 0 {
                p99.push(',');
            }
            p99.push_str(&format!(
                r#"{{"metric":{{"source_cluster":"c{c:02}","destination_service_namespace":"ns-{}","destination_service_name":"svc-{s:04}"}},"value":[1764650000.1,"48.5"]}}"#,
                s % 20
            ));
        }
    }
    req.push_str("]}}");
    p99.push_str("]}}");
    (req, p99)
}

fn fold(req: &str, p99: &str) -> Rows {
    let wanted = |c: &str| c.starts_with('c');
    let mut rows = Rows::default();
    let a = prom::vector(req.as_bytes()).expect("vector");
    prom::fold_requests(&mut rows, View::Services, &Scope::Shared, "", &wanted, &a);
    let b = prom::vector(p99.as_bytes()).expect("vector");
    prom::fold_p99(&mut rows, View::Services, &Scope::Shared, "", &wanted, &b);
    rows
}

/// Signals for every service of a synthetic 100k-service fleet.
fn signals_for(snap: &meshdeck::model::Snapshot) -> Signals {
    let mut s = Signals {
        window: "1m".into(),
        ..Signals::default()
    };
    for c in &snap.clusters {
        s.clusters.insert(
            c.name.clone(),
            SourceState {
                source: "prometheus http://prometheus.example:9090".into(),
                refreshed: Some("2026-12-02T00:00:00Z".into()),
                stale: None,
            },
        );
        for (i, v) in c.services.iter().enumerate() {
            let mut t = Traffic::default();
            t.add("http", "200", "", 10.0);
            if i % 7 == 0 {
                t.add("http", "503", "", 1.5);
            }
            t.p99_ms = Some(20.0 + (i % 50) as f64);
            s.services
                .insert(Subject::new(&c.name, &v.namespace, &v.name), t);
        }
    }
    s
}

fn bench(c: &mut Criterion) {
    let (req, p99) = answers();
    let mut g = c.benchmark_group("signals");
    g.sample_size(20);
    g.bench_function(
        format!("refresh fold, {CLUSTERS} clusters x {SERVICES} services (requests + p99 answers)"),
        |b| b.iter(|| black_box(fold(&req, &p99).services.len())),
    );
    let snap = Arc::new(meshdeck::sim::fixture::synthetic_snapshot(20, 5_000));
    let sig = Arc::new(signals_for(&snap));
    let mut a = App::new(
        snap,
        keymap::load("default", None).expect("keymap"),
        theme::load("default", None).expect("theme"),
        false,
    );
    a.on_signals(sig);
    a.run_command("svc");
    let rows = a.rows.len();
    assert!(rows >= 100_000, "{rows} rows");
    a.set_size(160, 48);
    let mut term = Terminal::new(TestBackend::new(160, 48)).expect("terminal");
    g.bench_function(
        format!("render services view with signals, {rows} rows, 160x48"),
        |b| b.iter(|| term.draw(|f| draw::draw(f, &a)).map(|_| ())),
    );
    g.finish();
    // percentiles, and what one refresh holds
    let [p50, p99_ms, _] = frames::percentiles(&mut a, &mut term, 300);
    println!(
        "signals/render services view with signals {rows} rows 160x48: p50 {p50:.3} ms, p99 {p99_ms:.3} ms (300 frames)"
    );
    let t = Instant::now();
    let rows = fold(&req, &p99);
    println!(
        "signals/refresh: answers {} KiB + {} KiB, {} service rows, one fold {:.1} ms",
        req.len() / 1024,
        p99.len() / 1024,
        rows.services.len(),
        t.elapsed().as_secs_f64() * 1000.0
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
