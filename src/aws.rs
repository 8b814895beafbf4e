//! AWS SDK clients built from the configuration: credentials, regions, endpoints,
//! timeouts, user agent and proxy. Owns nothing else: the sinks decide what to call.
//!
//! Credentials, in order of precedence:
//! 1. `awsAccessKeyId` + `awsSecretAccessKey` from the config (static keys);
//! 2. otherwise the `aws-config` default chain: environment, shared profile (including SSO
//!    and `credential_process`), web identity (IRSA), ECS container credentials, EC2
//!    instance metadata (IMDSv2);
//! 3. `assumeRoleARN` (with `assumeRoleExternalId`) wraps whichever of the above as the
//!    base credentials of an STS `AssumeRole`, sent to `sts.endpoint` when set.
//!
//! Region of each service: `<service>.region`, else the region in its endpoint
//! (`https://kinesis.eu-west-1.amazonaws.com`), else the default chain's region
//! (`AWS_REGION`, profile, IMDS), else `us-east-1` (the Java agent's default).
//!
//! TLS: rustls (aws-lc), certificates always verified; there is no setting to turn
//! verification off. The trusted roots are the system's (`rustls-native-certs`), or,
//! when `AWS_CA_BUNDLE` names a PEM file, that file's certificates instead, as the AWS
//! CLI does (the Rust SDK does not read the variable itself). The bundle is read each
//! time the clients are built (start and every reload); a bundle that cannot be read or
//! holds no valid certificate is an error naming the file, before any request.
//!
//! Proxy: the SDK's default HTTPS client (hyper + rustls) ignores `HTTPS_PROXY`. When
//! `HTTPS_PROXY`, `HTTP_PROXY` or `ALL_PROXY` (or their lower-case forms) is set, the
//! clients are built on the same hyper + rustls connector with the proxy taken from the
//! environment, `NO_PROXY` included. Otherwise (and without `AWS_CA_BUNDLE`) the SDK's
//! default client is used as is.
//!
//! Timeouts: `connectionTimeoutMillis` is the TCP/TLS connect timeout;
//! `socketTimeoutMillis` bounds each read and each attempt of an operation.
//!
//! Retries: the Kinesis and Firehose clients make one attempt per call; the sinks retry
//! what failed (failed entries only, full-jitter backoff between `retryInitialBackoffMillis`
//! and `retryMaxBackoffMillis`), so that there is one retry policy, every failure is
//! counted, and shutdown is not held up by the SDK's own attempts.
//!
//! `maxConnections` is not applied: the SDK's connection pool has no cap on connections
//! per host, and the number of requests in flight is already bounded per flow by
//! `maxInFlightRequests`.
//!
//! No credential is ever logged: only the kind of provider in use.

use std::path::{Path, PathBuf};

