//! Properties of translation over random policy sets on the test fleet: the output is
//! deterministic (same input, any order → identical objects and statuses) and every object
//! passes Istio's schema.

use meshdeck::model::Snapshot;
use meshdeck::policy::load_str;
use meshdeck::translate::translate;
use proptest::prelude::*;
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

fn dest_selector() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(
            json!([{"kubeServiceRefs": {"services": [{"name": "reviews", "namespace": "bookinfo", "clusterName": "east"}]}}])
        ),
        Just(json!([{"kubeServiceMatcher": {"namespaces": ["bookinfo"]}}])),
        Just(json!([{"kubeServiceMatcher": {"labels": {"app": "ratings"}}}])),
        Just(
            json!([{"kubeServiceMatcher": {"labels": {"app": "frontend"}, "clusters": ["west"]}}])
        ),
    ]
}

fn matchers() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(json!([{"uri": {"prefix": "/api"}}]))),
        Just(Some(
            json!([{"uri": {"exact": "/health"}, "method": "GET"}])
        )),
        Just(Some(
            json!([{"headers": [{"name": "end-user", "value": "jason"}]}])
        )),
        Just(Some(
            json!([{"uri": {"regex": "/v[0-9]+/.*"}}, {"queryParameters": [{"name": "beta", "value": "1"}]}])
        )),
    ]
}

fn sources() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(
            json!([{"kubeWorkloadMatcher": {"namespaces": ["team-a"]}}])
        )),
        Just(Some(
            json!([{"kubeWorkloadMatcher": {"labels": {"app": "productpage"}, "clusters": ["east"]}}])
        )),
    ]
}

fn body() -> impl Strategy<Value = Value> {
    let fields = prop::collection::vec(0usize..10, 1..4);
    (fields, 1u32..5, 1u32..60).prop_map(|(fs, n, secs)| {
        let mut b = serde_json::Map::new();
        for f in fs {
            let (k, v) = match f {
                0 => ("requestTimeout", json!(format!("{secs}s"))),
                1 => ("retries", json!({"attempts": n, "perTryTimeout": "250ms"})),
                2 => ("faultInjection", json!({"fixedDelay": format!("{n}s"), "percentage": 5.5})),
                3 => ("faultInjection", json!({"abort": {"httpStatus": 500 + n}, "percentage": 1})),
                4 => ("corsPolicy", json!({"allowOrigins": [{"prefix": "https://", "ignoreCase": n % 2 == 0}], "allowMethods": ["GET"], "maxAge": "1h"})),
                5 => ("mirror", json!({"kubeService": {"name": "ratings", "namespace": "bookinfo", "clusterName": "east"}, "percentage": n as f64})),
                6 => ("headerManipulation", json!({"appendRequestHeaders": {"x-n": n.to_string()}, "removeResponseHeaders": ["server"]})),
                7 => ("outlierDetection", json!({"consecutiveErrors": n})),
                8 => ("mtls", json!({"istio": {"tlsMode": if n % 2 == 0 { "ISTIO_MUTUAL" } else { "DISABLE" }}})),
                _ => ("trafficShift", json!({"destinations": [
                    {"kubeService": {"name": "reviews", "namespace": "bookinfo", "clusterName": "east", "subset": {"version": "v1"}}, "weight": 100 - n},
                    {"kubeService": {"name": "reviews", "namespace": "bookinfo", "clusterName": "west", "subset": {"version": "v3"}}, "weight": n},
                ]})),
            };
            b.insert(k.into(), v);
        }
        Value::Object(b)
    })
}

fn traffic_policy() -> impl Strategy<Value = Value> {
    (dest_selector(), matchers(), sources(), body(), 0u32..5)
        .prop_map(|(d, m, s, b, day)| {
            let mut spec = json!({"destinationSelector": d, "policy": b});
            if let Some(m) = m {
                spec["httpRequestMatchers"] = m;
            }
            if let Some(s) = s {
                spec["sourceSelector"] = s;
            }
            (spec, day)
        })
        .prop_map(|(spec, day)| {
            json!({"apiVersion": "networking.mesh.gloo.solo.io/v1", "kind": "TrafficPolicy",
                "metadata": {"name": "x", "namespace": "bookinfo", "creationTimestamp": format!("2026-01-0{}T00:00:00Z", day + 1)},
                "spec": spec})
        })
}

fn policy_set() -> impl Strategy<Value = (Vec<Value>, bool)> {
    (prop::collection::vec(traffic_policy(), 1..7), any::<bool>()).prop_map(|(mut ps, vm)| {
        for (i, p) in ps.iter_mut().enumerate() {
            p["metadata"]["name"] = json!(format!("p{i}"));
        }
        if vm {
            ps.push(json!({"apiVersion": "networking.mesh.gloo.solo.io/v1", "kind": "VirtualMesh",
                "metadata": {"name": "fleet", "namespace": "gloo-mesh"},
                "spec": {"meshes": [{"name": "istiod-istio-system-east"}, {"name": "istiod-istio-system-west"}],
                    "mtlsConfig": {"shared": {"rootCertificateAuthority": {"generated": {}}}},
                    "federation": {}, "globalAccessPolicy": "ENABLED"}}));
            ps.push(json!({"apiVersion": "networking.mesh.gloo.solo.io/v1", "kind": "AccessPolicy",
                "metadata": {"name": "readers", "namespace": "bookinfo"},
                "spec": {"sourceSelector": [{"kubeIdentityMatcher": {"namespaces": ["bookinfo"]}}],
                    "destinationSelector": [{"kubeServiceMatcher": {"namespaces": ["bookinfo"]}}],
                    "allowedMethods": ["GET"]}}));
        }
        (ps, vm)
    })
}

