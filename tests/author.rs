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
fn the_access_template_generates_an_authorization_policy_once_global_access_is_enabled() {
    let snap = demo();
    let access = author::fill_template(author::TEMPLATES[3].2, &snap, "allow");
    let p = preview_of(&snap, &Loaded::default(), &access);
    assert!(p.objects.is_empty());
    assert!(
        p.statuses[0].warnings[0].contains("globalAccessPolicy"),
        "{:?}",
        p.statuses
    );
    let vm = author::fill_template(author::TEMPLATES[4].2, &snap, "vm").replace(
        "globalAccessPolicy: DISABLED",
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