use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{AppName, BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_smithy_http_client::tls::{TlsContext, TrustStore};
use aws_smithy_runtime_api::client::http::{
    HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};

use crate::config::{Config, ServiceConfig};

/// Region used when nothing else names one (the Java agent's default endpoint is in
/// us-east-1).
pub const DEFAULT_REGION: &str = "us-east-1";

/// The environment variables that turn on the proxy-aware HTTP client.
const PROXY_ENV_VARS: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The environment variable naming a PEM bundle of trusted certificates (AWS CLI, boto3).
pub const CA_BUNDLE_ENV: &str = "AWS_CA_BUNDLE";

/// `AWS_CA_BUNDLE` names a file the clients cannot use.
#[derive(Debug, thiserror::Error)]
#[error("{CA_BUNDLE_ENV}={}: {reason}", path.display())]
pub struct CaBundleError {
    /// The file named by the variable.
    pub path: PathBuf,
    /// Why it cannot be used.
    pub reason: String,
}

/// Loads the configuration shared by every client: credentials, timeouts, user agent,
/// HTTP client. Makes no network call (credentials are fetched lazily, at the first
/// request). Fails only on an unusable `AWS_CA_BUNDLE`.
pub async fn sdk_config(config: &Config) -> Result<SdkConfig, CaBundleError> {
    Ok(sdk_config_with(config, ca_bundle_from_env()?).await)
}

/// [`sdk_config`] with the TLS context of `AWS_CA_BUNDLE` already read (`None`: the
/// system's roots).
pub async fn sdk_config_with(config: &Config, tls: Option<TlsContext>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(config.connection_timeout)
            .read_timeout(config.socket_timeout)
            .operation_attempt_timeout(config.socket_timeout)
            .build(),
    );
    if let Some(creds) = &config.static_credentials {
        tracing::debug!("AWS credentials: static keys from the configuration");
        loader = loader.credentials_provider(Credentials::new(
            creds.access_key_id.clone(),
            creds.secret_access_key.clone(),
            None,
            None,
            "kinesis-tail-config",
        ));
    }
    if let Some(name) = &config.user_agent {
        match AppName::new(name.clone()) {
            Ok(app) => loader = loader.app_name(app),
            Err(_) => tracing::warn!(
                "userAgent {name:?} is not a valid SDK app name (letters, digits and \
                 !#$%&'*+-.^_`|~ only, at most 50 characters); ignored"
            ),
        }
    }
    if let Some(client) = http_client(proxy_from_env(), tls) {
        loader = loader.http_client(client);
    }
    let base = loader.load().await;

    let Some(role_arn) = &config.assume_role_arn else {
        return base;
    };
    tracing::debug!("AWS credentials: AssumeRole {role_arn}");
    // The STS client is built from the base configuration (its credentials sign the
    // AssumeRole call), with `sts.endpoint` as its endpoint and a region even when the
    // chain found none.
    let mut sts_conf = base.clone().into_builder();
    if let Some(ep) = &config.sts_endpoint {
        sts_conf = sts_conf.endpoint_url(ep.clone());
    }
    if base.region().is_none() {
        sts_conf = sts_conf.region(Region::new(
            config
                .sts_endpoint
                .as_deref()
                .and_then(region_from_endpoint)
                .unwrap_or_else(|| DEFAULT_REGION.to_string()),
        ));
    }
    let mut builder = AssumeRoleProvider::builder(role_arn.clone())
        .session_name("kinesis-tail")
        .configure(&sts_conf.build());
    if let Some(id) = &config.assume_role_external_id {
        builder = builder.external_id(id.clone());
    }
    let provider = builder.build().await;
    base.into_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build()
}

/// True when the environment names a proxy.
fn proxy_from_env() -> bool {
    PROXY_ENV_VARS
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// The TLS context of `AWS_CA_BUNDLE`, `None` when the variable is unset or empty. The
/// daemon calls it before accepting a reloaded configuration, so that a bundle broken
/// meanwhile leaves the running flows alone.
pub fn ca_bundle_from_env() -> Result<Option<TlsContext>, CaBundleError> {
    match std::env::var_os(CA_BUNDLE_ENV).filter(|v| !v.is_empty()) {
        Some(path) => ca_bundle_context(Path::new(&path)).map(Some),
        None => Ok(None),
    }
}

/// A TLS context that trusts exactly the certificates of the PEM file at `path`.
///
/// Every certificate is checked here, as the SDK's connector would take it (it panics on
/// one it cannot parse, at the first request).
pub fn ca_bundle_context(path: &Path) -> Result<TlsContext, CaBundleError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let fail = |reason: String| CaBundleError {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| fail(format!("cannot read the CA bundle: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            fail(match e {
                rustls::pki_types::pem::Error::MissingSectionEnd { end_marker } => format!(
                    "invalid PEM: no {:?} line",
                    String::from_utf8_lossy(&end_marker)
                ),
                e => format!("invalid PEM: {e}"),
            })
        })?;
    if certs.is_empty() {
        return Err(fail(
            "no PEM certificate found in the CA bundle".to_string(),
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            let why = match e {
                rustls::Error::InvalidCertificate(c) => format!("{c:?}"),
                e => e.to_string(),
            };
            fail(format!("certificate {} cannot be used: {why}", i + 1))
        })?;
    }
    tracing::info!(
        "trusting only the {} certificate(s) of {CA_BUNDLE_ENV}={}",
        roots.len(),
        path.display()
    );
    TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(pem))
        .build()
        .map_err(|e| fail(e.to_string()))
}

