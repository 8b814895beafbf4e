//! Wiring only: one reader thread and one delivery task per flow, joined by a bounded
//! channel; the checkpoint writer; the progress log; the ordered shutdown.
//!
//! ```text
//!  files ─▶ [reader thread: tail → framing → processors → batches] ──(publishQueueCapacity)──▶
//!        ─▶ [delivery task: up to maxInFlightRequests sink.deliver()] ─▶ ack ─▶ checkpoints
//! ```
//!
//! Shutdown, in order: stop reading; the readers send what they have read; deliveries run
//! until every queued batch is acknowledged or `shutdownTimeoutMillis` passes; the
//! checkpoints (acknowledged ranges only) are written; `run` returns.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::ack::FlowCheckpoints;
use crate::checkpoint::{self, Checkpoints, Entry};
use crate::config::Config;
use crate::metrics::{FlowStats, Stats};
use crate::pipeline::{batch_kib, FlowReader, Queued, Share};
use crate::process::Chain;
use crate::sink::Sink;

/// Checkpoints are written at most this often (SPEC §5).
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest time between two checkpoint writes asked for by a file starting to be read.
pub const URGENT_SPACING: Duration = Duration::from_millis(50);

/// How long start-up waits for the destinations' preflight checks.
pub const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(15);
/// Test hook of debug builds only: a delivery task panics (see `crash_on_panic` in
/// main.rs: the process must end, not go on with a stalled flow).
#[cfg(debug_assertions)]
pub const TEST_PANIC_ENV: &str = "KINESIS_TAIL_TEST_PANIC_IN_DELIVERY";

/// Test hook, in debug builds only: `MIN-MAX` milliseconds each delivery waits, at
/// random, before it starts, so that a sink that acknowledges at once (`outputFile`) has
/// batches in flight at a kill or a rotation, as a slow destination does.
#[cfg(debug_assertions)]
pub const TEST_SLOW_DELIVERY_ENV: &str = "KINESIS_TAIL_TEST_SLOW_DELIVERY_MS";

#[cfg(debug_assertions)]
fn test_delivery_delay() -> Option<Duration> {
    use rand::Rng;
    let v = std::env::var(TEST_SLOW_DELIVERY_ENV).ok()?;
    let (min, max) = v.split_once('-').unwrap_or((&v, &v));
    let (min, max): (u64, u64) = (min.trim().parse().ok()?, max.trim().parse().ok()?);
    Some(Duration::from_millis(
        rand::thread_rng().gen_range(min..=max.max(min)),
    ))
}

/// How many times its size a batch in flight to AWS costs in copies (KPL aggregates, the
/// base64 JSON body, the response): what a request takes of its flow's working share of
/// `maxBufferedBytes` before it is built.
const REQUEST_COPIES: u32 = 3;

/// The most a batch may weigh, in KiB: the batch share, and no more than the working
/// share can take `copies` times (a KPL batch of the whole share would make requests
/// whose aggregates and body outweigh the working share; smaller, they fit it, and their
/// buffers are reused from one request to the next). Never below 64 KiB.
fn max_batch_kib(batch_share: u32, working_share: u32, copies: u32) -> u32 {
    match copies {
        0 => batch_share,
        c => batch_share.min((working_share / c).max(64)),
    }
}

/// How `run` behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// `run --once`: ship what the files hold now, wait for acknowledgements, return.
    pub once: bool,
}

/// What a run did, for callers and tests.
#[derive(Debug)]
pub struct Summary {
    /// The counters of every flow.
    pub stats: Arc<Stats>,
    /// True when shutdown gave up on unacknowledged batches (they are re-read next time).
    pub timed_out: bool,
}

struct FlowRuntime {
    id: String,
    checkpoints: Arc<FlowCheckpoints>,
}

