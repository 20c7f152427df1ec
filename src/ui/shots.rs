//! `meshdeck screenshots`: start the demo fleet in-process, connect to it through kube-rs as
//! the console does, and render the main views to SVG with the same drawing code.

use super::app::App;
use super::{draw, keymap, svg, theme};
use crate::fleet::kubeconfig::{self, Selection};
use crate::sim::{FaultSpec, Fleet, FleetSpec};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Render an app at a size into a buffer.
pub fn render(app: &mut App, width: u16, height: u16) -> anyhow::Result<ratatui::buffer::Buffer> {
    app.set_size(width, height);
    let mut t = Terminal::new(TestBackend::new(width, height))?;
    t.draw(|f| draw::draw(f, app))?;
    Ok(t.backend().buffer().clone())
}

/// A rendered buffer as text, one line per row, trailing blanks trimmed (for tests).
pub fn text(b: &ratatui::buffer::Buffer) -> String {
    let mut s = String::new();
    for y in 0..b.area.height {
        let mut line = String::new();
        for x in 0..b.area.width {
            line.push_str(b[(x, y)].symbol());
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

/// Press keys: plain characters, or `<enter>`, `<esc>`, `<ctrl-z>`, `<down>`.
pub fn press(app: &mut App, keys: &str) {
    press_each(app, keys, |_, _| {});
}

/// Press keys and hand each key's intents to `f` (as the event loop would carry them out).
pub fn press_each(app: &mut App, keys: &str, mut f: impl FnMut(&mut App, Vec<super::app::Intent>)) {
    let mut rest = keys;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('<')
            && let Some(end) = r.find('>')
        {
            let name = &r[..end];
            rest = &r[end + 1..];
            let ev = match name {
                "enter" => KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE),
                "esc" => KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE),
                "down" => KeyEvent::new(KeyCode::Down, KeyModifiers::NONE),
                "up" => KeyEvent::new(KeyCode::Up, KeyModifiers::NONE),
                "tab" => KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE),
                "bs" => KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE),
                "end" => KeyEvent::new(KeyCode::End, KeyModifiers::NONE),
                "f8" => KeyEvent::new(KeyCode::F(8), KeyModifiers::NONE),
                "f1" => KeyEvent::new(KeyCode::F(1), KeyModifiers::NONE),
                "shift-right" => KeyEvent::new(KeyCode::Right, KeyModifiers::SHIFT),
                "shift-left" => KeyEvent::new(KeyCode::Left, KeyModifiers::SHIFT),
                "pgdn" => KeyEvent::new(KeyCode::PageDown, KeyModifiers::NONE),
                other => match (
                    other.strip_prefix("ctrl-").and_then(|c| c.chars().next()),
                    other.strip_prefix("alt-").and_then(|c| c.chars().next()),
                ) {
                    (Some(c), _) => KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL),
                    (_, Some(c)) => KeyEvent::new(KeyCode::Char(c), KeyModifiers::ALT),
                    _ => continue,
                },
            };
            let i = app.on_key(ev);
            f(app, i);
            continue;
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            let m = if c.is_ascii_uppercase() {
                KeyModifiers::SHIFT
            } else {
                KeyModifiers::NONE
            };
            let i = app.on_key(KeyEvent::new(KeyCode::Char(c), m));
            f(app, i);
        }
        rest = chars.as_str();
    }
}

