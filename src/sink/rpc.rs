//! The record-carrying calls (`PutRecords`, `PutRecordBatch`) as one signed HTTP POST,
//! without the SDK's orchestrator.
//!
//! Per call the orchestrator builds and merges its runtime plugins, config layers and
//! interceptors (user agent, invocation ID, clock skew, telemetry, connection poisoning,
//! retry classifiers), then serializes an input and deserializes an output the sinks do not
//! use: about a third of a millisecond per request, an eighth of the agent's CPU on the
//! default path. What a call needs is kept, and taken from the SDK where the SDK has it:
//! the endpoint from the service's own endpoint rules ([`Endpoint::resolve`]), the SigV4
//! signature from `aws-sigv4`, credentials from the `aws-config` provider chain (cached
//! here until five minutes before they expire), and the SDK's hyper + rustls connector
//! (same TLS roots, proxy and connect timeout; see [`crate::aws::data_connector`]).
//! Each call is bounded by `socketTimeoutMillis` as a whole. There is no retry here: the
//! sinks retry what failed (see [`super::retry`]).
//!
//! Not done here, unlike the SDK: clock-skew correction (a host whose clock is more than
//! five minutes off gets `InvalidSignatureException`, logged as an ERROR naming it).

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_smithy_runtime_api::client::http::{HttpConnector, SharedHttpConnector};
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::error::display::DisplayErrorContext;
use bytes::Bytes;
use http_body_util::BodyExt;

/// Credentials are loaded again this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);
/// Loading credentials (IMDS, STS, a `credential_process`) gives up after this long, as
/// the SDK's identity cache does.
const CREDENTIALS_LOAD_TIMEOUT: Duration = Duration::from_secs(5);
/// The awsJson 1.1 protocol of Kinesis and Firehose.
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// A service the calls go to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Service {
    /// The SigV4 signing name.
    pub signing_name: &'static str,
    /// The `X-Amz-Target` prefix (the API version).
    pub target: &'static str,
}

/// Kinesis Data Streams.
pub(crate) const KINESIS: Service = Service {
    signing_name: "kinesis",
    target: "Kinesis_20131202",
};
/// Amazon Data Firehose.
pub(crate) const FIREHOSE: Service = Service {
    signing_name: "firehose",
    target: "Firehose_20150804",
};

/// Why a call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum RpcError {
    /// The service answered with an error status.
    #[error("HTTP {status}: {}", describe(code.as_deref(), message.as_deref(), body))]
    Service {
        /// The HTTP status.
        status: u16,
        /// The error code (`ResourceNotFoundException`), when the answer names one.
        code: Option<String>,
        /// The error message, when the answer has one.
        message: Option<String>,
        /// The start of the body, for answers without code (a proxy's error page).
        body: String,
    },
    /// No credentials could be loaded.
    #[error("{0}")]
    Credentials(String),
    /// The request was not sent or not answered (connect, TLS, I/O, timeout).
    #[error("{0}")]
    Dispatch(String),
    /// The request cannot be built (an endpoint or stream ARN the endpoint rules refuse).
    #[error("{0}")]
    Construction(String),
}

fn describe(code: Option<&str>, message: Option<&str>, body: &str) -> String {
    match (code, message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        (None, Some(m)) => m.to_string(),
        (None, None) => body.to_string(),
    }
}

/// Where the calls of one sink go.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// The request URI (`https://kinesis.us-east-1.amazonaws.com/`).
    uri: String,
    /// Its authority, sent and signed as `Host`.
    host: String,
}

