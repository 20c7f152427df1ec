//! What each subcommand does, given parsed arguments: one file per subcommand. Each opens the
//! session (`open_session`), runs the pipeline or the fleet, and renders the result; errors
//! that reach here are `anyhow` (the crates below return typed errors).

#[cfg(feature = "sim")]
use crate::cli::SimCommand;
use crate::cli::{Cli, Command, InfoFormat, ReportFormat, SessionArgs};
use crate::config::Paths;
use crate::pipeline::Exit;
use crate::session::Session;
use anyhow::Context;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// `Exit` as the process's exit code.
pub(crate) trait ExitExt {
    fn code(self) -> ExitCode;
}

impl ExitExt for Exit {
    fn code(self) -> ExitCode {
        ExitCode::from(self.as_u8())
    }
}

/// Write to stdout; a closed pipe (`meshdeck diff | head`) is not an error: the rest of the
/// run (an apply, its audit log) goes on, its output goes nowhere.
pub fn emit(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_fmt(args);
}

macro_rules! out {
    ($($t:tt)*) => { $crate::cmd::emit(format_args!($($t)*)) };
}
macro_rules! outln {
    () => { $crate::cmd::emit(format_args!("\n")) };
    ($($t:tt)*) => {{ $crate::cmd::emit(format_args!($($t)*)); $crate::cmd::emit(format_args!("\n")); }};
}

mod analyze;
mod apply;
mod console;
#[cfg(feature = "sim")]
mod sim;
mod status;
mod translate;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    let resolved = match cli.resolve() {
        Ok(r) => r,
        Err(e) => {
            crate::say!("meshdeck: {e}");
            return Ok(Exit::Invalid.code());
        }
    };
    let session = resolved.session;
    let ui = resolved.ui;
    let paths = Paths::resolve(cli.global.log_file.as_deref())?;
    if let Some(Command::Completions { shell }) = &cli.command {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(*shell, &mut cmd, "meshdeck", &mut std::io::stdout());
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(Command::Info(args)) = &cli.command {
        match args.output {
            InfoFormat::Text => out!("{}", paths.to_text()),
            InfoFormat::Json => outln!("{}", serde_json::to_string_pretty(&paths)?),
        }
        return Ok(ExitCode::SUCCESS);
    }
    // the state directory holds drafts (policy text) and the audit log: private to the user
    crate::config::private_dir(&paths.state_dir)?;
    let _guard = crate::logging::init(&paths.log_file, cli.global.verbose)?;
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "meshdeck starting");
    match cli.command {
        None => runtime()?.block_on(console::run(&session, &ui, &paths, None)),
        #[cfg(feature = "sim")]
        Some(Command::Demo(args)) => runtime()?.block_on(sim::demo(args, &session, &ui, &paths)),
        #[cfg(feature = "sim")]
        Some(Command::Screenshots(args)) => runtime()?.block_on(sim::screenshots(args)),
        #[cfg(feature = "sim")]
        Some(Command::Sim(SimCommand::Serve(args))) => runtime()?.block_on(sim::serve(args)),
        #[cfg(feature = "sim")]
        Some(Command::Sim(SimCommand::Ctl(args))) => runtime()?.block_on(sim::ctl(args)),
        Some(Command::Status(args)) => runtime()?.block_on(status::run(args, &session, &paths)),
        Some(Command::Translate(args)) => {
            runtime()?.block_on(translate::run(args, &session, &paths, false))
        }
        Some(Command::Diff(args)) => runtime()?.block_on(apply::run(args, &session, &paths, false)),
        Some(Command::Apply(args)) => runtime()?.block_on(apply::run(args, &session, &paths, true)),
        Some(Command::Check(args)) => {
            runtime()?.block_on(translate::run(args, &session, &paths, true))
        }
        Some(Command::Analyze(args)) => runtime()?.block_on(analyze::run(args, &session, &paths)),
        Some(Command::Info(_)) | Some(Command::Completions { .. }) => Ok(ExitCode::SUCCESS),
    }
}

