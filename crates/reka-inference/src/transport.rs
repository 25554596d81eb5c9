//! How every request reaches the server: authentication, retries, tracing.
//!
//! [`ApiTransport`] is installed in the generated client as its
//! [`Transport`](reka_inference_api::Transport), and the hand-written calls
//! (chat streaming, downloads, unknown endpoints) use it directly, so every
//! request follows the same rules:
//!
//! - the API key is attached only when the request goes to the configured
//!   origin, and removed otherwise;
//! - idempotent requests are retried per the [`RetryPolicy`];
//! - the body of every answer is read here (except event streams), so a
//!   connection dropped mid-body is retried like any transport error and
//!   the raw body of an error answer can be kept for the caller.
//!
//! Per-call facts (the deadline, the raw error answer) travel in a
//! task-local [`CallContext`], since the generated code owns the call.

use std::cell::RefCell;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reka_inference_api::{BoxFuture, Transport};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use tokio::time::Instant;
use tracing::Instrument;

use crate::error::is_retryable_status;
use crate::retry::{RetryPolicy, parse_retry_after};

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

/// An error answer as it came off the wire.
#[derive(Debug, Clone)]
pub(crate) struct RawAnswer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What one logical call shares with the transport beneath the generated
/// code.
#[derive(Debug, Default)]
pub(crate) struct CallContext {
    /// Waits (backoff, `Retry-After`) must end before this instant.
    pub deadline: Option<Instant>,
    /// The last error answer the transport passed up.
    pub last_error: RefCell<Option<RawAnswer>>,
}

tokio::task_local! {
    static CALL: CallContext;
}

/// Runs `fut` with `ctx` visible to the transport; returns its output and
/// the last raw error answer seen.
pub(crate) async fn with_context<F: Future>(
    deadline: Option<Instant>,
    fut: F,
) -> (F::Output, Option<RawAnswer>) {
    let ctx = CallContext {
        deadline,
        last_error: RefCell::new(None),
    };
    CALL.scope(ctx, async move {
        let out = fut.await;
        let raw = CALL
            .try_with(|c| c.last_error.borrow_mut().take())
            .ok()
            .flatten();
        (out, raw)
    })
    .await
}

fn context_deadline() -> Option<Instant> {
    CALL.try_with(|c| c.deadline).ok().flatten()
}

fn remember_error(raw: RawAnswer) {
    let _ = CALL.try_with(|c| *c.last_error.borrow_mut() = Some(raw));
}

/// The API key, never printed.
#[derive(Clone)]
pub(crate) struct Credentials {
    name: HeaderName,
    value: HeaderValue,
}

