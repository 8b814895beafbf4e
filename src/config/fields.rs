//! Reading values: [`Fields`] (the keys of one mapping, and which were read) and
//! [`Checker`] (every primitive that reads a value of some kind and records what is wrong
//! in the [`Diag`]), with the lenient syntax Java-agent files are written in: numbers may
//! be strings (`"5000"`, `"0x10"`), booleans `true/false/yes/no/t/f/y/n/1/0` in any case,
//! enums case-insensitive with `_`/`-` optional, `null` means "not set". `${VAR}` is
//! expanded in every string value (see `expand.rs`).

use std::time::Duration;

use serde_yaml::Value;

use super::error::{ConfigError, Diag, Warning};
use super::expand::{expand, Env};
use super::raw::{locate_key, scalar_hint, Doc};

/// Java `log.*` settings: logs go to stderr here.
pub(super) const JAVA_LOG_KEYS: &[&str] = &[
    "log.level",
    "log.maxBackupIndex",
    "log.maxFileSize",
    "log.file",
];

/// Upper bound of durations given in milliseconds that have no natural limit (one hour):
/// catches a value given in the wrong unit.
pub(super) const MAX_MILLIS: u64 = 3_600_000;

/// The keys of one mapping, and which of them were read.
pub(super) struct Fields<'v> {
    pub(super) entries: Vec<(String, &'v Value)>,
    pub(super) used: Vec<bool>,
    pub(super) known: Vec<&'static str>,
}

impl<'v> Fields<'v> {
    pub(super) fn new(entries: Vec<(String, &'v Value)>) -> Self {
        let used = vec![false; entries.len()];
        Fields {
            entries,
            used,
            known: Vec::new(),
        }
    }

    /// The value of `key` without reading it (it still counts as not read).
    pub(super) fn peek(&self, key: &str) -> Option<&'v Value> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        Some(untag(self.entries[i].1))
    }

    /// The value of `key`; `None` when absent or `null`.
    pub(super) fn get(&mut self, key: &'static str) -> Option<&'v Value> {
        self.known.push(key);
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        self.used[i] = true;
        let v = untag(self.entries[i].1);
        (!v.is_null()).then_some(v)
    }

    /// Keys present but never read, with their values.
    pub(super) fn unused(&self) -> impl Iterator<Item = (&str, &'v Value)> + '_ {
        self.entries
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| !**used)
            .map(|((k, v), _)| (k.as_str(), *v))
    }
}

pub(super) fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

pub(super) fn key_string(k: &Value) -> Option<String> {
    match untag(k) {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some("null".to_string()),
        _ => None,
    }
}

pub(super) fn kind_of(v: &Value) -> &'static str {
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
pub(super) fn distance(a: &str, b: &str) -> usize {
    strsim::levenshtein(&a.to_lowercase(), &b.to_lowercase())
}

/// The known key an unknown key was most likely meant to be.
pub(super) fn closest<'k>(unknown: &str, known: &[&'k str]) -> Option<&'k str> {
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
pub(super) struct Checker<'a> {
    pub(super) doc: &'a Doc,
    pub(super) env: Env<'a>,
    pub(super) diag: &'a mut Diag,
    pub(super) flow: Option<usize>,
    /// Java regexes of the current flow as written, by their rewritten form.
    pub(super) sources: std::collections::HashMap<String, String>,
}

impl<'a> Checker<'a> {
    /// A checker of `doc`, for the flow `flow` (`None`: the top level).
    pub(super) fn new(doc: &'a Doc, env: Env<'a>, diag: &'a mut Diag, flow: Option<usize>) -> Self {
        Checker {
            doc,
            env,
            diag,
            flow,
            sources: Default::default(),
        }
    }