/// The pictures: file name, size, theme, keys pressed from the clusters view.
pub const SHOTS: &[(&str, u16, u16, &str, &str)] = &[
    ("clusters", 120, 30, "default", ""),
    ("services", 120, 30, "default", ":svc<enter>"),
    (
        "workloads-faults",
        120,
        30,
        "default",
        ":wl<enter>S<ctrl-z>",
    ),
    (
        "drill-service-workloads",
        120,
        30,
        "default",
        ":svc<enter>/reviews<enter><enter>",
    ),
    ("pods", 120, 30, "default", ":po<enter>S"),
    ("meshes", 120, 30, "default", ":mesh<enter>"),
    ("virtualservices", 120, 30, "default", ":vs<enter>"),
    (
        "describe-workload",
        120,
        30,
        "default",
        ":wl<enter>S<ctrl-z>d",
    ),
    ("traffic", 120, 30, "default", ":traffic<enter>"),
    (
        "describe-service-signals",
        120,
        30,
        "default",
        ":svc @us-east<enter>/warehouse<enter>d",
    ),
    ("help", 120, 40, "default", "?"),
    ("services-80x24-16color", 80, 24, "16color", ":svc<enter>"),
    ("services-80x24-mono", 80, 24, "mono", ":svc<enter>S"),
];

/// Write every picture into `out`; returns the files written.
pub async fn write_all(out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out)?;
    let sim = Arc::new(
        Fleet::start(FleetSpec {
            clusters: 3,
            churn: None,
            ..FleetSpec::default()
        })
        .await?,
    );
    let tmp = tempfile_dir()?;
    let kc = tmp.join("kubeconfig");
    sim.write_kubeconfig(&kc)?;
    let targets =
        kubeconfig::targets(std::slice::from_ref(&kc), &Selection::Named(sim.names())).await?;
    let mut handle = crate::fleet::start(targets.clone());
    anyhow::ensure!(
        handle.wait_synced(Duration::from_secs(60)).await,
        "the demo fleet did not sync within 60 s"
    );
    tokio::time::sleep(crate::fleet::PUBLISH_EVERY * 3).await;
    // golden signals as a bastion user without Prometheus gets them: the simulated sidecars
    // through the pod proxy (two scrapes)
    let mut signals = crate::signals::start(
        &targets,
        crate::signals::Config {
            interval: Duration::from_secs(600),
            ..crate::signals::Config::default()
        },
        handle.snapshots.clone(),
    );
    anyhow::ensure!(
        signals
            .wait_refreshed(targets.len(), Duration::from_secs(30))
            .await,
        "the demo fleet's signals did not come within 30 s"
    );
    let sig = signals.latest();
    let km = keymap::load("default", None).map_err(anyhow::Error::msg)?;
    let mut written = Vec::new();
    for (name, w, h, th, keys) in SHOTS {
        let t = theme::load(th, None).map_err(anyhow::Error::msg)?;
        let mut app = App::new(handle.latest(), km.clone(), t, false);
        app.on_signals(sig.clone());
        app.set_size(*w, *h);
        press(&mut app, keys);
        let buf = render(&mut app, *w, *h)?;
        let p = out.join(format!("{name}.svg"));
        std::fs::write(&p, svg::to_svg(&buf))?;
        written.push(p);
    }
    written.extend(author_shots(&handle.latest(), &km, out, &tmp)?);
    // a cluster goes down: the console marks it stale and keeps the others live
    let last = sim.names().last().cloned().unwrap_or_default();
    sim.fault(&last, &FaultSpec::Down)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        let s = handle.latest();
        if s.cluster(&last).is_some_and(|c| c.state.is_stale()) {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), handle.snapshots.changed()).await;
    }
    let t = theme::load("default", None).map_err(anyhow::Error::msg)?;
    let mut app = App::new(handle.latest(), km, t, true);
    let buf = render(&mut app, 120, 30)?;
    let p = out.join("clusters-stale-readonly.svg");
    std::fs::write(&p, svg::to_svg(&buf))?;
    written.push(p);
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(written)
}

