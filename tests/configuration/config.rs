//! Configuration loading through the public API: a real Java `agent.json`, the shipped
//! `config.example.yaml`, error reporting, `conf.d/` and `agent.d/` merging, and inputs
//! that must never make the loader panic.

use crate::support::agent;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kinesis_tail::config::{
    load, load_str, Aggregation, ConfigErrors, Destination, InitialPosition, JsonFormat, Loaded,
    LogFormat, OutputTarget, PartitionKeyOption, ProcessorConfig, FIREHOSE_MAX_BYTES_PER_CALL,
};
use proptest::prelude::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

fn errors(text: &str) -> ConfigErrors {
    match load_str(text, Path::new("/etc/kinesis-tail/config.yaml")) {
        Ok(l) => panic!("expected errors, got {} flows", l.config.flows.len()),
        Err(e) => e,
    }
}

#[test]
fn java_agent_json_loads_with_its_values_and_warnings() {
    let path = fixture("agent.json");
    let Loaded { config, warnings } = load(&path).unwrap_or_else(|e| panic!("{e}"));

    let messages: Vec<&str> = warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "\"maxSendingThreads\" is a Java agent setting; ignored",
            "\"userDefinedCredentialsProvider.classname\" is a Java agent setting; ignored",
        ]
    );
    assert!(warnings.iter().all(|w| w.file == path));

    assert_eq!(config.source, path);
    assert!(!config.cloudwatch.emit_metrics);
    assert_eq!(
        config.cloudwatch.endpoint.as_deref(),
        Some("https://monitoring.us-east-1.amazonaws.com")
    );
    assert_eq!(
        config.kinesis.endpoint.as_deref(),
        Some("https://kinesis.us-east-1.amazonaws.com")
    );
    assert_eq!(config.kinesis.region.as_deref(), Some("us-east-1"));
    assert_eq!(config.firehose.endpoint, None, "an empty endpoint is unset");
    assert_eq!(
        config.checkpoint_file,
        PathBuf::from("/var/run/aws-kinesis-agent/checkpoints")
    );
    assert_eq!(config.checkpoint_ttl, Duration::from_secs(14 * 86_400));
    assert_eq!(config.status_reporting_period, Duration::from_secs(60));
    assert_eq!(config.shutdown_timeout, Duration::from_millis(20_000));
    assert_eq!(config.flows.len(), 4);

    let web = &config.flows[0];
    assert_eq!(
        web.id,
        "KinesisStream:web-access|/var/log/httpd/access_log*"
    );
    assert!(web.glob.is_match("/var/log/httpd/access_log.1"));
    assert!(!web.glob.is_match("/var/log/httpd/old/access_log"));
    assert_eq!(web.partition_key, PartitionKeyOption::Deterministic);
    assert_eq!(web.initial_position, InitialPosition::StartOfFile);
    assert_eq!(web.max_buffer_age, Duration::from_millis(5000));
    assert_eq!(web.max_buffer_size_records, 250);
    assert!(matches!(
        web.processors[..],
        [ProcessorConfig::LogToJson {
            format: LogFormat::CombinedApacheLog,
            match_pattern: None,
            custom_field_names: None,
            lenient: false,
            json_format: None,
        }]
    ));

    let events = &config.flows[1];
    assert_eq!(
        events.destination,
        Destination::DeliveryStream("app-events".into())
    );
    assert_eq!(events.max_buffer_size_bytes, FIREHOSE_MAX_BYTES_PER_CALL);
    assert_eq!(events.aggregated_record_size_bytes, Some(4096));
    assert_eq!(events.aggregation, Aggregation::None);
    assert_eq!(events.retry_initial_backoff, Duration::from_millis(200));
    assert_eq!(events.retry_max_backoff, Duration::from_millis(20_000));
    assert_eq!(events.publish_queue_capacity, 50);
    match &events.processors[..] {
        [ProcessorConfig::LogToJson {
            format: LogFormat::Syslog,
            match_pattern: Some(re),
            custom_field_names: Some(names),
            ..
        }, ProcessorConfig::AddEc2Metadata { ttl }] => {
            // Java named groups `(?<name>...)` compile and match.
            let caps = re
                .captures("Mar  7 10:00:01 web-1 sshd[42]: Accepted key")
                .expect("the Java pattern matches a syslog line");
            assert_eq!(&caps["hostname"], "web-1");
            assert_eq!(&caps["processid"], "42");
            assert_eq!(&caps["message"], "Accepted key");
            assert_eq!(names.len(), 5);
            assert_eq!(*ttl, Duration::from_secs(600));
        }
        other => panic!("unexpected processors {other:?}"),
    }

    let stack = &config.flows[2];
    let start = stack.multi_line_start_pattern.as_ref().unwrap();
    assert!(start.is_match(b"2024-01-02 12:00:00 ERROR boom"));
    assert!(!start.is_match(b"    at com.example.Foo(Foo.java:1)"));
    assert_eq!(stack.skip_header_lines, 1);
    assert_eq!(stack.truncated_record_terminator, b"...\n");
    match &stack.processors[..] {
        [ProcessorConfig::SingleLine {
            no_trim: true,
            escape_new_line: true,
        }, ProcessorConfig::AddMetadata {
            metadata,
            timestamp: true,
            ..
        }] => assert_eq!(metadata, &serde_json::json!({"app": "billing", "tier": 2})),
        other => panic!("unexpected processors {other:?}"),
    }

    let tsv = &config.flows[3];
    // jsonFormat is the processor's own, as in the Java agent.
    match &tsv.processors[..] {
        [ProcessorConfig::CsvToJson {
            field_names,
            delimiter,
            json_format: Some(JsonFormat::PrettyPrint),
            ..
        }] if delimiter == "\\t" => assert_eq!(field_names, &["id", "name", "amount"]),
        other => panic!("unexpected processors {other:?}"),
    }

    let described = config.describe();
    assert!(
        described.contains("flows[3]: /var/log/app/export.tsv"),
        "{described}"
    );
    assert!(
        described.contains(
            r#"CSVTOJSON customFieldNames=id,name,amount delimiter="\\t" jsonFormat=PRETTYPRINT"#
        ),
        "{described}"
    );
}

