//! Conformance: real kubectl against `meshdeck sim serve` (the binary, as a user runs it).
//! Each test starts its own simulator and gives kubectl its own HOME (kubectl caches discovery
//! per host:port, and ports are reused). `MESHDECK_KUBECTL` picks another kubectl binary.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Sim {
    child: Child,
    home: tempfile::TempDir,
    kubeconfig: PathBuf,
    control: String,
}

impl Sim {
    fn start(clusters: u32) -> Sim {
        let home = tempfile::tempdir().expect("tempdir");
        let kubeconfig = home.path().join("kubeconfig");
        let mut child = Command::new(env!("CARGO_BIN_EXE_meshdeck"))
            .args([
                "sim",
                "serve",
                "--clusters",
                &clusters.to_string(),
                "--control",
                "127.0.0.1:0",
                "--kubeconfig",
            ])
            .arg(&kubeconfig)
            .env("HOME", home.path())
            .env("XDG_STATE_HOME", home.path().join("state"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("meshdeck sim serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("ready line");
        assert!(
            line.starts_with("meshdeck sim: ready "),
            "unexpected first line: {line:?}"
        );
        let control = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("control="))
            .expect("control address")
            .to_string();
        Sim {
            child,
            home,
            kubeconfig,
            control,
        }
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        let bin = std::env::var("MESHDECK_KUBECTL").unwrap_or_else(|_| "kubectl".into());
        Command::new(bin)
            .args(args)
            .env("HOME", self.home.path())
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("KUBECTL_EXTERNAL_DIFF")
            .output()
            .expect("kubectl runs (install it: apt-get install kubernetes-client)")
    }

    fn ctl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_meshdeck"))
            .args(["sim", "ctl", "--control", &self.control])
            .args(args)
            .env("HOME", self.home.path())
            .output()
            .expect("meshdeck sim ctl runs")
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.home.path().join(name);
        std::fs::write(&p, text).expect("write file");
        p
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGTERM, as a service manager would; the simulator must exit 0.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
    }
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "kubectl failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        text(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    text(&o)
}

const VS: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
  namespace: bookstore
spec:
  hosts: [ratings]
  http:
  - route:
    - destination: {host: ratings, subset: v1}
";

#[test]
fn get_pods_across_namespaces_prints_the_pod_table() {
    let sim = Sim::start(2);
    let out = ok(sim.kubectl(&["get", "pods", "-A", "--context", "us-east"]));
    let mut lines = out.lines();
    let header = lines.next().expect("header");
    for col in ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"] {
        assert!(header.contains(col), "{header}");
    }
    let rows: Vec<&str> = lines.collect();
    assert!(rows.iter().any(|r| r.starts_with("istio-system")
        && r.contains("istiod-")
        && r.contains("1/1")
        && r.contains("Running")));
    assert!(
        rows.iter()
            .any(|r| r.starts_with("bookstore") && r.contains("reviews-v2-") && r.contains("2/2"))
    );
    // every pod of the cluster, once
    let json = ok(sim.kubectl(&["get", "pods", "-A", "--context", "us-east", "-o", "json"]));
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["items"].as_array().expect("items").len(), rows.len());
    // us-east (cluster #2) lacks the fraud-check sidecar: 1/1 in an injected namespace
    assert!(
        rows.iter()
            .any(|r| r.contains("fraud-check-") && r.contains("1/1"))
    );
}

#[test]
fn get_virtualservices_shows_the_istio_printer_columns() {
    let sim = Sim::start(1);
    let out = ok(sim.kubectl(&["get", "virtualservices.networking.istio.io", "-A"]));
    let header = out.lines().next().expect("header");
    assert!(
        header.contains("GATEWAYS") && header.contains("HOSTS"),
        "{header}"
    );
    assert!(out.lines().any(|l| l.starts_with("bookstore")
        && l.contains("frontend")
        && l.contains("bookstore-gateway")));
    let short = ok(sim.kubectl(&["get", "vs", "-n", "bookstore", "-o", "name"]));
    assert_eq!(
        short.lines().collect::<Vec<_>>(),
        vec![
            "virtualservice.networking.istio.io/frontend",
            "virtualservice.networking.istio.io/reviews"
        ]
    );
}

#[test]
fn get_pods_watch_sees_a_new_pod() {
    let sim = Sim::start(1);
    let bin = std::env::var("MESHDECK_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let mut watch = Command::new(bin)
        .args(["get", "pods", "-n", "legacy", "-w"])
        .env("HOME", sim.home.path())
        .env("KUBECONFIG", &sim.kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get -w");
    let mut stdout = watch.stdout.take().expect("stdout");
    std::thread::sleep(Duration::from_millis(1500));
    ok(sim.kubectl(&[
        "run",
        "probe",
        "-n",
        "legacy",
        "--image=busybox",
        "--restart=Never",
    ]));
    std::thread::sleep(Duration::from_millis(1000));
    let _ = watch.kill();
    let _ = watch.wait();
    let mut out = String::new();
    stdout.read_to_string(&mut out).expect("read");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.first().is_some_and(|h| h.starts_with("NAME")),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("legacy-billing-")),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("probe")),
        "the watch printed the new pod:\n{out}"
    );
    assert!(!out.contains("<unknown>"), "no stray bookmark rows:\n{out}");
}

