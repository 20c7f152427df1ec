//! Policies + fleet snapshot → Istio objects per cluster, conflicts, and a status per policy.
//! Pure and deterministic: the same inputs give byte-identical output (names, order, routes).
//! `../shared/policy-api.md` is the table this follows; docs/decisions.md records where it was
//! silent and what was chosen.

pub mod index;
pub mod report;
mod routes;

use crate::policy::{Policy, PolicyId, Spec, VirtualMeshSpec};
use index::{Dest, Index};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const POLICIES_ANNOTATION: &str = "meshdeck.io/policies";
pub const CLUSTER_ANNOTATION: &str = "meshdeck.io/cluster";
pub(crate) const DEFAULT_HOST_SUFFIX: &str = "global";

/// One generated Istio object.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub cluster: String,
    pub api_version: &'static str,
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// The policies it came from (empty for the per-destination default DestinationRule).
    pub sources: BTreeSet<PolicyId>,
    pub spec: Value,
}

impl crate::object::Identified for Generated {
    fn object_ref(&self) -> crate::object::ObjectRef {
        crate::object::ObjectRef::new(&self.cluster, self.kind, &self.namespace, &self.name)
    }
}

impl Generated {
    /// The whole object as it would be applied (labels and annotations included).
    pub fn to_object(&self) -> Value {
        let policies = crate::policy::annotation::format(&self.sources);
        json!({
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {MANAGED_BY: "meshdeck"},
                "annotations": {
                    CLUSTER_ANNOTATION: self.cluster,
                    POLICIES_ANNOTATION: policies,
                },
            },
            "spec": self.spec,
        })
    }
    fn key(&self) -> (&str, &str, &str, &str) {
        (&self.cluster, self.kind, &self.namespace, &self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Accepted,
    Warning,
    Conflicting,
    Invalid,
}

impl State {
    pub fn word(self) -> &'static str {
        match self {
            State::Accepted => "accepted",
            State::Warning => "warning",
            State::Conflicting => "conflicting",
            State::Invalid => "invalid",
        }
    }
}

/// What the translator says of one policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyStatus {
    pub policy: PolicyId,
    pub state: State,
    /// `cluster/namespace/name` → state for that destination.
    pub destinations: BTreeMap<String, State>,
    /// How many source workloads the policy's selectors match (None: not applicable).
    pub workloads: Option<usize>,
    /// The clusters whose objects this policy shapes.
    pub clusters: BTreeSet<String>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// What it does in plain words where that may surprise (an AccessPolicy denies every
    /// caller it does not allow).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The result of one translation.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Every object, sorted by cluster, kind, namespace, name.
    pub objects: Vec<Generated>,
    /// One per input policy, in input order.
    pub statuses: Vec<PolicyStatus>,
}

impl Output {
    pub fn find(
        &self,
        cluster: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<&Generated> {
        self.objects.iter().find(|o| {
            o.cluster == cluster && o.kind == kind && o.namespace == namespace && o.name == name
        })
    }
}

/// Keeps the fleet index between translations (the editor re-translates on every keystroke),
/// and the last translation: when only TrafficPolicies and AccessPolicies changed since, it
/// re-translates only what they can touch ([`Translator::translate`]).
pub struct Translator {
    index: Index,
    memo: Mutex<Option<Memo>>,
}

/// The last translation and what an incremental one needs of it.
struct Memo {
    policies: Vec<Policy>,
    output: Output,
    tags: Vec<Tag>,
    footprint: Vec<Vec<usize>>,
    /// destination → the policies whose footprint holds it (ascending)
    by_dest: Vec<Vec<usize>>,
    global: Arc<Global>,
}

/// An edit that touches more than half of a fleet larger than this is translated in full.
const FULL_ABOVE: usize = 1000;

/// How the last [`Translator::translate`] was done (for tests and benchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Every policy over every destination.
    Full,
    /// Nothing changed: the last output.
    Unchanged,
    /// Only these many destinations and policies were re-translated.
    Incremental {
        destinations: usize,
        policies: usize,
    },
}

impl Translator {
    pub fn new(snap: &crate::model::Snapshot) -> Translator {
        Translator {
            index: Index::new(snap),
            memo: Mutex::new(None),
        }
    }
    pub fn index(&self) -> &Index {
        &self.index
    }
    /// Translate `policies`. Byte-identical to a fresh translation of the same inputs; when
    /// the previous call had the same policies but for some TrafficPolicies or AccessPolicies
    /// (same identities, same order, same creation times), only the destinations those can
    /// change — closed over every policy touching them — are re-translated.
    pub fn translate(&self, policies: &[Policy]) -> Output {
        self.translate_with(policies, |out, _| out.clone())
    }

    /// [`Translator::translate`], saying how it was done.
    pub fn translate_with_pass(&self, policies: &[Policy]) -> (Output, Pass) {
        self.translate_with(policies, |out, pass| (out.clone(), pass))
    }

    /// [`Translator::translate`] without a copy: `f` reads the output where it is kept (the
    /// next translation starts from it). What `f` returns is returned.
    pub fn translate_with<R>(&self, policies: &[Policy], f: impl FnOnce(&Output, Pass) -> R) -> R {
        let mut memo = self.memo.lock().unwrap_or_else(|poisoned| {
            // a translation panicked half-way: what it kept cannot be trusted
            let mut m = poisoned.into_inner();
            *m = None;
            m
        });
        if let Some(m) = memo.as_mut()
            && let Some(pass) = m.update(&self.index, policies)
        {
            return f(&m.output, pass);
        }
        let raw = Run::new(&self.index, policies, None).run();
        if !raw.exact {
            // two objects with one identity: only a full translation gives the same answer
            *memo = None;
            return f(&raw.output, Pass::Full);
        }
        let mut by_dest: Vec<Vec<usize>> = vec![Vec::new(); self.index.dests.len()];
        for (p, fp) in raw.footprint.iter().enumerate() {
            for &d in fp {
                by_dest[d].push(p);
            }
        }
        let m = memo.insert(Memo {
            policies: policies.to_vec(),
            output: raw.output,
            tags: raw.tags,
            footprint: raw.footprint,
            by_dest,
            global: raw.global,
        });
        f(&m.output, Pass::Full)
    }
}

/// The destinations a policy's objects can depend on: what a TrafficPolicy or AccessPolicy
/// selects and where a traffic shift sends (mesh-wide kinds: none, they are never incremental).
fn footprint(ix: &Index, p: &Policy) -> Vec<usize> {
    match &p.spec {
        Spec::Traffic(t) => routes::with_targets(ix, t, &ix.select(&t.destination_selector)),
        Spec::Access(a) => ix.select(&a.destination_selector),
        _ => Vec::new(),
    }
}

/// The same policy, down to where its fields are where positions are in its messages (those
/// of TrafficPolicies and AccessPolicies name `file:line:col`; the mesh-wide kinds' do not).
fn same_policy(a: &Policy, b: &Policy) -> bool {
    let placed = matches!(a.spec, Spec::Traffic(_) | Spec::Access(_));
    a == b
        && (!placed
            || Arc::ptr_eq(&a.origin.located, &b.origin.located)
            || a.origin.located.same_places(&b.origin.located))
}

