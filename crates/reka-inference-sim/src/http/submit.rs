//! `POST /v2/inference/{model}/{capability}`: every submit operation (the
//! fixed-model routes are this route with a catalog model), with body
//! validation, the endpoint's input schema (422 in every dialect) and
//! `Idempotency-Key` replay.

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use crate::catalog::CAPABILITIES;
use crate::http::body::read_json;
use crate::http::error::ApiError;
use crate::http::layers::Caller;
use crate::inputs;
use crate::jobs::{IdemEntry, Job, Status};
use crate::rng;
use crate::state::{AppState, WebhookJob};

/// Longest accepted `webhook_url`.
const MAX_WEBHOOK_URL: usize = 2083;

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = |why: &str| {
        ApiError::invalid(
            "Idempotency-Key",
            &["header", "Idempotency-Key"],
            "string_type",
            why,
        )
    };
    let key = v
        .to_str()
        .map_err(|_| bad("Idempotency-Key must be visible ASCII"))?
        .trim();
    // The spec sets no length limit (the HTTP server's header limits apply)
    // and allows the empty string, which is a key like any other.
    Ok(Some(key.to_string()))
}

/// The checked parts of a submit body.
struct SubmitBody {
    input: Value,
    webhook_url: Option<String>,
}

fn validate(body: &Value) -> Result<SubmitBody, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::bad_body(
            "model_attributes_type",
            "the request body must be a JSON object",
        ));
    };
    let input = match obj.get("input") {
        None => {
            return Err(ApiError::invalid(
                "input",
                &["body", "input"],
                "missing",
                "input is required",
            ));
        }
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            return Err(ApiError::invalid(
                "input",
                &["body", "input"],
                "dict_type",
                "input must be a JSON object",
            ));
        }
    };
    let webhook_url = match obj.get("webhook_url") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(check_webhook_url(s)?),
        Some(_) => {
            return Err(ApiError::invalid(
                "webhook_url",
                &["body", "webhook_url"],
                "string_type",
                "webhook_url must be a string or null",
            ));
        }
    };
    Ok(SubmitBody { input, webhook_url })
}

fn check_webhook_url(s: &str) -> Result<String, ApiError> {
    let bad = |kind: &str, why: String| {
        ApiError::invalid("webhook_url", &["body", "webhook_url"], kind, why)
    };
    if s.is_empty() || s.len() > MAX_WEBHOOK_URL {
        return Err(bad(
            "string_length",
            format!("webhook_url must be 1 to {MAX_WEBHOOK_URL} characters"),
        ));
    }
    let url = url::Url::parse(s).map_err(|e| {
        bad(
            "url_parsing",
            format!("webhook_url is not a valid URL: {e}"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(bad(
            "url_scheme",
            "webhook_url must be an absolute http or https URL".into(),
        ));
    }
    Ok(s.to_string())
}

fn accepted(bytes: Bytes) -> Response {
    (
        StatusCode::ACCEPTED,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

/// What a submit turned into.
enum Outcome {
    /// A new job; with a spoofed webhook to send when `webhook:spoof` picked it.
    Created(Bytes, Option<WebhookJob>),
    Replayed(Bytes),
    Conflict,
}

/// Handles every submit route; errors as the dialect answers them.
pub(crate) async fn submit(
    State(state): State<Arc<AppState>>,
    caller: Extension<Caller>,
    path: Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let dialect = state.dialect;
    submit_inner(State(state), caller, path, headers, body)
        .await
        .map_err(|e| dialect.submit_error(e))
}

async fn submit_inner(
    State(state): State<Arc<AppState>>,
    Extension(Caller(caller)): Extension<Caller>,
    Path((model, capability)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if !CAPABILITIES.contains(&capability.as_str()) {
        return Err(ApiError::not_found(format!(
            "no capability {capability:?}; known: {}",
            CAPABILITIES.join(", ")
        )));
    }
    let Some(lane) = state.catalog.find(&model, &capability) else {
        let known: Vec<&str> = state
            .catalog
            .models
            .iter()
            .filter(|m| m.capability == capability)
            .map(|m| m.model_id.as_str())
            .collect();
        return Err(ApiError::invalid(
            "model",
            &["path", "model"],
            "enum",
            format!(
                "unknown model {model:?} for {capability}; known: {}",
                known.join(", ")
            ),
        ));
    };
    let idem = idempotency_key(&headers)?;
    let value = read_json(&headers, body, &state).await?;
    let checked = validate(&value)?;
    if let Some(rules) = &state.inputs[lane] {
        let problems = rules.problems(&checked.input);
        if !problems.is_empty() {
            return Err(ApiError::unprocessable(problems));
        }
    }
    let image = inputs::input_image(&checked.input);
    let path = format!("/v2/inference/{model}/{capability}");
    let spec = &state.catalog.models[lane];
    let failure_rate = state.failure_rate(lane);

    let outcome = state.with_store(|store, now, done| {
        if let Some(key) = &idem
            && let Some(prev) = store.idempotency.get(&(caller.clone(), key.clone()))
        {
            return if prev.path == path && prev.body == value {
                Outcome::Replayed(prev.response.clone())
            } else {
                Outcome::Conflict
            };
        }
        let n = store.len() as u64;
        let draw = |salt: u64| rng::unit(rng::hash(&[state.seed, store.epoch(), n, salt]));
        let mut id_bytes = [0u8; 16];
        let id_part = |salt: u64| rng::hash(&[state.id_seed, store.epoch(), n, salt]).to_le_bytes();
        id_bytes[..8].copy_from_slice(&id_part(1));
        id_bytes[8..].copy_from_slice(&id_part(2));
        let id = uuid::Builder::from_random_bytes(id_bytes)
            .into_uuid()
            .to_string();
        let sim_secs = spec.duration.sample(draw(3), draw(4));
        let response = Bytes::from(state.dialect.submit_body(&id, &state.base_url).to_string());
        let idx = store.create(
            Job {
                id,
                owner: caller.clone(),
                lane,
                input: checked.input,
                image,
                webhook_url: checked.webhook_url,
                created: now,
                started: None,
                ended: None,
                status: Status::InQueue,
                sim_secs,
                wall: state.clock.wall(sim_secs),
                fails: draw(5) < failure_rate,
                cancel_at: None,
            },
            done,
        );
        if let Some(key) = idem {
            let entry = IdemEntry {
                path,
                body: value,
                response: response.clone(),
            };
            store.idempotency.insert((caller.clone(), key), entry);
        }
        Outcome::Created(response, state.spoof_for(store, idx))
    });

    match outcome {
        Outcome::Created(bytes, spoof) => {
            state.stats_mut().jobs_created += 1;
            state.wake.notify_one();
            if let Some(hook) = spoof {
                state.send_spoof(hook);
            }
            Ok(accepted(bytes))
        }
        Outcome::Replayed(bytes) => {
            state.stats_mut().idempotent_replays += 1;
            Ok(accepted(bytes))
        }
        Outcome::Conflict => {
            state.stats_mut().idempotency_conflicts += 1;
            let mut e = ApiError::new(
                StatusCode::CONFLICT,
                "conflict_error",
                "this Idempotency-Key was already used with a different request body or endpoint",
            );
            e.param = Some("Idempotency-Key".into());
            Err(e)
        }
    }
}
