//! The only code in meshdeck that sends mutating requests to a cluster.
//!
//! Read-only is a type-level fact: a [`Writer`] needs a [`WriteToken`], and only the session
//! (`crate::session`) can make one, when it is not read-only. Under that, every client of a
//! read-only target refuses non-GET requests in its transport. A test (tests/one_door.rs)
//! fails if any other module of `src/` names a mutating client call.
//!
//! The path: server-side dry-run of the whole plan (every cluster in parallel, each request on
//! a timeout, each cluster on a budget) → if no object was rejected, server-side apply with
//! field manager `meshdeck` (no force unless asked) → prune deletes; a cluster that did not
//! answer is left out and reported while the others are written. Audit: an intent line before
//! every write request and a result line after it.

use crate::object::{Identified, ObjectRef};
use crate::plan::{Action, Item, Plan};
use futures::StreamExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

pub const FIELD_MANAGER: &str = "meshdeck";
/// At most this many requests in flight per cluster.
const PARALLEL: usize = 8;
/// A cluster's whole apply (dry-run and write) may take this many request timeouts.
const BUDGET_REQUESTS: u32 = 4;

/// Proof that this session may write. Not `Clone`, no public constructor: only the session
/// ([`crate::session::Session`]) makes one, and only when it is not read-only.
#[derive(Debug)]
pub struct WriteToken {
    _private: (),
}

impl WriteToken {
    /// Another proof for a second writer of the same session.
    pub(crate) fn share(&self) -> WriteToken {
        WriteToken { _private: () }
    }
}

/// What a session may do.
#[derive(Debug)]
pub enum Access {
    ReadOnly,
    ReadWrite(WriteToken),
}

impl Access {
    /// Only the session calls this (tests/one_door.rs checks it).
    pub(crate) fn new(readonly: bool) -> Access {
        if readonly {
            Access::ReadOnly
        } else {
            Access::ReadWrite(WriteToken { _private: () })
        }
    }
}

/// One object's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    #[serde(flatten)]
    pub object: ObjectRef,
    pub action: Action,
    /// `Ok` or the server's (or the transport's) message.
    pub result: Result<(), String>,
    /// The failure says the cluster is sick (timeout, connection, 5xx, 429), not that the
    /// object is wrong: the other clusters go on.
    pub unavailable: bool,
}

impl Outcome {
    fn of(i: &Item, result: Result<(), String>, unavailable: bool) -> Outcome {
        Outcome {
            object: i.object_ref(),
            action: i.action,
            result,
            unavailable,
        }
    }
}

/// `cluster action Kind namespace/name: ok` or `...: FAILED: message`.
impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let o = &self.object;
        write!(
            f,
            "{} {} {} {}/{}: ",
            o.cluster,
            self.action.word(),
            o.kind,
            o.namespace,
            o.name
        )?;
        match &self.result {
            Ok(()) => write!(f, "ok"),
            Err(e) => write!(f, "FAILED: {e}"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// The dry-run rejected an object somewhere: nothing was written to any cluster.
    pub dry_run_failed: bool,
    /// Only the dry-run ran (asked for).
    pub dry_run_only: bool,
    /// Clusters left out of the write because they failed (timeout, unreachable) in the
    /// dry-run, with why; the other clusters were written.
    pub skipped: BTreeMap<String, String>,
    pub outcomes: Vec<Outcome>,
}

impl Report {
    pub fn failed(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().filter(|o| o.result.is_err())
    }
    /// Per cluster: (ok, failed).
    pub fn per_cluster(&self) -> BTreeMap<&str, (usize, usize)> {
        let mut m: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for o in &self.outcomes {
            let e = m.entry(o.object.cluster.as_str()).or_default();
            if o.result.is_ok() {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
        m
    }
    /// One line per cluster: `cluster: applied 3 ok, 0 failed` (or `dry-run`).
    pub fn cluster_lines(&self) -> Vec<String> {
        let what = if self.dry_run_failed || self.dry_run_only {
            "dry-run"
        } else {
            "applied"
        };
        self.per_cluster()
            .into_iter()
            .map(|(cluster, (ok, failed))| {
                let skipped = self
                    .skipped
                    .get(cluster)
                    .map(|why| format!(" (left out of the write: {why})"))
                    .unwrap_or_default();
                format!("{cluster}: {what} {ok} ok, {failed} failed{skipped}")
            })
            .collect()
    }
}

/// One line of the audit log (JSON lines). A write leaves two: `intent` before the request is
/// sent, `result` after it answered, so a killed run leaves a record of every write it sent.
#[derive(Serialize)]
struct AuditLine<'a> {
    time: String,
    /// One id per apply run.
    run: &'a str,
    phase: &'a str,
    /// The identity that wrote to this cluster (the server's answer to "who am I", else the
    /// kubeconfig user or the impersonated one).
    user: &'a str,
    cluster: &'a str,
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
    action: &'a str,
    policies: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<String>,
}

/// The audit log: a file private to the user (0600), appended one whole line per write(2).
struct AuditLog {
    file: Mutex<std::fs::File>,
}

impl AuditLog {
    fn open(path: &std::path::Path) -> Result<AuditLog, crate::files::FileError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::files::private_dir(dir)?;
        }
        let file = crate::files::private_append(path)?;
        Ok(AuditLog {
            file: Mutex::new(file),
        })
    }

    fn write(&self, line: &AuditLine<'_>) {
        if let Ok(mut text) = serde_json::to_string(line) {
            text.push('\n');
            if let Ok(mut f) = self.file.lock()
                && let Err(e) = f.write_all(text.as_bytes())
            {
                tracing::error!(error = %e, "writing the audit log");
            }
        }
    }
}

