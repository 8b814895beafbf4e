//! Second stage of loading: the raw value trees of the main file and of `conf.d/` and
//! `agent.d/` → a validated [`Config`].
//!
//! Every key is read through [`Fields`], which records which keys were read: what is left
//! over is an unknown key (a warning naming the closest known key) or a Java-agent setting
//! that has no meaning here (a warning saying it is ignored). Every problem is recorded in
//! [`Diag`] and validation carries on, so the operator sees all errors at once.
//!
//! Lenient value syntax, because Java-agent files are written that way: numbers may be
//! strings (`"5000"`), booleans may be `true/false/yes/no/1/0` in any case and as strings,
//! enums are case-insensitive and `_`/`-` in them are optional, `null` means "not set".
//! `${VAR}` is expanded in every string value (see `expand.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_yaml::Value;

use super::expand::{expand, Env};
use super::load::{ConfigError, Warning};
use super::raw::{locate_key, scalar_hint, Doc};
use super::{
    Aggregation, CloudWatchConfig, Config, Destination, FlowConfig, InitialPosition, JsonFormat,
    LogFormat, OnParseError, OutputTarget, PartitionKeyOption, ProcessorConfig, ServiceConfig,
    StaticCredentials, DEFAULT_CHECKPOINT_FILE, FIREHOSE_MAX_BYTES_PER_CALL,
    FIREHOSE_MAX_RECORDS_PER_CALL, FIREHOSE_MAX_RECORD_BYTES, KINESIS_MAX_BYTES_PER_CALL,
    KINESIS_MAX_PARTITION_KEY_LEN, KINESIS_MAX_RECORDS_PER_CALL, KINESIS_MAX_RECORD_BYTES,
    KPL_DEFAULT_BUFFER_BYTES,
};

/// Java agent: `maxBufferAgeMillis` is 1 s ..= 15 min.
const BUFFER_AGE_MILLIS: (u64, u64) = (1_000, 900_000);
/// `maxBufferAgeMillis` default (the Java agent's 60 000 made delivery slow; SPEC §3).
const DEFAULT_BUFFER_AGE_MILLIS: u64 = 1_000;
/// Upper bound of durations given in milliseconds that have no natural limit (one hour):
/// catches a value given in the wrong unit.
const MAX_MILLIS: u64 = 3_600_000;
/// `publishQueueCapacity` bounds: memory is bounded by it (SPEC §4).
const PUBLISH_QUEUE_CAPACITY: (u64, u64) = (1, 10_000);
/// The Java agent's defaults for the retry backoffs and the publish queue.
const DEFAULT_RETRY_INITIAL_BACKOFF_MILLIS: u64 = 100;
const DEFAULT_RETRY_MAX_BACKOFF_MILLIS: u64 = 10_000;
const DEFAULT_PUBLISH_QUEUE_CAPACITY: u64 = 100;
/// Java agent `minTimeBetweenFilePollsMillis` default.
const DEFAULT_MIN_TIME_BETWEEN_FILE_POLLS_MILLIS: u64 = 100;
/// Concurrent requests per flow (extension).
const DEFAULT_MAX_IN_FLIGHT: u64 = 4;
const MAX_IN_FLIGHT: u64 = 64;
/// A terminator longer than this cannot be meant (the Java agent only requires it to be
/// shorter than a record).
/// Default `cloudwatch.metricsBufferTimeMillis` (the Java agent's).
const DEFAULT_CW_BUFFER_MILLIS: u64 = 30_000;
/// Default `ec2.metadataEndpoint`: the instance metadata service.
pub(crate) const DEFAULT_EC2_METADATA_ENDPOINT: &str = "http://169.254.169.254";

/// Top-level keys of the Java agent that have no meaning here: accepted, warned about.
const JAVA_ONLY_TOP: &[&str] = &[
    "maxSendingThreads",
    "sendingThreadsKeepAliveMillis",
    "sendingThreadsMaxQueueSize",
    "maxSendingThreadsPerCore",
    "userDefinedCredentialsProvider.classname",
    "userDefinedCredentialsProvider.location",
    "cloudwatch.metricsQueueSize",
    "log.emitMetrics",
    "log.emitInternalMetrics",
    "connectionTTLMillis",
    "useTcpKeepAlive",
    "useHttpGzip",
    "assumeRoleDurationSeconds",
];
/// Java `log.*` settings: logs go to stderr here.
const JAVA_LOG_KEYS: &[&str] = &[
    "log.level",
    "log.maxBackupIndex",
    "log.maxFileSize",
    "log.file",
];
/// Per-flow keys of the Java agent that have no meaning here.
const JAVA_ONLY_FLOW: &[&str] = &[
    "waitOnFullPublishQueueMillis",
    "waitOnEmptyPublishQueueMillis",
    "waitOnFullRetryQueueMillis",
    "maxTimeBetweenFileTrackerRefreshMillis",
    "log.emitInternalMetrics",
];
/// Top-level prefixes that may also be written as nested mappings.
const NESTED_PREFIXES: &[&str] = &[
    "cloudwatch",
    "kinesis",
    "firehose",
    "sts",
    "log",
    "metrics",
    "ec2",
    "userDefinedCredentialsProvider",
];

/// Errors and warnings collected across all files.
#[derive(Debug, Default)]
pub(crate) struct Diag {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<Warning>,
}

/// The keys of one mapping, and which of them were read.
struct Fields<'v> {
    entries: Vec<(String, &'v Value)>,
    used: Vec<bool>,
    known: Vec<&'static str>,
}

