//! Destinations. A sink knows nothing about files: it gets a [`Batch`] and returns once
//! every record in it is acknowledged, retrying what failed for as long as it takes.
//! Cancelling `deliver` (dropping its future) is how shutdown gives up on a batch.
//!
//! Sinks are `Send + Sync`: the daemon runs up to `maxInFlightRequests` deliveries of one
//! flow at once on the same sink.

use std::sync::Arc;

use crate::config::{Config, Destination, FlowConfig};
use crate::event::Batch;
use crate::metrics::FlowStats;

pub mod file;
pub mod firehose;
pub mod kinesis;
pub mod pool;
mod response;
pub mod retry;
mod rpc;

/// The destination of one flow.
#[derive(Debug)]
pub enum Sink {
    /// `outputFile`
    File(file::FileSink),
    /// `kinesisStream`
    Kinesis(kinesis::KinesisSink),
    /// `deliveryStream`
    Firehose(firehose::FirehoseSink),
}

/// A sink that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// `outputFile` cannot be opened for appending.
    #[error("cannot open outputFile {}: {source}", path.display())]
    OpenOutput {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `AWS_CA_BUNDLE` names a file the clients cannot use.
    #[error(transparent)]
    CaBundle(#[from] crate::aws::CaBundleError),
}

impl Sink {
    /// Builds the sink of `flow`. Makes no network call (credentials are resolved at the
    /// first request). Fails when `outputFile` cannot be opened or `AWS_CA_BUNDLE` cannot
    /// be used.
    pub async fn new(
        config: &Config,
        flow: &FlowConfig,
        stats: Arc<FlowStats>,
    ) -> Result<Sink, SinkError> {
        // Batch and request buffers are kept within the flow's share (see `pool`).
        let (batch_kib, working_kib) =
            crate::pipeline::shares(config.max_buffered_bytes, config.flows.len());
        let pool = pool::BufPool::new((batch_kib as usize + working_kib as usize) * 1024);
        match &flow.destination {
            Destination::OutputFile(target) => Ok(Sink::File(file::FileSink::open(
                target,
                flow.retry_initial_backoff,
                flow.retry_max_backoff,
                stats,
            )?)),
            Destination::KinesisStream(stream) => {
                let tls = crate::aws::ca_bundle_from_env()?;
                let base = crate::aws::sdk_config_with(config, tls.clone()).await;
                let region = crate::aws::service_region(&config.kinesis, &base);
                let client = crate::aws::kinesis_client(config, &base);
                let endpoint = rpc::Endpoint::kinesis(
                    region.as_ref(),
                    base.use_fips().unwrap_or(false),
                    base.use_dual_stack().unwrap_or(false),
                    config.kinesis.endpoint.as_deref(),
                    stream,
                )
                .await;
                let rpc =
                    rpc::Rpc::for_sink(rpc::KINESIS, config, &base, tls, region.as_ref(), endpoint);
                Ok(Sink::Kinesis(kinesis::KinesisSink::new(
                    client,
                    rpc,
                    region.as_ref(),
                    stream,
                    flow,
                    stats,
                    pool,
                )))
            }
            Destination::DeliveryStream(stream) => {
                let tls = crate::aws::ca_bundle_from_env()?;
                let base = crate::aws::sdk_config_with(config, tls.clone()).await;
                let region = crate::aws::service_region(&config.firehose, &base);
                let client = crate::aws::firehose_client(config, &base);
                let endpoint = rpc::Endpoint::firehose(
                    region.as_ref(),
                    base.use_fips().unwrap_or(false),
                    base.use_dual_stack().unwrap_or(false),
                    config.firehose.endpoint.as_deref(),
                )
                .await;
                let rpc = rpc::Rpc::for_sink(
                    rpc::FIREHOSE,
                    config,
                    &base,
                    tls,
                    region.as_ref(),
                    endpoint,
                );
                Ok(Sink::Firehose(firehose::FirehoseSink::new(
                    client,
                    rpc,
                    region.as_ref(),
                    stream,
                    flow,
                    stats,
                    pool,
                )))
            }
        }
    }

    /// Checks the destination once at start-up and logs what is wrong. Returns the
    /// destination's real maximum record size when it differs from the default.
    pub async fn preflight(&self) -> Option<usize> {
        match self {
            Sink::File(_) => None,
            Sink::Kinesis(s) => s.preflight().await,
            Sink::Firehose(s) => s.preflight().await,
        }
    }

    /// The buffers this sink reuses, which the flow's batches can share (none for a file).
    pub fn pool(&self) -> Option<Arc<pool::BufPool>> {
        match self {
            Sink::File(_) => None,
            Sink::Kinesis(s) => Some(s.pool()),
            Sink::Firehose(s) => Some(s.pool()),
        }
    }

    /// Delivers every record of `batch`; returns when all are acknowledged.
    pub async fn deliver(&self, batch: &Batch) {
        match self {
            Sink::File(s) => s.deliver(batch).await,
            Sink::Kinesis(s) => s.deliver(batch).await,
            Sink::Firehose(s) => s.deliver(batch).await,
        }
    }
}

/// Appends `{"Data":"<base64 of data>"` (the record left open for more fields).
pub(crate) fn open_record_json(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(b"{\"Data\":\"");
    base64_simd::STANDARD.encode_append(data, out);
    out.push(b'"');
}

/// Bytes of the base64 of `len` bytes.
pub(crate) fn base64_len(len: usize) -> usize {
    base64_simd::STANDARD.encoded_length(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn sinks_are_send_and_sync() {
        assert_send_sync::<Sink>();
    }

    #[allow(dead_code)]
    fn deliver_future_is_send(s: &'static Sink, b: &'static Batch) {
        fn is_send<T: Send>(_: T) {}
        is_send(s.deliver(b));
        is_send(s.preflight());
    }
}
