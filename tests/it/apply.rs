//! Plan, diff and apply against a three-cluster simulated fleet over real HTTPS (kube-rs):
//! create, idempotent re-apply, update diff, prune, unowned objects left alone, a viewer
//! denied before any write, a cluster failing mid-apply, the audit log.

use crate::common::*;
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

/// A timeout on `ratings` in every cluster that runs it (each of the three).
fn policy_everywhere(timeout: &str) -> String {
    format!(
        "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {{name: ratings-timeout, namespace: bookstore}}\nspec:\n  destinationSelector:\n  - kubeServiceMatcher: {{labels: {{app: ratings}}, namespaces: [bookstore]}}\n  policy:\n    requestTimeout: {timeout}\n"
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
    // by cluster name: a `-viewer` context reaches the same cluster, under the same name
    let mut clients = BTreeMap::new();
    for (c, n) in CLUSTERS.iter().zip(&names) {
        clients.insert(c.to_string(), client(f, n).await);
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
    // a timeout asks for no DestinationRule: none is written anywhere (objects exist only
    // because a policy asks for them)
    assert_eq!(created, 1, "{report:#?}");
    let dr = ApiResource {
        kind: "DestinationRule".into(),
        plural: "destinationrules".into(),
        ..vs_resource()
    };
    for c in CLUSTERS {
        let api: Api<DynamicObject> = Api::namespaced_with(s.clients[c].clone(), "bookstore", &dr);
        assert!(api.get_opt("ratings").await.expect("get").is_none(), "{c}");
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

    // Removing the policy prunes exactly its VirtualService.
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
    // an intent before every write and its result after
    assert_eq!(lines.len(), 2 * (created + 2), "{text}");
    assert_eq!(
        lines.iter().filter(|l| l["phase"] == "intent").count(),
        created + 2
    );
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
            .all(|o| o.object.name != "reviews" || o.object.kind != "VirtualService")
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
    let p = make_plan(&s, &policy("3s"), true).await;
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
    let p = make_plan(&s, &policy_everywhere("3s"), true).await;
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
    let rest = make_plan(&s, &policy_everywhere("3s"), true).await;
    assert!(
        rest.changes().all(|i| i.cluster == "us-east"),
        "only us-east left to do"
    );
    assert!(rest.has_changes());
    assert!(w.apply(&rest, false).await.failed().next().is_none());
    assert!(
        !make_plan(&s, &policy_everywhere("3s"), true)
            .await
            .has_changes()
    );
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
            crate::common::meshdeck_in(&home_path)
                .args(args)
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
        Some(4),
        "no terminal, no --yes: refused: {}",
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
    crate::common::meshdeck_in(home)
        .args(&args)
        .output()
        .expect("runs")
}

/// Stdout then stderr, as one text for messages and assertions.
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
    assert_eq!(code, Some(4), "refused: {out}");
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
    // nothing outside her policy is planned (no per-destination objects nobody asked for)
    assert!(!out.contains("default objects"), "{out}");
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
    std::fs::write(&p, policy("2s")).expect("p");
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
    assert_eq!(code, Some(4), "refused: {out}");
    assert!(out.contains("kubernetes rbac: eu-west VirtualService bookstore/ratings: Kubernetes RBAC in eu-west denies"), "{out}");
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

// ── Every write is right, or nothing is written ─────────────────────────────────────────────

const VIRTUAL_MESH: &str = "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: VirtualMesh\nmetadata: {name: fleet, namespace: gloo-mesh}\nspec:\n  meshes:\n  - {name: istiod-istio-system-eu-west, namespace: istio-system}\n  - {name: istiod-istio-system-us-east, namespace: istio-system}\n  - {name: istiod-istio-system-ap-south, namespace: istio-system}\n  federation:\n    selectors:\n    - destinationSelectors:\n      - kubeServiceMatcher: {namespaces: [bookstore]}\n";

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn writes_to(f: &Fleet, cluster: &str) -> Vec<meshdeck::sim::LogEntry> {
    f.requests(cluster)
        .expect("cluster")
        .into_iter()
        .filter(|e| e.is_mutating())
        .collect()
}

#[tokio::test]
async fn prune_with_a_cluster_down_deletes_nothing_in_the_healthy_ones() {
    let f = fleet(3).await;
    let home = tempfile::tempdir().expect("tempdir");
    let kc = home.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let dir = home.path().join("policies");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("vm.yaml"), VIRTUAL_MESH).expect("vm");
    let (kc, d) = (
        kc.to_str().expect("kc").to_string(),
        dir.to_str().expect("dir").to_string(),
    );
    let ctx = "eu-west,us-east,ap-south";
    let apply = strings(&[
        "apply",
        "--yes",
        "--prune",
        "-f",
        &d,
        "--kubeconfig",
        &kc,
        "--context",
        ctx,
        "--wait-synced",
        "3",
    ]);
    let (code, out) = cli(home.path(), apply.clone()).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("create ap-south ServiceEntry"), "{out}");
    f.clear_requests_all();
    // ap-south goes away; the federation objects in eu-west and us-east exist because of it
    f.fault("ap-south", &FaultSpec::Down).expect("fault");
    let (code, out) = cli(home.path(), apply).await;
    assert_eq!(code, Some(3), "partial: {out}");
    assert!(
        out.contains("cluster ap-south is") && out.contains("left out of the plan"),
        "{out}"
    );
    assert!(
        out.contains("not pruned: it may exist because of ap-south"),
        "{out}"
    );
    for c in ["eu-west", "us-east"] {
        let w = writes_to(&f, c);
        assert!(
            w.iter().all(|e| e.method != "DELETE"),
            "{c}: nothing deleted: {w:#?}"
        );
    }
    // back up: the same run prunes nothing (nothing is stale) and exits 0
    f.fault("ap-south", &FaultSpec::Up).expect("fault");
    let (code, out) = cli(
        home.path(),
        strings(&[
            "diff",
            "--prune",
            "-f",
            &d,
            "--kubeconfig",
            &kc,
            "--context",
            ctx,
        ]),
    )
    .await;
    assert_eq!(code, Some(0), "no changes once all are back: {out}");
}

#[tokio::test]
async fn conflicts_and_left_out_clusters_exit_partial_and_a_hung_cluster_fails_alone() {
    let f = fleet(3).await;
    let home = tempfile::tempdir().expect("tempdir");
    let kc = home.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let p = home.path().join("p.yaml");
    // two policies set the same field of one destination: the younger one conflicts
    std::fs::write(
        &p,
        format!(
            "{}---\n{}",
            policy("2s"),
            policy("5s").replace("name: ratings-timeout", "name: ratings-timeout-2")
        ),
    )
    .expect("p");
    let (kc, p) = (
        kc.to_str().expect("kc").to_string(),
        p.to_str().expect("p").to_string(),
    );
    let ctx = "eu-west,us-east,ap-south";
    let (code, out) = cli(
        home.path(),
        strings(&[
            "apply",
            "--yes",
            "-f",
            &p,
            "--kubeconfig",
            &kc,
            "--context",
            ctx,
        ]),
    )
    .await;
    assert_eq!(code, Some(3), "an unresolved conflict is partial: {out}");
    assert!(
        out.contains("conflict: TrafficPolicy bookstore/ratings-timeout-2"),
        "{out}"
    );

    // a cluster that accepts the dry run and never answers the write
    std::fs::write(
        &p,
        policy("3s").replace(
            "services: [{name: ratings, namespace: bookstore, clusterName: eu-west}]",
            "services: [{name: ratings, namespace: bookstore, clusterName: eu-west}, {name: ratings, namespace: bookstore, clusterName: us-east}]",
        ),
    )
    .expect("p");
    f.clear_requests_all();
    f.fault("us-east", &FaultSpec::HangWrites).expect("fault");
    let started = std::time::Instant::now();
    let (code, out) = cli(
        home.path(),
        strings(&[
            "apply",
            "--yes",
            "-f",
            &p,
            "--kubeconfig",
            &kc,
            "--context",
            ctx,
            "--request-timeout",
            "2",
        ]),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(code, Some(3), "partial: {out}");
    assert!(
        out.contains(
            "us-east create VirtualService bookstore/ratings: FAILED: no answer within 2 s"
        ),
        "{out}"
    );
    assert!(out.contains("us-east: applied 0 ok, 1 failed"), "{out}");
    assert!(out.contains("eu-west: applied 1 ok, 0 failed"), "{out}");
    // bounded by the request timeout and the cluster's budget (4 × 2 s), not forever
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert_eq!(
        writes_to(&f, "eu-west").len(),
        1,
        "the healthy cluster is written"
    );
    f.fault("us-east", &FaultSpec::Clear).expect("fault");
}

#[tokio::test]
async fn audit_names_who_wrote_to_each_cluster_and_impersonation_is_real() {
    let f = fleet(3).await;
    let home = tempfile::tempdir().expect("tempdir");
    let kc_path = home.path().join("kc");
    // us-east through a user entry that acts as alice (`as:` in the kubeconfig, as kubectl)
    let mut kc = f.kubeconfig();
    for u in kc["users"].as_array_mut().expect("users") {
        if u["name"] == "us-east-admin" {
            u["user"]["as"] = serde_json::json!("alice");
        }
    }
    std::fs::write(&kc_path, serde_json::to_string(&kc).expect("json")).expect("kc");
    let p = home.path().join("p.yaml");
    std::fs::write(
        &p,
        "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {name: r, namespace: bookstore}\nspec:\n  destinationSelector:\n  - kubeServiceMatcher: {namespaces: [bookstore], labels: {app: ratings}}\n  policy:\n    requestTimeout: 2s\n---\napiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {name: p, namespace: payments}\nspec:\n  destinationSelector:\n  - kubeServiceMatcher: {namespaces: [payments]}\n  policy:\n    requestTimeout: 2s\n",
    )
    .expect("p");
    let (kcs, ps) = (
        kc_path.to_str().expect("kc").to_string(),
        p.to_str().expect("p").to_string(),
    );
    let (code, out) = cli(
        home.path(),
        strings(&[
            "apply",
            "--yes",
            "-f",
            &ps,
            "--kubeconfig",
            &kcs,
            "--context",
            "eu-west,us-east",
        ]),
    )
    .await;
    // alice may write only in bookstore: the payments policy's objects in us-east are denied
    assert_eq!(code, Some(4), "refused by RBAC for alice: {out}");
    assert!(out.contains("Kubernetes RBAC in us-east denies"), "{out}");
    assert!(writes_to(&f, "us-east").is_empty() && writes_to(&f, "eu-west").is_empty());

    // in eu-west as alice: the payments objects are denied there too
    let vm = home.path().join("vm.yaml");
    std::fs::write(
        &vm,
        VIRTUAL_MESH.replace(
            "  - {name: istiod-istio-system-ap-south, namespace: istio-system}\n",
            "",
        ),
    )
    .expect("vm");
    let (code, out) = cli(
        home.path(),
        strings(&[
            "apply",
            "--yes",
            "-f",
            &ps,
            "--kubeconfig",
            &kcs,
            "--context",
            "eu-west",
            "--as",
            "alice",
        ]),
    )
    .await;
    assert_eq!(code, Some(4), "{out}");
    let audit = home.path().join("state/meshdeck/audit.log");
    assert!(!audit.exists() || std::fs::read_to_string(&audit).expect("audit").is_empty());

    // impersonation allowed: the admin acts as alice, and the server sees alice
    let bookstore_only = home.path().join("b.yaml");
    std::fs::write(&bookstore_only, policy_everywhere("4s")).expect("b");
    let roles = home.path().join("roles.yaml");
    std::fs::write(&roles, "apiVersion: rbac.enterprise.mesh.gloo.solo.io/v1\nkind: Role\nmetadata: {name: bookstore-team, namespace: gloo-mesh}\nspec:\n  trafficPolicyScopes:\n  - trafficPolicyActions: [REQUEST_TIMEOUT]\n    destinationSelectors: [{kubeServiceMatcher: {namespaces: [bookstore], clusters: [\"*\"]}}]\n    workloadSelectors: [{kubeWorkloadMatcher: {namespaces: [\"*\"], clusters: [\"*\"]}}]\n---\napiVersion: rbac.enterprise.mesh.gloo.solo.io/v1\nkind: RoleBinding\nmetadata: {name: alice, namespace: gloo-mesh}\nspec:\n  roleRef: {name: bookstore-team, namespace: gloo-mesh}\n  subjects: [{kind: User, name: alice}]\n").expect("roles");
    let (code, out) = cli(
        home.path(),
        strings(&[
            "apply",
            "--yes",
            "-f",
            bookstore_only.to_str().expect("b"),
            "--roles",
            roles.to_str().expect("r"),
            "--kubeconfig",
            &kcs,
            "--context",
            "eu-west,us-east",
            "--as",
            "alice",
        ]),
    )
    .await;
    assert_eq!(code, Some(0), "{out}");
    for c in ["eu-west", "us-east"] {
        let w = writes_to(&f, c);
        assert!(!w.is_empty(), "{c}: written");
        assert!(
            w.iter()
                .all(|e| e.user == "alice" && e.impersonated_by == "admin"),
            "{c}: {w:#?}"
        );
    }
    // every request carried meshdeck's user agent
    let agent = format!("meshdeck/{}", env!("CARGO_PKG_VERSION"));
    assert!(f.all_requests().iter().all(|e| e.user_agent == agent));
    // the audit: per cluster the identity the server saw, intent before result
    let text = std::fs::read_to_string(&audit).expect("audit");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|l| l["user"] == "alice"), "{text}");
    let intents = lines.iter().filter(|l| l["phase"] == "intent").count();
    assert_eq!(intents * 2, lines.len(), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&audit), 0o600);
        assert_eq!(mode(&home.path().join("state/meshdeck")), 0o700);
    }

    // the viewer may not impersonate: refused by the server, said per cluster
    let (code, out) = cli(
        home.path(),
        strings(&[
            "diff",
            "-f",
            &ps,
            "--kubeconfig",
            &kcs,
            "--context",
            "eu-west-viewer",
            "--as",
            "admin",
            "--wait-synced",
            "3",
        ]),
    )
    .await;
    assert_eq!(code, Some(5), "unreachable: {out}");
    assert!(out.contains("cannot impersonate"), "{out}");

    // per-cluster identity without --as: eu-west as the admin, us-east as alice (`as:`)
    std::fs::remove_file(&audit).expect("rm");
    std::fs::write(
        &bookstore_only,
        policy("6s").replace(
            "services: [{name: ratings, namespace: bookstore, clusterName: eu-west}]",
            "services: [{name: ratings, namespace: bookstore, clusterName: eu-west}, {name: ratings, namespace: bookstore, clusterName: us-east}]",
        ),
    )
    .expect("b");
    std::fs::write(
        &roles,
        std::fs::read_to_string(&roles).expect("roles").replace(
            "[{kind: User, name: alice}]",
            "[{kind: User, name: alice}, {kind: User, name: eu-west-admin}]",
        ),
    )
    .expect("roles");
    let (code, out) = cli(
        home.path(),
        strings(&[
            "apply",
            "--yes",
            "-f",
            bookstore_only.to_str().expect("b"),
            "--roles",
            roles.to_str().expect("r"),
            "--kubeconfig",
            &kcs,
            "--context",
            "eu-west,us-east",
        ]),
    )
    .await;
    assert_eq!(code, Some(0), "{out}");
    let text = std::fs::read_to_string(&audit).expect("audit");
    let users: BTreeSet<(String, String)> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .map(|l| {
            (
                l["cluster"].as_str().unwrap_or("").to_string(),
                l["user"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        users,
        [
            ("eu-west".to_string(), "admin".to_string()),
            ("us-east".to_string(), "alice".to_string())
        ]
        .into_iter()
        .collect(),
        "{text}"
    );
}

#[tokio::test]
async fn a_killed_apply_leaves_an_intent_line_for_every_write_it_sent() {
    let f = fleet(3).await;
    let home = tempfile::tempdir().expect("tempdir");
    let kc = home.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let dir = home.path().join("policies");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("vm.yaml"), VIRTUAL_MESH).expect("vm");
    f.fault("us-east", &FaultSpec::HangWrites).expect("fault");
    let mut child = crate::common::meshdeck_in(home.path())
        .args([
            "apply",
            "--yes",
            "-f",
            dir.to_str().expect("d"),
            "--kubeconfig",
            kc.to_str().expect("kc"),
            "--context",
            "eu-west,us-east,ap-south",
            "--request-timeout",
            "300",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let audit = home.path().join("state/meshdeck/audit.log");
    let read = || std::fs::read_to_string(&audit).unwrap_or_default();
    // wait until the writes to us-east are in flight (their intents are written)
    let sent = eventually(60, || {
        read()
            .lines()
            .filter(|l| l.contains("\"cluster\":\"us-east\"") && l.contains("\"intent\""))
            .count()
            >= 8
            && !writes_to(&f, "eu-west").is_empty()
    })
    .await;
    assert!(sent, "writes in flight: {}", read());
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let text = read();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("whole json lines only"))
        .collect();
    let intent = |c: &str, kind: &str, ns: &str, name: &str| {
        lines.iter().any(|l| {
            l["phase"] == "intent"
                && l["cluster"] == c
                && l["kind"] == kind
                && l["namespace"] == ns
                && l["name"] == name
        })
    };
    // every write the servers received has its intent on record
    for c in ["eu-west", "ap-south"] {
        for e in writes_to(&f, c) {
            let parts: Vec<&str> = e.path.trim_start_matches('/').split('/').collect();
            // /apis/<group>/<version>/namespaces/<ns>/<plural>/<name>
            let (ns, plural, name) = (parts[4], parts[5], parts[6]);
            let kind = match plural {
                "destinationrules" => "DestinationRule",
                "serviceentries" => "ServiceEntry",
                "gateways" => "Gateway",
                "virtualservices" => "VirtualService",
                other => panic!("unexpected write {other}"),
            };
            assert!(intent(c, kind, ns, name), "{c} {kind} {ns}/{name}: {text}");
        }
    }
    // and the hung ones are on record as sent, with no result
    let hung: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["cluster"] == "us-east").collect();
    assert!(hung.iter().all(|l| l["phase"] == "intent"), "{text}");
    assert!(hung.len() >= 8);
    f.fault("us-east", &FaultSpec::Clear).expect("fault");
}

#[tokio::test]
async fn an_invalid_stored_policy_affects_only_what_it_owns() {
    let f = fleet(3).await;
    let home = tempfile::tempdir().expect("tempdir");
    let kc = home.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    // someone stored a TrafficPolicy meshdeck cannot load in us-east
    let tp = ApiResource {
        group: "networking.mesh.gloo.solo.io".into(),
        version: "v1".into(),
        api_version: "networking.mesh.gloo.solo.io/v1".into(),
        kind: "TrafficPolicy".into(),
        plural: "trafficpolicies".into(),
    };
    let api: Api<DynamicObject> =
        Api::namespaced_with(client(&f, "us-east").await, "payments", &tp);
    let bad: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "networking.mesh.gloo.solo.io/v1", "kind": "TrafficPolicy",
        "metadata": {"name": "broken", "namespace": "payments"},
        "spec": {"policy": {"retries": {"attempts": "three"}}}
    }))
    .expect("object");
    api.create(&Default::default(), &bad).await.expect("stored");
    let p = home.path().join("p.yaml");
    std::fs::write(&p, policy("2s")).expect("p");
    let (code, out) = cli(
        home.path(),
        strings(&[
            "apply",
            "--yes",
            "-f",
            p.to_str().expect("p"),
            "--kubeconfig",
            kc.to_str().expect("kc"),
            "--context",
            "eu-west,us-east,ap-south",
        ]),
    )
    .await;
    assert_eq!(code, Some(0), "the unrelated policy applies: {out}");
    assert!(
        out.contains("ignored: cluster/us-east TrafficPolicy payments/broken: spec.policy.retries.attempts: expected integer"),
        "{out}"
    );
    assert!(
        out.contains("eu-west create VirtualService bookstore/ratings: ok"),
        "{out}"
    );
}

