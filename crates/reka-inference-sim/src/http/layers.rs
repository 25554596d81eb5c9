//! Middleware: the outer layer every response passes (faults on API
//! operations and on file downloads, the error envelope for framework
//! rejections, stats, `X-Request-ID`) and the API
//! guard of the `/v2` routes (authentication and rate limits: the per-key
//! quota first, then, for submits, the per-key token bucket).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::BodyExt;

use crate::catalog::CAPABILITIES;
use crate::faults::{DRIP_CHUNK_BYTES, EXPIRED_STATUS, Fault, FileFault};
use crate::http::error::{ApiError, kind_for};
use crate::ratelimit::{Admission, Quota, Throttled};
use crate::state::AppState;

/// Response extension telling the server to close the connection instead of
/// answering (the `drop` and `lost` faults).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropConnection;

/// The authenticated caller: the API key the request used.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) Arc<str>);

/// The operation id of an API path; `None` for the admin and file routes
/// (not counted, no faults), `Some("other")` for unknown paths.
pub(crate) fn classify(path: &str) -> Option<&'static str> {
    if path.starts_with("/_sim/") {
        return None;
    }
    let Some(rest) = path.strip_prefix("/v2/inference/") else {
        return Some("other");
    };
    let segs: Vec<&str> = rest.split('/').collect();
    Some(match segs.as_slice() {
        ["models"] => "list_models",
        ["requests"] => "list_requests",
        ["requests", _] => "get_result",
        ["requests", _, "status"] => "get_status",
        ["requests", _, "cancel"] => "cancel_request",
        ["chat", "completions"] => "create_chat_completion",
        [_, cap] if CAPABILITIES.contains(cap) => "submit",
        _ => "other",
    })
}

/// Whether `path` downloads an output file (the `files` fault scope).
pub(crate) fn is_download(path: &str) -> bool {
    path.starts_with("/_sim/files/") || path.starts_with("/_sim/blobs/")
}

/// The outermost layer: injects faults into API operations and file
/// downloads, wraps any
/// non-JSON error in the envelope, counts the answer, adds `X-Request-ID`.
pub(crate) async fn outer(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let op = classify(req.uri().path());
    let mut resp = match op {
        Some(op) if op != "other" => with_faults(&state, op, req, next).await,
        None if is_download(req.uri().path()) => with_file_faults(&state, req, next).await,
        _ => next.run(req).await,
    };
    let dropped = resp.extensions().get::<DropConnection>().is_some();
    if !dropped {
        resp = envelope(resp).await;
    }
    if let Some(op) = op {
        let status = if dropped {
            "dropped".to_string()
        } else {
            resp.status().as_u16().to_string()
        };
        state.stats_mut().record_request(op, &status);
    }
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        resp.headers_mut().insert("x-request-id", id);
    }
    resp
}

fn drop_connection() -> Response {
    let mut resp = StatusCode::INTERNAL_SERVER_ERROR.into_response();
    resp.extensions_mut().insert(DropConnection);
    resp
}

async fn with_faults(state: &AppState, op: &str, req: Request, next: Next) -> Response {
    let decision = state.decide_fault(op);
    if !decision.latency.is_zero() {
        state.stats_mut().record_fault("latency");
        tokio::time::sleep(decision.latency).await;
    }
    let Some(fault) = decision.fault else {
        return next.run(req).await;
    };
    let injected = |state: &AppState| state.stats_mut().record_fault(fault.stats_key());
    match fault {
        Fault::Drop => {
            injected(state);
            drop_connection()
        }
        Fault::Lost => {
            let resp = next.run(req).await;
            if !resp.status().is_success() {
                return resp;
            }
            injected(state);
            drop_connection()
        }
        Fault::Status(code) => {
            injected(state);
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            ApiError::new(status, "server_error", format!("simulated {code} fault")).into_response()
        }
        Fault::RateLimited { retry_after } => {
            injected(state);
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "simulated 429 fault",
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after))
            .into_response()
        }
        Fault::Malformed => {
            injected(state);
            let resp = next.run(req).await;
            let (mut parts, body) = resp.into_parts();
            let bytes = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            // Half of a JSON document is never a JSON document; `{"` covers empty bodies.
            let cut = if bytes.len() >= 2 {
                bytes.slice(..bytes.len() / 2)
            } else {
                bytes::Bytes::from_static(b"{\"")
            };
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Response::from_parts(parts, Body::from(cut))
        }
    }
}

