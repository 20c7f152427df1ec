//! Nothing green that isn't: each test builds a condition under which a verdict (`accepted`,
//! exit 0, no changes, `✓ ok`) must *not* be given, against the simulator over HTTPS and the
//! real binary, and asserts what is said instead.

use crate::common::*;
use meshdeck::model::ConnState;
use std::sync::Arc;

const CTX: &str = "eu-west,us-east,ap-south";

/// A traffic shift of `reviews` in eu-west, where an operator's hand-written VirtualService
/// and DestinationRule stand (the demo has them).
const SHIFT: &str = "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {name: reviews-shift, namespace: bookstore}\nspec:\n  destinationSelector:\n  - kubeServiceRefs: {services: [{name: reviews, namespace: bookstore, clusterName: eu-west}]}\n  policy:\n    trafficShift:\n      destinations:\n      - kubeService: {name: reviews, namespace: bookstore, clusterName: eu-west, subset: {version: v1}}\n        weight: 50\n      - kubeService: {name: reviews, namespace: bookstore, clusterName: eu-west, subset: {version: v2}}\n        weight: 50\n";

/// A timeout on ratings in eu-west (a VirtualService, no DestinationRule).
const TIMEOUT: &str = "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {name: ratings-timeout, namespace: bookstore}\nspec:\n  destinationSelector:\n  - kubeServiceRefs: {services: [{name: ratings, namespace: bookstore, clusterName: eu-west}]}\n  policy:\n    requestTimeout: 3s\n";

