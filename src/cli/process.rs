//! `kinesis-tail process`: standard input → the flow's framing and processors → standard
//! output, each record exactly as `run` would send it.

use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use crate::config::FlowConfig;
use crate::event::{FileKey, RecordId};
use crate::framing::{FrameEvent, Framer};
use crate::metrics::FlowStats;
use crate::process::{Chain, Made, RecordMaker};

/// Size of one read from the input.
const READ_CHUNK: usize = 64 * 1024;

/// Reads `input` as if it were a file of `flow` (from offset 0, headers skipped, the last
/// record ended at end of input even without a newline), runs the flow's chain
/// ([`Chain::new`]) and writes each resulting record to `output` exactly as `run` would
/// send it: its terminator included (a record normally ends with its line's `\n`; one
/// made by ADDBRACKETS ends with `}`) and cut at the destination's limit as `run` cuts it
/// (with a random key's length under RANDOM). Dropped records are not written. Record
/// IDs use a file identity of zeros. Counts into `stats` as the pipeline does.
pub fn run_process(
    flow: &FlowConfig,
    input: impl Read,
    output: impl Write,
    stats: &FlowStats,
) -> io::Result<()> {
    run_process_with(flow, None, Chain::new(flow), input, output, stats)
}

/// [`run_process`] with a chain built by the caller (e.g. [`Chain::with_ec2`]), for input
/// that stands for the file at `path` (its name gives `CRI` records their Kubernetes fields).
pub fn run_process_with(
    flow: &FlowConfig,
    path: Option<&Path>,
    chain: Chain,
    mut input: impl Read,
    output: impl Write,
    stats: &FlowStats,
) -> io::Result<()> {
    let key = FileKey {
        dev: 0,
        ino: 0,
        fingerprint: 0,
        generation: 0,
    };
    let mut maker = RecordMaker::new(flow, chain, flow.default_max_record_bytes());
    let mut framer = Framer::for_file(flow, 0, maker.framer_cap(), path);
    let mut w = BufWriter::new(output);
    let mut buf = vec![0u8; READ_CHUNK];
    // The first write error; later records are not written.
    let error: std::cell::Cell<Option<io::Error>> = std::cell::Cell::new(None);
    let failed = std::cell::Cell::new(false);
    let digest = key.digest();
    let mut on_event = |ev: FrameEvent<'_>| {
        let frame = match ev {
            FrameEvent::Skipped => {
                FlowStats::add(&stats.records_dropped, 1);
                return;
            }
            FrameEvent::Record(f) => f,
        };
        FlowStats::add(&stats.records_parsed, 1);
        match maker.make(&frame, RecordId::from_digest(digest, frame.offset)) {
            Made::Dropped => {
                FlowStats::add(&stats.records_dropped, 1);
                return;
            }
            Made::Record { truncated, failed } => {
                if truncated {
                    FlowStats::add(&stats.records_truncated, 1);
                }
                if failed {
                    FlowStats::add(&stats.processing_errors, 1);
                }
            }
        }
        if !failed.get() {
            if let Err(e) = w.write_all(&maker.out) {
                failed.set(true);
                error.set(Some(e));
            }
        }
    };
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        FlowStats::add(&stats.bytes_parsed, n as u64);
        framer.push(&buf[..n], &mut on_event);
        if let Some(e) = error.take() {
            return Err(e);
        }
    }
    framer.flush(true, &mut on_event);
    if let Some(e) = error.take() {
        return Err(e);
    }
    w.flush()
}
