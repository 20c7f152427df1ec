//! Gloo Mesh 1.x as Gloo wrote it: a corpus of policy YAML in the style of Gloo Mesh 1.0/1.1's
//! docs (tests/data/gloo) loads without a change and translates, and each behaviour of
//! policy-api.md that Gloo users depend on is checked field by field: federated subsets that
//! have endpoints, the server side of federation, the discovered gateway TLS port, every
//! ingress gateway allowed under global deny, service accounts in every trust domain, route
//! order one match at a time, strict failover order.

use meshdeck::model::Snapshot;
use meshdeck::policy::{Severity, load_paths, load_str};
use meshdeck::translate::{Output, State, report, translate};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(p)
}

fn fleet_from(dir: &Path) -> Arc<Snapshot> {
    Arc::new(meshdeck::inventory::load(dir).expect("fleet loads"))
}

/// The test fleet, with `edit` applied to one cluster's manifests (in a temporary copy).
fn fleet_edited(cluster: &str, edit: impl Fn(String) -> String) -> Arc<Snapshot> {
    let tmp = tempfile::tempdir().expect("tempdir");
    for c in ["east", "west", "north"] {
        let to = tmp.path().join(c);
        std::fs::create_dir_all(&to).expect("mkdir");
        let text = std::fs::read_to_string(data("fleet").join(c).join("fleet.yaml")).expect("read");
        let text = if c == cluster { edit(text) } else { text };
        std::fs::write(to.join("fleet.yaml"), text).expect("write");
    }
    fleet_from(tmp.path())
}

fn check(out: &Output) {
    let schema = meshdeck::istio::validate_all(&out.objects);
    assert!(schema.is_empty(), "schema errors: {schema:#?}");
}

/// `yaml` loaded (no errors) and translated over the test fleet, schema-checked.
fn translated(yaml: &str, file: &str) -> Output {
    let loaded = load_str(yaml, file);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let out = translate(&loaded.policies, &fleet_from(&data("fleet")));
    check(&out);
    out
}

fn spec<'a>(out: &'a Output, cluster: &str, kind: &str, ns: &str, name: &str) -> &'a Value {
    &out.find(cluster, kind, ns, name)
        .unwrap_or_else(|| panic!("no {kind} {ns}/{name} in {cluster}"))
        .spec
}

fn corpus() -> (Output, Arc<Snapshot>) {
    let snap = fleet_from(&data("fleet"));
    let loaded = load_paths(&[data("gloo")]);
    let problems: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error || d.severity == Severity::Warning)
        .map(ToString::to_string)
        .collect();
    assert!(
        problems.is_empty(),
        "Gloo's YAML loads unchanged: {problems:#?}"
    );
    assert_eq!(loaded.policies.len(), 9, "every document of the corpus");
    let out = translate(&loaded.policies, &snap);
    check(&out);
    (out, snap)
}

#[test]
fn the_gloo_corpus_loads_unchanged_and_every_policy_is_accepted() {
    let (out, _) = corpus();
    for s in &out.statuses {
        assert_eq!(s.state, State::Accepted, "{}: {:?}", s.policy, s);
    }
    let objs: Vec<_> = out
        .objects
        .iter()
        .filter(|o| !o.sources.is_empty())
        .cloned()
        .collect();
    insta::assert_snapshot!(report::yaml_stream(&objs).expect("yaml"));
}

