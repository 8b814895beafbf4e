//! The HTTP endpoint on `metrics.listenAddress`: Prometheus `/metrics` and `/health`.
//!
//! Owns: a tiny HTTP/1.1 server (GET and HEAD only, one request per connection, bounded
//! connections, request head and time), the text exposition of the counters, and the
//! health rule. Does not own the counters.
//!
//! Health: `/health` answers 200 `{"status":"ok"}` when
//! - every reader is alive: its heartbeat counter ([`FlowStats::reader_heartbeat`]) moved
//!   within `metrics.healthAckTimeoutSeconds` (a reader that never reported one counts as
//!   alive), and
//! - every flow with pending batches had an acknowledgement within
//!   `metrics.healthAckTimeoutSeconds`, counted from the later of its last
//!   acknowledgement and the moment its data became pending (so a flow idle for hours is
//!   not unhealthy the instant a new batch is built).
//!
//! Otherwise 503 with `{"status":"unhealthy","problems":[{"flow":N,"destination":..,
//! "reason":..}]}`. The moments "became pending" and "heartbeat moved" are observed by a
//! sampler every [`WATCH_PERIOD`]; the stages only bump counters.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::{FlowStats, Stats};
use crate::config::Config;

/// Connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 16;
/// A request head larger than this is refused (431).
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// A connection must send its request and take the answer within this time.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the health sampler looks at the counters.
pub const WATCH_PERIOD: Duration = Duration::from_millis(250);

/// Prefix of every exposed metric.
const PREFIX: &str = "kinesis_tail";

type Pick = fn(&FlowStats) -> &AtomicU64;

/// Counters: name (without prefix and `_total`), help, counter.
const COUNTERS: [(&str, &str, Pick); 12] = [
    (
        "records_parsed",
        "Lines (records before processing) read from files.",
        |f| &f.records_parsed,
    ),
    ("bytes_parsed", "Bytes read from files.", |f| {
        &f.bytes_parsed
    }),
    (
        "records_sent",
        "Records acknowledged by the destination.",
        |f| &f.records_sent,
    ),
    (
        "bytes_sent",
        "Bytes acknowledged by the destination.",
        |f| &f.bytes_sent,
    ),
    (
        "record_send_attempts",
        "Records handed to the destination in a request.",
        |f| &f.record_send_attempts,
    ),
    (
        "record_send_errors",
        "Records the destination refused in a request.",
        |f| &f.record_send_errors,
    ),
    ("service_errors", "Requests that failed as a whole.", |f| {
        &f.service_errors
    }),
    ("retries", "Records sent again after a failure.", |f| {
        &f.retries
    }),
    (
        "throttles",
        "Records refused with a throttling error.",
        |f| &f.throttles,
    ),
    ("records_dropped", "Records dropped by a processor.", |f| {
        &f.records_dropped
    }),
    (
        "records_truncated",
        "Records truncated to the destination's record limit.",
        |f| &f.records_truncated,
    ),
    (
        "processing_errors",
        "Records whose processing failed (sent unprocessed).",
        |f| &f.processing_errors,
    ),
];

/// Gauges read as they are: name, help, gauge.
const GAUGES: [(&str, &str, Pick); 3] = [
    ("bytes_behind", "Bytes in tailed files not yet read.", |f| {
        &f.bytes_behind
    }),
    ("files_tailed", "Files currently tailed.", |f| {
        &f.files_tailed
    }),
    (
        "batches_pending",
        "Batches built and not yet acknowledged.",
        |f| &f.batches_pending,
    ),
];

/// What the sampler saw of one flow.
#[derive(Debug, Clone, Copy, Default)]
struct Watch {
    /// When `batches_pending` was first seen above zero since it was last zero (0: not
    /// pending).
    pending_since_ms: u64,
    /// The heartbeat counter at the last change, and when it changed.
    heartbeats: u64,
    heartbeat_changed_ms: u64,
}

/// The health rule over the counters, fed by a sampler. Public so that tests can drive
/// it with crafted counters and times.
#[derive(Debug)]
pub struct HealthTracker {
    ack_timeout: Duration,
    watch: Vec<Watch>,
}

/// Why a flow makes the agent unhealthy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Flow index (0-based, in configuration order).
    pub flow: usize,
    /// The flow's destination (`KinesisStream:<name>`, ...).
    pub destination: String,
    /// What is wrong, for a human.
    pub reason: String,
}

