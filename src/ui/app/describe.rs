//! The describe view's text: the model's view of a row, with every health reason. No I/O.

use super::*;

pub(super) fn row_title(c: &crate::model::ClusterView, item: &Item<'_>) -> String {
    match item {
        Item::Cluster(_) => format!("cluster {}", c.name),
        _ if item.namespace().is_empty() => format!("{}/{}", c.name, item.name()),
        _ => format!("{}/{}/{}", c.name, item.namespace(), item.name()),
    }
}

/// A sparkline of `points`' values, at most `width` cells (the newest last); scaled from 0 to
/// the series' highest value.
pub fn sparkline(points: &[(f64, f64)], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let pts = &points[points.len().saturating_sub(width)..];
    let max = pts.iter().map(|p| p.1).fold(0.0f64, f64::max);
    pts.iter()
        .map(|(_, v)| {
            if max <= 0.0 || !v.is_finite() {
                BARS[0]
            } else {
                let i = ((v / max) * 7.0).round().clamp(0.0, 7.0) as usize;
                BARS[i]
            }
        })
        .collect()
}

/// The traffic part of a service's or workload's description: where the signals come from,
/// the rates, the traffic health's reason, and sparklines of the last 30 minutes.
pub(super) fn traffic_lines(
    app: &App,
    c: &crate::model::ClusterView,
    item: &Item<'_>,
) -> Vec<String> {
    let view = match item {
        Item::Service(_) => crate::signals_core::View::Services,
        Item::Workload(_) => crate::signals_core::View::Workloads,
        _ => return vec![],
    };
    let mut out = Vec::new();
    let kv = |out: &mut Vec<String>, k: &str, v: String| out.push(format!("{k:<18}{v}"));
    let sig = &app.signals;
    match sig.state(&c.name) {
        None => kv(&mut out, "Traffic:", "unknown (no signals yet)".into()),
        Some(st) => {
            let mut src = st.source.clone();
            if let Some(e) = &st.stale {
                src.push_str(&format!(" — stale: {e}"));
            }
            kv(&mut out, "Signals from:", src);
        }
    }
    let who = crate::signals_core::Subject::new(&c.name, item.namespace(), item.name());
    match item.traffic(&app.sig()) {
        None if sig.state(&c.name).is_some() => kv(
            &mut out,
            "Traffic:",
            format!("no requests over {}", sig.window),
        ),
        None => {}
        Some((t, th)) => {
            let [rps, err, p99] = sig.cells(&c.name, Some(t));
            kv(
                &mut out,
                "Traffic:",
                format!("{rps} req/s, {err} errors, p99 {p99} over {}", sig.window),
            );
            let codes: Vec<String> = t
                .http
                .iter()
                .map(|(k, v)| format!("{k}: {}", crate::signals_core::fmt_rps(*v)))
                .chain(
                    t.grpc
                        .iter()
                        .map(|(k, v)| format!("grpc {k}: {}", crate::signals_core::fmt_rps(*v))),
                )
                .collect();
            kv(&mut out, "  by code:", codes.join(", "));
            if let Some(r) = th.and_then(|h| h.reason) {
                kv(&mut out, "  health:", r);
            }
        }
    }
    if let Some(h) = sig.history.get(&(view, who)) {
        let last = |s: &crate::signals_core::Series, f: fn(f64) -> String| {
            s.last().map_or_else(|| "-".into(), |p| f(p.1))
        };
        kv(
            &mut out,
            "RPS (30m):",
            format!(
                "{} {}",
                sparkline(&h.rps, 40),
                last(&h.rps, crate::signals_core::fmt_rps)
            ),
        );
        kv(
            &mut out,
            "ERR% (30m):",
            format!(
                "{} {}",
                sparkline(&h.err_pct, 40),
                last(&h.err_pct, crate::signals_core::fmt_pct)
            ),
        );
        kv(
            &mut out,
            "P99 (30m):",
            format!(
                "{} {}",
                sparkline(&h.p99_ms, 40),
                last(&h.p99_ms, crate::signals_core::fmt_ms)
            ),
        );
    }
    out
}

