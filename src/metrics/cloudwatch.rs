//! CloudWatch metrics with the Java agent's names and dimensions.
//!
//! Owns: turning the counters of [`Stats`] into `PutMetricData` calls, and keeping what a
//! failed call could not send. Does not own: the counters (the stages move them).
//!
//! What is sent, in namespace `cloudwatch.namespace` (default `AWSKinesisAgent`):
//!
//! | metric               | dimensions                    | counts                          |
//! |----------------------|-------------------------------|---------------------------------|
//! | `RecordSendAttempts` | `Destination` (+ `Instance`)  | records handed to a request     |
//! | `RecordsSent`        | `Destination` (+ `Instance`)  | records acknowledged            |
//! | `BytesSent`          | `Destination` (+ `Instance`)  | bytes acknowledged              |
//! | `RecordSendErrors`   | `Destination` (+ `Instance`)  | records refused in a request    |
//! | `ServiceErrors`      | `Destination` (+ `Instance`)  | requests failed as a whole      |
//! | `RecordsDropped`     | none (+ `Instance`)           | records dropped by processors   |
//! | `BytesBehind`        | none (+ `Instance`)           | bytes in files not yet read     |
//! | `FilesTailed`        | none (+ `Instance`)           | files open for tailing          |
//!
//! `Destination` is `KinesisStream:<name>` or `DeliveryStream:<name>`; flows sharing a
//! destination are summed. Flows to an `outputFile` get no per-destination metrics (the
//! Java agent has no such destination); they count in the agent-level ones.
//!
//! How: the counters are sampled every [`SAMPLE_PERIOD`]; each sample is one value of a
//! statistic set (the change of a counter over the sample period, or the value of a
//! gauge). Every `cloudwatch.metricsBufferTimeMillis` the window is closed into one
//! datum per metric (`SampleCount`, `Sum`, `Minimum`, `Maximum`), so `Sum` is the total
//! over the window and `Maximum` the busiest second. A failed send keeps its data for the
//! next flush, at most [`MAX_PENDING_WINDOWS`] windows (the oldest goes first, with a
//! warning). Sending runs in its own task and never blocks the pipeline.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit, StatisticSet};
use tokio_util::sync::CancellationToken;

use super::{FlowStats, Stats};
use crate::config::{Config, Destination};

/// PutMetricData: at most 1,000 metrics per call.
pub const MAX_DATUMS_PER_CALL: usize = 1000;
/// PutMetricData: at most 1 MB per request; a margin is kept for the request's own fields.
pub const MAX_REQUEST_BYTES: usize = 1_000_000 - 16 * 1024;
/// Windows kept while CloudWatch cannot be reached: 60 windows are 30 minutes at the
/// default `metricsBufferTimeMillis` (30 s).
pub const MAX_PENDING_WINDOWS: usize = 60;
/// How often counters are sampled into the current window.
pub const SAMPLE_PERIOD: Duration = Duration::from_secs(1);
/// A failing CloudWatch is reported at most this often (its first failure at once).
pub const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(300);
/// Used as the `Instance` dimension when the instance ID cannot be read.
pub const UNKNOWN_INSTANCE: &str = "unknown";

type Pick = fn(&FlowStats) -> &AtomicU64;

/// The per-destination metrics: name, unit, counter.
const DESTINATION_METRICS: [(&str, StandardUnit, Pick); 5] = [
    ("RecordSendAttempts", StandardUnit::Count, |f| {
        &f.record_send_attempts
    }),
    ("ServiceErrors", StandardUnit::Count, |f| &f.service_errors),
    ("RecordsSent", StandardUnit::Count, |f| &f.records_sent),
    ("RecordSendErrors", StandardUnit::Count, |f| {
        &f.record_send_errors
    }),
    ("BytesSent", StandardUnit::Bytes, |f| &f.bytes_sent),
];
/// Agent-level counters (a change per sample).
const AGENT_COUNTERS: [(&str, StandardUnit, Pick); 1] =
    [("RecordsDropped", StandardUnit::Count, |f| {
        &f.records_dropped
    })];
/// Agent-level gauges (a value per sample).
const AGENT_GAUGES: [(&str, StandardUnit, Pick); 2] = [
    ("BytesBehind", StandardUnit::Bytes, |f| &f.bytes_behind),
    ("FilesTailed", StandardUnit::Count, |f| &f.files_tailed),
];

