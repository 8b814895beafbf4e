//! Kinesis delivery against the moto emulator, through the real SDK: KPL aggregates read
//! back with the reference de-aggregator and checked against shard ranges; retries of
//! failed entries only, through a fault-injecting proxy; a missing stream; an oversized
//! record.

use crate::support;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kinesis_tail::aggregate::kpl;
use kinesis_tail::aggregate::shards::hash_key;
use kinesis_tail::config::{Aggregation, Destination};
use kinesis_tail::event::Batch;
use kinesis_tail::metrics::FlowStats;
use kinesis_tail::sink::Sink;
use support::proxy::{Fate, Faults, Proxy};
use support::*;

/// `n` distinct records; every third has no key (RANDOM), the others one of 40 keys.
fn records(n: usize, tag: &str) -> Vec<(Vec<u8>, Option<String>)> {
    (0..n)
        .map(|i| {
            let data = format!("{tag} record {i:06} {}", "x".repeat(i % 97)).into_bytes();
            let key = (i % 3 != 0).then(|| format!("user-{}", i % 40));
            (data, key)
        })
        .collect()
}

fn batches(recs: &[(Vec<u8>, Option<String>)], per: usize) -> Vec<Batch> {
    recs.chunks(per)
        .enumerate()
        .map(|(i, c)| batch(i as u64, c))
        .collect()
}

async fn deliver_all(sink: &Sink, batches: &[Batch]) {
    // Several deliveries at once, as the daemon runs them (maxInFlightRequests).
    let futs = batches.iter().map(|b| sink.deliver(b));
    tokio::time::timeout(Duration::from_secs(120), futures_join_all(futs))
        .await
        .expect("delivery did not finish in 120s");
}

