//! One flow: its file pattern, destination, framing, buffering and delivery keys, and its
//! partition key. Its processors are `processors.rs`.

use std::path::PathBuf;

use serde_yaml::Value;

use super::fields::{key_string, kind_of, millis, untag, Checker, MAX_MILLIS};
use super::names::{AGGREGATIONS, INITIAL_POSITIONS, JSON_FORMATS, ON_PARSE_ERRORS};
use super::processors::processor;
use super::{
    Aggregation, Destination, FlowConfig, InitialPosition, OutputTarget, PartitionKeyOption,
    FIREHOSE_MAX_BYTES_PER_CALL, FIREHOSE_MAX_RECORDS_PER_CALL, FIREHOSE_MAX_RECORD_BYTES,
    KINESIS_MAX_BYTES_PER_CALL, KINESIS_MAX_PARTITION_KEY_LEN, KINESIS_MAX_RECORDS_PER_CALL,
    KINESIS_MAX_RECORD_BYTES, KPL_DEFAULT_BUFFER_BYTES,
};

/// Java agent: `maxBufferAgeMillis` is 1 s ..= 15 min.
pub(super) const BUFFER_AGE_MILLIS: (u64, u64) = (1_000, 900_000);
/// `maxBufferAgeMillis` default (the Java agent's 60 000 made delivery slow; SPEC §3).
pub(super) const DEFAULT_BUFFER_AGE_MILLIS: u64 = 1_000;
/// `publishQueueCapacity` bounds: memory is bounded by it (SPEC §4).
pub(super) const PUBLISH_QUEUE_CAPACITY: (u64, u64) = (1, 10_000);
/// The Java agent's defaults for the retry backoffs and the publish queue.
pub(super) const DEFAULT_RETRY_INITIAL_BACKOFF_MILLIS: u64 = 100;
pub(super) const DEFAULT_RETRY_MAX_BACKOFF_MILLIS: u64 = 10_000;
pub(super) const DEFAULT_PUBLISH_QUEUE_CAPACITY: u64 = 100;
/// Java agent `minTimeBetweenFilePollsMillis` default.
pub(super) const DEFAULT_MIN_TIME_BETWEEN_FILE_POLLS_MILLIS: u64 = 100;
/// Concurrent requests per flow (extension).
pub(super) const DEFAULT_MAX_IN_FLIGHT: u64 = 4;
pub(super) const MAX_IN_FLIGHT: u64 = 64;

/// Per-flow keys of the Java agent that have no meaning here.
pub(super) const JAVA_ONLY_FLOW: &[&str] = &[
    "waitOnFullPublishQueueMillis",
    "waitOnEmptyPublishQueueMillis",
    "waitOnFullRetryQueueMillis",
    "maxTimeBetweenFileTrackerRefreshMillis",
    "log.emitInternalMetrics",
];

