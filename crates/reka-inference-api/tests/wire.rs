//! The wire JSON of every request and response body, through the generated
//! types.
//!
//! Each example is a realistic body as the API sends or takes it. It is
//! decoded into the generated type, encoded again, and decoded once more:
//! the two decoded values must be equal (a lossless round trip), and the
//! encoded JSON is pinned by a snapshot, so a progenitor or spec bump that
//! changes what goes over the wire shows up as a reviewable diff. The
//! nested schemas (`ChatChoice`, `ChatMessage`, `LogEntry`, `Metrics`,
//! `RequestItem`, `ModelInfo`, `ErrorBody`, `JobError`, ...) are covered
//! inside the bodies that carry them.

use std::fmt::Debug;

use reka_inference_api::RequestStatus;
use reka_inference_api::types::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionRequestStop,
    ChatCompletionRequestToolChoice, ChatCompletionResponse, ChatContentPart, ChatMessageContent,
    ChatResponseFormatType, ErrorResponse, ListModelsResponse, ListRequestsResponse,
    ResultResponse, StatusResponse, SubmitRequest, SubmitResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const BASE: &str = "https://vision-agent.api.reka.ai/v2/inference";

/// Decodes `example` as `T`, encodes it, decodes that again, and checks the
/// round trip; returns the encoded (wire) JSON.
fn round_trip<T>(example: &Value) -> (T, Value)
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let decoded: T = serde_json::from_value(example.clone())
        .unwrap_or_else(|e| panic!("example does not decode: {e}\n{example:#}"));
    let wire = serde_json::to_value(&decoded).expect("encodes");
    let again: T = serde_json::from_value(wire.clone()).expect("the encoded form decodes");
    assert_eq!(decoded, again, "round trip changed the value");
    assert_eq!(
        serde_json::to_value(&again).expect("encodes"),
        wire,
        "encoding is not stable"
    );
    (decoded, wire)
}

/// Like [`round_trip`], for an example with no nulls and no unknown fields:
/// the wire form is exactly the example.
fn exact<T>(example: Value) -> Value
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let (_, wire) = round_trip::<T>(&example);
    assert_eq!(wire, example, "the wire form differs from the example");
    wire
}

#[test]
fn submit_request() {
    let wire = exact::<SubmitRequest>(json!({
        "input": {
            "prompt": "A red fox trotting through fresh snow at dawn, slow camera pan",
            "image_url": "https://images.example.com/fox.png",
            "duration": 5,
            "aspect_ratio": "16:9",
            "negative_prompt": ["blur", "text"]
        },
        "webhook_url": "https://hooks.example.com/reka/done?job=42"
    }));
    insta::assert_json_snapshot!("submit_request", wire);
}

#[test]
fn submit_request_rejects_an_empty_webhook_url() {
    // The spec bounds `webhook_url` to 1..=2083 characters; the generated
    // type enforces it when decoding.
    let bad = json!({"input": {}, "webhook_url": ""});
    assert!(serde_json::from_value::<SubmitRequest>(bad).is_err());
}

#[test]
fn submit_response() {
    let id = "req_01JNV7C9W3B6Q2ZK8T4M5XH1PD";
    let wire = exact::<SubmitResponse>(json!({
        "request_id": id,
        "status": "IN_QUEUE",
        "status_url": format!("{BASE}/requests/{id}/status"),
        "response_url": format!("{BASE}/requests/{id}"),
        "cancel_url": format!("{BASE}/requests/{id}/cancel")
    }));
    insta::assert_json_snapshot!("submit_response", wire);
}

#[test]
fn status_response_queued() {
    let (status, wire) = round_trip::<StatusResponse>(&json!({
        "request_id": "req_01JNV7C9W3B6Q2ZK8T4M5XH1PD",
        "status": "IN_QUEUE",
        "queue_position": 3,
        "logs": null,
        "metrics": null
    }));
    assert_eq!(status.status, RequestStatus::InQueue);
    assert_eq!(status.queue_position, Some(3));
    // Nulls are read as absent, and absent values are not written.
    insta::assert_json_snapshot!("status_response_queued", wire);
}

