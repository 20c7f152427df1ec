//! `meshdeck diff` and `meshdeck apply`: the pipeline, rendered.

use super::{ExitExt, open_session, structured, synced_fleet};
use crate::cli::{ReportFormat, SessionArgs};
use crate::config::Paths;
use crate::pipeline::Exit;
use std::process::ExitCode;

/// What `diff` and `apply` print with `-o json|yaml`.
#[derive(serde::Serialize)]
struct RunReport<'a> {
    planned: &'a crate::pipeline::Planned,
    #[serde(skip_serializing_if = "Option::is_none")]
    executed: Option<&'a crate::pipeline::Executed>,
    exit: Exit,
}

/// `meshdeck diff` and `meshdeck apply`: the pipeline, rendered.
pub(super) async fn run(
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
    // the management cluster, named by a context (any that reaches it) or by its cluster name
    let mgmt: Option<String> = args.mgmt_context.as_ref().map(|m| {
        session
            .targets
            .iter()
            .find(|t| t.context == *m || t.aliases.contains(m))
            .map(|t| t.cluster.clone())
            .unwrap_or_else(|| m.clone())
    });
    if let Some(m) = &mgmt
        && !ready.contains(m)
    {
        crate::say!("error: --mgmt-context {m}: not among the synced contexts of this run");
        return Ok(Exit::Partial.code());
    }
    if let Some(m) = &mgmt
        && args.prune
    {
        // The files are the truth: meshdeck-managed policy CRs that are not in them are
        // about to be pruned, so they generate nothing.
        let origin = crate::policy::stored_origin(m);
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
            crate::say!("{d}");
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
        crate::say!("{d}");
    }
    let live = crate::pipeline::live_objects(&snap);
    let translator = crate::translate::Translator::new(&snap);
    let who = session.subject();
    let file_policies: Vec<&crate::policy::Policy> = loaded
        .policies
        .iter()
        .filter(|p| crate::policy::stored_in(&p.origin.name).is_none())
        .collect();
    let planned = crate::pipeline::plan(&crate::pipeline::Request {
        snap: &snap,
        translator: &translator,
        loaded: &loaded,
        live: &live,
        prune: args.prune,
        scope: crate::pipeline::Scope::All,
        store: mgmt.as_deref().map(|m| (m, file_policies)),
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
        crate::say!("{e}");
    }
    if !planned.errors.is_empty() {
        crate::say!("error: invalid policies: nothing planned");
        return finish(&planned, None, Exit::Invalid);
    }
    if ready.is_empty() {
        for w in crate::pipeline::warnings(&planned) {
            crate::say!("warning: {w}");
        }
        crate::say!("error: no cluster of the session could be reached: nothing planned");
        return finish(&planned, None, Exit::Unreachable);
    }
    for (what, e) in &planned.schema {
        crate::say!("schema: {what}: {e}");
    }
    if !planned.schema.is_empty() {
        return finish(&planned, None, Exit::Invalid);
    }
    for st in &planned.statuses {
        crate::say!("{}: {}", st.policy, st.state.word());
        for e in st.errors.iter().chain(&st.warnings) {
            crate::say!("  {e}");
        }
    }
    let color = text_out
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let plan = &planned.plan;
    if text_out {
        out!("{}", crate::plan::render(plan, color));
    }
    for i in &planned.ignored {
        crate::say!("warning: ignored: {i}");
    }
    for w in crate::pipeline::warnings(&planned) {
        crate::say!("warning: {w}");
    }
    // a broken context (left out before the fleet started) makes the run partial too
    let partial = !planned.left_out.is_empty()
        || !planned.held.is_empty()
        || !planned.conflicts().is_empty()
        || !session.broken.is_empty();
    let base = if partial {
        Exit::Partial
    } else {
        Exit::Success
    };
    let say = |l: String| {
        if text_out {
            outln!("{l}");
        } else {
            crate::say!("{l}");
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
    let readonly_hit: Vec<&str> = plan
        .clusters()
        .into_iter()
        .filter(|c| {
            session
                .targets
                .iter()
                .any(|t| t.readonly && t.cluster == *c)
        })
        .collect();
    if !apply {
        // Kubernetes RBAC, asked of the clusters this session may write (a read-only session
        // asks nothing: a review is a POST).
        let mut rbac_denied = false;
        if session.readonly {
            say("kubernetes rbac: not asked (read-only session)".into());
        } else if plan.has_changes() {
            let reviews =
                crate::pipeline::review(plan, &session.write_clients(), session.request_timeout)
                    .await;
            rbac_denied = !reviews.denied.is_empty();
            for l in reviews.lines() {
                say(l);
            }
        }
        // a plan that a meshdeck Role or Kubernetes RBAC refuses is refused here too: refused
        // outranks changes (a read-only session or context only previews: a diff is what it
        // may do)
        let refused = plan.has_changes() && (planned.denied() || rbac_denied);
        if !session.readonly && !readonly_hit.is_empty() {
            say(format!(
                "read-only: {} {} readOnly in the settings: an apply would not write there",
                readonly_hit.join(", "),
                if readonly_hit.len() == 1 { "is" } else { "are" }
            ));
        }
        let exit = if refused {
            Exit::Refused.max(base)
        } else if plan.has_changes() {
            Exit::Changes.max(base)
        } else {
            base
        };
        return finish(&planned, None, exit);
    }
    if session.readonly && plan.has_changes() {
        crate::say!(
            "error: read-only: this session cannot write (--readonly or a readOnly context); nothing was sent"
        );
        return finish(&planned, None, Exit::Refused);
    }
    if !readonly_hit.is_empty() {
        crate::say!(
            "error: read-only: {} {} readOnly in the settings; nothing was sent",
            readonly_hit.join(", "),
            if readonly_hit.len() == 1 { "is" } else { "are" }
        );
        return finish(&planned, None, Exit::Refused);
    }
    if planned.denied() && plan.has_changes() {
        crate::say!("error: not allowed by meshdeck roles (above): nothing was sent");
        return finish(&planned, None, Exit::Refused);
    }
    if !plan.has_changes() {
        say("nothing to apply".into());
        return finish(&planned, None, base);
    }
    let Some(writer) = session.writer(args.force_conflicts, &paths.audit_log)? else {
        crate::say!("error: read-only: this session cannot write; nothing was sent");
        return finish(&planned, None, Exit::Refused);
    };
    let clusters: Vec<&str> = plan.clusters().into_iter().collect();
    if !args.yes && !args.dry_run {
        if !std::io::stdin().is_terminal() {
            crate::say!(
                "error: not a terminal: add --yes to apply to {}",
                clusters.join(", ")
            );
            return finish(&planned, None, Exit::Refused);
        }
        eprint!(
            "apply {} to {}? [y/N] ",
            crate::ui::text::count(plan.changes().count(), "change", "changes"),
            clusters.join(", ")
        );
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            crate::say!("not applied");
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
