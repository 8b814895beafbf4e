//! One flow's file loop: discovery, identity, fair reads, rotation and copies, and the
//! recovery at start, feeding each file's framer and the flow's batcher.
//!
//! # How it works
//!
//! Each flow runs this loop on one OS thread (not a thread per file): reads from page
//! cache are fast and blocking, and keeping them off the async runtime keeps the sinks'
//! latency low. The loop owns every file of the flow:
//!
//! 1. **Discover.** A rescan (at start, when an inotify event says something was created,
//!    renamed or removed, when the event queue overflowed, and every `rescanIntervalMillis`
//!    as the safety net) lists the matching files. A file is known by its inode, so a
//!    renamed file keeps its reader; one no longer found under the pattern is *gone* and is
//!    read to its end through the descriptor already open, then closed once it stopped
//!    growing for [`GONE_GRACE`].
//! 2. **Identify.** A file's identity ([`FileKey`]) needs its first line (the fingerprint);
//!    until the file has one, nothing can be sent from it anyway. The identity decides
//!    where reading starts: the checkpoint when one matches, else the file's start (or its
//!    end, for files that were there before the agent's first start under
//!    `initialPosition: END_OF_FILE`).
//! 3. **Read fairly.** Every file with new data (an inotify modify event, a rescan that saw
//!    it grow) gets up to [`FILE_BUDGET`] bytes per round, so one busy file cannot starve
//!    the others. At end of file the reader checks for truncation (size below the offset,
//!    or a changed first line): the file gets a new generation and is read from 0.
//! 4. **Frame, process, batch.** Bytes go through the file's framer and the flow's processor
//!    chain into the current batch, which records the `(from, to]` range of each file it
//!    covers. A batch is sent when full or older than `maxBufferAgeMillis`; sending blocks
//!    when `publishQueueCapacity` batches wait, which stops reading: the files are the
//!    buffer.
//! 5. **Sleep.** With nothing to read the thread waits for the next event or deadline (a
//!    batch's age, a multi-line record's silence, a gone file's grace, the next rescan).
//!    An idle agent does not poll.
//!
//! Checkpoints are never moved here: ranges are registered with [`FlowCheckpoints`] when a
//! batch is built and move forward when the sink acknowledges it.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::ack::FlowCheckpoints;
use crate::aggregate::batcher::Emitter;
use crate::checkpoint::Sum;
use crate::config::FlowConfig;
use crate::event::FileKey;
use crate::framing::{FrameEvent, Framer};
use crate::metrics::FlowStats;
use crate::tail::discovery::{self, Pattern, Reported};
use crate::tail::file as tfile;
use crate::tail::identity::{self, Original, Tail};
use crate::tail::watch::Wake;

/// Bytes read per `pread`.
pub const READ_CHUNK: usize = 256 * 1024;
/// Bytes one file may read per round before the others get their turn.
pub const FILE_BUDGET: usize = 1024 * 1024;
/// A file that left the pattern (rotated away, deleted) is closed once it has not grown
/// for this long: a writer that still holds it open has had time to reopen its log.
pub const GONE_GRACE: Duration = Duration::from_secs(10);
/// How often files that left the watched directories are polled for growth.
pub const GONE_POLL: Duration = Duration::from_millis(250);
/// How far back from the end a file started at its end looks for the last newline.
const END_SEARCH_WINDOW: u64 = 64 * 1024;
/// How long a truncated file can still be recognised in a new copy.
pub(super) const DONOR_TTL: Duration = Duration::from_secs(60);
/// How often the directory of a truncated file is searched for its copy, when the copy
/// is outside the pattern.
pub(super) const DONOR_LOOK_EVERY: Duration = Duration::from_secs(1);

/// Where a file starts once its identity is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// Its checkpoint if one matches, else offset 0.
    Checkpoint,
    /// Its checkpoint if one matches, else its end as it was when discovered (this size),
    /// moved back to the end of its last complete line.
    End(u64),
    /// Offset 0 with this generation (after a truncation seen in this run).
    Fresh(u32),
}

