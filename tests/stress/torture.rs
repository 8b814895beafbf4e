//! The tailing torture test: a writer at ≥ 5,000 lines/s rotating every 1–3 s,
//! alternating rename+create and copytruncate, while the agent is killed with SIGKILL and
//! restarted. Every line must arrive; duplicates are counted and reported.
//!
//! At least 20 kills, half of them inside a checkpoint write (see the comment at
//! the kill loop for how they are made to land there); duplicates are reported per kill.

use crate::support;
use crate::support::agent;

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent::*;
use kinesis_tail::checkpoint::PAUSE_IN_WRITE_ENV;

const RATE_PER_SEC: u64 = 6000;
/// SIGKILLs, half of them inside a checkpoint write.
const KILLS: usize = 24;
/// How long the agent pauses halfway through each checkpoint write (a test hook).
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(250);
const PAD: &str = "GET /api/v1/orders?id=42 HTTP/1.1 200 512 Mozilla/5.0 (X11; Linux x86_64)";

fn seqs(bytes: &[u8]) -> Vec<u64> {
    // Tolerant of a line torn by a SIGKILL in the middle of a write: every `seq=N;`
    // that is whole counts.
    let text = String::from_utf8_lossy(bytes);
    let mut out = vec![];
    let mut rest: &str = &text;
    while let Some(i) = rest.find("seq=") {
        rest = &rest[i + 4..];
        if let Some(end) = rest.find(';') {
            if let Ok(n) = rest[..end].parse() {
                out.push(n);
            }
        }
    }
    out
}

/// Polls `cond` `every` so often for at most `limit`.
fn poll(limit: Duration, every: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !cond() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(every);
    }
    true
}

/// The highest sequence number in the last 64 KiB of `out`.
fn last_seq(out: &Path) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = fs::File::open(out).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)))
        .ok()?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).ok()?;
    seqs(&tail).into_iter().max()
}

/// Rotates `log` every `min_ms` to `min_ms + span_ms` (pseudo-random from `seed`) until
/// `stop`, alternating rename+create and `copy` (a copytruncate), to `app.log.<i>` beside
/// it. Returns how many of each it made.
fn spawn_rotator(
    log: PathBuf,
    cp: PathBuf,
    (min_ms, span_ms, seed): (u64, u64, u64),
    copy: fn(&Path, &Path),
    (stop, lock): (Arc<AtomicBool>, Arc<Mutex<()>>),
) -> std::thread::JoinHandle<(usize, usize)> {
    std::thread::spawn(move || {
        let dir = log.parent().unwrap().to_path_buf();
        let mut i = 0u32;
        let mut rng = seed;
        let mut kinds = (0, 0);
        while !stop.load(Ordering::Relaxed) {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            std::thread::sleep(Duration::from_millis(min_ms + (rng >> 33) % span_ms));
            // The guarantee is for a file the agent has checkpointed: a file created and
            // rotated away while no run of the agent lived long enough to write a
            // checkpoint is out of any agent's reach (nothing on disk names it). With a
            // kill every second or two that would happen, so a file is rotated only once
            // the checkpoint file on disk names it.
            let named = poll(Duration::from_secs(20), Duration::from_millis(20), || {
                stop.load(Ordering::Relaxed) || checkpointed(&cp, &log)
            });
            if stop.load(Ordering::Relaxed) || !log.exists() {
                continue;
            }
            assert!(named, "the agent checkpointed the live file within 20 s");
            i += 1;
            let target = dir.join(format!("app.log.{i}"));
            let _g = lock.lock().unwrap();
            if i.is_multiple_of(2) {
                fs::rename(&log, &target).unwrap();
                kinds.0 += 1;
            } else {
                copy(&log, &target);
                kinds.1 += 1;
            }
        }
        kinds
    })
}