impl Memo {
    /// Re-translate incrementally into `self`, or None when only a full translation can be
    /// exact (then `self` may be spoilt: the caller replaces it).
    fn update(&mut self, ix: &Index, policies: &[Policy]) -> Option<Pass> {
        if policies.len() != self.policies.len() {
            return None;
        }
        let mut changed: Vec<usize> = Vec::new();
        for (i, (old, new)) in self.policies.iter().zip(policies).enumerate() {
            if old.kind() != new.kind()
                || old.meta.name != new.meta.name
                || old.namespace() != new.namespace()
            {
                return None;
            }
            if same_policy(old, new) {
                continue;
            }
            let local = matches!(old.spec, Spec::Traffic(_) | Spec::Access(_));
            if !local || old.meta.creation_timestamp != new.meta.creation_timestamp {
                return None;
            }
            changed.push(i);
        }
        if changed.is_empty() {
            return Some(Pass::Unchanged);
        }
        // The destinations the edit touches: the old and the new footprints.
        let n = ix.dests.len();
        let mut dest_on = vec![false; n];
        let mut queue: Vec<usize> = Vec::new();
        for &p in &changed {
            let fresh = footprint(ix, &policies[p]);
            for &d in &self.footprint[p] {
                if let Ok(k) = self.by_dest[d].binary_search(&p) {
                    self.by_dest[d].remove(k);
                }
            }
            for &d in &fresh {
                if let Err(k) = self.by_dest[d].binary_search(&p) {
                    self.by_dest[d].insert(k, p);
                }
            }
            for &d in self.footprint[p].iter().chain(&fresh) {
                if !dest_on[d] {
                    dest_on[d] = true;
                    queue.push(d);
                }
            }
            self.footprint[p] = fresh;
            self.policies[p] = policies[p].clone();
        }
        // Closed over every policy touching them, and every destination those touch.
        let mut policy_on = vec![false; policies.len()];
        for &p in &changed {
            policy_on[p] = true;
        }
        while let Some(d) = queue.pop() {
            for &q in &self.by_dest[d] {
                if policy_on[q] {
                    continue;
                }
                policy_on[q] = true;
                for &e in &self.footprint[q] {
                    if !dest_on[e] {
                        dest_on[e] = true;
                        queue.push(e);
                    }
                }
            }
        }
        let dests: Vec<usize> = (0..n).filter(|&d| dest_on[d]).collect();
        if dests.len() > FULL_ABOVE && dests.len() * 2 > n {
            return None; // most of a large fleet: a full run is as cheap
        }
        let (nd, np) = (dests.len(), policy_on.iter().filter(|x| **x).count());
        let scope = Scope {
            dests,
            dest_on: dest_on.clone(),
            policy_on: policy_on.clone(),
        };
        let raw = Run::new(ix, policies, Some((scope, Arc::clone(&self.global)))).run();
        if !raw.exact {
            return None;
        }
        // Splice: the objects of the destinations outside the scope stay, the scope's are
        // the new run's; both lists are sorted by identity, and one identity twice means
        // the two runs would not agree with a full one.
        let old_objects = std::mem::take(&mut self.output.objects);
        let old_tags = std::mem::take(&mut self.tags);
        let mut merged: Vec<(Generated, Tag)> = Vec::with_capacity(old_objects.len());
        let kept = old_objects
            .into_iter()
            .zip(old_tags)
            .filter(|(_, t)| t.unit.is_none_or(|d| !dest_on[d]));
        let mut fresh = raw.output.objects.into_iter().zip(raw.tags).peekable();
        for old in kept {
            while let Some(new) = fresh.next_if(|(f, _)| f.key() < old.0.key()) {
                merged.push(new);
            }
            if fresh.peek().is_some_and(|(f, _)| f.key() == old.0.key()) {
                return None;
            }
            merged.push(old);
        }
        merged.extend(fresh);
        (self.output.objects, self.tags) = merged.into_iter().unzip();
        for (p, st) in raw.output.statuses.into_iter().enumerate() {
            if policy_on[p] {
                self.output.statuses[p] = st;
            }
        }
        // The mesh-wide policies keep their statuses: their warnings come from their own
        // passes, and every cluster where a per-destination object names a VirtualMesh (a
        // default or federated DestinationRule) also holds one of its mesh-wide objects (its
        // PeerAuthentication under mTLS, the federated host's ServiceEntry), so its clusters
        // do not move either.
        Some(Pass::Incremental {
            destinations: nd,
            policies: np,
        })
    }
}

/// Translate once.
pub fn translate(policies: &[Policy], snap: &crate::model::Snapshot) -> Output {
    Run::new(&Index::new(snap), policies, None).run().output
}

/// Subset name → (labels, the policies asking for it).
type SubsetMap = BTreeMap<String, (BTreeMap<String, String>, BTreeSet<usize>)>;

/// An Istio kind: (apiVersion, kind).
pub type Kind = (&'static str, &'static str);
pub const VIRTUAL_SERVICE: Kind = ("networking.istio.io/v1", "VirtualService");
pub const DESTINATION_RULE: Kind = ("networking.istio.io/v1", "DestinationRule");
pub(crate) const SERVICE_ENTRY: Kind = ("networking.istio.io/v1", "ServiceEntry");
pub(crate) const GATEWAY: Kind = ("networking.istio.io/v1", "Gateway");
pub(crate) const AUTHORIZATION_POLICY: Kind = ("security.istio.io/v1", "AuthorizationPolicy");
pub(crate) const PEER_AUTHENTICATION: Kind = ("security.istio.io/v1", "PeerAuthentication");

/// Per-policy bookkeeping during a run.
#[derive(Default, Clone)]
struct Track {
    destinations: BTreeMap<String, State>,
    workloads: Option<usize>,
    clusters: BTreeSet<String>,
    errors: Vec<String>,
    warnings: Vec<String>,
    /// What the policy does that its reader may not expect, in plain words.
    notes: Vec<String>,
    /// The warnings already given (a policy can collect thousands; no quadratic dedup).
    seen: std::collections::HashSet<String>,
}

/// A mesh's settings from the VirtualMesh that owns it.
#[derive(Default, Clone)]
struct MeshSettings {
    vm: Option<usize>,
    mtls: bool,
}

/// A federated destination as seen from a client cluster.
#[derive(Clone)]
struct Federated {
    suffix: String,
    vm: usize,
}

/// What the mesh-wide passes (VirtualMeshes, VirtualDestinations) decide, which the
/// per-destination passes read. An incremental run reuses it when those policies are unchanged.
#[derive(Default, Clone)]
struct Global {
    mesh: Vec<MeshSettings>,
    /// dest → client clusters it is federated into (cluster → settings)
    federated: HashMap<usize, BTreeMap<String, Federated>>,
    /// Federated hosts' virtual IPs, and the addresses taken.
    vips: BTreeMap<String, String>,
    vip_used: BTreeSet<u32>,
    /// Federated destinations served by their home gateway: (dest, suffix, gateway
    /// namespace, VirtualMesh) — their DestinationRules follow the routes.
    served: Vec<(usize, String, String, usize)>,
}

