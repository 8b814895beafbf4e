//! `LOGTOJSON`: a log line → a JSON object of named string fields.
//!
//! # By default: the Java agent's patterns
//!
//! The five Java formats use the Java agent's own patterns (its `PatternConstants`, read
//! as Java regexes through [`crate::java`]) and its rules: the line without its final
//! `\n` must match the whole pattern, field *i* takes group *i* (`null` when the group did
//! not take part), and under the Apache formats a field that is `-` is `null`. A line that
//! does not match is dropped. Two differences, both where the Java agent loses lines:
//! one trailing `\r` is removed before matching (Java's `.` stops at it, so every CRLF
//! line was dropped), and a `customFieldNames` list whose length differs from the
//! pattern's group count names the groups it can (Java dropped every line).
//!
//! # `lenient: true`: this crate's patterns
//!
//! Written after the same field semantics, and more lenient where real logs differ from
//! the Java patterns (the extension formats always use them):
//!
//! - Every pattern must match the whole record (Java `Matcher.matches`); `.` does not
//!   cross a newline. A leading `<PRI>` (`<34>`, up to three digits) is accepted and not
//!   reported (RFC5424SYSLOG reports it as `pri`).
//! - COMMONAPACHELOG / COMBINEDAPACHELOG: `host ident authuser [datetime] "request"
//!   response bytes` (+ `"referer" "agent"`), anything after is ignored as in Java. Host,
//!   ident and authuser are any non-blank text (IPv6 addresses, `user@domain`); quoted
//!   fields may contain `\"` escapes. `-` becomes `null`.
//! - APACHEERRORLOG: `[timestamp] [module:severity] [pid N:tid N] [client addr] message`
//!   where module, pid, tid and client are optional (Apache 2.2 lines have no pid); absent
//!   parts are `null`, and so is `-`.
//! - SYSLOG (`Mmm dd hh:mm:ss`) and RFC3339SYSLOG (RFC 3339 timestamp): `timestamp
//!   hostname program[processid]: message`, `processid` `null` when absent.
//! - RFC5424SYSLOG (extension): `pri`, `version`, `timestamp`, `hostname`, `appname`,
//!   `procid`, `msgid`, `structureddata`, `message`; the NILVALUE `-` becomes `null`, so
//!   does a missing message.
//! - JSON (extension): the record must be a JSON object; its fields are kept as they are
//!   (values keep their JSON types), in their order.
//! - `matchPattern` replaces the pattern (still a whole-record match) and
//!   `customFieldNames` the names: name *i* takes capture group *i*, `null` when the group
//!   did not take part or does not exist; groups without a name are dropped. Without
//!   `customFieldNames` the names are the group names or `fieldN`.
//!
//! COMMONAPACHELOG and COMBINEDAPACHELOG lines go through a hand-written parser first; it
//! accepts only lines where it is sure to capture exactly what the pattern would (valid
//! UTF-8 with ASCII host, ident and authuser, no escapes, one line) and hands everything
//! else to the pattern.

use regex::{CaptureLocations, Regex};

use crate::config::LogFormat;
use crate::json::{encoded_key, Fields, Obj};

const PRI: &str = r"(?:<\d{1,3}>)?";
/// A double-quoted field's content, with `\"` escapes.
const QUOTED: &str = r#"((?:[^"\\]|\\.)*)"#;
const INT_OR_DASH: &str = r"(-|[+-]?\d+)";
const SYSLOG_TS: &str = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]* +\d{1,2} \d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?";
const RFC3339_TS: &str = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|z|[+-]\d{2}:?\d{2})";
/// `hostname program[pid]: message` after a syslog timestamp; a `<facility.priority>` is
/// accepted before the hostname as in Java.
const SYSLOG_REST: &str = r"(?:<\d+\.\d+> )?([\w.:\-]+) ([\w./%()\-]+)(?:\[(\d+)\])?: ?(.*)";

