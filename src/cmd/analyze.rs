//! `meshdeck analyze`: istioctl-analyze findings for every cluster of the fleet.

use super::{ExitExt, structured};
use crate::analyze::Level;
use crate::cli::{ReportFormat, SessionArgs};
use crate::config::Paths;
use crate::pipeline::Exit;
use std::process::ExitCode;

pub(super) async fn run(
    args: crate::cli::AnalyzeArgs,
    session: &SessionArgs,
    paths: &Paths,
) -> anyhow::Result<ExitCode> {
    let (_handle, snap) = super::translate::fleet_snapshot(
        args.inventory.as_deref(),
        session,
        args.wait_synced,
        paths,
    )
    .await?;
    let findings = crate::analyze::analyze(&snap);
    let fail_on = match args.level.as_str() {
        "info" => Level::Info,
        "warning" => Level::Warning,
        _ => Level::Error,
    };
    match args.output {
        ReportFormat::Text => {
            if findings.is_empty() {
                out!("no findings in {} clusters\n", snap.clusters.len());
            }
            for f in &findings {
                out!("{f}\n  at {}: {}\n", f.path, f.hint);
            }
        }
        fmt => out!("{}", structured(fmt, &findings)?),
    }
    let failing = findings.iter().filter(|f| f.level >= fail_on).count();
    if failing > 0 {
        crate::say!(
            "{failing} finding{} at or above {}",
            if failing == 1 { "" } else { "s" },
            fail_on.word()
        );
    }
    Ok(if failing > 0 {
        Exit::Partial
    } else {
        Exit::Success
    }
    .code())
}
