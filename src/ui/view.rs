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
    /// Configuration findings (istioctl analyze), from the authoring worker's board.
    Analysis,
    /// Traffic edges (source workload → destination service), from the golden signals.
    Traffic,
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
        "analysis" | "analyze" | "an" => ViewKind::Analysis,
        "traffic" | "edges" | "tr" => ViewKind::Traffic,
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
    v.push(("analysis", "an"));
    v.push(("traffic", "tr, edges"));
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
            ViewKind::Analysis => "analysis",
            ViewKind::Traffic => "traffic",
        }
    }

    /// Column headings, in order (each defined with its cell, in the renderers below). The
    /// first three of every view but clusters and policies are CLUSTER, NAMESPACE, NAME.
    pub fn columns(self) -> &'static [Column] {
        match self {
            ViewKind::Clusters => &CLUSTERS_HEADS,
            ViewKind::Meshes => &MESHES_HEADS,
            ViewKind::Services => &SERVICES_HEADS,
            ViewKind::Workloads => &WORKLOADS_HEADS,
            ViewKind::Pods => &PODS_HEADS,
            ViewKind::Istio(None) => &ISTIO_ALL_HEADS,
            ViewKind::Istio(Some(_)) => &ISTIO_KIND_HEADS,
            ViewKind::Policies => &POLICIES_HEADS,
            ViewKind::Analysis => &FINDINGS_HEADS,
            ViewKind::Traffic => &EDGES_HEADS,
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
            ViewKind::Analysis | ViewKind::Traffic => 0,
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
            ViewKind::Analysis | ViewKind::Traffic => return None,
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
    /// A cluster's connection state (coloured by state).
    State,
    /// Why the row is as it is: the selected row's shows in full under the table when its
    /// column is cut or dropped.
    Reason,
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
    const EMPTY: Column = Column::new("", 0, 0);

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

/// The golden signals the service and workload rows show, and the tolerances that judge them.
#[derive(Clone, Copy)]
pub struct SignalCtx<'a> {
    pub signals: &'a crate::signals_core::Signals,
    pub tolerances: &'a crate::signals_core::health::Tolerances,
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

    /// A service's or workload's signals and traffic health.
    pub fn traffic(
        &self,
        sig: &SignalCtx<'a>,
    ) -> Option<(
        &'a crate::signals_core::Traffic,
        Option<crate::signals_core::health::TrafficHealth>,
    )> {
        match self {
            Item::Service(s) => sig.signals.judge_service(sig.tolerances, s),
            Item::Workload(w) => sig.signals.judge_workload(sig.tolerances, w),
            _ => None,
        }
    }

    /// The health with the traffic's folded in (services and workloads).
    pub fn health_in(&self, sig: Option<&SignalCtx<'a>>) -> std::borrow::Cow<'a, Health> {
        let h = self.health();
        match sig.and_then(|s| self.traffic(s)).and_then(|t| t.1) {
            Some(th) if th.reason.is_some() => std::borrow::Cow::Owned(th.fold_into(&h)),
            _ => h,
        }
    }

    /// The level with the traffic's and the configuration findings' folded in ("faults
    /// only", the health sort and the row's colour use it).
    pub fn level_noted(
        &self,
        sig: Option<&SignalCtx<'a>>,
        note: Option<&crate::author::FindingNote>,
    ) -> Level {
        let l = self.level_in(sig);
        note.map_or(l, |n| l.max(n.level))
    }

    /// The level with the traffic's folded in.
    pub fn level_in(&self, sig: Option<&SignalCtx<'a>>) -> Level {
        match (self, sig) {
            (Item::Service(_) | Item::Workload(_), Some(s)) => match self.traffic(s) {
                Some((_, Some(th))) => self.level().max(th.level),
                _ => self.level(),
            },
            _ => self.level(),
        }
    }

    /// The cells of this row, in `kind.columns()` order: each column's own renderer.
    /// `cluster` names the row's cluster (objects do not carry it); `note` is what the
    /// configuration findings say of the object, added to its REASON.
    pub fn cells(
        &self,
        kind: ViewKind,
        cluster: &ClusterView,
        now: DateTime<Utc>,
        note: Option<&crate::author::FindingNote>,
        sig: Option<&SignalCtx<'a>>,
    ) -> Vec<String> {
        let stale = cluster.state.is_stale();
        let mut h = self.health_in(sig);
        // a configuration finding is part of the health: an error makes the row a failure
        if let Some(n) = note
            && n.level > h.level
        {
            h.to_mut().level = n.level;
        }
        let note = note.map(|n| n.text.as_str());
        let signal = match (self, sig) {
            (Item::Service(_) | Item::Workload(_), Some(s)) => {
                s.signals.cells(&cluster.name, self.traffic(s).map(|t| t.0))
            }
            _ => ["?".into(), "?".into(), "?".into()],
        };
        let reason = match (&cluster.state, h.reasons.first()) {
            (ConnState::Stale { error, .. } | ConnState::Unreachable { error, .. }, _)
                if matches!(self, Item::Cluster(_)) =>
            {
                error.clone()
            }
            (_, Some(r)) => r.clone(),
            _ => String::new(),
        };
        let reason = match note {
            Some(n) if reason.is_empty() => n.to_string(),
            Some(n) => format!("{reason}; {n}"),
            None => reason,
        };
        let x = Ctx {
            cluster,
            health: health_cell(h.level, stale),
            reason,
            age: age(self.created(), now),
            signal,
        };
        match (self, kind) {
            (Item::Cluster(c), _) => render(&CLUSTERS, c, &x),
            (Item::Mesh(m), _) => render(&MESHES, m, &x),
            (Item::Service(v), _) => render(&SERVICES, v, &x),
            (Item::Workload(w), _) => render(&WORKLOADS, w, &x),
            (Item::Pod(p), _) => render(&PODS, p, &x),
            (Item::Object(o), ViewKind::Istio(Some(_))) => render(&ISTIO_KIND, o, &x),
            (Item::Object(o), _) => render(&ISTIO_ALL, o, &x),
        }
    }
}

/// What every cell of a row may need besides the row itself: its cluster, and the health,
/// reason and age cells (made once per row).
pub struct Ctx<'a> {
    pub cluster: &'a ClusterView,
    pub health: String,
    pub reason: String,
    pub age: String,
    /// RPS, ERR %, P99 (`?`: no signals for the cluster).
    pub signal: [String; 3],
}

