//! Answers: `async-openai`'s typed completion and chunk, each kept beside
//! the JSON it was read from, so that nothing a server sends is dropped.
//!
//! The typed view is read from a lenient copy of the JSON (missing ids and
//! timestamps filled in, a `finish_reason` or `role` the crate does not know
//! left out of the typed view, tool-call arguments sent as an object turned
//! into their JSON text); the JSON itself is never changed, is what
//! [`Serialize`] writes, and keeps every field, known or not, at every depth.

use std::ops::Deref;

use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, CompletionUsage, CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A whole chat completion: the typed
/// [`CreateChatCompletionResponse`](crate::chat::openai::CreateChatCompletionResponse)
/// (through `Deref`) and the JSON the server sent ([`raw`](Self::raw)).
///
/// Serialising it writes the server's JSON, unknown fields included.
///
/// ```
/// use reka_inference::chat::ChatCompletion;
///
/// let answer: ChatCompletion = serde_json::from_value(serde_json::json!({
///     "id": "c1", "object": "chat.completion", "created": 1, "model": "m",
///     "choices": [{"index": 0, "finish_reason": "stop", "vendor_score": 0.9,
///                  "message": {"role": "assistant", "content": "Hi", "reasoning_content": "..."}}]
/// }))?;
/// assert_eq!(answer.text(), Some("Hi"));
/// assert_eq!(answer.raw()["choices"][0]["vendor_score"], 0.9);
/// let again = serde_json::to_value(&answer)?;
/// assert_eq!(again["choices"][0]["message"]["reasoning_content"], "...");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ChatCompletion {
    typed: CreateChatCompletionResponse,
    raw: Value,
}

/// One chunk of a streamed chat completion: the typed
/// [`CreateChatCompletionStreamResponse`](crate::chat::openai::CreateChatCompletionStreamResponse)
/// (through `Deref`) and the JSON the server sent ([`raw`](Self::raw)).
///
/// Serialising it writes the server's JSON, unknown fields included (a
/// delta's `reasoning_content`, a vendor field on a choice).
#[derive(Debug, Clone, PartialEq)]
pub struct ChatCompletionChunk {
    typed: CreateChatCompletionStreamResponse,
    raw: Value,
}

