//! Model-based test of the tailer, through the real binary: random sequences of write,
//! rename-rotate, copytruncate (the copy written in chunks), `O_TRUNC` rewrite, delete,
//! SIGKILL, clean restart and pause, against a model of what was written. Every file begins
//! with the same header line (files that begin alike); every delivery waits 50 to 600 ms
//! before it is acknowledged and a fifth of the writes fail and are retried (debug-build
//! hooks), so batches are in flight at every kill and rotation.
//!
//! Properties: every line written is delivered at least once; the first deliveries of one
//! file content's lines come in the order they were written; no two distinct lines carry
//! one record ID; without a SIGKILL nothing is delivered twice.

use crate::support::agent;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agent::*;
use proptest::prelude::*;

const FILES: usize = 3;
const HEADER: &str = "# header: time,level,message";
const SLOW_DELIVERY: (&str, &str) = ("KINESIS_TAIL_TEST_SLOW_DELIVERY_MS", "50-600");
/// A fifth of the batch writes fail and are retried.
const FAILING_WRITES: (&str, &str) = ("KINESIS_TAIL_TEST_FAIL_WRITES", "0.2");

#[derive(Debug, Clone)]
enum Op {
    Write { file: usize, lines: usize },
    RenameRotate { file: usize },
    CopyTruncate { file: usize },
    Rewrite { file: usize, lines: usize },
    Delete { file: usize },
    Kill,
    Restart,
    Pause { ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..FILES, 1..60usize).prop_map(|(file, lines)| Op::Write { file, lines }),
        2 => (0..FILES).prop_map(|file| Op::RenameRotate { file }),
        2 => (0..FILES).prop_map(|file| Op::CopyTruncate { file }),
        1 => (0..FILES, 1..80usize).prop_map(|(file, lines)| Op::Rewrite { file, lines }),
        1 => (0..FILES).prop_map(|file| Op::Delete { file }),
        2 => Just(Op::Kill),
        1 => Just(Op::Restart),
        2 => (0..400u64).prop_map(|ms| Op::Pause { ms }),
    ]
}

/// One delivered record: its line and record ID.
fn delivered(out: &Path) -> Vec<(String, String)> {
    fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            Some((
                v["line"].as_str()?.to_string(),
                v["recordId"].as_str()?.to_string(),
            ))
        })
        .collect()
}

