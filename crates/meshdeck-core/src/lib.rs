//! meshdeck's pure core: values in, values out. No async runtime, no Kubernetes client, no
//! filesystem, no clock read behind the caller's back (CI checks the manifest and the sources:
//! `tests/it/house.rs`).
//!
//! - [`analyze`]: configuration analysis (istioctl-analyze findings, per cluster)
//! - [`model`]: the fleet snapshot (clusters, meshes, services, workloads, pods) and health rules
//! - [`policy`]: the policy API, loaded from text with exact positions, validated
//! - [`translate`]: policies + snapshot → Istio objects per cluster, conflicts, statuses
//! - [`istio`]: validation of generated objects against Istio's CRD schemas (+ CEL)
//! - [`object`]: `ObjectRef`, the one identity of an object in the fleet
//! - [`plan`]: generated vs live → create / update / delete with diffs
//! - [`pipeline`]: the pure half of the one pipeline (plan, holds, role check, exit codes)
//! - [`rbac`]: meshdeck Role and RoleBinding scope checks
//! - [`signals`]: golden signals (PromQL, Prometheus answers, sidecar scrapes) and traffic health
//! - [`kinds`], [`selector`], [`yaml`]: the kinds meshdeck handles, label/field selectors, YAML

pub mod analyze;
pub mod istio;
pub mod kinds;
pub mod model;
pub mod object;
pub mod pipeline;
pub mod plan;
pub mod policy;
pub mod rbac;
pub mod selector;
pub mod signals;
pub mod text;
pub mod translate;
pub mod yaml;

/// `1 change`, `2 changes`: a count with its noun.
pub fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}
