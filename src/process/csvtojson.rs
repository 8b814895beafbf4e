//! `CSVTOJSON`: one delimited line → a JSON object.
//!
//! Keys in `customFieldNames` order, values always strings, missing columns `null`, extra
//! columns dropped, a name given twice keeps its first place and its last value (Java
//! behaviour). Newlines inside a multi-line record are field content, as in Java.
//!
//! By default the record is split as the Java agent splits it, with Java's
//! `String.split(delimiter)`: the delimiter is a regular expression, quotes mean nothing,
//! trailing empty columns are removed (so they become `null`), and a `\r` before the
//! newline stays in the last column.
//!
//! With `quoted: true` (extension) fields are parsed by the `csv` crate instead: `"a,b"`
//! is one field, `""` an escaped quote, and one trailing `\r` is dropped (CRLF files).
//!
//! The `csv` reader is built once and fed record after record through a reusable buffer,
//! so a record costs no allocation. It is rebuilt in the rare cases where it could carry
//! state from one record to the next (an unterminated quote, a NUL byte).

use std::io::Read;

use regex::Regex;

use crate::json::{encoded_key, Obj};

/// The byte that ends a row for the parser. NUL rather than `\n`, so that newlines of a
/// multi-line record stay inside their field.
const ROW_END: u8 = 0;

/// The reader's input: the current record, then nothing.
#[derive(Debug, Default)]
struct Feed {
    data: Vec<u8>,
    pos: usize,
}

impl Read for Feed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// One `CSVTOJSON` step.
#[derive(Debug)]
pub(crate) enum CsvToJson {
    /// Java's `String.split`.
    Split(JavaSplit),
    /// RFC 4180 (`quoted: true`).
    Quoted(Quoted),
}

/// Java's `String.split(delimiter)` over the record.
#[derive(Debug)]
pub(crate) struct JavaSplit {
    keys: Vec<Vec<u8>>,
    dup_keys: bool,
    delimiter: Regex,
}

impl CsvToJson {
    /// `delimiter` is the configured Java regex (validated by the configuration).
    pub(crate) fn new(
        field_names: &[String],
        delimiter: &str,
        quoted: bool,
    ) -> Result<Self, regex::Error> {
        if quoted {
            let d = crate::config::parse_delimiter(delimiter).unwrap_or(b',');
            return Ok(CsvToJson::Quoted(Quoted::new(field_names, d)));
        }
        let keys: Vec<Vec<u8>> = field_names.iter().map(|n| encoded_key(n)).collect();
        let dup_keys = (1..keys.len()).any(|i| keys[..i].contains(&keys[i]));
        Ok(CsvToJson::Split(JavaSplit {
            keys,
            dup_keys,
            delimiter: crate::java::compile(delimiter)?,
        }))
    }

    /// Parses `text` (the record without its final newline) into `obj`.
    pub(crate) fn apply(&mut self, text: &[u8], obj: &mut Obj) -> Result<(), csv::Error> {
        match self {
            CsvToJson::Split(s) => {
                s.apply(text, obj);
                Ok(())
            }
            CsvToJson::Quoted(q) => q.apply(text, obj),
        }
    }
}

impl JavaSplit {
    fn apply(&self, text: &[u8], obj: &mut Obj) {
        obj.clear();
        let text = crate::java::utf8_lossy(text);
        let cols = java_split(&text, &self.delimiter);
        for (i, key) in self.keys.iter().enumerate() {
            match cols.get(i) {
                Some(v) => obj.push_valid_str(key, v),
                None => obj.push_null(key),
            }
        }
        if self.dup_keys {
            obj.dedupe_keys();
        }
    }
}

/// Java's `String.split(regex)` (limit 0): the pieces between matches, no empty piece for
/// a zero-width match at the start, trailing empty pieces removed; `[text]` when nothing
/// matches.
pub(crate) fn java_split<'t>(text: &'t str, re: &Regex) -> Vec<&'t str> {
    let mut out = Vec::new();
    let mut index = 0;
    let mut matched = false;
    for m in re.find_iter(text) {
        if m.end() == 0 {
            continue;
        }
        matched = true;
        out.push(&text[index..m.start()]);
        index = m.end();
    }
    if !matched {
        return vec![text];
    }
    out.push(&text[index..]);
    while out.last().is_some_and(|s| s.is_empty()) {
        out.pop();
    }
    out
}

/// RFC 4180 fields, by the `csv` crate.
#[derive(Debug)]
pub(crate) struct Quoted {
    keys: Vec<Vec<u8>>,
    builder: csv::ReaderBuilder,
    reader: csv::Reader<Feed>,
    /// Bytes fed to `reader` since it was built.
    fed: u64,
    row: csv::ByteRecord,
}

impl Quoted {
    fn new(field_names: &[String], delimiter: u8) -> Self {
        let mut builder = csv::ReaderBuilder::new();
        builder
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .terminator(csv::Terminator::Any(ROW_END))
            .buffer_capacity(4096);
        let reader = builder.from_reader(Feed::default());
        Quoted {
            keys: field_names.iter().map(|n| encoded_key(n)).collect(),
            builder,
            reader,
            fed: 0,
            row: csv::ByteRecord::new(),
        }
    }

