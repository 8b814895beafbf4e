//! Grouping records: the batcher that builds a flow's batches ([`batcher`]), aggregation of
//! user records into larger records, and the Kinesis shard map that decides which user
//! records may share an aggregate (pure data structures, no I/O).
//!
//! - [`kpl`]: the KPL aggregated record format (encoder with exact incremental sizing,
//!   and a checking decoder).
//! - [`shards`]: hash-key ranges of a stream's open shards, and keys that land in them.
//!
//! - [`batcher`]: records to batches by count / bytes / age, handed to the delivery queue.
//!
//! Firehose concatenation lives in its sink.

pub mod batcher;
pub mod kpl;
pub mod shards;
