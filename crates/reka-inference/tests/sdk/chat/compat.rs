//! Chat against a stand-in OpenAI-compatible server at `/v1/chat/completions`
//! that speaks OpenAI's shapes (tool calls, a usage chunk, fields the
//! types do not know), and the retry rule of a POST that never connected.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use futures::StreamExt;
use reka_inference::chat::{Chat, ChatRequest, function_tool};
use reka_inference::{AuthHeader, Client, HttpHook, RetryPolicy};
use serde_json::{Value, json};

/// What the stand-in saw: path, auth headers, body.
type Seen = Arc<Mutex<Vec<(String, HeaderMap, Value)>>>;

fn stream_body() -> String {
    let base = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x"});
    let with = |choices: Value, usage: Value| {
        let mut c = base.clone();
        c["choices"] = choices;
        c["usage"] = usage;
        format!("data: {c}\n\n")
    };
    [
        with(json!([{"index": 0, "delta": {"role": "assistant", "reasoning_content": "Oslo, then."}}]), Value::Null),
        with(json!([{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":"}}]}}]), Value::Null),
        with(json!([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "\"Oslo\"}"}}]},
            "finish_reason": "tool_calls", "vendor_choice_field": 1}]), Value::Null),
        with(json!([]), json!({"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13})),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat()
}

fn whole_body() -> Value {
    json!({
        "id": "chatcmpl-2", "object": "chat.completion", "created": 1, "model": "gpt-x",
        "system_fingerprint": "fp", "vendor_top": "kept",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": null, "reasoning_content": "thinking",
            "tool_calls": [{"id": "call_1", "type": "function",
                            "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
    })
}

async fn stand_in() -> (String, Seen) {
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let log = log.clone();
        async move {
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            log.lock()
                .unwrap()
                .push((uri.path().to_owned(), headers, body.clone()));
            if uri.path() != "/v1/chat/completions" {
                return (StatusCode::NOT_FOUND, "no such path").into_response();
            }
            if body["stream"] == true {
                ([("content-type", "text/event-stream")], stream_body()).into_response()
            } else {
                axum::Json(whole_body()).into_response()
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn request() -> ChatRequest {
    ChatRequest::new("gpt-x")
        .user("What is the weather in Oslo?")
        .tool(function_tool(
            "get_weather",
            "The weather",
            json!({"type": "object"}),
        ))
        .include_usage()
}

#[tokio::test(start_paused = true)]
async fn the_same_code_chats_with_a_compatible_server_and_drops_nothing() {
    let (url, seen) = stand_in().await;
    let chat = Chat::builder(format!("{url}/v1"))
        .api_key("sk-other")
        .auth_header(AuthHeader::Bearer)
        .build()
        .unwrap();

    let whole = chat.create(&request()).await.unwrap();
    let calls = whole.tool_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].id.as_str(), calls[0].name.as_str()),
        ("call_1", "get_weather")
    );
    assert_eq!(calls[0].raw_arguments, "{\"city\":\"Oslo\"}");
    assert_eq!(calls[0].arguments, json!({"city": "Oslo"}));
    assert_eq!(whole.usage().map(|u| u.total_tokens), Some(13));
    let wire = serde_json::to_value(&whole).unwrap();
    assert_eq!(wire, whole_body(), "a round trip keeps every field");

    let mut chunks = chat.create_stream(&request()).await.unwrap();
    let mut raw = Vec::new();
    while let Some(chunk) = chunks.next().await {
        raw.push(serde_json::to_value(chunk.unwrap()).unwrap());
    }
    assert_eq!(raw.len(), 4);
    assert_eq!(
        raw[0]["choices"][0]["delta"]["reasoning_content"],
        "Oslo, then."
    );
    assert_eq!(raw[2]["choices"][0]["vendor_choice_field"], 1);
    assert_eq!(raw[3]["usage"]["total_tokens"], 13);

    let answer = chat
        .create_stream(&request())
        .await
        .unwrap()
        .answer()
        .await
        .unwrap();
    let calls = answer.tool_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].id.as_str(), calls[0].name.as_str()),
        ("call_1", "get_weather")
    );
    assert_eq!(calls[0].arguments, json!({"city": "Oslo"}));
    assert_eq!(answer.usage().map(|u| u.total_tokens), Some(13));
    assert_eq!(
        answer.raw()["choices"][0]["message"]["reasoning_content"],
        "Oslo, then."
    );

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    for (path, headers, body) in seen.iter() {
        assert_eq!(path, "/v1/chat/completions");
        assert_eq!(headers["authorization"], "Bearer sk-other");
        assert!(headers.get("x-api-key").is_none());
        assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
    }
    assert!(
        seen[0].2.get("stream_options").is_none(),
        "no stream_options without a stream"
    );
    assert_eq!(seen[1].2["stream_options"]["include_usage"], true);
}

#[tokio::test(start_paused = true)]
async fn the_reka_key_never_goes_to_another_origin() {
    let (url, seen) = stand_in().await;
    let (reka, _) = stand_in().await;
    let client = Client::builder()
        .api_key("sk-reka")
        .base_url(&reka)
        .build()
        .unwrap();
    let chat = client.chat().with_base_url(&format!("{url}/v1")).unwrap();
    chat.create(&request()).await.unwrap();
    // On the client's own origin, the key goes.
    let own = client.chat().with_base_url(&format!("{reka}/v1")).unwrap();
    assert_eq!(
        own.url().unwrap().as_str(),
        format!("{reka}/v1/chat/completions")
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].1.get("x-api-key").is_none());
    assert!(seen[0].1.get("authorization").is_none());
}