/// A column and how its cell reads, defined together.
pub struct Col<T: 'static> {
    pub head: Column,
    pub cell: fn(&T, &Ctx<'_>) -> String,
}

/// A column of a view whose rows carry everything they show (the policies board's rows, the
/// analysis findings): no cluster context.
pub struct RowCol<T: 'static> {
    pub head: Column,
    pub cell: fn(&T) -> String,
}

/// The headings of a renderer, at compile time.
const fn heads<T, const N: usize>(cols: &[Col<T>; N]) -> [Column; N] {
    let mut out = [Column::EMPTY; N];
    let mut i = 0;
    while i < N {
        out[i] = cols[i].head;
        i += 1;
    }
    out
}

const fn row_heads<T, const N: usize>(cols: &[RowCol<T>; N]) -> [Column; N] {
    let mut out = [Column::EMPTY; N];
    let mut i = 0;
    while i < N {
        out[i] = cols[i].head;
        i += 1;
    }
    out
}

const fn row_col<T>(
    role: Role,
    name: &'static str,
    min: u16,
    drop: u8,
    cell: fn(&T) -> String,
) -> RowCol<T> {
    RowCol {
        head: Column::with(role, name, min, drop),
        cell,
    }
}

fn row_cells<T>(cols: &[RowCol<T>], row: &T) -> Vec<String> {
    cols.iter().map(|c| (c.cell)(row)).collect()
}

fn render<T>(cols: &[Col<T>], item: &T, x: &Ctx<'_>) -> Vec<String> {
    cols.iter().map(|c| (c.cell)(item, x)).collect()
}

/// The cells of a policies-view row, in the order of its columns.
pub fn policy_cells(r: &crate::author::PolicyRow) -> Vec<String> {
    row_cells(&POLICIES, r)
}

