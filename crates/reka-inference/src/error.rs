//! The one error type of the crate, and how server answers become it.
//!
//! Every fallible call returns [`Error`]. An error from the API keeps what
//! the server said (status, `type`, `message`, `param`, `details`, the
//! `X-Request-ID` header and the raw body), whichever of the two documented
//! shapes it came in: Reka's `{"error": {...}}` envelope or FastAPI's 422
//! `{"detail": [...]}`. [`Error::is_retryable`] agrees with the retry policy.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use reka_inference_api::RequestStatus as JobStatus;
use reka_inference_api::types::{JobError, ResultResponse};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

#[cfg(doc)]
use crate::SubmitOptions;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when calling the inference API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error status.
    #[error("{0}")]
    Api(Box<ApiError>),

    /// The server rate-limited the key (429) and the wait it asked for does
    /// not fit the caller's deadline or the retry policy's maximum.
    #[error("rate limited{}: {}", retry_after_text(*.retry_after), .api.message)]
    RateLimited {
        /// How long the server asked to wait, from `Retry-After`.
        retry_after: Option<Duration>,
        /// The 429 answer itself.
        api: Box<ApiError>,
    },

    /// A wait reached its deadline before the job finished.
    #[error("timed out after {elapsed:.1?} waiting for job {request_id} (last status: {}){}",
        .last_status.as_ref().map_or("none", |s| s.as_str()),
        .disagreement.as_ref().map_or(String::new(), |d| format!("; the server contradicted itself: {d}")))]
    Timeout {
        /// The request that was being waited for.
        request_id: String,
        /// The last status seen, if any.
        last_status: Option<JobStatus>,
        /// How long the wait lasted.
        elapsed: Duration,
        /// Whether a best-effort cancel was sent on the deadline.
        cancel_sent: bool,
        /// What the server said that did not add up, when the job looked
        /// finished but its record disagreed (another request's id, a
        /// record still running after a terminal status).
        disagreement: Option<String>,
        /// How many looks at the job were made (answered or not): 0 when
        /// the wait never looked (a webhook wait whose deadline came
        /// before its first safety-net look).
        looks: u32,
    },

    /// The server kept contradicting itself about a job (a `COMPLETED`
    /// status with a record still `IN_PROGRESS` and no output, a record
    /// naming another request) for longer than a lagging replica would:
    /// the wait stopped trusting it. The job may well be running or done;
    /// its state cannot be told from this server's answers.
    #[error("the server contradicted itself about job {request_id} for {lasted:.0?}: {detail}")]
    Inconsistent {
        /// The request that was being waited for.
        request_id: String,
        /// Both answers: what the status said and what the record said.
        detail: String,
        /// How long the contradiction lasted.
        lasted: Duration,
    },

    /// The job finished with status `FAILED`.
    #[error("job {request_id} failed: {}", job_error_text(.error))]
    JobFailed {
        /// The failed request.
        request_id: String,
        /// The server's `error` object, if it sent one (boxed: errors stay
        /// small to move).
        error: Option<Box<JobError>>,
        /// The whole final record.
        record: Box<ResultResponse>,
    },

    /// The job was cancelled.
    #[error("job {request_id} was cancelled")]
    JobCancelled {
        /// The cancelled request.
        request_id: String,
    },

    /// The request never got a whole HTTP answer: the connection failed,
    /// TLS failed, or the body broke off.
    #[error("transport error: {}", transport_text(.0))]
    Transport(#[source] reqwest::Error),

    /// One call did not finish in time: the server did not answer within
    /// the per-request timeout
    /// ([`ClientBuilder::request_timeout`](crate::ClientBuilder::request_timeout)),
    /// or the caller's deadline
    /// came first, also while waiting to retry.
    #[error("`{operation}` got no answer in time ({})",
        if *.by_deadline { "the deadline was reached".to_owned() } else { format!("no answer within {:.1?}", .waited) })]
    RequestTimeout {
        /// The operation that was sent (`get_status`, `submit`, `download`, ...).
        operation: String,
        /// How long the call lasted.
        waited: Duration,
        /// Whether the caller's deadline ended it, rather than the
        /// per-request timeout.
        by_deadline: bool,
    },

    /// An answer was larger than the client is willing to hold in memory
    /// ([`ClientBuilder::max_body_bytes`](crate::ClientBuilder::max_body_bytes)).
    /// Nothing past the limit was read.
    #[error("the answer to `{operation}` is larger than the {limit}-byte limit")]
    BodyTooLarge {
        /// The operation whose answer was too large.
        operation: String,
        /// The limit, in bytes.
        limit: u64,
    },

    /// A submit whose outcome is unknown: the job may or may not have been
    /// created (the connection broke, the deadline came, the server failed
    /// after accepting it). Submit again with the same
    /// [`idempotency_key`](SubmitOptions::idempotency_key): the service then
    /// returns the original job instead of creating a second one.
    #[error(
        "the submit may or may not have created a job (idempotency key {idempotency_key}): {source}"
    )]
    SubmitOutcomeUnknown {
        /// The key the submit was sent with; reuse it to replay the submit.
        idempotency_key: String,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },

    /// The server answered, but the body is not what the API documents.
    #[error("could not decode the {status} response: {message}")]
    Decode {
        /// The HTTP status of the answer.
        status: StatusCode,
        /// What did not parse.
        message: String,
        /// The body as received.
        raw_body: Bytes,
    },

    /// A webhook URL does not reach its receiver
    /// (`WebhookReceiver::check_url`, feature `webhooks`): deliveries sent
    /// there would be lost, and waits would rely on their safety net.
    #[error("the webhook URL {url} does not reach this receiver: {reason}")]
    WebhookUnreachable {
        /// The URL that was tried.
        url: String,
        /// What happened instead.
        reason: String,
    },

    /// The input given to a call is unusable; nothing was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The client is misconfigured (base URL, key); nothing was sent.
    #[error("configuration error: {0}")]
    Config(String),

    /// Writing a download to disk failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),

    /// A batch's journal could not be read or written. The batch stopped
    /// there; what the journal holds is intact, and the next run resumes
    /// from it.
    #[error("batch journal: {0}")]
    Journal(String),

    /// A line of a shared batch journal (`PostgresJournal`) passed to
    /// another worker: this worker's lease on it lapsed (it stopped
    /// renewing it, cut off or paused) and another claimed it, so this
    /// worker's write was refused rather than overwrite the new owner's
    /// state. A batch drops the line and goes on with the others.
    #[error("batch journal: line {key:?} passed to another worker (its lease lapsed); not written")]
    LeaseLost {
        /// The line's key.
        key: String,
    },

    /// A batch with a budget met an endpoint whose price it cannot know:
    /// no job of it has reported one, the model list gives none, and no
    /// estimate was given. Nothing was submitted for it.
    #[error(
        "a budget needs the price of each job, and none is known for {endpoint} ({why}): \
         give an estimate (BatchOptions::estimated_price_usd; the CLI's --estimate-usd)"
    )]
    PriceUnknown {
        /// The endpoint.
        endpoint: String,
        /// Why no price is known, in words.
        why: String,
    },
}

