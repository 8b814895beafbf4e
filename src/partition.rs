//! Partition keys (`partitionKeyOption`): which key each record is sent with. Pure
//! functions of the record and its line; the sink picks a key for records that have none
//! (RANDOM) and maps keys to shards. Nothing here allocates per record beyond the key.

use md5::{Digest, Md5};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::config::PartitionKeyOption;

/// Kinesis: a partition key is 1 to 256 Unicode characters.
pub const MAX_PARTITION_KEY_CHARS: usize = 256;

/// Computes the partition key of records of one flow.
#[derive(Debug)]
pub struct Keyer {
    option: PartitionKeyOption,
    /// Index of the capture group that holds the key (REGEX): `key` if named, else 1, else 0.
    group: usize,
}

impl Keyer {
    /// A keyer for `option`.
    pub fn new(option: PartitionKeyOption) -> Self {
        let group = match &option {
            PartitionKeyOption::Regex(re) => re
                .capture_names()
                .position(|n| n == Some("key"))
                .unwrap_or(if re.captures_len() > 1 { 1 } else { 0 }),
            _ => 0,
        };
        Keyer { option, group }
    }

    /// True when every record gets a key from the sink (RANDOM).
    pub fn is_random(&self) -> bool {
        matches!(self.option, PartitionKeyOption::Random)
    }

    /// True when keys are the MD5 of the records (DETERMINISTIC): the caller may leave
    /// [`DIGEST_KEY_LEN`] bytes for each and fill a batch's worth at once with
    /// [`digest_keys`], which hashes them side by side.
    pub fn is_digest(&self) -> bool {
        matches!(self.option, PartitionKeyOption::Deterministic)
    }

    /// Appends the key of the record `record` (made from the raw `line`) to `out`; appends
    /// nothing for "any key" (RANDOM, or a JSON field / regex that did not match).
    /// The key appended is valid UTF-8 and at most [`MAX_PARTITION_KEY_CHARS`] characters.
    pub fn key_for(&self, line: &[u8], record: &[u8], out: &mut Vec<u8>) {
        match &self.option {
            PartitionKeyOption::Random => {}
            PartitionKeyOption::Deterministic => push_hex(&Md5::digest(record), out),
            PartitionKeyOption::Constant(k) => push_key(k.as_bytes(), out),
            PartitionKeyOption::JsonField(name) => {
                if let Some(v) = json_field(record, name) {
                    push_key(v.as_bytes(), out);
                }
            }
            PartitionKeyOption::Regex(re) => {
                if let Some(m) = re.captures(line).and_then(|c| c.get(self.group)) {
                    push_key(m.as_bytes(), out);
                }
            }
        }
    }
}

