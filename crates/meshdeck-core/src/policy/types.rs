//! The policy API types: field-compatible with Gloo Mesh's open v1 API (YAML camelCase names).
//! Unknown fields are errors (`deny_unknown_fields`) so a typo never silently drops a setting.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const NETWORKING_GROUP: &str = "networking.mesh.gloo.solo.io";
pub const RBAC_GROUP: &str = "rbac.enterprise.mesh.gloo.solo.io";
/// VirtualDestination's real group (Gloo Mesh Enterprise 1.x).
pub const ENTERPRISE_NETWORKING_GROUP: &str = "networking.enterprise.mesh.gloo.solo.io";

pub type Labels = BTreeMap<String, String>;

/// The object metadata meshdeck reads. Other metadata fields a cluster adds are accepted and
/// ignored (they are Kubernetes', not the policy's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub creation_timestamp: Option<String>,
    #[serde(default)]
    pub generation: Option<i64>,
    #[serde(default)]
    pub labels: Labels,
    #[serde(default)]
    pub annotations: Labels,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectRef {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterObjectRef {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub cluster_name: String,
}

// ---------------------------------------------------------------------------------------------
// Selectors

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeMatcher {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
}

/// Sources of traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_workload_matcher: Option<KubeMatcher>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeIdentityMatcher {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceAccountRefs {
    #[serde(default)]
    pub service_accounts: Vec<ClusterObjectRef>,
}

/// Sources for access (identities).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentitySelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_identity_matcher: Option<KubeIdentityMatcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_service_account_refs: Option<ServiceAccountRefs>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceRefs {
    #[serde(default)]
    pub services: Vec<ClusterObjectRef>,
}

/// Targets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_service_matcher: Option<KubeMatcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_service_refs: Option<ServiceRefs>,
}

