//! Authoring policies in the console, the pure part: the policy board (every policy with its
//! status and the clusters it touches), templates, and the preview of a draft (diagnostics,
//! generated objects per cluster, the plan against the live objects of the snapshot, role
//! checks). No I/O here; `Worker` runs it off the UI thread, latest job wins.

use crate::plan::{Action as PlanAction, Live, Plan};
use crate::policy::{Diagnostic, Loaded, Policy, PolicyId, Severity};
use crate::rbac::{Denial, Subject};
use crate::translate::{Generated, Output, State, Translator};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One row of the policies view.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRow {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// `path/to/file.yaml` or `cluster/<name>`.
    pub origin: String,
    /// The file a row's text lives in (None for a custom resource read from a cluster).
    pub file: Option<PathBuf>,
    pub sources: String,
    pub targets: String,
    pub state: State,
    /// The first reason for a state other than accepted.
    pub reason: String,
    pub reasons: Vec<String>,
    pub clusters: Vec<String>,
    /// The policy's identity (None for a file whose documents did not load).
    pub policy: Option<PolicyId>,
    /// The YAML of a policy stored in a cluster (files' texts are in `Board::texts`).
    pub text: Option<String>,
    /// An unsaved draft of a new file (its text is in `Board::drafts`).
    pub draft: bool,
    /// The fleet does not (wholly) hold what the policy asks: changes pending, out of date,
    /// or held back (its reason says which). A console apply of another draft names it.
    pub not_on_fleet: bool,
}

impl PolicyRow {
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// What the policies view shows, and what the editor needs to open a policy without I/O.
#[derive(Debug, Clone, Default)]
pub struct Board {
    pub rows: Vec<PolicyRow>,
    /// Every policy file's text, by path.
    pub texts: BTreeMap<PathBuf, String>,
    /// Unsaved drafts found in the drafts directory: target path → text.
    pub drafts: BTreeMap<PathBuf, String>,
    /// Snapshot sequence it was made from.
    pub seq: u64,
    pub took: Duration,
    /// The fleet's configuration findings (istioctl analyze), made off the UI thread with
    /// the board.
    pub findings: Vec<crate::analyze::Finding>,
    /// What the findings say of each object they name, for its health and REASON cell:
    /// (cluster, `Kind namespace/name`) → `IST0101 message (+2 more)`; errors first.
    pub finding_notes: HashMap<(String, String), FindingNote>,
}

/// What the configuration findings say of one row: the health they give it (an error
/// finding: failure; a warning: degraded; a service whose routes an error breaks: degraded)
/// and the REASON note.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingNote {
    pub level: crate::model::health::Level,
    pub text: String,
}

/// The note of every object that findings name (its worst finding, and how many more), and
/// of every service a VirtualService with an error finding routes (`snap`: the fleet whose
/// services are looked at; None: objects only).
pub fn finding_notes(
    findings: &[crate::analyze::Finding],
    snap: Option<&crate::model::Snapshot>,
) -> HashMap<(String, String), FindingNote> {
    use crate::analyze::Level as A;
    use crate::model::health::Level as H;
    let mut by: HashMap<(String, String), Vec<&crate::analyze::Finding>> = HashMap::new();
    for f in findings {
        by.entry((f.cluster.clone(), f.object.clone()))
            .or_default()
            .push(f);
    }
    let mut out: HashMap<(String, String), FindingNote> = by
        .into_iter()
        .map(|(k, mut v)| {
            v.sort_by_key(|f| std::cmp::Reverse(f.level));
            let more = match v.len() - 1 {
                0 => String::new(),
                n => format!(" (+{n} more)"),
            };
            (
                k,
                FindingNote {
                    level: v[0].level.health(),
                    text: format!("{} {}{more}", v[0].code, v[0].message),
                },
            )
        })
        .collect();
    // a service whose routes an error finding breaks is at least degraded
    if let Some(snap) = snap {
        for f in findings.iter().filter(|f| f.level == A::Error) {
            let Some(rest) = f.object.strip_prefix("VirtualService ") else {
                continue;
            };
            let vs = format!("VirtualService/{rest}");
            let Some(c) = snap.cluster(&f.cluster) else {
                continue;
            };
            for svc in c.services.iter().filter(|s| s.istio_refs.contains(&vs)) {
                let key = (
                    f.cluster.clone(),
                    crate::analyze::object_name("Service", &svc.namespace, &svc.name),
                );
                out.entry(key).or_insert_with(|| FindingNote {
                    level: H::Degraded,
                    text: format!("routes broken: {} in {}", f.code, f.object),
                });
            }
        }
    }
    out
}

