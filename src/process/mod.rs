//! The processor chain (`dataProcessingOptions`): one record in, at most one record out.
//!
//! Owns: the processors (one file each), record IDs in JSON records, and the record as
//! sent ([`RecordMaker`]: chain, key, truncation), which `run` and the `process`
//! subcommand ([`crate::cli`]) both use. The JSON they write is [`crate::json`]'s. Does not own: framing (see
//! `framing`), counting (the caller counts what [`Outcome`] tells), partition keys.
//!
//! # How a record flows: as in the Java agent
//!
//! The chain sees what the Java agent's processors see: the record's bytes followed by
//! its newline, and what it returns is the record as sent, terminator included. Each
//! processor does what the Java agent's does, in the same order:
//!
//! - `LOGTOJSON`, `CSVTOJSON`, `ADDMETADATA` remove one final `\n`, make a JSON object
//!   (written compact or pretty by that processor's `jsonFormat`) and add `\n`;
//! - `SINGLELINE` joins the lines (trailing empty lines dropped) and adds `\n`;
//! - `ADDBRACKETS` writes `{`, the record with its newline, `}` (no newline after);
//! - with no processor the record is sent as read, with its `\n`.
//!
//! A processor after a JSON processor reads that JSON's text, so `ADDMETADATA` puts it in
//! `data` as a string as the Java agent does (`nestObjects: true` nests the object). An
//! object stays a table of encoded fields until text is needed, so a chain that only
//! makes one object writes it once, straight into `out`.
//!
//! - `LOGTOJSON` on a line that does not match: the record is dropped
//!   ([`Outcome::Dropped`]); with `onParseError: keepRaw` it goes on through the rest of
//!   the chain unchanged, as text.
//! - `ADDEC2METADATA` adds its fields to JSON objects, including text records that are
//!   JSON objects; other records, and every record while the metadata is unknown, go on
//!   unchanged.
//! - Record IDs (`recordIdField`, off unless configured): a record that ends the chain as
//!   a JSON object gets the field (set in place when present, else appended last); text
//!   records are never changed.
//! - Any processor error: [`Outcome::Failed`], and `out` holds the original record with
//!   its newline, as the Java agent sends it.

mod add_ec2;
mod brackets;
mod csvtojson;
mod logtojson;
mod metadata;
mod record;
mod singleline;

use std::fmt;

pub use record::{Made, RecordMaker};

use crate::config::{FlowConfig, JsonFormat, OnParseError, ProcessorConfig};
use crate::ec2::Ec2Metadata;
use crate::event::RecordId;

use crate::json::{self, Direct, Obj};
use add_ec2::AddEc2;
use csvtojson::CsvToJson;
use logtojson::LogToJson;
use metadata::AddMetadata;
use singleline::SingleLine;

/// What the chain did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `out` holds the record to send.
    Emit,
    /// The record is dropped (LOGTOJSON non-matching line under `onParseError: drop`).
    Dropped,
    /// A processor failed: `out` holds the original line, to be sent and counted.
    Failed,
}

#[derive(Debug)]
enum Step {
    SingleLine(SingleLine),
    Csv(CsvToJson, JsonFormat),
    Log(LogToJson, JsonFormat),
    Meta(AddMetadata, JsonFormat),
    Brackets,
    Ec2(AddEc2),
}

/// Where the current record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cur {
    /// The input, followed by its newline when `ended`.
    Input,
    /// Text in `Bufs::a`, terminator included.
    A,
    /// Text in `Bufs::b`, terminator included.
    B,
    /// A JSON object in `Bufs::obj`, to be written in the given format and then `\n`.
    Obj(JsonFormat),
}

/// Scratch space reused from record to record.
#[derive(Debug, Default)]
struct Bufs {
    a: Vec<u8>,
    b: Vec<u8>,
    obj: Obj,
    tmp: Vec<u8>,
    stack: Vec<bool>,
}

/// A processor failed on a record.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error("CSVTOJSON: {0}")]
    Csv(#[from] csv::Error),
}

/// The processors of one flow, compiled once.
pub struct Chain {
    steps: Vec<Step>,
    on_parse_error: OnParseError,
    /// Encoded `recordIdField`.
    record_id_key: Option<Vec<u8>>,
    /// The chain is one LOGTOJSON with a pattern, compact JSON, and a record ID field (if
    /// any) that is not one of its fields: it writes its JSON straight into the output.
    direct: bool,
    bufs: Bufs,
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chain")
            .field("steps", &self.steps.len())
            .field("on_parse_error", &self.on_parse_error)
            .finish()
    }
}

impl Chain {
    /// Builds the chain of `flow`. `ADDEC2METADATA` reads the handle installed with
    /// [`Ec2Metadata::install_global`], if any (else it leaves records unchanged).
    pub fn new(flow: &FlowConfig) -> Self {
        Chain::with_ec2(flow, Ec2Metadata::global())
    }

