//! Framing: the bytes of one file → records (STUB: replaced by the framing work).

use crate::config::FlowConfig;

/// One record cut from a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The record's bytes, without its final newline (a multi-line record keeps its inner
    /// newlines). At most the framer's `max_record_bytes`.
    pub bytes: &'a [u8],
    /// Offset in the file of the record's first byte.
    pub offset: u64,
    /// Offset just past the record (past its newline).
    pub end: u64,
    /// True when the record was cut to `max_record_bytes` and ends with the terminator.
    pub truncated: bool,
}

/// What the framer tells its caller besides records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameEvent<'a> {
    /// A record to process.
    Record(Frame<'a>),
    /// A header or footer line was skipped (counted as dropped).
    Skipped,
}

/// Cuts one file's bytes into records. One per file being read; holds the partial last
/// line and a multi-line record in progress.
#[derive(Debug)]
pub struct Framer {
    committed: u64,
}

impl Framer {
    /// A framer for a file of `flow` whose next byte is at `offset`; headers are skipped only
    /// when `offset == 0`. `max_record_bytes` caps a record including the terminator.
    pub fn new(flow: &FlowConfig, offset: u64, max_record_bytes: usize) -> Self {
        let _ = (flow, max_record_bytes);
        Framer { committed: offset }
    }

    /// Feeds `buf`, the file's bytes that follow everything fed before, and calls `out` for
    /// each complete record and each skipped line, in file order.
    pub fn push(&mut self, buf: &[u8], out: &mut dyn FnMut(FrameEvent<'_>)) {
        let _ = (buf, out);
        unimplemented!()
    }

    /// Ends the record in progress, if any (multi-line silence, end of input in `process`,
    /// `run --once`). A partial line without newline is emitted only when `partial_lines`.
    pub fn flush(&mut self, partial_lines: bool, out: &mut dyn FnMut(FrameEvent<'_>)) {
        let _ = (partial_lines, out);
        unimplemented!()
    }

    /// When the multi-line record in progress started waiting, if one is.
    pub fn pending_since(&self) -> Option<std::time::Instant> {
        None
    }

    /// Offset up to which every byte belongs to a record already emitted or skipped: where
    /// a reader restarting from scratch would resume.
    pub fn committed(&self) -> u64 {
        self.committed
    }
}