#[test]
fn status_response_running_with_logs() {
    let (status, wire) = round_trip::<StatusResponse>(&json!({
        "request_id": "req_01JNV7C9W3B6Q2ZK8T4M5XH1PD",
        "status": "IN_PROGRESS",
        "logs": [
            {"message": "Loading model weights", "level": "INFO", "source": "worker",
             "timestamp": "2026-03-01T10:00:01.250Z"},
            {"message": "Rendering frame 12/120", "level": "DEBUG", "source": "worker",
             "timestamp": "2026-03-01T10:00:07Z"},
            {"message": "A log line with nothing but a message"}
        ],
        "metrics": {}
    }));
    let logs = status.logs.as_deref().unwrap_or_default();
    assert_eq!(logs.len(), 3);
    assert!(logs[0].timestamp.is_some());
    insta::assert_json_snapshot!("status_response_running", wire);
}

#[test]
fn status_response_ignores_unknown_fields() {
    // A newer server may add fields; they must not break decoding. The
    // generated types do not keep them, so they are not sent back either.
    let (status, wire) = round_trip::<StatusResponse>(&json!({
        "request_id": "req_01JNV7C9W3B6Q2ZK8T4M5XH1PD",
        "status": "COMPLETED",
        "metrics": {"inference_time": 41.7, "gpu_seconds": 83.1},
        "created_at": "2026-03-01T10:00:00Z",
        "priority": "normal",
        "region": {"name": "us-east", "zone": 2}
    }));
    assert_eq!(status.status, RequestStatus::Completed);
    assert_eq!(status.metrics.and_then(|m| m.inference_time), Some(41.7));
    for unknown in ["created_at", "priority", "region"] {
        assert!(wire.get(unknown).is_none(), "{unknown} was kept");
    }
    insta::assert_json_snapshot!("status_response_unknown_fields", wire);
}

#[test]
fn result_response_completed() {
    let wire = exact::<ResultResponse>(json!({
        "request_id": "req_01JNV7C9W3B6Q2ZK8T4M5XH1PD",
        "status": "COMPLETED",
        "output": {
            "video": {
                "url": "https://cdn.example.com/outputs/req_01JNV7C9W3B6Q2ZK8T4M5XH1PD.mp4",
                "content_type": "video/mp4",
                "file_size": 4718592
            },
            "seed": 1234567
        },
        "metrics": {"inference_time": 41.7}
    }));
    insta::assert_json_snapshot!("result_response_completed", wire);
}

#[test]
fn result_response_failed() {
    let (result, wire) = round_trip::<ResultResponse>(&json!({
        "request_id": "req_01JNV8A1F0D2E3G4H5J6K7L8M9",
        "status": "FAILED",
        "output": null,
        "error": {"type": "provider_error", "message": "The provider rejected the input image."},
        "metrics": null
    }));
    assert_eq!(result.status, RequestStatus::Failed);
    assert_eq!(
        result.error.and_then(|e| e.type_).as_deref(),
        Some("provider_error")
    );
    insta::assert_json_snapshot!("result_response_failed", wire);
}

#[test]
fn list_requests_response() {
    let wire = exact::<ListRequestsResponse>(json!({
        "items": [
            {
                "request_id": "req_01JNV8A1F0D2E3G4H5J6K7L8M9",
                "endpoint_id": "nano-banana/text-to-image",
                "model_id": "nano-banana",
                "capability": "text-to-image",
                "status": "COMPLETED",
                "created_at": "2026-03-01T09:58:00Z",
                "updated_at": "2026-03-01T09:58:09.500Z",
                "completed_at": "2026-03-01T09:58:09.500Z",
                "input": {"prompt": "A lighthouse in a storm, oil painting"},
                "output": {"images": [{"url": "https://cdn.example.com/outputs/lighthouse.png"}]},
                "metrics": {"inference_time": 8.9}
            },
            {
                "request_id": "req_01JNV7C9W3B6Q2ZK8T4M5XH1PD",
                "endpoint_id": "kling-v3-pro/image-to-video",
                "model_id": "kling-v3-pro",
                "capability": "image-to-video",
                "status": "IN_PROGRESS",
                "created_at": "2026-03-01T09:57:30Z",
                "updated_at": "2026-03-01T09:57:41Z"
            }
        ],
        "next_offset": 25,
        "has_more": true
    }));
    insta::assert_json_snapshot!("list_requests_response", wire);
}