fn to_yaml(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| meshdeck::yaml::to_string(d).expect("yaml"))
        .collect::<Vec<_>>()
        .join("---\n")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn translation_is_deterministic_and_schema_valid((docs, _vm) in policy_set(), seed in any::<u64>()) {
        let snap = fleet();
        let loaded = load_str(&to_yaml(&docs), "gen.yaml");
        prop_assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
        let a = translate(&loaded.policies, &snap);
        let bad = meshdeck::istio::validate_all(&a.objects);
        prop_assert!(bad.is_empty(), "schema errors: {:#?}", bad);
        // and Istio's route validation finds no rule or match the translator made useless
        for c in &snap.clusters {
            let mut view = (**c).clone();
            view.istio.extend(
                a.objects
                    .iter()
                    .filter(|o| o.cluster == c.name)
                    .filter_map(|o| meshdeck::model::raw::RawObject::from_value(&o.to_object()))
                    .map(Arc::new),
            );
            let f = meshdeck::analyze::analyze_with(&view, "schema.ValidationAnalyzer.VirtualService");
            prop_assert!(f.is_empty(), "{:#?}", f);
        }

        // any order of the same policies → the same objects and statuses
        let mut shuffled = docs.clone();
        let mut rng = fastrand::Rng::with_seed(seed);
        rng.shuffle(&mut shuffled);
        let loaded2 = load_str(&to_yaml(&shuffled), "gen.yaml");
        let b = translate(&loaded2.policies, &snap);
        prop_assert_eq!(&a.objects, &b.objects);
        let mut sa = a.statuses.clone();
        let mut sb = b.statuses.clone();
        sa.sort_by(|x, y| x.policy.cmp(&y.policy));
        sb.sort_by(|x, y| x.policy.cmp(&y.policy));
        prop_assert_eq!(sa, sb);
        // and the YAML text is byte-identical
        let ya = meshdeck::translate::report::yaml_stream(&a.objects).expect("yaml");
        let yb = meshdeck::translate::report::yaml_stream(&b.objects).expect("yaml");
        prop_assert_eq!(ya, yb);
    }
}

fn access_policy() -> impl Strategy<Value = Value> {
    let sources = prop_oneof![
        Just(json!([{"kubeIdentityMatcher": {"namespaces": ["bookinfo"]}}])),
        Just(json!([{"kubeIdentityMatcher": {"clusters": ["west"]}}])),
        Just(
            json!([{"kubeServiceAccountRefs": {"serviceAccounts": [{"name": "bookinfo-productpage", "namespace": "bookinfo"}]}}])
        ),
        Just(
            json!([{"kubeServiceAccountRefs": {"serviceAccounts": [{"name": "bookinfo-productpage", "namespace": "bookinfo", "clusterName": "east"}]}}])
        ),
    ];
    (dest_selector(), sources, any::<bool>()).prop_map(|(d, s, get)| {
        let mut spec = json!({"sourceSelector": s, "destinationSelector": d});
        if get {
            spec["allowedMethods"] = json!(["GET"]);
        }
        json!({"apiVersion": "networking.mesh.gloo.solo.io/v1", "kind": "AccessPolicy",
            "metadata": {"name": "a", "namespace": "bookinfo", "creationTimestamp": "2026-01-02T00:00:00Z"},
            "spec": spec})
    })
}

/// One edit: which policy (modulo the set's size), a new TrafficPolicy spec and a new
/// AccessPolicy spec (the one of the policy's kind is used; a VirtualMesh edit flips its
/// global access).
fn edits() -> impl Strategy<Value = Vec<(usize, Value, Value)>> {
    prop::collection::vec((0usize..16, traffic_policy(), access_policy()), 1..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Issue #15: after any sequence of edits the kept translator's answer — incremental when
    /// only TrafficPolicies and AccessPolicies changed — equals a fresh full translation.
    #[test]
    fn incremental_translation_equals_a_full_one(
        (mut docs, _vm) in policy_set(),
        extra in prop::collection::vec(access_policy(), 0..3),
        steps in edits(),
    ) {
        use meshdeck::translate::{Pass, Translator};
        let snap = fleet();
        for (i, mut a) in extra.into_iter().enumerate() {
            a["metadata"]["name"] = json!(format!("a{i}"));
            docs.push(a);
        }
        let t = Translator::new(&snap);
        let first = load_str(&to_yaml(&docs), "gen.yaml");
        prop_assert!(!first.has_errors(), "{:#?}", first.diagnostics);
        let (_, pass) = t.translate_with_pass(&first.policies);
        prop_assert_eq!(pass, Pass::Full);
        for (k, tp, ap) in steps {
            let i = k % docs.len();
            let mesh_wide = match docs[i]["kind"].as_str() {
                Some("TrafficPolicy") => { docs[i]["spec"] = tp["spec"].clone(); false }
                Some("AccessPolicy") => { docs[i]["spec"] = ap["spec"].clone(); false }
                _ => {
                    let g = &mut docs[i]["spec"]["globalAccessPolicy"];
                    *g = json!(if g == "ENABLED" { "DISABLED" } else { "ENABLED" });
                    true
                }
            };
            let loaded = load_str(&to_yaml(&docs), "gen.yaml");
            prop_assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
            let (inc, pass) = t.translate_with_pass(&loaded.policies);
            let full = translate(&loaded.policies, &snap);
            if mesh_wide {
                prop_assert_eq!(pass, Pass::Full);
            } else {
                prop_assert!(matches!(pass, Pass::Incremental { .. } | Pass::Unchanged), "{:?}", pass);
            }
            prop_assert_eq!(&inc.objects, &full.objects, "objects after editing {} ({:?})", i, pass);
            prop_assert_eq!(&inc.statuses, &full.statuses, "statuses after editing {} ({:?})", i, pass);
        }
    }
}