impl<'v> Fields<'v> {
    fn new(entries: Vec<(String, &'v Value)>) -> Self {
        let used = vec![false; entries.len()];
        Fields {
            entries,
            used,
            known: Vec::new(),
        }
    }

    /// The value of `key`; `None` when absent or `null`.
    /// The value of `key` without reading it (it still counts as not read).
    fn peek(&self, key: &str) -> Option<&'v Value> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        Some(untag(self.entries[i].1))
    }

    fn get(&mut self, key: &'static str) -> Option<&'v Value> {
        self.known.push(key);
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        self.used[i] = true;
        let v = untag(self.entries[i].1);
        (!v.is_null()).then_some(v)
    }

    /// Keys present but never read, with their values.
    fn unused(&self) -> impl Iterator<Item = (&str, &'v Value)> + '_ {
        self.entries
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| !**used)
            .map(|((k, v), _)| (k.as_str(), *v))
    }
}

fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

fn key_string(k: &Value) -> Option<String> {
    match untag(k) {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some("null".to_string()),
        _ => None,
    }
}

fn kind_of(v: &Value) -> &'static str {
    match untag(v) {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Levenshtein distance, case-insensitive (strsim's, already built for clap).
fn distance(a: &str, b: &str) -> usize {
    strsim::levenshtein(&a.to_lowercase(), &b.to_lowercase())
}

/// The known key an unknown key was most likely meant to be.
fn closest<'k>(unknown: &str, known: &[&'k str]) -> Option<&'k str> {
    if unknown.len() > 200 {
        return None;
    }
    if let Some(k) = known
        .iter()
        .find(|k| k.rsplit('.').next() == Some(unknown) && k.contains('.'))
    {
        return Some(k);
    }
    let limit = (unknown.chars().count() / 3).max(2);
    known
        .iter()
        .map(|k| (distance(unknown, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Reads values of one document, for one flow or for the top level.
struct Checker<'a> {
    doc: &'a Doc,
    env: Env<'a>,
    diag: &'a mut Diag,
    flow: Option<usize>,
    /// Java regexes of the current flow as written, by their rewritten form.
    sources: std::collections::HashMap<String, String>,
}

impl Checker<'_> {
    fn error(&mut self, key: &str, raw: Option<&Value>, message: impl Into<String>) {
        let hint = raw.and_then(scalar_hint);
        let location = self.locate(key, hint.as_deref());
        self.diag.errors.push(ConfigError {
            file: self.doc.path.clone(),
            location,
            flow: self.flow,
            key: (!key.is_empty()).then(|| key.to_string()),
            message: message.into(),
        });
    }

    fn locate(&self, key: &str, hint: Option<&str>) -> Option<(usize, usize)> {
        // `dataProcessingOptions[1].delimiter` is written as `delimiter`.
        let last = key.rsplit(['.', ']']).next().unwrap_or(key);
        locate_key(&self.doc.text, key, hint).or_else(|| {
            if last != key {
                locate_key(&self.doc.text, last, hint)
            } else {
                None
            }
        })
    }

    fn warn(&mut self, message: String) {
        let message = match self.flow {
            Some(i) => format!("flows[{i}]: {message}"),
            None => message,
        };
        self.diag.warnings.push(Warning {
            file: self.doc.path.clone(),
            message,
        });
    }

    /// The keys of a mapping; `None` (and an error) for anything else.
    fn mapping<'v>(&mut self, key: &str, v: &'v Value, what: &str) -> Option<Fields<'v>> {
        let Value::Mapping(m) = untag(v) else {
            self.error(
                key,
                None,
                format!("{what} must be a mapping, not {}", kind_of(v)),
            );
            return None;
        };
        let mut entries = Vec::with_capacity(m.len());
        for (k, v) in m {
            match key_string(k) {
                Some(k) => entries.push((k, v)),
                None => self.error(key, None, "keys must be strings"),
            }
        }
        Some(Fields::new(entries))
    }

    fn expand(&mut self, key: &str, raw: &Value, s: &str) -> Option<String> {
        match expand(s, self.env) {
            Ok(s) => Some(s.into_owned()),
            Err(e) => {
                self.error(key, Some(raw), e.to_string());
                None
            }
        }
    }