#[test]
fn example_config_loads_cleanly() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.yaml");
    let text = fs::read_to_string(&path).unwrap();
    let loaded = load_str(&text, &path).unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.config.flows.len(), 1);
    assert_eq!(
        loaded.config.flows[0].destination,
        Destination::OutputFile(OutputTarget::Stdout)
    );

    // The commented-out settings, uncommented, are valid too (except the destination
    // choice, which must be one of three, and the env-dependent static keys).
    let uncommented: String = text
        .lines()
        .map(|l| {
            let t = l.trim_start();
            let setting = t.strip_prefix("# ").filter(|rest| {
                let key = rest.split_once(": ").map_or("", |(k, _)| k);
                l.starts_with("# ")
                    && key.starts_with(|c: char| c.is_ascii_alphabetic())
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
                    && !key.starts_with("aws")
            });
            setting.unwrap_or(l).to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let loaded = load_str(&uncommented, &path).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(
        loaded.config.metrics_listen_address,
        Some("127.0.0.1:9780".parse().unwrap())
    );
}

#[test]
fn bad_enum_names_key_value_and_choices() {
    let e =
        errors("flows:\n  - filePattern: /a\n    kinesisStream: s\n    initialPosition: MIDDLE\n");
    let text = e.to_string();
    assert_eq!(e.0.len(), 1);
    assert_eq!(
        text,
        "/etc/kinesis-tail/config.yaml:4:5: flows[0]: initialPosition: invalid value \"MIDDLE\": expected one of START_OF_FILE, END_OF_FILE"
    );
}

#[test]
fn out_of_range_names_key_and_range() {
    let e = errors(
        "flows:\n  - filePattern: /a\n    kinesisStream: s\n    maxBufferAgeMillis: \"100\"\n",
    );
    assert_eq!(e.0[0].key.as_deref(), Some("maxBufferAgeMillis"));
    assert_eq!(e.0[0].flow, Some(0));
    assert!(
        e.to_string().contains("100 is out of range 1000..=900000"),
        "{e}"
    );
}

#[test]
fn yaml_syntax_error_has_line_and_column() {
    let e = errors("flows:\n  - filePattern: /a\n    kinesisStream: [unclosed\n");
    let err = &e.0[0];
    let (line, col) = err.location.expect("a location");
    assert!(line >= 3, "{e}");
    assert!(e.to_string().starts_with(&format!(
        "/etc/kinesis-tail/config.yaml:{line}:{col}: invalid YAML"
    )));
}

#[test]
fn json_syntax_error_has_line_and_column() {
    let e = errors("{\n  // comment\n  \"flows\": [\n    {\"filePattern\": \"/a\" \"kinesisStream\": \"s\"}\n  ]\n}\n");
    assert_eq!(e.0.len(), 1);
    assert_eq!(e.0[0].location.map(|l| l.0), Some(4), "{e}");
}

#[test]
fn flow_without_destination() {
    let e = errors("flows:\n  - filePattern: /var/log/a.log\n");
    assert_eq!(e.0.len(), 1);
    assert_eq!(e.0[0].flow, Some(0));
    assert!(e.to_string().contains(
        "no destination: set exactly one of kinesisStream, deliveryStream or outputFile"
    ));
}

#[test]
fn all_errors_are_reported_at_once() {
    let e = errors(
        r#"{
  "cloudwatch.emitMetrics": "perhaps",
  "flows": [
    { "filePattern": "relative/*.log", "kinesisStream": "a" },
    { "filePattern": "/b", "deliveryStream": "b", "aggregation": "KPL" },
    { "filePattern": "/c", "outputFile": "-", "maxBufferSizeRecords": 0,
      "dataProcessingOptions": [ { "optionName": "NOPE" } ] }
  ]
}"#,
    );
    let text = e.to_string();
    assert_eq!(e.0.len(), 5, "{text}");
    assert!(
        text.contains("cloudwatch.emitMetrics: expected true/false"),
        "{text}"
    );
    assert!(text.contains("flows[0]: filePattern"), "{text}");
    assert!(
        text.contains("flows[1]: aggregation: KPL aggregation is only valid"),
        "{text}"
    );
    assert!(
        text.contains("flows[2]: maxBufferSizeRecords: 0 is out of range 1..=500"),
        "{text}"
    );
    assert!(
        text.contains("flows[2]: dataProcessingOptions[0].optionName"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 5);
}

#[test]
fn unset_variable_names_variable_and_key() {
    let e = errors(
        "flows:\n  - filePattern: /a\n    kinesisStream: ${KINESIS_TAIL_TEST_SURELY_UNSET_7F3A}\n",
    );
    let text = e.to_string();
    assert!(text.contains("flows[0]: kinesisStream"), "{text}");
    assert!(
        text.contains("KINESIS_TAIL_TEST_SURELY_UNSET_7F3A is not set"),
        "{text}"
    );

    std::env::set_var("KINESIS_TAIL_TEST_STREAM_9C1D", "from-environment");
    let l = load_str(
        "flows:\n  - {filePattern: /a, kinesisStream: '${KINESIS_TAIL_TEST_STREAM_9C1D}'}\n",
        Path::new("c.yaml"),
    )
    .unwrap();
    assert_eq!(
        l.config.flows[0].destination,
        Destination::KinesisStream("from-environment".into())
    );
}

#[test]
fn conf_d_and_agent_d_flows_are_appended_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("config.yaml");
    fs::write(
        &main,
        "checkpointFile: /tmp/cp\nflows:\n  - {filePattern: /main.log, outputFile: '-'}\n",
    )
    .unwrap();
    fs::create_dir(dir.path().join("conf.d")).unwrap();
    fs::create_dir(dir.path().join("agent.d")).unwrap();
    fs::write(
        dir.path().join("conf.d/10-b.yaml"),
        "flows:\n  - {filePattern: /b.log, kinesisStream: b}\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("conf.d/02-a.yml"),
        "checkpointFile: /elsewhere\nflows:\n  - {filePattern: /a.log, kinesisStream: a}\n",
    )
    .unwrap();
    fs::write(dir.path().join("conf.d/notes.txt"), "not: [config").unwrap();
    fs::write(dir.path().join("conf.d/.swap.yaml"), "not: [config").unwrap();
    fs::write(
        dir.path().join("agent.d/web.json"),
        "// Java agent drop-in\n{ \"flows\": [ { \"filePattern\": \"/web.log\", \"deliveryStream\": \"web\" /* fh */ } ] }\n",
    )
    .unwrap();

    let loaded = load(&main).unwrap_or_else(|e| panic!("{e}"));
    let patterns: Vec<(usize, &str)> = loaded
        .config
        .flows
        .iter()
        .map(|f| (f.index, f.file_pattern.as_str()))
        .collect();
    assert_eq!(
        patterns,
        [
            (0, "/main.log"),
            (1, "/a.log"),
            (2, "/b.log"),
            (3, "/web.log")
        ]
    );
    assert_eq!(loaded.config.checkpoint_file, PathBuf::from("/tmp/cp"));
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert_eq!(loaded.warnings[0].file, dir.path().join("conf.d/02-a.yml"));
    assert!(loaded.warnings[0]
        .message
        .contains("only flows are read from conf.d files"));

    // An error in a drop-in names that file and the flow's index in the merged list.
    fs::write(
        dir.path().join("agent.d/web.json"),
        "{ \"flows\": [ { \"filePattern\": \"/web.log\" } ] }",
    )
    .unwrap();
    fs::write(dir.path().join("conf.d/10-b.yaml"), "flows: [\n").unwrap();
    let e = load(&main).unwrap_err();
    assert_eq!(e.0.len(), 2, "{e}");
    assert_eq!(e.0[0].file, dir.path().join("conf.d/10-b.yaml"));
    assert!(e.0[0].location.is_some());
    assert_eq!(e.0[1].file, dir.path().join("agent.d/web.json"));
    assert_eq!(e.0[1].flow, Some(2));

    // Flows may come from drop-ins only.
    fs::write(&main, "checkpointFile: /tmp/cp\n").unwrap();
    fs::write(dir.path().join("conf.d/10-b.yaml"), "[]").unwrap();
    fs::remove_file(dir.path().join("agent.d/web.json")).unwrap();
    let loaded = load(&main).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.config.flows.len(), 1);
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let e = load(Path::new("/nonexistent/kinesis-tail.yaml")).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/kinesis-tail.yaml: cannot read"),
        "{e}"
    );
}

