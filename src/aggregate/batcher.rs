//! The batcher: turns one flow's framed records into [`Batch`]es (processors, partition
//! keys, the destination's record limit, batch limits by count, bytes and age) and hands
//! them to the flow's delivery queue, registering their file ranges with the checkpoints
//! first. Sending blocks while the flow's memory budget or queue is full: reading stops,
//! and the files are the buffer.
//!
//! It knows nothing of files beyond the ranges it is told to cover, nor of destinations
//! beyond their limits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::ack::FlowCheckpoints;
use crate::event::{Batch, FileKey, RecordId};
use crate::metrics::FlowStats;
use crate::partition;
use crate::process::{Made, RecordMaker};

/// Truncated records are logged at most this often per flow.
pub(crate) const TRUNCATION_LOG_EVERY: Duration = Duration::from_secs(60);

pub use crate::config::DEFAULT_MAX_BUFFERED_BYTES;

/// The smallest share of the budget a flow gets, whatever the number of flows: room for a
/// batch of a few hundred log lines.
pub const MIN_SHARE_KIB: u32 = 64;

/// The budget is reserved in steps of this many KiB while a batch fills.
const RESERVE_STEP_KIB: u32 = 64;

/// One flow's part of the memory budget: `kib` permits of 1 KiB.
#[derive(Debug, Clone)]
pub struct Share {
    /// Holds `kib` permits when nothing is in use.
    pub semaphore: Arc<tokio::sync::Semaphore>,
    /// The share's size.
    pub kib: u32,
}

impl Share {
    /// A share of `kib` KiB.
    pub fn new(kib: u32) -> Share {
        Share {
            semaphore: Arc::new(tokio::sync::Semaphore::new(kib as usize)),
            kib,
        }
    }
}

/// Each flow's shares of `total` bytes, in KiB: (batches being filled, queued or in
/// flight; the copies requests make of them). Half the budget goes to each, split evenly
/// between the flows, so that a flow whose destination is down holds only its own share
/// and the others go on; each at least [`MIN_SHARE_KIB`].
pub const fn shares(total: usize, flows: usize) -> (u32, u32) {
    let flows = if flows == 0 { 1 } else { flows };
    let per_flow = total / 1024 / 2 / flows;
    let share = if per_flow > u32::MAX as usize {
        u32::MAX
    } else if per_flow < MIN_SHARE_KIB as usize {
        MIN_SHARE_KIB
    } else {
        per_flow as u32
    };
    (share, share)
}

/// The KiB of memory a batch weighs.
pub fn batch_kib(batch: &Batch) -> u32 {
    (batch.data.len() + batch.keys.len())
        .div_ceil(1024)
        .max(1)
        .min(u32::MAX as usize) as u32
}

/// A batch on its way to the sink, with the memory budget it holds until acknowledged.
#[derive(Debug)]
pub struct Queued {
    /// The batch.
    pub batch: Batch,
    /// Released when the batch is acknowledged (or dropped at shutdown).
    pub bytes: tokio::sync::OwnedSemaphorePermit,
}

/// Builds batches from framed records.
pub(crate) struct Emitter {
    pub(crate) flow_index: usize,
    /// The record as sent, with its key.
    pub(crate) maker: RecordMaker,
    /// DETERMINISTIC keys: the records of the batch whose key is still to be written
    /// (index, and its data as sent), hashed together when the batch is sent.
    pub(crate) digest_keys: Vec<(usize, std::ops::Range<u32>)>,
    pub(crate) batch: Batch,
    pub(crate) opened: Option<Instant>,
    pub(crate) batch_bytes: usize,
    pub(crate) max_records: usize,
    pub(crate) max_bytes: usize,
    /// The destination's record limit (for messages).
    pub(crate) max_record_bytes: usize,
    pub(crate) checkpoints: Arc<FlowCheckpoints>,
    pub(crate) stats: Arc<FlowStats>,
    pub(crate) tx: tokio::sync::mpsc::Sender<Queued>,
    /// The flow's share of the memory budget for batches.
    pub(crate) budget: Share,
    /// The most a batch weighs, in KiB (at most the share).
    pub(crate) max_kib: u32,
    /// Where the next batch's buffer comes from.
    pub(crate) pool: Option<Arc<crate::sink::pool::BufPool>>,
    /// The part of it the batch being filled holds.
    pub(crate) held: Option<tokio::sync::OwnedSemaphorePermit>,
    pub(crate) abort: CancellationToken,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) truncation_log: crate::report::RateLimit,
    /// The ends of the file ranges of batches sent, whose anchors the loop computes.
    pub(crate) sent: Vec<(FileKey, u64)>,
    /// Set when the queue refused a batch because shutdown gave up.
    pub(crate) aborted: bool,
}

