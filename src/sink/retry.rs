//! What the AWS sinks share about failures: how an error is classified, how long to wait
//! before the next attempt, and how failures are reported without flooding the log.
//!
//! Policy (SPEC §8): only failed entries are retried; throttling and service errors are
//! retried forever with exponential backoff and full jitter; a non-retriable error (missing
//! stream, denied access, bad credentials) is logged once as an ERROR naming the
//! destination and the cause, then the data is kept and retried every `max` backoff until
//! the cause is gone, which is logged once at INFO.

use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;

use crate::report::RateLimit;

/// Throttling is reported at most this often per flow (SPEC §8).
pub const THROTTLE_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// Service errors (5xx, timeouts) are reported at most this often per flow.
pub const SERVICE_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The kind of a failure, which decides the wait and the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The destination refused for lack of capacity: retry with backoff.
    Throttled,
    /// A transient service or network failure: retry with backoff.
    Service,
    /// Needs an operator (missing stream, permission, credentials, KMS key): retry slowly.
    Fatal,
}

/// Error codes that need an operator. Anything unknown is treated as transient.
const FATAL_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "AccessDeniedException",
    "AccessDenied",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidClientTokenId",
    "MissingAuthenticationToken",
    "ExpiredToken",
    "ExpiredTokenException",
    "KMSAccessDeniedException",
    "KMSDisabledException",
    "KMSNotFoundException",
    "KMSInvalidStateException",
    "KMSOptInRequired",
    "InvalidKMSResourceException",
    "InvalidArgumentException",
    "ValidationException",
];

/// Error codes of throttling.
const THROTTLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "KMSThrottlingException",
    "ThrottlingException",
    "Throttling",
    "LimitExceededException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
];

/// Classifies an error code (per entry or per request) and HTTP status.
pub fn classify(code: Option<&str>, status: Option<u16>) -> Failure {
    match code {
        Some(c) if THROTTLE_CODES.contains(&c) => Failure::Throttled,
        Some(c) if FATAL_CODES.contains(&c) => Failure::Fatal,
        _ if status == Some(429) => Failure::Throttled,
        _ if matches!(status, Some(401 | 403)) => Failure::Fatal,
        _ => Failure::Service,
    }
}

/// Classifies a whole-request SDK error and describes it for the log.
pub fn classify_sdk<E, R>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> (Failure, String)
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    let text = aws_smithy_types::error::display::DisplayErrorContext(err).to_string();
    match err {
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code();
            let status = ctx.raw().status_code();
            let failure = classify(code, Some(status));
            let cause = match (code, ctx.err().message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                _ => format!("HTTP {status}: {text}"),
            };
            (failure, cause)
        }
        // Credentials that cannot be resolved fail before any request is sent.
        SdkError::ConstructionFailure(_) | SdkError::DispatchFailure(_)
            if text.contains("credential") =>
        {
            (Failure::Fatal, text)
        }
        SdkError::ConstructionFailure(_) => (Failure::Fatal, text),
        SdkError::DispatchFailure(_) => dispatch_failure(text),
        _ => (Failure::Service, text),
    }
}

/// Classifies a failed signed call (see [`super::rpc`]) and describes it for the log, as
/// [`classify_sdk`] does the SDK's errors.
pub(crate) fn classify_rpc(err: &super::rpc::RpcError) -> (Failure, String) {
    use super::rpc::RpcError;
    match err {
        RpcError::Service {
            status,
            code,
            message,
            body,
        } => {
            let cause = match (code, message) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.clone(),
                _ => format!("HTTP {status}: {}", message.as_deref().unwrap_or(body)),
            };
            (classify(code.as_deref(), Some(*status)), cause)
        }
        RpcError::Credentials(text) | RpcError::Construction(text) => {
            (Failure::Fatal, text.clone())
        }
        RpcError::Dispatch(text) => dispatch_failure(text.clone()),
    }
}

/// A request that was not sent or not answered: transient, except a certificate that is
/// not trusted, which does not become trusted by retrying sooner (one ERROR that says
/// what to do).
fn dispatch_failure(text: String) -> (Failure, String) {
    if text.contains("invalid peer certificate") {
        (
            Failure::Fatal,
            format!(
                "the endpoint's TLS certificate is not trusted (behind a private CA or a \
                 TLS-inspecting proxy, set {} to its PEM bundle): {text}",
                crate::aws::CA_BUNDLE_ENV
            ),
        )
    } else {
        (Failure::Service, text)
    }
}