/// Authoring: the editor with a typo marked, the preview's diff, the confirmation dialog.
/// The app drives the real authoring worker, as in the console.
fn author_shots(
    snap: &Arc<crate::model::Snapshot>,
    km: &keymap::Keymap,
    out: &Path,
    tmp: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    use crate::author::{Store, Worker};
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = tmp.join("policies");
    let worker = Worker::spawn(
        Store {
            dir: dir.clone(),
            extra: vec![],
            drafts: tmp.join("drafts"),
            who: crate::rbac::Subject::default(),
        },
        move |a| {
            let _ = tx.send(a);
        },
    );
    let t = theme::load("default", None).map_err(anyhow::Error::msg)?;
    let mut app = App::new(snap.clone(), km.clone(), t, false);
    app.policy_dir = Some(dir);
    app.set_size(120, 30);
    let mut driver = AuthorDriver {
        worker: &worker,
        answers: &rx,
    };
    driver.board(&mut app)?;
    let mut written = Vec::new();
    // the fleet's configuration findings (the board carries them), then back to the clusters
    press(&mut app, ":an<enter>");
    let buf = render(&mut app, 120, 30)?;
    let p = out.join("analysis.svg");
    std::fs::write(&p, svg::to_svg(&buf))?;
    written.push(p);
    press(&mut app, "<esc>");
    let mut run = |app: &mut App, keys: &str| driver.press(app, keys, |_| {});
    let steps: &[(&str, &str)] = &[
        (
            "author-editor-typo",
            ":pol<enter>n<enter><down><down><down><down><down><down><down><down><down><down><down><down><down><down><down><end><bs><bs><bs><bs><bs>hfit:<ctrl-t><ctrl-t>",
        ),
        (
            "author-preview-diff",
            "<bs><bs><bs><bs><bs>hift:<ctrl-t><ctrl-t>",
        ),
        ("author-confirm", "<ctrl-g>"),
    ];
    for (name, keys) in steps {
        run(&mut app, keys)?;
        let buf = render(&mut app, 120, 30)?;
        let p = out.join(format!("{name}.svg"));
        std::fs::write(&p, svg::to_svg(&buf))?;
        written.push(p);
    }
    Ok(written)
}

/// Keys to an app whose authoring jobs go to a real worker, carried out as the event loop
/// does: each job sent, its answer awaited and handed back; board refreshes when the app asks.
/// Apply intents go to `on_apply` (no writer here). For screenshots, tests and benchmarks.
pub struct AuthorDriver<'a> {
    pub worker: &'a crate::author::Worker,
    pub answers: &'a std::sync::mpsc::Receiver<crate::author::Answer>,
}

impl AuthorDriver<'_> {
    /// Hand `n` answers of the worker to the app.
    pub fn wait(&self, app: &mut App, n: usize) -> anyhow::Result<()> {
        for _ in 0..n {
            let a = self
                .answers
                .recv_timeout(Duration::from_secs(30))
                .map_err(|e| anyhow::anyhow!("the authoring worker did not answer: {e}"))?;
            app.on_job(super::app::JobEvent::Author(a));
        }
        Ok(())
    }

    /// Refresh the policies board and wait for it.
    pub fn board(&self, app: &mut App) -> anyhow::Result<()> {
        app.want_board = false;
        self.worker
            .send(crate::author::Job::Board(app.snap.clone()));
        self.wait(app, 1)
    }

    pub fn press(
        &mut self,
        app: &mut App,
        keys: &str,
        mut on_apply: impl FnMut(Arc<crate::plan::Plan>),
    ) -> anyhow::Result<()> {
        use crate::author::Job;
        let mut err = None;
        press_each(app, keys, |app, intents| {
            for i in intents {
                match i {
                    super::app::Intent::Author(j) => {
                        let n = usize::from(!matches!(j, Job::Discard { .. }));
                        self.worker.send(j);
                        if let Err(e) = self.wait(app, n) {
                            err = Some(e);
                        }
                    }
                    super::app::Intent::Apply { plan, .. } => on_apply(plan),
                    _ => {}
                }
            }
            if app.want_board
                && let Err(e) = self.board(app)
            {
                err = Some(e);
            }
        });
        err.map_or(Ok(()), Err)
    }
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("meshdeck-shots-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
