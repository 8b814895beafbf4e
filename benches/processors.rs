//! Hot-path benchmarks: framing raw lines and each processor on realistic lines.
//!
//! `cargo bench --bench processors`; throughput is reported in bytes (framing) or
//! records (processors) per second, on one core.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kinesis_tail::config::{
    ContainerOutput, Destination, FlowConfig, InitialPosition, LogFormat, OutputTarget,
    ProcessorConfig,
};
use kinesis_tail::event::{FileKey, RecordId};
use kinesis_tail::framing::{FrameEvent, Framer};
use kinesis_tail::process::Chain;

fn flow(processors: Vec<ProcessorConfig>) -> FlowConfig {
    FlowConfig {
        processors,
        initial_position: InitialPosition::StartOfFile,
        ..FlowConfig::with_defaults("/tmp/*.log", Destination::OutputFile(OutputTarget::Stdout))
    }
}

/// Apache combined lines with some variety.
fn combined_lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                r#"10.{}.{}.{} - user{} [27/Nov/2026:12:{:02}:{:02} +0000] "GET /api/v1/items/{}?page={} HTTP/1.1" {} {} "https://example.com/page/{}" "Mozilla/5.0 (X11; Linux x86_64; rv:{}.0) Gecko/20100101 Firefox/{}.0""#,
                i % 256,
                (i / 7) % 256,
                (i / 13) % 256,
                i % 50,
                i % 60,
                (i / 60) % 60,
                i,
                i % 9,
                [200, 304, 404, 500][i % 4],
                i * 37 % 100_000,
                i % 100,
                100 + i % 30,
                100 + i % 30
            )
        })
        .collect()
}

fn run_chain(c: &mut Criterion, name: &str, processors: Vec<ProcessorConfig>, lines: &[String]) {
    let f = flow(processors);
    let mut chain = Chain::with_ec2(&f, None);
    let key = FileKey {
        dev: 1,
        ino: 2,
        fingerprint: 3,
        generation: 0,
    };
    let mut out = Vec::with_capacity(4096);
    let mut g = c.benchmark_group("processors");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function(name, |b| {
        b.iter(|| {
            let mut offset = 0u64;
            for l in lines {
                let o = chain.process(l.as_bytes(), RecordId::new(&key, offset), &mut out);
                black_box((&o, &out));
                offset += l.len() as u64 + 1;
            }
        })
    });
    g.finish();
}

/// Frames `data` in 64 KiB reads, as the reader reads; returns the bytes of the records.
fn frame_all(mut framer: Framer, data: &[u8]) -> usize {
    let mut n = 0usize;
    for chunk in data.chunks(64 * 1024) {
        framer.push(chunk, &mut |ev| {
            if let FrameEvent::Record(r) = ev {
                n += r.bytes.len();
            }
        });
    }
    n
}

