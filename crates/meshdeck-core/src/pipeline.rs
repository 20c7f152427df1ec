//! The one pipeline of every operation: load → translate → schema check → plan → hold what is
//! unsafe → meshdeck role check (this pure half, [`plan`]), then Kubernetes RBAC review →
//! dry-run → apply → prune → audit (the I/O half, `meshdeck_kube::pipeline::execute`). `meshdeck diff`, `meshdeck
//! apply`, the console's apply and the editor's preview all call it and only render what it
//! returns, so they cannot disagree.
//!
//! Two rules make a plan safe on a fleet that is not all there:
//! - **Never prune on a guess.** With a cluster of the session not synced (unreachable, auth
//!   error, still syncing), a delete whose reason to exist may depend on that cluster (any
//!   object whose policies still exist, and every object no policy owns) is held, named with
//!   the cluster; only objects whose policies are all gone are deleted.
//! - **An invalid stored policy affects only what it owns.** A policy custom resource that
//!   does not load is reported with its cluster and position; the objects it made are held
//!   (neither changed nor pruned) and every other policy plans as usual.

use crate::model::{ConnState, Snapshot};
use crate::object::Identified;
use crate::plan::{Action, Item, Live, Plan};
use crate::policy::{Diagnostic, Loaded, Policy, PolicyId, Severity};
use crate::rbac::{Denial, Subject};
use crate::translate::{Generated, Output, State, Translator};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// What part of the fleet's objects a run plans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything the policies generate, and (with prune) everything meshdeck owns.
    All,
    /// Only the objects these policies (`Kind/namespace/name`) shape now or shaped before:
    /// the editor's draft. The items are exactly those of the full plan for the same keys.
    Policies(BTreeSet<String>),
}

/// What one run plans from.
pub struct Request<'a> {
    pub snap: &'a Snapshot,
    pub translator: &'a Translator,
    /// Every policy (files and stored custom resources), roles and bindings.
    pub loaded: &'a Loaded,
    pub live: &'a [Live],
    pub prune: bool,
    pub scope: Scope,
    /// The cluster that stores the given policies as custom resources (`--mgmt-context`),
    /// and the policies to store there.
    pub store: Option<(&'a str, Vec<&'a Policy>)>,
    pub who: &'a Subject,
}

/// A role check's outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum RoleCheck {
    /// No meshdeck Roles exist: only Kubernetes RBAC applies.
    #[default]
    Off,
    Allowed {
        user: String,
        policies: usize,
    },
    Denied {
        denials: Vec<Denial>,
    },
}

/// A change the plan would make and will not, with why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Held {
    pub item: Item,
    pub reason: String,
}

/// A cluster of the session that is not synced, with its state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeftOut {
    pub cluster: String,
    pub state: String,
    pub error: Option<String>,
}

/// The pure half's result.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Planned {
    /// Errors in the given policies: nothing is planned while there are any.
    pub errors: Vec<String>,
    /// Stored policies that did not load: reported, left out, their objects held.
    pub ignored: Vec<String>,
    #[serde(skip)]
    pub output: Output,
    /// Statuses of the policies in scope that are not plainly accepted.
    pub statuses: Vec<crate::translate::PolicyStatus>,
    /// Schema violations of generated objects in scope.
    pub schema: Vec<(String, String)>,
    pub plan: Plan,
    pub held: Vec<Held>,
    pub left_out: Vec<LeftOut>,
    pub roles: Option<RoleCheck>,
    /// Notes worth telling (default objects left out for a role-checked user, ...).
    pub notes: Vec<String>,
}

impl Planned {
    /// Conflicts nothing will resolve: conflicting policies, and live objects meshdeck does
    /// not own where a policy would write. (A hand-written object where meshdeck would only
    /// put a per-destination default is the user's choice, not a conflict: it is left alone.)
    pub fn conflicts(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .statuses
            .iter()
            .filter(|s| s.state == State::Conflicting)
            .map(|s| {
                format!(
                    "{} conflicts: {}",
                    s.policy,
                    s.errors
                        .iter()
                        .chain(&s.warnings)
                        .next()
                        .cloned()
                        .unwrap_or_default()
                )
            })
            .collect();
        out.extend(
            self.plan
                .items
                .iter()
                .filter(|i| {
                    i.action == Action::Conflict && !i.policies.is_empty() && !mesh_default(i)
                })
                .map(|i| {
                    format!(
                        "{} exists and is not managed by meshdeck: {} not applied there",
                        i.id(),
                        i.policies.join(", ")
                    )
                }),
        );
        out
    }
    pub fn denied(&self) -> bool {
        matches!(self.roles, Some(RoleCheck::Denied { .. }))
    }

