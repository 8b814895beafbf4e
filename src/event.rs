//! The types passed between stages: file identity, record IDs, batches and the byte
//! ranges each batch covers. Only types live here; no stage logic.
//!
//! A batch is one contiguous buffer of record bytes plus an index, not a vector of
//! separately allocated records: the tailer fills it without an allocation per record
//! and a sink reads slices of it.

use std::fmt;
use std::ops::Range;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Identity of a file's content, independent of its path (SPEC §4).
///
/// Device and inode find the file again after a rename; `fingerprint` (a checksum of its
/// first line, at most [`FINGERPRINT_MAX_BYTES`]) tells an inode reused by another file
/// apart; `generation` counts truncations, so a file truncated and rewritten with the
/// same first line still gets a new identity.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord, Default,
)]
pub struct FileKey {
    /// `st_dev`
    pub dev: u64,
    /// `st_ino`
    pub ino: u64,
    /// Checksum of the first line (up to [`FINGERPRINT_MAX_BYTES`]).
    pub fingerprint: u64,
    /// Number of truncations seen for this inode and fingerprint.
    pub generation: u32,
}

/// The fingerprint covers the first line, or this many bytes when the first line is longer.
pub const FINGERPRINT_MAX_BYTES: usize = 256;

impl FileKey {
    /// A 64-bit digest of the whole identity; the prefix of every record ID from this file.
    pub fn digest(&self) -> u64 {
        let mut bytes = [0u8; 28];
        bytes[..8].copy_from_slice(&self.dev.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.ino.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.fingerprint.to_le_bytes());
        bytes[24..].copy_from_slice(&self.generation.to_le_bytes());
        fnv1a(&bytes)
    }
}

/// FNV-1a, 64 bits: stable across versions and platforms (unlike `std::hash`), which
/// record IDs and checkpoint fingerprints must be.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The ID of one record: its file's identity and the offset of its first byte (SPEC §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecordId {
    /// [`FileKey::digest`] of the source file.
    pub file: u64,
    /// Offset of the record's first byte in the file.
    pub offset: u64,
}

impl RecordId {
    /// The ID of the record that starts at `offset` in the file `key`.
    pub fn new(key: &FileKey, offset: u64) -> Self {
        RecordId {
            file: key.digest(),
            offset,
        }
    }
}

impl RecordId {
    /// The ID of the record that starts at `offset` in the file whose
    /// [`FileKey::digest`] is `file` (saves hashing the key once per record).
    pub fn from_digest(file: u64, offset: u64) -> Self {
        RecordId { file, offset }
    }

    /// Appends the ID as [`Display`](fmt::Display) writes it, without the formatting
    /// machinery (it is written once per record).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for i in (0..16).rev() {
            out.push(HEX[((self.file >> (i * 4)) & 0xF) as usize]);
        }
        out.push(b'-');
        let mut digits = [0u8; 20];
        let mut n = self.offset;
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(&digits[at..]);
    }
}

impl fmt::Display for RecordId {
    /// `<16 hex digits of the file digest>-<decimal offset>`, e.g. `9f0c2a1b3d4e5f60-1234`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}-{}", self.file, self.offset)
    }
}

/// The bytes `(from, to]` of one file that a batch covers: every record that starts in this
/// range is in the batch or was dropped by a processor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileRange {
    /// The file.
    pub key: FileKey,
    /// Exclusive start: the checkpoint before this batch.
    pub from: u64,
    /// Inclusive end: the checkpoint once this batch is acknowledged.
    pub to: u64,
}

/// One record inside a [`Batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordMeta {
    /// Range of the record's bytes in [`Batch::data`].
    pub data: Range<u32>,
    /// Range of its partition key in [`Batch::keys`]; empty means "any key" (RANDOM).
    pub key: Range<u32>,
    /// Its ID.
    pub id: RecordId,
}