/// Why a flush did not send everything.
#[derive(Debug, thiserror::Error)]
#[error("PutMetricData ({datums} metrics, namespace {namespace}) failed: {message}")]
pub struct PublishError {
    /// The namespace.
    pub namespace: String,
    /// Metrics in the failed call.
    pub datums: usize,
    /// The SDK's error, with its causes.
    pub message: String,
}

/// A statistic set being built.
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Acc {
    fn add(&mut self, v: f64) {
        if self.count == 0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.count += 1;
        self.sum += v;
    }

    fn statistic_set(&self) -> StatisticSet {
        StatisticSet::builder()
            .sample_count(self.count as f64)
            .sum(self.sum)
            .minimum(self.min)
            .maximum(self.max)
            .build()
    }
}

/// One destination and the flows that send to it.
#[derive(Debug)]
struct Dest {
    name: String,
    flows: Vec<usize>,
}

/// Samples the counters, closes windows and sends them. Public so that tests can drive
/// it step by step; the daemon uses [`Publisher::run`].
#[derive(Debug)]
pub struct Publisher {
    client: aws_sdk_cloudwatch::Client,
    namespace: String,
    instance: Option<String>,
    dests: Vec<Dest>,
    /// Counter values at the previous sample, per flow: the destination metrics, then
    /// the agent counters.
    last: Vec<[u64; 6]>,
    /// `dests.len() * 5` destination sets, then the agent counters, then the gauges.
    window: Vec<Acc>,
    samples: u64,
    pending: VecDeque<Vec<MetricDatum>>,
    failing_since: Option<Instant>,
    error_log: crate::report::RateLimit,
}

/// The CloudWatch client of `config`: the shared credentials, timeouts and HTTP client
/// of [`crate::aws`], with `cloudwatch.endpoint` and `cloudwatch.region`.
pub async fn client(
    config: &Config,
) -> Result<aws_sdk_cloudwatch::Client, crate::aws::CaBundleError> {
    let base = crate::aws::sdk_config(config).await?;
    Ok(crate::aws::cloudwatch_client(config, &base))
}

impl Publisher {
    /// A publisher for the flows of `config`, with its client.
    pub async fn from_config(config: &Config) -> Result<Publisher, crate::aws::CaBundleError> {
        let destinations: Vec<Destination> =
            config.flows.iter().map(|f| f.destination.clone()).collect();
        Ok(Publisher::new(
            client(config).await?,
            config.cloudwatch.namespace.clone(),
            &destinations,
        ))
    }

    /// A publisher for flows whose destinations are `destinations` (in flow order), whose
    /// counters start at zero.
    pub fn new(
        client: aws_sdk_cloudwatch::Client,
        namespace: String,
        destinations: &[Destination],
    ) -> Publisher {
        let mut dests: Vec<Dest> = Vec::new();
        for (i, d) in destinations.iter().enumerate() {
            if matches!(d, Destination::OutputFile(_)) {
                continue;
            }
            let name = d.to_string();
            match dests.iter_mut().find(|x| x.name == name) {
                Some(x) => x.flows.push(i),
                None => dests.push(Dest {
                    name,
                    flows: vec![i],
                }),
            }
        }
        let window =
            vec![
                Acc::default();
                dests.len() * DESTINATION_METRICS.len() + AGENT_COUNTERS.len() + AGENT_GAUGES.len()
            ];
        Publisher {
            client,
            namespace,
            instance: None,
            dests,
            last: vec![[0; 6]; destinations.len()],
            window,
            samples: 0,
            pending: VecDeque::new(),
            failing_since: None,
            error_log: crate::report::RateLimit::new(ERROR_LOG_INTERVAL),
        }
    }

    /// Adds the `Instance` dimension (`cloudwatch.tagInstance`) to every metric.
    pub fn set_instance(&mut self, instance: Option<String>) {
        self.instance = instance;
    }

    /// Windows closed and not yet sent.
    pub fn pending_windows(&self) -> usize {
        self.pending.len()
    }