    /// Builds the chain of `flow`, with `ec2` as the source of `ADDEC2METADATA`.
    pub fn with_ec2(flow: &FlowConfig, ec2: Option<Ec2Metadata>) -> Self {
        let mut steps = Vec::with_capacity(flow.processors.len());
        let format = |f: &Option<JsonFormat>| f.unwrap_or(flow.json_format);
        for p in &flow.processors {
            steps.push(match p {
                ProcessorConfig::SingleLine {
                    no_trim,
                    escape_new_line,
                } => Step::SingleLine(SingleLine {
                    no_trim: *no_trim,
                    escape_new_line: *escape_new_line,
                }),
                ProcessorConfig::CsvToJson {
                    field_names,
                    delimiter,
                    quoted,
                    json_format,
                } => match CsvToJson::new(field_names, delimiter, *quoted) {
                    Ok(step) => Step::Csv(step, format(json_format)),
                    Err(e) => {
                        tracing::error!(flow = %flow.id, error = %e, "CSVTOJSON delimiter does not compile; the processor is skipped");
                        continue;
                    }
                },
                ProcessorConfig::LogToJson {
                    format: log_format,
                    match_pattern,
                    custom_field_names,
                    lenient,
                    json_format,
                } => match LogToJson::new(
                    *log_format,
                    match_pattern.as_ref(),
                    custom_field_names.as_deref(),
                    *lenient,
                ) {
                    Ok(step) => Step::Log(step, format(json_format)),
                    Err(e) => {
                        // The configuration stage compiled the same pattern; only a
                        // size limit could differ. Say so and let lines through.
                        tracing::error!(flow = %flow.id, error = %e, "LOGTOJSON pattern does not compile; the processor is skipped");
                        continue;
                    }
                },
                ProcessorConfig::AddMetadata {
                    metadata,
                    timestamp,
                    nest_objects,
                    json_format,
                } => Step::Meta(
                    AddMetadata::new(metadata, *timestamp, *nest_objects),
                    format(json_format),
                ),
                ProcessorConfig::AddBrackets => Step::Brackets,
                // Decoded by the framer, before the chain sees the record.
                ProcessorConfig::Container(_) => continue,
                ProcessorConfig::AddEc2Metadata { .. } => Step::Ec2(AddEc2::new(ec2.clone())),
            });
        }
        let record_id_key = flow
            .record_id_field
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(json::encoded_key);
        let direct = match steps.as_slice() {
            [Step::Log(l, JsonFormat::Compact)] => {
                l.is_pattern()
                    && !l.has_duplicate_keys()
                    && !record_id_key.as_ref().is_some_and(|k| l.has_key(k))
            }
            _ => false,
        };
        Chain {
            steps,
            on_parse_error: flow.on_parse_error,
            record_id_key,
            direct,
            bufs: Bufs::default(),
        }
    }

    /// The same chain, always building its object first (tests compare both ways).
    #[cfg(test)]
    fn without_direct(mut self) -> Self {
        self.direct = false;
        self
    }

    /// True when the chain does nothing (records are sent as framed).
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Runs the chain over `record`, a framed record without its final newline, into
    /// `out` (cleared first): the record as it is sent, its terminator included.
    pub fn process(&mut self, record: &[u8], id: RecordId, out: &mut Vec<u8>) -> Outcome {
        self.process_data(record, true, id, out)
    }

