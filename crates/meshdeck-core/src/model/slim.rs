//! A Pod as meshdeck decodes it from the API: only the fields `RawPod` keeps. serde skips the
//! rest of the JSON (volumes, env, probes, managedFields...) without building it, which is most
//! of the decoding time and transient memory of a 100k-pod sync. The metadata is still a
//! k8s-openapi `ObjectMeta` (kube-runtime's watcher needs one), filled from the few fields read.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SlimPod {
    /// What the object says it is: a watch can send another kind (a Service in the pods'
    /// watch), which [`SlimPod::not_a_pod`] names; a list's items may leave both out.
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default, rename = "apiVersion")]
    pub api_version: Option<String>,
    #[serde(deserialize_with = "slim_meta", default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Option<SlimPodSpec>,
    #[serde(default)]
    pub status: Option<SlimPodStatus>,
}

/// The API path of a `Pod`: kube-rs's watcher serves `SlimPod` like `Pod` (kube's blanket
/// `Resource` impl covers every `k8s_openapi::Resource`).
impl k8s_openapi::Resource for SlimPod {
    const API_VERSION: &'static str = "v1";
    const GROUP: &'static str = "";
    const KIND: &'static str = "Pod";
    const VERSION: &'static str = "v1";
    const URL_PATH_SEGMENT: &'static str = "pods";
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::Metadata for SlimPod {
    type Ty = ObjectMeta;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SlimMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    owner_references: Option<Vec<OwnerReference>>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
}

fn slim_meta<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    let m = SlimMeta::deserialize(d)?;
    Ok(ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resource_version: m.resource_version,
        labels: m.labels,
        annotations: m.annotations,
        owner_references: m.owner_references,
        creation_timestamp: m.creation_timestamp,
        deletion_timestamp: m.deletion_timestamp,
        ..Default::default()
    })
}

