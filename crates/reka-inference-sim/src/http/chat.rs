//! `POST /v2/inference/chat/completions`: an OpenAI-compatible answer with
//! deterministic text derived from the last user message; `stream: true`
//! gives `text/event-stream` chunks ending with `data: [DONE]`.
//!
//! OpenAI's request fields are honoured: `tools` (a tool call when the last
//! message asks for one, or `tool_choice` does), `n` (that many choices),
//! `max_tokens`/`max_completion_tokens` (the text cut there, `finish_reason:
//! "length"`), `response_format` `json_object`/`json_schema` (a JSON object
//! as the content) and `stream_options.include_usage` (`usage: null` on
//! each chunk, then a final chunk with no choices and the usage).

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
    let value = read_json(&headers, body, &state).await?;
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

    let last = messages.last();
    let last_is_tool_result =
        last.and_then(|m| m.get("role")).and_then(Value::as_str) == Some("tool");
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .or(last)
        .and_then(|m| m.get("content"))
        .map(text_of)
        .unwrap_or_default();
    let images = last
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .map_or(0, |parts| {
            parts
                .iter()
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("image_url"))
                .count()
        });
    let prompt_tokens: u64 = messages
        .iter()
        .filter_map(|m| m.get("content"))
        .map(|c| tokens(&text_of(c)))
        .sum();
    let id = format!(
        "chatcmpl-{:016x}",
        rng::hash(&[rng::str_hash(&model), rng::str_hash(&last_user)])
    );
    let created = chrono::Utc::now().timestamp();
    let n = match obj.get("n") {
        None | Some(Value::Null) => 1,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=8) => n as usize,
            _ => {
                return Err(ApiError::invalid(
                    "n",
                    &["body", "n"],
                    "less_than_equal",
                    "n must be an integer from 1 to 8",
                ));
            }
        },
    };
    let max_tokens = obj
        .get("max_completion_tokens")
        .or_else(|| obj.get("max_tokens"))
        .and_then(Value::as_u64);
    let json_answer = obj
        .get("response_format")
        .and_then(|f| f.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t == "json_object" || t == "json_schema");
    let include_usage = stream
        && obj
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            == Some(true);
    let tool_call = if last_is_tool_result {
        None
    } else {
        tool_call_for(obj, &last_user)?
    };

    // One answer: a tool call, a JSON object, or text cut at max_tokens.
    let (reply, finish) = if tool_call.is_some() {
        (None, "tool_calls")
    } else {
        let mut text = reply_for(&model, &last_user);
        if images > 0 {
            text.push_str(&format!(" (I was shown {images} image(s).)"));
        }
        if last_is_tool_result {
            let result = last
                .and_then(|m| m.get("content"))
                .map(text_of)
                .unwrap_or_default();
            let result: String = result.chars().take(200).collect();
            text = format!("[{model}] The tool answered: {result}");
        }
        if json_answer {
            (Some(json!({ "answer": text }).to_string()), "stop")
        } else {
            match max_tokens {
                Some(max) if tokens(&text) > max => {
                    let cut: Vec<&str> = text.split_whitespace().take(max as usize).collect();
                    (Some(cut.join(" ")), "length")
                }
                _ => (Some(text), "stop"),
            }
        }
    };
    let completion_tokens = reply.as_deref().map_or_else(
        || tool_call.as_ref().map_or(0, |c| tokens(&c.1) + 1),
        tokens,
    ) * n as u64;
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens
    });
    let call_json = |i: usize, (name, arguments): &(String, String)| {
        json!({
            "id": format!("call_{:08x}_{i}", rng::str_hash(&id) as u32),
            "type": "function",
            "function": {"name": name, "arguments": arguments}
        })
    };

    if !stream {
        let choices: Vec<Value> = (0..n)
            .map(|i| {
                let mut message = json!({"role": "assistant", "content": reply});
                if let Some(call) = &tool_call {
                    message["tool_calls"] = json!([call_json(i, call)]);
                }
                json!({"index": i, "message": message, "finish_reason": finish})
            })
            .collect();
        let body = json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": choices,
            "usage": usage
        });
        return Ok(axum::Json(body).into_response());
    }

    let chunk = |choices: Value| {
        let mut c = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": choices
        });
        if include_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    let mut events = Vec::new();
    for i in 0..n {
        let one = |delta: Value, finish: Value| {
            chunk(json!([{"index": i, "delta": delta, "finish_reason": finish}]))
        };
        events.push(one(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        ));
        if let Some((name, arguments)) = &tool_call {
            let mut head = call_json(i, &(name.clone(), String::new()));
            head["index"] = json!(0);
            events.push(one(json!({ "tool_calls": [head] }), Value::Null));
            let chars: Vec<char> = arguments.chars().collect();
            for piece in chars.chunks(8) {
                let piece: String = piece.iter().collect();
                events.push(one(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                    Value::Null,
                ));
            }
        }
        if let Some(reply) = &reply {
            for piece in reply.split_inclusive(' ') {
                events.push(one(json!({ "content": piece }), Value::Null));
            }
        }
        events.push(one(json!({}), json!(finish)));
    }
    if include_usage {
        let mut last = chunk(json!([]));
        last["usage"] = usage;
        events.push(last);
    }
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

