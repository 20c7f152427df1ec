//! One way from a Kubernetes object to the model's cluster input. The live fleet's watchers
//! decode each kind into its typed form and convert it with the `From` impls of [`raw`];
//! everything that reads objects as JSON — the offline inventory, the simulator's fixtures,
//! tests — goes through [`ingest`], which picks the kind and uses the same decoding (pods as
//! [`SlimPod`], only Istio's ConfigMaps, Istio and policy objects as [`RawObject`]s,
//! Secrets never kept), so an
//! object reads the same whichever way it came.

use super::ClusterInput;
use super::raw::*;
use super::slim::SlimPod;
use crate::kinds::{ISTIO_KINDS, POLICY_KINDS};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Namespace, Service};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;

/// Why an object could not be read into the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("{kind}: {message}")]
    Decode { kind: String, message: String },
    #[error("{kind} has no metadata")]
    NoMetadata { kind: String },
}

fn typed<T: DeserializeOwned>(kind: &str, v: &Value) -> Result<T, IngestError> {
    T::deserialize(v).map_err(|e| IngestError::Decode {
        kind: kind.to_string(),
        message: e.to_string(),
    })
}

/// Add one object to a cluster's input. `Ok(false)`: a kind the model does not keep (Secrets
/// among them); `List`s are not expanded here.
pub fn ingest(input: &mut ClusterInput, v: &Value) -> Result<bool, IngestError> {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let group = api.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    let core = group.is_empty();
    let apps = group == "apps";
    match kind {
        "Namespace" if core => {
            input
                .namespaces
                .push(Arc::new(RawNamespace::from(&typed::<Namespace>(kind, v)?)))
        }
        "Service" if core => input
            .services
            .push(Arc::new(RawService::from(&typed::<Service>(kind, v)?))),
        "Endpoints" if core => {
            input
                .endpoints
                .push(Arc::new(RawEndpoints::from(&typed::<Endpoints>(kind, v)?)))
        }
        "Pod" if core => input
            .pods
            .push(Arc::new(RawPod::from(&typed::<SlimPod>(kind, v)?))),
        // only Istio's mesh ConfigMaps, as the fleet watches them (label istio.io/rev)
        "ConfigMap" if core => {
            if v.pointer("/metadata/labels/istio.io~1rev").is_none() {
                return Ok(false);
            }
            input
                .configmaps
                .push(Arc::new(RawConfigMap::from(&typed::<ConfigMap>(kind, v)?)))
        }
        "Deployment" if apps => {
            input
                .workloads
                .push(Arc::new(RawWorkload::from(&typed::<Deployment>(kind, v)?)))
        }
        "StatefulSet" if apps => {
            input
                .workloads
                .push(Arc::new(RawWorkload::from(&typed::<StatefulSet>(kind, v)?)))
        }
        "ReplicaSet" if apps => input
            .replicasets
            .push(Arc::new(RawReplicaSet::from(&typed::<ReplicaSet>(
                kind, v,
            )?))),
        _ => {
            let known = |kinds: &[(&str, &str, &str, &str)]| {
                kinds.iter().any(|(g, _, k, _)| *g == group && *k == kind)
            };
            let (istio, policy) = (known(ISTIO_KINDS), known(POLICY_KINDS));
            if !istio && !policy {
                return Ok(false);
            }
            let mut raw = RawObject::from_value(v).ok_or_else(|| IngestError::NoMetadata {
                kind: kind.to_string(),
            })?;
            // Every Istio and policy kind is namespaced: a manifest without a namespace is in
            // `default`, as `kubectl apply -f` and istioctl read it.
            if raw.namespace.is_empty() {
                raw.namespace = "default".into();
            }
            if istio {
                input.istio.push(Arc::new(raw));
            } else {
                input.policies.push(Arc::new(raw));
            }
        }
    }
    Ok(true)
}

/// Put a cluster's input in the order the live fleet hands it over (by namespace and name per
/// kind; workloads Deployments first), so a snapshot does not depend on how objects came.
pub fn sort(input: &mut ClusterInput) {
    fn by<T>(v: &mut [Arc<T>], key: impl Fn(&T) -> (&str, &str)) {
        v.sort_by(|a, b| key(a).cmp(&key(b)));
    }
    input.namespaces.sort_by(|a, b| a.name.cmp(&b.name));
    by(&mut input.services, |s| (&s.namespace, &s.name));
    by(&mut input.endpoints, |s| (&s.namespace, &s.name));
    by(&mut input.pods, |p| (&p.namespace, &p.name));
    input.workloads.sort_by(|a, b| {
        (a.kind != WorkloadKind::Deployment, &a.namespace, &a.name).cmp(&(
            b.kind != WorkloadKind::Deployment,
            &b.namespace,
            &b.name,
        ))
    });
    by(&mut input.replicasets, |r| (&r.namespace, &r.name));
    by(&mut input.configmaps, |c| (&c.namespace, &c.name));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_kind_lands_where_the_fleet_puts_it_and_secrets_never() {
        let mut input = ClusterInput::default();
        let objects = [
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"istio-injection": "enabled"}}}),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "a"}, "spec": {"selector": {}, "template": {}}}),
            json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "v", "namespace": "a", "managedFields": [{"manager": "x"}]}, "spec": {}}),
            json!({"apiVersion": "networking.mesh.gloo.solo.io/v1", "kind": "TrafficPolicy", "metadata": {"name": "t", "namespace": "a"}, "spec": {}}),
        ];
        for o in &objects {
            assert_eq!(ingest(&mut input, o), Ok(true), "{o}");
        }
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dg=="}});
        assert_eq!(ingest(&mut input, &secret), Ok(false));
        // a Pod of another group is not a pod
        let odd = json!({"apiVersion": "example.com/v1", "kind": "Pod", "metadata": {"name": "x"}});
        assert_eq!(ingest(&mut input, &odd), Ok(false));
        assert_eq!(
            (
                input.namespaces.len(),
                input.pods.len(),
                input.workloads.len(),
                input.istio.len(),
                input.policies.len()
            ),
            (1, 1, 1, 1, 1)
        );
        let bad = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": 3}});
        let e = ingest(&mut input, &bad).expect_err("bad").to_string();
        assert!(e.starts_with("Service: "), "{e}");
    }
}
