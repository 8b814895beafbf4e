//! The JSON the agent writes, as Jackson writes it: a reusable object of already-encoded
//! fields, a string escaper, the Jackson-style pretty printer, values written as Jackson
//! writes them, the UTC date format of timestamps, and a reader for records that are JSON
//! objects already.
//!
//! Owns: JSON text and dates. Used by the processors, the sinks' request bodies, the
//! CloudWatch metrics and the EC2 metadata; imports none of them.
//!
//! Records are written straight into reused buffers; serde_json is used only to validate
//! input that claims to be JSON and for values known when the chain is built.

use std::ops::Range;

use serde::de::IgnoredAny;

/// A JSON object under construction: every key and value is kept as its encoded JSON text
/// (keys with their quotes) in one buffer, so building and writing it allocates nothing
/// once the buffers have grown.
#[derive(Debug, Default)]
pub(crate) struct Obj {
    buf: Vec<u8>,
    fields: Vec<(Range<u32>, Range<u32>)>,
}

/// Where a parser puts the fields of the object it makes: an [`Obj`], or compact JSON
/// written straight into the output ([`Direct`]).
pub(crate) trait Fields {
    /// Adds a field whose value is `null`; `key` is encoded (with quotes).
    fn null(&mut self, key: &[u8]);
    /// Adds a field whose value is the JSON string of `text`.
    fn valid_str(&mut self, key: &[u8], text: &str);
}

impl Fields for Obj {
    fn null(&mut self, key: &[u8]) {
        self.push_null(key);
    }
    fn valid_str(&mut self, key: &[u8], text: &str) {
        self.push_valid_str(key, text);
    }
}

/// An object written as compact JSON straight into `out`, field after field: what
/// [`Obj::write_compact`] writes, without the object in between (for a chain whose only
/// step makes the object and nothing changes it afterwards).
pub(crate) struct Direct<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Direct<'a> {
    /// Opens the object.
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Direct { out, first: true }
    }

    fn key(&mut self, key: &[u8]) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.extend_from_slice(key);
        self.out.push(b':');
    }

    /// Adds a field whose encoded value `write` writes.
    pub(crate) fn with(&mut self, key: &[u8], write: impl FnOnce(&mut Vec<u8>)) {
        self.key(key);
        write(self.out);
    }

    /// Closes the object.
    pub(crate) fn finish(self) {
        self.out.push(b'}');
    }
}

impl Fields for Direct<'_> {
    fn null(&mut self, key: &[u8]) {
        self.key(key);
        self.out.extend_from_slice(b"null");
    }
    fn valid_str(&mut self, key: &[u8], text: &str) {
        self.key(key);
        write_valid_str(self.out, text);
    }
}

