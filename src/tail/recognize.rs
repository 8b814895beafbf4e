//! Which file is which, for one flow's file loop (`Loop`): a new reader's identity and
//! where it starts, the recovery at start (checkpointed files found again, renamed or
//! truncated while the agent was stopped), and copies of truncated files (copytruncate),
//! looked for inside and outside the pattern, with the donors they take over from. The
//! rules are [`identity`]'s; reading is `reader.rs`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::ack::Known;
use crate::aggregate::batcher::Emitter;
use crate::checkpoint::Sum;
use crate::event::FileKey;
use crate::framing::Framer;
use crate::tail::discovery;
use crate::tail::file as tfile;
use crate::tail::identity::{self, Original, Tail, Verdict, COPY_WAIT};
use crate::tail::reader::{
    emit, CopyMatch, Donor, Inode, Loop, Phase, Reader, Start, DONOR_LOOK_EVERY, DONOR_TTL,
};

impl Loop<'_> {
    /// A file was seen truncated: files held as possible copies are looked at again, and
    /// its copy is looked for outside the pattern.
    pub(crate) fn add_donor(&mut self, d: Donor) {
        for r in self.readers.values_mut() {
            if r.held.is_some() {
                r.dirty = true;
            }
        }
        self.donors.push(d);
        let i = self.donors.len() - 1;
        self.look_for_copy(i);
    }

    /// Computes the anchors of the ranges of the batches sent since the last call, from
    /// the files still open (a range whose file is gone keeps no anchor; resuming there
    /// then rests on the head checksum).
    pub(crate) fn fill_anchors(&mut self, emitter: &mut Emitter) {
        for (key, to) in emitter.sent.drain(..) {
            let Some(r) = self.readers.get(&(key.dev, key.ino)) else {
                continue;
            };
            let (Some(file), Phase::Reading { key: k, .. }) = (r.file.as_ref(), &r.phase) else {
                continue;
            };
            if *k != key || to > r.offset {
                continue;
            }
            // A wrong anchor would refuse the right copy after a restart, a missing one
            // only weakens the check: a file truncated meanwhile (a short read, a smaller
            // size) leaves none.
            let Ok(a) = identity::anchor(file, to) else {
                continue;
            };
            let whole = a.len == identity::ANCHOR_BYTES.min(to);
            if whole && tfile::stat(file).is_ok_and(|st| st.size >= to) {
                self.checkpoints.set_anchor(&key, to, a);
            }
        }
    }

    /// At start: files with a checkpoint that left the pattern while the agent was stopped
    /// (renamed by a rotation, or copied by copytruncate before the original was
    /// truncated) still hold bytes never shipped. They are found next to where they were,
    /// by inode or as the verified copy of a truncated file, and read to their end.
    pub(crate) fn recover_after_restart(&mut self) {
        let entries = self.checkpoints.entries();
        // Bytes a copy's entry carries (it resumes behind its original's ranges).
        let taken_over: std::collections::HashSet<u64> =
            entries.iter().filter_map(|(k, _)| k.records_of).collect();
        for (known, path) in &entries {
            let key = known.key;
            // Its unread bytes are the copy's to ship: no donor for it. What its inode
            // holds since the truncation is still this entry's to find.
            let taken = taken_over.contains(&key.digest());
            let Some(dir) = path.parent().map(Path::to_path_buf) else {
                continue;
            };
            let inode = (key.dev, key.ino);
            let live_same = match self.readers.get(&inode) {
                None => false,
                Some(r) => match tfile::open_nonblocking(&r.path) {
                    Ok(f) => {
                        let size = tfile::stat(&f).map(|s| s.size).unwrap_or(0);
                        matches!(tfile::fingerprint(&f), Ok(Some(fp)) if fp == key.fingerprint)
                            && identity::same_file(&f, size, known)
                    }
                    Err(_) => true,
                },
            };
            if live_same {
                continue;
            }
            if !self.readers.contains_key(&inode) {
                // Renamed out of the pattern?
                if !self.recover_inode(&dir, known) {
                    self.recover_truncated_then_renamed(&dir, known, &entries, taken);
                }
            } else if !taken {
                // Truncated in place: the bytes after the checkpoint are in its copy (all
                // of them when nothing was acknowledged yet).
                self.donor_from_checkpoint(known, dir);
            }
        }
    }

    /// A checkpointed file found truncated at start is the original of its copy, if one
    /// is found: verified with the entry's head and anchor (an entry without them, from
    /// a version 1 file, with its fingerprint and size only).
    pub(crate) fn donor_from_checkpoint(&mut self, known: &Known, dir: PathBuf) {
        let now = Instant::now();
        self.add_donor(Donor {
            key: known.key,
            id: known.id(),
            original: Original {
                fingerprint: known.key.fingerprint,
                head: known.head.unwrap_or(Sum { len: 0, sum: 0 }),
                end: known.offset,
                anchor: known.anchor.unwrap_or(Sum {
                    len: 0,
                    sum: crate::event::fnv1a(&[]),
                }),
            },
            resume: known.offset,
            framer: None,
            dir: Some(dir),
            at: now,
            last_look: None,
        });
    }

    /// Two rotations while the agent was stopped: the checkpointed file was truncated in
    /// place (copytruncate), written again, then renamed out of the pattern. Its inode is
    /// found next to where it was, holding other content than the checkpoint's. The
    /// checkpointed content's unread rest is in the copy; the file itself holds what was
    /// written after the truncation, which no checkpoint knew of, so it is read from its
    /// start (unless another entry of `entries` knows that content: its own recovery
    /// reads it). `taken`: a copy's entry carries the checkpointed content's rest.
    pub(crate) fn recover_truncated_then_renamed(
        &mut self,
        dir: &Path,
        known: &Known,
        entries: &[(Known, PathBuf)],
        taken: bool,
    ) {
        use std::os::unix::fs::MetadataExt;
        let key = known.key;
        let Ok(listing) = std::fs::read_dir(dir) else {
            return;
        };
        let found = listing.flatten().find_map(|e| {
            let meta = e.metadata().ok()?;
            (meta.is_file() && (meta.dev(), meta.ino()) == (key.dev, key.ino))
                .then(|| (e.path(), meta.len()))
        });
        let Some((path, size)) = found else { return };
        if !self.pattern_allows_name(&path) || self.readers.contains_key(&(key.dev, key.ino)) {
            return;
        }
        let Ok(file) = tfile::open_nonblocking(&path) else {
            return;
        };
        // `None`: no whole first line, nothing written after the truncation yet.
        let Ok(fp) = tfile::fingerprint(&file) else {
            return;
        };
        if fp == Some(key.fingerprint) && identity::same_file(&file, size, known) {
            // Not truncated: fully shipped (recover_inode found nothing past the offset).
            return;
        }
        if !taken {
            self.donor_from_checkpoint(known, dir.to_path_buf());
        }
        let Some(fp) = fp else { return };
        if self.readers.contains_key(&(key.dev, key.ino)) {
            return;
        }
        let same_inode = entries
            .iter()
            .filter(|(k, _)| (k.key.dev, k.key.ino) == (key.dev, key.ino));
        if same_inode
            .clone()
            .any(|(k, _)| k.key != key && k.key.fingerprint == fp)
        {
            return;
        }
        let generation = same_inode.map(|(k, _)| k.key.generation).max().unwrap_or(0) + 1;
        let new = FileKey {
            fingerprint: fp,
            generation,
            ..key
        };
        tracing::info!(
            "{} was truncated and renamed since its checkpoint; reading what it holds now from its start",
            path.display()
        );
        self.read_rotated(path, file, size, new, new.digest(), 0, None);
    }

    /// Looks in `dir` for the checkpointed file `known`, renamed out of the pattern, and
    /// reads it from its checkpoint to its end (it is treated as gone). True when found.
    pub(crate) fn recover_inode(&mut self, dir: &Path, known: &Known) -> bool {
        let key = known.key;
        for (path, inode, size) in self.unread_files(dir) {
            if inode != (key.dev, key.ino) || size <= known.offset {
                continue;
            }
            let Ok(f) = tfile::open_nonblocking(&path) else {
                continue;
            };
            if !matches!(tfile::fingerprint(&f), Ok(Some(fp)) if fp == key.fingerprint)
                || !identity::same_file(&f, size, known)
            {
                continue;
            }
            tracing::info!(
                "{} holds {} bytes not shipped yet (a rotated file outside the pattern); reading it from offset {}",
                path.display(),
                size - known.offset,
                known.offset
            );
            self.read_rotated(path, f, size, key, known.id(), known.offset, None);
            return true;
        }
        false
    }

    /// Looks for the copy of donor `i` in its directory, among the files no reader has
    /// (those in the pattern are judged when they are identified). When found, it is read
    /// from where the original's reading stopped, and the donor is used up.
    pub(crate) fn look_for_copy(&mut self, i: usize) {
        let Some(dir) = self.donors[i].dir.clone() else {
            return;
        };
        self.donors[i].last_look = Some(Instant::now());
        for (path, inode, size) in self.unread_files(&dir) {
            let Ok(f) = tfile::open_nonblocking(&path) else {
                continue;
            };
            let Ok(Some(fp)) = tfile::fingerprint(&f) else {
                continue;
            };
            if identity::copy_verdict(&f, size, fp, &self.donors[i].original) != Verdict::Copy {
                continue;
            }
            let d = self.donors.swap_remove(i);
            let own = match self.checkpoints.lookup(inode.0, inode.1) {
                Some(k) if k.key.fingerprint == fp => k.key,
                _ => FileKey {
                    dev: inode.0,
                    ino: inode.1,
                    fingerprint: fp,
                    generation: 0,
                },
            };
            tracing::info!(
                "{} is the copy of a truncated file (copytruncate) and holds {} bytes not shipped yet; reading it from offset {}",
                path.display(),
                size - d.resume,
                d.resume
            );
            self.read_rotated(path, f, size, own, d.id, d.resume, Some(d.key));
            self.checkpoints.close(&d.key);
            return;
        }
    }

    /// Reads `file` (`size` bytes, outside the pattern, so treated as gone) from `offset`
    /// to its end as `key`, with record IDs of digest `id`; `copy_of`: the file it is the
    /// copy of.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn read_rotated(
        &mut self,
        path: PathBuf,
        file: File,
        size: u64,
        key: FileKey,
        id: u64,
        offset: u64,
        copy_of: Option<FileKey>,
    ) {
        let head = identity::head(&file, size).unwrap_or(Sum { len: 0, sum: 0 });
        match copy_of {
            Some(original) => {
                self.checkpoints
                    .open_copy(key, &path, offset, original, id, Some(head))
            }
            None => self.checkpoints.open(key, &path, offset, Some(head)),
        }
        let tail = Tail::before(&file, offset);
        let framer = Framer::for_file(self.flow, offset, self.framer_cap, Some(&path));
        let now = Instant::now();
        self.open += 1;
        self.readers.insert(
            (key.dev, key.ino),
            Reader {
                path,
                dev: key.dev,
                ino: key.ino,
                file: Some(file),
                phase: Phase::Reading {
                    key,
                    id,
                    framer,
                    covered: offset,
                    head,
                    tail,
                },
                offset,
                size,
                dirty: true,
                at_eof: false,
                gone: Some((now, false)),
                renamed: true,
                last_growth: now,
                last_used: now,
                held: None,
            },
        );
    }

    /// The regular files of `dir` that no reader has and whose names may be read:
    /// `(path, inode, size)`.
    pub(crate) fn unread_files(&self, dir: &Path) -> Vec<(PathBuf, Inode, u64)> {
        use std::os::unix::fs::MetadataExt;
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let path = e.path();
                let meta = e.metadata().ok()?;
                let inode = (meta.dev(), meta.ino());
                (meta.is_file()
                    && self.pattern_allows_name(&path)
                    && !self.readers.contains_key(&inode))
                .then_some((path, inode, meta.len()))
            })
            .collect()
    }

    /// Compressed files are never read, not even to recover a rotated file.
    pub(crate) fn pattern_allows_name(&self, path: &Path) -> bool {
        path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            !discovery::COMPRESSED_SUFFIXES
                .iter()
                .any(|s| n.ends_with(s))
        })
    }

    /// Gives a reader its identity once its file has a first line, and decides where it
    /// starts (see [`identity`] for the rules). Returns true when the reader can read.
    pub(crate) fn identify(&mut self, ino: Inode) -> bool {
        let Some(r) = self.readers.get(&ino) else {
            return false;
        };
        let Phase::Unidentified(start) = r.phase else {
            return true;
        };
        let Some(file) = r.file.as_ref() else {
            return false;
        };
        let fp = match tfile::fingerprint(file) {
            Ok(Some(fp)) => fp,
            Ok(None) => {
                // No first line yet: nothing can be sent; the next write wakes it.
                let r = self.readers.get_mut(&ino).expect("present");
                r.at_eof = true;
                r.dirty = false;
                return false;
            }
            Err(e) => {
                let path = r.path.clone();
                self.readers.get_mut(&ino).expect("present").dirty = false;
                self.reported.warn(&path, format!("cannot read: {e}"));
                return false;
            }
        };
        let size = tfile::stat(file).map(|s| s.size).unwrap_or(0);
        let (dev, ino_no, path) = (r.dev, r.ino, r.path.clone());
        let fresh = |generation| FileKey {
            dev,
            ino: ino_no,
            fingerprint: fp,
            generation,
        };
        let mut copy_of = None;
        let (key, id, offset) = match start {
            Start::Fresh(g) => (fresh(g), fresh(g).digest(), 0),
            Start::Checkpoint | Start::End(_) => match self.checkpoints.lookup(dev, ino_no) {
                Some(k) if k.key.fingerprint == fp && identity::same_file(file, size, &k) => {
                    (k.key, k.id(), k.offset)
                }
                Some(k) => {
                    tracing::info!(
                        "{}: content differs from its checkpoint (truncated or rewritten, or a new file on a reused inode); reading it from the start",
                        path.display()
                    );
                    let key = fresh(k.key.generation + 1);
                    (key, key.digest(), 0)
                }
                None => match self.copy_match(ino, fp, size) {
                    CopyMatch::Copy(i) => {
                        let d = self.donors.swap_remove(i);
                        tracing::info!(
                            "{} is a copy of a file seen truncated (copytruncate); reading it from offset {}",
                            path.display(),
                            d.resume
                        );
                        copy_of = Some(d.key);
                        self.checkpoints.close(&d.key);
                        (fresh(0), d.id, d.resume)
                    }
                    CopyMatch::Wait { copy_growing } => {
                        let r = self.readers.get_mut(&ino).expect("present");
                        let now = Instant::now();
                        match r.held {
                            // A copy being written is waited for while it grows; a file
                            // that only begins like one being read, COPY_WAIT at most.
                            Some((since, held_size)) if held_size == size || !copy_growing => {
                                if since.elapsed() < COPY_WAIT {
                                    r.at_eof = true;
                                    r.dirty = false;
                                    r.last_used = now;
                                    return false;
                                }
                                tracing::info!(
                                    "{} begins like another file but matched no truncated one within {COPY_WAIT:?}; reading it as a file of its own",
                                    path.display()
                                );
                                self.start_offset(ino, start, fresh(0))
                            }
                            _ => {
                                // Growing (a copy being written) or new: wait on.
                                r.held = Some((now, size));
                                r.at_eof = true;
                                r.dirty = false;
                                r.last_used = now;
                                return false;
                            }
                        }
                    }
                    CopyMatch::None => self.start_offset(ino, start, fresh(0)),
                },
            },
        };
        let r = self.readers.get_mut(&ino).expect("present");
        r.held = None;
        let file = r.file.as_ref().expect("open");
        let head = identity::head(file, size).unwrap_or(Sum { len: 0, sum: 0 });
        let tail = Tail::before(file, offset);
        match copy_of {
            Some(original) => {
                self.checkpoints
                    .open_copy(key, &path, offset, original, id, Some(head))
            }
            None => self.checkpoints.open(key, &path, offset, Some(head)),
        }
        let framer = Framer::for_file(self.flow, offset, self.framer_cap, Some(&path));
        r.offset = offset;
        r.phase = Phase::Reading {
            key,
            id,
            framer,
            covered: offset,
            head,
            tail,
        };
        true
    }

    /// Whether the new file `ino` is the copy of a file seen truncated, may still become
    /// one (too short to tell, or beginning like a file being read that may be truncated
    /// next), or is a file of its own.
    pub(crate) fn copy_match(&mut self, ino: Inode, fp: u64, size: u64) -> CopyMatch {
        let Some(file) = self.readers.get(&ino).and_then(|r| r.file.as_ref()) else {
            return CopyMatch::None;
        };
        let mut wait = false;
        for (i, d) in self.donors.iter().enumerate() {
            match identity::copy_verdict(file, size, fp, &d.original) {
                Verdict::Copy => return CopyMatch::Copy(i),
                Verdict::Wait => wait = true,
                Verdict::Different => {}
            }
        }
        if wait {
            return CopyMatch::Wait { copy_growing: true };
        }
        if !self.once {
            // A copytruncate whose copy is in the pattern: the copy may be seen before
            // the original's truncation.
            wait = self.readers.iter().any(|(other, r)| match &r.phase {
                Phase::Reading { key, head, .. }
                    if *other != ino && r.gone.is_none() && key.fingerprint == fp =>
                {
                    head.len > 0
                        && size >= head.len
                        && matches!(identity::sum_at(file, 0, head.len), Ok(h) if h == *head)
                }
                _ => false,
            });
        }
        if wait {
            CopyMatch::Wait {
                copy_growing: false,
            }
        } else {
            CopyMatch::None
        }
    }

    /// Donors whose copy is outside the pattern are looked for again; those no copy
    /// matched within [`DONOR_TTL`] are given up: their unfinished record is sent as it
    /// is (it will never be completed).
    pub(crate) fn donor_timers(&mut self, emitter: &mut Emitter) {
        let mut i = 0;
        while i < self.donors.len() {
            let d = &self.donors[i];
            if d.at.elapsed() >= DONOR_TTL {
                let d = self.donors.swap_remove(i);
                tracing::debug!(
                    "no copy found for a file truncated at offset {} (copytruncate) within {DONOR_TTL:?}",
                    d.original.end
                );
                self.give_up_donor(d, emitter);
                continue;
            }
            let due = d.last_look.is_none_or(|t| t.elapsed() >= DONOR_LOOK_EVERY);
            if d.dir.is_some() && due {
                let before = self.donors.len();
                self.look_for_copy(i);
                if self.donors.len() < before {
                    continue;
                }
            }
            i += 1;
        }
    }

    /// Sends what the framer of a donor held (a partial line, a multi-line record), and
    /// lets its entry expire.
    pub(crate) fn give_up_donor(&mut self, d: Donor, emitter: &mut Emitter) {
        if let Some(mut framer) = d.framer {
            let mut covered = d.resume;
            framer.flush(true, &mut |ev| emit(emitter, d.key, d.id, &mut covered, ev));
            emitter.cover(d.key, covered, framer.committed());
        }
        self.checkpoints.close(&d.key);
    }
}
