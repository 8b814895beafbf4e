//! Framing: the bytes of one file → records.
//!
//! Owns: splitting on `\n`, the partial last line, `multiLineStartPattern` grouping,
//! `skipHeaderLines`, `fileFooterPattern` and cutting records to the destination's record
//! limit (`truncatedRecordTerminator`). Does not own: reading files, record IDs, processors.
//!
//! # Rules, and where they follow the Java agent
//!
//! - A record is the bytes of one line without its `\n`. Everything else is kept as is,
//!   including a `\r` before the `\n` (the Java agent keeps it too; `CSVTOJSON` drops one
//!   trailing `\r`). An empty line is an empty record.
//! - With `multiLineStartPattern`, a record is a line followed by every following line that
//!   does not match the pattern, joined with their `\n`: the record is always the exact
//!   file bytes `offset..end - 1`. The pattern matches at the start of a line (Java
//!   `Matcher.lookingAt`). As in the Java agent, the first line read always starts a record
//!   even when it does not match: lines before the first start line form one record with
//!   it, and after a [`Framer::flush`] the next line starts a record whatever it is.
//! - `skipHeaderLines`: the first N lines of a file read from offset 0 are skipped.
//! - A line whose text without leading and trailing bytes up to the space (Java
//!   `String.trim`) matches `fileFooterPattern` is skipped; it ends the multi-line record
//!   in progress. The configuration compiles the pattern to match the whole trimmed line,
//!   as the Java agent's `matches()` does. (The Java agent then stops reading the file;
//!   kinesis-tail goes on, so that nothing written after a footer is lost.)
//! - A record longer than `max_record_bytes` is cut so that its kept bytes plus
//!   `truncatedRecordTerminator` fit in `max_record_bytes`; the cut is moved back to a UTF-8
//!   character boundary when it would split a character. Bytes past the cut are never held
//!   in memory: a 50 MB line costs `max_record_bytes` of buffer, and the patterns see only
//!   its first `max_record_bytes + 1` bytes.
//! - Complete lines inside one [`Framer::push`] are handed out as slices of the caller's
//!   buffer (no copy); only the partial last line, multi-line records and truncated
//!   records are copied.
//! - With `optionName: CRI` (see `framing/container.rs`), each line (after
//!   `skipHeaderLines`) is decoded first, and a line the runtime split (`P` lines,
//!   Docker's lines without `\n`) is joined with the lines that continue it, without
//!   separator, into one line that spans their file bytes; footers and multi-line grouping
//!   then apply to these lines. A split line whose end never comes is ended by
//!   [`Framer::flush`] (the multi-line timer), and one interrupted by a line of the other
//!   stream or a line in neither format is ended there (its parts so far are one record,
//!   the rest another). With `output: json` the record is written as a JSON object, cut
//!   so that the object stays whole within the limit.

mod container;

use std::path::Path;
use std::time::Instant;

use regex::bytes::Regex;

use crate::config::{ContainerOutput, FlowConfig};
pub use container::KubernetesFields;
use container::{Decoder, JsonWrap};

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
    /// The record is sent with a newline after `bytes` (false for a cut line, which
    /// ends with the terminator as in the Java agent).
    pub newline: bool,
}

/// What the framer tells its caller besides records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameEvent<'a> {
    /// A record to process.
    Record(Frame<'a>),
    /// A header or footer line was skipped (counted as dropped).
    Skipped,
}

/// A record being assembled from several lines: a multi-line record waiting for its next
/// start line, or a container line the runtime split, waiting for its last part.
#[derive(Debug)]
struct Pending {
    /// Its first `max_record_bytes + 1` bytes.
    bytes: Vec<u8>,
    /// Offset of its first byte.
    start: u64,
    /// Offset past its last line (past that line's newline).
    end: u64,
    /// Its real length (may exceed `bytes.len()`).
    len: u64,
    /// When its last line arrived.
    since: Instant,
    /// False when no record is in progress (`bytes` is then kept only for its capacity).
    active: bool,
    /// The time and stream of its first line (container logs written as JSON).
    time: Vec<u8>,
    stream: Vec<u8>,
}

