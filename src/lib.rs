//! kinesis-tail: tails log files and ships their lines to Amazon Kinesis Data Streams and
//! Amazon Data Firehose, losing nothing; a drop-in replacement for the Amazon Kinesis
//! Agent (Java).
//!
//! # Layout
//!
//! - [`cli`]: the `process` and `check` subcommands (argument parsing is `main.rs`'s).
//! - [`config`]: raw file → validated [`config::Config`] (YAML, Java `agent.json`).
//! - [`daemon`]: wiring only: one pipeline per flow, bounded channels, ordered shutdown.
//! - [`event`]: the types passed between stages (file identity, record IDs, batches).
//! - [`tail`]: discovery, inotify events, file identity and its rules, the file loop.
//! - [`checkpoint`]: the checkpoint file on disk (versioned JSON, atomic writes).
//! - [`framing`]: bytes → records (lines, multi-line, headers, footers, truncation).
//! - [`java`]: what Java does otherwise than Rust where the Java agent's bytes depend on it
//!   (its regular expressions, its decoding of invalid UTF-8).
//! - [`json`]: JSON text as Jackson writes it, and timestamps; shared by the processors,
//!   the sinks, the metrics and `ec2`.
//! - [`process`]: the processor chain (`dataProcessingOptions`) and the record as sent.
//! - [`ec2`]: EC2 instance metadata for `ADDEC2METADATA`, refreshed in the background.
//! - [`partition`]: partition keys.
//! - [`pipeline`]: one flow's reader thread: the file loop (rotation, copies, recovery at
//!   start) feeding framing and the batcher.
//! - [`aggregate`]: the batcher (records → batches → the delivery queue), KPL aggregated
//!   records and the shard map.
//! - [`sink`]: destinations (Kinesis, Firehose, local file) and their retries.
//! - [`ack`]: the only place that moves a checkpoint forward.
//! - [`metrics`]: counters per flow; CloudWatch, Prometheus `/metrics` and `/health`.
//! - [`notify`]: systemd readiness (`sd_notify`).
//! - [`report`]: rate-limited reports, shared by every stage that logs a repeating problem.
//! - [`aws`]: SDK clients from the configuration.
//! - [`md5many`]: MD5 of many short inputs side by side (SIMD lanes).
//! - `test_util` (tests only): helpers shared by the unit tests.

pub mod ack;
pub mod aggregate;
pub mod aws;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod ec2;
pub mod event;
pub mod framing;
pub mod java;
pub mod json;
pub mod md5many;
pub mod metrics;
pub mod notify;
pub mod partition;
pub mod pipeline;
pub mod process;
pub mod report;
pub mod sink;
pub mod tail;
#[cfg(test)]
pub(crate) mod test_util;
