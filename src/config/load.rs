//! Loading: file → raw values → validated [`Config`].
//!
//! [`load`] reads the main file, then every `conf.d/*.yaml` (also `*.yml`, `*.json`) and
//! every Java-agent `agent.d/*.json` in the main file's directory, sorted by file name
//! (`conf.d/` first): their `flows` are appended to the main file's, any other key in them
//! is a warning. Parsing is `raw.rs` (YAML, or JSON with comments), checking starts in
//! `top.rs`, `${VAR}` expansion is `expand.rs`. Every error of every file is returned
//! at once; nothing here panics, whatever the input.
//!
//! Not here: reloading on SIGHUP (the daemon calls [`load`] again) and anything that needs
//! the network (stream limits are learned by the sinks' preflight).

use std::path::{Path, PathBuf};

use super::error::{ConfigError, ConfigErrors, Diag, Warning};
use super::expand::Env;
use super::raw::{self, Doc};
use super::top;
use super::Config;

/// A loaded configuration and the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    /// The validated configuration.
    pub config: Config,
    /// Unknown keys (with the closest known key), Java-only keys that are ignored, ...
    pub warnings: Vec<Warning>,
}

/// Loads `path`, then the `flows` of `conf.d/*.yaml` and `agent.d/*` beside it.
pub fn load(path: &Path) -> Result<Loaded, ConfigErrors> {
    let env = |name: &str| std::env::var(name).ok();
    let mut diag = Diag::default();
    let main = read_doc(path, &mut diag);
    let mut extras = Vec::new();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    for (sub, extensions) in [
        ("conf.d", &["yaml", "yml", "json"][..]),
        ("agent.d", &["json"][..]),
    ] {
        for file in drop_in_files(&dir.join(sub), extensions, &mut diag) {
            extras.extend(read_doc(&file, &mut diag));
        }
    }
    finish(main.as_ref(), &extras, &env, diag)
}

/// Loads one document given as text (no `conf.d/`); `path` names it in messages.
pub fn load_str(text: &str, path: &Path) -> Result<Loaded, ConfigErrors> {
    let env = |name: &str| std::env::var(name).ok();
    load_str_with_env(text, path, &env)
}

/// [`load_str`] with a given environment, for tests.
pub(crate) fn load_str_with_env(text: &str, path: &Path, env: Env) -> Result<Loaded, ConfigErrors> {
    let mut diag = Diag::default();
    let main = match raw::parse(text, path) {
        Ok(doc) => Some(doc),
        Err(e) => {
            diag.errors.push(e);
            None
        }
    };
    finish(main.as_ref(), &[], env, diag)
}

fn finish(
    main: Option<&Doc>,
    extras: &[Doc],
    env: Env,
    mut diag: Diag,
) -> Result<Loaded, ConfigErrors> {
    let config = top::validate(main, extras, env, &mut diag);
    match config {
        Some(config) if diag.errors.is_empty() => Ok(Loaded {
            config,
            warnings: diag.warnings,
        }),
        _ => {
            // Read order is key order in the code; the operator reads the file top down.
            let mut errors = diag.errors;
            errors.sort_by_key(|e| {
                (
                    e.flow.map_or(0, |f| f + 1),
                    e.location.is_none(),
                    e.location,
                )
            });
            Err(ConfigErrors(errors))
        }
    }
}

fn file_error(path: &Path, message: String) -> ConfigError {
    ConfigError {
        file: path.to_path_buf(),
        location: None,
        flow: None,
        key: None,
        message,
    }
}

fn read_doc(path: &Path, diag: &mut Diag) -> Option<Doc> {
    let parsed = std::fs::read(path)
        .map_err(|e| file_error(path, format!("cannot read the configuration: {e}")))
        .and_then(|bytes| raw::decode(bytes, path))
        .and_then(|text| raw::parse(&text, path));
    match parsed {
        Ok(doc) => Some(doc),
        Err(e) => {
            diag.errors.push(e);
            None
        }
    }
}

