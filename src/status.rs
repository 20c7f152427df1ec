//! `meshdeck status`: the fleet snapshot as tables, JSON or YAML. Pure: snapshot in, text out.

use crate::model::{ClusterView, ConnState, Level, Snapshot};
use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
    Yaml,
}

#[derive(Clone, Copy, Default)]
pub struct Sections<'a> {
    pub services: bool,
    pub workloads: bool,
    /// Golden signals and the tolerances that judge them.
    pub signals: Option<(
        &'a crate::signals_core::Signals,
        &'a crate::signals_core::health::Tolerances,
    )>,
}

#[derive(Serialize)]
struct ClusterRow<'a> {
    name: &'a str,
    server: &'a str,
    /// Who the session is there: as the server said (SelfSubjectReview), or the kubeconfig
    /// user entry's name marked as such.
    user: &'a str,
    state: &'a ConnState,
    version: Option<&'a str>,
    latency_ms: Option<u64>,
    meshes: Vec<MeshRow<'a>>,
    counts: &'a crate::model::Counts,
    health: &'a crate::model::Health,
    health_counts: &'a std::collections::BTreeMap<Level, usize>,
}

#[derive(Serialize)]
struct MeshRow<'a> {
    name: &'a str,
    version: &'a str,
    revision: &'a str,
    ready: String,
    trust_domain: Option<&'a str>,
    sidecars: usize,
    proxy_versions: &'a std::collections::BTreeMap<String, usize>,
    health: &'a crate::model::Health,
}

#[derive(Serialize)]
struct Report<'a> {
    clusters: Vec<ClusterRow<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    services: Option<Vec<&'a crate::model::Service>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workloads: Option<Vec<&'a crate::model::Workload>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signals: Option<SignalReport<'a>>,
}

#[derive(Serialize)]
struct SignalReport<'a> {
    window: &'a str,
    /// Where each cluster's signals came from, and whether they are stale.
    sources: &'a std::collections::BTreeMap<String, crate::signals_core::SourceState>,
    services: Vec<SignalRow<'a>>,
    workloads: Vec<SignalRow<'a>>,
    edges: Vec<EdgeRow<'a>>,
}

#[derive(Serialize)]
struct SignalRow<'a> {
    cluster: &'a str,
    namespace: &'a str,
    name: &'a str,
    rps: f64,
    err_pct: Option<f64>,
    p99_ms: Option<f64>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    http: &'a std::collections::BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    grpc: &'a std::collections::BTreeMap<String, f64>,
    health: Option<crate::signals_core::health::TrafficHealth>,
}

#[derive(Serialize)]
struct EdgeRow<'a> {
    #[serde(flatten)]
    edge: &'a crate::signals_core::Edge,
    rps: f64,
    err_pct: Option<f64>,
    p99_ms: Option<f64>,
}

fn signal_row<'a>(
    cluster: &'a str,
    namespace: &'a str,
    name: &'a str,
    j: (
        &'a crate::signals_core::Traffic,
        Option<crate::signals_core::health::TrafficHealth>,
    ),
) -> SignalRow<'a> {
    SignalRow {
        cluster,
        namespace,
        name,
        rps: j.0.rps,
        err_pct: j.0.err_pct(),
        p99_ms: j.0.p99_ms,
        http: &j.0.http,
        grpc: &j.0.grpc,
        health: j.1,
    }
}

fn signal_report<'a>(
    s: &'a Snapshot,
    sig: &'a crate::signals_core::Signals,
    tol: &'a crate::signals_core::health::Tolerances,
) -> SignalReport<'a> {
    let mut edges: Vec<EdgeRow> = sig
        .edges
        .iter()
        // a pending row (counters, no rate yet) is not known: it is not printed as a 0
        .filter(|(_, t)| !t.pending)
        .map(|(e, t)| EdgeRow {
            edge: e,
            rps: t.rps,
            err_pct: t.err_pct(),
            p99_ms: t.p99_ms,
        })
        .collect();
    edges.sort_by(|a, b| a.edge.cmp(b.edge));
    SignalReport {
        window: &sig.window,
        sources: &sig.clusters,
        services: s
            .services()
            .filter_map(|v| {
                sig.judge_service(tol, v)
                    .filter(|j| !j.0.pending)
                    .map(|j| signal_row(&v.cluster, &v.namespace, &v.name, j))
            })
            .collect(),
        workloads: s
            .workloads()
            .filter_map(|w| {
                sig.judge_workload(tol, w)
                    .filter(|j| !j.0.pending)
                    .map(|j| signal_row(&w.cluster, &w.namespace, &w.name, j))
            })
            .collect(),
        edges,
    }
}

