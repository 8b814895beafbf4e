//! Acknowledgement-driven checkpoints: the only place that moves a checkpoint forward.
//!
//! Each batch covers `(from, to]` ranges of the files it was built from. Ranges are
//! registered when the batch is built, in file order, and acknowledged when the sink has
//! delivered the whole batch, in any order. A file's checkpoint advances only over the
//! contiguous prefix of acknowledged ranges: a batch still being retried holds its file's
//! checkpoint back whatever batches after it were acknowledged (quickwit's and vector's
//! ordered finalizers work the same way). The lock is taken once per batch, never per
//! record.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::checkpoint::{Entry, Sum};
use crate::event::{FileKey, FileRange};

/// The checkpoints of one flow.
#[derive(Debug)]
pub struct FlowCheckpoints {
    inner: Mutex<State>,
    /// Told when a file or generation starts being read: the checkpoint file should name
    /// it at once (a copytruncate and a kill within the writer's interval would otherwise
    /// leave its copy unknown at the next start).
    urgent: Option<std::sync::Arc<tokio::sync::Notify>>,
}

#[derive(Debug, Default)]
struct State {
    files: HashMap<FileKey, FileState>,
    /// Copies (copytruncate) that resumed where an original's reading stopped: the
    /// original's ranges still in flight are the copy's too, so the copy's checkpoint
    /// moves over them only once they are acknowledged.
    mirrors: HashMap<FileKey, Vec<FileKey>>,
    dirty: bool,
}

#[derive(Debug)]
struct FileState {
    path: PathBuf,
    /// Every byte before this is acknowledged.
    committed: u64,
    /// Checksum of the bytes just before `committed`, when known.
    anchor: Option<Sum>,
    /// Checksum of the file's first bytes, when known.
    head: Option<Sum>,
    /// The digest record IDs carry when not this file's own (a copy).
    records_of: Option<u64>,
    /// The committed offset last written to disk.
    persisted: u64,
    /// Ranges registered and not yet folded into `committed`, in file order.
    pending: VecDeque<Pending>,
    /// Unix seconds when the file was last seen.
    last_seen: u64,
    /// Opened by a reader in this run and not closed since (entries only loaded from
    /// disk, and files closed, are not live: their entries expire after the TTL).
    live: bool,
}

impl FileState {
    fn new(path: PathBuf, committed: u64, live: bool) -> Self {
        FileState {
            path,
            committed,
            anchor: None,
            head: None,
            records_of: None,
            persisted: u64::MAX,
            pending: VecDeque::new(),
            last_seen: crate::checkpoint::unix_now(),
            live,
        }
    }

    /// Folds the acknowledged prefix of `pending` into `committed`; true when it moved.
    fn fold(&mut self) -> bool {
        let mut moved = false;
        while self.pending.front().is_some_and(|p| p.acked) {
            let p = self.pending.pop_front().expect("front exists");
            if p.to > self.committed {
                self.committed = p.to;
                self.anchor = p.anchor;
                moved = true;
            }
        }
        moved
    }
}

#[derive(Debug, Clone)]
struct Pending {
    seq: u64,
    to: u64,
    acked: bool,
    anchor: Option<Sum>,
}

/// What the checkpoints know of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    /// Its identity.
    pub key: FileKey,
    /// The acknowledged offset.
    pub offset: u64,
    /// Checksum of its first bytes.
    pub head: Option<Sum>,
    /// Checksum of the bytes just before `offset`.
    pub anchor: Option<Sum>,
    /// The digest its record IDs carry, when not its own.
    pub records_of: Option<u64>,
}

impl Known {
    /// The digest of the record IDs of this file.
    pub fn id(&self) -> u64 {
        self.records_of.unwrap_or_else(|| self.key.digest())
    }
}

impl FlowCheckpoints {
    /// Checkpoints seeded from the entries read from disk.
    pub fn new(entries: Vec<Entry>) -> Self {
        let mut files = HashMap::new();
        for e in entries {
            let mut f = FileState::new(e.path.clone(), e.offset, false);
            f.persisted = e.offset;
            f.last_seen = e.last_seen;
            f.head = e.head;
            f.anchor = e.anchor;
            f.records_of = e.records_of;
            files.insert(e.key(), f);
        }
        FlowCheckpoints {
            inner: Mutex::new(State {
                files,
                mirrors: HashMap::new(),
                dirty: false,
            }),
            urgent: None,
        }
    }

