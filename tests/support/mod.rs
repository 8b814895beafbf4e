//! Test support shared by the integration tests that talk to AWS emulators: a moto server
//! fixture, a fault-injecting proxy, config builders and read-back helpers. Nothing here
//! ever reaches AWS: every client has an explicit 127.0.0.1 endpoint, static test
//! credentials and a region.
#![allow(dead_code)]

pub mod agent;
pub mod proxy;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use kinesis_tail::config::{
    CloudWatchConfig, Config, Destination, FlowConfig, InitialPosition, ServiceConfig,
    StaticCredentials,
};
use kinesis_tail::event::{Batch, FileKey, RecordId};
use kinesis_tail::metrics::FlowStats;

/// Region of every test client.
pub const REGION: &str = "us-east-1";

/// Sets the environment every test needs before any SDK client exists: no instance
/// metadata, test credentials, a region.
pub fn test_env() {
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", REGION);
    for v in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        std::env::remove_var(v);
    }
}

/// Logs to the test output (once per process).
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "kinesis_tail=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// The test venv (moto, boto3, aws-kinesis-agg): `KT_MOTO_SERVER` names the moto_server
/// binary; else `.venv-test` of this crate (`scripts/setup-venv.sh` makes it).
pub fn moto_server_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KT_MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin/moto_server");
    local.exists().then_some(local)
}

/// The python of the venv that holds moto_server.
pub fn venv_python() -> PathBuf {
    moto_server_binary()
        .expect("moto_server not found")
        .with_file_name("python")
}

/// Runs `tests/support/moto_helper.py` with `args` and `stdin`; returns its stdout.
pub fn helper(args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/moto_helper.py");
    let mut child = Command::new(venv_python())
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run moto_helper.py");
    {
        let mut si = child.stdin.take().unwrap();
        if let Some(data) = stdin {
            si.write_all(data).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "moto_helper.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A moto server on a free port of 127.0.0.1, killed on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`
    pub endpoint: String,
    /// Its port.
    pub port: u16,
}

impl Moto {
    /// Starts moto; `None` when `KT_SKIP_MOTO=1`. Panics with a clear message when the
    /// server cannot be found or does not come up.
    pub fn start() -> Option<Moto> {
        if std::env::var("KT_SKIP_MOTO").is_ok_and(|v| v == "1") {
            eprintln!("KT_SKIP_MOTO=1: skipping a test that needs the moto server");
            return None;
        }
        test_env();
        let bin = moto_server_binary().unwrap_or_else(|| {
            panic!(
                "moto_server not found: set KT_MOTO_SERVER to its path, or create .venv-test \
                 (python3 -m venv .venv-test && .venv-test/bin/pip install 'moto[server]==5.*' \
                 boto3 aws-kinesis-agg), or set KT_SKIP_MOTO=1 to skip these tests"
            )
        });
        let port = free_port();
        // Through the launcher that serialises moto's shard writes (see moto_serial.py):
        // concurrent puts to one shard would otherwise lose records inside moto.
        let launcher = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/moto_serial.py");
        let python = bin.with_file_name("python");
        let child = Command::new(&python)
            .arg(&launcher)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} {}: {e}",
                    python.display(),
                    launcher.display()
                )
            });
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on port {port} within 30s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(moto)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A configuration whose Kinesis, Firehose and CloudWatch go to `endpoint`.
pub fn config(endpoint: &str) -> Config {
    let svc = ServiceConfig {
        endpoint: Some(endpoint.to_string()),
        region: Some(REGION.to_string()),
    };
    Config {
        source: PathBuf::from("test.yaml"),
        flows: Vec::new(),
        checkpoint_file: PathBuf::from("/nonexistent/checkpoints"),
        checkpoint_ttl: Duration::from_secs(7 * 86400),
        cloudwatch: CloudWatchConfig {
            emit_metrics: false,
            endpoint: Some(endpoint.to_string()),
            region: Some(REGION.to_string()),
            namespace: "AWSKinesisAgent".into(),
            buffer_time: Duration::from_secs(60),
            tag_instance: false,
        },
        kinesis: svc.clone(),
        firehose: svc,
        sts_endpoint: None,
        assume_role_arn: None,
        assume_role_external_id: None,
        static_credentials: Some(StaticCredentials {
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
        }),
        max_connections: 50,
        connection_timeout: Duration::from_secs(5),
        socket_timeout: Duration::from_secs(30),
        shutdown_timeout: Duration::from_secs(10),
        status_reporting_period: Duration::from_secs(30),
        user_agent: Some("kinesis-tail-test".into()),
        metrics_listen_address: None,
        health_ack_timeout: Duration::from_secs(300),
        ec2_metadata_endpoint: "http://127.0.0.1:1".into(),
        max_open_files: 1024,
        rescan_interval: Duration::from_secs(10),
        max_buffered_bytes: kinesis_tail::pipeline::DEFAULT_MAX_BUFFERED_BYTES,
    }
}

/// A flow to `destination` with short backoffs.
pub fn flow(destination: Destination) -> FlowConfig {
    FlowConfig {
        initial_position: InitialPosition::StartOfFile,
        retry_initial_backoff: Duration::from_millis(50),
        retry_max_backoff: Duration::from_millis(500),
        max_in_flight: 4,
        record_id_field: None,
        ..FlowConfig::with_defaults("/tmp/*.log", destination)
    }
}

/// Fresh counters.
pub fn stats() -> Arc<FlowStats> {
    Arc::new(FlowStats::default())
}

