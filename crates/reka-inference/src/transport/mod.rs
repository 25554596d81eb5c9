//! How every request reaches the server: authentication, redirects,
//! retries, time limits and size limits, in one loop.
//!
//! Every request of the crate is sent by
//! [`ApiTransport::send`], so every request follows the same rules:
//!
//! - the API key is attached only when a request (or a redirect hop) goes
//!   to the configured origin, and removed otherwise;
//! - redirects are followed here, by hand, never inside reqwest, so the key
//!   rule holds at every hop: API calls follow same-origin redirects only,
//!   downloads follow any redirect whose address the [`AddressPolicy`]
//!   allows (a CDN's 302 to a signed URL, but never a link-local metadata
//!   address);
//! - idempotent requests are retried per the [`RetryPolicy`];
//! - each attempt is bounded by the per-request timeout and by the
//!   caller's deadline; a retry whose wait would pass the deadline is not
//!   made, and the call ends as [`Error::RequestTimeout`];
//! - a buffered answer is read up to a size limit and no further
//!   ([`Error::BodyTooLarge`]); a streamed one is bounded by the idle (read)
//!   timeout set on the HTTP client, not by a total one.
//!
//! Every call to the inference API reaches this loop from a generated
//! operation, through the hooks of `crate::http`; downloads reach it
//! directly, since their URLs come from outputs, not from the document.

use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use tokio::time::Instant;
use tracing::Instrument;
use url::Url;

use crate::error::{Error, Result, is_retryable_status};
use crate::rate_limit::RateLimits;
use crate::retry::{RetryPolicy, parse_retry_after};

mod address;

pub(crate) use address::{AddressPolicy, GuardedResolver};

/// The header the API key travels in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthHeader {
    /// `X-Api-Key: <key>` (the default).
    #[default]
    XApiKey,
    /// `Authorization: Bearer <key>`.
    Bearer,
}

const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Redirect hops followed at most for one request.
const MAX_REDIRECTS: usize = 5;

/// Your own code on every request the client sends, without forking it:
/// trace-context propagation, extra headers, metrics. Hooks run before each
/// attempt and each redirect hop, before the key is attached (a hook never
/// sees the key, and a key header it adds is replaced or, off the API's
/// origin, removed).
///
/// ```
/// use reka_inference::{Client, HttpHook};
///
/// struct Traceparent;
///
/// impl HttpHook for Traceparent {
///     fn on_request(&self, request: &mut reqwest::Request, _operation: &str) {
///         let value = reqwest::header::HeaderValue::from_static(
///             "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
///         );
///         request.headers_mut().insert("traceparent", value);
///     }
/// }
///
/// let client = Client::builder().api_key("sk-example").hook(Traceparent).build()?;
/// # let _ = client;
/// # Ok::<(), reka_inference::Error>(())
/// ```
pub trait HttpHook: Send + Sync + 'static {
    /// Called with each request about to be sent, and the operation it is
    /// for (`get_status`, `submit`, `download`, ...).
    fn on_request(&self, request: &mut reqwest::Request, operation: &str) {
        let _ = (request, operation);
    }

    /// Called with the status and headers of each answer.
    fn on_response(&self, status: StatusCode, headers: &HeaderMap, operation: &str) {
        let _ = (status, headers, operation);
    }
}

/// The API key, never printed.
#[derive(Clone)]
pub(crate) struct Credentials {
    name: HeaderName,
    value: HeaderValue,
}

impl Credentials {
    pub(crate) fn new(key: &str, style: AuthHeader) -> std::result::Result<Self, String> {
        let (name, text) = match style {
            AuthHeader::XApiKey => (X_API_KEY, key.to_owned()),
            AuthHeader::Bearer => (header::AUTHORIZATION, format!("Bearer {key}")),
        };
        let mut value = HeaderValue::from_str(&text).map_err(|_| {
            "the API key contains characters not allowed in an HTTP header".to_owned()
        })?;
        value.set_sensitive(true);
        Ok(Credentials { name, value })
    }
}

/// How an answer is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Read whole (up to the size limit) within the per-request timeout.
    Buffered,
    /// A success is handed over unread once its headers are in; an error
    /// answer is read whole like a buffered one.
    Streaming,
}

/// Where a request may be redirected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Redirects {
    /// Same-origin hops only (API calls).
    SameOrigin,
    /// Any hop the address policy allows (downloads).
    Anywhere,
}