async fn run(home: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = meshdeck(home, args).await;
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A fleet with no policies plans nothing (it planned a DestinationRule for every in-mesh
/// service); a policy applied and then removed with `--prune` leaves every cluster as it was.
#[tokio::test]
async fn no_policies_plan_nothing_and_pruning_the_last_returns_the_fleet() {
    let f = fleet(3).await;
    let home = tempfile::tempdir().expect("tempdir");
    let kc = home.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let kc = kc.to_str().expect("kc").to_string();
    let empty = home.path().join("empty");
    std::fs::create_dir(&empty).expect("dir");
    let empty = empty.to_str().expect("dir").to_string();
    let (code, out, err) = run(
        home.path(),
        &["diff", "-f", &empty, "--kubeconfig", &kc, "--context", CTX],
    )
    .await;
    assert_eq!(code, Some(0), "no policies, no changes: {out}{err}");
    assert!(!out.contains("create "), "{out}");

    let p = home.path().join("p.yaml");
    // a timeout (a VirtualService) in eu-west and a shift of ratings in us-east (a
    // VirtualService and a DestinationRule with its subsets); nobody wrote ratings' by hand
    let shift = SHIFT
        .replace("reviews", "ratings")
        .replace("eu-west", "us-east");
    std::fs::write(&p, format!("{TIMEOUT}---\n{shift}")).expect("p");
    let p = p.to_str().expect("p").to_string();
    let (code, out, err) = run(
        home.path(),
        &[
            "apply",
            "--yes",
            "-f",
            &p,
            "--kubeconfig",
            &kc,
            "--context",
            CTX,
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = run(
        home.path(),
        &[
            "apply",
            "--yes",
            "--prune",
            "-f",
            &empty,
            "--kubeconfig",
            &kc,
            "--context",
            CTX,
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    // nothing of meshdeck's is left in any cluster
    for c in ["eu-west", "us-east", "ap-south"] {
        let client = client(&f, c).await;
        let live = meshdeck::fleet::fetch::list_generated_kinds(&client, c)
            .await
            .expect("list");
        let ours: Vec<_> = live
            .iter()
            .filter(|l| {
                l.labels
                    .get(meshdeck::translate::MANAGED_BY)
                    .map(String::as_str)
                    == Some("meshdeck")
            })
            .map(|l| format!("{} {}/{}", l.kind, l.namespace, l.name))
            .collect();
        assert!(ours.is_empty(), "{c}: {ours:?}");
    }
    let (code, out, err) = run(
        home.path(),
        &[
            "diff",
            "--prune",
            "-f",
            &empty,
            "--kubeconfig",
            &kc,
            "--context",
            CTX,
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
}

/// A policy that meets a live object meshdeck does not own never takes effect there: `check`
/// exits 3 naming the cluster and the object, `diff` is partial (3), and the editor's preview
/// counts it as a problem and will not apply.
#[tokio::test]
async fn a_conflict_with_a_hand_written_object_is_never_accepted() {
    let f = fleet(3).await;
    let home = tempfile::tempdir().expect("tempdir");
    let kc = home.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let kc = kc.to_str().expect("kc").to_string();
    let p = home.path().join("shift.yaml");
    std::fs::write(&p, SHIFT).expect("p");
    let p = p.to_str().expect("p").to_string();
    let (code, out, err) = run(
        home.path(),
        &["check", "-f", &p, "--kubeconfig", &kc, "--context", CTX],
    )
    .await;
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(
        err.contains("TrafficPolicy bookstore/reviews-shift: conflicting"),
        "never accepted: {err}"
    );
    assert!(!err.contains("1 accepted"), "{err}");
    assert!(
        err.contains(
            "conflict in eu-west: DestinationRule bookstore/reviews exists and is not managed by meshdeck: it does not take effect there"
        ),
        "{err}"
    );
    let (code, out, err) = run(
        home.path(),
        &[
            "check",
            "-f",
            &p,
            "--kubeconfig",
            &kc,
            "--context",
            CTX,
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(code, Some(3), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["exit"], "partial");
    assert!(
        v["held_back"]["TrafficPolicy/bookstore/reviews-shift"].is_array(),
        "{v}"
    );
    let (code, out, err) = run(
        home.path(),
        &["diff", "-f", &p, "--kubeconfig", &kc, "--context", CTX],
    )
    .await;
    assert_eq!(
        code,
        Some(3),
        "a conflict makes the plan partial: {out}{err}"
    );

    // the preview over the live fleet: a problem, and not applicable
    let mut handle = meshdeck::fleet::start(
        meshdeck::fleet::kubeconfig::targets(
            &[std::path::PathBuf::from(&kc)],
            &meshdeck::fleet::Selection::Named(CTX.split(',').map(String::from).collect()),
        )
        .await
        .expect("targets"),
    );
    assert!(handle.wait_synced(std::time::Duration::from_secs(30)).await);
    let snap = handle.latest();
    let t = meshdeck::translate::Translator::new(&snap);
    let live = meshdeck::author::live_objects(&snap);
    let who = meshdeck::rbac::Subject {
        user: "admin".into(),
        groups: vec![],
    };
    let base = meshdeck::policy::Loaded::default();
    let ctx = meshdeck::author::Context {
        translator: &t,
        snap: &snap,
        base: &base,
        live: &live,
        who: &who,
    };
    let pv = meshdeck::author::preview(&ctx, 1, SHIFT, "shift.yaml", &[], None);
    assert!(pv.errors() >= 1, "{:?}", pv.held_back);
    let why = pv.applicable().expect_err("a conflict is not applicable");
    assert!(
        why.starts_with("will not apply in eu-west: DestinationRule bookstore/reviews"),
        "{why}"
    );
}

/// Federation objects do not follow the pods: a rollout (new pod IPs, a new
/// `pod-template-hash`) in a backing cluster leaves every generated object as it was.
#[test]
fn a_rollout_in_a_federated_cluster_changes_no_generated_object() {
    let now = chrono::Utc::now();
    let snap = meshdeck::sim::fixture::demo_snapshot(3, None, now, |_| ConnState::Synced);
    let vm = "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: VirtualMesh\nmetadata: {name: fleet, namespace: gloo-mesh}\nspec:\n  mtlsConfig: {shared: {rootCertificateAuthority: {generated: {}}}}\n  meshes:\n  - {name: istiod-istio-system-eu-west, namespace: istio-system}\n  - {name: istiod-istio-system-us-east, namespace: istio-system}\n  - {name: istiod-istio-system-ap-south, namespace: istio-system}\n  federation:\n    selectors:\n    - destinationSelectors:\n      - kubeServiceMatcher: {namespaces: [bookstore]}\n";
    let loaded = meshdeck::policy::load_str(vm, "vm.yaml");
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let before = meshdeck::translate::translate(&loaded.policies, &snap);
    let federated = before
        .objects
        .iter()
        .filter(|o| o.kind == "ServiceEntry" && o.spec.get("endpoints").is_some())
        .count();
    assert!(federated > 0, "the demo federates bookstore");
    for o in &before.objects {
        let text = o.spec.to_string();
        assert!(!text.contains("pod-template-hash"), "{} {}", o.name, text);
    }
    // every pod of every cluster rolled out: a new IP and pod-template-hash
    let mut rolled = snap.clone();
    for (ci, c) in snap.clusters.iter().enumerate() {
        let mut cv = (**c).clone();
        for (k, p) in cv.pods.iter_mut().enumerate() {
            let mut row = (**p).clone();
            let mut raw = (*row.raw).clone();
            let mut labels = (*raw.labels).clone();
            if labels.contains_key("pod-template-hash") {
                labels.insert("pod-template-hash".into(), format!("new{k}"));
            }
            raw.labels = Arc::new(labels);
            if !raw.ip.is_empty() {
                raw.ip = format!("10.{}.{}.{}", 200 + ci, k / 250, k % 250 + 1).into();
            }
            row.raw = Arc::new(raw);
            *p = Arc::new(row);
        }
        rolled.clusters[ci] = Arc::new(cv);
    }
    rolled.seq += 1;
    let after = meshdeck::translate::translate(&loaded.policies, &rolled);
    assert_eq!(before.objects.len(), after.objects.len());
    for (a, b) in before.objects.iter().zip(&after.objects) {
        assert_eq!(
            a, b,
            "{} {} {}/{} changed with a rollout",
            a.cluster, a.kind, a.namespace, a.name
        );
    }
}

/// One plan, from a fresh fleet: a console apply of a draft (its preview's plan through the
/// one writer, the file saved) leaves `meshdeck diff` of the console's directory at exit 0, as
/// admin and as alice, who may write only in bookstore (both succeed; before, the CLI wanted
/// 23 default DestinationRules and refused alice 12 of them).
#[tokio::test]
async fn a_console_apply_on_a_fresh_fleet_leaves_diff_at_zero_for_admin_and_alice() {
    for who in ["admin", "alice"] {
        let f = fleet(3).await;
        let home = tempfile::tempdir().expect("tempdir");
        let kc = home.path().join("kc");
        f.write_kubeconfig(&kc).expect("kubeconfig");
        let dir = home.path().join("policies");
        std::fs::create_dir_all(&dir).expect("dir");
        let targets = meshdeck::fleet::kubeconfig::targets(
            std::slice::from_ref(&kc),
            &meshdeck::fleet::Selection::Named(CTX.split(',').map(String::from).collect()),
        )
        .await
        .expect("targets");
        let session = meshdeck::session::Session::from_targets(
            targets.clone(),
            false,
            |_| false,
            meshdeck::session::Impersonation {
                user: (who != "admin").then(|| who.to_string()),
                groups: vec![],
            },
            std::time::Duration::from_secs(10),
        );
        let mut handle = meshdeck::fleet::start(session.targets.clone());
        assert!(handle.wait_synced(std::time::Duration::from_secs(30)).await);
        let snap = handle.latest();
        let loaded = meshdeck::policy::load_all(std::slice::from_ref(&dir), &snap);
        let t = meshdeck::translate::Translator::new(&snap);
        let live = meshdeck::pipeline::live_objects(&snap);
        let subject = session.subject();
        let ctx = meshdeck::author::Context {
            translator: &t,
            snap: &snap,
            base: &loaded,
            live: &live,
            who: &subject,
        };
        let target = dir.join("ratings-timeout.yaml");
        let p =
            meshdeck::author::preview(&ctx, 1, TIMEOUT, &target.display().to_string(), &[], None);
        assert!(p.applicable().is_ok(), "{who}: {:?}", p.applicable());
        assert_eq!(
            p.plan.changes().count(),
            1,
            "{who}: one VirtualService, nothing else"
        );
        let w = session
            .writer(false, &home.path().join("audit.log"))
            .expect("writer")
            .expect("read-write");
        let done =
            meshdeck::pipeline::execute(&w, &p.plan, false, std::time::Duration::from_secs(10))
                .await;
        assert!(
            done.refused.is_none() && done.report.failed().next().is_none(),
            "{who}: {done:#?}"
        );
        std::fs::write(&target, TIMEOUT).expect("saved, as the console does");
        let (kcs, d) = (kc.to_str().expect("kc"), dir.to_str().expect("dir"));
        let mut args = vec![
            "diff",
            "--prune",
            "-f",
            d,
            "--kubeconfig",
            kcs,
            "--context",
            CTX,
        ];
        if who != "admin" {
            args.extend(["--as", who]);
        }
        // the watches deliver the write before the CLI's fleet syncs: it lists afresh
        let (code, out, err) = run(home.path(), &args).await;
        assert_eq!(
            code,
            Some(0),
            "{who}: the CLI sees nothing left to do: {out}{err}"
        );
        args[0] = "apply";
        args.insert(1, "--yes");
        let (code, out, err) = run(home.path(), &args).await;
        assert_eq!(code, Some(0), "{who}: {out}{err}");
        assert!(out.contains("nothing to apply"), "{who}: {out}");
        drop(handle);
    }
}

/// Refused outranks changes: `diff` of a plan that Kubernetes RBAC would refuse (a viewer) or
/// that a meshdeck Role denies exits 4, not 1 ("changes") as if an apply could make them.
#[tokio::test]
async fn a_diff_that_an_apply_would_refuse_exits_4() {
    let f = fleet(3).await;
    let home = tempfile::tempdir().expect("tempdir");
    let kc = home.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let kc = kc.to_str().expect("kc").to_string();
    let p = home.path().join("p.yaml");
    std::fs::write(&p, TIMEOUT).expect("p");
    let p = p.to_str().expect("p").to_string();
    let diff = |ctx: &'static str| {
        let (home, p, kc) = (home.path().to_path_buf(), p.clone(), kc.clone());
        async move {
            run(
                &home,
                &["diff", "-f", &p, "--kubeconfig", &kc, "--context", ctx],
            )
            .await
        }
    };
    // as admin: changes (1)
    let (code, out, err) = diff("eu-west").await;
    assert_eq!(code, Some(1), "{out}{err}");
    // as the viewer: Kubernetes RBAC refuses the write (4)
    let (code, out, err) = diff("eu-west-viewer").await;
    assert_eq!(code, Some(4), "{out}{err}");
    assert!(out.contains("kubernetes rbac:"), "{out}");
    // a meshdeck Role that does not cover the policy (4)
    let roles = home.path().join("roles.yaml");
    std::fs::write(&roles, "apiVersion: rbac.enterprise.mesh.gloo.solo.io/v1\nkind: Role\nmetadata: {name: payments-team, namespace: gloo-mesh}\nspec:\n  trafficPolicyScopes:\n  - trafficPolicyActions: [REQUEST_TIMEOUT]\n    destinationSelectors: [{kubeServiceMatcher: {namespaces: [payments], clusters: [\"*\"]}}]\n    workloadSelectors: [{kubeWorkloadMatcher: {namespaces: [\"*\"], clusters: [\"*\"]}}]\n---\napiVersion: rbac.enterprise.mesh.gloo.solo.io/v1\nkind: RoleBinding\nmetadata: {name: admin, namespace: gloo-mesh}\nspec:\n  roleRef: {name: payments-team, namespace: gloo-mesh}\n  subjects: [{kind: User, name: admin}]\n").expect("roles");
    let (code, out, err) = run(
        home.path(),
        &[
            "diff",
            "-f",
            &p,
            "--roles",
            roles.to_str().expect("roles"),
            "--as",
            "admin",
            "--kubeconfig",
            &kc,
            "--context",
            "eu-west",
        ],
    )
    .await;
    assert_eq!(code, Some(4), "{out}{err}");
    assert!(out.contains("role check:"), "{out}");
}
