//! Tailing through the real binary: discovery, rotation, restarts, bad files.

use crate::support::agent;

use std::fs;
use std::time::Duration;

use agent::*;

fn numbered(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range
        .map(|i| format!("{prefix} line {i:06} payload"))
        .collect()
}

#[test]
fn once_ships_every_line_of_every_file_and_checkpoints() {
    let s = Scratch::new();
    let a = numbered("a", 0..1000);
    let b = numbered("b", 0..500);
    append(&s.logs().join("a.log"), &a);
    append(&s.logs().join("b.log"), &b);
    fs::write(s.logs().join("c.log.gz"), b"not tailed\n").unwrap();
    let cfg = s.simple_config("*.log", "");
    let out = run_once(&cfg);
    assert!(out.status.success());
    let got = lines(&s.out());
    let mut expected = a.clone();
    expected.extend(b.clone());
    assert_eq!(assert_all_delivered(&expected, &got), 0, "no duplicates");
    assert_eq!(got.len(), 1500);
    // Order is kept per file.
    let only_a: Vec<&String> = got.iter().filter(|l| l.starts_with("a ")).collect();
    assert!(only_a.windows(2).all(|w| w[0] < w[1]));
    let cp = fs::read_to_string(s.checkpoints()).unwrap();
    assert!(cp.contains("\"version\":2"), "{cp}");
    // A second run ships nothing new; appended lines only.
    let more = numbered("a", 1000..1010);
    append(&s.logs().join("a.log"), &more);
    assert!(run_once(&cfg).status.success());
    let got = lines(&s.out());
    assert_eq!(got.len(), 1510, "only the 10 new lines were added");
    assert_eq!(&got[1500..], &more[..]);
}

#[test]
fn sigterm_exits_zero_with_checkpoints_written() {
    let s = Scratch::new();
    let cfg = s.simple_config("*.log", "");
    let mut child = spawn(&cfg, &s.path("agent.log"));
    std::thread::sleep(Duration::from_millis(500));
    let a = numbered("a", 0..200);
    append(&s.logs().join("a.log"), &a);
    let got = wait_until(&s.out(), Duration::from_secs(10), |l| l.len() >= 200);
    assert_eq!(got.len(), 200);
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(15)).expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    let cp = fs::read_to_string(s.checkpoints()).unwrap();
    let size = fs::metadata(s.logs().join("a.log")).unwrap().len();
    assert!(cp.contains(&format!("\"offset\":{size}")), "{cp}");
}

#[test]
fn rename_and_create_rotation_loses_nothing() {
    let s = Scratch::new();
    let cfg = s.simple_config("app.log", "");
    let mut child = spawn(&cfg, &s.path("agent.log"));
    std::thread::sleep(Duration::from_millis(300));
    let log = s.logs().join("app.log");
    let mut expected = vec![];
    for round in 0..5 {
        let l = numbered(&format!("r{round}"), 0..300);
        append(&log, &l);
        expected.extend(l);
        // The agent has seen this file (a file created and rotated away within
        // microseconds is never seen by anyone); then a burst it has not read yet.
        std::thread::sleep(Duration::from_millis(300));
        let burst = numbered(&format!("burst{round}"), 0..300);
        append(&log, &burst);
        expected.extend(burst);
        // Rotate: rename away (out of the pattern), keep writing to the old file a bit
        // as a writer does until it reopens, then create the new file.
        let rotated = s.logs().join(format!("app.log.{round}"));
        fs::rename(&log, &rotated).unwrap();
        let late = numbered(&format!("late{round}"), 0..20);
        append(&rotated, &late);
        expected.extend(late);
    }
    let last = numbered("final", 0..100);
    append(&log, &last);
    expected.extend(last);
    let got = wait_until(&s.out(), Duration::from_secs(20), |l| {
        l.len() >= expected.len()
    });
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(15));
    let dups = assert_all_delivered(&expected, &got);
    assert_eq!(dups, 0);
}

#[test]
fn copytruncate_reads_new_content_from_start_without_resending() {
    let s = Scratch::new();
    let cfg = s.simple_config("app.log", "");
    let mut child = spawn(&cfg, &s.path("agent.log"));
    std::thread::sleep(Duration::from_millis(300));
    let log = s.logs().join("app.log");
    let first = numbered("before", 0..500);
    append(&log, &first);
    wait_until(&s.out(), Duration::from_secs(10), |l| l.len() >= 500);
    copytruncate(&log, &s.logs().join("app.log.1"));
    let second = numbered("after", 0..300);
    append(&log, &second);
    let mut expected = first.clone();
    expected.extend(second);
    let got = wait_until(&s.out(), Duration::from_secs(10), |l| l.len() >= 800);
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(15));
    assert_eq!(
        assert_all_delivered(&expected, &got),
        0,
        "nothing sent twice"
    );
}