/// The HTTP status of a raw response (lets [`classify_sdk`] stay generic).
pub trait HttpStatus {
    /// The status code.
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::client::orchestrator::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// Exponential backoff with full jitter: the n-th wait is uniform in
/// `[initial, min(max, initial * 2^n)]`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Starts at `initial`, never above `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// The wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let cap = self
            .initial
            .saturating_mul(1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let lo = self.initial.as_micros() as u64;
        let hi = cap.as_micros() as u64;
        Duration::from_micros(rand::thread_rng().gen_range(lo..=hi.max(lo)))
    }

    /// The longest wait (used while a non-retriable error lasts).
    pub fn max(&self) -> Duration {
        self.max
    }

    /// Sleeps before sending the failed entries again: the longest wait while a
    /// non-retriable error lasts (`fatal`), else the next jittered delay.
    pub async fn wait(&mut self, fatal: bool) {
        let delay = if fatal { self.max } else { self.next_delay() };
        tokio::time::sleep(delay).await;
    }
}

/// Reports failures of one destination, rate-limited, shared by concurrent deliveries.
///
/// Throttling and transient failures are counted; the first is logged at once, and then
/// one summary with the counts at most every [`THROTTLE_LOG_INTERVAL`] (resp.
/// [`SERVICE_ERROR_LOG_INTERVAL`]), at the next failure or the next success after it: a
/// storm that ends is still summed up once deliveries go on.
#[derive(Debug)]
pub struct Reporter {
    /// "flow 0: Kinesis stream 'x' in us-east-1", for every message.
    what: String,
    state: Mutex<ReportState>,
}

#[derive(Debug)]
struct ReportState {
    /// The non-retriable cause currently reported, if any.
    fatal: Option<String>,
    throttled: RateLimit,
    throttle_code: String,
    service: RateLimit,
    service_cause: String,
}

impl Reporter {
    /// A reporter for the destination described by `what`.
    pub fn new(what: String) -> Self {
        Reporter::with_intervals(what, THROTTLE_LOG_INTERVAL, SERVICE_ERROR_LOG_INTERVAL)
    }

    /// A reporter with other report intervals for throttling and service errors.
    pub fn with_intervals(what: String, throttling: Duration, service: Duration) -> Self {
        Reporter {
            what,
            state: Mutex::new(ReportState {
                fatal: None,
                throttled: RateLimit::new(throttling),
                throttle_code: String::new(),
                service: RateLimit::new(service),
                service_cause: String::new(),
            }),
        }
    }

