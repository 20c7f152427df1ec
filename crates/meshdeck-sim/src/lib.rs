//! The simulated fleet: N Kubernetes API servers in one process, each on its own HTTPS port on
//! 127.0.0.1, served from an in-memory store. kube-rs and real kubectl talk to it unchanged.
//! Used by `meshdeck demo`, `meshdeck sim serve`, and every integration test.

pub mod api;
pub mod auth;
pub mod cluster;
pub mod control;
pub mod fields;
pub mod hostile;
pub mod prometheus;
pub mod proto;
pub mod proxy;
pub mod registry;
pub mod scenario;
pub mod server;
pub mod store;
pub mod table;
pub mod tls;
pub mod traffic;

use anyhow::Context;
use auth::User;
use base64::Engine;
pub use cluster::{ClusterState, FaultSpec, Faults, LogEntry};
pub use scenario::Scenario;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What to start.
#[derive(Debug, Clone)]
pub struct FleetSpec {
    pub clusters: usize,
    pub scenario: Scenario,
    /// Fill each demo cluster up to this many pods (benchmarks).
    pub pods_per_cluster: Option<usize>,
    /// One random change per cluster this often (demo only); None: a still fleet (tests).
    pub churn: Option<Duration>,
    /// How often watch streams that asked for bookmarks get one.
    pub bookmark_interval: Duration,
    /// Watch history kept per cluster for resume; older resumes get 410 Expired.
    pub event_history: usize,
    pub seed: u64,
    /// Cluster names; default: region-like names (`eu-west`, `us-east`, ...).
    pub names: Option<Vec<String>>,
}

impl Default for FleetSpec {
    fn default() -> Self {
        FleetSpec {
            clusters: 3,
            scenario: Scenario::Demo,
            pods_per_cluster: None,
            churn: None,
            bookmark_interval: Duration::from_secs(5),
            event_history: 50_000,
            seed: 7,
            names: None,
        }
    }
}

/// One running simulated cluster.
pub struct SimCluster {
    pub state: Arc<ClusterState>,
    pub admin_token: String,
    pub viewer_token: String,
    /// The token of `bookstore-dev`, who may read only in namespace `bookstore`.
    pub dev_token: String,
}

impl SimCluster {
    pub fn name(&self) -> &str {
        &self.state.name
    }
    pub fn url(&self) -> String {
        format!("https://{}", self.state.address())
    }
}