#[test]
fn rotation_and_sigkill_torture_loses_nothing() {
    let _heavy = support::heavy();
    let s = Scratch::new();
    let cfg = s.simple_config("app.log", "");
    let log = s.logs().join("app.log");
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    // The writer pauses while a copytruncate copies (as logrotate's users configure).
    let rotate_lock = Arc::new(Mutex::new(()));

    let writer = spawn_writer(
        log.clone(),
        RATE_PER_SEC,
        |n| format!("seq={n}; {PAD}\n"),
        (stop.clone(), written.clone(), rotate_lock.clone()),
    );
    let rotator = spawn_rotator(
        log.clone(),
        s.checkpoints(),
        (1000, 2000, 12345),
        copytruncate,
        (stop.clone(), rotate_lock.clone()),
    );

    // The kills. Odd ones land inside a checkpoint write: the agent runs with a test hook
    // (`KINESIS_TAIL_TEST_CHECKPOINT_PAUSE_MS`) that pauses halfway through writing
    // `<checkpointFile>.tmp`, so the temporary file exists, torn, for CHECKPOINT_PAUSE.
    // Once the agent has caught up with the writer and then written one whole checkpoint
    // (so that its progress is on disk), the test waits for the tmp file to appear again
    // (polling every 2 ms) and kills the agent while it is there. The tmp file left behind
    // is checked to be torn, and the checkpoint file to be whole. Even ones land at random
    // offsets from 0.1 s to 2.5 s after the start, anywhere: during start-up, catching up,
    // or a checkpoint write.
    let tmp = PathBuf::from(format!("{}.tmp", s.checkpoints().display()));
    let pause = CHECKPOINT_PAUSE.as_millis().to_string();
    let env = [(PAUSE_IN_WRITE_ENV, pause.as_str())];
    let t0 = Instant::now();
    let mut rng = 987654321u64;
    // Length of the output after each kill: what each run of the agent wrote.
    let mut cuts = Vec::new();
    let mut in_write = Vec::new();
    for k in 0..KILLS {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut agent = Agent(spawn_with_env(&cfg, &s.path("agent.log"), &env));
        let aimed = k % 2 == 1;
        if aimed {
            // This run has caught up with the writer (within a second of lines) ...
            let behind = || {
                let goal = written.load(Ordering::Relaxed).saturating_sub(RATE_PER_SEC);
                last_seq(&s.out()).is_none_or(|n| n < goal)
            };
            assert!(
                poll(Duration::from_secs(30), Duration::from_millis(50), || {
                    !behind()
                }),
                "kill {k}: the agent did not catch up within 30 s"
            );
            // ... and written one whole checkpoint since; the kill lands in the next one.
            // A write is seen starting when the tmp file, seen absent, appears: the agent
            // removes a leftover tmp file and creates a new one at each write, and renames
            // it away at the end. (Not by its mtime: the kernel's file times are coarse,
            // so a file created just after a clock reading can carry an earlier time, and
            // then only the write's second half looked fresh, when the write was ending.)
            let every = Duration::from_millis(2);
            let write_starts = || {
                let limit = Duration::from_secs(5);
                assert!(poll(limit, every, || !tmp.exists()));
                assert!(
                    poll(limit, every, || tmp.exists()),
                    "kill {k}: no checkpoint write seen within 5 s"
                );
            };
            write_starts();
            write_starts();
        } else {
            std::thread::sleep(Duration::from_millis(100 + (rng >> 33) % 2400));
        }
        sigkill(&mut agent.0);
        // What the kill left: a whole checkpoint file (old or new), and for an aimed kill
        // a torn temporary file.
        if let Ok(bytes) = fs::read(s.checkpoints()) {
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("kill {k}: checkpoint file not whole: {e}"));
            assert_eq!(v["version"], 2);
        }
        let torn =
            fs::read(&tmp).is_ok_and(|b| serde_json::from_slice::<serde_json::Value>(&b).is_err());
        if aimed {
            assert!(torn, "kill {k} landed inside a checkpoint write");
        }
        in_write.push(torn);
        cuts.push(fs::metadata(s.out()).map(|m| m.len()).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(100 + (rng >> 40) % 300));
    }
    let kills = cuts.len();
    let killing = t0.elapsed();
    // The last run catches up and is stopped cleanly.
    let mut last = Agent(spawn_with_env(&cfg, &s.path("agent.log"), &env));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let (renames, copytruncates) = rotator.join().unwrap();
    let total = written.load(Ordering::Relaxed);

    // Let the last agent catch up, then stop it cleanly.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: HashSet<u64> = seqs(&fs::read(s.out()).unwrap_or_default())
            .into_iter()
            .collect();
        if got.len() as u64 >= total || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    sigterm(&last.0);
    let status = wait_exit(&mut last.0, Duration::from_secs(20)).expect("agent exits on SIGTERM");
    assert!(status.success());

    let out = fs::read(s.out()).unwrap();
    let all = seqs(&out);
    let unique: HashSet<u64> = all.iter().copied().collect();
    let missing: Vec<u64> = (0..total).filter(|n| !unique.contains(n)).collect();
    let duplicates = all.len() - unique.len();
    // Duplicates per kill: the lines the run after kill k wrote that an earlier run had
    // written already.
    let mut seen: HashSet<u64> = HashSet::new();
    let mut per_kill = Vec::new();
    let mut from = 0usize;
    for (i, cut) in cuts
        .iter()
        .map(|c| *c as usize)
        .chain([out.len()])
        .enumerate()
    {
        let cut = cut.max(from);
        let run = seqs(&out[from..cut]);
        if i > 0 {
            per_kill.push(run.iter().filter(|n| seen.contains(n)).count());
        }
        seen.extend(run);
        from = cut;
    }
    let listed: Vec<String> = per_kill
        .iter()
        .zip(&in_write)
        .map(|(d, w)| format!("{d}{}", if *w { "w" } else { "" }))
        .collect();
    eprintln!(
        "torture: {total} lines written at {RATE_PER_SEC}/s, {renames} rename rotations, {copytruncates} copytruncates, \
         {kills} SIGKILLs in {killing:?} ({} inside a checkpoint write); {} lost, {duplicates} duplicates \
         ({:.0} per kill, max {}); per kill (w: inside a checkpoint write): {}",
        in_write.iter().filter(|w| **w).count(),
        missing.len(),
        duplicates as f64 / kills.max(1) as f64,
        per_kill.iter().max().unwrap_or(&0),
        listed.join(" ")
    );
    assert!(kills >= 20, "the agent was killed at least 20 times");
    assert!(
        in_write.iter().filter(|w| **w).count() >= KILLS / 2,
        "half the kills landed inside a checkpoint write"
    );
    assert!(
        missing.is_empty(),
        "{} lines lost, first {:?}; see {}",
        missing.len(),
        &missing[..missing.len().min(10)],
        s.path("agent.log").display()
    );
    let log = fs::read_to_string(s.path("agent.log")).unwrap();
    assert!(
        !log.contains("corrupt"),
        "a kill never leaves a corrupt checkpoint file"
    );
    // Duplicates are bounded by what can be in flight at a kill: at most the lines of
    // about two seconds of writing (one batch age, one checkpoint interval) per kill.
    assert!(
        duplicates as u64 <= kills as u64 * 3 * RATE_PER_SEC,
        "{duplicates} duplicates for {kills} kills"
    );
}

