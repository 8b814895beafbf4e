//! File identity: when a file is the same file, when it is a copy of another, and the
//! checksums that decide it.
//!
//! # The rules
//!
//! - **A file** is an inode `(dev, ino)` with a *fingerprint*, the checksum of its first
//!   line (or first 256 bytes). A file has no identity until it has a first line; nothing
//!   could be sent from it before anyway.
//! - **A generation** counts the truncations seen of one inode and fingerprint: a file
//!   truncated in place (copytruncate, `> file`) is read again from 0 as generation + 1.
//!   Record IDs derive from `(dev, ino, fingerprint, generation)` and the record's offset,
//!   so two distinct files, or two generations of one, never share a record ID.
//! - **The same file** (resuming from a checkpoint): same inode, same fingerprint, at
//!   least as long as the checkpointed offset, the same first bytes as the checkpoint's
//!   *head* checksum (up to 4 KiB), and the same bytes just before the offset as its
//!   *anchor* checksum (up to 256 bytes). Anything else is a new generation, read from
//!   its start: a file rewritten with `O_TRUNC` that begins with the same banner is not
//!   resumed in the middle of its new content.
//! - **A copy** is recognised only as the copy of a file *seen truncated*: in this run
//!   (the reader found the file shorter than what it read, or with another first line),
//!   or at start (a checkpoint whose offset is beyond its file's size). That file is a
//!   *donor*: its head, the offset reading had reached and the anchor there. A new file
//!   is its copy when it has the donor's fingerprint and head and, at the donor's
//!   offset, the donor's anchor; it is read from the end of the donor's last whole
//!   record, with the donor's record IDs (same bytes, same IDs). A copy shorter than that
//!   offset is still being written (logrotate copies in chunks) and is waited for while
//!   it grows, up to [`COPY_WAIT`] of no growth; one that never matches is read from its
//!   start as a file of its own: duplicates, never loss.
//! - **Any other file is a different file**, read from its start (or its end, at a first
//!   start with `initialPosition: END_OF_FILE`), even when it begins like another one
//!   (CSV headers, banners). A new file that begins like a file being read, while that
//!   file has not been truncated, is held for at most [`COPY_WAIT`]: it may be the copy
//!   of a copytruncate whose truncation comes next.
//! - **A checkpoint entry** holds the identity, the acknowledged offset, the head and
//!   anchor checksums, and for a copy the record-ID digest of its original. A flow writes
//!   one entry per inode (its newest generation) plus every older generation that still
//!   has ranges in flight or is a donor, so a restart resumes each from its acknowledged
//!   offset, through the copy where the original was truncated.

use std::fs::File;
use std::io;
use std::time::Duration;

use crate::ack::Known;
use crate::checkpoint::Sum;
use crate::event::fnv1a;
use crate::tail::file::read_at;

/// How many first bytes of a file its head checksum covers.
pub const HEAD_BYTES: u64 = 4096;
/// How many bytes before an offset its anchor checksum covers.
pub const ANCHOR_BYTES: u64 = 256;
/// A possible copy is held this long without growing before it is read as a file of
/// its own.
pub const COPY_WAIT: Duration = Duration::from_secs(5);

