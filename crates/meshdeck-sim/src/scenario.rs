//! Scenarios that fill simulated clusters: `empty` (namespaces and CRDs only) and `demo` (an
//! Istio mesh per cluster running a bookstore-like application, with a few realistic faults),
//! plus the churn task that keeps a demo fleet alive with rollouts, restarts and scaling.
//!
//! Each cluster is described by a small model (workloads and their pods); every Kubernetes
//! object is rendered from it, so a change to the model re-renders exactly what changed.

use super::cluster::ClusterState;
use super::fields;
use super::registry::{istio_crds, policy_crds};
use super::store::{CRD_KEY, NAMESPACE_KEY, Store};
use chrono::{DateTime, Duration as ChronoDuration, SecondsFormat, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Namespaces and CRDs only.
    Empty,
    /// An Istio mesh per cluster with a bookstore application and a few faults.
    Demo,
}

/// The Istio version of most clusters; cluster #2 of a fleet runs one minor version behind.
pub const ISTIO_VERSION: &str = "1.30.3";
pub const ISTIO_OLD_VERSION: &str = "1.29.2";

const REGION_NAMES: &[&str] = &[
    "eu-west",
    "us-east",
    "ap-south",
    "eu-central",
    "us-west",
    "ap-east",
    "sa-east",
    "ca-central",
    "eu-north",
    "us-central",
    "ap-northeast",
    "af-south",
    "me-central",
    "eu-south",
    "ap-southeast",
    "us-south",
    "uk-south",
    "in-west",
    "jp-east",
    "au-east",
];

/// Cluster names for a fleet of `n`.
pub fn cluster_names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match REGION_NAMES.get(i) {
            Some(r) => r.to_string(),
            None => format!("cluster-{:02}", i + 1),
        })
        .collect()
}

/// Kubernetes versions of the fleet's clusters, varied as real fleets are.
pub fn k8s_version(i: usize) -> String {
    ["v1.33.4", "v1.32.7", "v1.34.1"][i % 3].to_string()
}

struct App {
    ns: &'static str,
    app: &'static str,
    versions: &'static [&'static str],
    replicas: u32,
    port: u16,
    image: &'static str,
}

const NAMESPACES: &[(&str, bool)] = &[
    ("bookstore", true),
    ("payments", true),
    ("legacy", false),
    ("inventory", true),
    ("shipping", true),
    ("auth", true),
];

