//! Health rules. A health always says why (never a bare colour): Kiali's workload rules
//! (desired 0 → not ready; available 0 → failure; pending pods → failure; fewer available than
//! desired → degraded), plus mesh rules: a sidecar missing in an injected namespace → degraded,
//! a proxy older than its istiod → warning, istiod not ready → failure. A stale cluster marks
//! every row stale, keeping the last known level.

use super::raw::{RawPod, RawService, RawWorkload};
use super::{Mesh, Sidecar, Workload};
use serde::Serialize;
use std::cmp::Ordering;

/// Severity, ascending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    Ok,
    /// Scaled to zero: nothing runs, by intent.
    NotReady,
    /// No current data: never synced, unreachable or refused. Never shown as ok.
    Unknown,
    Warning,
    Degraded,
    Failure,
}

impl Level {
    pub fn word(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::NotReady => "not-ready",
            Level::Unknown => "unknown",
            Level::Warning => "warning",
            Level::Degraded => "degraded",
            Level::Failure => "failure",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    pub level: Level,
    /// Why, most severe first; empty only when ok.
    pub reasons: Vec<String>,
    /// Set when the cluster is stale: the level is the last known one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale: Option<String>,
}

impl Health {
    pub fn ok() -> Self {
        Health {
            level: Level::Ok,
            reasons: vec![],
            stale: None,
        }
    }

    fn add(&mut self, level: Level, reason: impl Into<String>) {
        self.reasons.push(reason.into());
        if level > self.level {
            self.level = level;
        }
    }

    fn finish(mut self, levels: Vec<Level>) -> Self {
        // most severe reason first
        let mut pairs: Vec<(Level, String)> = levels.into_iter().zip(self.reasons).collect();
        pairs.sort_by_key(|p| std::cmp::Reverse(p.0));
        self.reasons = pairs.into_iter().map(|(_, r)| r).collect();
        self
    }

    pub fn stale_if(mut self, why: Option<&str>) -> Self {
        self.stale = why.map(str::to_string);
        self
    }

