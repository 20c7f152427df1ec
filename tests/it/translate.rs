//! Translation, table-driven: policy YAML in → Istio objects out, on a three-cluster bookinfo
//! fleet read offline from tests/data/fleet (east and west have gateways and their own trust
//! domains; north has no gateway address). Each case asserts what matters and snapshots the
//! whole output (tests/snapshots/translate__*.snap) so any change to generated YAML is reviewed.

use meshdeck::model::Snapshot;
use meshdeck::policy::load_str;
use meshdeck::translate::{Output, State, report, translate};
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};

fn fleet() -> Arc<Snapshot> {
    static FLEET: OnceLock<Arc<Snapshot>> = OnceLock::new();
    FLEET
        .get_or_init(|| {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fleet");
            Arc::new(meshdeck::inventory::load(&dir).expect("test fleet loads"))
        })
        .clone()
}

/// Translate, asserting the input is valid and every object passes Istio's schema.
fn run(yaml: &str) -> Output {
    let loaded = load_str(yaml, "case.yaml");
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    let out = translate(&loaded.policies, &fleet());
    let schema = meshdeck::istio::validate_all(&out.objects);
    assert!(schema.is_empty(), "schema errors: {schema:#?}");
    out
}

/// Only the objects policies produced (not the default per-destination DestinationRules).
fn produced(out: &Output) -> String {
    let objs: Vec<_> = out
        .objects
        .iter()
        .filter(|o| !o.sources.is_empty())
        .cloned()
        .collect();
    let mut s = report::yaml_stream(&objs).expect("yaml");
    for st in &out.statuses {
        s.push_str(&format!("# {}: {}\n", st.policy, st.state.word()));
        for e in &st.errors {
            s.push_str(&format!("#   error: {e}\n"));
        }
        for w in &st.warnings {
            s.push_str(&format!("#   warning: {w}\n"));
        }
    }
    s
}

fn spec<'a>(out: &'a Output, cluster: &str, kind: &str, ns: &str, name: &str) -> &'a Value {
    &out.find(cluster, kind, ns, name)
        .unwrap_or_else(|| {
            panic!(
                "no {kind} {ns}/{name} in {cluster}; have {:?}",
                out.objects
                    .iter()
                    .filter(|o| !o.sources.is_empty())
                    .map(|o| format!("{} {} {}/{}", o.cluster, o.kind, o.namespace, o.name))
                    .collect::<Vec<_>>()
            )
        })
        .spec
}

const TP: &str = "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata:\n";
const REVIEWS_EAST: &str = "  destinationSelector:\n  - kubeServiceRefs:\n      services: [{name: reviews, namespace: bookinfo, clusterName: east}]\n";

fn tp(name: &str, created: &str, body: &str) -> String {
    format!(
        "{TP}  name: {name}\n  namespace: bookinfo\n  creationTimestamp: \"{created}\"\nspec:\n{body}"
    )
}