#[test]
fn deleted_while_open_is_read_to_its_end() {
    let s = Scratch::new();
    let cfg = s.simple_config("*.log", "");
    let mut child = spawn(&cfg, &s.path("agent.log"));
    std::thread::sleep(Duration::from_millis(300));
    let log = s.logs().join("x.log");
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    use std::io::Write;
    let a = numbered("x", 0..100);
    for l in &a {
        writeln!(f, "{l}").unwrap();
    }
    wait_until(&s.out(), Duration::from_secs(10), |l| l.len() >= 100);
    fs::remove_file(&log).unwrap();
    // The writer still holds it and writes more: read through the open descriptor.
    let b = numbered("y", 0..100);
    for l in &b {
        writeln!(f, "{l}").unwrap();
    }
    drop(f);
    let mut expected = a;
    expected.extend(b);
    let got = wait_until(&s.out(), Duration::from_secs(10), |l| l.len() >= 200);
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(15));
    assert_eq!(assert_all_delivered(&expected, &got), 0);
}

#[test]
fn restart_resumes_by_identity_even_after_a_rename() {
    let s = Scratch::new();
    let cfg = s.simple_config("*.log", "");
    let a = numbered("a", 0..100);
    append(&s.logs().join("one.log"), &a);
    assert!(run_once(&cfg).status.success());
    // While the agent is down: the file is renamed (still matching) and grows.
    fs::rename(s.logs().join("one.log"), s.logs().join("two.log")).unwrap();
    let b = numbered("b", 0..50);
    append(&s.logs().join("two.log"), &b);
    // And a new file appears: read from its start.
    let c = numbered("c", 0..30);
    append(&s.logs().join("three.log"), &c);
    assert!(run_once(&cfg).status.success());
    let got = lines(&s.out());
    let mut expected = a;
    expected.extend(b);
    expected.extend(c);
    assert_eq!(
        assert_all_delivered(&expected, &got),
        0,
        "resumed, not re-read"
    );
}

/// Found by the crash torture test: while the agent was stopped, its file was
/// copytruncated and then renamed out of the pattern (two rotations). The unread rest of
/// the checkpointed content is in the copy, and the renamed file holds lines written after
/// the truncation, which no checkpoint knew of: both are shipped, nothing twice.
#[test]
fn copytruncate_then_rename_while_stopped_loses_nothing() {
    let s = Scratch::new();
    let cfg = s.simple_config("app.log", "");
    let log = s.logs().join("app.log");
    let a = numbered("a", 0..100);
    append(&log, &a);
    assert!(run_once(&cfg).status.success());
    // While the agent is down: more lines, copytruncate, more lines, rename, a new file.
    let b = numbered("b", 0..50);
    append(&log, &b);
    copytruncate(&log, &s.logs().join("app.log.1"));
    let c = numbered("c", 0..40);
    append(&log, &c);
    fs::rename(&log, s.logs().join("app.log.2")).unwrap();
    let d = numbered("d", 0..30);
    append(&log, &d);
    assert!(run_once(&cfg).status.success());
    let got = lines(&s.out());
    let mut expected = a;
    expected.extend(b);
    expected.extend(c);
    expected.extend(d);
    assert_eq!(assert_all_delivered(&expected, &got), 0, "nothing twice");
}

#[test]
fn end_of_file_applies_only_to_files_present_at_first_start() {
    let s = Scratch::new();
    let pattern = format!("{}/*.log", s.logs().display());
    let extra = format!(
        "outputFile: {}\ninitialPosition: END_OF_FILE\n",
        s.out().display()
    );
    let cfg = s.config(&[(&pattern, &extra)], "");
    append(&s.logs().join("old.log"), &numbered("old", 0..10));
    let mut child = spawn(&cfg, &s.path("agent.log"));
    std::thread::sleep(Duration::from_millis(500));
    let new_in_old = numbered("old-new", 0..5);
    append(&s.logs().join("old.log"), &new_in_old);
    let fresh = numbered("fresh", 0..5);
    append(&s.logs().join("fresh.log"), &fresh);
    let got = wait_until(&s.out(), Duration::from_secs(10), |l| l.len() >= 10);
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(15));
    let mut expected = new_in_old;
    expected.extend(fresh);
    assert_eq!(assert_all_delivered(&expected, &got), 0);
    assert_eq!(
        got.len(),
        10,
        "the 10 lines there before the first start are skipped"
    );
}

