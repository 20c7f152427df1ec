//! The object store of one simulated cluster.
//!
//! Objects are kept as their serialized JSON (`Bytes`), so lists and watch events are served by
//! concatenating bytes, and a cluster of 5,000 pods costs little more than the JSON itself.
//! Every write takes the next value of the cluster's one resourceVersion counter, is appended to
//! a bounded event ring (for watch resume) and is broadcast to live watchers. All mutation
//! happens under one short, synchronous lock, so the event order is the commit order.

use super::registry::{Registry, ResourceType, from_crd};
use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::{broadcast, watch};

pub const CRD_KEY: &str = "customresourcedefinitions.apiextensions.k8s.io";
pub const NAMESPACE_KEY: &str = "namespaces";

/// One stored object.
#[derive(Debug)]
pub struct Obj {
    /// The object's JSON, in its storage version, with `metadata.resourceVersion` set.
    pub bytes: Bytes,
    pub rv: u64,
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl Obj {
    /// Parse the stored JSON (it was produced by serde_json, so it always parses).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}

pub type ObjRef = Arc<Obj>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub type_: EventType,
    pub key: Arc<str>,
    pub obj: ObjRef,
}

type Objects = BTreeMap<(String, String), ObjRef>;

struct Inner {
    rv: u64,
    objects: HashMap<Arc<str>, Objects>,
    events: VecDeque<Arc<Event>>,
    event_cap: usize,
    /// Watches and continue tokens from before this resourceVersion get 410 Expired.
    compacted_rv: u64,
    registry: Arc<Registry>,
    /// A CRD changed since the registry was built (rebuilt on the next read).
    registry_dirty: bool,
}

/// What a write closure decides.
pub enum Write {
    /// Store this object (create or replace). Its `metadata.resourceVersion` is set by the store.
    Put(Value),
    /// Delete the existing object.
    Delete,
}

pub struct Store {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<Event>>,
    /// Bumped by `expire_watches`: live watch streams end with an in-stream 410.
    expire_tx: watch::Sender<u64>,
}

/// The start of a watch: events to replay, then the live feed.
pub struct Subscription {
    pub replay: Vec<Arc<Event>>,
    pub rx: broadcast::Receiver<Arc<Event>>,
    pub expire_rx: watch::Receiver<u64>,
    /// The store's resourceVersion when the subscription was taken.
    pub rv: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    pub requested: u64,
    pub oldest: u64,
}

/// A JSON object of strings as a map (labels, selectors); anything else is empty.
pub(crate) fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn labels_of(v: &Value) -> BTreeMap<String, String> {
    string_map(v.pointer("/metadata/labels"))
}

fn meta_str<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

impl Store {
    pub fn new(event_cap: usize) -> Self {
        let (tx, _) = broadcast::channel(8192);
        let (expire_tx, _) = watch::channel(0);
        Store {
            inner: Mutex::new(Inner {
                rv: 1,
                objects: HashMap::new(),
                events: VecDeque::new(),
                event_cap: event_cap.max(16),
                compacted_rv: 0,
                registry: Arc::new(Registry::new([])),
                registry_dirty: false,
            }),
            tx,
            expire_tx,
        }
    }

    pub fn registry(&self) -> Arc<Registry> {
        let mut inner = self.inner.lock();
        if inner.registry_dirty {
            Self::rebuild_registry(&mut inner);
        }
        inner.registry.clone()
    }

    pub fn resource_version(&self) -> u64 {
        self.inner.lock().rv
    }

    pub fn get(&self, key: &str, ns: &str, name: &str) -> Option<ObjRef> {
        let inner = self.inner.lock();
        inner
            .objects
            .get(key)?
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    /// A consistent snapshot of one type (optionally one namespace), sorted by namespace/name,
    /// with the store's resourceVersion at that moment.
    pub fn list(&self, key: &str, ns: Option<&str>) -> (u64, Vec<ObjRef>) {
        let inner = self.inner.lock();
        let items = match inner.objects.get(key) {
            None => Vec::new(),
            Some(map) => match ns {
                None => map.values().cloned().collect(),
                Some(ns) => map
                    .range((ns.to_string(), String::new())..)
                    .take_while(|((n, _), _)| n == ns)
                    .map(|(_, o)| o.clone())
                    .collect(),
            },
        };
        (inner.rv, items)
    }

    pub fn count(&self, key: &str) -> usize {
        self.inner.lock().objects.get(key).map_or(0, |m| m.len())
    }

    /// Atomically read the current object and write what `f` decides. `f` returns `Ok(None)`
    /// for "no change" and may fail with an error of its own. Returns the stored object (the
    /// old one for a delete or no change).
    pub fn write<E>(
        &self,
        key: &str,
        ns: &str,
        name: &str,
        f: impl FnOnce(Option<&ObjRef>) -> Result<Option<Write>, E>,
    ) -> Result<Option<(EventType, ObjRef)>, E> {
        let mut inner = self.inner.lock();
        let existing = inner
            .objects
            .get(key)
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
            .cloned();
        let decision = f(existing.as_ref())?;
        Ok(match decision {
            None => None,
            Some(Write::Put(value)) => {
                let t = if existing.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                };
                Some((t, self.commit(&mut inner, key, value, t)))
            }
            Some(Write::Delete) => existing.map(|old| {
                (
                    EventType::Deleted,
                    self.remove_locked(&mut inner, key, ns, name, &old),
                )
            }),
        })
    }

