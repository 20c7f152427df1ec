//! The authoring core on the demo fleet's snapshot (pure): templates fill in from the fleet and
//! translate cleanly; a draft's preview holds its objects, its plan against the live objects and
//! its positioned errors; the board lists policies with status and clusters.

use meshdeck::author::{self, Context, RoleCheck};
use meshdeck::model::{ConnState, Snapshot};
use meshdeck::plan::Action;
use meshdeck::policy::{Loaded, Severity};
use meshdeck::rbac::Subject;
use meshdeck::translate::{State, Translator};

fn demo() -> Snapshot {
    meshdeck::sim::fixture::demo_snapshot(3, None, chrono::Utc::now(), |_| ConnState::Synced)
}

fn preview_of(snap: &Snapshot, base: &Loaded, text: &str) -> author::Preview {
    let t = Translator::new(snap);
    let live = author::live_objects(snap);
    let who = Subject {
        user: "alice".into(),
        groups: vec![],
    };
    let ctx = Context {
        translator: &t,
        snap,
        base,
        live: &live,
        who: &who,
    };
    author::preview(&ctx, 7, text, "p.yaml", &[], None)
}

#[test]
fn every_template_fills_in_from_the_fleet_and_is_accepted_with_changes_to_apply() {
    let snap = demo();
    for (key, _, text) in author::TEMPLATES.iter().filter(|t| t.0 != "access-policy") {
        let filled = author::fill_template(text, &snap, &format!("{key}-1"));
        for ph in [
            "{cluster}",
            "{other_cluster}",
            "{namespace}",
            "{service}",
            "{name}",
            "{version_a}",
            "{version_b}",
            "{meshes}",
        ] {
            assert!(!filled.contains(ph), "{key}: {ph} left in:\n{filled}");
        }
        let p = preview_of(&snap, &Loaded::default(), &filled);
        assert!(p.diagnostics.is_empty(), "{key}: {:?}", p.diagnostics);
        assert_eq!(p.policies.len(), 1, "{key}");
        assert_eq!(p.generation, 7);
        for s in &p.statuses {
            // a shift to the service in another cluster warns until a VirtualMesh federates it
            let federation =
                s.state == State::Warning && s.warnings.iter().all(|w| w.contains("not federated"));
            assert!(s.state == State::Accepted || federation, "{key}: {s:?}");
        }
        assert!(!p.objects.is_empty(), "{key}: no objects");
        assert!(p.schema.is_empty(), "{key}: {:?}", p.schema);
        assert!(
            p.plan.has_changes(),
            "{key}: nothing planned: {:?} objects {:?}",
            p.plan,
            p.objects
                .iter()
                .map(|o| (&o.cluster, o.kind, &o.sources))
                .collect::<Vec<_>>()
        );
        assert!(
            p.plan.changes().all(|i| i.action == Action::Create),
            "{key}: a fresh fleet only gets creates"
        );
        assert_eq!(p.roles, RoleCheck::Off);
        assert_eq!(p.applicable(), Ok(()), "{key}");
    }
}

#[test]
fn the_access_template_generates_an_authorization_policy_and_says_it_denies_the_rest() {
    let snap = demo();
    let access = author::fill_template(author::TEMPLATES[3].2, &snap, "allow");
    // with or without global access: an ALLOW policy restricts its destination at once
    let p = preview_of(&snap, &Loaded::default(), &access);
    assert!(
        p.objects.iter().any(|o| o.kind == "AuthorizationPolicy"),
        "{:?}",
        p.statuses
    );
    assert!(
        p.statuses[0]
            .notes
            .iter()
            .any(|n| n.contains("every caller not allowed by")),
        "{:?}",
        p.statuses
    );
    let vm = author::fill_template(author::TEMPLATES[4].2, &snap, "vm").replace(
        "globalAccessPolicy: MESH_DEFAULT",
        "globalAccessPolicy: ENABLED",
    );
    let base = meshdeck::policy::load_str(&vm, "vm.yaml");
    assert!(base.diagnostics.is_empty(), "{:?}", base.diagnostics);
    let p = preview_of(&snap, &base, &access);
    assert_eq!(p.statuses[0].state, State::Accepted, "{:?}", p.statuses);
    let authz: Vec<_> = p
        .objects
        .iter()
        .filter(|o| o.kind == "AuthorizationPolicy")
        .collect();
    assert_eq!(authz.len(), 1, "{:?}", p.objects);
    assert!(p.schema.is_empty(), "{:?}", p.schema);
    assert_eq!(p.applicable(), Ok(()));
}