/// Why the agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A flow's sink cannot be built.
    #[error(transparent)]
    Sink(#[from] crate::sink::SinkError),
    /// The metrics listener, a reader thread or a blocking task cannot be started.
    #[error("cannot start: {0}")]
    Start(#[from] std::io::Error),
    /// A blocking task (reading the checkpoints) failed.
    #[error("reading the checkpoints failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Runs the agent until `shutdown` completes (or, with `once`, until everything is shipped).
pub async fn run(
    config: Config,
    options: RunOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary, RunError> {
    let loaded = tokio::task::spawn_blocking({
        let path = config.checkpoint_file.clone();
        move || checkpoint::load(&path)
    })
    .await?;
    let mut on_disk = loaded.checkpoints.flows;
    let stats = Stats::new(config.flows.len());
    let stop = CancellationToken::new();
    let abort = CancellationToken::new();

    // Sinks first: a destination that cannot even be built is a runtime failure.
    let mut sinks = Vec::new();
    // Told by every flow's checkpoints when a file starts being read (see the writer).
    let urgent = Arc::new(tokio::sync::Notify::new());
    for (i, flow) in config.flows.iter().enumerate() {
        sinks.push(Arc::new(
            Sink::new(&config, flow, Arc::clone(&stats.flows[i])).await?,
        ));
    }
    let limits = futures_join_all(sinks.iter().map(|s| {
        let s = Arc::clone(s);
        async move {
            // A destination that does not answer must not hold the start of reading; its
            // trouble is reported by the deliveries then.
            tokio::time::timeout(PREFLIGHT_TIMEOUT, s.preflight())
                .await
                .unwrap_or(None)
        }
    }))
    .await;
    // metrics: CloudWatch publisher, /metrics and /health (observability; owned by metrics.rs)
    let observers = crate::metrics::spawn(&config, Arc::clone(&stats)).await?;

    // One background refresher of the instance metadata, shared by every flow that adds it.
    let ec2_ttl = config
        .flows
        .iter()
        .flat_map(|f| &f.processors)
        .filter_map(|p| match p {
            crate::config::ProcessorConfig::AddEc2Metadata { ttl } => Some(*ttl),
            _ => None,
        })
        .min();
    let ec2 = ec2_ttl.map(|ttl| crate::ec2::Ec2Metadata::start(&config.ec2_metadata_endpoint, ttl));

    let mut flows = Vec::new();
    let mut readers = Vec::new();
    let mut deliveries = JoinSet::new();
    let mut used_ids = std::collections::HashSet::new();
    let ids: Vec<String> = config
        .flows
        .iter()
        .map(|flow| {
            let mut id = flow.id.clone();
            let mut n = 2;
            while !used_ids.insert(id.clone()) {
                id = format!("{}#{n}", flow.id);
                n += 1;
            }
            id
        })
        .collect();
    // Entries of flows no longer configured: a flow whose key is new (its pattern or
    // destination changed) takes them over, so the files it shares with its former self
    // resume exactly where they were (neither shipped again nor skipped). A file no entry
    // knows is treated as at a first start.
    let orphaned: Vec<Entry> = on_disk
        .iter()
        .filter(|(id, _)| !ids.contains(id))
        .flat_map(|(_, entries)| entries.iter().cloned())
        .collect();
    // One budget for the whole process, in even shares: a flow whose destination is down
    // fills its own share and stops reading; the others go on.
    let (batch_share, working_share) =
        crate::pipeline::shares(config.max_buffered_bytes, config.flows.len());
    for (i, flow) in config.flows.iter().enumerate() {
        let id = ids[i].clone();
        let (entries, first_start) = match on_disk.remove(&id) {
            Some(entries) => (entries, loaded.first_start),
            None if loaded.first_start => (Vec::new(), true),
            None => {
                if !orphaned.is_empty() {
                    tracing::info!(
                        "flow {}: no checkpoint under its key ({id}); starting as at a first start, resuming the files that entries of flows no longer configured know",
                        flow.index
                    );
                }
                (orphaned.clone(), true)
            }
        };
        let checkpoints = Arc::new(FlowCheckpoints::new(entries).with_urgent(Arc::clone(&urgent)));
        let (tx, rx) = tokio::sync::mpsc::channel::<Queued>(flow.publish_queue_capacity.max(1));
        // A local file keeps records in order only with one write at a time, and makes no
        // copy of a batch.
        let (max_in_flight, copies) =
            if matches!(flow.destination, crate::config::Destination::OutputFile(_)) {
                (1, 0)
            } else {
                (flow.max_in_flight.max(1), REQUEST_COPIES)
            };
        let fstats = Arc::clone(&stats.flows[i]);
        deliveries.spawn(deliver_loop(
            rx,
            Arc::clone(&sinks[i]),
            Arc::clone(&checkpoints),
            Arc::clone(&stats),
            fstats.clone(),
            (max_in_flight, copies),
            Share::new(working_share),
            abort.clone(),
        ));
        let reader = FlowReader {
            flow: flow.clone(),
            checkpoints: Arc::clone(&checkpoints),
            stats: fstats,
            tx,
            budget: Share::new(batch_share),
            max_batch_kib: max_batch_kib(batch_share, working_share, copies),
            pool: sinks[i].pool(),
            stop: stop.clone(),
            abort: abort.clone(),
            runtime: tokio::runtime::Handle::current(),
            once: options.once,
            first_start,
            max_record_bytes: limits[i].unwrap_or_else(|| flow.default_max_record_bytes()),
            max_open_files: config.max_open_files,
            rescan_interval: config.rescan_interval,
            chain: Chain::with_ec2(flow, ec2.clone()),
        };
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("flow-{i}"))
            .spawn(move || {
                reader.run();
                let _ = done_tx.send(());
            })?;
        readers.push(done_rx);
        flows.push(FlowRuntime { id, checkpoints });
    }
    let flows = Arc::new(flows);
    // Entries of flows no longer configured are kept (until their TTL) so that a flow
    // removed and added back resumes where it was.
    let carried = Arc::new(on_disk);
    let ttl_secs = config.checkpoint_ttl.as_secs();

    let writer_stop = CancellationToken::new();
    let writer = tokio::spawn(checkpoint_writer(
        config.checkpoint_file.clone(),
        Arc::clone(&flows),
        Arc::clone(&carried),
        ttl_secs,
        Arc::clone(&stats),
        urgent,
        writer_stop.clone(),
    ));
    let progress = tokio::spawn(progress_log(
        Arc::clone(&stats),
        config.status_reporting_period,
    ));
    tracing::info!(
        "kinesis-tail {} started with {} flow(s)",
        env!("CARGO_PKG_VERSION"),
        config.flows.len()
    );
    crate::notify::sd_notify("READY=1");

    let all_read = async {
        for r in readers.iter_mut() {
            let _ = r.await;
        }
    };
    tokio::pin!(all_read);
    tokio::pin!(shutdown);
    let mut readers_done = false;
    if options.once {
        tokio::select! {
            _ = &mut all_read => readers_done = true,
            _ = &mut shutdown => tracing::info!("shutdown requested"),
        }
    } else {
        shutdown.await;
        tracing::info!("shutdown requested: stopping readers, flushing batches");
    }
    crate::notify::sd_notify("STOPPING=1");
    stop.cancel();
    // Readers send what they have read and end, closing their channels; deliveries end
    // when every queued batch is acknowledged. A normal shutdown gives both together
    // `shutdownTimeoutMillis` (a reader blocked on a full queue in front of a dead
    // destination must not hold the shutdown); `--once` waits as long as it takes unless
    // a signal asks it to stop.
    let mut timed_out = false;
    let readers_finished = std::sync::atomic::AtomicBool::new(readers_done);
    let finish = async {
        if !readers_finished.load(Ordering::Relaxed) {
            (&mut all_read).await;
            readers_finished.store(true, Ordering::Relaxed);
        }
        while deliveries.join_next().await.is_some() {}
    };
    if options.once && readers_done {
        finish.await;
    } else {
        match tokio::time::timeout(config.shutdown_timeout, finish).await {
            Ok(()) => {}
            Err(_) => {
                timed_out = true;
                let pending: u64 = stats.total(|f| &f.batches_pending);
                tracing::warn!(
                    "shutdown timeout ({:?}) reached with {pending} batch(es) unacknowledged; they are read again at the next start",
                    config.shutdown_timeout
                );
            }
        }
    }
    abort.cancel();
    if !readers_finished.load(Ordering::Relaxed) {
        // Aborted sends return at once: the readers end now.
        all_read.await;
    }
    writer_stop.cancel();
    let _ = writer.await;
    progress.abort();
    // The final write: whatever was acknowledged, even if it was within the last second.
    if let Err(e) =
        write_checkpoints(&config.checkpoint_file, &flows, &carried, ttl_secs, &stats).await
    {
        tracing::error!(
            "cannot write checkpoint file {}: {e}",
            config.checkpoint_file.display()
        );
    }
    // metrics: stop the endpoint, send the last CloudWatch window (bounded wait)
    observers.shutdown().await;
    log_progress(&stats);
    tracing::info!("kinesis-tail stopped");
    Ok(Summary { stats, timed_out })
}

/// Awaits every future, in order. (A tiny `join_all`; no extra crate for one use.)
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("preflight task panicked"));
    }
    out
}

