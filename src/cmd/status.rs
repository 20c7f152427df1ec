//! `meshdeck status`: the fleet, headless.

use super::{ExitExt, open_session, peak_resident_kib, resident_kib, synced_fleet};
use crate::cli::SessionArgs;
use crate::config::Paths;
use crate::pipeline::Exit;
use std::process::ExitCode;

/// `meshdeck status`.
pub(super) async fn run(
    args: crate::cli::StatusArgs,
    session: &SessionArgs,
    paths: &Paths,
) -> anyhow::Result<ExitCode> {
    let settings = crate::config::Settings::load(&paths.settings_file)?;
    let session = open_session(session, &settings, paths).await?;
    let started = std::time::Instant::now();
    let (_handle, all_synced, snap) = synced_fleet(&session, args.wait_synced).await;
    tracing::info!(
        all_synced,
        clusters = snap.clusters.len(),
        pods = snap.clusters.iter().map(|c| c.counts.pods).sum::<usize>(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        rss_kib = resident_kib(),
        peak_rss_kib = peak_resident_kib(),
        heap_kib = super::heap_in_use_kib(),
        anon_kib = super::proc_status_kib("RssAnon:"),
        "fleet snapshot ready"
    );
    let signals = if args.signals {
        let (cfg, tolerances) = settings.signal_config(&session.targets)?;
        // the first refresh: each query's timeout, plus the sidecars' two scrapes
        let wait = cfg.timeout * 3 + std::time::Duration::from_secs(3);
        let mut sig = crate::signals::start(&session.targets, cfg, _handle.snapshots.clone());
        if !sig.wait_refreshed(session.targets.len(), wait).await {
            tracing::warn!(
                "signals: not every cluster answered within {} s",
                wait.as_secs()
            );
        }
        Some((sig.latest(), tolerances))
    } else {
        None
    };
    let text = crate::status::render(
        &snap,
        args.output,
        crate::status::Sections {
            services: args.services || (args.signals && !args.workloads),
            workloads: args.workloads,
            signals: signals.as_ref().map(|(s, t)| (&**s, t)),
        },
    )
    .map_err(|e| anyhow::anyhow!("rendering the status: {e}"))?;
    out!("{text}");
    let (ready, _) = crate::pipeline::readiness(&snap);
    Ok(if ready.is_empty() && !snap.clusters.is_empty() {
        Exit::Unreachable.code()
    } else if all_synced && ready.len() == snap.clusters.len() && session.broken.is_empty() {
        Exit::Success.code()
    } else {
        Exit::Partial.code()
    })
}
