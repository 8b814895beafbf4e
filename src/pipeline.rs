//! One flow's reader thread: runs the file loop of [`crate::tail::reader`] and the
//! batcher of [`crate::aggregate::batcher`] on one OS thread (not a thread per file): reads
//! from page cache are fast and blocking, and keeping them off the async runtime keeps the
//! sinks' latency low. Between rounds it sleeps until an inotify event or the nearest
//! deadline (a batch's age, a multi-line record's silence, a gone file's grace, the next
//! rescan): an idle agent does not poll.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::ack::FlowCheckpoints;
use crate::aggregate::batcher::Emitter;
pub use crate::aggregate::batcher::{batch_kib, shares, Queued, Share, DEFAULT_MAX_BUFFERED_BYTES};
use crate::config::{Aggregation, Destination, FlowConfig, InitialPosition};
use crate::event::Batch;
use crate::metrics::FlowStats;
use crate::process::Chain;
use crate::process::RecordMaker;
use crate::tail::discovery::{Pattern, Reported};
use crate::tail::reader::Loop;
pub use crate::tail::reader::{FILE_BUDGET, GONE_GRACE, GONE_POLL, READ_CHUNK};
use crate::tail::watch::{Wake, Watcher};

/// Rescans asked for by events are at most this frequent.
pub const MIN_RESCAN_GAP: Duration = Duration::from_millis(50);
/// inotify events queued between the watcher thread and this loop; on overflow the loop
/// rescans instead.
const EVENT_QUEUE: usize = 4096;

/// Everything one flow's reader needs.
pub struct FlowReader {
    /// The flow.
    pub flow: FlowConfig,
    /// Its checkpoints.
    pub checkpoints: Arc<FlowCheckpoints>,
    /// Its counters.
    pub stats: Arc<FlowStats>,
    /// Where batches go (capacity `publishQueueCapacity`).
    pub tx: tokio::sync::mpsc::Sender<Queued>,
    /// The flow's share of the memory budget (`maxBufferedBytes`) for batches being
    /// filled, queued or in flight.
    pub budget: Share,
    /// The most a batch may weigh, in KiB: at most `budget`'s size, and small enough that
    /// the copies its request makes fit the flow's working share.
    pub max_batch_kib: u32,
    /// Where a batch's buffer comes from (the sink's, which gives it back once sent).
    pub pool: Option<Arc<crate::sink::pool::BufPool>>,
    /// Cancelled to stop reading (shutdown starts).
    pub stop: CancellationToken,
    /// Cancelled to give up sending (shutdown timed out).
    pub abort: CancellationToken,
    /// The runtime the sink runs on, to block on a full queue.
    pub runtime: tokio::runtime::Handle,
    /// `run --once`: read what is there, flush, return.
    pub once: bool,
    /// No checkpoint file existed: `initialPosition` applies to files already there.
    pub first_start: bool,
    /// The destination's record limit (data plus partition key).
    pub max_record_bytes: usize,
    /// Cap on descriptors held by this flow.
    pub max_open_files: usize,
    /// The discovery safety net.
    pub rescan_interval: Duration,
    /// The processors.
    pub chain: Chain,
}