/// What logrotate's `copytruncate` does, as it does it: the copy is written in chunks
/// (it grows after it appears), then the original is truncated in place.
fn chunked_copytruncate(log: &Path, copy: &Path) {
    let bytes = fs::read(log).unwrap();
    let mut out = fs::File::create(copy).unwrap();
    for chunk in bytes.chunks(bytes.len().div_ceil(3).max(1)) {
        out.write_all(chunk).unwrap();
        out.flush().unwrap();
        std::thread::sleep(Duration::from_millis(40));
    }
    truncate_in_place(log);
}

/// The faults that lost lines only together: a destination that answers each request
/// after 0.3 to 1.5 s and throttles a quarter of the entries (so batches are always in
/// flight), KPL aggregation, rename+create and copytruncate rotations (the copy written in
/// chunks, outside the pattern) every 1 to 2 s, and SIGKILL every 2 to 4 s. Every line must
/// arrive whole; two distinct lines never carry one record ID; duplicates are counted.
#[test]
fn slow_throttling_destination_rotation_and_kills_lose_nothing() {
    let _heavy = support::heavy();
    const RATE: u64 = 2000;
    const KILLS: usize = 10;
    let Some(moto) = support::Moto::start() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = support::kinesis(&moto.endpoint);
    rt.block_on(support::create_stream(&client, "torture", 2));
    let proxy = rt.block_on(support::proxy::Proxy::start(&moto.endpoint));
    proxy.set_faults(support::proxy::Faults {
        entry_failure_share: 0.25,
        delay: Some(Duration::from_millis(300)),
        delay_max: Some(Duration::from_millis(1500)),
        forget_seen_data: true,
        ..Default::default()
    });
    let s = Scratch::new();
    let log = s.logs().join("app.log");
    let flow = "kinesisStream: torture\naggregation: KPL\ninitialPosition: START_OF_FILE\n\
                maxBufferAgeMillis: 1000\nretryInitialBackoffMillis: 50\nretryMaxBackoffMillis: 500\n\
                recordIdField: recordId\ndataProcessingOptions:\n  - optionName: CSVTOJSON\n    customFieldNames: [seq, pad]\n";
    let top = format!(
        "kinesis.endpoint: {}\nkinesis.region: us-east-1\nshutdownTimeoutMillis: 3000\n",
        proxy.endpoint
    );
    let cfg = s.config(&[(&log.display().to_string(), flow)], &top);

    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let rotate_lock = Arc::new(Mutex::new(()));
    let writer = spawn_writer(
        log.clone(),
        RATE,
        |n| format!("{n},{PAD}\n"),
        (stop.clone(), written.clone(), rotate_lock.clone()),
    );
    let rotator = spawn_rotator(
        log.clone(),
        s.checkpoints(),
        (1000, 1000, 4242),
        chunked_copytruncate,
        (stop.clone(), rotate_lock.clone()),
    );
    let mut rng = 77u64;
    for _ in 0..KILLS {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut agent = Agent(spawn(&cfg, &s.path("agent.log")));
        std::thread::sleep(Duration::from_millis(2000 + (rng >> 33) % 2000));
        sigkill(&mut agent.0);
    }
    let mut last = Agent(spawn(&cfg, &s.path("agent.log")));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let (renames, copytruncates) = rotator.join().unwrap();
    let total = written.load(Ordering::Relaxed);

    // Read back what a KCL consumer would get: the aggregates' user records.
    let read = |client: &aws_sdk_kinesis::Client| {
        let (_, stored) = rt.block_on(support::read_stream(client, "torture"));
        let mut users = Vec::new();
        for r in stored {
            let agg = kinesis_tail::aggregate::kpl::decode(&r.data).expect("a KPL aggregate");
            users.extend(agg.records.into_iter().map(|u| u.data));
        }
        users
    };
    let seq_of = |u: &[u8]| -> Option<(u64, String)> {
        let v: serde_json::Value = serde_json::from_slice(u).ok()?;
        let seq = v["seq"].as_str()?.parse().ok()?;
        (v["pad"].as_str()? == PAD).then_some(())?;
        Some((seq, v["recordId"].as_str()?.to_string()))
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let users = loop {
        let users = read(&client);
        let got: HashSet<u64> = users
            .iter()
            .filter_map(|u| seq_of(u))
            .map(|(s, _)| s)
            .collect();
        if got.len() as u64 >= total || Instant::now() > deadline {
            break users;
        }
        eprintln!("catching up: {} of {total} lines delivered", got.len());
        std::thread::sleep(Duration::from_secs(5));
    };
    let agent_log = stop_cleanly(&mut last.0, &s.path("agent.log"));

    let mut torn = 0;
    let mut by_id: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut shared_ids = 0;
    let mut seen: HashSet<u64> = HashSet::new();
    let mut duplicates = 0;
    for u in &users {
        match seq_of(u) {
            None => torn += 1,
            Some((seq, id)) => {
                if !seen.insert(seq) {
                    duplicates += 1;
                }
                if *by_id.entry(id).or_insert(seq) != seq {
                    shared_ids += 1;
                }
            }
        }
    }
    let missing: Vec<u64> = (0..total).filter(|n| !seen.contains(n)).collect();
    let (requests, _, _) = proxy.counts();
    eprintln!(
        "torture through a slow, throttling Kinesis with KPL: {total} lines written, {renames} renames, \
         {copytruncates} chunked copytruncates, {KILLS} SIGKILLs, {requests} requests; {} delivered, \
         {} lost, {duplicates} duplicates, {torn} torn, {shared_ids} record IDs shared by distinct lines",
        seen.len(),
        missing.len()
    );
    if !missing.is_empty() {
        // Kept for a post-mortem: the logs, the checkpoint file and the agent's log.
        let keep = std::env::temp_dir().join("kinesis-tail-torture-failed");
        let _ = fs::remove_dir_all(&keep);
        let _ = std::process::Command::new("cp")
            .arg("-a")
            .arg(s.dir.path())
            .arg(&keep)
            .status();
        eprintln!("kept in {}", keep.display());
    }
    assert!(
        missing.is_empty(),
        "{} lines lost, first {:?}\n{}",
        missing.len(),
        &missing[..missing.len().min(10)],
        agent_log
            .lines()
            .filter(|l| l.contains("INFO") || l.contains("WARN"))
            .take(60)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(torn, 0, "torn records");
    assert_eq!(shared_ids, 0, "distinct lines under one record ID");
    assert!(renames > 0 && copytruncates > 0);
}