pub(super) fn flow(c: &mut Checker, index: usize, v: &Value) -> Option<FlowConfig> {
    let errors_before = c.diag.errors.len();
    let mut f = c.mapping("", v, "a flow")?;

    let file_pattern = match f.get("filePattern") {
        None => {
            c.error(
                "filePattern",
                None,
                "filePattern is required (an absolute path glob, e.g. /var/log/app/*.log)",
            );
            None
        }
        Some(v) => c.non_empty_string("filePattern", v).and_then(|p| {
            if !p.starts_with('/') {
                c.error(
                    "filePattern",
                    Some(v),
                    format!("{p:?} must be an absolute path (starting with /)"),
                );
                return None;
            }
            match globset::GlobBuilder::new(&p)
                .literal_separator(true)
                .build()
            {
                Ok(g) => Some((p, g.compile_matcher())),
                Err(e) => {
                    c.error("filePattern", Some(v), format!("invalid glob: {e}"));
                    None
                }
            }
        }),
    };

    let mut destinations = Vec::new();
    let mut destination_error = false;
    for key in ["kinesisStream", "deliveryStream", "outputFile"] {
        let Some(v) = f.get(key) else { continue };
        let Some(name) = c.non_empty_string(key, v) else {
            destination_error = true;
            continue;
        };
        let name = name.trim().to_string();
        let d = match key {
            "kinesisStream" => Destination::KinesisStream(name),
            "deliveryStream" => Destination::DeliveryStream(name),
            _ if name == "-" => Destination::OutputFile(OutputTarget::Stdout),
            _ => Destination::OutputFile(OutputTarget::Path(PathBuf::from(name))),
        };
        destinations.push((key, d));
    }
    let destination = match destinations.len() {
        1 => destinations.pop().map(|(_, d)| d),
        0 => {
            if !destination_error {
                c.error(
                    "",
                    None,
                    "no destination: set exactly one of kinesisStream, deliveryStream or outputFile",
                );
            }
            None
        }
        _ => {
            let keys: Vec<&str> = destinations.iter().map(|(k, _)| *k).collect();
            c.error(
                keys[1],
                None,
                format!(
                    "{} are mutually exclusive: set exactly one of kinesisStream, deliveryStream or outputFile",
                    keys.join(" and ")
                ),
            );
            None
        }
    };
    let is_kinesis = matches!(destination, Some(Destination::KinesisStream(_)));
    let is_firehose = matches!(destination, Some(Destination::DeliveryStream(_)));
    let is_output_file = matches!(destination, Some(Destination::OutputFile(_)));

    let partition_key = f
        .get("partitionKeyOption")
        .and_then(|v| partition_key(c, v, is_kinesis))
        .unwrap_or(PartitionKeyOption::Random);
    let initial_position = f
        .get("initialPosition")
        .and_then(|v| c.choice("initialPosition", v, INITIAL_POSITIONS))
        .unwrap_or(InitialPosition::EndOfFile);
    let (lo, hi) = BUFFER_AGE_MILLIS;
    let max_buffer_age = millis(c.ranged(
        &mut f,
        "maxBufferAgeMillis",
        lo,
        hi,
        DEFAULT_BUFFER_AGE_MILLIS,
    ));
    let (max_bytes, max_records, max_record) = if is_firehose {
        (
            FIREHOSE_MAX_BYTES_PER_CALL,
            FIREHOSE_MAX_RECORDS_PER_CALL,
            FIREHOSE_MAX_RECORD_BYTES,
        )
    } else {
        (
            KINESIS_MAX_BYTES_PER_CALL,
            KINESIS_MAX_RECORDS_PER_CALL,
            KINESIS_MAX_RECORD_BYTES,
        )
    };
    let aggregation = f
        .get("aggregation")
        .and_then(|v| {
            let a = c.choice("aggregation", v, AGGREGATIONS)?;
            if a == Aggregation::Kpl && destination.is_some() && !is_kinesis {
                c.error(
                    "aggregation",
                    Some(v),
                    "KPL aggregation is only valid for a kinesisStream flow",
                );
            }
            Some(a)
        })
        .unwrap_or(Aggregation::None);
    // KPL batches default to 1 MiB: each becomes one request of aggregates, and a batch in
    // flight holds about four times its size (records, aggregates, request body), so
    // smaller batches keep memory flat at the same speed (figures in the README).
    let default_buffer_bytes = if aggregation == Aggregation::Kpl {
        KPL_DEFAULT_BUFFER_BYTES.min(max_bytes)
    } else {
        max_bytes
    };
    let max_buffer_size_bytes = c.ranged(
        &mut f,
        "maxBufferSizeBytes",
        1,
        max_bytes as u64,
        default_buffer_bytes as u64,
    ) as usize;
    let max_buffer_size_records = c.ranged(
        &mut f,
        "maxBufferSizeRecords",
        1,
        max_records as u64,
        max_records as u64,
    ) as usize;

    let aggregated_record_size_bytes = f.get("aggregatedRecordSizeBytes").and_then(|v| {
        let n = c.uint("aggregatedRecordSizeBytes", v)?;
        if n > max_record as u64 {
            c.error(
                "aggregatedRecordSizeBytes",
                Some(v),
                format!("{n} is out of range 0..={max_record}"),
            );
            return None;
        }
        // 0 turns it off, as in the Java agent.
        if n == 0 {
            return None;
        }
        let n = n as usize;
        // A Kinesis record holds its partition key too: leave room for the longest one.
        let fits = KINESIS_MAX_RECORD_BYTES - KINESIS_MAX_PARTITION_KEY_LEN;
        if is_kinesis && n > fits {
            c.warn(format!(
                "aggregatedRecordSizeBytes {n} leaves no room for the partition key in a 1 MiB Kinesis record; using {fits}"
            ));
            return Some(fits);
        }
        Some(n)
    });

    let multi_line_start_pattern = f
        .get("multiLineStartPattern")
        .and_then(|v| c.bytes_regex("multiLineStartPattern", v));
    let skip_header_lines = c.unchecked(&mut f, "skipHeaderLines", 0, u32::MAX as u64, 0) as usize;
    let truncated_record_terminator = match f.get("truncatedRecordTerminator") {
        None => b"\n".to_vec(),
        Some(v) => match c.string("truncatedRecordTerminator", v) {
            // The Java agent's bound: shorter than the largest record.
            Some(s) if s.len() >= max_record => {
                c.error(
                    "truncatedRecordTerminator",
                    None,
                    format!("must be shorter than the largest record ({max_record} bytes)"),
                );
                b"\n".to_vec()
            }
            Some(s) => s.into_bytes(),
            None => b"\n".to_vec(),
        },
    };
    let file_footer_pattern = f
        .get("fileFooterPattern")
        .and_then(|v| c.bytes_regex("fileFooterPattern", v))
        // Java: `Pattern.MULTILINE`, and `matches()` over the whole trimmed line.
        .and_then(|re| {
            let whole = regex::bytes::Regex::new(&format!(r"\A(?m:{})\z", re.as_str())).ok()?;
            if let Some(src) = c.sources.get(re.as_str()).cloned() {
                c.sources.insert(whole.as_str().to_string(), src);
            }
            Some(whole)
        });

    // The flow's jsonFormat (extension) is the default of processors that set none.
    let json_format = f
        .get("jsonFormat")
        .and_then(|v| c.choice("jsonFormat", v, JSON_FORMATS))
        .unwrap_or_default();
    let mut processors = Vec::new();
    match f.get("dataProcessingOptions").map(untag) {
        None => {}
        Some(Value::Sequence(items)) => {
            for (i, item) in items.iter().enumerate() {
                processors.extend(processor(c, i, item));
            }
        }
        Some(other) => c.error(
            "dataProcessingOptions",
            None,
            format!(
                "expected a list of {{optionName: ...}} entries, not {}",
                kind_of(other)
            ),
        ),
    }
    let on_parse_error = f
        .get("onParseError")
        .and_then(|v| c.choice("onParseError", v, ON_PARSE_ERRORS))
        .unwrap_or_default();

    let retry_initial = c.unchecked(
        &mut f,
        "retryInitialBackoffMillis",
        1,
        MAX_MILLIS,
        DEFAULT_RETRY_INITIAL_BACKOFF_MILLIS,
    );
    let retry_max = c.unchecked(
        &mut f,
        "retryMaxBackoffMillis",
        1,
        MAX_MILLIS,
        DEFAULT_RETRY_MAX_BACKOFF_MILLIS.max(retry_initial),
    );
    // The Java agent does not compare the two; the larger one is the bound.
    let retry_max = if retry_initial > retry_max {
        c.warn(format!(
            "retryInitialBackoffMillis {retry_initial} is greater than retryMaxBackoffMillis ({retry_max}); backoff stays at {retry_initial}"
        ));
        retry_initial
    } else {
        retry_max
    };
    let (lo, hi) = PUBLISH_QUEUE_CAPACITY;
    let publish_queue_capacity = c.unchecked(
        &mut f,
        "publishQueueCapacity",
        lo,
        hi,
        DEFAULT_PUBLISH_QUEUE_CAPACITY,
    ) as usize;
    let min_time_between_file_polls = millis(c.unchecked(
        &mut f,
        "minTimeBetweenFilePollsMillis",
        1,
        MAX_MILLIS,
        DEFAULT_MIN_TIME_BETWEEN_FILE_POLLS_MILLIS,
    ));
    // Off unless configured: the Java agent sends no ID, and its consumers get its bytes.
    let record_id_field = match f.get("recordIdField") {
        None => None,
        Some(v) => c
            .string("recordIdField", v)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
    };
    let remove_after_shipped = c.opt_bool(&mut f, "removeAfterShipped", false);
    let default_in_flight = if is_output_file {
        1
    } else {
        DEFAULT_MAX_IN_FLIGHT
    };
    let max_in_flight = c.ranged(
        &mut f,
        "maxInFlightRequests",
        1,
        MAX_IN_FLIGHT,
        default_in_flight,
    ) as usize;

    c.leftovers(&f, JAVA_ONLY_FLOW, "");

    if c.diag.errors.len() > errors_before {
        return None;
    }
    let (file_pattern, glob) = file_pattern?;
    let destination = destination?;
    Some(FlowConfig {
        pattern_sources: std::mem::take(&mut c.sources),
        index,
        id: format!("{destination}|{file_pattern}"),
        file_pattern,
        glob,
        destination,
        partition_key,
        initial_position,
        max_buffer_age,
        max_buffer_size_bytes,
        max_buffer_size_records,
        aggregated_record_size_bytes,
        aggregation,
        multi_line_start_pattern,
        skip_header_lines,
        truncated_record_terminator,
        file_footer_pattern,
        processors,
        json_format,
        on_parse_error,
        retry_initial_backoff: millis(retry_initial),
        retry_max_backoff: millis(retry_max),
        publish_queue_capacity,
        min_time_between_file_polls,
        record_id_field,
        remove_after_shipped,
        max_in_flight,
    })
}

