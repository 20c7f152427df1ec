//! What each subcommand does, given parsed arguments.

use crate::cli::{
    Cli, Command, DemoArgs, InfoFormat, ReportFormat, SessionArgs, SimCommand, SimCtlAction,
    SimServeArgs, UiArgs,
};
use crate::config::Paths;
use crate::pipeline::Exit;
use crate::session::Session;
use crate::sim::{Fleet, FleetSpec, control};
use anyhow::Context;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// `Exit` as the process's exit code.
trait ExitExt {
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
    ($($t:tt)*) => { $crate::run::emit(format_args!($($t)*)) };
}
macro_rules! outln {
    () => { $crate::run::emit(format_args!("\n")) };
    ($($t:tt)*) => {{ $crate::run::emit(format_args!($($t)*)); $crate::run::emit(format_args!("\n")); }};
}

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
            eprintln!("meshdeck: {e}");
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
        None => runtime()?.block_on(console(&session, &ui, &paths)),
        Some(Command::Demo(args)) => runtime()?.block_on(demo(args, &session, &ui, &paths)),
        Some(Command::Screenshots(args)) => runtime()?.block_on(screenshots(args)),
        Some(Command::Sim(SimCommand::Serve(args))) => runtime()?.block_on(sim_serve(args)),
        Some(Command::Sim(SimCommand::Ctl(args))) => runtime()?.block_on(async {
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
                SimCtlAction::ClearRequests { cluster } => {
                    control::clear_requests(addr, &cluster).await?
                }
                SimCtlAction::Clusters => {
                    let mut s = control::request(addr, http::Method::GET, "/clusters", "").await?;
                    s.push('\n');
                    s
                }
            };
            out!("{out}");
            Ok(ExitCode::SUCCESS)
        }),
        Some(Command::Status(args)) => runtime()?.block_on(status(args, &session, &paths)),
        Some(Command::Translate(args)) => {
            runtime()?.block_on(translate(args, &session, &paths, false))
        }
        Some(Command::Diff(args)) => runtime()?.block_on(diff_apply(args, &session, &paths, false)),
        Some(Command::Apply(args)) => runtime()?.block_on(diff_apply(args, &session, &paths, true)),
        Some(Command::Check(args)) => runtime()?.block_on(translate(args, &session, &paths, true)),
        Some(Command::Info(_)) | Some(Command::Completions { .. }) => Ok(ExitCode::SUCCESS),
    }
}

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

async fn sim_serve(args: SimServeArgs) -> anyhow::Result<ExitCode> {
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
    println!(
        "meshdeck sim: ready clusters={} kubeconfig={} control={} startup_ms={}",
        fleet.names().join(","),
        args.kubeconfig.display(),
        control.map_or_else(|| "none".to_string(), |a| a.to_string()),
        started.elapsed().as_millis()
    );
    tracing::info!(clusters = ?fleet.names(), "simulated fleet ready");
    shutdown_signal().await;
    stop.cancel();
    eprintln!("meshdeck sim: stopping");
    drop(fleet);
    Ok(ExitCode::SUCCESS)
}

async fn demo(
    args: DemoArgs,
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
    let kubeconfig = paths.demo_dir.join("kubeconfig");
    fleet.write_kubeconfig(&kubeconfig)?;
    let stop = CancellationToken::new();
    let control = start_control(&fleet, args.control, &stop).await?;
    let names = fleet.names();
    let console_wanted = !args.no_console && std::io::stdout().is_terminal();
    if !console_wanted {
        println!(
            "meshdeck demo: {} simulated clusters are running: {}",
            names.len(),
            names.join(", ")
        );
        println!("  kubeconfig  {}", kubeconfig.display());
        println!(
            "  try         kubectl --kubeconfig {} --context {} get pods -A",
            kubeconfig.display(),
            names.last().map(String::as_str).unwrap_or("")
        );
        if let Some(c) = control {
            println!(
                "  control     meshdeck sim ctl --control {c} fault {} down",
                names[0]
            );
        }
        println!("Ctrl-C stops the fleet.");
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
        let code = console(&fleet_args, ui, paths).await;
        stop.cancel();
        drop(fleet);
        return code;
    }
    stop.cancel();
    drop(fleet);
    Ok(ExitCode::SUCCESS)
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
    let targets = crate::fleet::kubeconfig::targets(&files, &selection).await?;
    Ok(Session::from_targets(
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
    ))
}

