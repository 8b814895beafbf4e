//! CSVTOJSON on any bytes. The first byte chooses the delimiter (low 3 bits: `,`, tab,
//! `|`, `;`, space, `'`, `a`, NUL; the config accepts them all) and the number of
//! `customFieldNames` (high 5 bits + 1: 1 to 32). The rest is split on `\n` into
//! records, all run through one chain (its `csv` reader is reused from record to record).
//! Checks: no panic; an emitted record is a JSON object (serde_json reads it back); after
//! the other records, the chain answers the last one exactly as a fresh chain would.
#![no_main]

#[path = "common.rs"]
mod common;

use kinesis_tail::config::ProcessorConfig;
use libfuzzer_sys::fuzz_target;

const DELIMITERS: [u8; 8] = [b',', b'\t', b'|', b';', b' ', b'\'', b'a', 0];

fuzz_target!(|data: &[u8]| {
    let [selector, input @ ..] = data else {
        return;
    };
    let delimiter = DELIMITERS[usize::from(selector & 7)];
    let fields = usize::from(selector >> 3) + 1;
    let mut flow = common::base_flow().clone();
    flow.processors = vec![ProcessorConfig::CsvToJson {
        field_names: (0..fields).map(|i| format!("c{i}")).collect(),
        delimiter,
    }];
    common::check_json_chain(&flow, input);
});
