//! `deliveryStream`: delivery to Amazon Data Firehose with `PutRecordBatch`.
//!
//! Records are sent as the pipeline made them, with their terminator (the line's `\n`, as
//! the Java agent sends them), so that records concatenated by Firehose into S3 objects
//! stay separable. With `aggregatedRecordSizeBytes`, consecutive records are packed into
//! Firehose records up to that size; a record is never split across two Firehose records. Requests hold at most 500 records and 4 MiB; the entries that fail
//! (per-entry `ErrorCode`) are retried alone (see [`super::retry`]).

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use super::pool::BufPool;
use super::retry::{classify, classify_rpc, classify_sdk, Backoff, Failure, Reporter};
use super::rpc::Rpc;
use crate::config::{
    FlowConfig, FIREHOSE_MAX_BYTES_PER_CALL, FIREHOSE_MAX_RECORDS_PER_CALL,
    FIREHOSE_MAX_RECORD_BYTES,
};
use crate::event::Batch;
use crate::json::write_valid_str;
use crate::metrics::FlowStats;

/// Delivers batches to one Firehose delivery stream.
#[derive(Debug)]
pub struct FirehoseSink {
    /// Describes the delivery stream.
    client: aws_sdk_firehose::Client,
    /// Sends `PutRecordBatch`.
    rpc: Rpc,
    stream: String,
    /// Size of concatenated records (`aggregatedRecordSizeBytes`), capped by the API limit.
    concat: Option<usize>,
    stats: Arc<FlowStats>,
    initial_backoff: Duration,
    max_backoff: Duration,
    reporter: Reporter,
    /// The flow's reused buffers: batch data and request bodies.
    pool: Arc<BufPool>,
}

/// One Firehose record: consecutive user records, each followed by `\n`.
#[derive(Debug, Clone)]
struct Entry {
    users: Range<u32>,
    /// Set when a single record had to be cut to the record limit.
    truncate: Option<usize>,
    size: usize,
}

impl FirehoseSink {
    /// A sink for `stream` of `flow` using `client`. Makes no network call.
    pub(crate) fn new(
        client: aws_sdk_firehose::Client,
        rpc: Rpc,
        region: &str,
        stream: &str,
        flow: &FlowConfig,
        stats: Arc<FlowStats>,
        pool: Arc<BufPool>,
    ) -> Self {
        FirehoseSink {
            client,
            rpc,
            stream: stream.to_string(),
            concat: flow
                .aggregated_record_size_bytes
                .map(|s| s.min(FIREHOSE_MAX_RECORD_BYTES)),
            stats,
            initial_backoff: flow.retry_initial_backoff,
            max_backoff: flow.retry_max_backoff,
            reporter: Reporter::new(format!(
                "flow {}: Firehose delivery stream '{stream}' in {region}",
                flow.index
            )),
            pool,
        }
    }

    /// Its reused buffers.
    pub(crate) fn pool(&self) -> Arc<BufPool> {
        Arc::clone(&self.pool)
    }

    /// Describes the delivery stream once; logs an ERROR naming stream, region and cause
    /// when it is missing or not accessible. Firehose's record limit is fixed: `None`.
    pub async fn preflight(&self) -> Option<usize> {
        match self
            .client
            .describe_delivery_stream()
            .delivery_stream_name(&self.stream)
            .send()
            .await
        {
            Ok(out) => {
                if let Some(d) = out.delivery_stream_description() {
                    tracing::info!(
                        "{}: {}",
                        self.reporter.what(),
                        d.delivery_stream_status().as_str()
                    );
                }
            }
            Err(e) => {
                let (failure, cause) = classify_sdk(&e);
                self.reporter
                    .preflight_failed(failure, &cause, self.max_backoff);
            }
        }
        None
    }