const VM_FED: &str = "---\napiVersion: networking.mesh.gloo.solo.io/v1
kind: VirtualMesh
metadata: {name: fleet, namespace: gloo-mesh, creationTimestamp: \"2026-01-01T00:00:00Z\"}
spec:
  meshes: [{name: istiod-istio-system-east}, {name: istiod-istio-system-west}, {name: istiod-istio-system-north}]
  mtlsConfig: {shared: {rootCertificateAuthority: {generated: {}}}}
  federation:
    selectors:
    - destinationSelectors: [{kubeServiceMatcher: {namespaces: [bookinfo]}}]
  globalAccessPolicy: ENABLED
";

#[test]
fn traffic_shift_with_subsets_in_one_cluster() {
    let out = run(&tp(
        "shift",
        "2026-01-01T00:00:00Z",
        &format!(
            "{REVIEWS_EAST}  policy:\n    trafficShift:\n      destinations:\n      - {{kubeService: {{name: reviews, namespace: bookinfo, clusterName: east, subset: {{version: v1}}}}, weight: 75}}\n      - {{kubeService: {{name: reviews, namespace: bookinfo, clusterName: east, subset: {{version: v2}}}}, weight: 25}}\n"
        ),
    ));
    let vs = spec(&out, "east", "VirtualService", "bookinfo", "reviews");
    assert_eq!(vs["hosts"], json!(["reviews.bookinfo.svc.cluster.local"]));
    assert_eq!(
        vs["http"][0]["route"],
        json!([
            {"destination": {"host": "reviews.bookinfo.svc.cluster.local", "subset": "version-v1"}, "weight": 75},
            {"destination": {"host": "reviews.bookinfo.svc.cluster.local", "subset": "version-v2"}, "weight": 25},
        ])
    );
    let dr = spec(&out, "east", "DestinationRule", "bookinfo", "reviews");
    assert_eq!(
        dr["subsets"],
        json!([{"name": "version-v1", "labels": {"version": "v1"}}, {"name": "version-v2", "labels": {"version": "v2"}}])
    );
    assert_eq!(out.statuses[0].state, State::Accepted);
    insta::assert_snapshot!(produced(&out));
}

#[test]
fn every_route_field() {
    let body = format!(
        "{REVIEWS_EAST}  policy:
    faultInjection: {{fixedDelay: 2s, percentage: 10}}
    requestTimeout: 3s
    retries: {{attempts: 4, perTryTimeout: 500ms}}
    corsPolicy:
      allowOrigins: [{{exact: https://shop.example}}, {{prefix: https://Admin., ignoreCase: true}}]
      allowMethods: [GET, POST]
      allowHeaders: [x-user]
      exposeHeaders: [x-trace]
      maxAge: 24h
      allowCredentials: true
    mirror: {{kubeService: {{name: ratings, namespace: bookinfo, clusterName: east}}}}
    headerManipulation:
      appendRequestHeaders: {{x-canary: \"true\"}}
      removeRequestHeaders: [x-debug]
      appendResponseHeaders: {{x-served-by: meshdeck}}
      removeResponseHeaders: [server]
"
    );
    let out = run(&tp("all", "2026-01-01T00:00:00Z", &body));
    let r = &spec(&out, "east", "VirtualService", "bookinfo", "reviews")["http"][0];
    assert_eq!(
        r["fault"],
        json!({"delay": {"fixedDelay": "2s", "percentage": {"value": 10.0}}})
    );
    assert_eq!(r["timeout"], "3s");
    assert_eq!(
        r["retries"],
        json!({"attempts": 4, "perTryTimeout": "500ms"})
    );
    assert_eq!(
        r["corsPolicy"]["allowOrigins"],
        json!([{"exact": "https://shop.example"}, {"regex": "(?i)https://Admin\\..*"}])
    );
    assert_eq!(r["corsPolicy"]["allowCredentials"], true);
    assert_eq!(
        r["mirror"],
        json!({"host": "ratings.bookinfo.svc.cluster.local"})
    );
    // Gloo 1.0 wrote 0 for an unset percentage (mirroring nothing); meshdeck mirrors all.
    assert_eq!(r["mirrorPercentage"], json!({"value": 100.0}));
    assert_eq!(
        r["headers"],
        json!({"request": {"add": {"x-canary": "true"}, "remove": ["x-debug"]},
               "response": {"add": {"x-served-by": "meshdeck"}, "remove": ["server"]}})
    );
    insta::assert_snapshot!(produced(&out));
}

#[test]
fn abort_outlier_and_tls_mode() {
    let out = run(&tp(
        "abort",
        "2026-01-01T00:00:00Z",
        &format!(
            "{REVIEWS_EAST}  policy:\n    faultInjection: {{abort: {{httpStatus: 503}}, percentage: 50}}\n    outlierDetection: {{consecutiveErrors: 2}}\n    mtls: {{istio: {{tlsMode: DISABLE}}}}\n"
        ),
    ));
    let r = &spec(&out, "east", "VirtualService", "bookinfo", "reviews")["http"][0];
    assert_eq!(
        r["fault"],
        json!({"abort": {"httpStatus": 503, "percentage": {"value": 50.0}}})
    );
    let dr = spec(&out, "east", "DestinationRule", "bookinfo", "reviews");
    assert_eq!(
        dr["trafficPolicy"],
        json!({"tls": {"mode": "DISABLE"},
               "outlierDetection": {"consecutive5xxErrors": 2, "interval": "10s", "baseEjectionTime": "30s", "maxEjectionPercent": 100}})
    );
    insta::assert_snapshot!(produced(&out));
}

#[test]
fn matchers_order_routes_from_most_to_least_specific() {
    let p = |name: &str, t: &str, m: &str| {
        tp(
            name,
            t,
            &format!(
                "{REVIEWS_EAST}  httpRequestMatchers:\n{m}  policy:\n    requestTimeout: 1s\n"
            ),
        )
    };
    let yaml = [
        tp("catch-all", "2026-01-01T00:00:00Z", &format!("{REVIEWS_EAST}  policy:\n    requestTimeout: 9s\n")),
        p("regex", "2026-01-01T00:00:01Z", "  - uri: {regex: \"/api/v[0-9]+\"}\n"),
        p("short-prefix", "2026-01-01T00:00:02Z", "  - uri: {prefix: /a}\n"),
        p("long-prefix", "2026-01-01T00:00:03Z", "  - uri: {prefix: /api/v1, ignoreCase: true}\n"),
        p("exact", "2026-01-01T00:00:04Z", "  - uri: {exact: /health}\n    method: GET\n"),
        p("headers", "2026-01-01T00:00:05Z", "  - headers:\n    - {name: End-User, value: jason}\n    - {name: x-canary, value: \"^t\", regex: true}\n    - {name: x-debug}\n    - {name: x-test, value: \"1\", invertMatch: true}\n    queryParameters:\n    - {name: beta, value: \"1\"}\n"),
    ]
    .join("---\n");
    let out = run(&yaml);
    let http = spec(&out, "east", "VirtualService", "bookinfo", "reviews")["http"]
        .as_array()
        .expect("routes")
        .clone();
    let names: Vec<&str> = http
        .iter()
        .map(|r| r["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        // policy-api.md's order: URI exact, regex, prefix (longer first), none, no match
        [
            "exact",
            "regex",
            "long-prefix",
            "short-prefix",
            "headers",
            "catch-all"
        ]
    );
    assert_eq!(
        http[0]["match"],
        json!([{"uri": {"exact": "/health"}, "method": {"exact": "GET"}}])
    );
    assert_eq!(
        http[2]["match"],
        json!([{"uri": {"prefix": "/api/v1"}, "ignoreUriCase": true}])
    );
    assert_eq!(
        http[4]["match"],
        json!([{"headers": {"end-user": {"exact": "jason"}, "x-canary": {"regex": "^t"}, "x-debug": {}},
                "withoutHeaders": {"x-test": {"exact": "1"}}, "queryParams": {"beta": {"exact": "1"}}}])
    );
    assert!(
        http[5].get("match").is_none(),
        "the catch-all goes last, unmatched"
    );
    insta::assert_snapshot!(produced(&out));
}

#[test]
fn sources_become_source_labels_and_one_match_per_namespace() {
    let out = run(&tp(
        "from-web",
        "2026-01-01T00:00:00Z",
        &format!(
            "  sourceSelector:\n  - kubeWorkloadMatcher:\n      labels: {{app: web}}\n      namespaces: [team-a, team-b]\n      clusters: [east]\n{REVIEWS_EAST}  httpRequestMatchers:\n  - uri: {{prefix: /r}}\n  policy:\n    requestTimeout: 2s\n"
        ),
    ));
    let http = &spec(&out, "east", "VirtualService", "bookinfo", "reviews")["http"];
    // one route per match (source namespace descending), each with the policy's body
    assert_eq!(
        http[0]["match"],
        json!([{"uri": {"prefix": "/r"}, "sourceLabels": {"app": "web"}, "sourceNamespace": "team-b"}])
    );
    assert_eq!(
        http[1]["match"],
        json!([{"uri": {"prefix": "/r"}, "sourceLabels": {"app": "web"}, "sourceNamespace": "team-a"}])
    );
    assert_eq!(
        (http[0]["timeout"].clone(), http[1]["timeout"].clone()),
        (json!("2s"), json!("2s"))
    );
    // Unmatched traffic still reaches the service.
    assert_eq!(
        http[2],
        json!({"name": "default", "route": [{"destination": {"host": "reviews.bookinfo.svc.cluster.local"}}]})
    );
    assert_eq!(out.statuses[0].workloads, Some(1), "web in team-a of east");
    insta::assert_snapshot!(produced(&out));
}

#[test]
fn a_route_is_repeated_per_service_port() {
    let out = run(&tp(
        "front",
        "2026-01-01T00:00:00Z",
        "  destinationSelector:\n  - kubeServiceMatcher: {labels: {app: frontend}}\n  policy:\n    retries: {attempts: 2}\n",
    ));
    let http = &spec(&out, "west", "VirtualService", "team-a", "frontend")["http"];
    assert_eq!(http[0]["match"], json!([{"port": 8080}]));
    assert_eq!(
        http[0]["route"][0]["destination"],
        json!({"host": "frontend.team-a.svc.cluster.local", "port": {"number": 8080}})
    );
    assert_eq!(http[1]["match"], json!([{"port": 9090}]));
    assert_eq!(http.as_array().map(Vec::len), Some(2));
    insta::assert_snapshot!(produced(&out));
}

#[test]
fn same_matchers_merge_into_one_route() {
    let yaml = [
        tp(
            "timeouts",
            "2026-01-01T00:00:00Z",
            &format!("{REVIEWS_EAST}  policy:\n    requestTimeout: 4s\n"),
        ),
        tp(
            "retries",
            "2026-01-02T00:00:00Z",
            &format!("{REVIEWS_EAST}  policy:\n    retries: {{attempts: 5}}\n"),
        ),
    ]
    .join("---\n");
    let out = run(&yaml);
    let http = spec(&out, "east", "VirtualService", "bookinfo", "reviews")["http"]
        .as_array()
        .expect("routes")
        .clone();
    assert_eq!(http.len(), 1, "{http:#?}");
    assert_eq!(http[0]["timeout"], "4s");
    assert_eq!(http[0]["retries"], json!({"attempts": 5}));
    let vs = out
        .find("east", "VirtualService", "bookinfo", "reviews")
        .expect("vs");
    assert_eq!(vs.sources.len(), 2);
    assert_eq!(
        vs.to_object()["metadata"]["annotations"]["meshdeck.io/policies"],
        "TrafficPolicy/bookinfo/retries,TrafficPolicy/bookinfo/timeouts"
    );
    assert!(out.statuses.iter().all(|s| s.state == State::Accepted));
}

#[test]
fn conflicts_the_older_policy_wins_and_both_are_told() {
    let yaml = [
        tp("newer", "2026-02-01T00:00:00Z", &format!("{REVIEWS_EAST}  policy:\n    retries: {{attempts: 1}}\n    requestTimeout: 1s\n")),
        tp("older", "2026-01-01T00:00:00Z", &format!("{REVIEWS_EAST}  policy:\n    retries: {{attempts: 3}}\n")),
        // outlierDetection conflicts whatever the sources
        tp("outlier-a", "2026-01-01T00:00:00Z", &format!("  sourceSelector: [{{kubeWorkloadMatcher: {{namespaces: [team-a]}}}}]\n{REVIEWS_EAST}  policy:\n    outlierDetection: {{consecutiveErrors: 1}}\n")),
        tp("outlier-b", "2026-03-01T00:00:00Z", &format!("  sourceSelector: [{{kubeWorkloadMatcher: {{namespaces: [team-b]}}}}]\n{REVIEWS_EAST}  policy:\n    outlierDetection: {{consecutiveErrors: 9}}\n")),
    ]
    .join("---\n");
    let out = run(&yaml);
    let st = |n: &str| {
        out.statuses
            .iter()
            .find(|s| s.policy.name == n)
            .expect("status")
    };
    assert_eq!(st("newer").state, State::Conflicting);
    assert_eq!(
        st("newer").destinations.get("east/bookinfo/reviews"),
        Some(&State::Conflicting)
    );
    assert!(
        st("newer").errors[0].contains(
            "retries is already set by TrafficPolicy bookinfo/older; the older policy wins"
        ),
        "{:?}",
        st("newer").errors
    );
    assert_eq!(st("older").state, State::Warning);
    assert!(
        st("older").warnings[0].contains("TrafficPolicy bookinfo/newer also sets retries"),
        "{:?}",
        st("older").warnings
    );
    assert_eq!(st("outlier-b").state, State::Conflicting);
    assert!(
        st("outlier-b").errors[0]
            .contains("outlierDetection is already set by TrafficPolicy bookinfo/outlier-a")
    );
    let http = &spec(&out, "east", "VirtualService", "bookinfo", "reviews")["http"];
    let catch_all = http
        .as_array()
        .expect("routes")
        .iter()
        .find(|r| r["name"] == "older")
        .expect("older's route");
    assert_eq!(catch_all["retries"], json!({"attempts": 3}));
    assert!(
        catch_all.get("timeout").is_none(),
        "the rejected policy contributes nothing there"
    );
    let dr = spec(&out, "east", "DestinationRule", "bookinfo", "reviews");
    assert_eq!(
        dr["trafficPolicy"]["outlierDetection"]["consecutive5xxErrors"],
        1
    );
    insta::assert_snapshot!(produced(&out));
}

#[test]
fn a_selector_that_matches_nothing_is_a_warning() {
    let out = run(&tp(
        "nothing",
        "2026-01-01T00:00:00Z",
        "  sourceSelector: [{kubeWorkloadMatcher: {labels: {app: ghost}}}]\n  destinationSelector: [{kubeServiceMatcher: {namespaces: [nowhere]}}]\n  policy:\n    requestTimeout: 1s\n",
    ));
    let s = &out.statuses[0];
    assert_eq!(s.state, State::Warning);
    assert!(
        s.warnings
            .contains(&"spec.destinationSelector matches no destination".to_string()),
        "{:?}",
        s.warnings
    );
    assert!(
        s.warnings
            .contains(&"spec.sourceSelector matches no workload".to_string()),
        "{:?}",
        s.warnings
    );
    assert!(out.objects.iter().all(|o| o.sources.is_empty()));
}

#[test]
fn access_policy_allows_without_global_access_and_names_principals() {
    let ap = "---\napiVersion: networking.mesh.gloo.solo.io/v1
kind: AccessPolicy
metadata: {name: reviews-readers, namespace: bookinfo}
spec:
  sourceSelector:
  - kubeServiceAccountRefs:
      serviceAccounts: [{name: bookinfo-productpage, namespace: bookinfo, clusterName: east}]
  - kubeIdentityMatcher: {namespaces: [team-a], clusters: [west]}
  - kubeIdentityMatcher: {namespaces: [team-b]}
  destinationSelector: [{kubeServiceMatcher: {labels: {app: reviews}}}]
  allowedPaths: [/reviews/*]
  allowedMethods: [GET]
  allowedPorts: [9080]
";
    // Without a VirtualMesh enabling global access the ALLOW policy is made all the same: in
    // Istio it denies every caller it does not allow, at once (Gloo Mesh does the same); the
    // status says so in plain words.
    let out = run(ap);
    assert_eq!(
        out.statuses[0].state,
        State::Accepted,
        "{:?}",
        out.statuses[0]
    );
    let authz = spec(&out, "west", "AuthorizationPolicy", "bookinfo", "reviews");
    assert_eq!(authz["action"], "ALLOW");
    assert!(
        out.statuses[0]
            .notes
            .iter()
            .any(|n| n == "reviews in bookinfo@west: every caller not allowed by AccessPolicy bookinfo/reviews-readers is denied"),
        "{:?}",
        out.statuses[0].notes
    );
    let out = run(&format!("{VM_FED}{ap}"));
    let authz = spec(&out, "west", "AuthorizationPolicy", "bookinfo", "reviews");
    assert_eq!(
        authz,
        &json!({
            "selector": {"matchLabels": {"app": "reviews"}},
            "action": "ALLOW",
            "rules": [{
                "from": [
                    {"source": {"principals": ["east.local/ns/bookinfo/sa/bookinfo-productpage"]}},
                    {"source": {"principals": ["west.local/ns/team-a/sa/*"]}},
                    {"source": {"namespaces": ["team-b"]}},
                ],
                "to": [{"operation": {"paths": ["/reviews/*"], "methods": ["GET"], "ports": ["9080"]}}],
            }],
        })
    );
    assert!(
        out.find("east", "AuthorizationPolicy", "bookinfo", "reviews")
            .is_some()
    );
    insta::assert_snapshot!(produced(&out));
}

#[test]
fn virtual_mesh_federates_three_clusters() {
    let out = run(VM_FED);
    let st = &out.statuses[0];
    // north's gateway has no address: its services cannot be reached from the others.
    assert_eq!(st.state, State::Warning);
    assert!(
        st.warnings
            .iter()
            .any(|w| w.contains("cluster north has no ingress gateway with an external address")),
        "{:?}",
        st.warnings
    );
    for c in ["east", "west", "north"] {
        assert_eq!(
            spec(&out, c, "PeerAuthentication", "istio-system", "default"),
            &json!({"mtls": {"mode": "STRICT"}})
        );
        assert_eq!(
            spec(
                &out,
                c,
                "AuthorizationPolicy",
                "istio-system",
                "global-access-policy"
            ),
            &json!({})
        );
    }
    // reviews in west is federated into east and north, not into west itself
    let se = spec(
        &out,
        "east",
        "ServiceEntry",
        "istio-system",
        "reviews-bookinfo-west",
    );
    // one endpoint per backing pod, through west's gateway, carrying the pod's labels (so a
    // client-side subset `version: v3` has endpoints), and a virtual IP in 240.0.0.0/4
    assert_eq!(
        se,
        &json!({"hosts": ["reviews.bookinfo.svc.west.global"], "addresses": ["240.102.31.47"],
                "location": "MESH_INTERNAL", "resolution": "DNS",
                "ports": [{"number": 9080, "name": "http", "protocol": "HTTP"}],
                "endpoints": [{"address": "172.18.0.20", "ports": {"http": 15443},
                               "labels": {"app": "reviews", "version": "v3"}}]})
    );
    assert!(
        out.find(
            "north",
            "ServiceEntry",
            "istio-system",
            "reviews-bookinfo-west"
        )
        .is_some()
    );
    // the server side: west's gateway knows the federated host (only its namespace sees it),
    // at the pods the Service selects (Istio follows them: no pod IP in the object)
    let local = spec(
        &out,
        "west",
        "ServiceEntry",
        "bookinfo",
        "reviews-bookinfo-west",
    );
    assert_eq!(local["exportTo"], json!(["istio-system"]));
    assert_eq!(local["resolution"], "STATIC");
    assert_eq!(
        local["addresses"], se["addresses"],
        "one virtual IP per host"
    );
    assert_eq!(
        local["workloadSelector"],
        json!({"labels": {"app": "reviews"}})
    );
    assert!(local.get("endpoints").is_none(), "{local}");
    assert_eq!(
        spec(
            &out,
            "west",
            "DestinationRule",
            "istio-system",
            "reviews-bookinfo-west"
        ),
        &json!({"host": "reviews.bookinfo.svc.west.global", "exportTo": ["."], "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}})
    );
    assert_eq!(
        spec(
            &out,
            "north",
            "DestinationRule",
            "istio-system",
            "reviews-bookinfo-west"
        ),
        &json!({"host": "reviews.bookinfo.svc.west.global", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}})
    );
    // details lives only in north: never federated (no gateway address)
    assert!(
        out.objects
            .iter()
            .all(|o| o.name != "details-bookinfo-north")
    );
    // the gateways of east and west accept *.global on 15443
    assert_eq!(
        spec(
            &out,
            "west",
            "Gateway",
            "istio-system",
            "meshdeck-federation-global"
        )["servers"][0],
        json!({"port": {"number": 15443, "name": "tls", "protocol": "TLS"}, "tls": {"mode": "AUTO_PASSTHROUGH"}, "hosts": ["*.global"]})
    );
    // in-mesh destinations of member meshes get ISTIO_MUTUAL
    assert_eq!(
        spec(&out, "east", "DestinationRule", "bookinfo", "ratings")["trafficPolicy"],
        json!({"tls": {"mode": "ISTIO_MUTUAL"}})
    );
    insta::assert_snapshot!(produced(&out));
}

#[test]
fn cross_cluster_shift_uses_the_federated_host() {
    let body = format!(
        "{REVIEWS_EAST}  policy:\n    trafficShift:\n      destinations:\n      - {{kubeService: {{name: reviews, namespace: bookinfo, clusterName: east, subset: {{version: v1}}}}, weight: 90}}\n      - {{kubeService: {{name: reviews, namespace: bookinfo, clusterName: west, subset: {{version: v3}}}}, weight: 10}}\n"
    );
    // Without federation, west is not reachable from east: a warning, east-only route.
    let out = run(&tp("canary", "2026-01-02T00:00:00Z", &body));
    assert_eq!(out.statuses[0].state, State::Warning);
    let out = run(&format!(
        "{VM_FED}---\n{}",
        tp("canary", "2026-01-02T00:00:00Z", &body)
    ));
    let vs = spec(&out, "east", "VirtualService", "bookinfo", "reviews");
    assert_eq!(
        vs["http"][0]["route"][1]["destination"],
        json!({"host": "reviews.bookinfo.svc.west.global", "subset": "version-v3"})
    );
    // The subset for the federated host lives in east's DestinationRule for that host.
    assert_eq!(
        spec(
            &out,
            "east",
            "DestinationRule",
            "istio-system",
            "reviews-bookinfo-west"
        )["subsets"],
        json!([{"name": "version-v3", "labels": {"version": "v3"}}])
    );
    // Federated clients of east's reviews (west, north) get a VirtualService for its global host.
    assert_eq!(
        spec(
            &out,
            "west",
            "VirtualService",
            "istio-system",
            "reviews-bookinfo-east"
        )["hosts"],
        json!(["reviews.bookinfo.svc.east.global"])
    );
    insta::assert_snapshot!(produced(&out));
}

#[test]
fn flat_network_federation_uses_pod_ips() {
    let vm = VM_FED.replace(
        "  federation:\n",
        "  federation:\n    flatNetwork: true\n    hostSuffix: mesh\n",
    );
    let out = run(&vm);
    let se = spec(
        &out,
        "east",
        "ServiceEntry",
        "istio-system",
        "details-bookinfo-north",
    );
    assert_eq!(se["resolution"], "STATIC");
    assert_eq!(se["hosts"], json!(["details.bookinfo.svc.north.mesh"]));
    assert_eq!(se["endpoints"].as_array().map(Vec::len), Some(1));
    assert!(
        out.objects.iter().all(|o| o.kind != "Gateway"),
        "flat networks need no gateway"
    );
}

#[test]
fn a_mesh_in_two_virtual_meshes_conflicts() {
    let second = "---\napiVersion: networking.mesh.gloo.solo.io/v1\nkind: VirtualMesh\nmetadata: {name: other, namespace: gloo-mesh, creationTimestamp: \"2026-05-01T00:00:00Z\"}\nspec:\n  meshes: [{name: istiod-istio-system-east}, {name: istiod-istio-sytem-west}]\n";
    let out = run(&format!("{VM_FED}{second}"));
    let other = out
        .statuses
        .iter()
        .find(|s| s.policy.name == "other")
        .expect("status");
    assert_eq!(other.state, State::Conflicting);
    assert!(
        other.errors[0].contains(
            "mesh istiod-istio-system-east already belongs to VirtualMesh gloo-mesh/fleet"
        ),
        "{:?}",
        other.errors
    );
    assert!(other.warnings[0].contains("mesh \"istiod-istio-sytem-west\" not found in the fleet (did you mean \"istiod-istio-system-west\"?)"), "{:?}", other.warnings);
}

#[test]
fn virtual_destination_spans_clusters() {
    let vd = "---\napiVersion: networking.mesh.gloo.solo.io/v1\nkind: VirtualDestination\nmetadata: {name: ratings-global, namespace: bookinfo}\nspec:\n  hostname: ratings.global.example\n  port: {number: 9080, protocol: HTTP}\n  virtualMesh: {name: fleet, namespace: gloo-mesh}\n  static:\n    destinations:\n    - kubeService: {name: ratings, namespace: bookinfo, clusterName: east}\n    - kubeService: {name: ratings, namespace: bookinfo, clusterName: west}\n";
    let out = run(&format!("{VM_FED}{vd}"));
    let se = spec(
        &out,
        "east",
        "ServiceEntry",
        "istio-system",
        "ratings-global-bookinfo",
    );
    assert_eq!(se["hosts"], json!(["ratings.global.example"]));
    // Strict priority in list order: the first backing service carries failover-1, the second
    // none; the DestinationRule's failoverPriority `meshdeck.io/failover-1=true` puts endpoints
    // with that label at priority 0 and the rest at 1 (Envoy sends nothing to priority 1
    // while priority 0 is healthy; outlier detection ejects it when it is not).
    assert_eq!(
        se["endpoints"],
        json!([
            {"address": "ratings.bookinfo.svc.cluster.local", "ports": {"http-9080": 9080}, "labels": {"meshdeck.io/failover-1": "true", "topology.istio.io/cluster": "east"}},
            {"address": "172.18.0.20", "ports": {"http-9080": 15443}, "labels": {"topology.istio.io/cluster": "west"}},
        ])
    );
    let dr = spec(
        &out,
        "north",
        "DestinationRule",
        "istio-system",
        "ratings-global-bookinfo",
    );
    assert_eq!(
        dr["trafficPolicy"]["loadBalancer"]["localityLbSetting"],
        json!({"enabled": true, "failoverPriority": ["meshdeck.io/failover-1=true"]})
    );
    assert!(dr["trafficPolicy"]["outlierDetection"].is_object());
    insta::assert_snapshot!(produced(&out));
}

#[test]
fn every_generated_object_is_owned_and_names_its_cluster() {
    let out = run(&format!(
        "{VM_FED}---\n{}",
        tp(
            "t",
            "2026-01-01T00:00:00Z",
            &format!("{REVIEWS_EAST}  policy:\n    requestTimeout: 1s\n")
        )
    ));
    assert!(!out.objects.is_empty());
    for o in &out.objects {
        let obj = o.to_object();
        assert_eq!(
            obj["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "meshdeck"
        );
        assert_eq!(
            obj["metadata"]["annotations"]["meshdeck.io/cluster"],
            o.cluster.as_str()
        );
    }
    let keys: Vec<_> = out
        .objects
        .iter()
        .map(|o| {
            (
                o.cluster.clone(),
                o.kind,
                o.namespace.clone(),
                o.name.clone(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted, "sorted and unique");
}
