//! meshdeck: a terminal console for operating Istio service meshes across many Kubernetes
//! clusters. See DESIGN.md for the architecture; this crate is both the library and the
//! `meshdeck` binary.

pub mod apply;
pub mod author;
pub mod cli;
pub mod config;
pub mod fleet;
pub mod inventory;
pub mod istio;
pub mod logging;
pub mod model;
pub mod pipeline;
pub mod plan;
pub mod policy;
pub mod rbac;
pub mod run;
pub mod selector;
pub mod session;
pub mod sim;
pub mod status;
pub mod translate;
pub mod ui;
pub mod yaml;
