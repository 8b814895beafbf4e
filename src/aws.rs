//! AWS SDK clients built from the configuration (STUB: replaced by the Kinesis work).