impl Emitter {
    pub(crate) fn record(
        &mut self,
        key: FileKey,
        id: u64,
        covered: &mut u64,
        frame: crate::framing::Frame<'_>,
    ) {
        FlowStats::add(&self.stats.records_parsed, 1);
        FlowStats::add(&self.stats.bytes_parsed, frame.bytes.len() as u64 + 1);
        let id = RecordId::from_digest(id, frame.offset);
        let truncated = match self.maker.make(&frame, id) {
            Made::Dropped => {
                FlowStats::add(&self.stats.records_dropped, 1);
                return;
            }
            Made::Record { truncated, failed } => {
                if failed {
                    FlowStats::add(&self.stats.processing_errors, 1);
                }
                truncated
            }
        };
        if truncated {
            FlowStats::add(&self.stats.records_truncated, 1);
            self.log_truncation(id);
        }
        let size = self.maker.out.len() + self.maker.keybuf.len();
        // Full: by count, by bytes, or by weight (`max_kib`, from the flow's shares of the
        // memory budget; a record that alone weighs more goes in a batch of its own).
        let weight = (self.batch.data.len() + self.batch.keys.len() + size).div_ceil(1024);
        if !self.batch.is_empty()
            && (self.batch.len() >= self.max_records
                || self.batch_bytes + size > self.max_bytes
                || weight > self.max_kib as usize)
        {
            // Everything of this file before the record is in the batch or was dropped.
            if frame.offset > *covered {
                self.batch.cover(key, *covered, frame.offset);
                *covered = frame.offset;
            }
            self.send();
        }
        if self.opened.is_none() {
            self.opened = Some(Instant::now());
        }
        let out = &self.maker.out;
        let key_bytes = (!self.maker.keybuf.is_empty()).then_some(&self.maker.keybuf[..]);
        self.batch.push(out, key_bytes, id);
        if self.maker.digest_keys() {
            let i = self.batch.len() - 1;
            let r = self.batch.records[i].data.clone();
            self.digest_keys.push((i, r));
        }
        self.batch_bytes += size;
        self.reserve();
    }

    /// Reserves budget for the batch being filled as it grows (in steps, up to the whole
    /// share), so that its records count against the flow's share before it is sent.
    fn reserve(&mut self) {
        let need = batch_kib(&self.batch).min(self.budget.kib);
        let held = self.held.as_ref().map_or(0, |p| p.num_permits() as u32);
        if need <= held || self.aborted {
            return;
        }
        let more = (need - held)
            .max(RESERVE_STEP_KIB)
            .min(self.budget.kib - held);
        let got = match Arc::clone(&self.budget.semaphore).try_acquire_many_owned(more) {
            Ok(p) => Some(p),
            Err(_) => self.acquire(need - held),
        };
        match (got, &mut self.held) {
            (Some(p), Some(h)) => h.merge(p),
            (Some(p), None) => self.held = Some(p),
            (None, _) => self.aborted = true,
        }
    }

