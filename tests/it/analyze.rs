//! Configuration analysis against istioctl's own analyzer test inputs
//! (tests/data/istio-samples/analysis, from istio/istio 1.30.3): each file is read as one
//! cluster, through the same ingest as the live fleet, and the findings of each analyzer are
//! exactly the messages istioctl's tests expect (code and object; order free, duplicates count).

use meshdeck::analyze::analyze_cluster;
use meshdeck::model::{ClusterInput, ConnState, derive_cluster};

/// The Service istioctl's subset input routes to (it is not in the file: istioctl's test of
/// that analyzer runs no host check), for tests that run every analyzer on it.
const REVIEWS: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: default}\nspec:\n  selector: {app: reviews}\n  ports: [{name: http, port: 9080}]\n";

fn cluster_of(file: &str) -> meshdeck::model::ClusterView {
    cluster_with(file, "")
}

/// `file` and more manifests, as one cluster.
fn cluster_with(file: &str, more: &str) -> meshdeck::model::ClusterView {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/istio-samples/analysis")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("testdata") + "\n---\n" + more;
    let docs = meshdeck::yaml::from_str_multi(&text).expect("yaml");
    let mut input = ClusterInput {
        name: "test".into(),
        context: "test".into(),
        ..Default::default()
    };
    for d in docs.iter().filter(|d| d.is_object()) {
        // what the model does not keep (Gateways' fields, ambient modes) is skipped, as live
        let _ = meshdeck::model::ingest::ingest(&mut input, d);
    }
    meshdeck::model::ingest::sort(&mut input);
    derive_cluster(&input, ConnState::Synced)
}

/// The analyzer istioctl's tests run on each input (the table in the samples' README).
fn analyzer_of(file: &str) -> &'static str {
    match file {
        "virtualservice_destinationrules.yaml" => "virtualservice.DestinationRuleAnalyzer",
        "virtualservice_destinationhosts.yaml" => "virtualservice.DestinationHostAnalyzer",
        "virtualservice_conflictingmeshgatewayhosts.yaml" => {
            "virtualservice.ConflictingMeshGatewayHostsAnalyzer"
        }
        "sidecar-selector.yaml" | "sidecar-default-selector.yaml" => "sidecar.SelectorAnalyzer",
        "injection.yaml" => "injection.Analyzer",
        "authorizationpolicies.yaml" => "auth.AuthorizationPoliciesAnalyzer",
        "deployment-multi-service.yaml" => "deployment.MultiServiceAnalyzer",
        "destinationrule-subsets-not-select-pods.yaml" => "destinationrule.SubsetSelectPodAnalyzer",
        "destinationrule-mutual-destination.yaml" => "destinationrule.CaCertificateAnalyzer",
        other => panic!("no analyzer for {other}"),
    }
}

/// The findings (code, object) of the file's analyzer, with these codes, sorted.
fn found(file: &str, codes: &[&str]) -> Vec<(String, String)> {
    let analyzer = analyzer_of(file);
    assert!(
        meshdeck::analyze::ANALYZERS
            .iter()
            .any(|(n, _)| *n == analyzer),
        "{analyzer} is not built"
    );
    let mut v: Vec<(String, String)> = meshdeck::analyze::analyze_with(&cluster_of(file), analyzer)
        .into_iter()
        .filter(|f| codes.contains(&f.code))
        .map(|f| (f.code.to_string(), f.object))
        .collect();
    v.sort();
    v
}

