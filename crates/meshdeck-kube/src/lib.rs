//! meshdeck's I/O edges towards clusters and the disk. The core's modules are re-exported so
//! this crate's users see one namespace (`meshdeck_kube::model`, ...); [`pipeline`] and
//! [`rbac`] extend the core's modules of the same name with their I/O halves.
//!
//! - [`session`]: targets, read-only, identity, the only place clients and write tokens are made
//! - [`credentials`]: credential plugins, run off the runtime's threads, without a terminal
//! - [`fleet`]: kubeconfig contexts, watchers, reachability, the snapshot aggregator, fetches
//! - [`apply`]: the one writer (dry-run, server-side apply, prune, audit)
//! - [`pace`]: how fast one cluster is asked (a ceiling, the server's Retry-After)
//! - [`signals`]: golden signals from Prometheus or the sidecars, refreshed off the UI thread
//! - [`pipeline`], [`rbac`]: access reviews, execution
//! - [`files`], [`inventory`]: policy files and directories, an offline fleet, private state files

pub use meshdeck_core::{
    analyze, istio, kinds, model, object, plan, selector, text, translate, yaml,
};

pub mod apply;
pub mod credentials;
pub mod files;
pub mod fleet;
pub mod inventory;
pub mod pace;
pub mod pipeline;
pub mod rbac;
pub mod session;
pub mod signals;

/// The policy API (the core's) and loading it from files.
pub mod policy {
    pub use crate::files::{load_all, load_paths};
    pub use meshdeck_core::policy::*;
}