    /// Store an object unconditionally (used by scenarios): create or replace.
    pub fn upsert(&self, key: &str, value: Value) -> ObjRef {
        let mut inner = self.inner.lock();
        let ns = meta_str(&value, "namespace").to_string();
        let name = meta_str(&value, "name").to_string();
        let exists = inner
            .objects
            .get(key)
            .is_some_and(|m| m.contains_key(&(ns, name)));
        let t = if exists {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.commit(&mut inner, key, value, t)
    }

    /// Delete an object unconditionally (used by scenarios).
    pub fn remove(&self, key: &str, ns: &str, name: &str) -> Option<ObjRef> {
        let mut inner = self.inner.lock();
        let old = inner
            .objects
            .get(key)?
            .get(&(ns.to_string(), name.to_string()))
            .cloned()?;
        Some(self.remove_locked(&mut inner, key, ns, name, &old))
    }

    fn commit(&self, inner: &mut Inner, key: &str, mut value: Value, t: EventType) -> ObjRef {
        inner.rv += 1;
        let rv = inner.rv;
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let obj = Arc::new(Obj {
            bytes: Bytes::from(serde_json::to_vec(&value).unwrap_or_default()),
            rv,
            namespace: meta_str(&value, "namespace").to_string(),
            name: meta_str(&value, "name").to_string(),
            labels: labels_of(&value),
        });
        let key: Arc<str> = inner
            .objects
            .get_key_value(key)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| Arc::from(key));
        inner
            .objects
            .entry(key.clone())
            .or_default()
            .insert((obj.namespace.clone(), obj.name.clone()), obj.clone());
        self.push_event(inner, rv, t, key.clone(), obj.clone());
        if &*key == CRD_KEY {
            inner.registry_dirty = true;
        }
        obj
    }

