//! How every request reaches the server: authentication, redirects,
//! retries, time limits and size limits, in one loop.
//!
//! Every call of the crate, generated or hand-written, is sent by
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
//! The generated client (`Client::api`) reaches the same loop through
//! [`reka_inference_api::Transport`]; its errors can only be
//! `reqwest::Error`s, so there a size or time limit shows as the
//! transport error of a body that broke off.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use reka_inference_api::BoxFuture;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use tokio::time::Instant;
use tracing::Instrument;
use url::Url;

use crate::error::{Error, Result, is_retryable_status};
use crate::rate_limit::RateLimits;
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

/// Redirect hops followed at most for one request.
const MAX_REDIRECTS: usize = 5;

/// Your own code on every request the client sends, without forking it:
/// trace-context propagation, extra headers, metrics. Hooks run before each
/// attempt and each redirect hop, before the key is attached (a hook never
/// sees the key, and a key header it adds is replaced or, off the API's
/// origin, removed).
///
/// ```
/// use reka_inference::{Client, RequestHook};
///
/// struct Traceparent;
///
/// impl RequestHook for Traceparent {
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
pub trait RequestHook: Send + Sync + 'static {
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

/// Which addresses a download (and each of its redirect hops) may connect
/// to, by the literal address in its URL.
///
/// Link-local (cloud metadata services live at 169.254.169.254), multicast,
/// broadcast and unspecified addresses are always refused. Loopback and
/// private addresses are allowed only when the API itself is on one (a
/// simulator on 127.0.0.1, a service on a private network) or by an explicit
/// opt-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AddressPolicy {
    pub allow_local: bool,
}