fn expect(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list
        .iter()
        .map(|(c, o)| (c.to_string(), o.to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn virtual_service_subsets_as_istioctl() {
    assert_eq!(
        found("virtualservice_destinationrules.yaml", &["IST0101"]),
        expect(&[
            ("IST0101", "VirtualService default/reviews-bogussubset"),
            (
                "IST0101",
                "VirtualService default/reviews-mirror-bogussubset"
            ),
        ])
    );
    let f = meshdeck::analyze::analyze_with(
        &cluster_of("virtualservice_destinationrules.yaml"),
        "virtualservice.DestinationRuleAnalyzer",
    );
    let one = f
        .iter()
        .find(|f| f.object == "VirtualService default/reviews-bogussubset")
        .expect("finding");
    assert_eq!(one.path, "spec.http[0].route[0].destination.subset");
    assert_eq!(
        one.to_string(),
        "Error [IST0101] (VirtualService default/reviews-bogussubset) in test: Referenced host+subset in destinationrule not found: \"reviews+bogus\""
    );
}

#[test]
fn subsets_that_select_no_pod_as_istioctl() {
    assert_eq!(
        found("destinationrule-subsets-not-select-pods.yaml", &["IST0173"]),
        expect(&[("IST0173", "DestinationRule default/subsets-not-select-pods")])
    );
}

#[test]
fn authorization_policies_as_istioctl() {
    assert_eq!(
        found("authorizationpolicies.yaml", &["IST0127", "IST0101"]),
        expect(&[
            (
                "IST0127",
                "AuthorizationPolicy istio-system/meshwide-httpbin-v1"
            ),
            (
                "IST0127",
                "AuthorizationPolicy httpbin-empty/httpbin-empty-namespace-wide"
            ),
            ("IST0127", "AuthorizationPolicy httpbin/httpbin-nopods"),
            ("IST0127", "AuthorizationPolicy test-ambient/no-workload"),
            ("IST0101", "AuthorizationPolicy httpbin/httpbin-bogus-ns"),
            ("IST0101", "AuthorizationPolicy httpbin/httpbin-bogus-ns"),
            (
                "IST0101",
                "AuthorizationPolicy httpbin/httpbin-bogus-not-ns"
            ),
            (
                "IST0101",
                "AuthorizationPolicy httpbin/httpbin-bogus-not-ns"
            ),
        ])
    );
}

/// The demo fleet analysed live: what its scenario plants is found (and nothing about a
/// cluster without data).
#[test]
fn the_demo_fleet_has_findings_and_unknown_clusters_have_none() {
    let now = chrono::Utc::now();
    let snap = meshdeck::sim::fixture::demo_snapshot(3, None, now, |i| {
        if i == 2 {
            ConnState::Connecting
        } else {
            ConnState::Synced
        }
    });
    let f = meshdeck::analyze::analyze(&snap);
    assert!(
        f.iter().all(|x| x.cluster != snap.clusters[2].name),
        "{f:#?}"
    );
}

/// Headless: an inventory with istioctl's subset case gives the findings as istioctl prints
/// them (with the cluster), exit 3; `--fail-on` moves the bar; `-o json` is machine-readable.
#[test]
fn meshdeck_analyze_prints_findings_and_fails_on_errors() {
    let home = tempfile::tempdir().expect("home");
    let inv = home.path().join("inv/prod");
    std::fs::create_dir_all(&inv).expect("mkdir");
    let src =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/istio-samples/analysis");
    std::fs::copy(
        src.join("virtualservice_destinationrules.yaml"),
        inv.join("vs.yaml"),
    )
    .expect("copy");
    std::fs::write(inv.join("svc.yaml"), REVIEWS).expect("service");
    let run = |extra: &[&str]| {
        let mut c = crate::common::meshdeck_in(home.path());
        c.arg("analyze")
            .arg("--inventory")
            .arg(home.path().join("inv"));
        c.args(extra);
        c.output().expect("runs")
    };
    let out = run(&[]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("Error [IST0101] (VirtualService default/reviews-bogussubset) in prod: Referenced host+subset in destinationrule not found: \"reviews+bogus\"\n  at spec.http[0].route[0].destination.subset: define subset bogus in a DestinationRule for reviews.default.svc.cluster.local, or route without it"),
        "{text}"
    );
    let out = run(&["-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    // the two routes to an undefined subset, and (no pod behind reviews) the subset v1 that
    // selects no pod
    let codes: Vec<&str> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert_eq!(codes, ["IST0101", "IST0101", "IST0173"], "{v}");
    assert_eq!(v[0]["cluster"], "prod");
}

#[test]
fn namespace_injection_as_istioctl() {
    assert_eq!(
        found("injection.yaml", &["IST0102", "IST0103", "IST0123"]),
        expect(&[
            ("IST0102", "Namespace bar"),
            // the pod opting out by label, by annotation, by label over annotation, and on
            // the host network are not missing anything
            ("IST0103", "Pod default/noninjectedpod"),
            ("IST0123", "Namespace busted"),
            ("IST0123", "Namespace multi-ns-1"),
            ("IST0123", "Namespace multi-ns-2"),
            ("IST0123", "Namespace multi-ns-3"),
        ])
    );
}

#[test]
fn conflicting_mesh_gateway_hosts_as_istioctl() {
    assert_eq!(
        found(
            "virtualservice_conflictingmeshgatewayhosts.yaml",
            &["IST0109"]
        ),
        expect(&[
            ("IST0109", "VirtualService team3/ratings"),
            ("IST0109", "VirtualService team4/ratings"),
            ("IST0109", "VirtualService foo/ratings"),
            ("IST0109", "VirtualService bar/ratings"),
            ("IST0109", "VirtualService foo/productpage"),
            ("IST0109", "VirtualService foo/bogus-productpage"),
            ("IST0109", "VirtualService team2/ratings"),
        ])
    );
}

/// Before apply: the findings a plan would add and fix, from the fleet as it would be.
#[test]
fn a_plan_adds_and_fixes_findings() {
    use meshdeck::plan::{Action, Item, Plan};
    let c = cluster_with("virtualservice_destinationrules.yaml", REVIEWS);
    let snap = meshdeck::model::Snapshot {
        clusters: vec![std::sync::Arc::new(c)],
        seq: 1,
    };
    let item = |action: Action, name: &str, desired: Option<serde_json::Value>| Item {
        cluster: "test".into(),
        api_version: "networking.istio.io/v1".into(),
        kind: "VirtualService".into(),
        namespace: "default".into(),
        name: name.into(),
        action,
        desired,
        diff: String::new(),
        policies: vec![],
    };
    let plan = Plan {
        items: vec![
            item(Action::Delete, "reviews-bogussubset", None),
            item(
                Action::Create,
                "canary",
                Some(serde_json::json!({
                    "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                    "metadata": {"name": "canary", "namespace": "default"},
                    "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v3"}}]}]}
                })),
            ),
        ],
    };
    let (added, fixed) = meshdeck::analyze::plan_effect(&snap, &plan);
    let names = |v: &[meshdeck::analyze::Finding]| -> Vec<(String, String)> {
        v.iter()
            .map(|f| (f.code.to_string(), f.object.clone()))
            .collect()
    };
    assert_eq!(
        names(&added),
        [(
            "IST0101".to_string(),
            "VirtualService default/canary".to_string()
        )]
    );
    assert_eq!(
        names(&fixed),
        [(
            "IST0101".to_string(),
            "VirtualService default/reviews-bogussubset".to_string()
        )]
    );
}