/// One request to send and how.
pub(crate) struct Exchange {
    pub request: reqwest::Request,
    pub operation: &'static str,
    pub mode: Mode,
    pub redirects: Redirects,
    /// The caller's deadline: no attempt, retry wait or redirect runs past it.
    pub deadline: Option<Instant>,
    /// Retries of this exchange instead of the transport's own.
    pub retry: Option<RetryPolicy>,
    /// Sending it twice is harmless although its method does not say so
    /// (a cancel). GETs, HEADs and requests with an `Idempotency-Key` are
    /// idempotent anyway.
    pub idempotent: bool,
}

/// An answer: read whole, or left streaming.
pub(crate) enum Answer {
    Buffered {
        status: StatusCode,
        headers: HeaderMap,
        version: reqwest::Version,
        body: Bytes,
        url: Url,
    },
    Streaming(reqwest::Response),
}

impl Answer {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Answer::Buffered { status, .. } => *status,
            Answer::Streaming(r) => r.status(),
        }
    }

    pub(crate) fn headers(&self) -> &HeaderMap {
        match self {
            Answer::Buffered { headers, .. } => headers,
            Answer::Streaming(r) => r.headers(),
        }
    }

    fn is_undecodable_json(&self) -> bool {
        let Answer::Buffered { headers, body, .. } = self else {
            return false;
        };
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        json && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err()
    }

    /// A `reqwest::Response` carrying the same answer.
    pub(crate) fn into_response(self) -> reqwest::Response {
        match self {
            Answer::Streaming(r) => r,
            Answer::Buffered {
                status,
                headers,
                version,
                body,
                url,
            } => {
                let mut builder = http::Response::builder().status(status).version(version);
                if let Some(h) = builder.headers_mut() {
                    *h = headers;
                }
                let mut response = match builder.body(body) {
                    Ok(r) => r,
                    // Status, version and headers came from a valid
                    // response, so the builder cannot fail; keep a
                    // well-formed fallback all the same.
                    Err(_) => http::Response::new(Bytes::new()),
                };
                response.extensions_mut().insert(url);
                reqwest::Response::from(response)
            }
        }
    }
}

/// Why one attempt produced no answer.
enum Failure {
    Transport(reqwest::Error),
    TimedOut,
    TooLarge,
    Refused(String),
}

/// The transport of a [`Client`](crate::Client).
pub(crate) struct ApiTransport {
    origin: url::Origin,
    credentials: Option<Credentials>,
    retry: RetryPolicy,
    request_timeout: Duration,
    max_body_bytes: u64,
    addresses: AddressPolicy,
    hooks: Vec<std::sync::Arc<dyn HttpHook>>,
    /// What the service last said of its rate limits.
    rate_limits: RateLimits,
}

impl ApiTransport {
    pub(crate) fn new(
        origin: url::Origin,
        credentials: Option<Credentials>,
        retry: RetryPolicy,
        request_timeout: Duration,
        max_body_bytes: u64,
        addresses: AddressPolicy,
        hooks: Vec<std::sync::Arc<dyn HttpHook>>,
    ) -> Self {
        ApiTransport {
            origin,
            credentials,
            retry,
            request_timeout,
            max_body_bytes,
            addresses,
            hooks,
            rate_limits: RateLimits::default(),
        }
    }