/// The checksum of `len` bytes of `file` at `from` (fewer when the file is shorter).
pub fn sum_at(file: &File, from: u64, len: u64) -> io::Result<Sum> {
    let mut buf = vec![0u8; len as usize];
    let mut n = 0;
    while n < buf.len() {
        match read_at(file, &mut buf[n..], from + n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(Sum {
        len: n as u64,
        sum: fnv1a(&buf[..n]),
    })
}

/// The head checksum of a file of `size` bytes.
pub fn head(file: &File, size: u64) -> io::Result<Sum> {
    sum_at(file, 0, HEAD_BYTES.min(size))
}

/// The anchor checksum at `offset`: the bytes just before it.
pub fn anchor(file: &File, offset: u64) -> io::Result<Sum> {
    let len = ANCHOR_BYTES.min(offset);
    sum_at(file, offset - len, len)
}

/// True when `file` holds the bytes `want` describes, ending at `end`.
fn holds(file: &File, end: u64, want: Sum) -> bool {
    end >= want.len && matches!(sum_at(file, end - want.len, want.len), Ok(s) if s == want)
}

/// True when `file` (`size` bytes, with the entry's fingerprint) is still the file the
/// checkpoint entry `known` describes, so that reading may resume at its offset.
pub fn same_file(file: &File, size: u64, known: &Known) -> bool {
    if size < known.offset {
        return false;
    }
    if let Some(h) = known.head {
        if size < h.len || !holds(file, h.len, h) {
            return false;
        }
    }
    match known.anchor {
        Some(a) => holds(file, known.offset, a),
        None => true,
    }
}

/// What a donor knows of the file that was truncated: enough to recognise its copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Original {
    /// Fingerprint of its first line.
    pub fingerprint: u64,
    /// Checksum of its first bytes.
    pub head: Sum,
    /// How far it was read: its copy holds at least this much.
    pub end: u64,
    /// Checksum of the bytes just before `end`.
    pub anchor: Sum,
}

/// Whether a file is the copy of an [`Original`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Its bytes match at the head and at the point where reading resumes.
    Copy,
    /// What it holds so far matches, but it is too short to tell (still being written).
    Wait,
    /// Not a copy of it.
    Different,
}

/// Decides whether `file` (`size` bytes, first-line fingerprint `fingerprint`) is a copy
/// of `original`.
pub fn copy_verdict(file: &File, size: u64, fingerprint: u64, original: &Original) -> Verdict {
    if fingerprint != original.fingerprint {
        return Verdict::Different;
    }
    let head = original.head;
    if size < head.len {
        // Too short to compare its head yet.
        return Verdict::Wait;
    }
    if !holds(file, head.len, head) {
        return Verdict::Different;
    }
    if size < original.end {
        return Verdict::Wait;
    }
    if holds(file, original.end, original.anchor) {
        Verdict::Copy
    } else {
        Verdict::Different
    }
}

/// The last [`ANCHOR_BYTES`] bytes a reader read, to leave an anchor behind when its file
/// turns out to be truncated (its bytes are gone from the file by then).
#[derive(Debug, Default)]
pub struct Tail {
    buf: Vec<u8>,
}

