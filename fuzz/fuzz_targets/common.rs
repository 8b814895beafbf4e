//! What the fuzz targets share (included by each with `#[path]`; not a target itself).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use kinesis_tail::config::{Destination, FlowConfig, OutputTarget};
use kinesis_tail::event::RecordId;
use kinesis_tail::process::{Chain, Outcome};

/// The flow every input starts from, built once: building it compiles a glob, which
/// would cost more than the run itself.
pub fn base_flow() -> &'static FlowConfig {
    static FLOW: OnceLock<FlowConfig> = OnceLock::new();
    FLOW.get_or_init(|| {
        FlowConfig::with_defaults(
            "/fuzz/*.log",
            Destination::OutputFile(OutputTarget::Path(PathBuf::from("/dev/null"))),
        )
    })
}

/// Runs the records of `input` (split on `\n`) through one chain of `flow`: an emitted
/// record must be a JSON object, and after the other records the chain must answer the
/// last one exactly as a fresh chain would (no state carried between records).
pub fn check_json_chain(flow: &FlowConfig, input: &[u8]) {
    let mut chain = Chain::new(flow);
    let mut out = Vec::new();
    let mut last = (Outcome::Dropped, &b""[..], RecordId { file: 7, offset: 0 });
    for (i, record) in input.split(|b| *b == b'\n').enumerate() {
        let id = RecordId {
            file: 7,
            offset: i as u64,
        };
        let outcome = chain.process(record, id, &mut out);
        if outcome == Outcome::Emit {
            let v: serde_json::Value = serde_json::from_slice(&out)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&out)));
            assert!(v.is_object());
        }
        last = (outcome, record, id);
    }
    // Only the last record is checked against a fresh chain: building a chain compiles
    // its patterns, which would dominate the run.
    let (outcome, record, id) = last;
    let mut fresh_out = Vec::new();
    let fresh = Chain::new(flow).process(record, id, &mut fresh_out);
    assert_eq!((outcome, &out), (fresh, &fresh_out), "state carried over");
}
