//! Unit and property tests of the framer.

use super::*;
use crate::config::{Destination, FlowConfig, InitialPosition, OutputTarget};
use proptest::prelude::*;

/// A flow with every option at its default (local sink to stdout).
pub(crate) fn test_flow() -> FlowConfig {
    FlowConfig {
        initial_position: InitialPosition::StartOfFile,
        ..FlowConfig::with_defaults("/tmp/*.log", Destination::OutputFile(OutputTarget::Stdout))
    }
}

/// What the framer emitted, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Rec(Vec<u8>, u64, u64, bool),
    Skip,
}

fn collect(events: &mut Vec<Ev>) -> impl FnMut(FrameEvent<'_>) + '_ {
    move |e| match e {
        FrameEvent::Record(f) => {
            events.push(Ev::Rec(f.bytes.to_vec(), f.offset, f.end, f.truncated))
        }
        FrameEvent::Skipped => events.push(Ev::Skip),
    }
}

fn run(flow: &FlowConfig, max: usize, chunks: &[&[u8]], flush_partial: bool) -> Vec<Ev> {
    let mut f = Framer::new(flow, 0, max);
    let mut ev = Vec::new();
    for c in chunks {
        f.push(c, &mut collect(&mut ev));
    }
    f.flush(flush_partial, &mut collect(&mut ev));
    ev
}

fn rec(b: &str, off: u64, end: u64) -> Ev {
    Ev::Rec(b.as_bytes().to_vec(), off, end, false)
}

#[test]
fn lines_and_partial_line() {
    let flow = test_flow();
    let mut f = Framer::new(&flow, 0, 1000);
    let mut ev = Vec::new();
    f.push(b"ab\ncd\r\nef", &mut collect(&mut ev));
    assert_eq!(ev, vec![rec("ab", 0, 3), rec("cd\r", 3, 7)]);
    assert_eq!(f.committed(), 7);
    ev.clear();
    f.push(b"g", &mut collect(&mut ev));
    assert!(ev.is_empty());
    f.flush(false, &mut collect(&mut ev));
    assert!(ev.is_empty(), "a partial line waits for its newline");
    f.push(b"h\n\n", &mut collect(&mut ev));
    assert_eq!(ev, vec![rec("efgh", 7, 12), rec("", 12, 13)]);
    assert_eq!(f.committed(), 13);
}

#[test]
fn flush_emits_partial_line_when_asked() {
    let flow = test_flow();
    assert_eq!(
        run(&flow, 100, &[b"a\nlast"], true),
        vec![rec("a", 0, 2), rec("last", 2, 6)]
    );
    assert_eq!(run(&flow, 100, &[b"a\nlast"], false), vec![rec("a", 0, 2)]);
}

#[test]
fn starts_at_an_offset_and_skips_headers_only_from_zero() {
    let mut flow = test_flow();
    flow.skip_header_lines = 2;
    assert_eq!(
        run(&flow, 100, &[b"h1\nh2\nx\n"], false),
        vec![Ev::Skip, Ev::Skip, rec("x", 6, 8)]
    );
    let mut f = Framer::new(&flow, 100, 100);
    let mut ev = Vec::new();
    f.push(b"x\n", &mut collect(&mut ev));
    assert_eq!(ev, vec![rec("x", 100, 102)]);
}

#[test]
fn footer_lines_are_skipped() {
    let mut flow = test_flow();
    flow.file_footer_pattern = Some(Regex::new("^-- END --$").unwrap());
    assert_eq!(
        run(&flow, 100, &[b"a\n-- END --\nb\n"], false),
        vec![rec("a", 0, 2), Ev::Skip, rec("b", 12, 14)]
    );
}

#[test]
fn multi_line_records() {
    let mut flow = test_flow();
    flow.multi_line_start_pattern = Some(Regex::new(r"\d{4}-").unwrap());
    let input = b"pre1\npre2\n2024-01 a\n  at x\n  at y\n2024-02 b\n2024-03 c\n  tail\n";
    let ev = run(&flow, 1000, &[input], false);
    assert_eq!(
        ev,
        vec![
            rec("pre1\npre2", 0, 10),
            rec("2024-01 a\n  at x\n  at y", 10, 34),
            rec("2024-02 b", 34, 44),
            rec("2024-03 c\n  tail", 44, 61),
        ]
    );
}

#[test]
fn multi_line_pattern_must_match_at_line_start() {
    let mut flow = test_flow();
    flow.multi_line_start_pattern = Some(Regex::new(r"START").unwrap());
    let ev = run(&flow, 1000, &[b"START a\n x START\nSTART b\n"], false);
    assert_eq!(
        ev,
        vec![rec("START a\n x START", 0, 17), rec("START b", 17, 25)]
    );
}

#[test]
fn multi_line_committed_and_pending_since() {
    let mut flow = test_flow();
    flow.multi_line_start_pattern = Some(Regex::new(r"S").unwrap());
    let mut f = Framer::new(&flow, 0, 1000);
    let mut ev = Vec::new();
    f.push(b"S1\n c\nS2\n c", &mut collect(&mut ev));
    assert_eq!(ev, vec![rec("S1\n c", 0, 6)]);
    assert_eq!(f.committed(), 6);
    assert!(f.pending_since().is_some());
    ev.clear();
    f.flush(false, &mut collect(&mut ev));
    assert_eq!(ev, vec![rec("S2", 6, 9)]);
    assert_eq!(f.committed(), 9);
    assert!(f.pending_since().is_none());
    ev.clear();
    f.push(b"\n", &mut collect(&mut ev));
    f.flush(false, &mut collect(&mut ev));
    assert_eq!(ev, vec![rec(" c", 9, 12)]);
}

/// A stack trace written slowly stays one record: the silence that ends it is counted
/// from its last line, not its first.
#[test]
fn multi_line_silence_counts_from_the_last_line() {
    let mut flow = test_flow();
    flow.multi_line_start_pattern = Some(Regex::new(r"S").unwrap());
    let mut f = Framer::new(&flow, 0, 1000);
    let mut ev = Vec::new();
    f.push(
        b"S1
",
        &mut collect(&mut ev),
    );
    let first = f.pending_since().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    f.push(b" at a\n", &mut collect(&mut ev));
    let after = f.pending_since().unwrap();
    assert!(after > first, "the continuation line restarted the silence");
    assert!(ev.is_empty());
}

/// One long line must not leave the framer's buffers at its size.
#[test]
fn buffers_shrink_back_after_a_long_line() {
    let flow = test_flow();
    let mut f = Framer::new(&flow, 0, 4 * 1024 * 1024);
    let mut ev = Vec::new();
    let long = vec![b'x'; 2 * 1024 * 1024];
    // In pieces, so that the line is assembled in the partial-line buffer.
    for c in long.chunks(100_000) {
        f.push(c, &mut collect(&mut ev));
    }
    f.push(b"\nshort\n", &mut collect(&mut ev));
    assert_eq!(ev.len(), 2);
    assert!(
        f.capacity() <= 3 * KEEP_CAPACITY,
        "{} bytes of capacity kept",
        f.capacity()
    );
}

#[test]
fn footer_ends_multi_line_record() {
    let mut flow = test_flow();
    flow.multi_line_start_pattern = Some(Regex::new(r"S").unwrap());
    flow.file_footer_pattern = Some(Regex::new(r"^EOF$").unwrap());
    let ev = run(&flow, 1000, &[b"S1\n c\nEOF\n"], false);
    assert_eq!(ev, vec![rec("S1\n c", 0, 6), Ev::Skip]);
}

#[test]
fn long_lines_are_truncated_with_the_terminator() {
    let mut flow = test_flow();
    flow.truncated_record_terminator = b"...".to_vec();
    let ev = run(&flow, 8, &[b"0123456789abc\nshort\n"], false);
    assert_eq!(
        ev,
        vec![
            Ev::Rec(b"01234...".to_vec(), 0, 14, true),
            rec("short", 14, 20)
        ]
    );
    // Same when the long line arrives in pieces.
    let ev2 = run(&flow, 8, &[b"0123", b"456789", b"abc\nsh", b"ort\n"], false);
    assert_eq!(ev, ev2);
}

#[test]
fn truncation_does_not_split_a_character() {
    let mut flow = test_flow();
    flow.truncated_record_terminator = b"~".to_vec();
    // "aé" is 3 bytes; a cap of 3 keeps 2 bytes, which would split é.
    let ev = run(&flow, 3, &["aéb\n".as_bytes()], false);
    assert_eq!(ev, vec![Ev::Rec(b"a~".to_vec(), 0, 5, true)]);
}

#[test]
fn a_huge_line_is_not_buffered_whole() {
    let flow = test_flow();
    let mut f = Framer::new(&flow, 0, 1024);
    let chunk = vec![b'x'; 1 << 20];
    let mut ev = Vec::new();
    for _ in 0..50 {
        f.push(&chunk, &mut collect(&mut ev));
    }
    assert!(
        f.partial.capacity() < 1 << 16,
        "partial buffer stays near the cap"
    );
    f.push(b"\nnext\n", &mut collect(&mut ev));
    assert_eq!(ev.len(), 2);
    match &ev[0] {
        Ev::Rec(b, 0, end, true) => {
            assert_eq!(b.len(), 1024);
            assert_eq!(*end, 50 * (1 << 20) + 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ev[1], rec("next", 50 * (1 << 20) + 1, 50 * (1 << 20) + 6));
}

/// Reference framing of a whole input at once: lines, headers, footers `F...`, multi-line
/// start lines `S...`, truncation.
fn reference(
    input: &[u8],
    skip: usize,
    multi: bool,
    footer: bool,
    max: usize,
    term: &[u8],
    partial: bool,
) -> Vec<Ev> {
    let mut lines: Vec<(u64, u64, &[u8])> = Vec::new();
    let mut start = 0usize;
    for (i, b) in input.iter().enumerate() {
        if *b == b'\n' {
            lines.push((start as u64, i as u64 + 1, &input[start..i]));
            start = i + 1;
        }
    }
    if partial && start < input.len() {
        lines.push((start as u64, input.len() as u64, &input[start..]));
    }
    let mut ev = Vec::new();
    let mut pend: Option<(u64, u64)> = None;
    let cut = |s: u64, e: u64, has_nl: bool| -> Ev {
        let body_end = if has_nl { e - 1 } else { e } as usize;
        let body = &input[s as usize..body_end];
        if body.len() <= max {
            Ev::Rec(body.to_vec(), s, e, false)
        } else {
            let mut out = Vec::new();
            truncate_into(&mut out, &body[..body.len().min(max + 1)], term, max);
            Ev::Rec(out, s, e, true)
        }
    };
    let has_nl = |e: u64| e > 0 && input[e as usize - 1] == b'\n';
    for (n, (s, e, l)) in lines.iter().copied().enumerate() {
        if n < skip {
            ev.push(Ev::Skip);
            continue;
        }
        let kept = &l[..l.len().min(max + 1)];
        if footer && super::java_trim(kept).first() == Some(&b'F') {
            if let Some((ps, pe)) = pend.take() {
                ev.push(cut(ps, pe, has_nl(pe)));
            }
            ev.push(Ev::Skip);
            continue;
        }
        if !multi {
            ev.push(cut(s, e, has_nl(e)));
            continue;
        }
        match pend {
            Some((ps, _)) if kept.first() != Some(&b'S') => pend = Some((ps, e)),
            _ => {
                if let Some((ps, pe)) = pend.take() {
                    ev.push(cut(ps, pe, has_nl(pe)));
                }
                pend = Some((s, e));
            }
        }
    }
    if let Some((ps, pe)) = pend.take() {
        ev.push(cut(ps, pe, has_nl(pe)));
    }
    ev
}

fn input_strategy() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            4 => Just(b'a'),
            2 => Just(b'\n'),
            1 => Just(b'S'),
            1 => Just(b'F'),
            1 => Just(0xC3u8),
            1 => Just(0xA9u8),
            1 => Just(b'\r'),
        ],
        0..300,
    )
}