#[test]
fn a_typo_is_an_error_at_its_line_and_column_and_blocks_apply() {
    let snap = demo();
    let (_, _, text) = author::TEMPLATES[0];
    let good = author::fill_template(text, &snap, "shift");
    let bad = good.replace("    trafficShift:", "    trafficShfit:");
    let line = bad
        .lines()
        .position(|l| l.contains("trafficShfit"))
        .expect("typo line")
        + 1;
    let p = preview_of(&snap, &Loaded::default(), &bad);
    let e = p
        .diagnostics
        .iter()
        .find(|d| d.severity == Severity::Error)
        .expect("an error");
    let pos = e.pos.expect("positioned");
    assert_eq!((pos.line, pos.col), (line, 5), "{e}");
    assert!(e.message.contains("trafficShift"), "did-you-mean: {e}");
    assert!(p.applicable().is_err());
}

#[test]
fn the_board_lists_policies_with_status_sources_targets_and_clusters() {
    let snap = demo();
    let (_, _, text) = author::TEMPLATES[0];
    let a = author::fill_template(text, &snap, "shift-a");
    let b = author::fill_template(author::TEMPLATES[3].2, &snap, "allow-a");
    let mut loaded = meshdeck::policy::load_str(&a, "a.yaml");
    loaded.extend(meshdeck::policy::load_str(&b, "b.yaml"));
    loaded.extend(meshdeck::policy::load_str(
        "kind: TrafficPolicy\nspec: 3\n",
        "bad.yaml",
    ));
    let out = meshdeck::translate::translate(&loaded.policies, &snap);
    let rows = author::board(&loaded, &out);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let shift = rows.iter().find(|r| r.name == "shift-a").expect("shift-a");
    assert_eq!(shift.kind, "TrafficPolicy");
    assert!(matches!(shift.state, State::Accepted | State::Warning));
    assert!(shift.targets.contains("/bookstore/"), "{}", shift.targets);
    assert_eq!(shift.sources, "all workloads");
    assert!(!shift.clusters.is_empty());
    let allow = rows.iter().find(|r| r.name == "allow-a").expect("allow-a");
    assert!(allow.sources.contains("ns:bookstore"), "{}", allow.sources);
    let bad = rows
        .iter()
        .find(|r| r.origin == "bad.yaml")
        .expect("bad row");
    assert_eq!(bad.state, State::Invalid);
    assert!(bad.reason.starts_with("bad.yaml:"), "{}", bad.reason);
}

#[test]
fn a_role_scoped_to_another_namespace_denies_the_draft_and_blocks_apply() {
    let snap = demo();
    let roles = "apiVersion: rbac.enterprise.mesh.gloo.solo.io/v1\nkind: Role\nmetadata: {name: payments-team, namespace: gloo-mesh}\nspec:\n  trafficPolicyScopes:\n  - trafficPolicyActions: [ALL]\n    destinationSelectors: [{kubeServiceMatcher: {namespaces: [payments], clusters: [\"*\"]}}]\n    workloadSelectors: [{kubeWorkloadMatcher: {namespaces: [\"*\"], clusters: [\"*\"]}}]\n---\napiVersion: rbac.enterprise.mesh.gloo.solo.io/v1\nkind: RoleBinding\nmetadata: {name: alice, namespace: gloo-mesh}\nspec:\n  roleRef: {name: payments-team, namespace: gloo-mesh}\n  subjects: [{kind: User, name: alice}]\n";
    let base = meshdeck::policy::load_str(roles, "roles.yaml");
    assert!(base.diagnostics.is_empty(), "{:?}", base.diagnostics);
    let draft = author::fill_template(author::TEMPLATES[1].2, &snap, "retries");
    assert!(draft.contains("namespace: bookstore"));
    let p = preview_of(&snap, &base, &draft);
    match &p.roles {
        RoleCheck::Denied(d) => {
            assert_eq!(d.len(), 1);
            assert_eq!(d[0].policy.name, "retries");
            assert!(d[0].reason.contains("alice"), "{}", d[0].reason);
        }
        other => panic!("{other:?}"),
    }
    let e = p.applicable().expect_err("denied");
    assert!(
        e.starts_with("role check: TrafficPolicy bookstore/retries"),
        "{e}"
    );
}

// ── the pipeline's pure half ───────────────────────────────────────────────────────────────

const FEDERATION: &str = "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: VirtualMesh\nmetadata: {name: fleet, namespace: gloo-mesh}\nspec:\n  meshes:\n  - {name: istiod-istio-system-eu-west, namespace: istio-system}\n  - {name: istiod-istio-system-us-east, namespace: istio-system}\n  - {name: istiod-istio-system-ap-south, namespace: istio-system}\n  federation:\n    selectors:\n    - destinationSelectors:\n      - kubeServiceMatcher: {namespaces: [bookstore]}\n";