    /// Waits for `kib` of the flow's share (the reader stops meanwhile: the files are the
    /// buffer). `None` when shutdown gave up.
    fn acquire(&self, kib: u32) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let budget = Arc::clone(&self.budget.semaphore);
        let abort = self.abort.clone();
        let stats = Arc::clone(&self.stats);
        self.runtime.block_on(async move {
            // A reader held back by a slow destination is alive: it beats while it waits.
            loop {
                stats.reader_heartbeat();
                tokio::select! {
                    p = Arc::clone(&budget).acquire_many_owned(kib) => return p.ok(),
                    _ = abort.cancelled() => return None,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        })
    }

    pub(crate) fn cover(&mut self, key: FileKey, from: u64, to: u64) {
        if to > from {
            if self.opened.is_none() {
                self.opened = Some(Instant::now());
            }
            self.batch.cover(key, from, to);
        }
    }

    pub(crate) fn log_truncation(&mut self, id: RecordId) {
        if let Some(count) = self.truncation_log.hit(1) {
            tracing::warn!(
                "flow {}: {count} record(s) above the destination's limit of {} bytes were truncated (latest: record {id})",
                self.flow_index,
                self.max_record_bytes
            );
        }
    }

    pub(crate) fn deadline(&self, max_age: Duration) -> Option<Instant> {
        self.opened.map(|t| t + max_age)
    }

    /// Writes the DETERMINISTIC keys of the batch's records, all at once.
    pub(crate) fn fill_digest_keys(&mut self) {
        if self.digest_keys.is_empty() {
            return;
        }
        let b = &mut self.batch;
        let records: Vec<&[u8]> = self
            .digest_keys
            .iter()
            .map(|(_, r)| &b.data[r.start as usize..r.end as usize])
            .collect();
        let keys = partition::digest_keys(&records);
        let keys = keys.chunks_exact(partition::DIGEST_KEY_LEN);
        for ((i, _), key) in self.digest_keys.drain(..).zip(keys) {
            let r = b.records[i].key.clone();
            b.keys[r.start as usize..r.end as usize].copy_from_slice(key);
        }
    }

    /// Sends the current batch (blocking while the queue is full).
    pub(crate) fn send(&mut self) {
        self.fill_digest_keys();
        self.opened = None;
        self.batch_bytes = 0;
        let seq = self.batch.seq;
        let batch = std::mem::replace(&mut self.batch, Batch::new(seq + 1));
        if batch.is_empty() && batch.ranges.is_empty() {
            self.batch.seq = seq;
            return;
        }
        if self.aborted {
            return;
        }
        // The next batch is likely the size of this one: room for it at once, rather
        // than a buffer that doubles (and is copied) its way up.
        match &self.pool {
            Some(pool) => self.batch.data = pool.take(batch.data.len()),
            None => self.batch.data.reserve(batch.data.len()),
        }
        self.batch.records.reserve(batch.records.len());
        self.checkpoints.register(batch.seq, &batch.ranges);
        self.sent.extend(batch.ranges.iter().map(|r| (r.key, r.to)));
        FlowStats::add(&self.stats.batches_pending, 1);
        // The batch keeps what it weighs of the budget until it is acknowledged; what was
        // reserved beyond goes back.
        let kib = batch_kib(&batch).min(self.budget.kib) as usize;
        let bytes = match self.held.take() {
            Some(mut held) if held.num_permits() >= kib => {
                drop(held.split(held.num_permits() - kib));
                Some(held)
            }
            Some(mut held) => self.acquire((kib - held.num_permits()) as u32).map(|more| {
                held.merge(more);
                held
            }),
            None => self.acquire(kib as u32),
        };
        let Some(bytes) = bytes else {
            self.aborted = true;
            return;
        };
        let tx = self.tx.clone();
        let abort = self.abort.clone();
        let stats = Arc::clone(&self.stats);
        let sent = self.runtime.block_on(async move {
            // Room in the queue. A reader held back by a slow destination is alive: it
            // beats while it waits.
            loop {
                stats.reader_heartbeat();
                tokio::select! {
                    permit = tx.reserve() => match permit {
                        Ok(p) => {
                            p.send(Queued { batch, bytes });
                            return true;
                        }
                        Err(_) => return false,
                    },
                    _ = abort.cancelled() => return false,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        });
        if !sent {
            // The batch stays registered and unacknowledged: its bytes are read again
            // after a restart.
            self.aborted = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The budget is halved between batches and request copies and split evenly between
    /// the flows, never below the floor; the shares never add up to more than the budget
    /// unless the floor applies.
    #[test]
    fn shares_split_the_budget_evenly() {
        assert_eq!(shares(8 << 20, 1), (4096, 4096));
        assert_eq!(shares(8 << 20, 0), (4096, 4096));
        assert_eq!(shares(8 << 20, 4), (1024, 1024));
        assert_eq!(shares(8 << 20, 1000), (MIN_SHARE_KIB, MIN_SHARE_KIB));
        assert_eq!(shares(1 << 50, 1).0, u32::MAX);
        for flows in 1..200 {
            let (b, w) = shares(8 << 20, flows);
            let used = (b as usize + w as usize) * 1024 * flows;
            assert!(
                used <= 8 << 20 || b == MIN_SHARE_KIB,
                "{flows} flows use {used}"
            );
        }
    }

    #[test]
    fn a_batch_weighs_its_records_and_keys() {
        let mut b = Batch::new(0);
        assert_eq!(batch_kib(&b), 1);
        let id = RecordId::from_digest(0, 0);
        b.push(&[0u8; 1500], Some(b"key"), id);
        assert_eq!(batch_kib(&b), 2);
    }
}
