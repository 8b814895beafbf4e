//! Configuration: the validated [`Config`] every other stage reads.
//!
//! Loading happens in two stages (see `load.rs`): the file (YAML, or a Java-agent
//! `agent.json` with comments) is read into loosely typed raw values that mirror the
//! file (`raw.rs`), then validated into the types below: compiled globs and regexes,
//! `Duration`s, limits checked against their ranges. Every error is collected and
//! reported at once, before any task starts. Nothing in this module touches the network.
//!
//! One file per concern: `error.rs` (errors, warnings), `fields.rs` (reading values of
//! each kind), `names.rs` (the enums' names), `top.rs` (top-level keys and the entry
//! point), `flow.rs` (a flow), `processors.rs` (`dataProcessingOptions`), `describe.rs`
//! (what `check` prints), `expand.rs` (`${VAR}`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use regex::bytes::Regex;

mod describe;
mod error;
mod expand;
mod fields;
mod flow;
mod load;
mod names;
mod processors;
mod raw;
mod top;

pub use error::{ConfigError, ConfigErrors, Warning};
pub use load::{load, load_str, Loaded};
pub(crate) use processors::parse_delimiter;

/// Default path of the configuration file (SPEC §2).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/kinesis-tail/config.yaml";
/// Where a Java agent keeps its configuration; used when the default path is absent.
pub const JAVA_AGENT_CONFIG_PATH: &str = "/etc/aws-kinesis/agent.json";
/// Default checkpoint file; the Java agent's `/var/run` default vanishes at reboot.
pub const DEFAULT_CHECKPOINT_FILE: &str = "/var/lib/kinesis-tail/checkpoints";

/// Kinesis Data Streams: at most 500 records per PutRecords call.
pub const KINESIS_MAX_RECORDS_PER_CALL: usize = 500;
/// Kinesis Data Streams: at most 5 MiB per PutRecords call (data plus partition keys).
pub const KINESIS_MAX_BYTES_PER_CALL: usize = 5 * 1024 * 1024;
/// Kinesis Data Streams: 1 MiB per record (data plus partition key), unless the stream says more.
pub const KINESIS_MAX_RECORD_BYTES: usize = 1024 * 1024;
/// `maxBufferSizeBytes` of a flow with KPL aggregation when the configuration sets none.
pub const KPL_DEFAULT_BUFFER_BYTES: usize = 1024 * 1024;
/// Kinesis Data Streams: a partition key has at most 256 characters.
pub const KINESIS_MAX_PARTITION_KEY_LEN: usize = 256;
/// Firehose: at most 500 records per PutRecordBatch call.
pub const FIREHOSE_MAX_RECORDS_PER_CALL: usize = 500;
/// Firehose: at most 4 MiB per PutRecordBatch call.
pub const FIREHOSE_MAX_BYTES_PER_CALL: usize = 4 * 1024 * 1024;
/// Firehose: at most 1,000 KiB per record.
pub const FIREHOSE_MAX_RECORD_BYTES: usize = 1000 * 1024;
/// The local sink has no AWS limit; records are still capped so one line cannot take
/// unbounded memory (the Kinesis limit, so a flow behaves the same when moved to Kinesis).
pub const OUTPUT_FILE_MAX_RECORD_BYTES: usize = KINESIS_MAX_RECORD_BYTES;

/// The default of `maxBufferedBytes`: the records the whole process holds in memory, read
/// and not yet acknowledged (batches being filled, queued or in flight, and the copies
/// their requests make). With `publishQueueCapacity` batches of up to 5 MiB each, memory
/// would follow the destination's backlog; the budget keeps it flat (the files are the
/// buffer).
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 4 * 1024 * 1024;

