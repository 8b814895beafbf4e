//! KPL aggregated records: many user records in one Kinesis record, in the format of the
//! Kinesis Producer Library, read by the KCL, `aws-kinesis-agg` and Lambda.
//!
//! ```text
//! F3 89 9A C2 | protobuf AggregatedRecord | MD5 of the protobuf bytes (16 bytes)
//!
//! message AggregatedRecord {
//!   repeated string partition_key_table     = 1;
//!   repeated string explicit_hash_key_table = 2;
//!   repeated Record records                 = 3;
//! }
//! message Record {
//!   required uint64 partition_key_index     = 1;
//!   optional uint64 explicit_hash_key_index = 2;
//!   required bytes  data                    = 3;
//!   repeated Tag    tags                    = 4;
//! }
//! message Tag { required string key = 1; optional string value = 2; }
//! ```
//!
//! The [`Aggregator`] writes the protobuf by hand straight into its buffers (no message
//! struct per user record) and knows its exact encoded size before each addition, so an
//! aggregate never exceeds its limit. The `prost` structs below serve decoding (tests,
//! tools) and document the schema.

use std::collections::HashMap;

use md5::{Digest, Md5};

/// The four bytes every aggregated record starts with.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
/// Length of the MD5 trailer.
pub const DIGEST_LEN: usize = 16;
/// Size of an aggregate holding nothing: magic and trailer.
pub const EMPTY_SIZE: usize = MAGIC.len() + DIGEST_LEN;

/// `AggregatedRecord` (decoding side).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AggregatedRecord {
    /// Partition keys, referenced by index.
    #[prost(string, repeated, tag = "1")]
    pub partition_key_table: Vec<String>,
    /// Explicit hash keys (decimal 128-bit numbers), referenced by index.
    #[prost(string, repeated, tag = "2")]
    pub explicit_hash_key_table: Vec<String>,
    /// The user records.
    #[prost(message, repeated, tag = "3")]
    pub records: Vec<Record>,
}

/// `Record` (decoding side).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Record {
    /// Index into `partition_key_table`.
    #[prost(uint64, required, tag = "1")]
    pub partition_key_index: u64,
    /// Index into `explicit_hash_key_table`.
    #[prost(uint64, optional, tag = "2")]
    pub explicit_hash_key_index: Option<u64>,
    /// The user record.
    #[prost(bytes = "vec", required, tag = "3")]
    pub data: Vec<u8>,
    /// Tags (never written by this agent).
    #[prost(message, repeated, tag = "4")]
    pub tags: Vec<Tag>,
}

/// `Tag` (decoding side).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Tag {
    /// Key.
    #[prost(string, required, tag = "1")]
    pub key: String,
    /// Value.
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

/// Why bytes are not a valid aggregated record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Too short or without the magic: a plain record.
    #[error("not an aggregated record (no magic)")]
    NotAggregated,
    /// The MD5 trailer does not match.
    #[error("aggregated record checksum mismatch")]
    Checksum,
    /// The protobuf does not parse.
    #[error("aggregated record protobuf: {0}")]
    Protobuf(String),
    /// A record refers to a key index outside the tables.
    #[error("aggregated record refers to key index {0} outside its table")]
    BadIndex(u64),
}

/// True when `data` starts with the magic and is long enough to be an aggregate.
pub fn is_aggregated(data: &[u8]) -> bool {
    data.len() >= EMPTY_SIZE && data[..4] == MAGIC
}

/// Decodes and checks an aggregated record (magic, MD5, indexes).
pub fn decode(data: &[u8]) -> Result<AggregatedRecord, DecodeError> {
    if !is_aggregated(data) {
        return Err(DecodeError::NotAggregated);
    }
    let body = &data[MAGIC.len()..data.len() - DIGEST_LEN];
    if Md5::digest(body).as_slice() != &data[data.len() - DIGEST_LEN..] {
        return Err(DecodeError::Checksum);
    }
    let agg = <AggregatedRecord as prost::Message>::decode(body)
        .map_err(|e| DecodeError::Protobuf(e.to_string()))?;
    for r in &agg.records {
        if r.partition_key_index as usize >= agg.partition_key_table.len() {
            return Err(DecodeError::BadIndex(r.partition_key_index));
        }
        if let Some(i) = r.explicit_hash_key_index {
            if i as usize >= agg.explicit_hash_key_table.len() {
                return Err(DecodeError::BadIndex(i));
            }
        }
    }
    Ok(agg)
}

