//! Unit tests of the chain; the golden tests of each format are in `tests/processors.rs`.

use super::*;
use crate::config::LogFormat;
use crate::event::FileKey;
use crate::framing::tests_support::test_flow;

fn id() -> RecordId {
    RecordId::new(
        &FileKey {
            dev: 1,
            ino: 2,
            fingerprint: 3,
            generation: 0,
        },
        42,
    )
}

fn run(flow: &FlowConfig, line: &str) -> (Outcome, String) {
    let mut c = Chain::with_ec2(flow, None);
    let mut out = Vec::new();
    let o = c.process(line.as_bytes(), id(), &mut out);
    (o, String::from_utf8(out).unwrap())
}

#[test]
fn empty_chain_passes_bytes_through() {
    let flow = test_flow();
    let mut c = Chain::new(&flow);
    assert!(c.is_empty());
    let mut out = vec![1, 2, 3];
    assert_eq!(c.process(b"\xffraw", id(), &mut out), Outcome::Emit);
    assert_eq!(out, b"\xffraw");
}

#[test]
fn text_results_get_no_record_id_and_objects_do() {
    let mut flow = test_flow();
    flow.processors = vec![ProcessorConfig::SingleLine {
        no_trim: false,
        escape_new_line: false,
    }];
    assert_eq!(
        run(&flow, "{\"a\":\n 1}"),
        (Outcome::Emit, "{\"a\":1}".into())
    );
    flow.processors.push(ProcessorConfig::LogToJson {
        format: LogFormat::Json,
        match_pattern: None,
        custom_field_names: None,
    });
    let want = format!("{{\"a\":1,\"recordId\":\"{}\"}}", id());
    assert_eq!(run(&flow, "{\"a\":\n 1}"), (Outcome::Emit, want));
    // An existing field of that name is replaced in place.
    let want = format!("{{\"recordId\":\"{}\",\"b\":2}}", id());
    assert_eq!(
        run(&flow, "{\"recordId\":\"x\",\"b\":2}"),
        (Outcome::Emit, want)
    );
    flow.record_id_field = None;
    assert_eq!(
        run(&flow, "{\"a\":\n 1}"),
        (Outcome::Emit, "{\"a\":1}".into())
    );
}

#[test]
fn chains_text_processors_after_objects() {
    let mut flow = test_flow();
    flow.record_id_field = None;
    flow.processors = vec![
        ProcessorConfig::CsvToJson {
            field_names: vec!["a".into(), "b".into()],
            delimiter: b',',
        },
        ProcessorConfig::SingleLine {
            no_trim: false,
            escape_new_line: false,
        },
        ProcessorConfig::SingleLine {
            no_trim: false,
            escape_new_line: false,
        },
        ProcessorConfig::AddMetadata {
            metadata: serde_json::json!("m"),
            timestamp: false,
        },
    ];
    assert_eq!(
        run(&flow, "1,2"),
        (
            Outcome::Emit,
            r#"{"metadata":"m","data":"{\"a\":\"1\",\"b\":\"2\"}"}"#.into()
        )
    );
}