impl Endpoint {
    /// The endpoint of `url` as the endpoint rules returned it (a path is kept; none is
    /// `/`).
    pub(crate) fn from_url(url: &str) -> Result<Endpoint, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("endpoint {url:?} has no scheme (https://...)"))?;
        if scheme != "https" && scheme != "http" {
            return Err(format!("endpoint {url:?}: scheme must be https or http"));
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (host, path) = rest.split_at(end);
        if host.is_empty() {
            return Err(format!("endpoint {url:?} has no host"));
        }
        let uri = if path.is_empty() {
            format!("{url}/")
        } else {
            url.to_string()
        };
        Ok(Endpoint {
            uri,
            host: host.to_string(),
        })
    }

    /// The Kinesis endpoint of `PutRecords` for `stream` (a name, or an ARN, which the
    /// rules may route to an account-specific host), by the SDK's own endpoint rules.
    pub(crate) async fn kinesis(
        region: &str,
        fips: bool,
        dual_stack: bool,
        endpoint: Option<&str>,
        stream: &str,
    ) -> Result<Endpoint, String> {
        use aws_sdk_kinesis::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
        let mut params = Params::builder()
            .region(region)
            .use_fips(fips)
            .use_dual_stack(dual_stack)
            .operation_type("data")
            .set_endpoint(endpoint.map(str::to_string));
        if stream.starts_with("arn:") {
            params = params.stream_arn(stream);
        }
        let params = params.build().map_err(|e| e.to_string())?;
        let ep = DefaultResolver::new()
            .resolve_endpoint(&params)
            .await
            .map_err(|e| format!("no Kinesis endpoint: {}", DisplayErrorContext(&*e)))?;
        Endpoint::from_url(ep.url())
    }

    /// The Firehose endpoint, by the SDK's own endpoint rules.
    pub(crate) async fn firehose(
        region: &str,
        fips: bool,
        dual_stack: bool,
        endpoint: Option<&str>,
    ) -> Result<Endpoint, String> {
        use aws_sdk_firehose::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
        let params = Params::builder()
            .region(region)
            .use_fips(fips)
            .use_dual_stack(dual_stack)
            .set_endpoint(endpoint.map(str::to_string))
            .build()
            .map_err(|e| e.to_string())?;
        let ep = DefaultResolver::new()
            .resolve_endpoint(&params)
            .await
            .map_err(|e| format!("no Firehose endpoint: {}", DisplayErrorContext(&*e)))?;
        Endpoint::from_url(ep.url())
    }
}

/// Sends signed calls to one service endpoint.
#[derive(Debug)]
pub(crate) struct Rpc {
    service: Service,
    region: String,
    /// The endpoint, or why there is none (reported at each call, as the SDK would).
    endpoint: Result<Endpoint, String>,
    connector: SharedHttpConnector,
    credentials: CredentialCache,
    user_agent: String,
    /// Bound of a whole call, answer read included (`socketTimeoutMillis`).
    timeout: Duration,
}

impl Rpc {
    /// Calls to `service` at `endpoint`, signed for `region` with `credentials` (`None`:
    /// no provider, every call fails naming it).
    pub(crate) fn new(
        service: Service,
        region: &str,
        endpoint: Result<Endpoint, String>,
        connector: SharedHttpConnector,
        credentials: Option<SharedCredentialsProvider>,
        user_agent: String,
        timeout: Duration,
    ) -> Rpc {
        Rpc {
            service,
            region: region.to_string(),
            endpoint,
            connector,
            credentials: CredentialCache::new(credentials),
            user_agent,
            timeout,
        }
    }

    /// The calls of a sink: the configuration's connector (timeouts, proxy, `tls`), user
    /// agent and `socketTimeoutMillis`, the credentials of `base`.
    pub(crate) fn for_sink(
        service: Service,
        config: &crate::config::Config,
        base: &aws_config::SdkConfig,
        tls: Option<aws_smithy_http_client::tls::TlsContext>,
        region: &str,
        endpoint: Result<Endpoint, String>,
    ) -> Rpc {
        Rpc::new(
            service,
            region,
            endpoint,
            crate::aws::data_connector(config, tls),
            base.credentials_provider(),
            crate::aws::user_agent(config),
            config.socket_timeout,
        )
    }

