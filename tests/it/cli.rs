//! The meshdeck binary's headless commands against an in-process simulated fleet.

use crate::common::*;
use meshdeck::sim::FaultSpec;
use std::process::Command;

#[tokio::test]
async fn status_prints_every_cluster_and_exits_3_when_one_is_down() {
    let f = fleet(3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let kc = kc.to_str().expect("path");
    let ok = meshdeck(
        dir.path(),
        &[
            "status",
            "--kubeconfig",
            kc,
            "--context",
            "eu-west,us-east,ap-south",
            "--workloads",
        ],
    )
    .await;
    let out = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("CLUSTER") && lines[0].contains("HEALTH"));
    for c in ["eu-west", "us-east", "ap-south"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(c) && l.contains("synced") && l.contains("istio 1.")),
            "{c}: {out}"
        );
    }
    assert!(
        out.contains("no sidecar in injected namespace payments"),
        "{out}"
    );
    // JSON: machine-readable, counts and states
    let js = meshdeck(
        dir.path(),
        &[
            "status",
            "--kubeconfig",
            kc,
            "--context",
            "eu-west",
            "-o",
            "json",
        ],
    )
    .await;
    let v: serde_json::Value = serde_json::from_slice(&js.stdout).expect("json");
    assert_eq!(v["clusters"][0]["state"]["state"], "synced");
    assert_eq!(
        v["clusters"][0]["counts"]["pods"].as_u64(),
        Some(f.clusters[0].state.store.count("pods") as u64)
    );
    // one cluster down: exit 3, still printing what it knows
    f.fault("us-east", &FaultSpec::Down).expect("down");
    let down = meshdeck(
        dir.path(),
        &[
            "status",
            "--kubeconfig",
            kc,
            "--context",
            "eu-west,us-east",
            "--wait-synced",
            "2",
        ],
    )
    .await;
    let out = String::from_utf8_lossy(&down.stdout);
    assert_eq!(down.status.code(), Some(3), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("eu-west") && l.contains("synced")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("us-east") && l.contains("unreachable")),
        "{out}"
    );
    assert!(out.contains("us-east: unreachable:"), "{out}");
    // a bad context is a usage error naming the kubeconfig
    let bad = meshdeck(
        dir.path(),
        &["status", "--kubeconfig", kc, "--context", "nowhere"],
    )
    .await;
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("context \"nowhere\" not found in kubeconfig") && err.contains(kc),
        "{err}"
    );
}

#[tokio::test]
async fn settings_fleet_list_chooses_the_contexts() {
    let f = fleet(2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    std::fs::create_dir_all(dir.path().join("config/meshdeck")).expect("mkdir");
    std::fs::write(
        dir.path().join("config/meshdeck/config.yaml"),
        "fleet: [us-east-viewer, eu-west]\n",
    )
    .expect("settings");
    let out = meshdeck(
        dir.path(),
        &["status", "--kubeconfig", kc.to_str().expect("path")],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let names: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names,
        vec!["us-east", "eu-west"],
        "clusters, by their names"
    );
}

#[tokio::test]
async fn info_prints_every_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = meshdeck(dir.path(), &["info"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    for key in [
        "config dir",
        "settings",
        "themes",
        "keymaps",
        "log",
        "audit log",
        "drafts",
        "kubeconfig",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(key)),
            "{key} missing:\n{text}"
        );
    }
    assert!(
        text.contains(
            &dir.path()
                .join("state/meshdeck/meshdeck.log")
                .display()
                .to_string()
        ),
        "{text}"
    );
}

/// Two demos at once each have their own kubeconfig (a second one overwrote the first's), and
/// each removes its own when it stops.
#[test]
fn two_demos_have_their_own_kubeconfigs() {
    use std::io::{BufRead, BufReader};
    let home = tempfile::tempdir().expect("tempdir");
    let start = || {
        let mut child = crate::common::meshdeck_in(home.path())
            .args(["demo", "--no-console", "--clusters", "1", "--churn-ms", "0"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("demo");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // read every line the demo prints (a reader that went away would close its pipe)
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(p) = line.trim().strip_prefix("kubeconfig") {
                    let _ = tx.send(std::path::PathBuf::from(p.trim()));
                }
            }
        });
        let path = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the demo says where its kubeconfig is");
        (child, path)
    };
    let (mut a, ka) = start();
    let (mut b, kb) = start();
    assert_ne!(ka, kb);
    let (ta, tb) = (
        std::fs::read_to_string(&ka).expect("a's kubeconfig"),
        std::fs::read_to_string(&kb).expect("b's kubeconfig"),
    );
    assert_ne!(ta, tb, "each demo has its own servers and tokens");
    for (c, k) in [(&mut a, &ka), (&mut b, &kb)] {
        let st = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .expect("kill");
        assert!(st.success());
        let exit = c.wait().expect("wait");
        assert!(exit.success(), "{exit:?}");
        assert!(!k.exists(), "{} removed when its demo stopped", k.display());
    }
}