#[test]
fn deployments_behind_several_services_as_istioctl() {
    assert_eq!(
        found("deployment-multi-service.yaml", &["IST0116", "IST0137"]),
        expect(&[
            ("IST0116", "Deployment bookinfo/multiple-svc-multiple-prot"),
            ("IST0116", "Deployment bookinfo/multiple-without-port"),
            ("IST0137", "Deployment bookinfo/conflicting-ports"),
        ])
    );
}

#[test]
fn sidecar_selectors_as_istioctl() {
    assert_eq!(
        found("sidecar-selector.yaml", &["IST0101", "IST0110"]),
        expect(&[
            ("IST0101", "Sidecar default/maps-to-nonexistent"),
            ("IST0101", "Sidecar other/maps-to-different-ns"),
            ("IST0110", "Sidecar default/dupe-1"),
            ("IST0110", "Sidecar default/dupe-2"),
            ("IST0110", "Sidecar default/overlap-1"),
            ("IST0110", "Sidecar default/overlap-2"),
        ])
    );
    assert_eq!(
        found("sidecar-default-selector.yaml", &["IST0111", "IST0167"]),
        expect(&[
            ("IST0111", "Sidecar ns2/has-conflict-1"),
            ("IST0111", "Sidecar ns2/has-conflict-2"),
            ("IST0167", "Sidecar ns-ambient/namespace-scoped"),
            ("IST0167", "Sidecar ns-ambient/pod-scoped"),
        ])
    );
}

/// Across clusters: a federated host whose cluster lacks the service (MD0001), one service
/// with different ports in two clusters of a VirtualMesh (MD0002), a route to a cluster that is
/// not federated here (MD0003).
#[test]
fn cross_cluster_findings_no_single_cluster_tool_gives() {
    use meshdeck::model::raw::RawObject;
    use std::sync::Arc;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fleet");
    let mut snap = meshdeck::inventory::load(&dir).expect("fleet");
    let obj = |v: serde_json::Value| Arc::new(RawObject::from_value(&v).expect("object"));
    for c in snap.clusters.iter_mut() {
        let mut v = (**c).clone();
        match v.name.as_str() {
            "east" => {
                v.istio.push(obj(serde_json::json!({
                    "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
                    "metadata": {"name": "ghost-bookinfo-west", "namespace": "istio-system"},
                    "spec": {"hosts": ["ghost.bookinfo.svc.west.global"], "location": "MESH_INTERNAL"}})));
                v.policies.push(obj(serde_json::json!({
                    "apiVersion": "networking.mesh.gloo.solo.io/v1", "kind": "VirtualMesh",
                    "metadata": {"name": "fleet", "namespace": "gloo-mesh"},
                    "spec": {"meshes": [{"name": "istiod-istio-system-east"}, {"name": "istiod-istio-system-west"}]}})));
                for s in v.services.iter_mut().filter(|s| s.name == "reviews") {
                    std::sync::Arc::make_mut(s).ports = vec!["9090/TCP".into()];
                }
            }
            "north" => v.istio.push(obj(serde_json::json!({
                "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": "reviews", "namespace": "bookinfo"},
                "spec": {"hosts": ["reviews"], "http": [{"route": [
                    {"destination": {"host": "reviews.bookinfo.svc.cluster.local"}, "weight": 80},
                    {"destination": {"host": "reviews.bookinfo.svc.west.global"}, "weight": 20}]}]}}))),
            _ => {}
        }
        *c = Arc::new(v);
    }
    let f = meshdeck::analyze::analyze(&snap);
    let md: Vec<(String, String, String)> = f
        .iter()
        .filter(|x| x.code.starts_with("MD"))
        .map(|x| (x.code.to_string(), x.cluster.clone(), x.object.clone()))
        .collect();
    let want = |c: &str, cl: &str, o: &str| (c.to_string(), cl.to_string(), o.to_string());
    assert_eq!(
        md,
        vec![
            want(
                "MD0001",
                "east",
                "ServiceEntry istio-system/ghost-bookinfo-west"
            ),
            want("MD0003", "north", "VirtualService bookinfo/reviews"),
            want("MD0002", "east", "Service bookinfo/reviews"),
            want("MD0002", "west", "Service bookinfo/reviews"),
        ],
        "{f:#?}"
    );
    let m3 = f.iter().find(|x| x.code == "MD0003").expect("md0003");
    assert_eq!(m3.path, "spec.http[0].route[1].destination.host");
}