    /// The same, telling `urgent` when a file or generation starts being read.
    pub fn with_urgent(mut self, urgent: std::sync::Arc<tokio::sync::Notify>) -> Self {
        self.urgent = Some(urgent);
        self
    }

    fn tell_urgent(&self) {
        if let Some(n) = &self.urgent {
            n.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The newest entry known for the inode `(dev, ino)`: highest generation.
    pub fn lookup(&self, dev: u64, ino: u64) -> Option<Known> {
        let st = self.lock();
        st.files
            .iter()
            .filter(|(k, _)| k.dev == dev && k.ino == ino)
            .max_by_key(|(k, _)| k.generation)
            .map(|(k, f)| known(k, f))
    }

    /// A reader starts reading `key` at `offset` (its checkpoint, its start or its end);
    /// `head` is the checksum of the file's first bytes.
    pub fn open(&self, key: FileKey, path: &Path, offset: u64, head: Option<Sum>) {
        let mut st = self.lock();
        let now = crate::checkpoint::unix_now();
        let new = !st.files.contains_key(&key);
        let f = st
            .files
            .entry(key)
            .or_insert_with(|| FileState::new(path.to_path_buf(), offset, true));
        f.path = path.to_path_buf();
        f.live = true;
        f.last_seen = now;
        if head.is_some() {
            f.head = head;
        }
        if f.pending.is_empty() && f.committed < offset {
            f.committed = offset;
            f.anchor = None;
        }
        st.dirty = true;
        drop(st);
        if new {
            self.tell_urgent();
        }
    }

    /// A reader starts reading `key`, a copy of `original` made by copytruncate, at
    /// `offset`, where reading of the original stopped; its record IDs carry `records_of`.
    /// The copy's checkpoint starts at the original's and follows the original's ranges
    /// still in flight as they are acknowledged, so a stop before they are loses nothing.
    pub fn open_copy(
        &self,
        key: FileKey,
        path: &Path,
        offset: u64,
        original: FileKey,
        records_of: u64,
        head: Option<Sum>,
    ) {
        let mut st = self.lock();
        let (committed, anchor, pending) = match st.files.get(&original) {
            Some(o) => (
                o.committed.min(offset),
                o.anchor,
                o.pending
                    .iter()
                    .filter(|p| p.to <= offset)
                    .cloned()
                    .collect(),
            ),
            None => (offset, None, VecDeque::new()),
        };
        let mut f = FileState::new(path.to_path_buf(), committed, true);
        f.anchor = if committed == offset { anchor } else { None };
        f.head = head;
        f.records_of = Some(records_of);
        f.pending = pending;
        f.fold();
        st.files.insert(key, f);
        st.mirrors.entry(original).or_default().push(key);
        st.dirty = true;
        drop(st);
        self.tell_urgent();
    }

    /// The head checksum of `key` grew (the file had fewer than 4 KiB when opened).
    pub fn set_head(&self, key: &FileKey, head: Sum) {
        let mut st = self.lock();
        if let Some(f) = st.files.get_mut(key) {
            if f.head != Some(head) {
                f.head = Some(head);
                st.dirty = true;
            }
        }
    }

    /// The reader of `key` closed it: its entry expires after the TTL unless it opens
    /// again.
    pub fn close(&self, key: &FileKey) {
        let mut st = self.lock();
        if let Some(f) = st.files.get_mut(key) {
            f.live = false;
            f.last_seen = crate::checkpoint::unix_now();
            st.dirty = true;
        }
    }

    /// The file `key` is now known as `path`.
    pub fn renamed(&self, key: FileKey, path: &Path) {
        let mut st = self.lock();
        if let Some(f) = st.files.get_mut(&key) {
            if f.path != path {
                f.path = path.to_path_buf();
                st.dirty = true;
            }
        }
    }

    /// Registers the ranges of batch `seq`, in the order batches are built.
    pub fn register(&self, seq: u64, ranges: &[FileRange]) {
        if ranges.is_empty() {
            return;
        }
        let mut st = self.lock();
        let st = &mut *st;
        for r in ranges {
            let f = st
                .files
                .entry(r.key)
                .or_insert_with(|| FileState::new(PathBuf::new(), r.from, true));
            debug_assert!(
                f.pending.back().map_or(f.committed, |p| p.to) <= r.from,
                "ranges of one file must be registered in order"
            );
            let p = Pending {
                seq,
                to: r.to,
                acked: false,
                anchor: None,
            };
            f.pending.push_back(p.clone());
            for m in st.mirrors.get(&r.key).into_iter().flatten() {
                if let Some(c) = st.files.get_mut(m) {
                    c.pending.push_back(p.clone());
                }
            }
        }
    }

    /// `anchor` is the checksum of the bytes just before `to` in `key`, the end of a range
    /// registered earlier: the checkpoint carries it once it moves there.
    pub fn set_anchor(&self, key: &FileKey, to: u64, anchor: Sum) {
        let mut st = self.lock();
        let st = &mut *st;
        let copies = st.mirrors.get(key).cloned().unwrap_or_default();
        for k in std::iter::once(*key).chain(copies) {
            let Some(f) = st.files.get_mut(&k) else {
                continue;
            };
            match f.pending.iter_mut().find(|p| p.to == to) {
                Some(p) => p.anchor = Some(anchor),
                None if f.committed == to && f.anchor.is_none() => {
                    f.anchor = Some(anchor);
                    st.dirty = true;
                }
                None => {}
            }
        }
    }

    /// Batch `seq`, which covered `ranges`, is acknowledged. Returns true when a
    /// checkpoint moved.
    pub fn ack(&self, seq: u64, ranges: &[FileRange]) -> bool {
        let mut st = self.lock();
        let st = &mut *st;
        let mut moved = false;
        for r in ranges {
            let copies = st.mirrors.get(&r.key).cloned().unwrap_or_default();
            for k in std::iter::once(r.key).chain(copies) {
                let Some(f) = st.files.get_mut(&k) else {
                    continue;
                };
                if let Some(p) = f.pending.iter_mut().find(|p| p.seq == seq && !p.acked) {
                    p.acked = true;
                }
                moved |= f.fold();
            }
        }
        if moved {
            st.dirty = true;
        }
        moved
    }

    /// The acknowledged offset of `key`.
    pub fn committed(&self, key: &FileKey) -> Option<u64> {
        self.lock().files.get(key).map(|f| f.committed)
    }

    /// True when everything registered for `key` up to `offset` is acknowledged and
    /// written to disk (for `removeAfterShipped`).
    pub fn persisted_through(&self, key: &FileKey, offset: u64) -> bool {
        self.lock()
            .files
            .get(key)
            .is_some_and(|f| f.persisted != u64::MAX && f.persisted >= offset)
    }

    /// Number of ranges registered and not acknowledged.
    pub fn pending(&self) -> usize {
        self.lock().files.values().map(|f| f.pending.len()).sum()
    }

    /// Every entry not opened by a reader in this run, with its last path.
    pub fn entries(&self) -> Vec<(Known, PathBuf)> {
        self.lock()
            .files
            .iter()
            .filter(|(_, f)| !f.live)
            .map(|(k, f)| (known(k, f), f.path.clone()))
            .collect()
    }

    /// Number of files known (live, closed within the TTL, or loaded from disk).
    pub fn len(&self) -> usize {
        self.lock().files.len()
    }

    /// True when no file is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets `key` (its file was removed after shipping).
    pub fn forget(&self, key: &FileKey) {
        let mut st = self.lock();
        if st.files.remove(key).is_some() {
            st.mirrors.remove(key);
            st.dirty = true;
        }
    }

    /// True when something changed since the last [`snapshot`](Self::snapshot).
    pub fn is_dirty(&self) -> bool {
        self.lock().dirty
    }

    /// The entries to write to disk: per inode its newest generation, and every older one
    /// that still has ranges in flight (its unacknowledged bytes may be recovered from a
    /// copy after a restart); entries of files not seen for `ttl_secs` (closed during the
    /// run, or loaded and never found) dropped. Clears the dirty flag.
    pub fn snapshot(&self, now: u64, ttl_secs: u64) -> Vec<Entry> {
        let mut st = self.lock();
        let st = &mut *st;
        st.dirty = false;
        st.files.retain(|_, f| {
            f.live || !f.pending.is_empty() || now.saturating_sub(f.last_seen) <= ttl_secs
        });
        let files = &st.files;
        st.mirrors.retain(|k, _| files.contains_key(k));
        let mut newest: HashMap<(u64, u64), u32> = HashMap::new();
        for k in st.files.keys() {
            let g = newest.entry((k.dev, k.ino)).or_insert(k.generation);
            *g = (*g).max(k.generation);
        }
        let mut out: Vec<Entry> = st
            .files
            .iter()
            .filter(|(k, f)| newest[&(k.dev, k.ino)] == k.generation || !f.pending.is_empty())
            .map(|(k, f)| Entry {
                dev: k.dev,
                ino: k.ino,
                fingerprint: k.fingerprint,
                generation: k.generation,
                offset: f.committed,
                path: f.path.clone(),
                last_seen: if f.live { now } else { f.last_seen },
                head: f.head,
                anchor: f.anchor,
                records_of: f.records_of,
            })
            .collect();
        out.sort_by_key(|e| (e.dev, e.ino, e.generation));
        out
    }

    /// The entries of a [`snapshot`](Self::snapshot) are now on disk.
    pub fn mark_persisted(&self, entries: &[Entry]) {
        let mut st = self.lock();
        for e in entries {
            if let Some(f) = st.files.get_mut(&e.key()) {
                f.persisted = e.offset;
            }
        }
    }
}

fn known(k: &FileKey, f: &FileState) -> Known {
    Known {
        key: *k,
        offset: f.committed,
        head: f.head,
        anchor: f.anchor,
        records_of: f.records_of,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(ino: u64) -> FileKey {
        FileKey {
            dev: 1,
            ino,
            fingerprint: 7,
            generation: 0,
        }
    }

    fn range(ino: u64, from: u64, to: u64) -> FileRange {
        FileRange {
            key: key(ino),
            from,
            to,
        }
    }

    #[test]
    fn a_retrying_batch_holds_the_checkpoint_back() {
        let c = FlowCheckpoints::new(vec![]);
        c.open(key(1), Path::new("/a"), 0, None);
        c.register(0, &[range(1, 0, 10)]);
        c.register(1, &[range(1, 10, 20)]);
        c.register(2, &[range(1, 20, 30)]);
        assert!(!c.ack(1, &[range(1, 10, 20)]));
        assert!(!c.ack(2, &[range(1, 20, 30)]));
        assert_eq!(c.committed(&key(1)), Some(0));
        assert!(c.ack(0, &[range(1, 0, 10)]));
        assert_eq!(c.committed(&key(1)), Some(30));
        assert_eq!(c.pending(), 0);
    }

    #[test]
    fn snapshot_keeps_newest_generation_and_drops_expired() {
        let c = FlowCheckpoints::new(vec![Entry {
            dev: 9,
            ino: 9,
            fingerprint: 1,
            generation: 0,
            offset: 5,
            path: PathBuf::from("/gone"),
            last_seen: 100,
            head: None,
            anchor: None,
            records_of: None,
        }]);
        c.open(key(1), Path::new("/a"), 4, None);
        let k2 = FileKey {
            generation: 1,
            ..key(1)
        };
        c.open(k2, Path::new("/a"), 0, None);
        let snap = c.snapshot(100 + 10, 60);
        assert_eq!(snap.len(), 2);
        let e = snap.iter().find(|e| e.ino == 1).unwrap();
        assert_eq!((e.generation, e.offset), (1, 0));
        let snap = c.snapshot(100 + 61, 60);
        assert_eq!(snap.len(), 1, "the entry of /gone expired");
    }

    #[test]
    fn an_older_generation_is_written_while_it_has_ranges_in_flight() {
        let c = FlowCheckpoints::new(vec![]);
        c.open(key(1), Path::new("/a"), 0, None);
        c.register(0, &[range(1, 0, 10)]);
        // Truncated: generation 1 of the same inode starts.
        let g1 = FileKey {
            generation: 1,
            ..key(1)
        };
        c.close(&key(1));
        c.open(g1, Path::new("/a"), 0, None);
        let snap = c.snapshot(crate::checkpoint::unix_now(), 60);
        let gens: Vec<(u32, u64)> = snap.iter().map(|e| (e.generation, e.offset)).collect();
        assert_eq!(
            gens,
            vec![(0, 0), (1, 0)],
            "generation 0 still owes bytes 0..10"
        );
        c.ack(0, &[range(1, 0, 10)]);
        let snap = c.snapshot(crate::checkpoint::unix_now(), 60);
        let gens: Vec<u32> = snap.iter().map(|e| e.generation).collect();
        assert_eq!(
            gens,
            vec![1],
            "acknowledged: only the newest generation is kept"
        );
    }

    #[test]
    fn a_copy_resumes_behind_the_originals_ranges_in_flight() {
        let c = FlowCheckpoints::new(vec![]);
        c.open(key(1), Path::new("/a"), 0, None);
        c.register(0, &[range(1, 0, 10)]);
        c.ack(0, &[range(1, 0, 10)]);
        c.register(1, &[range(1, 10, 20)]);
        // Truncated at 25 with bytes 20..25 still in the batch being built.
        let copy = key(2);
        c.open_copy(copy, Path::new("/a.1"), 25, key(1), key(1).digest(), None);
        assert_eq!(
            c.committed(&copy),
            Some(10),
            "the copy starts at the original's checkpoint"
        );
        c.register(2, &[range(1, 20, 25), range(2, 25, 40)]);
        // A stop now: the copy's entry says 10, so a restart reads 10.. of the copy again.
        let snap = c.snapshot(crate::checkpoint::unix_now(), 60);
        let e = snap.iter().find(|e| e.ino == 2).unwrap();
        assert_eq!((e.offset, e.records_of), (10, Some(key(1).digest())));
        c.ack(2, &[range(1, 20, 25), range(2, 25, 40)]);
        assert_eq!(c.committed(&copy), Some(10), "batch 1 still holds it back");
        c.ack(1, &[range(1, 10, 20)]);
        assert_eq!(c.committed(&copy), Some(40));
        assert_eq!(c.committed(&key(1)), Some(25));
    }

    #[test]
    fn a_closed_file_expires_during_the_run() {
        let c = FlowCheckpoints::new(vec![]);
        c.open(key(1), Path::new("/a"), 0, None);
        c.open(key(2), Path::new("/b"), 0, None);
        c.close(&key(1));
        let now = crate::checkpoint::unix_now();
        assert_eq!(c.snapshot(now, 60).len(), 2);
        assert_eq!(
            c.snapshot(now + 61, 60).len(),
            1,
            "closed 61 s ago, TTL 60 s"
        );
        assert_eq!(c.len(), 1, "forgotten in memory too");
    }

    proptest! {
        /// Whatever order acknowledgements arrive in, the checkpoint is always the end of
        /// the longest acknowledged prefix of batches.
        #[test]
        fn checkpoint_is_the_acknowledged_prefix(
            sizes in proptest::collection::vec(1u64..100, 1..40),
            order in proptest::collection::vec(any::<proptest::sample::Index>(), 1..40),
        ) {
            let c = FlowCheckpoints::new(vec![]);
            c.open(key(1), Path::new("/a"), 0, None);
            let mut ranges = vec![];
            let mut at = 0;
            for (seq, s) in sizes.iter().enumerate() {
                let r = range(1, at, at + s);
                at += s;
                c.register(seq as u64, &[r]);
                ranges.push(r);
            }
            let mut acked = vec![false; ranges.len()];
            for idx in order {
                let i = idx.index(ranges.len());
                if acked[i] { continue; }
                acked[i] = true;
                c.ack(i as u64, &[ranges[i]]);
                let prefix = acked.iter().take_while(|a| **a).count();
                let expect = if prefix == 0 { 0 } else { ranges[prefix - 1].to };
                prop_assert_eq!(c.committed(&key(1)), Some(expect));
            }
        }
    }
}