    /// Adds one sample of every counter to the current window.
    pub fn sample(&mut self, stats: &Stats) {
        let mut deltas = vec![[0u64; 6]; self.last.len()];
        for (i, (last, delta)) in self.last.iter_mut().zip(&mut deltas).enumerate() {
            let Some(f) = stats.flows.get(i) else {
                continue;
            };
            let picks = DESTINATION_METRICS
                .iter()
                .chain(AGENT_COUNTERS.iter())
                .map(|m| m.2);
            for (k, pick) in picks.enumerate() {
                let now = FlowStats::get(pick(f));
                // Counters only grow; a smaller value (a reset) counts from zero.
                delta[k] = now.checked_sub(last[k]).unwrap_or(now);
                last[k] = now;
            }
        }
        let n = DESTINATION_METRICS.len();
        for (dest, accs) in self.dests.iter().zip(self.window.chunks_mut(n)) {
            for (k, acc) in accs.iter_mut().enumerate() {
                let v: u64 = dest.flows.iter().map(|&i| deltas[i][k]).sum();
                acc.add(v as f64);
            }
        }
        let base = self.dests.len() * n;
        for k in 0..AGENT_COUNTERS.len() {
            let v: u64 = deltas.iter().map(|d| d[n + k]).sum();
            self.window[base + k].add(v as f64);
        }
        let base = base + AGENT_COUNTERS.len();
        for (k, m) in AGENT_GAUGES.iter().enumerate() {
            self.window[base + k].add(stats.total(m.2) as f64);
        }
        self.samples += 1;
    }

    /// Closes the current window into one datum per metric, stamped `at`, queued for
    /// the next [`Publisher::flush`]. A window without samples is skipped.
    pub fn close_window(&mut self, at: SystemTime) {
        if self.samples == 0 {
            return;
        }
        let ts = aws_smithy_types::DateTime::from(at);
        let instance = self.instance.as_ref().map(|i| {
            Dimension::builder()
                .name("Instance")
                .value(i.clone())
                .build()
        });
        let datum = |name: &str, unit: &StandardUnit, acc: &Acc, dest: Option<&str>| {
            let mut dims = Vec::with_capacity(2);
            if let Some(d) = dest {
                dims.push(Dimension::builder().name("Destination").value(d).build());
            }
            dims.extend(instance.clone());
            MetricDatum::builder()
                .metric_name(name)
                .set_dimensions(Some(dims))
                .statistic_values(acc.statistic_set())
                .timestamp(ts)
                .unit(unit.clone())
                .build()
        };
        let n = DESTINATION_METRICS.len();
        let mut datums = Vec::with_capacity(self.window.len());
        for (d, dest) in self.dests.iter().enumerate() {
            for (k, (name, unit, _)) in DESTINATION_METRICS.iter().enumerate() {
                datums.push(datum(name, unit, &self.window[d * n + k], Some(&dest.name)));
            }
        }
        let agent = AGENT_COUNTERS.iter().chain(AGENT_GAUGES.iter());
        for (k, (name, unit, _)) in agent.enumerate() {
            datums.push(datum(
                name,
                unit,
                &self.window[self.dests.len() * n + k],
                None,
            ));
        }
        self.window.iter_mut().for_each(|a| *a = Acc::default());
        self.samples = 0;
        self.pending.push_back(datums);
        if self.pending.len() > MAX_PENDING_WINDOWS {
            self.pending.pop_front();
            tracing::warn!(
                "CloudWatch unreachable for {MAX_PENDING_WINDOWS} metric windows: the oldest window is dropped"
            );
        }
    }

    /// Sends every pending window, oldest first, in calls within PutMetricData's limits.
    /// Stops at the first failed call; what it held stays pending.
    pub async fn flush(&mut self) -> Result<(), PublishError> {
        while let Some(window) = self.pending.front_mut() {
            while !window.is_empty() {
                let take = chunk_len(window);
                let result = self
                    .client
                    .put_metric_data()
                    .namespace(self.namespace.clone())
                    .set_metric_data(Some(window[..take].to_vec()))
                    .send()
                    .await;
                if let Err(e) = result {
                    return Err(PublishError {
                        namespace: self.namespace.clone(),
                        datums: take,
                        message: aws_smithy_types::error::display::DisplayErrorContext(&e)
                            .to_string(),
                    });
                }
                window.drain(..take);
            }
            self.pending.pop_front();
        }
        Ok(())
    }

