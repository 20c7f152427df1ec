//! Frame-time percentiles shared by the benches: a user paging through a view (25 rows down,
//! 25 up, repeated), each frame drawn and timed.
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use meshdeck::ui::app::App;
use meshdeck::ui::draw;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::time::Instant;

/// p50, p99 and max of `frames` frames, in milliseconds.
pub fn percentiles(a: &mut App, term: &mut Terminal<TestBackend>, frames: usize) -> [f64; 3] {
    let mut times: Vec<f64> = (0..frames)
        .map(|n| {
            let key = if n % 50 < 25 { 'j' } else { 'k' };
            a.on_key(KeyEvent::new(KeyCode::Char(key), KeyModifiers::NONE));
            let t = Instant::now();
            term.draw(|f| draw::draw(f, a)).expect("draw");
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(|x, y| x.total_cmp(y));
    let p = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    [p(0.5), p(0.99), times[times.len() - 1]]
}