    /// Why each policy (by `Kind/namespace/name`) is not wholly in effect on the fleet: one
    /// entry per object of it that this plan holds back (a live object meshdeck does not own
    /// where the policy would write; a change held), naming the cluster and the object. A
    /// policy named here is never `accepted`.
    pub fn held_back(&self) -> BTreeMap<String, Vec<HeldBack>> {
        let mut out = conflicts_by_policy(&self.plan);
        for h in &self.held {
            for p in &h.item.policies {
                out.entry(p.clone()).or_default().push(HeldBack {
                    conflict: false,
                    cluster: h.item.cluster.clone(),
                    object: crate::analyze::object_name(
                        &h.item.kind,
                        &h.item.namespace,
                        &h.item.name,
                    ),
                    why: h.reason.clone(),
                });
            }
        }
        out
    }
}

/// The objects of each policy (by `Kind/namespace/name`) that a plan cannot write because a
/// live object meshdeck does not own stands there.
pub fn conflicts_by_policy(plan: &Plan) -> BTreeMap<String, Vec<HeldBack>> {
    let mut out: BTreeMap<String, Vec<HeldBack>> = BTreeMap::new();
    for i in plan
        .items
        .iter()
        .filter(|i| i.action == Action::Conflict && !mesh_default(i))
    {
        for p in &i.policies {
            out.entry(p.clone()).or_default().push(HeldBack {
                conflict: true,
                cluster: i.cluster.clone(),
                object: crate::analyze::object_name(&i.kind, &i.namespace, &i.name),
                why: "exists and is not managed by meshdeck".into(),
            });
        }
    }
    out
}

/// A DestinationRule that only carries a VirtualMesh's mTLS (`ISTIO_MUTUAL`, nothing else): a
/// mesh-wide default, not something a policy asked of this destination. A hand-written
/// DestinationRule where one would go is the operator's choice (Istio's auto mTLS and the
/// VirtualMesh's STRICT PeerAuthentication still hold): it is left alone, not a conflict.
pub fn mesh_default(i: &Item) -> bool {
    let Some(spec) = i.desired.as_ref().and_then(|d| d.get("spec")) else {
        return false;
    };
    i.kind == "DestinationRule"
        && spec.as_object().is_some_and(|o| {
            o.keys()
                .all(|k| k == "host" || k == "trafficPolicy" || k == "exportTo")
        })
        && spec.get("trafficPolicy") == Some(&serde_json::json!({"tls": {"mode": "ISTIO_MUTUAL"}}))
}

/// One object of a policy that a plan holds back, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldBack {
    /// A live object meshdeck does not own stands where the policy would write.
    pub conflict: bool,
    pub cluster: String,
    /// `Kind namespace/name`.
    pub object: String,
    pub why: String,
}

impl std::fmt::Display for HeldBack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.conflict {
            write!(
                f,
                "conflict in {}: {} {}",
                self.cluster, self.object, self.why
            )
        } else {
            write!(
                f,
                "not applied in {}: {}: {}",
                self.cluster, self.object, self.why
            )
        }
    }
}

/// The clusters of a snapshot whose rows are current (synced, or partial: synced for what
/// the session may see), and those left out.
pub fn readiness(snap: &Snapshot) -> (BTreeSet<String>, Vec<LeftOut>) {
    let mut ready = BTreeSet::new();
    let mut left = Vec::new();
    for c in &snap.clusters {
        if c.state.is_current() {
            ready.insert(c.name.clone());
        } else {
            left.push(LeftOut {
                cluster: c.name.clone(),
                state: c.state.word().to_string(),
                error: c.state.error().map(str::to_string),
            });
        }
    }
    (ready, left)
}

/// The generated form of a policy stored as a custom resource in `cluster`.
pub fn policy_object(p: &Policy, cluster: &str) -> Generated {
    Generated {
        cluster: cluster.to_string(),
        api_version: crate::policy::api_version_of(p.kind()),
        kind: p.kind(),
        namespace: p.namespace().to_string(),
        name: p.meta.name.clone(),
        sources: [p.id()].into(),
        spec: p
            .origin
            .located
            .value
            .get("spec")
            .cloned()
            .unwrap_or_default(),
    }
}