/// A transport error's words, with its causes: reqwest's own `Display`
/// says only "error sending request" and hides why.
fn transport_text(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

fn retry_after_text(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!(" (retry after {}s)", d.as_secs()),
        None => String::new(),
    }
}

fn job_error_text(e: &Option<Box<JobError>>) -> String {
    match e.as_deref() {
        Some(e) => match (&e.type_, &e.message) {
            (Some(t), Some(m)) => format!("{t}: {m}"),
            (None, Some(m)) => m.clone(),
            (Some(t), None) => t.clone(),
            (None, None) => "no details".into(),
        },
        None => "no details".into(),
    }
}

impl Error {
    /// Whether trying the same call again may succeed: transport errors,
    /// 408, 429, 502, 503, 504, and a body that did not decode on a
    /// success status. The client's retry policy retries exactly these
    /// (a 429 only when its `Retry-After` fits).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(_) | Error::RequestTimeout { .. } => true,
            Error::RateLimited { .. } => true,
            Error::SubmitOutcomeUnknown { source, .. } => source.is_retryable(),
            Error::Api(api) => is_retryable_status(api.status),
            Error::Decode { status, .. } => status.is_success(),
            _ => false,
        }
    }

    /// The status a service built on this client should answer its own
    /// caller with, when a call to the inference API failed: the caller's
    /// fault stays a 4xx (bad input 422 or 400, an unknown job 404, a rate
    /// limit 429), the upstream's or this client's becomes a 5xx (the
    /// service failed or sent nonsense 502, no answer in time 504, a
    /// misconfigured key or client 500).
    ///
    /// | error | status |
    /// |---|---|
    /// | [`Api`](Error::Api) 400, 404, 409, 413, 422 | the same |
    /// | [`Api`](Error::Api) 401, 403 (this service's key) | 502 |
    /// | [`Api`](Error::Api) other 4xx, 5xx; [`Transport`](Error::Transport), [`Decode`](Error::Decode), [`BodyTooLarge`](Error::BodyTooLarge) | 502 |
    /// | [`RateLimited`](Error::RateLimited) | 429 |
    /// | [`RequestTimeout`](Error::RequestTimeout), [`Timeout`](Error::Timeout) | 504 |
    /// | [`SubmitOutcomeUnknown`](Error::SubmitOutcomeUnknown) | its cause's |
    /// | [`JobFailed`](Error::JobFailed) | 502 (the generation failed upstream) |
    /// | [`Inconsistent`](Error::Inconsistent) | 502 (the service contradicted itself) |
    /// | [`JobCancelled`](Error::JobCancelled) | 409 |
    /// | [`InvalidInput`](Error::InvalidInput) | 400 |
    /// | [`Config`](Error::Config), [`PriceUnknown`](Error::PriceUnknown) (a budget without a price), [`WebhookUnreachable`](Error::WebhookUnreachable), [`Io`](Error::Io), [`Journal`](Error::Journal), [`LeaseLost`](Error::LeaseLost) | 500 |
    ///
    /// ```no_run
    /// use axum::Json;
    /// use axum::extract::State;
    /// use axum::http::StatusCode;
    /// use reka_inference::Client;
    /// use serde_json::{Value, json};
    ///
    /// /// POST /thumbnails {"prompt": ...}: one image, or the error as the
    /// /// status a caller of this service should see.
    /// async fn thumbnail(
    ///     State(client): State<Client>,
    ///     Json(input): Json<Value>,
    /// ) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    ///     match client.run("nano-banana/text-to-image", input).await {
    ///         Ok(done) => Ok(Json(done.output)),
    ///         Err(e) => Err((
    ///             e.http_status(),
    ///             Json(json!({"error": e.to_string(), "retryable": e.is_retryable()})),
    ///         )),
    ///     }
    /// }
    /// # let _ = axum::Router::<Client>::new().route("/thumbnails", axum::routing::post(thumbnail));
    /// ```
    pub fn http_status(&self) -> StatusCode {
        match self {
            Error::Api(api) => match api.status.as_u16() {
                400 | 404 | 409 | 413 | 422 => api.status,
                _ => StatusCode::BAD_GATEWAY,
            },
            Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Timeout { .. } | Error::RequestTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Error::SubmitOutcomeUnknown { source, .. } => source.http_status(),
            Error::JobFailed { .. }
            | Error::Inconsistent { .. }
            | Error::Transport(_)
            | Error::Decode { .. }
            | Error::BodyTooLarge { .. } => StatusCode::BAD_GATEWAY,
            Error::JobCancelled { .. } => StatusCode::CONFLICT,
            Error::InvalidInput(_) => StatusCode::BAD_REQUEST,
            Error::Config(_)
            | Error::PriceUnknown { .. }
            | Error::WebhookUnreachable { .. }
            | Error::Io(_)
            | Error::Journal(_)
            | Error::LeaseLost { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The HTTP status of the answer this error came from, if any.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api(api) | Error::RateLimited { api, .. } => Some(api.status),
            Error::Decode { status, .. } => Some(*status),
            Error::Transport(e) => e.status(),
            Error::SubmitOutcomeUnknown { source, .. } => source.status(),
            _ => None,
        }
    }

    /// The idempotency key of a submit whose outcome is unknown: submit
    /// again with it to get the original job rather than a second one.
    pub fn idempotency_key(&self) -> Option<&str> {
        match self {
            Error::SubmitOutcomeUnknown {
                idempotency_key, ..
            } => Some(idempotency_key),
            _ => None,
        }
    }

    /// The API error, for errors that carry one.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Error::Api(api) | Error::RateLimited { api, .. } => Some(api),
            Error::SubmitOutcomeUnknown { source, .. } => source.api_error(),
            _ => None,
        }
    }

    /// The request id of the job involved, for job errors.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Timeout { request_id, .. }
            | Error::Inconsistent { request_id, .. }
            | Error::JobFailed { request_id, .. }
            | Error::JobCancelled { request_id } => Some(request_id),
            _ => None,
        }
    }
}