/// `partitionKeyOption`: `RANDOM`, `DETERMINISTIC`, `CONSTANT:<key>`, `JSONFIELD:<name>`,
/// `REGEX:<pattern>`, or the mapping forms `{constant: k}`, `{jsonField: f}`, `{regex: p}`.
pub(super) fn partition_key(
    c: &mut Checker,
    v: &Value,
    is_kinesis: bool,
) -> Option<PartitionKeyOption> {
    const KEY: &str = "partitionKeyOption";
    const ALLOWED: &str =
        "expected RANDOM, DETERMINISTIC, CONSTANT:<key>, JSONFIELD:<name> or REGEX:<pattern>";
    let (kind, arg) = match untag(v) {
        Value::Mapping(m) => {
            let mut it = m.iter();
            let (Some((k, a)), None) = (it.next(), it.next()) else {
                c.error(
                    KEY,
                    None,
                    "a mapping form must have exactly one key: constant, jsonField or regex",
                );
                return None;
            };
            let kind = key_string(k).unwrap_or_default();
            let arg = c.string(KEY, a)?;
            (kind, Some(arg))
        }
        _ => {
            let s = c.string(KEY, v)?;
            match s.split_once(':') {
                Some((kind, arg)) => (kind.trim().to_string(), Some(arg.to_string())),
                None => (s.trim().to_string(), None),
            }
        }
    };
    let norm: String = kind
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_uppercase)
        .collect();
    match (norm.as_str(), arg) {
        ("RANDOM", None) => Some(PartitionKeyOption::Random),
        ("DETERMINISTIC", None) => Some(PartitionKeyOption::Deterministic),
        ("CONSTANT", Some(key)) => {
            let chars = key.chars().count();
            if chars == 0 || (is_kinesis && chars > KINESIS_MAX_PARTITION_KEY_LEN) {
                c.error(
                    KEY,
                    Some(v),
                    format!("a constant partition key must have 1..={KINESIS_MAX_PARTITION_KEY_LEN} characters"),
                );
                return None;
            }
            Some(PartitionKeyOption::Constant(key))
        }
        ("JSONFIELD", Some(field)) => {
            if field.trim().is_empty() {
                c.error(KEY, Some(v), "JSONFIELD needs a field name");
                return None;
            }
            Some(PartitionKeyOption::JsonField(field.trim().to_string()))
        }
        ("REGEX", Some(pattern)) => match regex::bytes::Regex::new(&pattern) {
            Ok(re) if re.captures_len() > 1 => Some(PartitionKeyOption::Regex(re)),
            Ok(_) => {
                c.error(
                    KEY,
                    Some(v),
                    "REGEX needs a capture group: the key is the first group (or the group named key)",
                );
                None
            }
            Err(e) => {
                c.error(KEY, Some(v), format!("invalid regular expression: {e}"));
                None
            }
        },
        _ => {
            let shown = match untag(v) {
                Value::String(s) => format!("{s:?}"),
                other => kind_of(other).to_string(),
            };
            c.error(KEY, Some(v), format!("invalid value {shown}: {ALLOWED}"));
            None
        }
    }
}
