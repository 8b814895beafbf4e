//! Finding and reading files: discovery (glob rescans plus inotify events), file identity
//! (fingerprints), the checkpoint file on disk.
//!
//! The tailer knows nothing about Kinesis: it turns files into bytes at offsets. The loop
//! that drives it lives in [`crate::pipeline`].

pub mod checkpoint;
pub mod discovery;
pub mod file;
pub mod identity;