    /// A string value (numbers and booleans are taken as written).
    fn string(&mut self, key: &str, v: &Value) -> Option<String> {
        match untag(v) {
            Value::String(s) => self.expand(key, v, s),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                self.error(
                    key,
                    None,
                    format!("expected a string, not {}", kind_of(other)),
                );
                None
            }
        }
    }

    fn non_empty_string(&mut self, key: &str, v: &Value) -> Option<String> {
        let s = self.string(key, v)?;
        if s.trim().is_empty() {
            self.error(key, Some(v), "must not be empty");
            return None;
        }
        Some(s)
    }

    /// A whole number ≥ 0, also given as a string.
    fn uint(&mut self, key: &str, v: &Value) -> Option<u64> {
        let bad = |what: &str| format!("expected a whole number, not {what}");
        match untag(v) {
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    return Some(u);
                }
                if n.as_i64().is_some() {
                    self.error(key, Some(v), format!("must not be negative (got {n})"));
                    return None;
                }
                match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && (0.0..9.0e15).contains(&f) => Some(f as u64),
                    _ => {
                        self.error(key, Some(v), bad(&n.to_string()));
                        None
                    }
                }
            }
            Value::String(s) => {
                let s = self.expand(key, v, s)?;
                let t = s.trim();
                match java_decode(t) {
                    Some(n) if n >= 0 => {
                        if t.parse::<u64>().is_err() {
                            self.warn(format!(
                                "{key}: {t:?} is read as {n}, as the Java agent reads it (Integer.decode)"
                            ));
                        }
                        Some(n as u64)
                    }
                    Some(_) => {
                        self.error(key, Some(v), format!("must not be negative (got {t})"));
                        None
                    }
                    None => {
                        self.error(key, Some(v), bad(&format!("{t:?}")));
                        None
                    }
                }
            }
            other => {
                self.error(key, None, bad(kind_of(other)));
                None
            }
        }
    }

    fn bool(&mut self, key: &str, v: &Value) -> Option<bool> {
        const ALLOWED: &str = "expected true/false/yes/no/t/f/y/n/1/0";
        match untag(v) {
            Value::Bool(b) => Some(*b),
            Value::Number(n) if n.as_u64() == Some(1) => Some(true),
            Value::Number(n) if n.as_u64() == Some(0) => Some(false),
            Value::String(s) => {
                let s = self.expand(key, v, s)?;
                match s.trim().to_ascii_lowercase().as_str() {
                    // The Java agent's BooleanConverter.
                    "true" | "yes" | "t" | "y" | "1" => Some(true),
                    "false" | "no" | "f" | "n" | "0" => Some(false),
                    _ => {
                        self.error(key, Some(v), format!("{ALLOWED}, not {s:?}"));
                        None
                    }
                }
            }
            other => {
                self.error(key, Some(v), format!("{ALLOWED}, not {}", kind_of(other)));
                None
            }
        }
    }

    /// One of `options` (canonical names), case-insensitive, `_` and `-` optional.
    fn choice<T: Copy>(&mut self, key: &str, v: &Value, options: &[(&str, T)]) -> Option<T> {
        let s = self.string(key, v)?;
        let norm = |x: &str| -> String {
            x.chars()
                .filter(|c| *c != '_' && *c != '-')
                .flat_map(char::to_uppercase)
                .collect()
        };
        let wanted = norm(s.trim());
        if let Some((_, t)) = options.iter().find(|(name, _)| norm(name) == wanted) {
            return Some(*t);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        self.error(
            key,
            Some(v),
            format!("invalid value {s:?}: expected one of {}", names.join(", ")),
        );
        None
    }

    /// An optional whole number in `lo..=hi`; `default` when absent or invalid.
    fn ranged(&mut self, f: &mut Fields, key: &'static str, lo: u64, hi: u64, default: u64) -> u64 {
        let Some(v) = f.get(key) else {
            return default;
        };
        let Some(n) = self.uint(key, v) else {
            return default;
        };
        if n < lo || n > hi {
            self.error(key, Some(v), format!("{n} is out of range {lo}..={hi}"));
            return default;
        }
        n
    }

    /// A number the Java agent reads without checking its range: accepted whatever it is
    /// (negative too); outside `lo..=hi`, what works here, it is a warning and the nearest
    /// bound is used.
    fn unchecked(
        &mut self,
        f: &mut Fields,
        key: &'static str,
        lo: u64,
        hi: u64,
        default: u64,
    ) -> u64 {
        let Some(v) = f.get(key) else {
            return default;
        };
        let n: Option<i128> = match untag(v) {
            Value::Number(n) => n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from))
                .or_else(|| n.as_f64().filter(|x| x.fract() == 0.0).map(|x| x as i128)),
            Value::String(s) => match self.expand(key, v, s) {
                Some(s) => java_decode(s.trim()).map(i128::from),
                None => return default,
            },
            _ => None,
        };
        let Some(n) = n else {
            self.error(
                key,
                Some(v),
                format!("expected a whole number, not {}", kind_of(untag(v))),
            );
            return default;
        };
        if n < i128::from(lo) || n > i128::from(hi) {
            let used = n.clamp(i128::from(lo), i128::from(hi)) as u64;
            self.warn(format!(
                "{key}: {n} is outside {lo}..={hi}, so {used} is used (the Java agent does not check this key)"
            ));
            return used;
        }
        n as u64
    }

    fn opt_bool(&mut self, f: &mut Fields, key: &'static str, default: bool) -> bool {
        f.get(key)
            .and_then(|v| self.bool(key, v))
            .unwrap_or(default)
    }

    /// An optional string; an empty string counts as not set (as in the Java agent).
    fn opt_string(&mut self, f: &mut Fields, key: &'static str) -> Option<String> {
        let v = f.get(key)?;
        self.string(key, v).filter(|s| !s.is_empty())
    }

    /// An endpoint: an absolute http(s) URL. A bare host name (as the Java agent's
    /// documentation writes them) means https. Empty means not set: an empty endpoint
    /// given to the AWS SDK makes it panic.
    fn endpoint(&mut self, f: &mut Fields, key: &'static str) -> Option<String> {
        let v = f.get(key)?;
        let s = self.string(key, v)?;
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        let lower = s.to_ascii_lowercase();
        let url = if lower.starts_with("http://") || lower.starts_with("https://") {
            s.to_string()
        } else if s.contains("://") {
            self.error(
                key,
                Some(v),
                format!("{s:?} must be an http:// or https:// URL"),
            );
            return None;
        } else {
            format!("https://{s}")
        };
        let after_scheme = &url[url.find("://").map_or(0, |i| i + 3)..];
        let host = after_scheme
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default();
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_:[]@".contains(c));
        if !host_ok || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.error(
                key,
                Some(v),
                format!("{s:?} is not a valid endpoint: expected an absolute URL such as https://kinesis.us-east-1.amazonaws.com"),
            );
            return None;
        }
        Some(url)
    }

    fn region(&mut self, f: &mut Fields, key: &'static str) -> Option<String> {
        let v = f.get(key)?;
        let s = self.string(key, v)?;
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            self.error(
                key,
                Some(v),
                format!("{s:?} is not a region name (e.g. us-east-1)"),
            );
            return None;
        }
        Some(s.to_string())
    }

    fn bytes_regex(&mut self, key: &str, v: &Value) -> Option<regex::bytes::Regex> {
        let s = self.string(key, v)?;
        if s.is_empty() {
            return None;
        }
        // A Java regex, read with Java's meaning of `.`, `\w`, `\d`, `\s`.
        match regex::bytes::Regex::new(&crate::java::translate(&s)) {
            Ok(r) => {
                self.sources.insert(r.as_str().to_string(), s);
                Some(r)
            }
            Err(e) => {
                self.error(key, Some(v), format!("invalid regular expression: {e}"));
                None
            }
        }
    }

    fn string_list(&mut self, key: &str, v: &Value) -> Option<Vec<String>> {
        match untag(v) {
            Value::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.string(key, item)?);
                }
                Some(out)
            }
            // "a,b,c" is accepted for a list of names.
            Value::String(_) => {
                let s = self.string(key, v)?;
                Some(
                    s.split(',')
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty())
                        .collect(),
                )
            }
            other => {
                self.error(
                    key,
                    None,
                    format!("expected a list of strings, not {}", kind_of(other)),
                );
                None
            }
        }
    }

    /// Warns about every key of `f` that was not read.
    fn leftovers(&mut self, f: &Fields, java_only: &[&str], within: &str) {
        let unused: Vec<String> = f.unused().map(|(k, _)| k.to_string()).collect();
        for k in unused {
            if JAVA_LOG_KEYS.contains(&k.as_str()) && self.flow.is_none() {
                self.warn(format!(
                    "{k:?} is a Java agent setting; ignored (logs go to stderr: use --log-level or RUST_LOG)"
                ));
            } else if java_only.contains(&k.as_str()) {
                self.warn(format!("{k:?} is a Java agent setting; ignored"));
            } else {
                let mut known = f.known.clone();
                known.sort_unstable();
                known.dedup();
                let message = match closest(&k, &known) {
                    Some(c) => format!("unknown key {k:?}{within} ignored; did you mean {c:?}?"),
                    None => format!("unknown key {k:?}{within} ignored"),
                };
                self.warn(message);
            }
        }
    }
}