/// The validated configuration of the whole agent.
#[derive(Debug, Clone)]
pub struct Config {
    /// The main file this configuration was read from (for messages).
    pub source: PathBuf,
    /// Every flow, the main file's first, then those of `conf.d/` and `agent.d/`.
    pub flows: Vec<FlowConfig>,
    /// Where checkpoints persist (`checkpointFile`).
    pub checkpoint_file: PathBuf,
    /// Checkpoints of files gone for this long are dropped (`checkpointTimeToLiveDays`, default 7).
    pub checkpoint_ttl: Duration,
    /// CloudWatch metrics (`cloudwatch.*`).
    pub cloudwatch: CloudWatchConfig,
    /// `kinesis.endpoint` / `kinesis.region`.
    pub kinesis: ServiceConfig,
    /// `firehose.endpoint` / `firehose.region`.
    pub firehose: ServiceConfig,
    /// `sts.endpoint`.
    pub sts_endpoint: Option<String>,
    /// `assumeRoleARN`.
    pub assume_role_arn: Option<String>,
    /// `assumeRoleExternalId`.
    pub assume_role_external_id: Option<String>,
    /// `awsAccessKeyId` + `awsSecretAccessKey` (both or neither).
    pub static_credentials: Option<StaticCredentials>,
    /// `maxConnections` (default 50; the HTTP client's pool size per service).
    pub max_connections: usize,
    /// `connectionTimeoutMillis` (default 10 000).
    pub connection_timeout: Duration,
    /// `socketTimeoutMillis` (default 50 000).
    pub socket_timeout: Duration,
    /// `shutdownTimeoutMillis` (default 10 000): how long shutdown waits for acknowledgements.
    pub shutdown_timeout: Duration,
    /// `log.statusReportingPeriodSeconds` (default 30).
    pub status_reporting_period: Duration,
    /// `userAgent`: appended to the SDK's user agent.
    pub user_agent: Option<String>,
    /// `metrics.listenAddress`: Prometheus `/metrics` and `/health`; off when `None`.
    pub metrics_listen_address: Option<SocketAddr>,
    /// `metrics.healthAckTimeoutSeconds` (default 300): a flow with pending data and no
    /// acknowledgement for this long makes `/health` answer 503.
    pub health_ack_timeout: Duration,
    /// `ec2.metadataEndpoint` (default `http://169.254.169.254`).
    pub ec2_metadata_endpoint: String,
    /// `maxOpenFiles` (default 1024): cap on file descriptors held by all readers together.
    pub max_open_files: usize,
    /// `rescanIntervalMillis` (default 10 000): the discovery safety net.
    pub rescan_interval: Duration,
    /// `maxBufferedBytes` (default 4 MiB): the records the whole process holds in memory,
    /// read and not yet acknowledged, with the copies their requests make; shared evenly
    /// by the flows.
    pub max_buffered_bytes: usize,
}

/// `<service>.endpoint` and `<service>.region`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Endpoint override (validated: an absolute http or https URL).
    pub endpoint: Option<String>,
    /// Region override.
    pub region: Option<String>,
}

/// Static keys from the config. `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    /// `awsAccessKeyId`.
    pub access_key_id: String,
    /// `awsSecretAccessKey`.
    pub secret_access_key: String,
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &"<redacted>")
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// `cloudwatch.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudWatchConfig {
    /// `cloudwatch.emitMetrics` (default true, as the Java agent).
    pub emit_metrics: bool,
    /// `cloudwatch.endpoint`.
    pub endpoint: Option<String>,
    /// `cloudwatch.region` (extension; else the default chain's region).
    pub region: Option<String>,
    /// `cloudwatch.namespace` (default `AWSKinesisAgent`).
    pub namespace: String,
    /// `cloudwatch.metricsBufferTimeMillis` (default 30 000, as the Java agent).
    pub buffer_time: Duration,
    /// `cloudwatch.tagInstance`: add the `Instance` dimension.
    pub tag_instance: bool,
}

