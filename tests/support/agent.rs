//! Helpers for tests that run the real `kinesis-tail` binary.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kinesis-tail"))
}

/// A scratch directory with a `logs/` folder, a config and a checkpoint file.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("logs")).unwrap();
        Scratch { dir }
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    pub fn logs(&self) -> PathBuf {
        self.path("logs")
    }
    pub fn out(&self) -> PathBuf {
        self.path("out.txt")
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.path("state/checkpoints")
    }
    /// Writes `config.yaml` with one flow per `(pattern, extra)`; `extra` is YAML lines
    /// indented for the flow mapping.
    pub fn config(&self, flows: &[(&str, &str)], top: &str) -> PathBuf {
        let mut y = String::new();
        y.push_str(&format!(
            "checkpointFile: {}\n",
            self.checkpoints().display()
        ));
        y.push_str("cloudwatch.emitMetrics: false\n");
        y.push_str(top);
        y.push_str("flows:\n");
        for (pattern, extra) in flows {
            y.push_str(&format!("  - filePattern: \"{pattern}\"\n"));
            for line in extra.lines() {
                y.push_str(&format!("    {line}\n"));
            }
        }
        let p = self.path("config.yaml");
        fs::write(&p, y).unwrap();
        p
    }
    /// A config with one flow from `logs/<glob>` to `out.txt`.
    pub fn simple_config(&self, glob: &str, extra: &str) -> PathBuf {
        let pattern = format!("{}/{glob}", self.logs().display());
        let mut e = format!(
            "outputFile: {}\ninitialPosition: START_OF_FILE\nmaxBufferAgeMillis: 1000\n",
            self.out().display()
        );
        e.push_str(extra);
        self.config(&[(&pattern, &e)], "")
    }
}

pub fn command(config: &Path) -> Command {
    let mut c = Command::new(bin());
    c.arg("-c")
        .arg(config)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("RUST_LOG");
    c
}

/// `kinesis-tail -c CONFIG run --once`.
pub fn run_once(config: &Path) -> Output {
    let out = command(config)
        .args(["run", "--once"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!("stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    out
}

/// Starts the agent in the background, appending its log to `log`.
pub fn spawn(config: &Path, log: &Path) -> Child {
    spawn_with_env(config, log, &[])
}

/// [`spawn`] with extra environment variables.
pub fn spawn_with_env(config: &Path, log: &Path, env: &[(&str, &str)]) -> Child {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    command(config)
        .envs(env.iter().copied())
        .args(["run", "--log-level", "debug"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// The agent, killed when dropped: a failing test leaves no process behind.
pub struct Agent(pub Child);

impl Drop for Agent {
    fn drop(&mut self) {
        // A child already reaped is not signalled again.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn sigterm(child: &Child) {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
}

pub fn sigkill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits for the child to exit, at most `timeout`.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Stops the agent with SIGTERM, asserts that it exits cleanly within 15 s and returns
/// its log (`log`, where it was started to write), for the caller's messages.
pub fn stop_cleanly(child: &mut Child, log: &Path) -> String {
    sigterm(child);
    let status = wait_exit(child, Duration::from_secs(15));
    let agent_log = fs::read_to_string(log).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{agent_log}"
    );
    agent_log
}

/// What logrotate's `copytruncate` does: copies `log` to `copy`, then truncates `log` in
/// place (same inode).
pub fn copytruncate(log: &Path, copy: &Path) {
    fs::copy(log, copy).unwrap();
    truncate_in_place(log);
}

/// Truncates `log` to 0 bytes, keeping its inode (`> log`, copytruncate's second step).
pub fn truncate_in_place(log: &Path) {
    fs::OpenOptions::new()
        .write(true)
        .open(log)
        .unwrap()
        .set_len(0)
        .unwrap();
}

/// Lines of a file (empty when missing).
pub fn lines(path: &Path) -> Vec<String> {
    match fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b)
            .lines()
            .map(str::to_string)
            .collect(),
        Err(_) => vec![],
    }
}

/// Waits until `cond(lines)` holds, at most `timeout`. Returns the last lines seen.
pub fn wait_until(path: &Path, timeout: Duration, cond: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let l = lines(path);
        if cond(&l) || Instant::now() >= deadline {
            return l;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Appends lines to a file (creating it).
pub fn append(path: &Path, lines: &[String]) {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut buf = String::new();
    for l in lines {
        buf.push_str(l);
        buf.push('\n');
    }
    f.write_all(buf.as_bytes()).unwrap();
}

/// Counts of each line.
pub fn counts(lines: &[String]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for l in lines {
        *m.entry(l.clone()).or_insert(0) += 1;
    }
    m
}

/// Asserts every expected line arrived (at least once); returns how many extra copies
/// arrived (duplicates).
pub fn assert_all_delivered(expected: &[String], got: &[String]) -> usize {
    let c = counts(got);
    let missing: Vec<&String> = expected.iter().filter(|l| !c.contains_key(*l)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} lines lost, first: {:?}",
        missing.len(),
        expected.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
    got.len().saturating_sub(c.len())
}

/// The configuration of a property test: `cases` cases, unless `PROPTEST_CASES` is set,
/// which then wins (`ProptestConfig::with_cases` alone would ignore it). A long run:
/// `PROPTEST_CASES=100000 cargo test --test config`.
pub fn proptest_cases(cases: u32) -> proptest::test_runner::Config {
    let from_env = proptest::test_runner::Config::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        from_env
    } else {
        proptest::test_runner::Config { cases, ..from_env }
    }
}

/// Appends the lines `line` makes to `log` at `rate` a second until `stop`, holding the
/// lock while it writes (a copytruncate takes it: the writer pauses while a copy is
/// made, as logrotate's users configure); `written` counts the lines.
pub fn spawn_writer(
    log: PathBuf,
    rate: u64,
    line: impl Fn(u64) -> String + Send + 'static,
    (stop, written, lock): (Arc<AtomicBool>, Arc<AtomicU64>, Arc<std::sync::Mutex<()>>),
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
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
                buf.push_str(&line(n));
                n += 1;
            }
            f.write_all(buf.as_bytes()).unwrap();
            written.store(n, Ordering::Relaxed);
        }
    })
}

/// True when the checkpoint file `cp` has an entry for what `log` holds now (its inode
/// and first line).
pub fn checkpointed(cp: &Path, log: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(f) = fs::File::open(log) else {
        return false;
    };
    let (Ok(meta), Ok(Some(fp))) = (f.metadata(), kinesis_tail::tail::file::fingerprint(&f)) else {
        return false;
    };
    let fp = format!("{fp:016x}");
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&fs::read(cp).unwrap_or_default())
    else {
        return false;
    };
    v["flows"].as_object().is_some_and(|flows| {
        flows
            .values()
            .flat_map(|e| e.as_array())
            .flatten()
            .any(|e| {
                e["ino"].as_u64() == Some(meta.ino()) && e["fingerprint"].as_str() == Some(&fp)
            })
    })
}
