//! The subcommands besides `run`: `process` (standard input through a flow's framing and
//! processors to standard output, exactly as `run` would send it) and `check` (validate
//! and describe the configuration). Argument parsing is the binary's (`main.rs`).
//!
//! Owns: the loops and reports of these subcommands. Does not own: what a record becomes
//! (`process`), the configuration (`config`).

mod process;

pub use process::{run_process, run_process_with};

use std::path::Path;

use crate::config::Loaded;

/// What `check` prints for a configuration that loads: the resolved flows and settings,
/// then a line saying it is valid.
pub fn check_report(loaded: &Loaded, path: &Path) -> String {
    format!(
        "{}configuration OK: {}\n",
        loaded.config.describe(),
        path.display()
    )
}
