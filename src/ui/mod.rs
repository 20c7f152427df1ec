//! The terminal console. `app` holds state and turns keys into changes and intents; `draw`
//! renders it (a pure function); this module is the edge: terminal, events, jobs.
//! The loop draws only after an input, a new snapshot, a job's answer or the 1 s age tick.

pub mod app;
pub mod draw;
pub mod editor;
pub mod input;
pub mod keymap;
pub mod reload;
#[cfg(feature = "sim")]
pub mod shots;
pub mod svg;
pub mod term;
pub mod text;
pub mod theme;
pub mod view;

use crate::fleet::FleetHandle;
use crate::fleet::fetch::Fetcher;
use app::{App, Intent, JobEvent};
use crossterm::event::{Event, KeyEventKind};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the console needs to author and apply policies.
pub struct Authoring {
    pub store: crate::author::Store,
    /// None in a read-only session: no writer exists, so nothing can be written.
    pub writer: Option<Arc<crate::apply::Writer>>,
    pub audit_log: std::path::PathBuf,
    /// The longest one request may take.
    pub request_timeout: Duration,
}

/// Applies what the reloader found.
fn apply_reloads(app: &mut App, found: Vec<reload::Reloaded>) -> bool {
    let mut any = false;
    for r in found {
        any = true;
        match r {
            reload::Reloaded::Theme(t) => {
                let name = t.name.clone();
                app.theme = t;
                app.flash(format!("theme {name} reloaded"), false);
            }
            reload::Reloaded::Keymap(k) => {
                let name = k.name.clone();
                app.keymap = k;
                app.flash(format!("keymap {name} reloaded"), false);
            }
            reload::Reloaded::Failed(e) => app.flash(e, true),
        }
    }
    any
}

/// The edge's handles for jobs.
struct Jobs {
    fetcher: Arc<Fetcher>,
    tx: mpsc::UnboundedSender<JobEvent>,
    running: HashMap<u64, CancellationToken>,
    worker: Option<Arc<crate::author::Worker>>,
    writer: Option<Arc<crate::apply::Writer>>,
    audit_log: std::path::PathBuf,
    request_timeout: Duration,
}

