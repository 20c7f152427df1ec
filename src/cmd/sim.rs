//! `meshdeck sim serve|ctl`, `meshdeck demo` and `meshdeck screenshots`: the simulated fleet.

use crate::cli::{SessionArgs, SimCtlAction, UiArgs};
use crate::config::Paths;
use crate::sim::{Fleet, FleetSpec, control};
use anyhow::Context;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Wait for SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Start the control endpoint when asked; only on loopback (it has no authentication).
async fn start_control(
    fleet: &Arc<Fleet>,
    addr: Option<std::net::SocketAddr>,
    stop: &CancellationToken,
) -> anyhow::Result<Option<std::net::SocketAddr>> {
    let Some(addr) = addr else { return Ok(None) };
    anyhow::ensure!(
        addr.ip().is_loopback(),
        "--control {addr}: the control endpoint has no authentication, so it only listens on a loopback address (e.g. 127.0.0.1:0)"
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the control endpoint on {addr}"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(control::serve(fleet.clone(), listener, stop.clone()));
    Ok(Some(bound))
}

/// `meshdeck sim serve`.
pub(super) async fn serve(args: crate::cli::SimServeArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let spec = FleetSpec {
        clusters: usize::from(args.clusters),
        scenario: args.scenario,
        pods_per_cluster: args.pods_per_cluster,
        churn: (args.churn_ms > 0).then(|| Duration::from_millis(args.churn_ms)),
        bookmark_interval: Duration::from_secs(args.bookmark_secs.max(1)),
        seed: args.seed,
        ..FleetSpec::default()
    };
    let fleet = Arc::new(Fleet::start(spec).await?);
    fleet.write_kubeconfig(&args.kubeconfig)?;
    let stop = CancellationToken::new();
    let control = start_control(&fleet, args.control, &stop).await?;
    outln!(
        "meshdeck sim: ready clusters={} kubeconfig={} control={} startup_ms={}",
        fleet.names().join(","),
        args.kubeconfig.display(),
        control.map_or_else(|| "none".to_string(), |a| a.to_string()),
        started.elapsed().as_millis()
    );
    tracing::info!(clusters = ?fleet.names(), "simulated fleet ready");
    shutdown_signal().await;
    stop.cancel();
    crate::say!("meshdeck sim: stopping");
    drop(fleet);
    Ok(ExitCode::SUCCESS)
}

/// `meshdeck demo`: a simulated fleet, and the console on it.
pub(super) async fn demo(
    args: crate::cli::DemoArgs,
    session: &SessionArgs,
    ui: &UiArgs,
    paths: &Paths,
) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal;
    let spec = FleetSpec {
        clusters: usize::from(args.clusters),
        pods_per_cluster: args.pods_per_cluster,
        churn: (args.churn_ms > 0).then(|| Duration::from_millis(args.churn_ms)),
        ..FleetSpec::default()
    };
    let fleet = Arc::new(Fleet::start(spec).await?);
    // one kubeconfig per run: a second demo never overwrites the first one's (its servers and
    // tokens are its own); removed when this run ends
    // what runs that were killed left behind (their process is gone) goes first
    crate::sim::prometheus::sweep_dead_runs(&paths.demo_dir, "run-");
    let run_dir = paths.demo_dir.join(format!("run-{}", std::process::id()));
    crate::config::private_dir(&run_dir)?;
    let kubeconfig = run_dir.join("kubeconfig");
    fleet.write_kubeconfig(&kubeconfig)?;
    let _cleanup = RemoveOnDrop(run_dir.clone());
    let stop = CancellationToken::new();
    let control = start_control(&fleet, args.control, &stop).await?;
    let names = fleet.names();
    // a real Prometheus scraping the simulated sidecars, when the binary is here
    let prom = {
        let f = fleet.clone();
        tokio::task::spawn_blocking(move || f.start_prometheus(Duration::from_secs(5)))
            .await
            .map_err(|e| anyhow::anyhow!("starting prometheus: {e}"))?
    };
    let (prom, signals_notice) = match prom {
        Ok(Some(p)) => {
            let n = format!(
                "signals: Prometheus at {} ({}) scrapes the simulated sidecars",
                p.url,
                p.binary.display()
            );
            (Some(p), n)
        }
        Ok(None) => (
            None,
            "signals: no prometheus binary (apt install prometheus); reading the sidecars through the pod proxy".to_string(),
        ),
        Err(e) => (
            None,
            format!("signals: Prometheus did not start ({e:#}); reading the sidecars through the pod proxy"),
        ),
    };
    let console_wanted = !args.no_console && std::io::stdout().is_terminal();
    if !console_wanted {
        outln!(
            "meshdeck demo: {} simulated clusters are running: {}",
            names.len(),
            names.join(", ")
        );
        outln!("  kubeconfig  {}", kubeconfig.display());
        outln!(
            "  try         kubectl --kubeconfig {} --context {} get pods -A",
            kubeconfig.display(),
            names.last().map(String::as_str).unwrap_or("")
        );
        if let Some(c) = control {
            outln!(
                "  control     meshdeck sim ctl --control {c} fault {} down",
                names[0]
            );
        }
        outln!("  {signals_notice}");
        outln!("Ctrl-C stops the fleet.");
        shutdown_signal().await;
    } else {
        let fleet_args = SessionArgs {
            targets: crate::cli::TargetArgs {
                kubeconfig: Some(kubeconfig.clone()),
                context: names.clone(),
                all_contexts: false,
            },
            access: session.access.clone(),
        };
        let code = super::console::run(
            &fleet_args,
            ui,
            paths,
            Some(super::console::DemoSignals {
                prometheus: prom.as_ref().map(|p| p.url.clone()),
                notice: signals_notice,
            }),
        )
        .await;
        drop(prom);
        stop.cancel();
        drop(fleet);
        return code;
    }
    stop.cancel();
    drop(fleet);
    Ok(ExitCode::SUCCESS)
}