/// A batch of `records`, each `(data, key)`.
pub fn batch(seq: u64, records: &[(Vec<u8>, Option<String>)]) -> Batch {
    let key = FileKey {
        dev: 1,
        ino: seq,
        fingerprint: 7,
        generation: 0,
    };
    let mut b = Batch::new(seq);
    let mut off = 0;
    for (data, k) in records {
        b.push(
            data,
            k.as_deref().map(str::as_bytes),
            RecordId::new(&key, off),
        );
        off += data.len() as u64 + 1;
    }
    b.cover(key, 0, off);
    b
}

/// A Kinesis client for `endpoint` (test credentials, region us-east-1).
pub fn kinesis(endpoint: &str) -> aws_sdk_kinesis::Client {
    let conf = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .region(aws_sdk_kinesis::config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .build();
    aws_sdk_kinesis::Client::from_conf(conf)
}

/// Creates stream `name` with `shards` shards and waits until it is active.
pub async fn create_stream(client: &aws_sdk_kinesis::Client, name: &str, shards: i32) {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .expect("CreateStream");
    for _ in 0..100 {
        let d = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .expect("DescribeStreamSummary");
        if d.stream_description_summary()
            .map(|s| s.stream_status().as_str())
            == Some("ACTIVE")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("stream {name} never became ACTIVE");
}

/// One record read back from a shard.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    /// The shard it was read from.
    pub shard: String,
    /// Its data.
    pub data: Vec<u8>,
    /// Its partition key.
    pub partition_key: String,
    /// Its sequence number.
    pub sequence_number: String,
}

/// A shard and its hash-key range.
#[derive(Debug, Clone)]
pub struct ShardRange {
    /// `ShardId`.
    pub id: String,
    /// Start of its range.
    pub start: u128,
    /// End of its range (inclusive).
    pub end: u128,
}

/// Every shard of `name` with its range, and every record stored in it (TRIM_HORIZON).
pub async fn read_stream(
    client: &aws_sdk_kinesis::Client,
    name: &str,
) -> (Vec<ShardRange>, Vec<StoredRecord>) {
    let shards = client
        .list_shards()
        .stream_name(name)
        .send()
        .await
        .expect("ListShards");
    let mut ranges = Vec::new();
    let mut out = Vec::new();
    for s in shards.shards() {
        let r = s.hash_key_range().unwrap();
        ranges.push(ShardRange {
            id: s.shard_id().to_string(),
            start: r.starting_hash_key().parse().unwrap(),
            end: r.ending_hash_key().parse().unwrap(),
        });
        let mut iter = client
            .get_shard_iterator()
            .stream_name(name)
            .shard_id(s.shard_id())
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("GetShardIterator")
            .shard_iterator()
            .map(str::to_string);
        while let Some(it) = iter {
            let got = client
                .get_records()
                .shard_iterator(it)
                .limit(10_000)
                .send()
                .await
                .expect("GetRecords");
            for r in got.records() {
                out.push(StoredRecord {
                    shard: s.shard_id().to_string(),
                    data: r.data().as_ref().to_vec(),
                    partition_key: r.partition_key().unwrap_or_default().to_string(),
                    sequence_number: r.sequence_number().to_string(),
                });
            }
            if got.records().is_empty() {
                break;
            }
            iter = got.next_shard_iterator().map(str::to_string);
        }
    }
    (ranges, out)
}

/// A user record as the reference de-aggregator (`aws_kinesis_agg`) returns it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct UserRecord {
    /// The shard its (aggregated) record was read from.
    pub shard: String,
    /// Base64 data.
    pub data: String,
    /// Its partition key.
    #[serde(rename = "partitionKey")]
    pub partition_key: String,
    /// Its explicit hash key, if any.
    #[serde(rename = "explicitHashKey")]
    pub explicit_hash_key: Option<String>,
    /// True when it came out of an aggregate.
    pub aggregated: bool,
}

impl UserRecord {
    /// Decoded data.
    pub fn bytes(&self) -> Vec<u8> {
        b64(&self.data)
    }
}

/// De-aggregates `stored` with `aws_kinesis_agg` through the venv's python.
pub fn deaggregate(stored: &[StoredRecord]) -> Vec<UserRecord> {
    let input: Vec<serde_json::Value> = stored
        .iter()
        .map(|r| {
            serde_json::json!({
                "shard": r.shard,
                "data": base64::engine::general_purpose::STANDARD.encode(&r.data),
                "partitionKey": r.partition_key,
                "sequenceNumber": r.sequence_number,
            })
        })
        .collect();
    let out = helper(&["deaggregate"], Some(&serde_json::to_vec(&input).unwrap()));
    serde_json::from_slice(&out).unwrap()
}

/// Base64 decoding.
pub fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// Creates an S3 bucket and a Firehose delivery stream into it.
pub fn create_firehose(endpoint: &str, stream: &str, bucket: &str) {
    helper(&["firehose-create", endpoint, stream, bucket], None);
}

/// Every object of `bucket`.
pub fn read_bucket(endpoint: &str, bucket: &str) -> Vec<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct Obj {
        data: String,
    }
    let out = helper(&["s3-read", endpoint, bucket], None);
    let objs: Vec<Obj> = serde_json::from_slice(&out).unwrap();
    objs.into_iter().map(|o| b64(&o.data)).collect()
}

/// Serialises the tests that load the machine (the torture, model and reliability tests):
/// each holds the guard for its whole run, so that two of them never share the two cores
/// of a CI machine (their timings are part of what they check).
pub fn heavy() -> Heavy {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    Heavy(
        HEAVY
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    )
}

/// The guard of [`heavy`]: the test that holds it is the only heavy one running. (Held
/// across `.await` by async tests, which run on their own runtime: nothing else waits on
/// it from that runtime.)
pub struct Heavy(#[allow(dead_code)] std::sync::MutexGuard<'static, ()>);