/// One flow: a file pattern, its framing and processors, and one destination.
#[derive(Debug, Clone)]
pub struct FlowConfig {
    /// Position in the resolved list of flows (0-based), for messages.
    pub index: usize,
    /// Stable identifier used to key checkpoints: `<destination kind>:<name>|<filePattern>`.
    pub id: String,
    /// `filePattern` as written.
    pub file_pattern: String,
    /// `filePattern` compiled (`*`, `?`, `[..]` within a component, `**` across).
    pub glob: globset::GlobMatcher,
    /// Exactly one of `kinesisStream`, `deliveryStream`, `outputFile`.
    pub destination: Destination,
    /// `partitionKeyOption` (default RANDOM).
    pub partition_key: PartitionKeyOption,
    /// `initialPosition` (default END_OF_FILE, for files that existed before the first start).
    pub initial_position: InitialPosition,
    /// `maxBufferAgeMillis` (1 000..=900 000, default 1 000).
    pub max_buffer_age: Duration,
    /// `maxBufferSizeBytes` (1..=5 MiB for Kinesis, 4 MiB for Firehose; default the maximum).
    pub max_buffer_size_bytes: usize,
    /// `maxBufferSizeRecords` (1..=500, default 500).
    pub max_buffer_size_records: usize,
    /// `aggregatedRecordSizeBytes`: KPL aggregate size (Kinesis) or concatenation size (Firehose).
    pub aggregated_record_size_bytes: Option<usize>,
    /// `aggregation` (default NONE).
    pub aggregation: Aggregation,
    /// `multiLineStartPattern`.
    pub multi_line_start_pattern: Option<Regex>,
    /// `skipHeaderLines` (default 0): skipped in every file read from offset 0.
    pub skip_header_lines: usize,
    /// `truncatedRecordTerminator` (default `"\n"` as the Java agent).
    pub truncated_record_terminator: Vec<u8>,
    /// `fileFooterPattern`: matching lines end a file and are not sent.
    pub file_footer_pattern: Option<Regex>,
    /// `dataProcessingOptions`, in order.
    pub processors: Vec<ProcessorConfig>,
    /// `jsonFormat` for records the processors produce (default COMPACT).
    pub json_format: JsonFormat,
    /// `onParseError` (default DROP, the Java behaviour).
    pub on_parse_error: OnParseError,
    /// `retryInitialBackoffMillis` (default 100).
    pub retry_initial_backoff: Duration,
    /// `retryMaxBackoffMillis` (default 10 000).
    pub retry_max_backoff: Duration,
    /// `publishQueueCapacity` (default 100): batches waiting to be sent before reading stops.
    pub publish_queue_capacity: usize,
    /// `minTimeBetweenFilePollsMillis` (default 100): lower bound between reads of one file.
    pub min_time_between_file_polls: Duration,
    /// `recordIdField` (extension; off by default, as the Java agent sends no ID; `None`
    /// when absent or set to an empty string).
    pub record_id_field: Option<String>,
    /// `removeAfterShipped` (extension, default false).
    pub remove_after_shipped: bool,
    /// `maxInFlightRequests` (extension, default 4; 1 for `outputFile`).
    pub max_in_flight: usize,
    /// The flow's Java regexes as written, by the form they were rewritten to (for
    /// messages and `check`).
    pub pattern_sources: std::collections::HashMap<String, String>,
}

impl FlowConfig {
    /// The flow's `CRI` entry (always the first of its processors), if any.
    pub fn container_log(&self) -> Option<ContainerLog> {
        match self.processors.first() {
            Some(ProcessorConfig::Container(c)) => Some(*c),
            _ => None,
        }
    }

    /// A flow from the absolute glob `file_pattern` to `destination` with every other key
    /// at its default, as the loader would give it (for tests, benchmarks and tools).
    ///
    /// # Panics
    ///
    /// When `file_pattern` is not a valid glob.
    pub fn with_defaults(file_pattern: &str, destination: Destination) -> FlowConfig {
        let glob = globset::GlobBuilder::new(file_pattern)
            .literal_separator(true)
            .build()
            .expect("a valid glob")
            .compile_matcher();
        let (max_bytes, max_in_flight) = match destination {
            Destination::KinesisStream(_) => (KINESIS_MAX_BYTES_PER_CALL, 4),
            Destination::DeliveryStream(_) => (FIREHOSE_MAX_BYTES_PER_CALL, 4),
            Destination::OutputFile(_) => (KINESIS_MAX_BYTES_PER_CALL, 1),
        };
        FlowConfig {
            index: 0,
            id: format!("{destination}|{file_pattern}"),
            file_pattern: file_pattern.to_string(),
            glob,
            destination,
            partition_key: PartitionKeyOption::Random,
            initial_position: InitialPosition::EndOfFile,
            max_buffer_age: Duration::from_secs(1),
            max_buffer_size_bytes: max_bytes,
            max_buffer_size_records: 500,
            aggregated_record_size_bytes: None,
            aggregation: Aggregation::None,
            multi_line_start_pattern: None,
            skip_header_lines: 0,
            truncated_record_terminator: b"\n".to_vec(),
            file_footer_pattern: None,
            processors: Vec::new(),
            json_format: JsonFormat::Compact,
            on_parse_error: OnParseError::Drop,
            retry_initial_backoff: Duration::from_millis(100),
            retry_max_backoff: Duration::from_secs(10),
            publish_queue_capacity: 100,
            min_time_between_file_polls: Duration::from_millis(100),
            record_id_field: None,
            remove_after_shipped: false,
            max_in_flight,
            pattern_sources: Default::default(),
        }
    }