#[test]
fn pathological_documents_are_errors_not_crashes() {
    let deep = 100_000;
    for text in [
        "[".repeat(deep),
        "{".repeat(deep),
        format!("{{\"flows\": {}", "[".repeat(deep)),
        format!("flows: {}", "[".repeat(deep)),
        "- ".repeat(deep),
        format!("flows:\n  - filePattern: /a\n    outputFile: '-'\n    dataProcessingOptions:\n      - optionName: ADDMETADATA\n        metadata: {}", "{a: ".repeat(deep)),
        // An alias bomb: each level doubles the previous one.
        "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nflows: *g\n".to_string(),
        "/*".to_string(),
        "\u{feff}{}".to_string(),
        "flows:\n  - {filePattern: '/a', kinesisStream: s, maxBufferAgeMillis: 1e400, skipHeaderLines: 99999999999999999999999}\n".to_string(),
    ] {
        assert!(load_str(&text, Path::new("x")).is_err());
    }
}

/// Valid documents to mutate.
fn seeds() -> Vec<String> {
    vec![
        fs::read_to_string(fixture("agent.json")).unwrap(),
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.yaml"))
            .unwrap(),
        "flows:\n  - filePattern: /var/log/*.log\n    kinesisStream: s\n    partitionKeyOption: 'REGEX:(\\d+)'\n    dataProcessingOptions:\n      - {optionName: CSVTOJSON, customFieldNames: [a], delimiter: '\\t'}\n".to_string(),
    ]
}

