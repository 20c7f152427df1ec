//! Malformed policy inputs, each with the exact positioned error meshdeck must give
//! (`file:line:col: field.path: message`). One row per mistake users make.

use meshdeck::policy::{Severity, load_str};

const TP: &str = "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata:\n  name: t\n  namespace: bookinfo\nspec:\n";
const AP: &str = "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: AccessPolicy\nmetadata:\n  name: a\n  namespace: bookinfo\nspec:\n";
const VM: &str = "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: VirtualMesh\nmetadata:\n  name: v\n  namespace: gloo-mesh\nspec:\n";
const VD: &str = "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: VirtualDestination\nmetadata:\n  name: d\n  namespace: gloo-mesh\nspec:\n";
const RB: &str = "apiVersion: rbac.enterprise.mesh.gloo.solo.io/v1\nkind: RoleBinding\nmetadata:\n  name: b\n  namespace: gloo-mesh\nspec:\n";
const ROLE: &str = "apiVersion: rbac.enterprise.mesh.gloo.solo.io/v1\nkind: Role\nmetadata:\n  name: r\n  namespace: gloo-mesh\nspec:\n";

/// (case, input, the first error expected)
fn cases() -> Vec<(&'static str, String, &'static str)> {
    let tp = |body: &str| format!("{TP}{body}");
    let ap = |body: &str| format!("{AP}{body}");
    let vm = |body: &str| format!("{VM}{body}");
    let vd = |body: &str| format!("{VD}{body}");
    vec![
        // --- YAML itself
        ("unclosed flow list", tp("  policy:\n    retries: {attempts: [3}\n"), "p.yaml:8:27: invalid YAML: while parsing a flow sequence"),
        ("tab indentation", tp("  policy:\n\tretries: {}\n"), "p.yaml:8:2: invalid YAML: tabs disallowed"),
        ("duplicate key", tp("  policy:\n    requestTimeout: 1s\n    requestTimeout: 2s\n"), "p.yaml:9:5: invalid YAML: duplicated key in mapping"),
        ("document is a list", "- a\n- b\n".into(), "p.yaml:1:1: expected a Kubernetes object (a mapping with apiVersion and kind), found a list"),
        ("document is a scalar", "hello\n".into(), "p.yaml:1:1: expected a Kubernetes object (a mapping with apiVersion and kind), found \"hello\""),
        ("alias expands, then is checked", tp("  policy:\n    retries: &r {attempts: 1}\n    mirror: *r\n"), "p.yaml:8:18: spec.policy.mirror.attempts: unknown field \"attempts\"; known fields: kubeService, percentage, port"),
        // --- envelope
        ("missing kind", "apiVersion: networking.mesh.gloo.solo.io/v1\nmetadata: {name: x}\nspec: {}\n".into(), "p.yaml:1:1: missing required field \"kind\""),
        ("kind not a string", "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: 3\nmetadata: {name: x}\nspec: {}\n".into(), "p.yaml:2:7: kind: expected string, found number 3"),
        ("unknown kind with hint", "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TraficPolicy\nmetadata: {name: x}\nspec: {}\n".into(), "p.yaml:2:7: kind: unknown kind \"TraficPolicy\" (did you mean \"TrafficPolicy\"?); meshdeck reads TrafficPolicy, AccessPolicy, VirtualMesh, VirtualDestination, Role, RoleBinding"),
        ("wrong apiVersion", "apiVersion: networking.mesh.gloo.solo.io/v1alpha2\nkind: TrafficPolicy\nmetadata: {name: x}\nspec: {}\n".into(), "p.yaml:1:13: apiVersion: TrafficPolicy is networking.mesh.gloo.solo.io/v1, found \"networking.mesh.gloo.solo.io/v1alpha2\""),
        ("missing apiVersion", "kind: TrafficPolicy\nmetadata: {name: x}\nspec: {}\n".into(), "p.yaml:1:1: missing required field \"apiVersion\" (networking.mesh.gloo.solo.io/v1)"),
        ("unknown top-level field", "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {name: x}\nspce: {}\n".into(), "p.yaml:4:1: spce: unknown field \"spce\" (did you mean \"spec\"?)"),
        ("missing spec", "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {name: x}\n".into(), "p.yaml:1:1: missing required field \"spec\""),
        ("missing metadata", "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nspec: {}\n".into(), "p.yaml:1:1: missing required field \"metadata\""),
        ("missing name", "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata:\n  namespace: x\nspec: {}\n".into(), "p.yaml:3:1: metadata: missing required field \"name\""),
        ("bad name", "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata:\n  name: Reviews_Shift\nspec: {}\n".into(), "p.yaml:4:9: metadata.name: \"Reviews_Shift\" is not a valid name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"),
        ("labels not a map", "apiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata:\n  name: x\n  labels: [a]\nspec: {}\n".into(), "p.yaml:5:11: metadata.labels: expected a mapping, found a list"),
        // --- TrafficPolicy types and unknown fields
        ("string for integer", tp("  policy:\n    retries:\n      attempts: three\n"), "p.yaml:9:17: spec.policy.retries.attempts: expected integer, found \"three\""),
        ("negative weight", tp("  policy:\n    trafficShift:\n      destinations:\n      - weight: -5\n"), "p.yaml:10:17: spec.policy.trafficShift.destinations[0].weight: expected a non-negative integer, found number -5"),
        ("misspelt policy field", tp("  policy:\n    retires:\n      attempts: 3\n"), "p.yaml:8:5: spec.policy.retires: unknown field \"retires\" (did you mean \"retries\"?)"),
        ("misspelt spec field", tp("  destinationSelectors: []\n"), "p.yaml:7:3: spec.destinationSelectors: unknown field \"destinationSelectors\" (did you mean \"destinationSelector\"?)"),
        ("unknown nested field", tp("  policy:\n    retries:\n      attempts: 3\n      backoff: 1s\n"), "p.yaml:10:7: spec.policy.retries.backoff: unknown field \"backoff\"; known fields: attempts, perTryTimeout"),
        ("selector not a list", tp("  destinationSelector:\n    kubeServiceMatcher: {}\n"), "p.yaml:7:3: spec.destinationSelector: expected a list, found a mapping"),
        ("labels value not a string", tp("  destinationSelector:\n  - kubeServiceMatcher:\n      labels:\n        app: [reviews]\n"), "p.yaml:10:14: spec.destinationSelector[0].kubeServiceMatcher.labels.app: expected string, found a list"),
        ("bad tls mode", tp("  policy:\n    mtls:\n      istio:\n        tlsMode: MUTUAL\n"), "p.yaml:10:18: spec.policy.mtls.istio.tlsMode: unknown value \"MUTUAL\"; expected one of DISABLE, SIMPLE, ISTIO_MUTUAL"),
        ("tls mode typo", tp("  policy:\n    mtls:\n      istio:\n        tlsMode: ISTIO_MUTAL\n"), "p.yaml:10:18: spec.policy.mtls.istio.tlsMode: unknown value \"ISTIO_MUTAL\" (did you mean \"ISTIO_MUTUAL\"?); expected one of DISABLE, SIMPLE, ISTIO_MUTUAL"),
        ("percentage as string", tp("  policy:\n    faultInjection:\n      abort: {httpStatus: 503}\n      percentage: lots\n"), "p.yaml:10:19: spec.policy.faultInjection.percentage: expected number, found \"lots\""),
        ("boolean as string", tp("  policy:\n    corsPolicy:\n      allowCredentials: maybe\n"), "p.yaml:9:25: spec.policy.corsPolicy.allowCredentials: expected boolean, found \"maybe\""),
        // --- TrafficPolicy semantics
        ("both selector kinds", tp("  destinationSelector:\n  - kubeServiceMatcher: {namespaces: [a]}\n    kubeServiceRefs: {services: [{name: r, namespace: a, clusterName: c}]}\n"), "p.yaml:8:5: spec.destinationSelector[0]: set only one of kubeServiceMatcher or kubeServiceRefs"),
        ("empty destination selector", tp("  destinationSelector:\n  - {}\n"), "p.yaml:8:5: spec.destinationSelector[0]: set one of kubeServiceMatcher or kubeServiceRefs"),
        ("service ref without cluster", tp("  destinationSelector:\n  - kubeServiceRefs:\n      services:\n      - name: reviews\n        namespace: bookinfo\n"), "p.yaml:10:9: spec.destinationSelector[0].kubeServiceRefs.services[0].clusterName: missing required field \"clusterName\""),
        ("empty service refs", tp("  destinationSelector:\n  - kubeServiceRefs:\n      services: []\n"), "p.yaml:9:17: spec.destinationSelector[0].kubeServiceRefs.services: must list at least one service"),
        ("source selector without matcher", tp("  sourceSelector:\n  - {}\n"), "p.yaml:8:5: spec.sourceSelector[0]: set kubeWorkloadMatcher"),
        ("bad label value", tp("  sourceSelector:\n  - kubeWorkloadMatcher:\n      labels: {app: \"a b\"}\n"), "p.yaml:9:21: spec.sourceSelector[0].kubeWorkloadMatcher.labels.app: label value \"a b\" is not valid: at most 63 of a-z, A-Z, 0-9, '-', '_', '.'"),
        ("uri with two matches", tp("  httpRequestMatchers:\n  - uri: {exact: /a, prefix: /b}\n"), "p.yaml:8:10: spec.httpRequestMatchers[0].uri: set exactly one of exact, prefix or regex (found 2)"),
        ("uri with none", tp("  httpRequestMatchers:\n  - uri: {ignoreCase: true}\n"), "p.yaml:8:10: spec.httpRequestMatchers[0].uri: set exactly one of exact, prefix or regex (found 0)"),
        ("bad uri regex", tp("  httpRequestMatchers:\n  - uri: {regex: \"/api/(v1\"}\n"), "p.yaml:8:18: spec.httpRequestMatchers[0].uri.regex: invalid regex \"/api/(v1\": error: unclosed group"),
        ("header without name", tp("  httpRequestMatchers:\n  - headers:\n    - value: x\n"), "p.yaml:9:7: spec.httpRequestMatchers[0].headers[0].name: missing required field \"name\""),
        ("bad method", tp("  httpRequestMatchers:\n  - method: GTE\n"), "p.yaml:8:13: spec.httpRequestMatchers[0].method: unknown HTTP method \"GTE\" (did you mean \"GET\"?); expected one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH"),
        ("bad duration", tp("  policy:\n    requestTimeout: 10\n"), "p.yaml:8:21: spec.policy.requestTimeout: expected string, found number 10"),
        ("bad duration unit", tp("  policy:\n    requestTimeout: 10sec\n"), "p.yaml:8:21: spec.policy.requestTimeout: invalid duration \"10sec\": expected a number and a unit, like \"1.5s\", \"250ms\" or \"1m30s\""),
        ("duration below 1ms", tp("  policy:\n    retries:\n      attempts: 2\n      perTryTimeout: 100us\n"), "p.yaml:10:22: spec.policy.retries.perTryTimeout: duration \"100us\" is shorter than 1ms (Istio's minimum)"),
        ("negative attempts", tp("  policy:\n    retries:\n      attempts: -1\n"), "p.yaml:9:17: spec.policy.retries.attempts: must not be negative, found -1"),
        ("fault with both", tp("  policy:\n    faultInjection:\n      fixedDelay: 1s\n      abort: {httpStatus: 500}\n      percentage: 10\n"), "p.yaml:8:5: spec.policy.faultInjection: set only one of fixedDelay or abort"),
        ("fault with neither", tp("  policy:\n    faultInjection:\n      percentage: 10\n"), "p.yaml:8:5: spec.policy.faultInjection: set one of fixedDelay or abort"),
        ("abort status out of range", tp("  policy:\n    faultInjection:\n      abort: {httpStatus: 99}\n      percentage: 10\n"), "p.yaml:9:27: spec.policy.faultInjection.abort.httpStatus: must be an HTTP status between 200 and 599, found 99"),
        ("percentage over 100", tp("  policy:\n    faultInjection:\n      fixedDelay: 2s\n      percentage: 150\n"), "p.yaml:10:19: spec.policy.faultInjection.percentage: must be between 0 and 100, found 150"),
        ("shift without destinations", tp("  policy:\n    trafficShift:\n      destinations: []\n"), "p.yaml:9:21: spec.policy.trafficShift.destinations: must list at least one destination"),
        ("shift target without kubeService", tp("  policy:\n    trafficShift:\n      destinations:\n      - weight: 10\n"), "p.yaml:10:9: spec.policy.trafficShift.destinations[0]: missing required field \"kubeService\""),
        ("shift weights all zero", tp("  policy:\n    trafficShift:\n      destinations:\n      - kubeService: {name: a, namespace: b, clusterName: c}\n      - kubeService: {name: d, namespace: b, clusterName: c}\n"), "p.yaml:9:7: spec.policy.trafficShift.destinations: weights are all 0: no traffic would be sent"),
        ("shift port out of range", tp("  policy:\n    trafficShift:\n      destinations:\n      - kubeService: {name: a, namespace: b, clusterName: c, port: 70000}\n"), "p.yaml:10:68: spec.policy.trafficShift.destinations[0].kubeService.port: port must be between 1 and 65535, found 70000"),
        ("mirror without target", tp("  policy:\n    mirror:\n      percentage: 5\n"), "p.yaml:8:5: spec.policy.mirror: missing required field \"kubeService\""),
        ("mtls without istio", tp("  policy:\n    mtls: {}\n"), "p.yaml:8:11: spec.policy.mtls: missing required field \"istio\""),
        ("outlier percent over 100", tp("  policy:\n    outlierDetection:\n      maxEjectionPercent: 101\n"), "p.yaml:9:27: spec.policy.outlierDetection.maxEjectionPercent: must be between 0 and 100, found 101"),
        ("cors origin without match", tp("  policy:\n    corsPolicy:\n      allowOrigins:\n      - {}\n"), "p.yaml:10:9: spec.policy.corsPolicy.allowOrigins[0]: set exactly one of exact, prefix or regex (found 0)"),
        ("empty remove header", tp("  policy:\n    headerManipulation:\n      removeRequestHeaders: [\"\"]\n"), "p.yaml:9:30: spec.policy.headerManipulation.removeRequestHeaders[0]: empty header name"),
        // --- AccessPolicy
        ("access source empty", ap("  sourceSelector:\n  - {}\n"), "p.yaml:8:5: spec.sourceSelector[0]: set kubeIdentityMatcher or kubeServiceAccountRefs"),
        ("access sa without namespace", ap("  sourceSelector:\n  - kubeServiceAccountRefs:\n      serviceAccounts:\n      - name: web\n"), "p.yaml:10:9: spec.sourceSelector[0].kubeServiceAccountRefs.serviceAccounts[0].namespace: missing required field \"namespace\""),
        ("access bad method", ap("  allowedMethods: [get]\n"), "p.yaml:7:20: spec.allowedMethods[0]: unknown HTTP method \"get\" (did you mean \"GET\"?); expected one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH"),
        ("access port zero", ap("  allowedPorts: [0]\n"), "p.yaml:7:18: spec.allowedPorts[0]: port must be between 1 and 65535, found 0"),
        ("access port string", ap("  allowedPorts: [http]\n"), "p.yaml:7:18: spec.allowedPorts[0]: expected integer, found \"http\""),
        ("access unknown field", ap("  allowedPath: [/a]\n"), "p.yaml:7:3: spec.allowedPath: unknown field \"allowedPath\" (did you mean \"allowedPaths\"?)"),
        // --- VirtualMesh
        ("vm without meshes", vm("  meshes: []\n"), "p.yaml:7:11: spec.meshes: must list at least one mesh"),
        ("vm global access typo", vm("  meshes: [{name: m}]\n  globalAccessPolicy: ENABLE\n"), "p.yaml:8:23: spec.globalAccessPolicy: unknown value \"ENABLE\" (did you mean \"ENABLED\"?); expected one of MESH_DEFAULT, DISABLED, ENABLED"),
        ("vm two CAs", vm("  meshes: [{name: m}]\n  mtlsConfig:\n    shared:\n      rootCertificateAuthority:\n        generated: {}\n        secret: {name: ca}\n"), "p.yaml:10:7: spec.mtlsConfig.shared.rootCertificateAuthority: set only one of generated or secret"),
        ("vm bad host suffix", vm("  meshes: [{name: m}]\n  federation:\n    hostnameSuffix: Global_Mesh\n"), "p.yaml:9:21: spec.federation.hostnameSuffix: \"Global_Mesh\" is not a valid name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"),
        ("vm generated CA not empty", vm("  meshes: [{name: m}]\n  mtlsConfig:\n    shared:\n      rootCertificateAuthority:\n        generated: {ttl: 1h}\n"), "p.yaml:11:21: spec.mtlsConfig.shared.rootCertificateAuthority.generated.ttl: unknown field \"ttl\" (this object takes no fields)"),
        // --- VirtualDestination
        ("vd without hostname", vd("  port: {number: 80, protocol: HTTP}\n"), "p.yaml:6:1: spec: missing required field \"hostname\""),
        ("vd bad protocol", vd("  hostname: reviews.global\n  port: {number: 80, protocol: htp}\n  virtualMesh: {name: v}\n  static: {destinations: [{kubeService: {name: a, namespace: b, clusterName: c}}]}\n"), "p.yaml:8:32: spec.port.protocol: unknown protocol \"htp\" (did you mean \"HTTP\"?); expected one of HTTP, HTTPS, HTTP2, GRPC, TCP, TLS, MONGO"),
        ("vd port zero", vd("  hostname: reviews.global\n  port: {number: 0, protocol: HTTP}\n  virtualMesh: {name: v}\n  static: {destinations: [{kubeService: {name: a, namespace: b, clusterName: c}}]}\n"), "p.yaml:8:18: spec.port.number: port must be between 1 and 65535, found 0"),
        // --- Role / RoleBinding
        ("role unknown action", format!("{ROLE}  trafficPolicyScopes:\n  - trafficPolicyActions: [RETRY]\n"), "p.yaml:8:28: spec.trafficPolicyScopes[0].trafficPolicyActions[0]: unknown value \"RETRY\"; expected one of ALL, TRAFFIC_SHIFT, FAULT_INJECTION, REQUEST_TIMEOUT, RETRIES, CORS_POLICY, MIRROR, HEADER_MANIPULATION, OUTLIER_DETECTION, MTLS_CONFIG"),
        ("binding without role", format!("{RB}  subjects: [{{kind: User, name: alice}}]\n"), "p.yaml:7:3: spec.roleRef.name: must name a Role"),
        ("binding subject kind", format!("{RB}  roleRef: {{name: r}}\n  subjects: [{{kind: Person, name: alice}}]\n"), "p.yaml:8:21: spec.subjects[0].kind: unknown value \"Person\"; expected one of User, Group, ServiceAccount"),
    ]
}