/// `join_all` without the futures crate: runs the futures concurrently on this task.
async fn futures_join_all<F: std::future::Future<Output = ()>>(futs: impl Iterator<Item = F>) {
    let set: Vec<_> = futs.map(Box::pin).collect();
    let mut set: Vec<Option<_>> = set.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for slot in set.iter_mut() {
            if let Some(f) = slot {
                if f.as_mut().poll(cx).is_ready() {
                    *slot = None;
                } else {
                    pending = true;
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await
}

/// Checks what the KCL checks, with the reference de-aggregator: every stored record is
/// an aggregate, every user record hashes into the shard it was read from; returns the
/// user records' data.
fn check_kpl_readback(ranges: &[ShardRange], stored: &[StoredRecord]) -> Vec<Vec<u8>> {
    for r in stored {
        let agg = kpl::decode(&r.data).expect("every stored record is a valid KPL aggregate");
        assert!(!agg.records.is_empty());
    }
    let users = deaggregate(stored);
    let by_id: HashMap<&str, &ShardRange> = ranges.iter().map(|r| (r.id.as_str(), r)).collect();
    for u in &users {
        assert!(
            u.aggregated,
            "aws_kinesis_agg did not see an aggregate: {u:?}"
        );
        let hash = match &u.explicit_hash_key {
            Some(e) => e.parse::<u128>().unwrap(),
            None => hash_key(u.partition_key.as_bytes()),
        };
        let shard = by_id[u.shard.as_str()];
        assert!(
            (shard.start..=shard.end).contains(&hash),
            "user record with key {} (hash {hash}) stored in {} [{}, {}]",
            u.partition_key,
            shard.id,
            shard.start,
            shard.end
        );
    }
    users.iter().map(UserRecord::bytes).collect()
}

fn assert_same_records(mut got: Vec<Vec<u8>>, recs: &[(Vec<u8>, Option<String>)]) {
    let mut want: Vec<Vec<u8>> = recs.iter().map(|r| r.0.clone()).collect();
    got.sort();
    want.sort();
    let missing = want
        .iter()
        .filter(|w| got.binary_search(w).is_err())
        .count();
    assert_eq!(missing, 0, "{missing} records lost");
    assert_eq!(got.len(), want.len(), "duplicates stored");
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpl_aggregates_hash_into_their_shards() {
    let Some(moto) = Moto::start() else { return };
    init_logging();
    let client = kinesis(&moto.endpoint);
    create_stream(&client, "kpl", 4).await;

    let cfg = config(&moto.endpoint);
    let mut f = flow(Destination::KinesisStream("kpl".into()));
    f.aggregation = Aggregation::Kpl;
    f.aggregated_record_size_bytes = Some(8 * 1024);
    let stats = stats();
    let sink = Sink::new(&cfg, &f, stats.clone()).await.unwrap();
    assert_eq!(sink.preflight().await, None);

    let recs = records(3000, "kpl");
    deliver_all(&sink, &batches(&recs, 500)).await;
    assert_eq!(FlowStats::get(&stats.records_sent), 3000);

    let (ranges, stored) = read_stream(&client, "kpl").await;
    assert_eq!(ranges.len(), 4);
    assert!(
        stored.len() < 3000 / 5,
        "{} stored records: not aggregated",
        stored.len()
    );
    let shards_used: std::collections::HashSet<_> = stored.iter().map(|r| &r.shard).collect();
    assert_eq!(shards_used.len(), 4, "records spread over every shard");
    assert!(stored.iter().all(|r| r.data.len() <= 8 * 1024));
    let got = check_kpl_readback(&ranges, &stored);
    assert_same_records(got, &recs);
}

/// For every record (by data): the sequence of what happened to it. Only the last
/// attempt may succeed, and exactly one does: nothing was re-sent without a failure.
fn assert_failed_only_retries(fates: &HashMap<Vec<u8>, Vec<Fate>>, expected: usize) {
    assert_eq!(fates.len(), expected, "records seen by the proxy");
    let mut resent = 0;
    for (data, f) in fates {
        let ok = f.iter().filter(|x| **x == Fate::Forwarded).count();
        assert_eq!(
            ok,
            1,
            "record {:?} acknowledged {ok} times: {f:?}",
            String::from_utf8_lossy(&data[..data.len().min(40)])
        );
        assert_eq!(
            f.last(),
            Some(&Fate::Forwarded),
            "record {:?} sent again after its success: {f:?}",
            String::from_utf8_lossy(&data[..data.len().min(40)])
        );
        resent += usize::from(f.len() > 1);
    }
    assert!(resent > 0, "no retry happened: the faults did not bite");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_failed_entries_are_retried_through_faults() {
    let Some(moto) = Moto::start() else { return };
    init_logging();
    let client = kinesis(&moto.endpoint);
    create_stream(&client, "faults", 2).await;
    let proxy = Proxy::start(&moto.endpoint).await;
    proxy.set_faults(Faults {
        entry_failure_share: 0.35,
        http_500_share: 0.1,
        ..Faults::default()
    });

    let cfg = config(&proxy.endpoint);
    let mut f = flow(Destination::KinesisStream("faults".into()));
    f.partition_key = kinesis_tail::config::PartitionKeyOption::Deterministic;
    let stats = stats();
    let sink = Sink::new(&cfg, &f, stats.clone()).await.unwrap();
    sink.preflight().await;

    let recs = records(2000, "faults");
    let bs = batches(&recs, 250);
    // A multi-second outage while the deliveries run.
    let outage = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        proxy.update(|f| f.outage_until = Some(Instant::now() + Duration::from_secs(3)));
    };
    let started = Instant::now();
    tokio::join!(deliver_all(&sink, &bs), outage);
    eprintln!("delivered through faults in {:?}", started.elapsed());

    let (requests, http_500s, dropped) = proxy.counts();
    eprintln!("proxy: {requests} requests, {http_500s} HTTP 500, {dropped} dropped connections");
    assert!(http_500s > 0, "no HTTP 500 injected");
    assert!(dropped > 0, "no outage happened");
    assert_eq!(FlowStats::get(&stats.records_sent), 2000);
    assert!(FlowStats::get(&stats.throttles) > 0);
    assert!(FlowStats::get(&stats.retries) > 0);

    let mut fates: HashMap<Vec<u8>, Vec<Fate>> = HashMap::new();
    for s in proxy.seen() {
        fates.entry(s.data).or_default().push(s.fate);
    }
    assert_failed_only_retries(&fates, 2000);

    // Stored exactly once, except a record whose answer was lost between the proxy and
    // moto (a loaded machine): moto may keep that copy too, as AWS would.
    let (_, stored) = read_stream(&client, "faults").await;
    let mut copies: HashMap<Vec<u8>, usize> = HashMap::new();
    for r in stored {
        *copies.entry(r.data).or_default() += 1;
    }
    for (data, _) in &recs {
        let n = copies.get(data).copied().unwrap_or(0);
        let lost_answers = fates[data]
            .iter()
            .filter(|f| **f == Fate::UpstreamLost)
            .count();
        assert!(
            n >= 1,
            "record {:?} not stored; its fates: {:?}; {} stored in all",
            String::from_utf8_lossy(&data[..data.len().min(40)]),
            fates[data],
            copies.len()
        );
        assert!(
            n <= 1 + lost_answers,
            "record stored {n} times with {lost_answers} lost answer(s): {:?}",
            fates[data]
        );
    }
    assert_eq!(copies.len(), recs.len(), "nothing stored that was not sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpl_through_faults_loses_nothing() {
    let Some(moto) = Moto::start() else { return };
    init_logging();
    let client = kinesis(&moto.endpoint);
    create_stream(&client, "kplfaults", 4).await;
    let proxy = Proxy::start(&moto.endpoint).await;
    proxy.set_faults(Faults {
        entry_failure_share: 0.3,
        http_500_share: 0.1,
        ..Faults::default()
    });
    let cfg = config(&proxy.endpoint);
    let mut f = flow(Destination::KinesisStream("kplfaults".into()));
    f.aggregation = Aggregation::Kpl;
    f.aggregated_record_size_bytes = Some(4 * 1024);
    let sink = Sink::new(&cfg, &f, stats()).await.unwrap();
    sink.preflight().await;
    let recs = records(2000, "kplf");
    deliver_all(&sink, &batches(&recs, 400)).await;

    // Per user record, from the aggregates the proxy saw.
    let mut fates: HashMap<Vec<u8>, Vec<Fate>> = HashMap::new();
    for s in proxy.seen() {
        let agg = kpl::decode(&s.data).expect("aggregate");
        for r in agg.records {
            fates.entry(r.data).or_default().push(s.fate);
        }
    }
    assert_failed_only_retries(&fates, 2000);
    let (ranges, stored) = read_stream(&client, "kplfaults").await;
    assert_same_records(check_kpl_readback(&ranges, &stored), &recs);
}

/// One response both throttles some aggregates and reports others in a shard they do not
/// belong to (a reshard the agent has not seen): the throttled aggregates' records are
/// sent again whatever else the response holds, and aggregates that keep landing in the
/// wrong shard are sent as plain records once the regroup budget is spent. What a KCL
/// consumer keeps (aggregates answered from their own shard, and plain records) holds
/// every record, and each is counted as sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpl_throttled_and_misplaced_in_one_response_loses_nothing() {
    let Some(moto) = Moto::start() else { return };
    init_logging();
    let client = kinesis(&moto.endpoint);
    create_stream(&client, "kplmix", 2).await;
    let proxy = Proxy::start(&moto.endpoint).await;
    proxy.set_faults(Faults {
        entry_failure_share: 0.3,
        misplace_share: 0.15,
        ..Faults::default()
    });
    let cfg = config(&proxy.endpoint);
    let mut f = flow(Destination::KinesisStream("kplmix".into()));
    f.aggregation = Aggregation::Kpl;
    f.aggregated_record_size_bytes = Some(2 * 1024);
    f.retry_initial_backoff = Duration::from_millis(10);
    f.retry_max_backoff = Duration::from_millis(50);
    let stats = stats();
    let sink = Sink::new(&cfg, &f, stats.clone()).await.unwrap();
    sink.preflight().await;
    let mut recs = records(3000, "kplmix");
    deliver_all(&sink, &batches(&recs, 500)).await;
    // Then every aggregate keeps landing in the wrong shard: the regroup budget is spent
    // for sure, and the records go plain.
    proxy.update(|f| f.misplace_share = 1.0);
    let last = records(1000, "kplall");
    deliver_all(&sink, &batches(&last, 500)).await;
    recs.extend(last);

    let mut kept: Vec<Vec<u8>> = Vec::new();
    let (mut throttled, mut misplaced, mut plain) = (0, 0, 0);
    for s in proxy.seen() {
        let aggregate = s.data.starts_with(&kpl::MAGIC);
        match s.fate {
            Fate::Forwarded if aggregate => kept.extend(
                kpl::decode(&s.data)
                    .unwrap()
                    .records
                    .into_iter()
                    .map(|u| u.data),
            ),
            Fate::Forwarded => {
                plain += 1;
                kept.push(s.data);
            }
            Fate::Misplaced => misplaced += 1,
            Fate::EntryFailed => throttled += 1,
            _ => {}
        }
    }
    eprintln!(
        "{throttled} entries throttled, {misplaced} misplaced, {plain} sent plain after the regroup budget"
    );
    assert!(throttled > 0 && misplaced > 0, "the faults did not bite");
    assert!(plain > 0, "the regroup budget was never spent");
    kept.sort();
    kept.dedup();
    let mut want: Vec<Vec<u8>> = recs.iter().map(|r| r.0.clone()).collect();
    want.sort();
    let lost = want
        .iter()
        .filter(|w| kept.binary_search(w).is_err())
        .count();
    assert_eq!(
        lost,
        0,
        "{lost} of {} records lost for a KCL consumer",
        want.len()
    );
    assert_eq!(
        FlowStats::get(&stats.records_sent),
        4000,
        "each record counted as sent once"
    );
}

/// Collects formatted log lines of this thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        std::io::stderr().write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn missing_stream_blocks_with_one_error_then_delivers() {
    let Some(moto) = Moto::start() else { return };
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("kinesis_tail=info")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let client = kinesis(&moto.endpoint);
    let cfg = config(&moto.endpoint);
    let f = flow(Destination::KinesisStream("late".into()));
    let stats = stats();
    let sink = Sink::new(&cfg, &f, stats.clone()).await.unwrap();
    assert_eq!(sink.preflight().await, None);

    let recs = records(50, "late");
    let b = batch(0, &recs);
    let mut delivered_at = None;
    let start = Instant::now();
    let create = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        // The stream can take records from the moment CreateStream is sent: the helper's
        // wait for ACTIVE may end after a delivery that was already right.
        let sent = Instant::now();
        create_stream(&client, "late", 1).await;
        sent
    };
    let deliver = async {
        sink.deliver(&b).await;
        delivered_at = Some(Instant::now());
    };
    let (created, ()) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(create, deliver)
    })
    .await
    .expect("delivery never finished after the stream was created");
    assert!(
        delivered_at.unwrap() >= created,
        "delivered before the stream existed ({:?})",
        start.elapsed()
    );
    assert_eq!(FlowStats::get(&stats.records_sent), 50);

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "exactly one ERROR line:\n{text}");
    assert!(errors[0].contains("'late'"), "{}", errors[0]);
    assert!(errors[0].contains("us-east-1"), "{}", errors[0]);
    assert!(
        errors[0].contains("ResourceNotFoundException"),
        "{}",
        errors[0]
    );
    assert!(
        text.lines()
            .any(|l| l.contains("INFO") && l.contains("delivering again")),
        "{text}"
    );
    let (_, stored) = read_stream(&client, "late").await;
    assert_same_records(stored.into_iter().map(|r| r.data).collect(), &recs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_record_does_not_fail_its_batch() {
    let Some(moto) = Moto::start() else { return };
    init_logging();
    let client = kinesis(&moto.endpoint);
    create_stream(&client, "big", 1).await;
    // moto has no per-record limit: the proxy enforces the real one.
    let proxy = Proxy::start(&moto.endpoint).await;
    proxy.set_faults(Faults {
        max_record_bytes: Some(1024 * 1024),
        ..Faults::default()
    });
    let cfg = config(&proxy.endpoint);
    let f = flow(Destination::KinesisStream("big".into()));
    let stats = stats();
    let sink = Sink::new(&cfg, &f, stats.clone()).await.unwrap();

    let mut recs = records(10, "small");
    recs.insert(4, (vec![b'B'; 1536 * 1024], Some("big-key".into())));
    let b = batch(0, &recs);
    tokio::time::timeout(Duration::from_secs(30), sink.deliver(&b))
        .await
        .expect("deliver blocked on an oversized record");
    assert_eq!(FlowStats::get(&stats.records_sent), 11);
    assert_eq!(FlowStats::get(&stats.records_truncated), 1);
    assert!(proxy.seen().iter().all(|s| s.fate == Fate::Forwarded));

    let (_, stored) = read_stream(&client, "big").await;
    assert_eq!(stored.len(), 11);
    let big = stored.iter().find(|r| r.data[0] == b'B').unwrap();
    assert_eq!(big.data.len() + big.partition_key.len(), 1024 * 1024);
}

/// Figures, not a pass/fail check: records/s to moto with and without aggregation.
/// `cargo test --release --test kinesis -- --ignored --nocapture throughput`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput_to_moto() {
    let Some(moto) = Moto::start() else { return };
    let client = kinesis(&moto.endpoint);
    let cfg = config(&moto.endpoint);
    for (name, aggregation) in [
        ("tput-none", Aggregation::None),
        ("tput-kpl", Aggregation::Kpl),
    ] {
        create_stream(&client, name, 4).await;
        let mut f = flow(Destination::KinesisStream(name.into()));
        f.aggregation = aggregation;
        let sink = Sink::new(&cfg, &f, stats()).await.unwrap();
        sink.preflight().await;
        let n = if aggregation == Aggregation::Kpl {
            200_000
        } else {
            20_000
        };
        let recs: Vec<(Vec<u8>, Option<String>)> = (0..n)
            .map(|i| {
                (
                    format!(
                        "127.0.0.1 - - [27/Nov/2026:12:00:00 +0000] \"GET /item/{i} HTTP/1.1\" 200 {}",
                        i % 5000
                    )
                    .into_bytes(),
                    None,
                )
            })
            .collect();
        let bs = batches(&recs, 500);
        let t = Instant::now();
        for group in bs.chunks(4) {
            futures_join_all(group.iter().map(|b| sink.deliver(b))).await;
        }
        let secs = t.elapsed().as_secs_f64();
        eprintln!(
            "{name}: {n} records in {secs:.2}s = {:.0} records/s",
            n as f64 / secs
        );
    }
}

