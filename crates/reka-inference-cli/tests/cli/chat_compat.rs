//! `chat` against a stand-in OpenAI-compatible server at `/v1`: `--json`
//! prints its tool calls and its usage chunk, and the Reka key stays home.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::common::BIN;

/// Requests seen: (request line, lower-cased headers, body).
type Seen = Arc<Mutex<Vec<(String, Vec<String>, Value)>>>;

fn chunk(choices: Value, usage: Value) -> String {
    let c = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x",
                   "choices": choices, "usage": usage});
    format!("data: {c}\n\n")
}

fn serve() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let mut headers = Vec::new();
            let mut length = 0;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
                let h = h.trim().to_ascii_lowercase();
                if let Some(n) = h.strip_prefix("content-length:") {
                    length = n.trim().parse().unwrap_or(0);
                }
                headers.push(h);
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let stream_wanted = body["stream"] == true;
            log.lock()
                .unwrap()
                .push((line.trim().to_owned(), headers, body));
            let (ct, payload) = if !line.starts_with("POST /v1/chat/completions ") {
                ("text/plain", "no such path".to_owned())
            } else if stream_wanted {
                let text = [
                    chunk(json!([{"index": 0, "delta": {"role": "assistant", "tool_calls": [
                        {"index": 0, "id": "call_1", "type": "function",
                         "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]}}]), Value::Null),
                    chunk(json!([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]), Value::Null),
                    chunk(json!([]), json!({"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12})),
                    "data: [DONE]\n\n".to_owned(),
                ]
                .concat();
                ("text/event-stream", text)
            } else {
                let whole = json!({"id": "c2", "object": "chat.completion", "created": 1, "model": "gpt-x",
                    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
                        "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]}}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}});
                ("application/json", whole.to_string())
            };
            let status = if ct == "text/plain" {
                "404 Not Found"
            } else {
                "200 OK"
            };
            let mut out = stream;
            let _ = write!(
                out,
                "HTTP/1.1 {status}\r\ncontent-type: {ct}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{payload}",
                payload.len()
            );
        }
    });
    (url, seen)
}

fn chat(url: &str, extra: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(BIN);
    cmd.env_remove("REKA_API_KEY")
        .env_remove("REKA_BASE_URL")
        .env_remove("REKA_CHAT_BASE_URL")
        .env_remove("REKA_CHAT_API_KEY")
        .env_remove("RUST_LOG")
        .args([
            "--api-key",
            "sk-reka-secret",
            "--json",
            "chat",
            "--model",
            "gpt-x",
        ])
        .args(["--chat-base-url", &format!("{url}/v1")])
        .args([
            "--tool",
            r#"{"name": "get_weather", "parameters": {"type": "object"}}"#,
        ])
        .args(extra)
        .arg("Weather in Oslo?");
    cmd.output().expect("runs")
}

#[test]
fn json_chat_prints_tool_calls_and_the_usage_chunk() {
    let (url, seen) = serve();
    let out = chat(&url, &["--stream"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(lines[2]["usage"]["total_tokens"], 12);

    let out = chat(&url, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let whole: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        whole["choices"][0]["message"]["tool_calls"][0]["id"],
        "call_1"
    );
    assert_eq!(whole["usage"]["total_tokens"], 12);

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    for (line, headers, body) in seen.iter() {
        assert!(line.starts_with("POST /v1/chat/completions "), "{line}");
        assert!(
            !headers.iter().any(|h| h.contains("sk-reka-secret")),
            "the Reka key went to another origin: {headers:?}"
        );
        assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
    }
    assert_eq!(seen[0].2["stream_options"]["include_usage"], true);
}

#[test]
fn the_servers_own_key_goes_as_bearer_or_as_asked() {
    let (url, seen) = serve();
    assert!(chat(&url, &["--chat-api-key", "sk-other"]).status.success());
    assert!(
        chat(&url, &["--chat-api-key", "sk-other", "--auth", "x-api-key"])
            .status
            .success()
    );
    let out = chat(&url, &["--auth", "basic"]);
    assert_eq!(out.status.code(), Some(2));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "a bad --auth sends nothing");
    assert!(
        seen[0]
            .1
            .iter()
            .any(|h| h == "authorization: bearer sk-other")
    );
    assert!(seen[1].1.iter().any(|h| h == "x-api-key: sk-other"));
}

#[test]
fn without_a_key_of_its_own_the_text_output_shows_the_tool_call() {
    let (url, _) = serve();
    let mut cmd = std::process::Command::new(BIN);
    let out = cmd
        .env_remove("REKA_API_KEY")
        .env_remove("REKA_BASE_URL")
        .args([
            "chat",
            "--chat-base-url",
            &format!("{url}/v1"),
            "--stream",
            "hi",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("tool call call_1: get_weather({\"city\":\"Oslo\"})"),
        "{text}"
    );
    // Nothing more to read from the stand-in's socket.
    let _ = std::io::sink().flush();
}
