//! The terminal console. `app` holds state and turns keys into changes and intents; `draw`
//! renders it (a pure function); this module is the edge: terminal, events, jobs.
//! The loop draws only after an input, a new snapshot, a job's answer or the 1 s age tick.

pub mod app;
pub mod draw;
pub mod keymap;
pub mod shots;
pub mod svg;
pub mod theme;
pub mod view;

use crate::fleet::FleetHandle;
use crate::fleet::fetch::Fetcher;
use app::{App, Intent, JobEvent};
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Carry out an intent off the UI's path: jobs run as tasks and answer through `tx`.
fn start_job(
    intent: Intent,
    fetcher: &Arc<Fetcher>,
    tx: &mpsc::UnboundedSender<JobEvent>,
    jobs: &mut HashMap<u64, CancellationToken>,
) {
    match intent {
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
        Intent::Quit => {}
    }
}

/// Run the console until the user quits, SIGTERM/SIGHUP arrives, or the terminal goes away.
/// The terminal is restored on every path, panics included.
pub async fn run(mut app: App, fleet: FleetHandle, fetcher: Arc<Fetcher>) -> anyhow::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let res = event_loop(&mut terminal, &mut app, fleet, fetcher).await;
    ratatui::restore();
    res
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    fleet: FleetHandle,
    fetcher: Arc<Fetcher>,
) -> anyhow::Result<()> {
    let size = terminal.size()?;
    app.set_size(size.width, size.height);
    let mut events = EventStream::new();
    let mut snaps = fleet.snapshots.clone();
    app.on_snapshot(snaps.borrow_and_update().clone());
    let (tx, mut rx) = mpsc::unbounded_channel::<JobEvent>();
    let mut jobs: HashMap<u64, CancellationToken> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    #[cfg(unix)]
    let (mut term, mut hup) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate())?,
            signal(SignalKind::hangup())?,
        )
    };
    let mut dirty = true;
    loop {
        if dirty {
            app.now = chrono::Utc::now();
            terminal.draw(|f| draw::draw(f, app))?;
            dirty = false;
        }
        let mut intents = Vec::new();
        #[cfg(unix)]
        let signalled = async {
            tokio::select! {
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
        };
        #[cfg(not(unix))]
        let signalled = std::future::pending::<()>();
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                    app.now = chrono::Utc::now();
                    intents = app.on_key(k);
                    dirty = true;
                }
                Some(Ok(Event::Resize(w, h))) => {
                    app.set_size(w, h);
                    dirty = true;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(anyhow::anyhow!("reading the terminal: {e}")),
                None => break,
            },
            r = snaps.changed() => {
                if r.is_err() {
                    break;
                }
                let s = snaps.borrow_and_update().clone();
                app.on_snapshot(s);
                dirty = true;
            }
            Some(ev) = rx.recv() => {
                app.on_job(ev);
                // take whatever else is ready before drawing once
                while let Ok(ev) = rx.try_recv() {
                    app.on_job(ev);
                }
                dirty = true;
            }
            _ = tick.tick() => dirty = true,
            _ = signalled => {
                tracing::info!("signal received; leaving the console");
                break;
            }
        }
        for i in intents {
            start_job(i, &fetcher, &tx, &mut jobs);
        }
        if app.quit {
            break;
        }
    }
    for (_, t) in jobs {
        t.cancel();
    }
    Ok(())
}