/// Apply a plan through the pipeline's I/O half (Kubernetes RBAC per write, dry-run, apply,
/// prune, audit): the same code `meshdeck apply` runs; its lines come back to the dialog.
#[allow(clippy::too_many_arguments)]
async fn apply_job(
    job: u64,
    plan: Arc<crate::plan::Plan>,
    remove: Option<std::path::PathBuf>,
    writer: Arc<crate::apply::Writer>,
    worker: Option<Arc<crate::author::Worker>>,
    audit_log: std::path::PathBuf,
    timeout: Duration,
    tx: mpsc::UnboundedSender<JobEvent>,
) {
    let say = |l: String| {
        let _ = tx.send(JobEvent::Lines(job, vec![l]));
    };
    // the body already ends with the pipeline's own last word (`executed_lines`: refused, the
    // dry-run failed, some clusters failed), so a failure only sets the dialog's state
    let fail = |why: &str| {
        let _ = tx.send(JobEvent::Failed(job, why.to_string()));
    };
    if plan.has_changes() {
        say(format!(
            "kubernetes rbac, then a server-side dry-run of every change, then the writes ({})…",
            plan.clusters().into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let executed = crate::pipeline::execute(&writer, &plan, false, timeout).await;
    for l in crate::pipeline::executed_lines(&executed) {
        say(l);
    }
    if let Some(why) = &executed.refused {
        fail(why);
        return;
    }
    let report = &executed.report;
    if report.dry_run_failed {
        fail("the dry-run failed: nothing was written to any cluster");
        return;
    }
    if plan.has_changes() {
        say(format!("audit log: {}", audit_log.display()));
    }
    if report.failed().next().is_some() || !report.skipped.is_empty() {
        fail("some clusters failed (above); the others are applied. Apply again to complete");
        return;
    }
    if let (Some(path), Some(w)) = (remove, worker) {
        say(format!("removing {}", path.display()));
        w.send(crate::author::Job::Remove { path });
    }
    say(format!(
        "done: {} applied; the views show them as the watches deliver them (esc)",
        crate::ui::text::count(report.outcomes.len(), "change", "changes")
    ));
    let _ = tx.send(JobEvent::Ended(job, "done".into()));
}

/// Carry out an intent off the UI's path: jobs run as tasks and answer through `tx`.
fn start_job(intent: Intent, j: &mut Jobs) {
    let (fetcher, tx, jobs) = (&j.fetcher, &j.tx, &mut j.running);
    match intent {
        Intent::Author(job) => match &j.worker {
            Some(w) => w.send(job),
            None => tracing::warn!("no authoring worker: job dropped"),
        },
        Intent::Apply { job, plan, remove } => match &j.writer {
            Some(w) => {
                let fut = apply_job(
                    job,
                    plan,
                    remove,
                    w.clone(),
                    j.worker.clone(),
                    j.audit_log.clone(),
                    j.request_timeout,
                    tx.clone(),
                );
                tokio::spawn(fut);
            }
            None => {
                let _ = tx.send(JobEvent::Failed(
                    job,
                    "read-only: this session cannot write; nothing was sent".into(),
                ));
            }
        },
        Intent::FetchYaml {
            job,
            cluster,
            api_version,
            kind,
            namespace,
            name,
        } => {
            let (f, tx) = (fetcher.clone(), tx.clone());
            tokio::spawn(async move {
                let ev = match f
                    .yaml(&cluster, &api_version, &kind, &namespace, &name)
                    .await
                {
                    Ok(t) => JobEvent::Text(job, t),
                    Err(e) => JobEvent::Failed(job, e),
                };
                let _ = tx.send(ev);
            });
        }
        Intent::FollowLogs {
            job,
            cluster,
            namespace,
            pod,
        } => {
            let stop = CancellationToken::new();
            jobs.insert(job, stop.clone());
            let (f, tx) = (fetcher.clone(), tx.clone());
            tokio::spawn(async move {
                let tx2 = tx.clone();
                let r = f
                    .follow_logs(&cluster, &namespace, &pod, stop, move |lines| {
                        tx2.send(JobEvent::Lines(job, lines)).is_ok()
                    })
                    .await;
                let _ = tx.send(match r {
                    Ok(why) => JobEvent::Ended(job, why),
                    Err(e) => JobEvent::Failed(job, e),
                });
            });
        }
        Intent::Cancel(job) => {
            if let Some(t) = jobs.remove(&job) {
                t.cancel();
            }
        }
        // the event loop carries these out itself (they need the terminal)
        Intent::Quit | Intent::Copy { .. } | Intent::ExternalEdit { .. } => {}
    }
}

/// The console's terminal.
pub type Tui =
    ratatui::Terminal<ratatui::backend::CrosstermBackend<term::SgrWriter<std::io::Stdout>>>;

/// Run the console until the user quits, SIGTERM/SIGHUP/SIGINT/SIGQUIT arrives, or the
/// terminal goes away.
/// The terminal is restored on every path, panics included.
pub async fn run(
    mut app: App,
    fleet: FleetHandle,
    fetcher: Arc<Fetcher>,
    authoring: Option<Authoring>,
    reloader: Option<reload::Reloader>,
    signals: Option<crate::signals::Handle>,
) -> anyhow::Result<Ended> {
    // raw mode, the alternate screen and the panic hook as ratatui sets them up, then a
    // backend whose writer speaks the terminal's colours (see term::SgrWriter)
    drop(ratatui::try_init()?);
    let colors = term::Caps::detect().colors;
    let mut terminal = ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(
        term::SgrWriter::new(std::io::stdout(), colors),
    ))?;
    let res = event_loop(
        &mut terminal,
        &mut app,
        fleet,
        fetcher,
        authoring,
        reloader,
        signals,
    )
    .await;
    // A terminal that hung up (an SSH drop) cannot be restored, and every later write to it
    // fails: `eprintln!` would panic on it, and a panic in the terminal's drop aborts before
    // the demo's Prometheus and run directory are cleaned up. So a failed restore sends what
    // is left of stdout and stderr to /dev/null, and the run ends through its usual exit.
    if ratatui::try_restore().is_err() {
        silence_terminal();
    }
    drop(terminal);
    res
}

/// Hand `text` to the user's editor as kubectl edit does: a private file (0600 in a 0700
/// directory) named like the policy, `$VISUAL`, else `$EDITOR`, else `vi`, run through the
/// shell (so `code -w` works), with the console suspended (main screen, cooked mode) and
/// restored after. The file's text when the editor exits 0; else why not.
async fn external_edit(terminal: &mut Tui, text: &str, name: &str) -> Result<String, String> {
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|e| !e.trim().is_empty()))
        .unwrap_or_else(|| "vi".into());
    let dir = std::env::temp_dir().join(format!(
        "meshdeck-edit-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    crate::config::private_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let file = dir.join(if name.is_empty() { "policy.yaml" } else { name });
    let run = async {
        crate::files::write_private(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
        let _ = ratatui::try_restore();
        let status = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{editor} \"$1\""))
            .arg("sh")
            .arg(&file)
            .status()
            .await;
        // back: raw mode and the alternate screen, drawn whole
        let _ = crossterm::terminal::enable_raw_mode();
        let _ = crossterm::execute!(
            std::io::stdout(),
            crossterm::terminal::EnterAlternateScreen,
            crossterm::cursor::Hide
        );
        let _ = terminal.clear();
        match status {
            Ok(s) if s.success() => std::fs::read_to_string(&file)
                .map_err(|e| format!("reading {}: {e}", file.display())),
            Ok(s) => Err(format!("{editor} exited with {s}")),
            Err(e) => Err(format!("{editor}: {e}")),
        }
    };
    let r = run.await;
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// Point stdout and stderr at /dev/null (the terminal behind them is gone).
fn silence_terminal() {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            // SAFETY: dup2 onto the process's own stdout/stderr descriptors; `null` stays open
            // until both are duplicated
            unsafe {
                libc::dup2(null.as_raw_fd(), 1);
                libc::dup2(null.as_raw_fd(), 2);
            }
        }
    }
}

