//! The console's views: what each table lists, its columns, and how a row reads. Rows are
//! references into the snapshot (cluster index, item index); cell text is made only for the
//! rows on screen, so a 100k-pod fleet costs a few bytes per row, not a few strings.

use crate::model::health::Level;
use crate::model::raw::{Labels, RawObject};
use crate::model::{ClusterView, ConnState, Health, Mesh, PodRow, Service, Sidecar, Workload};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViewKind {
    Clusters,
    Meshes,
    Services,
    Workloads,
    Pods,
    /// Istio objects of one kind, or of every kind (None).
    Istio(Option<&'static str>),
    Policies,
}

/// Istio kinds with a view of their own: (kind, view name, aliases).
pub const ISTIO_VIEWS: &[(&str, &str, &[&str])] = &[
    (
        "VirtualService",
        "virtualservices",
        &["vs", "virtualservice"],
    ),
    (
        "DestinationRule",
        "destinationrules",
        &["dr", "destinationrule"],
    ),
    (
        "AuthorizationPolicy",
        "authorizationpolicies",
        &["authz", "ap", "authorizationpolicy"],
    ),
    (
        "PeerAuthentication",
        "peerauthentications",
        &["pa", "peerauthn", "peerauthentication"],
    ),
    ("ServiceEntry", "serviceentries", &["se", "serviceentry"]),
    ("Gateway", "gateways", &["gw", "gateway"]),
    ("Sidecar", "sidecars", &["sidecar"]),
];

/// Every view name with its aliases, as `:` command mode accepts them.
pub fn parse_view(word: &str) -> Option<ViewKind> {
    let w = word.to_ascii_lowercase();
    let k = match w.as_str() {
        "clusters" | "cluster" | "cl" | "ctx" | "context" | "contexts" => ViewKind::Clusters,
        "meshes" | "mesh" | "istiod" | "cp" => ViewKind::Meshes,
        "services" | "service" | "svc" | "destinations" | "dest" => ViewKind::Services,
        "workloads" | "workload" | "wl" | "deploy" | "deployments" | "dp" | "sts" => {
            ViewKind::Workloads
        }
        "pods" | "pod" | "po" => ViewKind::Pods,
        "istio" | "istioobjects" | "io" => ViewKind::Istio(None),
        "policies" | "policy" | "pol" => ViewKind::Policies,
        _ => {
            return ISTIO_VIEWS
                .iter()
                .find(|(_, n, a)| *n == w || a.contains(&w.as_str()))
                .map(|(k, _, _)| ViewKind::Istio(Some(k)));
        }
    };
    Some(k)
}

/// Names `:` completes and the help lists.
pub fn view_names() -> Vec<(&'static str, &'static str)> {
    let mut v = vec![
        ("clusters", "ctx, cl"),
        ("meshes", "mesh, istiod"),
        ("services", "svc"),
        ("workloads", "wl, deploy"),
        ("pods", "po"),
        ("istio", "every Istio object"),
    ];
    for (_, n, a) in ISTIO_VIEWS {
        v.push((n, a[0]));
    }
    v.push(("policies", "pol"));
    v
}

impl ViewKind {
    pub fn title(self) -> &'static str {
        match self {
            ViewKind::Clusters => "clusters",
            ViewKind::Meshes => "meshes",
            ViewKind::Services => "services",
            ViewKind::Workloads => "workloads",
            ViewKind::Pods => "pods",
            ViewKind::Istio(None) => "istio",
            ViewKind::Istio(Some(k)) => ISTIO_VIEWS
                .iter()
                .find(|(kind, _, _)| *kind == k)
                .map(|(_, n, _)| *n)
                .unwrap_or("istio"),
            ViewKind::Policies => "policies",
        }
    }

    /// Column headings, in order. The first three of every view but clusters are CLUSTER,
    /// NAMESPACE, NAME.
    pub fn columns(self) -> &'static [Column] {
        use Column as C;
        match self {
            ViewKind::Clusters => {
                const COLS: &[Column] = &[
                    C::new("CLUSTER", 10, 0),
                    C::new("STATE", 11, 0),
                    C::new("VERSION", 8, 3),
                    C::new("LATENCY", 7, 4),
                    C::new("MESH", 12, 2),
                    C::new("SVC", 4, 3),
                    C::new("WL", 4, 3),
                    C::new("PODS", 5, 1),
                    C::new("ISTIO", 5, 4),
                    C::with(Role::Health, "HEALTH", 12, 0),
                    C::new("REASON", 20, 5),
                ];
                COLS
            }
            ViewKind::Meshes => {
                const COLS: &[Column] = &[
                    C::new("CLUSTER", 10, 0),
                    C::new("NAMESPACE", 12, 2),
                    C::new("REVISION", 8, 3),
                    C::new("VERSION", 8, 0),
                    C::new("READY", 5, 1),
                    C::new("SIDECARS", 8, 1),
                    C::new("PROXIES", 16, 3),
                    C::new("TRUST DOMAIN", 14, 4),
                    C::with(Role::Health, "HEALTH", 12, 0),
                    C::new("REASON", 20, 5),
                ];
                COLS
            }
            ViewKind::Services => {
                const COLS: &[Column] = &[
                    C::new("CLUSTER", 10, 0),
                    C::new("NAMESPACE", 10, 1),
                    C::with(Role::Name, "NAME", 14, 0),
                    C::new("PORTS", 12, 4),
                    C::new("ENDPOINTS", 9, 2),
                    C::new("MESH", 4, 3),
                    C::new("ISTIO", 5, 4),
                    C::with(Role::Health, "HEALTH", 12, 0),
                    C::with(Role::Age, "AGE", 5, 2),
                    C::new("REASON", 20, 5),
                ];
                COLS
            }
            ViewKind::Workloads => {
                const COLS: &[Column] = &[
                    C::new("CLUSTER", 10, 0),
                    C::new("NAMESPACE", 10, 1),
                    C::with(Role::Name, "NAME", 14, 0),
                    C::new("KIND", 11, 4),
                    C::new("READY", 5, 1),
                    C::new("RESTARTS", 8, 3),
                    C::new("SIDECAR", 9, 2),
                    C::with(Role::Health, "HEALTH", 12, 0),
                    C::with(Role::Age, "AGE", 5, 2),
                    C::new("REASON", 20, 5),
                ];
                COLS
            }
            ViewKind::Pods => {
                const COLS: &[Column] = &[
                    C::new("CLUSTER", 10, 0),
                    C::new("NAMESPACE", 10, 1),
                    C::with(Role::Name, "NAME", 20, 0),
                    C::new("READY", 5, 1),
                    C::new("STATUS", 10, 2),
                    C::new("RESTARTS", 8, 3),
                    C::new("PROXY", 8, 4),
                    C::new("NODE", 10, 5),
                    C::with(Role::Health, "HEALTH", 12, 0),
                    C::with(Role::Age, "AGE", 5, 2),
                    C::new("REASON", 20, 5),
                ];
                COLS
            }
            ViewKind::Istio(None) => {
                const COLS: &[Column] = &[
                    C::new("CLUSTER", 10, 0),
                    C::new("NAMESPACE", 10, 1),
                    C::with(Role::Name, "NAME", 14, 0),
                    C::new("KIND", 14, 0),
                    C::new("OWNER", 8, 3),
                    C::with(Role::Health, "HEALTH", 12, 0),
                    C::with(Role::Age, "AGE", 5, 2),
                    C::new("REASON", 20, 5),
                ];
                COLS
            }
            ViewKind::Istio(Some(_)) => {
                const COLS: &[Column] = &[
                    C::new("CLUSTER", 10, 0),
                    C::new("NAMESPACE", 10, 1),
                    C::with(Role::Name, "NAME", 14, 0),
                    C::new("HOSTS", 16, 3),
                    C::new("OWNER", 8, 3),
                    C::with(Role::Health, "HEALTH", 12, 0),
                    C::with(Role::Age, "AGE", 5, 2),
                    C::new("REASON", 20, 5),
                ];
                COLS
            }
            ViewKind::Policies => {
                const COLS: &[Column] = &[
                    C::new("NAMESPACE", 10, 3),
                    C::with(Role::Name, "NAME", 14, 0),
                    C::new("KIND", 13, 2),
                    C::with(Role::Health, "STATUS", 13, 0),
                    C::new("CLUSTERS", 10, 4),
                    C::new("SOURCES", 12, 6),
                    C::new("TARGETS", 16, 5),
                    C::new("ORIGIN", 14, 7),
                    C::new("REASON", 20, 1),
                ];
                COLS
            }
        }
    }

    /// How many rows this view has in one cluster (before filters).
    pub fn len(self, c: &ClusterView) -> usize {
        match self {
            ViewKind::Clusters => 1,
            ViewKind::Meshes => c.meshes.len(),
            ViewKind::Services => c.services.len(),
            ViewKind::Workloads => c.workloads.len(),
            ViewKind::Pods => c.pods.len(),
            ViewKind::Istio(_) => c.istio.len(),
            ViewKind::Policies => c.policies.len(),
        }
    }

    /// Row `i` of this view in cluster `c`, or None when it does not belong (another Istio kind).
    pub fn item(self, c: &ClusterView, i: usize) -> Option<Item<'_>> {
        let it = match self {
            ViewKind::Clusters => Item::Cluster(c),
            ViewKind::Meshes => Item::Mesh(c.meshes.get(i)?),
            ViewKind::Services => Item::Service(c.services.get(i)?),
            ViewKind::Workloads => Item::Workload(c.workloads.get(i)?),
            ViewKind::Pods => Item::Pod(c.pods.get(i)?),
            ViewKind::Istio(kind) => {
                let o = c.istio.get(i)?;
                if kind.is_some_and(|k| k != o.kind) {
                    return None;
                }
                Item::Object(o)
            }
            ViewKind::Policies => Item::Object(c.policies.get(i)?),
        };
        Some(it)
    }
}