const APPS: &[App] = &[
    App {
        ns: "bookstore",
        app: "frontend",
        versions: &["v1"],
        replicas: 3,
        port: 8080,
        image: "docker.io/istio/examples-bookinfo-productpage-v1:1.20.2",
    },
    App {
        ns: "bookstore",
        app: "reviews",
        versions: &["v1", "v2", "v3"],
        replicas: 2,
        port: 9080,
        image: "docker.io/istio/examples-bookinfo-reviews",
    },
    App {
        ns: "bookstore",
        app: "ratings",
        versions: &["v1"],
        replicas: 2,
        port: 9080,
        image: "docker.io/istio/examples-bookinfo-ratings-v1:1.20.2",
    },
    App {
        ns: "bookstore",
        app: "details",
        versions: &["v1"],
        replicas: 2,
        port: 9080,
        image: "docker.io/istio/examples-bookinfo-details-v1:1.20.2",
    },
    App {
        ns: "payments",
        app: "payments",
        versions: &["v1"],
        replicas: 3,
        port: 8080,
        image: "ghcr.io/meshdeck-demo/payments:2.4.1",
    },
    App {
        ns: "payments",
        app: "fraud-check",
        versions: &["v1"],
        replicas: 2,
        port: 8080,
        image: "ghcr.io/meshdeck-demo/fraud-check:1.9.0",
    },
    App {
        ns: "legacy",
        app: "legacy-billing",
        versions: &["v1"],
        replicas: 1,
        port: 8080,
        image: "ghcr.io/meshdeck-demo/legacy-billing:0.9.3",
    },
    App {
        ns: "inventory",
        app: "inventory",
        versions: &["v1"],
        replicas: 2,
        port: 8080,
        image: "ghcr.io/meshdeck-demo/inventory:3.1.0",
    },
    App {
        ns: "inventory",
        app: "warehouse",
        versions: &["v1"],
        replicas: 1,
        port: 8080,
        image: "ghcr.io/meshdeck-demo/warehouse:1.2.0",
    },
    App {
        ns: "shipping",
        app: "shipping",
        versions: &["v1"],
        replicas: 2,
        port: 8080,
        image: "ghcr.io/meshdeck-demo/shipping:1.0.7",
    },
    App {
        ns: "shipping",
        app: "tracking",
        versions: &["v1"],
        replicas: 1,
        port: 8080,
        image: "ghcr.io/meshdeck-demo/tracking:1.0.2",
    },
    App {
        ns: "auth",
        app: "auth",
        versions: &["v1"],
        replicas: 2,
        port: 8080,
        image: "ghcr.io/meshdeck-demo/auth:5.2.0",
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Deployment,
    StatefulSet,
}

#[derive(Debug, Clone)]
struct PodState {
    name: String,
    ip: String,
    node: String,
    restarts: u32,
    pending: bool,
    crashloop: bool,
    created: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Workload {
    kind: Kind,
    ns: String,
    name: String,
    app: String,
    version: String,
    replicas: u32,
    revision: u32,
    hash: String,
    port: u16,
    image: String,
    /// Sidecar proxy version; None when the pods carry no sidecar.
    proxy: Option<String>,
    /// A gateway runs Envoy as its main container, not as an injected sidecar.
    gateway: bool,
    pods: Vec<PodState>,
    created: DateTime<Utc>,
    /// Pinned faults are not touched by churn.
    pinned: bool,
}

/// The model of one demo cluster.
pub struct ClusterModel {
    idx: usize,
    name: String,
    istio_version: String,
    workloads: Vec<Workload>,
    ip_next: u32,
    rng: fastrand::Rng,
    now: DateTime<Utc>,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn uid(parts: &[&str]) -> String {
    // Deterministic, UUID-shaped: the same object keeps its uid across re-renders.
    let mut h1 = 0xcbf2_9ce4_8422_2325u64;
    let mut h2 = 0x8422_2325_cbf2_9ce4u64;
    for p in parts {
        for b in p.bytes().chain([0]) {
            h1 = (h1 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            h2 = (h2 ^ u64::from(b))
                .wrapping_mul(0x100_0000_01b3)
                .rotate_left(5);
        }
    }
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        h1 >> 32,
        (h1 >> 16) & 0xffff,
        h1 & 0xfff,
        h2 >> 52,
        h2 & 0xffff_ffff_ffff
    )
}

fn suffix(rng: &mut fastrand::Rng, n: usize) -> String {
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..n)
        .map(|_| CHARS[rng.usize(..CHARS.len())] as char)
        .collect()
}

impl ClusterModel {
    fn new(idx: usize, name: &str, seed: u64, now: DateTime<Utc>) -> Self {
        ClusterModel {
            idx,
            name: name.to_string(),
            istio_version: if idx == 1 {
                ISTIO_OLD_VERSION
            } else {
                ISTIO_VERSION
            }
            .to_string(),
            workloads: Vec::new(),
            ip_next: 10,
            rng: fastrand::Rng::with_seed(seed ^ (idx as u64).wrapping_mul(0x9E37_79B9)),
            now,
        }
    }

    fn next_ip(&mut self) -> String {
        let n = self.ip_next;
        self.ip_next += 1;
        format!("10.{}.{}.{}", 100 + self.idx % 100, n / 250, n % 250 + 2)
    }

    fn new_pod(
        &mut self,
        w_name: &str,
        hash: &str,
        kind: Kind,
        ordinal: usize,
        created: DateTime<Utc>,
    ) -> PodState {
        let name = match kind {
            Kind::Deployment => format!("{w_name}-{hash}-{}", suffix(&mut self.rng, 5)),
            Kind::StatefulSet => format!("{w_name}-{ordinal}"),
        };
        let node = format!("{}-node-{}", self.name, 1 + self.rng.usize(..3));
        PodState {
            name,
            ip: self.next_ip(),
            node,
            restarts: 0,
            pending: false,
            crashloop: false,
            created,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add_workload(
        &mut self,
        kind: Kind,
        ns: &str,
        name: &str,
        app: &str,
        version: &str,
        replicas: u32,
        port: u16,
        image: &str,
        proxy: Option<String>,
        age_days: i64,
    ) -> usize {
        let created = self.now
            - ChronoDuration::days(age_days)
            - ChronoDuration::minutes(self.rng.i64(0..600));
        let hash = suffix(&mut self.rng, 10);
        let mut w = Workload {
            kind,
            ns: ns.into(),
            name: name.into(),
            app: app.into(),
            version: version.into(),
            replicas,
            revision: 1,
            hash: hash.clone(),
            port,
            image: image.into(),
            proxy,
            gateway: false,
            pods: Vec::new(),
            created,
            pinned: false,
        };
        for i in 0..replicas as usize {
            let p = self.new_pod(name, &hash, kind, i, created + ChronoDuration::seconds(20));
            w.pods.push(p);
        }
        self.workloads.push(w);
        self.workloads.len() - 1
    }

    /// Build the demo model: istio-system, app namespaces, the bookstore, and per-cluster faults.
    fn demo(
        idx: usize,
        name: &str,
        seed: u64,
        pods_per_cluster: Option<usize>,
        now: DateTime<Utc>,
    ) -> Self {
        let mut m = ClusterModel::new(idx, name, seed, now);
        let iv = m.istio_version.clone();
        let pilot = format!("docker.io/istio/pilot:{iv}");
        let proxy_img = format!("docker.io/istio/proxyv2:{iv}");
        let istiod = m.add_workload(
            Kind::Deployment,
            "istio-system",
            "istiod",
            "istiod",
            "",
            1,
            15010,
            &pilot,
            None,
            60,
        );
        m.workloads[istiod].pinned = true;
        let gw = m.add_workload(
            Kind::Deployment,
            "istio-system",
            "istio-ingressgateway",
            "istio-ingressgateway",
            "",
            2,
            8080,
            &proxy_img,
            None,
            60,
        );
        m.workloads[gw].gateway = true;
        m.workloads[gw].pinned = true;
        m.add_workload(
            Kind::Deployment,
            "kube-system",
            "coredns",
            "kube-dns",
            "",
            2,
            53,
            "registry.k8s.io/coredns/coredns:v1.11.3",
            None,
            90,
        );
        let n_ns = 3 + idx % 4;
        let namespaces: Vec<(&str, bool)> = NAMESPACES.iter().take(n_ns).copied().collect();
        for app in APPS {
            let Some(&(_, injected)) = namespaces.iter().find(|(n, _)| *n == app.ns) else {
                continue;
            };
            for v in app.versions {
                let wname = if app.versions.len() > 1 {
                    format!("{}-{v}", app.app)
                } else {
                    app.app.to_string()
                };
                let image = if app.app == "reviews" {
                    format!("{}-{v}:1.20.2", app.image)
                } else {
                    app.image.to_string()
                };
                let proxy = injected.then(|| iv.clone());
                m.add_workload(
                    Kind::Deployment,
                    app.ns,
                    &wname,
                    app.app,
                    v,
                    app.replicas,
                    app.port,
                    &image,
                    proxy,
                    3 + (idx as i64 % 5),
                );
            }
        }
        // a stateful backing store for ratings
        m.add_workload(
            Kind::StatefulSet,
            "bookstore",
            "ratings-db",
            "ratings-db",
            "v1",
            1,
            5432,
            "docker.io/library/postgres:16.4",
            Some(iv.clone()),
            20,
        );

        // Faults, so every health rule has something to show.
        if idx == 0 {
            // proxies older than their istiod
            if let Some(w) = m.workloads.iter_mut().find(|w| w.name == "details") {
                w.proxy = Some(ISTIO_OLD_VERSION.into());
                w.pinned = true;
            }
        }
        if idx == 1 {
            // created before injection was enabled: no sidecar in an injected namespace
            if let Some(w) = m.workloads.iter_mut().find(|w| w.name == "fraud-check") {
                w.proxy = None;
                w.pinned = true;
            }
        }
        if idx == 2 {
            if let Some(w) = m.workloads.iter_mut().find(|w| w.name == "ratings") {
                if let Some(p) = w.pods.first_mut() {
                    p.crashloop = true;
                    p.restarts = 7;
                }
                w.pinned = true;
            }
            if let Some(w) = m.workloads.iter_mut().find(|w| w.name == "shipping") {
                if let Some(p) = w.pods.last_mut() {
                    p.pending = true;
                }
                w.pinned = true;
            }
        }
        if let Some(target) = pods_per_cluster {
            let mut total: usize = m.workloads.iter().map(|w| w.pods.len()).sum();
            let mut i = 0;
            while total < target {
                let n = (target - total).min(10) as u32;
                let name = format!("svc-{i:04}");
                m.add_workload(
                    Kind::Deployment,
                    "scale",
                    &name,
                    &name,
                    "v1",
                    n,
                    8080,
                    "ghcr.io/meshdeck-demo/echo:1.0.0",
                    Some(iv.clone()),
                    2,
                );
                total += n as usize;
                i += 1;
            }
        }
        m
    }

    fn namespaces(&self) -> Vec<(String, bool)> {
        let mut out: BTreeMap<String, bool> = BTreeMap::new();
        out.insert("default".into(), false);
        out.insert("kube-system".into(), false);
        out.insert("istio-system".into(), false);
        for w in &self.workloads {
            let injected = NAMESPACES
                .iter()
                .find(|(n, _)| *n == w.ns)
                .map(|(_, i)| *i)
                .unwrap_or(w.ns == "scale");
            out.insert(w.ns.clone(), injected);
        }
        out.into_iter().collect()
    }

    fn trust_domain(&self) -> String {
        format!("{}.local", self.name)
    }

    // ---- rendering ----

    fn labels(&self, w: &Workload) -> Value {
        let mut l = json!({"app": w.app});
        if !w.version.is_empty() {
            l["version"] = json!(w.version);
        }
        if w.name == "istiod" {
            l["istio"] = json!("pilot");
            l["istio.io/rev"] = json!("default");
        }
        if w.gateway {
            l["istio"] = json!("ingressgateway");
        }
        l
    }

    fn container(&self, w: &Workload) -> Value {
        let name = if w.gateway {
            "istio-proxy".to_string()
        } else {
            w.app.clone()
        };
        json!({"name": name, "image": w.image, "ports": [{"containerPort": w.port, "protocol": "TCP"}]})
    }

    fn deployment(&self, w: &Workload) -> Value {
        let ready = w.pods.iter().filter(|p| pod_ready(p)).count();
        let kind = if w.kind == Kind::Deployment {
            "Deployment"
        } else {
            "StatefulSet"
        };
        let mut d = json!({
            "apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": w.name, "namespace": w.ns, "uid": uid(&[&self.name, kind, &w.ns, &w.name]),
                "creationTimestamp": ts(w.created), "generation": w.revision, "labels": self.labels(w),
                "annotations": {"deployment.kubernetes.io/revision": w.revision.to_string()}},
            "spec": {"replicas": w.replicas, "selector": {"matchLabels": self.labels(w)},
                "template": {"metadata": {"labels": self.labels(w)},
                    "spec": {"serviceAccountName": w.app, "containers": [self.container(w)]}}},
            "status": {"observedGeneration": w.revision, "replicas": w.pods.len(), "updatedReplicas": w.pods.len(),
                "readyReplicas": ready, "availableReplicas": ready,
                "conditions": [{"type": "Available", "status": if ready > 0 { "True" } else { "False" },
                    "reason": if ready > 0 { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" }}]}
        });
        if w.kind == Kind::StatefulSet {
            d["spec"]["serviceName"] = json!(w.app);
            if let Some(m) = d["status"].as_object_mut() {
                m.remove("availableReplicas");
                m.insert("currentReplicas".into(), json!(w.pods.len()));
                m.insert("availableReplicas".into(), json!(ready));
            }
        }
        d
    }

    fn replicaset(&self, w: &Workload) -> Value {
        let ready = w.pods.iter().filter(|p| pod_ready(p)).count();
        let mut labels = self.labels(w);
        labels["pod-template-hash"] = json!(w.hash);
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": format!("{}-{}", w.name, w.hash), "namespace": w.ns,
                "uid": uid(&[&self.name, "rs", &w.ns, &w.name, &w.hash]),
                "creationTimestamp": ts(w.created), "labels": labels,
                "annotations": {"deployment.kubernetes.io/revision": w.revision.to_string()},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": w.name,
                    "uid": uid(&[&self.name, "Deployment", &w.ns, &w.name]), "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"replicas": w.replicas, "selector": {"matchLabels": labels.clone()},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [self.container(w)]}}},
            "status": {"replicas": w.pods.len(), "readyReplicas": ready, "availableReplicas": ready, "observedGeneration": 1}
        })
    }

    fn pod(&self, w: &Workload, p: &PodState) -> Value {
        let mut labels = self.labels(w);
        let (owner_kind, owner_name, owner_uid) = match w.kind {
            Kind::Deployment => {
                labels["pod-template-hash"] = json!(w.hash);
                (
                    "ReplicaSet",
                    format!("{}-{}", w.name, w.hash),
                    uid(&[&self.name, "rs", &w.ns, &w.name, &w.hash]),
                )
            }
            Kind::StatefulSet => (
                "StatefulSet",
                w.name.clone(),
                uid(&[&self.name, "StatefulSet", &w.ns, &w.name]),
            ),
        };
        let mut annotations = json!({});
        let mut containers = vec![self.container(w)];
        let started = ts(p.created + ChronoDuration::seconds(5));
        let ready = pod_ready(p);
        let app_state = if p.pending {
            json!({"waiting": {"reason": "ContainerCreating"}})
        } else if p.crashloop {
            json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}})
        } else {
            json!({"running": {"startedAt": started}})
        };
        let mut statuses = vec![
            json!({"name": containers[0]["name"], "image": w.image, "ready": ready,
            "restartCount": p.restarts, "started": ready, "state": app_state}),
        ];
        if let Some(pv) = &w.proxy {
            labels["security.istio.io/tlsMode"] = json!("istio");
            labels["service.istio.io/canonical-name"] = json!(w.app);
            labels["service.istio.io/canonical-revision"] = json!(if w.version.is_empty() {
                "latest"
            } else {
                &w.version
            });
            annotations["sidecar.istio.io/status"] = json!(
                "{\"initContainers\":[\"istio-init\"],\"containers\":[\"istio-proxy\"],\"volumes\":[\"workload-socket\",\"credential-socket\",\"workload-certs\",\"istio-envoy\",\"istio-data\",\"istio-podinfo\",\"istio-token\",\"istiod-ca-cert\"],\"imagePullSecrets\":null,\"revision\":\"default\"}"
            );
            annotations["prometheus.io/scrape"] = json!("true");
            let img = format!("docker.io/istio/proxyv2:{pv}");
            containers.push(
                json!({"name": "istio-proxy", "image": img, "args": ["proxy", "sidecar"],
                "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}]}),
            );
            statuses.push(json!({"name": "istio-proxy", "image": img, "ready": !p.pending, "restartCount": 0,
                "started": !p.pending, "state": if p.pending { json!({"waiting": {"reason": "PodInitializing"}}) } else { json!({"running": {"startedAt": started}}) }}));
        }
        let phase = if p.pending { "Pending" } else { "Running" };
        let mut status = json!({
            "phase": phase, "hostIP": format!("192.168.{}.{}", 10 + self.idx % 200, 10 + p.node.len() % 3),
            "startTime": ts(p.created),
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": if p.pending { "False" } else { "True" }},
                {"type": "ContainersReady", "status": if ready { "True" } else { "False" }},
                {"type": "Ready", "status": if ready { "True" } else { "False" }}],
            "containerStatuses": statuses,
        });
        if !p.pending {
            status["podIP"] = json!(p.ip);
        }
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": p.name, "namespace": w.ns, "uid": uid(&[&self.name, "pod", &w.ns, &p.name]),
                "creationTimestamp": ts(p.created), "labels": labels, "annotations": annotations,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind, "name": owner_name, "uid": owner_uid,
                    "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"serviceAccountName": w.app, "nodeName": if p.pending { Value::Null } else { json!(p.node) },
                "containers": containers, "restartPolicy": "Always"},
            "status": status,
        })
    }

    /// Services are per app (several versioned workloads share one).
    fn apps(&self) -> BTreeMap<(String, String), Vec<&Workload>> {
        let mut out: BTreeMap<(String, String), Vec<&Workload>> = BTreeMap::new();
        for w in &self.workloads {
            out.entry((w.ns.clone(), w.app.clone()))
                .or_default()
                .push(w);
        }
        out
    }

    fn service(&self, ns: &str, app: &str, ws: &[&Workload]) -> Value {
        let port = ws[0].port;
        let idx = self
            .workloads
            .iter()
            .position(|w| w.ns == ns && w.app == app)
            .unwrap_or(0);
        let mut ports = vec![
            json!({"name": if port == 5432 { "tcp-postgres" } else if port == 53 { "dns" } else { "http" },
            "port": port, "targetPort": port, "protocol": if port == 53 { "UDP" } else { "TCP" }}),
        ];
        let mut spec_type = "ClusterIP";
        let gateway = ws[0].gateway;
        if gateway {
            spec_type = "LoadBalancer";
            ports = vec![
                json!({"name": "status-port", "port": 15021, "targetPort": 15021, "protocol": "TCP"}),
                json!({"name": "http2", "port": 80, "targetPort": 8080, "protocol": "TCP"}),
                json!({"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}),
                json!({"name": "tls", "port": 15443, "targetPort": 15443, "protocol": "TCP"}),
            ];
        }
        if app == "istiod" {
            ports = vec![
                json!({"name": "grpc-xds", "port": 15010, "targetPort": 15010, "protocol": "TCP"}),
                json!({"name": "https-dns", "port": 15012, "targetPort": 15012, "protocol": "TCP"}),
                json!({"name": "https-webhook", "port": 443, "targetPort": 15017, "protocol": "TCP"}),
                json!({"name": "http-monitoring", "port": 15014, "targetPort": 15014, "protocol": "TCP"}),
            ];
        }
        let name = if app == "kube-dns" { "kube-dns" } else { app };
        let mut selector = json!({"app": app});
        if gateway {
            selector["istio"] = json!("ingressgateway");
        }
        let mut svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "uid": uid(&[&self.name, "svc", ns, app]),
                "creationTimestamp": ts(ws[0].created), "labels": {"app": app, "service": app}},
            "spec": {"type": spec_type, "clusterIP": format!("10.96.{}.{}", idx / 250, idx % 250 + 2),
                "selector": selector, "ports": ports},
        });
        if gateway {
            svc["status"] = json!({"loadBalancer": {"ingress": [{"ip": format!("172.18.{}.200", self.idx % 250)}]}});
        }
        svc
    }

    fn endpoints(&self, ns: &str, app: &str, ws: &[&Workload]) -> Value {
        let svc = self.service(ns, app, ws);
        let mut ready = Vec::new();
        let mut not_ready = Vec::new();
        for w in ws {
            for p in &w.pods {
                if p.pending {
                    continue;
                }
                let a = json!({"ip": p.ip, "nodeName": p.node,
                    "targetRef": {"kind": "Pod", "name": p.name, "namespace": ns, "uid": uid(&[&self.name, "pod", ns, &p.name])}});
                if pod_ready(p) {
                    ready.push(a)
                } else {
                    not_ready.push(a)
                }
            }
        }
        let ports: Vec<Value> = svc["spec"]["ports"]
            .as_array()
            .map(|ps| ps.iter().map(|p| json!({"name": p["name"], "port": p["targetPort"], "protocol": p["protocol"]})).collect())
            .unwrap_or_default();
        let mut subset = json!({"ports": ports});
        if !ready.is_empty() {
            subset["addresses"] = json!(ready);
        }
        if !not_ready.is_empty() {
            subset["notReadyAddresses"] = json!(not_ready);
        }
        json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": svc["metadata"]["name"], "namespace": ns, "uid": uid(&[&self.name, "ep", ns, app]),
                "creationTimestamp": svc["metadata"]["creationTimestamp"], "labels": {"app": app}},
            "subsets": if ready.is_empty() && not_ready.is_empty() { json!([]) } else { json!([subset]) }})
    }

    fn write_workload(&self, store: &Store, w: &Workload) {
        match w.kind {
            Kind::Deployment => {
                store.upsert("deployments.apps", self.deployment(w));
                store.upsert("replicasets.apps", self.replicaset(w));
            }
            Kind::StatefulSet => {
                store.upsert("statefulsets.apps", self.deployment(w));
            }
        }
        for p in &w.pods {
            store.upsert("pods", self.pod(w, p));
        }
    }

    fn write_endpoints_of(&self, store: &Store, ns: &str, app: &str) {
        let apps = self.apps();
        if let Some(ws) = apps.get(&(ns.to_string(), app.to_string())) {
            store.upsert("endpoints", self.endpoints(ns, app, ws));
        }
    }

    /// Write the whole model into an (empty) store.
    fn write_all(&self, store: &Store) {
        for (ns, injected) in self.namespaces() {
            let mut labels = json!({"kubernetes.io/metadata.name": ns});
            if injected {
                labels["istio-injection"] = json!("enabled");
            }
            if ns == "istio-system" {
                labels["topology.istio.io/network"] = json!(format!("{}-net", self.name));
            }
            store.upsert(NAMESPACE_KEY, json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "uid": uid(&[&self.name, "ns", &ns]), "creationTimestamp": ts(self.now - ChronoDuration::days(90)), "labels": labels},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}));
            store.upsert("serviceaccounts", json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": ns, "uid": uid(&[&self.name, "sa", &ns, "default"]), "creationTimestamp": ts(self.now - ChronoDuration::days(90))}}));
        }
        for w in &self.workloads {
            store.upsert("serviceaccounts", json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": w.app, "namespace": w.ns, "uid": uid(&[&self.name, "sa", &w.ns, &w.app]), "creationTimestamp": ts(w.created)}}));
            self.write_workload(store, w);
        }
        for ((ns, app), ws) in self.apps() {
            store.upsert("services", self.service(&ns, &app, &ws));
            store.upsert("endpoints", self.endpoints(&ns, &app, &ws));
        }
        let td = self.trust_domain();
        store.upsert("configmaps", json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "istio", "namespace": "istio-system", "uid": uid(&[&self.name, "cm", "istio"]),
                "creationTimestamp": ts(self.now - ChronoDuration::days(60)), "labels": {"istio.io/rev": "default", "release": "istio"}},
            "data": {"mesh": format!("defaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15012\n  proxyMetadata: {{}}\nenablePrometheusMerge: true\nrootNamespace: istio-system\ntrustDomain: {td}\n"),
                     "meshNetworks": "networks: {}"}}));
        if self.idx.is_multiple_of(2) {
            store.upsert("secrets", json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": "cacerts", "namespace": "istio-system", "uid": uid(&[&self.name, "secret", "cacerts"]),
                    "creationTimestamp": ts(self.now - ChronoDuration::days(60))},
                "data": {"ca-cert.pem": "c2ltdWxhdGVkIGludGVybWVkaWF0ZSBDQSAobWVzaGRlY2sgc2ltKQo=",
                         "root-cert.pem": "c2ltdWxhdGVkIHJvb3QgQ0EgKG1lc2hkZWNrIHNpbSkK"}}));
        }
        self.write_istio_config(store);
    }

    /// Istio objects an operator wrote by hand before meshdeck arrived (owned by kubectl).
    fn write_istio_config(&self, store: &Store) {
        let created = ts(self.now - ChronoDuration::days(10));
        let objs = [
            (
                "gateways.networking.istio.io",
                json!({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                "metadata": {"name": "bookstore-gateway", "namespace": "bookstore"},
                "spec": {"selector": {"istio": "ingressgateway"},
                         "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}}),
            ),
            (
                "virtualservices.networking.istio.io",
                json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": "frontend", "namespace": "bookstore"},
                "spec": {"hosts": ["*"], "gateways": ["bookstore-gateway"],
                         "http": [{"match": [{"uri": {"prefix": "/"}}],
                                   "route": [{"destination": {"host": "frontend", "port": {"number": 8080}}}]}]}}),
            ),
            (
                "virtualservices.networking.istio.io",
                json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": "reviews", "namespace": "bookstore"},
                "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]}}),
            ),
            (
                "destinationrules.networking.istio.io",
                json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                "metadata": {"name": "reviews", "namespace": "bookstore"},
                "spec": {"host": "reviews", "subsets": [
                    {"name": "v1", "labels": {"version": "v1"}}, {"name": "v2", "labels": {"version": "v2"}},
                    {"name": "v3", "labels": {"version": "v3"}}]}}),
            ),
        ];
        // the third cluster carries two configuration mistakes for the analysis to find: a
        // canary route to a subset no DestinationRule defines (IST0101), and an
        // AuthorizationPolicy whose selector has a typo and selects nothing (IST0127)
        let mistakes = [
            (
                "virtualservices.networking.istio.io",
                json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": "ratings-canary", "namespace": "bookstore"},
                "spec": {"hosts": ["ratings"], "http": [{"route": [
                    {"destination": {"host": "ratings", "subset": "v2"}}]}]}}),
            ),
            (
                "authorizationpolicies.security.istio.io",
                json!({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                "metadata": {"name": "payments-allow", "namespace": "payments"},
                "spec": {"selector": {"matchLabels": {"app": "payment"}}, "action": "ALLOW",
                         "rules": [{"from": [{"source": {"namespaces": ["bookstore"]}}]}]}}),
            ),
        ];
        let objs: Vec<(&str, serde_json::Value)> = objs
            .into_iter()
            .chain(mistakes.into_iter().filter(|_| self.idx == 2))
            .collect();
        for (key, mut obj) in objs {
            let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
            obj["metadata"]["uid"] = json!(uid(&[&self.name, key, &name]));
            obj["metadata"]["creationTimestamp"] = json!(created);
            obj["metadata"]["generation"] = json!(1);
            obj["metadata"]["annotations"] =
                json!({"kubectl.kubernetes.io/last-applied-configuration": "{}"});
            let av = obj["apiVersion"].as_str().unwrap_or("").to_string();
            fields::update(
                None,
                &mut obj,
                &fields::Op {
                    manager: "kubectl-client-side-apply",
                    api_version: &av,
                    now: &created,
                    subresource: None,
                },
            );
            store.upsert(key, obj);
        }
    }

    // ---- churn ----

    fn pick_workload(&mut self) -> Option<usize> {
        let candidates: Vec<usize> = self
            .workloads
            .iter()
            .enumerate()
            .filter(|(_, w)| !w.pinned && w.kind == Kind::Deployment && w.ns != "kube-system")
            .map(|(i, _)| i)
            .collect();
        if candidates.is_empty() {
            return None;
        }
        Some(candidates[self.rng.usize(..candidates.len())])
    }

    /// One random change: a container restart, a scale up/down, or a rollout.
    pub fn churn_once(&mut self, store: &Store) -> Option<String> {
        self.now = Utc::now();
        let i = self.pick_workload()?;
        let roll = self.rng.u32(..100);
        if roll < 50 {
            let w = &self.workloads[i];
            if w.pods.is_empty() {
                return None;
            }
            let pi = self.rng.usize(..w.pods.len());
            self.workloads[i].pods[pi].restarts += 1;
            let w = &self.workloads[i];
            store.upsert("pods", self.pod(w, &w.pods[pi]));
            Some(format!(
                "restarted a container of {}/{}",
                w.ns, w.pods[pi].name
            ))
        } else if roll < 80 {
            let up = self.workloads[i].replicas <= 1
                || (self.workloads[i].replicas < 4 && self.rng.bool());
            let (ns, app) = (self.workloads[i].ns.clone(), self.workloads[i].app.clone());
            if up {
                let (name, hash, n) = (
                    self.workloads[i].name.clone(),
                    self.workloads[i].hash.clone(),
                    self.workloads[i].pods.len(),
                );
                let p = self.new_pod(&name, &hash, Kind::Deployment, n, self.now);
                let w = &mut self.workloads[i];
                w.replicas += 1;
                w.pods.push(p);
            } else {
                let w = &mut self.workloads[i];
                w.replicas -= 1;
                if let Some(p) = w.pods.pop() {
                    store.remove("pods", &w.ns, &p.name);
                }
            }
            let w = &self.workloads[i];
            self.write_workload(store, w);
            self.write_endpoints_of(store, &ns, &app);
            Some(format!("scaled {}/{} to {}", w.ns, w.name, w.replicas))
        } else {
            // rollout: a new ReplicaSet replaces every pod
            let old_hash = self.workloads[i].hash.clone();
            let new_hash = suffix(&mut self.rng, 10);
            let (name, ns, app) = (
                self.workloads[i].name.clone(),
                self.workloads[i].ns.clone(),
                self.workloads[i].app.clone(),
            );
            let n = self.workloads[i].replicas as usize;
            let old_pods = std::mem::take(&mut self.workloads[i].pods);
            for p in &old_pods {
                store.remove("pods", &ns, &p.name);
            }
            store.remove("replicasets.apps", &ns, &format!("{name}-{old_hash}"));
            let now = self.now;
            let pods: Vec<PodState> = (0..n)
                .map(|k| self.new_pod(&name, &new_hash, Kind::Deployment, k, now))
                .collect();
            let w = &mut self.workloads[i];
            w.hash = new_hash;
            w.revision += 1;
            w.pods = pods;
            let w = &self.workloads[i];
            self.write_workload(store, w);
            self.write_endpoints_of(store, &ns, &app);
            Some(format!("rolled out {ns}/{name} revision {}", w.revision))
        }
    }
}

