//! Property tests of the simulator's request parsing: whatever a client
//! sends (query strings, bodies, content types, headers), the answer is a
//! documented status, never a 5xx, and every error is the documented
//! envelope with an `X-Request-ID`. `PROPTEST_CASES` sets the campaign size.

use proptest::prelude::*;
use reka_inference_sim::{DEV_API_KEY, RunningSim, SimConfig, start};
use serde_json::Value;

struct Env {
    rt: tokio::runtime::Runtime,
    sim: RunningSim,
    http: reqwest::Client,
}

fn env() -> Env {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt
        .block_on(start(SimConfig::new().time_scale(0.001)))
        .unwrap();
    Env {
        rt,
        sim,
        http: reqwest::Client::new(),
    }
}

/// Sends `request` and checks the answer's shape; returns the status.
fn check(env: &Env, request: reqwest::RequestBuilder) -> Result<u16, TestCaseError> {
    let (status, has_id, body) = env.rt.block_on(async {
        let resp = request.send().await.unwrap();
        let status = resp.status().as_u16();
        let has_id = resp.headers().contains_key("x-request-id");
        (status, has_id, resp.bytes().await.unwrap())
    });
    prop_assert!(status < 500, "{status}: {}", String::from_utf8_lossy(&body));
    prop_assert!(has_id, "no X-Request-ID");
    if status == 422 {
        // An input its endpoint's schema refuses: FastAPI's body, whatever the dialect.
        let v: Value =
            serde_json::from_slice(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let detail = v["detail"].as_array().cloned().unwrap_or_default();
        prop_assert!(!detail.is_empty(), "{v}");
        for d in detail {
            prop_assert!(
                d["loc"][0] == "body"
                    && d["loc"][1] == "input"
                    && d["msg"].is_string()
                    && d["type"].is_string(),
                "{d}"
            );
        }
    } else if status >= 400 {
        let v: Value =
            serde_json::from_slice(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(
            v["error"]["type"].is_string() && v["error"]["message"].is_string(),
            "{v}"
        );
    }
    Ok(status)
}

fn query_part() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("limit"),
        Just("offset"),
        Just("status"),
        Just("start"),
        Just("end"),
        Just("expand"),
        Just("endpoint_id"),
        Just("capability"),
        Just("model_id"),
        Just("other"),
    ];
    (key, "[ -~]{0,30}").prop_map(|(k, v)| format!("{k}={}", urlencode(&v)))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~:".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

proptest! {
    // Each case starts a simulator: 64 cases unless PROPTEST_CASES says.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_list_query_is_answered_without_a_server_error(parts in proptest::collection::vec(query_part(), 0..6)) {
        let env = env();
        let url = format!("{}/v2/inference/requests?{}", env.sim.base_url(), parts.join("&"));
        let status = check(&env, env.http.get(url).header("x-api-key", DEV_API_KEY))?;
        prop_assert!(status == 200 || status == 400, "{status}");
    }

    #[test]
    fn any_submit_body_is_answered_without_a_server_error(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        json_body in "\\{\"input\": ?(\\{\\}|null|1|\"x\"|\\[\\]|\\{\"prompt\": ?(\"[ -~]{0,20}\"|3)\\}|\\{\"prompt\": ?\"p\", ?\"image_url\": ?(\"[ -~]{0,40}\"|\"data:image/png;base64,[A-Za-z0-9+/=]{0,40}\"|\"https://[a-z.]{1,10}/[ -~]{0,10}\"|\\{\\})\\})(, ?\"webhook_url\": ?(null|\"[ -~]{0,40}\"|7))?\\}",
        content_type in prop_oneof![Just("application/json"), Just("text/plain"), Just("application/json; charset=utf-8")],
        capability in prop_oneof![Just("text-to-image"), Just("edit"), Just("image-to-bbox"), Just("fly")],
    ) {
        let env = env();
        let url = format!("{}/v2/inference/nano-banana/{capability}", env.sim.base_url());
        for payload in [body, json_body.into_bytes()] {
            let status = check(&env, env.http.post(&url).header("x-api-key", DEV_API_KEY)
                .header("content-type", content_type).body(payload))?;
            prop_assert!([202, 400, 404, 422].contains(&status), "{status}");
        }
    }

    #[test]
    fn any_chat_body_is_answered_without_a_server_error(body in "[ -~]{0,200}", stream in any::<bool>()) {
        let env = env();
        let url = format!("{}/v2/inference/chat/completions", env.sim.base_url());
        let framed = format!("{{\"model\": \"qwen3-vl-32b\", \"stream\": {stream}, \"messages\": {body}}}");
        for payload in [body, framed] {
            let status = check(&env, env.http.post(&url).header("x-api-key", DEV_API_KEY)
                .header("content-type", "application/json").body(payload))?;
            prop_assert!(status == 200 || status == 400, "{status}");
        }
    }
}
