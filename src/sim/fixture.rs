//! A fleet snapshot made without a network: the demo scenario's objects, converted as the
//! fleet's watchers convert them. Same seed and moment, same snapshot: the console's snapshot
//! tests, the benches and the screenshots of fixed data use it.

use super::scenario::{Scenario, cluster_names, populate_at};
use super::store::Store;
use crate::fleet::{ISTIO_KINDS, POLICY_KINDS};
use crate::model::raw::*;
use crate::model::slim::SlimPod;
use crate::model::{ClusterInput, ConnState, Snapshot, derive_cluster};
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Namespace, Service};
use serde::de::DeserializeOwned;
use std::sync::Arc;

fn typed<T: DeserializeOwned>(store: &Store, key: &str) -> Vec<T> {
    store
        .list(key, None)
        .1
        .iter()
        .filter_map(|o| serde_json::from_slice(&o.bytes).ok())
        .collect()
}

fn conv<K, R>(v: &[K]) -> Vec<Arc<R>>
where
    for<'a> R: From<&'a K>,
{
    v.iter().map(|k| Arc::new(R::from(k))).collect()
}

fn objects(store: &Store, kinds: &[(&str, &str, &str, &str)]) -> Vec<Arc<RawObject>> {
    let mut out = Vec::new();
    for (group, _, _, plural) in kinds {
        let key = format!("{plural}.{group}");
        for o in store.list(&key, None).1.iter() {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&o.bytes)
                && let Some(r) = RawObject::from_value(&v)
            {
                out.push(Arc::new(r));
            }
        }
    }
    out
}

/// One cluster's watcher input for the demo scenario.
pub fn demo_input(
    idx: usize,
    name: &str,
    pods: Option<usize>,
    seed: u64,
    now: DateTime<Utc>,
) -> ClusterInput {
    let store = Store::new(1_000_000);
    populate_at(&store, Scenario::Demo, idx, name, seed, pods, now);
    let mut workloads: Vec<Arc<RawWorkload>> =
        conv(&typed::<Deployment>(&store, "deployments.apps"));
    workloads.extend(conv::<StatefulSet, RawWorkload>(&typed(
        &store,
        "statefulsets.apps",
    )));
    ClusterInput {
        name: name.into(),
        context: name.into(),
        server: format!("https://127.0.0.1:{}", 6443 + idx),
        user: "admin".into(),
        version: Some("v1.34.1".into()),
        latency_ms: Some(3 + idx as u64),
        namespaces: conv::<Namespace, RawNamespace>(&typed(&store, "namespaces")),
        services: conv::<Service, RawService>(&typed(&store, "services")),
        endpoints: conv::<Endpoints, RawEndpoints>(&typed(&store, "endpoints")),
        pods: conv::<SlimPod, RawPod>(&typed(&store, "pods")),
        workloads,
        replicasets: conv::<ReplicaSet, RawReplicaSet>(&typed(&store, "replicasets.apps")),
        configmaps: conv::<ConfigMap, RawConfigMap>(&typed(&store, "configmaps")),
        istio: objects(&store, ISTIO_KINDS),
        policies: objects(&store, POLICY_KINDS),
    }
}

/// The demo fleet as a snapshot: `clusters` clusters, each in the state `state(i)` gives.
pub fn demo_snapshot(
    clusters: usize,
    pods: Option<usize>,
    now: DateTime<Utc>,
    state: impl Fn(usize) -> ConnState,
) -> Snapshot {
    let names = cluster_names(clusters);
    Snapshot {
        clusters: names
            .iter()
            .enumerate()
            .map(|(i, n)| Arc::new(derive_cluster(&demo_input(i, n, pods, 7, now), state(i))))
            .collect(),
        seq: 1,
    }
}