impl HealthTracker {
    /// A tracker for `flows` flows; `ack_timeout` is `metrics.healthAckTimeoutSeconds`.
    pub fn new(flows: usize, ack_timeout: Duration) -> Self {
        HealthTracker {
            ack_timeout,
            watch: vec![Watch::default(); flows],
        }
    }

    /// Records what the counters show at `now_ms` (milliseconds of [`Stats::now_ms`]).
    pub fn observe(&mut self, stats: &Stats, now_ms: u64) {
        for (w, f) in self.watch.iter_mut().zip(&stats.flows) {
            if FlowStats::get(&f.batches_pending) == 0 {
                w.pending_since_ms = 0;
            } else if w.pending_since_ms == 0 {
                w.pending_since_ms = now_ms;
            }
            let beats = FlowStats::get(&f.reader_heartbeats);
            if beats != w.heartbeats || w.heartbeat_changed_ms == 0 {
                w.heartbeats = beats;
                w.heartbeat_changed_ms = now_ms;
            }
        }
    }

    /// The problems at `now_ms` (none: healthy). `destinations` names the flows.
    pub fn problems(&self, stats: &Stats, destinations: &[String], now_ms: u64) -> Vec<Problem> {
        let limit = self.ack_timeout.as_millis() as u64;
        let mut out = Vec::new();
        for (i, (w, f)) in self.watch.iter().zip(&stats.flows).enumerate() {
            let destination = destinations.get(i).cloned().unwrap_or_default();
            let beats = FlowStats::get(&f.reader_heartbeats);
            if beats != 0 && beats == w.heartbeats {
                let quiet = now_ms.saturating_sub(w.heartbeat_changed_ms);
                if quiet > limit {
                    out.push(Problem {
                        flow: i,
                        destination: destination.clone(),
                        reason: format!(
                            "reader has not run for {}s (stalled or stopped)",
                            quiet / 1000
                        ),
                    });
                }
            }
            let pending = FlowStats::get(&f.batches_pending);
            if pending > 0 {
                let since = FlowStats::get(&f.last_ack_ms).max(w.pending_since_ms);
                // Pending before the sampler first ran: count from the last ack, or start.
                let since = if since == 0 { 1 } else { since };
                let waited = now_ms.saturating_sub(since);
                if waited > limit {
                    out.push(Problem {
                        flow: i,
                        destination,
                        reason: format!(
                            "{pending} batch(es) pending and no acknowledgement for {}s (limit {}s)",
                            waited / 1000,
                            self.ack_timeout.as_secs()
                        ),
                    });
                }
            }
        }
        out
    }
}

