//! Aggregation of user records into larger records (STUB: KPL comes with the Kinesis work).