/// A running fleet. Dropping it (or `shutdown`) stops every server and churn task.
pub struct Fleet {
    pub clusters: Vec<SimCluster>,
    pub ca_pem: String,
    /// The churn tasks change nothing while this is set (`sim ctl churn stop`).
    pub churn_paused: Arc<std::sync::atomic::AtomicBool>,
    /// The fleet's request traffic (Istio metrics per simulated sidecar).
    pub traffic: Arc<traffic::Traffic>,
    /// Plain HTTP on loopback: `/clusters/NAME/metrics`, every sidecar of a cluster, for a
    /// Prometheus to scrape.
    metrics_addr: std::net::SocketAddr,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn token(rng: &mut fastrand::Rng) -> String {
    (0..32)
        .map(|_| char::from_digit(rng.u32(..16), 16).unwrap_or('0'))
        .collect()
}

impl Fleet {
    /// Start the fleet; every server is listening when this returns.
    pub async fn start(spec: FleetSpec) -> anyhow::Result<Fleet> {
        // kube-rs and the sim both use rustls with ring; make it the process default once.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = tls::generate().context("generating the fleet's certificates")?;
        let names = spec
            .names
            .clone()
            .unwrap_or_else(|| scenario::cluster_names(spec.clusters));
        anyhow::ensure!(!names.is_empty(), "a fleet needs at least one cluster");
        let stop = CancellationToken::new();
        let mut rng = fastrand::Rng::new();
        let mut clusters = Vec::new();
        let mut tasks = Vec::new();
        let churn_paused = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Fill the clusters in parallel: a 5,000-pod cluster takes a moment to render.
        let populated = futures::future::join_all(names.iter().enumerate().map(|(i, name)| {
            let (name, spec) = (name.clone(), spec.clone());
            tokio::task::spawn_blocking(move || {
                let store = Store::new(spec.event_history);
                let model = scenario::populate(
                    &store,
                    spec.scenario,
                    i,
                    &name,
                    spec.seed,
                    spec.pods_per_cluster,
                );
                (store, model)
            })
        }))
        .await;
        for (i, (name, populated)) in names.iter().zip(populated).enumerate() {
            let (store, model) = populated.context("populating a simulated cluster")?;
            let admin_token = token(&mut rng);
            let viewer_token = token(&mut rng);
            let dev_token = token(&mut rng);
            let state = Arc::new(ClusterState::new(
                name.clone(),
                store,
                vec![
                    User::admin(admin_token.clone()),
                    User::viewer(viewer_token.clone()),
                    User::namespace_reader("bookstore-dev", dev_token.clone(), "bookstore"),
                    // reachable by impersonation only (no token, no context)
                    User::team_member("alice", "bookstore"),
                ],
                scenario::k8s_version(i),
                spec.bookmark_interval,
            ));
            let listener = TcpListener::bind(("127.0.0.1", 0))
                .await
                .context("binding a port on 127.0.0.1")?;
            let addr = listener.local_addr()?;
            tasks.push(tokio::spawn(server::serve(
                state.clone(),
                listener,
                tls.server_config.clone(),
                stop.clone(),
            )));
            // serve() records the address; wait for it so callers can use url() at once
            while state.socket_addr() != addr {
                tokio::task::yield_now().await;
            }
            if let (Some(model), Some(every)) = (model, spec.churn) {
                tasks.push(tokio::spawn(scenario::churn(
                    state.clone(),
                    model,
                    every,
                    churn_paused.clone(),
                    stop.clone(),
                )));
            }
            clusters.push(SimCluster {
                state,
                admin_token,
                viewer_token,
                dev_token,
            });
        }
        let traffic = Arc::new(traffic::Traffic::new(
            clusters.iter().map(|c| c.state.clone()).collect(),
        ));
        for c in &clusters {
            let _ = c.state.traffic.set(Arc::downgrade(&traffic));
        }
        tasks.push(tokio::spawn(traffic::tick(traffic.clone(), stop.clone())));
        let metrics = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("binding the metrics port on 127.0.0.1")?;
        let metrics_addr = metrics.local_addr()?;
        tasks.push(tokio::spawn(traffic::serve_metrics(
            traffic.clone(),
            metrics,
            stop.clone(),
        )));
        Ok(Fleet {
            clusters,
            ca_pem: tls.ca_pem,
            churn_paused,
            traffic,
            metrics_addr,
            stop,
            tasks,
        })
    }

    pub fn cluster(&self, name: &str) -> anyhow::Result<&SimCluster> {
        self.clusters
            .iter()
            .find(|c| c.name() == name)
            .with_context(|| {
                format!(
                    "no simulated cluster named {name:?} (clusters: {})",
                    self.names().join(", ")
                )
            })
    }

    pub fn names(&self) -> Vec<String> {
        self.clusters.iter().map(|c| c.name().to_string()).collect()
    }

    /// Where a Prometheus scrapes one cluster's sidecars (`http://127.0.0.1:PORT/clusters/NAME/metrics`).
    pub fn metrics_url(&self, cluster: &str) -> String {
        format!("http://{}/clusters/{cluster}/metrics", self.metrics_addr)
    }

    /// Start a real Prometheus scraping every cluster's sidecars each `scrape` (None without
    /// a `prometheus` binary).
    pub fn start_prometheus(
        &self,
        scrape: std::time::Duration,
    ) -> anyhow::Result<Option<prometheus::Prometheus>> {
        let targets: Vec<(String, String)> = self
            .names()
            .into_iter()
            .map(|n| {
                let u = self.metrics_url(&n);
                (n, u)
            })
            .collect();
        prometheus::Prometheus::start(&targets, scrape)
    }