fn wait_delivered(out: &Path, expected: &HashSet<String>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let got: HashSet<String> = delivered(out).into_iter().map(|(l, _)| l).collect();
        if expected.iter().all(|l| got.contains(l)) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Model {
    files: Vec<PathBuf>,
    /// Lines of each file content, in the order written (a content ends at a rotation,
    /// truncation, rewrite or delete).
    contents: Vec<Vec<String>>,
    /// The content each file holds now (index into `contents`), if the file exists.
    current: Vec<Option<usize>>,
    all: HashSet<String>,
    seq: usize,
}

impl Model {
    /// Appends `lines` new lines to `file` (with the header first when it is created).
    fn write(&mut self, file: usize, lines: usize, truncate: bool) {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(!truncate)
            .truncate(truncate)
            .open(&self.files[file])
            .unwrap();
        let mut buf = String::new();
        let content = match self.current[file] {
            Some(c) if !truncate => c,
            _ => {
                buf.push_str(HEADER);
                buf.push('\n');
                self.contents.push(Vec::new());
                self.contents.len() - 1
            }
        };
        self.current[file] = Some(content);
        for _ in 0..lines {
            let l = format!("f{file} seq {:06} {}", self.seq, "x".repeat(self.seq % 50));
            self.seq += 1;
            buf.push_str(&l);
            buf.push('\n');
            self.contents[content].push(l.clone());
            self.all.insert(l);
        }
        f.write_all(buf.as_bytes()).unwrap();
    }
}

/// The agent, with a log file of its own.
struct Run {
    agent: Agent,
    log: PathBuf,
}

impl Run {
    fn start(cfg: &Path, dir: &Path, n: &mut usize) -> Run {
        *n += 1;
        let log = dir.join(format!("agent-{n}.log"));
        Run {
            agent: Agent(spawn_with_env(cfg, &log, &[SLOW_DELIVERY, FAILING_WRITES])),
            log,
        }
    }

    /// Stops it with SIGTERM once it has started (a SIGTERM before its handlers exist
    /// ends it as the default action does, which is not what this test is about).
    fn stop(mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !fs::read_to_string(&self.log)
            .unwrap_or_default()
            .contains("started with")
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        stop_cleanly(&mut self.agent.0, &self.log)
    }
}

/// Every agent's log, for a failure's message.
fn all_logs(dir: &Path, runs: usize) -> String {
    (1..=runs)
        .map(|n| {
            let text = fs::read_to_string(dir.join(format!("agent-{n}.log"))).unwrap_or_default();
            let kept: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("INFO") || l.contains("WARN") || l.contains("ERROR"))
                .collect();
            format!("--- agent {n}\n{}", kept.join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn run_model(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let _heavy = crate::support::heavy();
    let s = Scratch::new();
    let extra = "rescanIntervalMillis: 500\n";
    let flow = format!(
        "outputFile: {}\ninitialPosition: START_OF_FILE\nmaxBufferAgeMillis: 1000\n\
         recordIdField: recordId\ndataProcessingOptions:\n  - optionName: CSVTOJSON\n    customFieldNames: [line]\n",
        s.out().display()
    );
    let pattern = format!("{}/*.log", s.logs().display());
    let cfg = s.config(&[(&pattern, &flow)], extra);
    let dir = s.dir.path().to_path_buf();
    let mut runs = 0usize;
    let out = s.out();
    let mut m = Model {
        files: (0..FILES)
            .map(|i| s.logs().join(format!("f{i}.log")))
            .collect(),
        contents: Vec::new(),
        current: vec![None; FILES],
        all: HashSet::new(),
        seq: 0,
    };
    let mut rotations = 0usize;
    let mut kills = 0usize;
    let mut agent = Some(Run::start(&cfg, &dir, &mut runs));
    std::thread::sleep(Duration::from_millis(300));
    for op in ops {
        match op {
            Op::Write { file, lines } => m.write(file, lines, false),
            Op::RenameRotate { file } | Op::CopyTruncate { file } => {
                if m.current[file].is_none() {
                    continue;
                }
                // Only a file the checkpoint file names can be recovered after a kill
                // (nothing on disk names it otherwise): rotate once it is named.
                if agent.is_none() {
                    agent = Some(Run::start(&cfg, &dir, &mut runs));
                }
                let named = {
                    let deadline = Instant::now() + Duration::from_secs(15);
                    while !checkpointed(&s.checkpoints(), &m.files[file])
                        && Instant::now() < deadline
                    {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    checkpointed(&s.checkpoints(), &m.files[file])
                };
                prop_assert!(
                    named,
                    "the agent named f{file} in its checkpoint within 15 s"
                );
                rotations += 1;
                let target = s.logs().join(format!("f{file}.log.{rotations}"));
                if matches!(op, Op::RenameRotate { .. }) {
                    fs::rename(&m.files[file], &target).unwrap();
                } else {
                    // As logrotate does it: the copy grows in chunks, then the original
                    // is truncated in place.
                    let bytes = fs::read(&m.files[file]).unwrap();
                    let mut copy = fs::File::create(&target).unwrap();
                    for c in bytes.chunks(bytes.len().div_ceil(3).max(1)) {
                        copy.write_all(c).unwrap();
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    truncate_in_place(&m.files[file]);
                }
                m.current[file] = None;
            }
            Op::Rewrite { file, .. } | Op::Delete { file } => {
                // Destroying data nobody has read yet loses it whatever the agent does:
                // the model waits until what was written is delivered (and the agent runs).
                if agent.is_none() {
                    agent = Some(Run::start(&cfg, &dir, &mut runs));
                }
                prop_assert!(
                    wait_delivered(&out, &m.all, Duration::from_secs(30)),
                    "lines written before a rewrite/delete were not delivered"
                );
                match op {
                    Op::Rewrite { lines, .. } => m.write(file, lines + 40, true),
                    _ => {
                        if m.files[file].exists() {
                            fs::remove_file(&m.files[file]).unwrap();
                        }
                        m.current[file] = None;
                    }
                }
            }
            Op::Kill => {
                if let Some(mut a) = agent.take() {
                    sigkill(&mut a.agent.0);
                    kills += 1;
                }
                agent = Some(Run::start(&cfg, &dir, &mut runs));
            }
            Op::Restart => {
                if let Some(a) = agent.take() {
                    a.stop();
                }
                agent = Some(Run::start(&cfg, &dir, &mut runs));
            }
            Op::Pause { ms } => std::thread::sleep(Duration::from_millis(ms)),
        }
    }
    if agent.is_none() {
        agent = Some(Run::start(&cfg, &dir, &mut runs));
    }
    let ok = wait_delivered(&out, &m.all, Duration::from_secs(40));
    agent.take().unwrap().stop();
    let log = all_logs(&dir, runs);
    let got = delivered(&out);
    let got_lines: HashSet<&String> = got.iter().map(|(l, _)| l).collect();
    let missing: Vec<&String> = m.all.iter().filter(|l| !got_lines.contains(l)).collect();
    prop_assert!(
        ok && missing.is_empty(),
        "{} lines lost: {:?}\n{}",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        log
    );
    // One record ID, one line; a record ID seen twice is a duplicate.
    let mut by_id: HashMap<&str, &str> = HashMap::new();
    let mut duplicates = 0;
    for (line, id) in &got {
        match by_id.insert(id, line) {
            Some(other) if other != line => {
                prop_assert!(false, "record ID {id} carries {other:?} and {line:?}");
            }
            Some(_) => duplicates += 1,
            None => {}
        }
    }
    prop_assert!(
        kills > 0 || duplicates == 0,
        "{duplicates} records delivered twice without a kill"
    );
    // In order per file content: the first delivery of each line follows the order of
    // writing.
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, (l, _)) in got.iter().enumerate() {
        first.entry(l.as_str()).or_insert(i);
    }
    for lines in &m.contents {
        let positions: Vec<usize> = lines.iter().map(|l| first[l.as_str()]).collect();
        prop_assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "lines of a file out of order"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { max_shrink_iters: 10, ..proptest_cases(8) })]
    #[test]
    fn every_line_is_delivered_once_or_after_a_kill(ops in proptest::collection::vec(op(), 4..16)) {
        run_model(ops)?;
    }
}

/// Found by this model: a file truncated by copytruncate twice, the second time just
/// before a SIGKILL, within the checkpoint writer's interval. Its second generation was
/// unknown to the checkpoint file, so its copy (outside the pattern) was never read at the
/// next start and its 50 lines were lost. A file or generation that starts being read now
/// has the checkpoint file written at once.
#[test]
fn a_copytruncate_just_before_a_kill_is_found_at_restart() {
    let ops = vec![
        Op::Write { file: 1, lines: 58 },
        Op::CopyTruncate { file: 1 },
        Op::Write { file: 1, lines: 50 },
        Op::CopyTruncate { file: 1 },
        Op::CopyTruncate { file: 2 },
        Op::Write { file: 0, lines: 14 },
        Op::CopyTruncate { file: 2 },
        Op::Kill,
        Op::Delete { file: 2 },
    ];
    run_model(ops).unwrap();
}
