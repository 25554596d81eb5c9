//! The error envelope `{"error": {"type", "message", "param"?, "details"?}}`
//! and the one type every handler fails with.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An API error, rendered as the documented envelope.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) kind: &'static str,
    pub(crate) message: String,
    pub(crate) param: Option<String>,
    pub(crate) details: Option<Vec<Value>>,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// Rendered as FastAPI's `{"detail": details}` instead of the envelope.
    pub(crate) fastapi_detail: bool,
}

impl ApiError {
    /// An error with a status, a type and a message.
    pub(crate) fn new(
        status: StatusCode,
        kind: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
            param: None,
            details: None,
            headers: Vec::new(),
            fastapi_detail: false,
        }
    }

    /// 400 `validation_error` about one field, with one FastAPI-style detail
    /// `{"loc", "msg", "type"}`.
    pub(crate) fn invalid(
        param: &str,
        loc: &[&str],
        detail_type: &str,
        message: impl Into<String>,
    ) -> ApiError {
        let message = message.into();
        let mut e = ApiError::new(StatusCode::BAD_REQUEST, "validation_error", message.clone());
        e.param = Some(param.to_string());
        e.details = Some(vec![
            json!({"loc": loc, "msg": message, "type": detail_type}),
        ]);
        e
    }

    /// 400 `validation_error` about the body as a whole.
    pub(crate) fn bad_body(detail_type: &str, message: impl Into<String>) -> ApiError {
        let message = message.into();
        let mut e = ApiError::new(StatusCode::BAD_REQUEST, "validation_error", message.clone());
        e.details = Some(vec![
            json!({"loc": ["body"], "msg": message, "type": detail_type}),
        ]);
        e
    }

    /// 422 with FastAPI's body `{"detail": [...]}`: an `input` that does
    /// not match its endpoint's schema, in every dialect.
    pub(crate) fn unprocessable(details: Vec<Value>) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            "input failed validation against the model's schema",
        );
        e.param = Some("input".into());
        e.details = Some(details);
        e.fastapi_detail = true;
        e
    }

    /// 404 `not_found_error`.
    pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found_error", message)
    }

    /// Adds a response header.
    pub(crate) fn with_header(mut self, name: HeaderName, value: HeaderValue) -> ApiError {
        self.headers.push((name, value));
        self
    }

    /// The envelope as JSON.
    pub(crate) fn body(&self) -> Value {
        if self.fastapi_detail {
            return json!({ "detail": self.details.clone().unwrap_or_default() });
        }
        let mut error = json!({"type": self.kind, "message": self.message});
        if let Some(p) = &self.param {
            error["param"] = json!(p);
        }
        if let Some(d) = &self.details {
            error["details"] = json!(d);
        }
        json!({ "error": error })
    }
}

/// The error type of a status code the simulator answers without a handler
/// choosing one (framework rejections, faults).
pub(crate) fn kind_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 415 | 422 => "validation_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        405 => "invalid_request_error",
        408 => "request_timeout",
        409 => "conflict_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        _ => "server_error",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut resp = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        for (name, value) in self.headers {
            resp.headers_mut().insert(name, value);
        }
        resp
    }
}
