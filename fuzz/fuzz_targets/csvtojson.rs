//! CSVTOJSON on any bytes. The first byte chooses the delimiter (low 3 bits: `,`, tab,
//! `|`, `;`, space, `'`, `a`, NUL; the config accepts them all) and the number of
//! `customFieldNames` (high 5 bits + 1: 1 to 32). The rest is split on `\n` into
//! records, all run through one chain (its `csv` reader is reused from record to record).
//! Checks: no panic; an emitted record is a JSON object (serde_json reads it back); after
//! the other records, the chain answers the last one exactly as a fresh chain would.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use kinesis_tail::config::{Destination, FlowConfig, OutputTarget, ProcessorConfig};
use kinesis_tail::event::RecordId;
use kinesis_tail::process::{Chain, Outcome};
use libfuzzer_sys::fuzz_target;

const DELIMITERS: [u8; 8] = [b',', b'\t', b'|', b';', b' ', b'\'', b'a', 0];

/// The flow every input starts from, built once: building it compiles a glob, which
/// would cost more than the run itself.
fn base_flow() -> &'static FlowConfig {
    static FLOW: OnceLock<FlowConfig> = OnceLock::new();
    FLOW.get_or_init(|| {
        FlowConfig::with_defaults(
            "/fuzz/*.log",
            Destination::OutputFile(OutputTarget::Path(PathBuf::from("/dev/null"))),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let [selector, input @ ..] = data else {
        return;
    };
    let delimiter = DELIMITERS[usize::from(selector & 7)];
    let fields = usize::from(selector >> 3) + 1;
    let mut flow = base_flow().clone();
    flow.processors = vec![ProcessorConfig::CsvToJson {
        field_names: (0..fields).map(|i| format!("c{i}")).collect(),
        delimiter,
    }];
    let mut chain = Chain::new(&flow);
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
    // The last record, after all the others, comes out as from a fresh chain. (Only the
    // last: building a chain compiles its patterns, which would dominate the run.)
    let (outcome, record, id) = last;
    let mut fresh_out = Vec::new();
    let fresh = Chain::new(&flow).process(record, id, &mut fresh_out);
    assert_eq!((outcome, &out), (fresh, &fresh_out), "state carried over");
});
