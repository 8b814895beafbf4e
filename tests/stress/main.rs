//! Faults in combination, through the real binary: the tailing torture test (rotations
//! and SIGKILLs at 6,000 lines/s), the model-based test of the tailer, and the
//! reliability tests (an outage and throttling while lines are written), and container
//! logs split by the runtime under rotation, kills and a failing sink. These tests load
//! the machine, so they run one at a time ([`support::heavy`]).
//!
//! One test binary per capability: each links the whole crate, so fewer binaries build
//! faster. The shared helpers are in `tests/support/`.

#[path = "../support/mod.rs"]
mod support;

mod containers;
mod model;
mod reliability;
mod torture;
