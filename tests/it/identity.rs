//! The fleet as it really is: one cluster however many contexts reach it, a user who may read
//! one namespace only, and credential plugins that are slow, fail, or write to the terminal.
//! All against the simulated fleet over real HTTPS, through kube-rs and the meshdeck binary.

use crate::common::*;
use meshdeck::fleet::{self, Selection};
use meshdeck::model::ConnState;
use meshdeck::sim::Fleet;
use std::collections::BTreeMap;
use std::time::Duration;

fn write_kc(dir: &std::path::Path, kc: &serde_json::Value) -> std::path::PathBuf {
    let p = dir.join("kc");
    std::fs::write(&p, serde_json::to_string(kc).expect("json")).expect("kc");
    p
}

async fn run(home: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = meshdeck(home, args).await;
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn contexts_that_reach_one_server_are_one_cluster_named_by_its_entry() {
    let f = fleet(2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = write_kc(dir.path(), &f.kubeconfig());
    let (targets, broken) =
        fleet::kubeconfig::resolve(std::slice::from_ref(&kc), &Selection::All, &BTreeMap::new())
            .await
            .expect("resolve");
    assert!(broken.is_empty());
    // three contexts per cluster (admin, viewer, bookstore-dev): two clusters
    let got: Vec<(&str, &str, Vec<&str>)> = targets
        .iter()
        .map(|t| {
            (
                t.cluster.as_str(),
                t.context.as_str(),
                t.aliases.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "eu-west",
                "eu-west",
                vec!["eu-west-viewer", "eu-west-bookstore-dev"]
            ),
            (
                "us-east",
                "us-east",
                vec!["us-east-viewer", "us-east-bookstore-dev"]
            ),
        ]
    );
    // headless: counted once each
    let (code, out, err) = run(
        dir.path(),
        &[
            "status",
            "--all-contexts",
            "--kubeconfig",
            kc.to_str().expect("kc"),
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    let names: Vec<&str> = out
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["eu-west", "us-east"], "{out}");

    // a settings map renames a cluster; two servers under one name is an error for the second
    let names: BTreeMap<String, String> = [("eu-west".to_string(), "europe".to_string())].into();
    let (t, _) = fleet::kubeconfig::resolve(
        std::slice::from_ref(&kc),
        &Selection::Named(vec!["eu-west-viewer".into()]),
        &names,
    )
    .await
    .expect("resolve");
    assert_eq!(
        (t[0].cluster.as_str(), t[0].context.as_str()),
        ("europe", "eu-west-viewer")
    );
    let clash: BTreeMap<String, String> = [
        ("eu-west".to_string(), "prod".to_string()),
        ("us-east".to_string(), "prod".to_string()),
    ]
    .into();
    let (t, broken) =
        fleet::kubeconfig::resolve(std::slice::from_ref(&kc), &Selection::All, &clash)
            .await
            .expect("resolve");
    assert_eq!(t.len(), 1);
    let e = broken[0].to_string();
    assert!(
        e.contains("\"us-east\"") && e.contains("cluster name \"prod\" already names"),
        "{e}"
    );
}

/// The same cluster under a second name plans no deletes; under a renamed one, objects written
/// for the old name are held, never pruned.
#[tokio::test]
async fn a_prune_under_another_name_for_the_same_cluster_deletes_nothing() {
    let f = fleet(1).await;
    let home = tempfile::tempdir().expect("tempdir");
    let kc = write_kc(home.path(), &f.kubeconfig());
    let kcs = kc.to_str().expect("kc").to_string();
    let pol = home.path().join("p.yaml");
    std::fs::write(
        &pol,
        "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {name: ratings-timeout, namespace: bookstore}\nspec:\n  destinationSelector:\n  - kubeServiceRefs: {services: [{name: ratings, namespace: bookstore, clusterName: eu-west}]}\n  policy:\n    requestTimeout: 3s\n",
    )
    .expect("policy");
    let ps = pol.to_str().expect("p").to_string();
    let (code, out, err) = run(
        home.path(),
        &[
            "apply",
            "--yes",
            "-f",
            &ps,
            "--kubeconfig",
            &kcs,
            "--context",
            "eu-west",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    // the viewer's context reaches the same cluster: the same plan, nothing to change
    let (code, out, err) = run(
        home.path(),
        &[
            "diff",
            "--prune",
            "-f",
            &ps,
            "--kubeconfig",
            &kcs,
            "--context",
            "eu-west-viewer",
        ],
    )
    .await;
    assert_eq!(
        code,
        Some(0),
        "no changes under the second context: {out}{err}"
    );
    // renamed in the settings: what was written for eu-west is held, not deleted
    std::fs::create_dir_all(home.path().join("config/meshdeck")).expect("mkdir");
    std::fs::write(
        home.path().join("config/meshdeck/config.yaml"),
        "clusters:\n  eu-west: europe\n",
    )
    .expect("settings");
    let (code, out, err) = run(
        home.path(),
        &[
            "diff",
            "--prune",
            "-f",
            &ps,
            "--kubeconfig",
            &kcs,
            "--context",
            "eu-west",
            "-o",
            "json",
        ],
    )
    .await;
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|_| panic!("json: {out}{err}"));
    let deletes: Vec<&serde_json::Value> = v["planned"]["plan"]["items"]
        .as_array()
        .map(|a| a.iter().filter(|c| c["action"] == "delete").collect())
        .unwrap_or_default();
    assert!(deletes.is_empty(), "no deletes: {out}");
    assert_eq!(code, Some(3), "held is partial: {out}{err}");
    let held = v["planned"]["held"].as_array().cloned().unwrap_or_default();
    assert!(
        held.iter().any(|h| {
            h["item"]["action"] == "delete"
                && h["reason"].as_str().is_some_and(|r| {
                    r.starts_with("not pruned: it was written for cluster eu-west")
                })
        }),
        "{out}{err}"
    );
    let vs = f
        .cluster("eu-west")
        .expect("c")
        .state
        .store
        .count("virtualservices.networking.istio.io");
    assert!(vs > 0, "the VirtualService is still there");
}

/// A user who may read one namespace sees exactly its objects, as `partial`, never an empty
/// synced cluster; the state says what is forbidden and where it looked instead.
#[tokio::test]
async fn a_namespace_scoped_user_sees_exactly_its_namespace_as_partial() {
    let f = fleet(1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = write_kc(dir.path(), &f.kubeconfig());
    let targets = fleet::kubeconfig::targets(
        std::slice::from_ref(&kc),
        &Selection::Named(vec!["eu-west-bookstore-dev".into()]),
    )
    .await
    .expect("targets");
    let mut h = fleet::start(targets);
    assert!(h.wait_synced(Duration::from_secs(15)).await, "settled");
    let s = h.latest();
    let c = s.cluster("eu-west").expect("one cluster, by its name");
    let store = &f.cluster("eu-west").expect("c").state.store;
    let truth = |key: &str| store.list(key, Some("bookstore")).1.len();
    assert!(truth("pods") > 0);
    match &c.state {
        ConnState::Partial { forbidden } => {
            assert!(
                forbidden.starts_with("shown for namespace bookstore only: may not list "),
                "{forbidden}"
            );
        }
        other => panic!("partial expected, got {other:?}"),
    }
    assert_eq!(c.counts.pods, truth("pods"), "pods of bookstore");
    assert_eq!(
        c.counts.services,
        truth("services"),
        "services of bookstore"
    );
    assert!(c.pods.iter().all(|p| p.namespace() == "bookstore"));
    assert!(
        c.health
            .reasons
            .iter()
            .any(|r| r.starts_with("partial view:")),
        "{:?}",
        c.health.reasons
    );
    // the settings can add namespaces; a forbidden one is named
    drop(h);
    let home = tempfile::tempdir().expect("home");
    std::fs::create_dir_all(home.path().join("config/meshdeck")).expect("mkdir");
    std::fs::write(
        home.path().join("config/meshdeck/config.yaml"),
        "contexts:\n  eu-west-bookstore-dev:\n    namespaces: [payments]\n",
    )
    .expect("settings");
    let (code, out, err) = run(
        home.path(),
        &[
            "status",
            "--kubeconfig",
            kc.to_str().expect("kc"),
            "--context",
            "eu-west-bookstore-dev",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    let row = out.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with("eu-west") && row.contains("partial"),
        "{out}"
    );
    assert!(
        !row.contains("synced"),
        "never synced over forbidden data: {out}"
    );
    assert!(out.contains("forbidden in payments: "), "{out}");
}

/// A shell script as a credential plugin: prints an ExecCredential for `token` after its body.
fn plugin(dir: &std::path::Path, name: &str, body: &str, token: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\n{body}\necho '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{token}\"}}}}'\n"
        ),
    )
    .expect("plugin");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

/// Point a context's user at a credential plugin instead of its token.
fn with_plugin(f: &Fleet, user: &str, command: &std::path::Path) -> serde_json::Value {
    let mut kc = f.kubeconfig();
    for u in kc["users"].as_array_mut().expect("users") {
        if u["name"] == user {
            u["user"] = serde_json::json!({"exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": command.to_str().expect("path"),
                "interactiveMode": "IfAvailable",
            }});
        }
    }
    kc
}

/// A plugin that takes 30 s delays only its own cluster, which says it is waiting for
/// credentials; and nothing it writes to the terminal reaches it (its own session: no tty).
#[tokio::test]
async fn a_slow_credential_plugin_delays_only_its_cluster_and_never_touches_the_terminal() {
    let f = fleet(2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let token = f.cluster("us-east").expect("c").admin_token.clone();
    let marker = dir.path().join("tty-opened");
    let own = dir.path().join("own-session");
    // a session leader has its session id equal to its pid (/proc/PID/stat, field 6): no
    // controlling terminal, whether or not the test itself runs in one
    let p = plugin(
        dir.path(),
        "slow-sso",
        &format!(
            "(echo 'PLUGIN WAS HERE' > /dev/tty) 2>/dev/null && touch {m}\nset -- $(cat /proc/$$/stat)\n[ \"$6\" = \"$$\" ] && touch {o}\necho 'refreshing the SSO session' >&2\nsleep 30",
            m = marker.display(),
            o = own.display()
        ),
        &token,
    );
    let kc = write_kc(dir.path(), &with_plugin(&f, "us-east-admin", &p));
    let targets = fleet::kubeconfig::targets(
        std::slice::from_ref(&kc),
        &Selection::Named(vec!["eu-west".into(), "us-east".into()]),
    )
    .await
    .expect("targets");
    assert!(targets[1].credentials.is_some(), "meshdeck runs the plugin");
    let mut h = fleet::start(targets);
    let s = until(&mut h, 15, |s| {
        s.cluster("eu-west")
            .is_some_and(|c| c.state == ConnState::Synced)
    })
    .await;
    assert_eq!(
        s.cluster("eu-west").expect("c").state,
        ConnState::Synced,
        "the other cluster syncs while the plugin sleeps"
    );
    let s = until(&mut h, 5, |s| {
        s.cluster("us-east")
            .is_some_and(|c| matches!(c.state, ConnState::WaitingForCredentials { .. }))
    })
    .await;
    let us = s.cluster("us-east").expect("c");
    match &us.state {
        ConnState::WaitingForCredentials { plugin } => {
            assert!(
                plugin.contains("waiting for credentials: slow-sso"),
                "{plugin}"
            )
        }
        other => panic!("waiting expected, got {other:?}"),
    }
    assert!(
        us.health
            .reasons
            .iter()
            .any(|r| r.contains("waiting for credentials")),
        "{:?}",
        us.health.reasons
    );
    assert!(
        !marker.exists(),
        "the plugin could open /dev/tty: it has a controlling terminal"
    );
    assert!(
        own.exists(),
        "the plugin runs in a session of its own (setsid), without a controlling terminal"
    );
}

/// A plugin that fails twice ("SSO session expired") then works: the cluster is an auth error
/// with the plugin's words while it fails, and recovers by itself.
#[tokio::test]
async fn a_credential_plugin_that_fails_twice_then_works_recovers() {
    let f = fleet(1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let token = f.cluster("eu-west").expect("c").admin_token.clone();
    let count = dir.path().join("runs");
    let p = plugin(
        dir.path(),
        "sso-helper",
        &format!(
            "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}\nif [ $n -le 2 ]; then echo 'SSO session expired: log in again' >&2; exit 1; fi",
            c = count.display()
        ),
        &token,
    );
    let kc = write_kc(dir.path(), &with_plugin(&f, "eu-west-admin", &p));
    let targets = fleet::kubeconfig::targets(
        std::slice::from_ref(&kc),
        &Selection::Named(vec!["eu-west".into()]),
    )
    .await
    .expect("targets");
    let mut h = fleet::start(targets);
    let s = until(&mut h, 10, |s| {
        s.cluster("eu-west")
            .is_some_and(|c| matches!(c.state, ConnState::AuthError { .. }))
    })
    .await;
    match &s.cluster("eu-west").expect("c").state {
        ConnState::AuthError { error } => assert!(
            error.contains("credential plugin sso-helper failed")
                && error.contains("SSO session expired"),
            "{error}"
        ),
        other => panic!("auth error expected, got {other:?}"),
    }
    // retried with backoff (1 s, then 2 s): synced within a few seconds, 20 allowed here
    let s = until(&mut h, 20, |s| {
        s.cluster("eu-west")
            .is_some_and(|c| c.state == ConnState::Synced)
    })
    .await;
    assert_eq!(s.cluster("eu-west").expect("c").state, ConnState::Synced);
    let runs: u32 = std::fs::read_to_string(&count)
        .expect("runs")
        .trim()
        .parse()
        .expect("n");
    assert_eq!(
        runs, 3,
        "run again only after failures; the token is cached once it works"
    );
}

/// An empty token is an auth error that says so (it used to be an empty reason).
#[tokio::test]
async fn an_empty_token_from_a_plugin_is_named() {
    let f = fleet(1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let p = plugin(dir.path(), "empty", "", "");
    let kc = write_kc(dir.path(), &with_plugin(&f, "eu-west-admin", &p));
    let (code, out, err) = run(
        dir.path(),
        &[
            "status",
            "--kubeconfig",
            kc.to_str().expect("kc"),
            "--context",
            "eu-west",
            "--wait-synced",
            "3",
        ],
    )
    .await;
    assert_eq!(code, Some(5), "{out}{err}");
    assert!(
        out.contains("auth-error: credential plugin empty returned an empty token"),
        "{out}{err}"
    );
}