const fn col<T>(
    name: &'static str,
    min: u16,
    drop: u8,
    cell: fn(&T, &Ctx<'_>) -> String,
) -> Col<T> {
    Col {
        head: Column::new(name, min, drop),
        cell,
    }
}

const fn role<T>(
    role: Role,
    name: &'static str,
    min: u16,
    drop: u8,
    cell: fn(&T, &Ctx<'_>) -> String,
) -> Col<T> {
    Col {
        head: Column::with(role, name, min, drop),
        cell,
    }
}

fn cluster_name<T>(_: &T, x: &Ctx<'_>) -> String {
    x.cluster.name.clone()
}
fn health<T>(_: &T, x: &Ctx<'_>) -> String {
    x.health.clone()
}
fn reason<T>(_: &T, x: &Ctx<'_>) -> String {
    x.reason.clone()
}
fn age_of<T>(_: &T, x: &Ctx<'_>) -> String {
    x.age.clone()
}
fn rps<T>(_: &T, x: &Ctx<'_>) -> String {
    x.signal[0].clone()
}
fn err_pct<T>(_: &T, x: &Ctx<'_>) -> String {
    x.signal[1].clone()
}
fn p99<T>(_: &T, x: &Ctx<'_>) -> String {
    x.signal[2].clone()
}

const CLUSTERS: [Col<ClusterView>; 11] = [
    col("CLUSTER", 10, 0, |c, _| c.name.clone()),
    role(Role::State, "STATE", 11, 0, |c, _| state_cell(&c.state)),
    col("VERSION", 8, 3, |c, _| {
        c.version.clone().unwrap_or_else(|| "-".into())
    }),
    col("LATENCY", 7, 4, |c, _| {
        c.latency_ms
            .map(|l| format!("{l}ms"))
            .unwrap_or_else(|| "-".into())
    }),
    col("MESH", 12, 2, |c, _| mesh_cell(c)),
    col("SVC", 4, 3, |c, _| c.counts.services.to_string()),
    col("WL", 4, 3, |c, _| c.counts.workloads.to_string()),
    col("PODS", 5, 1, |c, _| c.counts.pods.to_string()),
    col("ISTIO", 5, 4, |c, _| c.counts.istio_objects.to_string()),
    role(Role::Health, "HEALTH", 12, 0, health),
    role(Role::Reason, "REASON", 20, 5, reason),
];
const CLUSTERS_HEADS: [Column; 11] = heads(&CLUSTERS);

const MESHES: [Col<Mesh>; 10] = [
    col("CLUSTER", 10, 0, cluster_name),
    col("NAMESPACE", 12, 2, |m, _| m.namespace.clone()),
    col("REVISION", 8, 3, |m, _| m.revision.clone()),
    col("VERSION", 8, 0, |m, _| m.version.clone()),
    col("READY", 5, 1, |m, _| format!("{}/{}", m.ready, m.desired)),
    col("SIDECARS", 8, 1, |m, _| m.sidecars.to_string()),
    col("PROXIES", 16, 3, |m, _| {
        m.proxy_versions
            .iter()
            .map(|(v, n)| format!("{v}×{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    }),
    col("TRUST DOMAIN", 14, 4, |m, _| {
        m.trust_domain.clone().unwrap_or_else(|| "-".into())
    }),
    role(Role::Health, "HEALTH", 12, 0, health),
    role(Role::Reason, "REASON", 20, 5, reason),
];
const MESHES_HEADS: [Column; 10] = heads(&MESHES);

const SERVICES: [Col<Service>; 13] = [
    col("CLUSTER", 10, 0, cluster_name),
    col("NAMESPACE", 10, 1, |v, _| v.namespace.clone()),
    role(Role::Name, "NAME", 14, 0, |v, _| v.name.clone()),
    col("PORTS", 12, 4, |v, _| v.ports.join(",")),
    col("ENDPOINTS", 9, 2, |v, _| {
        format!("{}/{}", v.ready_endpoints, v.total_endpoints)
    }),
    col("MESH", 4, 3, |v, _| {
        if v.in_mesh { "yes" } else { "no" }.into()
    }),
    col("ISTIO", 5, 4, |v, _| v.istio_refs.len().to_string()),
    col("RPS", 5, 1, rps),
    col("ERR%", 5, 1, err_pct),
    col("P99", 5, 2, p99),
    role(Role::Health, "HEALTH", 12, 0, health),
    role(Role::Age, "AGE", 5, 2, age_of),
    role(Role::Reason, "REASON", 20, 5, reason),
];
const SERVICES_HEADS: [Column; 13] = heads(&SERVICES);

const WORKLOADS: [Col<Workload>; 13] = [
    col("CLUSTER", 10, 0, cluster_name),
    col("NAMESPACE", 10, 1, |w, _| w.namespace.clone()),
    role(Role::Name, "NAME", 14, 0, |w, _| w.name.clone()),
    col("KIND", 11, 4, |w, _| w.kind.as_str().to_string()),
    col("READY", 5, 1, |w, _| format!("{}/{}", w.ready, w.desired)),
    col("RESTARTS", 8, 3, |w, _| w.restarts.to_string()),
    col("SIDECAR", 9, 2, |w, _| {
        sidecar_cell(w.sidecar, w.proxy_version.as_deref())
    }),
    col("RPS", 5, 1, rps),
    col("ERR%", 5, 1, err_pct),
    col("P99", 5, 2, p99),
    role(Role::Health, "HEALTH", 12, 0, health),
    role(Role::Age, "AGE", 5, 2, age_of),
    role(Role::Reason, "REASON", 20, 5, reason),
];
const WORKLOADS_HEADS: [Column; 13] = heads(&WORKLOADS);

const PODS: [Col<PodRow>; 11] = [
    col("CLUSTER", 10, 0, cluster_name),
    col("NAMESPACE", 10, 1, |p, _| p.namespace().to_string()),
    role(Role::Name, "NAME", 20, 0, |p, _| p.name().to_string()),
    col("READY", 5, 1, |p, _| p.ready()),
    col("STATUS", 10, 2, |p, _| p.status().to_string()),
    col("RESTARTS", 8, 3, |p, _| p.restarts().to_string()),
    col("PROXY", 8, 4, |p, _| {
        p.proxy_version().unwrap_or("-").to_string()
    }),
    col("NODE", 10, 5, |p, _| p.node().to_string()),
    role(Role::Health, "HEALTH", 12, 0, health),
    role(Role::Age, "AGE", 5, 2, age_of),
    role(Role::Reason, "REASON", 20, 5, reason),
];
const PODS_HEADS: [Column; 11] = heads(&PODS);

const ISTIO_ALL: [Col<RawObject>; 8] = [
    col("CLUSTER", 10, 0, cluster_name),
    col("NAMESPACE", 10, 1, |o, _| o.namespace.clone()),
    role(Role::Name, "NAME", 14, 0, |o, _| o.name.clone()),
    col("KIND", 14, 0, |o, _| o.kind.clone()),
    col("OWNER", 8, 3, |o, _| owner(o).into()),
    role(Role::Health, "HEALTH", 12, 0, health),
    role(Role::Age, "AGE", 5, 2, age_of),
    role(Role::Reason, "REASON", 20, 5, reason),
];
const ISTIO_ALL_HEADS: [Column; 8] = heads(&ISTIO_ALL);

const ISTIO_KIND: [Col<RawObject>; 8] = [
    col("CLUSTER", 10, 0, cluster_name),
    col("NAMESPACE", 10, 1, |o, _| o.namespace.clone()),
    role(Role::Name, "NAME", 14, 0, |o, _| o.name.clone()),
    col("HOSTS", 16, 3, |o, _| hosts(o)),
    col("OWNER", 8, 3, |o, _| owner(o).into()),
    role(Role::Health, "HEALTH", 12, 0, health),
    role(Role::Age, "AGE", 5, 2, age_of),
    role(Role::Reason, "REASON", 20, 5, reason),
];
const ISTIO_KIND_HEADS: [Column; 8] = heads(&ISTIO_KIND);

const POLICIES: [RowCol<crate::author::PolicyRow>; 9] = [
    row_col(Role::Other, "NAMESPACE", 10, 3, |r| r.namespace.clone()),
    row_col(Role::Name, "NAME", 14, 0, |r| r.name.clone()),
    row_col(Role::Other, "KIND", 13, 2, |r| r.kind.clone()),
    row_col(Role::Health, "STATUS", 13, 0, |r| {
        if r.draft {
            "✎ draft".to_string()
        } else {
            let level = policy_level(r.state);
            format!("{} {}", glyph(level), r.state.word())
        }
    }),
    row_col(Role::Other, "CLUSTERS", 10, 4, |r| {
        if r.clusters.is_empty() {
            "-".into()
        } else {
            r.clusters.join(",")
        }
    }),
    row_col(Role::Other, "SOURCES", 12, 6, |r| r.sources.clone()),
    row_col(Role::Other, "TARGETS", 16, 5, |r| r.targets.clone()),
    row_col(Role::Other, "ORIGIN", 14, 7, |r| r.origin.clone()),
    row_col(Role::Reason, "REASON", 20, 1, |r| r.reason.clone()),
];
const POLICIES_HEADS: [Column; 9] = row_heads(&POLICIES);

const FINDINGS: [RowCol<crate::analyze::Finding>; 5] = [
    row_col(Role::Health, "LEVEL", 9, 0, |f| {
        let level = finding_level(f.level);
        format!("{} {}", glyph(level), f.level.word())
    }),
    row_col(Role::Other, "CODE", 7, 0, |f| f.code.to_string()),
    row_col(Role::Other, "CLUSTER", 8, 2, |f| f.cluster.clone()),
    row_col(Role::Name, "OBJECT", 20, 0, |f| f.object.clone()),
    row_col(Role::Reason, "MESSAGE", 20, 1, |f| f.message.clone()),
];

const FINDINGS_HEADS: [Column; 5] = row_heads(&FINDINGS);

/// One row of the traffic view: an edge, its rates and its traffic health.
#[derive(Debug, Clone)]
pub struct EdgeRow {
    pub edge: crate::signals_core::Edge,
    pub traffic: crate::signals_core::Traffic,
    pub health: Option<crate::signals_core::health::TrafficHealth>,
    /// The edge's cluster's signals are stale (the last good ones).
    pub stale: bool,
}

impl EdgeRow {
    pub fn level(&self) -> Level {
        self.health.as_ref().map_or(Level::Ok, |h| h.level)
    }
}

const EDGES: [RowCol<EdgeRow>; 8] = [
    row_col(Role::Other, "CLUSTER", 10, 0, |r| r.edge.cluster.clone()),
    row_col(Role::Name, "SOURCE", 18, 0, |r| {
        if r.edge.source_namespace.is_empty() {
            r.edge.source_workload.clone()
        } else {
            format!("{}/{}", r.edge.source_namespace, r.edge.source_workload)
        }
    }),
    row_col(Role::Other, "DESTINATION", 18, 0, |r| {
        format!("{}/{}", r.edge.dest_namespace, r.edge.dest_service)
    }),
    row_col(Role::Other, "RPS", 5, 1, |r| {
        let [rps, _, _] = r.traffic.cells();
        rps
    }),
    row_col(Role::Other, "ERR%", 5, 1, |r| {
        let [_, err, _] = r.traffic.cells();
        err
    }),
    row_col(Role::Other, "P99", 5, 2, |r| {
        let [_, _, p99] = r.traffic.cells();
        p99
    }),
    row_col(Role::Health, "HEALTH", 12, 0, |r| {
        health_cell(r.level(), r.stale)
    }),
    row_col(Role::Reason, "REASON", 20, 3, |r| {
        r.health
            .as_ref()
            .and_then(|h| h.reason.clone())
            .unwrap_or_default()
    }),
];

const EDGES_HEADS: [Column; 8] = row_heads(&EDGES);

/// The cells of a traffic-view row.
pub fn edge_cells(r: &EdgeRow) -> Vec<String> {
    row_cells(&EDGES, r)
}

/// The cells of an analysis-view row.
pub fn finding_cells(f: &crate::analyze::Finding) -> Vec<String> {
    row_cells(&FINDINGS, f)
}

/// How a finding's level reads as a health level.
pub fn finding_level(l: crate::analyze::Level) -> Level {
    l.health()
}

/// How a policy's status reads as a health level.
pub fn policy_level(s: crate::translate::State) -> Level {
    use crate::translate::State;
    match s {
        State::Accepted => Level::Ok,
        State::Warning => Level::Warning,
        State::Conflicting => Level::Degraded,
        State::Invalid => Level::Failure,
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
        ConnState::Unreachable { .. }
        | ConnState::AuthError { .. }
        | ConnState::ConfigError { .. } => "✗",
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