proptest! {
    #![proptest_config(crate::test_util::proptest_cases(400))]

    #[test]
    fn any_chunking_gives_the_reference_records(
        input in input_strategy(),
        cuts in proptest::collection::vec(0usize..300, 0..12),
        skip in 0usize..3,
        multi: bool,
        footer: bool,
        partial: bool,
        max in 1usize..40,
        term in prop_oneof![Just(b"\n".to_vec()), Just(b"...".to_vec()), Just(Vec::new())],
    ) {
        let mut flow = test_flow();
        flow.skip_header_lines = skip;
        flow.truncated_record_terminator = term.clone();
        if multi {
            flow.multi_line_start_pattern = Some(Regex::new("S").unwrap());
        }
        if footer {
            flow.file_footer_pattern = Some(Regex::new("^F").unwrap());
        }
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
        cuts.sort_unstable();
        let mut chunks: Vec<&[u8]> = Vec::new();
        let mut prev = 0;
        for c in cuts.into_iter().chain(std::iter::once(input.len())) {
            chunks.push(&input[prev..c]);
            prev = c;
        }

        let mut f = Framer::new(&flow, 0, max);
        let mut ev = Vec::new();
        let mut last_committed = 0;
        let mut fed = 0u64;
        for c in &chunks {
            f.push(c, &mut collect(&mut ev));
            fed += c.len() as u64;
            let committed = f.committed();
            prop_assert!(committed >= last_committed, "committed() is monotone");
            prop_assert!(committed <= fed);
            // Never beyond the first byte of a record not emitted yet: every record
            // emitted so far ends at or before it, and anything after it is not emitted.
            for e in &ev {
                if let Ev::Rec(_, _, end, _) = e {
                    prop_assert!(*end <= committed);
                }
            }
            last_committed = committed;
        }
        f.flush(partial, &mut collect(&mut ev));
        prop_assert!(f.committed() >= last_committed);
        let want = reference(&input, skip, multi, footer, max, &term, partial);
        prop_assert_eq!(&ev, &want);
        for e in &ev {
            if let Ev::Rec(b, _, _, _) = e {
                prop_assert!(b.len() <= max, "truncation never exceeds the cap");
            }
        }
        if partial {
            prop_assert_eq!(f.committed(), input.len() as u64);
        }
    }
}

