//! Bad input and secrets: whatever the files hold, every valid line arrives and
//! nothing hangs; credentials never reach a log line.

use crate::support;
use crate::support::agent;

use std::fs;
use std::io::Write;

use agent::*;

#[test]
fn huge_lines_invalid_utf8_nul_and_crlf_are_shipped_as_bytes() {
    let s = Scratch::new();
    let path = s.logs().join("odd.log");
    let mut f = fs::File::create(&path).unwrap();
    f.write_all(b"first\n").unwrap();
    f.write_all(&vec![b'y'; 50 * 1024 * 1024]).unwrap();
    f.write_all(b"\nlatin1 caf\xe9 \xff\xfe\n").unwrap();
    f.write_all(b"nul \x00 inside\n").unwrap();
    f.write_all(b"windows line\r\n").unwrap();
    f.write_all(b"last\n").unwrap();
    drop(f);
    // A binary file under the pattern too.
    let binary: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(s.logs().join("blob.log"), &binary).unwrap();
    let cfg = s.simple_config("*.log", "");
    let out = run_once(&cfg);
    assert!(out.status.success());
    let bytes = fs::read(s.out()).unwrap();
    let records: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    assert!(records.contains(&&b"first"[..]));
    assert!(
        records.contains(&&b"latin1 caf\xe9 \xff\xfe"[..]),
        "invalid UTF-8 kept as bytes"
    );
    assert!(records.contains(&&b"nul \x00 inside"[..]));
    assert!(
        records.contains(&&b"windows line\r"[..]),
        "CRLF kept as the Java agent does"
    );
    assert!(records.contains(&&b"last"[..]));
    let big = records
        .iter()
        .find(|r| r.starts_with(b"yyyy"))
        .expect("the 50 MiB line, truncated");
    assert!(big.len() <= 1024 * 1024, "{} bytes", big.len());
    // Every byte of the binary file arrived (its newlines split it into records).
    let total: usize = bytes.len();
    assert!(total > binary.len());
}

#[test]
fn secrets_never_reach_the_logs_even_at_trace_level() {
    let Some(moto) = support::Moto::start() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = support::kinesis(&moto.endpoint);
        support::create_stream(&client, "sec", 1).await;
    });
    let s = Scratch::new();
    append(&s.logs().join("a.log"), &["a line".to_string()]);
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY99";
    let pattern = format!("{}/*.log", s.logs().display());
    let cfg = s.config(
        &[(&pattern, "kinesisStream: sec\ninitialPosition: START_OF_FILE\n")],
        &format!(
            "kinesis.endpoint: {}\nkinesis.region: us-east-1\nawsAccessKeyId: AKIATESTSECURITY0001\nawsSecretAccessKey: {secret}\n",
            moto.endpoint
        ),
    );
    let out = command(&cfg)
        .args(["run", "--once", "--log-level", "trace"])
        .env("AWS_SESSION_TOKEN", "SESSIONTOKENSHOULDNEVERAPPEAR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.len() > 1000, "trace logging produced output");
    assert!(!logs.contains(secret), "the secret key appears in the logs");
    assert!(!logs.contains("SESSIONTOKENSHOULDNEVERAPPEAR"));
    let check = command(&cfg).arg("check").output().unwrap();
    assert!(check.status.success());
    assert!(!String::from_utf8_lossy(&check.stdout).contains(secret));
    assert!(!String::from_utf8_lossy(&check.stderr).contains(secret));
}

fn numbered(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix} line {i:04}")).collect()
}