impl Obj {
    /// Empties it, keeping its buffers.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.fields.clear();
    }

    /// Number of fields.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.fields.len()
    }

    fn push_raw(&mut self, text: &[u8]) -> Range<u32> {
        let start = self.buf.len() as u32;
        self.buf.extend_from_slice(text);
        start..self.buf.len() as u32
    }

    /// Adds a field; `key` is an encoded JSON string (with quotes), `value` encoded JSON.
    pub(crate) fn push_encoded(&mut self, key: &[u8], value: &[u8]) {
        let k = self.push_raw(key);
        let v = self.push_raw(value);
        self.fields.push((k, v));
    }

    /// Adds a field whose value is the JSON string of `text` (invalid UTF-8 replaced).
    pub(crate) fn push_str(&mut self, key: &[u8], text: &[u8]) {
        let k = self.push_raw(key);
        let start = self.buf.len() as u32;
        write_str(&mut self.buf, text);
        self.fields.push((k, start..self.buf.len() as u32));
    }

    /// Adds a field whose value is the JSON string of `text`.
    pub(crate) fn push_valid_str(&mut self, key: &[u8], text: &str) {
        let k = self.push_raw(key);
        let start = self.buf.len() as u32;
        write_valid_str(&mut self.buf, text);
        self.fields.push((k, start..self.buf.len() as u32));
    }

    /// Adds a field whose value is `null`.
    pub(crate) fn push_null(&mut self, key: &[u8]) {
        self.push_encoded(key, b"null");
    }

    /// Sets `key` to the encoded `value`: replaces the value in place when the key is
    /// present (keeping the field's position, like Java's `LinkedHashMap.put`), appends
    /// otherwise. The old value's bytes stay in the buffer until `clear`.
    pub(crate) fn set_encoded(&mut self, key: &[u8], value: &[u8]) {
        let found = self
            .fields
            .iter()
            .position(|(k, _)| &self.buf[k.start as usize..k.end as usize] == key);
        match found {
            Some(i) => {
                let v = self.push_raw(value);
                self.fields[i].1 = v;
            }
            None => self.push_encoded(key, value),
        }
    }

    /// Sets `key` to `value` written by `write` (see [`Obj::set_encoded`]).
    pub(crate) fn set_with(&mut self, key: &[u8], write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.buf.len();
        write(&mut self.buf);
        let end = self.buf.len();
        // Move the value out of the way of the key lookup without allocating: it is
        // already in the buffer, so only the field table changes.
        let found = self
            .fields
            .iter()
            .position(|(k, _)| &self.buf[k.start as usize..k.end as usize] == key);
        let v = start as u32..end as u32;
        match found {
            Some(i) => self.fields[i].1 = v,
            None => {
                let k = self.push_raw(key);
                self.fields.push((k, v));
            }
        }
    }

    /// Merges fields of the same key as Java's `LinkedHashMap.put` would have: one field
    /// at the first one's position, with the last one's value.
    pub(crate) fn dedupe_keys(&mut self) {
        let mut i = 0;
        while i < self.fields.len() {
            let k = self.fields[i].0.clone();
            let key = &self.buf[k.start as usize..k.end as usize];
            let mut j = i + 1;
            while j < self.fields.len() {
                let kj = &self.fields[j].0;
                if &self.buf[kj.start as usize..kj.end as usize] == key {
                    self.fields[i].1 = self.fields[j].1.clone();
                    self.fields.remove(j);
                } else {
                    j += 1;
                }
            }
            i += 1;
        }
    }

    /// Writes it as compact JSON.
    pub(crate) fn write_compact(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&self.buf[k.start as usize..k.end as usize]);
            out.push(b':');
            out.extend_from_slice(&self.buf[v.start as usize..v.end as usize]);
        }
        out.push(b'}');
    }

    /// Replaces its content with the fields of the JSON object `text`; false (and empty)
    /// when `text` is not a JSON object. Invalid UTF-8 is replaced first.
    pub(crate) fn parse_object(&mut self, text: &[u8], tmp: &mut Vec<u8>) -> bool {
        self.clear();
        let text = crate::java::utf8_lossy(text);
        let bytes = text.as_bytes();
        let first = bytes.iter().position(|b| !b.is_ascii_whitespace());
        if first.map(|i| bytes[i]) != Some(b'{') {
            return false;
        }
        if serde_json::from_slice::<IgnoredAny>(bytes).is_err() {
            return false;
        }
        tmp.clear();
        minify(bytes, tmp);
        // `tmp` is a valid compact object: split its top level.
        let t = &tmp[..];
        let mut i = 1;
        while i < t.len() && t[i] != b'}' {
            let key_start = i;
            i = skip_string(t, i);
            let key = &t[key_start..i];
            debug_assert_eq!(t[i], b':');
            i += 1;
            let val_start = i;
            i = skip_value(t, i);
            let val = &t[val_start..i];
            if key.contains(&b'\\') {
                // Canonical form, so that lookups by name find escaped keys too.
                let name: String = serde_json::from_slice(key).unwrap_or_default();
                let k = self.buf.len() as u32;
                write_str(&mut self.buf, name.as_bytes());
                let k = k..self.buf.len() as u32;
                let v = self.push_raw(val);
                self.fields.push((k, v));
            } else {
                self.push_encoded(key, val);
            }
            if t[i] == b',' {
                i += 1;
            }
        }
        true
    }
}