#[test]
fn partial_last_line_is_held_until_its_newline() {
    let s = Scratch::new();
    let cfg = s.simple_config("*.log", "");
    let mut child = spawn(&cfg, &s.path("agent.log"));
    std::thread::sleep(Duration::from_millis(300));
    let log = s.logs().join("p.log");
    fs::write(&log, b"complete\nhalf").unwrap();
    let got = wait_until(&s.out(), Duration::from_secs(5), |l| !l.is_empty());
    assert_eq!(got, vec!["complete"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(lines(&s.out()), vec!["complete"], "the partial line waits");
    let mut f = fs::OpenOptions::new().append(true).open(&log).unwrap();
    use std::io::Write;
    f.write_all(b" and the rest\n").unwrap();
    let got = wait_until(&s.out(), Duration::from_secs(5), |l| l.len() >= 2);
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(15));
    assert_eq!(got, vec!["complete", "half and the rest"]);
}

#[test]
fn files_that_cannot_be_read_are_skipped_and_never_hang_once() {
    let s = Scratch::new();
    let logs = s.logs();
    append(&logs.join("good.log"), &numbered("good", 0..10));
    fs::create_dir(logs.join("dir.log")).unwrap();
    std::os::unix::fs::symlink(logs.join("missing"), logs.join("dangling.log")).unwrap();
    let fifo = std::ffi::CString::new(logs.join("fifo.log").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let _sock = std::os::unix::net::UnixListener::bind(logs.join("sock.log")).unwrap();
    let cfg = s.simple_config("*.log", "");
    let start = std::time::Instant::now();
    let out = run_once(&cfg);
    assert!(out.status.success());
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!(lines(&s.out()), numbered("good", 0..10));
    let err = String::from_utf8_lossy(&out.stderr);
    for name in ["dir.log", "dangling.log", "fifo.log", "sock.log"] {
        assert_eq!(
            err.matches(name).count(),
            1,
            "{name} is reported exactly once:\n{err}"
        );
    }
}

#[test]
fn a_thousand_files_under_the_descriptor_cap() {
    let s = Scratch::new();
    let cfg = s.simple_config("*.log", "");
    // Cap descriptors at 100 for the whole flow.
    let text = fs::read_to_string(&cfg).unwrap();
    fs::write(&cfg, format!("maxOpenFiles: 100\n{text}")).unwrap();
    let mut child = spawn(&cfg, &s.path("agent.log"));
    std::thread::sleep(Duration::from_millis(500));
    let mut expected = vec![];
    for round in 0..2 {
        for i in 0..1000 {
            let l = vec![format!("file {i:04} round {round}")];
            append(&s.logs().join(format!("f{i:04}.log")), &l);
            expected.extend(l);
        }
        // Descriptors of the agent stay under the cap (plus stdio, inotify, sockets).
        let fds = fs::read_dir(format!("/proc/{}/fd", child.id()))
            .unwrap()
            .count();
        assert!(fds < 100 + 30, "{fds} descriptors open");
    }
    let got = wait_until(&s.out(), Duration::from_secs(60), |l| l.len() >= 2000);
    let fds = fs::read_dir(format!("/proc/{}/fd", child.id()))
        .unwrap()
        .count();
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(15));
    assert!(fds < 100 + 30, "{fds} descriptors open");
    assert_eq!(assert_all_delivered(&expected, &got), 0);
}

#[test]
fn remove_after_shipped_deletes_a_rotated_file_once_acknowledged() {
    let s = Scratch::new();
    let cfg = s.simple_config("*.log", "removeAfterShipped: true\n");
    let mut child = spawn(&cfg, &s.path("agent.log"));
    std::thread::sleep(Duration::from_millis(300));
    let log = s.logs().join("app.log");
    let a = numbered("a", 0..100);
    append(&log, &a);
    wait_until(&s.out(), Duration::from_secs(10), |l| l.len() >= 100);
    // Rotate out of the pattern; the last line has no newline: it is sent when the file
    // is done growing, before the file is removed.
    let rotated = s.logs().join("app.log.1");
    fs::rename(&log, &rotated).unwrap();
    let mut f = fs::OpenOptions::new().append(true).open(&rotated).unwrap();
    use std::io::Write;
    f.write_all(b"late line\nunfinished").unwrap();
    drop(f);
    append(&log, &numbered("b", 0..10));
    // Removed only after it stopped growing (10 s) and everything is checkpointed.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while rotated.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let gone = !rotated.exists();
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(15));
    assert!(gone, "the rotated file was removed");
    assert!(log.exists(), "the live file is never removed");
    let got = lines(&s.out());
    let mut expected = a;
    expected.push("late line".into());
    expected.push("unfinished".into());
    expected.extend(numbered("b", 0..10));
    assert_eq!(assert_all_delivered(&expected, &got), 0);
}