/// Who `sources` and `targets` name, in one short line.
fn selectors(v: Option<&Value>, what: &str) -> String {
    let Some(list) = v.and_then(Value::as_array).filter(|l| !l.is_empty()) else {
        return format!("all {what}");
    };
    let mut out: Vec<String> = Vec::new();
    for s in list {
        if let Some(refs) = s
            .pointer("/kubeServiceRefs/services")
            .or_else(|| s.pointer("/kubeServiceAccountRefs/serviceAccounts"))
            .and_then(Value::as_array)
        {
            for r in refs {
                let g = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("*");
                out.push(format!(
                    "{}/{}/{}",
                    g("clusterName"),
                    g("namespace"),
                    g("name")
                ));
            }
            continue;
        }
        let m = s
            .get("kubeServiceMatcher")
            .or_else(|| s.get("kubeWorkloadMatcher"))
            .or_else(|| s.get("kubeIdentityMatcher"));
        if let Some(m) = m {
            let mut parts = Vec::new();
            if let Some(l) = m.get("labels").and_then(Value::as_object) {
                let ls: Vec<String> = l
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("?")))
                    .collect();
                if !ls.is_empty() {
                    parts.push(ls.join(","));
                }
            }
            for (key, label) in [("namespaces", "ns"), ("clusters", "cl")] {
                if let Some(l) = m.get(key).and_then(Value::as_array) {
                    let ls: Vec<&str> = l.iter().filter_map(Value::as_str).collect();
                    if !ls.is_empty() {
                        parts.push(format!("{label}:{}", ls.join(",")));
                    }
                }
            }
            out.push(if parts.is_empty() {
                format!("all {what}")
            } else {
                parts.join(" ")
            });
        }
    }
    if out.is_empty() {
        format!("all {what}")
    } else {
        out.join("; ")
    }
}

/// (sources, targets) of a policy, read from its document.
pub fn summary(p: &Policy) -> (String, String) {
    let spec = p.origin.located.value.get("spec");
    let get = |k: &str| spec.and_then(|s| s.get(k));
    match p.kind() {
        "TrafficPolicy" | "AccessPolicy" => (
            selectors(get("sourceSelector"), "workloads"),
            selectors(get("destinationSelector"), "destinations"),
        ),
        "VirtualMesh" => {
            let meshes: Vec<String> = get("meshes")
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter_map(|m| m.get("name").and_then(Value::as_str))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            ("meshes".into(), meshes.join(","))
        }
        _ => (
            "-".into(),
            get("hostname")
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_string(),
        ),
    }
}

/// A stored policy as the YAML a user edits: apiVersion, kind, name, namespace and spec.
fn stored_yaml(p: &Policy) -> String {
    let v = &p.origin.located.value;
    let doc = serde_json::json!({
        "apiVersion": v.get("apiVersion").cloned().unwrap_or_default(),
        "kind": p.kind(),
        "metadata": {"name": p.meta.name, "namespace": p.namespace()},
        "spec": v.get("spec").cloned().unwrap_or_default(),
    });
    crate::yaml::to_string(&doc).unwrap_or_default()
}

/// The policies view: one row per policy (translator status and clusters), plus one per file
/// whose documents did not load (invalid, with the first error).
pub fn board(loaded: &Loaded, out: &Output) -> Vec<PolicyRow> {
    let mut rows = Vec::new();
    for p in &loaded.policies {
        let id = p.id();
        let st = out.statuses.iter().find(|s| s.policy == id);
        let (sources, targets) = summary(p);
        let (state, reasons) = match st {
            // the ORIGIN column names the file: a reason starts at its position
            Some(s) => {
                let own = format!("{}:", p.origin.name);
                (
                    s.state,
                    s.errors
                        .iter()
                        .chain(&s.warnings)
                        .map(|r| r.strip_prefix(&own).unwrap_or(r).to_string())
                        .collect(),
                )
            }
            None => (State::Accepted, vec![]),
        };
        let from_file = crate::policy::stored_in(&p.origin.name).is_none();
        rows.push(PolicyRow {
            kind: id.kind.to_string(),
            namespace: id.namespace.clone(),
            name: id.name.clone(),
            origin: p.origin.name.clone(),
            file: from_file.then(|| PathBuf::from(&p.origin.name)),
            sources,
            targets,
            state,
            reason: reasons.first().cloned().unwrap_or_default(),
            reasons,
            clusters: st
                .map(|s| s.clusters.iter().cloned().collect())
                .unwrap_or_default(),
            text: (!from_file).then(|| stored_yaml(p)),
            policy: Some(id),
            draft: false,
            not_on_fleet: false,
        });
    }
    let mut bad: BTreeMap<&str, Vec<&Diagnostic>> = BTreeMap::new();
    for d in loaded.errors() {
        bad.entry(d.origin.as_str()).or_default().push(d);
    }
    for (origin, ds) in bad {
        let from_file = crate::policy::stored_in(origin).is_none();
        rows.push(PolicyRow {
            kind: "?".into(),
            namespace: "-".into(),
            name: Path::new(origin)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| origin.to_string()),
            origin: origin.to_string(),
            file: from_file.then(|| PathBuf::from(origin)),
            sources: "-".into(),
            targets: "-".into(),
            state: State::Invalid,
            reason: ds.first().map(|d| d.to_string()).unwrap_or_default(),
            reasons: ds.iter().map(|d| d.to_string()).collect(),
            clusters: vec![],
            policy: None,
            text: None,
            draft: false,
            not_on_fleet: false,
        });
    }
    rows.sort_by(|a, b| {
        (&a.namespace, &a.name, &a.kind, &a.origin).cmp(&(
            &b.namespace,
            &b.name,
            &b.kind,
            &b.origin,
        ))
    });
    rows
}