/// What an incremental run recomputes: these destinations' objects and these policies'
/// statuses (the closure of an edit: every policy touching a destination in it, and every
/// destination those policies touch).
struct Scope {
    dests: Vec<usize>,
    dest_on: Vec<bool>,
    policy_on: Vec<bool>,
}

/// Where a generated object came from: the destination it is about (None: a mesh-wide
/// object of a VirtualMesh or VirtualDestination), and its source policies' indexes.
#[derive(Clone, Debug)]
struct Tag {
    unit: Option<usize>,
    sources: Vec<usize>,
}

pub(crate) struct Run<'a> {
    ix: &'a Index,
    policies: &'a [Policy],
    /// Policy indexes, oldest first (Gloo Mesh: the older policy wins).
    order: Vec<usize>,
    rank: Vec<usize>,
    track: Vec<Track>,
    g: Arc<Global>,
    scope: Option<Scope>,
    /// The destination whose objects are being emitted.
    unit: Option<usize>,
    objects: Vec<Generated>,
    tags: Vec<Tag>,
    /// The destinations each TrafficPolicy or AccessPolicy can change ([`footprint`]).
    footprint: Vec<Vec<usize>>,
    /// DestinationRule subsets requested by traffic shifts: (cluster, host) → name →
    /// (labels, the policies asking for it)
    subsets: BTreeMap<(String, String), SubsetMap>,
}

