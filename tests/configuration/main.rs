//! Configuration and processing, through the public API and `process`: loading (a real
//! Java `agent.json`, the shipped example, errors, merging), the processor chain's golden
//! outputs, and conformance with the Java agent's recorded bytes.
//!
//! One test binary per capability: each links the whole crate, so fewer binaries build
//! faster. The shared helpers are in `tests/support/`.

#[path = "../support/mod.rs"]
mod support;

mod config;
mod conformance;
mod processors;
