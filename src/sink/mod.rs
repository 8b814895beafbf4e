//! Destinations. A sink knows nothing about files: it gets a [`Batch`] and returns once
//! every record in it is acknowledged, retrying what failed for as long as it takes.
//! Cancelling `deliver` (dropping its future) is how shutdown gives up on a batch.

use std::sync::Arc;

use crate::config::{Config, Destination, FlowConfig};
use crate::event::Batch;
use crate::metrics::FlowStats;

pub mod file;

/// The destination of one flow.
#[derive(Debug)]
pub enum Sink {
    /// `outputFile`
    File(file::FileSink),
}

impl Sink {
    /// Builds the sink of `flow`. Makes no network call.
    pub async fn new(
        config: &Config,
        flow: &FlowConfig,
        stats: Arc<FlowStats>,
    ) -> anyhow::Result<Sink> {
        let _ = config;
        match &flow.destination {
            Destination::OutputFile(target) => Ok(Sink::File(file::FileSink::open(
                target,
                flow.retry_initial_backoff,
                flow.retry_max_backoff,
                stats,
            )?)),
            other => anyhow::bail!(
                "flow {}: destination {other} is not supported yet",
                flow.index
            ),
        }
    }

    /// Checks the destination once at start-up and logs what is wrong. Returns the
    /// destination's real maximum record size when it differs from the default.
    pub async fn preflight(&self) -> Option<usize> {
        match self {
            Sink::File(_) => None,
        }
    }

    /// Delivers every record of `batch`; returns when all are acknowledged.
    pub async fn deliver(&self, batch: &Batch) {
        match self {
            Sink::File(s) => s.deliver(batch).await,
        }
    }
}
