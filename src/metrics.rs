//! Counters of what the agent does, one set per flow, updated with relaxed atomics (never
//! a lock per record). CloudWatch, Prometheus and the progress log read them; tests assert
//! on them. Each counter is named after the event it counts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Counters of one flow.
#[derive(Debug, Default)]
pub struct FlowStats {
    /// Lines (framed records before processing) read from files.
    pub records_parsed: AtomicU64,
    /// Bytes read from files.
    pub bytes_parsed: AtomicU64,
    /// Records dropped by a processor (LOGTOJSON non-matching lines, headers, footers).
    pub records_dropped: AtomicU64,
    /// Records truncated to the destination's record limit.
    pub records_truncated: AtomicU64,
    /// Records whose processing failed; the original line was sent instead.
    pub processing_errors: AtomicU64,
    /// Records handed to the destination in a request (Java `RecordSendAttempts`).
    pub record_send_attempts: AtomicU64,
    /// Records acknowledged by the destination (Java `RecordsSent`).
    pub records_sent: AtomicU64,
    /// Bytes acknowledged by the destination (Java `BytesSent`).
    pub bytes_sent: AtomicU64,
    /// Records the destination refused in a request (Java `RecordSendErrors`).
    pub record_send_errors: AtomicU64,
    /// Requests that failed as a whole (Java `ServiceErrors`).
    pub service_errors: AtomicU64,
    /// Entries re-sent after a failure.
    pub retries: AtomicU64,
    /// Entries refused with a throttling error.
    pub throttles: AtomicU64,
    /// Files currently tailed (a gauge).
    pub files_tailed: AtomicU64,
    /// Bytes in tailed files not yet read (a gauge).
    pub bytes_behind: AtomicU64,
    /// Milliseconds since [`Stats::started`] of the last acknowledgement (0: none yet).
    pub last_ack_ms: AtomicU64,
    /// Batches built and not yet acknowledged (a gauge).
    pub batches_pending: AtomicU64,
    /// Milliseconds since [`Stats::started`] of the last checkpoint write.
    pub last_checkpoint_ms: AtomicU64,
}

impl FlowStats {
    /// Adds `n` to a counter.
    #[inline]
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    #[inline]
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The counters of every flow, and when the agent started.
#[derive(Debug)]
pub struct Stats {
    /// When the agent started (for `Uptime` and the `*_ms` gauges).
    pub started: Instant,
    /// One entry per flow, in flow order.
    pub flows: Vec<Arc<FlowStats>>,
}

impl Stats {
    /// Counters for `n` flows.
    pub fn new(n: usize) -> Arc<Self> {
        Arc::new(Stats {
            started: Instant::now(),
            flows: (0..n).map(|_| Arc::new(FlowStats::default())).collect(),
        })
    }

    /// Milliseconds since start (never 0, so that 0 can mean "never").
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64 + 1
    }

    /// Sum of one counter over all flows.
    pub fn total(&self, pick: impl Fn(&FlowStats) -> &AtomicU64) -> u64 {
        self.flows.iter().map(|f| FlowStats::get(pick(f))).sum()
    }
}