macro_rules! raw_backed {
    ($name:ident, $typed:ty, $what:literal) => {
        impl $name {
            /// Reads one from the server's JSON; fails only when the JSON
            /// cannot be read as one even leniently.
            pub fn from_value(raw: Value) -> Result<Self, serde_json::Error> {
                let mut lenient = raw.clone();
                normalize(&mut lenient, $what);
                let typed = serde_json::from_value::<$typed>(lenient)?;
                Ok($name { typed, raw })
            }

            /// The JSON the server sent, every field kept.
            pub fn raw(&self) -> &Value {
                &self.raw
            }

            /// The typed view.
            pub fn typed(&self) -> &$typed {
                &self.typed
            }

            /// The typed view and the JSON.
            pub fn into_parts(self) -> ($typed, Value) {
                (self.typed, self.raw)
            }

            /// A top-level field the typed view does not have (or any
            /// top-level field), from the JSON.
            pub fn extra(&self, field: &str) -> Option<&Value> {
                self.raw.get(field)
            }

            /// The token usage, when the server sent it.
            pub fn usage(&self) -> Option<&CompletionUsage> {
                self.typed.usage.as_ref()
            }
        }

        impl Deref for $name {
            type Target = $typed;
            fn deref(&self) -> &$typed {
                &self.typed
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.raw.serialize(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = Value::deserialize(d)?;
                $name::from_value(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

raw_backed!(
    ChatCompletion,
    CreateChatCompletionResponse,
    "chat.completion"
);
raw_backed!(
    ChatCompletionChunk,
    CreateChatCompletionStreamResponse,
    "chat.completion.chunk"
);

impl ChatCompletion {
    /// The first choice's text, if it has one.
    pub fn text(&self) -> Option<&str> {
        self.typed.choices.first()?.message.content.as_deref()
    }

    /// The first choice's function tool calls, in order.
    ///
    /// ```
    /// use reka_inference::chat::ChatCompletion;
    /// use serde_json::json;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Weather {
    ///     city: String,
    /// }
    ///
    /// let answer = ChatCompletion::from_value(json!({
    ///     "id": "c1", "object": "chat.completion", "created": 1, "model": "qwen3-vl-32b",
    ///     "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
    ///         "role": "assistant", "content": null,
    ///         "tool_calls": [{"id": "call_1", "type": "function",
    ///             "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]}}]
    /// }))
    /// .expect("a chat completion");
    /// let call = &answer.tool_calls()[0];
    /// assert_eq!((call.id.as_str(), call.name.as_str()), ("call_1", "get_weather"));
    /// assert_eq!(call.arguments, json!({"city": "Oslo"}));
    /// assert_eq!(call.parse::<Weather>()?.city, "Oslo");
    /// # Ok::<(), reka_inference::Error>(())
    /// ```
    pub fn tool_calls(&self) -> Vec<ToolCall> {
        let Some(choice) = self.typed.choices.first() else {
            return Vec::new();
        };
        choice
            .message
            .tool_calls
            .iter()
            .flatten()
            .filter_map(|call| match call {
                ChatCompletionMessageToolCalls::Function(f) => Some(ToolCall::new(
                    &f.id,
                    &f.function.name,
                    &f.function.arguments,
                )),
                ChatCompletionMessageToolCalls::Custom(_) => None,
            })
            .collect()
    }
}

/// A function tool call of an answer: which function the model asks for,
/// with which arguments. From [`ChatCompletion::tool_calls`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ToolCall {
    /// The call's id: answer it with a `tool` message carrying this id.
    pub id: String,
    /// The function's name.
    pub name: String,
    /// The arguments as JSON. A model may write arguments that are not
    /// JSON at all: they are then this value as a JSON string, and
    /// [`parse`](Self::parse) says so.
    pub arguments: Value,
    /// The arguments exactly as the model wrote them.
    pub raw_arguments: String,
}

impl ToolCall {
    fn new(id: &str, name: &str, raw_arguments: &str) -> ToolCall {
        let arguments = serde_json::from_str(raw_arguments)
            .unwrap_or_else(|_| Value::String(raw_arguments.to_owned()));
        ToolCall {
            id: id.to_owned(),
            name: name.to_owned(),
            arguments,
            raw_arguments: raw_arguments.to_owned(),
        }
    }

    /// The arguments decoded into your own type; [`Error::Decode`] (with
    /// the text the model wrote) when they do not fit it or are not JSON.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.raw_arguments).map_err(|e| Error::Decode {
            status: reqwest::StatusCode::OK,
            message: format!(
                "the arguments of tool call {} ({}) do not fit: {e}",
                self.id, self.name
            ),
            raw_body: self.raw_arguments.clone().into(),
        })
    }
}

impl ChatCompletionChunk {
    /// The text this chunk adds to every choice, in order.
    pub fn text(&self) -> String {
        self.typed
            .choices
            .iter()
            .filter_map(|c| c.delta.content.as_deref())
            .collect()
    }
}

const ROLES: [&str; 6] = [
    "developer",
    "system",
    "user",
    "assistant",
    "tool",
    "function",
];
const FINISH_REASONS: [&str; 5] = [
    "stop",
    "length",
    "tool_calls",
    "content_filter",
    "function_call",
];
const SERVICE_TIERS: [&str; 5] = ["auto", "default", "flex", "scale", "priority"];

/// Makes a compatible server's JSON readable by the typed view, changing
/// only what the typed view could not read at all.
fn normalize(value: &mut Value, object: &str) {
    let Some(top) = value.as_object_mut() else {
        return;
    };
    fill(top, "id", Value::from(""));
    fill(top, "model", Value::from(""));
    fill(top, "object", Value::from(object));
    if !is_u32(top.get("created")) {
        top.insert("created".into(), Value::from(0));
    }
    if !top.get("choices").is_some_and(Value::is_array) {
        top.insert("choices".into(), Value::Array(Vec::new()));
    }
    keep_if_known(top, "service_tier", &SERVICE_TIERS);
    if let Some(usage) = top.get_mut("usage") {
        normalize_usage(usage);
    }
    if let Some(Value::Array(choices)) = top.get_mut("choices") {
        for (i, choice) in choices.iter_mut().enumerate() {
            let Some(choice) = choice.as_object_mut() else {
                continue;
            };
            if !is_u32(choice.get("index")) {
                choice.insert("index".into(), Value::from(i));
            }
            keep_if_known(choice, "finish_reason", &FINISH_REASONS);
            if choice.get("logprobs").is_some_and(|l| !l.is_object()) {
                choice.remove("logprobs");
            }
            if let Some(Value::Object(message)) = choice.get_mut("message") {
                if !message
                    .get("role")
                    .and_then(Value::as_str)
                    .is_some_and(|r| ROLES.contains(&r))
                {
                    message.insert("role".into(), Value::from("assistant"));
                }
                normalize_tool_calls(message, false);
            }
            if let Some(Value::Object(delta)) = choice.get_mut("delta") {
                keep_if_known(delta, "role", &ROLES);
                normalize_tool_calls(delta, true);
            }
        }
    }
}

fn is_u32(value: Option<&Value>) -> bool {
    value
        .and_then(Value::as_u64)
        .is_some_and(|n| n <= u64::from(u32::MAX))
}

fn fill(map: &mut Map<String, Value>, field: &str, default: Value) {
    if !map.get(field).is_some_and(Value::is_string) {
        map.insert(field.into(), default);
    }
}

/// Removes `field` unless it is one of `known` (or null).
fn keep_if_known(map: &mut Map<String, Value>, field: &str, known: &[&str]) {
    let keep = match map.get(field) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => known.contains(&s.as_str()),
        Some(_) => false,
    };
    if !keep {
        map.remove(field);
    }
}

fn normalize_usage(usage: &mut Value) {
    let Some(map) = usage.as_object_mut() else {
        *usage = Value::Null;
        return;
    };
    for field in ["prompt_tokens", "completion_tokens", "total_tokens"] {
        if !is_u32(map.get(field)) {
            map.insert(field.into(), Value::from(0));
        }
    }
    for details in ["prompt_tokens_details", "completion_tokens_details"] {
        if map.get(details).is_some_and(|d| !d.is_object()) {
            map.remove(details);
        }
    }
}

/// Tool calls: `type` defaults to `function`, arguments sent as JSON rather
/// than as its text become the text, a chunk's `index` defaults to its
/// place.
fn normalize_tool_calls(message: &mut Map<String, Value>, chunk: bool) {
    let Some(Value::Array(calls)) = message.get_mut("tool_calls") else {
        if message.get("tool_calls").is_some_and(|c| !c.is_null()) {
            message.remove("tool_calls");
        }
        return;
    };
    for (i, call) in calls.iter_mut().enumerate() {
        let Some(call) = call.as_object_mut() else {
            continue;
        };
        if chunk {
            if !is_u32(call.get("index")) {
                call.insert("index".into(), Value::from(i));
            }
            if call.get("type").is_some_and(|t| t != "function") {
                call.remove("type");
            }
        } else if !call.get("type").is_some_and(Value::is_string) {
            call.insert("type".into(), Value::from("function"));
        }
        if !chunk {
            fill(call, "id", Value::from(""));
        }
        if let Some(Value::Object(function)) = call.get_mut("function") {
            match function.get("arguments") {
                Some(Value::String(_)) => {}
                None | Some(Value::Null) if chunk => {}
                None | Some(Value::Null) => {
                    function.insert("arguments".into(), Value::from(""));
                }
                Some(other) => {
                    let text = other.to_string();
                    function.insert("arguments".into(), Value::from(text));
                }
            }
            if !chunk {
                fill(function, "name", Value::from(""));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_survive_at_every_depth() {
        let wire = json!({
            "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "vendor_top": {"a": 1},
            "choices": [{"index": 0, "vendor_choice": true, "finish_reason": null,
                         "delta": {"reasoning_content": "thinking", "content": "x",
                                   "tool_calls": [{"index": 0, "vendor_call": 1,
                                                   "function": {"name": "f", "arguments": "{", "vendor_fn": 2}}]}}]
        });
        let chunk: ChatCompletionChunk = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(chunk.text(), "x");
        assert_eq!(serde_json::to_value(&chunk).unwrap(), wire);
        assert_eq!(
            chunk.raw()["choices"][0]["delta"]["reasoning_content"],
            "thinking"
        );
        assert_eq!(chunk.extra("vendor_top"), Some(&json!({"a": 1})));
    }

    #[test]
    fn a_lenient_typed_view_of_what_compatible_servers_send() {
        // No id, object or created; an unknown finish reason and role;
        // arguments as an object; a tool call without a type; usage with a
        // missing count.
        let wire = json!({
            "model": "m",
            "choices": [{"finish_reason": "eos",
                         "message": {"role": "model", "content": null,
                                     "tool_calls": [{"id": "t1", "function": {"name": "f", "arguments": {"x": 1}}}]}}],
            "usage": {"prompt_tokens": 3, "total_tokens": 3}
        });
        let answer = ChatCompletion::from_value(wire.clone()).unwrap();
        let calls = answer.tool_calls();
        assert_eq!((calls[0].id.as_str(), calls[0].name.as_str()), ("t1", "f"));
        // Arguments sent as an object rather than JSON text read the same.
        assert_eq!(calls[0].raw_arguments, "{\"x\":1}");
        assert_eq!(calls[0].arguments, json!({"x": 1}));
        #[derive(serde::Deserialize)]
        struct X {
            x: u32,
        }
        assert_eq!(calls[0].parse::<X>().unwrap().x, 1);
        let not_json = ToolCall::new("t2", "g", "city=Oslo");
        assert_eq!(not_json.arguments, json!("city=Oslo"));
        assert!(matches!(not_json.parse::<X>(), Err(Error::Decode { .. })));
        assert_eq!(answer.choices[0].finish_reason, None);
        assert_eq!(answer.usage().map(|u| u.prompt_tokens), Some(3));
        assert_eq!(serde_json::to_value(&answer).unwrap(), wire);
    }
}
