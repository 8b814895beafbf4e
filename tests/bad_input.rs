//! Bad input and secrets (issue 9): whatever the files hold, every valid line arrives and
//! nothing hangs; credentials never reach a log line.

mod common;
mod support;

use std::fs;
use std::io::Write;

use common::*;

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
