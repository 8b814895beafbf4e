//! The EC2 instance metadata that `ADDEC2METADATA` adds to records.
//!
//! Owns: fetching the instance identity document from the instance metadata service
//! (IMDSv2 with a session token, IMDSv1 when the token request is refused with 403, 404
//! or 405) over plain HTTP, refreshing it every `metadataTTL`, and handing the result to
//! processor chains. Does not own: what the records look like (see `process`).
//!
//! The fetch never runs on the hot path: a background thread refreshes a shared snapshot
//! and a chain checks one atomic version number per record, taking the lock only when the
//! snapshot changed. A thread rather than a tokio task because `kinesis-tail process` has
//! no runtime and the requests are tiny blocking exchanges with timeouts; there is one
//! thread per agent, not per flow or file.
//!
//! When the service cannot be reached, records go through unchanged and ONE warning is
//! logged (later failures are logged at debug level, a recovery at info level).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::json::{encoded_key, write_datetime, write_str};

/// Connection timeout of one request (the link-local service answers in milliseconds).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Read/write timeout of one request.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Lifetime asked for an IMDSv2 token (the service's maximum is 6 hours).
const TOKEN_TTL_SECONDS: &str = "21600";
/// A response larger than this is not an identity document.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Retry period after a failed fetch (bounded by the TTL).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum Ec2Error {
    /// The endpoint is not a `http://host[:port]` URL.
    #[error("unsupported instance metadata endpoint {0:?} (expected http://host[:port])")]
    Endpoint(String),
    /// Connecting, sending or receiving failed.
    #[error("instance metadata request to {endpoint} failed: {source}")]
    Io {
        /// The endpoint.
        endpoint: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The service answered with an unexpected status.
    #[error("instance metadata {path} answered HTTP {status}")]
    Status {
        /// The request path.
        path: &'static str,
        /// The HTTP status.
        status: u16,
    },
    /// The identity document is not JSON.
    #[error("instance identity document is not JSON: {0}")]
    Document(#[from] serde_json::Error),
}

/// The fields added to records, already encoded as JSON (key with quotes, value).
pub(crate) type Fields = Arc<Vec<Field>>;
/// One field: encoded key (with quotes), encoded value.
pub(crate) type Field = (Vec<u8>, Vec<u8>);

#[derive(Debug)]
struct Inner {
    endpoint: String,
    /// Incremented each time `fields` changes.
    version: AtomicU64,
    fields: Mutex<Option<Fields>>,
    warned: AtomicBool,
    failing: AtomicBool,
}

/// A shared, background-refreshed view of the instance identity. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Ec2Metadata {
    inner: Arc<Inner>,
}

static GLOBAL: OnceLock<Ec2Metadata> = OnceLock::new();

/// The refresh period the agent needs: the smallest `metadataTTL` of the `ADDEC2METADATA`
/// processors of `flows`, or `None` when no flow uses it (then no handle is needed).
pub fn refresh_period(flows: &[crate::config::FlowConfig]) -> Option<Duration> {
    flows
        .iter()
        .flat_map(|f| &f.processors)
        .filter_map(|p| match p {
            crate::config::ProcessorConfig::AddEc2Metadata { ttl } => Some(*ttl),
            _ => None,
        })
        .min()
}

impl Ec2Metadata {
    /// A handle on the service at `endpoint` (e.g. `http://169.254.169.254`) with no data
    /// yet and no refresh running; see [`Ec2Metadata::refresh`] and [`Ec2Metadata::start`].
    pub fn new(endpoint: &str) -> Self {
        Ec2Metadata {
            inner: Arc::new(Inner {
                endpoint: endpoint.to_owned(),
                version: AtomicU64::new(0),
                fields: Mutex::new(None),
                warned: AtomicBool::new(false),
                failing: AtomicBool::new(false),
            }),
        }
    }

