//! Logs go to a file (the terminal belongs to the console): the state directory's
//! `meshdeck.log`, or `--log-file`. `MESHDECK_LOG` takes a tracing filter (`debug`,
//! `meshdeck::fleet=trace`, ...).

use anyhow::Context;
use std::path::Path;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Start logging to `file`; keep the guard alive for the program's life (it flushes on drop).
pub fn init(file: &Path, verbose: u8) -> anyhow::Result<WorkerGuard> {
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        // a new directory is private to the user (the state directory holds drafts and audit)
        crate::config::private_dir(dir)
            .with_context(|| format!("creating the log directory {}", dir.display()))?;
    }
    let name = file
        .file_name()
        .with_context(|| format!("the log file {} has no file name", file.display()))?;
    // Fail here, with the path named, rather than silently inside the appender thread.
    crate::config::private_append(file)
        .with_context(|| format!("opening the log file {}", file.display()))?;
    let appender = tracing_appender::rolling::never(dir, name);
    // a bounded queue of 4,096 lines (the default 128,000 preallocates 4 MiB); when full, lines
    // are dropped, never the UI blocked
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(4096)
        .lossy(true)
        .finish(appender);
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("MESHDECK_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("{default},hyper=info,rustls=info,tower=info")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init()
        .map_err(|e| anyhow::anyhow!("starting the logger: {e}"))?;
    Ok(guard)
}
