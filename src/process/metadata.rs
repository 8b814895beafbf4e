//! `ADDMETADATA`: wraps a record into `{"ts":...,"metadata":...,"data":...}`.
//!
//! `ts` (only with `timestamp: true`) is the processing time, ISO 8601 UTC with
//! milliseconds: `2026-11-27T12:00:00.000Z`. `metadata` is the configured value as JSON.
//! `data` is the record (without its final newline) as a JSON string, also when a
//! previous processor made it JSON, as the Java agent does; with `nestObjects: true`
//! (extension) a record that is a JSON object (made by a processor before, or a line that
//! is one) is nested as an object instead.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::json::{encoded_key, write_datetime, Obj};

/// One `ADDMETADATA` step.
#[derive(Debug)]
pub(crate) struct AddMetadata {
    /// `metadata`, encoded once.
    metadata: Vec<u8>,
    timestamp: bool,
    nest_objects: bool,
    /// `"YYYY-MM-DDTHH:MM:SS` of `cached_secs`, so that formatting a timestamp is a copy
    /// within the same second.
    cached_secs: u64,
    cached: Vec<u8>,
    ts_buf: Vec<u8>,
    k_ts: Vec<u8>,
    k_metadata: Vec<u8>,
    k_data: Vec<u8>,
}

impl AddMetadata {
    pub(crate) fn new(metadata: &serde_json::Value, timestamp: bool, nest_objects: bool) -> Self {
        AddMetadata {
            metadata: crate::json::java_value(metadata),
            timestamp,
            nest_objects,
            cached_secs: u64::MAX,
            cached: Vec::new(),
            ts_buf: Vec::new(),
            k_ts: encoded_key("ts"),
            k_metadata: encoded_key("metadata"),
            k_data: encoded_key("data"),
        }
    }

    /// True when a JSON object before it stays an object (`nestObjects`).
    pub(crate) fn nests_objects(&self) -> bool {
        self.nest_objects
    }

    fn head(&mut self, obj: &mut Obj) {
        obj.clear();
        if self.timestamp {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            if now.as_secs() != self.cached_secs {
                self.cached_secs = now.as_secs();
                self.cached.clear();
                self.cached.push(b'"');
                write_datetime(&mut self.cached, now.as_secs());
            }
            self.ts_buf.clear();
            self.ts_buf.extend_from_slice(&self.cached);
            let ms = now.subsec_millis();
            self.ts_buf.extend_from_slice(&[
                b'.',
                b'0' + (ms / 100) as u8,
                b'0' + (ms / 10 % 10) as u8,
                b'0' + (ms % 10) as u8,
                b'Z',
                b'"',
            ]);
            obj.push_encoded(&self.k_ts, &self.ts_buf);
        }
        obj.push_encoded(&self.k_metadata, &self.metadata);
    }

    /// Wraps the text record `text`.
    pub(crate) fn apply_text(&mut self, text: &[u8], obj: &mut Obj) {
        self.head(obj);
        obj.push_str(&self.k_data, text);
    }

    /// Wraps the JSON object in `obj`; `tmp` is scratch space.
    pub(crate) fn apply_obj(&mut self, obj: &mut Obj, tmp: &mut Vec<u8>) {
        tmp.clear();
        obj.write_compact(tmp);
        self.head(obj);
        obj.push_encoded(&self.k_data, tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_text_and_objects() {
        let mut m = AddMetadata::new(&serde_json::json!({"k": "v"}), false, true);
        let mut o = Obj::default();
        m.apply_text(b"line \"1\"", &mut o);
        let mut out = Vec::new();
        o.write_compact(&mut out);
        assert_eq!(out, br#"{"metadata":{"k":"v"},"data":"line \"1\""}"#);
        let mut tmp = Vec::new();
        m.apply_obj(&mut o, &mut tmp);
        out.clear();
        o.write_compact(&mut out);
        assert_eq!(
            out,
            br#"{"metadata":{"k":"v"},"data":{"metadata":{"k":"v"},"data":"line \"1\""}}"#
        );
        let mut m = AddMetadata::new(&serde_json::Value::Null, true, false);
        m.apply_text(b"x", &mut o);
        out.clear();
        o.write_compact(&mut out);
        let s = String::from_utf8(out).unwrap();
        let re = regex::Regex::new(
            r#"^\{"ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","metadata":null,"data":"x"\}$"#,
        )
        .unwrap();
        assert!(re.is_match(&s), "{s}");
    }
}
