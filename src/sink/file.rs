//! `outputFile`: the local sink. Appends each record as it would be sent (with its
//! terminator, normally the line's `\n`) to a file, or writes it to standard output for `-`. A record counts as acknowledged once `write`
//! returned; a failed write (disk full) is retried with backoff, never dropped.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::OutputTarget;
use crate::event::Batch;
use crate::metrics::FlowStats;

/// Test hook, in debug builds only: the share (0 to 1) of batch writes that fail, so that
/// a model test sees batches retried while files rotate and the agent is killed.
#[cfg(debug_assertions)]
pub const TEST_FAIL_WRITES_ENV: &str = "KINESIS_TAIL_TEST_FAIL_WRITES";

#[cfg(debug_assertions)]
fn test_write_fails() -> bool {
    use rand::Rng;
    std::env::var(TEST_FAIL_WRITES_ENV)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .is_some_and(|p| rand::thread_rng().gen_bool(p.clamp(0.0, 1.0)))
}

/// Writes records to a local file or stdout.
#[derive(Debug)]
pub struct FileSink {
    target: OutputTarget,
    out: Mutex<Output>,
    initial_backoff: Duration,
    max_backoff: Duration,
    stats: Arc<FlowStats>,
}

#[derive(Debug)]
struct Output {
    file: Option<File>,
    buf: Vec<u8>,
}

impl FileSink {
    /// Opens (creates, appends to) `target`.
    pub fn open(
        target: &OutputTarget,
        initial_backoff: Duration,
        max_backoff: Duration,
        stats: Arc<FlowStats>,
    ) -> anyhow::Result<Self> {
        let file = match target {
            OutputTarget::Stdout => None,
            OutputTarget::Path(p) => Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| anyhow::anyhow!("cannot open outputFile {}: {e}", p.display()))?,
            ),
        };
        Ok(FileSink {
            target: target.clone(),
            out: Mutex::new(Output {
                file,
                buf: Vec::new(),
            }),
            initial_backoff,
            max_backoff,
            stats,
        })
    }

    /// Writes every record of `batch`, each followed by `\n`.
    pub async fn deliver(&self, batch: &Batch) {
        if batch.is_empty() {
            return;
        }
        let mut backoff = self.initial_backoff;
        loop {
            FlowStats::add(&self.stats.record_send_attempts, batch.len() as u64);
            match self.write(batch) {
                Ok(bytes) => {
                    FlowStats::add(&self.stats.records_sent, batch.len() as u64);
                    FlowStats::add(&self.stats.bytes_sent, bytes);
                    return;
                }
                Err(e) => {
                    FlowStats::add(&self.stats.service_errors, 1);
                    tracing::error!(
                        "cannot write to outputFile {}: {e}; retrying in {backoff:?}",
                        match &self.target {
                            OutputTarget::Stdout => "-".to_string(),
                            OutputTarget::Path(p) => p.display().to_string(),
                        }
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.max_backoff);
                }
            }
        }
    }

    fn write(&self, batch: &Batch) -> std::io::Result<u64> {
        #[cfg(debug_assertions)]
        if test_write_fails() {
            return Err(std::io::Error::other(format!(
                "failed by {TEST_FAIL_WRITES_ENV}"
            )));
        }
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let Output { file, buf } = &mut *out;
        buf.clear();
        buf.reserve(batch.data.len());
        for i in 0..batch.len() {
            buf.extend_from_slice(batch.record(i));
        }
        match file {
            Some(f) => f.write_all(buf)?,
            None => {
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(buf)?;
                stdout.flush()?;
            }
        }
        Ok(batch.data.len() as u64)
    }
}
