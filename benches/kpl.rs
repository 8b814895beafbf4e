//! KPL aggregation throughput: user records packed into aggregated records (encoding,
//! key table dedupe, MD5 trailer), the hot path of `aggregation: KPL`; and the MD5 of
//! several messages side by side (`md5many`) against one after the other.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kinesis_tail::aggregate::kpl::Aggregator;
use md5::{Digest, Md5};

fn records(n: usize, len: usize, keys: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let mut line = format!(
                "10.0.{}.{} - - [27/Nov/2026:12:00:00 +0000] \"GET /item/{i} HTTP/1.1\" 200 {} ",
                i % 256,
                i % 7,
                i % 5000
            )
            .into_bytes();
            line.resize(len, b'x');
            (format!("key-{}", i % keys), line)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("kpl");
    for (name, len, keys) in [
        ("200B_1key", 200, 1),
        ("200B_500keys", 200, 500),
        ("2KiB_50keys", 2048, 50),
    ] {
        let recs = records(5000, len, keys);
        let bytes: usize = recs.iter().map(|r| r.1.len()).sum();
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || {
                    (
                        Aggregator::new(1024 * 1024 - 1024),
                        Vec::with_capacity(bytes * 2),
                    )
                },
                |(agg, out)| {
                    for (k, d) in &recs {
                        if !agg.try_add(k, None, d) {
                            agg.finish(out);
                            agg.try_add(k, None, d);
                        }
                    }
                    agg.finish(out);
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn md5(c: &mut Criterion) {
    let mut g = c.benchmark_group("md5");
    // The aggregates of a 1 MiB batch: one per shard of four, one per lane of AVX2 or of
    // AVX-512; a batch's worth of record keys.
    for (name, n, len) in [
        ("4x256KiB", 4, 256 << 10),
        ("8x128KiB", 8, 128 << 10),
        ("16x64KiB", 16, 64 << 10),
        ("2500x400B", 2500, 400),
    ] {
        let msgs: Vec<Vec<u8>> = (0..n)
            .map(|i| (0..len).map(|j| (i * 7 + j * 13) as u8).collect())
            .collect();
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        g.throughput(Throughput::Bytes((n * len) as u64));
        g.bench_function(format!("{name}_one_by_one"), |b| {
            b.iter(|| refs.iter().map(Md5::digest).collect::<Vec<_>>())
        });
        g.bench_function(format!("{name}_lanes"), |b| {
            b.iter(|| kinesis_tail::md5many::digests(&refs))
        });
    }
    g.finish();
}

criterion_group!(benches, bench, md5);
criterion_main!(benches);