fn report<'a>(s: &'a Snapshot, sections: Sections<'a>) -> Report<'a> {
    Report {
        clusters: s
            .clusters
            .iter()
            .map(|c| ClusterRow {
                name: &c.name,
                server: &c.server,
                user: &c.user,
                state: &c.state,
                version: c.version.as_deref(),
                latency_ms: c.latency_ms,
                meshes: c
                    .meshes
                    .iter()
                    .map(|m| MeshRow {
                        name: &m.name,
                        version: &m.version,
                        revision: &m.revision,
                        ready: format!("{}/{}", m.ready, m.desired),
                        trust_domain: m.trust_domain.as_deref(),
                        sidecars: m.sidecars,
                        proxy_versions: &m.proxy_versions,
                        health: &m.health,
                    })
                    .collect(),
                counts: &c.counts,
                health: &c.health,
                health_counts: &c.health_counts,
            })
            .collect(),
        services: sections.services.then(|| s.services().collect()),
        workloads: sections.workloads.then(|| s.workloads().collect()),
        signals: sections
            .signals
            .map(|(sig, tol)| signal_report(s, sig, tol)),
    }
}

/// Render a table with left-aligned columns separated by two spaces.
/// Cells are escaped (a server's names can carry terminal escapes).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| crate::text::escape(c).into_owned())
                .collect()
        })
        .collect();
    let rows = &rows;
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let n = cells.len();
        for (i, c) in cells.into_iter().enumerate() {
            out.push_str(c);
            if i + 1 < n {
                let pad = widths[i].saturating_sub(c.chars().count()) + 2;
                out.push_str(&" ".repeat(pad));
            }
        }
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

fn state_text(c: &ClusterView) -> String {
    match &c.state {
        ConnState::Syncing { synced, total } => format!("syncing {synced}/{total}"),
        ConnState::Stale { since, .. } => format!("stale since {since}"),
        ConnState::Unreachable { since, .. } => format!("unreachable since {since}"),
        other => other.word().to_string(),
    }
}

fn health_text(c: &ClusterView) -> String {
    if c.state.is_stale() && c.counts.pods == 0 && c.counts.namespaces == 0 {
        return "unknown (no data yet)".into();
    }
    // connecting, syncing, waiting for credentials, a context that could not be used: no
    // current data is unknown, never ok (as the JSON says)
    if !c.state.is_current() && !c.state.is_stale() {
        return "unknown".into();
    }
    let parts: Vec<String> = c
        .health_counts
        .iter()
        .rev()
        .filter(|(l, _)| **l != Level::Ok)
        .map(|(l, n)| format!("{n} {}", l.word()))
        .collect();
    let text = if parts.is_empty() {
        "ok".to_string()
    } else {
        parts.join(", ")
    };
    if c.state.is_stale() {
        format!("{text} (last known)")
    } else {
        text
    }
}

/// A row's signal cells and its health with the traffic folded in, given its judgement.
fn with_signals(
    sig: &crate::signals_core::Signals,
    cluster: &str,
    judged: Option<(
        &crate::signals_core::Traffic,
        Option<crate::signals_core::health::TrafficHealth>,
    )>,
    health: &crate::model::Health,
) -> ([String; 3], crate::model::Health) {
    let cells = sig.cells(cluster, judged.as_ref().map(|j| j.0));
    let health = match judged.and_then(|j| j.1) {
        Some(th) => th.fold_into(health),
        None => health.clone(),
    };
    (cells, health)
}

fn service_signals(
    sections: &Sections,
    v: &crate::model::Service,
) -> Option<([String; 3], crate::model::Health)> {
    let (sig, tol) = sections.signals?;
    Some(with_signals(
        sig,
        &v.cluster,
        sig.judge_service(tol, v),
        &v.health,
    ))
}

fn workload_signals(
    sections: &Sections,
    w: &crate::model::Workload,
) -> Option<([String; 3], crate::model::Health)> {
    let (sig, tol) = sections.signals?;
    Some(with_signals(
        sig,
        &w.cluster,
        sig.judge_workload(tol, w),
        &w.health,
    ))
}

