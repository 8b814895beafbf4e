//! The command line through the real binary: exit codes, `check`, `process`, readiness.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn kt(args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap()
}

#[test]
fn version_and_help_exit_zero() {
    let out = kt(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    assert!(kt(&["--help"]).status.success());
}

#[test]
fn check_prints_flows_and_exits_zero() {
    let out = kt(&["check", "-c", "tests/fixtures/config/agent.json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("flows[0]"), "{text}");
    assert!(text.contains("LOGTOJSON"), "{text}");
    assert!(text.contains("checkpoint file"), "{text}");
}

#[test]
fn check_reports_every_error_with_exit_one() {
    let s = Scratch::new();
    let cfg = s.path("bad.yaml");
    std::fs::write(
        &cfg,
        "flows:\n  - filePattern: /var/log/a.log\n    initialPosition: MIDDLE\n  - filePattern: /var/log/b.log\n    kinesisStream: s\n    maxBufferSizeRecords: 900\n",
    )
    .unwrap();
    let out = kt(&["check", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("initialPosition"), "{err}");
    assert!(
        err.contains("START_OF_FILE"),
        "names what is allowed: {err}"
    );
    assert!(err.contains("maxBufferSizeRecords"), "{err}");
    assert!(err.contains("500"), "names the range: {err}");
    assert!(
        err.contains("flows[0]") && err.contains("flows[1]"),
        "{err}"
    );
    // A YAML syntax error names the line.
    std::fs::write(&cfg, "flows:\n  - filePattern: [unclosed\n").unwrap();
    let out = kt(&["check", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(":3:")
            || String::from_utf8_lossy(&out.stderr).contains(":2:")
    );
    // A missing file.
    let out = kt(&["run", "-c", "/nonexistent/config.yaml"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn run_exits_two_when_the_output_cannot_be_opened() {
    let s = Scratch::new();
    let pattern = format!("{}/*.log", s.logs().display());
    let cfg = s.config(&[(&pattern, "outputFile: /nonexistent-dir/out.txt\n")], "");
    let out = command(&cfg).args(["run", "--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent-dir/out.txt"));
}

#[test]
fn process_applies_framing_and_processors_to_stdin() {
    let s = Scratch::new();
    let pattern = format!("{}/*.log", s.logs().display());
    let cfg = s.config(
        &[(
            &pattern,
            "outputFile: \"-\"\ndataProcessingOptions:\n  - optionName: LOGTOJSON\n    logFormat: COMBINEDAPACHELOG\n",
        )],
        "",
    );
    let mut child = command(&cfg)
        .args(["process", "--flow", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"2001:db8::1 - - [27/Nov/2026:12:00:00 +0000] \"GET / HTTP/1.1\" 200 - \"-\" \"curl/8\"\nnot an access log line\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "the unmatched line is dropped: {text}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["host"], "2001:db8::1");
    assert_eq!(v["bytes"], serde_json::Value::Null);
    assert_eq!(v["agent"], "curl/8");
    // A flow index out of range is a configuration error.
    let out = command(&cfg)
        .args(["process", "--flow", "3"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn readiness_and_stopping_are_sent_to_notify_socket() {
    let s = Scratch::new();
    let sock_path = s.path("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let cfg = s.simple_config("*.log", "");
    let mut child = command(&cfg)
        .arg("run")
        .env("NOTIFY_SOCKET", &sock_path)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("READY=1 within 10 s");
    assert_eq!(&buf[..n], b"READY=1");
    sigterm(&child);
    let n = sock.recv(&mut buf).expect("STOPPING=1");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert!(wait_exit(&mut child, Duration::from_secs(15))
        .unwrap()
        .success());
}