// One per file, and most files are reading: boxing the large variant would save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Phase {
    /// Waiting for a first line to fingerprint.
    Unidentified(Start),
    /// Reading.
    Reading {
        key: FileKey,
        /// The digest record IDs are derived from: `key`'s, or for a copy made by
        /// copytruncate, the digest of the file it is a copy of (same bytes, same IDs).
        id: u64,
        framer: Framer,
        /// Everything before this is covered by a batch already.
        covered: u64,
        /// Checksum of the first bytes (up to [`identity::HEAD_BYTES`]): evidence that
        /// another file is a copy of this one, and that a file found at start is this one.
        head: Sum,
        /// The last bytes read, for the anchor a truncation leaves behind.
        tail: Tail,
    },
}

/// A file seen truncated (by copytruncate, usually): a file whose bytes match it at its
/// head and where its reading stopped is its copy, and is read on from there.
#[derive(Debug)]
pub(crate) struct Donor {
    /// The truncated file's identity (its checkpoint entry, whose ranges in flight the
    /// copy's checkpoint waits for).
    pub(super) key: FileKey,
    /// The digest its record IDs carry.
    pub(super) id: u64,
    pub(super) original: Original,
    /// Where the copy is read from: the end of the last whole record of the original.
    pub(super) resume: u64,
    /// The original's unfinished record (a partial line, a multi-line record), sent
    /// from here if no copy is ever found; a copy holds it whole and reads it again.
    pub(super) framer: Option<Framer>,
    /// Where its copy may be, outside the pattern.
    pub(super) dir: Option<PathBuf>,
    pub(super) at: Instant,
    pub(super) last_look: Option<Instant>,
}

#[derive(Debug)]
pub(crate) struct Reader {
    pub(super) path: PathBuf,
    pub(super) dev: u64,
    pub(super) ino: u64,
    pub(super) file: Option<File>,
    pub(super) phase: Phase,
    /// Next byte to read.
    pub(super) offset: u64,
    /// Size at the last stat.
    pub(super) size: u64,
    pub(super) dirty: bool,
    pub(super) at_eof: bool,
    /// When the file left the pattern, and whether it was deleted.
    pub(super) gone: Option<(Instant, bool)>,
    /// Seen under another path in this run (rotated).
    pub(super) renamed: bool,
    pub(super) last_growth: Instant,
    pub(super) last_used: Instant,
    /// Unidentified and possibly a copy still to be confirmed: since when, at what size.
    pub(super) held: Option<(Instant, u64)>,
}

pub(crate) type Inode = (u64, u64);

/// What [`Loop::copy_match`] decided.
pub(crate) enum CopyMatch {
    /// The copy of donor `.0`.
    Copy(usize),
    /// Maybe a copy: held. `copy_growing`: what it holds so far matches a file seen
    /// truncated (a copy still being written, waited for while it grows).
    Wait { copy_growing: bool },
    /// A file of its own.
    None,
}

/// The state of the loop of one flow.
pub(crate) struct Loop<'a> {
    pub(crate) flow: &'a FlowConfig,
    pub(crate) pattern: Pattern,
    pub(crate) readers: HashMap<Inode, Reader>,
    pub(crate) by_path: HashMap<PathBuf, Inode>,
    pub(crate) reported: Reported,
    pub(crate) checkpoints: Arc<FlowCheckpoints>,
    pub(crate) stats: Arc<FlowStats>,
    pub(crate) buf: Vec<u8>,
    pub(crate) framer_cap: usize,
    pub(crate) max_open_files: usize,
    /// Descriptors held now.
    pub(crate) open: usize,
    /// Files truncated lately, to recognise their copies.
    pub(crate) donors: Vec<Donor>,
    /// `run --once`: no rotation is expected, so files are not held as possible copies
    /// of files still being read.
    pub(crate) once: bool,
}