/// Records on their way to one destination, with the file ranges they cover.
#[derive(Debug)]
pub struct Batch {
    /// Sequence number within the flow, in the order batches were built.
    pub seq: u64,
    /// All record bytes, back to back.
    pub data: Vec<u8>,
    /// All explicit partition keys, back to back.
    pub keys: Vec<u8>,
    /// The records, in file order.
    pub records: Vec<RecordMeta>,
    /// The ranges of the files this batch covers, at most one per file.
    pub ranges: Vec<FileRange>,
    /// When its first record arrived (for `maxBufferAgeMillis`).
    pub opened: Instant,
}

impl Batch {
    /// An empty batch.
    pub fn new(seq: u64) -> Self {
        Batch {
            seq,
            data: Vec::new(),
            keys: Vec::new(),
            records: Vec::new(),
            ranges: Vec::new(),
            opened: Instant::now(),
        }
    }

    /// The bytes of record `i`.
    pub fn record(&self, i: usize) -> &[u8] {
        let r = &self.records[i].data;
        &self.data[r.start as usize..r.end as usize]
    }

    /// The explicit partition key of record `i`, if it has one.
    pub fn key(&self, i: usize) -> Option<&[u8]> {
        let r = &self.records[i].key;
        if r.is_empty() {
            None
        } else {
            Some(&self.keys[r.start as usize..r.end as usize])
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when it holds no record (it may still cover ranges of dropped records).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Appends a record.
    pub fn push(&mut self, data: &[u8], key: Option<&[u8]>, id: RecordId) {
        let start = self.data.len() as u32;
        self.data.extend_from_slice(data);
        let kstart = self.keys.len() as u32;
        if let Some(k) = key {
            self.keys.extend_from_slice(k);
        }
        self.records.push(RecordMeta {
            data: start..self.data.len() as u32,
            key: kstart..self.keys.len() as u32,
            id,
        });
    }

    /// Appends `bytes` to the last record's data (its trailing newline).
    pub fn extend_last(&mut self, bytes: &[u8]) {
        if let Some(last) = self.records.last_mut() {
            self.data.extend_from_slice(bytes);
            last.data.end = self.data.len() as u32;
        }
    }

    /// Extends the range of `key` to `to` (or adds one starting at `from`).
    pub fn cover(&mut self, key: FileKey, from: u64, to: u64) {
        if let Some(r) = self.ranges.iter_mut().find(|r| r.key == key) {
            r.to = r.to.max(to);
        } else {
            self.ranges.push(FileRange { key, from, to });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_id_format_is_stable() {
        let key = FileKey {
            dev: 2049,
            ino: 131_073,
            fingerprint: 0x1234_5678_9abc_def0,
            generation: 0,
        };
        // Pinned: consumers de-duplicate on these strings across agent versions.
        assert_eq!(RecordId::new(&key, 42).to_string(), "23cf28467fdd4d1f-42");
        let next = FileKey {
            generation: 1,
            ..key
        };
        assert_ne!(key.digest(), next.digest());
        for (file, offset) in [(0, 0), (1, 9), (u64::MAX, u64::MAX), (0xabc, 1_000_000)] {
            let id = RecordId::from_digest(file, offset);
            let mut out = Vec::new();
            id.write_to(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), id.to_string());
        }
    }

    #[test]
    fn batch_push_and_read_back() {
        let key = FileKey {
            dev: 1,
            ino: 2,
            fingerprint: 3,
            generation: 0,
        };
        let mut b = Batch::new(0);
        b.push(b"hello", None, RecordId::new(&key, 0));
        b.push(b"world", Some(b"k"), RecordId::new(&key, 6));
        assert_eq!(b.record(0), b"hello");
        assert_eq!(b.record(1), b"world");
        assert_eq!(b.key(0), None);
        assert_eq!(b.key(1), Some(&b"k"[..]));
        b.cover(key, 0, 6);
        b.cover(key, 0, 12);
        assert_eq!(
            b.ranges,
            vec![FileRange {
                key,
                from: 0,
                to: 12
            }]
        );
    }
}
