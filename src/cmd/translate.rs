//! `meshdeck translate` and `meshdeck check`.

use super::{ExitExt, open_session, structured, synced_fleet};
use crate::cli::{ReportFormat, SessionArgs};
use crate::config::Paths;
use crate::pipeline::Exit;
use std::process::ExitCode;
use std::sync::Arc;

/// The fleet a headless command works on: an offline inventory, or live contexts (waited on).
pub(super) async fn fleet_snapshot(
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
        crate::say!(
            "warning: cluster {} is {}{}: translating with what is known",
            l.cluster,
            l.state,
            l.error.map(|e| format!(" ({e})")).unwrap_or_default()
        );
    }
    Ok((Some(handle), snap))
}

/// `meshdeck translate` and `meshdeck check`.
pub(super) async fn run(
    args: crate::cli::TranslateArgs,
    session: &SessionArgs,
    paths: &Paths,
    check_only: bool,
) -> anyhow::Result<ExitCode> {
    if args.inventory.is_some() && session.targets != crate::cli::TargetArgs::default() {
        crate::say!(
            "meshdeck: --inventory reads the fleet from files: --kubeconfig, --context and --all-contexts mean nothing with it"
        );
        return Ok(Exit::Invalid.code());
    }
    let (_handle, snap) =
        fleet_snapshot(args.inventory.as_deref(), session, args.wait_synced, paths).await?;
    let loaded = crate::policy::load_all(&args.files, &snap);
    if args.files.is_empty() && loaded.policies.is_empty() && loaded.diagnostics.is_empty() {
        crate::say!(
            "meshdeck: no policies: give -f PATH, or store policies in a cluster of the fleet"
        );
        return Ok(Exit::Invalid.code());
    }
    let mut out = crate::translate::translate(&loaded.policies, &snap);
    let invalid_objects = crate::istio::validate_all(&out.objects);
    let file_errors = loaded
        .errors()
        .any(|d| crate::policy::stored_in(&d.origin).is_none());
    use crate::translate::State;
    let conflicting = out.statuses.iter().any(|s| s.state == State::Conflicting);
    // a policy the translator finds invalid (a ref to a destination that does not exist)
    let invalid_policy = out.statuses.iter().any(|s| s.state == State::Invalid);
    let warned = out.statuses.iter().any(|s| s.state == State::Warning)
        || loaded
            .diagnostics
            .iter()
            .any(|d| d.severity == crate::policy::Severity::Warning);
    // what applying these policies would change in the fleet's analysis
    // and what of them the fleet would not take: a live object meshdeck does not own where a
    // policy writes (the policy would not take effect there)
    let (findings_added, findings_fixed, held_back) = {
        let (ready, _) = crate::pipeline::readiness(&snap);
        let live = crate::pipeline::live_objects(&snap);
        let plan = crate::plan::plan(&out.objects, &live, &ready, false);
        let (added, fixed) = crate::analyze::plan_effect(&snap, &plan);
        (added, fixed, crate::pipeline::conflicts_by_policy(&plan))
    };
    let warned = warned || !findings_added.is_empty();
    // a policy the fleet would not take is not accepted: its status says where and why
    if check_only {
        for st in out.statuses.iter_mut() {
            if let Some(held) = held_back.get(&st.policy.key()) {
                if st.state < State::Conflicting {
                    st.state = State::Conflicting;
                }
                st.errors.extend(
                    held.iter()
                        .map(|h| format!("{h}: it does not take effect there")),
                );
            }
        }
    }
    let report = crate::translate::report::render(&loaded, &out, &invalid_objects);
    let exit = if file_errors || invalid_policy || !invalid_objects.is_empty() {
        Exit::Invalid
    } else if check_only && (conflicting || !held_back.is_empty() || (args.strict && warned)) {
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
            findings_added: &'a [crate::analyze::Finding],
            findings_fixed: &'a [crate::analyze::Finding],
            /// policy → its objects the fleet would not take
            held_back: &'a std::collections::BTreeMap<String, Vec<crate::pipeline::HeldBack>>,
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
                    findings_added: &findings_added,
                    findings_fixed: &findings_fixed,
                    held_back: &held_back,
                    exit,
                }
            )?
        );
        return Ok(exit.code());
    }
    // a run that fails on its input writes nothing to stdout (a pipe must not take half a
    // fleet's objects for the whole)
    if !check_only && exit != Exit::Invalid {
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
    for f in &findings_added {
        crate::say!(
            "analysis: applying these policies adds {} in {}: {} — {}",
            f.code,
            f.cluster,
            f.object,
            f.message
        );
    }
    for f in &findings_fixed {
        crate::say!(
            "analysis: applying these policies fixes {} in {}: {}",
            f.code,
            f.cluster,
            f.object
        );
    }
    Ok(exit.code())
}