impl Credentials {
    pub(crate) fn new(key: &str, style: AuthHeader) -> Result<Self, String> {
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

/// The transport of a [`Client`](crate::Client).
pub(crate) struct ApiTransport {
    origin: url::Origin,
    credentials: Option<Credentials>,
    retry: RetryPolicy,
}

impl ApiTransport {
    pub(crate) fn new(
        origin: url::Origin,
        credentials: Option<Credentials>,
        retry: RetryPolicy,
    ) -> Self {
        ApiTransport {
            origin,
            credentials,
            retry,
        }
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
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
    fn is_idempotent(request: &reqwest::Request, operation: &str) -> bool {
        request.method() == Method::GET
            || request.method() == Method::HEAD
            || operation == "cancel_request"
            || request.headers().contains_key(IDEMPOTENCY_KEY)
    }

    /// Sends `request` with retries; answers are read whole unless `stream`.
    pub(crate) async fn send(
        &self,
        client: &reqwest::Client,
        mut request: reqwest::Request,
        operation: &'static str,
        stream: bool,
    ) -> reqwest::Result<reqwest::Response> {
        self.authorize(&mut request);
        let idempotent = Self::is_idempotent(&request, operation);
        let deadline = context_deadline();
        let span = tracing::debug_span!(
            "reka.http",
            operation,
            method = %request.method(),
            path = request.url().path(),
            status = tracing::field::Empty,
            x_request_id = tracing::field::Empty,
            attempts = tracing::field::Empty,
        );
        async move {
            let mut attempt = 1u32;
            loop {
                // A body that cannot be cloned (a stream) gets one attempt.
                let spare = request.try_clone();
                let retry_allowed = spare.is_some() && attempt < self.retry.attempts();
                let outcome = execute(client, request, stream).await;
                let wait = match &outcome {
                    Ok(resp) => self.wait_before_retry(resp, attempt, idempotent),
                    Err(e) if idempotent && is_transient(e) => {
                        tracing::debug!(error = %e, attempt, "transport error");
                        Some(self.retry.backoff(attempt))
                    }
                    Err(_) => None,
                };
                let fits = |w: Duration| deadline.is_none_or(|d| Instant::now() + w < d);
                match (wait, spare) {
                    (Some(w), Some(next)) if retry_allowed && fits(w) => {
                        tracing::debug!(attempt, wait_ms = w.as_millis() as u64, "retrying");
                        tokio::time::sleep(w).await;
                        request = next;
                        attempt += 1;
                    }
                    _ => {
                        let span = tracing::Span::current();
                        span.record("attempts", attempt);
                        if let Ok(resp) = &outcome {
                            span.record("status", resp.status().as_u16());
                            if let Some(id) = resp
                                .headers()
                                .get("x-request-id")
                                .and_then(|v| v.to_str().ok())
                            {
                                span.record("x_request_id", id);
                            }
                        }
                        return outcome.map(Answer::into_response);
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    /// How long to wait before retrying after `resp`, or `None` to return it.
    fn wait_before_retry(&self, resp: &Answer, attempt: u32, idempotent: bool) -> Option<Duration> {
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            // The server did not process the request: any method may retry,
            // but only when it says when, and the wait is bounded.
            let after = resp
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| parse_retry_after(v, SystemTime::now()))?;
            return (after <= self.retry.retry_after_limit()).then_some(after);
        }
        if !idempotent {
            return None;
        }
        if is_retryable_status(status) {
            return Some(self.retry.backoff(attempt));
        }
        if status.is_success() && resp.is_undecodable_json() {
            tracing::debug!(attempt, "malformed JSON body");
            return Some(self.retry.backoff(attempt));
        }
        None
    }
}

impl Transport for ApiTransport {
    fn execute<'a>(
        &'a self,
        client: &'a reqwest::Client,
        request: reqwest::Request,
        operation_id: &'static str,
    ) -> BoxFuture<'a, reqwest::Result<reqwest::Response>> {
        Box::pin(self.send(client, request, operation_id, false))
    }
}

fn is_transient(e: &reqwest::Error) -> bool {
    e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() || e.is_decode()
}

/// An answer: read whole, or left streaming.
enum Answer {
    Buffered {
        status: StatusCode,
        headers: HeaderMap,
        version: reqwest::Version,
        body: Bytes,
    },
    Streaming(reqwest::Response),
}

async fn execute(
    client: &reqwest::Client,
    request: reqwest::Request,
    stream: bool,
) -> reqwest::Result<Answer> {
    let resp = client.execute(request).await?;
    if stream && resp.status().is_success() {
        return Ok(Answer::Streaming(resp));
    }
    let status = resp.status();
    let headers = resp.headers().clone();
    let version = resp.version();
    let body = resp.bytes().await?;
    Ok(Answer::Buffered {
        status,
        headers,
        version,
        body,
    })
}

impl Answer {
    fn status(&self) -> StatusCode {
        match self {
            Answer::Buffered { status, .. } => *status,
            Answer::Streaming(r) => r.status(),
        }
    }

    fn headers(&self) -> &HeaderMap {
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

    fn into_response(self) -> reqwest::Response {
        match self {
            Answer::Streaming(r) => r,
            Answer::Buffered {
                status,
                headers,
                version,
                body,
            } => {
                if !status.is_success() {
                    remember_error(RawAnswer {
                        status,
                        headers: headers.clone(),
                        body: body.clone(),
                    });
                }
                let mut builder = http::Response::builder().status(status).version(version);
                if let Some(h) = builder.headers_mut() {
                    *h = headers;
                }
                match builder.body(body) {
                    Ok(r) => reqwest::Response::from(r),
                    // Status, version and headers came from a valid
                    // response, so the builder cannot fail; keep a
                    // well-formed fallback all the same.
                    Err(_) => reqwest::Response::from(http::Response::new(Bytes::new())),
                }
            }
        }
    }
}