impl Pending {
    fn new(offset: u64) -> Self {
        Pending {
            bytes: Vec::new(),
            start: offset,
            end: offset,
            len: 0,
            since: Instant::now(),
            active: false,
            time: Vec::new(),
            stream: Vec::new(),
        }
    }

    /// Starts a record with the line `start..end` (`full` bytes long, `kept` of them
    /// kept), keeping at most `cap` bytes.
    fn begin(
        &mut self,
        kept: &[u8],
        (start, end, full): (u64, u64, u64),
        meta: Meta<'_>,
        cap: usize,
    ) {
        self.bytes.clear();
        append_capped(&mut self.bytes, kept, cap);
        self.start = start;
        self.end = end;
        self.len = full;
        self.since = Instant::now();
        self.active = true;
        self.time.clear();
        self.time.extend_from_slice(meta.0);
        self.stream.clear();
        self.stream.extend_from_slice(meta.1);
    }

    /// Adds the line `..end` (`full` bytes long) after `separator`.
    fn add(&mut self, separator: &[u8], kept: &[u8], (end, full): (u64, u64), cap: usize) {
        append_capped(&mut self.bytes, separator, cap);
        append_capped(&mut self.bytes, kept, cap);
        self.len += separator.len() as u64 + full;
        self.end = end;
        self.since = Instant::now();
    }
}

/// The time and stream of a container log line (empty for other lines).
type Meta<'a> = (&'a [u8], &'a [u8]);

/// `optionName: CRI`: the decoder and a split line in progress.
#[derive(Debug)]
struct Container {
    decoder: Decoder,
    /// The file, for the warning about lines in neither format.
    source: String,
    split: Pending,
}

/// Hands records out: as framed, cut to the limit, or written as JSON (`CRI` with
/// `output: json`).
#[derive(Debug)]
struct RecordOut {
    terminator: Vec<u8>,
    max_record_bytes: usize,
    /// Where cut records are assembled.
    scratch: Vec<u8>,
    /// `output: json` of `CRI`, and the buffer its records are written in.
    json: Option<(JsonWrap, Vec<u8>)>,
}

/// Cuts one file's bytes into records. One per file being read; holds the partial last
/// line and a multi-line record in progress.
#[derive(Debug)]
pub struct Framer {
    multi_line_start: Option<Regex>,
    footer: Option<Regex>,
    headers_to_skip: usize,
    max_record_bytes: usize,
    /// Offset of the next byte `push` will receive.
    pos: u64,
    /// Offset of the first byte of the line not yet complete (== `pos` when none).
    line_start: u64,
    /// The first `max_record_bytes + 1` bytes of the line not yet complete (one more than
    /// a record holds, to see whether the cut splits a UTF-8 character).
    partial: Vec<u8>,
    pending: Pending,
    committed: u64,
    container: Option<Box<Container>>,
    records: RecordOut,
}

impl Framer {
    /// A framer for a file of `flow` whose next byte is at `offset`; headers are skipped only
    /// when `offset == 0`. `max_record_bytes` caps a record including the terminator.
    pub fn new(flow: &FlowConfig, offset: u64, max_record_bytes: usize) -> Self {
        Framer::for_file(flow, offset, max_record_bytes, None)
    }