fn common_pattern() -> String {
    format!(r#"^{PRI}(\S+) (\S+) (\S+) \[([^\]]+)\] "{QUOTED}" {INT_OR_DASH} {INT_OR_DASH}.*$"#)
}

fn combined_pattern() -> String {
    format!(
        r#"^{PRI}(\S+) (\S+) (\S+) \[([^\]]+)\] "{QUOTED}" {INT_OR_DASH} {INT_OR_DASH} "{QUOTED}" "{QUOTED}".*$"#
    )
}

/// The Java agent's patterns (Java regex syntax), built as its `PatternConstants` are.
mod java {
    const INT: &str = "(?:[+-]?(?:[0-9]+))";
    const POSINT: &str = "(?:[1-9][0-9]*)";
    const NONNEGINT: &str = "(?:[0-9]+)";
    const IP: &str = r"(?:[\d\.]+)";
    const HOSTNAME: &str = r"(?:[\w\-]+)(?:\.(?:[\w\-]+))*(?:\.?|\b)";
    const USER: &str = "(?:[a-zA-Z0-9._-]+)";
    const MONTHDAY: &str = "(?:(?:0[1-9])|(?:[12][0-9])|(?:3[01])|[1-9])";
    const DAY: &str = "(?:Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?)";
    const MONTH: &str = r"\b(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|Aug(?:ust)?|Sep(?:tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\b";
    const YEAR: &str = r"(?:[1-9]\d*)";
    const HOUR: &str = "(?:2[0123]|[01]?[0-9])";
    const MINUTE: &str = "(?:[0-5][0-9])";
    const SECOND: &str = r"(?:(?:[0-5]?[0-9]|60)(?:[:\.,][0-9]+)?)";
    const RFC3339: &str =
        r"(?:\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?)(?:Z|(?:[-+]\d{2}:\d{2}))";

    fn iporhost() -> String {
        format!("(?:{HOSTNAME}|{IP})")
    }

    fn time() -> String {
        format!("(?:{HOUR}:{MINUTE}:{SECOND})")
    }

    pub(super) fn httpdate() -> String {
        format!(r"(?:{MONTHDAY}/{MONTH}/{YEAR}:{}\s{INT})", time())
    }

    fn common() -> String {
        let httpdate = httpdate();
        format!(
            r#"^({}) ({USER}) ({USER}) \[({httpdate})\] "([^"]+)" ({INT}|\-) ({INT}|\-)"#,
            iporhost()
        )
    }

    /// `SYSLOGFACILITY` (its `.` is any character, as written in Java), then the rest of a
    /// syslog line after the timestamp.
    fn syslog_rest() -> String {
        format!(r"(?:<{NONNEGINT}.{NONNEGINT}> )?({USER}) ([\w\._/%-]+)(?:\[({POSINT})\])?: (.*)")
    }

    pub(super) fn pattern(format: super::LogFormat) -> Option<String> {
        use super::LogFormat as F;
        Some(match format {
            F::CommonApacheLog => format!("{}.*", common()),
            F::CombinedApacheLog => format!(r#"{} "([^"]+)" "([^"]+)".*"#, common()),
            F::ApacheErrorLog => {
                let ts = format!(r"(?:{DAY}\s+{MONTH}\s+{MONTHDAY}\s+{}\s+{YEAR})", time());
                let urihost = format!("(?:{}(?::{POSINT})?)", iporhost());
                format!(
                    r"^\[({ts})\] \[(?:(\w+):)?(\w+)\] \[pid ({NONNEGINT})(?::tid ({NONNEGINT}))?\] \[client ({urihost})\] (.*)"
                )
            }
            F::Syslog => {
                let ts = format!(r"(?:{MONTH}\s+{MONTHDAY}\s+{})", time());
                format!("^({ts}) {}", syslog_rest())
            }
            F::Rfc3339Syslog => format!("^({RFC3339}) {}", syslog_rest()),
            F::Rfc5424Syslog | F::Json => return None,
        })
    }
}

fn default_pattern(format: LogFormat) -> Option<String> {
    Some(match format {
        LogFormat::CommonApacheLog => common_pattern(),
        LogFormat::CombinedApacheLog => combined_pattern(),
        LogFormat::ApacheErrorLog => format!(
            r"^{PRI}\[([^\]]+)\] \[(?:([\w\-]+):)?(\w+)\](?: \[pid (\d+)(?::tid (\d+))?\])?(?: \[client ((?:\[[^\]]*\]|[^\]])+)\])?(?: (.*))?$"
        ),
        LogFormat::Syslog => format!(r"^{PRI}({SYSLOG_TS}) {SYSLOG_REST}$"),
        LogFormat::Rfc3339Syslog => format!(r"^{PRI}({RFC3339_TS}) {SYSLOG_REST}$"),
        LogFormat::Rfc5424Syslog => String::from(
            r#"^(?:<(\d{1,3})>)?(\d{1,2}) (\S+) (\S+) (\S+) (\S+) (\S+) (-|(?:\[(?:[^\]"\\]|\\.|"(?:[^"\\]|\\.)*")*\])+)(?: \x{FEFF}?(.*))?$"#,
        ),
        LogFormat::Json => return None,
    })
}

#[derive(Debug)]
enum Parser {
    /// The record is a JSON object.
    Json,
    /// A whole-record pattern.
    Regex {
        re: Regex,
        locs: CaptureLocations,
        /// Try the hand-written Apache parser first (`Some(combined)`).
        fast_apache: Option<bool>,
        /// With the Java agent's pattern: the checks its fields must pass for the fast
        /// parser's answer to be the pattern's.
        java_check: Option<JavaApache>,
    },
}

/// One `LOGTOJSON` step, compiled.
#[derive(Debug)]
pub(crate) struct LogToJson {
    parser: Parser,
    /// Encoded field names, in output order; name `i` takes group `i + 1`.
    keys: Vec<Vec<u8>>,
    /// `-` means "absent" (Apache formats and RFC 5424's NILVALUE).
    dash_is_null: bool,
    /// One trailing `\r` is not part of the line (Java-agent mode).
    strip_cr: bool,
    /// A field name is given twice (the object keeps its first place, last value).
    dup_keys: bool,
    /// Spans of the fast parser, reused.
    spans: [(usize, usize); 9],
}

impl LogToJson {
    /// Compiles the step: the Java agent's pattern for a Java format unless `lenient`.
    /// `match_pattern` comes from the validated configuration (a Java regex already
    /// rewritten by [`crate::java`]), so failing here means a bug; the error names the
    /// pattern.
    pub(crate) fn new(
        format: LogFormat,
        match_pattern: Option<&Regex>,
        custom_field_names: Option<&[String]>,
        lenient: bool,
    ) -> Result<Self, regex::Error> {
        let dash_is_null = matches!(
            format,
            LogFormat::CommonApacheLog
                | LogFormat::CombinedApacheLog
                | LogFormat::ApacheErrorLog
                | LogFormat::Rfc5424Syslog
        );
        let java_pattern = if lenient { None } else { java::pattern(format) };
        let strip_cr = !lenient;
        let java_fast = match format {
            LogFormat::CommonApacheLog => Some(false),
            LogFormat::CombinedApacheLog => Some(true),
            _ => None,
        };
        let (pattern, fast_apache) = match (match_pattern, format) {
            (Some(p), _) => (Some(format!("^(?:{})$", p.as_str())), None),
            (None, _) if java_pattern.is_some() => (
                java_pattern.map(|p| format!("^(?:{})$", crate::java::translate(&p))),
                java_fast,
            ),
            (None, LogFormat::CommonApacheLog) => (default_pattern(format), Some(false)),
            (None, LogFormat::CombinedApacheLog) => (default_pattern(format), Some(true)),
            (None, f) => (default_pattern(f), None),
        };
        let Some(pattern) = pattern else {
            return Ok(LogToJson {
                parser: Parser::Json,
                keys: Vec::new(),
                dash_is_null,
                strip_cr,
                dup_keys: false,
                spans: [(0, 0); 9],
            });
        };
        let re = Regex::new(&pattern)?;
        let names: Vec<String> = match (custom_field_names, match_pattern) {
            (Some(names), _) => names.to_vec(),
            (None, Some(_)) => re
                .capture_names()
                .skip(1)
                .enumerate()
                .map(|(i, n)| n.map_or_else(|| format!("field{}", i + 1), str::to_owned))
                .collect(),
            (None, None) => format
                .default_fields()
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        };
        let default_len = format.default_fields().len();
        // The fast parser fills the default fields; custom names of another count go
        // through the pattern only.
        let fast_apache = fast_apache.filter(|_| names.len() == default_len);
        let java_check = match (fast_apache, match_pattern, lenient) {
            (Some(_), None, false) => Some(JavaApache),
            _ => None,
        };
        Ok(LogToJson {
            parser: Parser::Regex {
                locs: re.capture_locations(),
                re,
                fast_apache,
                java_check,
            },
            dup_keys: (1..names.len()).any(|i| names[..i].contains(&names[i])),
            keys: names.iter().map(|n| encoded_key(n)).collect(),
            dash_is_null,
            strip_cr,
            spans: [(0, 0); 9],
        })
    }

    /// Parses `text` into `obj`; false when it does not match.
    pub(crate) fn apply(&mut self, text: &[u8], obj: &mut Obj, tmp: &mut Vec<u8>) -> bool {
        if matches!(self.parser, Parser::Json) {
            return obj.parse_object(text, tmp);
        }
        obj.clear();
        let matched = self.parse_into(text, obj);
        if matched && self.dup_keys {
            obj.dedupe_keys();
        }
        matched
    }

    /// The same step without the hand-written parser (tests compare both ways).
    #[cfg(test)]
    pub(crate) fn without_fast(mut self) -> Self {
        if let Parser::Regex { fast_apache, .. } = &mut self.parser {
            *fast_apache = None;
        }
        self
    }

    /// True when a field name is given twice.
    pub(crate) fn has_duplicate_keys(&self) -> bool {
        self.dup_keys
    }

    /// True when the fields come from a pattern (every format but JSON), which
    /// [`LogToJson::parse_into`] can write anywhere.
    pub(crate) fn is_pattern(&self) -> bool {
        matches!(self.parser, Parser::Regex { .. })
    }

    /// True when `key` (encoded) is one of the field names.
    pub(crate) fn has_key(&self, key: &[u8]) -> bool {
        self.keys.iter().any(|k| k == key)
    }

    /// Parses `text` with the pattern and adds its fields to `fields`; false (and nothing
    /// added) when it does not match, or for the JSON format.
    pub(crate) fn parse_into(&mut self, text: &[u8], fields: &mut impl Fields) -> bool {
        let Parser::Regex {
            re,
            locs,
            fast_apache,
            java_check,
        } = &mut self.parser
        else {
            return false;
        };
        let text = match text {
            [rest @ .., b'\r'] if self.strip_cr => rest,
            _ => text,
        };
        // `from_utf8` first: far cheaper than `from_utf8_lossy` on the usual valid line.
        let text = match std::str::from_utf8(text) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => crate::java::utf8_lossy(text),
        };
        let s: &str = &text;
        if let Some(combined) = *fast_apache {
            if parse_apache(s, combined, &mut self.spans)
                && java_check
                    .as_ref()
                    .is_none_or(|j| j.accepts(s, combined, &mut self.spans))
            {
                for (key, &(a, b)) in self.keys.iter().zip(self.spans.iter()) {
                    let v = &s[a..b];
                    if v == "-" {
                        fields.null(key);
                    } else {
                        fields.valid_str(key, v);
                    }
                }
                return true;
            }
        }
        if re.captures_read(locs, s).is_none() {
            return false;
        }
        for (i, key) in self.keys.iter().enumerate() {
            match locs.get(i + 1) {
                Some((a, b)) if !(self.dash_is_null && &s[a..b] == "-") => {
                    fields.valid_str(key, &s[a..b]);
                }
                _ => fields.null(key),
            }
        }
        true
    }
}

/// The Java agent's COMMON/COMBINED patterns checked over the fast parser's spans.
///
/// Every field of those patterns is delimited by characters it cannot contain (a space,
/// `]`, `"`), so the fast parser's spans are the only ones the pattern could capture; the
/// pattern matches with them exactly when each field is of its Java form (host
/// `IPORHOST`, ident and authuser `USER`, `HTTPDATE`, a request of at least one
/// character, `INT` or `-`) and the rest of the line holds no Java line terminator. The
/// one span chosen differently is COMMON's `bytes`, where Java's `INT|-` tries `INT` first
/// (`-5` is `-5`, not `-`).
#[derive(Debug)]
struct JavaApache;

impl JavaApache {
    /// True when the pattern captures `spans` (adjusted for COMMON's `bytes`).
    fn accepts(&self, s: &str, combined: bool, spans: &mut [(usize, usize); 9]) -> bool {
        let b = s.as_bytes();
        let field = |i: usize| &b[spans[i].0..spans[i].1];
        let user = |t: &[u8]| {
            !t.is_empty()
                && t.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        };
        if spans[0].0 != 0 || !iporhost(field(0)) || !user(field(1)) || !user(field(2)) {
            return false;
        }
        if !java_httpdate(field(3)) || spans[4].0 == spans[4].1 {
            return false;
        }
        let int_or_dash = |t: &[u8]| t == b"-" || java_int(t) == t.len() && !t.is_empty();
        if !int_or_dash(field(5)) {
            return false;
        }
        let tail_from = if combined {
            if !int_or_dash(field(6)) || spans[7].0 == spans[7].1 || spans[8].0 == spans[8].1 {
                return false;
            }
            spans[8].1 + 1
        } else {
            let st = spans[6].0;
            let n = java_int(&b[st..]);
            let end = if n > 0 {
                st + n
            } else if b.get(st) == Some(&b'-') {
                st + 1
            } else {
                return false;
            };
            spans[6] = (st, end);
            end
        };
        // Java's `.*` stops at `\r`, U+0085, U+2028 and U+2029 (`\n` is excluded already).
        let tail = &b[tail_from.min(b.len())..];
        !(tail.contains(&b'\r')
            || (!tail.is_ascii()
                && (memchr::memmem::find(tail, "\u{85}".as_bytes()).is_some()
                    || memchr::memmem::find(tail, "\u{2028}".as_bytes()).is_some()
                    || memchr::memmem::find(tail, "\u{2029}".as_bytes()).is_some())))
    }
}

/// The month names Java's `MONTH` takes (between `\b`s, which hold next to `/`).
const MONTHS: [&[u8]; 23] = [
    b"Jan",
    b"January",
    b"Feb",
    b"February",
    b"Mar",
    b"March",
    b"Apr",
    b"April",
    b"May",
    b"Jun",
    b"June",
    b"Jul",
    b"July",
    b"Aug",
    b"August",
    b"Sep",
    b"September",
    b"Oct",
    b"October",
    b"Nov",
    b"November",
    b"Dec",
    b"December",
];

/// True when the whole of `t` is Java's `HTTPDATE`:
/// `MONTHDAY/MONTH/YEAR:HOUR:MINUTE:SECOND\sINT`, the pattern (`java::httpdate`) checked
/// by hand. Every part of it ends where a character it cannot hold begins (a digit run
/// before `/`, `:`, `\s` or a separator; a name before `/`), so each part is the maximal
/// run there and is checked alone, with no backtracking to consider.
fn java_httpdate(t: &[u8]) -> bool {
    let digits = |at: usize| t[at..].iter().take_while(|c| c.is_ascii_digit()).count();
    // MONTHDAY: 01-09, 10-29, 30, 31 or 1-9.
    let n = digits(0);
    let day = matches!(
        &t[..n],
        [b'1'..=b'9'] | [b'0', b'1'..=b'9'] | [b'1' | b'2', _] | [b'3', b'0' | b'1']
    );
    if !day || t.get(n) != Some(&b'/') {
        return false;
    }
    let at = n + 1;
    let Some(len) = t[at..].iter().position(|&c| c == b'/') else {
        return false;
    };
    if !MONTHS.contains(&&t[at..at + len]) {
        return false;
    }
    // YEAR: [1-9][0-9]*.
    let at = at + len + 1;
    let n = digits(at);
    if n == 0 || t[at] == b'0' || t.get(at + n) != Some(&b':') {
        return false;
    }
    // HOUR: 2[0-3] or [01]?[0-9].
    let at = at + n + 1;
    let n = digits(at);
    if !matches!(&t[at..at + n], [_] | [b'0' | b'1', _] | [b'2', b'0'..=b'3'])
        || t.get(at + n) != Some(&b':')
    {
        return false;
    }
    // MINUTE: [0-5][0-9].
    let at = at + n + 1;
    let n = digits(at);
    if !matches!(&t[at..at + n], [b'0'..=b'5', _]) || t.get(at + n) != Some(&b':') {
        return false;
    }
    // SECOND: ([0-5]?[0-9]|60), then maybe [:.,][0-9]+.
    let at = at + n + 1;
    let n = digits(at);
    if !matches!(&t[at..at + n], [_] | [b'0'..=b'5', _] | b"60") {
        return false;
    }
    let mut at = at + n;
    if matches!(t.get(at), Some(b':' | b'.' | b',')) {
        let n = digits(at + 1);
        if n == 0 {
            return false;
        }
        at += 1 + n;
    }
    // Java's `\s`, then INT to the end.
    if !matches!(t.get(at), Some(b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')) {
        return false;
    }
    let zone = &t[at + 1..];
    !zone.is_empty() && java_int(zone) == zone.len()
}

/// Length of the longest prefix of `t` that is Java's `INT` (`[+-]?[0-9]+`), 0 if none.
fn java_int(t: &[u8]) -> usize {
    let sign = usize::from(matches!(t.first(), Some(b'+' | b'-')));
    let digits = t[sign..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        0
    } else {
        sign + digits
    }
}

/// Java's `IPORHOST` over a whole token: dot-separated labels of `[A-Za-z0-9_-]` with an
/// optional final dot, or digits and dots.
fn iporhost(t: &[u8]) -> bool {
    if t.is_empty() {
        return false;
    }
    if t.iter().all(|c| c.is_ascii_digit() || *c == b'.') {
        return true;
    }
    let t = t.strip_suffix(b".").unwrap_or(t);
    !t.is_empty()
        && t.split(|c| *c == b'.').all(|label| {
            !label.is_empty()
                && label
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
        })
}

/// ASCII characters that `\s` matches.
#[inline]
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// `(-|[+-]?\d+)` followed by a space, as a token.
fn int_or_dash(tok: &[u8]) -> bool {
    if tok == b"-" {
        return true;
    }
    let digits = match tok.first() {
        Some(b'+' | b'-') => &tok[1..],
        _ => tok,
    };
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// The hand-written COMMON/COMBINED parser over valid UTF-8 `s`. Fills `spans` with the
/// capture spans and returns true only when the pattern would match with exactly these
/// captures; false means "ask the pattern" (not "does not match").
///
/// Non-ASCII text is taken where the pattern's classes cannot tell it apart from any other
/// character (`[^\]]`, `[^"\\]`, `.`); host, ident and authuser (`\S+`, where Unicode
/// spaces such as U+00A0 count) and the numbers (`\d`, which takes Unicode digits) must be
/// ASCII. `]`, `"`, `\\`, space and newline never occur inside a multi-byte UTF-8
/// sequence, so byte searches find the same characters as the pattern.
pub(crate) fn parse_apache(s: &str, combined: bool, spans: &mut [(usize, usize); 9]) -> bool {
    let s = s.as_bytes();
    if memchr::memchr(b'\n', s).is_some() {
        return false;
    }
    let n = s.len();
    let mut i = 0;
    if s.first() == Some(&b'<') {
        let digits = s[1..]
            .iter()
            .take(4)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if (1..=3).contains(&digits) && s.get(1 + digits) == Some(&b'>') {
            i = 2 + digits;
        }
    }
    // host, ident, authuser: `(\S+) `
    for span in spans.iter_mut().take(3) {
        let st = i;
        while i < n && !is_space(s[i]) {
            i += 1;
        }
        if i == st || i >= n || s[i] != b' ' || !s[st..i].is_ascii() {
            return false;
        }
        *span = (st, i);
        i += 1;
    }
    // `\[([^\]]+)\] "`
    if s.get(i) != Some(&b'[') {
        return false;
    }
    i += 1;
    let Some(close) = memchr::memchr(b']', &s[i..]) else {
        return false;
    };
    if close == 0 {
        return false;
    }
    spans[3] = (i, i + close);
    i += close + 1;
    // ` "request" `
    let quoted = |i: &mut usize, span: &mut (usize, usize)| -> bool {
        if s.get(*i) != Some(&b'"') {
            return false;
        }
        *i += 1;
        match memchr::memchr2(b'"', b'\\', &s[*i..]) {
            Some(q) if s[*i + q] == b'"' => {
                *span = (*i, *i + q);
                *i += q + 1;
                true
            }
            _ => false,
        }
    };
    if s.get(i) != Some(&b' ') {
        return false;
    }
    i += 1;
    if !quoted(&mut i, &mut spans[4]) || s.get(i) != Some(&b' ') {
        return false;
    }
    i += 1;
    // response, then a space
    let st = i;
    while i < n && s[i] != b' ' {
        i += 1;
    }
    if i >= n || !int_or_dash(&s[st..i]) {
        return false;
    }
    spans[5] = (st, i);
    i += 1;
    if combined {
        let st = i;
        while i < n && s[i] != b' ' {
            i += 1;
        }
        if i >= n || !int_or_dash(&s[st..i]) {
            return false;
        }
        spans[6] = (st, i);
        i += 1;
        if !quoted(&mut i, &mut spans[7]) || s.get(i) != Some(&b' ') {
            return false;
        }
        i += 1;
        if !quoted(&mut i, &mut spans[8]) {
            return false;
        }
        // `.*$`: anything but a newline, already excluded.
        true
    } else {
        // `(-|[+-]?\d+).*$`: leftmost-first takes `-` alone, else the longest integer.
        let st = i;
        match s.get(i) {
            Some(b'-') => i += 1,
            Some(b'+') => {
                i += 1;
                let d = s[i..].iter().take_while(|b| b.is_ascii_digit()).count();
                if d == 0 {
                    return false;
                }
                i += d;
            }
            Some(b) if b.is_ascii_digit() => {
                i += s[i..].iter().take_while(|b| b.is_ascii_digit()).count();
            }
            _ => return false,
        }
        // `\d+` would go on through a Unicode digit.
        if s.get(i).is_some_and(|b| !b.is_ascii()) {
            return false;
        }
        spans[6] = (st, i);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn regex_spans(combined: bool, s: &str) -> Option<Vec<(usize, usize)>> {
        let re = Regex::new(&if combined {
            combined_pattern()
        } else {
            common_pattern()
        })
        .unwrap();
        let c = re.captures(s)?;
        Some(
            (1..c.len())
                .map(|i| c.get(i).map(|m| (m.start(), m.end())).unwrap())
                .collect(),
        )
    }

    fn check(combined: bool, s: &str) -> Result<(), TestCaseError> {
        let mut spans = [(0, 0); 9];
        if parse_apache(s, combined, &mut spans) {
            let want = regex_spans(combined, s);
            let n = if combined { 9 } else { 7 };
            prop_assert_eq!(Some(spans[..n].to_vec()), want, "line {:?}", s);
        }
        Ok(())
    }

    #[test]
    fn fast_parser_handles_usual_lines() {
        let line = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326 "http://x/" "Mozilla/4.08""#;
        let mut spans = [(0, 0); 9];
        assert!(parse_apache(line, true, &mut spans));
        assert!(parse_apache(line, false, &mut spans));
        check(true, line).unwrap();
        check(false, line).unwrap();
    }

    /// The Java pattern's fields, through the fast parser and through the pattern alone.
    fn java_both(combined: bool, line: &str) -> Result<(), TestCaseError> {
        let format = if combined {
            LogFormat::CombinedApacheLog
        } else {
            LogFormat::CommonApacheLog
        };
        let mut fast = LogToJson::new(format, None, None, false).unwrap();
        let mut slow = LogToJson::new(format, None, None, false)
            .unwrap()
            .without_fast();
        let (mut a, mut b, mut tmp) = (Obj::default(), Obj::default(), Vec::new());
        let ma = fast.apply(line.as_bytes(), &mut a, &mut tmp);
        let mb = slow.apply(line.as_bytes(), &mut b, &mut tmp);
        prop_assert_eq!(ma, mb, "line {:?}", line);
        let (mut oa, mut ob) = (Vec::new(), Vec::new());
        a.write_compact(&mut oa);
        b.write_compact(&mut ob);
        prop_assert_eq!(
            String::from_utf8_lossy(&oa),
            String::from_utf8_lossy(&ob),
            "line {:?}",
            line
        );
        Ok(())
    }

    #[test]
    fn java_fast_path_takes_usual_lines() {
        let line = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 -5 "http://x/" "Mozilla/4.08""#;
        java_both(true, line).unwrap();
        java_both(false, line).unwrap();
        let mut spans = [(0, 0); 9];
        assert!(parse_apache(line, false, &mut spans));
        assert!(JavaApache.accepts(line, false, &mut spans));
        assert_eq!(&line[spans[6].0..spans[6].1], "-5");
    }

    /// Java's `HTTPDATE`, translated, matched against the whole text: what
    /// [`java_httpdate`] must answer.
    fn httpdate_pattern() -> Regex {
        Regex::new(&format!(
            "^(?:{})$",
            crate::java::translate(&java::httpdate())
        ))
        .unwrap()
    }

    /// Every one-character change to dates at the edges of each part (delete, insert or
    /// replace with a character the pattern cares about) gets the pattern's answer.
    #[test]
    fn httpdate_agrees_with_the_pattern_next_to_valid_dates() {
        let re = httpdate_pattern();
        let dates = [
            "10/Oct/2000:13:55:36 -0700",
            "1/May/9:0:00:00 +1",
            "31/December/2024:23:59:60.123\t5",
            "09/Sep/1999:1:05:7,5\r-0",
            "30/June/10:20:00:59:1 +0000",
            "29/Feb/2000:19:40:00\n0",
        ];
        let alphabet: Vec<char> =
            "0123456789/:., \t\n\r\u{b}\u{c}\u{a0}+-JanuryFebMchApilJgstSOoNvDmdx"
                .chars()
                .collect();
        let mut tried = 0;
        for date in dates {
            assert!(java_httpdate(date.as_bytes()), "{date:?} is an HTTPDATE");
            let chars: Vec<char> = date.chars().collect();
            for i in 0..=chars.len() {
                let mut variants = Vec::new();
                if i < chars.len() {
                    let mut v = chars.clone();
                    v.remove(i);
                    variants.push(v);
                }
                for &c in &alphabet {
                    let mut v = chars.clone();
                    v.insert(i, c);
                    variants.push(v);
                    if i < chars.len() {
                        let mut v = chars.clone();
                        v[i] = c;
                        variants.push(v);
                    }
                }
                for v in variants {
                    let t: String = v.into_iter().collect();
                    assert_eq!(java_httpdate(t.as_bytes()), re.is_match(&t), "{t:?}");
                    tried += 1;
                }
            }
        }
        assert!(tried > 5000, "{tried} variants");
    }

    /// Each part's edges: every day, hour, minute and second from 0 to 99 with one and two
    /// digits, every month name and a few that are not.
    #[test]
    fn httpdate_agrees_with_the_pattern_on_every_field_value() {
        let re = httpdate_pattern();
        let check = |t: String| assert_eq!(java_httpdate(t.as_bytes()), re.is_match(&t), "{t:?}");
        for n in 0..100 {
            for v in [format!("{n}"), format!("{n:02}"), format!("{n:03}")] {
                check(format!("{v}/Oct/2000:13:55:36 -0700"));
                check(format!("10/Oct/{v}:13:55:36 -0700"));
                check(format!("10/Oct/2000:{v}:55:36 -0700"));
                check(format!("10/Oct/2000:13:{v}:36 -0700"));
                check(format!("10/Oct/2000:13:55:{v} -0700"));
                check(format!("10/Oct/2000:13:55:36 {v}"));
            }
        }
        for m in MONTHS
            .iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .chain(
                [
                    "jan", "JAN", "Janu", "Sept", "Mayy", "", "Octobe", "Junee", "Oct/Oct",
                ]
                .map(String::from),
            )
        {
            check(format!("10/{m}/2000:13:55:36 -0700"));
        }
    }

    proptest! {
        #![proptest_config(crate::test_util::proptest_cases(3000))]

        /// With the Java agent's patterns, the fast parser gives what the pattern gives.
        #[test]
        fn java_fast_path_agrees_with_the_java_pattern(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("127.0.0.1".to_string()), Just("::1".to_string()), Just("-".into()),
                    Just("a.b.".into()), Just("1..2".into()), Just("x_y-z".into()), Just("é".into()),
                    Just("<34>".into()), Just(" ".into()), Just("\t".into()), Just("\r".into()),
                    Just("[".into()), Just("]".into()), Just("\"".into()), Just("\\".into()),
                    Just("200".into()), Just("+5".into()), Just("-7".into()), Just("x".into()),
                    Just("\u{85}".into()), Just("\u{2028}".into()), Just("٣".into()),
                    Just("[10/Oct/2000:13:55:36 -0700]".into()), Just("[1/May/99:1:00:00 +1]".into()),
                    Just("[10/Oct/2000:13:55:36\t-0700]".into()), Just("[32/Oct/2000:13:55:36 -0700]".into()),
                    Just("\"GET / HTTP/1.1\"".into()), Just("\"\"".into()), Just("+".into()),
                ],
                0..24,
            ),
            combined: bool,
        ) {
            java_both(combined, &parts.concat())?;
        }

        /// Well-formed lines agree too (most take the fast path).
        #[test]
        fn java_fast_path_agrees_on_well_formed_lines(
            host in "[a-z0-9.]{1,12}|[0-9.]{1,12}", user in "[a-z._-]{1,5}|-",
            day in 1u32..32, year in 1u32..3000, req in r"[A-Z /.a-z0-9ñ€\\]{0,20}",
            status in "-|[+-]?[0-9]{1,3}", bytes in "-|[+-]?[0-9]{1,6}", referer in "[a-z:/. -]{0,10}",
            agent in "[A-Za-z0-9 /.();é-]{0,20}", tail in "| [a-zü٣\r]{0,5}",
        ) {
            let date = format!("{day}/Nov/{year}:10:00:00 +0000");
            let common = format!("{host} - {user} [{date}] \"{req}\" {status} {bytes}{tail}");
            java_both(false, &common)?;
            let combined = format!("{host} - {user} [{date}] \"{req}\" {status} {bytes} \"{referer}\" \"{agent}\"{tail}");
            java_both(true, &combined)?;
        }

        /// Whenever the fast parser answers, the pattern agrees with it exactly.
        #[test]
        fn fast_parser_agrees_with_the_pattern(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("127.0.0.1".to_string()), Just("::1".to_string()), Just("-".into()),
                    Just("<34>".into()), Just("<1234>".into()), Just(" ".into()), Just("\t".into()),
                    Just("[".into()), Just("]".into()), Just("\"".into()), Just("\\".into()),
                    Just("200".into()), Just("+5".into()), Just("-7".into()), Just("x".into()),
                    Just("é".into()), Just("\u{a0}".into()), Just("\u{85}".into()), Just("٣".into()),
                    Just("\u{3000}".into()), Just("\n".into()), Just("[10/Oct/2000:13:55:36 -0700]".into()),
                    Just("\"GET / HTTP/1.1\"".into()), Just("+".into()),
                ],
                0..24,
            ),
            combined: bool,
        ) {
            check(combined, &parts.concat())?;
        }

        /// On well-formed lines the fast parser answers, and agrees.
        #[test]
        fn fast_parser_takes_well_formed_lines(
            host in "[a-z0-9.:]{1,15}", user in "[a-z-]{1,5}", req in "[A-Z /.a-z0-9ñ€]{0,20}",
            status in "-|[0-9]{3}", bytes in "-|[0-9]{1,6}", referer in "[a-z:/.-]{0,10}",
            agent in "[A-Za-z0-9 /.();é-]{0,20}", pri in "|<[0-9]{1,3}>", tail in "| [a-zü٣]{0,5}",
        ) {
            let common = format!("{pri}{host} - {user} [01/Jan/2024:00:00:00 +0000] \"{req}\" {status} {bytes}{tail}");
            let mut spans = [(0, 0); 9];
            prop_assert!(parse_apache(&common, false, &mut spans));
            check(false, &common)?;
            let combined = format!("{pri}{host} - {user} [01/Jan/2024:00:00:00 +0000] \"{req}\" {status} {bytes} \"{referer}\" \"{agent}\"{tail}");
            prop_assert!(parse_apache(&combined, true, &mut spans));
            check(true, &combined)?;
        }
    }
}
