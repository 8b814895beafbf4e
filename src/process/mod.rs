//! The processor chain (`dataProcessingOptions`) (STUB: replaced by the processors work).

use crate::config::FlowConfig;
use crate::event::RecordId;

/// What the chain did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `out` holds the record to send.
    Emit,
    /// The record is dropped (LOGTOJSON non-matching line under `onParseError: drop`).
    Dropped,
    /// A processor failed: `out` holds the original line, to be sent and counted.
    Failed,
}

/// The processors of one flow, compiled once.
#[derive(Debug)]
pub struct Chain {}

impl Chain {
    /// Builds the chain of `flow`.
    pub fn new(flow: &FlowConfig) -> Self {
        let _ = flow;
        Chain {}
    }

    /// True when the chain does nothing (records are sent as framed).
    pub fn is_empty(&self) -> bool {
        true
    }

    /// Runs the chain over `record` into `out` (cleared first).
    pub fn process(&mut self, record: &[u8], id: RecordId, out: &mut Vec<u8>) -> Outcome {
        let _ = id;
        out.clear();
        out.extend_from_slice(record);
        Outcome::Emit
    }
}

/// `kinesis-tail process` (STUB).
pub fn run_process(
    flow: &FlowConfig,
    input: impl std::io::Read,
    output: impl std::io::Write,
    stats: &crate::metrics::FlowStats,
) -> std::io::Result<()> {
    let _ = (flow, input, output, stats);
    unimplemented!()
}