pub struct Writer {
    _token: WriteToken,
    clients: BTreeMap<String, kube::Client>,
    /// Per cluster, who the session acts as there.
    identities: Mutex<BTreeMap<String, String>>,
    force: bool,
    audit: AuditLog,
    request_timeout: Duration,
}

fn api_resource(item: &Item) -> ApiResource {
    let (group, version) = item
        .api_version
        .rsplit_once('/')
        .unwrap_or(("", item.api_version.as_str()));
    let plural = crate::fleet::ISTIO_KINDS
        .iter()
        .chain(crate::fleet::POLICY_KINDS)
        .find(|(g, _, k, _)| *g == group && *k == item.kind)
        .map(|(_, _, _, p)| p.to_string())
        .unwrap_or_else(|| format!("{}s", item.kind.to_ascii_lowercase()));
    ApiResource {
        group: group.to_string(),
        version: version.to_string(),
        api_version: item.api_version.clone(),
        kind: item.kind.clone(),
        plural,
    }
}

/// The server's message, and whether it says the cluster (not the object) is the problem.
fn message(e: &kube::Error) -> (String, bool) {
    match e {
        kube::Error::Api(s) => (
            format!("{} ({})", s.message, s.code),
            s.code >= 500 || s.code == 429 || s.code == 408,
        ),
        other => (crate::fleet::describe_error(other), true),
    }
}

impl Writer {
    /// `clients`: one per cluster the plan may touch; `identities`: who the session is there;
    /// `audit_log`: the JSON-lines file.
    pub fn new(
        token: WriteToken,
        clients: BTreeMap<String, kube::Client>,
        identities: BTreeMap<String, String>,
        force: bool,
        audit_log: &std::path::Path,
        request_timeout: Duration,
    ) -> Result<Writer, crate::files::FileError> {
        Ok(Writer {
            _token: token,
            clients,
            identities: Mutex::new(identities),
            force,
            audit: AuditLog::open(audit_log)?,
            request_timeout,
        })
    }

    /// The clients it writes through (also used for the access reviews before a write).
    pub fn clients(&self) -> &BTreeMap<String, kube::Client> {
        &self.clients
    }

    /// How long one cluster's part of an apply may take in all.
    pub fn budget(&self) -> Duration {
        self.request_timeout * BUDGET_REQUESTS
    }

    fn identity(&self, cluster: &str) -> String {
        self.identities
            .lock()
            .ok()
            .and_then(|m| m.get(cluster).cloned())
            .unwrap_or_default()
    }