/// The templates `n` offers: (key, title, text with `{cluster}`, `{namespace}`, `{service}`,
/// `{other_cluster}`, `{name}` placeholders).
pub const TEMPLATES: &[(&str, &str, &str)] = &[
    (
        "traffic-shift",
        "TrafficPolicy: traffic shift between versions and clusters",
        include_str!("../templates/traffic-shift.yaml"),
    ),
    (
        "retries-timeout",
        "TrafficPolicy: retries and a request timeout",
        include_str!("../templates/retries-timeout.yaml"),
    ),
    (
        "fault-injection",
        "TrafficPolicy: fault injection (delay and abort)",
        include_str!("../templates/fault-injection.yaml"),
    ),
    (
        "access-policy",
        "AccessPolicy: who may call a destination",
        include_str!("../templates/access-policy.yaml"),
    ),
    (
        "virtual-mesh",
        "VirtualMesh: mTLS and federation across meshes",
        include_str!("../templates/virtual-mesh.yaml"),
    ),
];

/// A template filled in from the fleet: a real in-mesh service (the one with the most
/// versions), its cluster and namespace, a second (cluster, version) for a traffic shift (another
/// cluster that runs the service if there is one), and the fleet's meshes.
/// A version label after `v`: `v1` → `v2`, `stable` → `stable-canary`.
fn next_version(v: &str) -> String {
    match v.strip_prefix('v').and_then(|n| n.parse::<u64>().ok()) {
        Some(n) => format!("v{}", n.saturating_add(1)),
        None => format!("{v}-canary"),
    }
}

pub fn fill_template(text: &str, snap: &crate::model::Snapshot, name: &str) -> String {
    fill_template_with(text, snap, name, &TemplateFleet::default())
}

/// What the fleet allows a template to propose besides what the snapshot shows.
#[derive(Debug, Clone, Default)]
pub struct TemplateFleet {
    /// Clusters this session may not write (`readOnly` in the settings): never proposed.
    pub readonly: Vec<String>,
    /// A VirtualMesh federates the fleet's services: only then may a traffic shift send a
    /// share to another cluster (without it the other leg reaches nothing).
    pub federated: bool,
}

