//! Finding and reading files: discovery (glob rescans), inotify events ([`watch`]), file
//! identity and the rules that decide it ([`identity`]), one file's reads ([`file`](mod@file)), the
//! loop over a flow's files that uses them all ([`reader`]), and its part that tells which
//! file is which ([`recognize`]: identity, recovery at start, copies). The checkpoint file
//! on disk is [`crate::checkpoint`]'s.
//!
//! The tailer knows nothing about Kinesis: it turns files into records at offsets for the
//! batcher. The thread that drives it lives in [`crate::pipeline`].

pub mod discovery;
pub mod file;
pub mod identity;
pub mod reader;
pub mod recognize;
pub mod watch;
