//! The trimmed objects the model derives from: only the fields meshdeck uses, converted from
//! k8s-openapi types (what the fleet's watchers yield) or from plain JSON (inventory files).
//! Trimming here is what keeps 100,000 pods within the memory budget.

use compact_str::CompactString;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Namespace, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;
use std::collections::BTreeMap;

use std::sync::Arc;

pub type Labels = BTreeMap<String, String>;

/// The annotation the Istio injector puts on every injected pod.
pub const SIDECAR_STATUS: &str = "sidecar.istio.io/status";

/// An object's labels (none: empty).
pub fn labels(m: &ObjectMeta) -> Labels {
    m.labels.clone().unwrap_or_default()
}

/// An object's creationTimestamp, as text.
pub fn created(m: &ObjectMeta) -> Option<String> {
    m.creation_timestamp.as_ref().map(|t| t.0.to_string())
}

/// The controlling owner (kind, name).
pub fn owner(m: &ObjectMeta) -> Option<(String, String)> {
    m.owner_references.as_ref().and_then(|o| {
        let c = o
            .iter()
            .find(|r| r.controller == Some(true))
            .or_else(|| o.first())?;
        Some((c.kind.clone(), c.name.clone()))
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawNamespace {
    pub name: String,
    pub labels: Labels,
}

impl From<&Namespace> for RawNamespace {
    fn from(n: &Namespace) -> Self {
        RawNamespace {
            name: n.metadata.name.clone().unwrap_or_default(),
            labels: labels(&n.metadata),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    pub port: i32,
    pub protocol: String,
    pub app_protocol: Option<String>,
    /// The numeric `targetPort` (the container port), when it is a number.
    pub target_port: Option<i32>,
    pub node_port: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawService {
    pub namespace: String,
    pub name: String,
    /// Shared with the derived row and the translator's index.
    pub labels: std::sync::Arc<Labels>,
    pub selector: std::sync::Arc<Labels>,
    pub ports: Vec<Port>,
    pub type_: String,
    pub cluster_ip: String,
    /// The first load-balancer ingress address (ingress gateways).
    pub external: Option<String>,
    pub created: Option<String>,
    /// `networking.istio.io/exportTo`: the namespaces that see it (absent: all).
    pub export_to: Option<String>,
    /// Its own traffic tolerances (`health.kiali.io/rate`).
    pub rate_annotation: Option<String>,
}

impl From<&Service> for RawService {
    fn from(s: &Service) -> Self {
        let spec = s.spec.clone().unwrap_or_default();
        RawService {
            rate_annotation: rate_annotation(&s.metadata),
            export_to: s
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("networking.istio.io/exportTo"))
                .cloned(),
            namespace: s.metadata.namespace.clone().unwrap_or_default(),
            name: s.metadata.name.clone().unwrap_or_default(),
            labels: labels(&s.metadata).into(),
            selector: spec.selector.clone().unwrap_or_default().into(),
            ports: spec
                .ports
                .unwrap_or_default()
                .iter()
                .map(|p| Port {
                    name: p.name.clone().unwrap_or_default(),
                    port: p.port,
                    protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    app_protocol: p.app_protocol.clone(),
                    // absent means the port itself (Kubernetes' default); a name is unknown here
                    target_port: match &p.target_port {
                        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => {
                            Some(*n)
                        }
                        Some(_) => None,
                        None => Some(p.port),
                    },
                    node_port: p.node_port,
                })
                .collect(),
            type_: spec.type_.unwrap_or_else(|| "ClusterIP".into()),
            cluster_ip: spec.cluster_ip.unwrap_or_default(),
            // the LoadBalancer's address, else an external IP (as Gloo found gateways)
            external: s
                .status
                .as_ref()
                .and_then(|st| st.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .and_then(|i| i.first())
                .and_then(|i| i.ip.clone().or_else(|| i.hostname.clone()))
                .or_else(|| spec.external_ips.as_ref().and_then(|v| v.first().cloned())),
            created: created(&s.metadata),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEndpoints {
    pub namespace: String,
    pub name: String,
    pub ready: usize,
    pub not_ready: usize,
}

impl From<&Endpoints> for RawEndpoints {
    fn from(e: &Endpoints) -> Self {
        let subsets = e.subsets.clone().unwrap_or_default();
        RawEndpoints {
            namespace: e.metadata.namespace.clone().unwrap_or_default(),
            name: e.metadata.name.clone().unwrap_or_default(),
            ready: subsets
                .iter()
                .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
                .sum(),
            not_ready: subsets
                .iter()
                .map(|s| s.not_ready_addresses.as_ref().map_or(0, Vec::len))
                .sum(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawContainer {
    /// Shared between the pods of a workload when the fleet interns them.
    pub name: std::sync::Arc<str>,
    pub image: std::sync::Arc<str>,
    pub ready: bool,
    pub restarts: i32,
    /// `waiting.reason` (CrashLoopBackOff, ImagePullBackOff, ContainerCreating...).
    pub waiting: Option<CompactString>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPod {
    /// The pod's repeated strings (namespace, phase, owner, service account, node) are
    /// `Arc<str>`: the fleet interns them, so 100k pods hold a few hundred copies.
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    /// Shared with the derived pod row (no copy per snapshot).
    pub labels: std::sync::Arc<Labels>,
    /// Whether the Istio injector annotated the pod.
    pub injected: bool,
    /// The pod stays out of the mesh on purpose: `sidecar.istio.io/inject: "false"` (the
    /// label wins over the annotation, as Istio reads them) or `hostNetwork`.
    pub opted_out: bool,
    /// Ambient mode redirects its traffic (`ambient.istio.io/redirection: enabled`): no sidecar.
    pub ambient: bool,
    pub containers: Vec<RawContainer>,
    pub phase: Arc<str>,
    pub ready: bool,
    /// (kind, name) of the controlling owner.
    pub owner: Option<(Arc<str>, Arc<str>)>,
    pub service_account: Arc<str>,
    /// Inline (no allocation) up to 24 bytes, which an IPv4 or short IPv6 address and an RFC
    /// 3339 creation time always are: two allocations fewer per pod.
    pub ip: CompactString,
    pub node: Arc<str>,
    pub created: Option<CompactString>,
    pub deleting: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
}

impl WorkloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawWorkload {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    /// Shared: the fleet interns label sets, and a workload's own labels are most often its
    /// pod template's.
    pub labels: std::sync::Arc<Labels>,
    /// Shared with the derived row and the translator's index.
    pub template_labels: std::sync::Arc<Labels>,
    pub service_account: String,
    pub images: Vec<String>,
    pub desired: i32,
    pub ready: i32,
    pub available: i32,
    pub updated: i32,
    pub created: Option<String>,
    /// The pod template says `sidecar.istio.io/inject: "false"` (annotation or label).
    pub inject_off: bool,
    /// Its own traffic tolerances (`health.kiali.io/rate`).
    pub rate_annotation: Option<String>,
}

/// An object's `health.kiali.io/rate` annotation.
fn rate_annotation(m: &ObjectMeta) -> Option<String> {
    m.annotations
        .as_ref()
        .and_then(|a| a.get(crate::signals::RATE_ANNOTATION))
        .cloned()
}

/// Whether a pod template opts out of injection.
fn inject_off(m: Option<&ObjectMeta>) -> bool {
    let off = |map: Option<&std::collections::BTreeMap<String, String>>| {
        map.and_then(|m| m.get("sidecar.istio.io/inject"))
            .is_some_and(|v| v == "false")
    };
    m.is_some_and(|m| off(m.labels.as_ref()) || off(m.annotations.as_ref()))
}

impl From<&Deployment> for RawWorkload {
    fn from(d: &Deployment) -> Self {
        let spec = d.spec.clone().unwrap_or_default();
        let st = d.status.clone().unwrap_or_default();
        let tpl = spec.template;
        RawWorkload {
            kind: WorkloadKind::Deployment,
            namespace: d.metadata.namespace.clone().unwrap_or_default(),
            name: d.metadata.name.clone().unwrap_or_default(),
            labels: labels(&d.metadata).into(),
            template_labels: tpl.metadata.as_ref().map(labels).unwrap_or_default().into(),
            service_account: tpl
                .spec
                .as_ref()
                .and_then(|s| s.service_account_name.clone())
                .unwrap_or_else(|| "default".into()),
            images: tpl
                .spec
                .as_ref()
                .map(|s| {
                    s.containers
                        .iter()
                        .filter_map(|c| c.image.clone())
                        .collect()
                })
                .unwrap_or_default(),
            desired: spec.replicas.unwrap_or(1),
            ready: st.ready_replicas.unwrap_or(0),
            available: st.available_replicas.unwrap_or(0),
            updated: st.updated_replicas.unwrap_or(0),
            created: created(&d.metadata),
            inject_off: inject_off(tpl.metadata.as_ref()),
            rate_annotation: rate_annotation(&d.metadata),
        }
    }
}

impl From<&StatefulSet> for RawWorkload {
    fn from(d: &StatefulSet) -> Self {
        let spec = d.spec.clone().unwrap_or_default();
        let st = d.status.clone().unwrap_or_default();
        let tpl = spec.template;
        RawWorkload {
            kind: WorkloadKind::StatefulSet,
            namespace: d.metadata.namespace.clone().unwrap_or_default(),
            name: d.metadata.name.clone().unwrap_or_default(),
            labels: labels(&d.metadata).into(),
            template_labels: tpl.metadata.as_ref().map(labels).unwrap_or_default().into(),
            service_account: tpl
                .spec
                .as_ref()
                .and_then(|s| s.service_account_name.clone())
                .unwrap_or_else(|| "default".into()),
            images: tpl
                .spec
                .as_ref()
                .map(|s| {
                    s.containers
                        .iter()
                        .filter_map(|c| c.image.clone())
                        .collect()
                })
                .unwrap_or_default(),
            desired: spec.replicas.unwrap_or(1),
            ready: st.ready_replicas.unwrap_or(0),
            available: st
                .available_replicas
                .unwrap_or(st.ready_replicas.unwrap_or(0)),
            updated: st.updated_replicas.unwrap_or(0),
            created: created(&d.metadata),
            inject_off: inject_off(tpl.metadata.as_ref()),
            rate_annotation: rate_annotation(&d.metadata),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawReplicaSet {
    pub namespace: String,
    pub name: String,
    pub owner: Option<(String, String)>,
}

impl From<&ReplicaSet> for RawReplicaSet {
    fn from(r: &ReplicaSet) -> Self {
        RawReplicaSet {
            namespace: r.metadata.namespace.clone().unwrap_or_default(),
            name: r.metadata.name.clone().unwrap_or_default(),
            owner: owner(&r.metadata),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawConfigMap {
    pub namespace: String,
    pub name: String,
    pub data: BTreeMap<String, String>,
}

impl From<&ConfigMap> for RawConfigMap {
    fn from(c: &ConfigMap) -> Self {
        RawConfigMap {
            namespace: c.metadata.namespace.clone().unwrap_or_default(),
            name: c.metadata.name.clone().unwrap_or_default(),
            data: c.data.clone().unwrap_or_default(),
        }
    }
}

/// An Istio or policy object: metadata plus spec and status as JSON.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawObject {
    pub kind: String,
    pub api_version: String,
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub annotations: Labels,
    pub created: Option<String>,
    pub generation: i64,
    pub spec: Value,
    pub status: Value,
}

impl RawObject {
    /// From an object's JSON; managedFields and the last-applied annotation are dropped.
    pub fn from_value(v: &Value) -> Option<RawObject> {
        let meta = v.get("metadata")?;
        let s = |x: Option<&Value>| x.and_then(Value::as_str).unwrap_or("").to_string();
        let map = |x: Option<&Value>| -> Labels {
            x.and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| *k != "kubectl.kubernetes.io/last-applied-configuration")
                        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                        .collect()
                })
                .unwrap_or_default()
        };
        Some(RawObject {
            kind: s(v.get("kind")),
            api_version: s(v.get("apiVersion")),
            namespace: s(meta.get("namespace")),
            name: s(meta.get("name")),
            labels: map(meta.get("labels")),
            annotations: map(meta.get("annotations")),
            created: meta
                .get("creationTimestamp")
                .and_then(Value::as_str)
                .map(str::to_string),
            generation: meta.get("generation").and_then(Value::as_i64).unwrap_or(0),
            spec: v.get("spec").cloned().unwrap_or(Value::Null),
            status: v.get("status").cloned().unwrap_or(Value::Null),
        })
    }
}

/// The image tag (`docker.io/istio/proxyv2:1.30.3` → `1.30.3`).
pub fn image_tag(image: &str) -> Option<&str> {
    let last = image.rsplit('/').next()?;
    let tag = last.split_once(':')?.1;
    Some(tag.split('@').next().unwrap_or(tag))
}