/// The `/health` answer: status code and JSON body.
pub fn health_response(problems: &[Problem]) -> (u16, String) {
    if problems.is_empty() {
        (200, r#"{"status":"ok"}"#.to_string())
    } else {
        let body = serde_json::json!({ "status": "unhealthy", "problems": problems });
        (503, body.to_string())
    }
}

/// The Prometheus text exposition (format 0.0.4) of every flow's counters, labelled
/// `flow` (index) and `destination`.
pub fn render(stats: &Stats, destinations: &[String]) -> String {
    let mut out = String::with_capacity(4096);
    let labels: Vec<String> = (0..stats.flows.len())
        .map(|i| {
            let d = destinations.get(i).map_or("", String::as_str);
            format!("flow=\"{i}\",destination=\"{}\"", escape_label(d))
        })
        .collect();
    for (name, help, pick) in COUNTERS {
        let _ = writeln!(out, "# HELP {PREFIX}_{name}_total {help}");
        let _ = writeln!(out, "# TYPE {PREFIX}_{name}_total counter");
        for (f, l) in stats.flows.iter().zip(&labels) {
            let _ = writeln!(
                out,
                "{PREFIX}_{name}_total{{{l}}} {}",
                FlowStats::get(pick(f))
            );
        }
    }
    for (name, help, pick) in GAUGES {
        let _ = writeln!(out, "# HELP {PREFIX}_{name} {help}");
        let _ = writeln!(out, "# TYPE {PREFIX}_{name} gauge");
        for (f, l) in stats.flows.iter().zip(&labels) {
            let _ = writeln!(out, "{PREFIX}_{name}{{{l}}} {}", FlowStats::get(pick(f)));
        }
    }
    let now = stats.now_ms();
    let age = |at: u64| {
        if at == 0 {
            "NaN".to_string()
        } else {
            format!("{:.3}", now.saturating_sub(at) as f64 / 1000.0)
        }
    };
    for (name, help, pick) in [
        (
            "checkpoint_age_seconds",
            "Seconds since the checkpoints were last written (NaN: never).",
            (|f| &f.last_checkpoint_ms) as Pick,
        ),
        (
            "last_ack_age_seconds",
            "Seconds since the last acknowledgement (NaN: none yet).",
            |f| &f.last_ack_ms,
        ),
    ] {
        let _ = writeln!(out, "# HELP {PREFIX}_{name} {help}");
        let _ = writeln!(out, "# TYPE {PREFIX}_{name} gauge");
        for (f, l) in stats.flows.iter().zip(&labels) {
            let _ = writeln!(
                out,
                "{PREFIX}_{name}{{{l}}} {}",
                age(FlowStats::get(pick(f)))
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP {PREFIX}_uptime_seconds Seconds since the agent started."
    );
    let _ = writeln!(out, "# TYPE {PREFIX}_uptime_seconds gauge");
    let _ = writeln!(
        out,
        "{PREFIX}_uptime_seconds {:.3}",
        stats.started.elapsed().as_secs_f64()
    );
    out
}

/// Escapes a label value: backslash, double quote and newline.
fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

struct State {
    stats: Arc<Stats>,
    destinations: Vec<String>,
    tracker: Mutex<HealthTracker>,
}

/// The bound endpoint, not yet serving.
pub struct Server {
    listener: TcpListener,
    state: Arc<State>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.listener.local_addr().ok())
            .finish()
    }
}

impl Server {
    /// Binds `addr` for the flows of `config`.
    pub async fn bind(
        addr: SocketAddr,
        config: &Config,
        stats: Arc<Stats>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("metrics.listenAddress {addr}: {e}"))
        })?;
        let destinations = config
            .flows
            .iter()
            .map(|f| f.destination.to_string())
            .collect();
        let tracker = HealthTracker::new(stats.flows.len(), config.health_ack_timeout);
        Ok(Server {
            listener,
            state: Arc::new(State {
                stats,
                destinations,
                tracker: Mutex::new(tracker),
            }),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let state = self.state;
        let sampler = {
            let state = Arc::clone(&state);
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(WATCH_PERIOD);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tick.tick() => {}
                    }
                    let now = state.stats.now_ms();
                    lock(&state.tracker).observe(&state.stats, now);
                }
            })
        };
        let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let permit = tokio::select! {
                _ = stop.cancelled() => break,
                p = Arc::clone(&permits).acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (socket, _) = tokio::select! {
                _ = stop.cancelled() => break,
                a = self.listener.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors, usually: wait a little, keep serving.
                        tracing::debug!("metrics endpoint: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let state = Arc::clone(&state);
            connections.spawn(async move {
                let _permit = permit;
                let _ = tokio::time::timeout(REQUEST_TIMEOUT, serve(socket, &state)).await;
            });
            while connections.try_join_next().is_some() {}
        }
        connections.abort_all();
        let _ = sampler.await;
    }
}

fn lock(m: &Mutex<HealthTracker>) -> std::sync::MutexGuard<'_, HealthTracker> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads one request head and answers it.
async fn serve(mut socket: TcpStream, state: &State) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() > MAX_REQUEST_HEAD {
            return respond(
                &mut socket,
                431,
                "text/plain",
                "request head too large\n",
                false,
            )
            .await;
        }
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return respond(&mut socket, 405, "text/plain", "only GET and HEAD\n", false).await;
    }
    let path = target.split('?').next().unwrap_or("");
    match path {
        "/metrics" => {
            let body = render(&state.stats, &state.destinations);
            respond(
                &mut socket,
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                &body,
                head_only,
            )
            .await
        }
        "/health" => {
            let now = state.stats.now_ms();
            let problems = {
                let mut t = lock(&state.tracker);
                t.observe(&state.stats, now);
                t.problems(&state.stats, &state.destinations, now)
            };
            let (status, body) = health_response(&problems);
            respond(&mut socket, status, "application/json", &body, head_only).await
        }
        _ => {
            respond(
                &mut socket,
                404,
                "text/plain",
                "not found: try /metrics or /health\n",
                head_only,
            )
            .await
        }
    }
}

