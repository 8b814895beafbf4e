//! Finding and reading files: discovery (glob rescans), inotify events ([`watch`]), file
//! identity and the rules that decide it ([`identity`]), one file's reads ([`file`](mod@file)), the
//! checkpoint file on disk ([`checkpoint`]).
//!
//! The tailer knows nothing about Kinesis: it turns files into bytes at offsets. The loop
//! that drives it lives in [`crate::pipeline`].

pub mod checkpoint;
pub mod discovery;
pub mod file;
pub mod identity;
pub mod watch;
