//! A fault-injecting HTTP/1.1 proxy between the agent and moto, for what moto does not
//! do: per-entry failures of `PutRecords` / `PutRecordBatch` (the failed entries are
//! removed before forwarding, so that moto stores exactly what AWS would have accepted,
//! and the failures are spliced into moto's response at their positions), HTTP 500s,
//! outages (connections closed, or stalled), slow responses, and the 1 MiB record limit.
//! It records every entry it saw and what happened to it, so tests can prove that only
//! failed entries were sent again.
//!
//! The SDK signs requests (SigV4); moto does not check signatures, so rewriting bodies is
//! fine as long as `Content-Length` follows.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use rand::Rng;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does wrong, changed at will while it runs.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Share (0..=1) of PutRecords / PutRecordBatch entries failed.
    pub entry_failure_share: f64,
    /// Error code of failed Kinesis entries (default ProvisionedThroughputExceededException).
    pub kinesis_error: Option<String>,
    /// Error code of failed Firehose entries (default ServiceUnavailableException).
    pub firehose_error: Option<String>,
    /// Share (0..=1) of put requests answered with HTTP 500.
    pub http_500_share: f64,
    /// Until then, every connection is closed at once (or stalled, see `stall`).
    pub outage_until: Option<Instant>,
    /// During an outage, hold requests unanswered instead of closing connections.
    pub stall: bool,
    /// Delay added before forwarding each request.
    pub delay: Option<Duration>,
    /// With `delay`: each request waits a random time between `delay` and this.
    pub delay_max: Option<Duration>,
    /// Reject a PutRecords whose largest entry (data plus key) exceeds this, as Kinesis
    /// does (the whole request fails with ValidationException).
    pub max_record_bytes: Option<usize>,
    /// Answer PutRecords with the shard IDs AWS would give: the shard of this table
    /// (`(start, end, id)`) holding each entry's explicit hash key, or the MD5 of its
    /// partition key. Moto keeps routing to a split parent shard; AWS does not.
    pub route: Option<Vec<(u128, u128, String)>>,
    /// Record each entry's fate and keys but not its data (long tests sending much data
    /// that never look at [`Proxy::seen`]'s data: a minute of refused 1 MiB requests would
    /// otherwise keep hundreds of MiB).
    pub forget_seen_data: bool,
    /// Share (0..=1) of stored PutRecords entries answered with a shard ID that is not the
    /// one they were stored in (`shardId-misplaced`), as after a reshard the agent has not
    /// seen: a KCL consumer would drop an aggregate whose records do not belong there.
    /// Only entries sent with an explicit hash key (aggregates placed in a shard).
    pub misplace_share: f64,
}

/// What happened to one entry the agent sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Forwarded to moto and acknowledged.
    Forwarded,
    /// Failed by the proxy with a per-entry error.
    EntryFailed,
    /// Part of a request failed as a whole (HTTP 500, outage, validation).
    RequestFailed,
    /// Forwarded to moto, but the proxy lost moto's answer (the hop between the proxy and
    /// moto failed): moto may have stored it, and the agent, told nothing, sends it again.
    /// AWS behaves the same when a response is lost; a duplicate is then expected.
    UpstreamLost,
    /// Stored by moto but answered with another shard ID ([`Faults::misplace_share`]): for
    /// a KCL consumer, an aggregate's records are lost there.
    Misplaced,
}

/// One entry seen by the proxy.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `PutRecords` or `PutRecordBatch`.
    pub operation: String,
    /// Decoded data.
    pub data: Vec<u8>,
    /// Partition key (Kinesis).
    pub partition_key: Option<String>,
    /// Explicit hash key (Kinesis).
    pub explicit_hash_key: Option<String>,
    /// What happened to it.
    pub fate: Fate,
}

#[derive(Debug, Default)]
struct State {
    faults: Faults,
    seen: Vec<Seen>,
    requests: u64,
    http_500s: u64,
    dropped_connections: u64,
}