#[tokio::test]
async fn a_closed_pipe_and_a_huge_wait_do_not_panic() {
    let f = fleet(1).await;
    let home = tempfile::tempdir().expect("tempdir");
    let kc = home.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let p = home.path().join("p.yaml");
    std::fs::write(&p, policy("2s")).expect("p");
    let (kc, p) = (
        kc.to_str().expect("kc").to_string(),
        p.to_str().expect("p").to_string(),
    );
    let h = home.path().to_path_buf();
    let bin = env!("CARGO_BIN_EXE_meshdeck").to_string();
    let o = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "'{bin}' diff -f '{p}' --kubeconfig '{kc}' --context eu-west | head -c 10; st=${{PIPESTATUS[0]}}; echo; echo \"exit=$st\""
            ))
            .env("HOME", &h)
            .env("XDG_STATE_HOME", h.join("state"))
            .output()
            .expect("bash")
    })
    .await
    .expect("join");
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        out.contains("exit=1"),
        "diff found changes and exited 1: {out} {err}"
    );
    let (code, out) = cli(
        home.path(),
        strings(&["status", "--wait-synced", "18446744073709551615"]),
    )
    .await;
    assert_eq!(code, Some(2), "{out}");
    assert!(
        !out.contains("panicked") && out.contains("--wait-synced"),
        "{out}"
    );
}

