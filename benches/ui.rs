//! The console at fleet scale: 20 clusters x 5,000 pods (100k rows in the pods view).
//! Frame render time (target p99 <= 2 ms) and filter keystroke latency (target <= 20 ms).
//! Criterion gives means; the p50/p99 lines come from 500 timed frames after it.
use chrono::Utc;
use criterion::{Criterion, criterion_group};
use meshdeck::model::{ConnState, Snapshot};
use meshdeck::sim::fixture::demo_snapshot;
use meshdeck::ui::app::App;
use meshdeck::ui::{draw, keymap, theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::hint::black_box;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

#[path = "common/frames.rs"]
mod frames;

fn fleet() -> Arc<Snapshot> {
    static S: OnceLock<Arc<Snapshot>> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(demo_snapshot(20, Some(5000), Utc::now(), |_| {
            ConnState::Synced
        }))
    })
    .clone()
}

fn app() -> App {
    let mut a = App::new(
        fleet(),
        keymap::load("default", None).expect("keymap"),
        theme::load("default", None).expect("theme"),
        false,
    );
    a.run_command("po");
    a
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("ui");
    g.sample_size(30);
    let mut a = app();
    let rows = a.rows.len();
    assert!(rows >= 100_000, "{rows} rows");
    let mut term = Terminal::new(TestBackend::new(160, 48)).expect("terminal");
    a.set_size(160, 48);
    g.bench_function(format!("render pods view, {rows} rows, 160x48"), |b| {
        b.iter(|| term.draw(|f| draw::draw(f, &a)).map(|_| ()))
    });
    let mut i = 0;
    g.bench_function(format!("filter keystroke, {rows} rows"), |b| {
        b.iter(|| {
            i += 1;
            a.set_filter(if i % 2 == 0 { "revi" } else { "revie" });
            black_box(a.rows.len())
        })
    });
    a.set_filter("");
    g.bench_function(format!("new snapshot, {rows} rows, no filter"), |b| {
        b.iter(|| {
            a.on_snapshot(fleet());
            black_box(a.rows.len())
        })
    });
    g.bench_function(format!("sort by health, {rows} rows"), |b| {
        b.iter(|| {
            a.run_command("po");
            a.on_key(crossterm::event::KeyEvent::new(
                crossterm::event::KeyCode::Char('S'),
                crossterm::event::KeyModifiers::SHIFT,
            ));
            black_box(a.rows.len())
        })
    });
    g.finish();
}

fn percentiles() {
    let mut a = app();
    a.set_size(160, 48);
    let mut term = Terminal::new(TestBackend::new(160, 48)).expect("terminal");
    let [p50, p99, max] = frames::percentiles(&mut a, &mut term, 500);
    println!(
        "ui/render pods view 100k rows 160x48: p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms (500 frames)"
    );
    let typed = ["r", "re", "rev", "revi", "revie", "review", "reviews"];
    // the session's very first keystroke: with no keys (typed at once), it builds every
    // cluster's; typed after the filter line opened (`/` starts a helper thread), it only matches
    let mut cold = app();
    cold.warm_keys_at = usize::MAX;
    let t = Instant::now();
    cold.set_filter("r");
    let cold_ms = t.elapsed().as_secs_f64() * 1000.0;
    drop(cold);
    let t = Instant::now();
    a.on_key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('/'),
        crossterm::event::KeyModifiers::NONE,
    ));
    let open_ms = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    while a.warming_keys() {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    let built_ms = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    a.set_filter("r");
    println!(
        "ui/filter first keystroke of the session: {cold_ms:.2} ms building the keys itself; \
         `/` {open_ms:.2} ms, keys ready {built_ms:.1} ms later, then `r` {:.2} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); typed.len()];
    let mut ks: Vec<f64> = Vec::new();
    // each round starts after a new snapshot in which one cluster changed (as under churn)
    let mut next = (*fleet()).clone();
    for round in 0..10 {
        a.set_filter("");
        let i = round % next.clusters.len();
        next.clusters[i] = Arc::new((*next.clusters[i]).clone());
        next.seq += 1;
        a.on_snapshot(Arc::new(next.clone()));
        for (i, f) in typed.iter().enumerate() {
            let t = Instant::now();
            a.set_filter(f);
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            per[i].push(ms);
            ks.push(ms);
        }
    }
    for (f, v) in typed.iter().zip(&per) {
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        println!("ui/filter `{f}`: mean {mean:.2} ms");
    }
    ks.sort_by(|x, y| x.total_cmp(y));
    println!(
        "ui/filter keystroke 100k rows, one cluster changed before each word: p50 {:.2} ms, p99 {:.2} ms (70 keystrokes)",
        ks[ks.len() / 2],
        ks[((ks.len() - 1) as f64 * 0.99) as usize]
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    percentiles();
    Criterion::default().configure_from_args().final_summary();
}
