//! The simulated fleet (the `meshdeck-sim` crate), and fixtures that turn its scenarios into
//! model snapshots for tests and benchmarks without a server.

pub use meshdeck_sim::*;

pub mod fixture;