#[test]
fn every_malformed_input_gets_its_positioned_error() {
    let cases = cases();
    assert!(cases.len() >= 50, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for (name, input, expected) in &cases {
        let loaded = load_str(input, "p.yaml");
        assert!(
            loaded.policies.is_empty() && loaded.roles.is_empty() && loaded.bindings.is_empty(),
            "{name}: a broken input still loaded"
        );
        let errors: Vec<String> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(ToString::to_string)
            .collect();
        if !errors.iter().any(|e| e.starts_with(expected)) {
            failures.push(format!(
                "{name}:\n  expected: {expected}\n  got:      {errors:#?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn one_bad_document_does_not_hide_the_others() {
    let text = format!(
        "{TP}  policy:\n    retries: {{attempts: x}}\n---\n{TP}  policy:\n    requestTimeout: 5s\n---\n{AP}  allowedPorts: [0]\n---\nkind: [\n---\n{TP}  policy:\n    requestTimeout: 1s\n"
    );
    let loaded = load_str(&text, "multi.yaml");
    let errors: Vec<String> = loaded.errors().map(ToString::to_string).collect();
    // document 1 (type error), 3 (range), 4 (syntax) and the duplicate name in 5
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(
        errors[0].starts_with("multi.yaml:8:25: spec.policy.retries.attempts"),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("multi.yaml:25:18: spec.allowedPorts[0]")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("multi.yaml:27:") && e.contains("invalid YAML")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("duplicate TrafficPolicy bookinfo/t")),
        "{errors:#?}"
    );
    // the good ones load
    assert_eq!(
        loaded.policies.len(),
        2,
        "{:?}",
        loaded.policies.iter().map(|p| p.id()).collect::<Vec<_>>()
    );
}

#[test]
fn every_problem_in_one_document_is_reported() {
    let text = tp_all();
    let loaded = load_str(&text, "p.yaml");
    let errors: Vec<String> = loaded.errors().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 3, "{errors:#?}");
}

fn tp_all() -> String {
    format!(
        "{TP}  httpRequestMatchers:\n  - method: FETCH\n  policy:\n    requestTimeout: 0s\n    faultInjection:\n      fixedDelay: 1s\n      percentage: 101\n"
    )
}

#[test]
fn gloo_mesh_yaml_loads_unchanged() {
    // A TrafficPolicy as Gloo Mesh 1.x documentation writes it (status included, as read back
    // from a cluster).
    let text = r#"
apiVersion: networking.mesh.gloo.solo.io/v1
kind: TrafficPolicy
metadata:
  name: mgmt-reviews-outlier
  namespace: gloo-mesh
  creationTimestamp: "2021-03-01T10:00:00Z"
  generation: 2
  resourceVersion: "1234"
  uid: 0b7c1a0e-0000-0000-0000-000000000000
spec:
  sourceSelector:
  - kubeWorkloadMatcher:
      namespaces:
      - bookinfo
  destinationSelector:
  - kubeServiceRefs:
      services:
      - clusterName: mgmt-cluster
        name: reviews
        namespace: bookinfo
  httpRequestMatchers:
  - uri:
      prefix: /reviews
    headers:
    - name: end-user
      value: jason
  policy:
    outlierDetection:
      consecutiveErrors: 1
      interval: 1s
      baseEjectionTime: 3m
      maxEjectionPercent: 100
    mtls:
      istio:
        tlsMode: ISTIO_MUTUAL
status:
  observedGeneration: 2
  state: ACCEPTED
"#;
    let loaded = load_str(text, "gloo.yaml");
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    assert_eq!(loaded.policies.len(), 1);
    let p = &loaded.policies[0];
    assert_eq!(
        p.id().to_string(),
        "TrafficPolicy gloo-mesh/mgmt-reviews-outlier"
    );
    assert_eq!(
        p.meta.creation_timestamp.as_deref(),
        Some("2021-03-01T10:00:00Z")
    );
}

/// Found by the fuzzer: a lone CR is a YAML line break, so positions count it as one (the
/// console's editor shows it as one too).
#[test]
fn a_lone_carriage_return_counts_as_a_line_break() {
    let text = "apiVersion: networking.mesh.gloo.solo.io/v1\rkind: TrafficPolicy\r\rmetadata: {name: x}\rspec:\r  polcy: {}\n";
    let l = meshdeck::policy::load_str(text, "cr.yaml");
    let d = l
        .diagnostics
        .iter()
        .find(|d| d.path == "spec.polcy")
        .unwrap_or_else(|| panic!("{:?}", l.diagnostics));
    let p = d.pos.expect("positioned");
    assert_eq!((p.line, p.col), (6, 3), "{d}");
    let shown = text.replace("\r\n", "\n").replace('\r', "\n");
    assert_eq!(shown.lines().nth(5), Some("  polcy: {}"));
}

/// Every type and unknown-field error of a document at once, in file order, each with its
/// position (it used to be the first one only): the README's example file, exactly.
#[test]
fn every_error_of_a_document_is_reported_at_once() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/broken/bad.yaml");
    let text = std::fs::read_to_string(&path).expect("example");
    let loaded = meshdeck::policy::load_str(&text, "examples/broken/bad.yaml");
    let got: Vec<String> = loaded.diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "examples/broken/bad.yaml:9:25: spec.policy.retries.attempts: expected integer, found \"three\"",
            "examples/broken/bad.yaml:10:5: spec.policy.retires: unknown field \"retires\" (did you mean \"retries\"?)",
            "examples/broken/bad.yaml:11:21: spec.policy.requestTimeout: expected string, found number 5",
            "examples/broken/bad.yaml:14:7: kind: unknown kind \"TraficPolicy\" (did you mean \"TrafficPolicy\"?); meshdeck reads TrafficPolicy, AccessPolicy, VirtualMesh, VirtualDestination, Role, RoleBinding",
        ]
    );
    assert_eq!(loaded.invalid_documents, 2);
}