fn check_no_panic(text: &str) {
    if let Ok(l) = load_str(text, Path::new("fuzz.yaml")) {
        let _ = l.config.describe();
    }
}

proptest! {
    #![proptest_config(agent::proptest_cases(300))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_no_panic(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,300}") {
        check_no_panic(&s);
    }

    #[test]
    fn yaml_and_json_shaped_strings_never_panic(
        s in "[{}\\[\\]:,\"' \n/*a-zA-Z0-9$_.\\\\-]{0,200}"
    ) {
        check_no_panic(&s);
        check_no_panic(&format!("flows:\n  - {s}"));
    }

    #[test]
    fn mutated_valid_configs_never_panic(
        seed in 0usize..3,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..12, "\\PC{0,8}"), 1..6),
    ) {
        let mut text = seeds()[seed].clone();
        for (at, delete, insert) in edits {
            let mut pos = at.index(text.len() + 1);
            while !text.is_char_boundary(pos) {
                pos -= 1;
            }
            let mut end = (pos + delete).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            text.replace_range(pos..end, &insert);
        }
        check_no_panic(&text);
    }
}

#[test]
fn cri_is_checked_and_only_first() {
    let e = errors(
        "flows:\n  - filePattern: /a\n    kinesisStream: s\n    dataProcessingOptions:\n      \
         - optionName: SINGLELINE\n      - optionName: CRI\n        format: podman\n",
    );
    let text = e.to_string();
    assert!(
        text.contains("CRI must be the first dataProcessingOptions entry"),
        "{text}"
    );
    assert!(
        text.contains("format: invalid value \"podman\": expected one of auto, cri, docker"),
        "{text}"
    );
    let loaded = load_str(
        "flows:\n  - filePattern: /a\n    kinesisStream: s\n    dataProcessingOptions:\n      \
         - optionName: cri\n        format: DOCKER\n        output: json\n",
        Path::new("/etc/kt.yaml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let described = loaded.config.describe();
    let message_only = load_str(
        "flows:\n  - filePattern: /a\n    kinesisStream: s\n    dataProcessingOptions:\n      \
         - optionName: CRI\n        kubernetesMetadata: false\n",
        Path::new("/etc/kt.yaml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        message_only.warnings.len(),
        1,
        "{:?}",
        message_only.warnings
    );
    assert!(message_only.warnings[0]
        .message
        .contains("kubernetesMetadata: ignored with output: message"));
    assert!(
        described.contains("CRI format=docker output=json kubernetesMetadata"),
        "{described}"
    );
}