#[test]
fn a_corrupt_checkpoint_file_is_moved_aside_and_the_agent_starts() {
    let s = Scratch::new();
    let cfg = s.simple_config("*.log", "");
    fs::create_dir_all(s.checkpoints().parent().unwrap()).unwrap();
    fs::write(s.checkpoints(), b"{\"version\":1,\"flows\":{\"torn").unwrap();
    append(&s.logs().join("a.log"), &numbered("a", 0..10));
    let out = run_once(&cfg);
    assert!(out.status.success());
    assert_eq!(lines(&s.out()), numbered("a", 0..10));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("corrupt"), "{err}");
    let aside = fs::read_dir(s.checkpoints().parent().unwrap())
        .unwrap()
        .flatten()
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("checkpoints.corrupt-")
        });
    assert!(aside, "the corrupt file was kept aside");
    assert!(fs::read_to_string(s.checkpoints())
        .unwrap()
        .contains("\"version\":2"));
}

#[test]
fn shipping_goes_on_while_checkpoints_cannot_be_written_and_they_catch_up() {
    let s = Scratch::new();
    // The checkpoint's directory is a regular file: every write fails (as on a read-only
    // or full disk, which a test cannot arrange as root without mounts; the tests with
    // real full and read-only filesystems are below).
    let blocker = s.path("state");
    fs::write(&blocker, b"not a directory").unwrap();
    let cfg = s.simple_config("*.log", "");
    let mut child = spawn(&cfg, &s.path("agent.log"));
    std::thread::sleep(Duration::from_millis(300));
    append(&s.logs().join("a.log"), &numbered("a", 0..50));
    let got = wait_until(&s.out(), Duration::from_secs(10), |l| l.len() >= 50);
    assert_eq!(got.len(), 50, "shipping continues");
    std::thread::sleep(Duration::from_millis(1500));
    let log = fs::read_to_string(s.path("agent.log")).unwrap();
    assert!(log.contains("cannot write checkpoint file"), "{log}");
    // The disk is back.
    fs::remove_file(&blocker).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let size = fs::metadata(s.logs().join("a.log")).unwrap().len();
    let mut caught_up = false;
    while std::time::Instant::now() < deadline && !caught_up {
        caught_up = fs::read_to_string(s.checkpoints())
            .is_ok_and(|c| c.contains(&format!("\"offset\":{size}")));
        std::thread::sleep(Duration::from_millis(100));
    }
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(15));
    assert!(caught_up, "checkpoints caught up once the disk was back");
}

/// A panic in a delivery task ends the process with a logged internal error (instead of
/// the runtime swallowing it and the flow stalling), and nothing is lost: the batch was not
/// acknowledged, so the next start sends it.
#[test]
fn a_panic_ends_the_process_and_the_next_start_loses_nothing() {
    let s = Scratch::new();
    let cfg = s.simple_config("*.log", "");
    let expected = numbered("p", 0..50);
    append(&s.logs().join("a.log"), &expected);
    let log = s.path("agent.log");
    let stderr = fs::File::create(&log).unwrap();
    let mut child = command(&cfg)
        .arg("run")
        .env("KINESIS_TAIL_TEST_PANIC_IN_DELIVERY", "1")
        .stdin(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(20)).unwrap_or_else(|| {
        sigkill(&mut child);
        panic!("the agent kept running after a panic")
    });
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGABRT), "{status:?}");
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("ERROR") && text.contains("internal error, please report it"),
        "{text}"
    );
    assert!(lines(&s.out()).is_empty(), "nothing was delivered");

    let out = run_once(&cfg);
    assert!(out.status.success());
    assert_all_delivered(&expected, &lines(&s.out()));
}

