//! Golden tests of the processor chain and the `process` subcommand's loop, an IMDS test
//! server for ADDEC2METADATA, and record-ID uniqueness across rotation and truncation.

use crate::support::agent;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kinesis_tail::cli::run_process;
use kinesis_tail::config::{
    Destination, FlowConfig, InitialPosition, JsonFormat, LogFormat, OnParseError, OutputTarget,
    ProcessorConfig,
};
use kinesis_tail::ec2::Ec2Metadata;
use kinesis_tail::event::{FileKey, RecordId};
use kinesis_tail::framing::{FrameEvent, Framer};
use kinesis_tail::metrics::FlowStats;
use kinesis_tail::process::{Chain, Outcome};
use proptest::prelude::*;
use serde_json::{json, Value};

/// A flow with every option at its default and no record IDs (golden outputs stay short).
fn flow(processors: Vec<ProcessorConfig>) -> FlowConfig {
    FlowConfig {
        processors,
        record_id_field: None,
        initial_position: InitialPosition::StartOfFile,
        ..FlowConfig::with_defaults("/tmp/*.log", Destination::OutputFile(OutputTarget::Stdout))
    }
}

/// LOGTOJSON with this crate's patterns (`lenient`), which these tests cover; the Java
/// agent's own patterns are covered by `conformance.rs`.
fn log(format: LogFormat) -> ProcessorConfig {
    ProcessorConfig::LogToJson {
        format,
        match_pattern: None,
        custom_field_names: None,
        lenient: true,
        json_format: None,
    }
}

fn key(generation: u32) -> FileKey {
    FileKey {
        dev: 2049,
        ino: 77,
        fingerprint: 0xfeed,
        generation,
    }
}

fn id() -> RecordId {
    RecordId::new(&key(0), 0)
}

/// Runs `flow`'s chain over one record.
/// Runs the chain over one line; the record sent ends with the line's newline (every
/// chain here ends with a JSON or text processor, or none), which is checked and removed.
fn one(flow: &FlowConfig, line: &[u8]) -> (Outcome, Vec<u8>) {
    let mut chain = Chain::with_ec2(flow, None);
    let mut out = Vec::new();
    let o = chain.process(line, id(), &mut out);
    if o != Outcome::Dropped {
        assert_eq!(out.pop(), Some(b'\n'), "the record ends with its newline");
    }
    (o, out)
}

/// Runs the chain and parses the JSON result.
fn obj(flow: &FlowConfig, line: &str) -> Value {
    let (o, out) = one(flow, line.as_bytes());
    assert_eq!(o, Outcome::Emit, "{line}");
    serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
}

/// The exact text the chain produces.
fn text(flow: &FlowConfig, line: &str) -> String {
    let (o, out) = one(flow, line.as_bytes());
    assert_eq!(o, Outcome::Emit, "{line}");
    String::from_utf8(out).unwrap()
}

#[test]
fn common_apache_log() {
    let f = flow(vec![log(LogFormat::CommonApacheLog)]);
    assert_eq!(
        text(
            &f,
            r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#
        ),
        r#"{"host":"127.0.0.1","ident":null,"authuser":"frank","datetime":"10/Oct/2000:13:55:36 -0700","request":"GET /apache_pb.gif HTTP/1.0","response":"200","bytes":"2326"}"#
    );
    // `-` → null; values stay strings; trailing text ignored as in Java.
    assert_eq!(
        obj(
            &f,
            r#"<34>2001:db8::1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 304 - extra"#
        ),
        json!({"host":"2001:db8::1","ident":null,"authuser":null,"datetime":"10/Oct/2000:13:55:36 -0700",
               "request":"GET / HTTP/1.1","response":"304","bytes":null})
    );
}