    /// One line: `degraded: 2/3 available; no sidecar ...`.
    pub fn summary(&self) -> String {
        let mut s = self.level.word().to_string();
        if !self.reasons.is_empty() {
            s.push_str(": ");
            s.push_str(&self.reasons.join("; "));
        }
        if let Some(st) = &self.stale {
            s.push_str(" (stale: ");
            s.push_str(st);
            s.push(')');
        }
        s
    }
}

/// A builder that remembers each reason's level, so reasons sort by severity.
struct Acc {
    h: Health,
    levels: Vec<Level>,
}

impl Acc {
    fn new() -> Self {
        Acc {
            h: Health::ok(),
            levels: vec![],
        }
    }
    fn add(&mut self, level: Level, reason: impl Into<String>) {
        self.levels.push(level);
        self.h.add(level, reason);
    }
    fn done(self) -> Health {
        self.h.finish(self.levels)
    }
}

/// Compare dotted versions numerically (`1.9.0` < `1.10.0`); non-numeric parts compare as text.
pub fn cmp_versions(a: &str, b: &str) -> Ordering {
    let parts = |s: &str| -> Vec<(u64, String)> {
        s.trim_start_matches('v')
            .split(['.', '-'])
            .map(|p| (p.parse::<u64>().unwrap_or(u64::MAX), p.to_string()))
            .collect()
    };
    parts(a).cmp(&parts(b))
}

fn proxy_rule(acc: &mut Acc, proxy: Option<&str>, mesh: Option<&str>) {
    if let (Some(p), Some(m)) = (proxy, mesh)
        && cmp_versions(p, m) == Ordering::Less
    {
        acc.add(
            Level::Warning,
            format!("proxy {p} is older than istiod {m}"),
        );
    }
}

pub fn pod(p: &RawPod, sidecar: Sidecar, proxy: Option<&str>, mesh: Option<&str>) -> Health {
    let mut acc = Acc::new();
    if &*p.phase == "Pending" {
        acc.add(Level::Failure, "pending");
    }
    for c in &p.containers {
        if let Some(w) = &c.waiting
            && w != "ContainerCreating"
            && w != "PodInitializing"
        {
            acc.add(
                Level::Failure,
                format!("container {} {w} ({} restarts)", c.name, c.restarts),
            );
        }
    }
    if &*p.phase == "Failed" {
        acc.add(Level::Failure, "failed");
    } else if &*p.phase == "Running" && !p.ready && acc.h.level < Level::Failure {
        acc.add(Level::Degraded, "not ready");
    }
    if sidecar == Sidecar::Missing {
        acc.add(
            Level::Degraded,
            format!("no sidecar in injected namespace {}", p.namespace),
        );
    }
    proxy_rule(&mut acc, proxy, mesh);
    acc.done()
}

/// Kiali's workload rules plus the mesh rules.
pub fn workload(
    w: &RawWorkload,
    pods: &[&RawPod],
    sidecar: Sidecar,
    proxy: Option<&str>,
    mesh: Option<&str>,
    _injected_ns: bool,
) -> Health {
    let mut acc = Acc::new();
    if w.desired == 0 {
        acc.add(Level::NotReady, "scaled to 0 replicas");
        return acc.done();
    }
    if w.available == 0 {
        acc.add(
            Level::Failure,
            format!("no replica available (0/{})", w.desired),
        );
    }
    let pending: Vec<&str> = pods
        .iter()
        .filter(|p| &*p.phase == "Pending")
        .map(|p| &*p.name)
        .collect();
    if !pending.is_empty() {
        acc.add(
            Level::Failure,
            format!("pending pods: {}", pending.join(", ")),
        );
    }
    if w.available > 0 && w.available < w.desired {
        acc.add(
            Level::Degraded,
            format!("{}/{} available", w.available, w.desired),
        );
    }
    for p in pods {
        for c in &p.containers {
            if c.waiting.as_deref() == Some("CrashLoopBackOff") {
                acc.add(
                    Level::Degraded,
                    format!("{} in CrashLoopBackOff ({} restarts)", p.name, c.restarts),
                );
            }
        }
    }
    if sidecar == Sidecar::Missing {
        acc.add(
            Level::Degraded,
            format!("no sidecar in injected namespace {}", w.namespace),
        );
    }
    proxy_rule(&mut acc, proxy, mesh);
    acc.done()
}

pub fn mesh(m: &Mesh, istiod: Option<&RawWorkload>) -> Health {
    let mut acc = Acc::new();
    match istiod {
        Some(w) if w.available == 0 || w.ready == 0 => acc.add(
            Level::Failure,
            format!("istiod not ready ({}/{})", w.ready, w.desired),
        ),
        Some(w) if w.ready < w.desired => acc.add(
            Level::Degraded,
            format!("istiod {}/{} ready", w.ready, w.desired),
        ),
        Some(_) => {}
        None => acc.add(Level::Failure, "istiod deployment not found"),
    }
    let older: usize = m
        .proxy_versions
        .iter()
        .filter(|(v, _)| cmp_versions(v, &m.version) == Ordering::Less)
        .map(|(_, n)| n)
        .sum();
    if older > 0 {
        acc.add(
            Level::Warning,
            format!("{older} proxies older than istiod {}", m.version),
        );
    }
    acc.done()
}

pub fn service(s: &RawService, ready: usize, total: usize, backing: &[&Workload]) -> Health {
    let mut acc = Acc::new();
    if s.selector.is_empty() {
        return acc.done();
    }
    if backing.is_empty() && total == 0 {
        acc.add(Level::Warning, "no workload matches the selector");
    } else if ready == 0 {
        acc.add(Level::Failure, "no ready endpoints");
    } else if ready < total {
        acc.add(Level::Degraded, format!("{ready}/{total} endpoints ready"));
    }
    // a service is no healthier than all of what serves it: when every backing workload is
    // degraded or worse, so is the service (one healthy workload still serves it)
    if !backing.is_empty()
        && backing.iter().all(|w| w.health.level >= Level::Degraded)
        && let Some(w) = backing.iter().max_by_key(|w| w.health.level)
    {
        let why = w.health.reasons.first().map(String::as_str).unwrap_or("");
        acc.add(
            Level::Degraded,
            format!("workload {} is {}: {why}", w.name, w.health.level.word()),
        );
    }
    acc.done()
}

/// An Istio object's health: Istio's own analysis (`status.validationMessages`) when present.
pub fn object_health(o: &crate::model::raw::RawObject) -> Health {
    let mut h = Health::ok();
    if let Some(msgs) = o
        .status
        .get("validationMessages")
        .and_then(|v| v.as_array())
    {
        for m in msgs {
            let code = m
                .pointer("/type/code")
                .and_then(|v| v.as_str())
                .unwrap_or("IST");
            let level = match m.get("level").and_then(|v| v.as_str()) {
                Some("ERROR") => Level::Failure,
                Some("WARNING") => Level::Warning,
                _ => continue,
            };
            let text = m
                .get("message")
                .and_then(|v| v.as_str())
                .unwrap_or("(no message)");
            h.reasons.push(format!("{code}: {text}"));
            if level > h.level {
                h.level = level;
            }
        }
    }
    // policies written by Gloo Mesh or meshdeck carry status.state
    if let Some(state) = o.status.get("state").and_then(|v| v.as_str()) {
        let lvl = match state.to_ascii_uppercase().as_str() {
            "ACCEPTED" => Level::Ok,
            "PENDING" => Level::NotReady,
            "WARNING" => Level::Warning,
            _ => Level::Failure,
        };
        if lvl != Level::Ok {
            h.reasons.push(format!("status: {state}"));
        }
        if lvl > h.level {
            h.level = lvl;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::super::raw::RawContainer;
    use super::*;

    fn wl(desired: i32, available: i32) -> RawWorkload {
        RawWorkload {
            kind: super::super::raw::WorkloadKind::Deployment,
            namespace: "shop".into(),
            name: "web".into(),
            labels: Default::default(),
            template_labels: Default::default(),
            service_account: "web".into(),
            images: vec![],
            desired,
            ready: available,
            available,
            updated: available,
            created: None,
            inject_off: false,
            rate_annotation: None,
        }
    }

    fn pod(phase: &str, waiting: Option<&str>) -> RawPod {
        RawPod {
            namespace: "shop".into(),
            name: format!("web-{phase}").into(),
            labels: Default::default(),
            injected: true,
            opted_out: false,
            ambient: false,
            containers: vec![RawContainer {
                name: "web".into(),
                image: "web:1".into(),
                ready: phase == "Running" && waiting.is_none(),
                restarts: if waiting.is_some() { 4 } else { 0 },
                waiting: waiting.map(Into::into),
            }],
            phase: phase.into(),
            ready: phase == "Running" && waiting.is_none(),
            owner: None,
            service_account: "web".into(),
            ip: Default::default(),
            node: "".into(),
            created: None,
            deleting: false,
        }
    }

    #[test]
    fn kiali_workload_rules() {
        let run = pod("Running", None);
        let h = workload(&wl(0, 0), &[], Sidecar::Injected, None, None, true);
        assert_eq!(
            (h.level, h.reasons.clone()),
            (Level::NotReady, vec!["scaled to 0 replicas".to_string()])
        );
        let h = workload(&wl(3, 0), &[], Sidecar::Injected, None, None, true);
        assert_eq!(h.level, Level::Failure);
        assert_eq!(h.reasons, vec!["no replica available (0/3)"]);
        let pending = pod("Pending", None);
        let h = workload(
            &wl(2, 1),
            &[&run, &pending],
            Sidecar::Injected,
            None,
            None,
            true,
        );
        assert_eq!(h.level, Level::Failure);
        assert_eq!(h.reasons[0], "pending pods: web-Pending");
        assert!(h.reasons.contains(&"1/2 available".to_string()));
        let h = workload(&wl(3, 2), &[&run], Sidecar::Injected, None, None, true);
        assert_eq!(
            (h.level, h.reasons),
            (Level::Degraded, vec!["2/3 available".to_string()])
        );
        let h = workload(&wl(2, 2), &[&run], Sidecar::Injected, None, None, true);
        assert_eq!(h, Health::ok());
    }

    #[test]
    fn mesh_rules_on_workloads() {
        let run = pod("Running", None);
        let h = workload(&wl(2, 2), &[&run], Sidecar::Missing, None, None, true);
        assert_eq!(
            (h.level, h.reasons),
            (
                Level::Degraded,
                vec!["no sidecar in injected namespace shop".to_string()]
            )
        );
        let h = workload(
            &wl(2, 2),
            &[&run],
            Sidecar::Injected,
            Some("1.29.2"),
            Some("1.30.3"),
            true,
        );
        assert_eq!(
            (h.level, h.reasons),
            (
                Level::Warning,
                vec!["proxy 1.29.2 is older than istiod 1.30.3".to_string()]
            )
        );
        let h = workload(
            &wl(2, 2),
            &[&run],
            Sidecar::Injected,
            Some("1.30.3"),
            Some("1.30.3"),
            true,
        );
        assert_eq!(h.level, Level::Ok);
        let crash = pod("Running", Some("CrashLoopBackOff"));
        let h = workload(
            &wl(2, 1),
            &[&run, &crash],
            Sidecar::Injected,
            None,
            None,
            true,
        );
        assert_eq!(h.level, Level::Degraded);
        assert!(
            h.reasons
                .iter()
                .any(|r| r.contains("CrashLoopBackOff (4 restarts)")),
            "{:?}",
            h.reasons
        );
    }

    #[test]
    fn pod_rules() {
        assert_eq!(
            super::pod(&pod("Running", None), Sidecar::Injected, None, None).level,
            Level::Ok
        );
        assert_eq!(
            super::pod(
                &pod("Pending", Some("ContainerCreating")),
                Sidecar::Injected,
                None,
                None
            )
            .reasons,
            vec!["pending"]
        );
        let h = super::pod(
            &pod("Running", Some("CrashLoopBackOff")),
            Sidecar::Injected,
            None,
            None,
        );
        assert_eq!(h.level, Level::Failure);
        assert_eq!(
            h.reasons,
            vec!["container web CrashLoopBackOff (4 restarts)"]
        );
    }

    #[test]
    fn mesh_health_needs_a_ready_istiod_and_reports_proxy_skew() {
        let mut m = Mesh {
            cluster: "c".into(),
            name: "istiod-istio-system-c".into(),
            namespace: "istio-system".into(),
            revision: "default".into(),
            version: "1.30.3".into(),
            ready: 1,
            desired: 1,
            trust_domain: None,
            injected_namespaces: vec![],
            sidecars: 3,
            proxy_versions: [("1.30.3".to_string(), 2), ("1.29.2".to_string(), 1)].into(),
            health: Health::ok(),
        };
        let h = mesh(&m, Some(&wl(1, 1)));
        assert_eq!(
            (h.level, h.reasons),
            (
                Level::Warning,
                vec!["1 proxies older than istiod 1.30.3".to_string()]
            )
        );
        m.proxy_versions.clear();
        let h = mesh(&m, Some(&wl(1, 0)));
        assert_eq!(
            (h.level, h.reasons),
            (Level::Failure, vec!["istiod not ready (0/1)".to_string()])
        );
        assert_eq!(mesh(&m, None).level, Level::Failure);
    }

    #[test]
    fn versions_compare_numerically_and_stale_is_marked() {
        assert_eq!(cmp_versions("1.9.0", "1.10.0"), Ordering::Less);
        assert_eq!(cmp_versions("1.30.3", "1.30.3"), Ordering::Equal);
        assert_eq!(cmp_versions("v1.30.10", "1.30.9"), Ordering::Greater);
        let h = Health::ok().stale_if(Some("cluster x is stale: refused"));
        assert_eq!(h.summary(), "ok (stale: cluster x is stale: refused)");
    }
}