/// Index past the JSON string starting at `t[i] == b'"'`.
fn skip_string(t: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < t.len() {
        match t[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// Index past the compact JSON value starting at `t[i]` (followed by `,` or the closing
/// bracket of its parent).
fn skip_value(t: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < t.len() {
        match t[i] {
            b'"' => {
                i = skip_string(t, i);
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                if depth == 0 {
                    return i;
                }
                depth -= 1;
            }
            b',' if depth == 0 => return i,
            _ => {}
        }
        i += 1;
    }
    i
}

/// Copies valid JSON `text` without the whitespace outside strings.
pub(crate) fn minify(text: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => {
                let end = skip_string(text, i);
                out.extend_from_slice(&text[i..end]);
                i = end;
            }
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
}

/// Writes `v` as compact JSON the way Jackson writes the value it read from the Java
/// agent's configuration: keys in their order, strings escaped as [`write_str`], and
/// floating-point numbers as Java's `Double.toString` (`1.0E10`, `100.0`).
pub(crate) fn java_value(v: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_java_value(&mut out, v);
    out
}

fn write_java_value(out: &mut Vec<u8>, v: &serde_json::Value) {
    use serde_json::Value as J;
    match v {
        J::Null => out.extend_from_slice(b"null"),
        J::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        J::Number(n) => match n.as_f64().filter(|_| n.is_f64()) {
            Some(f) => out.extend_from_slice(java_double(f).as_bytes()),
            None => out.extend_from_slice(n.to_string().as_bytes()),
        },
        J::String(s) => write_valid_str(out, s),
        J::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_java_value(out, item);
            }
            out.push(b']');
        }
        J::Object(map) => {
            out.push(b'{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_valid_str(out, k);
                out.push(b':');
                write_java_value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// Java's `Double.toString` of a finite `f`: plain notation with at least one decimal
/// for 10^-3 <= |f| < 10^7, else `d.dddE±n`; the digits are the shortest that read back
/// as `f`.
pub(crate) fn java_double(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    // `{:e}` gives the shortest digits: `d.ddde<exp>`.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if (-3..7).contains(&exp) {
        let point = exp + 1;
        let (int, frac) = if point <= 0 {
            (
                "0".to_string(),
                format!("{}{digits}", "0".repeat((-point) as usize)),
            )
        } else if point as usize >= digits.len() {
            (
                format!("{digits}{}", "0".repeat(point as usize - digits.len())),
                String::new(),
            )
        } else {
            (
                digits[..point as usize].to_string(),
                digits[point as usize..].to_string(),
            )
        };
        let frac = if frac.is_empty() {
            "0".to_string()
        } else {
            frac
        };
        format!("{sign}{int}.{frac}")
    } else {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() { "0" } else { rest };
        format!("{sign}{first}.{rest}E{exp}")
    }
}

/// Bytes that need an escape inside a JSON string.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Writes `text` as a JSON string (with quotes), as Jackson does: `"`, `\` and control
/// characters escaped, everything else as UTF-8. Invalid UTF-8 becomes U+FFFD as Java
/// decodes it ([`crate::java::utf8_lossy`]).
pub(crate) fn write_str(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'"');
    match std::str::from_utf8(text) {
        Ok(_) => escape_valid(out, text),
        Err(_) => escape_valid(out, crate::java::utf8_lossy(text).as_bytes()),
    }
    out.push(b'"');
}

/// Writes valid UTF-8 `text` as a JSON string (with quotes); see [`write_str`].
pub(crate) fn write_valid_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    escape_valid(out, text.as_bytes());
    out.push(b'"');
}

/// True when one of the eight bytes of `w` may need escaping (`"`, `\\` or below 0x20).
/// Never false for a word that has one (a false true only costs a byte-wise look).
#[inline]
fn word_may_need_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let b = w ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES) & !b;
    (below_space | quote | backslash) & HIGH != 0
}