/// Resolve the contexts (flags, then the settings' `fleet:` list, then the current
/// context) and prepare one target per context.
pub async fn open_session(
    args: &SessionArgs,
    settings: &crate::config::Settings,
    paths: &Paths,
) -> anyhow::Result<Session> {
    let t = &args.targets;
    let selection = if t.all_contexts {
        crate::fleet::Selection::All
    } else if !t.context.is_empty() {
        crate::fleet::Selection::Named(t.context.clone())
    } else if !settings.fleet.is_empty() {
        crate::fleet::Selection::Named(settings.fleet.clone())
    } else {
        crate::fleet::Selection::Current
    };
    let files = crate::fleet::kubeconfig::files(t.kubeconfig.as_deref(), &paths.kubeconfigs);
    let (targets, mut broken) =
        crate::fleet::kubeconfig::resolve(&files, &selection, &settings.clusters).await?;
    if targets.is_empty() && !broken.is_empty() {
        return Err(broken.remove(0).into());
    }
    let mut targets = targets;
    for t in &mut targets {
        t.namespaces = std::iter::once(&t.context)
            .chain(&t.aliases)
            .flat_map(|c| settings.context_namespaces(c))
            .collect();
    }
    let broken_contexts: Vec<crate::fleet::BrokenContext> = broken
        .iter()
        .filter_map(|b| {
            b.context().map(|c| crate::fleet::BrokenContext {
                context: c.to_string(),
                error: b.to_string(),
            })
        })
        .collect();
    let broken: Vec<String> = broken.iter().map(ToString::to_string).collect();
    for b in &broken {
        crate::say!("warning: {b}: this context is left out");
    }
    let mut session = Session::from_targets(
        targets,
        args.access.readonly,
        |c| settings.context_read_only(c),
        crate::session::Impersonation {
            user: args.access.as_user.clone(),
            groups: args.access.as_groups.clone(),
        },
        args.access
            .request_timeout
            .map(Duration::from_secs)
            .unwrap_or(crate::session::DEFAULT_REQUEST_TIMEOUT),
    );
    session.broken = broken;
    session.broken_contexts = broken_contexts;
    Ok(session)
}

/// Start the fleet of a session and wait for it (at most `wait` seconds).
pub(crate) async fn synced_fleet(
    session: &Session,
    wait: u64,
) -> (crate::fleet::FleetHandle, bool, Arc<crate::model::Snapshot>) {
    let mut handle =
        crate::fleet::start_with(session.targets.clone(), session.broken_contexts.clone());
    let all_synced = handle.wait_synced(Duration::from_secs(wait)).await;
    // one more publish interval so the counts are the settled ones
    tokio::time::sleep(crate::fleet::PUBLISH_EVERY * 2).await;
    let snap = handle.latest();
    (handle, all_synced, snap)
}

pub(crate) fn structured<T: serde::Serialize>(
    format: ReportFormat,
    v: &T,
) -> anyhow::Result<String> {
    Ok(match format {
        ReportFormat::Json => {
            let mut s = serde_json::to_string_pretty(v)?;
            s.push('\n');
            s
        }
        ReportFormat::Yaml | ReportFormat::Text => {
            crate::yaml::to_string(&serde_json::to_value(v)?).map_err(|e| anyhow::anyhow!("{e}"))?
        }
    })
}

/// This process's resident memory now, and at its peak (Linux), for the log.
pub(crate) fn resident_kib() -> Option<u64> {
    proc_status_kib("VmRSS:")
}

pub(crate) fn peak_resident_kib() -> Option<u64> {
    proc_status_kib("VmHWM:")
}

/// What the allocator has handed out and not had back (glibc only): the heap the data holds,
/// without the arenas' free pages or the binary's mapped text that RSS also counts.
pub(crate) fn heap_in_use_kib() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's counters.
        let m = unsafe { libc::mallinfo2() };
        Some(m.uordblks as u64 / 1024)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

pub(crate) fn proc_status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
