//! Every LOGTOJSON format on any bytes. The first byte chooses the format (low 3 bits:
//! COMMONAPACHELOG, COMBINEDAPACHELOG, APACHEERRORLOG, SYSLOG, RFC3339SYSLOG,
//! RFC5424SYSLOG, JSON), `customFieldNames` (bits 3-4: none, 3 names, 12 names) and
//! `jsonFormat` (bit 5). The rest is split on `\n` into records, all run through one
//! chain. Checks: no panic; a record that is emitted is a JSON object (serde_json reads
//! it back); after the other records, the chain answers the last one exactly as a fresh
//! chain would.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use kinesis_tail::config::{
    Destination, FlowConfig, JsonFormat, LogFormat, OutputTarget, ProcessorConfig,
};
use kinesis_tail::event::RecordId;
use kinesis_tail::process::{Chain, Outcome};
use libfuzzer_sys::fuzz_target;

const FORMATS: [LogFormat; 7] = [
    LogFormat::CommonApacheLog,
    LogFormat::CombinedApacheLog,
    LogFormat::ApacheErrorLog,
    LogFormat::Syslog,
    LogFormat::Rfc3339Syslog,
    LogFormat::Rfc5424Syslog,
    LogFormat::Json,
];

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
    let format = FORMATS[usize::from(selector & 7) % FORMATS.len()];
    let custom_field_names = match (selector >> 3) & 3 {
        1 => Some(vec!["a".to_string(), "b".into(), "c".into()]),
        2 => Some((0..12).map(|i| format!("f{i}")).collect()),
        _ => None,
    };
    let mut flow = base_flow().clone();
    flow.processors = vec![ProcessorConfig::LogToJson {
        format,
        match_pattern: None,
        custom_field_names,
    }];
    if (selector >> 5) & 1 == 1 {
        flow.json_format = JsonFormat::PrettyPrint;
    }
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