/// The top-level keys, with nested forms (`cloudwatch: {emitMetrics: true}`) flattened to
/// their dotted names.
fn top_fields<'v>(c: &mut Checker, v: &'v Value) -> Option<Fields<'v>> {
    let v = untag(v);
    if v.is_null() {
        return Some(Fields::new(Vec::new()));
    }
    let plain = c.mapping("", v, "the configuration")?;
    let mut entries: Vec<(String, &'v Value)> = Vec::new();
    let mut push = |c: &mut Checker, k: String, v: &'v Value| {
        if entries.iter().any(|(e, _)| *e == k) {
            c.error(
                &k,
                None,
                "given twice (once dotted and once nested); keep one",
            );
        } else {
            entries.push((k, v));
        }
    };
    for (k, val) in plain.entries {
        match untag(val) {
            Value::Mapping(m) if NESTED_PREFIXES.contains(&k.as_str()) => {
                for (k2, v2) in m {
                    match key_string(k2) {
                        Some(k2) => push(c, format!("{k}.{k2}"), v2),
                        None => c.error(&k, None, "keys must be strings"),
                    }
                }
            }
            _ => push(c, k, val),
        }
    }
    Some(Fields::new(entries))
}

/// The `flows` list of a mapping (already read from `f`).
fn flow_list<'v>(c: &mut Checker, v: Option<&'v Value>) -> Vec<&'v Value> {
    match v.map(untag) {
        None => Vec::new(),
        Some(Value::Sequence(items)) => items.iter().collect(),
        Some(other) => {
            c.error(
                "flows",
                None,
                format!("flows must be a list of flows, not {}", kind_of(other)),
            );
            Vec::new()
        }
    }
}

/// The flows of a `conf.d/` or `agent.d/` file: a mapping with `flows`, or a bare list.
fn extra_flows<'v>(doc: &'v Doc, env: Env, diag: &mut Diag) -> Vec<&'v Value> {
    let mut c = Checker {
        doc,
        env,
        diag,
        flow: None,
        sources: Default::default(),
    };
    match untag(&doc.value) {
        Value::Null => Vec::new(),
        Value::Sequence(items) => items.iter().collect(),
        Value::Mapping(_) => {
            let Some(mut f) = top_fields(&mut c, &doc.value) else {
                return Vec::new();
            };
            let flows = f.get("flows");
            let others: Vec<String> = f.unused().map(|(k, _)| format!("{k:?}")).collect();
            if !others.is_empty() {
                c.warn(format!(
                    "only flows are read from conf.d files; ignored: {}",
                    others.join(", ")
                ));
            }
            flow_list(&mut c, flows)
        }
        other => {
            c.error(
                "",
                None,
                format!("expected a mapping with flows, not {}", kind_of(other)),
            );
            Vec::new()
        }
    }
}