    /// Ask every cluster of the plan who the session is there (SelfSubjectReview), so the
    /// audit names the identity that really wrote; a cluster that cannot say keeps the
    /// kubeconfig's (or the impersonated) name.
    async fn learn_identities(&self, plan: &Plan) {
        for cluster in plan.clusters() {
            let Some(client) = self.clients.get(cluster) else {
                continue;
            };
            let asked =
                tokio::time::timeout(self.request_timeout, crate::rbac::whoami(client)).await;
            if let Ok(Ok(user)) = asked
                && let Ok(mut m) = self.identities.lock()
            {
                m.insert(cluster.to_string(), user);
            }
        }
    }

    async fn one(&self, item: &Item, dry_run: bool) -> Result<(), (String, bool)> {
        let client = self
            .clients
            .get(&item.cluster)
            .ok_or_else(|| {
                (
                    format!(
                        "no connection to cluster {} (read-only or no client)",
                        item.cluster
                    ),
                    true,
                )
            })?
            .clone();
        let ar = api_resource(item);
        let api: Api<DynamicObject> = Api::namespaced_with(client, &item.namespace, &ar);
        let request = async {
            match item.action {
                Action::Create | Action::Update => {
                    let obj = item
                        .desired
                        .as_ref()
                        .ok_or_else(|| ("nothing to apply".to_string(), false))?;
                    let mut pp = PatchParams::apply(FIELD_MANAGER);
                    pp.force = self.force;
                    pp.dry_run = dry_run;
                    api.patch(&item.name, &pp, &Patch::Apply(obj))
                        .await
                        .map(|_| ())
                        .map_err(|e| message(&e))
                }
                Action::Delete => {
                    let dp = DeleteParams {
                        dry_run,
                        ..DeleteParams::default()
                    };
                    api.delete(&item.name, &dp)
                        .await
                        .map(|_| ())
                        .map_err(|e| message(&e))
                }
                Action::Unchanged | Action::Conflict => Ok(()),
            }
        };
        let no_answer = || {
            format!(
                "no answer within {} s (request timeout)",
                self.request_timeout.as_secs()
            )
        };
        match tokio::time::timeout(self.request_timeout, request).await {
            Ok(Err((m, true))) if m.contains("timed out") => Err((no_answer(), true)),
            Ok(r) => r,
            Err(_) => Err((
                format!(
                    "no answer within {} s (request timeout)",
                    self.request_timeout.as_secs()
                ),
                true,
            )),
        }
    }

    fn audit(&self, run: &str, phase: &str, item: &Item, result: Option<&Result<(), String>>) {
        let user = self.identity(&item.cluster);
        self.audit.write(&AuditLine {
            time: chrono::Utc::now().to_rfc3339(),
            run,
            phase,
            user: &user,
            cluster: &item.cluster,
            kind: &item.kind,
            namespace: &item.namespace,
            name: &item.name,
            action: item.action.word(),
            policies: &item.policies,
            result: result.map(|r| match r {
                Ok(()) => "ok".into(),
                Err(e) => format!("error: {e}"),
            }),
        });
    }

    async fn outcome(&self, i: &Item, dry_run: bool, run: Option<&str>) -> Outcome {
        if let Some(run) = run {
            self.audit(run, "intent", i, None);
        }
        let r = self.one(i, dry_run).await;
        let (result, unavailable) = match r {
            Ok(()) => (Ok(()), false),
            Err((m, u)) => (Err(m), u),
        };
        if let Some(run) = run {
            self.audit(run, "result", i, Some(&result));
        }
        Outcome::of(i, result, unavailable)
    }