    /// A handle whose data a background thread fetches now and then every `ttl`. The
    /// thread ends once every clone of the handle is dropped (at its next wake-up).
    pub fn start(endpoint: &str, ttl: Duration) -> Self {
        let this = Ec2Metadata::new(endpoint);
        let weak: Weak<Inner> = Arc::downgrade(&this.inner);
        let spawned = std::thread::Builder::new()
            .name("ec2-metadata".into())
            .spawn(move || loop {
                let Some(inner) = weak.upgrade() else { return };
                let ok = (Ec2Metadata { inner }).refresh().is_ok();
                let wait = if ok {
                    ttl
                } else {
                    ttl.min(RETRY_AFTER_FAILURE)
                };
                std::thread::sleep(wait.max(Duration::from_secs(1)));
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the EC2 metadata refresh thread");
        }
        this
    }

    /// Makes `self` the handle that the processor chain (`Chain::new`) uses.
    /// Returns false when one was installed already (that one stays).
    pub fn install_global(self) -> bool {
        GLOBAL.set(self).is_ok()
    }

    /// The handle installed by [`Ec2Metadata::install_global`], if any.
    pub fn global() -> Option<Ec2Metadata> {
        GLOBAL.get().cloned()
    }

    /// Waits until a first fetch has succeeded, at most `timeout`; true when data is there.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.version() > 0 {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Fetches the identity document once (blocking, bounded by short timeouts) and
    /// publishes it. Logs the first failure as a warning.
    pub fn refresh(&self) -> Result<(), Ec2Error> {
        match fetch(&self.inner.endpoint) {
            Ok(fields) => {
                *self.inner.fields.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(Arc::new(fields));
                self.inner.version.fetch_add(1, Ordering::Release);
                if self.inner.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(endpoint = %self.inner.endpoint, "EC2 instance metadata available again");
                }
                Ok(())
            }
            Err(e) => {
                self.inner.failing.store(true, Ordering::Relaxed);
                if !self.inner.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        endpoint = %self.inner.endpoint,
                        error = %e,
                        "EC2 instance metadata unavailable: ADDEC2METADATA leaves records unchanged until it is"
                    );
                } else {
                    tracing::debug!(error = %e, "EC2 instance metadata refresh failed");
                }
                Err(e)
            }
        }
    }

    /// Changes whenever the data changes (0: never fetched).
    pub(crate) fn version(&self) -> u64 {
        self.inner.version.load(Ordering::Acquire)
    }

    /// The current data and its version.
    pub(crate) fn snapshot(&self) -> (u64, Option<Fields>) {
        let guard = self.inner.fields.lock().unwrap_or_else(|e| e.into_inner());
        (self.version(), guard.clone())
    }
}

/// `host`, `port` of a `http://host[:port][/...]` endpoint.
fn parse_endpoint(endpoint: &str) -> Option<(String, u16)> {
    let rest = endpoint.strip_prefix("http://")?;
    let authority = rest.split('/').next()?;
    if authority.is_empty() {
        return None;
    }
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => 80,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None => Some((authority.to_owned(), 80)),
    }
}