fn escape_valid(out: &mut Vec<u8>, text: &[u8]) {
    let mut start = 0;
    let mut i = 0;
    while i < text.len() {
        // Eight bytes at a time while none needs escaping (the usual case).
        while let Some(word) = text.get(i..i + 8) {
            let w = u64::from_le_bytes(word.try_into().expect("eight bytes"));
            if word_may_need_escape(w) {
                break;
            }
            i += 8;
        }
        let end = (i + 8).min(text.len());
        while i < end {
            let b = text[i];
            i += 1;
            if !NEEDS_ESCAPE[b as usize] {
                continue;
            }
            escape_byte(out, &text[start..i - 1], b);
            start = i;
        }
    }
    out.extend_from_slice(&text[start..]);
}

/// Appends `before`, then the escape of `b`.
fn escape_byte(out: &mut Vec<u8>, before: &[u8], b: u8) {
    {
        out.extend_from_slice(before);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0C => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xF) as usize]);
            }
        }
    }
}

/// Re-indents compact JSON the way Jackson's default pretty printer does: objects one
/// field per line indented by two spaces with ` : ` between key and value, arrays on one
/// line as `[ a, b ]` (and, as in Jackson, not adding to the indentation), empty ones as
/// `{ }` and `[ ]`. `stack` is scratch space.
pub(crate) fn write_pretty(compact: &[u8], out: &mut Vec<u8>, stack: &mut Vec<bool>) {
    stack.clear();
    // Objects open, the indentation level (arrays are inline).
    let mut depth = 0usize;
    let indent = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        for _ in 0..depth {
            out.extend_from_slice(b"  ");
        }
    };
    let t = compact;
    let mut i = 0;
    while i < t.len() {
        let b = t[i];
        match b {
            b'"' => {
                let end = skip_string(t, i);
                out.extend_from_slice(&t[i..end]);
                i = end;
                continue;
            }
            b'{' | b'[' => {
                let close = if b == b'{' { b'}' } else { b']' };
                if t.get(i + 1) == Some(&close) {
                    out.extend_from_slice(if b == b'{' { b"{ }" } else { b"[ ]" });
                    i += 2;
                    continue;
                }
                out.push(b);
                stack.push(b == b'{');
                if b == b'{' {
                    depth += 1;
                    indent(out, depth);
                } else {
                    out.push(b' ');
                }
            }
            b'}' => {
                stack.pop();
                depth -= 1;
                indent(out, depth);
                out.push(b'}');
            }
            b']' => {
                stack.pop();
                out.extend_from_slice(b" ]");
            }
            b',' => {
                if stack.last() == Some(&true) {
                    out.push(b',');
                    indent(out, depth);
                } else {
                    out.extend_from_slice(b", ");
                }
            }
            b':' => out.extend_from_slice(b" : "),
            _ => out.push(b),
        }
        i += 1;
    }
}

/// The encoded JSON string of `name` (with quotes), for keys known when the chain is built.
pub(crate) fn encoded_key(name: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(name.len() + 2);
    write_str(&mut v, name.as_bytes());
    v
}