/// Validates everything. `main` is `None` when the main file could not be parsed (its
/// error is already in `diag`); the flows of `extras` are still checked then.
pub(crate) fn validate(
    main: Option<&Doc>,
    extras: &[Doc],
    env: Env,
    diag: &mut Diag,
) -> Option<Config> {
    let mut flows_raw: Vec<(&Doc, &Value)> = Vec::new();
    let mut top = None;
    if let Some(doc) = main {
        let mut c = Checker {
            doc,
            env,
            diag: &mut *diag,
            flow: None,
            sources: Default::default(),
        };
        if let Some(mut f) = top_fields(&mut c, &doc.value) {
            let flows = f.get("flows");
            flows_raw.extend(flow_list(&mut c, flows).into_iter().map(|v| (doc, v)));
            top = Some(top_level(&mut c, &mut f));
            c.leftovers(&f, JAVA_ONLY_TOP, "");
        }
    }
    for doc in extras {
        let list = extra_flows(doc, env, diag);
        flows_raw.extend(list.into_iter().map(|v| (doc, v)));
    }

    let mut flows = Vec::with_capacity(flows_raw.len());
    for (index, &(doc, v)) in flows_raw.iter().enumerate() {
        let mut c = Checker {
            doc,
            env,
            diag: &mut *diag,
            flow: Some(index),
            sources: Default::default(),
        };
        if let Some(flow) = flow(&mut c, index, v) {
            flows.push((doc, flow));
        }
    }
    // Two flows with one id would share checkpoints.
    for i in 0..flows.len() {
        if let Some(j) = (0..i).find(|&j| flows[j].1.id == flows[i].1.id) {
            let (doc, flow) = (flows[i].0, &flows[i].1);
            let mut c = Checker {
                doc,
                env,
                diag: &mut *diag,
                flow: Some(flow.index),
                sources: Default::default(),
            };
            let message = format!(
                "same filePattern and destination as flows[{}] ({}): merge them",
                flows[j].1.index, flow.id
            );
            c.error("filePattern", None, message);
        }
    }

    let mut config = top?;
    if let Some(doc) = main {
        let flows_already_wrong = diag
            .errors
            .iter()
            .any(|e| e.flow.is_none() && e.key.as_deref() == Some("flows"));
        if flows_raw.is_empty() && !flows_already_wrong {
            let mut c = Checker {
                doc,
                env,
                diag: &mut *diag,
                flow: None,
                sources: Default::default(),
            };
            c.error(
                "flows",
                None,
                "no flows configured: flows is required (a list of {filePattern, kinesisStream | deliveryStream | outputFile, ...})",
            );
        }
    }
    if !diag.errors.is_empty() {
        return None;
    }
    config.flows = flows.into_iter().map(|(_, f)| f).collect();
    Some(config)
}

