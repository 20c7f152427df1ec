//! An offline fleet: `DIR/<cluster>/*.yaml` holding plain Kubernetes manifests (Namespaces,
//! Services, Endpoints, Pods, Deployments, StatefulSets, ReplicaSets, ConfigMaps, Istio objects,
//! policies). It becomes the same `Snapshot` the live fleet publishes, so `translate` can run in
//! CI with no cluster. Secrets are skipped, never read.

use crate::fleet::slim::SlimPod;
use crate::fleet::{ISTIO_KINDS, POLICY_KINDS};
use crate::model::raw::*;
use crate::model::{ClusterInput, ConnState, Snapshot, derive_cluster};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Namespace, Service};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{path}: {message}")]
    At { path: String, message: String },
}

fn at(path: &Path, message: impl Into<String>) -> InventoryError {
    InventoryError::At {
        path: path.display().to_string(),
        message: message.into(),
    }
}

fn typed<T: DeserializeOwned>(v: &Value, file: &Path, doc: usize) -> Result<T, InventoryError> {
    serde_json::from_value(v.clone()).map_err(|e| at(file, format!("document {doc}: {e}")))
}

/// Read one cluster's manifests into watcher input.
pub fn load_cluster(name: &str, dir: &Path) -> Result<ClusterInput, InventoryError> {
    let mut input = ClusterInput {
        name: name.to_string(),
        context: name.to_string(),
        aliases: vec![],
        server: format!("file://{}", dir.display()),
        user: String::new(),
        version: None,
        latency_ms: None,
        namespaces: vec![],
        services: vec![],
        endpoints: vec![],
        pods: vec![],
        workloads: vec![],
        replicasets: vec![],
        configmaps: vec![],
        istio: vec![],
        policies: vec![],
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| at(dir, format!("cannot read: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| x == "yaml" || x == "yml")
        })
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| at(&f, format!("cannot read: {e}")))?;
        let docs = crate::yaml::from_str_multi(&text).map_err(|e| {
            let pos = match (e.line, e.column) {
                (Some(l), Some(c)) => format!(":{l}:{c}"),
                _ => String::new(),
            };
            InventoryError::At {
                path: format!("{}{pos}", f.display()),
                message: e.message.clone(),
            }
        })?;
        let mut expanded = Vec::new();
        for d in docs {
            // `kind: List` (what `kubectl get -o yaml` writes) holds its objects in items.
            if d.get("kind").and_then(Value::as_str) == Some("List") {
                if let Some(items) = d.get("items").and_then(Value::as_array) {
                    expanded.extend(items.iter().cloned());
                }
            } else {
                expanded.push(d);
            }
        }
        for (i, d) in expanded.iter().enumerate() {
            let doc = i + 1;
            let kind = d.get("kind").and_then(Value::as_str).unwrap_or("");
            let api = d.get("apiVersion").and_then(Value::as_str).unwrap_or("");
            let group = api.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
            match kind {
                "Namespace" => input.namespaces.push(Arc::new(RawNamespace::from(&typed::<
                    Namespace,
                >(
                    d, &f, doc
                )?))),
                "Service" => input
                    .services
                    .push(Arc::new(RawService::from(&typed::<Service>(d, &f, doc)?))),
                "Endpoints" => input.endpoints.push(Arc::new(RawEndpoints::from(&typed::<
                    Endpoints,
                >(
                    d, &f, doc
                )?))),
                "Pod" => input
                    .pods
                    .push(Arc::new(RawPod::from(&typed::<SlimPod>(d, &f, doc)?))),
                "Deployment" => input.workloads.push(Arc::new(RawWorkload::from(&typed::<
                    Deployment,
                >(
                    d, &f, doc
                )?))),
                "StatefulSet" => input.workloads.push(Arc::new(RawWorkload::from(&typed::<
                    StatefulSet,
                >(
                    d, &f, doc
                )?))),
                "ReplicaSet" => input
                    .replicasets
                    .push(Arc::new(RawReplicaSet::from(&typed::<ReplicaSet>(
                        d, &f, doc,
                    )?))),
                "ConfigMap" => input.configmaps.push(Arc::new(RawConfigMap::from(&typed::<
                    ConfigMap,
                >(
                    d, &f, doc
                )?))),
                "Secret" => {}
                _ => {
                    let known = |kinds: &[(&str, &str, &str, &str)]| {
                        kinds.iter().any(|(g, _, k, _)| *g == group && *k == kind)
                    };
                    let raw = || {
                        RawObject::from_value(d).map(Arc::new).ok_or_else(|| {
                            at(&f, format!("document {doc}: {kind} has no metadata"))
                        })
                    };
                    if known(ISTIO_KINDS) {
                        input.istio.push(raw()?);
                    } else if known(POLICY_KINDS) {
                        input.policies.push(raw()?);
                    }
                    // Other kinds (RBAC, CRDs, ...) say nothing the translator needs.
                }
            }
        }
    }
    Ok(input)
}

/// Read every cluster below `dir` (one sub-directory each, in name order) into a snapshot.
pub fn load(dir: &Path) -> Result<Snapshot, InventoryError> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| at(dir, format!("cannot read the inventory: {e}")))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(at(
            dir,
            "no cluster directories: expected DIR/<cluster>/*.yaml",
        ));
    }
    let mut clusters = Vec::new();
    for n in names {
        let input = load_cluster(&n, &dir.join(&n))?;
        clusters.push(Arc::new(derive_cluster(&input, ConnState::Synced)));
    }
    Ok(Snapshot { clusters, seq: 1 })
}