fn framing(c: &mut Criterion) {
    let lines = combined_lines(20_000);
    let mut data = Vec::new();
    for l in &lines {
        data.extend_from_slice(l.as_bytes());
        data.push(b'\n');
    }
    let f = flow(vec![]);
    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("raw_lines_64k_reads", |b| {
        b.iter(|| black_box(frame_all(Framer::new(&f, 0, 1 << 20), &data)))
    });
    g.finish();

    // Container logs (`CRI`): the same lines as the runtime writes them, one in ten split
    // in two parts; throughput in records, next to `processors/logtojson_*`.
    let t = "2026-12-02T10:00:00.123456789Z";
    let mut cri = Vec::new();
    let mut docker = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let parts: Vec<&str> = if i % 10 == 0 {
            let (a, b) = l.split_at(l.len() / 2);
            vec![a, b]
        } else {
            vec![l]
        };
        for (j, p) in parts.iter().enumerate() {
            let last = j + 1 == parts.len();
            cri.extend_from_slice(
                format!("{t} stdout {} {p}\n", if last { 'F' } else { 'P' }).as_bytes(),
            );
            let mut log = serde_json::to_string(&format!("{p}{}", if last { "\n" } else { "" }))
                .expect("a string");
            log.insert_str(0, "{\"log\":");
            docker.extend_from_slice(
                format!("{log},\"stream\":\"stdout\",\"time\":\"{t}\"}}\n").as_bytes(),
            );
        }
    }
    let path = std::path::PathBuf::from(format!(
        "/var/log/containers/web-1_shop_nginx-{}.log",
        "ab".repeat(32)
    ));
    let cri_flow = |output| {
        flow(vec![ProcessorConfig::Container(
            kinesis_tail::config::ContainerLog {
                format: kinesis_tail::config::ContainerFormat::Auto,
                output,
                kubernetes: true,
            },
        )])
    };
    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Elements(lines.len() as u64));
    for (name, f, data) in [
        (
            "cri_message_64k_reads",
            cri_flow(ContainerOutput::Message),
            &cri,
        ),
        ("cri_json_64k_reads", cri_flow(ContainerOutput::Json), &cri),
        (
            "docker_message_64k_reads",
            cri_flow(ContainerOutput::Message),
            &docker,
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let framer = Framer::for_file(&f, 0, 1 << 20, Some(&path));
                black_box(frame_all(framer, data))
            })
        });
    }
    g.finish();
}

fn processors(c: &mut Criterion) {
    let combined = combined_lines(10_000);
    run_chain(
        c,
        "logtojson_combinedapachelog",
        vec![ProcessorConfig::LogToJson {
            format: LogFormat::CombinedApacheLog,
            match_pattern: None,
            custom_field_names: None,
            lenient: false,
            json_format: None,
        }],
        &combined,
    );
    run_chain(
        c,
        "logtojson_combinedapachelog_lenient",
        vec![ProcessorConfig::LogToJson {
            format: LogFormat::CombinedApacheLog,
            match_pattern: None,
            custom_field_names: None,
            lenient: true,
            json_format: None,
        }],
        &combined,
    );
    let syslog: Vec<String> = (0..10_000)
        .map(|i| format!("Nov 27 12:00:{:02} host-{} sshd[{}]: Accepted publickey for user{} from 10.0.0.{} port {} ssh2", i % 60, i % 10, 1000 + i, i % 40, i % 256, 40000 + i))
        .collect();
    run_chain(
        c,
        "logtojson_syslog",
        vec![ProcessorConfig::LogToJson {
            format: LogFormat::Syslog,
            match_pattern: None,
            custom_field_names: None,
            lenient: false,
            json_format: None,
        }],
        &syslog,
    );
    let csv: Vec<String> = (0..10_000)
        .map(|i| {
            format!(
                "{},user{},\"Smith, J\",{}.{:02},2026-11-27T12:00:00Z,ok",
                i,
                i % 100,
                i % 1000,
                i % 100
            )
        })
        .collect();
    run_chain(
        c,
        "csvtojson",
        vec![ProcessorConfig::CsvToJson {
            field_names: ["id", "user", "name", "amount", "time", "status"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            delimiter: ",".into(),
            quoted: false,
            json_format: None,
        }],
        &csv,
    );
    let multi: Vec<String> = (0..10_000)
        .map(|i| format!("java.lang.IllegalStateException: boom {i}\n    at com.example.Foo.bar(Foo.java:{})\n    at com.example.Main.main(Main.java:7)", i % 500))
        .collect();
    run_chain(
        c,
        "singleline",
        vec![ProcessorConfig::SingleLine {
            no_trim: false,
            escape_new_line: true,
        }],
        &multi,
    );
    run_chain(
        c,
        "addmetadata",
        vec![ProcessorConfig::AddMetadata {
            metadata: serde_json::json!({"env": "prod", "app": "web"}),
            timestamp: true,
            nest_objects: false,
            json_format: None,
        }],
        &combined,
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = framing, processors
}
criterion_main!(benches);
