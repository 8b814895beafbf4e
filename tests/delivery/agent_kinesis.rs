//! The whole agent (the real binary) shipping to Kinesis in moto, through the fault proxy.

use crate::support;
use crate::support::agent;

use std::collections::HashSet;
use std::fs;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use support::proxy::{Faults, Proxy};
use support::Moto;

fn agent_config(
    s: &agent::Scratch,
    endpoint: &str,
    stream: &str,
    extra: &str,
) -> std::path::PathBuf {
    let pattern = format!("{}/*.log", s.logs().display());
    let flow = format!(
        "kinesisStream: {stream}\ninitialPosition: START_OF_FILE\nretryInitialBackoffMillis: 50\nretryMaxBackoffMillis: 500\n{extra}"
    );
    s.config(
        &[(&pattern, &flow)],
        &format!("kinesis.endpoint: {endpoint}\nkinesis.region: us-east-1\nshutdownTimeoutMillis: 3000\n"),
    )
}

fn apache_lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let host = if i % 3 == 0 { "2001:db8::1f".to_string() } else { format!("203.0.113.{}", i % 250) };
            format!(
                "{host} - frank [27/Nov/2026:12:00:{:02} +0000] \"GET /item/{i} HTTP/1.1\" 200 {} \"https://example.com/\" \"Mozilla/5.0 (X11; Linux x86_64) line {i}\"",
                i % 60,
                100 + i
            )
        })
        .collect()
}

fn hash_of(key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(key.as_bytes()).into())
}

/// LOGTOJSON + KPL into a 4-shard stream through a proxy that fails 30 % of the entries
/// and answers some HTTP 500s: every line arrives, read back by the reference
/// de-aggregator, in the shard its hash key belongs to, with its record ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logtojson_kpl_through_faults_every_line_in_its_shard() {
    let Some(moto) = Moto::start() else { return };
    let client = support::kinesis(&moto.endpoint);
    support::create_stream(&client, "logs", 4).await;
    let proxy = Proxy::start(&moto.endpoint).await;
    proxy.set_faults(Faults {
        entry_failure_share: 0.3,
        http_500_share: 0.1,
        ..Faults::default()
    });
    let s = agent::Scratch::new();
    let lines = apache_lines(3000);
    agent::append(&s.logs().join("access.log"), &lines);
    let cfg = agent_config(
        &s,
        &proxy.endpoint,
        "logs",
        "aggregation: KPL\naggregatedRecordSizeBytes: 16384\npartitionKeyOption: DETERMINISTIC\nrecordIdField: recordId\ndataProcessingOptions:\n  - optionName: LOGTOJSON\n    logFormat: COMBINEDAPACHELOG\n    lenient: true\n",
    );
    let out = tokio::task::spawn_blocking(move || agent::run_once(&cfg))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (ranges, stored) = support::read_stream(&client, "logs").await;
    let users = support::deaggregate(&stored);
    assert!(
        users.iter().all(|u| u.aggregated),
        "every record is a KPL aggregate"
    );
    let mut ids = HashSet::new();
    let mut agents = HashSet::new();
    for u in &users {
        let range = ranges.iter().find(|r| r.id == u.shard).unwrap();
        let h = match &u.explicit_hash_key {
            Some(k) => k.parse::<u128>().unwrap(),
            None => hash_of(&u.partition_key),
        };
        assert!(
            range.start <= h && h <= range.end,
            "user record outside its shard {}",
            u.shard
        );
        let data = u.bytes();
        assert_eq!(
            data.last(),
            Some(&b'\n'),
            "records end with a newline, as the Java agent's"
        );
        // DETERMINISTIC: the key is the hex MD5 of the record as sent, newline included
        // (the Java agent's KinesisRecord hashes its processed record's bytes).
        let digest = Md5::digest(&data);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(u.partition_key, hex, "the key of a record is its MD5");
        let v: serde_json::Value = serde_json::from_slice(&data).unwrap();
        ids.insert(v["recordId"].as_str().expect("recordId").to_string());
        agents.insert(v["agent"].as_str().unwrap().to_string());
    }
    assert_eq!(agents.len(), 3000, "every line arrived");
    assert_eq!(ids.len(), 3000, "each line has its own record ID");
    let failed = proxy
        .seen()
        .iter()
        .filter(|e| e.fate == support::proxy::Fate::EntryFailed)
        .count();
    assert!(
        failed > 0,
        "the proxy failed entries: {:?}, {} seen",
        proxy.counts(),
        proxy.seen().len()
    );
}