    pub(crate) fn rate_limits(&self) -> &RateLimits {
        &self.rate_limits
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    pub(crate) fn max_body_bytes(&self) -> u64 {
        self.max_body_bytes
    }

    /// Adds the key when `request` goes to the configured origin, and
    /// removes any key header when it does not.
    fn authorize(&self, request: &mut reqwest::Request) {
        let headers = request.headers_mut();
        headers.remove(X_API_KEY);
        headers.remove(header::AUTHORIZATION);
        if request.url().origin() == self.origin
            && let Some(c) = &self.credentials
        {
            request
                .headers_mut()
                .insert(c.name.clone(), c.value.clone());
        }
    }

    /// Whether sending `request` twice is harmless.
    fn is_idempotent(request: &reqwest::Request, declared: bool) -> bool {
        declared
            || request.method() == Method::GET
            || request.method() == Method::HEAD
            || request.headers().contains_key(IDEMPOTENCY_KEY)
    }

    /// Sends an exchange with redirects, retries and limits.
    pub(crate) async fn send(
        &self,
        client: &reqwest::Client,
        exchange: Exchange,
    ) -> Result<Answer> {
        let Exchange {
            mut request,
            operation,
            mode,
            redirects,
            deadline,
            retry,
            idempotent,
        } = exchange;
        let policy = retry.as_ref().unwrap_or(&self.retry);
        let began = Instant::now();
        let idempotent = Self::is_idempotent(&request, idempotent);
        let span = tracing::debug_span!(
            "reka.http",
            operation,
            method = %request.method(),
            path = request.url().path(),
            status = tracing::field::Empty,
            x_request_id = tracing::field::Empty,
            attempts = tracing::field::Empty,
        );
        let deadline_error = move || Error::RequestTimeout {
            operation: operation.to_owned(),
            waited: began.elapsed(),
            by_deadline: true,
        };
        async move {
            let mut attempt = 1u32;
            loop {
                // A body that cannot be cloned (a stream) gets one attempt.
                let spare = request.try_clone();
                let retry_allowed = spare.is_some() && attempt < policy.attempts();
                let outcome = self
                    .attempt(client, request, operation, mode, redirects, deadline)
                    .await;
                let wait = match &outcome {
                    Ok(answer) => {
                        self.rate_limits
                            .observe(operation, answer.status(), answer.headers());
                        self.wait_before_retry(policy, answer, attempt, idempotent)
                    }
                    Err(Failure::Transport(e)) if idempotent && is_transient(e) => {
                        tracing::debug!(error = %e, attempt, "transport error");
                        Some(policy.backoff(attempt))
                    }
                    Err(Failure::TimedOut) if idempotent => Some(policy.backoff(attempt)),
                    Err(_) => None,
                };
                let fits = |w: Duration| {
                    deadline.is_none_or(|d| Instant::now().checked_add(w).is_some_and(|at| at < d))
                };
                match (wait, spare) {
                    (Some(w), Some(next)) if retry_allowed && fits(w) => {
                        tracing::debug!(attempt, wait_ms = w.as_millis() as u64, "retrying");
                        tokio::time::sleep(w).await;
                        request = next;
                        attempt += 1;
                    }
                    // A retry was due, but its wait would pass the deadline.
                    (Some(w), Some(_)) if retry_allowed && !fits(w) && deadline.is_some() => {
                        tracing::Span::current().record("attempts", attempt);
                        return Err(deadline_error());
                    }
                    _ => {
                        let span = tracing::Span::current();
                        span.record("attempts", attempt);
                        return match outcome {
                            Ok(answer) => {
                                span.record("status", answer.status().as_u16());
                                if let Some(id) = answer
                                    .headers()
                                    .get("x-request-id")
                                    .and_then(|v| v.to_str().ok())
                                {
                                    span.record("x_request_id", id);
                                }
                                Ok(answer)
                            }
                            Err(Failure::Transport(e)) => Err(Error::Transport(e)),
                            Err(Failure::TimedOut) => {
                                let by_deadline = deadline.is_some_and(|d| Instant::now() >= d);
                                Err(Error::RequestTimeout {
                                    operation: operation.to_owned(),
                                    waited: began.elapsed(),
                                    by_deadline,
                                })
                            }
                            Err(Failure::TooLarge) => Err(Error::BodyTooLarge {
                                operation: operation.to_owned(),
                                limit: self.max_body_bytes,
                            }),
                            Err(Failure::Refused(why)) => Err(Error::InvalidInput(why)),
                        };
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    /// One attempt: the request and the redirects it leads to, within the
    /// per-request timeout and the deadline.
    async fn attempt(
        &self,
        client: &reqwest::Client,
        request: reqwest::Request,
        operation: &str,
        mode: Mode,
        redirects: Redirects,
        deadline: Option<Instant>,
    ) -> std::result::Result<Answer, Failure> {
        let by_timeout = Instant::now().checked_add(self.request_timeout);
        let limit = match (by_timeout, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let exchange = self.follow(client, request, operation, mode, redirects);
        match limit {
            Some(at) => tokio::time::timeout_at(at, exchange)
                .await
                .unwrap_or(Err(Failure::TimedOut)),
            None => exchange.await,
        }
    }

    async fn follow(
        &self,
        client: &reqwest::Client,
        mut request: reqwest::Request,
        operation: &str,
        mode: Mode,
        redirects: Redirects,
    ) -> std::result::Result<Answer, Failure> {
        for _hop in 0..=MAX_REDIRECTS {
            if redirects == Redirects::Anywhere {
                self.addresses
                    .check(request.url())
                    .map_err(|why| Failure::Refused(format!("{}: {why}", request.url())))?;
            }
            for hook in &self.hooks {
                hook.on_request(&mut request, operation);
            }
            self.authorize(&mut request);
            let mut response = client
                .execute(request.try_clone().ok_or(Failure::Refused(
                    "a streamed request body cannot be sent".into(),
                ))?)
                .await
                .map_err(Failure::Transport)?;
            for hook in &self.hooks {
                hook.on_response(response.status(), response.headers(), operation);
            }
            if let Some(next) = self.redirect_target(&request, &response, redirects)? {
                tracing::debug!(to = %next.origin().ascii_serialization(), "following a redirect");
                *request.url_mut() = next;
                continue;
            }
            let status = response.status();
            if mode == Mode::Streaming && status.is_success() {
                return Ok(Answer::Streaming(response));
            }
            let headers = response.headers().clone();
            let version = response.version();
            let url = response.url().clone();
            let body = read_capped(&mut response, self.max_body_bytes, |_, _| {})
                .await
                .map_err(|e| match e {
                    CappedError::TooLarge => Failure::TooLarge,
                    CappedError::Transport(e) => Failure::Transport(e),
                })?;
            return Ok(Answer::Buffered {
                status,
                headers,
                version,
                body,
                url,
            });
        }
        Err(Failure::Refused(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }

    /// Where a redirect answer leads, when it is to be followed: only GET
    /// and HEAD requests are, so no body is ever sent twice or elsewhere.
    fn redirect_target(
        &self,
        request: &reqwest::Request,
        response: &reqwest::Response,
        redirects: Redirects,
    ) -> std::result::Result<Option<Url>, Failure> {
        let status = response.status();
        if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            return Ok(None);
        }
        let Some(location) = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
        else {
            return Ok(None);
        };
        let next = request
            .url()
            .join(location)
            .map_err(|e| Failure::Refused(format!("redirect to {location:?}: {e}")))?;
        if !matches!(next.scheme(), "http" | "https") {
            return Err(Failure::Refused(format!(
                "redirect to a {:?} URL",
                next.scheme()
            )));
        }
        match redirects {
            Redirects::SameOrigin if next.origin() != request.url().origin() => Ok(None),
            _ => Ok(Some(next)),
        }
    }

    /// How long to wait before retrying after `answer`, or `None` to return it.
    fn wait_before_retry(
        &self,
        policy: &RetryPolicy,
        answer: &Answer,
        attempt: u32,
        idempotent: bool,
    ) -> Option<Duration> {
        let status = answer.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            // The server did not process the request: any method may retry,
            // but only when it says when, and the wait is bounded.
            let after = answer
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| parse_retry_after(v, SystemTime::now()))?;
            return (after <= policy.retry_after_limit()).then_some(after);
        }
        if !idempotent {
            return None;
        }
        if is_retryable_status(status) {
            return Some(policy.backoff(attempt));
        }
        if status.is_success() && answer.is_undecodable_json() {
            tracing::debug!(attempt, "malformed JSON body");
            return Some(policy.backoff(attempt));
        }
        None
    }
}

/// Why [`read_capped`] stopped.
#[derive(Debug)]
pub(crate) enum CappedError {
    /// The body is larger than the limit (announced or read).
    TooLarge,
    /// The body broke off.
    Transport(reqwest::Error),
}

/// Reads a body whole, refusing it past `limit` bytes (before reading a
/// byte when `Content-Length` already says so); `progress` gets the bytes
/// received so far and the announced total. The one place a body is
/// buffered: API answers, chat answers and downloads into memory.
pub(crate) async fn read_capped(
    response: &mut reqwest::Response,
    limit: u64,
    mut progress: impl FnMut(u64, Option<u64>),
) -> std::result::Result<Bytes, CappedError> {
    let total = response.content_length();
    if total.is_some_and(|t| t > limit) {
        return Err(CappedError::TooLarge);
    }
    // Reserve what the answer announces, within the limit and a sane
    // first allocation: the length is the server's word, not a fact.
    let first = total.unwrap_or(0).min(limit).min(1 << 20);
    let mut body = BytesMut::with_capacity(usize::try_from(first).unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(CappedError::Transport)? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(CappedError::TooLarge);
        }
        body.extend_from_slice(&chunk);
        progress(body.len() as u64, total);
    }
    Ok(body.freeze())
}

fn is_transient(e: &reqwest::Error) -> bool {
    e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() || e.is_decode()
}