fn pod_ready(p: &PodState) -> bool {
    !p.pending && !p.crashloop
}

/// Register the CRDs every simulated cluster serves: Istio's and meshdeck's policy kinds.
fn install_crds_at(store: &Store, now: DateTime<Utc>) {
    let created = ts(now - ChronoDuration::days(90));
    for crd in istio_crds().iter().cloned().chain(policy_crds()) {
        let mut crd = crd;
        let name = crd
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        crd["metadata"]["uid"] = json!(uid(&["crd", &name]));
        crd["metadata"]["creationTimestamp"] = json!(created);
        crd["metadata"]["generation"] = json!(1);
        store.upsert(CRD_KEY, crd);
    }
}

/// Fill a store for a scenario. Returns the model that churn keeps changing (demo only).
pub fn populate(
    store: &Store,
    scenario: Scenario,
    idx: usize,
    name: &str,
    seed: u64,
    pods_per_cluster: Option<usize>,
) -> Option<ClusterModel> {
    populate_at(
        store,
        scenario,
        idx,
        name,
        seed,
        pods_per_cluster,
        Utc::now(),
    )
}

/// `populate` as of a given moment: the same seed and moment give the same objects.
pub fn populate_at(
    store: &Store,
    scenario: Scenario,
    idx: usize,
    name: &str,
    seed: u64,
    pods_per_cluster: Option<usize>,
    now: DateTime<Utc>,
) -> Option<ClusterModel> {
    install_crds_at(store, now);
    match scenario {
        Scenario::Empty => {
            let created = ts(now - ChronoDuration::days(90));
            for ns in ["default", "kube-system"] {
                store.upsert(NAMESPACE_KEY, json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": ns, "uid": uid(&[name, "ns", ns]), "creationTimestamp": created,
                        "labels": {"kubernetes.io/metadata.name": ns}}, "status": {"phase": "Active"}}));
            }
            None
        }
        Scenario::Demo => {
            let m = ClusterModel::demo(idx, name, seed, pods_per_cluster, now);
            m.write_all(store);
            Some(m)
        }
    }
}

