//! Plan, diff and apply against a three-cluster simulated fleet over real HTTPS (kube-rs):
//! create, idempotent re-apply, update diff, prune, unowned objects left alone, a viewer
//! denied before any write, a cluster failing mid-apply, the audit log.

mod common;

use common::*;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use meshdeck::apply::Writer;
use meshdeck::model::Snapshot;
use meshdeck::plan::{Action, Plan, plan};
use meshdeck::sim::{FaultSpec, Fleet};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

const CLUSTERS: [&str; 3] = ["eu-west", "us-east", "ap-south"];

fn vs_resource() -> ApiResource {
    ApiResource {
        group: "networking.istio.io".into(),
        version: "v1".into(),
        api_version: "networking.istio.io/v1".into(),
        kind: "VirtualService".into(),
        plural: "virtualservices".into(),
    }
}

fn policy(timeout: &str) -> String {
    format!(
        "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {{name: ratings-timeout, namespace: bookstore}}\nspec:\n  destinationSelector:\n  - kubeServiceRefs: {{services: [{{name: ratings, namespace: bookstore, clusterName: eu-west}}]}}\n  policy:\n    requestTimeout: {timeout}\n"
    )
}

struct Setup {
    session: meshdeck::session::Session,
    snap: Arc<Snapshot>,
    clients: BTreeMap<String, kube::Client>,
    _handle: meshdeck::fleet::FleetHandle,
}

async fn setup(f: &Fleet, suffix: &str) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let names: Vec<String> = CLUSTERS.iter().map(|c| format!("{c}{suffix}")).collect();
    let targets = meshdeck::fleet::kubeconfig::targets(
        &[kc],
        &meshdeck::fleet::Selection::Named(names.clone()),
    )
    .await
    .expect("targets");
    let session = meshdeck::session::Session::from_targets(
        targets.clone(),
        false,
        |_| false,
        Default::default(),
        Duration::from_secs(10),
    );
    let mut handle = meshdeck::fleet::start(targets);
    assert!(
        handle.wait_synced(Duration::from_secs(10)).await,
        "fleet synced"
    );
    let mut clients = BTreeMap::new();
    for n in &names {
        clients.insert(n.clone(), client(f, n).await);
    }
    Setup {
        session,
        snap: handle.latest(),
        clients,
        _handle: handle,
    }
}

async fn make_plan(s: &Setup, policies: &str, prune: bool) -> Plan {
    let loaded = meshdeck::policy::load_str(policies, "p.yaml");
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let out = meshdeck::translate::translate(&loaded.policies, &s.snap);
    let mut live = Vec::new();
    for (c, client) in &s.clients {
        live.extend(
            meshdeck::fleet::fetch::list_generated_kinds(client, c)
                .await
                .expect("list"),
        );
    }
    let clusters: BTreeSet<String> = s.clients.keys().cloned().collect();
    plan(&out.objects, &live, &clusters, prune)
}

fn writer(s: &Setup, audit: &std::path::Path) -> Writer {
    s.session
        .writer(false, audit)
        .expect("writer")
        .expect("a read-write session has a writer")
}

async fn get_vs(s: &Setup, cluster: &str, ns: &str, name: &str) -> Option<DynamicObject> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(s.clients[cluster].clone(), ns, &vs_resource());
    api.get_opt(name).await.expect("get")
}