    /// The destination's description.
    pub fn what(&self) -> &str {
        &self.what
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ReportState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The start-up description of the destination failed: a non-retriable cause is the
    /// one ERROR of [`Reporter::fatal`]; anything else a warning (deliveries retry it).
    pub fn preflight_failed(&self, failure: Failure, cause: &str, retry_every: Duration) {
        if failure == Failure::Fatal {
            self.fatal(cause, retry_every);
        } else {
            tracing::warn!("{}: cannot describe it: {cause}", self.what);
        }
    }

    /// A non-retriable failure: ERROR once per distinct cause.
    pub fn fatal(&self, cause: &str, retry_every: Duration) {
        let mut st = self.state();
        // The same code with a different message (request IDs) is the same cause.
        let key = cause.split(':').next().unwrap_or(cause).to_string();
        if st.fatal.as_deref() != Some(&key) {
            tracing::error!(
                "{}: cannot deliver: {cause} (records are kept and retried every {:?} \
                 until this is fixed)",
                self.what,
                retry_every
            );
            st.fatal = Some(key);
        }
    }

    /// `n` entries throttled with `code`: one WARN now and then with the counts.
    pub fn throttled(&self, n: u64, code: &str) {
        let mut st = self.state();
        st.throttle_code = code.to_string();
        let due = st.throttled.hit(n);
        self.report_throttled(&st, due);
    }

    /// `n` entries failed with a transient error: one WARN now and then with the counts.
    pub fn service_error(&self, n: u64, cause: &str) {
        let mut st = self.state();
        st.service_cause = cause.to_string();
        let due = st.service.hit(n);
        self.report_service(&st, due);
    }

    /// A request went through: ends a reported non-retriable failure, and sums up the
    /// failures counted since the last report when one is due.
    pub fn success(&self) {
        let mut st = self.state();
        if let Some(cause) = st.fatal.take() {
            tracing::info!("{}: delivering again (recovered from {cause})", self.what);
        }
        let due = st.throttled.flush();
        self.report_throttled(&st, due);
        let due = st.service.flush();
        self.report_service(&st, due);
    }

    fn report_throttled(&self, st: &ReportState, due: Option<u64>) {
        if let Some(n) = due {
            tracing::warn!(
                "{}: throttled: {n} records refused ({}) since the last report; retrying \
                 with backoff",
                self.what,
                st.throttle_code
            );
        }
    }

    fn report_service(&self, st: &ReportState, due: Option<u64>) {
        if let Some(n) = due {
            tracing::warn!(
                "{}: {n} records failed ({}) since the last report; retrying with backoff",
                self.what,
                st.service_cause
            );
        }
    }

    /// True while a non-retriable failure is being reported.
    pub fn is_failing(&self) -> bool {
        self.state().fatal.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(
            classify(Some("ProvisionedThroughputExceededException"), None),
            Failure::Throttled
        );
        assert_eq!(classify(Some("InternalFailure"), None), Failure::Service);
        assert_eq!(
            classify(Some("ServiceUnavailableException"), None),
            Failure::Service
        );
        assert_eq!(
            classify(Some("ResourceNotFoundException"), Some(400)),
            Failure::Fatal
        );
        assert_eq!(classify(None, Some(500)), Failure::Service);
        assert_eq!(classify(None, Some(429)), Failure::Throttled);
        assert_eq!(classify(None, Some(403)), Failure::Fatal);
    }

    #[test]
    fn an_untrusted_certificate_is_fatal_and_names_aws_ca_bundle() {
        use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
        use aws_smithy_runtime_api::client::result::{ConnectorError, SdkError};
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        );
        let err: SdkError<aws_sdk_kinesis::Error, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io(Box::new(io)));
        let (failure, cause) = classify_sdk(&err);
        assert_eq!(failure, Failure::Fatal);
        assert!(cause.contains("AWS_CA_BUNDLE"), "{cause}");
        assert!(cause.contains("UnknownIssuer"), "{cause}");
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err: SdkError<aws_sdk_kinesis::Error, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io(Box::new(refused)));
        assert_eq!(classify_sdk(&err).0, Failure::Service);
    }

    #[test]
    fn backoff_grows_with_jitter_within_bounds() {
        let init = Duration::from_millis(100);
        let max = Duration::from_millis(1000);
        let mut b = Backoff::new(init, max);
        for n in 0..20u32 {
            let d = b.next_delay();
            let cap = (init * 2u32.pow(n.min(10))).min(max);
            assert!(d >= init && d <= cap, "{n}: {d:?}");
        }
    }

    #[test]
    fn throttling_is_summed_up_at_most_once_per_interval_even_after_it_ends() {
        let every = Duration::from_millis(200);
        let r = Reporter::with_intervals("flow 0: test".into(), every, every);
        let pending = |r: &Reporter| {
            let st = r.state();
            (st.throttled.held(), st.service.held())
        };
        // The first is reported at once; the rest is counted, not logged.
        r.throttled(5, "ProvisionedThroughputExceededException");
        r.service_error(2, "InternalFailure");
        assert_eq!(pending(&r), (0, 0));
        for _ in 0..100 {
            r.throttled(1, "ProvisionedThroughputExceededException");
            r.service_error(1, "InternalFailure");
            r.success();
        }
        assert_eq!(pending(&r), (100, 100));
        // The storm is over; the next success once the interval has passed sums it up.
        std::thread::sleep(every);
        r.success();
        assert_eq!(pending(&r), (0, 0));
        r.success();
        assert_eq!(pending(&r), (0, 0));
    }

    #[test]
    fn fatal_is_reported_once_until_recovery() {
        let r = Reporter::new("flow 0: test".into());
        r.fatal("ResourceNotFoundException: a", Duration::from_secs(1));
        r.fatal("ResourceNotFoundException: b", Duration::from_secs(1));
        assert!(r.is_failing());
        r.success();
        assert!(!r.is_failing());
    }
}
