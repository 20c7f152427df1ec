//! The Kubernetes kinds meshdeck reads and writes: (group, version, kind, plural).

/// The Istio kinds meshdeck watches (group, version, kind, plural).
pub const ISTIO_KINDS: &[(&str, &str, &str, &str)] = &[
    (
        "networking.istio.io",
        "v1",
        "VirtualService",
        "virtualservices",
    ),
    (
        "networking.istio.io",
        "v1",
        "DestinationRule",
        "destinationrules",
    ),
    ("networking.istio.io", "v1", "Gateway", "gateways"),
    (
        "networking.istio.io",
        "v1",
        "ServiceEntry",
        "serviceentries",
    ),
    ("networking.istio.io", "v1", "Sidecar", "sidecars"),
    (
        "security.istio.io",
        "v1",
        "AuthorizationPolicy",
        "authorizationpolicies",
    ),
    (
        "security.istio.io",
        "v1",
        "PeerAuthentication",
        "peerauthentications",
    ),
];

/// The policy kinds meshdeck watches.
pub const POLICY_KINDS: &[(&str, &str, &str, &str)] = &[
    (
        "networking.mesh.gloo.solo.io",
        "v1",
        "TrafficPolicy",
        "trafficpolicies",
    ),
    (
        "networking.mesh.gloo.solo.io",
        "v1",
        "AccessPolicy",
        "accesspolicies",
    ),
    (
        "networking.mesh.gloo.solo.io",
        "v1",
        "VirtualMesh",
        "virtualmeshes",
    ),
    (
        "networking.mesh.gloo.solo.io",
        "v1",
        "VirtualDestination",
        "virtualdestinations",
    ),
    (
        "networking.enterprise.mesh.gloo.solo.io",
        "v1beta1",
        "VirtualDestination",
        "virtualdestinations",
    ),
    ("rbac.enterprise.mesh.gloo.solo.io", "v1", "Role", "roles"),
    (
        "rbac.enterprise.mesh.gloo.solo.io",
        "v1",
        "RoleBinding",
        "rolebindings",
    ),
];