impl Loop<'_> {
    pub(crate) fn wake(&mut self, w: Wake, rescan: &mut bool) {
        match w {
            Wake::Modified(p) => match self.by_path.get(&p).and_then(|i| self.readers.get_mut(i)) {
                Some(r) => r.dirty = true,
                None => *rescan = true,
            },
            Wake::Rescan => *rescan = true,
        }
    }

    /// Makes room for one more descriptor: closes the least recently used reader that can
    /// be reopened by path (an idle one first). Returns false when none can be closed.
    pub(crate) fn make_room(&mut self, keep: Inode) -> bool {
        if self.open < self.max_open_files {
            return true;
        }
        let victim = self
            .readers
            .iter()
            .filter(|(k, r)| **k != keep && r.file.is_some() && r.gone.is_none())
            .min_by_key(|(_, r)| (!r.at_eof || r.dirty, r.last_used))
            .map(|(k, _)| *k);
        match victim.and_then(|k| self.readers.get_mut(&k)) {
            Some(r) => {
                r.file = None;
                self.open -= 1;
                true
            }
            None => false,
        }
    }

    pub(crate) fn remove_reader(&mut self, ino: &Inode) -> Option<Reader> {
        let r = self.readers.remove(ino)?;
        if r.file.is_some() {
            self.open -= 1;
        }
        if let Phase::Reading { key, .. } = &r.phase {
            // Its entry now expires after checkpointTimeToLiveDays.
            self.checkpoints.close(key);
        }
        Some(r)
    }

    pub(crate) fn rescan(&mut self, initial_at_end: bool) {
        let found = discovery::scan(&self.pattern, &mut self.reported);
        let mut present: std::collections::HashSet<Inode> = std::collections::HashSet::new();
        self.by_path.clear();
        for c in found {
            let ino = (c.dev, c.ino);
            present.insert(ino);
            self.by_path.insert(c.path.clone(), ino);
            if let Some(r) = self.readers.get_mut(&ino) {
                if r.path != c.path {
                    tracing::debug!("{} was renamed to {}", r.path.display(), c.path.display());
                    r.path = c.path.clone();
                    r.renamed = true;
                    if let Phase::Reading { key, .. } = &r.phase {
                        self.checkpoints.renamed(*key, &c.path);
                    }
                }
                r.gone = None;
                // Grown, or shrunk (truncated): read it. A file closed for the descriptor
                // cap stays closed while it does not change.
                if c.size != r.offset && !(r.at_eof && c.size == r.size && r.file.is_some()) {
                    r.dirty = true;
                }
                r.size = c.size;
                continue;
            }
            // Opened lazily by the round that reads it, within the descriptor cap.
            let start = if initial_at_end {
                Start::End(c.size)
            } else {
                Start::Checkpoint
            };
            let now = Instant::now();
            self.readers.insert(
                ino,
                Reader {
                    path: c.path,
                    dev: c.dev,
                    ino: c.ino,
                    file: None,
                    phase: Phase::Unidentified(start),
                    offset: 0,
                    size: c.size,
                    dirty: true,
                    at_eof: false,
                    gone: None,
                    renamed: false,
                    last_growth: now,
                    last_used: now,
                    held: None,
                },
            );
        }
        let now = Instant::now();
        let mut forget = Vec::new();
        for (ino, r) in self.readers.iter_mut() {
            if present.contains(ino) || r.gone.is_some() {
                continue;
            }
            match &r.file {
                Some(f) => {
                    let deleted = tfile::stat(f).map(|s| s.nlink == 0).unwrap_or(true);
                    tracing::debug!(
                        "{} left the pattern ({}); reading it to its end",
                        r.path.display(),
                        if deleted { "deleted" } else { "moved" }
                    );
                    r.gone = Some((now, deleted));
                    r.dirty = true;
                }
                None => forget.push(*ino),
            }
        }
        for ino in forget {
            if let Some(r) = self.remove_reader(&ino) {
                tracing::warn!(
                    "{} left the pattern while closed for the descriptor cap; bytes appended after offset {} are not read",
                    r.path.display(),
                    r.offset
                );
            }
        }
    }

    /// One fair round over the files with new data. Returns the bytes read.
    pub(crate) fn round(&mut self, emitter: &mut Emitter, stop: &CancellationToken) -> usize {
        let dirty: Vec<Inode> = self
            .readers
            .iter()
            .filter(|(_, r)| r.dirty)
            .map(|(k, _)| *k)
            .collect();
        let mut total = 0;
        for ino in dirty {
            if stop.is_cancelled() || emitter.aborted {
                break;
            }
            if self.readers.get(&ino).is_some_and(|r| r.file.is_none()) {
                if !self.make_room(ino) {
                    continue;
                }
                let Some(r) = self.readers.get_mut(&ino) else {
                    continue;
                };
                match tfile::reopen(&r.path, r.dev, r.ino) {
                    Ok(Some(f)) => {
                        r.file = Some(f);
                        self.open += 1;
                    }
                    Ok(None) => {
                        // Another file is at that path now: the next rescan finds ours
                        // by inode, or marks it gone.
                        r.dirty = false;
                        continue;
                    }
                    Err(e) => {
                        r.dirty = false;
                        self.reported.warn(&r.path, format!("cannot open: {e}"));
                        continue;
                    }
                }
            }
            if !self.identify(ino) {
                continue;
            }
            let Some(r) = self.readers.get_mut(&ino) else {
                continue;
            };
            let (n, donor) = service(r, emitter, &mut self.buf);
            total += n;
            if let Some(mut d) = donor {
                // The copy made by copytruncate holds what was written between our last
                // read and the truncation.
                d.dir = self
                    .readers
                    .get(&ino)
                    .and_then(|r| r.path.parent())
                    .map(Path::to_path_buf);
                self.add_donor(d);
            }
        }
        total
    }

    /// Where a file no checkpoint knows starts: its start, or its end (moved back to its
    /// last whole line) under `initialPosition: END_OF_FILE` at a first start.
    pub(crate) fn start_offset(
        &self,
        ino: Inode,
        start: Start,
        key: FileKey,
    ) -> (FileKey, u64, u64) {
        let offset = match start {
            Start::End(at) if at > 0 => {
                let file = self.readers[&ino].file.as_ref().expect("open");
                tfile::last_line_end(file, at, END_SEARCH_WINDOW).unwrap_or(at)
            }
            _ => 0,
        };
        (key, key.digest(), offset)
    }

    /// Multi-line silence, gone files' grace and `removeAfterShipped`.
    pub(crate) fn timers(&mut self, emitter: &mut Emitter) {
        let max_age = self.flow.max_buffer_age;
        let mut close = Vec::new();
        for (ino, r) in self.readers.iter_mut() {
            let silent = matches!(&r.phase, Phase::Reading { framer, .. }
                if framer.pending_since().is_some_and(|t| t.elapsed() >= max_age));
            if silent {
                flush_framer(&mut r.phase, emitter, false);
            }
            if let Some((since, deleted)) = r.gone {
                // With removeAfterShipped, a rotated file is closed by its removal.
                let removing = self.flow.remove_after_shipped && !deleted;
                if r.at_eof
                    && !r.dirty
                    && !removing
                    && since.elapsed() >= GONE_GRACE
                    && r.last_growth.elapsed() >= GONE_GRACE
                {
                    close.push(*ino);
                } else if r.last_used.elapsed() >= GONE_POLL {
                    r.dirty = true;
                }
            }
            if r.held.is_some() && r.last_used.elapsed() >= GONE_POLL {
                // Judged again: grown, matched a donor, or waited long enough.
                r.dirty = true;
            }
        }
        self.donor_timers(emitter);
        for ino in close {
            if let Some(mut r) = self.remove_reader(&ino) {
                finish_reader(&mut r, emitter);
                tracing::debug!(
                    "closed {} (left the pattern, read to its end)",
                    r.path.display()
                );
            }
        }
        if self.flow.remove_after_shipped {
            self.remove_shipped(emitter);
        }
    }

    /// Deletes rotated files that stopped growing once all of them is acknowledged and on
    /// disk in the checkpoint file.
    pub(crate) fn remove_shipped(&mut self, emitter: &mut Emitter) {
        let mut done = Vec::new();
        for (ino, r) in self.readers.iter_mut() {
            let rotated = r.renamed || r.gone.is_some_and(|(_, deleted)| !deleted);
            if !rotated || !r.at_eof || r.last_growth.elapsed() < GONE_GRACE {
                continue;
            }
            let Phase::Reading { key, framer, .. } = &r.phase else {
                continue;
            };
            let key = *key;
            if framer.committed() < r.size {
                // It no longer grows: its unfinished last line is all there will be.
                flush_framer(&mut r.phase, emitter, true);
                continue;
            }
            if !self.checkpoints.persisted_through(&key, r.size) {
                continue;
            }
            // Delete by the path only while it still is this file.
            let path = current_path(r).unwrap_or_else(|| r.path.clone());
            match tfile::stat_path(&path) {
                Ok(s) if (s.dev, s.ino) == (r.dev, r.ino) && s.size == r.size => {
                    match std::fs::remove_file(&path) {
                        Ok(()) => {
                            tracing::info!(
                                "removed {} ({} bytes, all acknowledged and checkpointed)",
                                path.display(),
                                r.size
                            );
                            done.push((*ino, key));
                        }
                        Err(e) => {
                            tracing::warn!("cannot remove shipped file {}: {e}", path.display());
                        }
                    }
                }
                _ => {}
            }
        }
        for (ino, key) in done {
            self.remove_reader(&ino);
            self.checkpoints.forget(&key);
        }
    }

    pub(crate) fn next_deadline(&self, max_age: Duration) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        for r in self.readers.values() {
            if let Phase::Reading { framer, .. } = &r.phase {
                if let Some(t) = framer.pending_since() {
                    at(t + max_age);
                }
            }
            if let Some((since, _)) = r.gone {
                at((r.last_used + GONE_POLL).max(Instant::now()));
                at(since + GONE_GRACE);
            }
            if self.flow.remove_after_shipped && r.renamed {
                at(r.last_growth + GONE_GRACE);
                at(Instant::now() + Duration::from_secs(1));
            }
            if r.held.is_some() {
                at((r.last_used + GONE_POLL).max(Instant::now()));
            }
        }
        for d in &self.donors {
            at(d.at + DONOR_TTL);
            if let (Some(_), Some(t)) = (&d.dir, d.last_look) {
                at(t + DONOR_LOOK_EVERY);
            }
        }
        next
    }

    pub(crate) fn any_dirty(&self) -> bool {
        self.readers.values().any(|r| r.dirty)
    }

    pub(crate) fn all_read(&self) -> bool {
        !self.any_dirty() && self.readers.values().all(|r| r.held.is_none())
    }

    /// `run --once`: everything read is flushed, partial last lines included.
    pub(crate) fn finish(&mut self, emitter: &mut Emitter) {
        for r in self.readers.values_mut() {
            finish_reader(r, emitter);
        }
        for d in std::mem::take(&mut self.donors) {
            self.give_up_donor(d, emitter);
        }
        emitter.send();
    }

    pub(crate) fn update_gauges(&self) {
        let behind: u64 = self
            .readers
            .values()
            .map(|r| r.size.saturating_sub(r.offset))
            .sum();
        self.stats
            .bytes_behind
            .store(behind, std::sync::atomic::Ordering::Relaxed);
        self.stats.files_tailed.store(
            self.readers.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

/// The path an open descriptor has now (it follows renames).
fn current_path(r: &Reader) -> Option<PathBuf> {
    use std::os::fd::AsRawFd;
    let fd = r.file.as_ref()?.as_raw_fd();
    std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()
}

/// Ends a reader for good: its partial last line, if any, can never complete.
fn finish_reader(r: &mut Reader, emitter: &mut Emitter) {
    flush_framer(&mut r.phase, emitter, true);
}

/// Ends the record the framer holds (with `partial`, also an unfinished last line) and
/// covers what the framer consumed.
fn flush_framer(phase: &mut Phase, emitter: &mut Emitter, partial: bool) {
    if let Phase::Reading {
        key,
        id,
        framer,
        covered,
        ..
    } = phase
    {
        let (key, id) = (*key, *id);
        framer.flush(partial, &mut |ev| emit(emitter, key, id, covered, ev));
        let c = framer.committed();
        emitter.cover(key, *covered, c);
        *covered = c;
    }
}

pub(super) fn emit(
    emitter: &mut Emitter,
    key: FileKey,
    id: u64,
    covered: &mut u64,
    ev: FrameEvent<'_>,
) {
    match ev {
        FrameEvent::Record(frame) => emitter.record(key, id, covered, frame),
        FrameEvent::Skipped => FlowStats::add(&emitter.stats.records_dropped, 1),
    }
}

/// Reads up to [`FILE_BUDGET`] bytes of an identified file. Returns the bytes read, and
/// the donor left behind when the file turned out to be truncated.
fn service(r: &mut Reader, emitter: &mut Emitter, buf: &mut [u8]) -> (usize, Option<Donor>) {
    r.dirty = false;
    r.last_used = Instant::now();
    let Some(file) = r.file.as_ref() else {
        return (0, None);
    };
    let Phase::Reading {
        key,
        id,
        framer,
        covered,
        head,
        tail,
    } = &mut r.phase
    else {
        return (0, None);
    };
    let (key, id) = (*key, *id);
    // Before reading on: a file truncated and rewritten past our offset must not be read
    // from the middle of its new content.
    // Rewritten with O_TRUNC behind the same first line and already as long: the bytes
    // just before our offset are no longer the ones read there (`last`: the anchor of
    // what was read last, in memory).
    let truncated = |offset: u64, r_size: &mut u64, last: Sum| {
        let st = tfile::stat(file).ok();
        if let Some(st) = st {
            *r_size = st.size;
        }
        st.is_some_and(|s| s.size < offset)
            || (offset > 0
                && matches!(tfile::fingerprint(file), Ok(Some(fp)) if fp != key.fingerprint))
            || (last.len > 0
                && offset >= last.len
                && identity::sum_at(file, offset - last.len, last.len).is_ok_and(|a| a != last))
    };
    let mut total = 0;
    let mut cut = r.offset > 0 && truncated(r.offset, &mut r.size, tail.anchor());
    if !cut {
        r.at_eof = false;
        while total < FILE_BUDGET {
            let n = match tfile::read_at(file, buf, r.offset) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!("cannot read {}: {e}", r.path.display());
                    r.at_eof = true;
                    break;
                }
            };
            if n == 0 {
                r.at_eof = true;
                break;
            }
            framer.push(&buf[..n], &mut |ev| emit(emitter, key, id, covered, ev));
            tail.push(&buf[..n]);
            let c = framer.committed();
            emitter.cover(key, *covered, c);
            *covered = c;
            r.offset += n as u64;
            total += n;
            r.last_growth = Instant::now();
        }
        if total >= FILE_BUDGET {
            r.dirty = true;
        }
        if !r.at_eof {
            r.size = r.size.max(r.offset);
            return (total, None);
        }
        cut = truncated(r.offset, &mut r.size, tail.anchor());
    }
    if !cut {
        if head.len < identity::HEAD_BYTES.min(r.offset) {
            if let Ok(h) = identity::head(file, r.offset) {
                *head = h;
                emitter.checkpoints.set_head(&key, h);
            }
        }
        return (total, None);
    }
    tracing::info!(
        "{} was truncated at offset {} (copytruncate?); reading it from the start",
        r.path.display(),
        r.offset
    );
    // What the framer holds (a partial line, a multi-line record) stays unsent: its copy
    // holds it whole and is read from where it starts. If no copy is found, the donor
    // sends it as it is.
    let resume = framer.committed();
    let original = Original {
        fingerprint: key.fingerprint,
        head: *head,
        end: r.offset,
        anchor: tail.anchor(),
    };
    let holds_more = resume < r.offset;
    let old = std::mem::replace(
        &mut r.phase,
        Phase::Unidentified(Start::Fresh(key.generation + 1)),
    );
    let framer = match old {
        Phase::Reading { framer, .. } if holds_more => Some(framer),
        _ => None,
    };
    let now = Instant::now();
    let donor = Donor {
        key,
        id,
        original,
        resume,
        framer,
        dir: None,
        at: now,
        last_look: None,
    };
    r.offset = 0;
    r.at_eof = false;
    r.dirty = true;
    (total, Some(donor))
}
