//! Shared helpers of the integration tests: an in-process simulated fleet and kube-rs clients
//! for its contexts, over real HTTPS on 127.0.0.1.

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use meshdeck::sim::{Fleet, FleetSpec, Scenario};
use std::time::Duration;

pub async fn fleet(n: usize) -> Fleet {
    Fleet::start(FleetSpec {
        clusters: n,
        bookmark_interval: Duration::from_millis(300),
        ..FleetSpec::default()
    })
    .await
    .expect("fleet starts")
}

pub async fn fleet_with(spec: FleetSpec) -> Fleet {
    Fleet::start(spec).await.expect("fleet starts")
}

pub fn empty_spec(n: usize) -> FleetSpec {
    FleetSpec {
        clusters: n,
        scenario: Scenario::Empty,
        bookmark_interval: Duration::from_millis(300),
        ..FleetSpec::default()
    }
}

/// The targets of these contexts of the fleet's kubeconfig (written in a tempdir kept with them).
pub async fn targets(
    f: &Fleet,
    contexts: &[&str],
) -> (Vec<meshdeck::fleet::Target>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let t = meshdeck::fleet::kubeconfig::targets(
        &[kc],
        &meshdeck::fleet::Selection::Named(contexts.iter().map(|s| s.to_string()).collect()),
    )
    .await
    .expect("targets");
    (t, dir)
}

/// A live fleet over these contexts, in process.
pub async fn connect(
    f: &Fleet,
    contexts: &[&str],
) -> (meshdeck::fleet::FleetHandle, tempfile::TempDir) {
    let (t, dir) = targets(f, contexts).await;
    (meshdeck::fleet::start(t), dir)
}

pub fn kubeconfig(f: &Fleet) -> Kubeconfig {
    serde_json::from_value(f.kubeconfig()).expect("kubeconfig deserializes")
}

pub async fn config(f: &Fleet, context: &str) -> Config {
    Config::from_custom_kubeconfig(
        kubeconfig(f),
        &KubeConfigOptions {
            context: Some(context.to_string()),
            ..Default::default()
        },
    )
    .await
    .expect("config for context")
}

pub async fn client(f: &Fleet, context: &str) -> Client {
    Client::try_from(config(f, context).await).expect("client")
}

/// Wait until `cond` holds, polling every 20 ms, for at most `secs`.
pub async fn eventually<F: FnMut() -> bool>(secs: u64, mut cond: F) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// The meshdeck binary in a home of its own: its settings and state there, no inherited
/// KUBECONFIG, no standard input.
pub fn meshdeck_in(home: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_meshdeck"));
    c.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env_remove("KUBECONFIG")
        .stdin(std::process::Stdio::null());
    c
}

/// Wait until the latest snapshot satisfies `cond` (at most `secs`), and return it.
pub async fn until(
    h: &mut meshdeck::fleet::FleetHandle,
    secs: u64,
    cond: impl Fn(&meshdeck::model::Snapshot) -> bool,
) -> std::sync::Arc<meshdeck::model::Snapshot> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let s = h.latest();
        if cond(&s) {
            return s;
        }
        if tokio::time::timeout_at(deadline, h.snapshots.changed())
            .await
            .is_err()
        {
            return h.latest();
        }
    }
}

/// What a process wrote: its standard output, then its standard error.
pub fn output_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Run the meshdeck binary in `home` off the async runtime, and wait for it.
pub async fn meshdeck(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    let home = home.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        crate::common::meshdeck_in(&home)
            .args(&args)
            .output()
            .expect("meshdeck runs")
    })
    .await
    .expect("join")
}

/// A real kube-apiserver 1.20 with etcd on 127.0.0.1 (`../shared/realapi/realapi.sh`),
/// stopped when dropped. None (and a line saying why) where etcd or the script is missing;
/// under CI that is a failure, not a skip (`.ci/run` installs etcd-server).
pub struct RealApi {
    pub dir: tempfile::TempDir,
    script: std::path::PathBuf,
}

impl RealApi {
    pub fn start() -> Option<RealApi> {
        let script = std::path::PathBuf::from("../shared/realapi/realapi.sh");
        let etcd = std::process::Command::new("sh")
            .args(["-c", "command -v etcd"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !script.exists() || !etcd {
            let why = format!(
                "real API server not available (script {}: {}, etcd: {etcd})",
                script.display(),
                script.exists()
            );
            assert!(std::env::var_os("CI").is_none(), "{why}");
            eprintln!("skipped: {why}");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let out = std::process::Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(dir.path())
            .env("REALAPI_BIN_DIR", dir.path().join("bin"))
            .output()
            .expect("realapi.sh runs");
        assert!(
            out.status.success(),
            "realapi.sh start: {}",
            output_text(&out)
        );
        Some(RealApi { dir, script })
    }

    pub fn kubeconfig(&self) -> std::path::PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// The server's own audit log: one JSON event per request.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("audit.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for RealApi {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}