/// What a column is for, so code finds it by its role, not by its heading's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The object's name (sort by name).
    Name,
    /// The row's health (coloured by level; sort by health).
    Health,
    /// Age (sort by age).
    Age,
    Other,
}

/// A column: heading, role, the least width it needs, and how early it goes when the terminal
/// is narrow (0: never; higher numbers go first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub role: Role,
    pub min: u16,
    pub drop: u8,
}

impl Column {
    const fn new(name: &'static str, min: u16, drop: u8) -> Column {
        Column {
            name,
            role: Role::Other,
            min,
            drop,
        }
    }
    const fn with(role: Role, name: &'static str, min: u16, drop: u8) -> Column {
        Column {
            name,
            role,
            min,
            drop,
        }
    }
}

/// One row of a view, borrowed from the snapshot.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    Cluster(&'a ClusterView),
    Mesh(&'a Mesh),
    Service(&'a Service),
    Workload(&'a Workload),
    Pod(&'a PodRow),
    Object(&'a RawObject),
}

/// The glyph that carries a health level without colour.
pub fn glyph(l: Level) -> &'static str {
    match l {
        Level::Ok => "✓",
        Level::NotReady => "○",
        Level::Unknown => "?",
        Level::Warning => "!",
        Level::Degraded => "▲",
        Level::Failure => "✗",
    }
}

/// Health as a cell: glyph and word, `~` marks stale data.
pub fn health_cell(level: Level, stale: bool) -> String {
    if stale {
        format!("{} {} ~", glyph(level), level.word())
    } else {
        format!("{} {}", glyph(level), level.word())
    }
}

/// kubectl-style age: 45s, 12m, 5h, 3d.
pub fn age(created: Option<&str>, now: DateTime<Utc>) -> String {
    let Some(t) = created.and_then(|c| DateTime::parse_from_rfc3339(c).ok()) else {
        return "-".into();
    };
    let s = (now - t.with_timezone(&Utc)).num_seconds().max(0);
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 120 * 60 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn hosts(o: &RawObject) -> String {
    let from_list = o.spec.get("hosts").and_then(|v| v.as_array()).map(|a| {
        a.iter()
            .filter_map(|h| h.as_str())
            .collect::<Vec<_>>()
            .join(",")
    });
    if let Some(h) = from_list.filter(|h| !h.is_empty()) {
        return h;
    }
    if let Some(h) = o.spec.get("host").and_then(|v| v.as_str()) {
        return h.to_string();
    }
    if let Some(sel) = o
        .spec
        .pointer("/selector/matchLabels")
        .and_then(|v| v.as_object())
    {
        let s: Vec<String> = sel
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        return s.join(",");
    }
    "*".into()
}

fn owner(o: &RawObject) -> &'static str {
    if o.labels
        .get("app.kubernetes.io/managed-by")
        .map(String::as_str)
        == Some("meshdeck")
    {
        "meshdeck"
    } else {
        "-"
    }
}

fn mesh_cell(c: &ClusterView) -> String {
    match c.meshes.first() {
        Some(m) => format!("istio {} ({}/{})", m.version, m.ready, m.desired),
        None => "-".into(),
    }
}

fn sidecar_cell(s: Sidecar, v: Option<&str>) -> String {
    match s {
        Sidecar::Injected => v.unwrap_or("yes").to_string(),
        Sidecar::Gateway => format!("gw {}", v.unwrap_or("")).trim().to_string(),
        Sidecar::Missing => "MISSING".into(),
        Sidecar::None => "-".into(),
    }
}

impl<'a> Item<'a> {
    pub fn cluster(&self) -> &'a str {
        match self {
            Item::Cluster(c) => &c.name,
            Item::Mesh(m) => &m.cluster,
            Item::Service(s) => &s.cluster,
            Item::Workload(w) => &w.cluster,
            Item::Pod(p) => &p.cluster,
            Item::Object(_) => "",
        }
    }
    pub fn namespace(&self) -> &'a str {
        match self {
            Item::Cluster(_) => "",
            Item::Mesh(m) => &m.namespace,
            Item::Service(s) => &s.namespace,
            Item::Workload(w) => &w.namespace,
            Item::Pod(p) => p.namespace(),
            Item::Object(o) => &o.namespace,
        }
    }
    pub fn name(&self) -> &'a str {
        match self {
            Item::Cluster(c) => &c.name,
            Item::Mesh(m) => &m.name,
            Item::Service(s) => &s.name,
            Item::Workload(w) => &w.name,
            Item::Pod(p) => p.name(),
            Item::Object(o) => &o.name,
        }
    }
    pub fn created(&self) -> Option<&'a str> {
        match self {
            Item::Cluster(_) | Item::Mesh(_) => None,
            Item::Service(s) => s.created.as_deref(),
            Item::Workload(w) => w.created.as_deref(),
            Item::Pod(p) => p.created(),
            Item::Object(o) => o.created.as_deref(),
        }
    }
    pub fn labels(&self) -> Option<&'a Labels> {
        match self {
            Item::Cluster(_) | Item::Mesh(_) => None,
            Item::Service(s) => Some(&s.labels),
            Item::Workload(w) => Some(&w.labels),
            Item::Pod(p) => Some(p.labels()),
            Item::Object(o) => Some(&o.labels),
        }
    }
    /// The object's Kubernetes kind, for YAML fetches.
    pub fn kind(&self) -> &'a str {
        match self {
            Item::Cluster(_) => "Cluster",
            Item::Mesh(_) => "Deployment",
            Item::Service(_) => "Service",
            Item::Workload(w) => w.kind.as_str(),
            Item::Pod(_) => "Pod",
            Item::Object(o) => &o.kind,
        }
    }
    /// The API version of the object, for YAML fetches.
    pub fn api_version(&self) -> &'a str {
        match self {
            Item::Cluster(_) => "",
            Item::Mesh(_) | Item::Workload(_) => "apps/v1",
            Item::Service(_) | Item::Pod(_) => "v1",
            Item::Object(o) => &o.api_version,
        }
    }

    /// The health, computed for objects that carry none in the model.
    pub fn health(&self) -> std::borrow::Cow<'a, Health> {
        use std::borrow::Cow;
        match self {
            Item::Cluster(c) => Cow::Borrowed(&c.health),
            Item::Mesh(m) => Cow::Borrowed(&m.health),
            Item::Service(s) => Cow::Borrowed(&s.health),
            Item::Workload(w) => Cow::Borrowed(&w.health),
            Item::Pod(p) => Cow::Borrowed(&p.health),
            Item::Object(o) => Cow::Owned(crate::model::health::object_health(o)),
        }
    }

    /// Health level; cheap for model rows (sorting and "faults only" use it on every row).
    pub fn level(&self) -> Level {
        match self {
            Item::Object(o) if o.status.is_null() => Level::Ok,
            _ => self.health().level,
        }
    }

    /// The cells of this row, in `kind.columns()` order. `cluster` names the row's cluster
    /// (objects do not carry it).
    pub fn cells(&self, kind: ViewKind, cluster: &ClusterView, now: DateTime<Utc>) -> Vec<String> {
        let stale = cluster.state.is_stale();
        let h = self.health();
        let health = health_cell(h.level, stale);
        let reason = match (&cluster.state, h.reasons.first()) {
            (ConnState::Stale { error, .. } | ConnState::Unreachable { error, .. }, _)
                if matches!(self, Item::Cluster(_)) =>
            {
                error.clone()
            }
            (_, Some(r)) => r.clone(),
            _ => String::new(),
        };
        let age = age(self.created(), now);
        let cl = cluster.name.clone();
        match self {
            Item::Cluster(c) => vec![
                c.name.clone(),
                state_cell(&c.state),
                c.version.clone().unwrap_or_else(|| "-".into()),
                c.latency_ms
                    .map(|l| format!("{l}ms"))
                    .unwrap_or_else(|| "-".into()),
                mesh_cell(c),
                c.counts.services.to_string(),
                c.counts.workloads.to_string(),
                c.counts.pods.to_string(),
                c.counts.istio_objects.to_string(),
                health,
                reason,
            ],
            Item::Mesh(m) => vec![
                cl,
                m.namespace.clone(),
                m.revision.clone(),
                m.version.clone(),
                format!("{}/{}", m.ready, m.desired),
                m.sidecars.to_string(),
                m.proxy_versions
                    .iter()
                    .map(|(v, n)| format!("{v}×{n}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                m.trust_domain.clone().unwrap_or_else(|| "-".into()),
                health,
                reason,
            ],
            Item::Service(s) => vec![
                cl,
                s.namespace.clone(),
                s.name.clone(),
                s.ports.join(","),
                format!("{}/{}", s.ready_endpoints, s.total_endpoints),
                if s.in_mesh { "yes" } else { "no" }.into(),
                s.istio_refs.len().to_string(),
                health,
                age,
                reason,
            ],
            Item::Workload(w) => vec![
                cl,
                w.namespace.clone(),
                w.name.clone(),
                w.kind.as_str().to_string(),
                format!("{}/{}", w.ready, w.desired),
                w.restarts.to_string(),
                sidecar_cell(w.sidecar, w.proxy_version.as_deref()),
                health,
                age,
                reason,
            ],
            Item::Pod(p) => vec![
                cl,
                p.namespace().to_string(),
                p.name().to_string(),
                p.ready(),
                p.status().to_string(),
                p.restarts().to_string(),
                p.proxy_version().unwrap_or("-").to_string(),
                p.node().to_string(),
                health,
                age,
                reason,
            ],
            Item::Object(o) => match kind {
                ViewKind::Istio(Some(_)) => vec![
                    cl,
                    o.namespace.clone(),
                    o.name.clone(),
                    hosts(o),
                    owner(o).into(),
                    health,
                    age,
                    reason,
                ],
                ViewKind::Istio(None) => vec![
                    cl,
                    o.namespace.clone(),
                    o.name.clone(),
                    o.kind.clone(),
                    owner(o).into(),
                    health,
                    age,
                    reason,
                ],
                _ => vec![
                    cl,
                    o.namespace.clone(),
                    o.name.clone(),
                    o.kind.clone(),
                    health,
                    age,
                    reason,
                ],
            },
        }
    }
}

/// A cluster's connection state as a cell: `synced`, `syncing 3/17`, `stale`.
pub fn state_cell(s: &ConnState) -> String {
    match s {
        ConnState::Syncing { synced, total } => format!("syncing {synced}/{total}"),
        other => other.word().to_string(),
    }
}

/// The glyph of a connection state (header chips).
pub fn state_glyph(s: &ConnState) -> &'static str {
    match s {
        ConnState::Connecting
        | ConnState::Syncing { .. }
        | ConnState::WaitingForCredentials { .. } => "…",
        ConnState::Synced => "✓",
        ConnState::Partial { .. } => "◐",
        ConnState::Stale { .. } => "~",
        ConnState::Unreachable { .. } | ConnState::AuthError { .. } => "✗",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_names_and_aliases() {
        assert_eq!(parse_view("svc"), Some(ViewKind::Services));
        assert_eq!(parse_view("wl"), Some(ViewKind::Workloads));
        assert_eq!(parse_view("po"), Some(ViewKind::Pods));
        assert_eq!(parse_view("ctx"), Some(ViewKind::Clusters));
        assert_eq!(
            parse_view("vs"),
            Some(ViewKind::Istio(Some("VirtualService")))
        );
        assert_eq!(
            parse_view("AuthorizationPolicies"),
            Some(ViewKind::Istio(Some("AuthorizationPolicy")))
        );
        assert_eq!(parse_view("nope"), None);
        for (n, _) in view_names() {
            assert!(parse_view(n).is_some(), "{n}");
        }
    }

    #[test]
    fn ages_read_like_kubectl() {
        let now = DateTime::parse_from_rfc3339("2026-01-10T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(age(Some("2026-01-10T11:59:15Z"), now), "45s");
        assert_eq!(age(Some("2026-01-10T11:00:00Z"), now), "60m");
        assert_eq!(age(Some("2026-01-09T12:00:00Z"), now), "24h");
        assert_eq!(age(Some("2026-01-01T12:00:00Z"), now), "9d");
        assert_eq!(age(None, now), "-");
        assert_eq!(age(Some("garbage"), now), "-");
    }

    #[test]
    fn istio_validation_messages_become_health() {
        let o = RawObject {
            kind: "VirtualService".into(),
            status: serde_json::json!({"validationMessages": [
                {"type": {"code": "IST0101"}, "level": "ERROR", "message": "Referenced host not found: \"nope\""},
                {"type": {"code": "IST0102"}, "level": "INFO", "message": "ignored"}
            ]}),
            ..Default::default()
        };
        let h = crate::model::health::object_health(&o);
        assert_eq!(h.level, Level::Failure);
        assert_eq!(
            h.reasons,
            vec!["IST0101: Referenced host not found: \"nope\""]
        );
        assert_eq!(Item::Object(&o).level(), Level::Failure);
        assert_eq!(
            crate::model::health::object_health(&RawObject::default()).level,
            Level::Ok
        );
    }
}