/// Delivers one flow's batches, up to `max_in_flight` at a time, each taking `copies`
/// times its weight of the flow's `working` share before it is built, and acknowledges
/// them.
#[allow(clippy::too_many_arguments)]
async fn deliver_loop(
    mut rx: tokio::sync::mpsc::Receiver<Queued>,
    sink: Arc<Sink>,
    checkpoints: Arc<FlowCheckpoints>,
    stats: Arc<Stats>,
    fstats: Arc<FlowStats>,
    (max_in_flight, copies): (usize, u32),
    working: Share,
    abort: CancellationToken,
) {
    let mut in_flight = JoinSet::new();
    let mut open = true;
    while open || !in_flight.is_empty() {
        tokio::select! {
            biased;
            _ = abort.cancelled() => {
                in_flight.abort_all();
                return;
            }
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            b = rx.recv(), if open && in_flight.len() < max_in_flight => match b {
                Some(Queued { mut batch, bytes }) => {
                    let sink = Arc::clone(&sink);
                    let checkpoints = Arc::clone(&checkpoints);
                    let stats = Arc::clone(&stats);
                    let fstats = Arc::clone(&fstats);
                    let working = working.clone();
                    in_flight.spawn(async move {
                        // Room for the request's own copies before it is built.
                        let kib = batch_kib(&batch).saturating_mul(copies).min(working.kib);
                        let work = working.semaphore.acquire_many(kib).await;
                        #[cfg(debug_assertions)]
                        if std::env::var_os(TEST_PANIC_ENV).is_some() {
                            panic!("{TEST_PANIC_ENV} is set");
                        }
                        #[cfg(debug_assertions)]
                        if let Some(d) = test_delivery_delay() {
                            tokio::time::sleep(d).await;
                        }
                        sink.deliver(&batch).await;
                        drop(work);
                        checkpoints.ack(batch.seq, &batch.ranges);
                        if let Some(pool) = sink.pool() {
                            pool.give(std::mem::take(&mut batch.data));
                        }
                        fstats.last_ack_ms.store(stats.now_ms(), Ordering::Relaxed);
                        fstats.batches_pending.fetch_sub(1, Ordering::Relaxed);
                        drop(bytes);
                    });
                }
                None => open = false,
            },
        }
    }
}

