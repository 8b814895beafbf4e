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

use crate::event::{FileKey, FileRange};
use crate::tail::checkpoint::Entry;

/// The checkpoints of one flow.
#[derive(Debug)]
pub struct FlowCheckpoints {
    inner: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    files: HashMap<FileKey, FileState>,
    dirty: bool,
}

#[derive(Debug)]
struct FileState {
    path: PathBuf,
    /// Every byte before this is acknowledged.
    committed: u64,
    /// The committed offset last written to disk.
    persisted: u64,
    /// Ranges registered and not yet folded into `committed`, in file order.
    pending: VecDeque<Pending>,
    /// Unix seconds when the file was last seen.
    last_seen: u64,
    /// Opened by a reader in this run (entries only loaded from disk are not live).
    live: bool,
}

#[derive(Debug)]
struct Pending {
    seq: u64,
    to: u64,
    acked: bool,
}

impl FlowCheckpoints {
    /// Checkpoints seeded from the entries read from disk.
    pub fn new(entries: Vec<Entry>) -> Self {
        let mut files = HashMap::new();
        for e in entries {
            files.insert(
                e.key(),
                FileState {
                    path: e.path,
                    committed: e.offset,
                    persisted: e.offset,
                    pending: VecDeque::new(),
                    last_seen: e.last_seen,
                    live: false,
                },
            );
        }
        FlowCheckpoints {
            inner: Mutex::new(State {
                files,
                dirty: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The newest entry known for the inode `(dev, ino)`: highest generation.
    pub fn lookup(&self, dev: u64, ino: u64) -> Option<(FileKey, u64)> {
        let st = self.lock();
        st.files
            .iter()
            .filter(|(k, _)| k.dev == dev && k.ino == ino)
            .max_by_key(|(k, _)| k.generation)
            .map(|(k, f)| (*k, f.committed))
    }

    /// A reader starts reading `key` at `offset` (its checkpoint, its start or its end).
    pub fn open(&self, key: FileKey, path: &Path, offset: u64) {
        let mut st = self.lock();
        let now = crate::tail::checkpoint::unix_now();
        let f = st.files.entry(key).or_insert_with(|| FileState {
            path: path.to_path_buf(),
            committed: offset,
            persisted: u64::MAX,
            pending: VecDeque::new(),
            last_seen: now,
            live: true,
        });
        f.path = path.to_path_buf();
        f.live = true;
        f.last_seen = now;
        if f.pending.is_empty() && f.committed < offset {
            f.committed = offset;
        }
        st.dirty = true;
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
        for r in ranges {
            let f = st.files.entry(r.key).or_insert_with(|| FileState {
                path: PathBuf::new(),
                committed: r.from,
                persisted: u64::MAX,
                pending: VecDeque::new(),
                last_seen: crate::tail::checkpoint::unix_now(),
                live: true,
            });
            debug_assert!(
                f.pending.back().map_or(f.committed, |p| p.to) <= r.from,
                "ranges of one file must be registered in order"
            );
            f.pending.push_back(Pending {
                seq,
                to: r.to,
                acked: false,
            });
        }
    }

    /// Batch `seq`, which covered `ranges`, is acknowledged. Returns true when a
    /// checkpoint moved.
    pub fn ack(&self, seq: u64, ranges: &[FileRange]) -> bool {
        let mut st = self.lock();
        let mut moved = false;
        for r in ranges {
            let Some(f) = st.files.get_mut(&r.key) else {
                continue;
            };
            if let Some(p) = f.pending.iter_mut().find(|p| p.seq == seq) {
                p.acked = true;
            }
            while f.pending.front().is_some_and(|p| p.acked) {
                let p = f.pending.pop_front().expect("front exists");
                if p.to > f.committed {
                    f.committed = p.to;
                    moved = true;
                }
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

    /// Every entry not opened by a reader in this run: `(identity, offset, last path)`.
    pub fn entries(&self) -> Vec<(FileKey, u64, PathBuf)> {
        self.lock()
            .files
            .iter()
            .filter(|(_, f)| !f.live)
            .map(|(k, f)| (*k, f.committed, f.path.clone()))
            .collect()
    }

    /// Forgets `key` (its file was removed after shipping).
    pub fn forget(&self, key: &FileKey) {
        let mut st = self.lock();
        if st.files.remove(key).is_some() {
            st.dirty = true;
        }
    }

    /// Marks the live file `key` as seen now.
    pub fn touch(&self, key: &FileKey) {
        if let Some(f) = self.lock().files.get_mut(key) {
            f.last_seen = crate::tail::checkpoint::unix_now();
        }
    }

    /// True when something changed since the last [`snapshot`](Self::snapshot).
    pub fn is_dirty(&self) -> bool {
        self.lock().dirty
    }

    /// The entries to write to disk: one per inode (its newest generation), entries of
    /// files not seen for `ttl_secs` dropped. Clears the dirty flag.
    pub fn snapshot(&self, now: u64, ttl_secs: u64) -> Vec<Entry> {
        let mut st = self.lock();
        st.dirty = false;
        st.files.retain(|_, f| {
            f.live || !f.pending.is_empty() || now.saturating_sub(f.last_seen) <= ttl_secs
        });
        let mut newest: HashMap<(u64, u64), (&FileKey, &FileState)> = HashMap::new();
        for (k, f) in &st.files {
            let slot = newest.entry((k.dev, k.ino)).or_insert((k, f));
            if k.generation > slot.0.generation {
                *slot = (k, f);
            }
        }
        let mut out: Vec<Entry> = newest
            .into_values()
            .map(|(k, f)| Entry {
                dev: k.dev,
                ino: k.ino,
                fingerprint: k.fingerprint,
                generation: k.generation,
                offset: f.committed,
                path: f.path.clone(),
                last_seen: if f.live { now } else { f.last_seen },
            })
            .collect();
        out.sort_by_key(|e| (e.dev, e.ino));
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
        c.open(key(1), Path::new("/a"), 0);
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
        }]);
        c.open(key(1), Path::new("/a"), 4);
        let k2 = FileKey {
            generation: 1,
            ..key(1)
        };
        c.open(k2, Path::new("/a"), 0);
        let snap = c.snapshot(100 + 10, 60);
        assert_eq!(snap.len(), 2);
        let e = snap.iter().find(|e| e.ino == 1).unwrap();
        assert_eq!((e.generation, e.offset), (1, 0));
        let snap = c.snapshot(100 + 61, 60);
        assert_eq!(snap.len(), 1, "the entry of /gone expired");
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
            c.open(key(1), Path::new("/a"), 0);
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
