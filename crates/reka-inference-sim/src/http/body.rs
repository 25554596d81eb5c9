//! Reading JSON request bodies: the size limit (413), the content type and
//! the syntax, each with its own clear 4xx.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;

use crate::http::error::ApiError;

/// Largest accepted request body: 1 MiB.
pub(crate) const MAX_BODY: usize = 1024 * 1024;
/// Bodies up to this size are read to the end even when too large, so the
/// client receives the 413 instead of a reset connection.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

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

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
        format!("request body exceeds the limit of {MAX_BODY} bytes"),
    )
}

/// Reads the whole body (at most [`MAX_BODY`] bytes), checks that it is
/// declared as JSON and parses it.
pub(crate) async fn read_json(headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT) {
        return Err(too_large());
    }
    let mut body = body;
    let mut buf = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::bad_body("body_read", format!("could not read the request body: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            total += data.len();
            if total <= MAX_BODY {
                buf.extend_from_slice(&data);
            } else if total > DRAIN_LIMIT {
                break;
            }
        }
    }
    if total > MAX_BODY {
        return Err(too_large());
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