/// The tool call to answer with, `(name, arguments)`: when `tools` are
/// offered and `tool_choice` is not `none`, and either `tool_choice` asks
/// for one (`required`, or a named function) or the last user message
/// asks for one (it names a tool, or says "tool"). Arguments fill each
/// property of the tool's schema: strings from the message's last
/// capitalised word, numbers 1, booleans true.
fn tool_call_for(
    obj: &serde_json::Map<String, Value>,
    prompt: &str,
) -> Result<Option<(String, String)>, ApiError> {
    let tools = match obj.get("tools") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(t)) => t,
        Some(_) => {
            return Err(ApiError::invalid(
                "tools",
                &["body", "tools"],
                "list_type",
                "tools must be an array",
            ));
        }
    };
    let functions: Vec<&Value> = tools.iter().filter_map(|t| t.get("function")).collect();
    let name_of = |f: &Value| f.get("name").and_then(Value::as_str).map(str::to_owned);
    let choice = obj.get("tool_choice");
    let chosen = match choice {
        Some(Value::String(c)) if c == "none" => return Ok(None),
        Some(Value::String(c)) if c == "required" => functions.first().copied(),
        Some(Value::Object(c)) => {
            let wanted = c
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str);
            functions
                .iter()
                .copied()
                .find(|f| f.get("name").and_then(Value::as_str) == wanted)
        }
        _ => {
            let lower = prompt.to_lowercase();
            functions
                .iter()
                .copied()
                .find(|f| name_of(f).is_some_and(|n| lower.contains(&n.to_lowercase())))
                .or_else(|| {
                    lower
                        .contains("tool")
                        .then(|| functions.first().copied())
                        .flatten()
                })
        }
    };
    let Some(function) = chosen else {
        return Ok(None);
    };
    let Some(name) = name_of(function) else {
        return Ok(None);
    };
    let word = prompt
        .split(|c: char| !c.is_alphanumeric())
        .rev()
        .find(|w| w.chars().next().is_some_and(char::is_uppercase))
        .unwrap_or("example")
        .to_owned();
    let mut arguments = serde_json::Map::new();
    if let Some(Value::Object(props)) = function.get("parameters").and_then(|p| p.get("properties"))
    {
        for (key, schema) in props {
            let value = match schema.get("type").and_then(Value::as_str) {
                Some("number" | "integer") => json!(1),
                Some("boolean") => json!(true),
                Some("array") => json!([]),
                Some("object") => json!({}),
                _ => json!(word),
            };
            arguments.insert(key.clone(), value);
        }
    }
    Ok(Some((name, Value::Object(arguments).to_string())))
}