fn millis(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn top_level(c: &mut Checker, f: &mut Fields) -> Config {
    let checkpoint_file = f
        .get("checkpointFile")
        .and_then(|v| c.non_empty_string("checkpointFile", v))
        .map_or_else(|| PathBuf::from(DEFAULT_CHECKPOINT_FILE), PathBuf::from);
    let ttl_days = c.unchecked(f, "checkpointTimeToLiveDays", 1, 36_500, 7);

    let cloudwatch = CloudWatchConfig {
        emit_metrics: c.opt_bool(f, "cloudwatch.emitMetrics", true),
        endpoint: c.endpoint(f, "cloudwatch.endpoint"),
        region: c.region(f, "cloudwatch.region"),
        namespace: f
            .get("cloudwatch.namespace")
            .and_then(|v| c.non_empty_string("cloudwatch.namespace", v))
            .unwrap_or_else(|| "AWSKinesisAgent".to_string()),
        buffer_time: millis(c.unchecked(
            f,
            "cloudwatch.metricsBufferTimeMillis",
            1_000,
            MAX_MILLIS,
            DEFAULT_CW_BUFFER_MILLIS,
        )),
        tag_instance: c.opt_bool(f, "cloudwatch.tagInstance", false),
    };
    let kinesis = ServiceConfig {
        endpoint: c.endpoint(f, "kinesis.endpoint"),
        region: c.region(f, "kinesis.region"),
    };
    let firehose = ServiceConfig {
        endpoint: c.endpoint(f, "firehose.endpoint"),
        region: c.region(f, "firehose.region"),
    };
    let sts_endpoint = c.endpoint(f, "sts.endpoint");

    let assume_role_arn = c.opt_string(f, "assumeRoleARN");
    if let Some(arn) = &assume_role_arn {
        if !arn.starts_with("arn:") {
            let v = f.get("assumeRoleARN");
            c.error(
                "assumeRoleARN",
                v,
                format!("{arn:?} is not a role ARN (arn:aws:iam::<account>:role/<name>)"),
            );
        }
    }
    let assume_role_external_id = c.opt_string(f, "assumeRoleExternalId");
    if assume_role_external_id.is_some() && assume_role_arn.is_none() {
        c.warn("\"assumeRoleExternalId\" is ignored without assumeRoleARN".to_string());
    }
    let access = c.opt_string(f, "awsAccessKeyId");
    let secret = c.opt_string(f, "awsSecretAccessKey");
    let static_credentials = match (access, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Some(StaticCredentials {
            access_key_id,
            secret_access_key,
        }),
        (None, None) => None,
        (Some(_), None) => {
            c.error(
                "awsSecretAccessKey",
                None,
                "awsAccessKeyId is set but awsSecretAccessKey is not: give both or neither",
            );
            None
        }
        (None, Some(_)) => {
            c.error(
                "awsAccessKeyId",
                None,
                "awsSecretAccessKey is set but awsAccessKeyId is not: give both or neither",
            );
            None
        }
    };

    // As the Java agent: at least as many connections as sending threads.
    let default_connections = f
        .peek("maxSendingThreads")
        .and_then(|v| match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
        .map_or(50, |n| n.clamp(50, 10_000));
    let max_connections = c.unchecked(f, "maxConnections", 1, 10_000, default_connections) as usize;
    let connection_timeout =
        millis(c.unchecked(f, "connectionTimeoutMillis", 1, MAX_MILLIS, 10_000));
    let socket_timeout = millis(c.unchecked(f, "socketTimeoutMillis", 1, MAX_MILLIS, 50_000));
    let shutdown_timeout = millis(c.unchecked(f, "shutdownTimeoutMillis", 0, MAX_MILLIS, 10_000));
    let status_reporting_period =
        Duration::from_secs(c.unchecked(f, "log.statusReportingPeriodSeconds", 1, 86_400, 30));
    let user_agent = c.opt_string(f, "userAgent");
    let metrics_listen_address = f.get("metrics.listenAddress").and_then(|v| {
        let s = c.string("metrics.listenAddress", v)?;
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        match s.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                c.error(
                    "metrics.listenAddress",
                    Some(v),
                    format!("{s:?} is not an address: expected IP:port, e.g. 127.0.0.1:9780"),
                );
                None
            }
        }
    });
    let health_ack_timeout =
        Duration::from_secs(c.ranged(f, "metrics.healthAckTimeoutSeconds", 1, 86_400, 300));
    let ec2_metadata_endpoint = c
        .endpoint(f, "ec2.metadataEndpoint")
        .unwrap_or_else(|| DEFAULT_EC2_METADATA_ENDPOINT.to_string());
    let max_open_files = c.ranged(f, "maxOpenFiles", 1, 1_000_000, 1024) as usize;
    let rescan_interval = millis(c.ranged(f, "rescanIntervalMillis", 100, MAX_MILLIS, 10_000));

    Config {
        source: c.doc.path.clone(),
        flows: Vec::new(),
        checkpoint_file,
        checkpoint_ttl: Duration::from_secs(ttl_days * 86_400),
        cloudwatch,
        kinesis,
        firehose,
        sts_endpoint,
        assume_role_arn,
        assume_role_external_id,
        static_credentials,
        max_connections,
        connection_timeout,
        socket_timeout,
        shutdown_timeout,
        status_reporting_period,
        user_agent,
        metrics_listen_address,
        health_ack_timeout,
        ec2_metadata_endpoint,
        max_open_files,
        rescan_interval,
    }
}

const INITIAL_POSITIONS: &[(&str, InitialPosition)] = &[
    ("START_OF_FILE", InitialPosition::StartOfFile),
    ("END_OF_FILE", InitialPosition::EndOfFile),
];
const AGGREGATIONS: &[(&str, Aggregation)] =
    &[("NONE", Aggregation::None), ("KPL", Aggregation::Kpl)];
const JSON_FORMATS: &[(&str, JsonFormat)] = &[
    ("COMPACT", JsonFormat::Compact),
    ("PRETTYPRINT", JsonFormat::PrettyPrint),
];
const ON_PARSE_ERRORS: &[(&str, OnParseError)] = &[
    ("drop", OnParseError::Drop),
    ("keepRaw", OnParseError::KeepRaw),
];
const LOG_FORMATS: &[(&str, LogFormat)] = &[
    ("COMMONAPACHELOG", LogFormat::CommonApacheLog),
    ("COMBINEDAPACHELOG", LogFormat::CombinedApacheLog),
    ("APACHEERRORLOG", LogFormat::ApacheErrorLog),
    ("SYSLOG", LogFormat::Syslog),
    ("RFC3339SYSLOG", LogFormat::Rfc3339Syslog),
    ("RFC5424SYSLOG", LogFormat::Rfc5424Syslog),
    ("JSON", LogFormat::Json),
];

#[derive(Clone, Copy)]
enum ProcessorKind {
    SingleLine,
    CsvToJson,
    LogToJson,
    AddMetadata,
    AddBrackets,
    AddEc2Metadata,
}

const PROCESSOR_KINDS: &[(&str, ProcessorKind)] = &[
    ("SINGLELINE", ProcessorKind::SingleLine),
    ("CSVTOJSON", ProcessorKind::CsvToJson),
    ("LOGTOJSON", ProcessorKind::LogToJson),
    ("ADDMETADATA", ProcessorKind::AddMetadata),
    ("ADDBRACKETS", ProcessorKind::AddBrackets),
    ("ADDEC2METADATA", ProcessorKind::AddEc2Metadata),
];

