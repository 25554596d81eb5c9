//! The request-tracking operations: status, result, cancel and list.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::http::error::ApiError;
use crate::http::layers::Caller;
use crate::http::query;
use crate::jobs::Status;
use crate::state::AppState;

fn unknown(id: &str) -> ApiError {
    ApiError::not_found(format!("no request {id:?} for this API key"))
}

/// `GET /v2/inference/requests/{request_id}/status[?with_logs=true]`.
pub(crate) async fn get_status(
    State(state): State<Arc<AppState>>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let pairs = query::pairs(raw.as_deref());
    let with_logs = match query::last(&pairs, "with_logs") {
        Some(v) => query::boolean("with_logs", v)?,
        None => false,
    };
    let view = state.view();
    state.with_store(|store, now, done| {
        let idx = store
            .find(&caller, &id, now, done)
            .ok_or_else(|| unknown(&id))?;
        let body = view.status(store, idx, with_logs, now);
        Ok(polled(&state, body))
    })
}

/// `GET /v2/inference/requests/{request_id}`: the record, `output: null` until done.
pub(crate) async fn get_result(
    State(state): State<Arc<AppState>>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let view = state.view();
    state.with_store(|store, now, done| {
        let idx = store
            .find(&caller, &id, now, done)
            .ok_or_else(|| unknown(&id))?;
        Ok(polled(&state, view.result(store.job(idx))))
    })
}

/// A status or result body with the HTTP status the dialect answers it with.
fn polled(state: &AppState, body: Value) -> (StatusCode, Json<Value>) {
    let code = state
        .dialect
        .poll_status(body["status"].as_str().unwrap_or_default());
    (code, Json(body))
}

/// `POST /v2/inference/requests/{request_id}/cancel`: queued or running jobs
/// become `CANCELLED` (a running one after the dialect's delay, meanwhile
/// still `IN_PROGRESS`); finished ones are returned unchanged.
pub(crate) async fn cancel_request(
    State(state): State<Arc<AppState>>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let view = state.view();
    let record = state.with_store(|store, now, done| {
        let idx = store
            .find(&caller, &id, now, done)
            .ok_or_else(|| unknown(&id))?;
        let delay = state.dialect.cancel_delay(|secs| state.clock.wall(secs));
        store.cancel(idx, now, delay, done);
        Ok::<_, ApiError>(view.result(store.job(idx)))
    })?;
    state.wake.notify_one();
    Ok(Json(record))
}

/// The filters and page of a list call.
struct ListQuery {
    endpoint_id: Option<String>,
    capability: Option<String>,
    model_id: Option<String>,
    status: Option<Status>,
    start: Option<chrono::DateTime<chrono::Utc>>,
    end: Option<chrono::DateTime<chrono::Utc>>,
    payloads: bool,
    limit: usize,
    offset: usize,
}

fn parse_list(raw: Option<&str>) -> Result<ListQuery, ApiError> {
    let pairs = query::pairs(raw);
    let text = |name: &str| query::last(&pairs, name).map(str::to_string);
    let status = match query::last(&pairs, "status") {
        None => None,
        Some("CANCELED") => Some(Status::Cancelled),
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            let known: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::invalid(
                "status",
                &["query", "status"],
                "enum",
                format!("status must be one of {}", known.join(", ")),
            )
        })?),
    };
    // `expand` is a list of free strings in the spec (FastAPI's
    // `list[str]`): values this server does not know expand nothing.
    let payloads = pairs
        .iter()
        .filter(|(k, _)| k == "expand")
        .flat_map(|(_, v)| v.split(','))
        .any(|value| value.trim() == "payloads");
    Ok(ListQuery {
        endpoint_id: text("endpoint_id"),
        capability: text("capability"),
        model_id: text("model_id"),
        status,
        start: query::last(&pairs, "start")
            .map(|v| query::datetime("start", v))
            .transpose()?,
        end: query::last(&pairs, "end")
            .map(|v| query::datetime("end", v))
            .transpose()?,
        payloads,
        limit: query::last(&pairs, "limit")
            .map(|v| query::integer("limit", v, 1, 100))
            .transpose()?
            .unwrap_or(25) as usize,
        offset: query::last(&pairs, "offset")
            .map(|v| query::unbounded("offset", v))
            .transpose()?
            .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX)),
    })
}

/// `GET /v2/inference/requests`: the caller's requests, newest first (ties by
/// submission order, later first), filtered and paged.
pub(crate) async fn list_requests(
    State(state): State<Arc<AppState>>,
    Extension(Caller(caller)): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = parse_list(raw.as_deref())?;
    let view = state.view();
    let catalog = &state.catalog;
    let clock = &state.clock;
    let (items, has_more) = state.with_store(|store, now, done| {
        store.advance_all(now, done);
        let mut matching = store
            .owned_created_between(&caller, q.start.as_ref(), q.end.as_ref(), |at| {
                clock.utc_millis(at)
            })
            .iter()
            .rev()
            .map(|&i| store.job(i))
            .filter(|job| {
                let spec = &catalog.models[job.lane];
                let created = clock.utc_millis(job.created);
                q.endpoint_id.as_ref().is_none_or(|e| spec.is_endpoint(e))
                    && q.capability.as_ref().is_none_or(|c| *c == spec.capability)
                    && q.model_id.as_ref().is_none_or(|m| *m == spec.model_id)
                    && q.status.is_none_or(|s| s == job.status)
                    && q.start.is_none_or(|s| created >= s)
                    && q.end.is_none_or(|e| created < e)
            });
        let page: Vec<Value> = matching
            .by_ref()
            .skip(q.offset)
            .take(q.limit)
            .map(|job| view.item(job, q.payloads))
            .collect();
        let has_more = page.len() == q.limit && matching.next().is_some();
        (page, has_more)
    });
    let next_offset = if has_more {
        json!(q.offset.saturating_add(q.limit))
    } else {
        Value::Null
    };
    Ok(Json(
        json!({ "items": items, "next_offset": next_offset, "has_more": has_more }),
    ))
}
