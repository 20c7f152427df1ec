//! The pipeline's I/O half: Kubernetes RBAC review, dry-run, apply, prune and audit through the
//! session's writer. The pure half (load → translate → schema → plan → holds → roles) is
//! `meshdeck_core::pipeline`, re-exported here so callers see one module.

pub use meshdeck_core::pipeline::*;

use crate::apply::{Report, Writer};
use crate::plan::{Item, Plan};
use crate::rbac::{AccessKey, Review};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The answers of Kubernetes RBAC for a plan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Reviews {
    /// How many planned writes were reviewed.
    pub asked: usize,
    /// How many access reviews that took (a server-side apply is a `patch`, and a `create`
    /// where the object is new: two verbs for one write).
    pub reviews: usize,
    /// `cluster Kind ns/name: reason` for each denied write.
    pub denied: Vec<String>,
    /// Clusters that did not answer, with why: they are left out of the write.
    pub failed: BTreeMap<String, String>,
}

impl Reviews {
    /// What the reviews said, one line each (`diff` prints them; so does an apply).
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .denied
            .iter()
            .map(|d| format!("kubernetes rbac: {d}"))
            .collect();
        for (c, why) in &self.failed {
            out.push(format!("kubernetes rbac: {c}: {why}: left out"));
        }
        if self.denied.is_empty() && self.failed.is_empty() && self.asked > 0 {
            out.push(format!(
                "kubernetes rbac: {} allowed ({})",
                if self.asked == 1 {
                    "the planned write".to_string()
                } else {
                    format!("all {} planned writes", self.asked)
                },
                if self.reviews == 1 {
                    "1 access review".to_string()
                } else {
                    format!("{} access reviews", self.reviews)
                }
            ));
        }
        out
    }
}

/// Kubernetes RBAC for every planned write (SelfSubjectAccessReview), each within `timeout`.
pub async fn review(
    plan: &Plan,
    clients: &BTreeMap<String, kube::Client>,
    timeout: Duration,
) -> Reviews {
    let keys = crate::rbac::plan_keys(plan);
    let distinct: Vec<AccessKey> = keys.iter().map(|(_, k)| k.clone()).collect();
    let answers = crate::rbac::access_reviews(clients, &distinct, timeout).await;
    let mut out = Reviews {
        asked: keys
            .iter()
            .map(|(i, _)| *i)
            .collect::<BTreeSet<usize>>()
            .len(),
        reviews: distinct.iter().collect::<BTreeSet<&AccessKey>>().len(),
        ..Reviews::default()
    };
    let mut seen = BTreeSet::new();
    for (i, k) in &keys {
        match answers.get(k) {
            Some(Review::Denied(e)) => {
                let line = format!("{}: {e}", plan.items[*i].id());
                if seen.insert(line.clone()) {
                    out.denied.push(line);
                }
            }
            Some(Review::Failed(e)) => {
                out.failed.entry(k.0.clone()).or_insert_with(|| e.clone());
            }
            Some(Review::Allowed) => {}
            None => {
                out.failed
                    .entry(k.0.clone())
                    .or_insert_with(|| "no access review answer".into());
            }
        }
    }
    out
}

/// The I/O half's result.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Executed {
    pub reviews: Reviews,
    /// Nothing was sent: why.
    pub refused: Option<String>,
    pub report: Report,
}

/// Review, dry-run and write a plan through the session's writer. Clusters that do not answer
/// their access reviews are left out (reported); a denial anywhere sends nothing.
pub async fn execute(
    writer: &Writer,
    plan: &Plan,
    dry_run_only: bool,
    timeout: Duration,
) -> Executed {
    let reviews = review(plan, writer.clients(), timeout).await;
    if !reviews.denied.is_empty() {
        return Executed {
            reviews,
            refused: Some("not allowed by Kubernetes RBAC (above): nothing was sent".into()),
            report: Report::default(),
        };
    }
    let mut plan = plan.clone();
    let mut skipped = BTreeMap::new();
    if !reviews.failed.is_empty() {
        let (keep, drop): (Vec<Item>, Vec<Item>) = plan
            .items
            .into_iter()
            .partition(|i| !reviews.failed.contains_key(&i.cluster));
        plan.items = keep;
        for i in drop.iter().filter(|i| i.action.changes()) {
            skipped.insert(
                i.cluster.clone(),
                reviews.failed.get(&i.cluster).cloned().unwrap_or_default(),
            );
        }
    }
    let mut report = if plan.has_changes() {
        writer.apply(&plan, dry_run_only).await
    } else {
        Report::default()
    };
    for (c, why) in skipped {
        report.skipped.entry(c).or_insert(why);
    }
    Executed {
        reviews,
        refused: None,
        report,
    }
}

/// What an execution did, as lines (the CLI prints them; the console's apply dialog shows
/// them).
pub fn executed_lines(e: &Executed) -> Vec<String> {
    let mut out = e.reviews.lines();
    if let Some(why) = &e.refused {
        out.push(format!("refused: {why}"));
        return out;
    }
    let r = &e.report;
    if !r.outcomes.is_empty() {
        out.push(String::new());
    }
    out.extend(r.outcomes.iter().map(ToString::to_string));
    out.extend(r.cluster_lines());
    for (c, why) in &r.skipped {
        if !r.outcomes.iter().any(|o| &o.object.cluster == c) {
            out.push(format!("{c}: left out: {why}"));
        }
    }
    if r.dry_run_failed {
        out.push("the dry-run failed: nothing was written to any cluster".into());
    } else if r.failed().next().is_some() || !r.skipped.is_empty() {
        out.push(
            "some clusters failed (above); the others are applied. Re-run to complete: apply is idempotent."
                .into(),
        );
    }
    out
}
