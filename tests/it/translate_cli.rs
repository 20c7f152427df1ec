//! `meshdeck translate` and `meshdeck check` as a user runs them: offline on an inventory
//! directory, and live against an in-process simulated fleet (kube-rs over HTTPS).

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn meshdeck(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshdeck"))
        .args(args)
        .current_dir(root())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env_remove("KUBECONFIG")
        .output()
        .expect("meshdeck runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn translate_offline_prints_a_yaml_stream_with_clusters_and_statuses() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = meshdeck(
        home.path(),
        &[
            "translate",
            "-f",
            "examples/policies",
            "--inventory",
            "tests/data/fleet",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let docs = meshdeck::yaml::from_str_multi(&stdout).expect("stdout is a YAML stream");
    assert!(docs.len() > 10, "{stdout}");
    for d in &docs {
        let cluster = d["metadata"]["annotations"]["meshdeck.io/cluster"]
            .as_str()
            .unwrap_or("");
        assert!(["east", "west", "north"].contains(&cluster), "{d}");
        assert_eq!(
            d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "meshdeck"
        );
    }
    assert!(docs.iter().any(|d| d["kind"] == "VirtualService"
        && d["metadata"]["name"] == "reviews"
        && d["spec"]["http"][0]["route"][1]["destination"]["host"]
            == "reviews.bookinfo.svc.west.global"));
    assert!(
        stderr.contains("TrafficPolicy bookinfo/reviews-shift: accepted"),
        "{stderr}"
    );
    assert!(
        stderr.contains("VirtualMesh gloo-mesh/fleet: accepted"),
        "{stderr}"
    );
    assert!(stderr.contains("0 invalid"), "{stderr}");
}

#[test]
fn translate_json_is_a_list() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = meshdeck(
        home.path(),
        &[
            "translate",
            "-f",
            "examples/policies/reviews-shift.yaml",
            "--inventory",
            "tests/data/fleet",
            "-o",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["kind"], "List");
    assert!(v["items"].as_array().is_some_and(|a| !a.is_empty()));
}

#[test]
fn an_invalid_policy_exits_2_naming_file_line_and_field_and_prints_no_object() {
    let home = tempfile::tempdir().expect("tempdir");
    let bad = home.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {name: t, namespace: bookinfo}\nspec:\n  policy:\n    retries:\n      attempts: three\n",
    )
    .expect("write");
    let out = meshdeck(
        home.path(),
        &[
            "translate",
            "-f",
            bad.to_str().expect("path"),
            "-f",
            "examples/policies/reviews-shift.yaml",
            "--inventory",
            "tests/data/fleet",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "invalid input: {stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:7:17: spec.policy.retries.attempts: expected integer, found \"three\"",
            bad.display()
        )),
        "{stderr}"
    );
    // a run that fails on its input writes nothing to stdout: a pipe (`| kubectl apply -f -`)
    // must not take half a fleet's objects for the whole; the valid file's status still shows
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(stderr.contains("1 invalid"), "{stderr}");
}

#[test]
fn check_prints_no_objects_and_fails_on_conflicts() {
    let home = tempfile::tempdir().expect("tempdir");
    let ok = meshdeck(
        home.path(),
        &[
            "check",
            "-f",
            "examples/policies",
            "--inventory",
            "tests/data/fleet",
        ],
    );
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(ok.stdout.is_empty());
    let clash = home.path().join("clash.yaml");
    std::fs::write(
        &clash,
        "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {name: other-retries, namespace: bookinfo}\nspec:\n  destinationSelector:\n  - kubeServiceRefs: {services: [{name: reviews, namespace: bookinfo, clusterName: east}]}\n  policy:\n    retries: {attempts: 9}\n",
    )
    .expect("write");
    let out = meshdeck(
        home.path(),
        &[
            "check",
            "-f",
            "examples/policies",
            "-f",
            clash.to_str().expect("path"),
            "--inventory",
            "tests/data/fleet",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "partial: {stderr}");
    assert!(stderr.contains("conflicting"), "{stderr}");
}

#[test]
fn a_missing_inventory_is_a_clear_error() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = meshdeck(
        home.path(),
        &[
            "translate",
            "-f",
            "examples/policies",
            "--inventory",
            "no/such/dir",
        ],
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("no/such/dir"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn translate_live_against_the_simulated_fleet() {
    let f = fleet(3).await;
    let home = tempfile::tempdir().expect("tempdir");
    let kc = home.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let policy = home.path().join("p.yaml");
    std::fs::write(
        &policy,
        "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {name: reviews-timeout, namespace: bookstore}\nspec:\n  destinationSelector:\n  - kubeServiceMatcher: {labels: {app: reviews}, namespaces: [bookstore]}\n  policy:\n    requestTimeout: 3s\n",
    )
    .expect("write");
    let args: Vec<String> = [
        "translate",
        "-f",
        policy.to_str().expect("p"),
        "--kubeconfig",
        kc.to_str().expect("kc"),
        "--context",
        "eu-west,us-east,ap-south",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let home_path = home.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        meshdeck(&home_path, &a)
    })
    .await
    .expect("join");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let docs = meshdeck::yaml::from_str_multi(&stdout).expect("yaml");
    let vs: Vec<&serde_json::Value> = docs
        .iter()
        .filter(|d| d["kind"] == "VirtualService")
        .collect();
    let clusters: Vec<&str> = vs
        .iter()
        .filter_map(|d| d["metadata"]["annotations"]["meshdeck.io/cluster"].as_str())
        .collect();
    assert_eq!(clusters, ["ap-south", "eu-west", "us-east"], "{stderr}");
    assert!(vs.iter().all(|d| d["spec"]["http"][0]["timeout"] == "3s"));
    // translating only reads: nothing mutating reached any cluster
    let writes: Vec<_> = f
        .all_requests()
        .into_iter()
        .filter(|e| e.is_mutating())
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
}