    /// One cluster's items, at most [`PARALLEL`] in flight, within `deadline`: what has not
    /// answered by then fails as timed out.
    async fn run_cluster(
        &self,
        items: &[&Item],
        dry_run: bool,
        run: Option<&str>,
        deadline: tokio::time::Instant,
    ) -> Vec<Outcome> {
        let futs: Vec<_> = items
            .iter()
            .map(|i| self.outcome(i, dry_run, run))
            .collect();
        let mut stream = futures::stream::iter(futs).buffer_unordered(PARALLEL);
        let mut done = Vec::new();
        let timed_out = loop {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(o)) => done.push(o),
                Ok(None) => break false,
                Err(_) => break true,
            }
        };
        drop(stream);
        if timed_out {
            let why = format!(
                "the cluster's apply budget ({} s) ran out before it answered",
                self.budget().as_secs()
            );
            for i in items {
                if !done.iter().any(|o| same(o, i)) {
                    if let Some(run) = run {
                        self.audit(run, "result", i, Some(&Err(why.clone())));
                    }
                    done.push(Outcome::of(i, Err(why.clone()), true));
                }
            }
        }
        done
    }

    /// Every cluster in parallel, each on its own budget.
    async fn run(
        &self,
        items: &[&Item],
        dry_run: bool,
        run: Option<&str>,
        deadline: tokio::time::Instant,
    ) -> Vec<Outcome> {
        let mut by: BTreeMap<&str, Vec<&Item>> = BTreeMap::new();
        for i in items {
            by.entry(i.cluster.as_str()).or_default().push(i);
        }
        let futs: Vec<_> = by
            .into_values()
            .map(|items| async move { self.run_cluster(&items, dry_run, run, deadline).await })
            .collect();
        futures::future::join_all(futs)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// When every cluster's budget for this apply runs out (each cluster runs in parallel, so
    /// one instant serves all).
    fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.budget()
    }

    /// Server-side dry-run of every change of the plan, all clusters in parallel.
    pub async fn dry_run(&self, plan: &Plan) -> Report {
        self.dry_run_within(plan, self.deadline()).await
    }

    async fn dry_run_within(&self, plan: &Plan, deadline: tokio::time::Instant) -> Report {
        let changes: Vec<&Item> = plan.changes().collect();
        let mut dry = self.run(&changes, true, None, deadline).await;
        sort(&mut dry);
        let skipped: BTreeMap<String, String> = dry
            .iter()
            .filter(|o| o.unavailable)
            .filter_map(|o| {
                o.result
                    .as_ref()
                    .err()
                    .map(|e| (o.object.cluster.clone(), e.clone()))
            })
            .collect();
        Report {
            dry_run_failed: dry.iter().any(|o| o.result.is_err() && !o.unavailable),
            dry_run_only: true,
            skipped,
            outcomes: dry,
        }
    }

    /// Write the plan: server-side apply of creates and updates, then prune deletes; an
    /// audit intent before each request and its result after. Clusters in `skip` are left
    /// out. Call after a passing dry-run (what [`Writer::apply`] does).
    pub async fn write(&self, plan: &Plan) -> Report {
        self.write_within(plan, &BTreeMap::new(), self.deadline())
            .await
    }

    async fn write_within(
        &self,
        plan: &Plan,
        skip: &BTreeMap<String, String>,
        deadline: tokio::time::Instant,
    ) -> Report {
        let run = uuid::Uuid::new_v4().to_string();
        let changes: Vec<&Item> = plan
            .changes()
            .filter(|i| !skip.contains_key(&i.cluster))
            .collect();
        // Applies first, deletes after: a renamed object exists again before its old name goes.
        let (applies, deletes): (Vec<&Item>, Vec<&Item>) = changes
            .into_iter()
            .partition(|i| i.action != Action::Delete);
        let mut outcomes = self.run(&applies, false, Some(&run), deadline).await;
        outcomes.extend(self.run(&deletes, false, Some(&run), deadline).await);
        for i in plan.changes().filter(|i| skip.contains_key(&i.cluster)) {
            let why = skip.get(&i.cluster).cloned().unwrap_or_default();
            outcomes.push(Outcome::of(
                i,
                Err(format!("not sent: the cluster failed its dry-run ({why})")),
                true,
            ));
        }
        sort(&mut outcomes);
        Report {
            dry_run_failed: false,
            dry_run_only: false,
            skipped: skip.clone(),
            outcomes,
        }
    }

    /// Dry-run everything; then, unless `dry_run_only` or the dry-run rejected an object,
    /// write. A cluster that does not answer the dry-run (timeout, unreachable, 5xx) is left
    /// out of the write and reported; the others are written.
    pub async fn apply(&self, plan: &Plan, dry_run_only: bool) -> Report {
        self.learn_identities(plan).await;
        let deadline = self.deadline();
        let dry = self.dry_run_within(plan, deadline).await;
        if dry.dry_run_failed || dry_run_only {
            return dry;
        }
        self.write_within(plan, &dry.skipped, deadline).await
    }
}

fn same(o: &Outcome, i: &Item) -> bool {
    o.object == i.object_ref()
}

fn sort(v: &mut [Outcome]) {
    v.sort_by(|a, b| a.object.cmp(&b.object));
}