#[test]
fn list_requests_last_page() {
    let (page, wire) = round_trip::<ListRequestsResponse>(&json!({
        "items": [],
        "next_offset": null
    }));
    // `has_more` defaults to false; the last page has no next offset.
    assert!(!page.has_more);
    assert_eq!(page.next_offset, None);
    insta::assert_json_snapshot!("list_requests_last_page", wire);
}

#[test]
fn list_models_response() {
    let wire = exact::<ListModelsResponse>(json!({
        "items": [
            {
                "endpoint_id": "kling-v3-pro/image-to-video",
                "model_id": "kling-v3-pro",
                "capability": "image-to-video",
                "title": "Kling v3 Pro",
                "description": "Animate a still image into a short clip."
            },
            {
                "endpoint_id": "sam3/image-to-bbox",
                "model_id": "sam3",
                "capability": "image-to-bbox"
            }
        ]
    }));
    insta::assert_json_snapshot!("list_models_response", wire);
}

#[test]
fn error_response() {
    let wire = exact::<ErrorResponse>(json!({
        "error": {
            "type": "validation_error",
            "message": "input.duration must be one of 5, 10",
            "param": "input.duration",
            "details": [
                {"loc": ["body", "input", "duration"], "msg": "must be one of 5, 10", "type": "enum"}
            ]
        }
    }));
    insta::assert_json_snapshot!("error_response", wire);
}

#[test]
fn error_response_rate_limited() {
    let wire = exact::<ErrorResponse>(json!({
        "error": {"type": "rate_limit_error", "message": "Too many requests; retry after 3600 seconds."}
    }));
    insta::assert_json_snapshot!("error_response_rate_limited", wire);
}

#[test]
fn chat_completion_request() {
    let (request, wire) = round_trip::<ChatCompletionRequest>(&json!({
        "model": "qwen3-vl-32b-instruct",
        "messages": [
            {"role": "system", "content": "You describe images in one sentence."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "https://images.example.com/fox.png"}}
            ], "name": "ana"}
        ],
        "stream": false
    }));
    assert!(matches!(
        request.messages[0].content,
        Some(ChatMessageContent::String(_))
    ));
    let Some(ChatMessageContent::Array(parts)) = &request.messages[1].content else {
        panic!("content parts expected: {:?}", request.messages[1].content);
    };
    assert!(matches!(&parts[0], ChatContentPart::Text(t) if t.text == "What is in this picture?"));
    assert!(matches!(&parts[1], ChatContentPart::Image(i) if i.image_url.url.ends_with("fox.png")));
    insta::assert_json_snapshot!("chat_completion_request", wire);
}