    /// [`Publisher::flush`], with failures logged at most every [`ERROR_LOG_INTERVAL`]
    /// and the recovery logged once.
    pub async fn flush_logged(&mut self) {
        match self.flush().await {
            Ok(()) => {
                if let Some(since) = self.failing_since.take() {
                    tracing::info!(
                        "CloudWatch metrics sent again after {}s of failures",
                        since.elapsed().as_secs()
                    );
                    self.error_log.reset();
                }
            }
            Err(e) => {
                self.failing_since.get_or_insert_with(Instant::now);
                if self.error_log.hit(1).is_some() {
                    tracing::warn!(
                        "{e}; {} window(s) kept for the next flush (at most {MAX_PENDING_WINDOWS})",
                        self.pending.len()
                    );
                }
            }
        }
    }

    /// Samples `stats` every [`SAMPLE_PERIOD`] and sends a window every `buffer_time`
    /// until `stop`, then sends the last window. With `imds_endpoint`
    /// (`cloudwatch.tagInstance`), the instance ID is read first.
    pub async fn run(
        mut self,
        stats: Arc<Stats>,
        buffer_time: Duration,
        imds_endpoint: Option<String>,
        stop: CancellationToken,
    ) {
        if let Some(ep) = imds_endpoint {
            self.instance = Some(instance_id(ep).await);
        }
        let mut tick = tokio::time::interval(SAMPLE_PERIOD.min(buffer_time));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut window_start = Instant::now();
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            self.sample(&stats);
            if window_start.elapsed() >= buffer_time {
                window_start = Instant::now();
                self.close_window(SystemTime::now());
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = self.flush_logged() => {}
                }
            }
        }
        self.sample(&stats);
        self.close_window(SystemTime::now());
        self.flush_logged().await;
    }
}

/// How many datums from the front of `datums` fit in one call.
fn chunk_len(datums: &[MetricDatum]) -> usize {
    let mut bytes = 0;
    let mut n = 0;
    for d in datums.iter().take(MAX_DATUMS_PER_CALL) {
        let size = estimated_size(d);
        if n > 0 && bytes + size > MAX_REQUEST_BYTES {
            break;
        }
        bytes += size;
        n += 1;
    }
    n.max(1)
}

/// An upper bound of a datum's size in a Query-protocol request: every field name is
/// spelled out with its member index, and values may be percent-encoded (3 bytes per
/// byte).
fn estimated_size(d: &MetricDatum) -> usize {
    let dims: usize = d
        .dimensions()
        .iter()
        .map(|x| 100 + 3 * (x.name().map_or(0, str::len) + x.value().map_or(0, str::len)))
        .sum();
    400 + 3 * d.metric_name().map_or(0, str::len) + dims
}

