//! The incremental model equals a full derivation: after any sequence of watch events (pods,
//! endpoints, workloads and ReplicaSets added, changed, deleted; istiod touched; a re-list), the
//! view a kept `Deriver` followed change by change is exactly (every field, `Debug`-equal) the
//! view a fresh derivation of the same caches gives. The caches are modelled as the fleet keeps
//! them: one map per kind, keyed by (namespace, name).

use chrono::TimeZone;
use meshdeck::model::raw::*;
use meshdeck::model::{ClusterInput, ConnState, Delta, Deriver};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

type Key = (String, String);

#[derive(Clone)]
struct Caches {
    base: ClusterInput,
    pods: BTreeMap<Key, Arc<RawPod>>,
    endpoints: BTreeMap<Key, Arc<RawEndpoints>>,
    deployments: BTreeMap<Key, Arc<RawWorkload>>,
    statefulsets: BTreeMap<Key, Arc<RawWorkload>>,
    replicasets: BTreeMap<Key, Arc<RawReplicaSet>>,
}

fn key(ns: &str, name: &str) -> Key {
    (ns.to_string(), name.to_string())
}

impl Caches {
    fn of(input: &ClusterInput) -> Caches {
        let by = |ns: &str, n: &str| key(ns, n);
        Caches {
            base: input.clone(),
            pods: input
                .pods
                .iter()
                .map(|p| (by(&p.namespace, &p.name), p.clone()))
                .collect(),
            endpoints: input
                .endpoints
                .iter()
                .map(|e| (by(&e.namespace, &e.name), e.clone()))
                .collect(),
            deployments: input
                .workloads
                .iter()
                .filter(|w| w.kind == WorkloadKind::Deployment)
                .map(|w| (by(&w.namespace, &w.name), w.clone()))
                .collect(),
            statefulsets: input
                .workloads
                .iter()
                .filter(|w| w.kind == WorkloadKind::StatefulSet)
                .map(|w| (by(&w.namespace, &w.name), w.clone()))
                .collect(),
            replicasets: input
                .replicasets
                .iter()
                .map(|r| (by(&r.namespace, &r.name), r.clone()))
                .collect(),
        }
    }

    /// What the fleet's cache hands the model (`Cache::input`).
    fn input(&self) -> ClusterInput {
        let mut i = self.base.clone();
        i.pods = self.pods.values().cloned().collect();
        i.endpoints = self.endpoints.values().cloned().collect();
        i.workloads = self.deployments.values().cloned().collect();
        i.workloads.extend(self.statefulsets.values().cloned());
        i.replicasets = self.replicasets.values().cloned().collect();
        i
    }
}

fn cluster() -> &'static ClusterInput {
    static INPUT: OnceLock<ClusterInput> = OnceLock::new();
    INPUT.get_or_init(|| {
        let now = chrono::Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        meshdeck::sim::fixture::demo_input(0, "eu-west", Some(150), 7, now)
    })
}

/// One watch event, as random choices resolved against the caches when it is applied.
#[derive(Debug, Clone)]
enum Op {
    /// Change a pod: 0 ready flips, 1 a restart, 2 CrashLoopBackOff, 3 Pending, 4 loses its
    /// sidecar, 5 moves to another owner, 6 new labels, 7 terminating.
    PodChange(usize, u8, usize),
    PodDelete(usize),
    /// A copy of a pod under a new name, owned by the n-th ReplicaSet or StatefulSet (or none).
    PodAdd(usize, usize),
    Endpoints(usize, usize, usize),
    EndpointsDelete(usize),
    /// Change a workload: 0 ready/available, 1 scaled to 0, 2 template labels change.
    WorkloadChange(usize, u8),
    WorkloadDelete(usize),
    /// A new Deployment copying another's labels (so it backs the same services).
    WorkloadAdd(usize),
    /// The n-th ReplicaSet now belongs to another Deployment, or to none, or is deleted.
    ReplicaSet(usize, u8, usize),
    /// istiod's ready count changes: every row reads the mesh (a full derivation).
    Istiod(i32),
    /// The watch expired (410) or reconnected: everything re-listed (a full derivation).
    Relist,
}

fn op() -> impl Strategy<Value = Op> {
    let n = 0usize..10_000;
    prop_oneof![
        8 => (n.clone(), 0u8..8, n.clone()).prop_map(|(a, b, c)| Op::PodChange(a, b, c)),
        3 => n.clone().prop_map(Op::PodDelete),
        3 => (n.clone(), n.clone()).prop_map(|(a, b)| Op::PodAdd(a, b)),
        3 => (n.clone(), 0usize..5, 0usize..3).prop_map(|(a, b, c)| Op::Endpoints(a, b, c)),
        1 => n.clone().prop_map(Op::EndpointsDelete),
        3 => (n.clone(), 0u8..3).prop_map(|(a, b)| Op::WorkloadChange(a, b)),
        1 => n.clone().prop_map(Op::WorkloadDelete),
        1 => n.clone().prop_map(Op::WorkloadAdd),
        2 => (n.clone(), 0u8..3, n).prop_map(|(a, b, c)| Op::ReplicaSet(a, b, c)),
        1 => (0i32..3).prop_map(Op::Istiod),
        1 => Just(Op::Relist),
    ]
}