    fn apply(&mut self, text: &[u8], obj: &mut Obj) -> Result<(), csv::Error> {
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        obj.clear();
        if text.is_empty() {
            // The parser skips empty rows; Java yields one empty column.
            for (i, key) in self.keys.iter().enumerate() {
                if i == 0 {
                    obj.push_str(key, b"");
                } else {
                    obj.push_null(key);
                }
            }
            return Ok(());
        }
        let feed = self.reader.get_mut();
        feed.data.clear();
        feed.data.extend_from_slice(text);
        feed.data.push(ROW_END);
        feed.pos = 0;
        self.fed += text.len() as u64 + 1;
        let result = self.reader.read_byte_record(&mut self.row);
        // An unterminated quote runs to the end of the input, row end included.
        let unterminated = self.reader.is_done()
            || self
                .row
                .iter()
                .next_back()
                .is_some_and(|f| f.last() == Some(&ROW_END));
        if result.is_err() || unterminated || self.reader.position().byte() != self.fed {
            // Input left over or end of input reached: start afresh for the next record.
            self.reader = self.builder.from_reader(Feed::default());
            self.fed = 0;
        }
        result?;
        let last = self.row.len().wrapping_sub(1);
        for (i, key) in self.keys.iter().enumerate() {
            match self.row.get(i) {
                Some(v) if unterminated && i == last => {
                    obj.push_str(key, v.strip_suffix(&[ROW_END]).unwrap_or(v));
                }
                Some(v) => obj.push_str(key, v),
                None => obj.push_null(key),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(c: &mut CsvToJson, line: &[u8]) -> String {
        let mut o = Obj::default();
        c.apply(line, &mut o).unwrap();
        let mut out = Vec::new();
        o.write_compact(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rows_stay_independent() {
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let mut c = CsvToJson::new(&names, ",", true).unwrap();
        assert_eq!(run(&mut c, b"1,2,3,4"), r#"{"a":"1","b":"2","c":"3"}"#);
        assert_eq!(run(&mut c, b"x"), r#"{"a":"x","b":null,"c":null}"#);
        assert_eq!(
            run(&mut c, b"\"q,1\",\"say \"\"hi\"\"\",3\r"),
            r#"{"a":"q,1","b":"say \"hi\"","c":"3"}"#
        );
        // An unterminated quote does not leak into the next row.
        assert_eq!(
            run(&mut c, b"\"open,1"),
            r#"{"a":"open,1","b":null,"c":null}"#
        );
        assert_eq!(run(&mut c, b"n,e,xt"), r#"{"a":"n","b":"e","c":"xt"}"#);
        // Nor does a NUL byte.
        let nul = run(&mut c, b"a\0b,c");
        assert!(nul.starts_with(r#"{"a":"a""#), "{nul}");
        assert_eq!(run(&mut c, b"1,2"), r#"{"a":"1","b":"2","c":null}"#);
        assert_eq!(run(&mut c, b""), r#"{"a":"","b":null,"c":null}"#);
        assert_eq!(run(&mut c, b"m\nl,2"), r#"{"a":"m\nl","b":"2","c":null}"#);
        assert_eq!(
            run(&mut c, b"\xff,2"),
            "{\"a\":\"\u{FFFD}\",\"b\":\"2\",\"c\":null}"
        );
    }

    #[test]
    fn splits_as_java_does() {
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let mut c = CsvToJson::new(&names, ",", false).unwrap();
        assert_eq!(run(&mut c, b"1,2,3,4"), r#"{"a":"1","b":"2","c":"3"}"#);
        assert_eq!(run(&mut c, b"1,,"), r#"{"a":"1","b":null,"c":null}"#);
        assert_eq!(run(&mut c, b",x"), r#"{"a":"","b":"x","c":null}"#);
        assert_eq!(run(&mut c, b""), r#"{"a":"","b":null,"c":null}"#);
        assert_eq!(
            run(&mut c, b"\"q,1\",2\r"),
            r#"{"a":"\"q","b":"1\"","c":"2\r"}"#
        );
        let mut c = CsvToJson::new(&names, "\\|", false).unwrap();
        assert_eq!(run(&mut c, b"x|y"), r#"{"a":"x","b":"y","c":null}"#);
        let mut c = CsvToJson::new(&names, "|", false).unwrap();
        assert_eq!(run(&mut c, b"xy"), r#"{"a":"x","b":"y","c":null}"#);
        let dup: Vec<String> = ["a", "b", "a"].iter().map(|s| s.to_string()).collect();
        let mut c = CsvToJson::new(&dup, ",", false).unwrap();
        assert_eq!(run(&mut c, b"1,2,3"), r#"{"a":"3","b":"2"}"#);
    }

    #[test]
    fn tab_delimiter() {
        let names: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let mut c = CsvToJson::new(&names, "\\t", true).unwrap();
        assert_eq!(run(&mut c, b"x y\tz,w"), r#"{"a":"x y","b":"z,w"}"#);
    }
}
