//! The HTTP endpoint on `metrics.listenAddress`: Prometheus `/metrics` and `/health`.
//!
//! Owns: the endpoint (hyper's HTTP/1.1 server: GET and HEAD only, one request per
//! connection, bounded connections, request head and time), the text exposition of the
//! counters, and the health rule. Does not own the counters.
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

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONNECTION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
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
                let _ = tokio::time::timeout(REQUEST_TIMEOUT, serve(socket, state)).await;
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

/// Serves one connection: one request (a head larger than [`MAX_REQUEST_HEAD`] gets 431
/// from hyper), then the connection is closed.
async fn serve(socket: TcpStream, state: Arc<State>) {
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let state = Arc::clone(&state);
        async move { Ok::<_, std::convert::Infallible>(answer(&req, &state)) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .title_case_headers(true)
        .max_buf_size(MAX_REQUEST_HEAD)
        .serve_connection(TokioIo::new(socket), service)
        .await;
    if let Err(e) = served {
        tracing::debug!("metrics endpoint: {e}");
    }
}

/// The answer to one request.
fn answer<B>(req: &Request<B>, state: &State) -> Response<Full<Bytes>> {
    // hyper sends no body for HEAD, and the length of the body a GET would get.
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = respond(405, "text/plain", "only GET and HEAD\n".into());
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match req.uri().path() {
        "/metrics" => respond(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            render(&state.stats, &state.destinations),
        ),
        "/health" => {
            let now = state.stats.now_ms();
            let problems = {
                let mut t = lock(&state.tracker);
                t.observe(&state.stats, now);
                t.problems(&state.stats, &state.destinations, now)
            };
            let (status, body) = health_response(&problems);
            respond(status, "application/json", body)
        }
        _ => respond(
            404,
            "text/plain",
            "not found: try /metrics or /health\n".into(),
        ),
    }
}

fn respond(status: u16, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).expect("a valid status");
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(CONNECTION, HeaderValue::from_static("close"));
    r
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

    /// Sends `request` raw and returns the whole response.
    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(request).await.unwrap();
        // A server that closes with unread bytes (a refused head) resets the connection:
        // what arrived before the reset is the answer.
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn methods_paths_and_limits_over_a_socket() {
        let config = crate::config::load_str(
            "flows:\n  - filePattern: /tmp/*.log\n    outputFile: '-'\n",
            std::path::Path::new("/etc/kt.yaml"),
        )
        .unwrap()
        .config;
        let stats = Stats::new(1);
        let server = Server::bind("127.0.0.1:0".parse().unwrap(), &config, stats)
            .await
            .unwrap();
        let addr = server.local_addr();
        let stop = CancellationToken::new();
        let serving = tokio::spawn(server.run(stop.clone()));

        let get = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let (head, body) = get.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        for h in [
            "Content-Type: text/plain; version=0.0.4; charset=utf-8",
            "Cache-Control: no-store",
            "Connection: close",
            &format!("Content-Length: {}", body.len()),
        ] {
            assert!(head.contains(h), "{h} in {head}");
        }
        assert!(body.contains("kinesis_tail_records_sent_total{flow=\"0\""));
        // HEAD: the same head, no body.
        let head_only = exchange(addr, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let (h, b) = head_only.split_once("\r\n\r\n").unwrap();
        assert!(
            h.starts_with("HTTP/1.1 200 OK\r\n") && b.is_empty(),
            "{head_only}"
        );
        assert!(
            h.contains(&format!("Content-Length: {}", body.len())),
            "{h}"
        );
        let health = exchange(addr, b"GET /health?x=1 HTTP/1.0\r\n\r\n").await;
        assert!(
            health.starts_with("HTTP/1.0 200 OK\r\n") || health.starts_with("HTTP/1.1 200 OK\r\n"),
            "{health}"
        );
        assert!(health.ends_with("\r\n\r\n{\"status\":\"ok\"}"), "{health}");
        let post = exchange(
            addr,
            b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        assert!(
            post.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{post}"
        );
        assert!(post.contains("Allow: GET, HEAD\r\n"), "{post}");
        let missing = exchange(addr, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(
            missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{missing}"
        );
        assert!(
            missing.ends_with("not found: try /metrics or /health\n"),
            "{missing}"
        );
        let mut big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', 2 * MAX_REQUEST_HEAD));
        big.extend_from_slice(b"\r\n\r\n");
        // 431, unless the reset (bytes left unread) overtook it; never an answer to it.
        let too_big = exchange(addr, &big).await;
        assert!(
            too_big.is_empty() || too_big.starts_with("HTTP/1.1 431 "),
            "{too_big:.200}"
        );
        // Garbage: the connection is closed without a panic, and serving goes on.
        let _ = exchange(addr, b"\x00\x01 nonsense\r\n\r\n").await;
        assert!(exchange(addr, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .contains("200 OK"));

        stop.cancel();
        serving.await.unwrap();
    }
}
