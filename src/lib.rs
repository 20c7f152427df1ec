//! meshdeck: a terminal console for operating Istio service meshes across many Kubernetes
//! clusters. The house (docs/architecture.md): the pure core is `meshdeck-core`, the I/O
//! edges `meshdeck-kube`, the simulated fleet `meshdeck-sim`; this root crate holds the CLI,
//! the console and the settings, and re-exports the rest so one path names each module
//! (`meshdeck::model`, `meshdeck::fleet`, ...).

/// The pure half of golden signals (rows, PromQL, tolerances).
pub use meshdeck_core::signals as signals_core;
pub use meshdeck_core::{
    analyze, istio, kinds, model, object, plan, selector, text, translate, yaml,
};
pub use meshdeck_kube::{
    apply, files, fleet, inventory, pace, pipeline, policy, rbac, session, signals,
};

pub mod author;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod logging;
#[cfg(feature = "sim")]
pub mod sim;
pub mod status;
pub mod ui;

/// `eprintln!` for what may carry a server's words: control characters are written as visible
/// escapes (`meshdeck_core::text::escape_lines`), so none reaches the terminal.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        eprintln!("{}", $crate::text::escape_lines(&format!($($arg)*)))
    };
}
