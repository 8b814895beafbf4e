//! TLS to the AWS endpoints through the real binary: certificates are always verified,
//! and `AWS_CA_BUNDLE` replaces the system's roots, for the direct and the proxy-aware
//! clients. A TLS front (rustls, a certificate of a CA made here) relays to moto; an
//! HTTP CONNECT proxy stands for a corporate proxy.

use crate::support;
use crate::support::agent;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA made for the test and a server certificate it signed for 127.0.0.1.
struct TestPki {
    ca_pem: String,
    server_cert: CertificateDer<'static>,
    server_key: PrivateKeyDer<'static>,
}

fn test_pki() -> TestPki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "kinesis-tail test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    TestPki {
        ca_pem: ca_cert.pem(),
        server_cert: leaf_cert.der().clone(),
        server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    }
}

/// Terminates TLS on a free port of 127.0.0.1 and relays the plaintext to `upstream`;
/// stops with its runtime when dropped.
struct TlsFront {
    port: u16,
    /// Handshakes that completed.
    handshakes: Arc<AtomicUsize>,
    _rt: tokio::runtime::Runtime,
}

impl TlsFront {
    fn start(pki: &TestPki, upstream: u16) -> TlsFront {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![pki.server_cert.clone()], pki.server_key.clone_key())
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let done = Arc::clone(&handshakes);
        rt.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let done = Arc::clone(&done);
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake here.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    done.fetch_add(1, Ordering::SeqCst);
                    let Ok(mut up) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                });
            }
        });
        TlsFront {
            port,
            handshakes,
            _rt: rt,
        }
    }
}

/// A minimal HTTP CONNECT proxy on a free port; counts the tunnels it opened. Its
/// threads end with the test process.
fn connect_proxy() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let tunnels = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&tunnels);
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let count = Arc::clone(&count);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut request = String::new();
                reader.read_line(&mut request).unwrap();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
                        break;
                    }
                }
                let mut parts = request.split_whitespace();
                let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
                    let _ = (&client).write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n");
                    return;
                };
                let Ok(upstream) = TcpStream::connect(target) else {
                    let _ = (&client).write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                (&client)
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .unwrap();
                let mut up_read = upstream.try_clone().unwrap();
                let mut down = client.try_clone().unwrap();
                let t = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut up_read, &mut down);
                    let _ = down.shutdown(std::net::Shutdown::Write);
                });
                // Bytes the reader buffered past the request head belong to the tunnel.
                let mut up = upstream;
                let _ = up.write_all(reader.buffer());
                let mut rest = reader.into_inner();
                let _ = std::io::copy(&mut rest, &mut up);
                let _ = up.shutdown(std::net::Shutdown::Write);
                let _ = t.join();
            });
        }
    });
    (port, tunnels)
}

fn agent_config(s: &Scratch, endpoint: &str) -> std::path::PathBuf {
    let k = format!("{}/k*.log", s.logs().display());
    let f = format!("{}/f*.log", s.logs().display());
    let opts = "initialPosition: START_OF_FILE\nretryInitialBackoffMillis: 100\nretryMaxBackoffMillis: 500\n";
    s.config(
        &[
            (&k, &format!("kinesisStream: tls\n{opts}")),
            (&f, &format!("deliveryStream: tls\n{opts}")),
        ],
        &format!(
            "kinesis.endpoint: {endpoint}\nkinesis.region: us-east-1\nfirehose.endpoint: {endpoint}\nfirehose.region: us-east-1\nshutdownTimeoutMillis: 2000\n"
        ),
    )
}