impl State {
    fn saw(&mut self, mut entry: Seen) {
        if self.faults.forget_seen_data {
            entry.data = Vec::new();
        }
        self.seen.push(entry);
    }
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    /// `http://127.0.0.1:<port>`
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:<port>`).
    pub async fn start(upstream: &str) -> Proxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let _ = serve(conn, &upstream, &st).await;
                });
            }
        });
        Proxy {
            endpoint,
            state,
            task,
        }
    }

    /// Changes the faults.
    pub fn set_faults(&self, f: Faults) {
        self.state.lock().unwrap().faults = f;
    }

    /// Changes the faults in place.
    pub fn update(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.state.lock().unwrap().faults);
    }

    /// Every entry seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// (requests, HTTP 500s, dropped connections) so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        let s = self.state.lock().unwrap();
        (s.requests, s.http_500s, s.dropped_connections)
    }
}

/// An HTTP message: start line, headers, body.
struct Message {
    start: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn to_bytes(&self, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.start).into_bytes();
        for (k, v) in &self.headers {
            if [
                "content-length",
                "transfer-encoding",
                "connection",
                "x-amz-crc32",
            ]
            .iter()
            .any(|h| k.eq_ignore_ascii_case(h))
            {
                continue;
            }
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        for (k, v) in extra {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(&self.body);
        out
    }
}

/// Reads one message; `None` at a clean end of stream. `to_eof`: a body without length
/// runs to the end of the stream (responses with `Connection: close`).
async fn read_message<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
    to_eof: bool,
) -> std::io::Result<Option<Message>> {
    let mut start = String::new();
    if r.read_line(&mut start).await? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).await?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut m = Message {
        start: start.trim_end().to_string(),
        headers,
        body: Vec::new(),
    };
    if m.header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).await?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            if n == 0 {
                // Trailers up to the empty line.
                loop {
                    let mut l = String::new();
                    if r.read_line(&mut l).await? == 0 || l.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).await?;
            chunk.truncate(n);
            m.body.extend_from_slice(&chunk);
        }
    } else if let Some(n) = m
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        m.body = vec![0; n];
        r.read_exact(&mut m.body).await?;
    } else if to_eof {
        r.read_to_end(&mut m.body).await?;
    }
    Ok(Some(m))
}

async fn serve(conn: TcpStream, upstream: &str, st: &Mutex<State>) -> std::io::Result<()> {
    let (rd, mut wr) = conn.into_split();
    let mut rd = BufReader::new(rd);
    while let Some(req) = read_message(&mut rd, false).await? {
        let target = req.header("x-amz-target").unwrap_or("").to_string();
        let operation = target.rsplit('.').next().unwrap_or("").to_string();
        let is_put = operation == "PutRecords" || operation == "PutRecordBatch";
        let faults = {
            let mut s = st.lock().unwrap();
            s.requests += 1;
            s.faults.clone()
        };
        if let Some(until) = faults.outage_until.filter(|t| *t > Instant::now()) {
            if is_put {
                record_all(st, &operation, &req.body, Fate::RequestFailed);
            }
            st.lock().unwrap().dropped_connections += 1;
            if faults.stall {
                tokio::time::sleep_until(until.into()).await;
            }
            return Ok(()); // closes the connection without an answer
        }
        if let Some(d) = faults.delay {
            let d = match faults.delay_max.filter(|m| *m > d) {
                Some(max) => rand::thread_rng().gen_range(d..max),
                None => d,
            };
            tokio::time::sleep(d).await;
        }
        let response = if is_put {
            handle_put(req, &operation, upstream, &faults, st).await?
        } else {
            forward(&req, upstream).await?
        };
        wr.write_all(&response.to_bytes(&[("Connection", "keep-alive")]))
            .await?;
    }
    Ok(())
}

/// Sends `req` to moto on a fresh connection and reads the answer.
/// moto's Kinesis is not safe for concurrent writes to one shard: two PutRecords served
/// at once can get the same sequence number, and one record then replaces the other
/// (seen on a loaded machine: moto answered both with success and stored one). The proxy
/// forwards one request at a time; the agent still has several requests in flight to it.
static UPSTREAM: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn forward(req: &Message, upstream: &str) -> std::io::Result<Message> {
    let _one_at_a_time = UPSTREAM.lock().await;
    let conn = TcpStream::connect(upstream).await?;
    let (rd, mut wr) = conn.into_split();
    wr.write_all(&req.to_bytes(&[("Connection", "close")]))
        .await?;
    let mut rd = BufReader::new(rd);
    read_message(&mut rd, true)
        .await?
        .ok_or_else(|| std::io::Error::other("upstream closed without answering"))
}

fn json_response(status: &str, body: Value) -> Message {
    Message {
        start: format!("HTTP/1.1 {status}"),
        headers: vec![("Content-Type".into(), "application/x-amz-json-1.1".into())],
        body: serde_json::to_vec(&body).unwrap(),
    }
}

fn entries(body: &Value) -> Vec<Value> {
    body.get("Records")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn decode_entry(operation: &str, e: &Value, fate: Fate) -> Seen {
    let data = e
        .get("Data")
        .and_then(Value::as_str)
        .map(|s| base64::engine::general_purpose::STANDARD.decode(s).unwrap())
        .unwrap_or_default();
    Seen {
        operation: operation.to_string(),
        data,
        partition_key: e
            .get("PartitionKey")
            .and_then(Value::as_str)
            .map(str::to_string),
        explicit_hash_key: e
            .get("ExplicitHashKey")
            .and_then(Value::as_str)
            .map(str::to_string),
        fate,
    }
}

fn record_all(st: &Mutex<State>, operation: &str, body: &[u8], fate: Fate) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let mut s = st.lock().unwrap();
    for e in entries(&v) {
        s.saw(decode_entry(operation, &e, fate));
    }
}

async fn handle_put(
    mut req: Message,
    operation: &str,
    upstream: &str,
    faults: &Faults,
    st: &Mutex<State>,
) -> std::io::Result<Message> {
    let kinesis = operation == "PutRecords";
    let mut body: Value = serde_json::from_slice(&req.body)
        .map_err(|e| std::io::Error::other(format!("bad request body: {e}")))?;
    let all = entries(&body);
    let (fail_500, fails): (bool, Vec<bool>) = {
        let mut rng = rand::thread_rng();
        (
            rng.gen_bool(faults.http_500_share.clamp(0.0, 1.0)),
            all.iter()
                .map(|_| rng.gen_bool(faults.entry_failure_share.clamp(0.0, 1.0)))
                .collect(),
        )
    };
    if fail_500 {
        record_all(st, operation, &req.body, Fate::RequestFailed);
        st.lock().unwrap().http_500s += 1;
        return Ok(json_response(
            "500 Internal Server Error",
            json!({"__type": "InternalFailure", "message": "injected by the test proxy"}),
        ));
    }
    if let (true, Some(max)) = (kinesis, faults.max_record_bytes) {
        let too_big = all.iter().any(|e| {
            let d = decode_entry(operation, e, Fate::RequestFailed);
            d.data.len() + d.partition_key.map_or(0, |k| k.len()) > max
        });
        if too_big {
            record_all(st, operation, &req.body, Fate::RequestFailed);
            return Ok(json_response(
                "400 Bad Request",
                json!({"__type": "ValidationException",
                       "message": "1 validation error detected: Value at 'records.n.member.data' failed to satisfy constraint: Member must have length less than or equal to 1048576"}),
            ));
        }
    }
    let kept: Vec<Value> = all
        .iter()
        .zip(&fails)
        .filter(|(_, f)| !**f)
        .map(|(e, _)| e.clone())
        .collect();
    let upstream_results: Vec<Value> = if kept.is_empty() {
        Vec::new()
    } else {
        body["Records"] = Value::Array(kept);
        req.body = serde_json::to_vec(&body).unwrap();
        let resp = match forward(&req, upstream).await {
            Ok(r) => r,
            Err(e) => {
                record_all(st, operation, &req.body, Fate::UpstreamLost);
                return Err(e);
            }
        };
        if !resp.start.contains(" 200") {
            // Moto refused the request as a whole: pass that on unchanged.
            record_all(st, operation, &req.body, Fate::RequestFailed);
            return Ok(resp);
        }
        let v: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| std::io::Error::other(format!("bad moto response: {e}")))?;
        let key = if kinesis {
            "Records"
        } else {
            "RequestResponses"
        };
        v.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let code = if kinesis {
        faults
            .kinesis_error
            .clone()
            .unwrap_or_else(|| "ProvisionedThroughputExceededException".into())
    } else {
        faults
            .firehose_error
            .clone()
            .unwrap_or_else(|| "ServiceUnavailableException".into())
    };
    let mut up = upstream_results.into_iter();
    let mut results = Vec::with_capacity(all.len());
    let mut failed = 0;
    {
        let mut s = st.lock().unwrap();
        for (e, f) in all.iter().zip(&fails) {
            if *f {
                failed += 1;
                s.saw(decode_entry(operation, e, Fate::EntryFailed));
                results
                    .push(json!({"ErrorCode": code, "ErrorMessage": "injected by the test proxy"}));
            } else {
                let mut r = up.next().unwrap_or(Value::Null);
                let ok = r.get("ErrorCode").is_none();
                let misplaced = ok
                    && kinesis
                    && faults.misplace_share > 0.0
                    && e.get("ExplicitHashKey").is_some()
                    && rand::thread_rng().gen_bool(faults.misplace_share.clamp(0.0, 1.0));
                if misplaced {
                    r["ShardId"] = Value::String("shardId-misplaced".into());
                }
                if let (true, true, false, Some(route)) = (ok, kinesis, misplaced, &faults.route) {
                    let hash = match e.get("ExplicitHashKey").and_then(Value::as_str) {
                        Some(h) => h.parse::<u128>().unwrap(),
                        None => {
                            use md5::Digest;
                            let pk = e.get("PartitionKey").and_then(Value::as_str).unwrap_or("");
                            u128::from_be_bytes(md5::Md5::digest(pk.as_bytes()).into())
                        }
                    };
                    if let Some((_, _, id)) =
                        route.iter().find(|(s, e, _)| (*s..=*e).contains(&hash))
                    {
                        r["ShardId"] = Value::String(id.clone());
                    }
                }
                s.saw(decode_entry(
                    operation,
                    e,
                    if misplaced {
                        Fate::Misplaced
                    } else if ok {
                        Fate::Forwarded
                    } else {
                        Fate::EntryFailed
                    },
                ));
                if !ok {
                    failed += 1;
                }
                results.push(r);
            }
        }
    }
    let body = if kinesis {
        json!({"FailedRecordCount": failed, "Records": results})
    } else {
        json!({"FailedPutCount": failed, "Encrypted": false, "RequestResponses": results})
    };
    Ok(json_response("200 OK", body))
}