/// `check` says what a policy set would add to the fleet's analysis: a TrafficPolicy whose
/// VirtualService claims the host a hand-written one already claims (IST0109).
#[test]
fn check_includes_the_findings_a_policy_set_would_introduce() {
    let home = tempfile::tempdir().expect("home");
    let inv = home.path().join("inv");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fleet");
    for c in ["east", "west", "north"] {
        std::fs::create_dir_all(inv.join(c)).expect("mkdir");
        std::fs::copy(
            src.join(c).join("fleet.yaml"),
            inv.join(c).join("fleet.yaml"),
        )
        .expect("copy");
    }
    std::fs::write(
        inv.join("east/legacy.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews-legacy, namespace: bookinfo}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n",
    )
    .expect("legacy vs");
    let pol = home.path().join("p.yaml");
    std::fs::write(
        &pol,
        "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {name: timeout, namespace: bookinfo}\nspec:\n  destinationSelector:\n  - kubeServiceRefs: {services: [{name: reviews, namespace: bookinfo, clusterName: east}]}\n  policy: {requestTimeout: 2s}\n",
    )
    .expect("policy");
    let out = crate::common::meshdeck_in(home.path())
        .args(["check", "-f", pol.to_str().expect("p"), "--inventory"])
        .arg(&inv)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("analysis: applying these policies adds IST0109 in east: VirtualService bookinfo/reviews — The VirtualServices bookinfo/reviews,bookinfo/reviews-legacy"),
        "{err}"
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "a finding alone is not a failure: {err}"
    );
    let strict = crate::common::meshdeck_in(home.path())
        .args([
            "check",
            "--strict",
            "-f",
            pol.to_str().expect("p"),
            "--inventory",
        ])
        .arg(&inv)
        .output()
        .expect("runs");
    assert_eq!(strict.status.code(), Some(3), "--strict fails on it");
}