/// The 75 % to west's v3 goes to a subset that has endpoints: east's ServiceEntry for the
/// federated host carries one endpoint per west pod with the pod's labels, so the
/// DestinationRule subset `version: v3` selects them (it used to select nothing: a 503).
#[test]
fn a_federated_subset_lands_on_endpoints_with_its_labels() {
    let (out, _) = corpus();
    let vs = spec(&out, "east", "VirtualService", "bookinfo", "reviews");
    assert_eq!(
        vs["http"][0]["route"][0],
        json!({"destination": {"host": "reviews.bookinfo.svc.west.global", "subset": "version-v3"}, "weight": 75})
    );
    let dr = spec(
        &out,
        "east",
        "DestinationRule",
        "istio-system",
        "reviews-bookinfo-west",
    );
    let subset = dr["subsets"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "version-v3"))
        .expect("subset v3");
    let se = spec(
        &out,
        "east",
        "ServiceEntry",
        "istio-system",
        "reviews-bookinfo-west",
    );
    let eps = se["endpoints"].as_array().expect("endpoints");
    let selected: Vec<&Value> = eps
        .iter()
        .filter(|e| {
            subset["labels"]
                .as_object()
                .is_some_and(|l| l.iter().all(|(k, v)| &e["labels"][k] == v))
        })
        .collect();
    assert!(!selected.is_empty(), "subset v3 selects endpoints: {eps:?}");
    // through west's gateway, on its external TLS port
    assert_eq!(selected[0]["address"], "172.18.0.20");
    assert_eq!(selected[0]["ports"]["http"], 15443);
    let vip = se["addresses"][0].as_str().expect("a virtual IP");
    assert!(vip.starts_with("24") || vip.starts_with("25"), "{vip}");
    let first: u8 = vip
        .split('.')
        .next()
        .and_then(|o| o.parse().ok())
        .expect("octet");
    assert!(first >= 240, "{vip} in 240.0.0.0/4");
}

/// The server side: west's gateway can route a federated request, because west has the
/// federated host as a ServiceEntry of its pods (visible only in the gateway's namespace) and
/// a DestinationRule with the same subsets the clients use.
#[test]
fn the_destination_cluster_gets_the_local_service_entry_and_destination_rule() {
    let (out, _) = corpus();
    // in the destination's namespace (a workload selector sees only its own), exported only
    // to the gateway's, selecting the pods: a rollout or a scale change leaves it as it is
    let se = spec(
        &out,
        "west",
        "ServiceEntry",
        "bookinfo",
        "reviews-bookinfo-west",
    );
    assert_eq!(se["exportTo"], json!(["istio-system"]));
    assert_eq!(se["hosts"], json!(["reviews.bookinfo.svc.west.global"]));
    assert_eq!(se["resolution"], "STATIC");
    assert_eq!(
        se["workloadSelector"],
        json!({"labels": {"app": "reviews"}})
    );
    assert!(se.get("endpoints").is_none(), "{se}");
    let dr = spec(
        &out,
        "west",
        "DestinationRule",
        "istio-system",
        "reviews-bookinfo-west",
    );
    assert_eq!(dr["exportTo"], json!(["."]));
    assert_eq!(
        dr["subsets"],
        json!([{"name": "version-v3", "labels": {"version": "v3"}}])
    );
    assert_eq!(dr["trafficPolicy"]["tls"]["mode"], "ISTIO_MUTUAL");
}

/// The Gateway listens on the gateway's real TLS container port (its `tls` port's
/// targetPort), not a hard-coded 15443; clients still dial the Service port. Two ingress
/// gateways under global deny are both let in.
#[test]
fn the_gateway_port_is_discovered_and_every_gateway_is_allowed() {
    let snap = fleet_edited("west", |t| {
        let t = t.replace(
            r#"{"name": "tls", "port": 15443, "protocol": "TCP"}"#,
            r#"{"name": "tls", "port": 15443, "targetPort": 8443, "protocol": "TCP"}"#,
        );
        assert!(t.contains("8443"), "the test fleet has west's tls port");
        t + "\n---\n{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"istio-ingress-public\", \"namespace\": \"istio-ingress\"}, \"spec\": {\"selector\": {\"istio\": \"ingressgateway\", \"app\": \"public\"}, \"ports\": [{\"name\": \"http2\", \"port\": 80}], \"type\": \"LoadBalancer\"}, \"status\": {\"loadBalancer\": {\"ingress\": [{\"ip\": \"172.18.0.99\"}]}}}\n"
    });
    let loaded = load_paths(&[
        data("gloo/07-virtual-mesh.yaml"),
        data("gloo/01-traffic-shift-multicluster.yaml"),
    ]);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let out = translate(&loaded.policies, &snap);
    check(&out);
    let gw = spec(
        &out,
        "west",
        "Gateway",
        "istio-system",
        "meshdeck-federation-global",
    );
    assert_eq!(
        gw["servers"][0]["port"],
        json!({"number": 8443, "name": "tls", "protocol": "TLS"})
    );
    let se = spec(
        &out,
        "east",
        "ServiceEntry",
        "istio-system",
        "reviews-bookinfo-west",
    );
    assert_eq!(
        se["endpoints"][0]["ports"]["http"], 15443,
        "the Service port"
    );
    for (ns, name, app) in [
        (
            "istio-system",
            "istio-ingressgateway-allow-all",
            "istio-ingressgateway",
        ),
        ("istio-ingress", "istio-ingress-public-allow-all", "public"),
    ] {
        let ap = spec(&out, "west", "AuthorizationPolicy", ns, name);
        assert_eq!(ap["action"], "ALLOW");
        assert_eq!(ap["selector"]["matchLabels"]["app"], app, "{ap}");
        assert_eq!(ap["rules"], json!([{}]));
    }
}