impl Tail {
    /// The bytes of `file` just before `offset`, where reading starts.
    pub fn before(file: &File, offset: u64) -> Self {
        let len = ANCHOR_BYTES.min(offset) as usize;
        let mut buf = vec![0u8; len];
        let mut n = 0;
        while n < len {
            match read_at(file, &mut buf[n..], offset - len as u64 + n as u64) {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
        }
        if n < len {
            // Shorter than it was: no anchor can be trusted.
            buf.clear();
        }
        Tail { buf }
    }

    /// `bytes` were read after everything before.
    pub fn push(&mut self, bytes: &[u8]) {
        let keep = ANCHOR_BYTES as usize;
        if bytes.len() >= keep {
            self.buf.clear();
            self.buf.extend_from_slice(&bytes[bytes.len() - keep..]);
            return;
        }
        self.buf.extend_from_slice(bytes);
        if self.buf.len() > 2 * keep {
            self.buf.drain(..self.buf.len() - keep);
        }
    }

    /// The anchor checksum of the bytes read last.
    pub fn anchor(&self) -> Sum {
        let keep = ANCHOR_BYTES as usize;
        let b = &self.buf[self.buf.len().saturating_sub(keep)..];
        Sum {
            len: b.len() as u64,
            sum: fnv1a(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::FileKey;
    use crate::tail::file::{fingerprint, open_nonblocking};

    fn file(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> (File, u64) {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let f = open_nonblocking(&p).unwrap();
        (f, bytes.len() as u64)
    }

    fn original(bytes: &[u8], end: u64) -> Original {
        let dir = tempfile::tempdir().unwrap();
        let (f, size) = file(&dir, "o", bytes);
        Original {
            fingerprint: fingerprint(&f).unwrap().unwrap(),
            head: head(&f, end.min(size)).unwrap(),
            end,
            anchor: anchor(&f, end).unwrap(),
        }
    }

    fn lines(tag: &str, from: usize, to: usize) -> Vec<u8> {
        let mut v = b"id,worker,value\n".to_vec();
        for i in from..to {
            v.extend_from_slice(format!("{i},{tag},{}\n", i * 7).as_bytes());
        }
        v
    }

    fn verdict(o: &Original, bytes: &[u8]) -> Verdict {
        let dir = tempfile::tempdir().unwrap();
        let (f, size) = file(&dir, "c", bytes);
        let fp = fingerprint(&f).unwrap().unwrap();
        copy_verdict(&f, size, fp, o)
    }

    #[test]
    fn a_whole_copy_is_a_copy() {
        let data = lines("a", 0, 500);
        let o = original(&data, data.len() as u64);
        assert_eq!(verdict(&o, &data), Verdict::Copy);
        // Written on after the copy: still the copy.
        let mut more = data.clone();
        more.extend_from_slice(b"later\n");
        assert_eq!(verdict(&o, &more), Verdict::Copy);
    }

    #[test]
    fn a_copy_still_being_written_is_waited_for() {
        let data = lines("a", 0, 2000);
        let o = original(&data, data.len() as u64);
        for cut in [20, 5000, 8192, data.len() - 1] {
            assert_eq!(
                verdict(&o, &data[..cut]),
                Verdict::Wait,
                "copy of {cut} bytes"
            );
        }
    }

    /// The enemies of a first-bytes heuristic: files that begin alike.
    #[test]
    fn files_that_begin_alike_are_not_copies() {
        let a = lines("a", 0, 500);
        let o = original(&a, a.len() as u64);
        // Same header, other rows.
        assert_eq!(verdict(&o, &lines("b", 0, 500)), Verdict::Different);
        // Same first 4 KiB and more, other bytes where reading would resume.
        let mut b = a.clone();
        let at = b.len() - 10;
        b[at] = b'X';
        assert_eq!(verdict(&o, &b), Verdict::Different);
        // A copy shorter than the original's head is waited for while what it holds
        // matches.
        let o40 = original(&a, 40);
        assert_eq!(verdict(&o40, &a[..20]), Verdict::Wait);
        assert_eq!(verdict(&o40, &lines("b", 0, 5)), Verdict::Different);
        // An original read only as far as its header matches any file with that header:
        // which is why only a file seen truncated can be an original.
        let hdr = original(&a, 16);
        assert_eq!(verdict(&hdr, &lines("b", 0, 500)), Verdict::Copy);
    }

    #[test]
    fn a_rewrite_with_the_same_banner_is_not_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let old = lines("a", 0, 300);
        let (f, size) = file(&dir, "f", &old);
        let key = FileKey {
            dev: 1,
            ino: 1,
            fingerprint: fingerprint(&f).unwrap().unwrap(),
            generation: 0,
        };
        let known = Known {
            key,
            offset: size - 100,
            head: Some(head(&f, size).unwrap()),
            anchor: Some(anchor(&f, size - 100).unwrap()),
            records_of: None,
        };
        assert!(same_file(&f, size, &known));
        let mut grown = old.clone();
        grown.extend_from_slice(&lines("a", 300, 400)[16..]);
        let (g, gsize) = file(&dir, "g", &grown);
        assert!(same_file(&g, gsize, &known), "appended to: the same file");
        // Rewritten from 0 with the same banner and as long: another file.
        let new = lines("z", 0, 400);
        let (n, nsize) = file(&dir, "n", &new);
        assert!(!same_file(&n, nsize, &known));
        // A version-1 entry (no checksums) falls back to the size.
        let v1 = Known {
            head: None,
            anchor: None,
            ..known
        };
        assert!(same_file(&n, nsize, &v1));
    }

    #[test]
    fn tail_keeps_the_last_bytes() {
        let data = lines("a", 0, 100);
        let mut t = Tail::default();
        for c in data.chunks(37) {
            t.push(c);
        }
        let dir = tempfile::tempdir().unwrap();
        let (f, size) = file(&dir, "f", &data);
        assert_eq!(t.anchor(), anchor(&f, size).unwrap());
        let mut t = Tail::before(&f, 100);
        t.push(&data[100..150]);
        assert_eq!(t.anchor(), anchor(&f, 150).unwrap());
    }
}