/// [`fill_template`], knowing which clusters are read-only and whether services are federated.
pub fn fill_template_with(
    text: &str,
    snap: &crate::model::Snapshot,
    name: &str,
    fleet: &TemplateFleet,
) -> String {
    let versions = |cluster: &str, ns: &str, svc: &crate::model::Service| -> Vec<String> {
        let mut v: Vec<String> = snap
            .cluster(cluster)
            .map(|c| {
                c.workloads
                    .iter()
                    .filter(|w| w.namespace == ns && svc.workloads.contains(&w.name))
                    .filter_map(|w| w.labels.get("version").cloned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v.dedup();
        v
    };
    // a service nobody configured yet (hand-written Istio objects are never overwritten), with
    // the most versions
    let writable = |c: &str| !fleet.readonly.iter().any(|r| r == c);
    let pick = snap
        .services()
        .filter(|s| s.in_mesh && writable(&s.cluster))
        .max_by_key(|s| {
            (
                s.istio_refs.is_empty(),
                versions(&s.cluster, &s.namespace, s).len(),
                std::cmp::Reverse((s.name.clone(), s.cluster.clone())),
            )
        });
    let Some(s) = pick else {
        return text
            .replace("{cluster}", "cluster-1")
            .replace("{other_cluster}", "cluster-1")
            .replace("{namespace}", "default")
            .replace("{service}", "my-service")
            .replace("{version_a}", "v1")
            .replace("{version_b}", "v2")
            .replace("{name}", name)
            .replace(
                "{meshes}\n",
                "  - name: istiod-istio-system-cluster-1\n    namespace: istio-system\n",
            );
    };
    let here = versions(&s.cluster, &s.namespace, s);
    let a = here.first().cloned().unwrap_or_else(|| "v1".into());
    // the second destination: another version here (a shift to another cluster needs a
    // VirtualMesh that federates it), else the service in another cluster, else the same again
    let elsewhere = snap.services().find_map(|o| {
        (fleet.federated
            && o.cluster != s.cluster
            && o.namespace == s.namespace
            && o.name == s.name)
            .then(|| {
                let vs = versions(&o.cluster, &o.namespace, o);
                vs.iter()
                    .find(|v| **v != a)
                    .or(vs.first())
                    .map(|v| (o.cluster.clone(), v.clone()))
            })
            .flatten()
    });
    let (other, b) = match here.get(1) {
        Some(v) => (s.cluster.clone(), v.clone()),
        // never 90/10 between one subset and itself: name the next version (its subset
        // selects no pods until it is deployed, and the preview says so)
        None => elsewhere.unwrap_or_else(|| (s.cluster.clone(), next_version(&a))),
    };
    let meshes: Vec<String> = snap
        .clusters
        .iter()
        .flat_map(|c| c.meshes.iter())
        .map(|m| format!("  - name: {}\n    namespace: {}\n", m.name, m.namespace))
        .collect();
    text.replace("{cluster}", &s.cluster)
        .replace("{other_cluster}", &other)
        .replace("{namespace}", &s.namespace)
        .replace("{service}", &s.name)
        .replace("{version_a}", &a)
        .replace("{version_b}", &b)
        .replace("{name}", name)
        .replace("{meshes}\n", &meshes.concat())
}

pub use crate::pipeline::{live_objects, policy_object};

/// A role check's outcome for the preview.
#[derive(Debug, Clone, PartialEq)]
pub enum RoleCheck {
    /// No meshdeck Roles exist: only Kubernetes RBAC applies (checked at apply).
    Off,
    Allowed(String),
    Denied(Vec<Denial>),
}

/// What the preview shows for a draft.
#[derive(Debug, Clone)]
pub struct Preview {
    /// The edit generation it answers.
    pub generation: u64,
    /// Problems in the draft's text, positioned in it.
    pub diagnostics: Vec<Diagnostic>,
    /// The draft's policies.
    pub policies: Vec<PolicyId>,
    pub statuses: Vec<crate::translate::PolicyStatus>,
    /// Objects the draft shapes, by cluster.
    pub objects: Vec<Generated>,
    /// Schema violations of those objects.
    pub schema: Vec<(String, String)>,
    /// The changes applying the draft makes to live objects (creates, updates, prunes).
    pub plan: Plan,
    /// Changes the pipeline will not make (a cluster not synced, an invalid stored policy).
    pub held: Vec<crate::pipeline::Held>,
    /// The draft's objects the fleet would not take: a live object meshdeck does not own
    /// stands there ([`crate::pipeline::conflicts_by_policy`]), so the draft would not take
    /// effect there; each is a problem and the draft is not applicable.
    pub held_back: Vec<crate::pipeline::HeldBack>,
    /// What the plan leaves out and why, in words.
    pub warnings: Vec<String>,
    pub roles: RoleCheck,
    /// Configuration findings applying the draft would add, and fix (istioctl analyze over
    /// the fleet as it would be).
    pub findings_added: Vec<crate::analyze::Finding>,
    pub findings_fixed: Vec<crate::analyze::Finding>,
    /// Where live objects came from: the snapshot's watch caches.
    pub snapshot_seq: u64,
    pub took: Duration,
}

impl Preview {
    pub fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
            + self
                .statuses
                .iter()
                .filter(|s| s.state == State::Invalid)
                .count()
            + self.schema.len()
            + self.held_back.len()
    }
    /// Whether the draft may be applied as it is.
    pub fn applicable(&self) -> Result<(), String> {
        if self.policies.is_empty() && self.diagnostics.is_empty() {
            return Err("the draft holds no policy".into());
        }
        if let Some(d) = self
            .diagnostics
            .iter()
            .find(|d| d.severity == Severity::Error)
        {
            return Err(format!("fix the errors first: {d}"));
        }
        if let Some(s) = self.statuses.iter().find(|s| s.state == State::Invalid) {
            return Err(format!(
                "{} is invalid: {}",
                s.policy,
                s.errors.first().cloned().unwrap_or_default()
            ));
        }
        if let Some((what, e)) = self.schema.first() {
            return Err(format!("{what} fails Istio's schema: {e}"));
        }
        if let RoleCheck::Denied(d) = &self.roles
            && let Some(first) = d.first()
        {
            return Err(format!("role check: {}: {}", first.policy, first.reason));
        }
        if let Some(h) = self.held_back.first() {
            let more = match self.held_back.len() - 1 {
                0 => String::new(),
                n => format!(" (+{n} more)"),
            };
            return Err(format!(
                "will not apply in {}: {} {}{more}",
                h.cluster, h.object, h.why
            ));
        }
        if !self.plan.has_changes() {
            if let Some(c) = self
                .plan
                .items
                .iter()
                .find(|i| i.action == PlanAction::Conflict)
            {
                return Err(format!(
                    "{} exists and is not meshdeck's: it is never overwritten (rename or remove it)",
                    c.id()
                ));
            }
            return Err("nothing to apply: the live objects already match".into());
        }
        Ok(())
    }
}

/// What a preview needs besides the draft.
pub struct Context<'a> {
    pub translator: &'a Translator,
    pub snap: &'a crate::model::Snapshot,
    /// Every other policy (files and stored), plus roles and bindings.
    pub base: &'a Loaded,
    pub live: &'a [Live],
    pub who: &'a Subject,
}

/// Preview a draft: `origin` names it in diagnostics; `replaces` is the policy being edited (so
/// a rename drops the old one). `store` is the cluster that keeps policies as custom resources
/// when the draft is one (`cluster/<name>` origin).
pub fn preview(
    ctx: &Context<'_>,
    generation: u64,
    text: &str,
    origin: &str,
    replaces: &[PolicyId],
    store: Option<&str>,
) -> Preview {
    let t0 = Instant::now();
    let draft = crate::policy::load_str(text, origin);
    let ids: Vec<PolicyId> = draft.policies.iter().map(Policy::id).collect();
    let mut all = Loaded {
        policies: ctx
            .base
            .policies
            .iter()
            .filter(|p| !ids.contains(&p.id()) && !replaces.contains(&p.id()))
            .cloned()
            .collect(),
        roles: ctx.base.roles.clone(),
        bindings: ctx.base.bindings.clone(),
        diagnostics: ctx.base.diagnostics.clone(),
        invalid: ctx.base.invalid.clone(),
        invalid_documents: ctx.base.invalid_documents,
    };
    all.policies.extend(draft.policies.iter().cloned());
    let watched: BTreeSet<String> = ids.iter().chain(replaces).map(PolicyId::key).collect();
    let planned = crate::pipeline::plan(&crate::pipeline::Request {
        snap: ctx.snap,
        translator: ctx.translator,
        loaded: &all,
        live: ctx.live,
        prune: true,
        scope: crate::pipeline::Scope::Policies(watched.clone()),
        store: store.map(|s| (s, draft.policies.iter().collect())),
        who: ctx.who,
    });
    let mine = |g: &Generated| g.sources.iter().any(|s| ids.contains(s));
    let mut objects: Vec<Generated> = planned
        .output
        .objects
        .iter()
        .filter(|g| mine(g))
        .cloned()
        .collect();
    if let Some(store) = store {
        objects.extend(draft.policies.iter().map(|p| policy_object(p, store)));
    }
    let statuses: Vec<_> = planned
        .output
        .statuses
        .iter()
        .filter(|s| ids.contains(&s.policy))
        .cloned()
        .collect();
    // the draft's own policies are checked, whether or not its plan changes anything: the roles
    // decide who may own it (the pipeline checks the changed ones, a subset of these)
    let roles = if ctx.base.roles.is_empty() && ctx.base.bindings.is_empty() {
        RoleCheck::Off
    } else {
        let d = crate::rbac::check(
            &draft.policies.iter().collect::<Vec<_>>(),
            ctx.who,
            &ctx.base.roles,
            &ctx.base.bindings,
        );
        if d.is_empty() {
            RoleCheck::Allowed(format!("allowed for {:?}", ctx.who.user))
        } else {
            RoleCheck::Denied(d)
        }
    };
    // stored policies that did not load are the board's business, not the draft's
    let warnings = crate::pipeline::warnings(&planned);
    let (findings_added, findings_fixed) = crate::analyze::plan_effect(ctx.snap, &planned.plan);
    // a change held for a cluster not synced is a warning (above); a conflict blocks
    let mut held_back: Vec<crate::pipeline::HeldBack> =
        crate::pipeline::conflicts_by_policy(&planned.plan)
            .into_iter()
            .filter(|(p, _)| watched.contains(p))
            .flat_map(|(_, h)| h)
            .collect();
    held_back.dedup();
    Preview {
        generation,
        diagnostics: draft.diagnostics,
        policies: ids,
        statuses,
        objects,
        schema: planned.schema,
        plan: planned.plan,
        held: planned.held,
        held_back,
        warnings,
        roles,
        findings_added,
        findings_fixed,
        snapshot_seq: ctx.snap.seq,
        took: t0.elapsed(),
    }
}

/// The plan for deleting a policy: its objects pruned (or updated where others still shape
/// them), and its custom resource deleted when it is stored in a cluster.
pub fn delete_plan(ctx: &Context<'_>, id: &PolicyId) -> Plan {
    let p = preview(ctx, 0, "", "(deleted)", std::slice::from_ref(id), None);
    p.plan
}

/// The YAML stream of a preview's objects, grouped by cluster.
pub fn objects_text(objects: &[Generated]) -> Vec<String> {
    let mut out = Vec::new();
    let mut last: Option<&str> = None;
    for g in objects {
        if last != Some(g.cluster.as_str()) {
            if last.is_some() {
                out.push(String::new());
            }
            out.push(format!("# ── cluster {} ──", g.cluster));
            last = Some(&g.cluster);
        }
        out.push("---".into());
        match crate::yaml::to_string(&g.to_object()) {
            Ok(y) => out.extend(y.lines().map(str::to_string)),
            Err(e) => out.push(format!("# cannot print: {e}")),
        }
    }
    out
}

/// Where the unsaved draft of `target` is kept.
pub fn draft_path(drafts_dir: &Path, target: &Path) -> PathBuf {
    let flat: String = target
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    drafts_dir.join(format!("{flat}.draft"))
}

/// A job for the worker.
#[derive(Debug)]
pub enum Job {
    /// Reload the policy files and recompute the board (after a snapshot or a save).
    Board(Arc<crate::model::Snapshot>),
    Preview(PreviewJob),
    /// Write a file (save), then drop its draft.
    Save {
        path: PathBuf,
        text: String,
    },
    /// Remove a policy file (after its objects were deleted).
    Remove {
        path: PathBuf,
    },
    /// Drop the draft of `target` (the user discarded it).
    Discard {
        target: PathBuf,
    },
    /// Compute the plan that deletes a policy.
    DeletePlan {
        job: u64,
        id: PolicyId,
        /// The fleet as the console shows it.
        snap: Arc<crate::model::Snapshot>,
    },
}

#[derive(Debug)]
pub struct PreviewJob {
    pub generation: u64,
    pub text: String,
    /// The file the draft will be saved to.
    pub target: PathBuf,
    pub replaces: Vec<PolicyId>,
    /// `Some(cluster)` when the policy is stored as a custom resource there.
    pub store: Option<String>,
    pub snap: Arc<crate::model::Snapshot>,
    /// The text differs from the file: keep it as a draft.
    pub dirty: bool,
}

/// What the worker answers.
#[derive(Debug, Clone)]
pub enum Answer {
    Board(Arc<Board>),
    Preview(Arc<Preview>),
    Saved(PathBuf, Result<(), String>),
    Removed(PathBuf, Result<(), String>),
    DeletePlan(u64, Arc<Plan>),
}

/// Where the worker reads and writes.
#[derive(Debug, Clone)]
pub struct Store {
    /// The policy directory (files the console creates land here).
    pub dir: PathBuf,
    /// More policy files or directories given on the command line.
    pub extra: Vec<PathBuf>,
    pub drafts: PathBuf,
    pub who: Subject,
}

struct State_ {
    store: Store,
    translator: Option<(u64, Fingerprint, Instant, Arc<Translator>)>,
    loaded: Arc<Loaded>,
    live: Arc<Vec<Live>>,
    live_seq: u64,
    /// Keeps each cluster's findings until its view changes.
    analyzer: crate::analyze::Analyzer,
    /// When the editor last asked for a preview: while someone edits, the translator (its
    /// index of the fleet and its last output, for incremental re-translation) is kept between
    /// jobs; otherwise a board lets it go (tens of MiB at 100k pods, rebuilt anyway when the
    /// fleet changes).
    last_preview: Option<Instant>,
}

impl State_ {
    /// The translator for `snap`: rebuilt at once when clusters, their states or their
    /// service and workload counts changed, else at most once a second (pod churn).
    fn translator(&mut self, snap: &crate::model::Snapshot) -> Arc<Translator> {
        let fp = fingerprint(snap);
        match &self.translator {
            Some((seq, f, at, t))
                if *seq == snap.seq || (*f == fp && at.elapsed() < Duration::from_secs(1)) =>
            {
                t.clone()
            }
            _ => {
                let t = Arc::new(Translator::new(snap));
                self.translator = Some((snap.seq, fp, Instant::now(), t.clone()));
                t
            }
        }
    }
    fn live(&mut self, snap: &crate::model::Snapshot) -> Arc<Vec<Live>> {
        if self.live_seq != snap.seq {
            self.live = Arc::new(live_objects(snap));
            self.live_seq = snap.seq;
        }
        self.live.clone()
    }

    fn board(&mut self, snap: &Arc<crate::model::Snapshot>) -> Board {
        let t0 = Instant::now();
        let mut paths = vec![self.store.dir.clone()];
        paths.extend(self.store.extra.iter().cloned());
        let paths: Vec<PathBuf> = paths.into_iter().filter(|p| p.exists()).collect();
        let loaded = crate::policy::load_all(&paths, snap);
        let translator = self.translator(snap);
        // A policy is live when the fleet holds what it generates: the same pipeline the
        // apply runs says what is still pending (a saved policy whose apply failed, say); its
        // translation (of every policy: the scope names them all) is the board's too.
        let live = self.live(snap);
        let planned = crate::pipeline::plan(&crate::pipeline::Request {
            snap,
            translator: &translator,
            loaded: &loaded,
            live: &live,
            prune: false,
            scope: crate::pipeline::Scope::Policies(
                loaded.policies.iter().map(|p| p.id().key()).collect(),
            ),
            store: None,
            who: &self.store.who,
        });
        let mut rows = board(&loaded, &planned.output);
        let mut pending: BTreeMap<String, usize> = BTreeMap::new();
        // the pending changes that only follow pods (ServiceEntry endpoints of a flat network)
        let mut pod_following: BTreeMap<String, usize> = BTreeMap::new();
        let flat: BTreeSet<String> = loaded
            .policies
            .iter()
            .filter(|p| match &p.spec {
                crate::policy::Spec::VirtualMesh(vm) => {
                    vm.federation.as_ref().is_some_and(|f| f.flat_network)
                }
                _ => false,
            })
            .map(|p| p.id().key())
            .collect();
        for i in planned.plan.changes() {
            for p in &i.policies {
                *pending.entry(p.clone()).or_default() += 1;
                if flat.contains(p)
                    && i.kind == "ServiceEntry"
                    && i.action == crate::plan::Action::Update
                {
                    *pod_following.entry(p.clone()).or_default() += 1;
                }
            }
        }
        // a policy any of whose objects is held back is not in effect: never accepted
        let held_back = planned.held_back();
        for r in rows
            .iter_mut()
            .filter(|r| matches!(r.state, State::Accepted | State::Warning))
        {
            let Some(held) = r.policy.as_ref().and_then(|id| held_back.get(&id.key())) else {
                continue;
            };
            if held.iter().any(|h| h.conflict) {
                r.state = State::Conflicting;
            } else {
                r.state = State::Warning;
            }
            r.not_on_fleet = true;
            let lines: Vec<String> = held.iter().map(ToString::to_string).collect();
            r.reason = lines[0].clone();
            for (k, l) in lines.into_iter().enumerate() {
                r.reasons.insert(k, l);
            }
        }
        for r in rows.iter_mut().filter(|r| r.state == State::Accepted) {
            let key = r.policy.as_ref().map(|id| id.key()).unwrap_or_default();
            if let Some(n) = pending.get(&key) {
                let why = match pod_following.get(&key) {
                    // a flat network's endpoints are pod IPs: a rollout makes them stale
                    Some(f) if f == n => format!(
                        "out of date: {} follow pod IPs (flatNetwork) and the pods changed: apply to update",
                        crate::ui::text::count(*f, "ServiceEntry", "ServiceEntries")
                    ),
                    _ => format!(
                        "saved, not applied: {} pending",
                        crate::ui::text::count(*n, "change", "changes")
                    ),
                };
                r.state = State::Warning;
                r.not_on_fleet = true;
                r.reason = why.clone();
                r.reasons.insert(0, why);
            }
        }
        let mut texts = BTreeMap::new();
        for r in &rows {
            if let Some(f) = &r.file
                && !texts.contains_key(f)
                && let Ok(t) = std::fs::read_to_string(f)
            {
                texts.insert(f.clone(), t);
            }
        }
        let mut drafts = BTreeMap::new();
        if let Ok(rd) = std::fs::read_dir(&self.store.drafts) {
            for e in rd.flatten() {
                let Ok(text) = std::fs::read_to_string(e.path()) else {
                    continue;
                };
                // the first line names the target: `# meshdeck draft of <path>`
                if let Some(t) = text
                    .lines()
                    .next()
                    .and_then(|l| l.strip_prefix(DRAFT_HEADER))
                {
                    let body = text.split_once('\n').map(|x| x.1).unwrap_or("");
                    drafts.insert(PathBuf::from(t), body.to_string());
                }
            }
        }
        // drafts of files not saved yet get a row, so `e` brings them back
        for (target, text) in drafts.iter().filter(|(t, _)| !t.exists()) {
            let l = crate::policy::load_str(text, &target.display().to_string());
            let (kind, namespace, name) = l
                .policies
                .first()
                .map(|p| {
                    (
                        p.kind().to_string(),
                        p.namespace().to_string(),
                        p.meta.name.clone(),
                    )
                })
                .unwrap_or_else(|| {
                    let f = target.file_stem().map(|s| s.to_string_lossy().to_string());
                    ("?".into(), "-".into(), f.unwrap_or_default())
                });
            rows.push(PolicyRow {
                kind,
                namespace,
                name,
                origin: target.display().to_string(),
                file: Some(target.clone()),
                sources: "-".into(),
                targets: "-".into(),
                state: State::Warning,
                reason: "unsaved draft: e opens it".into(),
                reasons: vec!["unsaved draft: not in any file yet".into()],
                clusters: vec![],
                policy: l.policies.first().map(Policy::id),
                text: None,
                draft: true,
                not_on_fleet: false,
            });
        }
        self.loaded = Arc::new(loaded);
        let findings = self.analyzer.analyze(snap);
        let finding_notes = finding_notes(&findings, Some(snap));
        Board {
            rows,
            texts,
            drafts,
            seq: snap.seq,
            took: t0.elapsed(),
            findings,
            finding_notes,
        }
    }

    fn file_job(&mut self, j: Job, answer: &impl Fn(Answer)) {
        match j {
            Job::Save { path, text } => {
                let r = write_atomic(&path, &text);
                if r.is_ok() {
                    let _ = std::fs::remove_file(draft_path(&self.store.drafts, &path));
                }
                answer(Answer::Saved(path, r));
            }
            Job::Remove { path } => {
                let r = std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()));
                let _ = std::fs::remove_file(draft_path(&self.store.drafts, &path));
                answer(Answer::Removed(path, r));
            }
            Job::Discard { target } => {
                let _ = std::fs::remove_file(draft_path(&self.store.drafts, &target));
            }
            Job::DeletePlan { job, id, snap } => {
                let t = self.translator(&snap);
                let live = self.live(&snap);
                let ctx = Context {
                    translator: &t,
                    snap: &snap,
                    base: &self.loaded,
                    live: &live,
                    who: &self.store.who,
                };
                let plan = delete_plan(&ctx, &id);
                answer(Answer::DeletePlan(job, Arc::new(plan)));
            }
            Job::Board(_) | Job::Preview(_) => {}
        }
    }

    fn preview(&mut self, j: &PreviewJob) -> Preview {
        self.last_preview = Some(Instant::now());
        let translator = self.translator(&j.snap);
        let live = self.live(&j.snap);
        let origin = j.target.display().to_string();
        let ctx = Context {
            translator: &translator,
            snap: &j.snap,
            base: &self.loaded,
            live: &live,
            who: &self.store.who,
        };
        preview(
            &ctx,
            j.generation,
            &j.text,
            &origin,
            &j.replaces,
            j.store.as_deref(),
        )
    }
}