    /// Delivers every record of `batch`; returns once all are acknowledged.
    pub async fn deliver(&self, batch: &Batch) {
        if batch.is_empty() {
            return;
        }
        let mut pending = self.entries(batch);
        let mut backoff = Backoff::new(self.initial_backoff, self.max_backoff);
        let mut buf = Vec::new();
        loop {
            let mut failed = Vec::new();
            let mut fatal = false;
            let mut start = 0;
            while start < pending.len() {
                let n = request_len(&pending[start..]);
                let chunk = &pending[start..start + n];
                for (entry, f) in chunk.iter().zip(self.put(batch, chunk, &mut buf).await) {
                    if let Some(f) = f {
                        fatal |= f == Failure::Fatal;
                        failed.push(entry.clone());
                    }
                }
                start += n;
            }
            if failed.is_empty() {
                return;
            }
            let retried: u64 = failed.iter().map(|e| e.users.len() as u64).sum();
            FlowStats::add(&self.stats.retries, retried);
            backoff.wait(fatal).await;
            pending = failed;
        }
    }

    /// Packs the records of `batch` into Firehose records.
    fn entries(&self, batch: &Batch) -> Vec<Entry> {
        let mut out: Vec<Entry> = Vec::new();
        for i in 0..batch.len() {
            let mut size = batch.record(i).len();
            let mut truncate = None;
            if size > FIREHOSE_MAX_RECORD_BYTES {
                // The pipeline truncates first; this only defends the request.
                truncate = Some(FIREHOSE_MAX_RECORD_BYTES);
                size = FIREHOSE_MAX_RECORD_BYTES;
                FlowStats::add(&self.stats.records_truncated, 1);
                tracing::warn!(
                    "{}: record {} of {} bytes is above Firehose's limit; truncated",
                    self.reporter.what(),
                    batch.records[i].id,
                    batch.record(i).len()
                );
            }
            let i = i as u32;
            if let (Some(limit), Some(last)) = (self.concat, out.last_mut()) {
                if last.truncate.is_none() && truncate.is_none() && last.size + size <= limit {
                    last.users.end = i + 1;
                    last.size += size;
                    continue;
                }
            }
            out.push(Entry {
                users: i..i + 1,
                truncate,
                size,
            });
        }
        out
    }

    /// Sends one request; returns the failure of each entry (`None`: delivered).
    async fn put(&self, batch: &Batch, chunk: &[Entry], buf: &mut Vec<u8>) -> Vec<Option<Failure>> {
        let users: u64 = chunk.iter().map(|e| e.users.len() as u64).sum();
        FlowStats::add(&self.stats.record_send_attempts, users);
        let body = self.pool.bytes(put_record_batch_body(
            &self.pool,
            &self.stream,
            batch,
            chunk,
            buf,
        ));
        let answer = self.rpc.call("PutRecordBatch", body).await;
        match answer.and_then(|body| super::response::entries(&body, false)) {
            Ok(out) => {
                let mut result = Vec::with_capacity(chunk.len());
                let mut any_ok = false;
                let mut throttled = (0u64, String::new());
                let mut service = (0u64, String::new());
                for (i, entry) in chunk.iter().enumerate() {
                    let n = entry.users.len() as u64;
                    let code = match out.get(i) {
                        None => Some(("missing".to_string(), "response without this entry")),
                        Some(r) => r.error.as_ref().map(|(c, m)| (c.clone(), m.as_str())),
                    };
                    match code {
                        None => {
                            any_ok = true;
                            FlowStats::add(&self.stats.records_sent, n);
                            let bytes: usize = entry
                                .users
                                .clone()
                                .map(|i| batch.record(i as usize).len())
                                .sum();
                            FlowStats::add(&self.stats.bytes_sent, bytes as u64);
                            result.push(None);
                        }
                        Some((code, message)) => {
                            FlowStats::add(&self.stats.record_send_errors, n);
                            let f = classify(Some(&code), None);
                            match f {
                                Failure::Throttled => {
                                    FlowStats::add(&self.stats.throttles, n);
                                    throttled = (throttled.0 + n, code);
                                }
                                Failure::Service => {
                                    service = (service.0 + n, format!("{code}: {message}"));
                                }
                                Failure::Fatal => self
                                    .reporter
                                    .fatal(&format!("{code}: {message}"), self.max_backoff),
                            }
                            result.push(Some(f));
                        }
                    }
                }
                if any_ok {
                    self.reporter.success();
                }
                if throttled.0 > 0 {
                    self.reporter.throttled(throttled.0, &throttled.1);
                }
                if service.0 > 0 {
                    self.reporter.service_error(service.0, &service.1);
                }
                result
            }
            Err(e) => {
                FlowStats::add(&self.stats.service_errors, 1);
                FlowStats::add(&self.stats.record_send_errors, users);
                let (f, cause) = classify_rpc(&e);
                match f {
                    Failure::Fatal => self.reporter.fatal(&cause, self.max_backoff),
                    Failure::Throttled => {
                        FlowStats::add(&self.stats.throttles, users);
                        self.reporter.throttled(users, &cause)
                    }
                    Failure::Service => self.reporter.service_error(users, &cause),
                }
                vec![Some(f); chunk.len()]
            }
        }
    }
}