fn cri_flow(output: crate::config::ContainerOutput) -> FlowConfig {
    let mut flow = test_flow();
    flow.processors = vec![crate::config::ProcessorConfig::Container(
        crate::config::ContainerLog {
            format: crate::config::ContainerFormat::Auto,
            output,
            kubernetes: true,
        },
    )];
    flow
}

const T: &str = "2026-12-02T10:00:00.000000001Z";

#[test]
fn cri_lines_decode_and_split_lines_join() {
    use crate::config::ContainerOutput;
    let flow = cri_flow(ContainerOutput::Message);
    let input = format!(
        "{T} stdout F one\n{T} stdout P tw\n{T} stdout P o \n{T} stdout F end\n{T} stderr F three\n"
    );
    let l = T.len() as u64 + 11; // bytes of the prefix and newline around each message
    let ev = run(&flow, 1000, &[input.as_bytes()], false);
    let one = l + 3;
    let two = 3 * l + 2 + 2 + 3;
    assert_eq!(
        ev,
        vec![
            rec("one", 0, one),
            rec("two end", one, one + two),
            rec("three", one + two, input.len() as u64)
        ]
    );
    // Fed one byte at a time: the same records, and the committed offset never passes a
    // split line that has not ended.
    let mut f = Framer::new(&flow, 0, 1000);
    let mut ev2 = Vec::new();
    for (i, b) in input.as_bytes().iter().enumerate() {
        f.push(std::slice::from_ref(b), &mut collect(&mut ev2));
        let pos = i as u64 + 1;
        if pos > one && pos < one + two {
            assert!(f.committed() <= one, "committed {} at {pos}", f.committed());
        }
    }
    assert_eq!(ev2, ev);
    assert_eq!(f.committed(), input.len() as u64);
}