/// Appends `key` made valid: invalid UTF-8 replaced, keys longer than the Kinesis limit
/// replaced by the hex MD5 of their bytes (stable, so equal keys still land together).
pub(crate) fn push_key(key: &[u8], out: &mut Vec<u8>) {
    if key.is_empty() {
        return;
    }
    let s = String::from_utf8_lossy(key);
    if s.chars().count() > MAX_PARTITION_KEY_CHARS {
        push_hex(&Md5::digest(key), out);
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// Length of the random key a Kinesis sink gives a record without one (16 hex digits).
pub const RANDOM_KEY_LEN: usize = 16;

/// Length of a DETERMINISTIC key: the hex MD5 of the record.
pub const DIGEST_KEY_LEN: usize = 32;

/// The DETERMINISTIC keys of `records`, back to back ([`DIGEST_KEY_LEN`] bytes each):
/// what [`Keyer::key_for`] gives, for many at once (hashed side by side).
pub fn digest_keys(records: &[&[u8]]) -> Vec<u8> {
    let mut keys = Vec::with_capacity(records.len() * DIGEST_KEY_LEN);
    for d in crate::md5many::digests(records) {
        push_hex(&d, &mut keys);
    }
    keys
}

fn push_hex(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
}

/// The top-level field `name` of the JSON object `record`, as a string: a string's value,
/// a number's text, `true`/`false`. `None` for anything else or when absent. Only that
/// field is materialised; the rest of the object is skipped.
pub fn json_field(record: &[u8], name: &str) -> Option<String> {
    let mut de = serde_json::Deserializer::from_slice(record);
    FieldSeed { name }.deserialize(&mut de).ok().flatten()
}

struct FieldSeed<'a> {
    name: &'a str,
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_> {
    type Value = Option<String>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(is_it) = map.next_key_seed(KeyIs(self.name))? {
            if is_it && found.is_none() {
                let v: serde_json::Value = map.next_value()?;
                found = match v {
                    serde_json::Value::String(s) => Some(s),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    serde_json::Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                };
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Compares an object key with a name without allocating it.
struct KeyIs<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::bytes::Regex;

    fn key(opt: PartitionKeyOption, line: &[u8], record: &[u8]) -> Option<String> {
        let mut out = Vec::new();
        Keyer::new(opt).key_for(line, record, &mut out);
        (!out.is_empty()).then(|| String::from_utf8(out).unwrap())
    }

    #[test]
    fn digest_keys_are_the_deterministic_keys() {
        let keyer = Keyer::new(PartitionKeyOption::Deterministic);
        assert!(keyer.is_digest());
        let records: Vec<Vec<u8>> = (0..200).map(|n| vec![b'a' + (n % 26) as u8; n]).collect();
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let keys = digest_keys(&refs);
        assert_eq!(keys.len(), refs.len() * DIGEST_KEY_LEN);
        for (r, key) in refs.iter().zip(keys.chunks_exact(DIGEST_KEY_LEN)) {
            let mut one = Vec::new();
            keyer.key_for(b"line", r, &mut one);
            assert_eq!(key, &one[..], "record of {} bytes", r.len());
        }
    }

    #[test]
    fn random_gives_no_key() {
        assert_eq!(key(PartitionKeyOption::Random, b"a", b"a"), None);
    }

    #[test]
    fn deterministic_is_a_hash_of_the_record() {
        let a = key(PartitionKeyOption::Deterministic, b"x", b"hello").unwrap();
        assert_eq!(a, "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(
            key(PartitionKeyOption::Deterministic, b"y", b"hello").unwrap(),
            a
        );
    }

    #[test]
    fn constant_and_long_keys() {
        assert_eq!(
            key(PartitionKeyOption::Constant("k1".into()), b"", b"").as_deref(),
            Some("k1")
        );
        let long = "é".repeat(300);
        let k = key(PartitionKeyOption::Constant(long), b"", b"").unwrap();
        assert_eq!(k.len(), 32);
        let ok = "é".repeat(256);
        assert_eq!(
            key(PartitionKeyOption::Constant(ok.clone()), b"", b"").unwrap(),
            ok
        );
    }

    #[test]
    fn json_field_reads_top_level_strings_and_numbers() {
        let opt = || PartitionKeyOption::JsonField("user".into());
        assert_eq!(
            key(opt(), b"", br#"{"a":{"user":"no"},"user":"bob"}"#).as_deref(),
            Some("bob")
        );
        assert_eq!(
            key(opt(), b"", br#"{"user":42,"x":[1,2]}"#).as_deref(),
            Some("42")
        );
        assert_eq!(
            key(opt(), b"", br#"{"us\u0065r":"esc"}"#).as_deref(),
            Some("esc")
        );
        assert_eq!(key(opt(), b"", br#"{"user":null}"#), None);
        assert_eq!(key(opt(), b"", br#"{"user":""}"#), None);
        assert_eq!(key(opt(), b"", br#"{"other":1}"#), None);
        assert_eq!(key(opt(), b"", b"not json"), None);
    }

    #[test]
    fn regex_uses_named_group_then_first_group() {
        let named = PartitionKeyOption::Regex(Regex::new(r"(\d+) host=(?P<key>\w+)").unwrap());
        assert_eq!(
            key(named, b"12 host=web1 x", b"rec").as_deref(),
            Some("web1")
        );
        let first = PartitionKeyOption::Regex(Regex::new(r"user=(\w+)").unwrap());
        assert_eq!(
            key(first.clone(), b"a user=ann b", b"").as_deref(),
            Some("ann")
        );
        assert_eq!(key(first, b"nothing", b""), None);
        let whole = PartitionKeyOption::Regex(Regex::new(r"^\w+").unwrap());
        assert_eq!(key(whole, b"abc def", b"").as_deref(), Some("abc"));
    }
}