/// The statuses the retry policy treats as passing.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 502 | 503 | 504)
}

/// An error answer of the API, as the server sent it.
#[derive(Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The error `type` (`validation_error`, `not_found_error`, ...), or one
    /// derived from the status when the body had none.
    pub kind: String,
    /// The human-readable message.
    pub message: String,
    /// The field the error is about, when the server names one.
    pub param: Option<String>,
    /// Per-field problems, as sent.
    pub details: Vec<Value>,
    /// The `X-Request-ID` header: quote it to Reka support.
    pub x_request_id: Option<String>,
    /// The body exactly as received.
    pub raw_body: Bytes,
}

impl ApiError {
    /// Reads an error answer in either documented shape; anything else
    /// keeps the body as the message.
    pub fn from_parts(status: StatusCode, headers: &HeaderMap, raw_body: Bytes) -> ApiError {
        let x_request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let parsed: Option<Value> = serde_json::from_slice(&raw_body).ok();
        let mut error = ApiError {
            status,
            kind: default_kind(status).to_owned(),
            message: String::new(),
            param: None,
            details: Vec::new(),
            x_request_id,
            raw_body: raw_body.clone(),
        };
        match parsed {
            Some(Value::Object(body)) if body.get("error").is_some_and(Value::is_object) => {
                let e = &body["error"];
                // An empty `type` says nothing: keep the one the status implies.
                // `type` in Reka's inference envelope, `code` on its Vision
                // pages and in OpenAI-style bodies.
                if let Some(t) = ["type", "code"].iter().find_map(|k| {
                    e.get(*k)
                        .and_then(Value::as_str)
                        .filter(|t| !t.trim().is_empty())
                }) {
                    error.kind = t.to_owned();
                }
                error.message = e
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                error.param = e.get("param").and_then(Value::as_str).map(str::to_owned);
                error.details = e
                    .get("details")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
            }
            Some(Value::Object(body)) if body.get("detail").is_some() => {
                // FastAPI's own validation answer.
                error.kind = "validation_error".into();
                match &body["detail"] {
                    Value::Array(items) => {
                        let msgs: Vec<String> = items.iter().map(fastapi_item_text).collect();
                        error.message = msgs.join("; ");
                        error.param = items.first().and_then(fastapi_param);
                        error.details = items.clone();
                    }
                    Value::String(s) => error.message = s.clone(),
                    other => error.message = other.to_string(),
                }
            }
            _ => {
                let text = String::from_utf8_lossy(&raw_body);
                error.message = truncate(text.trim(), 500);
            }
        }
        if error.message.is_empty() {
            error.message = status
                .canonical_reason()
                .unwrap_or("unknown error")
                .to_owned();
        }
        error
    }
}