/// A shard split after the shard map was loaded: the next aggregate lands in a child
/// shard that does not own all its user records; the sink notices the shard ID in the
/// response, reloads the map and re-sends those records regrouped, so what a KCL consumer
/// keeps (aggregates whose user records all belong to their shard) holds every record.
/// Moto keeps routing to the split parent, so the proxy answers with the shard IDs AWS
/// would give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharding_reloads_the_shard_map() {
    let Some(moto) = Moto::start() else { return };
    init_logging();
    let client = kinesis(&moto.endpoint);
    create_stream(&client, "reshard", 1).await;
    let proxy = Proxy::start(&moto.endpoint).await;
    let cfg = config(&proxy.endpoint);
    let mut f = flow(Destination::KinesisStream("reshard".into()));
    f.aggregation = Aggregation::Kpl;
    let sink = Sink::new(&cfg, &f, stats()).await.unwrap();
    sink.preflight().await;
    let first = records(300, "before");
    sink.deliver(&batch(0, &first)).await;

    let mid = 1u128 << 127;
    client
        .split_shard()
        .stream_name("reshard")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key(mid.to_string())
        .send()
        .await
        .expect("SplitShard");
    let (ranges, _) = read_stream(&client, "reshard").await;
    let children: Vec<(u128, u128, String)> = ranges
        .iter()
        .filter(|r| r.id != "shardId-000000000000")
        .map(|r| (r.start, r.end, r.id.clone()))
        .collect();
    assert_eq!(children.len(), 2, "{ranges:?}");
    proxy.update(|f| f.route = Some(children.clone()));

    let second = records(300, "after");
    tokio::time::timeout(Duration::from_secs(30), sink.deliver(&batch(1, &second)))
        .await
        .expect("delivery after the split");

    let shard_of = |h: u128| children.iter().find(|c| (c.0..=c.1).contains(&h)).unwrap();
    let mut kept = Vec::new();
    let mut dropped = 0;
    for s in proxy.seen() {
        if s.fate != Fate::Forwarded {
            continue;
        }
        let agg = kpl::decode(&s.data).unwrap();
        if !agg.records.iter().any(|u| u.data.starts_with(b"after")) {
            continue;
        }
        let routed = shard_of(s.explicit_hash_key.as_deref().unwrap().parse().unwrap());
        let ok = agg.records.iter().all(|u| {
            let h = match u.explicit_hash_key_index {
                Some(i) => agg.explicit_hash_key_table[i as usize].parse().unwrap(),
                None => {
                    hash_key(agg.partition_key_table[u.partition_key_index as usize].as_bytes())
                }
            };
            (routed.0..=routed.1).contains(&h)
        });
        if ok {
            kept.extend(agg.records.into_iter().map(|u| u.data));
        } else {
            dropped += 1;
        }
    }
    eprintln!("{dropped} aggregates the KCL would drop (sent again regrouped)");
    assert!(dropped > 0, "the stale map was not exercised");
    kept.sort();
    kept.dedup();
    let mut want: Vec<Vec<u8>> = second.iter().map(|r| r.0.clone()).collect();
    want.sort();
    assert_eq!(kept, want, "records lost for a KCL consumer");
}

