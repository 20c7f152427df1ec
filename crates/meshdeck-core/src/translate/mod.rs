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

/// Keeps the fleet index between translations (the editor re-translates on every keystroke).
pub struct Translator {
    index: Index,
}

impl Translator {
    pub fn new(snap: &crate::model::Snapshot) -> Translator {
        Translator {
            index: Index::new(snap),
        }
    }
    pub fn index(&self) -> &Index {
        &self.index
    }
    pub fn translate(&self, policies: &[Policy]) -> Output {
        Run::new(&self.index, policies).run()
    }
}

/// Translate once.
pub fn translate(policies: &[Policy], snap: &crate::model::Snapshot) -> Output {
    Translator::new(snap).translate(policies)
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
    /// The warnings already given (a policy can collect thousands; no quadratic dedup).
    seen: std::collections::HashSet<String>,
}

/// A mesh's settings from the VirtualMesh that owns it.
#[derive(Default, Clone)]
struct MeshSettings {
    vm: Option<usize>,
    mtls: bool,
    global_access: bool,
}

/// A federated destination as seen from a client cluster.
#[derive(Clone)]
struct Federated {
    suffix: String,
    vm: usize,
}

pub(crate) struct Run<'a> {
    ix: &'a Index,
    policies: &'a [Policy],
    /// Policy indexes, oldest first (Gloo Mesh: the older policy wins).
    order: Vec<usize>,
    rank: Vec<usize>,
    track: Vec<Track>,
    mesh: Vec<MeshSettings>,
    /// dest → client clusters it is federated into (cluster → settings)
    federated: HashMap<usize, BTreeMap<String, Federated>>,
    objects: Vec<Generated>,
    /// DestinationRule subsets requested by traffic shifts: (cluster, host) → name →
    /// (labels, the policies asking for it)
    subsets: BTreeMap<(String, String), SubsetMap>,
}