    /// The metrics listener's address (`127.0.0.1:PORT`).
    pub fn metrics_addr(&self) -> std::net::SocketAddr {
        self.metrics_addr
    }

    /// Run (Some) or stop (None) an in-cluster Prometheus: the Service `istio-system/prometheus`
    /// appears in the cluster and its service proxy forwards to `url`.
    pub fn set_prometheus(&self, cluster: &str, url: Option<&str>) -> anyhow::Result<()> {
        let c = self.cluster(cluster)?;
        *c.state.prometheus.lock() = url.map(str::to_string);
        match url {
            Some(_) => {
                c.state.store.upsert(
                    "services",
                    json!({"apiVersion": "v1", "kind": "Service",
                        "metadata": {"name": "prometheus", "namespace": "istio-system",
                            "uid": uuid::Uuid::new_v4().to_string(),
                            "creationTimestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                            "labels": {"app": "prometheus"}},
                        "spec": {"type": "ClusterIP", "clusterIP": "10.96.200.9", "selector": {"app": "prometheus"},
                            "ports": [{"name": "http", "port": 9090, "targetPort": 9090, "protocol": "TCP"}]}}),
                );
            }
            None => {
                c.state
                    .store
                    .remove("services", "istio-system", "prometheus");
            }
        }
        Ok(())
    }

    pub fn fault(&self, cluster: &str, f: &FaultSpec) -> anyhow::Result<()> {
        self.cluster(cluster)?.state.apply_fault(f);
        Ok(())
    }

    pub fn requests(&self, cluster: &str) -> anyhow::Result<Vec<LogEntry>> {
        Ok(self.cluster(cluster)?.state.requests())
    }

    /// Forget every cluster's request log.
    pub fn clear_requests_all(&self) {
        for c in &self.clusters {
            c.state.clear_requests();
        }
    }

    /// Every logged request of every cluster.
    pub fn all_requests(&self) -> Vec<LogEntry> {
        self.clusters
            .iter()
            .flat_map(|c| c.state.requests())
            .collect()
    }

    /// A kubeconfig with a context per cluster (admin), a `<cluster>-viewer` context, and a
    /// `<cluster>-bookstore-dev` context (namespace `bookstore`) whose user may read only there.
    /// All three reach the same API server: one cluster, three credentials.
    pub fn kubeconfig(&self) -> serde_json::Value {
        let ca = base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes());
        let mut clusters = Vec::new();
        let mut users = Vec::new();
        let mut contexts = Vec::new();
        for c in &self.clusters {
            let n = c.name();
            clusters.push(json!({"name": n, "cluster": {"server": c.url(), "certificate-authority-data": ca}}));
            users.push(json!({"name": format!("{n}-admin"), "user": {"token": c.admin_token}}));
            users.push(json!({"name": format!("{n}-viewer"), "user": {"token": c.viewer_token}}));
            contexts
                .push(json!({"name": n, "context": {"cluster": n, "user": format!("{n}-admin")}}));
            contexts.push(json!({"name": format!("{n}-viewer"), "context": {"cluster": n, "user": format!("{n}-viewer")}}));
            users.push(
                json!({"name": format!("{n}-bookstore-dev"), "user": {"token": c.dev_token}}),
            );
            contexts.push(json!({"name": format!("{n}-bookstore-dev"), "context": {"cluster": n, "user": format!("{n}-bookstore-dev"), "namespace": "bookstore"}}));
        }
        json!({
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "current-context": self.clusters.first().map(|c| c.name().to_string()).unwrap_or_default(),
            "clusters": clusters, "users": users, "contexts": contexts,
        })
    }

    /// Write the kubeconfig (mode 0600: it holds tokens).
    pub fn write_kubeconfig(&self, path: &Path) -> anyhow::Result<()> {
        let text = meshdeck_core::yaml::to_string(&self.kubeconfig())
            .map_err(|e| anyhow::anyhow!("serializing the kubeconfig: {e}"))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        write_private(path, text.as_bytes())
            .with_context(|| format!("writing the kubeconfig {}", path.display()))
    }

    pub async fn shutdown(mut self) {
        self.stop.cancel();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}
