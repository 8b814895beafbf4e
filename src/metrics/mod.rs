//! Counters of what the agent does, one set per flow, updated with relaxed atomics (never
//! a lock per record), and the observers that read them: CloudWatch
//! ([`cloudwatch`]), the Prometheus `/metrics` and `/health` endpoints ([`http`]). The
//! progress log lines are built in `daemon.rs` from the same counters. Each counter is
//! named after the event it counts.
//!
//! Owns: the counters and the observer tasks. Does not own: when counters move (the
//! stages do that) nor any decision about delivery; an observer never blocks a stage.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

pub mod cloudwatch;
pub mod http;

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
    /// Incremented by the reader at every turn of its loop (see
    /// [`FlowStats::reader_heartbeat`]); `/health` calls a reader dead when this stops
    /// moving for `metrics.healthAckTimeoutSeconds`. 0: the reader does not report
    /// heartbeats, and counts as alive.
    pub reader_heartbeats: AtomicU64,
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

    /// The reader of this flow is alive: call it at every turn of the reader loop,
    /// including while it waits for room in the publish queue (a reader held back by a
    /// slow destination is alive; the flow's acknowledgement age reports the slowness).
    /// One relaxed increment; no clock is read.
    #[inline]
    pub fn reader_heartbeat(&self) {
        self.reader_heartbeats.fetch_add(1, Ordering::Relaxed);
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

/// The running observers: the CloudWatch publisher and the HTTP endpoint, each present
/// only when configured. [`Observers::shutdown`] stops them and flushes CloudWatch once.
#[derive(Debug)]
pub struct Observers {
    stop: CancellationToken,
    cloudwatch: Option<JoinHandle<()>>,
    http: Option<JoinHandle<()>>,
    /// Where the HTTP endpoint listens (the bound address, useful with port 0).
    pub http_address: Option<std::net::SocketAddr>,
}

/// How long shutdown waits for the last CloudWatch flush; metrics never hold up an exit
/// for long.
pub const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the observers `config` asks for: CloudWatch when `cloudwatch.emitMetrics` and
/// at least one flow goes to Kinesis or Firehose, `/metrics` and `/health` when `metrics.listenAddress` is set. Fails only when the
/// listen address cannot be bound or `AWS_CA_BUNDLE` cannot be used. Makes no AWS call.
pub async fn spawn(config: &Config, stats: Arc<Stats>) -> std::io::Result<Observers> {
    let stop = CancellationToken::new();
    let (http, http_address) = match config.metrics_listen_address {
        Some(addr) => {
            let server = http::Server::bind(addr, config, Arc::clone(&stats)).await?;
            let bound = server.local_addr();
            tracing::info!("metrics and health endpoint listening on http://{bound}");
            (Some(tokio::spawn(server.run(stop.clone()))), Some(bound))
        }
        None => (None, None),
    };
    // An agent that only writes local files (a demo, a test) sends no metrics: it may
    // well have no AWS credentials, and its metrics would have no destination.
    let aws_flows = config
        .flows
        .iter()
        .any(|f| !matches!(f.destination, crate::config::Destination::OutputFile(_)));
    if config.cloudwatch.emit_metrics && !aws_flows {
        tracing::debug!("no Kinesis or Firehose flow: CloudWatch metrics are not sent");
    }
    let cloudwatch = if config.cloudwatch.emit_metrics && aws_flows {
        let publisher = cloudwatch::Publisher::from_config(config)
            .await
            .map_err(std::io::Error::other)?;
        Some(tokio::spawn(
            publisher.run(
                stats,
                config.cloudwatch.buffer_time,
                config
                    .cloudwatch
                    .tag_instance
                    .then(|| config.ec2_metadata_endpoint.clone()),
                stop.clone(),
            ),
        ))
    } else {
        None
    };
    Ok(Observers {
        stop,
        cloudwatch,
        http,
        http_address,
    })
}

impl Observers {
    /// Stops the HTTP endpoint and the CloudWatch publisher, which sends what it holds
    /// once more (at most [`SHUTDOWN_FLUSH_TIMEOUT`]).
    pub async fn shutdown(self) {
        self.stop.cancel();
        if let Some(h) = self.http {
            let _ = h.await;
        }
        if let Some(mut h) = self.cloudwatch {
            if tokio::time::timeout(SHUTDOWN_FLUSH_TIMEOUT, &mut h)
                .await
                .is_err()
            {
                h.abort();
                tracing::warn!(
                    "CloudWatch metrics not flushed within {SHUTDOWN_FLUSH_TIMEOUT:?} at shutdown; the last window is lost"
                );
            }
        }
    }
}