/// The instance ID from the instance metadata service, or [`UNKNOWN_INSTANCE`] with a
/// warning.
async fn instance_id(endpoint: String) -> String {
    let fetched = tokio::task::spawn_blocking(move || {
        let md = crate::ec2::Ec2Metadata::new(&endpoint);
        md.refresh().map_err(|e| e.to_string())?;
        let key = crate::json::encoded_key("instanceId");
        let (_, fields) = md.snapshot();
        fields
            .and_then(|f| f.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()))
            .and_then(|v| serde_json::from_slice::<String>(&v).ok())
            .ok_or_else(|| "no instanceId in the identity document".to_string())
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    match fetched {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(
                "cloudwatch.tagInstance: cannot read the instance ID ({e}); metrics carry Instance={UNKNOWN_INSTANCE}"
            );
            UNKNOWN_INSTANCE.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OutputTarget;

    fn offline_client() -> aws_sdk_cloudwatch::Client {
        let conf = aws_sdk_cloudwatch::Config::builder()
            .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
            .region(aws_sdk_cloudwatch::config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            // Port 9 (discard) on loopback: nothing listens, connections are refused.
            .endpoint_url("http://127.0.0.1:9")
            .retry_config(aws_sdk_cloudwatch::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_cloudwatch::Client::from_conf(conf)
    }

    fn value<'a>(datums: &'a [MetricDatum], name: &str, dest: Option<&str>) -> &'a StatisticSet {
        datums
            .iter()
            .find(|d| {
                d.metric_name() == Some(name)
                    && d.dimensions()
                        .iter()
                        .find(|x| x.name() == Some("Destination"))
                        .and_then(|x| x.value())
                        == dest
            })
            .and_then(|d| d.statistic_values())
            .unwrap_or_else(|| panic!("no {name} for {dest:?}"))
    }

    #[test]
    fn windows_hold_statistic_sets_of_the_changes() {
        let stats = Stats::new(3);
        let mut p = Publisher::new(
            offline_client(),
            "NS".into(),
            &[
                Destination::KinesisStream("s1".into()),
                Destination::OutputFile(OutputTarget::Stdout),
                Destination::KinesisStream("s1".into()),
            ],
        );
        FlowStats::add(&stats.flows[0].records_sent, 10);
        FlowStats::add(&stats.flows[2].records_sent, 5);
        FlowStats::add(&stats.flows[1].records_sent, 1000);
        FlowStats::add(&stats.flows[1].records_dropped, 2);
        stats.flows[1]
            .bytes_behind
            .store(100, std::sync::atomic::Ordering::Relaxed);
        p.sample(&stats);
        FlowStats::add(&stats.flows[0].records_sent, 3);
        stats.flows[1]
            .bytes_behind
            .store(50, std::sync::atomic::Ordering::Relaxed);
        p.sample(&stats);
        p.close_window(SystemTime::now());
        assert_eq!(p.pending_windows(), 1);
        let w = &p.pending[0];
        // One destination (the two flows to s1 are summed, outputFile has none): 5 + 3.
        assert_eq!(w.len(), 5 + 3);
        let sent = value(w, "RecordsSent", Some("KinesisStream:s1"));
        assert_eq!(sent.sample_count(), Some(2.0));
        assert_eq!(sent.sum(), Some(18.0));
        assert_eq!(sent.minimum(), Some(3.0));
        assert_eq!(sent.maximum(), Some(15.0));
        let behind = value(w, "BytesBehind", None);
        assert_eq!(
            (behind.minimum(), behind.maximum()),
            (Some(50.0), Some(100.0))
        );
        assert_eq!(value(w, "RecordsDropped", None).sum(), Some(2.0));
        // The next window starts from the last sample.
        p.sample(&stats);
        p.close_window(SystemTime::now());
        assert_eq!(
            value(&p.pending[1], "RecordsSent", Some("KinesisStream:s1")).sum(),
            Some(0.0)
        );
    }

    #[test]
    fn instance_dimension_is_added() {
        let stats = Stats::new(1);
        let mut p = Publisher::new(
            offline_client(),
            "NS".into(),
            &[Destination::DeliveryStream("d".into())],
        );
        p.set_instance(Some("i-0abc".into()));
        p.sample(&stats);
        p.close_window(SystemTime::now());
        for d in &p.pending[0] {
            assert!(d
                .dimensions()
                .iter()
                .any(|x| x.name() == Some("Instance") && x.value() == Some("i-0abc")));
        }
    }

    #[test]
    fn chunks_respect_count_and_size() {
        let small = MetricDatum::builder().metric_name("X").build();
        assert_eq!(chunk_len(&vec![small.clone(); 2500]), MAX_DATUMS_PER_CALL);
        let big_dim = Dimension::builder()
            .name("Destination")
            .value("x".repeat(1024))
            .build();
        let big = MetricDatum::builder()
            .metric_name("X")
            .dimensions(big_dim.clone())
            .dimensions(big_dim)
            .build();
        let n = chunk_len(&vec![big.clone(); 1000]);
        assert!(n < 1000 && n * estimated_size(&big) <= MAX_REQUEST_BYTES);
        assert_eq!(chunk_len(&[small]), 1);
    }

    #[tokio::test]
    async fn failed_sends_are_kept_and_bounded() {
        let stats = Stats::new(1);
        let mut p = Publisher::new(
            offline_client(),
            "NS".into(),
            &[Destination::KinesisStream("s".into())],
        );
        p.sample(&stats);
        p.close_window(SystemTime::now());
        assert!(p.flush().await.is_err());
        assert_eq!(p.pending_windows(), 1);
        for _ in 0..MAX_PENDING_WINDOWS + 5 {
            p.sample(&stats);
            p.close_window(SystemTime::now());
        }
        assert_eq!(p.pending_windows(), MAX_PENDING_WINDOWS);
        p.flush_logged().await;
        assert_eq!(p.pending_windows(), MAX_PENDING_WINDOWS);
    }
}