    /// [`Framer::new`] for the file at `path`, whose name gives container logs their
    /// Kubernetes fields.
    pub fn for_file(
        flow: &FlowConfig,
        offset: u64,
        max_record_bytes: usize,
        path: Option<&Path>,
    ) -> Self {
        let max_record_bytes = max_record_bytes.max(1);
        let container_log = flow.container_log();
        Framer {
            multi_line_start: flow.multi_line_start_pattern.clone(),
            footer: flow.file_footer_pattern.clone(),
            headers_to_skip: if offset == 0 {
                flow.skip_header_lines
            } else {
                0
            },
            max_record_bytes,
            pos: offset,
            line_start: offset,
            partial: Vec::new(),
            pending: Pending::new(offset),
            committed: offset,
            container: container_log.map(|c| {
                Box::new(Container {
                    decoder: Decoder::new(c.format),
                    source: path.map_or_else(|| "input".to_string(), |p| p.display().to_string()),
                    split: Pending::new(offset),
                })
            }),
            records: RecordOut {
                terminator: flow.truncated_record_terminator.clone(),
                max_record_bytes,
                scratch: Vec::new(),
                json: container_log
                    .filter(|c| c.output == ContainerOutput::Json)
                    .map(|c| (JsonWrap::new(c.kubernetes, path), Vec::new())),
            },
        }
    }