/// See [`Aggregator::place`].
struct Placement {
    key_idx: u64,
    key_new: bool,
    ehk_idx: Option<u64>,
    ehk_new: bool,
    size: usize,
}

/// Builds one aggregated record at a time, up to a size limit.
#[derive(Debug)]
pub struct Aggregator {
    limit: usize,
    keys: Vec<String>,
    key_index: HashMap<String, u64>,
    /// Index of the last record's key: records in a row tend to share one (one key per
    /// shard), and comparing it costs less than hashing.
    last_key: u64,
    ehks: Vec<String>,
    ehk_index: HashMap<String, u64>,
    /// Encoded size of the two key tables (field headers included).
    tables_len: usize,
    /// The encoded `records` fields, back to back.
    records: Vec<u8>,
    count: usize,
}

impl Aggregator {
    /// An aggregator whose aggregates never exceed `limit` bytes (magic and trailer
    /// included).
    pub fn new(limit: usize) -> Self {
        Self::with_buffer(limit, Vec::new())
    }

    /// [`new`](Self::new), encoding the records into `records` (cleared first), a buffer
    /// kept for reuse.
    pub fn with_buffer(limit: usize, mut records: Vec<u8>) -> Self {
        records.clear();
        Aggregator {
            limit,
            keys: Vec::new(),
            key_index: HashMap::new(),
            last_key: 0,
            ehks: Vec::new(),
            ehk_index: HashMap::new(),
            tables_len: 0,
            records,
            count: 0,
        }
    }

    /// The size limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Number of user records in the current aggregate.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the current aggregate holds no user record.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Encoded size of the current aggregate.
    pub fn size(&self) -> usize {
        EMPTY_SIZE + self.tables_len + self.records.len()
    }

    /// The partition key of the first user record (the KPL sends the aggregate with it).
    pub fn first_key(&self) -> Option<&str> {
        self.keys.first().map(String::as_str)
    }

    /// Size of the aggregate once a user record with `key`, `ehk` and `data_len` bytes of
    /// data is added.
    pub fn size_with(&self, key: &str, ehk: Option<&str>, data_len: usize) -> usize {
        self.place(key, ehk, data_len).size
    }

    /// Where a user record would go: its key indexes (found or new) and the aggregate's
    /// size with it. One table lookup per key, shared by the size check and the addition.
    fn place(&self, key: &str, ehk: Option<&str>, data_len: usize) -> Placement {
        let same = self
            .keys
            .get(self.last_key as usize)
            .is_some_and(|k| k == key);
        let (key_idx, key_new) = match same {
            true => (self.last_key, false),
            false => match self.key_index.get(key) {
                Some(&i) => (i, false),
                None => (self.keys.len() as u64, true),
            },
        };
        let (ehk_idx, ehk_new) = match ehk {
            None => (None, false),
            Some(e) => match self.ehk_index.get(e) {
                Some(&i) => (Some(i), false),
                None => (Some(self.ehks.len() as u64), true),
            },
        };
        let key_cost = if key_new { field_len(key.len()) } else { 0 };
        let ehk_cost = match (ehk, ehk_new) {
            (Some(e), true) => field_len(e.len()),
            _ => 0,
        };
        Placement {
            key_idx,
            key_new,
            ehk_idx,
            ehk_new,
            size: self.size()
                + key_cost
                + ehk_cost
                + field_len(record_len(key_idx, ehk_idx, data_len)),
        }
    }

    /// Adds a user record if the aggregate stays within the limit; returns false (and
    /// changes nothing) otherwise. A record too large for even an empty aggregate is
    /// refused too: send it as a plain record.
    pub fn try_add(&mut self, key: &str, ehk: Option<&str>, data: &[u8]) -> bool {
        let p = self.place(key, ehk, data.len());
        if p.size > self.limit {
            return false;
        }
        if p.key_new {
            self.keys.push(key.to_owned());
            self.key_index.insert(key.to_owned(), p.key_idx);
            self.tables_len += field_len(key.len());
        }
        if let (Some(e), true) = (ehk, p.ehk_new) {
            self.ehks.push(e.to_owned());
            self.ehk_index
                .insert(e.to_owned(), p.ehk_idx.expect("an index for a new key"));
            self.tables_len += field_len(e.len());
        }
        let (key_idx, ehk_idx) = (p.key_idx, p.ehk_idx);
        self.last_key = key_idx;
        let inner = record_len(key_idx, ehk_idx, data.len());
        let buf = &mut self.records;
        buf.push(0x1A); // field 3, length-delimited
        put_varint(buf, inner as u64);
        buf.push(0x08); // field 1, varint
        put_varint(buf, key_idx);
        if let Some(e) = ehk_idx {
            buf.push(0x10); // field 2, varint
            put_varint(buf, e);
        }
        buf.push(0x1A); // field 3, length-delimited
        put_varint(buf, data.len() as u64);
        buf.extend_from_slice(data);
        self.count += 1;
        true
    }

