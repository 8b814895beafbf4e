//! Operating the agent: the command line (exit codes, `check`, `process`, readiness),
//! metrics (CloudWatch, `/metrics`, `/health`, progress logs), and bad input and secrets.
//!
//! One test binary per capability: each links the whole crate, so fewer binaries build
//! faster. The shared helpers are in `tests/support/`.

#[path = "../support/mod.rs"]
mod support;

mod bad_input;
mod cli;
mod metrics;