/// What decides whether a kept fleet index is still good enough.
type Fingerprint = Vec<(String, &'static str, usize, usize, usize)>;

fn fingerprint(snap: &crate::model::Snapshot) -> Fingerprint {
    snap.clusters
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                c.state.word(),
                c.counts.services,
                c.counts.workloads,
                c.counts.istio_objects,
            )
        })
        .collect()
}

/// The first line of a draft file.
pub const DRAFT_HEADER: &str = "# meshdeck draft of ";

fn write_atomic(path: &Path, text: &str) -> Result<(), String> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let tmp = path.with_extension("meshdeck-tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The authoring worker: one thread, jobs in a channel; of several waiting previews only the
/// newest runs (the editor never waits for it), and a waiting board job runs once.
pub struct Worker {
    tx: std::sync::mpsc::Sender<Job>,
}

impl Worker {
    pub fn spawn(store: Store, answer: impl Fn(Answer) + Send + 'static) -> Worker {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("meshdeck-author".into())
            .spawn(move || {
                let mut st = State_ {
                    store,
                    translator: None,
                    loaded: Arc::new(Loaded::default()),
                    live: Arc::new(vec![]),
                    live_seq: u64::MAX,
                    analyzer: crate::analyze::Analyzer::new(),
                    last_preview: None,
                };
                while let Ok(first) = rx.recv() {
                    let mut jobs = vec![first];
                    jobs.extend(rx.try_iter());
                    let mut board = false;
                    // the newest snapshot of the batch, for the board: not kept between
                    // batches (under churn it would hold a whole older generation of every
                    // cluster's views alive)
                    let mut snap: Option<Arc<crate::model::Snapshot>> = None;
                    let mut preview: Option<PreviewJob> = None;
                    let mut files = Vec::new();
                    for j in jobs {
                        match j {
                            Job::Board(s) => {
                                snap = Some(s);
                                board = true;
                            }
                            Job::Preview(p) => {
                                snap = Some(p.snap.clone());
                                preview = Some(p);
                            }
                            other => files.push(other),
                        }
                    }
                    if let Some(p) = preview.as_ref().filter(|p| p.dirty) {
                        // keep the user's text safe before anything else
                        let _ = crate::config::private_dir(&st.store.drafts);
                        let _ = crate::config::write_private(
                            &draft_path(&st.store.drafts, &p.target),
                            &format!("{DRAFT_HEADER}{}\n{}", p.target.display(), p.text),
                        );
                    }
                    for j in files {
                        st.file_job(j, &answer);
                    }
                    if let Some(p) = preview {
                        let pv = st.preview(&p);
                        answer(Answer::Preview(Arc::new(pv)));
                    }
                    if board && let Some(s) = snap.take() {
                        let b = st.board(&s);
                        tracing::debug!(seq = s.seq, took_ms = b.took.as_millis(), "board");
                        answer(Answer::Board(Arc::new(b)));
                        if st
                            .last_preview
                            .is_none_or(|t| t.elapsed() > Duration::from_secs(120))
                        {
                            st.translator = None;
                        }
                        // a board over a large fleet frees tens of MiB of scratch (the
                        // translation's and the analysis's) that glibc keeps in this thread's
                        // arena: give it back
                        crate::fleet::return_freed_memory();
                    }
                }
            })
            .ok();
        Worker { tx }
    }

    pub fn send(&self, job: Job) {
        let _ = self.tx.send(job);
    }
}
