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

/// Bytes of batches one flow may hold queued or in flight: with `publishQueueCapacity`
/// batches of up to 5 MiB each, memory would follow the destination's backlog; this keeps
/// it flat (the files are the buffer). Two full 5 MiB batches fit.
pub const MAX_QUEUED_BYTES: usize = 12 * 1024 * 1024;

/// The KiB of memory budget (see [`MAX_QUEUED_BYTES`]) a batch holds.
pub fn batch_kib(batch: &Batch) -> u32 {
    let kib = (batch.data.len() + batch.keys.len()).div_ceil(1024).max(1);
    kib.min(MAX_QUEUED_BYTES / 1024) as u32
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
    pub(crate) budget: Arc<tokio::sync::Semaphore>,
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
        if !self.batch.is_empty()
            && (self.batch.len() >= self.max_records || self.batch_bytes + size > self.max_bytes)
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
        self.checkpoints.register(batch.seq, &batch.ranges);
        self.sent.extend(batch.ranges.iter().map(|r| (r.key, r.to)));
        FlowStats::add(&self.stats.batches_pending, 1);
        let tx = self.tx.clone();
        let abort = self.abort.clone();
        let stats = Arc::clone(&self.stats);
        let budget = Arc::clone(&self.budget);
        let kib = batch_kib(&batch);
        let sent = self.runtime.block_on(async move {
            // Room in memory first (bytes queued or in flight), then in the queue. A
            // reader held back by a slow destination is alive: it beats while it waits.
            let bytes = loop {
                stats.reader_heartbeat();
                tokio::select! {
                    p = Arc::clone(&budget).acquire_many_owned(kib) => match p {
                        Ok(p) => break p,
                        Err(_) => return false,
                    },
                    _ = abort.cancelled() => return false,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            };
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
