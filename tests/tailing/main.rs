//! Tailing through the real binary: discovery, rotations (rename, copytruncate, the
//! kubelet's), restarts, bad files, container logs, and SIGHUP reload.
//!
//! One test binary per capability: each links the whole crate, so fewer binaries build
//! faster. The shared helpers are in `tests/support/`.

#[path = "../support/mod.rs"]
mod support;

mod reload;
mod tail;
