//! The record as sent: a framed record through the chain, its partition key, and the
//! Java agent's truncation rule. `run` (the batcher) and `process` both make records
//! here, so that `process` prints exactly the bytes `run` sends.

use super::{Chain, Outcome};
use crate::config::{
    Destination, FlowConfig, PartitionKeyOption, FIREHOSE_MAX_BYTES_PER_CALL,
    KINESIS_MAX_BYTES_PER_CALL,
};
use crate::event::RecordId;
use crate::framing::Frame;
use crate::partition::{self, Keyer};

/// What [`RecordMaker::make`] made of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    /// The chain dropped it.
    Dropped,
    /// `out` holds the record, `keybuf` its key (empty: the sink makes a random one).
    Record {
        /// The record was cut to the destination's limit.
        truncated: bool,
        /// A processor failed; the record is the original line.
        failed: bool,
    },
}

/// Makes the records of one flow.
#[derive(Debug)]
pub struct RecordMaker {
    chain: Chain,
    keyer: Keyer,
    /// The last record made.
    pub out: Vec<u8>,
    /// Its partition key (DETERMINISTIC: [`partition::DIGEST_KEY_LEN`] placeholder bytes,
    /// written later for a whole batch at once).
    pub keybuf: Vec<u8>,
    scratch: Vec<u8>,
    terminator: Vec<u8>,
    max_record_bytes: usize,
    /// Kinesis flows: keys count against the record limit.
    keyed: bool,
    framer_cap: usize,
}

impl RecordMaker {
    /// `max_record_bytes` is the destination's limit for a record with its key.
    pub fn new(flow: &FlowConfig, chain: Chain, max_record_bytes: usize) -> Self {
        let keyed = matches!(flow.destination, Destination::KinesisStream(_));
        // Without processors a line longer than the limit is cut while it is read, with
        // room for a key of known length (the record is cut again when a key of
        // variable length needs more). Processors see the whole line, as in the Java
        // agent, up to the size of its read buffer (5 MiB, 4 MiB for Firehose), and
        // their output is cut.
        let framer_cap = if chain.is_empty() {
            let key = if keyed {
                match &flow.partition_key {
                    PartitionKeyOption::Random => partition::RANDOM_KEY_LEN,
                    PartitionKeyOption::Deterministic => partition::DIGEST_KEY_LEN,
                    PartitionKeyOption::Constant(k) => {
                        let mut v = Vec::new();
                        partition::push_key(k.as_bytes(), &mut v);
                        v.len()
                    }
                    PartitionKeyOption::JsonField(_) | PartitionKeyOption::Regex(_) => 0,
                }
            } else {
                0
            };
            max_record_bytes.saturating_sub(key)
        } else {
            let buffer = match flow.destination {
                Destination::DeliveryStream(_) => FIREHOSE_MAX_BYTES_PER_CALL,
                _ => KINESIS_MAX_BYTES_PER_CALL,
            };
            buffer.max(max_record_bytes)
        };
        RecordMaker {
            chain,
            keyer: Keyer::new(flow.partition_key.clone()),
            out: Vec::new(),
            keybuf: Vec::new(),
            scratch: Vec::new(),
            terminator: flow.truncated_record_terminator.clone(),
            max_record_bytes,
            keyed,
            framer_cap,
        }
    }

    /// The longest record the framer should hand over.
    pub fn framer_cap(&self) -> usize {
        self.framer_cap
    }

    /// True when the flow's keys are DETERMINISTIC (see [`RecordMaker::keybuf`]).
    pub fn digest_keys(&self) -> bool {
        self.keyer.is_digest()
    }

    /// Makes the record of `frame` into `out` and its key into `keybuf`.
    pub fn make(&mut self, frame: &Frame<'_>, id: RecordId) -> Made {
        let mut truncated = frame.truncated;
        let mut failed = false;
        // The chain's output, or the line with its newline (a line the framer cut
        // already ends with the terminator).
        if self.chain.is_empty() {
            self.out.clear();
            self.out.extend_from_slice(frame.bytes);
            if frame.newline {
                self.out.push(b'\n');
            }
        } else {
            match self.chain.process(frame.bytes, id, &mut self.out) {
                Outcome::Emit => {}
                Outcome::Dropped => return Made::Dropped,
                Outcome::Failed => failed = true,
            }
        }
        self.keybuf.clear();
        let mut key_len = 0;
        if self.keyed {
            if self.keyer.is_digest() {
                self.keybuf.resize(partition::DIGEST_KEY_LEN, b'0');
            } else {
                // Keys are made from the record as sent (DETERMINISTIC: the MD5 of its
                // bytes, terminator included, as the Java agent hashes its records).
                self.keyer.key_for(frame.bytes, &self.out, &mut self.keybuf);
            }
            key_len = if self.keybuf.is_empty() {
                partition::RANDOM_KEY_LEN
            } else {
                self.keybuf.len()
            };
        }
        // The Java agent's rule: a record whose data and key exceed the limit keeps its
        // first bytes and ends with the terminator, within the limit with its key (cut on
        // a character boundary, where the Java agent may split a character).
        if self.out.len() + key_len > self.max_record_bytes {
            crate::framing::truncate_into(
                &mut self.scratch,
                &self.out,
                &self.terminator,
                self.max_record_bytes.saturating_sub(key_len),
            );
            std::mem::swap(&mut self.out, &mut self.scratch);
            truncated = true;
        }
        Made::Record { truncated, failed }
    }
}