/// A tmpfs mounted on a directory, unmounted when dropped (also when a test fails).
struct Tmpfs {
    dir: std::path::PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` on `dir`; `None` (with a message) where mounting is not
    /// permitted (not root, or a container without the capability).
    fn mount(dir: &std::path::Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0750"),
                "tmpfs",
            ])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs {
                dir: dir.to_path_buf(),
            }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs here ({}); the full and read-only \
                     checkpoint directory test needs root with CAP_SYS_ADMIN",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount ({e})");
                None
            }
        }
    }

    fn remount(&self, mode: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(status.success(), "mount -o remount,{mode}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

/// The offset of the only entry of the checkpoint file, if it is whole.
fn checkpointed_offset(s: &Scratch) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(&fs::read(s.checkpoints()).ok()?).ok()?;
    let flows = v["flows"].as_object()?;
    let entries = flows.values().next()?.as_array()?;
    entries.first()?["offset"].as_u64()
}

/// Waits until the checkpoint file says `offset`.
fn wait_checkpointed(s: &Scratch, offset: u64, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if checkpointed_offset(s) == Some(offset) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[derive(Clone, Copy, PartialEq)]
enum DiskTrouble {
    Full,
    ReadOnly,
}

/// The checkpoint directory is a real filesystem that fills up or turns
/// read-only while the agent runs. Shipping goes on; the failure is logged once, naming
/// the checkpoint file and the errno; the checkpoint on disk stays the last whole one; and
/// once the filesystem is writable again the checkpoint catches up within seconds.
fn checkpoint_filesystem_trouble(trouble: DiskTrouble) {
    let s = Scratch::new();
    let Some(fs_) = Tmpfs::mount(&s.path("state"), "64k") else {
        return;
    };
    let cfg = s.simple_config("*.log", "");
    let log = s.logs().join("a.log");
    let agent_log = s.path("agent.log");
    let mut agent = Agent(spawn(&cfg, &agent_log));
    append(&log, &numbered("a", 0..50));
    let before = fs::metadata(&log).unwrap().len();
    assert_eq!(
        wait_until(&s.out(), Duration::from_secs(10), |l| l.len() >= 50).len(),
        50
    );
    assert!(
        wait_checkpointed(&s, before, Duration::from_secs(10)),
        "checkpointed before the trouble"
    );

    let filler = s.path("state/filler");
    let (errno, text) = match trouble {
        DiskTrouble::Full => {
            // Fill the filesystem to the last block.
            use std::io::Write;
            let mut f = fs::File::create(&filler).unwrap();
            let chunk = [0u8; 4096];
            let err = loop {
                if let Err(e) = f.write_all(&chunk) {
                    break e;
                }
            };
            assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
            (libc::ENOSPC, "No space left on device")
        }
        DiskTrouble::ReadOnly => {
            fs_.remount("ro");
            (libc::EROFS, "Read-only file system")
        }
    };
    let errors_before = fs::read_to_string(&agent_log)
        .unwrap()
        .matches("cannot write checkpoint file")
        .count();
    assert_eq!(errors_before, 0);

    // Lines keep coming and are shipped; several checkpoint writes fail meanwhile.
    for i in 0..4 {
        append(&log, &numbered(&format!("b{i}"), 0..25));
        std::thread::sleep(Duration::from_millis(800));
    }
    let during = fs::metadata(&log).unwrap().len();
    let got = wait_until(&s.out(), Duration::from_secs(10), |l| l.len() >= 150);
    assert_eq!(got.len(), 150, "shipping continues");
    std::thread::sleep(Duration::from_millis(1500));
    let text_log = fs::read_to_string(&agent_log).unwrap();
    let errors: Vec<&str> = text_log
        .lines()
        .filter(|l| l.contains("cannot write checkpoint file"))
        .collect();
    eprintln!(
        "checkpoint filesystem {}:",
        if trouble == DiskTrouble::Full {
            "full"
        } else {
            "read-only"
        }
    );
    for e in &errors {
        eprintln!("  {e}");
    }
    assert_eq!(
        errors.len(),
        1,
        "reported once (at most once a minute), not at every attempt"
    );
    assert!(
        errors[0].contains(&s.checkpoints().display().to_string())
            && errors[0].contains(text)
            && errors[0].contains(&format!("os error {errno}")),
        "names the file and the errno: {}",
        errors[0]
    );
    assert_eq!(
        checkpointed_offset(&s),
        Some(before),
        "the checkpoint on disk is the last whole one"
    );

    // The filesystem is writable again: the checkpoint catches up.
    match trouble {
        DiskTrouble::Full => fs::remove_file(&filler).unwrap(),
        DiskTrouble::ReadOnly => fs_.remount("rw"),
    }
    let caught_up = wait_checkpointed(&s, during, Duration::from_secs(10));
    sigterm(&agent.0);
    let status = wait_exit(&mut agent.0, Duration::from_secs(15)).expect("exits on SIGTERM");
    assert!(status.success());
    assert!(
        caught_up,
        "checkpoints caught up once the filesystem was back"
    );
    assert!(fs::read_to_string(&agent_log)
        .unwrap()
        .contains("written again"));
    // A restart resumes there: nothing is shipped twice.
    assert!(run_once(&cfg).status.success());
    assert_eq!(lines(&s.out()).len(), 150, "no line shipped twice");
}

#[test]
fn a_full_checkpoint_filesystem_is_reported_and_shipping_goes_on() {
    checkpoint_filesystem_trouble(DiskTrouble::Full);
}

#[test]
fn a_read_only_checkpoint_filesystem_is_reported_and_shipping_goes_on() {
    checkpoint_filesystem_trouble(DiskTrouble::ReadOnly);
}

/// Debian's real `logrotate`, driven with `-f` while a writer appends, in the modes users
/// configure. `None` (with a message) where logrotate is not installed; `.ci/run`
/// installs it.
fn logrotate_bin() -> Option<std::path::PathBuf> {
    [
        "/usr/sbin/logrotate",
        "/sbin/logrotate",
        "/usr/bin/logrotate",
    ]
    .iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.exists())
}

/// Runs one logrotate scenario: `directives` for `logs/app.log`, the flow's `glob`, 5
/// rotations while a writer appends 800 lines/s; every line must arrive exactly once and
/// whole (no kill, so no duplicate is allowed).
fn logrotate_scenario(name: &str, glob: &str, directives: &str) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    let Some(bin) = logrotate_bin() else {
        eprintln!("logrotate not installed (apt-get install logrotate): skipping {name}");
        return;
    };
    let s = Scratch::new();
    let log = s.logs().join("app.log");
    fs::create_dir_all(s.path("old")).unwrap();
    let conf = s.path("logrotate.conf");
    fs::write(
        &conf,
        format!(
            "{} {{\n  missingok\n  nomail\n{directives}\n}}\n",
            log.display()
        )
        .replace("OLDDIR", &s.path("old").display().to_string()),
    )
    .unwrap();
    let state = s.path("logrotate.state");
    let cfg = s.simple_config(glob, "");
    let mut agent = Agent(spawn(&cfg, &s.path("agent.log")));
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    // The writer pauses while logrotate runs: copytruncate loses what is written between
    // its copy and its truncation (a hole of logrotate's own), and this writer, which
    // opens the path for each write, would race `create` (its lines would land in a file
    // that `create` then replaces; an application keeps its descriptor instead).
    let lock = Arc::new(Mutex::new(()));
    let tag = name.to_string();
    let writer = spawn_writer(
        log.clone(),
        800,
        move |n| format!("{tag} line {n:07} {}\n", "x".repeat(n as usize % 200)),
        (stop.clone(), written.clone(), lock.clone()),
    );
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(1200));
        let _g = lock.lock().unwrap();
        let out = std::process::Command::new(&bin)
            .arg("-f")
            .arg("-s")
            .arg(&state)
            .arg(&conf)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: logrotate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let total = written.load(Ordering::Relaxed) as usize;
    let expected: Vec<String> = (0..total)
        .map(|n| format!("{name} line {n:07} {}", "x".repeat(n % 200)))
        .collect();
    wait_until(&s.out(), Duration::from_secs(30), |l| l.len() >= total);
    let agent_log = stop_cleanly(&mut agent.0, &s.path("agent.log"));
    let got = lines(&s.out());
    let want: std::collections::HashSet<&String> = expected.iter().collect();
    let torn = got.iter().filter(|l| !want.contains(l)).count();
    let dups = assert_all_delivered(&expected, &got);
    eprintln!(
        "logrotate {name}: {total} lines written, {} delivered, {dups} duplicates, {torn} torn",
        got.len()
    );
    assert_eq!(torn, 0, "{name}: torn or foreign records\n{agent_log}");
    assert_eq!(dups, 0, "{name}: duplicates without a kill\n{agent_log}");
}

#[test]
fn logrotate_create() {
    logrotate_scenario("create", "app.log", "  rotate 5\n  create");
}

#[test]
fn logrotate_copytruncate() {
    logrotate_scenario("copytruncate", "app.log", "  rotate 5\n  copytruncate");
}

/// The rotated names match the pattern: the copy is seen as a new file of the pattern,
/// growing while logrotate writes it, before or after the original's truncation.
#[test]
fn logrotate_copytruncate_delaycompress_rotated_names_in_the_pattern() {
    logrotate_scenario(
        "delaycompress",
        "app.log*",
        "  rotate 5\n  copytruncate\n  compress\n  delaycompress",
    );
}

#[test]
fn logrotate_dateext_olddir() {
    logrotate_scenario(
        "dateext",
        "app.log",
        "  rotate 5\n  create\n  dateext\n  dateformat -%Y%m%d-%s\n  olddir OLDDIR",
    );
}

#[test]
fn logrotate_rotate_1() {
    logrotate_scenario("rotate1", "app.log*", "  rotate 1\n  create");
}

/// The enemies of a first-bytes heuristic: per-worker CSV files created at once with one
/// header line, and a new day's file beside a live one with that header. Each is a file
/// of its own: read from its start, its records under IDs of its own.
#[test]
fn files_that_begin_alike_are_different_files() {
    use std::collections::HashMap;
    let s = Scratch::new();
    let extra = "recordIdField: recordId\ndataProcessingOptions:\n  - optionName: CSVTOJSON\n    customFieldNames: [id, worker, value]\n";
    let cfg = s.simple_config("*.csv", extra);
    let header = "id,worker,value".to_string();
    let mut agent = Agent(spawn(&cfg, &s.path("agent.log")));
    std::thread::sleep(Duration::from_millis(300));
    let mut expected = Vec::new();
    for w in 0..4 {
        append(
            &s.logs().join(format!("w{w}.csv")),
            std::slice::from_ref(&header),
        );
    }
    for round in 0..3 {
        for w in 0..4 {
            let rows: Vec<String> = (0..100)
                .map(|i| format!("{},w{w},{}", round * 100 + i, i * 3))
                .collect();
            append(&s.logs().join(format!("w{w}.csv")), &rows);
            expected.extend(rows);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // A new day's file, same header, beside the live ones.
    let day: Vec<String> = std::iter::once(header.clone())
        .chain((0..50).map(|i| format!("{i},day2,{i}")))
        .collect();
    append(&s.logs().join("day2.csv"), &day);
    expected.extend(day[1..].iter().cloned());
    // Headers are records too (no skipHeaderLines): one per file.
    let want = expected.len() + 5;
    let got = wait_until(&s.out(), Duration::from_secs(40), |l| l.len() >= want);
    stop_cleanly(&mut agent.0, &s.path("agent.log"));
    let mut rows = Vec::new();
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut shared = 0;
    for l in &got {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let row = format!(
            "{},{},{}",
            v["id"].as_str().unwrap(),
            v["worker"].as_str().unwrap(),
            v["value"].as_str().unwrap()
        );
        let id = v["recordId"].as_str().unwrap().to_string();
        if ids.insert(id, row.clone()).is_some_and(|r| r != row) {
            shared += 1;
        }
        rows.push(row);
    }
    let headers = rows.iter().filter(|r| **r == header).count();
    assert_eq!(headers, 5, "each file's header read once");
    assert_eq!(shared, 0, "distinct records under one record ID");
    let dups = assert_all_delivered(&expected, &rows);
    assert_eq!(dups, headers - 1, "nothing but the headers repeats");
}

/// A file rewritten with O_TRUNC while the agent was stopped, beginning with the same
/// banner and longer than its checkpoint: its new content is read from the start, not
/// resumed in the middle.
#[test]
fn a_rewrite_behind_the_same_banner_is_read_from_its_start() {
    let s = Scratch::new();
    let cfg = s.simple_config("*.log", "");
    let log = s.logs().join("app.log");
    let banner = "=== service started ===".to_string();
    let old: Vec<String> = std::iter::once(banner.clone())
        .chain(numbered("old", 0..200))
        .collect();
    append(&log, &old);
    assert!(run_once(&cfg).status.success());
    let new: Vec<String> = std::iter::once(banner.clone())
        .chain(numbered("new", 0..400))
        .collect();
    fs::write(&log, new.join("\n") + "\n").unwrap();
    assert!(run_once(&cfg).status.success());
    let got = lines(&s.out());
    assert_all_delivered(&new[1..], &got);
    assert_eq!(got.len(), old.len() + new.len(), "each line once");
}

/// A flow whose checkpoint key changes (its pattern widened) resumes the files the old
/// key's entries know where they were, and reads the files new to it as at a first
/// start.
#[test]
fn a_changed_flow_key_neither_reships_nor_skips() {
    let s = Scratch::new();
    let a = s.logs().join("a.log");
    append(&a, &numbered("a", 0..100));
    let narrow = s.simple_config("a.log", "");
    assert!(run_once(&narrow).status.success());
    append(&a, &numbered("a", 100..150));
    append(&s.logs().join("b.log"), &numbered("b", 0..30));
    let wide = s.simple_config("*.log", "");
    assert!(run_once(&wide).status.success());
    let got = lines(&s.out());
    let mut expected = numbered("a", 0..150);
    expected.extend(numbered("b", 0..30));
    assert_eq!(
        assert_all_delivered(&expected, &got),
        0,
        "nothing shipped twice"
    );
}

/// Kubelet-style container logs (`optionName: CRI`, `output: json`): lines the runtime
/// split are joined, every record names its pod from the path, and the kubelet's
/// rotation (rename to `0.log.<time>`, create `0.log`, keep writing to the old file a
/// moment) and a container restart (`1.log`) lose nothing and send nothing twice.
#[test]
fn kubelet_container_logs_rotate_without_loss_and_name_their_pod() {
    let s = Scratch::new();
    let dir = s.logs().join("pods/shop_web-1_5f0c-11aa/app");
    fs::create_dir_all(&dir).unwrap();
    let pattern = format!("{}/pods/*/*/*.log", s.logs().display());
    let extra = format!(
        "outputFile: {}\ninitialPosition: START_OF_FILE\nmaxBufferAgeMillis: 1000\n\
         dataProcessingOptions:\n  - optionName: CRI\n    output: json\n",
        s.out().display()
    );
    let cfg = s.config(&[(&pattern, &extra)], "");
    let mut child = spawn(&cfg, &s.path("agent.log"));
    let t = "2026-12-02T10:00:00.000000001Z";
    let mut expected = vec![];
    // Whole lines and one line split in three (as containerd splits at 16 KiB).
    let write = |path: &std::path::Path, round: &str, expected: &mut Vec<String>| {
        let mut lines = vec![];
        for i in 0..200 {
            let msg = format!("{round}-{i} GET /x");
            lines.push(format!("{t} stdout F {msg}"));
            expected.push(msg);
        }
        let long = format!("{round}-long-{}", "x".repeat(20_000));
        let (a, rest) = long.split_at(7_000);
        let (b, c) = rest.split_at(7_000);
        lines.push(format!("{t} stderr P {a}"));
        lines.push(format!("{t} stderr P {b}"));
        lines.push(format!("{t} stderr F {c}"));
        expected.push(long);
        append(path, &lines);
    };
    let live = dir.join("0.log");
    for round in 0..3 {
        write(&live, &format!("r{round}"), &mut expected);
        std::thread::sleep(Duration::from_millis(400));
        let rotated = dir.join(format!("0.log.20261202-10150{round}"));
        fs::rename(&live, &rotated).unwrap();
        write(&rotated, &format!("late{round}"), &mut expected);
        write(&live, &format!("new{round}"), &mut expected);
    }
    // The container restarts: the kubelet opens 1.log beside 0.log.
    std::thread::sleep(Duration::from_millis(400));
    write(&dir.join("1.log"), "restart", &mut expected);

    let got = wait_until(&s.out(), Duration::from_secs(30), |l| {
        l.len() >= expected.len()
    });
    let agent_log = stop_cleanly(&mut child, &s.path("agent.log"));
    let mut logs = vec![];
    for line in &got {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:.200}\n{agent_log}"));
        assert_eq!(
            v["kubernetes"],
            serde_json::json!({"namespace": "shop", "pod": "web-1", "container": "app", "podUid": "5f0c-11aa"}),
            "{line:.200}"
        );
        assert_eq!(v["time"], t);
        let log = v["log"].as_str().unwrap().to_string();
        let stream = if log.contains("-long-") {
            "stderr"
        } else {
            "stdout"
        };
        assert_eq!(v["stream"], stream);
        logs.push(log);
    }
    let dups = assert_all_delivered(&expected, &logs);
    assert_eq!(dups, 0, "duplicates");
    assert_eq!(logs.len(), expected.len());
}