impl<'a> Run<'a> {
    fn new(ix: &'a Index, policies: &'a [Policy], scope: Option<(Scope, Arc<Global>)>) -> Run<'a> {
        let mut order: Vec<usize> = (0..policies.len()).collect();
        order.sort_by(|&a, &b| policies[a].precedence(&policies[b]).then(a.cmp(&b)));
        let mut rank = vec![0; policies.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i] = r;
        }
        let (scope, g) = match scope {
            Some((s, g)) => (Some(s), g),
            None => (
                None,
                Arc::new(Global {
                    mesh: vec![MeshSettings::default(); ix.meshes.len()],
                    ..Global::default()
                }),
            ),
        };
        Run {
            ix,
            policies,
            order,
            rank,
            track: vec![Track::default(); policies.len()],
            g,
            scope,
            unit: None,
            objects: Vec::new(),
            tags: Vec::new(),
            footprint: vec![Vec::new(); policies.len()],
            subsets: BTreeMap::new(),
        }
    }

    fn dest_on(&self, d: usize) -> bool {
        self.scope.as_ref().is_none_or(|s| s.dest_on[d])
    }

    fn policy_on(&self, p: usize) -> bool {
        self.scope.as_ref().is_none_or(|s| s.policy_on[p])
    }

    /// The destinations this run translates, in index order.
    fn dest_list(&self) -> Vec<usize> {
        match &self.scope {
            Some(s) => s.dests.clone(),
            None => (0..self.ix.dests.len()).collect(),
        }
    }

    /// The Gloo Mesh rule: `newer` is rejected for `key` (a destination, mesh or host) with
    /// `error`, and `older`, which keeps it, is told `told`.
    fn reject(&mut self, newer: usize, older: usize, key: String, error: String, told: String) {
        self.track[newer].errors.push(error);
        self.track[newer]
            .destinations
            .insert(key, State::Conflicting);
        self.warn(older, told);
    }

    fn warn(&mut self, p: usize, msg: String) {
        let t = &mut self.track[p];
        if t.seen.insert(msg.clone()) {
            t.warnings.push(msg);
        }
    }

    fn id(&self, p: usize) -> PolicyId {
        self.policies[p].id()
    }

    fn emit(
        &mut self,
        cluster: &str,
        (api_version, kind): Kind,
        namespace: &str,
        name: &str,
        sources: BTreeSet<usize>,
        spec: Value,
    ) {
        self.tags.push(Tag {
            unit: self.unit,
            sources: sources.iter().copied().collect(),
        });
        self.objects.push(Generated {
            cluster: cluster.to_string(),
            api_version,
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
            sources: sources.iter().map(|&p| self.id(p)).collect(),
            spec,
        });
    }

    fn run(mut self) -> Raw {
        self.check_selectors();
        if self.scope.is_none() {
            self.virtual_meshes();
        }
        routes::traffic(&mut self);
        self.federation_servers();
        self.access();
        if self.scope.is_none() {
            self.virtual_destinations();
        }
        self.finish()
    }

    // -----------------------------------------------------------------------------------------
    // Selectors against the fleet

    /// `file:line:col: path` of a field of policy `p` (the path alone when unplaced).
    fn at(&self, p: usize, path: &str) -> String {
        let o = &self.policies[p].origin;
        match o.located.value_pos(path).filter(|x| x.line > 0) {
            Some(x) => format!("{}:{}:{}: {path}", o.name, x.line, x.col),
            None => path.to_string(),
        }
    }

    /// Names in selectors that the fleet does not have: a ref to a destination that does not
    /// exist makes the policy invalid for it (Gloo: `Destination <name>.<ns>.<cluster> not
    /// found`); a cluster or namespace no matcher can match is a warning. Each names its
    /// place and the nearest real name.
    fn check_selectors(&mut self) {
        let clusters: Vec<String> = self.ix.namespaces.keys().cloned().collect();
        let all_ns: BTreeSet<String> = self.ix.namespaces.values().flatten().cloned().collect();
        for p in 0..self.policies.len() {
            if !self.policy_on(p) {
                continue;
            }
            let (dests, workloads, identities) = match &self.policies[p].spec {
                Spec::Traffic(t) => (&t.destination_selector, &t.source_selector[..], &[][..]),
                Spec::Access(a) => (&a.destination_selector, &[][..], &a.source_selector[..]),
                _ => continue,
            };
            let mut errors: Vec<(String, String)> = Vec::new();
            let mut warnings: Vec<String> = Vec::new();
            let matcher = |base: &str, clusters_of: &[String], namespaces_of: &[String]| {
                let mut out = Vec::new();
                for (k, c) in clusters_of.iter().enumerate() {
                    if c != "*" && !clusters.contains(c) {
                        let names: Vec<&str> = clusters.iter().map(String::as_str).collect();
                        out.push(format!(
                            "{}: cluster {c:?} is not in the fleet{}",
                            self.at(p, &format!("{base}.clusters[{k}]")),
                            crate::policy::did_you_mean(c, &names)
                        ));
                    }
                }
                for (k, n) in namespaces_of.iter().enumerate() {
                    if n != "*" && !all_ns.contains(n) {
                        let names: Vec<&str> = all_ns.iter().map(String::as_str).collect();
                        out.push(format!(
                            "{}: namespace {n:?} is in no cluster{}",
                            self.at(p, &format!("{base}.namespaces[{k}]")),
                            crate::policy::did_you_mean(n, &names)
                        ));
                    }
                }
                out
            };
            for (i, d) in dests.iter().enumerate() {
                let base = format!("spec.destinationSelector[{i}]");
                if let Some(m) = &d.kube_service_matcher {
                    warnings.extend(matcher(
                        &format!("{base}.kubeServiceMatcher"),
                        &m.clusters,
                        &m.namespaces,
                    ));
                }
                if let Some(r) = &d.kube_service_refs {
                    for (j, sref) in r.services.iter().enumerate() {
                        if self
                            .ix
                            .dest(&sref.cluster_name, &sref.namespace, &sref.name)
                            .is_some()
                        {
                            continue;
                        }
                        let at = format!("{base}.kubeServiceRefs.services[{j}]");
                        let hint = if !clusters.contains(&sref.cluster_name) {
                            let names: Vec<&str> = clusters.iter().map(String::as_str).collect();
                            format!(
                                "{}: cluster {:?} is not in the fleet{}",
                                self.at(p, &format!("{at}.clusterName")),
                                sref.cluster_name,
                                crate::policy::did_you_mean(&sref.cluster_name, &names)
                            )
                        } else {
                            let names: Vec<&str> = self
                                .ix
                                .dests
                                .iter()
                                .filter(|x| {
                                    *x.cluster == sref.cluster_name && x.namespace == sref.namespace
                                })
                                .map(|x| x.name.as_str())
                                .collect();
                            format!(
                                "{}: Destination {}.{}.{} not found{}",
                                self.at(p, &format!("{at}.name")),
                                sref.name,
                                sref.namespace,
                                sref.cluster_name,
                                crate::policy::did_you_mean(&sref.name, &names)
                            )
                        };
                        errors.push((
                            format!("{}/{}/{}", sref.cluster_name, sref.namespace, sref.name),
                            hint,
                        ));
                    }
                }
            }
            for (i, w) in workloads.iter().enumerate() {
                if let Some(m) = &w.kube_workload_matcher {
                    warnings.extend(matcher(
                        &format!("spec.sourceSelector[{i}].kubeWorkloadMatcher"),
                        &m.clusters,
                        &m.namespaces,
                    ));
                }
            }
            for (i, id) in identities.iter().enumerate() {
                if let Some(m) = &id.kube_identity_matcher {
                    warnings.extend(matcher(
                        &format!("spec.sourceSelector[{i}].kubeIdentityMatcher"),
                        &m.clusters,
                        &m.namespaces,
                    ));
                }
            }
            for w in warnings {
                self.warn(p, w);
            }
            for (dest, e) in errors {
                self.track[p].errors.push(e);
                self.track[p].destinations.insert(dest, State::Invalid);
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // VirtualMesh

    fn virtual_meshes(&mut self) {
        self.unit = None;
        let order = self.order.clone();
        for &p in &order {
            let Spec::VirtualMesh(vm) = &self.policies[p].spec else {
                continue;
            };
            let mut members: Vec<usize> = Vec::new();
            for (i, r) in vm.meshes.iter().enumerate() {
                match self.ix.mesh(&r.name) {
                    None => {
                        let known: Vec<&str> =
                            self.ix.meshes.iter().map(|m| m.name.as_str()).collect();
                        self.warn(
                            p,
                            format!(
                                "spec.meshes[{i}]: mesh {:?} not found in the fleet{}",
                                r.name,
                                crate::policy::did_you_mean(&r.name, &known)
                            ),
                        );
                    }
                    Some(m) => match self.g.mesh[m].vm {
                        Some(other) => {
                            let msg = format!(
                                "mesh {} already belongs to {} (older policy wins)",
                                r.name,
                                self.id(other)
                            );
                            let newer = self.id(p);
                            self.reject(
                                p,
                                other,
                                format!("mesh/{}", r.name),
                                format!("conflict: {msg}"),
                                format!("{newer} also claims mesh {} and was rejected (older policy wins)", r.name),
                            );
                        }
                        None => {
                            Arc::make_mut(&mut self.g).mesh[m] = MeshSettings {
                                vm: Some(p),
                                mtls: vm.mtls_config.is_some(),
                            };
                            members.push(m);
                        }
                    },
                }
            }
            self.virtual_mesh_objects(p, vm, &members);
        }
    }

    fn virtual_mesh_objects(&mut self, p: usize, vm: &VirtualMeshSpec, members: &[usize]) {
        let src: BTreeSet<usize> = [p].into();
        for &m in members {
            let mesh = self.ix.meshes[m].clone();
            self.track[p]
                .destinations
                .insert(format!("mesh/{}", mesh.name), State::Accepted);
            if vm.mtls_config.is_some() {
                self.emit(
                    &mesh.cluster,
                    PEER_AUTHENTICATION,
                    &mesh.namespace,
                    "default",
                    src.clone(),
                    json!({"mtls": {"mode": "STRICT"}}),
                );
            }
            if vm.global_access_policy == crate::policy::GlobalAccess::Enabled {
                self.emit(
                    &mesh.cluster,
                    AUTHORIZATION_POLICY,
                    &mesh.namespace,
                    "global-access-policy",
                    src.clone(),
                    json!({}),
                );
                // every ingress gateway, so north-south and federated traffic still enters
                for g in &mesh.gateways {
                    self.emit(
                        &mesh.cluster,
                        AUTHORIZATION_POLICY,
                        &g.namespace,
                        &format!("{}-allow-all", g.name),
                        src.clone(),
                        json!({"selector": {"matchLabels": g.selector}, "action": "ALLOW", "rules": [{}]}),
                    );
                }
                if mesh.gateways.is_empty() {
                    self.warn(
                        p,
                        format!(
                            "cluster {} has no ingress gateway: with globalAccessPolicy ENABLED nothing can enter the mesh from outside",
                            mesh.cluster
                        ),
                    );
                }
            }
        }
        let Some(fed) = &vm.federation else { return };
        let suffix = fed
            .host_suffix
            .clone()
            .unwrap_or_else(|| DEFAULT_HOST_SUFFIX.to_string());
        // Which destinations are federated: selected, in a member mesh, in the mesh.
        let mut chosen: BTreeSet<usize> = BTreeSet::new();
        if fed.selectors.is_empty() {
            for (i, d) in self.ix.dests.iter().enumerate() {
                if d.in_mesh && members.contains(&d.mesh) {
                    chosen.insert(i);
                }
            }
        } else {
            for sel in &fed.selectors {
                let meshes: Vec<usize> = if sel.meshes.is_empty() {
                    members.to_vec()
                } else {
                    sel.meshes
                        .iter()
                        .filter_map(|r| self.ix.mesh(&r.name))
                        .filter(|m| members.contains(m))
                        .collect()
                };
                for i in self.ix.select(&sel.destination_selectors) {
                    let d = &self.ix.dests[i];
                    if d.in_mesh && meshes.contains(&d.mesh) {
                        chosen.insert(i);
                    }
                }
            }
        }
        if chosen.is_empty() {
            self.warn(
                p,
                "spec.federation: selects no destination in the member meshes".into(),
            );
        }
        // (cluster, gateway namespace, selector, TLS container port) of each server cluster
        let mut servers: BTreeMap<String, (String, String, BTreeMap<String, String>, u32)> =
            BTreeMap::new();
        for &i in &chosen {
            let d = self.ix.dests[i].clone();
            let home = self.ix.meshes[d.mesh].clone();
            let gw = home.federation_gateway().cloned();
            let entry = match (&gw, fed.flat_network) {
                (_, true) => None,
                (Some(g), false) => match (&g.address, g.tls) {
                    (Some(a), Some((container, external))) => {
                        Some((a.clone(), container, external, g.clone()))
                    }
                    _ => None,
                },
                (None, false) => None,
            };
            if !fed.flat_network && entry.is_none() {
                self.warn(
                    p,
                    format!(
                        "cluster {} has no ingress gateway with an external address and a port named tls in {}: its services cannot be federated",
                        d.cluster, home.namespace
                    ),
                );
                continue;
            }
            let host = d.federated_host(&suffix);
            let vip = self.virtual_ip(&host);
            let ports: Vec<Value> = d
                .ports
                .iter()
                .map(|(n, num, proto, _)| json!({"number": num, "name": port_name(n, *num, proto), "protocol": proto}))
                .collect();
            // the pods behind the destination, with their labels, reached at their own ports
            // (only a flat network reaches them so: those endpoints follow every rollout)
            let pods = self.ix.pods(&d);
            let pod_endpoints: Vec<Value> = pods
                .iter()
                .map(|p| {
                    let ports: Map<String, Value> = d
                        .ports
                        .iter()
                        .map(|(n, num, proto, target)| (port_name(n, *num, proto), json!(target)))
                        .collect();
                    json!({"address": &p.ip, "ports": ports, "labels": stable_labels(&p.labels)})
                })
                .collect();
            // the distinct label sets a subset can select (one gateway endpoint each: a
            // rollout or a scale change leaves them as they are)
            let label_sets: BTreeSet<BTreeMap<&str, &str>> =
                pods.iter().map(|p| stable_labels(&p.labels)).collect();
            if pods.is_empty() {
                self.warn(
                    p,
                    format!(
                        "{} has no pods: its federated host has no endpoints",
                        d.id()
                    ),
                );
            }
            let name = federated_name(&d);
            for &m in members {
                let client = self.ix.meshes[m].clone();
                if client.cluster == d.cluster {
                    continue;
                }
                Arc::make_mut(&mut self.g)
                    .federated
                    .entry(i)
                    .or_default()
                    .insert(
                        client.cluster.to_string(),
                        Federated {
                            suffix: suffix.clone(),
                            vm: p,
                        },
                    );
                // through the home gateway (its external TLS port), one endpoint per distinct
                // label set of the backing pods so client-side subsets select them; or the pods
                // themselves on a flat network
                let (resolution, endpoints): (&str, Vec<Value>) = match &entry {
                    None => ("STATIC", pod_endpoints.clone()),
                    Some((address, _, external, _)) => {
                        let eps = label_sets
                            .iter()
                            .map(|labels| {
                                let ports: Map<String, Value> = d
                                    .ports
                                    .iter()
                                    .map(|(n, num, proto, _)| {
                                        (port_name(n, *num, proto), json!(external))
                                    })
                                    .collect();
                                json!({"address": address, "ports": ports, "labels": labels})
                            })
                            .collect();
                        ("DNS", eps)
                    }
                };
                let mut se = json!({
                    "hosts": [host],
                    "addresses": [vip],
                    "location": "MESH_INTERNAL",
                    "resolution": resolution,
                    "ports": ports,
                });
                if !endpoints.is_empty() {
                    se["endpoints"] = Value::Array(endpoints);
                }
                self.emit(
                    &client.cluster,
                    SERVICE_ENTRY,
                    &client.namespace,
                    &name,
                    src.clone(),
                    se,
                );
            }
            // The server side: the home gateway must know the federated host, or it has
            // nowhere to send a request for it: a local ServiceEntry that selects the backing
            // pods (`workloadSelector`, so Istio follows them and the object does not change
            // with a rollout), in the destination's namespace (a selector sees only its own)
            // and exported only to the gateway's; its DestinationRule comes after the routes,
            // with their subsets.
            if let Some((_, container, _, g)) = &entry {
                servers.insert(
                    d.cluster.to_string(),
                    (
                        g.namespace.clone(),
                        g.name.clone(),
                        g.selector.clone(),
                        *container,
                    ),
                );
                let server_ports: Vec<Value> = d
                    .ports
                    .iter()
                    .map(|(n, num, proto, target)| {
                        let mut port = json!({"number": num, "name": port_name(n, *num, proto), "protocol": proto});
                        if target != num {
                            port["targetPort"] = json!(target);
                        }
                        port
                    })
                    .collect();
                let se = json!({
                    "hosts": [host],
                    "addresses": [vip],
                    "exportTo": [&*g.namespace],
                    "location": "MESH_INTERNAL",
                    "resolution": "STATIC",
                    "ports": server_ports,
                    "workloadSelector": {"labels": &*d.selector},
                });
                self.emit(
                    &d.cluster,
                    SERVICE_ENTRY,
                    &d.namespace,
                    &name,
                    src.clone(),
                    se,
                );
                Arc::make_mut(&mut self.g)
                    .served
                    .push((i, suffix.clone(), g.namespace.clone(), p));
            }
        }
        for (cluster, (ns, _, selector, container)) in servers {
            self.emit(
                &cluster,
                GATEWAY,
                &ns,
                &format!("meshdeck-federation-{suffix}"),
                src.clone(),
                json!({
                    "selector": selector,
                    "servers": [{
                        "port": {"number": container, "name": "tls", "protocol": "TLS"},
                        "tls": {"mode": "AUTO_PASSTHROUGH"},
                        "hosts": [format!("*.{suffix}")],
                    }],
                }),
            );
        }
    }

    /// A deterministic virtual IP in 240.0.0.0/4 for a federated host, unique in the run.
    fn virtual_ip(&mut self, host: &str) -> String {
        let g = Arc::make_mut(&mut self.g);
        if let Some(ip) = g.vips.get(host) {
            return ip.clone();
        }
        // FNV-1a: stable across runs and platforms
        let mut h: u32 = 0x811c_9dc5;
        for b in host.bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        let mut n = h & 0x0fff_ffff;
        loop {
            // 240.0.0.0 + n, never the broadcast address
            let ip = 0xf000_0000u32 | n;
            let [a, b, c, d] = ip.to_be_bytes();
            let text = format!("{a}.{b}.{c}.{d}");
            if ip != u32::MAX && !g.vip_used.contains(&ip) {
                g.vip_used.insert(ip);
                g.vips.insert(host.to_string(), text.clone());
                return text;
            }
            n = (n + 1) & 0x0fff_ffff;
        }
    }

    /// The federated hosts' DestinationRules in their home clusters: the same subsets and
    /// traffic policy the clients were given, visible only to the gateway's namespace.
    fn federation_servers(&mut self) {
        let g = Arc::clone(&self.g);
        for (d, suffix, ns, vm) in &g.served {
            let d = *d;
            if !self.dest_on(d) {
                continue;
            }
            self.unit = Some(d);
            let ix = self.ix;
            let dest = &ix.dests[d];
            let host = dest.federated_host(suffix);
            let mut subsets: BTreeMap<String, Value> = BTreeMap::new();
            let mut policy: Option<Value> = None;
            let mut sources: BTreeSet<usize> = [*vm].into();
            for (o, tag) in self.objects.iter().zip(&self.tags) {
                if tag.unit == Some(d)
                    && o.kind == DESTINATION_RULE.1
                    && o.spec["host"] == host.as_str()
                {
                    for s in o.spec["subsets"].as_array().into_iter().flatten() {
                        if let Some(n) = s["name"].as_str() {
                            subsets.entry(n.to_string()).or_insert_with(|| s.clone());
                        }
                    }
                    if policy.is_none() {
                        policy = o.spec.get("trafficPolicy").cloned();
                    }
                    sources.extend(tag.sources.iter().copied());
                }
            }
            let mut spec = json!({"host": host, "exportTo": ["."]});
            if let Some(tp) = policy {
                spec["trafficPolicy"] = tp;
            }
            if !subsets.is_empty() {
                spec["subsets"] = Value::Array(subsets.into_values().collect());
            }
            let (cluster, name) = (dest.cluster.to_string(), federated_name(dest));
            self.emit(&cluster, DESTINATION_RULE, ns, &name, sources, spec);
        }
        self.unit = None;
    }

    /// The host a client in `cluster` uses for destination `d`, if it can reach it.
    fn host_from(&self, d: usize, cluster: &str) -> Option<String> {
        let dest = &self.ix.dests[d];
        if &*dest.cluster == cluster {
            return Some(dest.local_host());
        }
        self.g
            .federated
            .get(&d)
            .and_then(|m| m.get(cluster))
            .map(|f| dest.federated_host(&f.suffix))
    }

    // -----------------------------------------------------------------------------------------
    // AccessPolicy

    fn access(&mut self) {
        // destination → AccessPolicies (oldest first)
        let mut per_dest: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        let order = self.order.clone();
        for &p in &order {
            let Spec::Access(ap) = &self.policies[p].spec else {
                continue;
            };
            if !self.policy_on(p) {
                continue;
            }
            let dests = self.ix.select(&ap.destination_selector);
            self.footprint[p] = dests.clone();
            if dests.is_empty() {
                self.warn(p, "spec.destinationSelector matches no destination".into());
            }
            let n = self
                .ix
                .workloads
                .iter()
                .filter(|w| {
                    crate::policy::select::identity_selected(
                        &ap.source_selector,
                        &w.cluster,
                        &w.namespace,
                        &w.service_account,
                    )
                })
                .count();
            self.track[p].workloads = Some(n);
            if n == 0 {
                self.warn(p, "spec.sourceSelector matches no workload identity".into());
            }
            for d in dests {
                let dest = &self.ix.dests[d];
                let id = dest.id();
                if dest.selector.is_empty() {
                    self.warn(
                        p,
                        format!(
                            "{id} has no pod selector: an AuthorizationPolicy cannot select it"
                        ),
                    );
                    self.track[p].destinations.insert(id, State::Warning);
                    continue;
                }
                if let Err(why) = self.access_rule(p) {
                    self.track[p].errors.push(format!("{id}: {why}"));
                    self.track[p].destinations.insert(id, State::Invalid);
                    continue;
                }
                self.track[p].destinations.insert(id, State::Accepted);
                per_dest.entry(d).or_default().push(p);
            }
        }
        for (d, ps) in per_dest {
            self.unit = Some(d);
            let dest = self.ix.dests[d].clone();
            let rules: Vec<Value> = ps
                .iter()
                .filter_map(|&p| self.access_rule(p).ok())
                .collect();
            // In Istio an ALLOW policy that selects a workload denies whatever it does not
            // allow: say so, in plain words, to every policy that makes one.
            let callers: Vec<String> = ps.iter().map(|&p| self.id(p).to_string()).collect();
            for &p in &ps {
                let note = format!(
                    "{} in {}@{}: every caller not allowed by {} is denied",
                    dest.name,
                    dest.namespace,
                    dest.cluster,
                    callers.join(", ")
                );
                self.track[p].notes.push(note);
            }
            self.emit(
                &dest.cluster,
                AUTHORIZATION_POLICY,
                &dest.namespace,
                &dest.name,
                ps.iter().copied().collect(),
                json!({
                    "selector": {"matchLabels": dest.selector},
                    "action": "ALLOW",
                    "rules": rules,
                }),
            );
        }
        self.unit = None;
    }

    /// The trust domains of the meshes on a cluster; an empty name: every mesh's in the fleet.
    fn trust_domains(&self, cluster: &str) -> Result<BTreeSet<String>, String> {
        let tds: BTreeSet<String> = self
            .ix
            .meshes
            .iter()
            .filter(|m| cluster.is_empty() || &*m.cluster == cluster)
            .map(|m| m.trust_domain.clone())
            .collect();
        if tds.is_empty() {
            return Err(if cluster.is_empty() {
                "no mesh in the fleet: no trust domain to name callers in".to_string()
            } else {
                format!("cluster {cluster} has no mesh: no trust domain to name its callers in")
            });
        }
        if tds.iter().any(String::is_empty) {
            return Err(format!("a mesh on {cluster} has an empty trust domain"));
        }
        Ok(tds)
    }

    /// One AccessPolicy's rule for a destination (one rule per policy).
    fn access_rule(&self, p: usize) -> Result<Value, String> {
        let Spec::Access(ap) = &self.policies[p].spec else {
            return Ok(json!({}));
        };
        let mut from: Vec<Value> = Vec::new();
        for sel in &ap.source_selector {
            if let Some(m) = &sel.kube_identity_matcher {
                if m.clusters.is_empty() {
                    if m.namespaces.is_empty() {
                        from.push(json!({"source": {"principals": ["*"]}}));
                    } else {
                        from.push(json!({"source": {"namespaces": m.namespaces}}));
                    }
                } else {
                    let mut principals: BTreeSet<String> = BTreeSet::new();
                    for c in &m.clusters {
                        for td in self.trust_domains(c)? {
                            if m.namespaces.is_empty() {
                                principals.insert(format!("{td}/ns/*"));
                            }
                            for ns in &m.namespaces {
                                principals.insert(format!("{td}/ns/{ns}/sa/*"));
                            }
                        }
                    }
                    from.push(json!({"source": {"principals": principals}}));
                }
            }
            if let Some(r) = &sel.kube_service_account_refs {
                let mut principals: BTreeSet<String> = BTreeSet::new();
                for sa in &r.service_accounts {
                    // no clusterName: the account in every mesh's trust domain
                    for td in self.trust_domains(&sa.cluster_name)? {
                        principals.insert(format!("{td}/ns/{}/sa/{}", sa.namespace, sa.name));
                    }
                }
                from.push(json!({"source": {"principals": principals}}));
            }
        }
        let mut op = Map::new();
        if !ap.allowed_paths.is_empty() {
            op.insert("paths".into(), json!(ap.allowed_paths));
        }
        if !ap.allowed_methods.is_empty() {
            op.insert("methods".into(), json!(ap.allowed_methods));
        }
        if !ap.allowed_ports.is_empty() {
            let ports: Vec<String> = ap.allowed_ports.iter().map(u32::to_string).collect();
            op.insert("ports".into(), json!(ports));
        }
        let mut rule = Map::new();
        if !from.is_empty() {
            rule.insert("from".into(), Value::Array(from));
        }
        if !op.is_empty() {
            rule.insert("to".into(), json!([{"operation": op}]));
        }
        Ok(Value::Object(rule))
    }

    // -----------------------------------------------------------------------------------------
    // VirtualDestination

    fn virtual_destinations(&mut self) {
        self.unit = None;
        let order = self.order.clone();
        let mut hostnames: HashMap<String, usize> = HashMap::new();
        for &p in &order {
            let Spec::VirtualDestination(vd) = &self.policies[p].spec else {
                continue;
            };
            if let Some(&other) = hostnames.get(&vd.hostname) {
                let msg = format!(
                    "hostname {} is already served by {} (older policy wins)",
                    vd.hostname,
                    self.id(other)
                );
                let newer = self.id(p);
                self.reject(
                    p,
                    other,
                    format!("host/{}", vd.hostname),
                    format!("conflict: {msg}"),
                    format!("{newer} also serves {} and was rejected", vd.hostname),
                );
                continue;
            }
            hostnames.insert(vd.hostname.clone(), p);
            // exported to the meshes of a VirtualMesh, or to a list of meshes
            let members: Vec<usize> = match (&vd.virtual_mesh, &vd.mesh_list) {
                (Some(r), _) => (0..self.ix.meshes.len())
                    .filter(|&m| {
                        self.g.mesh[m]
                            .vm
                            .is_some_and(|v| self.policies[v].meta.name == r.name)
                    })
                    .collect(),
                (None, Some(l)) => l
                    .meshes
                    .iter()
                    .filter_map(|r| self.ix.mesh(&r.name))
                    .collect(),
                (None, None) => Vec::new(),
            };
            if members.is_empty() {
                self.warn(
                    p,
                    "spec: the VirtualMesh or mesh list has no member mesh in the fleet; nothing generated".into(),
                );
                continue;
            }
            let mut backing: Vec<usize> = Vec::new();
            if let Some(st) = &vd.static_ {
                for (i, sd) in st.destinations.iter().enumerate() {
                    let Some(k) = &sd.kube_service else { continue };
                    match self.ix.dest(&k.cluster_name, &k.namespace, &k.name) {
                        Some(d) => backing.push(d),
                        None => self.warn(
                            p,
                            format!(
                                "spec.static.destinations[{i}]: service {}/{} not found in cluster {}",
                                k.namespace, k.name, k.cluster_name
                            ),
                        ),
                    }
                }
            }
            if let Some(l) = &vd.localized {
                backing.extend(self.ix.select(&l.destination_selectors));
                if backing.is_empty() {
                    self.warn(
                        p,
                        "spec.localized.destinationSelectors: selects no destination".into(),
                    );
                }
            }
            if backing.is_empty() {
                continue;
            }
            let proto = vd.port.protocol.to_ascii_uppercase();
            let pname = format!("{}-{}", proto.to_ascii_lowercase(), vd.port.number);
            let src: BTreeSet<usize> = [p].into();
            let vip = self.virtual_ip(&vd.hostname);
            // Strict priority (static): endpoint i carries failover labels 1..=(n-1-i), and the
            // DestinationRule's failoverPriority lists them with their value, so Envoy gives
            // endpoint i priority i: the first healthy backing service in list order wins.
            let n = backing.len();
            let strict = vd.static_.is_some() && n > 1;
            let failover_labels: Vec<String> = (1..n)
                .map(|k| format!("meshdeck.io/failover-{k}"))
                .collect();
            for m in members {
                let client = self.ix.meshes[m].clone();
                let mut endpoints = Vec::new();
                for (prio, &d) in backing.iter().enumerate() {
                    let dest = self.ix.dests[d].clone();
                    self.track[p]
                        .destinations
                        .insert(dest.id(), State::Accepted);
                    let svc_port = dest.ports.first().map(|x| x.1).unwrap_or(vd.port.number);
                    let mut labels = Map::new();
                    labels.insert("topology.istio.io/cluster".into(), json!(&*dest.cluster));
                    if strict {
                        for l in failover_labels.iter().take(n - 1 - prio) {
                            labels.insert(l.clone(), json!("true"));
                        }
                    }
                    let mut ep = if dest.cluster == client.cluster {
                        json!({"address": dest.local_host(), "ports": {&pname: svc_port}})
                    } else {
                        let home = &self.ix.meshes[dest.mesh];
                        match home
                            .federation_gateway()
                            .and_then(|g| Some((g.address.clone()?, g.tls?.1)))
                        {
                            Some((a, port)) => {
                                // the remote gateway must pass the hostname's TLS through: a
                                // live Gateway's AUTO_PASSTHROUGH server, or the federation
                                // Gateway this translation gives that cluster
                                let generated = self
                                    .objects
                                    .iter()
                                    .filter(|o| o.kind == GATEWAY.1 && *o.cluster == *dest.cluster);
                                let mut hosts: Vec<String> = generated
                                    .flat_map(|o| {
                                        o.spec
                                            .pointer("/servers/0/hosts")
                                            .and_then(Value::as_array)
                                            .into_iter()
                                            .flatten()
                                    })
                                    .filter_map(|h| h.as_str().map(str::to_string))
                                    .collect();
                                hosts.extend(
                                    self.ix
                                        .passthrough
                                        .get(&*dest.cluster)
                                        .into_iter()
                                        .flatten()
                                        .cloned(),
                                );
                                if !hosts.iter().any(|h| index::host_covers(h, &vd.hostname)) {
                                    let mut list = hosts.clone();
                                    list.sort();
                                    list.dedup();
                                    self.warn(p, format!(
                                        "{} in cluster {} is reached through its gateway, which passes TLS through for {} but not {}: requests sent there are refused (federate with a hostnameSuffix that covers it, or add an AUTO_PASSTHROUGH server for it)",
                                        dest.id(), dest.cluster,
                                        if list.is_empty() { "no host".to_string() } else { list.join(", ") },
                                        vd.hostname
                                    ));
                                }
                                json!({"address": a, "ports": {&pname: port}})
                            }
                            None => {
                                self.warn(p, format!("cluster {} has no ingress gateway with an external address and a port named tls: {} is not reachable from {}", dest.cluster, dest.id(), client.cluster));
                                continue;
                            }
                        }
                    };
                    ep["labels"] = Value::Object(labels);
                    if let Some(loc) = dest_locality(self.ix, &dest) {
                        ep["locality"] = json!(loc);
                    }
                    endpoints.push(ep);
                }
                if endpoints.is_empty() {
                    continue;
                }
                let name = format!(
                    "{}-{}",
                    self.policies[p].meta.name,
                    self.policies[p].namespace()
                );
                self.emit(
                    &client.cluster,
                    SERVICE_ENTRY,
                    &client.namespace,
                    &name,
                    src.clone(),
                    json!({
                        "hosts": [vd.hostname],
                        "addresses": [vip],
                        "location": "MESH_INTERNAL",
                        "resolution": "DNS",
                        "ports": [{"number": vd.port.number, "name": pname, "protocol": proto}],
                        "endpoints": endpoints,
                    }),
                );
                let outlier = vd
                    .localized
                    .as_ref()
                    .and_then(|l| l.outlier_detection.as_ref());
                let mut locality = json!({"enabled": true});
                if strict {
                    let prios: Vec<String> = failover_labels
                        .iter()
                        .map(|l| format!("{l}=true"))
                        .collect();
                    locality["failoverPriority"] = json!(prios);
                }
                if let Some(l) = &vd.localized {
                    let failover: Vec<Value> = l
                        .failover_directives
                        .iter()
                        .filter_map(|d| {
                            d.to.first()
                                .map(|t| json!({"from": d.from.region, "to": t.region}))
                        })
                        .collect();
                    if !failover.is_empty() {
                        locality["failover"] = Value::Array(failover);
                    }
                }
                self.emit(
                    &client.cluster,
                    DESTINATION_RULE,
                    &client.namespace,
                    &name,
                    src.clone(),
                    json!({
                        "host": vd.hostname,
                        "trafficPolicy": {
                            "tls": {"mode": "ISTIO_MUTUAL"},
                            "loadBalancer": {"localityLbSetting": locality},
                            // failover needs ejection: without outlier detection no endpoint
                            // is ever unhealthy and nothing fails over
                            "outlierDetection": {
                                "consecutive5xxErrors": outlier.and_then(|o| o.consecutive_errors).unwrap_or(5),
                                "interval": outlier.and_then(|o| o.interval.clone()).unwrap_or_else(|| "10s".into()),
                                "baseEjectionTime": outlier.and_then(|o| o.base_ejection_time.clone()).unwrap_or_else(|| "30s".into()),
                                "maxEjectionPercent": outlier.and_then(|o| o.max_ejection_percent).unwrap_or(100),
                            },
                        },
                    }),
                );
            }
        }
    }

    // -----------------------------------------------------------------------------------------

    fn finish(mut self) -> Raw {
        let mut tagged: Vec<(Generated, Tag)> = std::mem::take(&mut self.objects)
            .into_iter()
            .zip(std::mem::take(&mut self.tags))
            .collect();
        tagged.sort_by(|a, b| a.0.key().cmp(&b.0.key()));
        // Two objects with one identity: keep the first, name both sources (the older wins).
        let mut out: Vec<Generated> = Vec::with_capacity(tagged.len());
        let mut tags: Vec<Tag> = Vec::with_capacity(tagged.len());
        let mut exact = true;
        for (o, tag) in tagged {
            if let Some(last) = out.last_mut()
                && last.key() == o.key()
            {
                exact = false;
                if last.spec != o.spec {
                    for &p in &tag.sources {
                        let msg = format!(
                            "{} {}/{} in {} is also generated by {}; the first one is kept",
                            o.kind,
                            o.namespace,
                            o.name,
                            o.cluster,
                            last.sources
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                        self.warn(p, msg);
                    }
                }
                continue;
            }
            out.push(o);
            tags.push(tag);
        }
        // The clusters each policy shapes: those of the objects kept that name it.
        for (o, tag) in out.iter().zip(&tags) {
            for &p in &tag.sources {
                if !self.track[p].clusters.contains(&o.cluster) {
                    self.track[p].clusters.insert(o.cluster.clone());
                }
            }
        }
        let policies = self.policies;
        let statuses = self
            .track
            .into_iter()
            .enumerate()
            .map(|(i, t)| status(&policies[i], t))
            .collect();
        Raw {
            output: Output {
                objects: out,
                statuses,
            },
            tags,
            footprint: self.footprint,
            global: self.g,
            exact,
        }
    }
}

fn status(policy: &Policy, t: Track) -> PolicyStatus {
    let state = if t.destinations.values().any(|s| *s == State::Invalid) {
        State::Invalid
    } else if !t.errors.is_empty() || t.destinations.values().any(|s| *s == State::Conflicting) {
        State::Conflicting
    } else if !t.warnings.is_empty() {
        State::Warning
    } else {
        State::Accepted
    };
    PolicyStatus {
        policy: policy.id(),
        state,
        destinations: t.destinations,
        workloads: t.workloads,
        clusters: t.clusters,
        errors: t.errors,
        warnings: t.warnings,
        notes: t.notes,
    }
}

/// A run's output and what an incremental run needs of it.
struct Raw {
    output: Output,
    tags: Vec<Tag>,
    footprint: Vec<Vec<usize>>,
    global: Arc<Global>,
    /// No two objects had one identity (else an incremental splice could not be exact).
    exact: bool,
}

/// Labels Kubernetes sets on each pod or each rollout: no subset selects by them, and an
/// endpoint that carried them would change with every rollout and scale.
const PER_POD_LABELS: &[&str] = &[
    "pod-template-hash",
    "controller-revision-hash",
    "pod-template-generation",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
    "batch.kubernetes.io/job-completion-index",
    "batch.kubernetes.io/controller-uid",
    "controller-uid",
];

/// A pod's labels without the per-pod ones ([`PER_POD_LABELS`]).
pub(crate) fn stable_labels(labels: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    labels
        .iter()
        .filter(|(k, _)| !PER_POD_LABELS.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// A destination's locality (`region/zone`) from its pods' topology labels, when they carry
/// them (meshdeck does not watch nodes).
fn dest_locality(ix: &Index, d: &Dest) -> Option<String> {
    let first = ix.pods(d).into_iter().next()?;
    let labels = &first.labels;
    let region = labels.get("topology.kubernetes.io/region")?;
    Some(match labels.get("topology.kubernetes.io/zone") {
        Some(z) => format!("{region}/{z}"),
        None => region.clone(),
    })
}

/// `<name>-<ns>-<cluster>`: a federated destination's objects in a client cluster.
fn federated_name(d: &Dest) -> String {
    format!("{}-{}-{}", d.name, d.namespace, d.cluster)
}

/// A port's name for ServiceEntry (Service ports may be unnamed).
fn port_name(name: &str, number: u32, proto: &str) -> String {
    if name.is_empty() {
        format!("{}-{number}", proto.to_ascii_lowercase())
    } else {
        name.to_string()
    }
}