/// The civil date (year, month, day) of a day count since 1970-01-01 (proleptic
/// Gregorian), by the usual era arithmetic.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Writes `YYYY-MM-DDTHH:MM:SS` (UTC) of `secs` since the epoch.
pub(crate) fn write_datetime(out: &mut Vec<u8>, secs: u64) {
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    let two = |out: &mut Vec<u8>, v: u32| {
        out.push(b'0' + (v / 10) as u8);
        out.push(b'0' + (v % 10) as u8);
    };
    let y = y as u32;
    two(out, y / 100);
    two(out, y % 100);
    out.push(b'-');
    two(out, mo);
    out.push(b'-');
    two(out, d);
    out.push(b'T');
    two(out, (s / 3600) as u32);
    out.push(b':');
    two(out, (s / 60 % 60) as u32);
    out.push(b':');
    two(out, (s % 60) as u32);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(secs: u64) -> String {
        let mut v = Vec::new();
        write_datetime(&mut v, secs);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn formats_utc_dates() {
        assert_eq!(fmt(0), "1970-01-01T00:00:00");
        assert_eq!(fmt(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(fmt(1_795_780_800), "2026-11-27T12:00:00");
        assert_eq!(fmt(4_107_542_399), "2100-02-28T23:59:59");
        assert_eq!(fmt(253_402_300_799), "9999-12-31T23:59:59");
    }

    fn s(text: &[u8]) -> String {
        let mut v = Vec::new();
        write_str(&mut v, text);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn escapes_like_jackson() {
        assert_eq!(s(b"plain"), r#""plain""#);
        assert_eq!(
            s(b"a\"b\\c\n\r\t\x08\x0c\x01/"),
            r#""a\"b\\c\n\r\t\b\f\u0001/""#
        );
        assert_eq!(s("é€😀".as_bytes()), "\"é€😀\"");
        assert_eq!(s(b"a\xffb\xc3"), "\"a\u{FFFD}b\u{FFFD}\"");
        // Whatever the input, serde_json reads back the (lossy) text.
        for input in [&b"x\x00y\x1f"[..], b"\xed\xa0\x80", b"\"\\"] {
            let back: String = serde_json::from_str(&s(input)).unwrap();
            assert_eq!(back, crate::java::utf8_lossy(input));
        }
    }

    #[test]
    fn pretty_like_jackson() {
        let mut out = Vec::new();
        let mut st = Vec::new();
        write_pretty(
            br#"{"a":"x,:{","b":[1,{"c":null},[]],"d":{},"e":{"f":true}}"#,
            &mut out,
            &mut st,
        );
        let want = "{\n  \"a\" : \"x,:{\",\n  \"b\" : [ 1, {\n    \"c\" : null\n  }, [ ] ],\n  \"d\" : { },\n  \"e\" : {\n    \"f\" : true\n  }\n}";
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn parses_objects_and_keeps_order() {
        let mut o = Obj::default();
        let mut tmp = Vec::new();
        assert!(o.parse_object(
            br#" { "z" : 1, "a\u0062" : [1, 2 , {"x": "y z"}], "m": "," } "#,
            &mut tmp
        ));
        assert_eq!(o.len(), 3);
        o.set_encoded(b"\"ab\"", b"2");
        o.set_encoded(b"\"new\"", b"3");
        let mut out = Vec::new();
        o.write_compact(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"z":1,"ab":2,"m":",","new":3}"#
        );
        for bad in [&b"[1]"[..], b"\"s\"", b"{", b"{\"a\":}", b"", b"{} x"] {
            assert!(
                !o.parse_object(bad, &mut tmp),
                "{:?}",
                crate::java::utf8_lossy(bad)
            );
        }
        assert!(o.parse_object(b"{}", &mut tmp));
        assert_eq!(o.len(), 0);
    }

    /// The word-at-a-time escaper writes what a byte-at-a-time one does.
    fn escape_bytewise(text: &str) -> Vec<u8> {
        let mut out = vec![b'"'];
        for &b in text.as_bytes() {
            if NEEDS_ESCAPE[b as usize] {
                escape_byte(&mut out, &[], b);
            } else {
                out.push(b);
            }
        }
        out.push(b'"');
        out
    }

    proptest::proptest! {
        #![proptest_config(crate::test_util::proptest_cases(2000))]
        #[test]
        fn word_escaper_agrees_with_bytewise(
            text in "([\\x00-\\x21\"\\\\\\x7f-\\u{3000}]|[a-z ]{0,9}){0,40}",
        ) {
            let mut fast = Vec::new();
            write_valid_str(&mut fast, &text);
            proptest::prop_assert_eq!(fast, escape_bytewise(&text));
        }
    }
}