struct Attempts(Arc<AtomicUsize>);

impl HttpHook for Attempts {
    fn on_request(&self, _: &mut reqwest::Request, _: &str) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(3)
        .initial_backoff(Duration::from_millis(1))
        .max_backoff(Duration::from_millis(5))
}

#[tokio::test(start_paused = true)]
async fn a_refused_connection_is_retried_because_nothing_was_sent() {
    // A port with nothing listening: every connection is refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let attempts = Arc::new(AtomicUsize::new(0));
    let chat = Chat::builder(format!("http://127.0.0.1:{port}/v1"))
        .retry_policy(quick_retries())
        .hook(Attempts(attempts.clone()))
        .build()
        .unwrap();
    let err = chat.create(&request()).await.unwrap_err();
    assert!(
        matches!(err, reka_inference::Error::Transport(ref e) if e.is_connect()),
        "{err:?}"
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn a_connection_reset_after_the_request_was_sent_is_not_retried() {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            // Read the request, then hang up without a byte of answer.
            let mut buf = vec![0u8; 64 << 10];
            let _ = socket.read(&mut buf).await;
            drop(socket);
        }
    });
    let attempts = Arc::new(AtomicUsize::new(0));
    let chat = Chat::builder(format!("http://127.0.0.1:{port}/v1"))
        .retry_policy(quick_retries())
        .hook(Attempts(attempts.clone()))
        .build()
        .unwrap();
    let err = chat.create(&request()).await.unwrap_err();
    assert!(
        matches!(err, reka_inference::Error::Transport(ref e) if !e.is_connect()),
        "{err:?}"
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn the_simulator_honours_tools_n_max_tokens_json_and_usage() {
    let sim = reka_inference_sim::start(reka_inference_sim::SimConfig::new())
        .await
        .unwrap();
    let client = Client::builder()
        .api_key(reka_inference_sim::DEV_API_KEY)
        .base_url(sim.base_url())
        .build()
        .unwrap();
    let chat = client.chat();
    let tool = function_tool(
        "get_weather",
        "The weather",
        json!({"type": "object", "properties": {"city": {"type": "string"}}}),
    );
    let ask = ChatRequest::new("qwen3-vl-32b")
        .user("Use get_weather for Oslo.")
        .tool(tool);
    let whole = chat.create(&ask).await.unwrap();
    assert_eq!(whole.tool_calls()[0].name, "get_weather");
    let streamed = chat
        .create_stream(&ask.clone().include_usage())
        .await
        .unwrap()
        .answer()
        .await
        .unwrap();
    assert_eq!(streamed.tool_calls()[0].name, "get_weather");
    assert_eq!(
        streamed.tool_calls()[0].arguments,
        whole.tool_calls()[0].arguments
    );
    assert!(streamed.usage().is_some_and(|u| u.total_tokens > 0));

    let cut = chat
        .create(
            &ChatRequest::new("qwen3-vl-32b")
                .user("Talk a lot.")
                .max_tokens(3)
                .n(2),
        )
        .await
        .unwrap();
    assert_eq!(cut.choices.len(), 2);
    assert_eq!(cut.raw()["choices"][1]["finish_reason"], "length");
    assert_eq!(cut.text().map(|t| t.split_whitespace().count()), Some(3));

    let json_answer = chat
        .create(
            &ChatRequest::new("qwen3-vl-32b")
                .user("JSON please.")
                .json_object(),
        )
        .await
        .unwrap();
    let parsed: Value = serde_json::from_str(json_answer.text().unwrap()).unwrap();
    assert!(parsed.is_object());
    sim.shutdown().await;
}