/// Live, against the simulator: mistakes of several analyzers are planted over the API (a
/// subset no DestinationRule defines, a host that does not exist, a rule after a catch-all, a
/// DestinationRule originating TLS without a CA); the fleet's next snapshot has each finding
/// (what the console and `meshdeck analyze` show), and after the fix they are gone.
#[tokio::test]
async fn findings_planted_in_a_live_cluster_appear_and_go() {
    use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
    use kube::discovery::ApiResource;
    let f = crate::common::fleet(1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kc");
    f.write_kubeconfig(&kc).expect("kubeconfig");
    let targets = meshdeck::fleet::kubeconfig::targets(
        std::slice::from_ref(&kc),
        &meshdeck::fleet::Selection::Named(vec!["eu-west".into()]),
    )
    .await
    .expect("targets");
    let mut h = meshdeck::fleet::start(targets);
    assert!(h.wait_synced(std::time::Duration::from_secs(10)).await);
    let vs = |name: &str, http: serde_json::Value| {
        serde_json::json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": "bookstore"},
            "spec": {"hosts": [name], "http": http}})
    };
    // (plural, object, the finding it plants)
    let planted = [
        (
            "virtualservices",
            vs(
                "canary",
                serde_json::json!([{"route": [{"destination": {"host": "reviews", "subset": "v9"}}]}]),
            ),
            (
                "IST0101",
                "VirtualService bookstore/canary",
                "spec.http[0].route[0].destination.subset",
            ),
        ),
        (
            "virtualservices",
            vs(
                "ghost",
                serde_json::json!([{"route": [{"destination": {"host": "no-such-svc"}}]}]),
            ),
            (
                "IST0101",
                "VirtualService bookstore/ghost",
                "spec.http[0].route[0].destination.host",
            ),
        ),
        (
            "virtualservices",
            vs(
                "shadowed",
                serde_json::json!([
                    {"route": [{"destination": {"host": "reviews"}}]},
                    {"match": [{"uri": {"prefix": "/api"}}], "route": [{"destination": {"host": "reviews"}}]}
                ]),
            ),
            (
                "IST0130",
                "VirtualService bookstore/shadowed",
                "spec.http[1]",
            ),
        ),
        (
            "destinationrules",
            serde_json::json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                "metadata": {"name": "open-tls", "namespace": "bookstore"},
                "spec": {"host": "reviews", "trafficPolicy": {"tls": {"mode": "SIMPLE"}}}}),
            (
                "IST0128",
                "DestinationRule bookstore/open-tls",
                "spec.trafficPolicy.tls.mode",
            ),
        ),
    ];
    let found = |h: &meshdeck::fleet::FleetHandle| -> Vec<bool> {
        let f = meshdeck::analyze::analyze(&h.latest());
        planted
            .iter()
            .map(|(_, _, (code, object, path))| {
                f.iter()
                    .any(|x| x.code == *code && x.object == *object && x.path == *path)
            })
            .collect()
    };
    assert!(found(&h).iter().all(|x| !x), "clean before");
    let client = crate::common::client(&f, "eu-west").await;
    let api = |plural: &str| -> Api<DynamicObject> {
        let kind = if plural == "virtualservices" {
            "VirtualService"
        } else {
            "DestinationRule"
        };
        let ar = ApiResource {
            group: "networking.istio.io".into(),
            version: "v1".into(),
            api_version: "networking.istio.io/v1".into(),
            kind: kind.into(),
            plural: plural.into(),
        };
        Api::namespaced_with(client.clone(), "bookstore", &ar)
    };
    for (plural, obj, _) in &planted {
        let o: DynamicObject = serde_json::from_value(obj.clone()).expect("object");
        let name = o.metadata.name.clone().unwrap_or_default();
        api(plural)
            .patch(
                &name,
                &PatchParams::apply("test").force(),
                &Patch::Apply(&o),
            )
            .await
            .expect("plant");
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !found(&h).iter().all(|x| *x) && tokio::time::Instant::now() < deadline {
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(1), h.snapshots.changed()).await;
    }
    assert_eq!(
        found(&h),
        [true; 4],
        "each planted finding is found from the watches"
    );
    // headless, the same
    let home = dir.path().to_path_buf();
    let kcs = kc.clone();
    let out = tokio::task::spawn_blocking(move || {
        crate::common::meshdeck_in(&home)
            .args([
                "analyze",
                "--kubeconfig",
                kcs.to_str().expect("kc"),
                "--context",
                "eu-west",
                "--level",
                "warning",
            ])
            .output()
            .expect("runs")
    })
    .await
    .expect("join");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    for want in [
        "Error [IST0101] (VirtualService bookstore/canary) in eu-west",
        "Error [IST0101] (VirtualService bookstore/ghost) in eu-west: Referenced host not found: \"no-such-svc\"",
        "Warning [IST0130] (VirtualService bookstore/shadowed) in eu-west: VirtualService rule #1 not used (route without matches defined before).",
        "Error [IST0128] (DestinationRule bookstore/open-tls) in eu-west",
    ] {
        assert!(text.contains(want), "{want}\n{text}");
    }
    // the fix
    for (plural, obj, _) in &planted {
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        api(plural)
            .delete(name, &DeleteParams::default())
            .await
            .expect("fix");
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while found(&h).iter().any(|x| *x) && tokio::time::Instant::now() < deadline {
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(1), h.snapshots.changed()).await;
    }
    assert_eq!(found(&h), [false; 4], "gone after the fix");
}