type Key = crate::object::ObjectRef;

/// The pure half: what the policies generate, planned against what is live, with what is
/// unsafe held and the meshdeck role check done.
pub fn plan(req: &Request<'_>) -> Planned {
    let mut out = Planned::default();
    let stored_origin = |d: &Diagnostic| crate::policy::stored_in(&d.origin).is_some();
    let in_scope_policy = |id: &PolicyId| match &req.scope {
        Scope::All => true,
        Scope::Policies(set) => set.contains(&id.key()),
    };
    for d in req.loaded.diagnostics.iter() {
        if d.severity != Severity::Error {
            continue;
        }
        if stored_origin(d) || req.scope != Scope::All {
            out.ignored.push(d.to_string());
        } else {
            out.errors.push(d.to_string());
        }
    }
    let (ready, left_out) = readiness(req.snap);
    out.left_out = left_out;
    if !out.errors.is_empty() {
        return out;
    }
    let output = req.translator.translate(&req.loaded.policies);
    let mut generated = output.objects.clone();
    if let Some((store, policies)) = &req.store {
        generated.extend(policies.iter().map(|p| policy_object(p, store)));
    }
    // What is in scope: keys shaped by the scope's policies now, or named by their live objects.
    let watched: Option<&BTreeSet<String>> = match &req.scope {
        Scope::All => None,
        Scope::Policies(set) => Some(set),
    };
    let live: Vec<Live>;
    let live_ref: &[Live] = match watched {
        None => req.live,
        Some(set) => {
            let before: BTreeSet<Key> = req
                .live
                .iter()
                .filter(|l| l.policies().any(|x| set.contains(x)))
                .map(|l| l.object_ref())
                .collect();
            generated.retain(|g| {
                g.sources.iter().any(|p| set.contains(&p.key())) || before.contains(&g.object_ref())
            });
            let wanted: BTreeSet<Key> = generated.iter().map(|g| g.object_ref()).collect();
            live = req
                .live
                .iter()
                .filter(|l| {
                    let k = l.object_ref();
                    before.contains(&k) || wanted.contains(&k)
                })
                .cloned()
                .collect();
            &live
        }
    };
    out.schema = crate::istio::validate_all(
        &generated
            .iter()
            .filter(|g| !g.api_version.contains("mesh.gloo.solo.io"))
            .cloned()
            .collect::<Vec<_>>(),
    )
    .into_iter()
    .map(|(w, e)| (w, e.to_string()))
    .collect();
    out.statuses = output
        .statuses
        .iter()
        .filter(|s| s.state != State::Accepted && in_scope_policy(&s.policy))
        .cloned()
        .collect();
    // what the policies in scope do that may surprise (an AccessPolicy denies the rest)
    out.notes.extend(
        output
            .statuses
            .iter()
            .filter(|s| in_scope_policy(&s.policy))
            .flat_map(|s| s.notes.iter().cloned()),
    );
    let mut plan = crate::plan::plan(&generated, live_ref, &ready, req.prune);

    // Hold what is unsafe.
    let existing: BTreeSet<String> = req.loaded.policies.iter().map(|p| p.id().key()).collect();
    let invalid: BTreeMap<&str, &str> = req
        .loaded
        .invalid
        .iter()
        .map(|(c, id)| (id.as_str(), c.as_str()))
        .collect();
    // a partial cluster may hold what the session cannot see: prune there as if not synced
    let unsynced: Vec<String> = out
        .left_out
        .iter()
        .map(|l| format!("{} ({})", l.cluster, l.state))
        .chain(
            req.snap
                .clusters
                .iter()
                .filter(|c| matches!(c.state, ConnState::Partial { .. }))
                .map(|c| format!("{} (partial: not everything is visible)", c.name)),
        )
        .collect();
    let live_policies: BTreeMap<Key, Vec<String>> = live_ref
        .iter()
        .map(|l| (l.object_ref(), l.policies().map(str::to_string).collect()))
        .collect();
    // The cluster each live object was written for: a delete in another is never planned
    // (the same cluster reached under another name must not lose its objects).
    let written_for: BTreeMap<Key, &str> = live_ref
        .iter()
        .filter_map(|l| {
            l.annotations
                .get(crate::translate::CLUSTER_ANNOTATION)
                .filter(|c| **c != l.cluster)
                .map(|c| (l.object_ref(), c.as_str()))
        })
        .collect();
    let mut kept = Vec::with_capacity(plan.items.len());
    for item in plan.items {
        let k = item.object_ref();
        let named: &[String] = live_policies.get(&k).map(Vec::as_slice).unwrap_or(&[]);
        let reason = if let Some(other) = written_for
            .get(&k)
            .filter(|_| item.action == Action::Delete)
        {
            Some(format!(
                "not pruned: it was written for cluster {other} ({}), not {}: the same cluster under another name? Name it in the settings' `clusters:` map",
                crate::translate::CLUSTER_ANNOTATION,
                item.cluster
            ))
        } else if let Some((p, c)) = named
            .iter()
            .chain(&item.policies)
            .find_map(|p| invalid.get_key_value(p.as_str()))
            .filter(|_| item.action.changes())
        {
            Some(format!(
                "held: {p} (stored in cluster {c}) is invalid, so what it makes is left as it is"
            ))
        } else if item.action == Action::Delete
            && !unsynced.is_empty()
            && (item.policies.is_empty() || item.policies.iter().any(|p| existing.contains(p)))
        {
            Some(format!(
                "not pruned: it may exist because of {}, which {} not synced",
                unsynced.join(", "),
                if unsynced.len() == 1 { "is" } else { "are" }
            ))
        } else {
            None
        };
        match reason {
            Some(reason) => out.held.push(Held { item, reason }),
            None => kept.push(item),
        }
    }
    plan.items = kept;

    // meshdeck Roles.
    let roles = &req.loaded.roles;
    let bindings = &req.loaded.bindings;
    if roles.is_empty() && bindings.is_empty() {
        out.roles = Some(RoleCheck::Off);
    } else {
        // The per-destination default objects (no policy owns them) only for destinations
        // the user's TrafficPolicy scopes cover.
        let before = plan.items.len();
        plan.items.retain(|i| {
            !i.action.changes()
                || !i.policies.is_empty()
                || crate::rbac::covers_destination(
                    req.who,
                    roles,
                    bindings,
                    &i.cluster,
                    &i.namespace,
                    &i.name,
                )
        });
        let skipped = before - plan.items.len();
        if skipped > 0 {
            out.notes.push(format!(
                "{skipped} default objects of destinations outside {:?}'s roles left out of the plan",
                req.who.user
            ));
        }
        let changed: BTreeSet<&str> = plan
            .changes()
            .flat_map(|i| i.policies.iter().map(String::as_str))
            .collect();
        let changed_policies: Vec<&Policy> = req
            .loaded
            .policies
            .iter()
            .filter(|p| changed.contains(p.id().key().as_str()) && in_scope_policy(&p.id()))
            .collect();
        let denials = crate::rbac::check(&changed_policies, req.who, roles, bindings);
        out.roles = Some(if denials.is_empty() {
            RoleCheck::Allowed {
                user: req.who.user.clone(),
                policies: changed_policies.len(),
            }
        } else {
            RoleCheck::Denied { denials }
        });
    }
    out.plan = plan;
    out.output = output;
    out
}