/// The `files` scope: latency before the headers, then at most one fault
/// instead of the file, else the handler's answer, dripped when configured.
async fn with_file_faults(state: &AppState, req: Request, next: Next) -> Response {
    let decision = state.decide_file_fault();
    if !decision.latency.is_zero() {
        state.stats_mut().record_fault("files_latency");
        tokio::time::sleep(decision.latency).await;
    }
    if let Some(fault) = decision.fault {
        state.stats_mut().record_fault(fault.stats_key());
        return match fault {
            FileFault::Drop => drop_connection(),
            FileFault::Status(code) => {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                ApiError::new(
                    status,
                    "server_error",
                    format!("simulated files:{code} fault"),
                )
                .into_response()
            }
            FileFault::Expired => ApiError::new(
                StatusCode::from_u16(EXPIRED_STATUS).unwrap_or(StatusCode::GONE),
                "not_found_error",
                "this download URL has expired (simulated files:expired fault)",
            )
            .into_response(),
        };
    }
    let resp = next.run(req).await;
    if decision.drip.is_zero() {
        return resp;
    }
    state.stats_mut().record_fault("files_drip");
    drip(resp, decision.drip).await
}

/// Sends `resp`'s body in pieces of [`DRIP_CHUNK_BYTES`], the first at once
/// and each later one after `pause`, with a `Content-Length` announcing the
/// whole (so a client cut off mid-way can tell the body is incomplete).
async fn drip(resp: Response, pause: Duration) -> Response {
    let (mut parts, body) = resp.into_parts();
    // The handlers' bodies are in memory: collecting cannot fail.
    let mut rest = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(rest.len()));
    let mut pieces: Vec<Bytes> = Vec::new();
    while !rest.is_empty() {
        let n = rest.len().min(DRIP_CHUNK_BYTES);
        pieces.push(rest.split_to(n));
    }
    let stream =
        futures::stream::iter(pieces.into_iter().enumerate()).then(move |(i, piece)| async move {
            if i > 0 {
                tokio::time::sleep(pause).await;
            }
            Ok::<Bytes, Infallible>(piece)
        });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// Rewrites an error response that is not JSON (an axum rejection, a 405)
/// into the documented envelope, keeping its status and headers.
async fn envelope(resp: Response) -> Response {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if resp.status().as_u16() < 400 || is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = match http_body_util::Limited::new(body, 64 * 1024)
        .collect()
        .await
    {
        Ok(c) => String::from_utf8_lossy(&c.to_bytes()).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        parts
            .status
            .canonical_reason()
            .unwrap_or("error")
            .to_string()
    } else {
        text
    };
    let body = ApiError::new(parts.status, kind_for(parts.status), message)
        .body()
        .to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

/// The key a request presents: `X-Api-Key`, else `Authorization: Bearer`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(k) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(k.trim());
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn quota_headers(headers: &mut HeaderMap, q: Quota) {
    headers.insert("x-ratelimit-requests-limit", HeaderValue::from(q.limit));
    headers.insert(
        "x-ratelimit-requests-remaining",
        HeaderValue::from(q.remaining),
    );
    let reset = match q.reset_millis {
        Some(ms) => HeaderValue::from_str(&format!("{}.{:03}", ms / 1000, ms % 1000))
            .unwrap_or_else(|_| HeaderValue::from(q.reset_secs)),
        None => HeaderValue::from(q.reset_secs),
    };
    headers.insert("x-ratelimit-requests-reset", reset);
}

/// Authenticates `/v2` requests and applies the per-key quota.
pub(crate) async fn api_guard(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let caller = match presented_key(req.headers()) {
        None => {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "missing API key: send `X-Api-Key: <key>` or `Authorization: Bearer <key>`",
            )
            .into_response();
        }
        Some(k) => match state.keys.iter().find(|known| &***known == k) {
            Some(known) => known.clone(),
            None => {
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "authentication_error",
                    "invalid API key",
                )
                .into_response();
            }
        },
    };
    // The submit bucket is asked only for submits, and only once the quota
    // let the request through; a submit the bucket refuses is not counted
    // against the quota (both decided under the quota's lock).
    let submit = *req.method() == Method::POST && classify(req.uri().path()) == Some("submit");
    let bucket = state.submit_rate.as_ref().filter(|_| submit);
    let now = state.clock.now();
    let admission = state.rate.admit(&caller, now, || match bucket {
        Some(b) => b.take(&caller, now).map(Some),
        None => Ok(None),
    });
    req.extensions_mut().insert(Caller(caller));
    match admission {
        Admission::Allowed(quota, bucket) => {
            let mut resp = next.run(req).await;
            // On a submit the bucket's figures win: they are the limit a bulk
            // client meets first.
            if let Some(q) = bucket.or(quota) {
                quota_headers(resp.headers_mut(), q);
            }
            resp
        }
        Admission::QuotaSpent(q) => {
            state.stats_mut().rate_limited += 1;
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                format!(
                    "rate limit of {} requests per window exceeded; retry in {} s",
                    q.limit, q.reset_secs
                ),
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from(q.reset_secs))
            .into_response();
            quota_headers(resp.headers_mut(), q);
            resp
        }
        Admission::Refused(Throttled { quota, retry_after }) => {
            state.stats_mut().submit_rate_limited += 1;
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                format!(
                    "submit rate limit exceeded (burst of {} submits); retry in {retry_after} s",
                    quota.limit
                ),
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after))
            .into_response();
            quota_headers(resp.headers_mut(), quota);
            resp
        }
    }
}