/// One HTTP/1.1 exchange with `Connection: close`; returns the status and body.
fn request(
    endpoint: &str,
    method: &str,
    path: &str,
    header: Option<(&str, &str)>,
) -> Result<(u16, Vec<u8>), Ec2Error> {
    let (host, port) =
        parse_endpoint(endpoint).ok_or_else(|| Ec2Error::Endpoint(endpoint.into()))?;
    let io = |source| Ec2Error::Io {
        endpoint: endpoint.to_owned(),
        source,
    };
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(io)?
        .next()
        .ok_or_else(|| io(std::io::Error::other("no address")))?;
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(io)?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    let host_header = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: kinesis-tail\r\nAccept: */*\r\nConnection: close\r\nContent-Length: 0\r\n"
    );
    if let Some((name, value)) = header {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).map_err(io)?;
    let mut resp = Vec::new();
    stream
        .take(MAX_RESPONSE_BYTES as u64)
        .read_to_end(&mut resp)
        .map_err(io)?;
    parse_response(&resp).ok_or_else(|| io(std::io::Error::other("malformed HTTP response")))
}

/// Status and body of a complete HTTP/1.1 response (Content-Length, chunked or to EOF).
fn parse_response(resp: &[u8]) -> Option<(u16, Vec<u8>)> {
    let head_end = resp.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&resp[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut body = &resp[head_end + 4..];
    let mut chunked = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value.parse().ok()?;
            body = body.get(..n)?;
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.eq_ignore_ascii_case("chunked")
        {
            chunked = true;
        }
    }
    if !chunked {
        return Some((status, body.to_vec()));
    }
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some((status, out));
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

const TOKEN_PATH: &str = "/latest/api/token";
const DOCUMENT_PATH: &str = "/latest/dynamic/instance-identity/document";

/// Fetches the identity document and encodes the fields added to records, in the Java
/// agent's order. `metadataTimestamp` is the fetch time in the Java agent's format
/// (`yyyy-MM-dd'T'HH:mm:ssZ`), in UTC: `2026-11-27T12:00:00+0000`.
fn fetch(endpoint: &str) -> Result<Vec<Field>, Ec2Error> {
    let token = match request(
        endpoint,
        "PUT",
        TOKEN_PATH,
        Some(("X-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL_SECONDS)),
    )? {
        (200, body) => Some(String::from_utf8_lossy(&body).trim().to_owned()),
        // IMDSv1 only (or a proxy that does not know tokens).
        (403..=405, _) => None,
        (status, _) => {
            return Err(Ec2Error::Status {
                path: TOKEN_PATH,
                status,
            })
        }
    };
    let header = token.as_deref().map(|t| ("X-aws-ec2-metadata-token", t));
    let (status, body) = request(endpoint, "GET", DOCUMENT_PATH, header)?;
    if status != 200 {
        return Err(Ec2Error::Status {
            path: DOCUMENT_PATH,
            status,
        });
    }
    let doc: serde_json::Value = serde_json::from_slice(&body)?;
    let mut fields = Vec::with_capacity(8);
    for (name, source) in [
        ("privateIp", "privateIp"),
        ("availabilityZone", "availabilityZone"),
        ("instanceId", "instanceId"),
        ("instanceType", "instanceType"),
        ("accountId", "accountId"),
        ("amiId", "imageId"),
        ("region", "region"),
    ] {
        let mut v = Vec::new();
        match doc.get(source) {
            Some(serde_json::Value::String(s)) => write_str(&mut v, s.as_bytes()),
            Some(serde_json::Value::Null) | None => v.extend_from_slice(b"null"),
            Some(other) => write_str(&mut v, other.to_string().as_bytes()),
        }
        fields.push((encoded_key(name), v));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut ts = vec![b'"'];
    write_datetime(&mut ts, now);
    ts.extend_from_slice(b"+0000\"");
    fields.push((encoded_key("metadataTimestamp"), ts));
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("http://169.254.169.254"),
            Some(("169.254.169.254".into(), 80))
        );
        assert_eq!(
            parse_endpoint("http://127.0.0.1:8080/"),
            Some(("127.0.0.1".into(), 8080))
        );
        assert_eq!(
            parse_endpoint("http://[fd00:ec2::254]:81"),
            Some(("fd00:ec2::254".into(), 81))
        );
        assert_eq!(parse_endpoint("https://x"), None);
        assert_eq!(parse_endpoint("http://"), None);
    }

    #[test]
    fn responses() {
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokXX"),
            Some((200, b"ok".to_vec()))
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1;x\r\nc\r\n0\r\n\r\n"),
            Some((200, b"abc".to_vec()))
        );
        assert_eq!(
            parse_response(b"HTTP/1.0 404 Not Found\r\n\r\n"),
            Some((404, Vec::new()))
        );
        assert_eq!(parse_response(b"garbage"), None);
    }
}