impl<'a> Run<'a> {
    fn new(ix: &'a Index, policies: &'a [Policy]) -> Run<'a> {
        let mut order: Vec<usize> = (0..policies.len()).collect();
        order.sort_by(|&a, &b| policies[a].precedence(&policies[b]).then(a.cmp(&b)));
        let mut rank = vec![0; policies.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i] = r;
        }
        Run {
            ix,
            policies,
            order,
            rank,
            track: vec![Track::default(); policies.len()],
            mesh: vec![MeshSettings::default(); ix.meshes.len()],
            federated: HashMap::new(),
            objects: Vec::new(),
            subsets: BTreeMap::new(),
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
        for &p in &sources {
            self.track[p].clusters.insert(cluster.to_string());
        }
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

    fn run(mut self) -> Output {
        self.virtual_meshes();
        routes::traffic(&mut self);
        self.access();
        self.virtual_destinations();
        self.finish()
    }

    // -----------------------------------------------------------------------------------------
    // VirtualMesh

    fn virtual_meshes(&mut self) {
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
                    Some(m) => match self.mesh[m].vm {
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
                            self.mesh[m] = MeshSettings {
                                vm: Some(p),
                                mtls: vm.mtls_config.is_some(),
                                global_access: vm.global_access_policy
                                    == crate::policy::GlobalAccess::Enabled,
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
                match &mesh.gateway {
                    Some(g) => self.emit(
                        &mesh.cluster,
                        AUTHORIZATION_POLICY,
                        &g.namespace,
                        &format!("{}-allow-all", g.name),
                        src.clone(),
                        json!({"selector": {"matchLabels": g.selector}, "action": "ALLOW", "rules": [{}]}),
                    ),
                    None => self.warn(
                        p,
                        format!(
                            "cluster {} has no ingress gateway: with globalAccessPolicy ENABLED nothing can enter the mesh from outside",
                            mesh.cluster
                        ),
                    ),
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
        let mut gateway_clusters: BTreeSet<usize> = BTreeSet::new();
        for &i in &chosen {
            let d = self.ix.dests[i].clone();
            let home = &self.ix.meshes[d.mesh];
            let address = home.gateway.as_ref().and_then(|g| g.address.clone());
            if !fed.flat_network && address.is_none() {
                self.warn(
                    p,
                    format!(
                        "cluster {} has no ingress gateway with an external address: its services cannot be federated",
                        d.cluster
                    ),
                );
                continue;
            }
            gateway_clusters.insert(d.mesh);
            for &m in members {
                let client = self.ix.meshes[m].clone();
                if client.cluster == d.cluster {
                    continue;
                }
                self.federated.entry(i).or_default().insert(
                    client.cluster.to_string(),
                    Federated {
                        suffix: suffix.clone(),
                        vm: p,
                    },
                );
                let host = d.federated_host(&suffix);
                let name = federated_name(&d);
                let ports: Vec<Value> = d
                    .ports
                    .iter()
                    .map(|(n, num, proto)| json!({"number": num, "name": port_name(n, *num, proto), "protocol": proto}))
                    .collect();
                let (resolution, endpoints): (&str, Vec<Value>) = if fed.flat_network {
                    let eps = d
                        .pod_ips
                        .iter()
                        .map(|ip| {
                            let ports: Map<String, Value> = d
                                .ports
                                .iter()
                                .map(|(n, num, proto)| (port_name(n, *num, proto), json!(num)))
                                .collect();
                            json!({"address": ip, "ports": ports})
                        })
                        .collect();
                    ("STATIC", eps)
                } else {
                    let ports: Map<String, Value> = d
                        .ports
                        .iter()
                        .map(|(n, num, proto)| (port_name(n, *num, proto), json!(15443)))
                        .collect();
                    ("DNS", vec![json!({"address": address, "ports": ports})])
                };
                let mut se = json!({
                    "hosts": [host],
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
        }
        if !fed.flat_network {
            for m in gateway_clusters {
                let mesh = self.ix.meshes[m].clone();
                let Some(g) = &mesh.gateway else { continue };
                self.emit(
                    &mesh.cluster,
                    GATEWAY,
                    &g.namespace,
                    &format!("meshdeck-federation-{suffix}"),
                    src.clone(),
                    json!({
                        "selector": g.selector,
                        "servers": [{
                            "port": {"number": 15443, "name": "tls", "protocol": "TLS"},
                            "tls": {"mode": "AUTO_PASSTHROUGH"},
                            "hosts": [format!("*.{suffix}")],
                        }],
                    }),
                );
            }
        }
    }

    /// The host a client in `cluster` uses for destination `d`, if it can reach it.
    fn host_from(&self, d: usize, cluster: &str) -> Option<String> {
        let dest = &self.ix.dests[d];
        if &*dest.cluster == cluster {
            return Some(dest.local_host());
        }
        self.federated
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
            let dests = self.ix.select(&ap.destination_selector);
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
                let mesh = &self.mesh[dest.mesh];
                let id = dest.id();
                if !mesh.global_access {
                    let mname = self.ix.meshes[dest.mesh].name.clone();
                    self.warn(
                        p,
                        format!(
                            "mesh {mname} has no VirtualMesh with globalAccessPolicy ENABLED: traffic is already allowed, nothing generated for {id}"
                        ),
                    );
                    self.track[p].destinations.insert(id, State::Warning);
                    continue;
                }
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
                self.track[p].destinations.insert(id, State::Accepted);
                per_dest.entry(d).or_default().push(p);
            }
        }
        for (d, ps) in per_dest {
            let dest = self.ix.dests[d].clone();
            let rules: Vec<Value> = ps.iter().map(|&p| self.access_rule(p, &dest)).collect();
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
    }

    fn trust_domain(&self, cluster: &str, fallback: &Dest) -> String {
        let m = if cluster.is_empty() {
            Some(fallback.mesh)
        } else {
            self.ix.mesh_of_cluster(cluster)
        };
        m.map(|m| self.ix.meshes[m].trust_domain.clone())
            .unwrap_or_else(|| "cluster.local".into())
    }

    fn access_rule(&self, p: usize, dest: &Dest) -> Value {
        let Spec::Access(ap) = &self.policies[p].spec else {
            return json!({});
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
                        let td = self.trust_domain(c, dest);
                        if m.namespaces.is_empty() {
                            principals.insert(format!("{td}/*"));
                        }
                        for ns in &m.namespaces {
                            principals.insert(format!("{td}/ns/{ns}/sa/*"));
                        }
                    }
                    from.push(json!({"source": {"principals": principals}}));
                }
            }
            if let Some(r) = &sel.kube_service_account_refs {
                let principals: BTreeSet<String> = r
                    .service_accounts
                    .iter()
                    .map(|sa| {
                        let td = self.trust_domain(&sa.cluster_name, dest);
                        format!("{td}/ns/{}/sa/{}", sa.namespace, sa.name)
                    })
                    .collect();
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
        Value::Object(rule)
    }

    // -----------------------------------------------------------------------------------------
    // VirtualDestination

    fn virtual_destinations(&mut self) {
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
            let vm_name = vd
                .virtual_mesh
                .as_ref()
                .map(|r| r.name.clone())
                .unwrap_or_default();
            let members: Vec<usize> = (0..self.ix.meshes.len())
                .filter(|&m| {
                    self.mesh[m]
                        .vm
                        .is_some_and(|v| self.policies[v].meta.name == vm_name)
                })
                .collect();
            if members.is_empty() {
                self.warn(p, format!("spec.virtualMesh: VirtualMesh {vm_name:?} has no member mesh in the fleet; nothing generated"));
                continue;
            }
            let mut backing: Vec<usize> = Vec::new();
            let statics = vd
                .static_
                .as_ref()
                .map(|s| s.destinations.as_slice())
                .unwrap_or(&[]);
            for (i, sd) in statics.iter().enumerate() {
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
            if backing.is_empty() {
                continue;
            }
            let proto = vd.port.protocol.clone();
            let pname = format!("{}-{}", proto.to_ascii_lowercase(), vd.port.number);
            let src: BTreeSet<usize> = [p].into();
            for m in members {
                let client = self.ix.meshes[m].clone();
                let mut endpoints = Vec::new();
                for (prio, &d) in backing.iter().enumerate() {
                    let dest = &self.ix.dests[d];
                    self.track[p]
                        .destinations
                        .insert(dest.id(), State::Accepted);
                    let svc_port = dest.ports.first().map(|x| x.1).unwrap_or(vd.port.number);
                    let labels = json!({"meshdeck.io/priority": prio.to_string(), "topology.istio.io/cluster": &*dest.cluster});
                    if dest.cluster == client.cluster {
                        endpoints.push(json!({"address": dest.local_host(), "ports": {&pname: svc_port}, "labels": labels}));
                    } else {
                        let home = &self.ix.meshes[dest.mesh];
                        match home.gateway.as_ref().and_then(|g| g.address.clone()) {
                            Some(a) => endpoints.push(json!({"address": a, "ports": {&pname: 15443}, "labels": labels})),
                            None => self.warn(p, format!("cluster {} has no ingress gateway address: {} is not reachable from {}", dest.cluster, dest.id(), client.cluster)),
                        }
                    }
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
                        "location": "MESH_INTERNAL",
                        "resolution": "DNS",
                        "ports": [{"number": vd.port.number, "name": pname, "protocol": proto}],
                        "endpoints": endpoints,
                    }),
                );
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
                            "loadBalancer": {"localityLbSetting": {"enabled": true}},
                            "outlierDetection": {"consecutive5xxErrors": 5, "interval": "10s", "baseEjectionTime": "30s", "maxEjectionPercent": 100},
                        },
                    }),
                );
            }
        }
    }

    // -----------------------------------------------------------------------------------------

    fn finish(mut self) -> Output {
        self.objects.sort_by(|a, b| a.key().cmp(&b.key()));
        // Two objects with one identity: keep the first, name both sources (the older wins).
        let mut out: Vec<Generated> = Vec::with_capacity(self.objects.len());
        for o in std::mem::take(&mut self.objects) {
            if let Some(last) = out.last_mut()
                && last.key() == o.key()
            {
                if last.spec != o.spec {
                    for id in &o.sources {
                        if let Some(p) = self.policies.iter().position(|p| &p.id() == id) {
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
                }
                continue;
            }
            out.push(o);
        }
        let statuses = self
            .track
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let state = if !t.errors.is_empty()
                    || t.destinations.values().any(|s| *s == State::Conflicting)
                {
                    State::Conflicting
                } else if !t.warnings.is_empty() {
                    State::Warning
                } else {
                    State::Accepted
                };
                PolicyStatus {
                    policy: self.policies[i].id(),
                    state,
                    destinations: t.destinations,
                    workloads: t.workloads,
                    clusters: t.clusters,
                    errors: t.errors,
                    warnings: t.warnings,
                }
            })
            .collect();
        Output {
            objects: out,
            statuses,
        }
    }
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
