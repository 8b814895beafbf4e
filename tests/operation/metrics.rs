//! Observability: CloudWatch metrics read back from moto, the Prometheus `/metrics` and
//! `/health` endpoints, and the progress log lines of the real binary.
//!
//! Nothing here reaches AWS: CloudWatch goes to a moto server on 127.0.0.1 started by the
//! test (`KT_MOTO_SERVER`, else `.venv-test` of this crate, else `/work/main/.venv-test`),
//! with static test credentials and an explicit region.

use crate::support;
use crate::support::agent;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kinesis_tail::config::{load_str, Config};
use kinesis_tail::daemon::{self, RunOptions};
use kinesis_tail::metrics::{self, FlowStats, Stats};
use support::proxy::{Faults, Proxy};
use support::{free_port, test_env, Moto};

// ------------------------------------------------------------------ helpers

/// Runs `script` with the test venv's python, `cw` being a boto3 CloudWatch client of
/// `endpoint`. Returns stdout.
fn python(endpoint: &str, script: &str) -> String {
    let prelude = format!(
        "import boto3, json, datetime\n\
         cw = boto3.client('cloudwatch', endpoint_url='{endpoint}', region_name='us-east-1', \
         aws_access_key_id='testing', aws_secret_access_key='testing')\n"
    );
    let out = Command::new(support::venv_python())
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn config(text: &str) -> Config {
    load_str(text, Path::new("test.yaml"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .config
}

/// Two AWS flows (never started: only their counters are used) and CloudWatch at `endpoint`.
fn cloudwatch_config(dir: &Path, endpoint: &str, namespace: &str) -> Config {
    config(&format!(
        "checkpointFile: {dir}/checkpoints
awsAccessKeyId: testing
awsSecretAccessKey: testing
connectionTimeoutMillis: 1000
socketTimeoutMillis: 5000
cloudwatch:
  endpoint: {endpoint}
  region: us-east-1
  namespace: {namespace}
  metricsBufferTimeMillis: 1000
flows:
  - filePattern: {dir}/a/*.log
    kinesisStream: s1
  - filePattern: {dir}/b/*.log
    deliveryStream: d1
  - filePattern: {dir}/c/*.log
    outputFile: {dir}/out.txt
",
        dir = dir.display()
    ))
}

/// `{metric: {destination or "": sum}}` of every metric in `namespace`.
fn cloudwatch_sums(endpoint: &str, namespace: &str) -> serde_json::Value {
    let out = python(
        endpoint,
        &format!(
            "ns = '{namespace}'
out = {{}}
now = datetime.datetime.now(datetime.timezone.utc)
for m in cw.list_metrics(Namespace=ns)['Metrics']:
    dims = m.get('Dimensions', [])
    dest = ''.join(d['Value'] for d in dims if d['Name'] == 'Destination')
    st = cw.get_metric_statistics(Namespace=ns, MetricName=m['MetricName'], Dimensions=dims,
        StartTime=now - datetime.timedelta(hours=1), EndTime=now + datetime.timedelta(hours=1),
        Period=60, Statistics=['Sum', 'SampleCount'])
    out.setdefault(m['MetricName'], {{}})[dest] = sum(p['Sum'] for p in st['Datapoints'])
print(json.dumps(out))
"
        ),
    );
    serde_json::from_str(&out).unwrap()
}

const JAVA_NAMES: [&str; 5] = [
    "RecordSendAttempts",
    "ServiceErrors",
    "RecordsSent",
    "RecordSendErrors",
    "BytesSent",
];

// ------------------------------------------------------------------ CloudWatch

/// `list_metrics` shows the five Java names with the right `Destination`
/// values; the `RecordsSent` sum equals the records sent. The Kinesis and Firehose
/// sinks are not exercised here: the counters they move are set by the test, and the
/// publisher runs as the daemon runs it (`metrics::spawn`, flushed at shutdown).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudwatch_metrics_have_the_java_names_destinations_and_sums() {
    test_env();
    let Some(moto) = Moto::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = cloudwatch_config(dir.path(), &moto.endpoint, "KtTestNames");
    let stats = Stats::new(cfg.flows.len());
    let observers = metrics::spawn(&cfg, Arc::clone(&stats)).await.unwrap();

    let (k, f, o) = (&stats.flows[0], &stats.flows[1], &stats.flows[2]);
    FlowStats::add(&k.record_send_attempts, 130);
    FlowStats::add(&k.records_sent, 100);
    FlowStats::add(&k.bytes_sent, 10_000);
    FlowStats::add(&k.record_send_errors, 30);
    FlowStats::add(&k.service_errors, 2);
    FlowStats::add(&f.records_sent, 40);
    FlowStats::add(&o.records_sent, 999);
    FlowStats::add(&o.records_dropped, 3);
    o.files_tailed.store(2, Ordering::Relaxed);
    // Across windows: more is sent after the first flush.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    FlowStats::add(&k.records_sent, 23);
    FlowStats::add(&f.records_sent, 2);
    observers.shutdown().await;

    let sums = cloudwatch_sums(&moto.endpoint, "KtTestNames");
    for name in JAVA_NAMES {
        let dests = sums[name]
            .as_object()
            .unwrap_or_else(|| panic!("{name} missing: {sums}"));
        let mut names: Vec<&str> = dests.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(
            names,
            ["DeliveryStream:d1", "KinesisStream:s1"],
            "{name}: {sums}"
        );
    }
    assert_eq!(sums["RecordsSent"]["KinesisStream:s1"], 123.0, "{sums}");
    assert_eq!(sums["RecordsSent"]["DeliveryStream:d1"], 42.0, "{sums}");
    assert_eq!(sums["RecordSendAttempts"]["KinesisStream:s1"], 130.0);
    assert_eq!(sums["RecordSendErrors"]["KinesisStream:s1"], 30.0);
    assert_eq!(sums["ServiceErrors"]["KinesisStream:s1"], 2.0);
    assert_eq!(sums["BytesSent"]["KinesisStream:s1"], 10_000.0);
    // Agent-level metrics, without a Destination.
    assert_eq!(sums["RecordsDropped"][""], 3.0, "{sums}");
    assert!(sums["FilesTailed"][""].as_f64().unwrap() >= 2.0, "{sums}");
    assert!(sums["BytesBehind"].is_object(), "{sums}");
    // The outputFile flow has no Destination of its own.
    assert!(!sums.to_string().contains("OutputFile"), "{sums}");
}

/// A failed send is kept and sent at the next flush: CloudWatch is unreachable for the
/// first windows (the proxy closes every connection), then answers; nothing counted is
/// lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudwatch_failures_are_retried_at_the_next_flush() {
    let Some(moto) = Moto::start() else { return };
    let proxy = Proxy::start(&moto.endpoint).await;
    proxy.set_faults(Faults {
        outage_until: Some(Instant::now() + Duration::from_millis(3000)),
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = cloudwatch_config(dir.path(), &proxy.endpoint, "KtTestRetry");
    let stats = Stats::new(cfg.flows.len());
    let observers = metrics::spawn(&cfg, Arc::clone(&stats)).await.unwrap();
    FlowStats::add(&stats.flows[0].records_sent, 70);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    FlowStats::add(&stats.flows[0].records_sent, 5);
    tokio::time::sleep(Duration::from_millis(4000)).await;
    observers.shutdown().await;
    let (requests, _, dropped) = proxy.counts();
    assert!(dropped > 0, "no send failed during the outage");
    assert!(requests > dropped, "nothing sent after the outage");
    let sums = cloudwatch_sums(&moto.endpoint, "KtTestRetry");
    assert_eq!(sums["RecordsSent"]["KinesisStream:s1"], 75.0, "{sums}");
}

/// End to end: the agent ships lines to a Kinesis stream and a Firehose
/// delivery stream in moto and reports to moto's CloudWatch; `list_metrics` shows the
/// five Java names for both destinations, and the `RecordsSent` and `BytesSent` sums
/// equal what the destinations acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_reports_what_it_sent_to_cloudwatch() {
    let Some(moto) = Moto::start() else { return };
    let kinesis = support::kinesis(&moto.endpoint);
    support::create_stream(&kinesis, "s1", 2).await;
    let ep = moto.endpoint.clone();
    tokio::task::spawn_blocking(move || support::create_firehose(&ep, "d1", "bucket-d1"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("k")).unwrap();
    std::fs::create_dir(d.join("f")).unwrap();
    let k_lines: Vec<String> = (0..700).map(|i| format!("kinesis line {i}")).collect();
    let f_lines: Vec<String> = (0..300).map(|i| format!("firehose line {i}")).collect();
    agent::append(&d.join("k/a.log"), &k_lines);
    agent::append(&d.join("f/a.log"), &f_lines);
    let cfg = config(&format!(
        "checkpointFile: {d}/checkpoints
awsAccessKeyId: testing
awsSecretAccessKey: testing
kinesis.endpoint: {ep}
kinesis.region: us-east-1
firehose.endpoint: {ep}
firehose.region: us-east-1
cloudwatch:
  endpoint: {ep}
  region: us-east-1
  namespace: KtTestAgent
  metricsBufferTimeMillis: 1000
flows:
  - filePattern: {d}/k/*.log
    kinesisStream: s1
    initialPosition: START_OF_FILE
  - filePattern: {d}/f/*.log
    deliveryStream: d1
    initialPosition: START_OF_FILE
",
        d = d.display(),
        ep = moto.endpoint
    ));
    let summary = daemon::run(cfg, RunOptions { once: true }, std::future::pending())
        .await
        .unwrap();
    let (k, f) = (&summary.stats.flows[0], &summary.stats.flows[1]);
    assert_eq!(FlowStats::get(&k.records_sent), 700);
    assert_eq!(FlowStats::get(&f.records_sent), 300);
    let sums = cloudwatch_sums(&moto.endpoint, "KtTestAgent");
    for name in JAVA_NAMES {
        let dests = sums[name]
            .as_object()
            .unwrap_or_else(|| panic!("{name} missing: {sums}"));
        let mut names: Vec<&str> = dests.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(
            names,
            ["DeliveryStream:d1", "KinesisStream:s1"],
            "{name}: {sums}"
        );
    }
    assert_eq!(sums["RecordsSent"]["KinesisStream:s1"], 700.0, "{sums}");
    assert_eq!(sums["RecordsSent"]["DeliveryStream:d1"], 300.0, "{sums}");
    assert_eq!(
        sums["BytesSent"]["KinesisStream:s1"],
        FlowStats::get(&k.bytes_sent) as f64
    );
    assert_eq!(
        sums["RecordSendAttempts"]["KinesisStream:s1"],
        FlowStats::get(&k.record_send_attempts) as f64
    );
    assert_eq!(sums["ServiceErrors"]["KinesisStream:s1"], 0.0);
}

/// A fake instance metadata service (IMDSv2) answering with instance ID `i-0test`, on a
/// loopback port; serves until the test process ends.
fn fake_imds() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let body = if head.starts_with(b"PUT /latest/api/token") {
                "test-token".to_string()
            } else {
                r#"{"instanceId":"i-0test","region":"us-east-1"}"#.to_string()
            };
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

/// `cloudwatch.tagInstance` adds `Instance` = the instance ID to every metric.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudwatch_tag_instance_adds_the_instance_dimension() {
    test_env();
    let Some(moto) = Moto::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = cloudwatch_config(dir.path(), &moto.endpoint, "KtTestInstance");
    cfg.cloudwatch.tag_instance = true;
    cfg.ec2_metadata_endpoint = fake_imds();
    let stats = Stats::new(cfg.flows.len());
    let observers = metrics::spawn(&cfg, Arc::clone(&stats)).await.unwrap();
    FlowStats::add(&stats.flows[0].records_sent, 9);
    tokio::time::sleep(Duration::from_millis(300)).await;
    observers.shutdown().await;
    let out = python(
        &moto.endpoint,
        "ms = cw.list_metrics(Namespace='KtTestInstance')['Metrics']
print(json.dumps([{d['Name']: d['Value'] for d in m.get('Dimensions', [])} for m in ms]))
",
    );
    let dims: Vec<std::collections::HashMap<String, String>> = serde_json::from_str(&out).unwrap();
    assert_eq!(dims.len(), 2 * 5 + 3, "{out}");
    for d in &dims {
        assert_eq!(
            d.get("Instance").map(String::as_str),
            Some("i-0test"),
            "{out}"
        );
    }
}

// ------------------------------------------------------------------ HTTP helpers

/// `GET path` on `addr`: status and body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").expect("a complete response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(body.len(), len, "Content-Length");
    (status, body.to_string())
}

/// One exposed sample: name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// Parses a Prometheus text exposition strictly: every line is a `# HELP`/`# TYPE`
/// comment or `name{labels} value`; every sample's family has a TYPE, counters end in
/// `_total`. Returns `(name, labels, value)`.
fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut types = std::collections::HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("# ") {
            let mut p = c.splitn(3, ' ');
            let (kind, name, rest) = (p.next().unwrap(), p.next().unwrap(), p.next().unwrap());
            match kind {
                "HELP" => assert!(!rest.is_empty(), "{line}"),
                "TYPE" => {
                    assert!(["counter", "gauge"].contains(&rest), "{line}");
                    if rest == "counter" {
                        assert!(name.ends_with("_total"), "{line}");
                    }
                    assert!(types.insert(name.to_string(), rest.to_string()).is_none());
                }
                _ => panic!("unexpected comment {line}"),
            }
            continue;
        }
        let name_end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or_else(|| panic!("no value: {line}"));
        let name = &line[..name_end];
        assert!(
            !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit()),
            "{line}"
        );
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            let mut r = r;
            loop {
                if let Some(after) = r.strip_prefix('}') {
                    r = after;
                    break;
                }
                let (lname, after) = r.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
                let mut value = String::new();
                let mut chars = after.char_indices();
                let end = loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c)) => value.push(c),
                            None => panic!("{line}"),
                        },
                        Some((i, '"')) => break i,
                        Some((_, c)) => value.push(c),
                        None => panic!("unterminated label: {line}"),
                    }
                };
                labels.push((lname.trim_start_matches(',').to_string(), value));
                r = after[end + 1..].trim_start_matches(',');
            }
            rest = r;
        }
        let value = rest.strip_prefix(' ').unwrap_or_else(|| panic!("{line}"));
        let v: f64 = match value {
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        assert!(types.contains_key(name), "sample before its TYPE: {line}");
        samples.push((name.to_string(), labels, v));
    }
    samples
}

fn sample(samples: &[Sample], name: &str, flow: &str) -> f64 {
    samples
        .iter()
        .find(|(n, l, _)| n == name && l.iter().any(|(k, v)| k == "flow" && v == flow))
        .unwrap_or_else(|| panic!("no {name}{{flow={flow}}}"))
        .2
}

// ------------------------------------------------------------------ /metrics and /health

/// The whole agent in-process with an outputFile flow: `/metrics` parses and counts the
/// lines shipped; `/health` is 200; unknown paths are 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_exposes_per_flow_counters() {
    test_env();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let lines: Vec<String> = (0..250).map(|i| format!("line number {i}")).collect();
    agent::append(&dir.path().join("logs/app.log"), &lines);
    let port = free_port();
    let out = dir.path().join("out.txt");
    let cfg = config(&format!(
        "checkpointFile: {d}/checkpoints
cloudwatch.emitMetrics: false
metrics.listenAddress: 127.0.0.1:{port}
flows:
  - filePattern: {d}/logs/*.log
    outputFile: {out}
    initialPosition: START_OF_FILE
    maxBufferAgeMillis: 1000
",
        d = dir.path().display(),
        out = out.display()
    ));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(daemon::run(cfg, RunOptions::default(), async {
        let _ = rx.await;
    }));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let got = tokio::task::spawn_blocking({
        let out = out.clone();
        move || agent::wait_until(&out, Duration::from_secs(20), |l| l.len() >= 250)
    })
    .await
    .unwrap();
    assert_eq!(got.len(), 250);
    // The acknowledgement follows the write; wait for the counters to settle.
    let (metrics, health, missing) = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = get(addr, "/metrics");
            assert_eq!(status, 200);
            let samples = parse_exposition(&body);
            if sample(&samples, "kinesis_tail_batches_pending", "0") == 0.0
                || Instant::now() > deadline
            {
                return (samples, get(addr, "/health"), get(addr, "/nope"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    assert_eq!(
        sample(&metrics, "kinesis_tail_records_parsed_total", "0"),
        250.0
    );
    assert_eq!(
        sample(&metrics, "kinesis_tail_bytes_parsed_total", "0"),
        bytes as f64
    );
    assert_eq!(
        sample(&metrics, "kinesis_tail_records_sent_total", "0"),
        250.0
    );
    assert_eq!(sample(&metrics, "kinesis_tail_files_tailed", "0"), 1.0);
    assert_eq!(sample(&metrics, "kinesis_tail_bytes_behind", "0"), 0.0);
    assert!(sample(&metrics, "kinesis_tail_last_ack_age_seconds", "0") < 20.0);
    for name in [
        "kinesis_tail_bytes_sent_total",
        "kinesis_tail_record_send_attempts_total",
        "kinesis_tail_record_send_errors_total",
        "kinesis_tail_service_errors_total",
        "kinesis_tail_retries_total",
        "kinesis_tail_throttles_total",
        "kinesis_tail_records_dropped_total",
        "kinesis_tail_records_truncated_total",
        "kinesis_tail_processing_errors_total",
        "kinesis_tail_checkpoint_age_seconds",
    ] {
        sample(&metrics, name, "0");
    }
    let dest = &metrics
        .iter()
        .find(|(n, _, _)| n == "kinesis_tail_records_sent_total")
        .unwrap()
        .1;
    assert!(dest.contains(&(
        "destination".to_string(),
        format!("OutputFile:{}", out.display())
    )));
    assert_eq!(health, (200, r#"{"status":"ok"}"#.to_string()));
    assert_eq!(missing.0, 404);
    let _ = tx.send(());
    let summary = agent.await.unwrap().unwrap();
    assert_eq!(FlowStats::get(&summary.stats.flows[0].records_sent), 250);
}

/// `/health` from crafted counters: a flow with pending batches and no acknowledgement
/// for longer than `healthAckTimeoutSeconds` makes it 503, naming the flow; an
/// acknowledgement brings it back to 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_turns_503_when_acknowledgements_stop_and_back() {
    test_env();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&format!(
        "checkpointFile: {d}/checkpoints
cloudwatch.emitMetrics: false
metrics.listenAddress: 127.0.0.1:0
metrics.healthAckTimeoutSeconds: 1
flows:
  - filePattern: {d}/a/*.log
    outputFile: {d}/a.txt
  - filePattern: {d}/b/*.log
    kinesisStream: s2
",
        d = dir.path().display()
    ));
    let stats = Stats::new(2);
    let observers = metrics::spawn(&cfg, Arc::clone(&stats)).await.unwrap();
    let addr = observers.http_address.unwrap();
    let health = move || tokio::task::spawn_blocking(move || get(addr, "/health"));
    assert_eq!(health().await.unwrap().0, 200);
    stats.flows[1].batches_pending.store(2, Ordering::Relaxed);
    assert_eq!(
        health().await.unwrap().0,
        200,
        "pending for less than the limit"
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (status, body) = health().await.unwrap();
    assert_eq!(status, 503, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "unhealthy");
    assert_eq!(v["problems"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(v["problems"][0]["flow"], 1);
    assert_eq!(v["problems"][0]["destination"], "KinesisStream:s2");
    // The destination answers again.
    stats.flows[1]
        .last_ack_ms
        .store(stats.now_ms(), Ordering::Relaxed);
    assert_eq!(
        health().await.unwrap(),
        (200, r#"{"status":"ok"}"#.to_string())
    );
    observers.shutdown().await;
}

/// `/health` turns 503 when the destination is down with data pending, and
/// back to 200 after. The whole agent ships to Kinesis (moto) through a proxy that
/// closes every connection for a few seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_while_kinesis_is_down_and_200_after() {
    let Some(moto) = Moto::start() else { return };
    let kinesis = support::kinesis(&moto.endpoint);
    support::create_stream(&kinesis, "s1", 1).await;
    let proxy = Proxy::start(&moto.endpoint).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let port = free_port();
    let cfg = config(&format!(
        "checkpointFile: {d}/checkpoints
awsAccessKeyId: testing
awsSecretAccessKey: testing
kinesis.endpoint: {ep}
kinesis.region: us-east-1
cloudwatch.emitMetrics: false
metrics.listenAddress: 127.0.0.1:{port}
metrics.healthAckTimeoutSeconds: 1
shutdownTimeoutMillis: 3000
flows:
  - filePattern: {d}/logs/*.log
    kinesisStream: s1
    initialPosition: START_OF_FILE
    retryInitialBackoffMillis: 50
    retryMaxBackoffMillis: 300
",
        d = dir.path().display(),
        ep = proxy.endpoint
    ));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(daemon::run(cfg, RunOptions::default(), async {
        let _ = rx.await;
    }));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let health = move |want: u16| {
        tokio::task::spawn_blocking(move || poll_health(addr, want, Duration::from_secs(20)))
    };
    assert_eq!(health(200).await.unwrap().0, 200, "healthy at start");
    // Kinesis goes down, then lines arrive.
    proxy.set_faults(Faults {
        outage_until: Some(Instant::now() + Duration::from_secs(5)),
        ..Faults::default()
    });
    let lines: Vec<String> = (0..50).map(|i| format!("line {i}")).collect();
    agent::append(&dir.path().join("logs/a.log"), &lines);
    let (status, body) = health(503).await.unwrap();
    assert_eq!(status, 503, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["problems"][0]["flow"], 0, "{body}");
    assert_eq!(
        v["problems"][0]["destination"], "KinesisStream:s1",
        "{body}"
    );
    // Kinesis is back: the retries get through and the flow is healthy again.
    let (status, body) = health(200).await.unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let _ = tx.send(());
    let summary = agent.await.unwrap().unwrap();
    assert_eq!(FlowStats::get(&summary.stats.flows[0].records_sent), 50);
    assert!(proxy.counts().2 > 0, "the outage closed no connection");
}

/// Polls `/health` on `addr` until it answers `want` (or `timeout` passes); returns the
/// last answer.
fn poll_health(addr: SocketAddr, want: u16, timeout: Duration) -> (u16, String) {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect(addr).is_ok() {
            let (status, body) = get(addr, "/health");
            if status == want || Instant::now() > deadline {
                return (status, body);
            }
        }
        assert!(Instant::now() < deadline, "the endpoint never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The whole agent with a destination that stops taking data: the outputFile is a FIFO
/// nobody reads, so writes block with batches pending. `/health` turns 503 naming the
/// flow, and back to 200 once the FIFO is drained and the batches acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_follows_a_destination_that_stalls_and_recovers() {
    use std::os::unix::fs::OpenOptionsExt;
    test_env();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let fifo = dir.path().join("out.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // Open the read end first (non-blocking), so that the agent's open does not block.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    // Far more than a pipe holds (64 KiB).
    let lines: Vec<String> = (0..4000)
        .map(|i| format!("{i:06} {}", "x".repeat(90)))
        .collect();
    let expected: usize = lines.iter().map(|l| l.len() + 1).sum();
    agent::append(&dir.path().join("logs/app.log"), &lines);
    let port = free_port();
    let cfg = config(&format!(
        "checkpointFile: {d}/checkpoints
cloudwatch.emitMetrics: false
metrics.listenAddress: 127.0.0.1:{port}
metrics.healthAckTimeoutSeconds: 1
shutdownTimeoutMillis: 2000
flows:
  - filePattern: {d}/logs/*.log
    outputFile: {fifo}
    initialPosition: START_OF_FILE
    maxBufferAgeMillis: 1000
",
        d = dir.path().display(),
        fifo = fifo.display()
    ));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(daemon::run(cfg, RunOptions::default(), async {
        let _ = rx.await;
    }));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let poll = move |want: u16| {
        tokio::task::spawn_blocking(move || poll_health(addr, want, Duration::from_secs(20)))
    };
    let (status, body) = poll(503).await.unwrap();
    assert_eq!(status, 503, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["problems"][0]["flow"], 0, "{body}");
    assert!(
        v["problems"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("pending"),
        "{body}"
    );
    // The destination takes data again.
    let drained = std::thread::spawn(move || {
        let mut got = 0usize;
        let mut buf = vec![0u8; 64 * 1024];
        let deadline = Instant::now() + Duration::from_secs(30);
        while got < expected && Instant::now() < deadline {
            match reader.read(&mut buf) {
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("{e}"),
            }
        }
        (got, reader)
    });
    let (status, body) = poll(200).await.unwrap();
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"status":"ok"}"#),
        "{body}"
    );
    let (got, reader) = drained.join().unwrap();
    assert_eq!(got, expected);
    let _ = tx.send(());
    let summary = agent.await.unwrap().unwrap();
    drop(reader);
    assert_eq!(FlowStats::get(&summary.stats.flows[0].records_sent), 4000);
}

// ------------------------------------------------------------------ progress lines

/// The real binary prints the Java agent's progress lines every
/// `log.statusReportingPeriodSeconds`, with true numbers.
#[test]
fn progress_lines_carry_true_numbers() {
    let s = agent::Scratch::new();
    let lines: Vec<String> = (0..321)
        .map(|i| format!("progress test line {i}"))
        .collect();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    agent::append(&s.logs().join("a.log"), &lines);
    let pattern = format!("{}/*.log", s.logs().display());
    let flow = format!(
        "outputFile: {}\ninitialPosition: START_OF_FILE\nmaxBufferAgeMillis: 1000\n",
        s.out().display()
    );
    let cfg = s.config(
        &[(&pattern, &flow)],
        "log.statusReportingPeriodSeconds: 1\n",
    );
    let log = s.path("agent.log");
    let logf = std::fs::File::create(&log).unwrap();
    let mut child = agent::command(&cfg)
        .args(["run", "--log-level", "info"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(logf)
        .spawn()
        .unwrap();
    let done = agent::wait_until(&s.out(), Duration::from_secs(20), |l| l.len() >= 321);
    assert_eq!(done.len(), 321);
    let progress = regex::Regex::new(
        r"Agent: Progress: (\d+) records parsed \((\d+) bytes\), and (\d+) records sent successfully to destinations\. Uptime: (\d+)ms",
    )
    .unwrap();
    let full = format!(
        "{} records parsed ({bytes} bytes), and 321 records sent",
        321
    );
    // A periodic line (not only the one printed at shutdown) shows every record.
    let seen = agent::wait_until(&log, Duration::from_secs(10), |l| {
        l.iter().any(|x| x.contains(&full))
    });
    assert!(
        seen.iter().any(|x| x.contains(&full)),
        "no progress line with {full:?}:\n{}",
        seen.join("\n")
    );
    agent::sigterm(&child);
    assert!(agent::wait_exit(&mut child, Duration::from_secs(15)).is_some());
    let text = std::fs::read_to_string(&log).unwrap();
    let found: Vec<(u64, u64, u64, u64)> = progress
        .captures_iter(&text)
        .map(|c| {
            let n = |i: usize| c[i].parse::<u64>().unwrap();
            (n(1), n(2), n(3), n(4))
        })
        .collect();
    assert!(
        found.len() >= 2,
        "periodic and final lines expected:\n{text}"
    );
    for w in found.windows(2) {
        assert!(
            w[0].0 <= w[1].0 && w[0].2 <= w[1].2,
            "counts only grow: {w:?}"
        );
        assert!(w[0].3 <= w[1].3, "uptime grows: {w:?}");
    }
    let last = *found.last().unwrap();
    assert_eq!(last.0, 321);
    assert_eq!(last.1, bytes as u64);
    assert_eq!(last.2, 321);
    assert!(
        text.contains("Agent: Tailing is 0.00 MB (0 bytes) behind."),
        "{text}"
    );
}