    /// Appends the current aggregate to `out` and starts a new, empty one.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        self.finish_unsealed(out);
        seal(&mut [&mut out[start..]]);
    }

    /// [`finish`](Self::finish) without the MD5 trailer: the last 16 bytes are zeros
    /// until [`seal`] writes them, which hashes several aggregates at once.
    pub fn finish_unsealed(&mut self, out: &mut Vec<u8>) {
        out.reserve(self.size());
        let start = out.len();
        self.write_head(out);
        out.extend_from_slice(&self.records);
        out.extend_from_slice(&[0; DIGEST_LEN]);
        debug_assert_eq!(out.len() - start, self.size());
        self.clear();
    }

    /// [`finish_unsealed`](Self::finish_unsealed) in place: the aggregate is made in the
    /// records' own buffer (the key tables moved in before the records, which are not
    /// copied) and returned; `next` (cleared) holds the records of the next aggregate.
    pub fn take_unsealed(&mut self, mut next: Vec<u8>) -> Vec<u8> {
        next.clear();
        let size = self.size();
        let mut head = Vec::with_capacity(size - self.records.len() - DIGEST_LEN);
        self.write_head(&mut head);
        let mut out = std::mem::replace(&mut self.records, next);
        out.reserve(head.len() + DIGEST_LEN);
        out.splice(0..0, head);
        out.extend_from_slice(&[0; DIGEST_LEN]);
        debug_assert_eq!(out.len(), size);
        self.clear();
        out
    }

    /// Appends what comes before the records: the magic and the two key tables.
    fn write_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        for k in &self.keys {
            out.push(0x0A); // field 1
            put_varint(out, k.len() as u64);
            out.extend_from_slice(k.as_bytes());
        }
        for e in &self.ehks {
            out.push(0x12); // field 2
            put_varint(out, e.len() as u64);
            out.extend_from_slice(e.as_bytes());
        }
    }

    /// Drops the current aggregate.
    pub fn clear(&mut self) {
        self.keys.clear();
        self.key_index.clear();
        self.last_key = 0;
        self.ehks.clear();
        self.ehk_index.clear();
        self.tables_len = 0;
        self.records.clear();
        self.count = 0;
    }
}

/// Writes the MD5 trailer of each aggregate made by [`Aggregator::finish_unsealed`],
/// hashing them side by side (see [`crate::md5many`]).
pub fn seal(aggregates: &mut [&mut [u8]]) {
    let digests = {
        let bodies: Vec<&[u8]> = aggregates
            .iter()
            .map(|a| &a[MAGIC.len()..a.len() - DIGEST_LEN])
            .collect();
        crate::md5many::digests(&bodies)
    };
    for (a, d) in aggregates.iter_mut().zip(digests) {
        let end = a.len();
        a[end - DIGEST_LEN..].copy_from_slice(&d);
    }
}

/// Length of a `Record` message body.
fn record_len(key_idx: u64, ehk_idx: Option<u64>, data_len: usize) -> usize {
    1 + varint_len(key_idx)
        + ehk_idx.map_or(0, |e| 1 + varint_len(e))
        + 1
        + varint_len(data_len as u64)
        + data_len
}

