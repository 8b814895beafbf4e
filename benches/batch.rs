//! Batch building: records appended to a batch (one buffer, one index entry each) and the
//! checkpoint bookkeeping of a batch (register + acknowledge).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kinesis_tail::ack::FlowCheckpoints;
use kinesis_tail::event::{Batch, FileKey, RecordId};

fn bench(c: &mut Criterion) {
    let line = b"203.0.113.7 - frank [27/Nov/2026:12:00:01 +0000] \"GET /api/v1/orders?id=42 HTTP/1.1\" 200 5123 \"https://example.com/\" \"Mozilla/5.0 (X11; Linux x86_64)\"";
    let key = FileKey {
        dev: 1,
        ino: 2,
        fingerprint: 3,
        generation: 0,
    };
    let mut g = c.benchmark_group("batch");
    g.throughput(Throughput::Elements(500));
    g.bench_function("push 500 records", |b| {
        b.iter(|| {
            let mut batch = Batch::new(0);
            let mut offset = 0u64;
            for _ in 0..500 {
                batch.push(line, Some(b"key-1"), RecordId::new(&key, offset));
                batch.extend_last(b"\n");
                offset += line.len() as u64 + 1;
            }
            batch.cover(key, 0, offset);
            batch
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("register + ack one batch", |b| {
        let cp = FlowCheckpoints::new(vec![]);
        cp.open(key, std::path::Path::new("/var/log/a.log"), 0, None);
        let mut seq = 0u64;
        let mut at = 0u64;
        b.iter(|| {
            let mut batch = Batch::new(seq);
            batch.cover(key, at, at + 1000);
            cp.register(seq, &batch.ranges);
            cp.ack(seq, &batch.ranges);
            seq += 1;
            at += 1000;
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