/// How many of the first `entries` fit in one request.
fn request_len(entries: &[Entry]) -> usize {
    let mut bytes = 0;
    let mut n = 0;
    for e in entries.iter().take(FIREHOSE_MAX_RECORDS_PER_CALL) {
        if n > 0 && bytes + e.size > FIREHOSE_MAX_BYTES_PER_CALL {
            break;
        }
        bytes += e.size;
        n += 1;
    }
    n
}

/// The JSON body of a PutRecordBatch request for `entries` (awsJson1.1, as the SDK writes
/// it): each entry's user records, each with its `\n`, joined in `buf` and written in
/// base64 into a buffer of `pool` (handed to [`super::rpc::Rpc::call`]).
fn put_record_batch_body(
    pool: &BufPool,
    stream: &str,
    batch: &Batch,
    entries: &[Entry],
    buf: &mut Vec<u8>,
) -> Vec<u8> {
    let size: usize = entries.iter().map(|e| super::base64_len(e.size) + 16).sum();
    let mut out = pool.take(size + 2 * stream.len() + 48);
    out.extend_from_slice(b"{\"DeliveryStreamName\":");
    write_valid_str(&mut out, stream);
    out.extend_from_slice(b",\"Records\":[");
    for (n, e) in entries.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        buf.clear();
        for i in e.users.clone() {
            let r = batch.record(i as usize);
            buf.extend_from_slice(&r[..e.truncate.unwrap_or(r.len()).min(r.len())]);
        }
        super::open_record_json(&mut out, buf);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{FileKey, RecordId};
    use base64::Engine;

    /// The body is the JSON the SDK would send: each entry's user records (cut to their
    /// length) back to back, in base64.
    #[test]
    fn put_record_batch_body_is_the_request_json() {
        let mut batch = Batch::new(0);
        let id = RecordId::new(&FileKey::default(), 0);
        for r in [
            &b"one\n"[..],
            b"two \"\\\n",
            &[0, 255, 10, 10],
            b"a long one, cut\n",
        ] {
            batch.push(r, None, id);
        }
        let entries = [
            Entry {
                users: 0..3,
                truncate: None,
                size: 15,
            },
            Entry {
                users: 3..4,
                truncate: Some(6),
                size: 7,
            },
        ];
        let mut buf = Vec::new();
        let body = put_record_batch_body(
            &BufPool::new(1 << 20),
            "logs \"x\"",
            &batch,
            &entries,
            &mut buf,
        );
        let v: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
        assert_eq!(v["DeliveryStreamName"], "logs \"x\"");
        let recs = v["Records"].as_array().unwrap();
        let data: Vec<Vec<u8>> = recs
            .iter()
            .map(|r| {
                base64::engine::general_purpose::STANDARD
                    .decode(r["Data"].as_str().unwrap())
                    .unwrap()
            })
            .collect();
        assert_eq!(data, [&b"one\ntwo \"\\\n\x00\xff\n\n"[..], b"a long"]);
    }
}