/// Length of a length-delimited field (one-byte tag) with a body of `len` bytes.
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn varint_len(v: u64) -> usize {
    // 7 bits per byte, at least one byte.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn varint_len_matches_encoding() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::MAX, 1 << 35] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v), "{v}");
        }
    }

    #[test]
    fn encodes_what_prost_decodes_and_dedupes_keys() {
        let mut agg = Aggregator::new(1 << 20);
        assert!(agg.try_add("a", None, b"one"));
        assert!(agg.try_add("b", Some("123"), b"two"));
        assert!(agg.try_add("a", None, b""));
        let mut out = Vec::new();
        let size = agg.size();
        agg.finish(&mut out);
        assert_eq!(out.len(), size);
        assert!(agg.is_empty());
        let d = decode(&out).unwrap();
        assert_eq!(d.partition_key_table, vec!["a", "b"]);
        assert_eq!(d.explicit_hash_key_table, vec!["123"]);
        assert_eq!(d.records.len(), 3);
        assert_eq!(d.records[1].explicit_hash_key_index, Some(0));
        assert_eq!(d.records[2].partition_key_index, 0);
        assert_eq!(d.records[2].data, b"");
        // Same bytes as prost's own encoder.
        let mut pb = Vec::new();
        prost::Message::encode(&d, &mut pb).unwrap();
        assert_eq!(&out[4..out.len() - 16], &pb[..]);
    }

    #[test]
    fn an_aggregate_made_in_place_is_the_same_bytes_and_the_next_starts_empty() {
        let fill = |agg: &mut Aggregator, n: usize| {
            for i in 0..n {
                let ehk = (i % 3 == 0).then(|| format!("{}", i * 7));
                assert!(agg.try_add(&format!("k{}", i % 5), ehk.as_deref(), &[i as u8; 300]));
            }
        };
        let mut copied = Aggregator::new(1 << 20);
        let mut in_place = Aggregator::with_buffer(1 << 20, vec![9; 50]);
        for n in [1, 40, 7] {
            fill(&mut copied, n);
            fill(&mut in_place, n);
            let mut want = Vec::new();
            copied.finish_unsealed(&mut want);
            let got = in_place.take_unsealed(Vec::with_capacity(10));
            assert_eq!(got, want, "{n} records");
            assert!(in_place.is_empty());
            assert_eq!(in_place.size(), EMPTY_SIZE);
        }
        let mut sealed = in_place.take_unsealed(Vec::new());
        assert_eq!(sealed.len(), EMPTY_SIZE);
        fill(&mut in_place, 2);
        sealed = in_place.take_unsealed(sealed);
        seal(&mut [&mut sealed[..]]);
        assert_eq!(decode(&sealed).unwrap().records.len(), 2);
    }

    #[test]
    fn checksum_and_magic_are_checked() {
        let mut agg = Aggregator::new(1000);
        agg.try_add("k", None, b"data");
        let mut out = Vec::new();
        agg.finish(&mut out);
        let n = out.len();
        out[n - 1] ^= 1;
        assert_eq!(decode(&out), Err(DecodeError::Checksum));
        assert_eq!(
            decode(b"plain record data here"),
            Err(DecodeError::NotAggregated)
        );
    }

    #[test]
    fn too_large_for_an_empty_aggregate_is_refused() {
        let mut agg = Aggregator::new(100);
        assert!(!agg.try_add("k", None, &[0; 100]));
        assert!(agg.is_empty());
        assert_eq!(agg.size(), EMPTY_SIZE);
    }

    proptest! {
        #[test]
        fn round_trip_within_limit(
            limit in 20usize..4000,
            recs in proptest::collection::vec(
                ("[a-z]{1,3}", proptest::option::of("[0-9]{1,39}"),
                 proptest::collection::vec(any::<u8>(), 0..300)),
                0..60),
        ) {
            let mut agg = Aggregator::new(limit);
            type User = (String, Option<String>, Vec<u8>);
            let mut expected: Vec<Vec<User>> = vec![vec![]];
            let mut outs = Vec::new();
            for (k, e, d) in &recs {
                let before = agg.size_with(k, e.as_deref(), d.len());
                if agg.try_add(k, e.as_deref(), d) {
                    prop_assert_eq!(agg.size(), before);
                    expected.last_mut().unwrap().push((k.clone(), e.clone(), d.clone()));
                } else if !agg.is_empty() {
                    let mut out = Vec::new();
                    agg.finish(&mut out);
                    outs.push(out);
                    expected.push(vec![]);
                    if agg.try_add(k, e.as_deref(), d) {
                        expected.last_mut().unwrap().push((k.clone(), e.clone(), d.clone()));
                    }
                }
                prop_assert!(agg.size() <= limit);
            }
            if !agg.is_empty() {
                let mut out = Vec::new();
                agg.finish(&mut out);
                outs.push(out);
            } else {
                expected.pop();
            }
            prop_assert_eq!(outs.len(), expected.len());
            for (out, exp) in outs.iter().zip(&expected) {
                prop_assert!(out.len() <= limit);
                let d = decode(out).unwrap();
                let got: Vec<_> = d.records.iter().map(|r| (
                    d.partition_key_table[r.partition_key_index as usize].clone(),
                    r.explicit_hash_key_index.map(|i| d.explicit_hash_key_table[i as usize].clone()),
                    r.data.clone(),
                )).collect();
                prop_assert_eq!(&got, exp);
                let mut keys = d.partition_key_table.clone();
                keys.sort();
                keys.dedup();
                prop_assert_eq!(keys.len(), d.partition_key_table.len());
            }
        }
    }
}