pub fn render(s: &Snapshot, format: Format, sections: Sections) -> Result<String, String> {
    match format {
        Format::Json => serde_json::to_string_pretty(&report(s, sections))
            .map(|t| t + "\n")
            .map_err(|e| e.to_string()),
        Format::Yaml => crate::yaml::to_string(&report(s, sections)),
        Format::Table => {
            let rows: Vec<Vec<String>> = s
                .clusters
                .iter()
                .map(|c| {
                    vec![
                        c.name.clone(),
                        state_text(c),
                        c.version.clone().unwrap_or_else(|| "-".into()),
                        // a cluster that does not answer now has no latency to show
                        c.latency_ms
                            .filter(|_| c.state.answers())
                            .map_or_else(|| "-".into(), |l| format!("{l}ms")),
                        if c.meshes.is_empty() {
                            "none".into()
                        } else {
                            c.meshes
                                .iter()
                                .map(|m| format!("istio {} ({}/{})", m.version, m.ready, m.desired))
                                .collect::<Vec<_>>()
                                .join(", ")
                        },
                        c.counts.namespaces.to_string(),
                        c.counts.services.to_string(),
                        c.counts.workloads.to_string(),
                        c.counts.pods.to_string(),
                        c.counts.istio_objects.to_string(),
                        health_text(c),
                    ]
                })
                .collect();
            let mut out = table(
                &[
                    "CLUSTER",
                    "STATE",
                    "VERSION",
                    "LATENCY",
                    "MESH",
                    "NS",
                    "SVC",
                    "WORKLOADS",
                    "PODS",
                    "ISTIO",
                    "HEALTH",
                ],
                &rows,
            );
            for c in &s.clusters {
                if let Some(e) = c.state.error() {
                    out.push_str(&format!(
                        "{}: {}: {}\n",
                        c.name,
                        c.state.word(),
                        crate::text::escape(e)
                    ));
                }
            }
            if sections.services {
                out.push('\n');
                let rows: Vec<Vec<String>> = s
                    .services()
                    .map(|v| {
                        let mut row = vec![
                            v.cluster.clone(),
                            v.namespace.clone(),
                            v.name.clone(),
                            v.ports.join(","),
                            format!("{}/{}", v.ready_endpoints, v.total_endpoints),
                            if v.in_mesh { "yes" } else { "no" }.into(),
                            v.istio_refs.len().to_string(),
                        ];
                        match service_signals(&sections, v) {
                            Some((cells, health)) => {
                                row.extend(cells);
                                row.push(health.summary());
                            }
                            None => row.push(v.health.summary()),
                        }
                        row
                    })
                    .collect();
                let mut header = vec![
                    "CLUSTER",
                    "NAMESPACE",
                    "SERVICE",
                    "PORTS",
                    "ENDPOINTS",
                    "MESH",
                    "ISTIO",
                ];
                if sections.signals.is_some() {
                    header.extend(["RPS", "ERR%", "P99"]);
                }
                header.push("HEALTH");
                out.push_str(&table(&header, &rows));
            }
            if sections.workloads {
                out.push('\n');
                let rows: Vec<Vec<String>> = s
                    .workloads()
                    .map(|w| {
                        let mut row = vec![
                            w.cluster.clone(),
                            w.namespace.clone(),
                            w.name.clone(),
                            w.kind.as_str().into(),
                            format!("{}/{}", w.ready, w.desired),
                            format!("{:?}", w.sidecar).to_lowercase(),
                            w.proxy_version.clone().unwrap_or_else(|| "-".into()),
                            w.restarts.to_string(),
                        ];
                        match workload_signals(&sections, w) {
                            Some((cells, health)) => {
                                row.extend(cells);
                                row.push(health.summary());
                            }
                            None => row.push(w.health.summary()),
                        }
                        row
                    })
                    .collect();
                let mut header = vec![
                    "CLUSTER",
                    "NAMESPACE",
                    "WORKLOAD",
                    "KIND",
                    "READY",
                    "SIDECAR",
                    "PROXY",
                    "RESTARTS",
                ];
                if sections.signals.is_some() {
                    header.extend(["RPS", "ERR%", "P99"]);
                }
                header.push("HEALTH");
                out.push_str(&table(&header, &rows));
            }
            if let Some((sig, _)) = sections.signals {
                out.push('\n');
                let mut edges: Vec<_> = sig.edges.iter().collect();
                edges.sort_by(|a, b| a.0.cmp(b.0));
                let rows: Vec<Vec<String>> = edges
                    .iter()
                    .map(|(e, t)| {
                        let [rps, err, p99] = sig.cells(&e.cluster, Some(t));
                        vec![
                            e.cluster.clone(),
                            format!("{}/{}", e.source_namespace, e.source_workload),
                            format!("{}/{}", e.dest_namespace, e.dest_service),
                            rps,
                            err,
                            p99,
                        ]
                    })
                    .collect();
                out.push_str(&table(
                    &["CLUSTER", "SOURCE", "DESTINATION", "RPS", "ERR%", "P99"],
                    &rows,
                ));
                out.push('\n');
                for (c, st) in &sig.clusters {
                    let when = st.refreshed.as_deref().unwrap_or("never");
                    match &st.stale {
                        None => out.push_str(&format!(
                            "{c}: signals from {} over {} (refreshed {when})\n",
                            st.source, sig.window
                        )),
                        Some(e) => out.push_str(&format!(
                            "{c}: signals stale (last refreshed {when}): {}: {e}\n",
                            st.source
                        )),
                    }
                }
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(&["A", "LONG"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "A    LONG\nxxx  y\n");
    }
}