/// OpenAI's request fields: tools, tool choice, response format, stream
/// options, sampling and limits; a conversation with a tool call, its
/// result and an audio part.
#[test]
fn chat_completion_request_openai_fields() {
    let (request, wire) = round_trip::<ChatCompletionRequest>(&json!({
        "model": "qwen3-vl-32b-instruct",
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "What's the weather in Paris? Transcribe this too."},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"celsius\":21}"}
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Current weather of a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            "strict": true
        }}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "weather", "schema": {"type": "object"}, "strict": true
        }},
        "stream": true,
        "stream_options": {"include_usage": true},
        "n": 2,
        "max_tokens": 64,
        "max_completion_tokens": 64,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["\n\n", "END"],
        "seed": 7,
        "user": "user-42",
        "logprobs": true,
        "top_logprobs": 3
    }));
    assert_eq!(
        request.tools.as_ref().map(|t| t[0].function.name.as_str()),
        Some("get_weather")
    );
    assert!(matches!(
        &request.tool_choice,
        Some(ChatCompletionRequestToolChoice::ChatNamedToolChoice(c)) if c.function.name == "get_weather"
    ));
    assert_eq!(
        request.response_format.as_ref().map(|f| f.type_),
        Some(ChatResponseFormatType::JsonSchema)
    );
    assert_eq!(
        request.stream_options.and_then(|o| o.include_usage),
        Some(true)
    );
    assert_eq!(request.n.map(|n| n.get()), Some(2));
    assert!(matches!(request.stop, Some(ChatCompletionRequestStop::Array(ref s)) if s.len() == 2));
    let assistant = &request.messages[1];
    assert!(assistant.content.is_none());
    assert_eq!(
        assistant
            .tool_calls
            .as_ref()
            .map(|c| c[0].function.arguments.as_str()),
        Some("{\"city\":\"Paris\"}")
    );
    assert_eq!(request.messages[2].tool_call_id.as_deref(), Some("call_1"));
    insta::assert_json_snapshot!("chat_completion_request_openai_fields", wire);
}

#[test]
fn chat_completion_request_tool_choice_words() {
    for word in ["none", "auto", "required"] {
        let (request, wire) = round_trip::<ChatCompletionRequest>(&json!({
            "model": "qwen3-vl-32b-instruct",
            "messages": [{"role": "user", "content": "Hi"}],
            "tool_choice": word
        }));
        assert!(matches!(
            request.tool_choice,
            Some(ChatCompletionRequestToolChoice::String(_))
        ));
        assert_eq!(wire["tool_choice"], word);
    }
}

#[test]
fn chat_completion_request_defaults_stream_to_false() {
    let (request, _) = round_trip::<ChatCompletionRequest>(&json!({
        "model": "qwen3-vl-32b-instruct",
        "messages": [{"role": "user", "content": "Hi"}]
    }));
    assert!(!request.stream);
}

#[test]
fn chat_completion_response() {
    let (response, wire) = round_trip::<ChatCompletionResponse>(&json!({
        "id": "chatcmpl-8f3a2b1c",
        "object": "chat.completion",
        "created": 1772359200,
        "model": "qwen3-vl-32b-instruct",
        "system_fingerprint": "fp_qwen_2026_02",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "A red fox trotting through snow.", "refusal": null},
            "finish_reason": "stop",
            "logprobs": null
        }],
        "usage": {"prompt_tokens": 812, "completion_tokens": 9, "total_tokens": 821,
                  "prompt_tokens_details": {"cached_tokens": 0}}
    }));
    assert_eq!(response.choices[0].finish_reason.as_deref(), Some("stop"));
    assert_eq!(response.usage.map(|u| u.total_tokens), Some(821));
    // OpenAI fields the spec does not name decode without error.
    assert!(wire.get("system_fingerprint").is_none());
    insta::assert_json_snapshot!("chat_completion_response", wire);
}

