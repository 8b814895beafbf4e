//! Every LOGTOJSON format on any bytes. The first byte chooses the format (low 3 bits:
//! COMMONAPACHELOG, COMBINEDAPACHELOG, APACHEERRORLOG, SYSLOG, RFC3339SYSLOG,
//! RFC5424SYSLOG, JSON), `customFieldNames` (bits 3-4: none, 3 names, 12 names) and
//! `jsonFormat` (bit 5). The rest is split on `\n` into records, all run through one
//! chain. Checks: no panic; a record that is emitted is a JSON object (serde_json reads
//! it back); after the other records, the chain answers the last one exactly as a fresh
//! chain would.
#![no_main]

#[path = "common.rs"]
mod common;

use kinesis_tail::config::{JsonFormat, LogFormat, ProcessorConfig};
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
    let mut flow = common::base_flow().clone();
    flow.processors = vec![ProcessorConfig::LogToJson {
        format,
        match_pattern: None,
        custom_field_names,
    }];
    if (selector >> 5) & 1 == 1 {
        flow.json_format = JsonFormat::PrettyPrint;
    }
    common::check_json_chain(&flow, input);
});