impl AddressPolicy {
    /// Whether `url` may be fetched; `Err` says why not.
    pub(crate) fn check(&self, url: &Url) -> std::result::Result<(), String> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain(d)) => {
                if !self.allow_local && d.eq_ignore_ascii_case("localhost") {
                    return Err(format!("{d} is a loopback host"));
                }
                return Ok(());
            }
            None => return Err("the URL has no host".into()),
        };
        let ip = canonical(ip);
        if is_never_reachable(ip) {
            return Err(format!(
                "{ip} is a link-local, multicast or unspecified address"
            ));
        }
        let local = match ip {
            IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
            IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
        };
        if local && !self.allow_local {
            return Err(format!(
                "{ip} is a loopback or private address and the API is not on one \
                 (allow_local_downloads(true) to permit it)"
            ));
        }
        Ok(())
    }

    /// The policy that fits a base URL: local addresses are allowed when the
    /// API itself is on one.
    pub(crate) fn for_base_url(base: &Url) -> AddressPolicy {
        let allow_local = match base.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_private(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        AddressPolicy { allow_local }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Addresses no request of the client may reach: link-local (cloud
/// metadata services), multicast, broadcast, unspecified.
fn is_never_reachable(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            v4.is_link_local() || v4.is_multicast() || v4.is_broadcast() || v4.is_unspecified()
        }
        IpAddr::V6(v6) => {
            v6.is_multicast() || v6.is_unspecified() || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Resolves host names as the system does, without the addresses no
/// request may reach: a name that points at the metadata service gets no
/// connection, whatever the URL looked like.
pub(crate) struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<std::net::SocketAddr> =
                found.filter(|a| !is_never_reachable(a.ip())).collect();
            if allowed.is_empty() {
                return Err(format!(
                    "{host} resolves only to link-local, multicast or unspecified addresses"
                )
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
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
    hooks: Vec<std::sync::Arc<dyn RequestHook>>,
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
        hooks: Vec<std::sync::Arc<dyn RequestHook>>,
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
    fn is_idempotent(request: &reqwest::Request, operation: &str) -> bool {
        request.method() == Method::GET
            || request.method() == Method::HEAD
            || operation == "cancel_request"
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
        } = exchange;
        let policy = retry.as_ref().unwrap_or(&self.retry);
        let began = Instant::now();
        let idempotent = Self::is_idempotent(&request, operation);
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
            let body = read_capped(&mut response, self.max_body_bytes).await?;
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

impl reka_inference_api::Transport for ApiTransport {
    fn execute<'a>(
        &'a self,
        client: &'a reqwest::Client,
        request: reqwest::Request,
        operation_id: &'static str,
    ) -> BoxFuture<'a, reqwest::Result<reqwest::Response>> {
        Box::pin(async move {
            // The generated code can only take a reqwest error: send with a
            // reqwest-level timeout, streaming, and cap what it will read.
            let mut request = request;
            *request.timeout_mut() = Some(self.request_timeout);
            let exchange = Exchange {
                request,
                operation: operation_id,
                mode: Mode::Streaming,
                redirects: Redirects::SameOrigin,
                deadline: None,
                retry: None,
            };
            match self.send(client, exchange).await {
                Ok(Answer::Streaming(r)) => Ok(capped_response(r, self.max_body_bytes)),
                Ok(buffered) => Ok(buffered.into_response()),
                Err(Error::Transport(e)) => Err(e),
                // Limits and refusals: an answer the generated code reports
                // as unexpected, saying what happened.
                Err(other) => Ok(local_error_response(&other)),
            }
        })
    }
}

/// A 502 answer made here, for a limit hit under the generated client.
fn local_error_response(e: &Error) -> reqwest::Response {
    let body = serde_json::json!({"error": {"type": "client_error", "message": e.to_string()}});
    let mut response = http::Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    reqwest::Response::from(response)
}

/// `response` with a body that breaks off past `limit` bytes.
fn capped_response(response: reqwest::Response, limit: u64) -> reqwest::Response {
    use futures::StreamExt;
    let status = response.status();
    let version = response.version();
    let headers = response.headers().clone();
    let mut seen = 0u64;
    let body = response.bytes_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        seen = seen.saturating_add(chunk.len() as u64);
        if seen > limit {
            return Err(std::io::Error::other(format!(
                "the answer is larger than the {limit}-byte limit"
            )));
        }
        Ok(chunk)
    });
    let mut builder = http::Response::builder().status(status).version(version);
    if let Some(h) = builder.headers_mut() {
        *h = headers;
    }
    match builder.body(reqwest::Body::wrap_stream(body)) {
        Ok(r) => reqwest::Response::from(r),
        Err(_) => reqwest::Response::from(http::Response::new(Bytes::new())),
    }
}

/// Reads a body whole, refusing past `limit` bytes (without reading them
/// when `Content-Length` already says so).
async fn read_capped(
    response: &mut reqwest::Response,
    limit: u64,
) -> std::result::Result<Bytes, Failure> {
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(Failure::TooLarge);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(Failure::Transport)? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(Failure::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn is_transient(e: &reqwest::Error) -> bool {
    e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() || e.is_decode()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn downloads_never_reach_link_local_or_unspecified_addresses() {
        let strict = AddressPolicy { allow_local: false };
        let open = AddressPolicy { allow_local: true };
        for bad in [
            "http://169.254.169.254/latest/meta-data",
            "http://[fe80::1]/x",
            "http://0.0.0.0/x",
            "http://224.0.0.1/x",
            "http://[::ffff:169.254.169.254]/x",
            "http://255.255.255.255/x",
        ] {
            assert!(strict.check(&url(bad)).is_err(), "{bad}");
            assert!(open.check(&url(bad)).is_err(), "{bad}");
        }
        for local in [
            "http://127.0.0.1:9/x",
            "http://10.0.0.8/x",
            "http://localhost/x",
            "http://[::1]/x",
        ] {
            assert!(strict.check(&url(local)).is_err(), "{local}");
            assert!(open.check(&url(local)).is_ok(), "{local}");
        }
        assert!(strict.check(&url("https://cdn.example.com/a.png")).is_ok());
        assert!(strict.check(&url("https://93.184.216.34/a.png")).is_ok());
    }

    #[test]
    fn resolved_addresses_are_screened_too() {
        for never in [
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "fe80::1",
            "::ffff:169.254.1.1",
        ] {
            assert!(is_never_reachable(never.parse().unwrap()), "{never}");
        }
        for fine in [
            "127.0.0.1",
            "10.1.2.3",
            "93.184.216.34",
            "::1",
            "2001:db8::1",
        ] {
            assert!(!is_never_reachable(fine.parse().unwrap()), "{fine}");
        }
    }

    #[tokio::test]
    async fn the_resolver_keeps_ordinary_names() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let addrs: Vec<_> = GuardedResolver.resolve(name).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
        assert!(!addrs.is_empty());
    }

    #[test]
    fn local_downloads_follow_the_base_url() {
        assert!(AddressPolicy::for_base_url(&url("http://127.0.0.1:8787")).allow_local);
        assert!(AddressPolicy::for_base_url(&url("http://192.168.1.5:80")).allow_local);
        assert!(!AddressPolicy::for_base_url(&url("https://vision-agent.api.reka.ai")).allow_local);
    }
}