impl FlowReader {
    /// Runs the flow until `stop` (or, with `once`, until every file is read).
    pub fn run(self) {
        let FlowReader {
            flow,
            checkpoints,
            stats,
            tx,
            budget,
            max_batch_kib,
            pool,
            stop,
            abort,
            runtime,
            once,
            first_start,
            max_record_bytes,
            max_open_files,
            rescan_interval,
            chain,
        } = self;
        let (max_records, max_bytes) = batch_limits(&flow);
        let maker = RecordMaker::new(&flow, chain, max_record_bytes);
        let framer_cap = maker.framer_cap();
        let mut emitter = Emitter {
            flow_index: flow.index,
            maker,
            digest_keys: Vec::new(),
            batch: Batch::new(0),
            opened: None,
            batch_bytes: 0,
            max_records,
            max_bytes,
            max_record_bytes,
            checkpoints: Arc::clone(&checkpoints),
            stats: Arc::clone(&stats),
            tx,
            max_kib: max_batch_kib,
            pool,
            budget,
            held: None,
            abort,
            runtime,
            truncation_log: crate::report::RateLimit::new(
                crate::aggregate::batcher::TRUNCATION_LOG_EVERY,
            ),
            sent: Vec::new(),
            aborted: false,
        };
        let pattern = Pattern::new(&flow.file_pattern, flow.glob.clone());
        let (ev_tx, ev_rx) = mpsc::sync_channel::<Wake>(EVENT_QUEUE);
        let watcher = if once {
            None
        } else {
            Watcher::new(&pattern, ev_tx.clone())
        };
        let mut state = Loop {
            flow: &flow,
            pattern,
            readers: HashMap::new(),
            by_path: HashMap::new(),
            reported: Reported::default(),
            checkpoints,
            stats,
            buf: vec![0u8; READ_CHUNK],
            framer_cap,
            max_open_files: max_open_files.max(1),
            open: 0,
            donors: Vec::new(),
            once,
        };
        state.rescan(first_start && flow.initial_position == InitialPosition::EndOfFile && !once);
        state.recover_after_restart();
        let mut watcher = watcher;
        let mut last_rescan = Instant::now();
        let mut rescan_wanted = false;
        loop {
            state.stats.reader_heartbeat();
            if stop.is_cancelled() {
                break;
            }
            // Events that arrived since the last round.
            while let Ok(w) = ev_rx.try_recv() {
                state.wake(w, &mut rescan_wanted);
            }
            if let Some(w) = watcher.as_mut() {
                w.retry_missing_root(&state.pattern);
            }
            if !once
                && ((rescan_wanted && last_rescan.elapsed() >= MIN_RESCAN_GAP)
                    || last_rescan.elapsed() >= rescan_interval)
            {
                state.rescan(false);
                last_rescan = Instant::now();
                rescan_wanted = false;
            }
            let read = state.round(&mut emitter, &stop);
            state.timers(&mut emitter);
            if emitter
                .deadline(flow.max_buffer_age)
                .is_some_and(|d| d <= Instant::now())
            {
                emitter.send();
            }
            state.fill_anchors(&mut emitter);
            state.update_gauges();
            if emitter.aborted {
                break;
            }
            if once && read == 0 && state.all_read() {
                state.finish(&mut emitter);
                break;
            }
            if read > 0 || state.any_dirty() {
                continue;
            }
            // Nothing to read: sleep until an event or the nearest deadline.
            let mut wake_at = last_rescan
                + if rescan_wanted {
                    MIN_RESCAN_GAP
                } else {
                    rescan_interval
                };
            for d in [
                emitter.deadline(flow.max_buffer_age),
                state.next_deadline(flow.max_buffer_age),
            ]
            .into_iter()
            .flatten()
            {
                wake_at = wake_at.min(d);
            }
            // Wake often enough to notice `stop`.
            let timeout = wake_at
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(200));
            match ev_rx.recv_timeout(timeout) {
                Ok(w) => state.wake(w, &mut rescan_wanted),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {}
            }
        }
        // Shutdown: what is read is sent; records still being framed (partial lines,
        // multi-line records) are read again after the restart.
        if !once {
            emitter.send();
        }
        state.fill_anchors(&mut emitter);
        drop(watcher);
        drop(ev_tx);
    }
}

/// Batch limits of a flow: (records, bytes).
fn batch_limits(flow: &FlowConfig) -> (usize, usize) {
    let aggregated = flow.aggregation == Aggregation::Kpl
        || (matches!(flow.destination, Destination::DeliveryStream(_))
            && flow.aggregated_record_size_bytes.is_some());
    if aggregated {
        // Many user records share one aggregate; the sink splits requests by the AWS
        // limits, so a batch is bounded by bytes only.
        (usize::MAX, flow.max_buffer_size_bytes)
    } else {
        (flow.max_buffer_size_records, flow.max_buffer_size_bytes)
    }
}
