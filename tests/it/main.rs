//! The integration tests: one test binary (issue "The house": 15 binaries each linking
//! everything took most of CI's time). Each module is one area; `common` has the shared
//! helpers (an in-process simulated fleet, clients for its contexts).

mod analyze;
mod apply;
mod author;
mod cli;
mod common;
mod console_e2e;
mod fleet;
mod gloo;
mod health;
mod hostile;
mod house;
mod identity;
mod istio_schema;
mod kubectl;
mod model_props;
mod one_door;
mod policy_errors;
mod readme;
mod signals;
mod sim_api;
mod translate;
mod translate_cli;
mod translate_props;
mod ui;
mod ui_author;
mod verdicts;