/// What the fleet would hold after applying `objects`.
fn applied(objects: &[meshdeck::translate::Generated]) -> Vec<meshdeck::plan::Live> {
    let map = |v: &serde_json::Value| -> std::collections::BTreeMap<String, String> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    objects
        .iter()
        .map(|g| {
            let o = g.to_object();
            meshdeck::plan::Live {
                cluster: g.cluster.clone(),
                api_version: g.api_version.to_string(),
                kind: g.kind.to_string(),
                namespace: g.namespace.clone(),
                name: g.name.clone(),
                labels: map(&o["metadata"]["labels"]),
                annotations: map(&o["metadata"]["annotations"]),
                spec: g.spec.clone(),
            }
        })
        .collect()
}

fn run_pipeline(
    snap: &Snapshot,
    loaded: &Loaded,
    live: &[meshdeck::plan::Live],
) -> meshdeck::pipeline::Planned {
    let t = Translator::new(snap);
    let who = Subject::default();
    meshdeck::pipeline::plan(&meshdeck::pipeline::Request {
        snap,
        translator: &t,
        loaded,
        live,
        prune: true,
        scope: meshdeck::pipeline::Scope::All,
        store: None,
        who: &who,
    })
}

/// A cluster that is down and whose data is gone: nothing that may exist because of it is
/// pruned elsewhere; once its policy is gone, its objects are.
#[test]
fn prune_never_deletes_on_a_guess() {
    let full = demo();
    let vm = meshdeck::policy::load_str(FEDERATION, "vm.yaml");
    assert!(!vm.has_errors(), "{:?}", vm.diagnostics);
    let out = meshdeck::translate::translate(&vm.policies, &full);
    let live = applied(&out.objects);
    assert!(
        live.iter()
            .any(|l| l.kind == "ServiceEntry" && l.cluster == "eu-west")
    );
    // all synced: nothing to do
    let p = run_pipeline(&full, &vm, &live);
    assert!(
        !p.plan.has_changes(),
        "{:#?}",
        p.plan.changes().collect::<Vec<_>>()
    );

    let mut partial = meshdeck::sim::fixture::demo_snapshot(3, None, chrono::Utc::now(), |i| {
        if i == 2 {
            ConnState::Unreachable {
                since: "now".into(),
                error: "connection refused".into(),
            }
        } else {
            ConnState::Synced
        }
    });
    let gone = std::sync::Arc::make_mut(&mut partial.clusters[2]);
    assert_eq!(gone.name, "ap-south");
    gone.services.clear();
    gone.workloads.clear();
    let p = run_pipeline(&partial, &vm, &live);
    assert!(
        p.plan.items.iter().all(|i| i.action != Action::Delete),
        "{:#?}",
        p.plan.changes().collect::<Vec<_>>()
    );
    assert!(!p.held.is_empty());
    assert!(p.held.iter().all(|h| h.item.cluster != "ap-south"
        && h.reason.contains("ap-south (unreachable)")
        && h.reason.starts_with("not pruned")));
    assert_eq!(p.left_out.len(), 1);

    // the policy is gone: what only it made goes, even with ap-south away
    let none = Loaded::default();
    let p = run_pipeline(&partial, &none, &live);
    let deletes: Vec<_> = p
        .plan
        .changes()
        .filter(|i| i.action == Action::Delete)
        .collect();
    assert!(!deletes.is_empty());
    assert!(
        deletes
            .iter()
            .all(|i| i.policies == ["VirtualMesh/gloo-mesh/fleet"])
    );
    // the per-destination defaults (no policy) are still held: their reason is the fleet
    assert!(p.held.iter().all(|h| h.item.policies.is_empty()));
}