    /// Posts `body` to `operation` (`PutRecords`); the body of the 200 answer.
    pub(crate) async fn call(&self, operation: &str, body: Bytes) -> Result<Bytes, RpcError> {
        let endpoint = self
            .endpoint
            .as_ref()
            .map_err(|e| RpcError::Construction(e.clone()))?;
        let credentials = self.credentials.get().await?;
        let request = self.signed(endpoint, operation, body, credentials, SystemTime::now())?;
        let exchange = async {
            let response = self
                .connector
                .call(request)
                .await
                .map_err(|e| RpcError::Dispatch(DisplayErrorContext(&e).to_string()))?;
            let status = response.status().as_u16();
            let error_type = response
                .headers()
                .get("x-amzn-errortype")
                .map(str::to_string);
            let body = response.into_body().collect().await.map_err(|e| {
                RpcError::Dispatch(format!(
                    "reading the response: {}",
                    DisplayErrorContext(&*e)
                ))
            })?;
            Ok::<_, RpcError>((status, error_type, body.to_bytes()))
        };
        let (status, error_type, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                RpcError::Dispatch(format!(
                    "no answer within {} ms (socketTimeoutMillis)",
                    self.timeout.as_millis()
                ))
            })??;
        if status == 200 {
            Ok(body)
        } else {
            Err(service_error(status, error_type.as_deref(), &body))
        }
    }

    /// The request, signed at `time` (SigV4, payload hash computed here with aws-lc).
    fn signed(
        &self,
        endpoint: &Endpoint,
        operation: &str,
        body: Bytes,
        credentials: Credentials,
        time: SystemTime,
    ) -> Result<HttpRequest, RpcError> {
        let construction = |e: &dyn std::fmt::Display| RpcError::Construction(e.to_string());
        let target = format!("{}.{operation}", self.service.target);
        let length = body.len().to_string();
        let headers = [
            ("content-type", CONTENT_TYPE),
            ("content-length", length.as_str()),
            ("host", endpoint.host.as_str()),
            ("x-amz-target", target.as_str()),
        ];
        let identity = Identity::from(credentials);
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.service.signing_name)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| construction(&e))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            endpoint.uri.as_str(),
            headers.iter().copied(),
            SignableBody::Precomputed(sha256_hex(&body)),
        )
        .map_err(|e| construction(&e))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| construction(&e))?
            .into_parts();
        let mut request = HttpRequest::new(SdkBody::from(body));
        request.set_method("POST").map_err(|e| construction(&e))?;
        request
            .set_uri(endpoint.uri.as_str())
            .map_err(|e| construction(&e))?;
        let h = request.headers_mut();
        for (name, value) in headers {
            h.try_insert(name, value.to_string())
                .map_err(|e| construction(&e))?;
        }
        h.try_insert("user-agent", self.user_agent.clone())
            .map_err(|e| construction(&e))?;
        for (name, value) in instructions.headers() {
            h.try_insert(name.to_string(), value.to_string())
                .map_err(|e| construction(&e))?;
        }
        Ok(request)
    }
}

/// Lowercase hex of the SHA-256 of `data` (aws-lc's assembly: about twice the speed of
/// the SDK's own hash here, on the biggest single cost of a request).
fn sha256_hex(data: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = String::with_capacity(64);
    for b in digest.as_ref() {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0xf) as usize] as char);
    }
    out
}

/// The error of a non-200 answer (awsJson 1.1: the code in `X-Amzn-ErrorType` or
/// `__type`, possibly with a namespace before `#` and a URI after `:`).
fn service_error(status: u16, error_type: Option<&str>, body: &[u8]) -> RpcError {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |names: &[&str]| {
        let v = json.as_ref()?;
        names
            .iter()
            .find_map(|n| v.get(*n)?.as_str())
            .map(str::to_string)
    };
    let code = error_type
        .map(str::to_string)
        .or_else(|| field(&["__type", "code"]))
        .map(|c| {
            let c = c.split(':').next().unwrap_or_default();
            c.rsplit('#').next().unwrap_or_default().to_string()
        })
        .filter(|c| !c.is_empty());
    let message = field(&["message", "Message", "errorMessage"]);
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    RpcError::Service {
        status,
        code,
        message,
        body: text.trim().to_string(),
    }
}

