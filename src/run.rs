//! What each subcommand does, given parsed arguments.

use crate::cli::{
    Cli, Command, DemoArgs, InfoFormat, SimCommand, SimCtlAction, SimServeArgs, UiArgs,
};
use crate::config::Paths;
use crate::sim::{Fleet, FleetSpec, control};
use anyhow::Context;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    let paths = Paths::resolve(cli.global.log_file.as_deref())?;
    if let Some(Command::Completions { shell }) = &cli.command {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(*shell, &mut cmd, "meshdeck", &mut std::io::stdout());
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(Command::Info(args)) = &cli.command {
        match args.output {
            InfoFormat::Text => print!("{}", paths.to_text()),
            InfoFormat::Json => println!("{}", serde_json::to_string_pretty(&paths)?),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let _guard = crate::logging::init(&paths.log_file, cli.global.verbose)?;
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "meshdeck starting");
    match cli.command {
        None => runtime()?.block_on(console(&cli.fleet, &cli.ui, &paths)),
        Some(Command::Demo(args)) => runtime()?.block_on(demo(args, &cli.ui, &paths)),
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
            print!("{out}");
            Ok(ExitCode::SUCCESS)
        }),
        Some(Command::Status(args)) => runtime()?.block_on(status(args, &paths)),
        Some(Command::Translate(args)) => runtime()?.block_on(translate(args, &paths, false)),
        Some(Command::Diff(args)) => runtime()?.block_on(diff_apply(args, &paths, false)),
        Some(Command::Apply(args)) => runtime()?.block_on(diff_apply(args, &paths, true)),
        Some(Command::Check(args)) => runtime()?.block_on(translate(args, &paths, true)),
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

async fn demo(args: DemoArgs, ui: &UiArgs, paths: &Paths) -> anyhow::Result<ExitCode> {
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
        let fleet_args = crate::cli::FleetArgs {
            kubeconfig: Some(kubeconfig.clone()),
            context: names.clone(),
            all_contexts: false,
            readonly: args.readonly,
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

/// Open the console over the selected contexts.
async fn console(
    fleet_args: &crate::cli::FleetArgs,
    ui: &UiArgs,
    paths: &Paths,
) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal;
    anyhow::ensure!(
        std::io::stdout().is_terminal() && std::io::stdin().is_terminal(),
        "the console needs a terminal (for scripts and CI, use `meshdeck status`)"
    );
    let settings = crate::config::Settings::load(&paths.settings_file)?;
    let targets = resolve_targets(fleet_args, paths).await?;
    let contexts: Vec<String> = targets.iter().map(|t| t.context.clone()).collect();
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
    let readonly_contexts: Vec<String> = contexts
        .iter()
        .filter(|c| fleet_args.readonly || settings.context_read_only(c))
        .cloned()
        .collect();
    // the badge says READ-ONLY when nothing may be written anywhere
    let readonly =
        fleet_args.readonly || (!contexts.is_empty() && readonly_contexts.len() == contexts.len());
    tracing::info!(?contexts, theme = %theme.name, keymap = %keymap.name, readonly, "opening the console");
    let handle = crate::fleet::start(targets.clone());
    let fetcher = Arc::new(crate::fleet::fetch::Fetcher::new(&targets));
    let mut app = crate::ui::app::App::new(handle.latest(), keymap, theme, readonly);
    app.readonly_contexts = if readonly {
        vec![]
    } else {
        readonly_contexts.clone()
    };
    let user = targets.first().map(|t| t.user.clone()).unwrap_or_default();
    let writer = match crate::apply::Access::new(readonly) {
        crate::apply::Access::ReadOnly => None,
        crate::apply::Access::ReadWrite(token) => {
            // read-only contexts get no client: nothing can be written there
            let mut clients = std::collections::BTreeMap::new();
            for t in targets
                .iter()
                .filter(|t| !readonly_contexts.contains(&t.context))
            {
                match kube::Client::try_from(t.config.clone()) {
                    Ok(c) => {
                        clients.insert(t.context.clone(), c);
                    }
                    Err(e) => tracing::warn!(context = %t.context, error = %e, "no client"),
                }
            }
            Some(Arc::new(crate::apply::Writer::new(
                token,
                clients,
                &user,
                false,
                &paths.audit_log,
            )?))
        }
    };
    let authoring = crate::ui::Authoring {
        store: crate::author::Store {
            dir: ui
                .policies
                .clone()
                .unwrap_or_else(|| paths.state_dir.join("policies")),
            extra: vec![],
            drafts: paths.drafts_dir.clone(),
            who: crate::rbac::Subject {
                user,
                groups: vec![],
            },
        },
        writer,
        audit_log: paths.audit_log.clone(),
    };
    crate::ui::run(app, handle, fetcher, Some(authoring)).await?;
    Ok(ExitCode::SUCCESS)
}

/// Render the main views from a demo fleet into SVG pictures.
async fn screenshots(args: crate::cli::ScreenshotArgs) -> anyhow::Result<ExitCode> {
    let written = crate::ui::shots::write_all(&args.out).await?;
    for p in written {
        println!("{}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The contexts to connect to: flags first, then the settings file's `fleet:` list, then the
/// kubeconfig's current context.
pub async fn resolve_targets(
    fleet: &crate::cli::FleetArgs,
    paths: &Paths,
) -> anyhow::Result<Vec<crate::fleet::Target>> {
    let settings = crate::config::Settings::load(&paths.settings_file)?;
    let selection = if fleet.all_contexts {
        crate::fleet::Selection::All
    } else if !fleet.context.is_empty() {
        crate::fleet::Selection::Named(fleet.context.clone())
    } else if !settings.fleet.is_empty() {
        crate::fleet::Selection::Named(settings.fleet.clone())
    } else {
        crate::fleet::Selection::Current
    };
    let files = crate::fleet::kubeconfig::files(fleet.kubeconfig.as_deref(), &paths.kubeconfigs);
    crate::fleet::kubeconfig::targets(&files, &selection).await
}

/// This process's resident memory (Linux), for the log.
fn resident_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn status(args: crate::cli::StatusArgs, paths: &Paths) -> anyhow::Result<ExitCode> {
    let targets = resolve_targets(&args.fleet, paths).await?;
    let started = std::time::Instant::now();
    let mut handle = crate::fleet::start(targets);
    let all_synced = handle
        .wait_synced(Duration::from_secs(args.wait_synced))
        .await;
    // one more publish interval so the counts are the settled ones
    tokio::time::sleep(crate::fleet::PUBLISH_EVERY * 2).await;
    let snap = handle.latest();
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
    print!("{text}");
    let synced = all_synced
        && snap
            .clusters
            .iter()
            .all(|c| c.state == crate::model::ConnState::Synced);
    Ok(if synced {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// The fleet a headless command works on: an offline inventory, or live contexts (waited on).
async fn fleet_snapshot(
    inventory: Option<&std::path::Path>,
    fleet: &crate::cli::FleetArgs,
    wait: u64,
    paths: &Paths,
) -> anyhow::Result<std::sync::Arc<crate::model::Snapshot>> {
    if let Some(dir) = inventory {
        return Ok(std::sync::Arc::new(crate::inventory::load(dir)?));
    }
    let targets = resolve_targets(fleet, paths).await?;
    let mut handle = crate::fleet::start(targets);
    let synced = handle.wait_synced(Duration::from_secs(wait)).await;
    tokio::time::sleep(crate::fleet::PUBLISH_EVERY * 2).await;
    let snap = handle.latest();
    if !synced {
        for c in snap
            .clusters
            .iter()
            .filter(|c| c.state != crate::model::ConnState::Synced)
        {
            eprintln!(
                "warning: cluster {} is {}{}: translating with what is known",
                c.name,
                c.state.word(),
                c.state
                    .error()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(snap)
}

async fn translate(
    args: crate::cli::TranslateArgs,
    paths: &Paths,
    check_only: bool,
) -> anyhow::Result<ExitCode> {
    let snap = fleet_snapshot(
        args.inventory.as_deref(),
        &args.fleet,
        args.wait_synced,
        paths,
    )
    .await?;
    let loaded = crate::policy::load_all(&args.files, &snap);
    if args.files.is_empty() && loaded.policies.is_empty() && loaded.diagnostics.is_empty() {
        anyhow::bail!("no policies: give -f PATH, or store policies in a cluster of the fleet");
    }
    let out = crate::translate::translate(&loaded.policies, &snap);
    let invalid_objects = crate::istio::validate_all(&out.objects);
    let report = crate::translate::report::render(&loaded, &out, &invalid_objects);
    if !check_only {
        let text = match args.output {
            crate::cli::ObjectFormat::Yaml => crate::translate::report::yaml_stream(&out.objects)
                .map_err(|e| anyhow::anyhow!("writing YAML: {e}"))?,
            crate::cli::ObjectFormat::Json => crate::translate::report::json_list(&out.objects)?,
        };
        print!("{text}");
    }
    eprint!("{report}");
    if !invalid_objects.is_empty() {
        return Ok(ExitCode::from(2));
    }
    let conflicting = out
        .statuses
        .iter()
        .any(|s| s.state == crate::translate::State::Conflicting);
    Ok(if loaded.has_errors() || (check_only && conflicting) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `meshdeck diff` and `meshdeck apply`.
async fn diff_apply(
    args: crate::cli::ApplyArgs,
    paths: &Paths,
    apply: bool,
) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal;
    let settings = crate::config::Settings::load(&paths.settings_file)?;
    let targets = resolve_targets(&args.fleet, paths).await?;
    let mut handle = crate::fleet::start(targets.clone());
    let synced = handle
        .wait_synced(Duration::from_secs(args.wait_synced))
        .await;
    tokio::time::sleep(crate::fleet::PUBLISH_EVERY * 2).await;
    let snap = handle.latest();
    let ready: std::collections::BTreeSet<String> = snap
        .clusters
        .iter()
        .filter(|c| c.state == crate::model::ConnState::Synced)
        .map(|c| c.name.clone())
        .collect();
    if !synced {
        for c in snap.clusters.iter().filter(|c| !ready.contains(&c.name)) {
            eprintln!(
                "warning: cluster {} is {}{}: left out of the plan",
                c.name,
                c.state.word(),
                c.state
                    .error()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
        }
    }
    let mut loaded = crate::policy::load_all(&args.files, &snap);
    if let Some(m) = &args.mgmt_context {
        if !ready.contains(m) {
            anyhow::bail!("--mgmt-context {m}: not among the synced contexts of this run");
        }
        if args.prune {
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
    }
    for d in &loaded.diagnostics {
        eprintln!("{d}");
    }
    if loaded.has_errors() {
        eprintln!("error: invalid policies: nothing planned");
        return Ok(ExitCode::from(2));
    }
    let out = crate::translate::translate(&loaded.policies, &snap);
    let invalid = crate::istio::validate_all(&out.objects);
    if !invalid.is_empty() {
        for (what, e) in &invalid {
            eprintln!("schema: {what}: {e}");
        }
        return Ok(ExitCode::from(2));
    }
    for st in out
        .statuses
        .iter()
        .filter(|s| s.state != crate::translate::State::Accepted)
    {
        eprintln!("{}: {}", st.policy, st.state.word());
        for e in st.errors.iter().chain(&st.warnings) {
            eprintln!("  {e}");
        }
    }
    let mut clients: std::collections::BTreeMap<String, kube::Client> = Default::default();
    let mut live = Vec::new();
    for t in targets.iter().filter(|t| ready.contains(&t.context)) {
        let client = kube::Client::try_from(t.config.clone())
            .map_err(|e| anyhow::anyhow!("{}: {}", t.context, crate::fleet::describe_error(&e)))?;
        live.extend(
            crate::fleet::fetch::list_generated_kinds(&client, &t.context)
                .await
                .map_err(|e| anyhow::anyhow!(e))?,
        );
        clients.insert(t.context.clone(), client);
    }
    let mut objects = out.objects.clone();
    if let Some(m) = &args.mgmt_context {
        // The policies themselves, as custom resources in the management cluster.
        if let Some(client) = clients.get(m) {
            live.extend(
                crate::fleet::fetch::list_policy_kinds(client, m)
                    .await
                    .map_err(|e| anyhow::anyhow!(e))?,
            );
        }
        for p in loaded
            .policies
            .iter()
            .filter(|p| !p.origin.name.starts_with("cluster/"))
        {
            objects.push(crate::author::policy_object(p, m));
        }
    }
    let mut plan = crate::plan::plan(&objects, &live, &ready, args.prune);
    // Role checks: meshdeck Roles on the changed policies, then Kubernetes RBAC per write.
    let mut roles = loaded.roles.clone();
    let mut bindings = loaded.bindings.clone();
    if !args.roles.is_empty() {
        let r = crate::policy::load_paths(&args.roles);
        for d in &r.diagnostics {
            eprintln!("{d}");
        }
        if r.has_errors() {
            return Ok(ExitCode::from(2));
        }
        roles.extend(r.roles);
        bindings.extend(r.bindings);
    }
    let who = crate::rbac::Subject {
        user: args
            .as_user
            .clone()
            .or_else(|| targets.first().map(|t| t.user.clone()))
            .unwrap_or_default(),
        groups: args.as_groups.clone(),
    };
    // A user whose meshdeck Roles are checked writes the per-destination default objects (which
    // no policy owns) only for destinations their TrafficPolicy scopes cover.
    if !(roles.is_empty() && bindings.is_empty()) {
        let before = plan.items.len();
        plan.items.retain(|i| {
            !i.action.changes()
                || !i.policies.is_empty()
                || crate::rbac::covers_destination(
                    &who,
                    &roles,
                    &bindings,
                    &i.cluster,
                    &i.namespace,
                    &i.name,
                )
        });
        let skipped = before - plan.items.len();
        if skipped > 0 {
            eprintln!(
                "note: {skipped} default objects of destinations outside {:?}'s roles left out of the plan",
                who.user
            );
        }
    }
    let color = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    print!("{}", crate::plan::render(&plan, color));

    let changed: std::collections::BTreeSet<&str> = plan
        .changes()
        .flat_map(|i| i.policies.iter().map(String::as_str))
        .collect();
    let changed_policies: Vec<&crate::policy::Policy> = loaded
        .policies
        .iter()
        .filter(|p| {
            changed.contains(format!("{}/{}/{}", p.kind(), p.namespace(), p.meta.name).as_str())
        })
        .collect();
    let mut denied = false;
    println!();
    if roles.is_empty() && bindings.is_empty() {
        println!(
            "role check: no meshdeck Roles found: role checks are off (Kubernetes RBAC still applies)"
        );
    } else {
        let denials = crate::rbac::check(&changed_policies, &who, &roles, &bindings);
        if denials.is_empty() {
            println!(
                "role check: {} changed policies allowed for {:?}",
                changed_policies.len(),
                who.user
            );
        }
        for d in &denials {
            println!("role check: {}: {}", d.policy, d.reason);
        }
        denied |= !denials.is_empty();
    }
    let keys = crate::rbac::plan_keys(&plan);
    let distinct: Vec<crate::rbac::AccessKey> = keys.iter().map(|(_, k)| k.clone()).collect();
    let reviews = crate::rbac::access_reviews(&clients, &distinct).await;
    let mut rbac_denied: std::collections::BTreeSet<String> = Default::default();
    for (i, k) in &keys {
        if let Some(Err(e)) = reviews.get(k)
            && rbac_denied.insert(format!("{}: {e}", plan.items[*i].id()))
        {
            println!("kubernetes rbac: {}: {e}", plan.items[*i].id());
        }
    }
    if rbac_denied.is_empty() && !keys.is_empty() {
        println!("kubernetes rbac: all {} planned writes allowed", keys.len());
    }
    denied |= !rbac_denied.is_empty();
    if !apply {
        return Ok(if plan.has_changes() {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }
    if denied && plan.has_changes() {
        eprintln!("error: not allowed (above): nothing was sent");
        return Ok(ExitCode::from(2));
    }
    if !plan.has_changes() {
        println!("\nnothing to apply");
        return Ok(ExitCode::SUCCESS);
    }
    let readonly = args.fleet.readonly
        || targets
            .iter()
            .any(|t| ready.contains(&t.context) && settings.context_read_only(&t.context));
    let token = match crate::apply::Access::new(readonly) {
        crate::apply::Access::ReadOnly => {
            eprintln!(
                "error: read-only: this session cannot write (--readonly or a readOnly context); nothing was sent"
            );
            return Ok(ExitCode::from(2));
        }
        crate::apply::Access::ReadWrite(t) => t,
    };
    let clusters: Vec<&str> = plan.clusters().into_iter().collect();
    if !args.yes && !args.dry_run {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "error: not a terminal: add --yes to apply to {}",
                clusters.join(", ")
            );
            return Ok(ExitCode::from(2));
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
            return Ok(ExitCode::from(2));
        }
    }
    let writer = crate::apply::Writer::new(
        token,
        clients,
        &who.user,
        args.force_conflicts,
        &paths.audit_log,
    )?;
    let report = writer.apply(&plan, args.dry_run).await;
    println!();
    for o in &report.outcomes {
        println!("{o}");
    }
    for (cluster, (ok, failed)) in report.per_cluster() {
        let what = if report.dry_run_failed || report.dry_run_only {
            "dry-run"
        } else {
            "applied"
        };
        println!("{cluster}: {what} {ok} ok, {failed} failed");
    }
    if report.dry_run_failed {
        println!("the dry-run failed: nothing was written to any cluster");
        return Ok(ExitCode::from(1));
    }
    if report.failed().next().is_some() {
        println!(
            "some clusters failed (above); the others are applied. Re-run to complete: apply is idempotent."
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
