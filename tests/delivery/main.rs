//! Delivery to the emulators through the real SDK and the real binary: Kinesis (KPL
//! aggregates, retries of failed entries through the fault proxy, a missing stream),
//! Firehose, and TLS to the endpoints.
//!
//! One test binary per capability: each links the whole crate, so fewer binaries build
//! faster. The shared helpers are in `tests/support/`.

#[path = "../support/mod.rs"]
mod support;

mod agent_kinesis;
mod firehose;
mod kinesis;
mod tls;