/// Exit codes of the headless commands (README has the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Exit {
    /// Done; for `diff`: no changes.
    Success = 0,
    /// `diff`: changes are planned.
    Changes = 1,
    /// Invalid input: a policy, a flag, a kubeconfig, a schema violation.
    Invalid = 2,
    /// Partly done: a cluster left out, a conflict unresolved, a change held, a write failed.
    Partial = 3,
    /// Refused: read-only, a meshdeck role, Kubernetes RBAC, or not confirmed.
    Refused = 4,
    /// No cluster of the session could be reached.
    Unreachable = 5,
}

/// The headless commands and the exit codes each can end with: the one table that every
/// subcommand's `--help` and the README's table are made from (a test holds the README to it).
pub const EXITS: &[(&str, &[Exit])] = &[
    (
        "status",
        &[
            Exit::Success,
            Exit::Invalid,
            Exit::Partial,
            Exit::Unreachable,
        ],
    ),
    (
        "translate",
        &[Exit::Success, Exit::Invalid, Exit::Unreachable],
    ),
    (
        "check",
        &[
            Exit::Success,
            Exit::Invalid,
            Exit::Partial,
            Exit::Unreachable,
        ],
    ),
    (
        "analyze",
        &[
            Exit::Success,
            Exit::Invalid,
            Exit::Partial,
            Exit::Unreachable,
        ],
    ),
    (
        "diff",
        &[
            Exit::Success,
            Exit::Changes,
            Exit::Invalid,
            Exit::Partial,
            Exit::Refused,
            Exit::Unreachable,
        ],
    ),
    (
        "apply",
        &[
            Exit::Success,
            Exit::Invalid,
            Exit::Partial,
            Exit::Refused,
            Exit::Unreachable,
        ],
    ),
];

