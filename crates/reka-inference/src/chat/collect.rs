//! A stream's chunks gathered into one whole answer.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::answer::{ChatCompletion, ChatCompletionChunk};

/// Gathers streamed chunks into the whole [`ChatCompletion`] they make:
/// each choice's content (and any other text a delta carries, such as a
/// `reasoning_content`) joined, tool calls put together by their index
/// (id, name, and the arguments' pieces), the finish reason, and the usage
/// of the final usage chunk. Fields of the chunks the typed view does not
/// know are kept: texts are joined, other values keep their last value.
///
/// ```
/// use reka_inference::chat::{ChatCollector, ChatCompletionChunk};
/// use serde_json::json;
///
/// let mut all = ChatCollector::default();
/// for delta in [json!({"role": "assistant", "content": "Hel"}), json!({"content": "lo"})] {
///     let chunk = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
///                        "choices": [{"index": 0, "delta": delta}]});
///     all.push(&serde_json::from_value::<ChatCompletionChunk>(chunk)?);
/// }
/// assert_eq!(all.finish()?.text(), Some("Hello"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ChatCollector {
    top: Map<String, Value>,
    choices: BTreeMap<u64, Choice>,
    usage: Option<Value>,
}

#[derive(Debug, Clone, Default)]
struct Choice {
    fields: Map<String, Value>,
    message: Map<String, Value>,
    tool_calls: BTreeMap<u64, Map<String, Value>>,
}

impl ChatCollector {
    /// Adds one chunk.
    pub fn push(&mut self, chunk: &ChatCompletionChunk) {
        let Some(raw) = chunk.raw().as_object() else {
            return;
        };
        for (k, v) in raw {
            match k.as_str() {
                "choices" | "usage" | "object" => {}
                _ if v.is_null() => {}
                _ => {
                    self.top.insert(k.clone(), v.clone());
                }
            }
        }
        if let Some(usage) = raw.get("usage").filter(|u| !u.is_null()) {
            self.usage = Some(usage.clone());
        }
        let Some(Value::Array(choices)) = raw.get("choices") else {
            return;
        };
        for (i, choice) in choices.iter().enumerate() {
            let Some(choice) = choice.as_object() else {
                continue;
            };
            let index = choice
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(i as u64);
            let entry = self.choices.entry(index).or_default();
            for (k, v) in choice {
                match k.as_str() {
                    "delta" | "index" => {}
                    "logprobs" => merge_logprobs(&mut entry.fields, v),
                    _ if v.is_null() => {}
                    _ => {
                        entry.fields.insert(k.clone(), v.clone());
                    }
                }
            }
            let Some(Value::Object(delta)) = choice.get("delta") else {
                continue;
            };
            for (k, v) in delta {
                if k == "tool_calls" {
                    for (j, call) in v.as_array().into_iter().flatten().enumerate() {
                        let Some(call) = call.as_object() else {
                            continue;
                        };
                        let at = call
                            .get("index")
                            .and_then(Value::as_u64)
                            .unwrap_or(j as u64);
                        merge_call(entry.tool_calls.entry(at).or_default(), call);
                    }
                    continue;
                }
                join(&mut entry.message, k, v);
            }
        }
    }

    /// The whole answer so far.
    pub fn finish(&self) -> Result<ChatCompletion, serde_json::Error> {
        let mut top = self.top.clone();
        top.insert("object".into(), Value::from("chat.completion"));
        let choices = self
            .choices
            .iter()
            .map(|(index, c)| {
                let mut choice = c.fields.clone();
                choice.insert("index".into(), Value::from(*index));
                let mut message = c.message.clone();
                if !message.contains_key("role") {
                    message.insert("role".into(), Value::from("assistant"));
                }
                if !message.contains_key("content") {
                    message.insert("content".into(), Value::Null);
                }
                if !c.tool_calls.is_empty() {
                    let calls = c
                        .tool_calls
                        .values()
                        .map(|call| {
                            let mut call = call.clone();
                            call.entry("type")
                                .or_insert_with(|| Value::from("function"));
                            Value::Object(call)
                        })
                        .collect();
                    message.insert("tool_calls".into(), Value::Array(calls));
                }
                choice.insert("message".into(), Value::Object(message));
                Value::Object(choice)
            })
            .collect();
        top.insert("choices".into(), Value::Array(choices));
        if let Some(usage) = &self.usage {
            top.insert("usage".into(), usage.clone());
        }
        ChatCompletion::from_value(Value::Object(top))
    }
}