/// The provider chain's credentials, loaded once and again shortly before they expire.
/// Concurrent calls wait for one load.
#[derive(Debug)]
struct CredentialCache {
    provider: Option<SharedCredentialsProvider>,
    current: tokio::sync::Mutex<Option<Credentials>>,
}

impl CredentialCache {
    fn new(provider: Option<SharedCredentialsProvider>) -> Self {
        CredentialCache {
            provider,
            current: tokio::sync::Mutex::new(None),
        }
    }

    async fn get(&self) -> Result<Credentials, RpcError> {
        let now = SystemTime::now();
        let mut current = self.current.lock().await;
        let usable =
            |c: &Credentials, margin: Duration| c.expiry().is_none_or(|e| e > now + margin);
        if let Some(c) = current
            .as_ref()
            .filter(|c| usable(c, REFRESH_BEFORE_EXPIRY))
        {
            return Ok(c.clone());
        }
        let Some(provider) = &self.provider else {
            return Err(RpcError::Credentials(
                "no AWS credentials provider: set awsAccessKeyId/awsSecretAccessKey or provide credentials through the environment, a profile or instance metadata".into(),
            ));
        };
        let failure =
            match tokio::time::timeout(CREDENTIALS_LOAD_TIMEOUT, provider.provide_credentials())
                .await
            {
                Ok(Ok(c)) => {
                    *current = Some(c.clone());
                    return Ok(c);
                }
                Ok(Err(e)) => format!("cannot load AWS credentials: {}", DisplayErrorContext(&e)),
                Err(_) => format!(
                    "cannot load AWS credentials: no answer within {} s",
                    CREDENTIALS_LOAD_TIMEOUT.as_secs()
                ),
            };
        // Credentials that have not expired yet are still used while a refresh fails.
        match current.as_ref().filter(|c| usable(c, Duration::ZERO)) {
            Some(c) => {
                tracing::warn!("{failure}; using the current credentials until they expire");
                Ok(c.clone())
            }
            None => Err(RpcError::Credentials(failure)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_a_path_and_a_host() {
        let e = Endpoint::from_url("https://kinesis.eu-west-1.amazonaws.com").unwrap();
        assert_eq!(e.uri, "https://kinesis.eu-west-1.amazonaws.com/");
        assert_eq!(e.host, "kinesis.eu-west-1.amazonaws.com");
        let e = Endpoint::from_url("http://127.0.0.1:4567/prefix").unwrap();
        assert_eq!(e.uri, "http://127.0.0.1:4567/prefix");
        assert_eq!(e.host, "127.0.0.1:4567");
        assert!(Endpoint::from_url("kinesis.amazonaws.com").is_err());
        assert!(Endpoint::from_url("ftp://x").is_err());
        assert!(Endpoint::from_url("https:///x").is_err());
    }

    #[tokio::test]
    async fn endpoints_come_from_the_services_rules() {
        let e = Endpoint::kinesis("eu-west-1", false, false, None, "s")
            .await
            .unwrap();
        assert_eq!(e.uri, "https://kinesis.eu-west-1.amazonaws.com/");
        let e = Endpoint::kinesis("us-east-1", true, false, None, "s")
            .await
            .unwrap();
        assert_eq!(e.host, "kinesis-fips.us-east-1.amazonaws.com");
        let e = Endpoint::kinesis(
            "us-east-1",
            false,
            false,
            None,
            "arn:aws:kinesis:us-east-1:123456789012:stream/s",
        )
        .await
        .unwrap();
        assert_eq!(e.host, "123456789012.data-kinesis.us-east-1.amazonaws.com");
        let e = Endpoint::kinesis("us-east-1", false, false, Some("http://127.0.0.1:9"), "s")
            .await
            .unwrap();
        assert_eq!(e.uri, "http://127.0.0.1:9/");
        let e = Endpoint::firehose("cn-north-1", false, false, None)
            .await
            .unwrap();
        assert_eq!(e.host, "firehose.cn-north-1.amazonaws.com.cn");
    }

    #[test]
    fn error_codes_are_read_as_aws_json_writes_them() {
        let e = service_error(
            400,
            None,
            br#"{"__type":"com.amazonaws.kinesis#ResourceNotFoundException","message":"Stream s not found."}"#,
        );
        assert_eq!(
            e.to_string(),
            "HTTP 400: ResourceNotFoundException: Stream s not found."
        );
        let e = service_error(
            400,
            Some(
                "ExpiredTokenException:http://internal.amazon.com/coral/com.amazon.coral.service/",
            ),
            br#"{"Message":"The security token included in the request is expired"}"#,
        );
        let RpcError::Service { code, message, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(code.as_deref(), Some("ExpiredTokenException"));
        assert_eq!(
            message.as_deref(),
            Some("The security token included in the request is expired")
        );
        let e = service_error(502, None, b"<html>Bad Gateway</html>\n");
        assert_eq!(e.to_string(), "HTTP 502: <html>Bad Gateway</html>");
    }

    #[test]
    fn the_payload_hash_is_sha256_hex() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    /// A connector that is never called.
    #[derive(Debug)]
    struct Unused;

    impl HttpConnector for Unused {
        fn call(
            &self,
            _: HttpRequest,
        ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
            unreachable!("the test sends nothing")
        }
    }

    /// The signature of a request as sent, checked against botocore's SigV4 (the
    /// reference the AWS CLI uses) computing it from the same method, URI, headers, body
    /// and time: the headers signed, the payload hash and the signature must agree.
    #[test]
    fn signatures_agree_with_botocore() {
        let python = std::env::var("KT_PYTHON")
            .unwrap_or_else(|_| format!("{}/.venv-test/bin/python", env!("CARGO_MANIFEST_DIR")));
        let rpc = Rpc::new(
            KINESIS,
            "eu-west-1",
            Endpoint::from_url("https://kinesis.eu-west-1.amazonaws.com"),
            SharedHttpConnector::new(Unused),
            None,
            "kinesis-tail/0 app/test".into(),
            Duration::from_secs(1),
        );
        let endpoint = rpc.endpoint.clone().unwrap();
        let body = br#"{"Records":[{"Data":"aGk=","PartitionKey":"k"}],"StreamName":"s"}"#;
        for token in [None, Some("FwoGZXIvYXdzEBYaDH+session/token==")] {
            let credentials = Credentials::new(
                "AKIDEXAMPLE",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                token.map(str::to_string),
                None,
                "test",
            );
            let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_292_000);
            let request = rpc
                .signed(
                    &endpoint,
                    "PutRecords",
                    Bytes::from_static(body),
                    credentials,
                    time,
                )
                .unwrap();
            let headers: serde_json::Map<String, serde_json::Value> = request
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::from(v)))
                .collect();
            let input = serde_json::json!({
                "url": request.uri(),
                "headers": headers,
                "body": std::str::from_utf8(body).unwrap(),
                "token": token,
            });
            let script = r#"
import json, sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
d = json.load(sys.stdin)
h = {k: v for k, v in d["headers"].items() if k.lower() != "authorization"}
req = AWSRequest(method="POST", url=d["url"], data=d["body"].encode(), headers=h)
req.context["timestamp"] = h["x-amz-date"]
auth = SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", d["token"]), "kinesis", "eu-west-1")
canonical = auth.canonical_request(req)
sig = auth.signature(auth.string_to_sign(req, canonical), req)
print(json.dumps({"signed": auth.signed_headers(auth.headers_to_sign(req)), "signature": sig}))
"#;
            let mut child = std::process::Command::new(&python)
                .args(["-c", script])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("{python}: {e} (set KT_PYTHON, or run scripts/setup-venv.sh)")
                });
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.to_string().as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "botocore failed");
            let want: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let auth = request.headers().get("authorization").unwrap();
            let expected = format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261203/eu-west-1/kinesis/aws4_request, SignedHeaders={}, Signature={}",
                want["signed"].as_str().unwrap(),
                want["signature"].as_str().unwrap()
            );
            assert_eq!(auth, expected);
            assert_eq!(
                request.headers().get("x-amz-security-token"),
                token,
                "the session token is sent when there is one"
            );
        }
    }

    #[tokio::test]
    async fn credentials_are_cached_until_shortly_before_they_expire() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        #[derive(Debug)]
        struct Counting(Arc<AtomicUsize>, Duration);
        impl ProvideCredentials for Counting {
            fn provide_credentials<'a>(
                &'a self,
            ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
            where
                Self: 'a,
            {
                let n = self.0.fetch_add(1, Ordering::SeqCst);
                let expiry = SystemTime::now() + self.1;
                aws_credential_types::provider::future::ProvideCredentials::ready(Ok(
                    Credentials::new(format!("AK{n}"), "secret", None, Some(expiry), "test"),
                ))
            }
        }
        let loads = Arc::new(AtomicUsize::new(0));
        let long = CredentialCache::new(Some(SharedCredentialsProvider::new(Counting(
            Arc::clone(&loads),
            Duration::from_secs(3600),
        ))));
        for _ in 0..3 {
            assert_eq!(long.get().await.unwrap().access_key_id(), "AK0");
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        // Credentials within the refresh margin are loaded again at every call.
        let short_loads = Arc::new(AtomicUsize::new(0));
        let short = CredentialCache::new(Some(SharedCredentialsProvider::new(Counting(
            Arc::clone(&short_loads),
            Duration::from_secs(60),
        ))));
        short.get().await.unwrap();
        assert_eq!(short.get().await.unwrap().access_key_id(), "AK1");
        let none = CredentialCache::new(None);
        let e = none.get().await.unwrap_err();
        assert!(e.to_string().contains("credentials"), "{e}");
    }

    /// A server that takes the request and never answers, or answers the headers and
    /// then stalls the body: the call ends at `socketTimeoutMillis` either way, naming
    /// it (the connector has no read timeout of its own).
    #[tokio::test]
    async fn a_call_without_an_answer_ends_at_the_socket_timeout() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for headers_only in [false, true] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(async move {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buf = vec![0; 65536];
                let _ = socket.read(&mut buf).await;
                if headers_only {
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{")
                        .await;
                }
                tokio::time::sleep(Duration::from_secs(30)).await;
                drop(socket);
            });
            let config = crate::config::load_str(
                &format!(
                    "socketTimeoutMillis: 300\nkinesis.endpoint: http://127.0.0.1:{port}\nflows:\n  - filePattern: /tmp/x.log\n    kinesisStream: s\n"
                ),
                std::path::Path::new("test.yaml"),
            )
            .unwrap()
            .config;
            let rpc = Rpc::new(
                KINESIS,
                "us-east-1",
                Endpoint::from_url(&format!("http://127.0.0.1:{port}")),
                crate::aws::data_connector(&config, None),
                Some(SharedCredentialsProvider::new(Credentials::new(
                    "AK", "secret", None, None, "test",
                ))),
                "kinesis-tail/0".into(),
                config.socket_timeout,
            );
            let started = std::time::Instant::now();
            let e = rpc
                .call("PutRecords", Bytes::from_static(b"{}"))
                .await
                .unwrap_err();
            assert!(
                matches!(&e, RpcError::Dispatch(m) if m == "no answer within 300 ms (socketTimeoutMillis)"),
                "{e:?}"
            );
            assert!(started.elapsed() < Duration::from_secs(10));
            server.abort();
        }
    }
}
