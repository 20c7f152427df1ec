//! The console (no subcommand).

use super::open_session;
use crate::cli::{SessionArgs, UiArgs};
use crate::config::Paths;
use std::process::ExitCode;
use std::sync::Arc;

/// What the demo tells the console about its golden signals.
pub(super) struct DemoSignals {
    /// The demo's Prometheus, when one runs.
    pub prometheus: Option<String>,
    /// Which source the signals use, said once at start.
    pub notice: String,
}

/// Open the console over the selected contexts.
pub(super) async fn run(
    args: &SessionArgs,
    ui: &UiArgs,
    paths: &Paths,
    demo: Option<DemoSignals>,
) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal;
    anyhow::ensure!(
        std::io::stdout().is_terminal() && std::io::stdin().is_terminal(),
        "the console needs a terminal (for scripts and CI, use `meshdeck status`)"
    );
    let mut settings = crate::config::Settings::load(&paths.settings_file)?;
    if let Some(url) = demo.as_ref().and_then(|d| d.prometheus.clone()) {
        // the demo's own Prometheus scrapes every simulated cluster: one shared source
        settings.prometheus = Some(url);
    }
    let session = open_session(args, &settings, paths).await?;
    let contexts: Vec<String> = session.targets.iter().map(|t| t.context.clone()).collect();
    // what the terminal can show: colours and glyphs are fitted to it (TERM=screen gets 16
    // colours, LANG=C gets ASCII)
    let caps = crate::ui::term::Caps::detect();
    let no_color = caps.colors == crate::ui::term::Colors::None;
    let theme_name = crate::ui::theme::choose(
        no_color,
        ui.theme.as_deref(),
        settings.context_theme(contexts.iter().map(String::as_str)),
        settings.theme.as_deref(),
    );
    let theme = crate::ui::theme::load(theme_name, Some(&paths.themes_dir))
        .map_err(|e| anyhow::anyhow!("theme: {e}"))?
        .fitted(caps.colors);
    let keymap_name = ui
        .keymap
        .as_deref()
        .or(settings.keymap.as_deref())
        .unwrap_or("default");
    let keymap = crate::ui::keymap::load(keymap_name, Some(&paths.keymaps_dir))
        .map_err(|e| anyhow::anyhow!("keymap: {e}"))?;
    // the badge says READ-ONLY when nothing may be written anywhere
    let readonly = session.readonly;
    tracing::info!(?contexts, theme = %theme.name, keymap = %keymap.name, readonly, ?caps, "opening the console");
    let handle = crate::fleet::start_with(session.targets.clone(), session.broken_contexts.clone());
    let (signal_cfg, tolerances) = settings.signal_config(&session.targets)?;
    let signals = crate::signals::start(&session.targets, signal_cfg, handle.snapshots.clone());
    let fetcher = Arc::new(crate::fleet::fetch::Fetcher::new(&session.targets));
    let mut app = crate::ui::app::App::new(handle.latest(), keymap, theme, readonly);
    app.ascii = !caps.unicode;
    app.tolerances = Arc::new(tolerances);
    app.clipboard = crate::ui::term::clipboard_on(ui.clipboard, |k| std::env::var(k).ok());
    app.headless = ui.headless;
    if !ui.all_namespaces {
        app.namespace = ui.namespace.clone();
    }
    if let Some(cmd) = &ui.start_command {
        app.run_command(cmd);
    }
    app.readonly_clusters = if readonly {
        vec![]
    } else {
        session.readonly_clusters()
    };
    if let Some(d) = &demo {
        app.flash(d.notice.clone(), false);
    }
    for b in &session.broken {
        app.flash(format!("{b}: this context is left out"), true);
    }
    let writer = session.writer(false, &paths.audit_log)?.map(Arc::new);
    crate::config::private_dir(&paths.state_dir)?;
    let authoring = crate::ui::Authoring {
        store: crate::author::Store {
            dir: ui
                .policies
                .clone()
                .unwrap_or_else(|| paths.state_dir.join("policies")),
            extra: vec![],
            drafts: paths.drafts_dir.clone(),
            who: session.subject(),
        },
        writer,
        audit_log: paths.audit_log.clone(),
        request_timeout: session.request_timeout,
    };
    let reloader = crate::ui::reload::Reloader::new(
        paths.settings_file.clone(),
        paths.themes_dir.clone(),
        paths.keymaps_dir.clone(),
        ui.theme.clone(),
        ui.keymap.clone(),
        no_color,
        caps.colors,
        theme_name.to_string(),
        keymap_name.to_string(),
    );
    let ended = crate::ui::run(
        app,
        handle,
        fetcher,
        Some(authoring),
        Some(reloader),
        Some(signals),
    )
    .await?;
    // ended by a signal: 128 + its number, as a shell reports it
    Ok(ExitCode::from(ended.exit_code()))
}