    /// The largest record (data plus partition key) the destination accepts, before the
    /// stream's own limit is known from the preflight.
    pub fn default_max_record_bytes(&self) -> usize {
        match self.destination {
            Destination::KinesisStream(_) => KINESIS_MAX_RECORD_BYTES,
            Destination::DeliveryStream(_) => FIREHOSE_MAX_RECORD_BYTES,
            Destination::OutputFile(_) => OUTPUT_FILE_MAX_RECORD_BYTES,
        }
    }
}

/// Where a flow's records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `kinesisStream`: a Kinesis data stream name (or ARN).
    KinesisStream(String),
    /// `deliveryStream`: a Firehose delivery stream name.
    DeliveryStream(String),
    /// `outputFile`: the local sink.
    OutputFile(OutputTarget),
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::KinesisStream(s) => write!(f, "KinesisStream:{s}"),
            Destination::DeliveryStream(s) => write!(f, "DeliveryStream:{s}"),
            Destination::OutputFile(OutputTarget::Stdout) => write!(f, "OutputFile:-"),
            Destination::OutputFile(OutputTarget::Path(p)) => {
                write!(f, "OutputFile:{}", p.display())
            }
        }
    }
}

/// `outputFile`: a path, or `-` for standard output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    /// `-`
    Stdout,
    /// A file, appended to.
    Path(PathBuf),
}

/// `partitionKeyOption`.
#[derive(Debug, Clone)]
pub enum PartitionKeyOption {
    /// `RANDOM` (default): a random key per record.
    Random,
    /// `DETERMINISTIC`: a hash of the record's bytes.
    Deterministic,
    /// Extension `CONSTANT:<key>` (or `{constant: key}`): the same key for every record.
    Constant(String),
    /// Extension `JSONFIELD:<name>`: a top-level field of the (JSON) record; RANDOM when absent.
    JsonField(String),
    /// Extension `REGEX:<pattern>`: the first capture group (or the named group `key`) of the
    /// raw line; RANDOM when it does not match.
    Regex(Regex),
}

impl PartialEq for PartitionKeyOption {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Random, Self::Random) | (Self::Deterministic, Self::Deterministic) => true,
            (Self::Constant(a), Self::Constant(b)) | (Self::JsonField(a), Self::JsonField(b)) => {
                a == b
            }
            (Self::Regex(a), Self::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

/// `initialPosition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialPosition {
    /// `START_OF_FILE`
    StartOfFile,
    /// `END_OF_FILE`: only for files that existed before the agent's first start.
    EndOfFile,
}

/// `aggregation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// `NONE` (default): one Kinesis record per record.
    None,
    /// `KPL`: KPL aggregated records (Kinesis only).
    Kpl,
}

/// `jsonFormat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JsonFormat {
    /// `COMPACT` (default)
    #[default]
    Compact,
    /// `PRETTYPRINT`
    PrettyPrint,
}

/// `onParseError` for LOGTOJSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnParseError {
    /// `drop` (default, the Java behaviour): the line is dropped and counted.
    #[default]
    Drop,
    /// `keepRaw`: the line is sent unchanged.
    KeepRaw,
}