#[tokio::test]
async fn apply_is_idempotent_shows_updates_and_prunes_exactly() {
    let f = fleet(3).await;
    let s = setup(&f, "").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = dir.path().join("audit.log");
    let w = writer(&s, &audit);

    let p = make_plan(&s, &policy("3s"), true).await;
    let vs: Vec<_> = p.changes().filter(|i| i.kind == "VirtualService").collect();
    assert_eq!(vs.len(), 1);
    assert_eq!(
        (vs[0].cluster.as_str(), vs[0].action),
        ("eu-west", Action::Create)
    );
    let report = w.apply(&p, false).await;
    assert!(report.failed().next().is_none(), "{report:#?}");
    let created = report.outcomes.len();
    let live = get_vs(&s, "eu-west", "bookstore", "ratings")
        .await
        .expect("VS created");
    assert_eq!(live.data["spec"]["http"][0]["timeout"], "3s");
    assert_eq!(
        live.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app.kubernetes.io/managed-by"))
            .map(String::as_str),
        Some("meshdeck")
    );
    assert!(
        get_vs(&s, "us-east", "bookstore", "ratings")
            .await
            .is_none(),
        "only the destination's cluster"
    );
    // the per-destination DestinationRules exist in every cluster, owned by meshdeck
    let dr = ApiResource {
        kind: "DestinationRule".into(),
        plural: "destinationrules".into(),
        ..vs_resource()
    };
    for c in CLUSTERS {
        let api: Api<DynamicObject> = Api::namespaced_with(s.clients[c].clone(), "bookstore", &dr);
        let d = api
            .get_opt("ratings")
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("DR ratings in {c}"));
        assert_eq!(
            d.data["spec"]["host"],
            "ratings.bookstore.svc.cluster.local"
        );
        assert_eq!(
            d.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("meshdeck.io/cluster"))
                .map(String::as_str),
            Some(c)
        );
    }

    // The same policies again: nothing to do.
    let again = make_plan(&s, &policy("3s"), true).await;
    assert!(
        !again.has_changes(),
        "{:#?}",
        again.changes().collect::<Vec<_>>()
    );

    // An edit is one update with a readable diff.
    let edit = make_plan(&s, &policy("5s"), true).await;
    let changes: Vec<_> = edit.changes().collect();
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0].action, Action::Update);
    assert!(
        changes[0].diff.contains("-    timeout: 3s")
            && changes[0].diff.contains("+    timeout: 5s"),
        "{}",
        changes[0].diff
    );
    assert!(w.apply(&edit, false).await.failed().next().is_none());
    assert_eq!(
        get_vs(&s, "eu-west", "bookstore", "ratings")
            .await
            .expect("vs")
            .data["spec"]["http"][0]["timeout"],
        "5s"
    );

    // Removing the policy prunes exactly its VirtualService (the DestinationRules stay generated).
    let gone = make_plan(&s, "", true).await;
    let changes: Vec<_> = gone
        .changes()
        .map(|i| {
            (
                i.cluster.as_str(),
                i.kind.as_str(),
                i.name.as_str(),
                i.action,
            )
        })
        .collect();
    assert_eq!(
        changes,
        [("eu-west", "VirtualService", "ratings", Action::Delete)]
    );
    assert!(w.apply(&gone, false).await.failed().next().is_none());
    assert!(
        get_vs(&s, "eu-west", "bookstore", "ratings")
            .await
            .is_none()
    );

    // One audit line per written object, no secrets.
    let text = std::fs::read_to_string(&audit).expect("audit log");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), created + 2, "{text}");
    let del = lines.last().expect("line");
    assert_eq!(del["action"], "delete");
    assert_eq!(del["cluster"], "eu-west");
    assert_eq!(del["kind"], "VirtualService");
    assert_eq!(
        del["policies"],
        serde_json::json!(["TrafficPolicy/bookstore/ratings-timeout"])
    );
    assert_eq!(del["result"], "ok");
    assert_eq!(del["user"], "admin");
    let kubeconfig = serde_json::to_string(&f.kubeconfig()).expect("kc");
    for token in kubeconfig
        .split('"')
        .filter(|t| t.len() > 20 && !t.contains('/') && !t.contains(':'))
    {
        assert!(
            !text.contains(token),
            "the audit log must not contain credentials"
        );
    }
}

#[tokio::test]
async fn an_unowned_object_is_reported_not_clobbered() {
    let f = fleet(3).await;
    let s = setup(&f, "").await;
    // The demo fleet has its own `reviews` VirtualService (not meshdeck's) in bookstore.
    let theirs = "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {name: reviews-timeout, namespace: bookstore}\nspec:\n  destinationSelector:\n  - kubeServiceRefs: {services: [{name: reviews, namespace: bookstore, clusterName: eu-west}]}\n  policy:\n    requestTimeout: 3s\n";
    let p = make_plan(&s, theirs, true).await;
    let item = p
        .items
        .iter()
        .find(|i| i.kind == "VirtualService" && i.name == "reviews")
        .expect("item");
    assert_eq!(item.action, Action::Conflict);
    assert!(meshdeck::plan::render(&p, false).contains("exists and is not managed by meshdeck"));
    let dir = tempfile::tempdir().expect("tempdir");
    let report = writer(&s, &dir.path().join("audit.log"))
        .apply(&p, false)
        .await;
    assert!(report.failed().next().is_none());
    assert!(
        report
            .outcomes
            .iter()
            .all(|o| o.name != "reviews" || o.kind != "VirtualService")
    );
    let live = get_vs(&s, "eu-west", "bookstore", "reviews")
        .await
        .expect("still there");
    assert!(
        live.data["spec"]["http"][0].get("timeout").is_none(),
        "left alone"
    );
    assert_eq!(
        live.data["spec"]["http"][0]["route"][0]["destination"]["subset"],
        "v1"
    );
}