fn nth<K: Clone, V: Clone>(m: &BTreeMap<K, V>, i: usize) -> Option<(K, V)> {
    (!m.is_empty()).then(|| {
        let (k, v) = m.iter().nth(i % m.len()).expect("in range");
        (k.clone(), v.clone())
    })
}

/// Apply one event to the caches, recording it in the delta. Returns false for a re-list.
fn apply(c: &mut Caches, d: &mut Delta, op: &Op, serial: &mut usize) -> bool {
    *serial += 1;
    match *op {
        Op::PodChange(i, what, j) => {
            let Some((k, p)) = nth(&c.pods, i) else {
                return true;
            };
            let mut p = (*p).clone();
            match what {
                0 => {
                    p.ready = !p.ready;
                    for ct in &mut p.containers {
                        ct.ready = p.ready;
                    }
                }
                1 => {
                    if let Some(ct) = p.containers.first_mut() {
                        ct.restarts += 1;
                    }
                }
                2 => {
                    if let Some(ct) = p.containers.first_mut() {
                        ct.waiting = Some("CrashLoopBackOff".into());
                        ct.ready = false;
                    }
                }
                3 => p.phase = "Pending".into(),
                4 => {
                    p.containers.retain(|ct| &*ct.name != "istio-proxy");
                    p.injected = false;
                }
                5 => {
                    p.owner = nth(&c.replicasets, j)
                        .map(|(k, _)| ("ReplicaSet".into(), k.1.into()))
                        .filter(|_| j % 4 != 0);
                }
                6 => {
                    let mut l = (*p.labels).clone();
                    l.insert("app".into(), format!("relabelled-{}", j % 3));
                    p.labels = Arc::new(l);
                }
                _ => p.deleting = true,
            }
            let p = Arc::new(p);
            c.pods.insert(k.clone(), p.clone());
            d.pods.push((k, Some(p)));
        }
        Op::PodDelete(i) => {
            if let Some((k, _)) = nth(&c.pods, i) {
                c.pods.remove(&k);
                d.pods.push((k, None));
            }
        }
        Op::PodAdd(i, j) => {
            let Some((_, p)) = nth(&c.pods, i) else {
                return true;
            };
            let mut p = (*p).clone();
            p.name = format!("{}-copy{serial}", p.name).into();
            let owners: Vec<(String, String, String)> = c
                .replicasets
                .values()
                .map(|r| {
                    (
                        r.namespace.clone(),
                        "ReplicaSet".to_string(),
                        r.name.clone(),
                    )
                })
                .chain(c.statefulsets.values().map(|w| {
                    (
                        w.namespace.clone(),
                        "StatefulSet".to_string(),
                        w.name.clone(),
                    )
                }))
                .collect();
            match owners.get(j % (owners.len() + 1)) {
                Some((ns, kind, name)) => {
                    p.namespace = ns.as_str().into();
                    p.owner = Some((kind.as_str().into(), name.as_str().into()));
                }
                None => p.owner = None,
            }
            let k = key(&p.namespace, &p.name);
            let p = Arc::new(p);
            c.pods.insert(k.clone(), p.clone());
            d.pods.push((k, Some(p)));
        }
        Op::Endpoints(i, ready, not_ready) => {
            let Some((k, e)) = nth(&c.endpoints, i) else {
                return true;
            };
            let e = Arc::new(RawEndpoints {
                ready,
                not_ready,
                ..(*e).clone()
            });
            c.endpoints.insert(k.clone(), e.clone());
            d.endpoints.push((k, Some(e)));
        }
        Op::EndpointsDelete(i) => {
            if let Some((k, _)) = nth(&c.endpoints, i) {
                c.endpoints.remove(&k);
                d.endpoints.push((k, None));
            }
        }
        Op::WorkloadChange(i, what) => {
            let all: Vec<(Key, Arc<RawWorkload>)> = c
                .deployments
                .iter()
                .chain(c.statefulsets.iter())
                .filter(|(_, w)| w.labels.get("app").map(String::as_str) != Some("istiod"))
                .map(|(k, w)| (k.clone(), w.clone()))
                .collect();
            if all.is_empty() {
                return true;
            }
            let (k, w) = all[i % all.len()].clone();
            let mut w = (*w).clone();
            match what {
                0 => {
                    w.ready = (w.ready + 1) % (w.desired + 1);
                    w.available = w.ready;
                }
                1 => {
                    w.desired = 0;
                    w.ready = 0;
                    w.available = 0;
                }
                _ => {
                    Arc::make_mut(&mut w.template_labels)
                        .insert("app".into(), format!("relabelled-{}", i % 3));
                }
            }
            let kind = w.kind;
            let w = Arc::new(w);
            match kind {
                WorkloadKind::Deployment => c.deployments.insert(k.clone(), w.clone()),
                WorkloadKind::StatefulSet => c.statefulsets.insert(k.clone(), w.clone()),
            };
            d.workloads.push((kind, k, Some(w)));
        }
        Op::WorkloadDelete(i) => {
            if let Some((k, w)) = nth(&c.deployments, i)
                && w.labels.get("app").map(String::as_str) != Some("istiod")
            {
                c.deployments.remove(&k);
                d.workloads.push((WorkloadKind::Deployment, k, None));
            }
        }
        Op::WorkloadAdd(i) => {
            if let Some((_, w)) = nth(&c.deployments, i)
                && w.labels.get("app").map(String::as_str) != Some("istiod")
            {
                let mut w = (*w).clone();
                w.name = format!("{}-twin{serial}", w.name);
                let k = key(&w.namespace, &w.name);
                let w = Arc::new(w);
                c.deployments.insert(k.clone(), w.clone());
                d.workloads.push((WorkloadKind::Deployment, k, Some(w)));
            }
        }
        Op::ReplicaSet(i, what, j) => {
            let Some((k, r)) = nth(&c.replicasets, i) else {
                return true;
            };
            match what {
                0 => {
                    let r = Arc::new(RawReplicaSet {
                        owner: nth(&c.deployments, j).map(|(k, _)| ("Deployment".into(), k.1)),
                        ..(*r).clone()
                    });
                    c.replicasets.insert(k.clone(), r.clone());
                    d.replicasets.push((k, Some(r)));
                }
                1 => {
                    let r = Arc::new(RawReplicaSet {
                        owner: None,
                        ..(*r).clone()
                    });
                    c.replicasets.insert(k.clone(), r.clone());
                    d.replicasets.push((k, Some(r)));
                }
                _ => {
                    c.replicasets.remove(&k);
                    d.replicasets.push((k, None));
                }
            }
        }
        Op::Istiod(ready) => {
            let Some((k, w)) = c
                .deployments
                .iter()
                .find(|(_, w)| w.labels.get("app").map(String::as_str) == Some("istiod"))
                .map(|(k, w)| (k.clone(), w.clone()))
            else {
                return true;
            };
            let w = Arc::new(RawWorkload {
                ready,
                available: ready,
                ..(*w).clone()
            });
            c.deployments.insert(k.clone(), w.clone());
            d.workloads.push((WorkloadKind::Deployment, k, Some(w)));
        }
        Op::Relist => return false,
    }
    true
}

