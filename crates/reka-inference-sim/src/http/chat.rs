//! `POST /v2/inference/chat/completions`: an OpenAI-compatible answer with
//! deterministic text derived from the last user message; `stream: true`
//! gives `text/event-stream` chunks ending with `data: [DONE]`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::http::body::read_json;
use crate::http::error::ApiError;
use crate::rng;
use crate::state::AppState;

/// Phrases appended to the echo, picked by a hash of the prompt.
const PHRASES: [&str; 4] = [
    "This is a simulated answer.",
    "The simulator does not run a real model.",
    "Replies are deterministic for a given prompt.",
    "Nothing was sent to Reka.",
];

/// The text of a message's `content` (a string or OpenAI content parts).
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn reply_for(model: &str, prompt: &str) -> String {
    let snippet: String = prompt.chars().take(200).collect();
    let phrase = PHRASES[(rng::str_hash(prompt) % PHRASES.len() as u64) as usize];
    format!("[{model}] You said: \"{snippet}\". {phrase}")
}

fn tokens(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

/// Handles a chat completion.
pub(crate) async fn create_chat_completion(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let value = read_json(&headers, body).await?;
    let Some(obj) = value.as_object() else {
        return Err(ApiError::bad_body(
            "model_attributes_type",
            "the request body must be a JSON object",
        ));
    };
    let model = match obj.get("model") {
        Some(Value::String(m)) if state.catalog.chat_models.iter().any(|k| k == m) => m.clone(),
        Some(Value::String(m)) => {
            return Err(ApiError::invalid(
                "model",
                &["body", "model"],
                "enum",
                format!(
                    "model {m:?} is not allowed; known: {}",
                    state.catalog.chat_models.join(", ")
                ),
            ));
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "model",
                &["body", "model"],
                "string_type",
                "model must be a string",
            ));
        }
        None => {
            return Err(ApiError::invalid(
                "model",
                &["body", "model"],
                "missing",
                "model is required",
            ));
        }
    };
    let messages = match obj.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        Some(Value::Array(_)) => {
            return Err(ApiError::invalid(
                "messages",
                &["body", "messages"],
                "too_short",
                "messages must not be empty",
            ));
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "messages",
                &["body", "messages"],
                "list_type",
                "messages must be an array",
            ));
        }
        None => {
            return Err(ApiError::invalid(
                "messages",
                &["body", "messages"],
                "missing",
                "messages is required",
            ));
        }
    };
    for (i, m) in messages.iter().enumerate() {
        if !m.get("role").is_some_and(Value::is_string) {
            return Err(ApiError::invalid(
                "messages",
                &["body", "messages", &i.to_string(), "role"],
                "missing",
                format!("messages[{i}] must be an object with a string role"),
            ));
        }
    }
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::invalid(
                "stream",
                &["body", "stream"],
                "bool_type",
                "stream must be a boolean",
            ));
        }
    };

    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .or(messages.last())
        .and_then(|m| m.get("content"))
        .map(text_of)
        .unwrap_or_default();
    let prompt_tokens: u64 = messages
        .iter()
        .filter_map(|m| m.get("content"))
        .map(|c| tokens(&text_of(c)))
        .sum();
    let reply = reply_for(&model, &last_user);
    let id = format!(
        "chatcmpl-{:016x}",
        rng::hash(&[rng::str_hash(&model), rng::str_hash(&last_user)])
    );
    let created = chrono::Utc::now().timestamp();

    if !stream {
        let completion_tokens = tokens(&reply);
        let body = json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": reply},
                "finish_reason": "stop"
            }],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens
            }
        });
        return Ok(axum::Json(body).into_response());
    }

    let chunk = |delta: Value, finish: Value| {
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
        })
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    let words: Vec<&str> = reply.split_inclusive(' ').collect();
    for piece in words {
        events.push(chunk(json!({ "content": piece }), Value::Null));
    }
    events.push(chunk(json!({}), json!("stop")));
    let mut sse = String::new();
    for e in events {
        sse.push_str("data: ");
        sse.push_str(&e.to_string());
        sse.push_str("\n\n");
    }
    sse.push_str("data: [DONE]\n\n");
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from(sse),
    )
        .into_response())
}