/// The SDK's hyper + rustls client with the proxy read from the environment and/or the
/// given trusted roots; `None` when neither is asked for (the SDK's default client, the
/// same connector with the system's roots).
fn http_client(proxy: bool, tls: Option<TlsContext>) -> Option<SharedHttpClient> {
    if !proxy && tls.is_none() {
        return None;
    }
    if proxy {
        tracing::info!("HTTP proxy taken from the environment (HTTPS_PROXY / NO_PROXY)");
    }
    let tls = tls.unwrap_or_default();
    Some(
        aws_smithy_http_client::Builder::new().build_with_connector_fn(
            move |settings, components| {
                connector(
                    settings.cloned(),
                    components.and_then(|c| c.sleep_impl()),
                    proxy,
                    tls.clone(),
                )
            },
        ),
    )
}

/// The SDK's hyper + rustls connector (aws-lc), with the proxy from the environment when
/// `proxy`.
fn connector(
    settings: Option<HttpConnectorSettings>,
    sleep: Option<aws_smithy_async::rt::sleep::SharedAsyncSleep>,
    proxy: bool,
    tls: TlsContext,
) -> aws_smithy_http_client::Connector {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let mut b = aws_smithy_http_client::Connector::builder();
    b.set_connector_settings(settings);
    b.set_sleep_impl(sleep);
    let b = if proxy {
        b.proxy_config(ProxyConfig::from_env())
    } else {
        b
    };
    b.tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(tls)
        .build()
}

/// The connector of the record-carrying calls, which the sinks sign and send themselves
/// (see `sink::rpc`): the same connector, roots, proxy and connect timeout as the SDK
/// clients, with its own connection pool. It has no read timeout: `sink::rpc` bounds
/// each whole call by `socketTimeoutMillis`, which a read timeout of the same length
/// would only duplicate, with a second timer polled at every wakeup of the call.
pub fn data_connector(config: &Config, tls: Option<TlsContext>) -> SharedHttpConnector {
    let settings = HttpConnectorSettings::builder()
        .connect_timeout(config.connection_timeout)
        .build();
    SharedHttpConnector::new(connector(
        Some(settings),
        aws_smithy_async::rt::sleep::default_async_sleep(),
        proxy_from_env(),
        tls.unwrap_or_default(),
    ))
}

/// The `User-Agent` of the calls the sinks send themselves: the agent and its version,
/// then `app/<userAgent>` as the SDK writes an app name.
pub fn user_agent(config: &Config) -> String {
    let mut ua = format!("kinesis-tail/{}", env!("CARGO_PKG_VERSION"));
    if let Some(app) = config
        .user_agent
        .as_ref()
        .filter(|a| AppName::new((*a).clone()).is_ok())
    {
        ua.push_str(" app/");
        ua.push_str(app);
    }
    ua
}

/// The region of one service: its own setting, else the one in its endpoint, else the
/// chain's, else [`DEFAULT_REGION`].
pub fn service_region(service: &ServiceConfig, base: &SdkConfig) -> Region {
    if let Some(r) = &service.region {
        return Region::new(r.clone());
    }
    if let Some(r) = service.endpoint.as_deref().and_then(region_from_endpoint) {
        return Region::new(r);
    }
    base.region()
        .cloned()
        .unwrap_or_else(|| Region::from_static(DEFAULT_REGION))
}

