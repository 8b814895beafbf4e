//! Firehose delivery against the moto emulator (which delivers into its own S3), through
//! the real SDK: every record arrives exactly as written, newline-delimited; concatenated
//! records never split a line; failed entries only are retried.

use crate::support;

use std::collections::HashMap;
use std::time::Duration;

use kinesis_tail::config::Destination;
use kinesis_tail::event::Batch;
use kinesis_tail::metrics::FlowStats;
use kinesis_tail::sink::Sink;
use support::proxy::{Fate, Faults, Proxy};
use support::*;

fn records(n: usize, tag: &str) -> Vec<(Vec<u8>, Option<String>)> {
    (0..n)
        .map(|i| {
            // Varied lengths, some long, never a newline inside.
            let len = (i * 37) % 700;
            (
                format!("{tag} {i:06} {}", "y".repeat(len)).into_bytes(),
                None,
            )
        })
        .collect()
}

/// The records as the pipeline hands them to the sink: each with its line's newline.
fn lined(recs: &[(Vec<u8>, Option<String>)]) -> Vec<(Vec<u8>, Option<String>)> {
    recs.iter()
        .map(|(d, k)| {
            let mut d = d.clone();
            d.push(b'\n');
            (d, k.clone())
        })
        .collect()
}

fn lines_of(objects: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for o in objects {
        assert!(
            o.is_empty() || o.ends_with(b"\n"),
            "an S3 object does not end with a newline"
        );
        out.extend(
            o.split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec),
        );
    }
    out
}

fn assert_same(mut got: Vec<Vec<u8>>, recs: &[(Vec<u8>, Option<String>)]) {
    let mut want: Vec<Vec<u8>> = recs.iter().map(|r| r.0.clone()).collect();
    got.sort();
    want.sort();
    assert_eq!(got.len(), want.len(), "records in S3");
    assert!(got == want, "S3 content differs from the records written");
}

async fn deliver_all(sink: &Sink, batches: &[Batch]) {
    for b in batches {
        tokio::time::timeout(Duration::from_secs(60), sink.deliver(b))
            .await
            .expect("delivery did not finish in 60s");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_lands_in_s3_as_written() {
    let Some(moto) = Moto::start() else { return };
    init_logging();
    create_firehose(&moto.endpoint, "plain", "plain-bucket");
    let cfg = config(&moto.endpoint);
    let f = flow(Destination::DeliveryStream("plain".into()));
    let stats = stats();
    let sink = Sink::new(&cfg, &f, stats.clone()).await.unwrap();
    assert_eq!(sink.preflight().await, None);

    let recs = records(1200, "plain");
    let bs: Vec<Batch> = recs
        .chunks(500)
        .enumerate()
        .map(|(i, c)| batch(i as u64, &lined(c)))
        .collect();
    deliver_all(&sink, &bs).await;
    assert_eq!(FlowStats::get(&stats.records_sent), 1200);
    let objects = read_bucket(&moto.endpoint, "plain-bucket");
    assert_same(lines_of(&objects), &recs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concatenation_never_splits_a_record_and_retries_failed_only() {
    let Some(moto) = Moto::start() else { return };
    init_logging();
    create_firehose(&moto.endpoint, "concat", "concat-bucket");
    let proxy = Proxy::start(&moto.endpoint).await;
    proxy.set_faults(Faults {
        entry_failure_share: 0.3,
        http_500_share: 0.05,
        ..Faults::default()
    });
    let cfg = config(&proxy.endpoint);
    let mut f = flow(Destination::DeliveryStream("concat".into()));
    f.aggregated_record_size_bytes = Some(2000);
    let stats = stats();
    let sink = Sink::new(&cfg, &f, stats.clone()).await.unwrap();
    sink.preflight().await;

    let recs = records(1500, "concat");
    let bs: Vec<Batch> = recs
        .chunks(500)
        .enumerate()
        .map(|(i, c)| batch(i as u64, &lined(c)))
        .collect();
    deliver_all(&sink, &bs).await;
    assert_eq!(FlowStats::get(&stats.records_sent), 1500);

    let written: std::collections::HashSet<Vec<u8>> = recs.iter().map(|r| r.0.clone()).collect();
    let mut fates: HashMap<Vec<u8>, Vec<Fate>> = HashMap::new();
    let mut firehose_records = 0;
    for s in proxy.seen() {
        firehose_records += 1;
        assert!(s.data.len() <= 2000, "concatenated record above the limit");
        assert!(s.data.ends_with(b"\n"));
        for line in s.data[..s.data.len() - 1].split(|b| *b == b'\n') {
            // Every piece is a whole record: no record was split.
            assert!(written.contains(line), "a record was split or altered");
            fates.entry(line.to_vec()).or_default().push(s.fate);
        }
    }
    assert!(firehose_records < 1500, "records were not concatenated");
    assert_eq!(fates.len(), 1500);
    for f in fates.values() {
        assert_eq!(f.iter().filter(|x| **x == Fate::Forwarded).count(), 1);
        assert_eq!(f.last(), Some(&Fate::Forwarded), "re-sent after success");
    }
    assert!(fates.values().any(|f| f.len() > 1), "no retry happened");

    let objects = read_bucket(&moto.endpoint, "concat-bucket");
    assert_same(lines_of(&objects), &recs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_delivery_stream_preflight_does_not_panic() {
    let Some(moto) = Moto::start() else { return };
    init_logging();
    let cfg = config(&moto.endpoint);
    let f = flow(Destination::DeliveryStream("nope".into()));
    let sink = Sink::new(&cfg, &f, stats()).await.unwrap();
    assert_eq!(sink.preflight().await, None);
}