/// The lines stored by Kinesis (in order) and by Firehose (sorted).
fn stored(moto: &support::Moto, rt: &tokio::runtime::Runtime) -> (Vec<String>, Vec<String>) {
    let client = support::kinesis(&moto.endpoint);
    let (_, records) = rt.block_on(support::read_stream(&client, "tls"));
    let kinesis = records
        .iter()
        .map(|r| String::from_utf8_lossy(&r.data).trim_end().to_string())
        .collect();
    let mut firehose: Vec<String> = support::read_bucket(&moto.endpoint, "tls-bucket")
        .iter()
        .flat_map(|o| {
            String::from_utf8_lossy(o)
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    // One object per delivery, listed by key: their order is not the order of writing.
    firehose.sort();
    (kinesis, firehose)
}

/// Without `AWS_CA_BUNDLE` the agent refuses the test CA's certificate and says why;
/// with it, records reach Kinesis and Firehose, directly and through an HTTPS proxy; a
/// bundle broken before a reload leaves the running flows alone; a bundle that cannot be
/// used stops the start with a message naming the file.
#[test]
fn aws_ca_bundle_is_the_only_way_to_trust_a_private_ca() {
    let Some(moto) = support::Moto::start() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(support::create_stream(
        &support::kinesis(&moto.endpoint),
        "tls",
        1,
    ));
    support::create_firehose(&moto.endpoint, "tls", "tls-bucket");
    let pki = test_pki();
    let front = TlsFront::start(&pki, moto.port);
    let s = Scratch::new();
    let bundle = s.path("ca.pem");
    std::fs::write(&bundle, &pki.ca_pem).unwrap();
    let cfg = agent_config(&s, &format!("https://127.0.0.1:{}", front.port));
    append(&s.logs().join("k.log"), &["kinesis one".to_string()]);
    append(&s.logs().join("f.log"), &["firehose one".to_string()]);
    let agent = |env: &[(&str, &str)]| {
        let mut c = command(&cfg);
        c.env_remove("AWS_CA_BUNDLE");
        for v in ["NO_PROXY", "no_proxy"] {
            c.env_remove(v);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        c
    };
    // `run --once` with `env`: its exit status and what it logged.
    let once = |env: &[(&str, &str)]| {
        let out = agent(env).args(["run", "--once"]).output().unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // 1. The system roots do not hold the test CA: no handshake completes, nothing is
    //    sent, and the log says the certificate was refused.
    let log = s.path("agent-untrusted.log");
    let mut child = agent(&[])
        .args(["run", "--log-level", "info"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    let refused = |text: &str| {
        text.contains("ERROR")
            && text.contains("TLS certificate is not trusted")
            && text.contains("UnknownIssuer")
            && text.contains("AWS_CA_BUNDLE")
    };
    while Instant::now() < deadline && !refused(&std::fs::read_to_string(&log).unwrap()) {
        std::thread::sleep(Duration::from_millis(100));
    }
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(15));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(refused(&text), "the refusal is reported:\n{text}");
    assert!(status.is_some(), "exits on SIGTERM:\n{text}");
    assert_eq!(front.handshakes.load(Ordering::SeqCst), 0);
    assert_eq!(stored(&moto, &rt), (vec![], vec![]));

    // 2. AWS_CA_BUNDLE names the CA: both flows deliver.
    let (status, text) = once(&[("AWS_CA_BUNDLE", bundle.to_str().unwrap())]);
    assert!(status.success(), "{text}");
    assert!(
        text.contains("AWS_CA_BUNDLE"),
        "the bundle in use is logged:\n{text}"
    );
    assert_eq!(
        stored(&moto, &rt),
        (
            vec!["kinesis one".to_string()],
            vec!["firehose one".to_string()]
        )
    );

    // 3. The same through an HTTPS proxy (CONNECT tunnel): the proxy-aware client also
    //    trusts the bundle.
    let (proxy_port, tunnels) = connect_proxy();
    append(&s.logs().join("k.log"), &["kinesis two".to_string()]);
    append(&s.logs().join("f.log"), &["firehose two".to_string()]);
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let (status, text) = once(&[
        ("AWS_CA_BUNDLE", bundle.to_str().unwrap()),
        ("HTTPS_PROXY", &proxy),
    ]);
    assert!(status.success(), "{text}");
    assert!(
        tunnels.load(Ordering::SeqCst) > 0,
        "the proxy was used:\n{text}"
    );
    let (kinesis, firehose) = stored(&moto, &rt);
    assert_eq!(kinesis, ["kinesis one", "kinesis two"]);
    assert_eq!(firehose, ["firehose one", "firehose two"]);

    // 4. A bundle broken while the agent runs: a reload keeps the running flows.
    let live = s.path("live.pem");
    std::fs::write(&live, &pki.ca_pem).unwrap();
    let log = s.path("agent-reload.log");
    let mut child = agent(&[("AWS_CA_BUNDLE", live.to_str().unwrap())])
        .args(["run", "--log-level", "info"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let log_has = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::fs::read_to_string(&log).unwrap().contains(what) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    };
    assert!(log_has("started with 2 flow(s)"));
    std::fs::write(&live, "broken\n").unwrap();
    unsafe {
        libc::kill(child.id() as i32, libc::SIGHUP);
    }
    assert!(log_has("the running configuration goes on"));
    append(&s.logs().join("k.log"), &["kinesis three".to_string()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while stored(&moto, &rt).0.len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(15));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.is_some_and(|s| s.success()), "{status:?}\n{text}");
    assert!(
        text.contains(&format!("reload: AWS_CA_BUNDLE={}", live.display())),
        "{text}"
    );
    assert_eq!(
        stored(&moto, &rt).0,
        ["kinesis one", "kinesis two", "kinesis three"]
    );

    // 5. A bundle that cannot be used: exit 2 at once, naming the file.
    let garbage = s.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let truncated = s.path("truncated.pem");
    let half = &pki.ca_pem[..pki.ca_pem.len() / 2];
    std::fs::write(&truncated, half).unwrap();
    let not_der = s.path("not-der.pem");
    std::fs::write(
        &not_der,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let missing = s.path("missing.pem");
    for bad in [&garbage, &truncated, &not_der, &missing] {
        let start = Instant::now();
        let (status, text) = once(&[("AWS_CA_BUNDLE", bad.to_str().unwrap())]);
        assert_eq!(status.code(), Some(2), "{}:\n{text}", bad.display());
        assert!(
            text.contains(&format!("AWS_CA_BUNDLE={}", bad.display())),
            "the file is named:\n{text}"
        );
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}