/// The demo fleet's planted mistakes are found with the right codes.
#[test]
fn the_demo_fleets_planted_mistakes_are_found() {
    let now = chrono::Utc::now();
    let snap = meshdeck::sim::fixture::demo_snapshot(3, None, now, |_| ConnState::Synced);
    let third = snap.clusters[2].name.clone();
    let f = meshdeck::analyze::analyze(&snap);
    // a pod's name ends in its ReplicaSet's and its own hash: name it by its workload
    let by_workload = |o: &str| -> String {
        match o.strip_prefix("Pod ") {
            Some(p) => format!("Pod {}-…", p.rsplitn(3, '-').last().unwrap_or(p)),
            None => o.to_string(),
        }
    };
    let mut got: Vec<(&str, String, String)> = f
        .iter()
        .filter(|x| x.level >= meshdeck::analyze::Level::Warning)
        .map(|x| (x.code, x.cluster.clone(), by_workload(&x.object)))
        .collect();
    got.dedup();
    // the planted workload without its sidecar: fraud-check, where its pods have no proxy
    let sidecarless = |p: &&std::sync::Arc<meshdeck::model::PodRow>| {
        p.raw.name.starts_with("fraud-check-")
            && !p.raw.containers.iter().any(|c| &*c.name == "istio-proxy")
    };
    let planted = snap
        .clusters
        .iter()
        .find(|c| c.pods.iter().any(|p| sidecarless(&p)))
        .expect("the demo plants a workload without its sidecar");
    let first = planted.name.clone();
    let fraud_pods = planted.pods.iter().filter(sidecarless).count();
    assert!(fraud_pods > 0);
    assert_eq!(
        f.iter().filter(|x| x.code == "IST0103").count(),
        fraud_pods,
        "every fraud-check pod, none else: {f:#?}"
    );
    assert_eq!(
        got,
        [
            ("IST0103", first, "Pod payments/fraud-check-…".to_string()),
            (
                "IST0101",
                third.clone(),
                "VirtualService bookstore/ratings-canary".to_string()
            ),
            (
                "IST0127",
                third.clone(),
                "AuthorizationPolicy payments/payments-allow".to_string()
            ),
        ],
        "{f:#?}"
    );
}

/// Incremental analysis: a kept `Analyzer` analyses again only the clusters whose views
/// changed, and its answer is always that of a full analysis — a finding planted in one
/// cluster appears, the fix removes it, a cluster that stops being current says nothing.
#[test]
fn the_kept_analyzer_redoes_only_changed_clusters_and_agrees_with_a_full_analysis() {
    use meshdeck::analyze::{Analyzer, analyze};
    use meshdeck::model::Snapshot;
    use std::sync::Arc;
    let base = |name: &str| {
        let mut c = cluster_of("virtualservice_destinationrules.yaml");
        c.name = name.into();
        c
    };
    let mut snap = Snapshot {
        clusters: ["east", "west", "north"]
            .iter()
            .map(|n| Arc::new(base(n)))
            .collect(),
        seq: 1,
    };
    let mut a = Analyzer::new();
    let (first, redone) = a.analyze_counting(&snap);
    assert_eq!(redone, 3);
    assert_eq!(first, analyze(&snap));
    assert!(!first.is_empty(), "the sample has findings");

    // the same views: nothing is analysed again
    let (same, redone) = a.analyze_counting(&snap);
    assert_eq!((same, redone), (first.clone(), 0));

    // west's VirtualServices are gone (a new view for west only): its IST0101s go
    let mut west = base("west");
    west.istio.retain(|o| o.kind != "VirtualService");
    let old_west = Arc::downgrade(&snap.clusters[1]);
    snap.clusters[1] = Arc::new(west);
    // the analyzer does not keep the replaced view alive (under churn that would be a whole
    // older generation of the fleet)
    assert!(
        old_west.upgrade().is_none(),
        "the analyzer holds west's old view"
    );
    let (fixed, redone) = a.analyze_counting(&snap);
    assert_eq!(redone, 1);
    assert_eq!(fixed, analyze(&snap));
    assert!(
        fixed
            .iter()
            .all(|f| f.cluster != "west" || f.code != "IST0101"),
        "{fixed:#?}"
    );
    assert!(
        fixed
            .iter()
            .any(|f| f.cluster == "east" && f.code == "IST0101")
    );

    // north loses its connection: it says nothing, the others are kept
    let mut north = base("north");
    north.state = ConnState::Unreachable {
        since: "12:00:00".into(),
        error: "connection refused".into(),
    };
    snap.clusters[2] = Arc::new(north);
    let (lost, redone) = a.analyze_counting(&snap);
    assert_eq!(redone, 0);
    assert_eq!(lost, analyze(&snap));
    assert!(lost.iter().all(|f| f.cluster != "north"));

    // and back: north is analysed again
    snap.clusters[2] = Arc::new(base("north"));
    let (back, redone) = a.analyze_counting(&snap);
    assert_eq!(redone, 1);
    assert_eq!(back, analyze(&snap));
}