fn state() -> impl Strategy<Value = ConnState> {
    prop_oneof![
        4 => Just(ConnState::Synced),
        1 => Just(ConnState::Partial { forbidden: "secrets".into() }),
        1 => Just(ConnState::Stale { since: "2026-12-01T12:00:00Z".into(), error: "connection refused".into() }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn an_incremental_view_equals_a_full_derivation(
        state in state(),
        batches in prop::collection::vec(prop::collection::vec(op(), 1..6), 1..12),
    ) {
        let mut caches = Caches::of(cluster());
        let mut d = Deriver::new(&caches.input(), state.clone());
        let mut serial = 0usize;
        for batch in &batches {
            let mut delta = Delta::default();
            let mut relist = false;
            for op in batch {
                relist |= !apply(&mut caches, &mut delta, op, &mut serial);
            }
            if relist {
                d = Deriver::new(&caches.input(), state.clone());
            } else {
                match d.apply(&delta) {
                    Ok(()) => {}
                    Err(_) => {
                        prop_assert!(delta.workloads.iter().any(|(_, _, w)| w.as_ref().is_some_and(|w| w.labels.get("app").map(String::as_str) == Some("istiod"))),
                            "only an istiod change needs a full derivation");
                        d = Deriver::new(&caches.input(), state.clone());
                    }
                }
            }
            let full = Deriver::new(&caches.input(), state.clone()).view();
            let got = d.view();
            if format!("{got:?}") != format!("{full:?}") {
                // name the first field that differs, not two pages of Debug
                let a = serde_json::to_value(&*got).expect("json");
                let b = serde_json::to_value(&*full).expect("json");
                let (a, b) = (
                    serde_json::to_string_pretty(&a).unwrap_or_default(),
                    serde_json::to_string_pretty(&b).unwrap_or_default(),
                );
                let first = a.lines().zip(b.lines()).position(|(x, y)| x != y).unwrap_or(0);
                let around = |t: &str| t.lines().skip(first.saturating_sub(12)).take(16).collect::<Vec<_>>().join("\n");
                let diff = format!("incremental:\n{}\nfull:\n{}", around(&a), around(&b));
                prop_assert!(false, "after {batch:?}: the incremental view differs at JSON line {first}:\n{diff}");
            }
        }
    }
}