/// Texts are joined; other values keep their last value.
fn join(map: &mut Map<String, Value>, key: &str, value: &Value) {
    match (map.get_mut(key), value) {
        (_, Value::Null) => {}
        (Some(Value::String(have)), Value::String(more)) => have.push_str(more),
        _ => {
            map.insert(key.to_owned(), value.clone());
        }
    }
}

fn merge_call(call: &mut Map<String, Value>, piece: &Map<String, Value>) {
    for (k, v) in piece {
        match k.as_str() {
            "index" => {}
            "function" => {
                let Some(function) = v.as_object() else {
                    continue;
                };
                let have = call
                    .entry("function")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(have) = have.as_object_mut() {
                    for (fk, fv) in function {
                        if fk == "name" {
                            // A name is sent whole, once; a repeat is the same name.
                            if !fv.is_null() {
                                have.insert(fk.clone(), fv.clone());
                            }
                        } else {
                            join(have, fk, fv);
                        }
                    }
                }
            }
            _ if v.is_null() => {}
            _ => {
                call.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Log probabilities: the token lists of each chunk appended.
fn merge_logprobs(fields: &mut Map<String, Value>, piece: &Value) {
    let Some(piece) = piece.as_object() else {
        return;
    };
    let have = fields
        .entry("logprobs")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(have) = have.as_object_mut() else {
        return;
    };
    for (k, v) in piece {
        match (have.get_mut(k), v) {
            (Some(Value::Array(list)), Value::Array(more)) => list.extend(more.iter().cloned()),
            (_, Value::Null) => {}
            _ => {
                have.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chunk(choices: Value, usage: Value) -> ChatCompletionChunk {
        ChatCompletionChunk::from_value(json!({
            "id": "c", "object": "chat.completion.chunk", "created": 7, "model": "m",
            "choices": choices, "usage": usage
        }))
        .unwrap()
    }

    #[test]
    fn content_tool_calls_and_usage_are_put_together() {
        let mut all = ChatCollector::default();
        all.push(&chunk(
            json!([{"index": 0, "delta": {"role": "assistant", "reasoning_content": "Let me "}}]),
            Value::Null,
        ));
        all.push(&chunk(
            json!([{"index": 0, "delta": {"reasoning_content": "think.", "tool_calls": [
                {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"ci"}}
            ]}}]),
            Value::Null,
        ));
        all.push(&chunk(
            json!([{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "function": {"arguments": "ty\": \"Oslo\"}"}}
            ]}, "finish_reason": "tool_calls"}]),
            Value::Null,
        ));
        all.push(&chunk(
            json!([]),
            json!({"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}),
        ));
        let whole = all.finish().unwrap();
        let calls = whole.tool_calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(
            (calls[0].id.as_str(), calls[0].name.as_str()),
            ("call_1", "get_weather")
        );
        assert_eq!(calls[0].raw_arguments, "{\"city\": \"Oslo\"}");
        assert_eq!(
            whole.choices[0].finish_reason,
            Some(async_openai::types::chat::FinishReason::ToolCalls)
        );
        assert_eq!(whole.usage().map(|u| u.total_tokens), Some(14));
        assert_eq!(
            whole.raw()["choices"][0]["message"]["reasoning_content"],
            "Let me think."
        );
        assert_eq!(whole.created, 7);
    }
}