    /// [`Chain::process`] for data as the Java agent's processors get it: `record`, then
    /// a newline when `ended` (false for data that ends without one, as in the Java
    /// agent's unit tests).
    pub fn process_data(
        &mut self,
        record: &[u8],
        ended: bool,
        id: RecordId,
        out: &mut Vec<u8>,
    ) -> Outcome {
        out.clear();
        if self.steps.is_empty() {
            out.extend_from_slice(record);
            if ended {
                out.push(b'\n');
            }
            return Outcome::Emit;
        }
        match self.run(record, ended, id, out) {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::debug!(error = %e, record = %id, "processing failed; the original record is sent");
                out.clear();
                out.extend_from_slice(record);
                if ended {
                    out.push(b'\n');
                }
                Outcome::Failed
            }
        }
    }

    fn run(
        &mut self,
        record: &[u8],
        ended: bool,
        id: RecordId,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, StepError> {
        if self.direct {
            return Ok(self.run_direct(record, ended, id, out));
        }
        let b = &mut self.bufs;
        let mut cur = Cur::Input;
        for step in &mut self.steps {
            // Processors that read text get the object's JSON and its newline; ADDMETADATA
            // may nest it, ADDEC2METADATA adds to it.
            if let Cur::Obj(format) = cur {
                let keeps_object = match step {
                    Step::Meta(m, _) => m.nests_objects(),
                    Step::Ec2(_) => true,
                    _ => false,
                };
                if !keeps_object {
                    b.a.clear();
                    write_obj(&b.obj, format, &mut b.a, &mut b.tmp, &mut b.stack);
                    b.a.push(b'\n');
                    cur = Cur::A;
                }
            }
            // The text with its terminator, and the same without one final `\n`. A text
            // buffer is taken out while a step reads it and put back after.
            let src = match cur {
                Cur::A => std::mem::take(&mut b.a),
                Cur::B => std::mem::take(&mut b.b),
                _ => Vec::new(),
            };
            let (full, has_nl): (&[u8], bool) = match cur {
                Cur::Input => (record, ended),
                Cur::A | Cur::B => (&src, false),
                Cur::Obj(_) => (&[], false),
            };
            let body = if has_nl {
                full
            } else {
                full.strip_suffix(b"\n").unwrap_or(full)
            };
            // Where a text step writes: the other buffer.
            let (dst, next) = if cur == Cur::A {
                (&mut b.b, Cur::B)
            } else {
                (&mut b.a, Cur::A)
            };
            let was = cur;
            // A step that ends the chain early: returned once the buffer is back.
            let mut early = None;
            match step {
                Step::SingleLine(s) => {
                    s.apply(body, dst);
                    dst.push(b'\n');
                    cur = next;
                }
                Step::Brackets => {
                    brackets::apply(full, dst);
                    if has_nl {
                        // The input's newline goes before the `}`.
                        dst.insert(dst.len() - 1, b'\n');
                    }
                    cur = next;
                }
                Step::Csv(c, format) => match c.apply(body, &mut b.obj) {
                    Ok(()) => cur = Cur::Obj(*format),
                    Err(e) => early = Some(Err(e.into())),
                },
                Step::Log(l, format) => {
                    if l.apply(body, &mut b.obj, &mut b.tmp) {
                        cur = Cur::Obj(*format);
                    } else if self.on_parse_error == OnParseError::Drop {
                        early = Some(Ok(Outcome::Dropped));
                    }
                }
                Step::Meta(m, format) => {
                    // With nestObjects, a text record that is a JSON object (from CRI's
                    // `output: json`, or written so by the application) nests too.
                    let object = matches!(cur, Cur::Obj(_))
                        || (m.nests_objects() && b.obj.parse_object(body, &mut b.tmp));
                    if object {
                        m.apply_obj(&mut b.obj, &mut b.tmp);
                    } else {
                        m.apply_text(body, &mut b.obj);
                    }
                    cur = Cur::Obj(*format);
                }
                Step::Ec2(e) => {
                    if let Some(fields) = e.fields() {
                        let parsed = match cur {
                            Cur::Obj(_) => true,
                            _ => b.obj.parse_object(body, &mut b.tmp),
                        };
                        if parsed {
                            for (k, v) in fields.iter() {
                                b.obj.set_encoded(k, v);
                            }
                            if !matches!(cur, Cur::Obj(_)) {
                                cur = Cur::Obj(JsonFormat::Compact);
                            }
                        }
                    }
                }
            }
            match was {
                Cur::A => b.a = src,
                Cur::B => b.b = src,
                _ => {}
            }
            if let Some(r) = early {
                return r;
            }
        }
        match cur {
            Cur::Input => {
                out.extend_from_slice(record);
                if ended {
                    out.push(b'\n');
                }
            }
            Cur::A => out.extend_from_slice(&b.a),
            Cur::B => out.extend_from_slice(&b.b),
            Cur::Obj(format) => {
                if let Some(key) = &self.record_id_key {
                    b.obj.set_with(key, |buf| write_id(buf, id));
                }
                write_obj(&b.obj, format, out, &mut b.tmp, &mut b.stack);
                out.push(b'\n');
            }
        }
        Ok(Outcome::Emit)
    }

    /// [`Chain::run`] for a `direct` chain: the same JSON, written as it is parsed.
    fn run_direct(
        &mut self,
        record: &[u8],
        ended: bool,
        id: RecordId,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let [Step::Log(log, _)] = self.steps.as_mut_slice() else {
            unreachable!("a direct chain is one LOGTOJSON");
        };
        let start = out.len();
        let body = if ended {
            record
        } else {
            record.strip_suffix(b"\n").unwrap_or(record)
        };
        let mut fields = Direct::new(out);
        if log.parse_into(body, &mut fields) {
            if let Some(key) = &self.record_id_key {
                fields.with(key, |buf| write_id(buf, id));
            }
            fields.finish();
            out.push(b'\n');
            return Outcome::Emit;
        }
        out.truncate(start);
        if self.on_parse_error == OnParseError::Drop {
            return Outcome::Dropped;
        }
        out.extend_from_slice(record);
        if ended {
            out.push(b'\n');
        }
        Outcome::Emit
    }
}

/// Writes `obj` as JSON in `format`; `tmp` and `stack` are scratch space.
fn write_obj(
    obj: &Obj,
    format: JsonFormat,
    out: &mut Vec<u8>,
    tmp: &mut Vec<u8>,
    stack: &mut Vec<bool>,
) {
    match format {
        JsonFormat::Compact => obj.write_compact(out),
        JsonFormat::PrettyPrint => {
            tmp.clear();
            obj.write_compact(tmp);
            json::write_pretty(tmp, out, stack);
        }
    }
}

/// Writes `id` as a JSON string (the value of `recordIdField`).
fn write_id(buf: &mut Vec<u8>, id: RecordId) {
    buf.push(b'"');
    id.write_to(buf);
    buf.push(b'"');
}

#[cfg(test)]
mod tests;