/// Keep a demo cluster alive: one random change every `every`.
pub async fn churn(
    state: Arc<ClusterState>,
    mut model: ClusterModel,
    every: Duration,
    paused: Arc<std::sync::atomic::AtomicBool>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if paused.load(std::sync::atomic::Ordering::Relaxed) {
                    continue;
                }
                if let Some(what) = model.churn_once(&state.store) {
                    tracing::debug!(cluster = %state.name, "churn: {what}");
                }
            }
            _ = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_store(idx: usize) -> (Store, ClusterModel) {
        let s = Store::new(100_000);
        let m = populate(&s, Scenario::Demo, idx, &cluster_names(3)[idx], 42, None).expect("model");
        (s, m)
    }

    #[test]
    fn demo_cluster_has_a_mesh_an_app_and_its_faults() {
        let (s, _) = demo_store(2);
        let istiod = s
            .get("deployments.apps", "istio-system", "istiod")
            .expect("istiod");
        assert!(
            istiod
                .bytes
                .windows(ISTIO_VERSION.len())
                .any(|w| w == ISTIO_VERSION.as_bytes())
        );
        let ns: Vec<String> = s
            .list(NAMESPACE_KEY, None)
            .1
            .iter()
            .map(|o| o.name.clone())
            .collect();
        assert!(ns.contains(&"legacy".to_string()), "{ns:?}");
        let legacy = s.get(NAMESPACE_KEY, "", "legacy").expect("legacy");
        assert!(!legacy.labels.contains_key("istio-injection"));
        assert_eq!(
            s.get(NAMESPACE_KEY, "", "bookstore")
                .expect("ns")
                .labels
                .get("istio-injection")
                .map(String::as_str),
            Some("enabled")
        );
        // cluster #3 has a crash-looping ratings pod
        let crashing = s.list("pods", Some("bookstore")).1.iter().any(|p| {
            let v = p.value();
            p.labels.get("app").map(String::as_str) == Some("ratings")
                && v.pointer("/status/containerStatuses/0/state/waiting/reason")
                    == Some(&json!("CrashLoopBackOff"))
        });
        assert!(crashing);
        // every pod in an injected namespace of cluster #3 carries the sidecar annotation
        for p in s.list("pods", Some("bookstore")).1 {
            assert!(
                p.value()
                    .pointer("/metadata/annotations/sidecar.istio.io~1status")
                    .is_some(),
                "{}",
                p.name
            );
        }
        let vs = s
            .get(
                "virtualservices.networking.istio.io",
                "bookstore",
                "reviews",
            )
            .expect("vs");
        assert!(
            vs.value().pointer("/metadata/managedFields/0/manager")
                == Some(&json!("kubectl-client-side-apply"))
        );
    }

    #[test]
    fn second_cluster_runs_an_older_istio_and_lacks_a_sidecar() {
        let (s, _) = demo_store(1);
        let istiod = s
            .get("deployments.apps", "istio-system", "istiod")
            .expect("istiod")
            .value();
        assert_eq!(
            istiod["spec"]["template"]["spec"]["containers"][0]["image"],
            format!("docker.io/istio/pilot:{ISTIO_OLD_VERSION}")
        );
        let fraud = s
            .list("pods", Some("payments"))
            .1
            .into_iter()
            .find(|p| p.labels.get("app").map(String::as_str) == Some("fraud-check"))
            .expect("pod");
        assert!(
            fraud
                .value()
                .pointer("/metadata/annotations/sidecar.istio.io~1status")
                .is_none()
        );
    }

    #[test]
    fn scale_fills_to_the_pod_target_and_churn_changes_the_store() {
        let s = Store::new(100_000);
        let mut m = populate(&s, Scenario::Demo, 0, "x", 1, Some(500)).expect("model");
        assert!(s.count("pods") >= 500, "{}", s.count("pods"));
        let rv = s.resource_version();
        for _ in 0..20 {
            m.churn_once(&s);
        }
        assert!(s.resource_version() > rv);
        // endpoints stay consistent with pods: every address names an existing pod
        for ep in s.list("endpoints", None).1 {
            let v = ep.value();
            for a in v
                .pointer("/subsets/0/addresses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                let name = a["targetRef"]["name"].as_str().unwrap_or("");
                assert!(
                    s.get("pods", &ep.namespace, name).is_some(),
                    "{}/{name}",
                    ep.namespace
                );
            }
        }
    }
}
