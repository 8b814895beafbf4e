//! The tailing torture test (issue 3): a writer at ≥ 5,000 lines/s rotating every 1–3 s,
//! alternating rename+create and copytruncate, while the agent is killed with SIGKILL and
//! restarted. Every line must arrive; duplicates are counted and reported.

mod common;

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const RATE_PER_SEC: u64 = 6000;
const WRITE_FOR: Duration = Duration::from_secs(14);
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

#[test]
fn rotation_and_sigkill_torture_loses_nothing() {
    let s = Scratch::new();
    let cfg = s.simple_config("app.log", "");
    let log = s.logs().join("app.log");
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    // The writer pauses while a copytruncate copies (as logrotate's users configure).
    let rotate_lock = Arc::new(Mutex::new(()));

    let writer = {
        let (stop, written, log, lock) = (
            stop.clone(),
            written.clone(),
            log.clone(),
            rotate_lock.clone(),
        );
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let due = (start.elapsed().as_secs_f64() * RATE_PER_SEC as f64) as u64;
                if n >= due {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
                let _g = lock.lock().unwrap();
                let mut f = fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap();
                let mut buf = String::new();
                while n < due {
                    buf.push_str(&format!("seq={n}; {PAD}\n"));
                    n += 1;
                }
                f.write_all(buf.as_bytes()).unwrap();
                written.store(n, Ordering::Relaxed);
            }
        })
    };
    let rotator = {
        let (stop, log, dir, lock) = (stop.clone(), log.clone(), s.logs(), rotate_lock.clone());
        std::thread::spawn(move || {
            let mut i = 0u32;
            let mut rng = 12345u64;
            let mut kinds = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                std::thread::sleep(Duration::from_millis(1000 + (rng >> 33) % 2000));
                if stop.load(Ordering::Relaxed) || !log.exists() {
                    continue;
                }
                i += 1;
                let target = dir.join(format!("app.log.{i}"));
                if i.is_multiple_of(2) {
                    fs::rename(&log, &target).unwrap();
                    kinds.0 += 1;
                } else {
                    let _g = lock.lock().unwrap();
                    fs::copy(&log, &target).unwrap();
                    fs::OpenOptions::new()
                        .write(true)
                        .open(&log)
                        .unwrap()
                        .set_len(0)
                        .unwrap();
                    kinds.1 += 1;
                }
            }
            kinds
        })
    };

    let t0 = Instant::now();
    let mut kills = 0;
    let mut child = spawn(&cfg, &s.path("agent.log"));
    let mut rng = 987654321u64;
    while t0.elapsed() < WRITE_FOR {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(1500 + (rng >> 33) % 1500));
        sigkill(&mut child);
        kills += 1;
        std::thread::sleep(Duration::from_millis(100 + (rng >> 40) % 300));
        child = spawn(&cfg, &s.path("agent.log"));
    }
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
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(20)).expect("agent exits on SIGTERM");
    assert!(status.success());

    let all = seqs(&fs::read(s.out()).unwrap());
    let unique: HashSet<u64> = all.iter().copied().collect();
    let missing: Vec<u64> = (0..total).filter(|n| !unique.contains(n)).collect();
    let duplicates = all.len() - unique.len();
    eprintln!(
        "torture: {total} lines written at {RATE_PER_SEC}/s, {renames} rename rotations, {copytruncates} copytruncates, {kills} SIGKILLs; \
         {} lost, {duplicates} duplicates ({:.0} per kill)",
        missing.len(),
        duplicates as f64 / kills.max(1) as f64
    );
    assert!(kills >= 4, "the agent was killed several times");
    assert!(
        missing.is_empty(),
        "{} lines lost, first {:?}; see {}",
        missing.len(),
        &missing[..missing.len().min(10)],
        s.path("agent.log").display()
    );
    // Duplicates are bounded by what can be in flight at a kill: at most the lines of
    // about two seconds of writing (one batch age, one checkpoint interval) per kill.
    assert!(
        duplicates as u64 <= kills as u64 * 3 * RATE_PER_SEC,
        "{duplicates} duplicates for {kills} kills"
    );
}
