//! One file being tailed: its descriptor, identity and read offset.
//!
//! Reads use `pread` at an explicit offset, never the descriptor's position, so a
//! truncation or a reopen cannot move the offset behind our back.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::event::{fnv1a, FINGERPRINT_MAX_BYTES};

/// Opens `path` for reading without ever blocking (a FIFO that slipped past the scan
/// must not hang the reader).
pub fn open_nonblocking(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

/// The fingerprint of an open file: a checksum of its first line, or of its first
/// [`FINGERPRINT_MAX_BYTES`] when that line is longer. `Ok(None)` while the file holds
/// neither (an empty file, or a first line still being written): nothing can be sent
/// from it yet, because partial lines are held until their newline.
pub fn fingerprint(file: &File) -> io::Result<Option<u64>> {
    let mut buf = [0u8; FINGERPRINT_MAX_BYTES];
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let head = &buf[..n];
    let len = match memchr::memchr(b'\n', head) {
        Some(i) => i + 1,
        None if n == FINGERPRINT_MAX_BYTES => n,
        None => return Ok(None),
    };
    Ok(Some(fnv1a(&head[..len])))
}

/// Where a file's last complete line ends, searching back from `size` at most `window`
/// bytes; 0 when the file has no newline at all, `size` when the window has none. Used to start a file at its end
/// without cutting a line in two.
pub fn last_line_end(file: &File, size: u64, window: u64) -> io::Result<u64> {
    let from = size.saturating_sub(window);
    let mut buf = vec![0u8; (size - from) as usize];
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], from + n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(match memchr::memrchr(b'\n', &buf[..n]) {
        Some(i) => from + i as u64 + 1,
        // The whole file is one unfinished line: it is sent once complete.
        None if from == 0 => 0,
        None => size,
    })
}

/// `(len, checksum)` of the first `len` bytes of a file (fewer when it is shorter).
pub fn head(file: &File, len: u64) -> io::Result<(u64, u64)> {
    let mut buf = vec![0u8; len as usize];
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok((n as u64, fnv1a(&buf[..n])))
}

/// What `stat` says of an open descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// `st_dev`
    pub dev: u64,
    /// `st_ino`
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Link count: 0 once the file is deleted.
    pub nlink: u64,
}

/// `fstat` of an open file.
pub fn stat(file: &File) -> io::Result<Stat> {
    let m = file.metadata()?;
    Ok(Stat {
        dev: m.dev(),
        ino: m.ino(),
        size: m.len(),
        nlink: m.nlink(),
    })
}

/// `stat` of a path (following symlinks).
pub fn stat_path(path: &Path) -> io::Result<Stat> {
    let m = std::fs::metadata(path)?;
    Ok(Stat {
        dev: m.dev(),
        ino: m.ino(),
        size: m.len(),
        nlink: m.nlink(),
    })
}

/// Reads as much as fits in `buf` at `offset`; `Ok(0)` at end of file.
pub fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Reopens `path` only if it still is the file `(dev, ino)`.
pub fn reopen(path: &Path, dev: u64, ino: u64) -> io::Result<Option<File>> {
    let f = open_nonblocking(path)?;
    let s = stat(&f)?;
    Ok((s.dev == dev && s.ino == ino).then_some(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn fingerprint_waits_for_the_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut w = File::create(&p).unwrap();
        let r = open_nonblocking(&p).unwrap();
        assert_eq!(fingerprint(&r).unwrap(), None);
        w.write_all(b"partial").unwrap();
        assert_eq!(fingerprint(&r).unwrap(), None);
        w.write_all(b" line\nmore").unwrap();
        let a = fingerprint(&r).unwrap().unwrap();
        w.write_all(b" and more\n").unwrap();
        assert_eq!(
            fingerprint(&r).unwrap(),
            Some(a),
            "later lines do not change it"
        );
        assert_eq!(a, fnv1a(b"partial line\n"));
    }

    #[test]
    fn long_first_line_uses_the_first_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, vec![b'a'; 1000]).unwrap();
        let r = open_nonblocking(&p).unwrap();
        assert_eq!(
            fingerprint(&r).unwrap(),
            Some(fnv1a(&[b'a'; FINGERPRINT_MAX_BYTES]))
        );
    }

    #[test]
    fn last_line_end_does_not_cut_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"one\ntwo\nthr").unwrap();
        let r = open_nonblocking(&p).unwrap();
        assert_eq!(last_line_end(&r, 11, 64).unwrap(), 8);
        assert_eq!(last_line_end(&r, 8, 64).unwrap(), 8);
        assert_eq!(last_line_end(&r, 3, 64).unwrap(), 0);
        assert_eq!(last_line_end(&r, 11, 2).unwrap(), 11);
    }
}