/// A service account without `clusterName` is named in every mesh's trust domain (it used
/// to get only the destination's); a namespace on listed clusters in each of theirs.
#[test]
fn service_accounts_and_namespaces_expand_to_every_trust_domain() {
    let (out, snap) = corpus();
    let tds: std::collections::BTreeSet<String> = snap
        .clusters
        .iter()
        // a mesh without trustDomain in its mesh config has Istio's default
        .flat_map(|c| {
            c.meshes.iter().map(|m| {
                m.trust_domain
                    .clone()
                    .unwrap_or_else(|| "cluster.local".into())
            })
        })
        .collect();
    assert_eq!(tds.len(), 3, "{tds:?}");
    let ap = spec(&out, "east", "AuthorizationPolicy", "bookinfo", "ratings");
    let from = &ap["rules"][0]["from"];
    assert_eq!(
        from[0]["source"]["principals"],
        json!(["east.local/ns/bookinfo/sa/*", "west.local/ns/bookinfo/sa/*"])
    );
    let sa: Vec<String> = tds
        .iter()
        .map(|td| format!("{td}/ns/bookinfo/sa/bookinfo-reviews"))
        .collect();
    assert_eq!(from[1]["source"]["principals"], json!(sa));
    assert_eq!(
        ap["rules"][0]["to"],
        json!([{"operation": {"paths": ["/ratings*"], "methods": ["GET"]}}])
    );
}

/// policy-api.md's example: one policy matching `prefix /api`, another `[exact /api/v1,
/// prefix /]` — routes are split per match and ordered exact /api/v1, prefix /api, prefix /,
/// so `/api/x` reaches the first policy (the `prefix /` route used to swallow it).
#[test]
fn routes_are_ordered_one_match_at_a_time() {
    let tp = |name: &str, at: &str, matchers: &str, timeout: &str| {
        format!(
            "---\napiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {{name: {name}, namespace: bookinfo, creationTimestamp: \"{at}\"}}\nspec:\n  destinationSelector:\n  - kubeServiceRefs: {{services: [{{name: reviews, namespace: bookinfo, clusterName: east}}]}}\n  httpRequestMatchers:\n{matchers}  policy:\n    requestTimeout: {timeout}\n"
        )
    };
    let yaml = tp("api", "2026-01-01T00:00:00Z", "  - prefix: /api\n", "1s")
        + &tp(
            "site",
            "2026-01-01T00:00:01Z",
            "  - uri: {exact: /api/v1}\n  - uri: {prefix: /}\n",
            "2s",
        );
    let out = translated(&yaml, "routes.yaml");
    let http = spec(&out, "east", "VirtualService", "bookinfo", "reviews")["http"]
        .as_array()
        .expect("routes")
        .clone();
    let got: Vec<(Value, Value)> = http
        .iter()
        .map(|r| (r["match"][0]["uri"].clone(), r["timeout"].clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (json!({"exact": "/api/v1"}), json!("2s")),
            (json!({"prefix": "/api"}), json!("1s")),
            (json!({"prefix": "/"}), json!("2s")),
            (Value::Null, Value::Null),
        ],
        "{http:#?}"
    );
    // unnamed matchers: routes are numbered by position
    let names: Vec<&str> = http.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["site-0", "api", "site-1", "default"], "{http:#?}");
}