/// Open the console over the selected contexts.
async fn console(args: &SessionArgs, ui: &UiArgs, paths: &Paths) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal;
    anyhow::ensure!(
        std::io::stdout().is_terminal() && std::io::stdin().is_terminal(),
        "the console needs a terminal (for scripts and CI, use `meshdeck status`)"
    );
    let settings = crate::config::Settings::load(&paths.settings_file)?;
    let session = open_session(args, &settings, paths).await?;
    let contexts: Vec<String> = session.targets.iter().map(|t| t.context.clone()).collect();
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let theme_name = crate::ui::theme::choose(
        no_color,
        ui.theme.as_deref(),
        settings.context_theme(contexts.iter().map(String::as_str)),
        settings.theme.as_deref(),
    );
    let theme = crate::ui::theme::load(theme_name, Some(&paths.themes_dir))
        .map_err(|e| anyhow::anyhow!("theme: {e}"))?;
    let keymap_name = ui
        .keymap
        .as_deref()
        .or(settings.keymap.as_deref())
        .unwrap_or("default");
    let keymap = crate::ui::keymap::load(keymap_name, Some(&paths.keymaps_dir))
        .map_err(|e| anyhow::anyhow!("keymap: {e}"))?;
    // the badge says READ-ONLY when nothing may be written anywhere
    let readonly = session.readonly;
    tracing::info!(?contexts, theme = %theme.name, keymap = %keymap.name, readonly, "opening the console");
    let handle = crate::fleet::start(session.targets.clone());
    let fetcher = Arc::new(crate::fleet::fetch::Fetcher::new(&session.targets));
    let mut app = crate::ui::app::App::new(handle.latest(), keymap, theme, readonly);
    app.readonly_contexts = if readonly {
        vec![]
    } else {
        session.readonly_contexts()
    };
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
    crate::ui::run(app, handle, fetcher, Some(authoring)).await?;
    Ok(ExitCode::SUCCESS)
}