/// A stored policy that does not load is reported with its cluster; what it made is held,
/// every other policy plans as usual.
#[test]
fn an_invalid_stored_policy_holds_only_its_own_objects() {
    let snap = demo();
    let good = meshdeck::policy::load_str(FEDERATION, "vm.yaml");
    let out = meshdeck::translate::translate(&good.policies, &snap);
    let mut live = applied(&out.objects);
    // an object made by a policy that is now stored broken
    let mut theirs = live[0].clone();
    theirs.name = "theirs".into();
    theirs.annotations.insert(
        "meshdeck.io/policies".into(),
        "TrafficPolicy/payments/broken".into(),
    );
    live.push(theirs);
    let mut loaded = good.clone();
    loaded
        .invalid
        .push(("us-east".into(), "TrafficPolicy/payments/broken".into()));
    loaded.diagnostics.push(meshdeck::policy::Diagnostic {
        severity: Severity::Error,
        origin: "cluster/us-east TrafficPolicy payments/broken".into(),
        pos: None,
        path: "spec.policy.retries.attempts".into(),
        message: "expected integer, found \"three\"".into(),
    });
    let p = run_pipeline(&snap, &loaded, &live);
    assert!(
        p.errors.is_empty(),
        "a stored policy is not the user's input: {:?}",
        p.errors
    );
    assert_eq!(p.ignored.len(), 1);
    assert!(p.ignored[0].starts_with("cluster/us-east TrafficPolicy payments/broken"));
    assert_eq!(p.held.len(), 1, "{:#?}", p.held);
    assert_eq!(p.held[0].item.name, "theirs");
    assert!(
        p.held[0]
            .reason
            .contains("TrafficPolicy/payments/broken (stored in cluster us-east) is invalid")
    );
    assert!(!p.plan.has_changes(), "everything else is as planned");
    // the same error in a file the user gave: nothing is planned
    loaded.diagnostics[0].origin = "p.yaml".into();
    let p = run_pipeline(&snap, &loaded, &live);
    assert_eq!(p.errors.len(), 1);
    assert!(p.plan.items.is_empty());
}

#[test]
fn exit_codes_rank_the_worst_outcome() {
    use meshdeck::pipeline::Exit;
    assert_eq!(Exit::Success.max(Exit::Changes), Exit::Changes);
    assert_eq!(Exit::Changes.max(Exit::Partial), Exit::Partial);
    assert_eq!(Exit::Partial.max(Exit::Refused), Exit::Refused);
    assert_eq!(Exit::Invalid.max(Exit::Success), Exit::Invalid);
    assert_eq!(
        [
            Exit::Success,
            Exit::Changes,
            Exit::Invalid,
            Exit::Partial,
            Exit::Refused,
            Exit::Unreachable
        ]
        .map(|e| e as u8),
        [0, 1, 2, 3, 4, 5]
    );
}

#[test]
fn the_traffic_shift_template_never_splits_one_subset_with_itself() {
    let snap = demo();
    let (_, _, text) = author::TEMPLATES
        .iter()
        .find(|t| t.0 == "traffic-shift")
        .expect("template");
    let filled = author::fill_template(text, &snap, "t");
    let loaded = meshdeck::policy::load_str(&filled, "t.yaml");
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let dests: Vec<&str> = filled
        .lines()
        .filter(|l| l.contains("kubeService:"))
        .collect();
    assert_eq!(dests.len(), 2, "{filled}");
    assert_ne!(dests[0], dests[1], "{filled}");
    // a fleet where the service has one version in one cluster only
    let one =
        meshdeck::sim::fixture::demo_snapshot(1, None, chrono::Utc::now(), |_| ConnState::Synced);
    let filled = author::fill_template(text, &one, "t");
    let dests: Vec<&str> = filled
        .lines()
        .filter(|l| l.contains("kubeService:"))
        .collect();
    assert_ne!(dests[0], dests[1], "{filled}");
}

/// A template never proposes a cluster the session may not write, and a traffic shift sends a
/// share to another cluster only where a VirtualMesh federates (else that leg reaches nothing).
#[test]
fn templates_avoid_read_only_clusters_and_unfederated_legs() {
    let snap = demo();
    let (_, _, text) = author::TEMPLATES
        .iter()
        .find(|t| t.0 == "traffic-shift")
        .expect("template");
    let clusters_of = |filled: &str| -> Vec<String> {
        filled
            .lines()
            .filter_map(|l| l.split("clusterName: ").nth(1))
            .map(|c| {
                c.trim_end_matches(['}', ',', ' '])
                    .split([',', '}'])
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string()
            })
            .collect()
    };
    let plain = author::fill_template(text, &snap, "t");
    let first = clusters_of(&plain);
    assert!(!first.is_empty(), "{plain}");
    // without federation every leg stays in the destination's cluster
    assert!(first.iter().all(|c| *c == first[0]), "{plain}");
    // the cluster it picked is read-only: another one is proposed
    let fleet = author::TemplateFleet {
        readonly: vec![first[0].clone()],
        federated: false,
    };
    let other = author::fill_template_with(text, &snap, "t", &fleet);
    let got = clusters_of(&other);
    assert!(
        !got.is_empty() && got.iter().all(|c| *c != first[0]),
        "{other}"
    );
}