/// Gloo 1.1's matcher `name` is Istio's match name (it shows in access logs) and names the
/// route; one matcher meeting two source namespaces gets a route per namespace, numbered.
#[test]
fn a_named_matcher_names_its_match_and_route() {
    let yaml = "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {name: edge, namespace: bookinfo}\nspec:\n  sourceSelector:\n  - kubeWorkloadMatcher: {namespaces: [bookinfo, team-a]}\n  destinationSelector:\n  - kubeServiceRefs: {services: [{name: reviews, namespace: bookinfo, clusterName: east}]}\n  httpRequestMatchers:\n  - name: api\n    uri: {prefix: /api}\n  - uri: {exact: /health}\n  policy:\n    requestTimeout: 1s\n";
    let out = translated(yaml, "named.yaml");
    let http = spec(&out, "east", "VirtualService", "bookinfo", "reviews")["http"]
        .as_array()
        .expect("routes")
        .clone();
    let got: Vec<(Value, Value, Value)> = http
        .iter()
        .map(|r| {
            let m = &r["match"][0];
            (
                r["name"].clone(),
                m["name"].clone(),
                m["sourceNamespace"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (json!("edge-3"), Value::Null, json!("team-a")),
            (json!("edge-2"), Value::Null, json!("bookinfo")),
            (json!("edge-api-1"), json!("api"), json!("team-a")),
            (json!("edge-api-0"), json!("api"), json!("bookinfo")),
            (json!("default"), Value::Null, Value::Null),
        ],
        "{http:#?}"
    );
}

/// Strict failover in list order, by the Istio fields that make it: endpoint i carries the
/// failover labels 1..=(n-1-i) and the DestinationRule lists them with their value in
/// `failoverPriority`, so Envoy puts endpoint i at priority i (a label counts only when the
/// ones before it match): the first healthy backing service takes all traffic. Outlier
/// detection is set, or nothing would ever be ejected.
#[test]
fn static_failover_order_is_made_by_priority_labels() {
    let vd = "---\napiVersion: networking.enterprise.mesh.gloo.solo.io/v1beta1\nkind: VirtualDestination\nmetadata: {name: r, namespace: bookinfo}\nspec:\n  hostname: ratings.global\n  port: {number: 9080, protocol: http}\n  meshList:\n    meshes: [{name: istiod-istio-system-east}, {name: istiod-istio-system-west}]\n  static:\n    destinations:\n    - kubeService: {name: ratings, namespace: bookinfo, clusterName: west}\n    - kubeService: {name: ratings, namespace: bookinfo, clusterName: east}\n    - kubeService: {name: reviews, namespace: bookinfo, clusterName: east}\n";
    let vm = std::fs::read_to_string(data("gloo/07-virtual-mesh.yaml")).expect("vm");
    let out = translated(&format!("{vm}{vd}"), "vd.yaml");
    let se = spec(&out, "east", "ServiceEntry", "istio-system", "r-bookinfo");
    let labels: Vec<Vec<String>> = se["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .map(|e| {
            e["labels"]
                .as_object()
                .map(|l| {
                    l.keys()
                        .filter(|k| k.starts_with("meshdeck.io/failover-"))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        labels,
        vec![
            vec![
                "meshdeck.io/failover-1".to_string(),
                "meshdeck.io/failover-2".to_string()
            ],
            vec!["meshdeck.io/failover-1".to_string()],
            vec![],
        ]
    );
    let dr = spec(
        &out,
        "east",
        "DestinationRule",
        "istio-system",
        "r-bookinfo",
    );
    let priority = &dr["trafficPolicy"]["loadBalancer"]["localityLbSetting"]["failoverPriority"];
    assert_eq!(
        priority,
        &json!(["meshdeck.io/failover-1=true", "meshdeck.io/failover-2=true"])
    );
    // the priority Envoy gives each endpoint, by Istio's rule: the number of labels, in
    // order, that match (the override value), counted from the top
    let prios: Vec<usize> = se["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .map(|e| {
            let matched = priority
                .as_array()
                .expect("list")
                .iter()
                .filter_map(Value::as_str)
                .take_while(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    e["labels"][k] == v
                })
                .count();
            2 - matched
        })
        .collect();
    assert_eq!(prios, vec![0, 1, 2], "list order is priority order");
    assert!(dr["trafficPolicy"]["outlierDetection"].is_object());
}

/// Both path spellings at once are refused, at the matcher; meshdeck's earlier spellings
/// (`hostSuffix`, VirtualDestination under networking.mesh.gloo.solo.io/v1) still load.
#[test]
fn both_spellings_at_once_are_an_error_and_old_aliases_still_load() {
    let both = "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {name: t, namespace: n}\nspec:\n  httpRequestMatchers:\n  - prefix: /a\n    uri: {prefix: /b}\n  policy: {requestTimeout: 1s}\n";
    let l = load_str(both, "t.yaml");
    let e: Vec<String> = l.diagnostics.iter().map(ToString::to_string).collect();
    assert!(
        e.iter().any(|e| e.starts_with("t.yaml:6:5: spec.httpRequestMatchers[0]: set the path with uri (Gloo Mesh 1.1) or with prefix, exact or regex (1.0), not both")),
        "{e:#?}"
    );
    let old = "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: VirtualMesh\nmetadata: {name: v, namespace: n}\nspec:\n  meshes: [{name: m}]\n  federation: {hostSuffix: mesh}\n---\napiVersion: networking.mesh.gloo.solo.io/v1\nkind: VirtualDestination\nmetadata: {name: d, namespace: n}\nspec:\n  hostname: a.global\n  port: {number: 80, protocol: HTTP}\n  virtualMesh: {name: v}\n  static: {destinations: [{kubeService: {name: a, namespace: b, clusterName: c}}]}\n";
    let l = load_str(old, "old.yaml");
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    match &l.policies[0].spec {
        meshdeck::policy::Spec::VirtualMesh(vm) => assert_eq!(
            vm.federation
                .as_ref()
                .and_then(|f| f.host_suffix.as_deref()),
            Some("mesh")
        ),
        other => panic!("{other:?}"),
    }
}

/// A VirtualDestination reached through another cluster's gateway needs that gateway to pass
/// its hostname's TLS through: under the VirtualMesh's suffix (`*.global`) it does; a hostname
/// outside it is named, with the cluster and what the gateway does accept.
#[test]
fn a_virtual_destination_outside_the_federation_suffix_is_named() {
    let vm = std::fs::read_to_string(data("gloo/07-virtual-mesh.yaml")).expect("vm");
    let vd = |host: &str| {
        format!(
            "---\napiVersion: networking.enterprise.mesh.gloo.solo.io/v1beta1\nkind: VirtualDestination\nmetadata: {{name: r, namespace: bookinfo}}\nspec:\n  hostname: {host}\n  port: {{number: 9080, protocol: http}}\n  meshList:\n    meshes: [{{name: istiod-istio-system-east}}, {{name: istiod-istio-system-west}}]\n  static:\n    destinations:\n    - kubeService: {{name: ratings, namespace: bookinfo, clusterName: west}}\n    - kubeService: {{name: ratings, namespace: bookinfo, clusterName: east}}\n"
        )
    };
    let status = |host: &str| {
        let out = translated(&format!("{vm}{}", vd(host)), "vd.yaml");
        out.statuses
            .into_iter()
            .find(|s| s.policy.kind == "VirtualDestination")
            .expect("status")
    };
    let inside = status("ratings.global");
    assert!(
        inside
            .warnings
            .iter()
            .all(|w| !w.contains("passes TLS through")),
        "{:?}",
        inside.warnings
    );
    let outside = status("ratings.mesh");
    let named: Vec<&String> = outside
        .warnings
        .iter()
        .filter(|w| w.contains("passes TLS through for *.global but not ratings.mesh"))
        .collect();
    assert_eq!(
        named.len(),
        2,
        "one per remote backing cluster: {:?}",
        outside.warnings
    );
    assert!(
        named.iter().any(|w| w.contains("in cluster west")),
        "{named:?}"
    );
    assert!(
        named.iter().any(|w| w.contains("in cluster east")),
        "{named:?}"
    );
}