#[test]
fn docker_lines_decode_and_split_lines_join() {
    let flow = cri_flow(crate::config::ContainerOutput::Message);
    let input = concat!(
        r#"{"log":"a \"q\"\n","stream":"stdout","time":"t1"}"#,
        "\n",
        r#"{"log":"16k part ","stream":"stdout","time":"t2"}"#,
        "\n",
        r#"{"log":"rest\n","stream":"stdout","time":"t3"}"#,
        "\n",
        // Both formats in one file (auto): a runtime change on the node.
        "t4 stdout F cri\n",
    );
    let ev = run(&flow, 1000, &[input.as_bytes()], false);
    let recs: Vec<String> = ev
        .iter()
        .map(|e| match e {
            Ev::Rec(b, ..) => String::from_utf8(b.clone()).unwrap(),
            Ev::Skip => "skip".into(),
        })
        .collect();
    assert_eq!(recs, ["a \"q\"", "16k part rest", "cri"]);
}

#[test]
fn split_line_without_end_is_flushed_and_long_ones_are_cut() {
    let flow = cri_flow(crate::config::ContainerOutput::Message);
    // The container died after a partial line: the timer's flush sends what came.
    let mut f = Framer::new(&flow, 0, 1000);
    let mut ev = Vec::new();
    f.push(
        format!("{T} stdout P half\n").as_bytes(),
        &mut collect(&mut ev),
    );
    assert!(ev.is_empty());
    assert!(f.pending_since().is_some());
    assert_eq!(f.committed(), 0);
    f.flush(false, &mut collect(&mut ev));
    let len = T.len() as u64 + 15;
    assert_eq!(ev, vec![rec("half", 0, len)]);
    assert_eq!(f.committed(), len);
    assert!(f.pending_since().is_none());

    // 50 parts of 100 bytes under a 1,000-byte limit: one record, cut with the
    // terminator, and the framer keeps no more than the limit.
    let mut flow = flow;
    flow.truncated_record_terminator = b"~".to_vec();
    let part = "x".repeat(100);
    let mut input = String::new();
    for _ in 0..49 {
        input.push_str(&format!("{T} stdout P {part}\n"));
    }
    input.push_str(&format!("{T} stdout F {part}\n{T} stdout F next\n"));
    let mut f = Framer::new(&flow, 0, 1000);
    let mut ev = Vec::new();
    f.push(input.as_bytes(), &mut collect(&mut ev));
    assert_eq!(ev.len(), 2);
    let Ev::Rec(b, 0, _, true) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(b.len(), 1000);
    assert!(b.ends_with(b"x~"));
    assert!(f.capacity() < 16 * 1024);
    let next = T.len() as u64 + 15;
    assert_eq!(
        ev[1],
        rec("next", input.len() as u64 - next, input.len() as u64)
    );
}