/// `destinationrule.CaCertificateAnalyzer`: istioctl's input gives exactly IST0128 for
/// db-mtls (the sample has no namespace: `default`), with istioctl's message.
#[test]
fn ca_certificates_as_istioctl() {
    assert_eq!(
        found(
            "destinationrule-mutual-destination.yaml",
            &["IST0128", "IST0129"]
        ),
        expect(&[("IST0128", "DestinationRule default/db-mtls")])
    );
    let f = analyze_cluster(&cluster_of("destinationrule-mutual-destination.yaml"));
    let m = f.iter().find(|f| f.code == "IST0128").expect("IST0128");
    assert_eq!(
        m.message,
        "DestinationRule default/db-mtls in namespace default has TLS mode set to MUTUAL but no caCertificates are set to validate server identity for host: mydbserver.prod.svc.cluster.local"
    );
    assert_eq!(m.path, "spec.trafficPolicy.tls.mode");
}

/// The port-level twin (IST0129), and what verifies a server: a CA file, a credential, or a
/// knowing insecureSkipVerify; ISTIO_MUTUAL needs none.
#[test]
fn port_level_tls_without_a_ca_and_what_silences_it() {
    let docs = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ports, namespace: shop}\nspec:\n  host: db.shop.svc.cluster.local\n  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 443}\n      tls: {mode: SIMPLE}\n    - port: {number: 8443}\n      tls: {mode: SIMPLE, credentialName: db-ca}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: fine, namespace: shop}\nspec:\n  host: a.shop.svc.cluster.local\n  trafficPolicy:\n    tls: {mode: SIMPLE, caCertificates: /etc/ca.pem}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: skip, namespace: shop}\nspec:\n  host: b.shop.svc.cluster.local\n  trafficPolicy:\n    tls: {mode: MUTUAL, insecureSkipVerify: true}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: mesh, namespace: shop}\nspec:\n  host: c.shop.svc.cluster.local\n  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}\n";
    let mut input = ClusterInput {
        name: "test".into(),
        context: "test".into(),
        ..Default::default()
    };
    for d in meshdeck::yaml::from_str_multi(docs).expect("yaml") {
        let _ = meshdeck::model::ingest::ingest(&mut input, &d);
    }
    meshdeck::model::ingest::sort(&mut input);
    let f = analyze_cluster(&derive_cluster(&input, ConnState::Synced));
    let got: Vec<(&str, &str, &str)> = f
        .iter()
        .filter(|f| f.code == "IST0128" || f.code == "IST0129")
        .map(|f| (f.code, f.object.as_str(), f.path.as_str()))
        .collect();
    assert_eq!(
        got,
        [(
            "IST0129",
            "DestinationRule shop/ports",
            "spec.trafficPolicy.portLevelSettings[0].tls.mode"
        )]
    );
    assert!(
        f[0].message
            .ends_with("for host: db.shop.svc.cluster.local at port number:443"),
        "{f:#?}"
    );
}

/// `virtualservice.DestinationHostAnalyzer`: istioctl's input gives exactly its expected
/// messages — hosts that do not exist or are not exported to the VirtualService's namespace,
/// a mirror host, a port the service lacks (IST0101) and a two-port service without a port
/// (IST0112) — and nothing for the valid cases (FQDN, ServiceEntry, wildcard, exported).
#[test]
fn destination_hosts_as_istioctl() {
    assert_eq!(
        found(
            "virtualservice_destinationhosts.yaml",
            &["IST0101", "IST0112"]
        ),
        expect(&[
            ("IST0101", "VirtualService default/reviews-bogushost"),
            ("IST0101", "VirtualService default/reviews-bogushost"),
            ("IST0101", "VirtualService default/reviews-bookinfo-other"),
            ("IST0101", "VirtualService default/reviews-mirror-bogushost"),
            ("IST0101", "VirtualService default/reviews-bogusport"),
            ("IST0112", "VirtualService default/reviews-2port-missing"),
            (
                "IST0101",
                "VirtualService istio-system/cross-namespace-details"
            ),
            ("IST0101", "VirtualService hello/hello-export-to-bogus"),
        ])
    );
    let f = meshdeck::analyze::analyze_with(
        &cluster_of("virtualservice_destinationhosts.yaml"),
        "virtualservice.DestinationHostAnalyzer",
    );
    let msg = |object: &str, code: &str| -> Vec<(String, String)> {
        f.iter()
            .filter(|x| x.object == object && x.code == code)
            .map(|x| (x.path.clone(), x.message.clone()))
            .collect()
    };
    assert_eq!(
        msg("VirtualService default/reviews-bogusport", "IST0101"),
        [(
            "spec.http[0].route[0].destination.port.number".to_string(),
            "Referenced host:port not found: \"reviews:999\"".to_string()
        )]
    );
    assert_eq!(
        msg("VirtualService default/reviews-mirror-bogushost", "IST0101"),
        [(
            "spec.http[0].mirror.host".to_string(),
            "Referenced mirror host not found: \"reviews-bogus\"".to_string()
        )]
    );
    assert_eq!(
        msg("VirtualService default/reviews-2port-missing", "IST0112")[0].1,
        "This VirtualService routes to a service \"reviews-2port\" that exposes multiple ports [80 443]. Specifying a port in the destination is required to disambiguate."
    );
}