#[test]
fn server_side_apply_diff_and_dry_run_delete() {
    let sim = Sim::start(1);
    let f = sim.write("vs.yaml", VS);
    let f = f.to_str().expect("path");
    let out = ok(sim.kubectl(&["apply", "--server-side", "-f", f]));
    assert_eq!(
        out.trim(),
        "virtualservice.networking.istio.io/ratings serverside-applied"
    );
    ok(sim.kubectl(&["apply", "--server-side", "-f", f]));
    let subset = ok(sim.kubectl(&[
        "get",
        "vs",
        "ratings",
        "-n",
        "bookstore",
        "-o",
        "jsonpath={.spec.http[0].route[0].destination.subset}",
    ]));
    assert_eq!(subset, "v1");
    // kubectl's request: apply-patch with its field manager and strict validation
    let log = text(&sim.ctl(&["requests", "eu-west", "--mutating"]));
    assert!(
        log.lines().any(|l| l.contains("\"method\":\"PATCH\"")
            && l.contains("fieldManager=kubectl")
            && l.contains("application/apply-patch+yaml")),
        "{log}"
    );

    // diff: nothing changed → exit 0; a change → exit 1 and the diff
    let same = sim.kubectl(&["diff", "--server-side", "-f", f]);
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stderr)
    );
    let f2 = sim.write("vs2.yaml", &VS.replace("subset: v1", "subset: v2"));
    let changed = sim.kubectl(&["diff", "--server-side", "-f", f2.to_str().expect("path")]);
    assert_eq!(
        changed.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&changed.stderr)
    );
    let d = text(&changed);
    assert!(
        d.contains("-        subset: v1") && d.contains("+        subset: v2"),
        "{d}"
    );
    // the diff was a dry run: the live object is unchanged
    let subset = ok(sim.kubectl(&[
        "get",
        "vs",
        "ratings",
        "-n",
        "bookstore",
        "-o",
        "jsonpath={.spec.http[0].route[0].destination.subset}",
    ]));
    assert_eq!(subset, "v1");

    let del = ok(sim.kubectl(&[
        "delete",
        "vs",
        "ratings",
        "-n",
        "bookstore",
        "--dry-run=server",
    ]));
    assert!(del.contains("deleted (server dry run)"), "{del}");
    ok(sim.kubectl(&["get", "vs", "ratings", "-n", "bookstore"]));
    // the viewer may not apply
    let denied = sim.kubectl(&[
        "apply",
        "--server-side",
        "-f",
        f2.to_str().expect("path"),
        "--context",
        "eu-west-viewer",
    ]);
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("Forbidden"));
}

#[test]
fn auth_can_i_answers_per_user() {
    let sim = Sim::start(1);
    let admin = sim.kubectl(&[
        "auth",
        "can-i",
        "patch",
        "virtualservices",
        "-n",
        "bookstore",
    ]);
    assert_eq!(text(&admin).trim(), "yes");
    let viewer = sim.kubectl(&[
        "auth",
        "can-i",
        "patch",
        "virtualservices",
        "-n",
        "bookstore",
        "--context",
        "eu-west-viewer",
    ]);
    assert_eq!(text(&viewer).trim(), "no");
    assert_eq!(viewer.status.code(), Some(1));
    let list = sim.kubectl(&[
        "auth",
        "can-i",
        "list",
        "pods",
        "-A",
        "--context",
        "eu-west-viewer",
    ]);
    assert_eq!(text(&list).trim(), "yes");
}

#[test]
fn istios_valid_samples_apply_server_side() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/istio-samples/valid");
    let sim = Sim::start(1);
    ok(sim.kubectl(&["create", "namespace", "samples"]));
    let mut applied = 0;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("samples dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 17,
        "vendored samples present: {}",
        files.len()
    );
    for file in files {
        // one sample names `namespace: default`; kubectl refuses a conflicting -n
        let text = std::fs::read_to_string(&file).expect("read sample");
        let ns = if text.contains("namespace: default") {
            "default"
        } else {
            "samples"
        };
        let out = ok(sim.kubectl(&[
            "apply",
            "--server-side",
            "-n",
            ns,
            "-f",
            file.to_str().expect("path"),
        ]));
        applied += out
            .lines()
            .filter(|l| l.ends_with("serverside-applied"))
            .count();
    }
    assert_eq!(applied, 41, "every document of the valid samples");
    let se = ok(sim.kubectl(&["get", "serviceentries", "-A", "-o", "name"]));
    assert!(se.lines().count() >= 4, "{se}");
}

#[test]
fn kubectl_create_sends_protobuf_and_it_is_understood() {
    let sim = Sim::start(1);
    ok(sim.kubectl(&["create", "namespace", "team-a"]));
    ok(sim.kubectl(&[
        "create",
        "configmap",
        "flags",
        "-n",
        "team-a",
        "--from-literal=canary=on",
    ]));
    let v = ok(sim.kubectl(&[
        "get",
        "configmap",
        "flags",
        "-n",
        "team-a",
        "-o",
        "jsonpath={.data.canary}",
    ]));
    assert_eq!(v, "on");
    let log = text(&sim.ctl(&["requests", "eu-west"]));
    assert!(
        log.lines().any(
            |l| l.contains("\"path\":\"/api/v1/namespaces/team-a/configmaps\"")
                && l.contains("protobuf")
                && l.contains("\"status\":201")
        ),
        "{log}"
    );
}

#[test]
fn sim_serve_exits_zero_on_sigterm_and_ctl_reports_unknown_clusters() {
    let mut sim = Sim::start(1);
    let bad = sim.ctl(&["fault", "nowhere", "down"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("no simulated cluster named \"nowhere\"")
    );
    let bad = sim.ctl(&["fault", "eu-west", "sideways"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected down, up"));
    let status = Command::new("kill")
        .args(["-TERM", &sim.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let code = loop {
        if let Some(s) = sim.child.try_wait().expect("wait") {
            break s.code();
        }
        assert!(
            Instant::now() < deadline,
            "the simulator did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
}