/// How the console ended: the process's exit status follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The user quit.
    Quit,
    /// A signal ended it (its number): the exit status is 128 + it, as a shell reports.
    Signal(i32),
    /// The terminal went away (read error or end): as a hangup.
    TerminalGone,
}

impl Ended {
    /// The conventional exit status.
    pub fn exit_code(self) -> u8 {
        match self {
            Ended::Quit => 0,
            Ended::Signal(n) => (128 + n).clamp(0, 255) as u8,
            Ended::TerminalGone => 128 + 1,
        }
    }
}

async fn event_loop(
    terminal: &mut Tui,
    app: &mut App,
    fleet: FleetHandle,
    fetcher: Arc<Fetcher>,
    authoring: Option<Authoring>,
    mut reloader: Option<reload::Reloader>,
    signals: Option<crate::signals::Handle>,
) -> anyhow::Result<Ended> {
    let size = terminal.size()?;
    // the golden signals arrive like snapshots: a watch, read when it changes
    let mut sig_rx = signals.as_ref().map(|h| h.signals.clone());
    let mut focus_sent = std::collections::BTreeSet::new();
    // the memory figures go to the log once synced and once settled
    let mut synced_at: Option<std::time::Instant> = None;
    let mut settled_logged = false;
    app.set_size(size.width, size.height);
    let mut keys = input::Reader::start()?;
    let mut snaps = fleet.snapshots.clone();
    app.on_snapshot(snaps.borrow_and_update().clone());
    let (tx, mut rx) = mpsc::unbounded_channel::<JobEvent>();
    let mut jobs = Jobs {
        fetcher,
        tx: tx.clone(),
        running: HashMap::new(),
        worker: None,
        writer: None,
        audit_log: Default::default(),
        request_timeout: crate::session::DEFAULT_REQUEST_TIMEOUT,
    };
    if let Some(a) = authoring {
        app.policy_dir = Some(a.store.dir.clone());
        let tx = tx.clone();
        jobs.worker = Some(Arc::new(crate::author::Worker::spawn(
            a.store,
            move |ans| {
                let _ = tx.send(JobEvent::Author(ans));
            },
        )));
        jobs.writer = a.writer;
        jobs.audit_log = a.audit_log;
        jobs.request_timeout = a.request_timeout;
        app.want_board = true;
    }
    // the board follows the fleet, at most once a second and only when the fleet changed
    let mut board_at: Option<(std::time::Instant, u64)> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // every signal that ends a terminal program ends the console through the same exit, so the
    // terminal is always restored (alternate screen left, cursor shown); a resize is SIGWINCH
    // (the console is Unix-only: its terminal reader is ui::input)
    let (mut term, mut hup, mut int, mut quit, mut resized) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate())?,
            signal(SignalKind::hangup())?,
            signal(SignalKind::interrupt())?,
            signal(SignalKind::quit())?,
            signal(SignalKind::window_change())?,
        )
    };
    let mut dirty = true;
    let mut ended = Ended::Quit;
    loop {
        if dirty {
            app.now = chrono::Utc::now();
            let drawn = terminal.draw(|f| {
                draw::draw(f, app);
                if app.ascii {
                    term::asciify(f.buffer_mut());
                }
            });
            // a terminal that cannot be written is gone (a hangup can be seen here before
            // its signal or the read error arrives): the same exit as a hangup
            if let Err(e) = drawn {
                tracing::info!("writing the terminal: {e}; leaving the console");
                ended = Ended::TerminalGone;
                break;
            }
            dirty = false;
        }
        let mut intents = Vec::new();
        let signalled = async {
            tokio::select! {
                _ = term.recv() => libc::SIGTERM,
                _ = hup.recv() => libc::SIGHUP,
                _ = int.recv() => libc::SIGINT,
                _ = quit.recv() => libc::SIGQUIT,
            }
        };
        tokio::select! {
            ev = keys.next() => match ev {
                Some(input::Input::Event(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                    app.now = chrono::Utc::now();
                    intents = app.on_key(k);
                    dirty = true;
                }
                Some(input::Input::Event(_)) => {}
                // the terminal is gone (a hangup seen as the end of input or a read error)
                Some(input::Input::Gone(why)) => {
                    tracing::info!("{why}; leaving the console");
                    ended = Ended::TerminalGone;
                    break;
                }
                None => {
                    ended = Ended::TerminalGone;
                    break;
                }
            },
            _ = resized.recv() => {
                if let Ok((w, h)) = crossterm::terminal::size() {
                    app.set_size(w, h);
                    dirty = true;
                }
            }
            r = snaps.changed() => {
                if r.is_err() {
                    break;
                }
                let s = snaps.borrow_and_update().clone();
                match synced_at {
                    None if !s.clusters.is_empty()
                        && s.clusters.iter().all(|c| {
                            matches!(c.state, crate::model::ConnState::Synced | crate::model::ConnState::Partial { .. })
                        }) =>
                    {
                        synced_at = Some(std::time::Instant::now());
                        log_memory("console: every cluster synced");
                    }
                    Some(t) if !settled_logged && t.elapsed() >= Duration::from_secs(10) => {
                        settled_logged = true;
                        log_memory("console: 10 s after the sync");
                    }
                    _ => {}
                }
                app.on_snapshot(s);
                dirty = true;
            }
            Some(Ok(())) = async {
                match sig_rx.as_mut() {
                    Some(rx) => Some(rx.changed().await),
                    None => std::future::pending().await,
                }
            } => {
                if let Some(rx) = sig_rx.as_mut() {
                    let s = rx.borrow_and_update().clone();
                    app.on_signals(s);
                    dirty = true;
                }
            }
            Some(ev) = rx.recv() => {
                app.on_job(ev);
                // take whatever else is ready before drawing once
                while let Ok(ev) = rx.try_recv() {
                    app.on_job(ev);
                }
                dirty = true;
            }
            _ = tick.tick() => {
                dirty = true;
                if let Some(r) = reloader.as_mut() {
                    apply_reloads(app, r.poll());
                }
            }
            sig = signalled => {
                tracing::info!(signal = sig, "signal received; leaving the console");
                ended = Ended::Signal(sig);
                break;
            }
        }
        for i in intents {
            match i {
                // the clipboard is the terminal's: written in order with the frames
                Intent::Copy { text, what } => {
                    let tmux = std::env::var_os("TMUX").is_some_and(|v| !v.is_empty());
                    let seq = term::osc52(&text, tmux);
                    let w = terminal.backend_mut();
                    let r =
                        std::io::Write::write_all(w, &seq).and_then(|()| std::io::Write::flush(w));
                    match r {
                        Ok(()) => app.flash(
                            format!(
                                "copied {what} ({} bytes) to the clipboard (OSC 52)",
                                text.len()
                            ),
                            false,
                        ),
                        Err(e) => app.flash(format!("copy failed: {e}"), true),
                    }
                    dirty = true;
                }
                Intent::ExternalEdit { text, name } => {
                    // the console steps aside: its reader has left before the editor starts,
                    // and a new one starts when the editor is done
                    keys.stop().await;
                    let result = external_edit(terminal, &text, &name).await;
                    keys = input::Reader::start()?;
                    for i in app.on_external_edit(result) {
                        start_job(i, &mut jobs);
                    }
                    dirty = true;
                }
                other => start_job(other, &mut jobs),
            }
        }
        let policies_shown = matches!(
            app.page().kind,
            view::ViewKind::Policies | view::ViewKind::Analysis
        ) || matches!(app.mode, app::Mode::Editor(_));
        let due = board_at
            .is_some_and(|(t, seq)| seq != app.snap.seq && t.elapsed() >= Duration::from_secs(1));
        // the analysis behind the header's count follows the fleet too, less often: every 5 s,
        // or 100 times as long as the last board took (a large fleet's board costs ~0.1 s:
        // off screen it gets at most 1% of a core), at most a minute apart
        let every = (app.board.took * 100).clamp(Duration::from_secs(5), Duration::from_secs(60));
        let due_anyway =
            board_at.is_none_or(|(t, seq)| seq != app.snap.seq && t.elapsed() >= every);
        if let Some(w) = &jobs.worker
            && (app.want_board || (policies_shown && due) || due_anyway)
        {
            app.want_board = false;
            board_at = Some((std::time::Instant::now(), app.snap.seq));
            w.send(crate::author::Job::Board(app.snap.clone()));
        }
        if let Some(h) = &signals {
            // what is on screen goes first in the sidecar fallback's bounded scrape
            let focus = app.focus();
            if focus != focus_sent {
                let _ = h.focus.send(crate::signals::Focus {
                    namespaces: focus.clone(),
                });
                focus_sent = focus;
            }
            if let Some(want) = app.want_history.take() {
                // full queue: the sparkline is asked for again on the next describe
                let _ = h.history.try_send(want);
            }
        }
        if app.quit {
            break;
        }
    }
    for (_, t) in jobs.running {
        t.cancel();
    }
    Ok(ended)
}

/// The console's memory in the log (scripts/console-scale.sh reads it).
fn log_memory(what: &str) {
    tracing::info!(
        rss_kib = crate::cmd::resident_kib(),
        heap_kib = crate::cmd::heap_in_use_kib(),
        anon_kib = crate::cmd::proc_status_kib("RssAnon:"),
        "{what}"
    );
}