/// Writes the checkpoint file every [`CHECKPOINT_INTERVAL`] when something changed, and
/// soon (at most once per [`URGENT_SPACING`]) after a file or generation starts being
/// read: a file truncated by copytruncate and an agent killed within the interval would
/// otherwise leave that generation, and so its copy, unknown at the next start.
#[allow(clippy::too_many_arguments)]
async fn checkpoint_writer(
    path: std::path::PathBuf,
    flows: Arc<Vec<FlowRuntime>>,
    carried: Arc<BTreeMap<String, Vec<Entry>>>,
    ttl_secs: u64,
    stats: Arc<Stats>,
    urgent: Arc<tokio::sync::Notify>,
    stop: CancellationToken,
) {
    let mut last_urgent: Option<Instant> = None;
    let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut errors = crate::report::RateLimit::new(Duration::from_secs(60));
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
            _ = urgent.notified() => {
                // A start that opens thousands of files writes a few times, not thousands.
                let wait = last_urgent.map_or(Duration::ZERO, |t| URGENT_SPACING.saturating_sub(t.elapsed()));
                if !wait.is_zero() {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                last_urgent = Some(Instant::now());
            }
        }
        if !failing && !flows.iter().any(|f| f.checkpoints.is_dirty()) {
            continue;
        }
        match write_checkpoints(&path, &flows, &carried, ttl_secs, &stats).await {
            Ok(()) => {
                if failing {
                    tracing::info!("checkpoint file {} written again", path.display());
                }
                failing = false;
                errors.reset();
            }
            Err(e) => {
                failing = true;
                // Shipping goes on; the checkpoint catches up once the disk allows.
                if let Some(n) = errors.hit(1) {
                    tracing::error!(
                        "cannot write checkpoint file {}: {e} ({n} failed write(s) since the last report); shipping continues, retrying every second",
                        path.display()
                    );
                }
            }
        }
    }
}

