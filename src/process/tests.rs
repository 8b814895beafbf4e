//! Unit tests of the chain; the golden tests of each format are in `tests/configuration/processors.rs`.

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
    // Records are sent with their newline (every chain here ends with a processor that
    // adds it); checked and removed.
    if o != Outcome::Dropped {
        assert_eq!(out.pop(), Some(b'\n'), "the record ends with its newline");
    }
    (o, String::from_utf8(out).unwrap())
}

#[test]
fn empty_chain_passes_bytes_through() {
    let flow = test_flow();
    let mut c = Chain::new(&flow);
    assert!(c.is_empty());
    let mut out = vec![1, 2, 3];
    assert_eq!(c.process(b"\xffraw", id(), &mut out), Outcome::Emit);
    assert_eq!(out, b"\xffraw\n");
}

#[test]
fn text_results_get_no_record_id_and_objects_do() {
    let mut flow = test_flow();
    flow.record_id_field = Some("recordId".into());
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
        lenient: false,
        json_format: None,
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
            delimiter: ",".into(),
            quoted: false,
            json_format: None,
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
            nest_objects: false,
            json_format: None,
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

mod direct {
    //! A chain of one LOGTOJSON writes its JSON as it parses (`Chain::direct`); the same
    //! chain through the object must give the same bytes and outcome.
    use super::*;
    use proptest::prelude::*;

    fn log_flow(format: LogFormat, pattern: Option<&str>, names: Option<&[&str]>) -> FlowConfig {
        let mut flow = test_flow();
        flow.record_id_field = Some("recordId".into());
        flow.processors = vec![ProcessorConfig::LogToJson {
            format,
            match_pattern: pattern.map(|p| regex::Regex::new(p).unwrap()),
            custom_field_names: names.map(|n| n.iter().map(|s| s.to_string()).collect()),
            // The inputs below include lines only this crate's patterns take.
            lenient: true,
            json_format: None,
        }];
        flow
    }

    fn both(flow: &FlowConfig, line: &[u8]) -> Result<(), TestCaseError> {
        let mut fast = Chain::with_ec2(flow, None);
        let mut slow = Chain::with_ec2(flow, None).without_direct();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let oa = fast.process(line, id(), &mut a);
        let ob = slow.process(line, id(), &mut b);
        prop_assert_eq!(oa, ob);
        prop_assert_eq!(
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b),
            "line {:?}",
            String::from_utf8_lossy(line)
        );
        Ok(())
    }

    #[test]
    fn direct_only_where_nothing_changes_the_object() {
        let apache = log_flow(LogFormat::CombinedApacheLog, None, None);
        assert!(Chain::new(&apache).direct);
        let mut pretty = apache.clone();
        // The flow's format is the default of processors that set none.
        pretty.json_format = JsonFormat::PrettyPrint;
        assert!(!Chain::new(&pretty).direct);
        let json = log_flow(LogFormat::Json, None, None);
        assert!(!Chain::new(&json).direct);
        // A field named like the record ID is replaced in place: through the object.
        let clash = log_flow(
            LogFormat::CommonApacheLog,
            None,
            Some(&["recordId", "a", "b", "c", "d", "e", "f"]),
        );
        assert!(!Chain::new(&clash).direct);
        let mut two = apache.clone();
        two.processors.push(ProcessorConfig::AddMetadata {
            metadata: serde_json::json!({"a": 1}),
            timestamp: false,
            nest_objects: false,
            json_format: None,
        });
        assert!(!Chain::new(&two).direct);
    }

    #[test]
    fn an_apache_line_gives_the_same_json_both_ways() {
        let flow = log_flow(LogFormat::CombinedApacheLog, None, None);
        let line = b"::1 - bob [27/Nov/2026:10:00:00 +0000] \"GET /a\\b \x01 HTTP/1.1\" 200 - \"-\" \"caf\xc3\xa9\"";
        both(&flow, line).unwrap();
        let mut out = Vec::new();
        Chain::new(&flow).process(line, id(), &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["host"], "::1");
        assert_eq!(v["bytes"], serde_json::Value::Null);
        assert_eq!(v["agent"], "café");
        assert_eq!(v["recordId"], id().to_string());
    }

    #[test]
    fn drop_on_parse_error_writes_nothing() {
        let mut flow = log_flow(LogFormat::CombinedApacheLog, None, None);
        flow.on_parse_error = OnParseError::Drop;
        let mut c = Chain::new(&flow);
        assert!(c.direct);
        let mut out = Vec::new();
        assert_eq!(c.process(b"not apache", id(), &mut out), Outcome::Dropped);
        assert!(out.is_empty());
    }

    /// Apache-like lines with quotes, backslashes, control and non-ASCII characters in
    /// their fields, and some that are not Apache at all.
    fn line() -> impl Strategy<Value = Vec<u8>> {
        let field = "[a-zA-Z0-9 \"\\\\\t\u{1}é€-]{0,12}";
        prop_oneof![
            (field, field, field, field).prop_map(|(r, u, a, x)| format!(
                "1.2.3.4 - - [27/Nov/2026:10:00:00 +0000] \"{r}\" 200 12 \"{u}\" \"{a}\"{x}"
            )
            .into_bytes()),
            (field, "[0-9-]{1,4}")
                .prop_map(|(r, n)| format!("::1 {r} bob [x] \"GET {r}\" {n} -").into_bytes()),
            proptest::collection::vec(any::<u8>(), 0..80),
        ]
    }

    proptest! {
        #![proptest_config(crate::test_util::proptest_cases(500))]
        #[test]
        fn same_json_as_through_the_object(line in line()) {
            for format in [LogFormat::CombinedApacheLog, LogFormat::CommonApacheLog, LogFormat::Syslog] {
                both(&log_flow(format, None, None), &line)?;
            }
            both(&log_flow(LogFormat::CommonApacheLog, Some("(\\S+) (.*)"), None), &line)?;
            let mut no_id = log_flow(LogFormat::CombinedApacheLog, None, None);
            no_id.record_id_field = None;
            both(&no_id, &line)?;
        }
    }
}