#[tokio::test]
async fn a_viewer_is_denied_at_the_dry_run_and_nothing_is_written() {
    let f = fleet(3).await;
    let s = setup(&f, "-viewer").await;
    let p = make_plan(
        &s,
        &policy("3s").replace("clusterName: eu-west", "clusterName: eu-west-viewer"),
        true,
    )
    .await;
    assert!(p.has_changes());
    let dir = tempfile::tempdir().expect("tempdir");
    let report = writer(&s, &dir.path().join("audit.log"))
        .apply(&p, false)
        .await;
    assert!(report.dry_run_failed);
    let e = report
        .failed()
        .next()
        .expect("a failure")
        .result
        .clone()
        .expect_err("error");
    assert!(
        e.contains("403") || e.to_lowercase().contains("forbidden"),
        "{e}"
    );
    assert!(
        f.all_requests().iter().all(|r| !r.is_mutating()),
        "nothing written"
    );
    assert!(
        !dir.path().join("audit.log").exists()
            || std::fs::read_to_string(dir.path().join("audit.log"))
                .unwrap_or_default()
                .is_empty()
    );
}

#[tokio::test]
async fn a_cluster_failing_mid_apply_leaves_the_others_applied_and_a_rerun_completes() {
    let f = fleet(3).await;
    let s = setup(&f, "").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let w = writer(&s, &dir.path().join("audit.log"));
    let p = make_plan(&s, &policy("3s"), true).await;
    assert!(!w.dry_run(&p).await.dry_run_failed);
    f.fault("us-east", &FaultSpec::Down).expect("fault");
    let report = w.write(&p).await;
    let per = report.per_cluster();
    assert_eq!(per["eu-west"].1, 0);
    assert_eq!(per["ap-south"].1, 0);
    assert!(per["us-east"].1 > 0 && per["us-east"].0 == 0, "{per:?}");
    assert!(
        get_vs(&s, "eu-west", "bookstore", "ratings")
            .await
            .is_some()
    );
    f.fault("us-east", &FaultSpec::Up).expect("fault");
    let rest = make_plan(&s, &policy("3s"), true).await;
    assert!(
        rest.changes().all(|i| i.cluster == "us-east"),
        "only us-east left to do"
    );
    assert!(rest.has_changes());
    assert!(w.apply(&rest, false).await.failed().next().is_none());
    assert!(!make_plan(&s, &policy("3s"), true).await.has_changes());
}

#[tokio::test]
async fn cli_apply_then_diff_shows_no_changes() {
    let f = fleet(3).await;
    let home = tempfile::tempdir().expect("tempdir");
    let kc = home.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let p = home.path().join("p.yaml");
    std::fs::write(&p, policy("4s")).expect("write");
    let (kc, p) = (
        kc.to_str().expect("kc").to_string(),
        p.to_str().expect("p").to_string(),
    );
    let home_path = home.path().to_path_buf();
    let runs = tokio::task::spawn_blocking(move || {
        let run = |args: &[&str]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_meshdeck"))
                .args(args)
                .env("HOME", &home_path)
                .env("XDG_CONFIG_HOME", home_path.join("config"))
                .env("XDG_STATE_HOME", home_path.join("state"))
                .env_remove("KUBECONFIG")
                .stdin(std::process::Stdio::null())
                .output()
                .expect("runs")
        };
        let ctx = "eu-west,us-east,ap-south";
        vec![
            run(&["apply", "-f", &p, "--kubeconfig", &kc, "--context", ctx]),
            run(&[
                "apply",
                "--yes",
                "-f",
                &p,
                "--kubeconfig",
                &kc,
                "--context",
                ctx,
            ]),
            run(&["diff", "-f", &p, "--kubeconfig", &kc, "--context", ctx]),
        ]
    })
    .await
    .expect("join");
    let text = output_text;
    assert_eq!(
        runs[0].status.code(),
        Some(2),
        "no terminal, no --yes: {}",
        text(&runs[0])
    );
    assert!(text(&runs[0]).contains("add --yes"));
    assert_eq!(runs[1].status.code(), Some(0), "{}", text(&runs[1]));
    assert!(
        text(&runs[1]).contains("eu-west create VirtualService bookstore/ratings: ok"),
        "{}",
        text(&runs[1])
    );
    assert!(
        text(&runs[1]).contains("eu-west: applied"),
        "{}",
        text(&runs[1])
    );
    assert_eq!(runs[2].status.code(), Some(0), "{}", text(&runs[2]));
    let audit = home.path().join("state/meshdeck/audit.log");
    assert!(
        std::fs::read_to_string(&audit)
            .expect("audit")
            .contains("\"ratings\"")
    );
}