#[test]
fn cri_lines_group_into_multi_line_records_and_meet_footers() {
    let mut flow = cri_flow(crate::config::ContainerOutput::Message);
    flow.multi_line_start_pattern = Some(Regex::new(r"\d{4}-").unwrap());
    flow.file_footer_pattern = Some(Regex::new("^END$").unwrap());
    let input = format!(
        "{T} stdout F 2026-12-02 boom\n{T} stdout F \tat a.B\n{T} stdout P \tat c\n{T} stdout F .D\n{T} stdout F END\n"
    );
    let ev = run(&flow, 1000, &[input.as_bytes()], false);
    assert_eq!(ev.len(), 2, "{ev:?}");
    let Ev::Rec(b, 0, ..) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(b, b"2026-12-02 boom\n\tat a.B\n\tat c.D");
    assert_eq!(ev[1], Ev::Skip);
}

#[test]
fn malformed_container_lines_are_sent_as_they_are() {
    let flow = cri_flow(crate::config::ContainerOutput::Message);
    let mut f = Framer::new(&flow, 0, 1000);
    let mut ev = Vec::new();
    f.push(b"not a container line\n{\"broken\n", &mut collect(&mut ev));
    assert_eq!(
        ev,
        vec![rec("not a container line", 0, 21), rec("{\"broken", 21, 30)]
    );
    assert_eq!(f.malformed_container_lines(), 2);
}