/// The console (preview → the pipeline's execute, what its apply job runs) and the CLI plan the
/// same thing: after a console apply `meshdeck diff` sees nothing to do, and a console delete
/// prunes exactly what `meshdeck apply --prune` would.
#[tokio::test]
async fn the_console_and_the_cli_plan_the_same_thing() {
    let f = fleet(3).await;
    let home = tempfile::tempdir().expect("tempdir");
    let kc = home.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let dir = home.path().join("policies");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("vm.yaml"), VIRTUAL_MESH).expect("vm");
    let (kcs, d) = (
        kc.to_str().expect("kc").to_string(),
        dir.to_str().expect("dir").to_string(),
    );
    let ctx = "eu-west,us-east,ap-south";
    let (code, out) = cli(
        home.path(),
        strings(&[
            "apply",
            "--yes",
            "--prune",
            "-f",
            &d,
            "--kubeconfig",
            &kcs,
            "--context",
            ctx,
        ]),
    )
    .await;
    assert_eq!(code, Some(0), "{out}");

    // the console's side: a session, the live fleet, the board's policies
    let s = setup(&f, "").await;
    let mut handle = {
        let targets = meshdeck::fleet::kubeconfig::targets(
            std::slice::from_ref(&kc),
            &meshdeck::fleet::Selection::Named(CLUSTERS.iter().map(|c| c.to_string()).collect()),
        )
        .await
        .expect("targets");
        meshdeck::fleet::start(targets)
    };
    assert!(handle.wait_synced(Duration::from_secs(10)).await);
    let who = meshdeck::rbac::Subject {
        user: "admin".into(),
        groups: vec![],
    };
    // what the CLI would plan from the snapshot: nothing, once the watches delivered the apply
    let cli_plan = |snap: &Snapshot| {
        let loaded = meshdeck::policy::load_all(std::slice::from_ref(&dir), snap);
        let t = meshdeck::translate::Translator::new(snap);
        let live = meshdeck::pipeline::live_objects(snap);
        meshdeck::pipeline::plan(&meshdeck::pipeline::Request {
            snap,
            translator: &t,
            loaded: &loaded,
            live: &live,
            prune: true,
            scope: meshdeck::pipeline::Scope::All,
            store: None,
            who: &who,
        })
        .plan
    };
    let settled = |h: &meshdeck::fleet::FleetHandle| !cli_plan(&h.latest()).has_changes();
    assert!(
        eventually(10, || settled(&handle)).await,
        "{:#?}",
        cli_plan(&handle.latest()).changes().collect::<Vec<_>>()
    );

    let draft = policy("7s");
    let snap = handle.latest();
    let loaded = meshdeck::policy::load_all(std::slice::from_ref(&dir), &snap);
    let t = meshdeck::translate::Translator::new(&snap);
    let live = meshdeck::pipeline::live_objects(&snap);
    let c = meshdeck::author::Context {
        translator: &t,
        snap: &snap,
        base: &loaded,
        live: &live,
        who: &who,
    };
    let p = meshdeck::author::preview(
        &c,
        1,
        &draft,
        &dir.join("r.yaml").display().to_string(),
        &[],
        None,
    );
    assert!(p.applicable().is_ok(), "{:?}", p.applicable());
    let w = writer(&s, &home.path().join("audit.log"));
    let done = meshdeck::pipeline::execute(&w, &p.plan, false, Duration::from_secs(10)).await;
    assert!(
        done.refused.is_none() && done.report.failed().next().is_none(),
        "{done:#?}"
    );
    std::fs::write(dir.join("r.yaml"), &draft).expect("saved, as the console does");
    let (code, out) = cli(
        home.path(),
        strings(&[
            "diff",
            "--prune",
            "-f",
            &d,
            "--kubeconfig",
            &kcs,
            "--context",
            ctx,
        ]),
    )
    .await;
    assert_eq!(code, Some(0), "the CLI sees nothing left to do: {out}");

    // delete it in the console: the same prunes as `apply --prune` without the file
    assert!(eventually(10, || settled(&handle)).await);
    let snap = handle.latest();
    let loaded = meshdeck::policy::load_all(std::slice::from_ref(&dir), &snap);
    let t = meshdeck::translate::Translator::new(&snap);
    let live = meshdeck::pipeline::live_objects(&snap);
    let c = meshdeck::author::Context {
        translator: &t,
        snap: &snap,
        base: &loaded,
        live: &live,
        who: &who,
    };
    let id = loaded
        .policies
        .iter()
        .find(|p| p.meta.name == "ratings-timeout")
        .expect("the saved policy")
        .id();
    let console = meshdeck::author::delete_plan(&c, &id);
    std::fs::remove_file(dir.join("r.yaml")).expect("rm");
    let (code, out) = cli(
        home.path(),
        strings(&[
            "diff",
            "--prune",
            "-o",
            "json",
            "-f",
            &d,
            "--kubeconfig",
            &kcs,
            "--context",
            ctx,
        ]),
    )
    .await;
    assert_eq!(code, Some(1), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&out[..out.rfind('}').map(|i| i + 1).unwrap_or(0)]).expect("json");
    let changes = |items: Vec<(String, String, String, String, String)>| -> BTreeSet<_> {
        items.into_iter().collect()
    };
    let from_cli = changes(
        json["planned"]["plan"]["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|i| i["action"] != "unchanged" && i["action"] != "conflict")
            .map(|i| {
                let g = |k: &str| i[k].as_str().unwrap_or("").to_string();
                (
                    g("cluster"),
                    g("kind"),
                    g("namespace"),
                    g("name"),
                    g("action"),
                )
            })
            .collect(),
    );
    let from_console = changes(
        console
            .changes()
            .map(|i| {
                (
                    i.cluster.clone(),
                    i.kind.clone(),
                    i.namespace.clone(),
                    i.name.clone(),
                    i.action.word().to_string(),
                )
            })
            .collect(),
    );
    assert!(!from_console.is_empty());
    assert_eq!(from_console, from_cli);
    let done = meshdeck::pipeline::execute(&w, &console, false, Duration::from_secs(10)).await;
    assert!(done.report.failed().next().is_none(), "{done:#?}");
    let (code, out) = cli(
        home.path(),
        strings(&[
            "diff",
            "--prune",
            "-f",
            &d,
            "--kubeconfig",
            &kcs,
            "--context",
            ctx,
        ]),
    )
    .await;
    assert_eq!(code, Some(0), "nothing left behind: {out}");
}