/// Istio's VirtualService validation, its route half, on istioctl's two inputs read as one:
/// exactly the IST0130 (a rule no request reaches) and IST0131 (a match that never applies:
/// duplicate, or a prefix an earlier prefix covers) istioctl's tests expect, with its words.
#[test]
fn unreachable_rules_and_ineffective_matches_as_istioctl() {
    let overlapping = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/istio-samples/analysis/virtualservice_overlappingmatches.yaml"),
    )
    .expect("testdata");
    let c = cluster_with("virtualservice_dupmatches.yaml", &overlapping);
    let f = meshdeck::analyze::analyze_with(&c, "schema.ValidationAnalyzer.VirtualService");
    let mut got: Vec<(String, String)> = f
        .iter()
        .map(|f| (f.code.to_string(), f.object.clone()))
        .collect();
    got.sort();
    got.dedup(); // istioctl's test lists each (code, object) once
    let vs = |n: &str| format!("VirtualService {n}");
    let mut want: Vec<(String, String)> = [
        ("IST0130", "default/duplicate-match"),
        ("IST0130", "foo/sample-foo-cluster01"),
        ("IST0130", "default/duplicate-tcp-match"),
        ("IST0130", "default/duplicate-empty-tcp"),
        ("IST0130", "none/tls-routing"),
        ("IST0131", "default/almost-duplicate-match"),
        ("IST0131", "default/duplicate-match"),
        ("IST0131", "default/almost-duplicate-tcp-match"),
        ("IST0131", "default/duplicate-tcp-match"),
        ("IST0131", "none/tls-routing-almostmatch"),
        ("IST0131", "none/tls-routing"),
        ("IST0131", "default/non-method-get"),
        ("IST0131", "default/overlapping-in-single-match"),
        ("IST0131", "default/overlapping-in-two-matches"),
        (
            "IST0131",
            "default/overlapping-mathes-with-different-methods",
        ),
    ]
    .iter()
    .map(|(c, o)| (c.to_string(), vs(o)))
    .collect();
    want.sort();
    assert_eq!(got, want, "{f:#?}");
    let words = |object: &str, code: &str| -> Vec<String> {
        f.iter()
            .filter(|x| x.object == vs(object) && x.code == code)
            .map(|x| format!("{} {}", x.level.word(), x.message))
            .collect()
    };
    assert_eq!(
        words("foo/sample-foo-cluster01", "IST0130"),
        ["warning VirtualService rule #1 not used (only the last rule can have no matches)."]
    );
    assert_eq!(
        words("default/duplicate-match", "IST0131"),
        [
            "info VirtualService rule \"send /api/v1/products to sample.bar\" match #0 is not used (duplicate/overlapping match in rule \"send /api/v1/products to sample.foo\")."
        ]
    );
    assert_eq!(
        words("default/overlapping-in-two-matches", "IST0131"),
        [
            "info VirtualService rule \"send products to sample.bar\" match #0 of prefix /api/v1/products is not used (duplicate/overlapping match in rule #0 of prefix /api/v1/product on \"send product to sample.foo\")."
        ]
    );
    // a prefix before an exact match of the same path is not an overlap Istio reports
    assert!(words("default/uri-with-prefix-exact", "IST0131").is_empty());
}

/// The health model agrees with IST0103: a pod that stays out of the mesh on purpose (inject
/// "false" by label or annotation, host network) is not "missing" its sidecar; one that
/// forgot it is degraded.
#[test]
fn pods_opting_out_of_injection_are_not_degraded() {
    let c = cluster_of("injection.yaml");
    let reasons = |name: &str| -> Vec<String> {
        c.pods
            .iter()
            .find(|p| &*p.raw.name == name)
            .map(|p| p.health.reasons.clone())
            .unwrap_or_else(|| panic!("pod {name}"))
    };
    assert!(
        reasons("noninjectedpod")
            .iter()
            .any(|r| r.contains("no sidecar")),
        "{:?}",
        reasons("noninjectedpod")
    );
    for quiet in [
        "podinjectiondisabled",
        "podinjectiondisabled-label",
        "podinjectiondisabled-label-and-anno",
        "noninjectedpodhostnetwork",
    ] {
        assert!(
            !reasons(quiet).iter().any(|r| r.contains("no sidecar")),
            "{quiet}: {:?}",
            reasons(quiet)
        );
    }
}