/// A `**` tree holding symlink loops (a link to an ancestor, a link to itself, a link to
/// `/`) and a link to a large tree (`/usr`): the scan and the recursive inotify watch
/// follow no directory link, so nothing hangs, no watch is spent outside the tree and
/// every line of the real files arrives, in `--once` and in daemon mode.
#[test]
fn symlink_loops_in_a_recursive_tree_never_hang() {
    use std::os::unix::fs::symlink;
    use std::time::{Duration, Instant};
    let s = Scratch::new();
    let logs = s.logs();
    fs::create_dir_all(logs.join("a/b")).unwrap();
    append(&logs.join("a/one.log"), &numbered("one", 0..20));
    append(&logs.join("a/b/two.log"), &numbered("two", 0..20));
    symlink(logs.join("a"), logs.join("a/b/back")).unwrap();
    symlink(&logs, logs.join("a/b/up.log")).unwrap();
    symlink(logs.join("a/self.log"), logs.join("a/self.log")).unwrap();
    symlink("/", logs.join("a/root")).unwrap();
    symlink("/usr", logs.join("a/usr")).unwrap();
    let cfg = s.simple_config("**/*.log", "");

    let start = Instant::now();
    let out = run_once(&cfg);
    assert!(out.status.success());
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    let mut expected = numbered("one", 0..20);
    expected.extend(numbered("two", 0..20));
    assert_eq!(assert_all_delivered(&expected, &lines(&s.out())), 0);

    // Daemon mode: the watch is set up over the same tree and new lines still arrive.
    let log = s.path("agent.log");
    let mut child = spawn(&cfg, &log);
    std::thread::sleep(Duration::from_millis(500));
    let more = numbered("two", 20..40);
    append(&logs.join("a/b/two.log"), &more);
    fs::create_dir(logs.join("a/b/new")).unwrap();
    symlink(logs.join("a"), logs.join("a/b/new/again")).unwrap();
    let three = numbered("three", 0..10);
    append(&logs.join("a/b/new/three.log"), &three);
    expected.extend(more);
    expected.extend(three);
    let got = wait_until(&s.out(), Duration::from_secs(30), |l| {
        l.len() >= expected.len()
    });
    // One watch per directory of the tree (logs, a, b, new), none below the links.
    let watches = inotify_watches(child.id());
    let agent_log = stop_cleanly(&mut child, &log);
    assert_eq!(assert_all_delivered(&expected, &got), 0, "{agent_log}");
    assert!(watches <= 8, "{watches} inotify watches");
}

/// Inotify watches held by process `pid` (Linux `/proc/<pid>/fdinfo`).
fn inotify_watches(pid: u32) -> usize {
    let mut n = 0;
    for fd in fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten() {
        if fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == "anon_inode:inotify") {
            let info = fs::read_to_string(format!(
                "/proc/{pid}/fdinfo/{}",
                fd.file_name().to_string_lossy()
            ))
            .unwrap_or_default();
            n += info.lines().filter(|l| l.starts_with("inotify ")).count();
        }
    }
    n
}

/// A tailed file replaced by a directory of the same name while the agent runs: the
/// directory is reported once, the other files go on, and a file that comes back under
/// the name is read again.
#[test]
fn a_tailed_file_replaced_by_a_directory_is_skipped_and_the_rest_goes_on() {
    use std::time::Duration;
    let s = Scratch::new();
    let logs = s.logs();
    let cfg = s.simple_config("*.log", "");
    let log = s.path("agent.log");
    let mut child = spawn(&cfg, &log);
    std::thread::sleep(Duration::from_millis(500));
    let mut expected = numbered("x", 0..10);
    append(&logs.join("x.log"), &expected);
    append(&logs.join("y.log"), &numbered("y", 0..10));
    expected.extend(numbered("y", 0..10));
    wait_until(&s.out(), Duration::from_secs(15), |l| l.len() >= 20);

    fs::remove_file(logs.join("x.log")).unwrap();
    fs::create_dir(logs.join("x.log")).unwrap();
    append(&logs.join("x.log/inner.log"), &["not matched".to_string()]);
    // Random bytes under the pattern too, while the agent runs.
    let binary: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    fs::write(logs.join("blob.log"), &binary).unwrap();
    let more = numbered("y", 10..20);
    append(&logs.join("y.log"), &more);
    expected.extend(more);
    wait_until(&s.out(), Duration::from_secs(15), |l| {
        l.iter().any(|x| x == "y line 0019")
    });

    fs::remove_dir_all(logs.join("x.log")).unwrap();
    let back = numbered("x again", 0..10);
    append(&logs.join("x.log"), &back);
    expected.extend(back);
    let got = wait_until(&s.out(), Duration::from_secs(15), |l| {
        l.iter().any(|x| x == "x again line 0009")
    });
    let agent_log = stop_cleanly(&mut child, &log);
    // The random bytes make records of their own (empty ones among them); count only
    // the lines written.
    let known: Vec<String> = got
        .iter()
        .filter(|l| expected.contains(l))
        .cloned()
        .collect();
    assert_eq!(assert_all_delivered(&expected, &known), 0, "{agent_log}");
    assert!(!got.iter().any(|l| l == "not matched"));
    assert_eq!(
        agent_log.matches("x.log: a directory").count(),
        1,
        "the directory is reported once:\n{agent_log}"
    );
    assert!(!agent_log.contains("panicked"), "{agent_log}");
}