async fn write_checkpoints(
    path: &std::path::Path,
    flows: &[FlowRuntime],
    carried: &BTreeMap<String, Vec<Entry>>,
    ttl_secs: u64,
    stats: &Stats,
) -> std::io::Result<()> {
    let now = checkpoint::unix_now();
    let mut all = Checkpoints::default();
    let mut snaps = Vec::new();
    for f in flows {
        let snap = f.checkpoints.snapshot(now, ttl_secs);
        all.flows.insert(f.id.clone(), snap.clone());
        snaps.push(snap);
    }
    for (id, entries) in carried {
        let kept: Vec<Entry> = entries
            .iter()
            .filter(|e| now.saturating_sub(e.last_seen) <= ttl_secs)
            .cloned()
            .collect();
        if !kept.is_empty() {
            all.flows.insert(id.clone(), kept);
        }
    }
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || checkpoint::save(&p, &all))
        .await
        .map_err(std::io::Error::other)??;
    for (f, snap) in flows.iter().zip(&snaps) {
        f.checkpoints.mark_persisted(snap);
    }
    for f in &stats.flows {
        f.last_checkpoint_ms
            .store(stats.now_ms(), Ordering::Relaxed);
    }
    Ok(())
}

/// Logs the Java agent's progress lines every `period`.
async fn progress_log(stats: Arc<Stats>, period: Duration) {
    let mut tick = tokio::time::interval(period.max(Duration::from_secs(1)));
    tick.tick().await;
    loop {
        tick.tick().await;
        log_progress(&stats);
    }
}

/// The two progress lines, worded as the Java agent's (operators' scripts parse them).
pub fn progress_lines(stats: &Stats) -> [String; 2] {
    let parsed = stats.total(|f| &f.records_parsed);
    let bytes = stats.total(|f| &f.bytes_parsed);
    let sent = stats.total(|f| &f.records_sent);
    let behind = stats.total(|f| &f.bytes_behind);
    [
        format!(
            "Agent: Progress: {parsed} records parsed ({bytes} bytes), and {sent} records sent successfully to destinations. Uptime: {}ms",
            stats.started.elapsed().as_millis()
        ),
        format!(
            "Agent: Tailing is {:.2} MB ({behind} bytes) behind.",
            behind as f64 / (1024.0 * 1024.0)
        ),
    ]
}

fn log_progress(stats: &Stats) {
    for line in progress_lines(stats) {
        tracing::info!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_weighs_no_more_than_its_request_copies_can_take() {
        // The default budget, one flow: 2 MiB shares; a request copies its batch 3 times.
        assert_eq!(max_batch_kib(2048, 2048, REQUEST_COPIES), 682);
        // A file sink makes no copy: the whole batch share.
        assert_eq!(max_batch_kib(2048, 2048, 0), 2048);
        // Never below 64 KiB, never above the batch share.
        assert_eq!(max_batch_kib(64, 64, 3), 64);
        assert_eq!(max_batch_kib(100, 1 << 20, 3), 100);
    }
}