fn fastapi_param(item: &Value) -> Option<String> {
    let loc = item.get("loc")?.as_array()?;
    // `["body", "input", "prompt"]` names `input.prompt`.
    let parts: Vec<String> = loc
        .iter()
        .skip_while(|p| matches!(p.as_str(), Some("body" | "query" | "path" | "header")))
        .map(|p| match p {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("."))
}

fn fastapi_item_text(item: &Value) -> String {
    let msg = item.get("msg").and_then(Value::as_str).unwrap_or("invalid");
    match fastapi_param(item) {
        Some(p) => format!("{p}: {msg}"),
        None => msg.to_owned(),
    }
}

/// The longest server message `Display` and `Debug` show, in bytes.
const MAX_DISPLAYED_MESSAGE: usize = 2000;

/// `s` cut to at most `max` bytes on a character boundary, with `...` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

fn default_kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "validation_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        409 => "conflict_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        s if s >= 500 => "server_error",
        _ => "api_error",
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The message is the server's: keep what is printed bounded (the
        // whole body stays in `raw_body`).
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            truncate(&self.kind, 100),
            truncate(&self.message, MAX_DISPLAYED_MESSAGE)
        )?;
        if let Some(p) = &self.param {
            write!(f, " (param: {})", truncate(p, 200))?;
        }
        if let Some(id) = &self.x_request_id {
            write!(f, " [x-request-id: {}]", truncate(id, 200))?;
        }
        Ok(())
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("status", &self.status)
            .field("kind", &self.kind)
            .field("message", &truncate(&self.message, MAX_DISPLAYED_MESSAGE))
            .field("param", &self.param)
            .field("details", &self.details)
            .field("x_request_id", &self.x_request_id)
            .field(
                "raw_body",
                &truncate(
                    &String::from_utf8_lossy(&self.raw_body),
                    MAX_DISPLAYED_MESSAGE,
                ),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests;