/// A 5 MiB line is truncated to a valid record; the lines around it are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_line_is_truncated_and_its_batch_delivered() {
    let Some(moto) = Moto::start() else { return };
    let client = support::kinesis(&moto.endpoint);
    support::create_stream(&client, "raw", 1).await;
    let proxy = Proxy::start(&moto.endpoint).await;
    // Kinesis rejects a request with a record above 1 MiB; moto does not, the proxy does.
    proxy.set_faults(Faults {
        max_record_bytes: Some(1024 * 1024),
        ..Faults::default()
    });
    let s = agent::Scratch::new();
    let mut lines: Vec<String> = (0..100).map(|i| format!("before {i}")).collect();
    lines.push("x".repeat(5 * 1024 * 1024));
    lines.extend((0..100).map(|i| format!("after {i}")));
    agent::append(&s.logs().join("big.log"), &lines);
    let cfg = agent_config(
        &s,
        &proxy.endpoint,
        "raw",
        "truncatedRecordTerminator: \"...TRUNCATED\\n\"\n",
    );
    let out = tokio::task::spawn_blocking(move || agent::run_once(&cfg))
        .await
        .unwrap();
    assert!(out.status.success());
    let (_, stored) = support::read_stream(&client, "raw").await;
    assert_eq!(stored.len(), 201);
    let big = stored.iter().find(|r| r.data.starts_with(b"xxx")).unwrap();
    assert!(big.data.len() + big.partition_key.len() <= 1024 * 1024);
    assert!(big.data.ends_with(b"...TRUNCATED\n"));
    for want in ["before 0\n", "before 99\n", "after 0\n", "after 99\n"] {
        assert!(
            stored.iter().any(|r| r.data == want.as_bytes()),
            "{want:?} delivered"
        );
    }
}

/// A missing stream: one clear ERROR, the agent keeps running, and delivers once the
/// stream is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_stream_one_error_then_delivery() {
    let Some(moto) = Moto::start() else { return };
    let client = support::kinesis(&moto.endpoint);
    let s = agent::Scratch::new();
    let lines: Vec<String> = (0..50).map(|i| format!("waiting line {i}")).collect();
    agent::append(&s.logs().join("a.log"), &lines);
    let cfg = agent_config(&s, &moto.endpoint, "late", "");
    let log = s.path("agent.log");
    let mut child = agent::spawn(&cfg, &log);
    tokio::time::sleep(Duration::from_secs(3)).await;
    support::create_stream(&client, "late", 1).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = 0;
    while Instant::now() < deadline {
        got = support::read_stream(&client, "late").await.1.len();
        if got >= 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    agent::sigterm(&child);
    let status =
        tokio::task::spawn_blocking(move || agent::wait_exit(&mut child, Duration::from_secs(20)))
            .await
            .unwrap()
            .expect("exits");
    assert!(status.success());
    assert_eq!(got, 50, "delivered once the stream exists");
    let text = fs::read_to_string(&log).unwrap();
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(!errors.is_empty(), "{text}");
    assert!(
        errors[0].contains("late") && errors[0].contains("us-east-1"),
        "{}",
        errors[0]
    );
    assert!(
        errors
            .iter()
            .filter(|l| l.contains("ResourceNotFound"))
            .count()
            <= 2,
        "one clear error (preflight and delivery), not one per retry:\n{}",
        errors.join("\n")
    );
}