    fn remove_locked(
        &self,
        inner: &mut Inner,
        key: &str,
        ns: &str,
        name: &str,
        old: &ObjRef,
    ) -> ObjRef {
        if let Some(m) = inner.objects.get_mut(key) {
            m.remove(&(ns.to_string(), name.to_string()));
        }
        inner.rv += 1;
        let rv = inner.rv;
        // A deleted object is reported with the deletion's resourceVersion.
        let mut v = old.value();
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let gone = Arc::new(Obj {
            bytes: Bytes::from(serde_json::to_vec(&v).unwrap_or_default()),
            rv,
            namespace: old.namespace.clone(),
            name: old.name.clone(),
            labels: old.labels.clone(),
        });
        let key_arc: Arc<str> = Arc::from(key);
        self.push_event(inner, rv, EventType::Deleted, key_arc, gone.clone());
        if key == CRD_KEY {
            // Deleting a CRD deletes its objects, as on a real API server.
            if let Some(t) = from_crd(&v) {
                let doomed: Vec<ObjRef> = inner
                    .objects
                    .get(&*t.key)
                    .map(|m| m.values().cloned().collect())
                    .unwrap_or_default();
                for o in doomed {
                    let (n, nm) = (o.namespace.clone(), o.name.clone());
                    self.remove_locked(inner, &t.key, &n, &nm, &o);
                }
                inner.objects.remove(&*t.key);
            }
            inner.registry_dirty = true;
        } else if key == NAMESPACE_KEY {
            // Namespace deletion removes everything in it (immediately; no Terminating phase).
            let keys: Vec<Arc<str>> = inner.objects.keys().cloned().collect();
            for k in keys {
                let doomed: Vec<ObjRef> = inner
                    .objects
                    .get(&k)
                    .map(|m| {
                        m.range((name.to_string(), String::new())..)
                            .take_while(|((n, _), _)| n == name)
                            .map(|(_, o)| o.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                for o in doomed {
                    let nm = o.name.clone();
                    self.remove_locked(inner, &k, name, &nm, &o);
                }
            }
        }
        gone
    }

    fn push_event(&self, inner: &mut Inner, rv: u64, t: EventType, key: Arc<str>, obj: ObjRef) {
        let ev = Arc::new(Event {
            rv,
            type_: t,
            key,
            obj,
        });
        inner.events.push_back(ev.clone());
        while inner.events.len() > inner.event_cap {
            if let Some(old) = inner.events.pop_front() {
                inner.compacted_rv = inner.compacted_rv.max(old.rv);
            }
        }
        let _ = self.tx.send(ev);
    }

    fn rebuild_registry(inner: &mut Inner) {
        let crds: Vec<ResourceType> = inner
            .objects
            .get(CRD_KEY)
            .map(|m| m.values().filter_map(|o| from_crd(&o.value())).collect())
            .unwrap_or_default();
        inner.registry = Arc::new(Registry::new(crds));
        inner.registry_dirty = false;
    }

    /// Start a watch from `from_rv`: the events after it still in the ring, then the live feed.
    /// `None` means "from now, with the current state as ADDED events" (the caller lists).
    pub fn subscribe(&self, from_rv: Option<u64>) -> Result<Subscription, Expired> {
        let inner = self.inner.lock();
        let rx = self.tx.subscribe();
        let expire_rx = self.expire_tx.subscribe();
        let replay = match from_rv {
            None => Vec::new(),
            Some(from) => {
                if from < inner.compacted_rv {
                    return Err(Expired {
                        requested: from,
                        oldest: inner.compacted_rv,
                    });
                }
                inner
                    .events
                    .iter()
                    .filter(|e| e.rv > from)
                    .cloned()
                    .collect()
            }
        };
        Ok(Subscription {
            replay,
            rx,
            expire_rx,
            rv: inner.rv,
        })
    }

    /// Subscribe and take a snapshot of one type in the same critical section.
    pub fn subscribe_with_snapshot(
        &self,
        key: &str,
        ns: Option<&str>,
    ) -> (Vec<ObjRef>, Subscription) {
        let inner = self.inner.lock();
        let rx = self.tx.subscribe();
        let expire_rx = self.expire_tx.subscribe();
        let items = match inner.objects.get(key) {
            None => Vec::new(),
            Some(map) => map
                .values()
                .filter(|o| ns.is_none_or(|n| o.namespace == n))
                .cloned()
                .collect(),
        };
        (
            items,
            Subscription {
                replay: Vec::new(),
                rx,
                expire_rx,
                rv: inner.rv,
            },
        )
    }

    /// The oldest resourceVersion a watch or continue token may still start from.
    pub fn compacted_rv(&self) -> u64 {
        self.inner.lock().compacted_rv
    }

    /// Forget all history: every resume from an older resourceVersion gets 410 Expired, and
    /// live watch streams end with an in-stream 410 ERROR event.
    pub fn expire_watches(&self) {
        let mut inner = self.inner.lock();
        inner.events.clear();
        inner.compacted_rv = inner.rv;
        drop(inner);
        self.expire_tx.send_modify(|v| *v += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": {"app": name}}})
    }

    #[test]
    fn every_write_takes_the_next_resource_version_and_is_replayable() {
        let s = Store::new(100);
        let a = s.upsert("pods", pod("default", "a"));
        let b = s.upsert("pods", pod("default", "b"));
        assert_eq!(b.rv, a.rv + 1);
        assert_eq!(a.value()["metadata"]["resourceVersion"], a.rv.to_string());
        let sub = s.subscribe(Some(a.rv)).expect("not expired");
        assert_eq!(sub.replay.len(), 1);
        assert_eq!(sub.replay[0].obj.name, "b");
        let gone = s.remove("pods", "default", "a").expect("existed");
        assert_eq!(gone.rv, b.rv + 1);
        let (rv, items) = s.list("pods", Some("default"));
        assert_eq!(rv, gone.rv);
        assert_eq!(items.len(), 1);
    }

    #[test]
    fn resuming_before_the_ring_is_expired() {
        let s = Store::new(16);
        let first = s.upsert("pods", pod("default", "p0"));
        for i in 1..40 {
            s.upsert("pods", pod("default", &format!("p{i}")));
        }
        let e = s.subscribe(Some(first.rv)).err().expect("expired");
        assert!(e.oldest > first.rv);
        let live = s.subscribe(None).expect("live");
        s.expire_watches();
        assert!(
            live.expire_rx.has_changed().expect("sender alive"),
            "live watches are told"
        );
        assert!(s.subscribe(Some(s.resource_version() - 1)).is_err());
        assert!(s.subscribe(Some(s.resource_version())).is_ok());
    }

    #[test]
    fn deleting_a_namespace_deletes_its_objects() {
        let s = Store::new(100);
        s.upsert(
            NAMESPACE_KEY,
            json!({"metadata": {"name": "team-a"}, "kind": "Namespace"}),
        );
        s.upsert("pods", pod("team-a", "x"));
        s.upsert("pods", pod("team-b", "y"));
        s.remove(NAMESPACE_KEY, "", "team-a");
        assert_eq!(s.list("pods", None).1.len(), 1);
    }

    #[test]
    fn a_crd_write_changes_what_is_served() {
        let s = Store::new(100);
        assert!(
            s.registry()
                .lookup("networking.istio.io", "v1", "virtualservices")
                .is_none()
        );
        let vs = super::super::registry::istio_crds()
            .iter()
            .find(|c| c["spec"]["names"]["kind"] == "VirtualService")
            .cloned()
            .expect("vs crd");
        s.upsert(CRD_KEY, vs);
        assert!(
            s.registry()
                .lookup("networking.istio.io", "v1beta1", "virtualservices")
                .is_some()
        );
    }
}