/// One retry policy: the SDK makes one attempt per call, so every HTTP 500 the
/// destination answers reaches the sink, is counted as a service error and retried with
/// the flow's own backoff (with the SDK's retries on, three attempts hid two of them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failed_request_is_the_sinks_to_retry() {
    let Some(moto) = Moto::start() else { return };
    init_logging();
    let client = kinesis(&moto.endpoint);
    create_stream(&client, "onepolicy", 1).await;
    let proxy = Arc::new(Proxy::start(&moto.endpoint).await);
    let cfg = config(&proxy.endpoint);
    let mut f = flow(Destination::KinesisStream("onepolicy".into()));
    f.retry_initial_backoff = Duration::from_millis(20);
    f.retry_max_backoff = Duration::from_millis(50);
    let stats = stats();
    let sink = Sink::new(&cfg, &f, stats.clone()).await.unwrap();
    assert_eq!(sink.preflight().await, None);
    let (before, _, _) = proxy.counts();
    proxy.set_faults(Faults {
        http_500_share: 1.0,
        ..Faults::default()
    });
    let recs = records(20, "onepolicy");
    let bs = batches(&recs, 20);
    let healer = {
        let proxy = Arc::clone(&proxy);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(600)).await;
            proxy.set_faults(Faults::default());
        })
    };
    deliver_all(&sink, &bs).await;
    healer.await.unwrap();
    let (requests, http_500s, _) = proxy.counts();
    assert!(
        http_500s >= 3,
        "{http_500s} HTTP 500s: the outage was not seen"
    );
    assert_eq!(
        FlowStats::get(&stats.service_errors),
        http_500s,
        "each HTTP 500 is one failure the sink saw"
    );
    assert_eq!(
        requests - before,
        http_500s + 1,
        "one request per attempt: the failed ones, then the one that delivered"
    );
    assert_eq!(FlowStats::get(&stats.records_sent), 20);
}