// ---------------------------------------------------------------------------------------------
// Matchers

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StringMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_case: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderMatcher {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub regex: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invert_match: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueryParameterMatcher {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub regex: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpMatcher {
    /// Gloo Mesh 1.1: a name for the matcher (shown, not routed on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Gloo Mesh 1.1 spelling of the path match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<StringMatch>,
    /// Gloo Mesh 1.0 spelling: the path match directly on the matcher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatcher>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_parameters: Vec<QueryParameterMatcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

impl HttpMatcher {
    /// The path match, whichever spelling set it (1.1's `uri`, or 1.0's `prefix`/`exact`/
    /// `regex` on the matcher; the validator refuses both at once).
    pub fn path(&self) -> Option<StringMatch> {
        if let Some(u) = &self.uri {
            return Some(u.clone());
        }
        if self.prefix.is_none() && self.exact.is_none() && self.regex.is_none() {
            return None;
        }
        Some(StringMatch {
            exact: self.exact.clone(),
            prefix: self.prefix.clone(),
            regex: self.regex.clone(),
            ignore_case: false,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// TrafficPolicy

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeServiceTarget {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub cluster_name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subset: Labels,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WeightedDestination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_service: Option<KubeServiceTarget>,
    #[serde(default)]
    pub weight: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficShift {
    #[serde(default)]
    pub destinations: Vec<WeightedDestination>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Abort {
    #[serde(default)]
    pub http_status: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultInjection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_delay: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<Abort>,
    #[serde(default)]
    pub percentage: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retries {
    #[serde(default)]
    pub attempts: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorsPolicy {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_origins: Vec<StringMatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mirror {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_service: Option<ClusterObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderManipulation {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub append_request_headers: Labels,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_request_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub append_response_headers: Labels,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_response_headers: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutlierDetection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_errors: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ejection_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ejection_percent: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TlsMode {
    Disable,
    Simple,
    IstioMutual,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Disable => "DISABLE",
            TlsMode::Simple => "SIMPLE",
            TlsMode::IstioMutual => "ISTIO_MUTUAL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IstioTls {
    pub tls_mode: TlsMode,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mtls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub istio: Option<IstioTls>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficPolicyBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_shift: Option<TrafficShift>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_injection: Option<FaultInjection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<Retries>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors_policy: Option<CorsPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<Mirror>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_manipulation: Option<HeaderManipulation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<Mtls>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficPolicySpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_selector: Vec<WorkloadSelector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destination_selector: Vec<DestinationSelector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_request_matchers: Vec<HttpMatcher>,
    #[serde(default)]
    pub policy: TrafficPolicyBody,
}

// ---------------------------------------------------------------------------------------------
// AccessPolicy

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessPolicySpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_selector: Vec<IdentitySelector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destination_selector: Vec<DestinationSelector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_ports: Vec<u32>,
}

// ---------------------------------------------------------------------------------------------
// VirtualMesh

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GeneratedCa {}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RootCa {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated: Option<GeneratedCa>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ObjectRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SharedTrust {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_certificate_authority: Option<RootCa>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MtlsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<SharedTrust>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_restart_pods: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FederationSelector {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destination_selectors: Vec<DestinationSelector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub meshes: Vec<ObjectRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Federation {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selectors: Vec<FederationSelector>,
    /// Gloo Mesh 1.0: `permissive: {}` federates every destination of the member meshes (what
    /// no `selectors` means too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissive: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flat_network: bool,
    /// Gloo's `hostnameSuffix` (`hostSuffix` was meshdeck's earlier spelling, still read).
    #[serde(
        default,
        rename = "hostnameSuffix",
        alias = "hostSuffix",
        skip_serializing_if = "Option::is_none"
    )]
    pub host_suffix: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GlobalAccess {
    /// Gloo's default: leave access to the mesh's own settings (emits nothing).
    #[default]
    MeshDefault,
    Disabled,
    Enabled,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualMeshSpec {
    #[serde(default)]
    pub meshes: Vec<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls_config: Option<MtlsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation: Option<Federation>,
    #[serde(default)]
    pub global_access_policy: GlobalAccess,
}

// ---------------------------------------------------------------------------------------------
// VirtualDestination

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VdPort {
    #[serde(default)]
    pub number: u32,
    #[serde(default)]
    pub protocol: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VdDestination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_service: Option<ClusterObjectRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VdStatic {
    #[serde(default)]
    pub destinations: Vec<VdDestination>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VdMeshList {
    #[serde(default)]
    pub meshes: Vec<ObjectRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Locality {
    #[serde(default)]
    pub region: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub zone: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub_zone: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailoverDirective {
    #[serde(default)]
    pub from: Locality,
    #[serde(default)]
    pub to: Vec<Locality>,
}

/// Outlier detection as the policies spell it (TrafficPolicy's, VirtualDestination's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutlierSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_errors: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ejection_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ejection_percent: Option<u32>,
}

/// Nearest locality first, with explicit region failover.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VdLocalized {
    #[serde(default)]
    pub destination_selectors: Vec<DestinationSelector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover_directives: Vec<FailoverDirective>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierSpec>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualDestinationSpec {
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub port: VdPort,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_mesh: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh_list: Option<VdMeshList>,
    #[serde(default, rename = "static", skip_serializing_if = "Option::is_none")]
    pub static_: Option<VdStatic>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localized: Option<VdLocalized>,
}

// ---------------------------------------------------------------------------------------------
// Role and RoleBinding

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TrafficPolicyAction {
    All,
    TrafficShift,
    FaultInjection,
    RequestTimeout,
    Retries,
    CorsPolicy,
    Mirror,
    HeaderManipulation,
    OutlierDetection,
    MtlsConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VirtualMeshAction {
    All,
    MtlsConfig,
    Federation,
    GlobalAccessPolicy,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficPolicyScope {
    #[serde(default)]
    pub traffic_policy_actions: Vec<TrafficPolicyAction>,
    #[serde(default)]
    pub destination_selectors: Vec<DestinationSelector>,
    #[serde(default)]
    pub workload_selectors: Vec<WorkloadSelector>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessPolicyScope {
    #[serde(default)]
    pub identity_selectors: Vec<IdentitySelector>,
    #[serde(default)]
    pub destination_selectors: Vec<DestinationSelector>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualMeshScope {
    #[serde(default)]
    pub virtual_mesh_actions: Vec<VirtualMeshAction>,
    #[serde(default)]
    pub mesh_refs: Vec<ObjectRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualDestinationScope {
    #[serde(default)]
    pub mesh_refs: Vec<ObjectRef>,
    #[serde(default)]
    pub destination_selectors: Vec<DestinationSelector>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic_policy_scopes: Vec<TrafficPolicyScope>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_policy_scopes: Vec<AccessPolicyScope>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_mesh_scopes: Vec<VirtualMeshScope>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_destination_scopes: Vec<VirtualDestinationScope>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubjectKind {
    User,
    Group,
    ServiceAccount,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subject {
    pub kind: SubjectKind,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Accepted for compatibility with Kubernetes-style subjects; not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleBindingSpec {
    #[serde(default)]
    pub role_ref: ObjectRef,
    #[serde(default)]
    pub subjects: Vec<Subject>,
}
