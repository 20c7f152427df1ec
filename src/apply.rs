//! The only code in meshdeck that sends mutating requests to a cluster.
//!
//! Read-only is a type-level fact: a [`Writer`] needs a [`WriteToken`], and the only way to get
//! one is [`Access::new`] with `readonly == false`. A read-only session (`--readonly`, a context
//! marked `readOnly`) holds `Access::ReadOnly` and so cannot build a writer at all. A test
//! (tests/one_door.rs) fails if any other module of `src/` names a mutating client call.
//!
//! The path: server-side dry-run of the whole plan (every cluster, in parallel, bounded) → only
//! if all of it passes, server-side apply with field manager `meshdeck` (no force unless asked)
//! → prune deletes → one audit line per object.

use crate::plan::{Action, Item, Plan};
use futures::StreamExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;

pub const FIELD_MANAGER: &str = "meshdeck";
/// At most this many requests in flight per apply.
const PARALLEL: usize = 8;

/// Proof that this session may write. Not `Clone`, no public constructor.
#[derive(Debug)]
pub struct WriteToken {
    _private: (),
}

/// What a session may do.
#[derive(Debug)]
pub enum Access {
    ReadOnly,
    ReadWrite(WriteToken),
}

impl Access {
    pub fn new(readonly: bool) -> Access {
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
    pub cluster: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub action: Action,
    /// `Ok` or the server's message.
    pub result: Result<(), String>,
}

/// `cluster action Kind namespace/name: ok` or `...: FAILED: message`.
impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {}/{}: ",
            self.cluster,
            self.action.word(),
            self.kind,
            self.namespace,
            self.name
        )?;
        match &self.result {
            Ok(()) => write!(f, "ok"),
            Err(e) => write!(f, "FAILED: {e}"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// The dry-run failed somewhere: nothing was written.
    pub dry_run_failed: bool,
    /// Only the dry-run ran (asked for).
    pub dry_run_only: bool,
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
            let e = m.entry(o.cluster.as_str()).or_default();
            if o.result.is_ok() {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
        m
    }
}

#[derive(Serialize)]
struct AuditLine<'a> {
    time: String,
    user: &'a str,
    cluster: &'a str,
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
    action: &'a str,
    policies: &'a [String],
    result: String,
}

pub struct Writer {
    _token: WriteToken,
    clients: BTreeMap<String, kube::Client>,
    force: bool,
    user: String,
    audit: Mutex<tracing_appender::rolling::RollingFileAppender>,
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

fn message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => crate::fleet::describe_error(other),
    }
}

impl Writer {
    /// `clients`: one per cluster the plan may touch. `audit_log`: the JSON-lines file.
    pub fn new(
        token: WriteToken,
        clients: BTreeMap<String, kube::Client>,
        user: &str,
        force: bool,
        audit_log: &std::path::Path,
    ) -> anyhow::Result<Writer> {
        let dir = audit_log
            .parent()
            .ok_or_else(|| anyhow::anyhow!("{}: no directory", audit_log.display()))?;
        std::fs::create_dir_all(dir)?;
        let file = audit_log
            .file_name()
            .ok_or_else(|| anyhow::anyhow!("{}: no file name", audit_log.display()))?;
        Ok(Writer {
            _token: token,
            clients,
            force,
            user: user.to_string(),
            audit: Mutex::new(tracing_appender::rolling::never(dir, file)),
        })
    }

    /// The clients it writes through (also used for the access reviews before a write).
    pub fn clients(&self) -> &BTreeMap<String, kube::Client> {
        &self.clients
    }

    async fn one(&self, item: &Item, dry_run: bool) -> Result<(), String> {
        let client = self
            .clients
            .get(&item.cluster)
            .ok_or_else(|| format!("no connection to cluster {}", item.cluster))?
            .clone();
        let ar = api_resource(item);
        let api: Api<DynamicObject> = Api::namespaced_with(client, &item.namespace, &ar);
        match item.action {
            Action::Create | Action::Update => {
                let obj = item
                    .desired
                    .as_ref()
                    .ok_or_else(|| "nothing to apply".to_string())?;
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
    }

    async fn outcome(&self, i: &Item, dry_run: bool) -> Outcome {
        let result = self.one(i, dry_run).await;
        Outcome {
            cluster: i.cluster.clone(),
            kind: i.kind.clone(),
            namespace: i.namespace.clone(),
            name: i.name.clone(),
            action: i.action,
            result,
        }
    }

    async fn run(&self, items: &[&Item], dry_run: bool) -> Vec<Outcome> {
        let futs: Vec<_> = items.iter().map(|i| self.outcome(i, dry_run)).collect();
        futures::stream::iter(futs)
            .buffer_unordered(PARALLEL)
            .collect()
            .await
    }

    fn audit(&self, item: &Item, o: &Outcome) {
        let line = AuditLine {
            time: chrono::Utc::now().to_rfc3339(),
            user: &self.user,
            cluster: &item.cluster,
            kind: &item.kind,
            namespace: &item.namespace,
            name: &item.name,
            action: item.action.word(),
            policies: &item.policies,
            result: match &o.result {
                Ok(()) => "ok".into(),
                Err(e) => format!("error: {e}"),
            },
        };
        if let Ok(mut text) = serde_json::to_string(&line) {
            text.push('\n');
            if let Ok(mut f) = self.audit.lock() {
                let _ = f.write_all(text.as_bytes());
                let _ = f.flush();
            }
        }
    }

    /// Server-side dry-run of every change of the plan, all clusters in parallel.
    pub async fn dry_run(&self, plan: &Plan) -> Report {
        let changes: Vec<&Item> = plan.changes().collect();
        let mut dry = self.run(&changes, true).await;
        sort(&mut dry);
        Report {
            dry_run_failed: dry.iter().any(|o| o.result.is_err()),
            dry_run_only: true,
            outcomes: dry,
        }
    }

    /// Write the plan: server-side apply of creates and updates, then prune deletes; one audit
    /// line per object. Call after a passing [`Writer::dry_run`] (what [`Writer::apply`] does).
    pub async fn write(&self, plan: &Plan) -> Report {
        let changes: Vec<&Item> = plan.changes().collect();
        // Applies first, deletes after: a renamed object exists again before its old name goes.
        let (applies, deletes): (Vec<&Item>, Vec<&Item>) = changes
            .into_iter()
            .partition(|i| i.action != Action::Delete);
        let mut outcomes = self.run(&applies, false).await;
        outcomes.extend(self.run(&deletes, false).await);
        sort(&mut outcomes);
        for o in &outcomes {
            if let Some(item) = plan.items.iter().find(|i| {
                i.cluster == o.cluster
                    && i.kind == o.kind
                    && i.namespace == o.namespace
                    && i.name == o.name
            }) {
                self.audit(item, o);
            }
        }
        Report {
            dry_run_failed: false,
            dry_run_only: false,
            outcomes,
        }
    }

    /// Dry-run everything; then, unless `dry_run_only` or the dry-run failed, write.
    pub async fn apply(&self, plan: &Plan, dry_run_only: bool) -> Report {
        let dry = self.dry_run(plan).await;
        if dry.dry_run_failed || dry_run_only {
            return dry;
        }
        self.write(plan).await
    }
}

fn sort(v: &mut [Outcome]) {
    v.sort_by(|a, b| {
        (&a.cluster, &a.kind, &a.namespace, &a.name).cmp(&(
            &b.cluster,
            &b.kind,
            &b.namespace,
            &b.name,
        ))
    });
}