/// What `d` shows: the model's view of a row, with every health reason. No I/O.
/// `h` is the health to show (the row's, with its traffic verdict folded in).
pub fn describe(
    c: &crate::model::ClusterView,
    item: Item<'_>,
    kind: ViewKind,
    h: &crate::model::Health,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut kv = |k: &str, v: String| out.push(format!("{k:<18}{v}"));
    match item {
        Item::Cluster(cl) => {
            kv("Cluster:", cl.name.clone());
            kv("Context:", cl.context.clone());
            if !cl.aliases.is_empty() {
                kv("Also reached by:", cl.aliases.join(", "));
            }
            kv("Server:", cl.server.clone());
            kv("User:", cl.user.clone());
            kv("Version:", cl.version.clone().unwrap_or_else(|| "-".into()));
            kv("State:", crate::ui::view::state_cell(&cl.state));
            match &cl.state {
                crate::model::ConnState::Partial { forbidden } => kv("Visible:", forbidden.clone()),
                crate::model::ConnState::WaitingForCredentials { plugin } => {
                    kv("Credentials:", plugin.clone())
                }
                s => {
                    if let Some(e) = s.error() {
                        kv("Last error:", e.to_string());
                    }
                }
            }
            // a cluster that does not answer has no latency now: its last one is history
            kv(
                "Latency:",
                match (cl.latency_ms, cl.state.answers()) {
                    (Some(l), true) => format!("{l} ms"),
                    (Some(l), false) => format!("- (no answer now; {l} ms when it last answered)"),
                    (None, _) => "-".into(),
                },
            );
            // the request pace, once it bit (meshdeck's ceiling, the server's Retry-After)
            if let Some(p) = &cl.pace {
                kv("Requests:", p.clone());
            }
            kv(
                "Objects:",
                format!(
                    "{} namespaces, {} services, {} workloads, {} pods, {} Istio objects, {} policies",
                    cl.counts.namespaces,
                    cl.counts.services,
                    cl.counts.workloads,
                    cl.counts.pods,
                    cl.counts.istio_objects,
                    cl.counts.policies
                ),
            );
            for m in &cl.meshes {
                kv(
                    "Mesh:",
                    format!(
                        "{} rev {} istio {} ({}/{} ready)",
                        m.name, m.revision, m.version, m.ready, m.desired
                    ),
                );
            }
        }
        Item::Mesh(m) => {
            kv("Mesh:", m.name.clone());
            kv("Cluster:", m.cluster.clone());
            kv("Namespace:", m.namespace.clone());
            kv("Revision:", m.revision.clone());
            kv("Version:", m.version.clone());
            kv("istiod ready:", format!("{}/{}", m.ready, m.desired));
            kv(
                "Trust domain:",
                m.trust_domain.clone().unwrap_or_else(|| "-".into()),
            );
            kv("Injected ns:", m.injected_namespaces.join(", "));
            kv("Sidecars:", m.sidecars.to_string());
            for (v, n) in &m.proxy_versions {
                kv("Proxy version:", format!("{v} × {n}"));
            }
        }
        Item::Service(s) => {
            kv("Service:", format!("{}/{}", s.namespace, s.name));
            kv("Cluster:", s.cluster.clone());
            kv("Ports:", s.ports.join(", "));
            kv("Selector:", labels_text(&s.selector));
            kv("Labels:", labels_text(&s.labels));
            kv("Workloads:", s.workloads.join(", "));
            kv(
                "Endpoints:",
                format!("{} ready of {}", s.ready_endpoints, s.total_endpoints),
            );
            kv("In mesh:", if s.in_mesh { "yes" } else { "no" }.into());
            kv(
                "Istio objects:",
                if s.istio_refs.is_empty() {
                    "-".into()
                } else {
                    s.istio_refs.join(", ")
                },
            );
        }
        Item::Workload(w) => {
            kv(
                "Workload:",
                format!("{} {}/{}", w.kind.as_str(), w.namespace, w.name),
            );
            kv("Cluster:", w.cluster.clone());
            kv(
                "Replicas:",
                format!(
                    "{} desired, {} ready, {} available",
                    w.desired, w.ready, w.available
                ),
            );
            kv("Restarts:", w.restarts.to_string());
            kv("Sidecar:", format!("{:?}", w.sidecar).to_lowercase());
            kv(
                "Proxy version:",
                w.proxy_version.clone().unwrap_or_else(|| "-".into()),
            );
            kv("Service account:", w.service_account.clone());
            kv("Labels:", labels_text(&w.labels));
            kv("Pods:", w.pods.join(", "));
        }
        Item::Pod(p) => {
            kv("Pod:", format!("{}/{}", p.namespace(), p.name()));
            kv("Cluster:", p.cluster.to_string());
            kv("Status:", p.status().to_string());
            kv("Ready:", p.ready());
            kv("Restarts:", p.restarts().to_string());
            kv("Node:", p.node().to_string());
            kv("IP:", p.ip().to_string());
            kv(
                "Workload:",
                p.workload.as_deref().unwrap_or("-").to_string(),
            );
            kv(
                "Proxy version:",
                p.proxy_version().unwrap_or("-").to_string(),
            );
            kv("Labels:", labels_text(p.labels()));
        }
        Item::Object(o) => {
            kv("Kind:", format!("{} ({})", o.kind, o.api_version));
            kv("Name:", format!("{}/{}", o.namespace, o.name));
            kv("Cluster:", c.name.clone());
            kv("Generation:", o.generation.to_string());
            kv("Labels:", labels_text(&o.labels));
            for (k, v) in &o.annotations {
                kv("Annotation:", format!("{k}={v}"));
            }
            let _ = kind;
        }
    }
    if let Some(cr) = item.created() {
        kv("Created:", cr.to_string());
    }
    kv(
        "Health:",
        format!("{} {}", crate::ui::view::glyph(h.level), h.level.word()),
    );
    for r in &h.reasons {
        kv("  because:", r.clone());
    }
    if c.state.is_stale() {
        kv(
            "Stale:",
            format!(
                "cluster {} is {}: {}",
                c.name,
                c.state.word(),
                c.state.error().unwrap_or("")
            ),
        );
    }
    if let Item::Object(o) = item
        && !o.spec.is_null()
    {
        out.push(String::new());
        out.push("Spec:".into());
        match crate::yaml::to_string(&o.spec) {
            Ok(y) => out.extend(y.lines().map(|l| format!("  {l}"))),
            Err(e) => out.push(format!("  (cannot print: {e})")),
        }
    }
    out
}

fn labels_text(l: &crate::model::raw::Labels) -> String {
    if l.is_empty() {
        return "-".into();
    }
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}