impl Exit {
    /// Every code, in numeric order.
    pub const ALL: [Exit; 6] = [
        Exit::Success,
        Exit::Changes,
        Exit::Invalid,
        Exit::Partial,
        Exit::Refused,
        Exit::Unreachable,
    ];

    /// The process exit status.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// What the code means, for any command (the README's table).
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Success => "success; for `diff`: no changes",
            Exit::Changes => "`diff`: changes are planned (and an apply would not refuse them)",
            Exit::Invalid => {
                "invalid input: a policy or schema error, a missing file, a bad flag, kubeconfig or settings file; the dry-run rejected an object; nothing is written to stdout"
            }
            Exit::Partial => {
                "partial: a cluster left out (not synced, no answer), a change held, a conflict with an object meshdeck does not own, a write failed; `status`: a cluster is not synced; `check`: a policy conflicts or would not take effect; `analyze`: a finding at or above `--level`"
            }
            Exit::Refused => {
                "refused: read-only, a meshdeck Role, Kubernetes RBAC, or not confirmed; nothing was sent (`diff`: an apply of this plan would be refused)"
            }
            Exit::Unreachable => "unreachable: no cluster of the session could be reached",
        }
    }

    /// The codes `command` can end with, one line each, for its `--help`.
    pub fn help_for(command: &str) -> String {
        let codes = EXITS
            .iter()
            .find(|(c, _)| *c == command)
            .map(|(_, e)| *e)
            .unwrap_or(&Exit::ALL);
        let mut out = String::from("Exit codes (the worst wins):\n");
        for e in codes {
            out.push_str(&format!("  {}  {}\n", e.as_u8(), e.meaning()));
        }
        out
    }

    /// The README's table, as markdown.
    pub fn markdown_table() -> String {
        let mut out = String::from("| code | meaning | commands |\n|---|---|---|\n");
        for e in Exit::ALL {
            let cmds: Vec<String> = EXITS
                .iter()
                .filter(|(_, codes)| codes.contains(&e))
                .map(|(c, _)| format!("`{c}`"))
                .collect();
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                e.as_u8(),
                e.meaning(),
                cmds.join(", ")
            ));
        }
        out
    }
    /// The worse of two.
    pub fn max(self, other: Exit) -> Exit {
        let rank = |e: Exit| match e {
            Exit::Success => 0,
            Exit::Changes => 1,
            Exit::Partial => 2,
            Exit::Unreachable => 3,
            Exit::Refused => 4,
            Exit::Invalid => 5,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// Lines that say what a plan will not do and why (clusters left out, held items, conflicts,
/// notes), for the CLI and the console alike. The stored policies that did not load are in
/// `Planned::ignored`, for the callers that report them.
pub fn warnings(p: &Planned) -> Vec<String> {
    let mut out = Vec::new();
    for l in &p.left_out {
        out.push(format!(
            "cluster {} is {}{}: left out of the plan",
            l.cluster,
            l.state,
            l.error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ));
    }
    for h in &p.held {
        out.push(format!(
            "{} {}: {}",
            h.item.action.word(),
            h.item.id(),
            h.reason
        ));
    }
    for c in p.conflicts() {
        out.push(format!("conflict: {c}"));
    }
    for n in &p.notes {
        out.push(format!("note: {n}"));
    }
    out
}

/// Every live object meshdeck plans against: the snapshot's Istio objects and policy CRs (the
/// watch caches: the CLI and the console plan against the same thing).
pub fn live_objects(snap: &Snapshot) -> Vec<Live> {
    snap.clusters
        .iter()
        .flat_map(|c| {
            c.istio
                .iter()
                .chain(c.policies.iter())
                .map(move |o| Live::from_raw(&c.name, o))
        })
        .collect()
}
