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
    /// The file (`None`: standard output), shared with the blocking writes.
    file: Option<Arc<File>>,
    /// Held while a batch is written, so that batches never interleave.
    writing: Arc<Mutex<()>>,
    /// A buffer of an earlier batch, kept for its capacity.
    spare: Mutex<Vec<u8>>,
    initial_backoff: Duration,
    max_backoff: Duration,
    stats: Arc<FlowStats>,
}

impl FileSink {
    /// Opens (creates, appends to) `target`.
    pub fn open(
        target: &OutputTarget,
        initial_backoff: Duration,
        max_backoff: Duration,
        stats: Arc<FlowStats>,
    ) -> Result<Self, super::SinkError> {
        let file = match target {
            OutputTarget::Stdout => None,
            OutputTarget::Path(p) => Some(Arc::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|source| super::SinkError::OpenOutput {
                        path: p.clone(),
                        source,
                    })?,
            )),
        };
        Ok(FileSink {
            target: target.clone(),
            file,
            writing: Arc::new(Mutex::new(())),
            spare: Mutex::new(Vec::new()),
            initial_backoff,
            max_backoff,
            stats,
        })
    }

    /// Writes every record of `batch` as it is (each with its terminator). The write
    /// itself runs on the runtime's blocking threads: a slow disk or a full pipe on
    /// standard output never holds a worker thread that other flows' deliveries need.
    pub async fn deliver(&self, batch: &Batch) {
        if batch.is_empty() {
            return;
        }
        let mut buf = std::mem::take(&mut *self.spare.lock().unwrap_or_else(|p| p.into_inner()));
        buf.clear();
        buf.reserve(batch.data.len());
        for i in 0..batch.len() {
            buf.extend_from_slice(batch.record(i));
        }
        let bytes = buf.len() as u64;
        let mut backoff = self.initial_backoff;
        loop {
            FlowStats::add(&self.stats.record_send_attempts, batch.len() as u64);
            let file = self.file.clone();
            let writing = Arc::clone(&self.writing);
            let (result, back) = match tokio::task::spawn_blocking(move || {
                let r = write_out(file.as_deref(), &writing, &buf);
                (r, buf)
            })
            .await
            {
                Ok(done) => done,
                Err(e) => (Err(std::io::Error::other(e.to_string())), Vec::new()),
            };
            buf = back;
            match result {
                Ok(()) => {
                    FlowStats::add(&self.stats.records_sent, batch.len() as u64);
                    FlowStats::add(&self.stats.bytes_sent, bytes);
                    *self.spare.lock().unwrap_or_else(|p| p.into_inner()) = buf;
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
                    if buf.len() as u64 != bytes {
                        // The blocking task was lost with the buffer: build it again.
                        buf.clear();
                        for i in 0..batch.len() {
                            buf.extend_from_slice(batch.record(i));
                        }
                    }
                }
            }
        }
    }
}

/// Writes `buf` to `file` (standard output when `None`), whole, under `writing`.
fn write_out(file: Option<&File>, writing: &Mutex<()>, buf: &[u8]) -> std::io::Result<()> {
    #[cfg(debug_assertions)]
    if test_write_fails() {
        return Err(std::io::Error::other(format!(
            "failed by {TEST_FAIL_WRITES_ENV}"
        )));
    }
    let _whole = writing.lock().unwrap_or_else(|p| p.into_inner());
    match file {
        Some(mut f) => f.write_all(buf),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(buf)?;
            stdout.flush()
        }
    }
}