async fn respond(
    socket: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &str,
    head_only: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
        body.len()
    );
    if status == 405 {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(body);
    }
    socket.write_all(out.as_bytes()).await?;
    socket.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn dests() -> Vec<String> {
        vec!["KinesisStream:s1".into(), "OutputFile:/tmp/a \"b\"".into()]
    }

    #[test]
    fn exposition_has_help_type_and_labels() {
        let stats = Stats::new(2);
        FlowStats::add(&stats.flows[0].records_sent, 7);
        stats.flows[0]
            .last_ack_ms
            .store(stats.now_ms(), Ordering::Relaxed);
        let text = render(&stats, &dests());
        assert!(text.contains("# TYPE kinesis_tail_records_sent_total counter\n"));
        assert!(text.contains(
            "kinesis_tail_records_sent_total{flow=\"0\",destination=\"KinesisStream:s1\"} 7\n"
        ));
        assert!(text.contains("destination=\"OutputFile:/tmp/a \\\"b\\\"\""));
        assert!(text.contains("kinesis_tail_last_ack_age_seconds{flow=\"1\",destination="));
        assert!(text.contains("kinesis_tail_checkpoint_age_seconds{flow=\"0\",destination=\"KinesisStream:s1\"} NaN\n"));
        for line in text.lines() {
            assert!(
                line.starts_with('#') || line.rsplit_once(' ').is_some(),
                "{line}"
            );
        }
    }

    #[test]
    fn pending_without_ack_is_unhealthy_after_the_timeout() {
        let stats = Stats::new(2);
        let mut t = HealthTracker::new(2, Duration::from_secs(5));
        t.observe(&stats, 1_000);
        assert!(
            t.problems(&stats, &dests(), 100_000).is_empty(),
            "nothing pending"
        );
        // Data becomes pending at 100 s; the last ack was long before.
        stats.flows[0].last_ack_ms.store(2_000, Ordering::Relaxed);
        stats.flows[0].batches_pending.store(3, Ordering::Relaxed);
        t.observe(&stats, 100_000);
        assert!(
            t.problems(&stats, &dests(), 104_000).is_empty(),
            "pending for 4 s only"
        );
        let p = t.problems(&stats, &dests(), 106_000);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].flow, 0);
        assert_eq!(p[0].destination, "KinesisStream:s1");
        assert!(
            p[0].reason.contains("3 batch(es) pending"),
            "{}",
            p[0].reason
        );
        let (status, body) = health_response(&p);
        assert_eq!(status, 503);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "unhealthy");
        assert_eq!(v["problems"][0]["flow"], 0);
        // An acknowledgement makes it healthy again.
        stats.flows[0].last_ack_ms.store(105_500, Ordering::Relaxed);
        assert!(t.problems(&stats, &dests(), 106_000).is_empty());
        // Drained, then pending again much later: counted from the new pending moment.
        stats.flows[0].batches_pending.store(0, Ordering::Relaxed);
        t.observe(&stats, 107_000);
        stats.flows[0].batches_pending.store(1, Ordering::Relaxed);
        t.observe(&stats, 500_000);
        assert!(t.problems(&stats, &dests(), 501_000).is_empty());
        assert_eq!(
            health_response(&[]),
            (200, r#"{"status":"ok"}"#.to_string())
        );
    }

    #[test]
    fn a_reader_without_heartbeats_is_dead() {
        let stats = Stats::new(2);
        let mut t = HealthTracker::new(2, Duration::from_secs(5));
        t.observe(&stats, 1_000);
        // Never reported: alive.
        assert!(t.problems(&stats, &dests(), 60_000).is_empty());
        stats.flows[1].reader_heartbeat();
        t.observe(&stats, 60_000);
        stats.flows[1].reader_heartbeat();
        t.observe(&stats, 62_000);
        assert!(t.problems(&stats, &dests(), 66_000).is_empty());
        let p = t.problems(&stats, &dests(), 68_000);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].flow, 1);
        assert!(p[0].reason.contains("reader"));
        stats.flows[1].reader_heartbeat();
        assert!(t.problems(&stats, &dests(), 68_000).is_empty());
    }
}