/// A tool call answer (no content), reasoning text as some servers send
/// it, and a finish reason OpenAI does not list (it must still decode).
#[test]
fn chat_completion_response_tool_calls() {
    let (response, wire) = round_trip::<ChatCompletionResponse>(&json!({
        "id": "chatcmpl-8f3a2b1d",
        "object": "chat.completion",
        "created": 1772359200,
        "model": "qwen3-vl-32b-instruct",
        "choices": [
            {"index": 0, "finish_reason": "tool_calls", "logprobs": null,
             "message": {"role": "assistant", "content": null, "refusal": null,
                         "reasoning_content": "The user wants the weather; call the tool.",
                         "tool_calls": [{"id": "call_1", "type": "function",
                                         "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}},
            {"index": 1, "finish_reason": "eos_token",
             "message": {"role": "assistant", "content": "Sunny."}}
        ],
        "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52,
                  "completion_tokens_details": {"reasoning_tokens": 9}}
    }));
    let first = &response.choices[0];
    assert_eq!(first.finish_reason.as_deref(), Some("tool_calls"));
    assert!(first.message.content.is_none());
    assert_eq!(
        first
            .message
            .tool_calls
            .as_ref()
            .map(|c| c[0].function.name.as_str()),
        Some("get_weather")
    );
    assert!(first.message.reasoning_content.is_some());
    assert_eq!(
        response.choices[1].finish_reason.as_deref(),
        Some("eos_token")
    );
    assert_eq!(
        response
            .usage
            .and_then(|u| u.completion_tokens_details)
            .and_then(|d| d.reasoning_tokens),
        Some(9)
    );
    insta::assert_json_snapshot!("chat_completion_response_tool_calls", wire);
}

#[test]
fn chat_completion_chunks() {
    let chunks = [
        json!({"id": "chatcmpl-8f3a2b1c", "object": "chat.completion.chunk", "created": 1772359200,
               "model": "qwen3-vl-32b-instruct",
               "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}),
        json!({"id": "chatcmpl-8f3a2b1c", "object": "chat.completion.chunk", "created": 1772359200,
               "model": "qwen3-vl-32b-instruct",
               "choices": [{"index": 0, "delta": {"content": "A red fox"}, "finish_reason": null}]}),
        json!({"id": "chatcmpl-8f3a2b1c", "object": "chat.completion.chunk", "created": 1772359201,
               "model": "qwen3-vl-32b-instruct",
               "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
    ];
    let wire: Vec<Value> = chunks
        .iter()
        .map(|c| round_trip::<ChatCompletionChunk>(c).1)
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| serde_json::from_value::<ChatCompletionChunk>(c.clone()).ok())
        .filter_map(|c| c.choices.into_iter().next()?.delta.content)
        .collect();
    assert_eq!(text, "A red fox");
    insta::assert_json_snapshot!("chat_completion_chunks", wire);
}

/// A streamed tool call (the first part names it, the next ones add to its
/// arguments) and the last chunk of `stream_options.include_usage`: no
/// choices, the usage.
#[test]
fn chat_completion_tool_call_chunks() {
    let chunk = |choices: Value, usage: Value| {
        json!({"id": "chatcmpl-8f3a2b1d", "object": "chat.completion.chunk", "created": 1772359200,
               "model": "qwen3-vl-32b-instruct", "choices": choices, "usage": usage})
    };
    let chunks = [
        chunk(
            json!([{"index": 0, "delta": {"role": "assistant", "content": null, "tool_calls": [
                {"index": 0, "id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": ""}}]}, "finish_reason": null}]),
            Value::Null,
        ),
        chunk(
            json!([{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "function": {"arguments": "{\"city\":"}}]}, "finish_reason": null}]),
            Value::Null,
        ),
        chunk(
            json!([{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "function": {"arguments": "\"Paris\"}"}}]}, "finish_reason": null}]),
            Value::Null,
        ),
        chunk(
            json!([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]),
            Value::Null,
        ),
        chunk(
            json!([]),
            json!({"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}),
        ),
    ];
    let decoded: Vec<ChatCompletionChunk> = chunks.iter().map(|c| round_trip(c).0).collect();
    let wire: Vec<Value> = chunks
        .iter()
        .map(|c| round_trip::<ChatCompletionChunk>(c).1)
        .collect();
    let arguments: String = decoded
        .iter()
        .flat_map(|c| &c.choices)
        .flat_map(|c| c.delta.tool_calls.iter().flatten())
        .filter_map(|t| t.function.as_ref()?.arguments.as_deref())
        .collect();
    assert_eq!(arguments, "{\"city\":\"Paris\"}");
    let last = decoded.last().unwrap();
    assert!(last.choices.is_empty());
    assert_eq!(last.usage.as_ref().map(|u| u.total_tokens), Some(52));
    insta::assert_json_snapshot!("chat_completion_tool_call_chunks", wire);
}