    /// Feeds `buf`, the file's bytes that follow everything fed before, and calls `out` for
    /// each complete record and each skipped line, in file order.
    pub fn push(&mut self, buf: &[u8], out: &mut dyn FnMut(FrameEvent<'_>)) {
        let base = self.pos;
        let mut i = 0usize;
        for nl in memchr::memchr_iter(b'\n', buf) {
            let end = base + nl as u64 + 1;
            let start_here = base + i as u64;
            if self.line_start < start_here {
                // The line began in an earlier push: finish it in the partial buffer.
                append_capped(&mut self.partial, &buf[i..nl], self.max_record_bytes + 1);
                let line = std::mem::take(&mut self.partial);
                let full = end - 1 - self.line_start;
                self.line(&line, self.line_start, end, full, out);
                self.partial = line;
                self.partial.clear();
                shrink(&mut self.partial);
            } else {
                self.line(&buf[i..nl], start_here, end, (nl - i) as u64, out);
            }
            self.line_start = end;
            i = nl + 1;
        }
        if i < buf.len() {
            append_capped(&mut self.partial, &buf[i..], self.max_record_bytes + 1);
        }
        self.pos = base + buf.len() as u64;
    }

    /// Ends the record in progress, if any (multi-line silence, end of input in `process`,
    /// `run --once`). A partial line without newline is emitted only when `partial_lines`.
    pub fn flush(&mut self, partial_lines: bool, out: &mut dyn FnMut(FrameEvent<'_>)) {
        if partial_lines && self.pos > self.line_start {
            let line = std::mem::take(&mut self.partial);
            let full = self.pos - self.line_start;
            self.line(&line, self.line_start, self.pos, full, out);
            self.partial = line;
            self.partial.clear();
            shrink(&mut self.partial);
            self.line_start = self.pos;
        }
        self.flush_split(out);
        self.flush_pending(out);
    }

    /// When the multi-line record in progress got its last line, if one is: it is ended
    /// after `maxBufferAgeMillis` of silence, however long it has been growing.
    pub fn pending_since(&self) -> Option<Instant> {
        let split = self.container.as_ref().map(|c| &c.split);
        [Some(&self.pending), split]
            .into_iter()
            .flatten()
            .filter(|p| p.active)
            .map(|p| p.since)
            .min()
    }

    /// Container log lines in neither the CRI nor Docker's format (passed on as read).
    pub fn malformed_container_lines(&self) -> u64 {
        self.container.as_ref().map_or(0, |c| c.decoder.malformed)
    }

    /// Offset up to which every byte belongs to a record already emitted or skipped: where
    /// a reader restarting from scratch would resume.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Bytes of buffer capacity held (partial line, record in progress, scratch).
    pub fn capacity(&self) -> usize {
        self.partial.capacity()
            + self.pending.bytes.capacity()
            + self.records.scratch.capacity()
            + self
                .container
                .as_ref()
                .map_or(0, |c| c.split.bytes.capacity())
            + self.records.json.as_ref().map_or(0, |(_, b)| b.capacity())
    }

    /// One complete line: `kept` is its first bytes (all of them unless `full` exceeds the
    /// cap), `start..end` its place in the file (`end` past its newline, if any).
    fn line(
        &mut self,
        kept: &[u8],
        start: u64,
        end: u64,
        full: u64,
        out: &mut dyn FnMut(FrameEvent<'_>),
    ) {
        // Patterns see the same bytes whether the line arrived whole or in pieces.
        let kept = &kept[..kept.len().min(self.max_record_bytes + 1)];
        if self.headers_to_skip > 0 {
            self.headers_to_skip -= 1;
            self.committed = end;
            out(FrameEvent::Skipped);
            return;
        }
        let Some(mut c) = self.container.take() else {
            self.record_line(kept, start, end, full, (b"", b""), out);
            return;
        };
        let decoded = c.decoder.decode(kept);
        // A split line ends where a line of the other stream (containerd writes stdout and
        // stderr into one file) or a line in neither format comes between its parts: it is
        // sent as joined so far, so that records never mix streams and stay in file order.
        if c.split.active
            && decoded
                .as_ref()
                .is_none_or(|d| *d.stream != c.split.stream[..])
        {
            self.end_split(&mut c.split, out);
        }
        match decoded {
            None => {
                if c.decoder.malformed == 1 {
                    tracing::warn!(
                        file = %c.source,
                        "a line is in neither the CRI nor Docker's json-file format; it is sent as it is (further ones are counted, not logged)"
                    );
                }
                self.record_line(kept, start, end, full, (b"", b""), out);
            }
            Some(d) => {
                // The bytes of the message past what was kept.
                let msg_full = d.msg.len() as u64 + (full - kept.len() as u64);
                let cap = self.max_record_bytes + 1;
                if c.split.active {
                    c.split.add(b"", &d.msg, (end, msg_full), cap);
                } else if d.partial {
                    c.split
                        .begin(&d.msg, (start, end, msg_full), (&d.time, &d.stream), cap);
                } else {
                    self.record_line(&d.msg, start, end, msg_full, (&d.time, &d.stream), out);
                }
                if c.split.active && !d.partial {
                    self.end_split(&mut c.split, out);
                }
            }
        }
        self.container = Some(c);
    }

    /// Ends a split container line whose end never came.
    fn flush_split(&mut self, out: &mut dyn FnMut(FrameEvent<'_>)) {
        if let Some(mut c) = self.container.take() {
            if c.split.active {
                self.end_split(&mut c.split, out);
            }
            self.container = Some(c);
        }
    }

    /// Hands the joined line of `split` on as one line.
    fn end_split(&mut self, split: &mut Pending, out: &mut dyn FnMut(FrameEvent<'_>)) {
        split.active = false;
        let meta = (&split.time[..], &split.stream[..]);
        self.record_line(&split.bytes, split.start, split.end, split.len, meta, out);
        shrink(&mut split.bytes);
    }

    /// One line as the application wrote it (decoded from the container format, if
    /// any), with the time and stream of container logs.
    fn record_line(
        &mut self,
        kept: &[u8],
        start: u64,
        end: u64,
        full: u64,
        meta: Meta<'_>,
        out: &mut dyn FnMut(FrameEvent<'_>),
    ) {
        if self
            .footer
            .as_ref()
            .is_some_and(|re| re.is_match(java_trim(kept)))
        {
            self.flush_pending(out);
            self.committed = end;
            out(FrameEvent::Skipped);
            return;
        }
        let Some(re) = &self.multi_line_start else {
            self.records.emit(kept, full, start, end, meta, out);
            self.committed = end;
            return;
        };
        // `lookingAt`: the leftmost match starts at 0 iff some match starts at 0.
        let starts = re.find(kept).is_some_and(|m| m.start() == 0);
        let cap = self.max_record_bytes + 1;
        if self.pending.active && !starts {
            self.pending.add(b"\n", kept, (end, full), cap);
        } else {
            self.flush_pending(out);
            self.pending.begin(kept, (start, end, full), meta, cap);
            self.committed = start;
        }
    }

    fn flush_pending(&mut self, out: &mut dyn FnMut(FrameEvent<'_>)) {
        if !self.pending.active {
            return;
        }
        let p = &mut self.pending;
        p.active = false;
        let meta = (&p.time[..], &p.stream[..]);
        self.records
            .emit(&p.bytes, p.len, p.start, p.end, meta, out);
        self.committed = p.end;
        shrink(&mut p.bytes);
    }
}

impl RecordOut {
    /// Hands out one record whose first bytes are `kept` and whose real length is `full`.
    fn emit(
        &mut self,
        kept: &[u8],
        full: u64,
        offset: u64,
        end: u64,
        meta: Meta<'_>,
        out: &mut dyn FnMut(FrameEvent<'_>),
    ) {
        let max = self.max_record_bytes;
        if let Some((wrap, buf)) = &mut self.json {
            // The record is sent with a newline after the object: both fit in the limit.
            let truncated = wrap.write(
                buf,
                meta,
                kept,
                full,
                &self.terminator,
                max.saturating_sub(1),
                &mut self.scratch,
            );
            out(FrameEvent::Record(Frame {
                bytes: buf,
                offset,
                end,
                truncated,
                newline: true,
            }));
            shrink(buf);
        } else if full <= max as u64 {
            out(FrameEvent::Record(Frame {
                bytes: kept,
                offset,
                end,
                truncated: false,
                newline: true,
            }));
        } else {
            // One byte past the cap tells whether the cut splits a character; looking
            // further would make the result depend on how the bytes arrived.
            truncate_into(
                &mut self.scratch,
                &kept[..kept.len().min(max + 1)],
                &self.terminator,
                max,
            );
            out(FrameEvent::Record(Frame {
                bytes: &self.scratch,
                offset,
                end,
                truncated: true,
                newline: false,
            }));
        }
        shrink(&mut self.scratch);
    }
}

/// Buffers keep at most this much capacity between records: one long line must not hold
/// its memory for as long as the file is read.
pub const KEEP_CAPACITY: usize = 64 * 1024;

fn shrink(buf: &mut Vec<u8>) {
    if buf.capacity() > KEEP_CAPACITY {
        buf.clear();
        buf.shrink_to(KEEP_CAPACITY);
    }
}

/// Appends as much of `src` as fits under `cap` bytes in total.
fn append_capped(dst: &mut Vec<u8>, src: &[u8], cap: usize) {
    let room = cap.saturating_sub(dst.len());
    dst.extend_from_slice(&src[..src.len().min(room)]);
}

/// Java's `String.trim`: without leading and trailing bytes up to the space.
pub(crate) fn java_trim(mut l: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = l {
        if *first > b' ' {
            break;
        }
        l = rest;
    }
    while let [rest @ .., last] = l {
        if *last > b' ' {
            break;
        }
        l = rest;
    }
    l
}

/// `scratch` = the first bytes of `kept` + `terminator`, at most `max` bytes in total, cut
/// on a UTF-8 character boundary when the bytes there are UTF-8.
pub(crate) fn truncate_into(scratch: &mut Vec<u8>, kept: &[u8], terminator: &[u8], max: usize) {
    let mut keep = max.saturating_sub(terminator.len()).min(kept.len());
    // Back off at most 3 continuation bytes so that a character is not split.
    let mut steps = 0;
    while keep > 0 && keep < kept.len() && kept[keep] & 0xC0 == 0x80 && steps < 3 {
        keep -= 1;
        steps += 1;
    }
    if steps == 3 && keep < kept.len() && kept[keep] & 0xC0 == 0x80 {
        // Not UTF-8 after all: cut where the cap says.
        keep += 3;
    }
    scratch.clear();
    scratch.extend_from_slice(&kept[..keep]);
    scratch.extend_from_slice(terminator);
    scratch.truncate(max);
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod tests_support {
    pub(crate) use super::tests::test_flow;
}
