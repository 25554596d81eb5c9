//! Reading JSON request bodies: the size limit (413,
//! [`crate::SimConfig::max_body_bytes`]), the content type and the syntax,
//! each with its own clear 4xx.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;

use crate::http::error::ApiError;
use crate::state::AppState;

/// How far past the limit a body is still read (and thrown away), so that
/// a client that sends it all before reading gets the 413 rather than a
/// reset connection; a body declared longer than that is answered at once.
const DRAIN_PAST_LIMIT: usize = 32 * 1024 * 1024;

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
        format!("request body exceeds the limit of {limit} bytes"),
    )
}

/// Reads the body within the body read timeout (else `408`, connection
/// closed), checks that it is declared as JSON and parses it. A body over
/// the limit is a 413, never kept in memory past the limit: see
/// [`read_json_within`].
pub(crate) async fn read_json(
    headers: &HeaderMap,
    body: Body,
    state: &AppState,
) -> Result<Value, ApiError> {
    let timeout = state.limits.body_read_timeout;
    tokio::time::timeout(timeout, read_json_within(headers, body, state.max_body))
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request body did not arrive within {} s",
                    timeout.as_secs_f64()
                ),
            )
            .with_header(header::CONNECTION, HeaderValue::from_static("close")))
        })
}

/// Reads the body keeping at most `limit` bytes. A body over `limit` is a
/// 413: past the limit it is read and thrown away, up to
/// [`DRAIN_PAST_LIMIT`] more bytes; one declared longer than that is
/// refused before it is read.
async fn read_json_within(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Value, ApiError> {
    let drain_limit = limit.saturating_add(DRAIN_PAST_LIMIT);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > drain_limit as u64) {
        return Err(too_large(limit));
    }
    let mut body = body;
    let mut buf = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::bad_body("body_read", format!("could not read the request body: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            total = total.saturating_add(data.len());
            if total <= limit {
                buf.extend_from_slice(&data);
            } else {
                // Past the limit nothing more is kept.
                buf = Vec::new();
                if total > drain_limit {
                    break;
                }
            }
        }
    }
    if total > limit {
        return Err(too_large(limit));
    }
    if !is_json(headers) {
        return Err(ApiError::bad_body(
            "content_type",
            "the request body must be JSON, sent with `Content-Type: application/json`",
        ));
    }
    serde_json::from_slice(&buf)
        .map_err(|e| ApiError::bad_body("json_invalid", format!("malformed JSON body: {e}")))
}