#[test]
fn json_output_names_the_container() {
    let flow = cri_flow(crate::config::ContainerOutput::Json);
    let id = "ab".repeat(32);
    let path = format!("/var/log/containers/web-1_shop_app-{id}.log");
    let mut f = Framer::for_file(&flow, 0, 1000, Some(Path::new(&path)));
    let mut ev = Vec::new();
    f.push(
        format!("{T} stderr P a\"\n{T} stderr F b\nraw\n").as_bytes(),
        &mut collect(&mut ev),
    );
    let texts: Vec<serde_json::Value> = ev
        .iter()
        .map(|e| match e {
            Ev::Rec(b, ..) => serde_json::from_slice(b).unwrap(),
            Ev::Skip => panic!(),
        })
        .collect();
    assert_eq!(
        texts[0],
        serde_json::json!({"time": T, "stream": "stderr", "log": "a\"b",
            "kubernetes": {"namespace": "shop", "pod": "web-1", "container": "app", "containerId": id}})
    );
    assert_eq!(texts[1]["log"], "raw");
    assert_eq!(texts[1]["time"], "");
    // Without a Kubernetes path, or with kubernetesMetadata off: no kubernetes member.
    let mut f = Framer::for_file(&flow, 0, 1000, Some(Path::new("/var/log/app.log")));
    let mut ev = Vec::new();
    f.push(
        format!("{T} stdout F x\n").as_bytes(),
        &mut collect(&mut ev),
    );
    let Ev::Rec(b, ..) = &ev[0] else { panic!() };
    assert_eq!(
        String::from_utf8_lossy(b),
        format!(r#"{{"time":"{T}","stream":"stdout","log":"x"}}"#)
    );
}

/// A JSON record cut to the limit leaves room for its newline: with it, the record as
/// sent is exactly within the limit, and the object is whole.
#[test]
fn json_output_and_its_newline_fit_the_limit() {
    let flow = cri_flow(crate::config::ContainerOutput::Json);
    for max in [200usize, 201, 333, 1000] {
        let mut f = Framer::new(&flow, 0, max);
        let mut ev = Vec::new();
        let line = format!("{T} stdout F {}\n", "é\"x".repeat(300));
        f.push(line.as_bytes(), &mut collect(&mut ev));
        let Ev::Rec(b, _, _, true) = &ev[0] else {
            panic!("{ev:?}")
        };
        assert!(b.len() < max, "{} + newline > {max}", b.len());
        serde_json::from_slice::<serde_json::Value>(b).unwrap();
    }
}

/// stdout and stderr share the file: a split stdout line interrupted by a stderr line (or
/// a line in neither format) is sent as joined so far, never mixed with the other stream;
/// records stay in file order and nothing is lost.
#[test]
fn a_split_line_interrupted_by_the_other_stream_is_not_mixed_with_it() {
    let flow = cri_flow(crate::config::ContainerOutput::Message);
    let input = format!(
        "{T} stdout P out-a \n{T} stderr F err\n{T} stdout F out-b\n{T} stdout P x\ngarbage\n{T} stdout F y\n"
    );
    let ev = run(&flow, 1000, &[input.as_bytes()], false);
    let recs: Vec<(String, u64)> = ev
        .iter()
        .map(|e| match e {
            Ev::Rec(b, off, ..) => (String::from_utf8(b.clone()).unwrap(), *off),
            Ev::Skip => panic!(),
        })
        .collect();
    let texts: Vec<&str> = recs.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(texts, ["out-a ", "err", "out-b", "x", "garbage", "y"]);
    assert!(
        recs.windows(2).all(|w| w[0].1 < w[1].1),
        "file order: {recs:?}"
    );
}