/// Render the main views from a demo fleet into SVG pictures.
async fn screenshots(args: crate::cli::ScreenshotArgs) -> anyhow::Result<ExitCode> {
    let written = crate::ui::shots::write_all(&args.out).await?;
    for p in written {
        outln!("{}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// This process's resident memory (Linux), for the log.
fn resident_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Start the fleet of a session and wait for it (at most `wait` seconds).
async fn synced_fleet(
    session: &Session,
    wait: u64,
) -> (crate::fleet::FleetHandle, bool, Arc<crate::model::Snapshot>) {
    let mut handle = crate::fleet::start(session.targets.clone());
    let all_synced = handle.wait_synced(Duration::from_secs(wait)).await;
    // one more publish interval so the counts are the settled ones
    tokio::time::sleep(crate::fleet::PUBLISH_EVERY * 2).await;
    let snap = handle.latest();
    (handle, all_synced, snap)
}

async fn status(
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
        "fleet snapshot ready"
    );
    let text = crate::status::render(
        &snap,
        args.output,
        crate::status::Sections {
            services: args.services,
            workloads: args.workloads,
        },
    )
    .map_err(|e| anyhow::anyhow!("rendering the status: {e}"))?;
    out!("{text}");
    let (ready, _) = crate::pipeline::readiness(&snap);
    Ok(if ready.is_empty() && !snap.clusters.is_empty() {
        Exit::Unreachable.code()
    } else if all_synced && ready.len() == snap.clusters.len() {
        Exit::Success.code()
    } else {
        Exit::Partial.code()
    })
}

/// The fleet a headless command works on: an offline inventory, or live contexts (waited on).
async fn fleet_snapshot(
    inventory: Option<&std::path::Path>,
    session: &SessionArgs,
    wait: u64,
    paths: &Paths,
) -> anyhow::Result<(
    Option<crate::fleet::FleetHandle>,
    Arc<crate::model::Snapshot>,
)> {
    if let Some(dir) = inventory {
        return Ok((None, Arc::new(crate::inventory::load(dir)?)));
    }
    let settings = crate::config::Settings::load(&paths.settings_file)?;
    let session = open_session(session, &settings, paths).await?;
    let (handle, _, snap) = synced_fleet(&session, wait).await;
    let (_, left) = crate::pipeline::readiness(&snap);
    for l in left {
        eprintln!(
            "warning: cluster {} is {}{}: translating with what is known",
            l.cluster,
            l.state,
            l.error.map(|e| format!(" ({e})")).unwrap_or_default()
        );
    }
    Ok((Some(handle), snap))
}

fn structured<T: serde::Serialize>(format: ReportFormat, v: &T) -> anyhow::Result<String> {
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

async fn translate(
    args: crate::cli::TranslateArgs,
    session: &SessionArgs,
    paths: &Paths,
    check_only: bool,
) -> anyhow::Result<ExitCode> {
    if args.inventory.is_some() && session.targets != crate::cli::TargetArgs::default() {
        eprintln!(
            "meshdeck: --inventory reads the fleet from files: --kubeconfig, --context and --all-contexts mean nothing with it"
        );
        return Ok(Exit::Invalid.code());
    }
    let (_handle, snap) =
        fleet_snapshot(args.inventory.as_deref(), session, args.wait_synced, paths).await?;
    let loaded = crate::policy::load_all(&args.files, &snap);
    if args.files.is_empty() && loaded.policies.is_empty() && loaded.diagnostics.is_empty() {
        eprintln!(
            "meshdeck: no policies: give -f PATH, or store policies in a cluster of the fleet"
        );
        return Ok(Exit::Invalid.code());
    }
    let out = crate::translate::translate(&loaded.policies, &snap);
    let invalid_objects = crate::istio::validate_all(&out.objects);
    let report = crate::translate::report::render(&loaded, &out, &invalid_objects);
    let file_errors = loaded.errors().any(|d| !d.origin.starts_with("cluster/"));
    let conflicting = out
        .statuses
        .iter()
        .any(|s| s.state == crate::translate::State::Conflicting);
    let exit = if file_errors || !invalid_objects.is_empty() {
        Exit::Invalid
    } else if check_only && conflicting {
        Exit::Partial
    } else {
        Exit::Success
    };
    if check_only && matches!(args.output, ReportFormat::Json | ReportFormat::Yaml) {
        #[derive(serde::Serialize)]
        struct CheckReport<'a> {
            diagnostics: &'a [crate::policy::Diagnostic],
            statuses: &'a [crate::translate::PolicyStatus],
            schema: Vec<(String, String)>,
            exit: Exit,
        }
        out!(
            "{}",
            structured(
                args.output,
                &CheckReport {
                    diagnostics: &loaded.diagnostics,
                    statuses: &out.statuses,
                    schema: invalid_objects
                        .iter()
                        .map(|(w, e)| (w.clone(), e.to_string()))
                        .collect(),
                    exit,
                }
            )?
        );
        return Ok(exit.code());
    }
    if !check_only {
        let text = match args.output {
            ReportFormat::Yaml | ReportFormat::Text => {
                crate::translate::report::yaml_stream(&out.objects)
                    .map_err(|e| anyhow::anyhow!("writing YAML: {e}"))?
            }
            ReportFormat::Json => crate::translate::report::json_list(&out.objects)?,
        };
        out!("{text}");
    }
    eprint!("{report}");
    Ok(exit.code())
}

/// What `diff` and `apply` print with `-o json|yaml`.
#[derive(serde::Serialize)]
struct RunReport<'a> {
    planned: &'a crate::pipeline::Planned,
    #[serde(skip_serializing_if = "Option::is_none")]
    executed: Option<&'a crate::pipeline::Executed>,
    exit: Exit,
}

/// `meshdeck diff` and `meshdeck apply`: the pipeline, rendered.
async fn diff_apply(
    args: crate::cli::ApplyArgs,
    session_args: &SessionArgs,
    paths: &Paths,
    apply: bool,
) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal;
    let settings = crate::config::Settings::load(&paths.settings_file)?;
    let session = open_session(session_args, &settings, paths).await?;
    let text_out = args.output == ReportFormat::Text;
    let (_handle, _, snap) = synced_fleet(&session, args.wait_synced).await;
    let (ready, _) = crate::pipeline::readiness(&snap);
    let mut loaded = crate::policy::load_all(&args.files, &snap);
    if let Some(m) = &args.mgmt_context
        && !ready.contains(m)
    {
        eprintln!("error: --mgmt-context {m}: not among the synced contexts of this run");
        return Ok(Exit::Partial.code());
    }
    if let Some(m) = &args.mgmt_context
        && args.prune
    {
        // The files are the truth: meshdeck-managed policy CRs that are not in them are
        // about to be pruned, so they generate nothing.
        let origin = format!("cluster/{m}");
        loaded.policies.retain(|p| {
            p.origin.name != origin
                || p.meta
                    .labels
                    .get(crate::translate::MANAGED_BY)
                    .map(String::as_str)
                    != Some("meshdeck")
        });
    }
    if !args.roles.is_empty() {
        let r = crate::policy::load_paths(&args.roles);
        for d in &r.diagnostics {
            eprintln!("{d}");
        }
        if r.has_errors() {
            return Ok(Exit::Invalid.code());
        }
        loaded.roles.extend(r.roles);
        loaded.bindings.extend(r.bindings);
    }
    for d in loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity != crate::policy::Severity::Error)
    {
        eprintln!("{d}");
    }
    let live = crate::pipeline::live_objects(&snap);
    let translator = crate::translate::Translator::new(&snap);
    let who = session.subject();
    let file_policies: Vec<&crate::policy::Policy> = loaded
        .policies
        .iter()
        .filter(|p| !p.origin.name.starts_with("cluster/"))
        .collect();
    let planned = crate::pipeline::plan(&crate::pipeline::Request {
        snap: &snap,
        translator: &translator,
        loaded: &loaded,
        live: &live,
        prune: args.prune,
        scope: crate::pipeline::Scope::All,
        store: args.mgmt_context.as_deref().map(|m| (m, file_policies)),
        who: &who,
    });
    let finish = |planned: &crate::pipeline::Planned,
                  executed: Option<&crate::pipeline::Executed>,
                  exit: Exit|
     -> anyhow::Result<ExitCode> {
        if !text_out {
            out!(
                "{}",
                structured(
                    args.output,
                    &RunReport {
                        planned,
                        executed,
                        exit
                    }
                )?
            );
        }
        Ok(exit.code())
    };
    for e in &planned.errors {
        eprintln!("{e}");
    }
    if !planned.errors.is_empty() {
        eprintln!("error: invalid policies: nothing planned");
        return finish(&planned, None, Exit::Invalid);
    }
    if ready.is_empty() {
        for w in crate::pipeline::warnings(&planned) {
            eprintln!("warning: {w}");
        }
        eprintln!("error: no cluster of the session could be reached: nothing planned");
        return finish(&planned, None, Exit::Unreachable);
    }
    for (what, e) in &planned.schema {
        eprintln!("schema: {what}: {e}");
    }
    if !planned.schema.is_empty() {
        return finish(&planned, None, Exit::Invalid);
    }
    for st in &planned.statuses {
        eprintln!("{}: {}", st.policy, st.state.word());
        for e in st.errors.iter().chain(&st.warnings) {
            eprintln!("  {e}");
        }
    }
    let color = text_out
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let plan = &planned.plan;
    if text_out {
        out!("{}", crate::plan::render(plan, color));
    }
    for w in crate::pipeline::warnings(&planned) {
        eprintln!("warning: {w}");
    }
    let partial =
        !planned.left_out.is_empty() || !planned.held.is_empty() || !planned.conflicts().is_empty();
    let base = if partial {
        Exit::Partial
    } else {
        Exit::Success
    };
    let say = |l: String| {
        if text_out {
            outln!("{l}");
        } else {
            eprintln!("{l}");
        }
    };
    say(String::new());
    match &planned.roles {
        Some(crate::pipeline::RoleCheck::Denied { denials }) => {
            for d in denials {
                say(format!("role check: {}: {}", d.policy, d.reason));
            }
        }
        Some(crate::pipeline::RoleCheck::Allowed { user, policies }) => say(format!(
            "role check: {policies} changed policies allowed for {user:?}"
        )),
        _ => say(
            "role check: no meshdeck Roles found: role checks are off (Kubernetes RBAC still applies)"
                .into(),
        ),
    }
    if !apply {
        // Kubernetes RBAC, asked of the clusters this session may write (a read-only session
        // asks nothing: a review is a POST).
        if session.readonly {
            say("kubernetes rbac: not asked (read-only session)".into());
        } else if plan.has_changes() {
            let reviews =
                crate::pipeline::review(plan, &session.write_clients(), session.request_timeout)
                    .await;
            for d in &reviews.denied {
                say(format!("kubernetes rbac: {d}"));
            }
            for (c, why) in &reviews.failed {
                say(format!("kubernetes rbac: {c}: {why}"));
            }
            if reviews.denied.is_empty() && reviews.failed.is_empty() {
                say(format!(
                    "kubernetes rbac: all {} planned writes allowed",
                    reviews.asked
                ));
            }
        }
        let exit = if plan.has_changes() {
            Exit::Changes.max(base)
        } else {
            base
        };
        return finish(&planned, None, exit);
    }
    if session.readonly && plan.has_changes() {
        eprintln!(
            "error: read-only: this session cannot write (--readonly or a readOnly context); nothing was sent"
        );
        return finish(&planned, None, Exit::Refused);
    }
    let readonly_hit: Vec<&str> = plan
        .clusters()
        .into_iter()
        .filter(|c| session.readonly_contexts().iter().any(|r| r == c))
        .collect();
    if !readonly_hit.is_empty() {
        eprintln!(
            "error: read-only: {} {} readOnly in the settings; nothing was sent",
            readonly_hit.join(", "),
            if readonly_hit.len() == 1 { "is" } else { "are" }
        );
        return finish(&planned, None, Exit::Refused);
    }
    if planned.denied() && plan.has_changes() {
        eprintln!("error: not allowed by meshdeck roles (above): nothing was sent");
        return finish(&planned, None, Exit::Refused);
    }
    if !plan.has_changes() {
        say("nothing to apply".into());
        return finish(&planned, None, base);
    }
    let Some(writer) = session.writer(args.force_conflicts, &paths.audit_log)? else {
        eprintln!("error: read-only: this session cannot write; nothing was sent");
        return finish(&planned, None, Exit::Refused);
    };
    let clusters: Vec<&str> = plan.clusters().into_iter().collect();
    if !args.yes && !args.dry_run {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "error: not a terminal: add --yes to apply to {}",
                clusters.join(", ")
            );
            return finish(&planned, None, Exit::Refused);
        }
        eprint!(
            "apply {} changes to {}? [y/N] ",
            plan.changes().count(),
            clusters.join(", ")
        );
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("not applied");
            return finish(&planned, None, Exit::Refused);
        }
    }
    let executed =
        crate::pipeline::execute(&writer, plan, args.dry_run, session.request_timeout).await;
    for l in crate::pipeline::executed_lines(&executed) {
        say(l);
    }
    let report = &executed.report;
    let exit = if executed.refused.is_some() {
        Exit::Refused
    } else if report.dry_run_failed {
        Exit::Invalid
    } else if report.failed().next().is_some() || !report.skipped.is_empty() {
        Exit::Partial
    } else {
        base
    };
    finish(&planned, Some(&executed), exit)
}