#[test]
fn combined_apache_log() {
    let f = flow(vec![log(LogFormat::CombinedApacheLog)]);
    let line = r#"192.168.1.20 - user@example.com [27/Nov/2026:12:00:00 +0000] "POST /api?q=1 HTTP/2.0" 201 512 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64)""#;
    assert_eq!(
        text(&f, line),
        r#"{"host":"192.168.1.20","ident":null,"authuser":"user@example.com","datetime":"27/Nov/2026:12:00:00 +0000","request":"POST /api?q=1 HTTP/2.0","response":"201","bytes":"512","referer":"https://example.com/","agent":"Mozilla/5.0 (X11; Linux x86_64)"}"#
    );
    // IPv6 client, <PRI>, `-` referer, an escaped quote (the pattern path, not the fast one).
    assert_eq!(
        obj(
            &f,
            r#"<134>::1 - - [27/Nov/2026:12:00:00 +0000] "GET /x HTTP/1.1" 200 - "-" "curl \"8\"""#
        ),
        json!({"host":"::1","ident":null,"authuser":null,"datetime":"27/Nov/2026:12:00:00 +0000",
               "request":"GET /x HTTP/1.1","response":"200","bytes":null,"referer":null,
               "agent":"curl \\\"8\\\""})
    );
    // Non-ASCII goes through the pattern too.
    assert_eq!(
        obj(&f, r#"h - - [d] "GET /é HTTP/1.1" 200 1 "-" "ü""#)["agent"],
        json!("ü")
    );
    // A common-format line is not a combined one.
    let (o, out) = one(&f, br#"127.0.0.1 - - [d] "GET / HTTP/1.0" 200 1"#);
    assert_eq!((o, out.len()), (Outcome::Dropped, 0));
}

#[test]
fn apache_error_log() {
    let f = flow(vec![log(LogFormat::ApacheErrorLog)]);
    assert_eq!(
        obj(&f, "[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187:54203] File does not exist: /usr/local/apache2/htdocs/favicon.ico"),
        json!({"timestamp":"Fri Sep 09 10:42:29.902022 2011","module":"core","severity":"error",
               "processid":"35708","threadid":"4328636416","client":"72.15.99.187:54203",
               "message":"File does not exist: /usr/local/apache2/htdocs/favicon.ico"})
    );
    // Apache 2.2: no module, no pid; an IPv6 client.
    assert_eq!(
        obj(&f, "[Wed Oct 11 14:32:52 2000] [error] [client 2001:db8::7] client denied by server configuration: /export/home/live/ap/htdocs/test"),
        json!({"timestamp":"Wed Oct 11 14:32:52 2000","module":null,"severity":"error",
               "processid":null,"threadid":null,"client":"2001:db8::7",
               "message":"client denied by server configuration: /export/home/live/ap/htdocs/test"})
    );
    assert_eq!(
        obj(
            &f,
            "[Wed Oct 11 14:32:52 2000] [notice] [pid 12] Apache configured"
        )["client"],
        Value::Null
    );
}

#[test]
fn syslog_formats() {
    let f = flow(vec![log(LogFormat::Syslog)]);
    assert_eq!(
        text(&f, "Mar 12 12:00:08 server2 rcd[308]: Loaded 12 packages in 'ximian-red-carpet|351' (0.01878 seconds)"),
        r#"{"timestamp":"Mar 12 12:00:08","hostname":"server2","program":"rcd","processid":"308","message":"Loaded 12 packages in 'ximian-red-carpet|351' (0.01878 seconds)"}"#
    );
    assert_eq!(
        obj(
            &f,
            "<13>Jan  5 00:00:01 host-1 kernel: [ 1.2] usb 1-1: new device"
        ),
        json!({"timestamp":"Jan  5 00:00:01","hostname":"host-1","program":"kernel",
               "processid":null,"message":"[ 1.2] usb 1-1: new device"})
    );
    let (o, _) = one(&f, b"not a syslog line");
    assert_eq!(o, Outcome::Dropped);

    let f = flow(vec![log(LogFormat::Rfc3339Syslog)]);
    assert_eq!(
        obj(
            &f,
            "2026-11-27T12:00:00.123456+01:00 web-01 nginx[1234]: GET / 200"
        ),
        json!({"timestamp":"2026-11-27T12:00:00.123456+01:00","hostname":"web-01",
               "program":"nginx","processid":"1234","message":"GET / 200"})
    );
    assert_eq!(
        obj(&f, "2026-11-27T12:00:00Z fe80::1 systemd: Started.")["hostname"],
        json!("fe80::1")
    );
}

#[test]
fn rfc5424_syslog() {
    let f = flow(vec![log(LogFormat::Rfc5424Syslog)]);
    assert_eq!(
        obj(&f, "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for lonvick on /dev/pts/8"),
        json!({"pri":"34","version":"1","timestamp":"2003-10-11T22:14:15.003Z",
               "hostname":"mymachine.example.com","appname":"su","procid":null,"msgid":"ID47",
               "structureddata":null,"message":"'su root' failed for lonvick on /dev/pts/8"})
    );
    assert_eq!(
        obj(
            &f,
            r#"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - [exampleSDID@32473 iut="3" eventSource="App]lication"][x@1 a="b"]"#
        ),
        json!({"pri":"165","version":"1","timestamp":"2003-08-24T05:14:15.000003-07:00",
               "hostname":"192.0.2.1","appname":"myproc","procid":"8710","msgid":null,
               "structureddata":r#"[exampleSDID@32473 iut="3" eventSource="App]lication"][x@1 a="b"]"#,
               "message":null})
    );
}

#[test]
fn json_log_format() {
    let f = flow(vec![log(LogFormat::Json)]);
    assert_eq!(
        text(&f, r#" {"b": 1, "a": {"x": [true, null]}, "s": "é\n"} "#),
        r#"{"b":1,"a":{"x":[true,null]},"s":"é\n"}"#
    );
    for bad in ["[1,2]", "\"s\"", "{broken", ""] {
        assert_eq!(one(&f, bad.as_bytes()).0, Outcome::Dropped, "{bad}");
    }
}

#[test]
fn match_pattern_and_custom_field_names() {
    let f = flow(vec![ProcessorConfig::LogToJson {
        format: LogFormat::CommonApacheLog,
        match_pattern: Some(regex::Regex::new(r"(\w+)=(\d+)(?: (\w+))?").unwrap()),
        custom_field_names: Some(vec!["k".into(), "v".into(), "opt".into(), "none".into()]),
        lenient: false,
        json_format: None,
    }]);
    assert_eq!(
        text(&f, "key=12"),
        r#"{"k":"key","v":"12","opt":null,"none":null}"#
    );
    assert_eq!(
        text(&f, "key=12 x"),
        r#"{"k":"key","v":"12","opt":"x","none":null}"#
    );
    // The pattern must match the whole line (Java `matches`).
    assert_eq!(one(&f, b"key=12 x y").0, Outcome::Dropped);

    // Names replace the format's fields; `[t]` is no Java HTTPDATE, so lenient patterns.
    let f = flow(vec![ProcessorConfig::LogToJson {
        format: LogFormat::CommonApacheLog,
        match_pattern: None,
        custom_field_names: Some(
            ["ip", "id", "user", "time", "req", "status", "size"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ),
        lenient: true,
        json_format: None,
    }]);
    assert_eq!(
        text(&f, r#"1.2.3.4 - - [t] "GET /" 200 5"#),
        r#"{"ip":"1.2.3.4","id":null,"user":null,"time":"t","req":"GET /","status":"200","size":"5"}"#
    );
}

#[test]
fn keep_raw_on_parse_error() {
    let mut f = flow(vec![
        log(LogFormat::CommonApacheLog),
        ProcessorConfig::AddMetadata {
            metadata: json!("m"),
            timestamp: false,
            nest_objects: true,
            json_format: None,
        },
    ]);
    assert_eq!(one(&f, b"garbage").0, Outcome::Dropped);
    f.on_parse_error = OnParseError::KeepRaw;
    assert_eq!(text(&f, "garbage"), r#"{"metadata":"m","data":"garbage"}"#);
    f.processors.pop();
    assert_eq!(
        one(&f, b"gar\xffbage"),
        (Outcome::Emit, b"gar\xffbage".to_vec())
    );
}

#[test]
fn csv_to_json() {
    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let f = flow(vec![ProcessorConfig::CsvToJson {
        field_names: names(&["a", "b", "c"]),
        delimiter: ",".into(),
        quoted: true,
        json_format: None,
    }]);
    assert_eq!(text(&f, "1,2,3"), r#"{"a":"1","b":"2","c":"3"}"#);
    assert_eq!(text(&f, "1"), r#"{"a":"1","b":null,"c":null}"#);
    assert_eq!(text(&f, "1,2,3,4,5"), r#"{"a":"1","b":"2","c":"3"}"#);
    assert_eq!(
        text(&f, r#""x, y",,"say ""hi""""#),
        r#"{"a":"x, y","b":"","c":"say \"hi\""}"#
    );
    assert_eq!(text(&f, "1,\u{e9},3\r"), r#"{"a":"1","b":"é","c":"3"}"#);
    let (_, out) = one(&f, b"\xff,2");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "{\"a\":\"\u{FFFD}\",\"b\":\"2\",\"c\":null}"
    );

    let f = flow(vec![ProcessorConfig::CsvToJson {
        field_names: names(&["when", "what"]),
        delimiter: "\\t".into(),
        quoted: true,
        json_format: None,
    }]);
    assert_eq!(
        text(&f, "2026-11-27\ta,b c"),
        r#"{"when":"2026-11-27","what":"a,b c"}"#
    );
}

#[test]
fn add_metadata() {
    let f = flow(vec![ProcessorConfig::AddMetadata {
        metadata: json!({"env": "prod", "n": 1}),
        timestamp: true,
        nest_objects: true,
        json_format: None,
    }]);
    let v = obj(&f, "hello \"world\"");
    let ts = v["ts"].as_str().unwrap();
    let re = regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$").unwrap();
    assert!(re.is_match(ts), "{ts}");
    assert_eq!(v["metadata"], json!({"env": "prod", "n": 1}));
    assert_eq!(v["data"], json!("hello \"world\""));
    // Key order is ts, metadata, data.
    let t = text(&f, "x");
    assert!(
        t.starts_with(r#"{"ts":""#)
            && t.ends_with(r#","metadata":{"env":"prod","n":1},"data":"x"}"#),
        "{t}"
    );

    // After a processor that made an object, `data` is that object.
    let mut f = flow(vec![
        log(LogFormat::Syslog),
        ProcessorConfig::AddMetadata {
            metadata: json!(null),
            timestamp: false,
            nest_objects: true,
            json_format: None,
        },
    ]);
    f.record_id_field = Some("recordId".into());
    assert_eq!(
        text(&f, "Mar 12 12:00:08 h p: m"),
        format!(
            r#"{{"metadata":null,"data":{{"timestamp":"Mar 12 12:00:08","hostname":"h","program":"p","processid":null,"message":"m"}},"recordId":"{}"}}"#,
            id()
        )
    );
}

#[test]
fn record_id_field() {
    let mut f = flow(vec![log(LogFormat::Json)]);
    f.record_id_field = Some("_id".into());
    let v = obj(&f, r#"{"a":1}"#);
    assert_eq!(v, json!({"a": 1, "_id": id().to_string()}));
    assert_eq!(id().to_string(), format!("{:016x}-0", key(0).digest()));
    // Raw records are never changed.
    let f2 = {
        let mut f2 = flow(vec![ProcessorConfig::SingleLine {
            no_trim: false,
            escape_new_line: false,
        }]);
        f2.record_id_field = Some("recordId".into());
        f2
    };
    assert_eq!(text(&f2, r#"{"a":1}"#), r#"{"a":1}"#);
}

#[test]
fn pretty_print() {
    let mut f = flow(vec![ProcessorConfig::CsvToJson {
        field_names: vec!["a".into(), "b".into()],
        delimiter: ",".into(),
        quoted: true,
        json_format: None,
    }]);
    f.json_format = JsonFormat::PrettyPrint;
    assert_eq!(text(&f, "1"), "{\n  \"a\" : \"1\",\n  \"b\" : null\n}");
}

/// Runs the `process` loop over `input`.
fn process(flow: &FlowConfig, input: &[u8]) -> (String, Arc<FlowStats>) {
    let stats = Arc::new(FlowStats::default());
    let mut out = Vec::new();
    run_process(flow, input, &mut out, &stats).unwrap();
    (String::from_utf8(out).unwrap(), stats)
}

#[test]
fn pretty_printed_json_flattened_by_multi_line_and_singleline() {
    let mut f = flow(vec![
        ProcessorConfig::SingleLine {
            no_trim: false,
            escape_new_line: false,
        },
        log(LogFormat::Json),
    ]);
    f.multi_line_start_pattern = Some(regex::bytes::Regex::new(r"^\{").unwrap());
    let input = std::fs::read("tests/fixtures/process/pretty.json").unwrap();
    let (out, stats) = process(&f, &input);
    assert_eq!(
        out,
        "{\"id\":1,\"msg\":\"first\",\"tags\":[\"a\",\"b\"]}\n{\"id\":2,\"nested\":{\"k\":\"v w\"}}\n"
    );
    assert_eq!(FlowStats::get(&stats.records_parsed), 2);
    assert_eq!(FlowStats::get(&stats.bytes_parsed), input.len() as u64);
}

#[test]
fn singleline_options() {
    let mk = |no_trim, escape_new_line| {
        flow(vec![ProcessorConfig::SingleLine {
            no_trim,
            escape_new_line,
        }])
    };
    let rec = "Exception: boom\n    at a.b(C.java:1)\n    at d.e(F.java:2)";
    assert_eq!(
        text(&mk(false, false), rec),
        "Exception: boomat a.b(C.java:1)at d.e(F.java:2)"
    );
    // ESCAPE_NEW_LINE joins with two backslashes and `n`, as the Java agent does.
    assert_eq!(
        text(&mk(false, true), rec),
        r"Exception: boom\\nat a.b(C.java:1)\\nat d.e(F.java:2)"
    );
    assert_eq!(
        text(&mk(true, true), rec),
        r"Exception: boom\\n    at a.b(C.java:1)\\n    at d.e(F.java:2)"
    );
    assert_eq!(
        text(&mk(true, false), rec),
        "Exception: boom    at a.b(C.java:1)    at d.e(F.java:2)"
    );
}

#[test]
fn process_loop_counts_and_prints() {
    let mut f = flow(vec![log(LogFormat::Syslog)]);
    f.skip_header_lines = 1;
    let (out, stats) = process(
        &f,
        b"header\nJan 1 00:00:00 h p: a\nnope\nJan 1 00:00:00 h p[2]: last",
    );
    assert_eq!(
        out,
        "{\"timestamp\":\"Jan 1 00:00:00\",\"hostname\":\"h\",\"program\":\"p\",\"processid\":null,\"message\":\"a\"}\n\
         {\"timestamp\":\"Jan 1 00:00:00\",\"hostname\":\"h\",\"program\":\"p\",\"processid\":\"2\",\"message\":\"last\"}\n"
    );
    assert_eq!(FlowStats::get(&stats.records_parsed), 3);
    assert_eq!(
        FlowStats::get(&stats.records_dropped),
        2,
        "the header and the unmatched line"
    );

    // Raw flow: bytes as they are, final line without newline included.
    let (out, _) = process(&flow(vec![]), b"a\r\n\nb");
    assert_eq!(out, "a\r\n\nb\n");
}

#[test]
fn process_loop_truncates_to_the_destination_limit() {
    let mut f = flow(vec![]);
    f.truncated_record_terminator = b"[cut]".to_vec();
    let mut input = vec![b'x'; 2 << 20];
    input.push(b'\n');
    let (out, stats) = process(&f, &input);
    // As the Java agent: the record, terminator included, fills the limit, and the
    // terminator takes the place of the line's newline.
    assert_eq!(out.len(), f.default_max_record_bytes());
    assert!(out.ends_with("x[cut]"));
    assert_eq!(FlowStats::get(&stats.records_truncated), 1);
}

// ---------------------------------------------------------------------------------------
// ADDEC2METADATA against a local instance metadata server.

const DOC: &str = r#"{"accountId":"123456789012","architecture":"x86_64","availabilityZone":"eu-west-1b","imageId":"ami-0abc","instanceId":"i-0123456789abcdef0","instanceType":"m5.large","privateIp":"10.0.0.12","region":"eu-west-1","version":"2017-09-30"}"#;

/// A tiny IMDS: PUT /latest/api/token gives a token (or 404 when `v1_only`); the identity
/// document needs that token unless `v1_only`. Counts the requests it served.
fn imds(v1_only: bool) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut token = None;
            let mut ttl = None;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h == "\r\n" || h.is_empty() {
                    break;
                }
                let (name, value) = h.split_once(':').unwrap();
                match name.to_ascii_lowercase().as_str() {
                    "x-aws-ec2-metadata-token" => token = Some(value.trim().to_owned()),
                    "x-aws-ec2-metadata-token-ttl-seconds" => ttl = Some(value.trim().to_owned()),
                    _ => {}
                }
            }
            count.fetch_add(1, Ordering::SeqCst);
            let (status, body) = if request_line.starts_with("PUT /latest/api/token ") {
                if v1_only {
                    ("404 Not Found", String::new())
                } else if ttl.is_some() {
                    ("200 OK", "TOKEN-42".to_owned())
                } else {
                    ("400 Bad Request", String::new())
                }
            } else if request_line.starts_with("GET /latest/dynamic/instance-identity/document ") {
                if v1_only || token.as_deref() == Some("TOKEN-42") {
                    ("200 OK", DOC.to_owned())
                } else {
                    ("401 Unauthorized", String::new())
                }
            } else {
                ("404 Not Found", String::new())
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (endpoint, served)
}

fn ec2_flow() -> FlowConfig {
    let mut f = flow(vec![
        log(LogFormat::Json),
        ProcessorConfig::AddEc2Metadata {
            ttl: Duration::from_secs(3600),
        },
    ]);
    f.on_parse_error = OnParseError::KeepRaw;
    f
}

#[test]
fn add_ec2_metadata_with_imdsv2() {
    let (endpoint, served) = imds(false);
    let handle = Ec2Metadata::start(&endpoint, Duration::from_secs(3600));
    assert!(handle.wait_ready(Duration::from_secs(10)));
    assert_eq!(served.load(Ordering::SeqCst), 2, "token, then document");
    let f = ec2_flow();
    let mut chain = Chain::with_ec2(&f, Some(handle));
    let mut out = Vec::new();
    assert_eq!(
        chain.process(br#"{"msg":"hi"}"#, id(), &mut out),
        Outcome::Emit
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(v["msg"], "hi");
    assert_eq!(v["privateIp"], "10.0.0.12");
    assert_eq!(v["availabilityZone"], "eu-west-1b");
    assert_eq!(v["instanceId"], "i-0123456789abcdef0");
    assert_eq!(v["instanceType"], "m5.large");
    assert_eq!(v["accountId"], "123456789012");
    assert_eq!(v["amiId"], "ami-0abc");
    assert_eq!(v["region"], "eu-west-1");
    let ts = v["metadataTimestamp"].as_str().unwrap();
    assert!(
        regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$")
            .unwrap()
            .is_match(ts),
        "{ts}"
    );
    assert_eq!(keys.len(), 9, "{keys:?}");
    // Many records, no more requests: the metadata is not fetched on the hot path.
    for _ in 0..1000 {
        chain.process(br#"{"msg":"hi"}"#, id(), &mut out);
    }
    assert_eq!(served.load(Ordering::SeqCst), 2);
    // A raw (non-JSON) record goes through unchanged.
    assert_eq!(chain.process(b"plain", id(), &mut out), Outcome::Emit);
    assert_eq!(out, b"plain\n");
}

#[test]
fn add_ec2_metadata_falls_back_to_imdsv1() {
    let (endpoint, _) = imds(true);
    let handle = Ec2Metadata::new(&endpoint);
    handle.refresh().unwrap();
    let mut chain = Chain::with_ec2(&ec2_flow(), Some(handle));
    let mut out = Vec::new();
    chain.process(br#"{"a":1}"#, id(), &mut out);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["instanceId"], "i-0123456789abcdef0");
}

/// Collects what `tracing` logs on this thread.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn add_ec2_metadata_without_a_server_leaves_records_unchanged_and_warns_once() {
    // A port nobody listens on.
    let endpoint = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let handle = Ec2Metadata::new(&endpoint);
        for _ in 0..3 {
            assert!(handle.refresh().is_err());
        }
        let mut chain = Chain::with_ec2(&ec2_flow(), Some(handle));
        let mut out = Vec::new();
        for _ in 0..100 {
            assert_eq!(chain.process(br#"{"a":1}"#, id(), &mut out), Outcome::Emit);
            assert_eq!(out, b"{\"a\":1}\n");
        }
    });
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.matches("WARN").count(), 1, "{text}");
    assert!(text.contains("EC2 instance metadata unavailable"), "{text}");
}

// ---------------------------------------------------------------------------------------
// Record IDs across rotation and truncation.

/// The IDs of every record framed from `content` read from offset 0.
fn ids_of(key: &FileKey, content: &[u8]) -> Vec<(RecordId, Vec<u8>)> {
    let f = flow(vec![]);
    let mut framer = Framer::new(&f, 0, 1 << 20);
    let mut ids = Vec::new();
    let mut on = |ev: FrameEvent<'_>| {
        if let FrameEvent::Record(fr) = ev {
            ids.push((RecordId::new(key, fr.offset), fr.bytes.to_vec()));
        }
    };
    framer.push(content, &mut on);
    framer.flush(true, &mut on);
    ids
}

proptest! {
    #![proptest_config(agent::proptest_cases(64))]

    /// A file is written, rotated (renamed: same identity, new file: new inode),
    /// truncated (new generation) and rewritten with the same bytes, then everything is
    /// read again: IDs are unique across different (identity, offset), and the same bytes
    /// read again get the same IDs.
    #[test]
    fn record_ids_unique_across_rotation_and_truncation(
        lines in proptest::collection::vec("[a-z]{0,8}", 1..20),
        truncations in 1u32..4,
    ) {
        let content: Vec<u8> = lines.iter().flat_map(|l| l.bytes().chain(std::iter::once(b'\n'))).collect();
        let mut seen = std::collections::HashMap::new();
        let mut files = vec![key(0), FileKey { ino: 78, ..key(0) }];
        for g in 1..=truncations {
            files.push(key(g));
        }
        for k in &files {
            let first = ids_of(k, &content);
            let again = ids_of(k, &content);
            prop_assert_eq!(&first, &again, "re-reading gives the same IDs");
            for (id, bytes) in first {
                let previous = seen.insert(id.to_string(), (*k, bytes));
                prop_assert!(previous.is_none(), "ID {} given twice", id);
            }
        }
        // Through a JSON chain the ID lands in the record.
        let mut f = flow(vec![ProcessorConfig::AddMetadata { metadata: json!(null), timestamp: false, nest_objects: true, json_format: None }]);
        f.record_id_field = Some("recordId".into());
        let mut chain = Chain::with_ec2(&f, None);
        let mut out = Vec::new();
        for (id, bytes) in ids_of(&files[0], &content) {
            chain.process(&bytes, id, &mut out);
            let v: Value = serde_json::from_slice(&out).unwrap();
            prop_assert_eq!(v["recordId"].as_str().unwrap(), id.to_string());
        }
    }
}

#[test]
fn fixtures_are_present() {
    let mut s = String::new();
    std::fs::File::open("tests/fixtures/process/pretty.json")
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert!(s.contains("\"nested\""));
}

/// `CRI` as the first processor: the runtime's lines decoded and joined, then the rest of
/// the chain on the application's lines; `process --path` names the pod.
#[test]
fn cri_decodes_container_logs_before_the_chain() {
    let load = |yaml: &str| {
        kinesis_tail::config::load_str(yaml, std::path::Path::new("/etc/kt.yaml"))
            .unwrap_or_else(|e| panic!("{e}"))
            .config
            .flows
            .remove(0)
    };
    let t = "2026-12-02T10:00:00.5Z";
    let access = r#"10.0.0.1 - - [02/Dec/2026:10:00:00 +0000] "GET /a HTTP/1.1" 200 5"#;
    let (head, tail) = access.split_at(20);
    let input = format!("{t} stdout P {head}\n{t} stdout F {tail}\n{t} stderr F not apache\n");

    // Parsed by LOGTOJSON once joined; the line it cannot parse is dropped as usual.
    let flow = load(
        "flows:\n  - filePattern: /var/log/containers/*.log\n    outputFile: '-'\n    \
         dataProcessingOptions:\n      - optionName: CRI\n      - optionName: LOGTOJSON\n        \
         logFormat: COMMONAPACHELOG\n",
    );
    let (out, stats) = process(&flow, input.as_bytes());
    let v: Value = serde_json::from_str(out.trim_end()).unwrap();
    assert_eq!(v["host"], "10.0.0.1");
    assert_eq!(v["request"], "GET /a HTTP/1.1");
    assert_eq!(
        stats
            .records_dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    // As JSON with the pod's fields, nested by ADDMETADATA.
    let flow = load(
        "flows:\n  - filePattern: /var/log/containers/*.log\n    outputFile: '-'\n    \
         dataProcessingOptions:\n      - optionName: CRI\n        output: json\n      \
         - optionName: ADDMETADATA\n        metadata: {node: n1}\n        nestObjects: true\n",
    );
    let id = "9f".repeat(32);
    let path = format!("/var/log/containers/web-1_shop_nginx-{id}.log");
    let stats = FlowStats::default();
    let mut out = Vec::new();
    kinesis_tail::cli::run_process_with(
        &flow,
        Some(std::path::Path::new(&path)),
        Chain::new(&flow),
        input.as_bytes(),
        &mut out,
        &stats,
    )
    .unwrap();
    let lines: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["metadata"]["node"], "n1");
    assert_eq!(
        lines[0]["data"],
        json!({"time": t, "stream": "stdout", "log": access,
            "kubernetes": {"namespace": "shop", "pod": "web-1", "container": "nginx", "containerId": id}})
    );
    assert_eq!(lines[1]["data"]["log"], "not apache");
    assert_eq!(lines[1]["data"]["stream"], "stderr");
}
