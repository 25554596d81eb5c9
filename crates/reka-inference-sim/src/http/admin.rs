//! The admin API under `/_sim/` (no API key, not in the vendored spec):
//! stats, faults, reset, the clock, and the output files.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::faults::FaultConfig;
use crate::http::body::read_json;
use crate::http::error::ApiError;
use crate::jobs::Status;
use crate::outputs;
use crate::state::AppState;
use crate::stats::Stats;

/// `GET /_sim/stats`.
pub(crate) async fn stats(State(state): State<Arc<AppState>>) -> Json<Stats> {
    Json(state.stats())
}

fn faults_body(config: &FaultConfig) -> Json<Value> {
    Json(json!({ "spec": config.to_string(), "scopes": config }))
}

/// `GET /_sim/faults`: `{"spec": SPEC, "scopes": {...}}`.
pub(crate) async fn get_faults(State(state): State<Arc<AppState>>) -> Json<Value> {
    faults_body(&state.faults())
}

/// `PUT /_sim/faults`: the body is a SPEC string or a scope object; replaces
/// the whole configuration.
pub(crate) async fn put_faults(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let value = read_json(&headers, body, &state).await?;
    let config: FaultConfig = serde_json::from_value(value).map_err(|e| {
        let mut err = ApiError::new(StatusCode::BAD_REQUEST, "validation_error", e.to_string());
        err.param = Some("faults".into());
        err
    })?;
    state.set_faults(config.clone());
    Ok(faults_body(&config))
}

/// `POST /_sim/reset`: forgets jobs, idempotency keys, stats, faults and quotas.
pub(crate) async fn reset(State(state): State<Arc<AppState>>) -> Json<Value> {
    state.reset();
    Json(json!({ "reset": true }))
}

/// `GET /_sim/clock`: `{"manual": bool, "elapsed_seconds": f64}`, the
/// simulator's clock since it started.
pub(crate) async fn clock(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({
        "manual": state.clock.is_manual(),
        "elapsed_seconds": state.clock.now().as_secs_f64(),
    }))
}

/// `POST /_sim/advance` with `{"seconds": S}`: moves a manual clock forward
/// by S seconds (finite, >= 0) and answers as `GET /_sim/clock`; 409 when
/// the clock is not manual.
pub(crate) async fn advance(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let value = read_json(&headers, body, &state).await?;
    let by = value
        .get("seconds")
        .and_then(Value::as_f64)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| {
            ApiError::invalid(
                "seconds",
                &["body", "seconds"],
                "float_type",
                "the body must be {\"seconds\": S} with S a finite number >= 0",
            )
        })?;
    let now = state.advance_clock(by).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "conflict_error",
            "the simulator's clock is not manual (start it with --manual-clock)",
        )
    })?;
    Ok(Json(
        json!({"manual": true, "elapsed_seconds": now.as_secs_f64()}),
    ))
}

/// `GET /_sim/files/{request_id}/{name}`: a completed job's output file.
pub(crate) async fn file(
    State(state): State<Arc<AppState>>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let found = state.with_store(|store, now, done| {
        let idx = store.find_any(&id, now, done)?;
        let job = store.job(idx);
        if job.status != Status::Completed {
            return None;
        }
        outputs::file(
            state.catalog.models[job.lane].output_kind(),
            &job.input,
            job.image.as_ref(),
            &name,
        )
    });
    let (content_type, bytes) =
        found.ok_or_else(|| ApiError::not_found(format!("no file {name:?} for {id:?}")))?;
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        bytes,
    )
        .into_response())
}

/// `GET /_sim/blobs/{key}`: a completed job's output file under a
/// presigned-storage-style URL without an extension (the `infer` dialect);
/// the query string (`X-Amz-Signature`, ...) is not checked.
pub(crate) async fn blob(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let id = crate::dialect::blob_request_id(&key)
        .ok_or_else(|| ApiError::not_found(format!("no blob {key:?}")))?;
    let found = state.with_store(|store, now, done| {
        let idx = store.find_any(&id, now, done)?;
        let job = store.job(idx);
        if job.status != Status::Completed {
            return None;
        }
        let kind = state.catalog.models[job.lane].output_kind();
        outputs::file(
            kind,
            &job.input,
            job.image.as_ref(),
            outputs::file_name(kind)?,
        )
    });
    let (content_type, bytes) =
        found.ok_or_else(|| ApiError::not_found(format!("no blob {key:?}")))?;
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        bytes,
    )
        .into_response())
}

/// Any path no route matches.
pub(crate) async fn fallback(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route for {method} {}", uri.path()))
}