impl SlimPod {
    /// Why this is not a Pod, when it says it is something else.
    pub fn not_a_pod(&self) -> Option<String> {
        let kind = self.kind.as_deref().unwrap_or("Pod");
        let version = self.api_version.as_deref().unwrap_or("v1");
        (kind != "Pod" || version != "v1")
            .then(|| format!("a {version} {kind} came where a v1 Pod was expected"))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlimPodSpec {
    #[serde(default)]
    pub containers: Vec<SlimContainer>,
    pub service_account_name: Option<String>,
    pub node_name: Option<String>,
    pub host_network: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SlimContainer {
    pub name: String,
    pub image: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlimPodStatus {
    pub phase: Option<String>,
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    #[serde(default)]
    pub conditions: Vec<SlimCondition>,
    #[serde(default)]
    pub container_statuses: Vec<SlimContainerStatus>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SlimCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlimContainerStatus {
    pub name: String,
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub restart_count: i32,
    pub state: Option<SlimState>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SlimState {
    pub waiting: Option<SlimWaiting>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SlimWaiting {
    pub reason: Option<String>,
}

impl From<&SlimPod> for crate::model::raw::RawPod {
    fn from(p: &SlimPod) -> Self {
        let (containers_spec, sa, node) = match &p.spec {
            Some(s) => (
                s.containers.as_slice(),
                s.service_account_name.clone(),
                s.node_name.clone(),
            ),
            None => (&[][..], None, None),
        };
        let statuses = p
            .status
            .as_ref()
            .map(|s| s.container_statuses.as_slice())
            .unwrap_or(&[]);
        let containers = containers_spec
            .iter()
            .map(|c| {
                let st = statuses.iter().find(|s| s.name == c.name);
                crate::model::raw::RawContainer {
                    name: c.name.as_str().into(),
                    image: c.image.as_deref().unwrap_or_default().into(),
                    ready: st.is_some_and(|s| s.ready),
                    restarts: st.map_or(0, |s| s.restart_count),
                    waiting: st
                        .and_then(|s| s.state.as_ref())
                        .and_then(|s| s.waiting.as_ref())
                        .and_then(|w| w.reason.as_deref())
                        .map(compact_str::CompactString::new),
                }
            })
            .collect();
        let ready = p.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        });
        crate::model::raw::RawPod {
            namespace: p.metadata.namespace.as_deref().unwrap_or_default().into(),
            name: p.metadata.name.as_deref().unwrap_or_default().into(),
            labels: std::sync::Arc::new(crate::model::raw::labels(&p.metadata)),
            injected: p
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(crate::model::raw::SIDECAR_STATUS)),
            opted_out: {
                let key = "sidecar.istio.io/inject";
                let label = p.metadata.labels.as_ref().and_then(|l| l.get(key));
                let anno = p.metadata.annotations.as_ref().and_then(|a| a.get(key));
                let host = p.spec.as_ref().and_then(|s| s.host_network) == Some(true);
                host || label
                    .or(anno)
                    .is_some_and(|v| v.eq_ignore_ascii_case("false"))
            },
            ambient: p
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("ambient.istio.io/redirection"))
                .is_some_and(|v| v == "enabled"),
            containers,
            phase: p
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .unwrap_or_default()
                .into(),
            ready,
            owner: crate::model::raw::owner(&p.metadata).map(|(k, n)| (k.into(), n.into())),
            service_account: sa.unwrap_or_default().into(),
            ip: p
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.as_deref())
                .map(compact_str::CompactString::new)
                .unwrap_or_default(),
            node: node.unwrap_or_default().into(),
            created: p
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| compact_str::format_compact!("{}", t.0)),
            deleting: p.metadata.deletion_timestamp.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::raw::RawPod;

    #[test]
    fn slim_decoding_keeps_what_raw_pod_needs() {
        let v = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "n", "uid": "u1", "resourceVersion": "7",
                "labels": {"app": "a"}, "annotations": {"sidecar.istio.io/status": "{}"},
                "managedFields": [{"manager": "x", "fieldsV1": {"f:spec": {}}}],
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "r", "controller": true}],
                "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"serviceAccountName": "sa", "nodeName": "n1",
                "volumes": [{"name": "v", "emptyDir": {}}],
                "containers": [{"name": "app", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
                               {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.30.3"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}
        });
        let slim: SlimPod = serde_json::from_value(v).expect("decodes");
        assert!(slim.metadata.managed_fields.is_none());
        assert_eq!(slim.metadata.resource_version.as_deref(), Some("7"));
        let r = RawPod::from(&slim);
        assert_eq!((&*r.namespace, &*r.name), ("n", "p"));
        assert!(r.injected && r.ready);
        assert_eq!(r.owner, Some(("ReplicaSet".into(), "rs".into())));
        assert_eq!(r.containers[0].restarts, 3);
        assert_eq!(r.containers[0].waiting.as_deref(), Some("CrashLoopBackOff"));
        assert_eq!(&*r.containers[1].image, "docker.io/istio/proxyv2:1.30.3");
        assert_eq!(
            (r.ip.as_str(), &*r.node, &*r.service_account),
            ("10.0.0.1", "n1", "sa")
        );
        assert_eq!(
            r.created.as_deref().map(|c| c.starts_with("2026-01-01")),
            Some(true)
        );
    }
}

#[cfg(test)]
mod kind_tests {
    use super::*;

    #[test]
    fn only_a_pod_is_a_pod() {
        let pod: SlimPod =
            serde_json::from_str(r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a"}}"#)
                .expect("a pod");
        assert_eq!(pod.not_a_pod(), None);
        // list items may carry neither
        let item: SlimPod = serde_json::from_str(r#"{"metadata":{"name":"a"}}"#).expect("item");
        assert_eq!(item.not_a_pod(), None);
        let svc: SlimPod =
            serde_json::from_str(r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"a"}}"#)
                .expect("decodes");
        assert_eq!(
            svc.not_a_pod().as_deref(),
            Some("a v1 Service came where a v1 Pod was expected")
        );
    }
}