/// SIGTERM while the destination is down and the queue is full: the agent still stops
/// within `shutdownTimeoutMillis`, with exit code 0, and the unacknowledged lines are
/// shipped after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_the_destination_down_and_a_full_queue() {
    let s = agent::Scratch::new();
    let lines: Vec<String> = (0..5000).map(|i| format!("queued line {i:05}")).collect();
    agent::append(&s.logs().join("a.log"), &lines);
    // Nothing listens on this port: every request fails, forever.
    let dead = format!("http://127.0.0.1:{}", support::free_port());
    let cfg = agent_config(
        &s,
        &dead,
        "down",
        "publishQueueCapacity: 1\nmaxBufferSizeRecords: 10\n",
    );
    let log = s.path("agent.log");
    let mut child = agent::spawn(&cfg, &log);
    // Once the flow runs (after its preflight, which retries the dead endpoint), the
    // reader fills the one-batch queue at once and blocks.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("started with")
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t = Instant::now();
    agent::sigterm(&child);
    let status =
        tokio::task::spawn_blocking(move || agent::wait_exit(&mut child, Duration::from_secs(20)))
            .await
            .unwrap()
            .expect("exits although the queue is full and the destination down");
    assert!(status.success());
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "stopped within the 3 s timeout plus margin: {:?}",
        t.elapsed()
    );
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("shutdown timeout"), "{text}");
}

/// What `run` puts in the stream is byte for byte what `process` prints for the same
/// file: LOGTOJSON + ADDMETADATA over odd lines (CRLF, an IPv6 host the Java pattern
/// drops, invalid UTF-8, a line whose JSON is above 1 MiB), DETERMINISTIC keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sends_exactly_what_process_prints() {
    let Some(moto) = Moto::start() else { return };
    let client = support::kinesis(&moto.endpoint);
    support::create_stream(&client, "same", 2).await;
    let s = agent::Scratch::new();
    let mut body: Vec<u8> = Vec::new();
    for i in 0..200 {
        body.extend_from_slice(
            format!(
                "10.0.0.{} - frank [27/Nov/2026:12:00:{:02} +0000] \"GET /i/{i} HTTP/1.1\" 200 {} \"-\" \"agent é {i}\"\n",
                i % 250,
                i % 60,
                100 + i
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(b"10.0.0.1 - - [27/Nov/2026:12:00:00 +0000] \"GET /crlf HTTP/1.1\" 200 5 \"-\" \"crlf\"\r\n");
    body.extend_from_slice(
        b"2001:db8::1 - - [27/Nov/2026:12:00:00 +0000] \"GET /v6 HTTP/1.1\" 200 5 \"-\" \"v6\"\n",
    );
    body.extend_from_slice(b"10.0.0.2 - - [27/Nov/2026:12:00:00 +0000] \"GET /bad\xff HTTP/1.1\" 200 5 \"-\" \"\xe6\x97\"\n");
    body.extend_from_slice(
        b"10.0.0.3 - - [27/Nov/2026:12:00:00 +0000] \"GET /big HTTP/1.1\" 200 5 \"-\" \"",
    );
    body.extend(std::iter::repeat_n(b'y', 1536 * 1024));
    body.extend_from_slice(b"\"\nnot a log line\n");
    fs::write(s.logs().join("access.log"), &body).unwrap();
    let cfg = agent_config(
        &s,
        &moto.endpoint,
        "same",
        "partitionKeyOption: DETERMINISTIC\ndataProcessingOptions:\n  - optionName: LOGTOJSON\n    logFormat: COMBINEDAPACHELOG\n  - {optionName: ADDMETADATA, metadata: {host: h1}}\n",
    );
    let printed = {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kinesis-tail"))
            .arg("--configuration")
            .arg(&cfg)
            .args(["process", "--flow", "0"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = body.clone();
        let w = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
        let out = child.wait_with_output().unwrap();
        w.join().unwrap().unwrap();
        assert!(out.status.success());
        out.stdout
    };
    let out = tokio::task::spawn_blocking(move || agent::run_once(&cfg))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, stored) = support::read_stream(&client, "same").await;
    // Every record ends with its newline (the cut one with the terminator, `\n`).
    let mut want: Vec<Vec<u8>> = printed
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    let mut got: Vec<Vec<u8>> = stored.iter().map(|r| r.data.clone()).collect();
    for r in &stored {
        let hex: String = Md5::digest(&r.data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(r.partition_key, hex, "DETERMINISTIC: the MD5 of the record");
        assert!(r.data.len() + r.partition_key.len() <= 1024 * 1024);
    }
    want.sort();
    got.sort();
    assert_eq!(
        got.len(),
        203,
        "200 lines, the CRLF one, the invalid UTF-8 one, the big one"
    );
    assert!(got == want, "the stream holds what process printed");
}
