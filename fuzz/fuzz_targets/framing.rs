//! The framer on any bytes, under a configuration chosen by the first two bytes, fed in
//! chunks whose sizes come from the third: no panic, records within the size limit and in
//! file order, and the same records whatever the chunking.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use kinesis_tail::config::FlowConfig;
use kinesis_tail::framing::{FrameEvent, Framer};
use libfuzzer_sys::fuzz_target;
use regex::bytes::Regex;

#[derive(Debug, PartialEq)]
enum Ev {
    Rec(Vec<u8>, u64, u64, bool),
    Skipped,
}

fn frames(flow: &FlowConfig, max: usize, chunks: &[&[u8]], partial: bool) -> Vec<Ev> {
    let mut f = Framer::new(flow, 0, max);
    let mut ev = Vec::new();
    let mut fed = 0u64;
    let mut last_end = 0u64;
    let mut out = |e: FrameEvent<'_>| match e {
        FrameEvent::Record(r) => ev.push(Ev::Rec(r.bytes.to_vec(), r.offset, r.end, r.truncated)),
        FrameEvent::Skipped => ev.push(Ev::Skipped),
    };
    for c in chunks {
        f.push(c, &mut out);
        fed += c.len() as u64;
        assert!(f.committed() <= fed);
    }
    f.flush(partial, &mut out);
    for e in &ev {
        if let Ev::Rec(bytes, offset, end, _) = e {
            assert!(bytes.len() <= max.max(1), "{} > {max}", bytes.len());
            assert!(*offset >= last_end && offset < end && *end <= fed);
            last_end = *end;
        }
    }
    ev
}

/// `multiLineStartPattern` choices, then the `fileFooterPattern`.
fn patterns() -> &'static [Regex; 4] {
    static PATTERNS: OnceLock<[Regex; 4]> = OnceLock::new();
    PATTERNS.get_or_init(|| [r"\d{4}-", r"\S", "(?s).", "END|\x00"].map(|p| Regex::new(p).unwrap()))
}

fuzz_target!(|data: &[u8]| {
    let [a, b, c, input @ ..] = data else {
        return;
    };
    let mut flow = common::base_flow().clone();
    let [multi_digits, multi_nonblank, multi_any, footer] = patterns();
    flow.skip_header_lines = usize::from(a & 3);
    flow.multi_line_start_pattern = match (a >> 2) & 3 {
        0 => None,
        1 => Some(multi_digits.clone()),
        2 => Some(multi_nonblank.clone()),
        _ => Some(multi_any.clone()),
    };
    flow.file_footer_pattern = ((a >> 4) & 1 == 1).then(|| footer.clone());
    flow.truncated_record_terminator = match (a >> 5) & 3 {
        0 => b"\n".to_vec(),
        1 => Vec::new(),
        2 => "…".as_bytes().to_vec(),
        _ => b"[truncated]".to_vec(),
    };
    let partial = a >> 7 == 1;
    let max = match b >> 6 {
        0 => usize::from(b & 0x3f),
        1 => usize::from(b & 0x3f) * 16,
        2 => 4096,
        _ => 1 << 20,
    };
    let whole = frames(&flow, max, &[input], partial);
    let mut chunks = Vec::new();
    let mut rest = input;
    let mut step = usize::from(*c) + 1;
    while !rest.is_empty() {
        let n = (step % 37).min(rest.len());
        chunks.push(&rest[..n]);
        rest = &rest[n..];
        step = step.wrapping_mul(31).wrapping_add(7);
    }
    let chunked = frames(&flow, max, &chunks, partial);
    assert_eq!(whole, chunked);
});
