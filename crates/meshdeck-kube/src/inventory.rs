//! An offline fleet: `DIR/<cluster>/*.yaml` holding plain Kubernetes manifests (Namespaces,
//! Services, Endpoints, Pods, Deployments, StatefulSets, ReplicaSets, ConfigMaps, Istio objects,
//! policies). It becomes the same `Snapshot` the live fleet publishes, so `translate` can run in
//! CI with no cluster. Secrets are skipped, never read.

use crate::model::{ClusterInput, ConnState, Snapshot, derive_cluster};
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

/// Read one cluster's manifests into watcher input.
pub(crate) fn load_cluster(name: &str, dir: &Path) -> Result<ClusterInput, InventoryError> {
    let mut input = ClusterInput {
        name: name.to_string(),
        context: name.to_string(),
        aliases: vec![],
        server: format!("file://{}", dir.display()),
        user: String::new(),
        version: None,
        latency_ms: None,
        pace: None,
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
            crate::model::ingest::ingest(&mut input, d)
                .map_err(|e| at(&f, format!("document {}: {e}", i + 1)))?;
        }
    }
    crate::model::ingest::sort(&mut input);
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
