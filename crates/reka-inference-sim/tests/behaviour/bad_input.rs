//! Bad input of every kind: a clear 4xx in the envelope, never a 500.

use reka_inference_sim::SimConfig;
use serde_json::json;

use crate::common::{Env, KEY};

const SUBMIT: &str = "/v2/inference/nano-banana/text-to-image";

async fn raw(
    env: &Env,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> crate::common::Answer {
    let mut req = env
        .http
        .post(env.url(path))
        .header("X-Api-Key", KEY)
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    Env::answer(req.send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_submit_bodies() {
    let env = Env::new(
        SimConfig::new()
            .time_scale(100.0)
            .max_body_bytes(1024 * 1024),
    )
    .await;
    let json_ct = Some("application/json");
    raw(&env, SUBMIT, json_ct, "{\"input\": ")
        .await
        .error(400, "validation_error");
    raw(&env, SUBMIT, json_ct, "")
        .await
        .error(400, "validation_error");
    raw(&env, SUBMIT, Some("text/plain"), "{\"input\": {}}")
        .await
        .error(400, "validation_error");
    raw(&env, SUBMIT, None, "{\"input\": {}}")
        .await
        .error(400, "validation_error");
    raw(
        &env,
        SUBMIT,
        Some("application/x-www-form-urlencoded"),
        "input=1",
    )
    .await
    .error(400, "validation_error");
    // Parameters on the content type are fine.
    assert_eq!(
        raw(
            &env,
            SUBMIT,
            Some("application/json; charset=utf-8"),
            "{\"input\": {\"prompt\": \"a\"}}"
        )
        .await
        .status,
        202
    );

    let big = format!(
        "{{\"input\": {{\"prompt\": \"{}\"}}}}",
        "x".repeat(2 * 1024 * 1024)
    );
    raw(&env, SUBMIT, json_ct, big)
        .await
        .error(413, "request_too_large");
    // Exactly at the limit is accepted.
    let pad = 1024 * 1024 - "{\"input\": {\"prompt\": \"\"}}".len();
    let at_limit = format!("{{\"input\": {{\"prompt\": \"{}\"}}}}", "y".repeat(pad));
    assert_eq!(at_limit.len(), 1024 * 1024);
    assert_eq!(raw(&env, SUBMIT, json_ct, at_limit).await.status, 202);

    let cases = [
        (json!([1, 2]), None),
        (json!("input"), None),
        (json!({}), Some("input")),
        (json!({"input": null}), Some("input")),
        (json!({"input": "a cat"}), Some("input")),
        (json!({"input": [1]}), Some("input")),
        (json!({"input": {}, "webhook_url": 5}), Some("webhook_url")),
        (json!({"input": {}, "webhook_url": ""}), Some("webhook_url")),
        (
            json!({"input": {}, "webhook_url": "/relative/path"}),
            Some("webhook_url"),
        ),
        (
            json!({"input": {}, "webhook_url": "ftp://example.com/x"}),
            Some("webhook_url"),
        ),
        (
            json!({"input": {}, "webhook_url": "not a url"}),
            Some("webhook_url"),
        ),
        (
            json!({"input": {}, "webhook_url": format!("http://example.com/{}", "a".repeat(2084))}),
            Some("webhook_url"),
        ),
    ];
    for (body, param) in cases {
        let a = env.post(SUBMIT, body.clone()).await;
        let e = a.error(400, "validation_error");
        assert_eq!(e["param"].as_str(), param, "{body}");
        if param.is_some() {
            assert!(
                e["details"].as_array().is_some_and(|d| !d.is_empty()),
                "{body}"
            );
        }
    }
    // The longest allowed webhook_url and unknown fields are fine.
    let url = format!(
        "http://example.com/{}",
        "a".repeat(2083 - "http://example.com/".len())
    );
    assert_eq!(url.len(), 2083);
    let ok = env
        .post(
            SUBMIT,
            json!({"input": {"prompt": "a"}, "webhook_url": url, "priority": "high"}),
        )
        .await;
    assert_eq!(ok.status, 202, "{}", ok.text);

    // Models and capabilities.
    let a = env
        .post(
            "/v2/inference/no-such-model/text-to-image",
            json!({"input": {}}),
        )
        .await;
    assert_eq!(a.error(400, "validation_error")["param"], "model");
    let a = env
        .post("/v2/inference/sam3/text-to-image", json!({"input": {}}))
        .await;
    assert_eq!(a.error(400, "validation_error")["param"], "model");
    env.post("/v2/inference/sam3/fly", json!({"input": {}}))
        .await
        .error(404, "not_found_error");
    // An idempotency key must be a visible-ASCII header value; the spec
    // sets no length limit, so a long one is accepted.
    let bad_key = env
        .http
        .post(env.url(SUBMIT))
        .header("X-Api-Key", KEY)
        .header(
            "Idempotency-Key",
            reqwest::header::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        )
        .json(&json!({"input": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        Env::answer(bad_key).await.error(400, "validation_error")["param"],
        "Idempotency-Key"
    );
    let long = env
        .http
        .post(env.url(SUBMIT))
        .header("X-Api-Key", KEY)
        .header("Idempotency-Key", "k".repeat(1000))
        .json(&json!({"input": {"prompt": "a"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(long.status().as_u16(), 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_values() {
    let env = Env::new(SimConfig::new()).await;
    let cases = [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("limit=-5", "limit"),
        ("offset=-1", "offset"),
        ("offset=1.5", "offset"),
        ("start=yesterday", "start"),
        ("end=2025-13-01T00:00:00Z", "end"),
        ("status=DONE", "status"),
        ("status=in_queue", "status"),
    ];
    for (q, param) in cases {
        let a = env.get(&format!("/v2/inference/requests?{q}")).await;
        assert_eq!(a.error(400, "validation_error")["param"], param, "{q}");
    }
    for ok in [
        "limit=1",
        "limit=100",
        "offset=0",
        "offset=100000",
        // No upper bound in the spec: past the end is an empty page.
        "offset=99999999999999999999999",
        "start=2025-01-01",
        "expand=payloads",
        // Unknown expansions expand nothing (FastAPI's `list[str]`).
        "expand=everything",
        "unknown=1",
    ] {
        assert_eq!(
            env.get(&format!("/v2/inference/requests?{ok}"))
                .await
                .status,
            200,
            "{ok}"
        );
    }
    let a = env
        .get("/v2/inference/requests/x/status?with_logs=maybe")
        .await;
    assert_eq!(a.error(400, "validation_error")["param"], "with_logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_chat_bodies_and_unknown_routes() {
    let env = Env::new(SimConfig::new()).await;
    let chat = "/v2/inference/chat/completions";
    let msgs = json!([{"role": "user", "content": "hi"}]);
    let cases = [
        (json!({"messages": msgs}), "model"),
        (json!({"model": 7, "messages": msgs}), "model"),
        (json!({"model": "qwen3-vl-32b"}), "messages"),
        (
            json!({"model": "qwen3-vl-32b", "messages": "hi"}),
            "messages",
        ),
        (
            json!({"model": "qwen3-vl-32b", "messages": [{"content": "no role"}]}),
            "messages",
        ),
        (
            json!({"model": "qwen3-vl-32b", "messages": msgs, "stream": "yes"}),
            "stream",
        ),
    ];
    for (body, param) in cases {
        let a = env.post(chat, body.clone()).await;
        assert_eq!(a.error(400, "validation_error")["param"], param, "{body}");
    }
    raw(&env, chat, Some("application/json"), "not json")
        .await
        .error(400, "validation_error");

    env.get("/v2/inference/nothing/here/at/all")
        .await
        .error(404, "not_found_error");
    env.get("/elsewhere").await.error(404, "not_found_error");
    let a = env.get(SUBMIT).await;
    assert_eq!(a.status, 405);
    assert!(a.json["error"]["type"].is_string());
    let stats = env.sim.stats().await;
    for (op, by_status) in &stats.requests {
        assert!(
            by_status.keys().all(|s| !s.starts_with('5')),
            "{op}: {by_status:?}"
        );
    }
}