/// The files of a drop-in directory with one of `extensions`, sorted by name. Hidden
/// files (editor leftovers) are skipped; a missing directory is normal.
fn drop_in_files(dir: &Path, extensions: &[&str], diag: &mut Diag) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) if !dir.is_dir() && e.kind() != std::io::ErrorKind::PermissionDenied => {
            return Vec::new()
        }
        Err(e) => {
            diag.errors
                .push(file_error(dir, format!("cannot read the directory: {e}")));
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or(".");
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            !name.starts_with('.') && extensions.contains(&ext) && p.is_file()
        })
        .collect();
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    files
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{
        Aggregation, Destination, InitialPosition, JsonFormat, LogFormat, OnParseError,
        OutputTarget, PartitionKeyOption, ProcessorConfig, DEFAULT_CHECKPOINT_FILE,
        FIREHOSE_MAX_BYTES_PER_CALL, KINESIS_MAX_BYTES_PER_CALL, KPL_DEFAULT_BUFFER_BYTES,
    };

    fn env(name: &str) -> Option<String> {
        match name {
            "STREAM" => Some("from-env".to_string()),
            "BUF" => Some("250".to_string()),
            _ => None,
        }
    }

    fn ok(text: &str) -> Loaded {
        match load_str_with_env(text, Path::new("test.yaml"), &env) {
            Ok(l) => l,
            Err(e) => panic!("expected a valid config, got:\n{e}"),
        }
    }

    fn errs(text: &str) -> Vec<ConfigError> {
        match load_str_with_env(text, Path::new("test.yaml"), &env) {
            Ok(l) => panic!("expected errors, got {:#?}", l.config.flows),
            Err(e) => e.0,
        }
    }

    fn one_err(text: &str) -> ConfigError {
        let e = errs(text);
        assert_eq!(e.len(), 1, "{}", ConfigErrors(e.clone()));
        e.into_iter().next().unwrap()
    }

    const MIN: &str = "flows:\n  - filePattern: /var/log/app/*.log\n    kinesisStream: app\n";

    #[test]
    fn minimal_flow_gets_the_documented_defaults() {
        let l = ok(MIN);
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        let c = &l.config;
        assert_eq!(c.checkpoint_file, PathBuf::from(DEFAULT_CHECKPOINT_FILE));
        assert_eq!(c.checkpoint_ttl, Duration::from_secs(7 * 86_400));
        assert!(c.cloudwatch.emit_metrics);
        assert_eq!(c.cloudwatch.namespace, "AWSKinesisAgent");
        assert_eq!(c.cloudwatch.buffer_time, Duration::from_millis(30_000));
        assert_eq!(c.max_connections, 50);
        assert_eq!(c.connection_timeout, Duration::from_millis(10_000));
        assert_eq!(c.socket_timeout, Duration::from_millis(50_000));
        assert_eq!(c.shutdown_timeout, Duration::from_millis(10_000));
        assert_eq!(c.status_reporting_period, Duration::from_secs(30));
        assert_eq!(c.health_ack_timeout, Duration::from_secs(300));
        assert_eq!(c.ec2_metadata_endpoint, "http://169.254.169.254");
        assert_eq!(c.max_open_files, 1024);
        assert_eq!(c.max_buffered_bytes, 4 * 1024 * 1024);
        assert_eq!(c.rescan_interval, Duration::from_millis(10_000));
        assert!(c.metrics_listen_address.is_none());
        assert!(c.static_credentials.is_none());
        let f = &c.flows[0];
        assert_eq!(f.index, 0);
        assert_eq!(f.id, "KinesisStream:app|/var/log/app/*.log");
        assert_eq!(f.destination, Destination::KinesisStream("app".into()));
        assert_eq!(f.partition_key, PartitionKeyOption::Random);
        assert_eq!(f.initial_position, InitialPosition::EndOfFile);
        assert_eq!(f.max_buffer_age, Duration::from_millis(1000));
        assert_eq!(f.max_buffer_size_bytes, KINESIS_MAX_BYTES_PER_CALL);
        assert_eq!(f.max_buffer_size_records, 500);
        assert_eq!(f.aggregation, Aggregation::None);
        assert_eq!(f.aggregated_record_size_bytes, None);
        assert_eq!(f.truncated_record_terminator, b"\n");
        assert_eq!(f.json_format, JsonFormat::Compact);
        assert_eq!(f.on_parse_error, OnParseError::Drop);
        assert_eq!(f.retry_initial_backoff, Duration::from_millis(100));
        assert_eq!(f.retry_max_backoff, Duration::from_millis(10_000));
        assert_eq!(f.publish_queue_capacity, 100);
        assert_eq!(f.min_time_between_file_polls, Duration::from_millis(100));
        assert_eq!(f.record_id_field, None);
        assert!(!f.remove_after_shipped);
        assert_eq!(f.max_in_flight, 4);
        assert!(f.processors.is_empty());
    }

    #[test]
    fn glob_star_stays_in_a_component_and_double_star_crosses() {
        let l = ok("flows:\n  - {filePattern: /var/log/*.log, outputFile: '-'}\n  - {filePattern: '/srv/**/*.log', outputFile: /tmp/out}\n");
        let (a, b) = (&l.config.flows[0], &l.config.flows[1]);
        assert!(a.glob.is_match("/var/log/syslog.log"));
        assert!(!a.glob.is_match("/var/log/nginx/access.log"));
        assert!(b.glob.is_match("/srv/a/b/c.log"));
        assert!(b.glob.is_match("/srv/c.log"));
        assert_eq!(a.destination, Destination::OutputFile(OutputTarget::Stdout));
        assert_eq!(a.max_in_flight, 1);
        assert_eq!(
            b.destination,
            Destination::OutputFile(OutputTarget::Path("/tmp/out".into()))
        );
    }

    #[test]
    fn firehose_limits_and_clamped_default() {
        let l = ok("flows:\n  - {filePattern: /a, deliveryStream: fh}\n");
        assert_eq!(
            l.config.flows[0].max_buffer_size_bytes,
            FIREHOSE_MAX_BYTES_PER_CALL
        );
        let e = one_err(
            "flows:\n  - {filePattern: /a, deliveryStream: fh, maxBufferSizeBytes: 5242880}\n",
        );
        assert_eq!(e.key.as_deref(), Some("maxBufferSizeBytes"));
        assert!(e.message.contains("1..=4194304"), "{e}");
        let e = one_err("flows:\n  - {filePattern: /a, deliveryStream: fh, aggregatedRecordSizeBytes: 1048576}\n");
        assert!(e.message.contains("0..=1024000"), "{e}");
    }

    #[test]
    fn lenient_values_numbers_booleans_enums() {
        let l = ok(r#"
cloudwatch.emitMetrics: "No"
cloudwatch.tagInstance: 1
checkpointTimeToLiveDays: "3"
flows:
  - filePattern: /a
    kinesisStream: s
    maxBufferAgeMillis: " 5000 "
    maxBufferSizeRecords: "${BUF}"
    initialPosition: start_of_file
    aggregation: kpl
    jsonFormat: prettyPrint
    onParseError: KEEP_RAW
    removeAfterShipped: "yes"
    recordIdField: ""
"#);
        let c = &l.config;
        assert!(!c.cloudwatch.emit_metrics);
        assert!(c.cloudwatch.tag_instance);
        assert_eq!(c.checkpoint_ttl, Duration::from_secs(3 * 86_400));
        let f = &c.flows[0];
        assert_eq!(f.max_buffer_age, Duration::from_millis(5000));
        assert_eq!(f.max_buffer_size_records, 250);
        assert_eq!(f.initial_position, InitialPosition::StartOfFile);
        assert_eq!(f.aggregation, Aggregation::Kpl);
        assert_eq!(f.json_format, JsonFormat::PrettyPrint);
        assert_eq!(f.on_parse_error, OnParseError::KeepRaw);
        assert!(f.remove_after_shipped);
        assert_eq!(f.record_id_field, None);
    }

    #[test]
    fn nested_and_dotted_forms_are_equivalent() {
        let dotted = ok(&format!("cloudwatch.emitMetrics: false\nkinesis.endpoint: http://localhost:4566\nkinesis.region: eu-west-1\nmetrics.listenAddress: 127.0.0.1:9780\n{MIN}"));
        let nested = ok(&format!("cloudwatch: {{emitMetrics: false}}\nkinesis:\n  endpoint: http://localhost:4566\n  region: eu-west-1\nmetrics:\n  listenAddress: 127.0.0.1:9780\n{MIN}"));
        for c in [&dotted.config, &nested.config] {
            assert!(!c.cloudwatch.emit_metrics);
            assert_eq!(c.kinesis.endpoint.as_deref(), Some("http://localhost:4566"));
            assert_eq!(c.kinesis.region.as_deref(), Some("eu-west-1"));
            assert_eq!(
                c.metrics_listen_address,
                Some("127.0.0.1:9780".parse().unwrap())
            );
        }
        let e = one_err(&format!(
            "cloudwatch.emitMetrics: false\ncloudwatch: {{emitMetrics: true}}\n{MIN}"
        ));
        assert_eq!(e.key.as_deref(), Some("cloudwatch.emitMetrics"));
        assert!(e.message.contains("twice"), "{e}");
    }

    #[test]
    fn endpoints_are_urls_and_never_empty() {
        let l = ok(&format!(
            "kinesis.endpoint: kinesis.us-east-1.amazonaws.com\nfirehose.endpoint: ''\n{MIN}"
        ));
        assert_eq!(
            l.config.kinesis.endpoint.as_deref(),
            Some("https://kinesis.us-east-1.amazonaws.com")
        );
        assert_eq!(l.config.firehose.endpoint, None);
        let e = one_err(&format!("sts.endpoint: 'ftp://x'\n{MIN}"));
        assert_eq!(e.key.as_deref(), Some("sts.endpoint"));
        let e = one_err(&format!("cloudwatch.endpoint: 'http://'\n{MIN}"));
        assert_eq!(e.key.as_deref(), Some("cloudwatch.endpoint"));
        let e = one_err(&format!("ec2.metadataEndpoint: 'http://a b'\n{MIN}"));
        assert_eq!(e.key.as_deref(), Some("ec2.metadataEndpoint"));
    }

    #[test]
    fn partition_key_forms() {
        let l = ok(r#"
flows:
  - {filePattern: /a, kinesisStream: s, partitionKeyOption: deterministic}
  - {filePattern: /b, kinesisStream: s, partitionKeyOption: "CONSTANT:my:key"}
  - {filePattern: /c, kinesisStream: s, partitionKeyOption: "JSONFIELD:user"}
  - {filePattern: /d, kinesisStream: s, partitionKeyOption: "REGEX:^(\\w+)"}
  - {filePattern: /e, kinesisStream: s, partitionKeyOption: {constant: k}}
  - {filePattern: /f, kinesisStream: s, partitionKeyOption: {jsonField: user}}
  - {filePattern: /g, kinesisStream: s, partitionKeyOption: {regex: 'id=(?<key>\d+)'}}
"#);
        let keys: Vec<_> = l.config.flows.iter().map(|f| &f.partition_key).collect();
        assert_eq!(*keys[0], PartitionKeyOption::Deterministic);
        assert_eq!(*keys[1], PartitionKeyOption::Constant("my:key".into()));
        assert_eq!(*keys[2], PartitionKeyOption::JsonField("user".into()));
        assert!(matches!(keys[3], PartitionKeyOption::Regex(r) if r.as_str() == "^(\\w+)"));
        assert_eq!(*keys[4], PartitionKeyOption::Constant("k".into()));
        assert_eq!(*keys[5], PartitionKeyOption::JsonField("user".into()));
        assert!(matches!(keys[6], PartitionKeyOption::Regex(_)));

        let e = one_err(
            "flows:\n  - {filePattern: /a, kinesisStream: s, partitionKeyOption: SHARDED}\n",
        );
        assert_eq!(e.key.as_deref(), Some("partitionKeyOption"));
        assert!(e.message.contains("RANDOM, DETERMINISTIC"), "{e}");
        let e = one_err(
            "flows:\n  - {filePattern: /a, kinesisStream: s, partitionKeyOption: 'REGEX:^\\w+'}\n",
        );
        assert!(e.message.contains("capture group"), "{e}");
    }

    #[test]
    fn processors_all_kinds() {
        let l = ok(r#"
flows:
  - filePattern: /a
    kinesisStream: s
    dataProcessingOptions:
      - {optionName: SINGLELINE, parseOptions: [NO_TRIM, ESCAPE_NEW_LINE]}
      - {optionName: singleline, parseOptions: "NO_TRIM"}
      - {optionName: CSVTOJSON, customFieldNames: [a, b], delimiter: "\\t"}
      - {optionName: CSVTOJSON, customFieldNames: [a], delimiter: "\\|"}
      - {optionName: LOGTOJSON, logFormat: commonApacheLog}
      - optionName: LOGTOJSON
        logFormat: SYSLOG
        matchPattern: '^(?<ts>\S+) (?<msg>.*)$'
        customFieldNames: [ts, msg]
        jsonFormat: COMPACT
      - {optionName: ADDMETADATA, metadata: {env: "${STREAM}", n: 1}, timestamp: "true"}
      - {optionName: ADDEC2METADATA, metadataTTL: "60"}
"#);
        let p = &l.config.flows[0].processors;
        assert_eq!(p.len(), 8);
        assert!(matches!(
            p[0],
            ProcessorConfig::SingleLine {
                no_trim: true,
                escape_new_line: true
            }
        ));
        assert!(matches!(
            p[1],
            ProcessorConfig::SingleLine {
                no_trim: true,
                escape_new_line: false
            }
        ));
        assert!(
            matches!(&p[2], ProcessorConfig::CsvToJson { field_names, delimiter, .. } if field_names == &["a", "b"] && crate::java::compile(delimiter).unwrap().is_match("\t"))
        );
        assert!(matches!(
            &p[3],
            ProcessorConfig::CsvToJson { delimiter, .. } if delimiter == "\\|"
        ));
        assert!(matches!(
            &p[4],
            ProcessorConfig::LogToJson {
                format: LogFormat::CommonApacheLog,
                match_pattern: None,
                custom_field_names: None,
                ..
            }
        ));
        match &p[5] {
            ProcessorConfig::LogToJson {
                format: LogFormat::Syslog,
                match_pattern: Some(re),
                custom_field_names: Some(names),
                ..
            } => {
                let caps = re.captures("2024-01-01 hello world").unwrap();
                assert_eq!(&caps["msg"], "hello world");
                assert_eq!(names, &["ts", "msg"]);
            }
            other => panic!("{other:?}"),
        }
        match &p[6] {
            ProcessorConfig::AddMetadata {
                metadata,
                timestamp,
                ..
            } => {
                assert!(*timestamp);
                assert_eq!(metadata, &serde_json::json!({"env": "from-env", "n": 1}));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            p[7],
            ProcessorConfig::AddEc2Metadata { ttl } if ttl == Duration::from_secs(60)
        ));
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    }

    #[test]
    fn processor_errors() {
        let e = errs(
            r#"
flows:
  - filePattern: /a
    kinesisStream: s
    dataProcessingOptions:
      - {optionName: GZIP}
      - {optionName: CSVTOJSON, delimiter: "("}
      - {optionName: LOGTOJSON}
      - {optionName: LOGTOJSON, logFormat: SYSLOG, matchPattern: '^(\w+)$', customFieldNames: [a, b]}
      - {optionName: SINGLELINE, parseOptions: [TRIM]}
      - {foo: 1}
      - {optionName: LOGTOJSON, logFormat: SYSLOG, customFieldNames: [a, b]}
"#,
        );
        let text = ConfigErrors(e.clone()).to_string();
        assert_eq!(e.len(), 6, "{text}");
        assert!(text.contains("dataProcessingOptions[0].optionName: invalid value \"GZIP\": expected one of SINGLELINE, CSVTOJSON, LOGTOJSON, ADDMETADATA, ADDBRACKETS, ADDEC2METADATA"), "{text}");
        assert!(
            text.contains("dataProcessingOptions[1].customFieldNames"),
            "{text}"
        );
        assert!(
            text.contains("the delimiter is a Java regular expression"),
            "{text}"
        );
        assert!(
            text.contains("dataProcessingOptions[2].logFormat: logFormat is required"),
            "{text}"
        );
        assert!(
            text.contains("dataProcessingOptions[5].optionName: optionName is required"),
            "{text}"
        );
        // As the Java agent: the default format's fields, renamed, must all be named.
        assert!(
            text.contains("dataProcessingOptions[6].customFieldNames: SYSLOG has 5 fields"),
            "{text}"
        );
        assert!(e.iter().all(|e| e.flow == Some(0)));
    }

    #[test]
    fn destinations_exactly_one() {
        let e = one_err("flows:\n  - filePattern: /a\n");
        assert_eq!(e.flow, Some(0));
        assert!(e.message.contains("no destination"), "{e}");
        let e = one_err("flows:\n  - {filePattern: /a, kinesisStream: s, deliveryStream: d}\n");
        assert!(e.message.contains("mutually exclusive"), "{e}");
        let e = one_err("flows:\n  - {filePattern: /a, deliveryStream: d, aggregation: KPL}\n");
        assert_eq!(e.key.as_deref(), Some("aggregation"));
        let e = one_err("flows:\n  - {filePattern: var/log/*.log, kinesisStream: s}\n");
        assert!(e.message.contains("absolute"), "{e}");
        let e = one_err("flows:\n  - {kinesisStream: s}\n");
        assert!(e.message.contains("filePattern is required"), "{e}");
        let e = one_err("flows:\n  - {filePattern: /a, kinesisStream: s}\n  - {filePattern: /a, kinesisStream: s}\n");
        assert_eq!(e.flow, Some(1));
        assert!(e.message.contains("flows[0]"), "{e}");
    }

    #[test]
    fn ranges_name_the_key_and_the_range() {
        for (kv, key, range) in [
            (
                "maxBufferAgeMillis: 999",
                "maxBufferAgeMillis",
                "1000..=900000",
            ),
            (
                "maxBufferAgeMillis: 900001",
                "maxBufferAgeMillis",
                "1000..=900000",
            ),
            (
                "maxBufferSizeRecords: 501",
                "maxBufferSizeRecords",
                "1..=500",
            ),
            ("maxBufferSizeRecords: 0", "maxBufferSizeRecords", "1..=500"),
            (
                "maxBufferSizeBytes: 5242881",
                "maxBufferSizeBytes",
                "1..=5242880",
            ),
            (
                "aggregatedRecordSizeBytes: 1048577",
                "aggregatedRecordSizeBytes",
                "0..=1048576",
            ),
        ] {
            let e = one_err(&format!(
                "flows:\n  - filePattern: /a\n    kinesisStream: s\n    {kv}\n"
            ));
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
            assert!(e.message.contains(range), "{e}");
            assert_eq!(e.location.map(|l| l.0), Some(4), "{e}");
        }
        let e =
            one_err("flows:\n  - {filePattern: /a, kinesisStream: s, maxBufferAgeMillis: fast}\n");
        assert!(e.message.contains("whole number"), "{e}");
    }

    /// Keys the Java agent reads without a range check load whatever their value; one
    /// that cannot work here is replaced by the nearest that does, with a warning.
    #[test]
    fn ranges_the_java_agent_does_not_check_are_warnings() {
        let l = ok(&format!(
            "checkpointTimeToLiveDays: 0\ncloudwatch.metricsBufferTimeMillis: 25\n{MIN}    publishQueueCapacity: 10001\n    retryInitialBackoffMillis: 0\n    skipHeaderLines: -1\n"
        ));
        let all: Vec<String> = l.warnings.iter().map(|w| w.to_string()).collect();
        let all = all.join("\n");
        for needle in [
            "checkpointTimeToLiveDays: 0 is outside 1..=36500, so 1 is used",
            "cloudwatch.metricsBufferTimeMillis: 25 is outside 1000..=",
            "publishQueueCapacity: 10001 is outside 1..=10000, so 10000 is used",
            "retryInitialBackoffMillis: 0 is outside 1..=",
            "skipHeaderLines: -1 is outside 0..=",
        ] {
            assert!(all.contains(needle), "{needle:?} missing from:\n{all}");
        }
        let c = &l.config;
        assert_eq!(c.checkpoint_ttl, Duration::from_secs(86_400));
        assert_eq!(c.cloudwatch.buffer_time, Duration::from_millis(1000));
        let f = &c.flows[0];
        assert_eq!(f.publish_queue_capacity, 10_000);
        assert_eq!(f.retry_initial_backoff, Duration::from_millis(1));
        assert_eq!(f.skip_header_lines, 0);
        // Initial above max: the initial backoff is the bound.
        let l = ok("flows:\n  - {filePattern: /a, kinesisStream: s, retryInitialBackoffMillis: 500, retryMaxBackoffMillis: 100}\n");
        assert!(l
            .warnings
            .iter()
            .any(|w| w.to_string().contains("greater than retryMaxBackoffMillis")));
        assert_eq!(
            l.config.flows[0].retry_max_backoff,
            Duration::from_millis(500)
        );
        // Java's Integer.decode: hexadecimal and octal strings.
        let l = ok(&format!(
            "{MIN}    maxBufferSizeRecords: \"0x10\"\n    skipHeaderLines: \"010\"\n"
        ));
        assert_eq!(l.config.flows[0].max_buffer_size_records, 16);
        assert_eq!(l.config.flows[0].skip_header_lines, 8);
        // aggregatedRecordSizeBytes 0 turns it off, as in the Java agent.
        let l =
            ok("flows:\n  - {filePattern: /a, deliveryStream: d, aggregatedRecordSizeBytes: 0}\n");
        assert_eq!(l.config.flows[0].aggregated_record_size_bytes, None);
    }

    #[test]
    fn kpl_aggregate_size_leaves_room_for_the_key() {
        let l = ok("flows:\n  - {filePattern: /a, kinesisStream: s, aggregation: KPL, aggregatedRecordSizeBytes: 1048576}\n");
        assert_eq!(
            l.config.flows[0].aggregated_record_size_bytes,
            Some(1024 * 1024 - 256)
        );
        assert_eq!(l.warnings.len(), 1);
    }

    #[test]
    fn kpl_batches_default_to_one_mib_unless_set() {
        let l = ok("flows:\n  - {filePattern: /a, kinesisStream: s, aggregation: KPL}\n  - {filePattern: /b, kinesisStream: s, aggregation: KPL, maxBufferSizeBytes: 5242880}\n  - {filePattern: /c, kinesisStream: s}\n");
        let bytes: Vec<usize> = l
            .config
            .flows
            .iter()
            .map(|f| f.max_buffer_size_bytes)
            .collect();
        assert_eq!(
            bytes,
            [
                KPL_DEFAULT_BUFFER_BYTES,
                KINESIS_MAX_BYTES_PER_CALL,
                KINESIS_MAX_BYTES_PER_CALL
            ]
        );
    }

    #[test]
    fn environment_expansion() {
        let l = ok(
            "flows:\n  - {filePattern: '/logs/${NOPE:-app}/*.log', kinesisStream: '${STREAM}'}\n",
        );
        let f = &l.config.flows[0];
        assert_eq!(f.file_pattern, "/logs/app/*.log");
        assert_eq!(f.destination, Destination::KinesisStream("from-env".into()));
        let e = one_err("flows:\n  - {filePattern: /a, kinesisStream: '${NOPE}'}\n");
        assert_eq!(e.key.as_deref(), Some("kinesisStream"));
        assert!(e.message.contains("NOPE is not set"), "{e}");
    }

    #[test]
    fn unknown_and_java_only_keys_warn() {
        let l = ok(r#"
maxSendingThreads: 4
log.level: DEBUG
checkpointFil: /x
flows:
  - filePattern: /a
    kinesisStream: s
    maxBufferAgeMilis: 5000
    waitOnFullPublishQueueMillis: 1000
    dataProcessingOptions:
      - {optionName: CSVTOJSON, customFieldNames: [a], delimitr: ","}
"#);
        let w: Vec<String> = l.warnings.iter().map(|w| w.message.clone()).collect();
        let all = w.join("\n");
        assert_eq!(w.len(), 6, "{all}");
        assert!(
            all.contains("\"maxSendingThreads\" is a Java agent setting; ignored"),
            "{all}"
        );
        assert!(
            all.contains("\"log.level\" is a Java agent setting; ignored (logs go to stderr"),
            "{all}"
        );
        assert!(
            all.contains("unknown key \"checkpointFil\" ignored; did you mean \"checkpointFile\"?"),
            "{all}"
        );
        assert!(all.contains("flows[0]: unknown key \"maxBufferAgeMilis\" ignored; did you mean \"maxBufferAgeMillis\"?"), "{all}");
        assert!(
            all.contains("flows[0]: \"waitOnFullPublishQueueMillis\" is a Java agent setting"),
            "{all}"
        );
        assert!(
            all.contains(
                "\"delimitr\" in dataProcessingOptions[0] ignored; did you mean \"delimiter\"?"
            ),
            "{all}"
        );
        assert_eq!(
            l.config.checkpoint_file,
            PathBuf::from(DEFAULT_CHECKPOINT_FILE)
        );
    }

    #[test]
    fn credentials_both_or_neither_and_never_described() {
        let l = ok(&format!(
            "awsAccessKeyId: AKIAEXAMPLE\nawsSecretAccessKey: s3cr3t-value\n{MIN}"
        ));
        let creds = l.config.static_credentials.as_ref().unwrap();
        assert_eq!(creds.secret_access_key, "s3cr3t-value");
        let d = l.config.describe();
        assert!(!d.contains("s3cr3t-value"), "{d}");
        assert!(!format!("{:?}", l.config).contains("s3cr3t-value"));
        let e = one_err(&format!("awsAccessKeyId: AKIAEXAMPLE\n{MIN}"));
        assert_eq!(e.key.as_deref(), Some("awsSecretAccessKey"));
    }

    #[test]
    fn many_errors_reported_at_once() {
        let e = errs(
            r#"
metrics.healthAckTimeoutSeconds: 0
flows:
  - filePattern: /a
  - filePattern: /b
    kinesisStream: s
    initialPosition: MIDDLE
  - filePattern: /c
    deliveryStream: d
    maxBufferSizeRecords: 1000
"#,
        );
        assert_eq!(e.len(), 4, "{}", ConfigErrors(e.clone()));
        assert_eq!(e[0].key.as_deref(), Some("metrics.healthAckTimeoutSeconds"));
        assert_eq!(e[1].flow, Some(0));
        assert_eq!(e[2].flow, Some(1));
        assert_eq!(e[2].location, Some((7, 5)));
        assert!(e[2].message.contains("START_OF_FILE, END_OF_FILE"));
        assert_eq!(e[3].flow, Some(2));
    }

    #[test]
    fn syntax_errors_and_odd_documents() {
        let e = one_err("flows:\n  - filePattern: /a\n   kinesisStream: s\n");
        assert!(e.location.is_some(), "{e}");
        let e = one_err("");
        assert!(e.message.contains("no flows"), "{e}");
        let e = one_err("flows: []\n");
        assert!(e.message.contains("no flows"), "{e}");
        let e = one_err("- a\n- b\n");
        assert!(e.message.contains("mapping"), "{e}");
        let e = one_err("flows: {filePattern: /a}\n");
        assert!(e.message.contains("list"), "{e}");
        let e = one_err("flows:\n  - 12\n");
        assert_eq!(e.flow, Some(0));
    }

    #[test]
    fn describe_lists_flows_and_settings() {
        let l = ok(r#"
checkpointFile: /tmp/cp
kinesis.region: us-west-2
flows:
  - filePattern: /var/log/app/*.log
    kinesisStream: app
    partitionKeyOption: DETERMINISTIC
    multiLineStartPattern: '^\d{4}-'
    dataProcessingOptions:
      - {optionName: LOGTOJSON, logFormat: COMBINEDAPACHELOG}
  - {filePattern: /tmp/x.log, outputFile: '-'}
"#);
        let d = l.config.describe();
        for needle in [
            "flows[0]: /var/log/app/*.log",
            "KinesisStream:app",
            "DETERMINISTIC",
            "END_OF_FILE",
            "^\\\\d{4}-",
            "LOGTOJSON logFormat=COMBINEDAPACHELOG",
            "1000 ms age, 5242880 bytes, 500 records",
            "100 batches",
            "100 ms .. 10000 ms",
            "flows[1]: /tmp/x.log",
            "OutputFile:-",
            "checkpoint file:      /tmp/cp",
            "region us-west-2",
        ] {
            assert!(d.contains(needle), "{needle:?} missing from:\n{d}");
        }
    }
}