/// One entry of `dataProcessingOptions`.
#[derive(Debug, Clone)]
pub enum ProcessorConfig {
    /// `SINGLELINE`, `parseOptions` may hold `NO_TRIM` and `ESCAPE_NEW_LINE`.
    SingleLine {
        /// `NO_TRIM`: lines are not trimmed before joining.
        no_trim: bool,
        /// `ESCAPE_NEW_LINE`: lines are joined with the two characters `\n`.
        escape_new_line: bool,
    },
    /// `CSVTOJSON`.
    CsvToJson {
        /// `customFieldNames` (required).
        field_names: Vec<String>,
        /// `delimiter` (default `,`): a Java regular expression, as the Java agent splits
        /// with `String.split`.
        delimiter: String,
        /// `quoted` (extension, default false): RFC 4180 quoting (`"a,b"` is one field);
        /// the delimiter is then one character.
        quoted: bool,
        /// `jsonFormat` of this processor (else the flow's).
        json_format: Option<JsonFormat>,
    },
    /// `LOGTOJSON`.
    LogToJson {
        /// `logFormat` (required).
        format: LogFormat,
        /// `matchPattern`: replaces the format's own pattern (a Java regex, rewritten by
        /// `java`).
        match_pattern: Option<regex::Regex>,
        /// `customFieldNames`: replaces the format's field names.
        custom_field_names: Option<Vec<String>>,
        /// `lenient` (extension, default false): this crate's patterns for the Java formats
        /// instead of the Java agent's.
        lenient: bool,
        /// `jsonFormat` of this processor (else the flow's).
        json_format: Option<JsonFormat>,
    },
    /// `ADDMETADATA`.
    AddMetadata {
        /// `metadata`: any JSON value.
        metadata: serde_json::Value,
        /// `timestamp`: add `ts`.
        timestamp: bool,
        /// `nestObjects` (extension, default false): a record that a processor before made
        /// a JSON object becomes `data` as an object, not as a string holding its JSON.
        nest_objects: bool,
        /// `jsonFormat` of this processor (else the flow's).
        json_format: Option<JsonFormat>,
    },
    /// `ADDBRACKETS`: the record between `{` and `}`.
    AddBrackets,
    /// `CRI` (extension): container runtime log files (CRI, Docker `json-file`) decoded
    /// into the application's lines, partial lines joined. Only as the first entry: the
    /// framer does it (see `framing::container`), before multi-line grouping.
    Container(ContainerLog),
    /// `ADDEC2METADATA`.
    AddEc2Metadata {
        /// `metadataTTL` seconds (default 3600).
        ttl: Duration,
    },
}

/// The options of `CRI`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerLog {
    /// `format` (default `auto`).
    pub format: ContainerFormat,
    /// `output` (default `message`).
    pub output: ContainerOutput,
    /// `kubernetesMetadata` (default true): with `output: json`, a `kubernetes` object
    /// with what the file's path names.
    pub kubernetes: bool,
}

/// `format` of `CRI`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContainerFormat {
    /// `auto`: Docker's for a line that starts with `{`, else CRI.
    #[default]
    Auto,
    /// `cri`: `<time> <stream> <P|F> <message>` (containerd, CRI-O).
    Cri,
    /// `docker`: Docker's `json-file` lines.
    Docker,
}

/// `output` of `CRI`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContainerOutput {
    /// `message`: the application's line, as it wrote it.
    #[default]
    Message,
    /// `json`: `{"time":..,"stream":..,"log":..,"kubernetes":{..}}`.
    Json,
}

/// `logFormat` of LOGTOJSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `COMMONAPACHELOG`
    CommonApacheLog,
    /// `COMBINEDAPACHELOG`
    CombinedApacheLog,
    /// `APACHEERRORLOG`
    ApacheErrorLog,
    /// `SYSLOG`
    Syslog,
    /// `RFC3339SYSLOG`
    Rfc3339Syslog,
    /// `RFC5424SYSLOG` (extension)
    Rfc5424Syslog,
    /// `JSON` (extension): the line is a JSON object already.
    Json,
}

impl LogFormat {
    /// The field names of a format (the Java agent's, plus this crate's extensions).
    pub fn default_fields(self) -> &'static [&'static str] {
        const COMMON: &[&str] = &[
            "host", "ident", "authuser", "datetime", "request", "response", "bytes",
        ];
        const COMBINED: &[&str] = &[
            "host", "ident", "authuser", "datetime", "request", "response", "bytes", "referer",
            "agent",
        ];
        const ERROR: &[&str] = &[
            "timestamp",
            "module",
            "severity",
            "processid",
            "threadid",
            "client",
            "message",
        ];
        const SYSLOG: &[&str] = &["timestamp", "hostname", "program", "processid", "message"];
        const RFC5424: &[&str] = &[
            "pri",
            "version",
            "timestamp",
            "hostname",
            "appname",
            "procid",
            "msgid",
            "structureddata",
            "message",
        ];
        match self {
            LogFormat::CommonApacheLog => COMMON,
            LogFormat::CombinedApacheLog => COMBINED,
            LogFormat::ApacheErrorLog => ERROR,
            LogFormat::Syslog | LogFormat::Rfc3339Syslog => SYSLOG,
            LogFormat::Rfc5424Syslog => RFC5424,
            LogFormat::Json => &[],
        }
    }
}