/// A context whose cluster entry is missing fails alone: the others are shown, the run says
/// which context was left out and exits 3 (partial), not 2.
#[tokio::test]
async fn a_broken_context_fails_only_itself() {
    let f = fleet(2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut kc = f.kubeconfig();
    kc["contexts"]
        .as_array_mut()
        .expect("contexts")
        .push(serde_json::json!({"name": "lost", "context": {"cluster": "gone", "user": "eu-west-admin"}}));
    let path = dir.path().join("kc");
    std::fs::write(&path, serde_json::to_string(&kc).expect("json")).expect("kc");
    let out = meshdeck(
        dir.path(),
        &[
            "status",
            "--kubeconfig",
            path.to_str().expect("path"),
            "--all-contexts",
        ],
    )
    .await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains("context \"lost\"") && stderr.contains("left out"),
        "{stderr}"
    );
    for c in ["eu-west", "us-east"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(c) && l.contains("synced")),
            "{stdout}"
        );
    }
    // it does not vanish: the fleet keeps it as a cluster that never connected, with why
    let row = stdout
        .lines()
        .find(|l| l.starts_with("lost"))
        .unwrap_or_else(|| panic!("a row for the broken context: {stdout}"));
    assert!(row.contains("config") && !row.contains(" ok"), "{row}");
    let out = meshdeck(
        dir.path(),
        &[
            "status",
            "-o",
            "json",
            "--kubeconfig",
            path.to_str().expect("path"),
            "--all-contexts",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let lost = v["clusters"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "lost"))
        .unwrap_or_else(|| panic!("{v}"));
    let text = lost.to_string();
    assert!(
        text.contains("gone"),
        "the reason names the missing cluster entry: {text}"
    );
    // named alone, it is the whole run's error
    let out = meshdeck(
        dir.path(),
        &[
            "status",
            "--kubeconfig",
            path.to_str().expect("path"),
            "--context",
            "lost",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("context \"lost\""));
}

/// A demo whose reader went away (`meshdeck demo --no-console | head -1`) keeps serving and
/// stops cleanly: printing to a closed pipe is not a panic.
#[test]
fn a_demo_with_a_closed_stdout_does_not_panic() {
    use std::io::Read;
    let home = tempfile::tempdir().expect("tempdir");
    let mut child = crate::common::meshdeck_in(home.path())
        .args(["demo", "--no-console", "--clusters", "1", "--churn-ms", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("demo");
    let mut out = child.stdout.take().expect("stdout");
    let mut first = [0u8; 8];
    out.read_exact(&mut first)
        .expect("the demo starts printing");
    drop(out);
    // give it time to print the rest into the closed pipe
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "still serving"
    );
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    let o = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{:?} {err}", o.status);
    assert!(!err.contains("panicked"), "{err}");
}

/// A login proxy that answers an HTML page is said to be one (not `expected value at line 1
/// column 1`), for that cluster only.
#[tokio::test]
async fn an_html_login_page_is_named_as_one() {
    let f = fleet(2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    f.fault("us-east", &FaultSpec::Html).expect("fault");
    let out = meshdeck(
        dir.path(),
        &[
            "status",
            "--kubeconfig",
            kc.to_str().expect("kc"),
            "--context",
            "eu-west,us-east",
            "--wait-synced",
            "3",
            "-o",
            "json",
        ],
    )
    .await;
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("the server answered an HTML page (200 text/html; charset=utf-8) for /"),
        "{text}"
    );
    assert!(
        text.contains("not the Kubernetes API's JSON: a login proxy in front of the API server?"),
        "{text}"
    );
    assert!(!text.contains("expected value at line 1"), "{text}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let state = |name: &str| {
        v["clusters"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name))
            .map(|c| c["state"]["state"].clone())
    };
    assert_eq!(state("eu-west"), Some(serde_json::json!("synced")));
    assert_ne!(state("us-east"), Some(serde_json::json!("synced")));
}

/// A misbehaving server cannot grow meshdeck without bound: a 100 MiB answer and a watch line
/// that never ends each fail that cluster with a message that says so, and the whole `status`
/// process stays under 400 MiB at its peak (about 155 MiB measured) (it grew to 0.7–1.2 GB and 3.4 GiB before).
#[tokio::test]
async fn huge_bodies_are_bounded() {
    // every list fails, so the outcome does not depend on when `status` looks (an endless
    // watch line, which can come after a good list, is tested with the console that keeps
    // running: console_e2e.rs)
    {
        let (fault, says) = (FaultSpec::HugeBody, "passed 64 MiB: refused");
        let f = fleet(2).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let kc = dir.path().join("kc");
        f.write_kubeconfig(&kc).expect("kubeconfig");
        f.fault("us-east", &fault).expect("fault");
        let out = meshdeck(
            dir.path(),
            &[
                "status",
                "--kubeconfig",
                kc.to_str().expect("kc"),
                "--context",
                "eu-west,us-east",
                "--wait-synced",
                "4",
            ],
        )
        .await;
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(3), "{fault:?}: {text}");
        assert!(text.contains(says), "{fault:?}: {text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("eu-west") && l.contains("synced")),
            "{text}"
        );
        let log =
            std::fs::read_to_string(dir.path().join("state/meshdeck/meshdeck.log")).expect("log");
        let peak: u64 = log
            .lines()
            .find(|l| l.contains("fleet snapshot ready"))
            .and_then(|l| l.split("peak_rss_kib=").nth(1))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("the status logs its peak memory");
        eprintln!("{fault:?}: peak {peak} KiB");
        assert!(peak < 400 * 1024, "{fault:?}: peak {peak} KiB");
    }
}