fn run_cli(home: &std::path::Path, args: Vec<String>) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_meshdeck"))
        .args(&args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env_remove("KUBECONFIG")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("runs")
}

/// Stdout then stderr, as one text for messages and assertions.
fn output_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Run the binary off the runtime's threads: (exit code, stdout + stderr).
async fn cli(home: &std::path::Path, args: Vec<String>) -> (Option<i32>, String) {
    let h = home.to_path_buf();
    let o = tokio::task::spawn_blocking(move || run_cli(&h, args))
        .await
        .expect("join");
    (o.status.code(), output_text(&o))
}

#[tokio::test]
async fn a_role_for_one_namespace_cannot_apply_to_another_and_nothing_is_sent() {
    let f = fleet(3).await;
    let home = tempfile::tempdir().expect("tempdir");
    let kc = home.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let roles = home.path().join("roles.yaml");
    std::fs::write(&roles, "apiVersion: rbac.enterprise.mesh.gloo.solo.io/v1\nkind: Role\nmetadata: {name: bookstore-team, namespace: gloo-mesh}\nspec:\n  trafficPolicyScopes:\n  - trafficPolicyActions: [REQUEST_TIMEOUT, RETRIES]\n    destinationSelectors: [{kubeServiceMatcher: {namespaces: [bookstore], clusters: [\"*\"]}}]\n    workloadSelectors: [{kubeWorkloadMatcher: {namespaces: [\"*\"], clusters: [\"*\"]}}]\n---\napiVersion: rbac.enterprise.mesh.gloo.solo.io/v1\nkind: RoleBinding\nmetadata: {name: alice, namespace: gloo-mesh}\nspec:\n  roleRef: {name: bookstore-team, namespace: gloo-mesh}\n  subjects: [{kind: User, name: alice}]\n").expect("roles");
    let ok = home.path().join("ok.yaml");
    std::fs::write(&ok, policy("2s")).expect("ok");
    let bad = home.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {name: payments-timeout, namespace: payments}\nspec:\n  destinationSelector:\n  - kubeServiceMatcher: {namespaces: [payments], labels: {app: payments}, clusters: [eu-west]}\n  policy:\n    requestTimeout: 1s\n").expect("bad");
    let s = |p: &std::path::Path| p.to_str().expect("path").to_string();
    let base = |file: &std::path::Path| -> Vec<String> {
        [
            "apply",
            "--yes",
            "-f",
            &s(file),
            "--roles",
            &s(&roles),
            "--as",
            "alice",
            "--kubeconfig",
            &s(&kc),
            "--context",
            "eu-west,us-east,ap-south",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect()
    };
    let (code, out) = cli(home.path(), base(&bad)).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(
            "role check: TrafficPolicy payments/payments-timeout: not allowed for \"alice\""
        ),
        "{out}"
    );
    assert!(
        out.contains("destinationSelector[0]") && out.contains("payments"),
        "{out}"
    );
    assert!(out.contains("nothing was sent"), "{out}");
    let after_denied: Vec<_> = f
        .all_requests()
        .into_iter()
        .filter(|e| e.is_write())
        .collect();
    assert!(after_denied.is_empty(), "{after_denied:?}");
    // the same role may apply a policy on its own namespace
    let (code, out) = cli(home.path(), base(&ok)).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("role check: 1 changed policies allowed for \"alice\""),
        "{out}"
    );
    assert!(
        out.contains("default objects of destinations outside \"alice\"'s roles left out"),
        "{out}"
    );
    let written: Vec<_> = f
        .all_requests()
        .into_iter()
        .filter(|e| e.is_mutating())
        .collect();
    assert!(!written.is_empty());
    assert!(
        written
            .iter()
            .all(|e| e.path.contains("/namespaces/bookstore/")),
        "only bookstore: {written:?}"
    );
}