/// `https://kinesis.eu-west-1.amazonaws.com` → `eu-west-1`; `None` for endpoints that do
/// not follow the AWS naming (a local emulator, a VPC endpoint with a custom name).
pub fn region_from_endpoint(endpoint: &str) -> Option<String> {
    let host = endpoint.split("://").nth(1).unwrap_or(endpoint);
    let host = host.split(['/', ':']).next()?;
    let labels: Vec<&str> = host.split('.').collect();
    let aws = labels
        .iter()
        .position(|l| *l == "amazonaws" || *l == "api")?;
    // <service>.<region>.amazonaws.com, <service>-fips.<region>.amazonaws.com,
    // vpce-...<service>.<region>.vpce.amazonaws.com
    let candidate = labels[..aws]
        .iter()
        .rev()
        .find(|l| **l != "vpce" && looks_like_region(l))?;
    Some(candidate.to_string())
}

fn looks_like_region(s: &str) -> bool {
    // xx-xxxx-N, also us-gov-west-1, cn-north-1
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
        && parts[0].len() == 2
        && parts[0].chars().all(|c| c.is_ascii_lowercase())
}

/// A Kinesis Data Streams client for `kinesis.*`: no retries of its own (the sink retries
/// what failed, once, with its own backoff; see [`crate::sink::retry`]) and no stalled-
/// stream protection (the agent's timeouts bound every attempt, and the protection's
/// throughput checks cost CPU on every request while it waits).
pub fn kinesis_client(config: &Config, base: &SdkConfig) -> aws_sdk_kinesis::Client {
    use aws_sdk_kinesis::config::{retry::RetryConfig, StalledStreamProtectionConfig};
    let mut b = aws_sdk_kinesis::config::Builder::from(base)
        .region(service_region(&config.kinesis, base))
        .retry_config(RetryConfig::disabled())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled());
    if let Some(ep) = &config.kinesis.endpoint {
        b = b.endpoint_url(ep.clone());
    }
    aws_sdk_kinesis::Client::from_conf(b.build())
}

/// A Firehose client for `firehose.*`, without retries or stalled-stream protection of
/// its own (see [`kinesis_client`]).
pub fn firehose_client(config: &Config, base: &SdkConfig) -> aws_sdk_firehose::Client {
    use aws_sdk_firehose::config::{retry::RetryConfig, StalledStreamProtectionConfig};
    let mut b = aws_sdk_firehose::config::Builder::from(base)
        .region(service_region(&config.firehose, base))
        .retry_config(RetryConfig::disabled())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled());
    if let Some(ep) = &config.firehose.endpoint {
        b = b.endpoint_url(ep.clone());
    }
    aws_sdk_firehose::Client::from_conf(b.build())
}

/// A CloudWatch client for `cloudwatch.*`.
pub fn cloudwatch_client(config: &Config, base: &SdkConfig) -> aws_sdk_cloudwatch::Client {
    let service = ServiceConfig {
        endpoint: config.cloudwatch.endpoint.clone(),
        region: config.cloudwatch.region.clone(),
    };
    let mut b =
        aws_sdk_cloudwatch::config::Builder::from(base).region(service_region(&service, base));
    if let Some(ep) = &service.endpoint {
        b = b.endpoint_url(ep.clone());
    }
    aws_sdk_cloudwatch::Client::from_conf(b.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_is_read_from_aws_endpoints() {
        assert_eq!(
            region_from_endpoint("https://kinesis.eu-west-1.amazonaws.com").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            region_from_endpoint("https://firehose.us-gov-west-1.amazonaws.com/").as_deref(),
            Some("us-gov-west-1")
        );
        assert_eq!(
            region_from_endpoint("https://kinesis.cn-north-1.amazonaws.com.cn").as_deref(),
            Some("cn-north-1")
        );
        assert_eq!(
            region_from_endpoint(
                "https://vpce-0123-abcd.kinesis.ap-southeast-2.vpce.amazonaws.com"
            )
            .as_deref(),
            Some("ap-southeast-2")
        );
        assert_eq!(region_from_endpoint("http://127.0.0.1:4567"), None);
        assert_eq!(region_from_endpoint("http://localhost:4567"), None);
    }
}