/// Selectors that name what the fleet does not have: a service ref is an error (Gloo's
/// `Destination <name>.<ns>.<cluster> not found`), a cluster or namespace in a matcher a
/// warning; each at its line and column with the nearest real name. `check` exits 2 for the
/// error; `check --strict` fails on warnings alone.
#[test]
fn selector_typos_are_positioned_with_a_did_you_mean() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/broken/typo.yaml");
    let text = std::fs::read_to_string(&path).expect("example");
    let loaded = meshdeck::policy::load_str(&text, "typo.yaml");
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fleet");
    let snap = meshdeck::inventory::load(&dir).expect("fleet");
    let out = meshdeck::translate::translate(&loaded.policies, &snap);
    let st = &out.statuses[0];
    assert_eq!(st.state, meshdeck::translate::State::Invalid);
    assert_eq!(
        st.errors,
        [
            "typo.yaml:11:16: spec.destinationSelector[0].kubeServiceRefs.services[0].name: Destination detials.bookinfo.east not found (did you mean \"details\"?)"
        ]
    );
    for w in [
        "typo.yaml:7:61: spec.sourceSelector[0].kubeWorkloadMatcher.clusters[0]: cluster \"eats\" is not in the fleet (did you mean \"east\"?)",
        "typo.yaml:7:40: spec.sourceSelector[0].kubeWorkloadMatcher.namespaces[0]: namespace \"bookinf\" is in no cluster (did you mean \"bookinfo\"?)",
    ] {
        assert!(
            st.warnings.iter().any(|x| x == w),
            "{w}\n{:#?}",
            st.warnings
        );
    }
    // a warning alone: exit 0, or 3 with --strict
    let warn_only = text
        .replace("detials", "details")
        .replace("name: typo", "name: typo2");
    let home = tempfile::tempdir().expect("home");
    let f = home.path().join("w.yaml");
    std::fs::write(&f, warn_only).expect("write");
    let run = |strict: bool| {
        let mut c = crate::common::meshdeck_in(home.path());
        c.args(["check", "-f", f.to_str().expect("path"), "--inventory"])
            .arg(&dir);
        if strict {
            c.arg("--strict");
        }
        c.output().expect("runs").status.code()
    };
    assert_eq!(run(false), Some(0));
    assert_eq!(run(true), Some(3));
}