fn flow(c: &mut Checker, index: usize, v: &Value) -> Option<FlowConfig> {
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
fn partition_key(c: &mut Checker, v: &Value, is_kinesis: bool) -> Option<PartitionKeyOption> {
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

/// The CSV delimiter: one ASCII character, written plainly (`"|"`, a tab) or as a Java
/// regex escape of one character (`"\\t"`, `"\\|"`).
pub(crate) fn parse_delimiter(s: &str) -> Option<u8> {
    let chars: Vec<char> = s.chars().collect();
    let c = match chars.as_slice() {
        [c] => *c,
        ['\\', 't'] => '\t',
        ['\\', e] if e.is_ascii_punctuation() => *e,
        _ => return None,
    };
    (c.is_ascii() && !matches!(c, '\n' | '\r' | '"')).then_some(c as u8)
}

fn processor(c: &mut Checker, i: usize, v: &Value) -> Option<ProcessorConfig> {
    let at = format!("dataProcessingOptions[{i}]");
    let key = |k: &str| format!("{at}.{k}");
    let mut f = c.mapping(&at, v, "a dataProcessingOptions entry")?;
    let names: Vec<&str> = PROCESSOR_KINDS.iter().map(|(n, _)| *n).collect();
    let kind = match f.get("optionName") {
        None => {
            c.error(
                &key("optionName"),
                None,
                format!("optionName is required: one of {}", names.join(", ")),
            );
            None
        }
        Some(n) => c.choice(&key("optionName"), n, PROCESSOR_KINDS),
    };
    let json_format = f
        .get("jsonFormat")
        .and_then(|jf| c.choice(&key("jsonFormat"), jf, JSON_FORMATS));
    let mut flag = |c: &mut Checker, name: &'static str| {
        f.get(name)
            .and_then(|v| c.bool(&key(name), v))
            .unwrap_or(false)
    };
    let quoted = flag(c, "quoted");
    let lenient = flag(c, "lenient");
    let nest_objects = flag(c, "nestObjects");
    let out = match kind? {
        ProcessorKind::SingleLine => {
            let (mut no_trim, mut escape_new_line) = (false, false);
            if let Some(v) = f.get("parseOptions") {
                let k = key("parseOptions");
                let opts: Vec<String> = match untag(v) {
                    Value::String(_) => c
                        .string(&k, v)
                        .map(|s| {
                            s.split([',', '|', ' ', '\t'])
                                .filter(|p| !p.is_empty())
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default(),
                    _ => c.string_list(&k, v).unwrap_or_default(),
                };
                for o in opts {
                    match o.trim().to_ascii_uppercase().as_str() {
                        "NO_TRIM" => no_trim = true,
                        "ESCAPE_NEW_LINE" => escape_new_line = true,
                        // The Java agent ignores other options.
                        _ => c.warn(format!(
                            "{k}: unknown parse option {o:?} is ignored (known: NO_TRIM, ESCAPE_NEW_LINE)"
                        )),
                    }
                }
            }
            Some(ProcessorConfig::SingleLine {
                no_trim,
                escape_new_line,
            })
        }
        ProcessorKind::CsvToJson => {
            let field_names = match f.get("customFieldNames") {
                None => {
                    c.error(
                        &key("customFieldNames"),
                        None,
                        "customFieldNames is required for CSVTOJSON (the column names, in order)",
                    );
                    None
                }
                Some(v) => c.string_list(&key("customFieldNames"), v),
            };
            let delimiter = match f.get("delimiter") {
                None => Some(",".to_string()),
                Some(v) => c.string(&key("delimiter"), v).and_then(|s| {
                    if quoted && parse_delimiter(&s).is_none() {
                        c.error(
                            &key("delimiter"),
                            Some(v),
                            format!("with quoted: true the delimiter must be one character (such as \",\", \"|\", \"\\\\t\"); got {s:?}"),
                        );
                        return None;
                    }
                    match crate::java::compile(&s) {
                        Ok(_) => Some(s),
                        Err(e) => {
                            c.error(
                                &key("delimiter"),
                                Some(v),
                                format!("the delimiter is a Java regular expression and {s:?} is not one: {e}"),
                            );
                            None
                        }
                    }
                }),
            };
            Some(ProcessorConfig::CsvToJson {
                field_names: field_names?,
                delimiter: delimiter?,
                quoted,
                json_format,
            })
        }
        ProcessorKind::LogToJson => {
            let format = match f.get("logFormat") {
                None => {
                    let formats: Vec<&str> = LOG_FORMATS.iter().map(|(n, _)| *n).collect();
                    c.error(
                        &key("logFormat"),
                        None,
                        format!(
                            "logFormat is required for LOGTOJSON: one of {}",
                            formats.join(", ")
                        ),
                    );
                    None
                }
                Some(v) => c.choice(&key("logFormat"), v, LOG_FORMATS),
            };
            let match_pattern = f.get("matchPattern").and_then(|v| {
                let s = c.string(&key("matchPattern"), v)?;
                match crate::java::compile(&s) {
                    Ok(r) => {
                        c.sources.insert(r.as_str().to_string(), s);
                        Some(r)
                    }
                    Err(e) => {
                        c.error(
                            &key("matchPattern"),
                            Some(v),
                            format!("invalid regular expression: {e}"),
                        );
                        None
                    }
                }
            });
            let custom_field_names = f
                .get("customFieldNames")
                .and_then(|v| c.string_list(&key("customFieldNames"), v));
            if let (Some(re), Some(names)) = (&match_pattern, &custom_field_names) {
                let groups = re.captures_len() - 1;
                if names.len() != groups {
                    // The Java agent loads this and then drops every line.
                    c.warn(format!(
                        "{}: {} field names but matchPattern has {groups} capture groups: \
                         name i takes group i, missing groups are null (the Java agent \
                         drops every line of such a flow)",
                        key("customFieldNames"),
                        names.len()
                    ));
                }
            }
            // As the Java agent: without matchPattern, names replace a Java format's
            // fields one for one.
            if let (None, Some(names), Some(f)) = (&match_pattern, &custom_field_names, format) {
                let n = f.default_fields().len();
                let java_format = !matches!(f, LogFormat::Rfc5424Syslog | LogFormat::Json);
                if java_format && names.len() != n {
                    c.error(
                        &key("customFieldNames"),
                        None,
                        format!(
                            "{} has {n} fields, so customFieldNames must name {n} (got {}); \
                             give a matchPattern to parse other fields",
                            LOG_FORMATS
                                .iter()
                                .find(|(_, x)| *x == f)
                                .map_or("", |(n, _)| n),
                            names.len()
                        ),
                    );
                }
            }
            Some(ProcessorConfig::LogToJson {
                format: format?,
                match_pattern,
                custom_field_names,
                lenient,
                json_format,
            })
        }
        ProcessorKind::AddMetadata => {
            let metadata = match f.get("metadata") {
                None => serde_json::Value::Null,
                Some(v) => to_json(c, &key("metadata"), v)?,
            };
            let timestamp = match f.get("timestamp") {
                None => false,
                // The Java agent takes only a string, true when it is "true" in any case;
                // a JSON boolean made it fail to start.
                Some(v) => match untag(v) {
                    Value::Bool(b) => *b,
                    Value::String(_) => {
                        let s = c.string(&key("timestamp"), v).unwrap_or_default();
                        let on = s.eq_ignore_ascii_case("true");
                        if !on && !s.eq_ignore_ascii_case("false") {
                            c.warn(format!(
                                "{}: {s:?} is not \"true\", so no timestamp is added (as the Java agent)",
                                key("timestamp")
                            ));
                        }
                        on
                    }
                    _ => c.bool(&key("timestamp"), v).unwrap_or(false),
                },
            };
            Some(ProcessorConfig::AddMetadata {
                metadata,
                timestamp,
                nest_objects,
                json_format,
            })
        }
        ProcessorKind::AddBrackets => Some(ProcessorConfig::AddBrackets),
        ProcessorKind::AddEc2Metadata => {
            let ttl = c.ranged(&mut f, "metadataTTL", 1, 31_536_000, 3600);
            if f.get("logFormat").is_some() {
                c.warn(format!(
                    "{at}: \"logFormat\" of ADDEC2METADATA is ignored (parse with a LOGTOJSON entry before it)"
                ));
            }
            Some(ProcessorConfig::AddEc2Metadata {
                ttl: Duration::from_secs(ttl),
            })
        }
    };
    c.leftovers(&f, &[], &format!(" in {at}"));
    out
}

/// A whole number written as Java's `Long.decode` reads it: an optional sign, then
/// decimal, `0x`/`0X`/`#` hexadecimal, or octal after a leading `0`.
fn java_decode(t: &str) -> Option<i64> {
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) =
        if let Some(h) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
            (16, h)
        } else if let Some(h) = rest.strip_prefix('#') {
            (16, h)
        } else if rest.len() > 1 && rest.starts_with('0') {
            (8, &rest[1..])
        } else {
            (10, rest)
        };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let n = i64::from_str_radix(digits, radix).ok()?;
    Some(if neg { -n } else { n })
}

/// Converts a YAML value to JSON, expanding `${VAR}` in its strings.
fn to_json(c: &mut Checker, key: &str, v: &Value) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    Some(match untag(v) {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                J::from(u)
            } else if let Some(i) = n.as_i64() {
                J::from(i)
            } else {
                match n.as_f64().and_then(serde_json::Number::from_f64) {
                    Some(x) => J::Number(x),
                    None => {
                        c.error(key, None, format!("{n} cannot be written in JSON"));
                        return None;
                    }
                }
            }
        }
        Value::String(s) => J::String(c.expand(key, v, s)?),
        Value::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(to_json(c, key, item)?);
            }
            J::Array(out)
        }
        Value::Mapping(m) => {
            let mut out = serde_json::Map::new();
            for (k, item) in m {
                let Some(k) = key_string(k) else {
                    c.error(key, None, "keys must be strings");
                    return None;
                };
                out.insert(k, to_json(c, key, item)?);
            }
            J::Object(out)
        }
        Value::Tagged(_) => unreachable!("untagged above"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters() {
        assert_eq!(parse_delimiter(","), Some(b','));
        assert_eq!(parse_delimiter("\\t"), Some(b'\t'));
        assert_eq!(parse_delimiter("\t"), Some(b'\t'));
        assert_eq!(parse_delimiter("\\|"), Some(b'|'));
        assert_eq!(parse_delimiter("|"), Some(b'|'));
        assert_eq!(parse_delimiter(";"), Some(b';'));
        assert_eq!(parse_delimiter("\\s"), None);
        assert_eq!(parse_delimiter(",,"), None);
        assert_eq!(parse_delimiter(""), None);
        assert_eq!(parse_delimiter("§"), None);
        assert_eq!(parse_delimiter("\""), None);
    }

    #[test]
    fn closest_keys() {
        let known = [
            "maxBufferAgeMillis",
            "maxBufferSizeBytes",
            "cloudwatch.emitMetrics",
            "flows",
        ];
        assert_eq!(
            closest("maxBufferAgeMilis", &known),
            Some("maxBufferAgeMillis")
        );
        assert_eq!(
            closest("maxbuffersizebytes", &known),
            Some("maxBufferSizeBytes")
        );
        assert_eq!(
            closest("emitMetrics", &known),
            Some("cloudwatch.emitMetrics")
        );
        assert_eq!(closest("zzz", &known), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