/// Removes a run's directory when the run ends (however it ends short of a kill).
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Render the main views from a demo fleet into SVG pictures.
pub(super) async fn screenshots(args: crate::cli::ScreenshotArgs) -> anyhow::Result<ExitCode> {
    let written = crate::ui::shots::write_all(&args.out).await?;
    for p in written {
        outln!("{}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `meshdeck sim ctl`: talk to a running simulator's control endpoint.
pub(super) async fn ctl(args: crate::cli::SimCtlArgs) -> anyhow::Result<ExitCode> {
    let addr = args.control;
    let out = match args.action {
        SimCtlAction::Fault { cluster, spec } => {
            spec.parse::<crate::sim::FaultSpec>()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            control::fault(addr, &cluster, &spec).await?
        }
        SimCtlAction::Requests { cluster, mutating } => {
            let all = control::request(
                addr,
                http::Method::GET,
                &format!("/clusters/{cluster}/requests"),
                "",
            )
            .await?;
            if mutating {
                let mut out = String::new();
                for line in all.lines() {
                    let e: crate::sim::LogEntry =
                        serde_json::from_str(line).with_context(|| {
                            format!("the simulator sent an unreadable log line: {line}")
                        })?;
                    if e.is_mutating() {
                        out.push_str(line);
                        out.push('\n');
                    }
                }
                out
            } else {
                all
            }
        }
        SimCtlAction::ClearRequests { cluster } => control::clear_requests(addr, &cluster).await?,
        SimCtlAction::Churn { what } => control::churn(addr, &what).await?,
        SimCtlAction::Clusters => {
            let mut s = control::request(addr, http::Method::GET, "/clusters", "").await?;
            s.push('\n');
            s
        }
    };
    out!("{out}");
    Ok(ExitCode::SUCCESS)
}
