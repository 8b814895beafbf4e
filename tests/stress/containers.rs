//! Container logs (`optionName: CRI`) under faults in combination: a writer producing CRI
//! lines, one in four split by the "runtime" into three parts written 15 ms apart, while
//! the file is rotated the kubelet's way (rename to `0.log.<n>`, new `0.log`), every
//! delivery is slowed by 50 to 300 ms and a fifth of them fail (debug-build hooks), and the
//! agent is SIGKILLed and restarted. Every application line must arrive whole: a restart
//! inside a split line resends it joined, never a fragment.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support;
use crate::support::agent::*;
use kinesis_tail::daemon::TEST_SLOW_DELIVERY_ENV;
use kinesis_tail::sink::file::TEST_FAIL_WRITES_ENV;

const PAD: &str = "GET /api/v1/orders?id=42 HTTP/1.1 200 512 Mozilla/5.0 (X11; Linux x86_64)";
const T: &str = "2026-12-02T10:00:00.000000001Z";

fn app_line(n: u64) -> String {
    format!("seq={n}; {PAD}")
}

#[test]
fn split_container_lines_survive_rotation_kills_and_a_failing_destination() {
    let _heavy = support::heavy();
    let s = Scratch::new();
    let cfg = s.simple_config(
        "*.log",
        "dataProcessingOptions:\n  - optionName: CRI\nmaxInFlightRequests: 4\n",
    );
    let log = s.logs().join("0.log");
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    // Held while a line's parts are written and while rotating: a line split across a
    // rotation is a known limit (two records), not what this test is about.
    let lock = Arc::new(Mutex::new(()));

    let writer = {
        let (log, stop, written, lock) = (log.clone(), stop.clone(), written.clone(), lock.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let _g = lock.lock().unwrap();
                let mut f = fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap();
                let line = app_line(n);
                if n.is_multiple_of(4) {
                    let (a, rest) = line.split_at(10);
                    let (b, c) = rest.split_at(20);
                    for (tag, part) in [("P", a), ("P", b), ("F", c)] {
                        f.write_all(format!("{T} stdout {tag} {part}\n").as_bytes())
                            .unwrap();
                        if tag == "P" {
                            std::thread::sleep(Duration::from_millis(15));
                        }
                    }
                } else {
                    f.write_all(format!("{T} stderr F {line}\n").as_bytes())
                        .unwrap();
                }
                n += 1;
                written.store(n, Ordering::Relaxed);
                drop(_g);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let rotator = {
        let (log, cp, stop, lock) = (log.clone(), s.checkpoints(), stop.clone(), lock.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1200));
                // Only a file the checkpoint names is within any agent's reach once renamed
                // out of the pattern while the agent is down.
                let deadline = Instant::now() + Duration::from_secs(20);
                while !checkpointed(&cp, &log) && Instant::now() < deadline {
                    if stop.load(Ordering::Relaxed) {
                        return i;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _g = lock.lock().unwrap();
                if log.exists() {
                    i += 1;
                    fs::rename(&log, log.with_file_name(format!("0.log.{i}"))).unwrap();
                }
            }
            i
        })
    };

    let env = [
        (TEST_SLOW_DELIVERY_ENV, "50-300"),
        (TEST_FAIL_WRITES_ENV, "0.2"),
    ];
    let mut rng = 42u64;
    let kills = 8;
    for _ in 0..kills {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut agent = Agent(spawn_with_env(&cfg, &s.path("agent.log"), &env));
        std::thread::sleep(Duration::from_millis(400 + (rng >> 33) % 1200));
        sigkill(&mut agent.0);
    }
    let mut last = Agent(spawn_with_env(&cfg, &s.path("agent.log"), &env));
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let rotations = rotator.join().unwrap();
    let total = written.load(Ordering::Relaxed);

    let got = wait_until(&s.out(), Duration::from_secs(90), |l| {
        let seen: HashSet<&String> = l.iter().collect();
        seen.len() as u64 >= total
    });
    let agent_log = stop_cleanly(&mut last.0, &s.path("agent.log"));
    // Every record is a whole application line (a fragment of a split one would not be),
    // and every line arrived; a SIGKILL sends what was in flight again.
    let mut seen = HashSet::new();
    for line in &got {
        let n: u64 = line
            .strip_prefix("seq=")
            .and_then(|r| r.strip_suffix(&format!("; {PAD}")))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a whole line: {line:?}\n{agent_log:.2000}"));
        seen.insert(n);
    }
    let missing: Vec<u64> = (0..total).filter(|n| !seen.contains(n)).collect();
    eprintln!(
        "containers: {total} lines ({} split in three), {rotations} rotations, {kills} SIGKILLs; \
         {} records, {} lost",
        total.div_ceil(4),
        got.len(),
        missing.len()
    );
    assert!(rotations >= 3, "{rotations} rotations");
    assert!(
        missing.is_empty(),
        "{} lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
}