    pub(super) fn error(&mut self, key: &str, raw: Option<&Value>, message: impl Into<String>) {
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

    pub(super) fn locate(&self, key: &str, hint: Option<&str>) -> Option<(usize, usize)> {
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

    pub(super) fn warn(&mut self, message: String) {
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
    pub(super) fn mapping<'v>(
        &mut self,
        key: &str,
        v: &'v Value,
        what: &str,
    ) -> Option<Fields<'v>> {
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

    pub(super) fn expand(&mut self, key: &str, raw: &Value, s: &str) -> Option<String> {
        match expand(s, self.env) {
            Ok(s) => Some(s.into_owned()),
            Err(e) => {
                self.error(key, Some(raw), e.to_string());
                None
            }
        }
    }

    /// A string value (numbers and booleans are taken as written).
    pub(super) fn string(&mut self, key: &str, v: &Value) -> Option<String> {
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

    pub(super) fn non_empty_string(&mut self, key: &str, v: &Value) -> Option<String> {
        let s = self.string(key, v)?;
        if s.trim().is_empty() {
            self.error(key, Some(v), "must not be empty");
            return None;
        }
        Some(s)
    }

    /// A whole number, negative too, given as a number or as a string read as Java's
    /// `Integer.decode` reads it (a warning says so when that is not plain decimal).
    pub(super) fn whole(&mut self, key: &str, v: &Value) -> Option<i128> {
        let bad = |what: &str| format!("expected a whole number, not {what}");
        match untag(v) {
            Value::Number(n) => {
                let whole = n
                    .as_i64()
                    .map(i128::from)
                    .or_else(|| n.as_u64().map(i128::from))
                    .or_else(|| {
                        n.as_f64()
                            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                            .map(|f| f as i128)
                    });
                if whole.is_none() {
                    self.error(key, Some(v), bad(&n.to_string()));
                }
                whole
            }
            Value::String(s) => {
                let s = self.expand(key, v, s)?;
                let t = s.trim();
                match java_decode(t) {
                    Some(n) => {
                        if t.parse::<i64>().is_err() {
                            self.warn(format!(
                                "{key}: {t:?} is read as {n}, as the Java agent reads it (Integer.decode)"
                            ));
                        }
                        Some(i128::from(n))
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

    /// A whole number >= 0 (see [`Checker::whole`]).
    pub(super) fn uint(&mut self, key: &str, v: &Value) -> Option<u64> {
        let n = self.whole(key, v)?;
        if n < 0 {
            self.error(key, Some(v), format!("must not be negative (got {n})"));
            return None;
        }
        u64::try_from(n).ok()
    }

    pub(super) fn bool(&mut self, key: &str, v: &Value) -> Option<bool> {
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
    pub(super) fn choice<T: Copy>(
        &mut self,
        key: &str,
        v: &Value,
        options: &[(&str, T)],
    ) -> Option<T> {
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
    pub(super) fn ranged(
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
    pub(super) fn unchecked(
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
        let Some(n) = self.whole(key, v) else {
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

    pub(super) fn opt_bool(&mut self, f: &mut Fields, key: &'static str, default: bool) -> bool {
        f.get(key)
            .and_then(|v| self.bool(key, v))
            .unwrap_or(default)
    }

    /// An optional string; an empty string counts as not set (as in the Java agent).
    pub(super) fn opt_string(&mut self, f: &mut Fields, key: &'static str) -> Option<String> {
        let v = f.get(key)?;
        self.string(key, v).filter(|s| !s.is_empty())
    }

    /// An endpoint: an absolute http(s) URL. A bare host name (as the Java agent's
    /// documentation writes them) means https. Empty means not set: an empty endpoint
    /// given to the AWS SDK makes it panic.
    pub(super) fn endpoint(&mut self, f: &mut Fields, key: &'static str) -> Option<String> {
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

    pub(super) fn region(&mut self, f: &mut Fields, key: &'static str) -> Option<String> {
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

    pub(super) fn bytes_regex(&mut self, key: &str, v: &Value) -> Option<regex::bytes::Regex> {
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

    pub(super) fn string_list(&mut self, key: &str, v: &Value) -> Option<Vec<String>> {
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
    pub(super) fn leftovers(&mut self, f: &Fields, java_only: &[&str], within: &str) {
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

pub(super) fn millis(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A whole number written as Java's `Long.decode` reads it: an optional sign, then
/// decimal, `0x`/`0X`/`#` hexadecimal, or octal after a leading `0`.
pub(super) fn java_decode(t: &str) -> Option<i64> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn closest_keys() {
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
