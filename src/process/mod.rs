//! The processor chain (`dataProcessingOptions`): one record in, at most one record out.
//!
//! Owns: the processors (one file each), the JSON they write, record IDs in JSON records,
//! and the `process` subcommand's loop ([`run_process`]). Does not own: framing (see
//! `framing`), counting (the caller counts what [`Outcome`] tells), partition keys.
//!
//! # How a record flows
//!
//! A record is text (bytes) until a processor makes it a JSON object (`CSVTOJSON`,
//! `LOGTOJSON`, `ADDMETADATA`). An object stays a table of encoded fields until the end
//! of the chain, where the record ID field is set and it is written once, compact or
//! pretty (`jsonFormat`). A text processor after an object sees its compact JSON text
//! (the Java agent's processors also pass text to each other).
//!
//! - `LOGTOJSON` on a line that does not match: the record is dropped
//!   ([`Outcome::Dropped`]); with `onParseError: keepRaw` it goes on through the rest of
//!   the chain unchanged, as text.
//! - `ADDEC2METADATA` adds its fields to JSON objects, including text records that are
//!   JSON objects; other records, and every record while the metadata is unknown, go on
//!   unchanged.
//! - Record IDs: a record that ends the chain as a JSON object gets the `recordIdField`
//!   (set in place when present, else appended last); text records are never changed.
//! - Any processor error: [`Outcome::Failed`], and `out` holds the original record.
//!
//! Everything is compiled in [`Chain::new`]; processing a record reuses the chain's
//! buffers and writes JSON straight into `out`.

mod add_ec2;
mod cli;
mod csvtojson;
pub(crate) mod json;
mod logtojson;
pub(crate) mod metadata;
mod singleline;

use std::fmt;

pub use cli::{run_process, run_process_with};
pub(crate) use json::write_valid_str;
pub use logtojson::default_fields;

use crate::config::{FlowConfig, JsonFormat, OnParseError, ProcessorConfig};
use crate::ec2::Ec2Metadata;
use crate::event::RecordId;

use add_ec2::AddEc2;
use csvtojson::CsvToJson;
use json::{Direct, Obj};
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
    Csv(CsvToJson),
    Log(LogToJson),
    Meta(AddMetadata),
    Ec2(AddEc2),
}

/// Where the current record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cur {
    /// The input, unchanged.
    Input,
    /// Text in `Bufs::a`.
    A,
    /// Text in `Bufs::b`.
    B,
    /// A JSON object in `Bufs::obj`.
    Obj,
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
    json_format: JsonFormat,
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
            .field("json_format", &self.json_format)
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
                } => Step::Csv(CsvToJson::new(field_names, *delimiter)),
                ProcessorConfig::LogToJson {
                    format,
                    match_pattern,
                    custom_field_names,
                } => match LogToJson::new(
                    *format,
                    match_pattern.as_ref(),
                    custom_field_names.as_deref(),
                ) {
                    Ok(step) => Step::Log(step),
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
                } => Step::Meta(AddMetadata::new(metadata, *timestamp)),
                ProcessorConfig::AddEc2Metadata { .. } => Step::Ec2(AddEc2::new(ec2.clone())),
            });
        }
        let record_id_key = flow
            .record_id_field
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(json::encoded_key);
        let direct = match steps.as_slice() {
            [Step::Log(l)] => {
                l.is_pattern()
                    && flow.json_format == JsonFormat::Compact
                    && !record_id_key.as_ref().is_some_and(|k| l.has_key(k))
            }
            _ => false,
        };
        Chain {
            steps,
            json_format: flow.json_format,
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

    /// Runs the chain over `record` into `out` (cleared first).
    pub fn process(&mut self, record: &[u8], id: RecordId, out: &mut Vec<u8>) -> Outcome {
        out.clear();
        if self.steps.is_empty() {
            out.extend_from_slice(record);
            return Outcome::Emit;
        }
        match self.run(record, id, out) {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::debug!(error = %e, record = %id, "processing failed; the original record is sent");
                out.clear();
                out.extend_from_slice(record);
                Outcome::Failed
            }
        }
    }

    fn run(
        &mut self,
        record: &[u8],
        id: RecordId,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, StepError> {
        if self.direct {
            return Ok(self.run_direct(record, id, out));
        }
        let b = &mut self.bufs;
        let mut cur = Cur::Input;
        for step in &mut self.steps {
            // Processors that read text get the object's compact JSON.
            if cur == Cur::Obj && !matches!(step, Step::Meta(_) | Step::Ec2(_)) {
                b.a.clear();
                b.obj.write_compact(&mut b.a);
                cur = Cur::A;
            }
            let text: &[u8] = match cur {
                Cur::Input => record,
                Cur::A => &b.a,
                Cur::B => &b.b,
                Cur::Obj => &[],
            };
            match step {
                Step::SingleLine(s) => match cur {
                    Cur::A => {
                        s.apply(&b.a, &mut b.b);
                        cur = Cur::B;
                    }
                    Cur::B => {
                        s.apply(&b.b, &mut b.a);
                        cur = Cur::A;
                    }
                    _ => {
                        s.apply(record, &mut b.a);
                        cur = Cur::A;
                    }
                },
                Step::Csv(c) => {
                    c.apply(text, &mut b.obj)?;
                    cur = Cur::Obj;
                }
                Step::Log(l) => {
                    if l.apply(text, &mut b.obj, &mut b.tmp) {
                        cur = Cur::Obj;
                    } else if self.on_parse_error == OnParseError::Drop {
                        return Ok(Outcome::Dropped);
                    }
                }
                Step::Meta(m) => {
                    if cur == Cur::Obj {
                        m.apply_obj(&mut b.obj, &mut b.tmp);
                    } else {
                        m.apply_text(text, &mut b.obj);
                        cur = Cur::Obj;
                    }
                }
                Step::Ec2(e) => {
                    if let Some(fields) = e.fields() {
                        if cur == Cur::Obj || b.obj.parse_object(text, &mut b.tmp) {
                            for (k, v) in fields.iter() {
                                b.obj.set_encoded(k, v);
                            }
                            cur = Cur::Obj;
                        }
                    }
                }
            }
        }
        match cur {
            Cur::Input => out.extend_from_slice(record),
            Cur::A => out.extend_from_slice(&b.a),
            Cur::B => out.extend_from_slice(&b.b),
            Cur::Obj => {
                if let Some(key) = &self.record_id_key {
                    b.obj.set_with(key, |buf| write_id(buf, id));
                }
                match self.json_format {
                    JsonFormat::Compact => b.obj.write_compact(out),
                    JsonFormat::PrettyPrint => {
                        b.tmp.clear();
                        b.obj.write_compact(&mut b.tmp);
                        json::write_pretty(&b.tmp, out, &mut b.stack);
                    }
                }
            }
        }
        Ok(Outcome::Emit)
    }

    /// [`Chain::run`] for a `direct` chain: the same JSON, written as it is parsed.
    fn run_direct(&mut self, record: &[u8], id: RecordId, out: &mut Vec<u8>) -> Outcome {
        let [Step::Log(log)] = self.steps.as_mut_slice() else {
            unreachable!("a direct chain is one LOGTOJSON");
        };
        let start = out.len();
        let mut fields = Direct::new(out);
        if log.parse_into(record, &mut fields) {
            if let Some(key) = &self.record_id_key {
                fields.with(key, |buf| write_id(buf, id));
            }
            fields.finish();
            return Outcome::Emit;
        }
        out.truncate(start);
        if self.on_parse_error == OnParseError::Drop {
            return Outcome::Dropped;
        }
        out.extend_from_slice(record);
        Outcome::Emit
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
