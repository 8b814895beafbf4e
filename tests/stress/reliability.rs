//! Reliability: the whole agent (the real binary) shipping to Kinesis in moto through the fault
//! proxy while the destination is down for a minute, and while it throttles 90 % of the
//! entries for 30 s. Every line must arrive (checked by sequence number, read back from
//! the stream); the figures asked for (read progress and memory during the outage, throttle
//! log lines during the storm) are printed.

use crate::support;
use crate::support::agent;

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::proxy::{Fate, Faults, Proxy};
use support::Moto;

const MIB: f64 = 1024.0 * 1024.0;

/// A config with one Kinesis flow per `(file, stream)` under `logs/`, through `endpoint`,
/// with `/metrics` on `metrics_port`.
fn config(
    s: &agent::Scratch,
    endpoint: &str,
    flows: &[(&str, &str)],
    metrics_port: u16,
) -> PathBuf {
    let patterns: Vec<(String, String)> = flows
        .iter()
        .map(|(file, stream)| {
            (
                format!("{}/{file}", s.logs().display()),
                format!(
                    "kinesisStream: {stream}\ninitialPosition: START_OF_FILE\n\
                     retryInitialBackoffMillis: 50\nretryMaxBackoffMillis: 500\n"
                ),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = patterns
        .iter()
        .map(|(p, f)| (p.as_str(), f.as_str()))
        .collect();
    s.config(
        &refs,
        &format!(
            "kinesis.endpoint: {endpoint}\nkinesis.region: us-east-1\nshutdownTimeoutMillis: 5000\n\
             metrics.listenAddress: 127.0.0.1:{metrics_port}\n"
        ),
    )
}

/// Appends `rate` lines a second of `len` bytes (`<tag> seq=N; xxx…`) to `path` until
/// `stop`; counts them in `written` and their bytes in `bytes`.
fn writer(
    path: PathBuf,
    tag: &'static str,
    rate: u64,
    len: usize,
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            if n >= due {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            let mut buf = Vec::new();
            while n < due {
                let head = format!("{tag} seq={n}; ");
                buf.extend_from_slice(head.as_bytes());
                buf.resize(buf.len() + len.saturating_sub(head.len() + 1), b'x');
                buf.push(b'\n');
                n += 1;
            }
            f.write_all(&buf).unwrap();
            bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
            written.store(n, Ordering::Relaxed);
        }
    })
}

/// The sequence numbers of `tag` in `records`.
fn seqs_of(records: &[support::StoredRecord], tag: &str) -> Vec<u64> {
    let prefix = format!("{tag} seq=");
    records
        .iter()
        .filter_map(|r| {
            let text = std::str::from_utf8(&r.data).ok()?;
            let rest = text.strip_prefix(&prefix)?;
            rest[..rest.find(';')?].parse().ok()
        })
        .collect()
}

/// Asserts `0..total` all arrived; returns (lost, duplicates).
fn check_all(seqs: &[u64], total: u64, what: &str) -> usize {
    let unique: HashSet<u64> = seqs.iter().copied().collect();
    let missing: Vec<u64> = (0..total).filter(|n| !unique.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "{what}: {} of {total} lines lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    seqs.len() - unique.len()
}

/// The sum over flows of the counter or gauge `name` on `/metrics`.
fn metric(port: u16, name: &str) -> Option<f64> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let prefix = format!("{name}{{");
    let values: Vec<f64> = resp
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// `VmRSS` and `VmHWM` of `pid`, in bytes.
fn memory(pid: u32) -> Option<(u64, u64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Waits until the agent logged that it started (its flows run).
async fn started(log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !fs::read_to_string(log)
        .unwrap_or_default()
        .contains("started with")
    {
        assert!(Instant::now() < deadline, "the agent did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every line written is acknowledged and nothing is pending or unread.
async fn drained(port: u16, lines: u64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let sent = metric(port, "kinesis_tail_records_sent_total").unwrap_or(0.0);
        let pending = metric(port, "kinesis_tail_batches_pending").unwrap_or(1.0);
        let behind = metric(port, "kinesis_tail_bytes_behind").unwrap_or(1.0);
        if sent >= lines as f64 && pending == 0.0 && behind == 0.0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

/// SIGTERM, and a clean exit.
async fn stop_agent(mut agent: agent::Agent) {
    agent::sigterm(&agent.0);
    let status = tokio::task::spawn_blocking(move || {
        agent::wait_exit(&mut agent.0, Duration::from_secs(30))
    })
    .await
    .unwrap()
    .expect("the agent exits on SIGTERM");
    assert!(status.success());
}

/// The memory budget of batches being filled, queued and in flight of the test's single
/// flow: its share of the default `maxBufferedBytes`.
const BUDGET: u64 =
    kinesis_tail::pipeline::shares(kinesis_tail::pipeline::DEFAULT_MAX_BUFFERED_BYTES, 1).0 as u64
        * 1024;
/// How long the destination is unreachable.
const OUTAGE: Duration = Duration::from_secs(60);
/// Lines of 2 KiB at this rate: 1.2 MiB/s, several times the budget during the outage.
const OUTAGE_RATE: u64 = 600;
const OUTAGE_LINE: usize = 2048;
/// The agent's resident memory must stay under this during the outage.
const RSS_LIMIT: u64 = 64 * 1024 * 1024;

/// The destination is unreachable for 60 s (the proxy closes every connection) while a
/// writer adds 1.2 MiB/s: reading stops once the budget of unacknowledged batches (2 MiB) is
/// used (the file is the buffer), memory stays flat, and once the destination is back every
/// line arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_minute_outage_pauses_reading_and_loses_nothing() {
    let _heavy = support::heavy();
    let Some(moto) = Moto::start() else { return };
    let client = support::kinesis(&moto.endpoint);
    support::create_stream(&client, "outage", 2).await;
    let proxy = Proxy::start(&moto.endpoint).await;
    proxy.set_faults(Faults {
        forget_seen_data: true,
        ..Faults::default()
    });
    let s = agent::Scratch::new();
    let port = support::free_port();
    let cfg = config(&s, &proxy.endpoint, &[("app.log", "outage")], port);
    let log = s.path("agent.log");
    let child = agent::Agent(agent::spawn(&cfg, &log));
    let pid = child.0.id();
    started(&log).await;

    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let written_bytes = Arc::new(AtomicU64::new(0));
    let w = writer(
        s.logs().join("app.log"),
        "o",
        OUTAGE_RATE,
        OUTAGE_LINE,
        stop.clone(),
        written.clone(),
        written_bytes.clone(),
    );
    // Shipping works before the outage.
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(port, "kinesis_tail_records_sent_total").unwrap_or(0.0) < 1000.0 {
        assert!(
            Instant::now() < deadline,
            "nothing shipped before the outage"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let rss_before = memory(pid).map_or(0, |m| m.0);
    let log_before = fs::read_to_string(&log).unwrap().lines().count();
    let t0 = Instant::now();
    proxy.update(|f| f.outage_until = Some(t0 + OUTAGE));
    let written_at_start = written_bytes.load(Ordering::Relaxed);
    let parsed_at_start = metric(port, "kinesis_tail_bytes_parsed_total").unwrap();
    let mut peak_rss = 0u64;
    let mut peak_unacked = 0f64;
    // (seconds into the outage, bytes parsed since it began)
    let mut progress: Vec<(f64, f64)> = Vec::new();
    let mut rss_at: Vec<(f64, u64)> = Vec::new();
    // Sampled until half a second before the destination is back: deliveries resume at
    // once when it is (the sink's own retry, no SDK backoff), and reading with them.
    while t0.elapsed() < OUTAGE - Duration::from_millis(500) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Some((rss, _)) = memory(pid) {
            peak_rss = peak_rss.max(rss);
            rss_at.push((t0.elapsed().as_secs_f64(), rss));
        }
        let parsed = metric(port, "kinesis_tail_bytes_parsed_total").unwrap();
        let sent = metric(port, "kinesis_tail_bytes_sent_total").unwrap();
        peak_unacked = peak_unacked.max(parsed - sent);
        progress.push((t0.elapsed().as_secs_f64(), parsed - parsed_at_start));
    }
    let hwm = memory(pid).map(|m| m.1).unwrap_or(0);
    let written_during = written_bytes.load(Ordering::Relaxed) - written_at_start;
    let read_during = progress.last().unwrap().1;
    // When reading stopped: the first sample after which it never grew by more than 1 MiB.
    let plateau = progress
        .iter()
        .find(|(_, p)| read_during - p < MIB)
        .map_or(0.0, |(t, _)| *t);
    let (_, _, dropped) = proxy.counts();
    // Resident memory every 10 s of the outage, and its growth over the last half (the
    // budget is full by then: growth there would be retries leaking).
    let rss_near = |t: f64| {
        rss_at
            .iter()
            .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()))
            .map_or(0, |x| x.1)
    };
    let rss_series: Vec<String> = (1..=6)
        .map(|i| format!("{:.1}", rss_near(i as f64 * 10.0) as f64 / MIB))
        .collect();
    let late_growth = rss_near(60.0) as f64 - rss_near(30.0) as f64;
    let text = fs::read_to_string(&log).unwrap();
    let reports: Vec<&str> = text
        .lines()
        .skip(log_before)
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();

    // The destination is back; the writer goes on a little, then everything drains.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    w.join().unwrap();
    let total = written.load(Ordering::Relaxed);
    let t_back = Instant::now();
    let drained = drained(port, total, Duration::from_secs(180)).await;
    let drain_time = t_back.elapsed();
    stop_agent(child).await;

    let (_, stored) = support::read_stream(&client, "outage").await;
    let seqs = seqs_of(&stored, "o");
    eprintln!(
        "outage: {:.0} s down ({dropped} connections refused); {:.1} MiB written during it, {:.1} MiB read \
         (reading stopped {plateau:.1} s in), at most {:.1} MiB read and unacknowledged; agent VmRSS {:.1} MiB \
         before, every 10 s of the outage [{}] MiB, peak {:.1} MiB, VmHWM {:.1} MiB; {} WARN/ERROR lines \
         during it; \
         {total} lines, drained {drain_time:.1?} after the outage; {} stored",
        OUTAGE.as_secs_f64(),
        written_during as f64 / MIB,
        read_during / MIB,
        peak_unacked / MIB,
        rss_before as f64 / MIB,
        rss_series.join(", "),
        peak_rss as f64 / MIB,
        hwm as f64 / MIB,
        reports.len(),
        stored.len()
    );
    for l in &reports {
        eprintln!("  {l}");
    }
    assert!(
        drained,
        "everything acknowledged within 180 s of the outage"
    );
    let duplicates = check_all(&seqs, total, "outage");
    eprintln!("outage: 0 lost, {duplicates} duplicates");
    assert!(dropped > 0, "the proxy refused connections");
    // The failures are reported, rate-limited (once, then at most once a minute).
    assert!(
        !reports.is_empty() && reports.len() <= 2,
        "{} reports of the outage in {OUTAGE:?}",
        reports.len()
    );
    assert!(
        written_during > 2 * BUDGET,
        "the writer wrote well more than the budget during the outage"
    );
    // Read and not acknowledged: the budget, plus the batch being built (5 MiB at most)
    // that waits for room.
    let bound = (BUDGET + 6 * 1024 * 1024) as f64;
    assert!(
        peak_unacked <= bound,
        "back-pressure: {:.1} MiB read and unacknowledged",
        peak_unacked / MIB
    );
    assert!(
        read_during <= bound,
        "reading paused: {:.1} MiB read during the outage",
        read_during / MIB
    );
    assert!(
        plateau < OUTAGE.as_secs_f64() / 2.0,
        "reading stopped early in the outage, not at {plateau:.1} s"
    );
    assert!(
        late_growth < 4.0 * MIB,
        "memory grew by {:.1} MiB while the reader was paused and requests failed",
        late_growth / MIB
    );
    assert!(
        peak_rss < RSS_LIMIT && hwm < RSS_LIMIT,
        "agent memory during the outage: VmRSS peak {:.1} MiB, VmHWM {:.1} MiB",
        peak_rss as f64 / MIB,
        hwm as f64 / MIB
    );
}

/// How long 90 % of the entries are throttled.
const STORM: Duration = Duration::from_secs(30);
/// Throttling is logged at most once a minute per flow (`sink::retry::THROTTLE_LOG_INTERVAL`).
const THROTTLE_LOG_INTERVAL: Duration = kinesis_tail::sink::retry::THROTTLE_LOG_INTERVAL;

/// Two flows into one stream while the proxy fails 90 % of the entries with
/// ProvisionedThroughputExceededException for 30 s: every line arrives, and the agent
/// reports the throttling at most once a minute per flow, not once per refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_storm_is_logged_once_a_minute_per_flow_and_loses_nothing() {
    let _heavy = support::heavy();
    let Some(moto) = Moto::start() else { return };
    let client = support::kinesis(&moto.endpoint);
    support::create_stream(&client, "storm", 1).await;
    let proxy = Proxy::start(&moto.endpoint).await;
    let s = agent::Scratch::new();
    let port = support::free_port();
    let cfg = config(
        &s,
        &proxy.endpoint,
        &[("a.log", "storm"), ("b.log", "storm")],
        port,
    );
    let log = s.path("agent.log");
    let child = agent::Agent(agent::spawn(&cfg, &log));
    started(&log).await;

    proxy.set_faults(Faults {
        entry_failure_share: 0.9,
        ..Faults::default()
    });
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    let mut counts = Vec::new();
    for (file, tag) in [("a.log", "a"), ("b.log", "b")] {
        let n = Arc::new(AtomicU64::new(0));
        writers.push(writer(
            s.logs().join(file),
            tag,
            200,
            200,
            stop.clone(),
            n.clone(),
            Arc::new(AtomicU64::new(0)),
        ));
        counts.push((tag, n));
    }
    tokio::time::sleep(STORM).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let storm = t0.elapsed();
    let log_in_storm = fs::read_to_string(&log).unwrap();
    proxy.set_faults(Faults::default());
    let total: u64 = counts.iter().map(|(_, n)| n.load(Ordering::Relaxed)).sum();
    let drained = drained(port, total, Duration::from_secs(120)).await;
    let throttles = metric(port, "kinesis_tail_throttles_total").unwrap_or(0.0);
    stop_agent(child).await;

    let refused = proxy
        .seen()
        .iter()
        .filter(|e| e.fate == Fate::EntryFailed)
        .count();
    let throttle_lines: Vec<&str> = log_in_storm
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("throttl"))
        .collect();
    let per_flow: Vec<usize> = (0..2)
        .map(|i| {
            throttle_lines
                .iter()
                .filter(|l| l.contains(&format!("flow {i}:")))
                .count()
        })
        .collect();
    let warnings = log_in_storm
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .count();
    eprintln!(
        "storm: {:.0} s at 90 % of entries throttled, {total} lines; the proxy refused {refused} entries, \
         the agent counted {throttles} throttled records; throttle log lines during the storm: {} \
         (per flow {per_flow:?}), WARN/ERROR lines in all: {warnings}",
        storm.as_secs_f64(),
        throttle_lines.len()
    );
    for l in &throttle_lines {
        eprintln!("  {l}");
    }
    assert!(drained, "everything acknowledged within 120 s of the storm");
    let (_, stored) = support::read_stream(&client, "storm").await;
    for (tag, n) in &counts {
        let seqs = seqs_of(&stored, tag);
        let duplicates = check_all(&seqs, n.load(Ordering::Relaxed), tag);
        eprintln!("storm: file {tag}: 0 lost, {duplicates} duplicates");
    }
    assert!(
        refused > 10_000,
        "the storm refused many entries: {refused}"
    );
    let allowed = 1 + (storm.as_secs_f64() / THROTTLE_LOG_INTERVAL.as_secs_f64()) as usize;
    for (i, n) in per_flow.iter().enumerate() {
        assert!(*n >= 1, "flow {i}: the throttling was reported");
        assert!(
            *n <= allowed,
            "flow {i}: {n} throttle log lines in {storm:?}, at most {allowed}"
        );
    }
    assert_eq!(
        throttle_lines.len(),
        per_flow.iter().sum::<usize>(),
        "every throttle line names its flow"
    );
}

/// Six flows share one `maxBufferedBytes` (2 MiB here): while no delivery completes (each
/// waits 3 s), the readers together hold at most the budget's batch half in records read
/// and unacknowledged, however much their files hold (7 MiB), each flow gets its share,
/// and once deliveries complete every line arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_share_one_memory_budget() {
    let _heavy = support::heavy();
    const FLOWS: usize = 6;
    const TOTAL: usize = 2 * 1024 * 1024;
    const LINE: usize = 1024;
    const LINES: usize = 1200;
    let s = agent::Scratch::new();
    let port = support::free_port();
    let mut expected: Vec<Vec<String>> = Vec::new();
    let mut flows = Vec::new();
    for f in 0..FLOWS {
        let lines: Vec<String> = (0..LINES)
            .map(|i| format!("f{f}-{i:06}-{}", "x".repeat(LINE - 16)))
            .collect();
        agent::append(&s.logs().join(format!("f{f}.log")), &lines);
        expected.push(lines);
        flows.push((
            format!("{}/f{f}.log", s.logs().display()),
            format!(
                "outputFile: {}\ninitialPosition: START_OF_FILE\n",
                s.path(&format!("out{f}.txt")).display()
            ),
        ));
    }
    let refs: Vec<(&str, &str)> = flows
        .iter()
        .map(|(p, e)| (p.as_str(), e.as_str()))
        .collect();
    let cfg = s.config(
        &refs,
        &format!("maxBufferedBytes: {TOTAL}\nmetrics.listenAddress: 127.0.0.1:{port}\n"),
    );
    let log = s.path("agent.log");
    let child = agent::Agent(agent::spawn_with_env(
        &cfg,
        &log,
        &[(kinesis_tail::daemon::TEST_SLOW_DELIVERY_ENV, "3000-3000")],
    ));
    started(&log).await;
    // Reading stops at the budget; sampled while the first deliveries still wait.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let parsed = metric(port, "kinesis_tail_bytes_parsed_total").unwrap_or(0.0);
    let sent = metric(port, "kinesis_tail_bytes_sent_total").unwrap_or(0.0);
    let (share, _) = kinesis_tail::pipeline::shares(TOTAL, FLOWS);
    // Each flow: its share, plus the record that found it full.
    let bound = (FLOWS * (share as usize * 1024 + LINE)) as f64;
    eprintln!(
        "{FLOWS} flows, maxBufferedBytes {TOTAL}: {:.2} MiB read and unacknowledged \
         (bound {:.2} MiB, files {:.1} MiB), {sent} bytes acknowledged",
        parsed / MIB,
        bound / MIB,
        (FLOWS * LINES * LINE) as f64 / MIB
    );
    assert_eq!(sent, 0.0, "no delivery may complete in the first 3 s");
    assert!(
        parsed <= bound,
        "read {parsed} bytes unacknowledged, above the budget's {bound}"
    );
    assert!(
        parsed >= bound * 0.6,
        "the flows used only {parsed} of {bound} bytes: the budget is not shared out"
    );
    for (f, lines) in expected.iter().enumerate() {
        let got = agent::wait_until(
            &s.path(&format!("out{f}.txt")),
            Duration::from_secs(120),
            |l| l.len() >= LINES,
        );
        agent::assert_all_delivered(lines, &got);
    }
    stop_agent(child).await;
}
