//! Aggregation of user records into larger records, and the Kinesis shard map that
//! decides which user records may share an aggregate. Pure data structures: no I/O.
//!
//! - [`kpl`]: the KPL aggregated record format (encoder with exact incremental sizing,
//!   and a checking decoder).
//! - [`shards`]: hash-key ranges of a stream's open shards, and keys that land in them.
//!
//! Batching by count / bytes / age is the pipeline's job; Firehose concatenation lives in
//! its sink.

pub mod kpl;
pub mod shards;