#[tokio::test]
async fn a_viewer_is_denied_by_access_review_before_any_write() {
    let f = fleet(3).await;
    let home = tempfile::tempdir().expect("tempdir");
    let kc = home.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let p = home.path().join("p.yaml");
    std::fs::write(
        &p,
        policy("2s").replace("clusterName: eu-west", "clusterName: eu-west-viewer"),
    )
    .expect("p");
    let args: Vec<String> = [
        "apply",
        "--yes",
        "-f",
        p.to_str().expect("p"),
        "--kubeconfig",
        kc.to_str().expect("kc"),
        "--context",
        "eu-west-viewer,us-east-viewer,ap-south-viewer",
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    let (code, out) = cli(home.path(), args).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("kubernetes rbac: eu-west-viewer VirtualService bookstore/ratings: Kubernetes RBAC in eu-west-viewer denies"), "{out}");
    let writes: Vec<_> = f
        .all_requests()
        .into_iter()
        .filter(|e| e.is_write())
        .collect();
    assert!(writes.is_empty(), "not even a dry-run: {writes:?}");
    let reviews = f
        .all_requests()
        .into_iter()
        .filter(|e| e.path.ends_with("selfsubjectaccessreviews"))
        .count();
    assert!(reviews > 0);
}

#[tokio::test]
async fn policies_are_stored_in_the_management_cluster_and_pruned_with_their_objects() {
    let f = fleet(3).await;
    let home = tempfile::tempdir().expect("tempdir");
    let kc = home.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let a = home.path().join("a.yaml");
    std::fs::write(&a, policy("2s")).expect("a");
    let b = home.path().join("b.yaml");
    std::fs::write(
        &b,
        policy("2s")
            .replace("ratings-timeout", "details-timeout")
            .replace("name: ratings,", "name: details,"),
    )
    .expect("b");
    let s = |p: &std::path::Path| p.to_str().expect("path").to_string();
    let args = |verb: &str, file: &std::path::Path| -> Vec<String> {
        let mut v: Vec<String> = [
            verb,
            "-f",
            &s(file),
            "--mgmt-context",
            "eu-west",
            "--prune",
            "--kubeconfig",
            &s(&kc),
            "--context",
            "eu-west,us-east,ap-south",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        if verb == "apply" {
            v.push("--yes".into());
        }
        v
    };
    let h = home.path().to_path_buf();
    let (apply_a, diff_a, apply_b) = (args("apply", &a), args("diff", &a), args("apply", &b));
    let runs = tokio::task::spawn_blocking(move || {
        (
            run_cli(&h, apply_a),
            run_cli(&h, diff_a),
            run_cli(&h, apply_b),
        )
    })
    .await
    .expect("join");
    let text = output_text;
    assert_eq!(runs.0.status.code(), Some(0), "{}", text(&runs.0));
    assert!(
        text(&runs.0).contains("eu-west create TrafficPolicy bookstore/ratings-timeout: ok"),
        "{}",
        text(&runs.0)
    );
    assert_eq!(
        runs.1.status.code(),
        Some(0),
        "applied twice is no change: {}",
        text(&runs.1)
    );
    let out = text(&runs.2);
    assert_eq!(runs.2.status.code(), Some(0), "{out}");
    assert!(
        out.contains("eu-west delete TrafficPolicy bookstore/ratings-timeout: ok"),
        "{out}"
    );
    assert!(
        out.contains("eu-west delete VirtualService bookstore/ratings: ok"),
        "{out}"
    );
    assert!(
        out.contains("eu-west create TrafficPolicy bookstore/details-timeout: ok"),
        "{out}"
    );
    let ar = ApiResource {
        group: "networking.mesh.gloo.solo.io".into(),
        version: "v1".into(),
        api_version: "networking.mesh.gloo.solo.io/v1".into(),
        kind: "TrafficPolicy".into(),
        plural: "trafficpolicies".into(),
    };
    let api: Api<DynamicObject> =
        Api::namespaced_with(client(&f, "eu-west").await, "bookstore", &ar);
    assert!(api.get_opt("ratings-timeout").await.expect("get").is_none());
    let stored = api
        .get_opt("details-timeout")
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(stored.data["spec"]["policy"]["requestTimeout"], "2s");
}
