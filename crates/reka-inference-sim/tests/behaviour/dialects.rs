//! What distinguishes each dialect (`infer`, `fal`) from the default `reka`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use reka_inference_sim::{Catalog, Dialect, SimConfig};
use serde_json::{Value, json};

use crate::common::{Env, eventually, fixed_catalog, input_for};

fn config(dialect: Dialect) -> SimConfig {
    SimConfig::new().time_scale(0.001).seed(5).dialect(dialect)
}

#[test]
fn dialects_parse_by_name() {
    for d in Dialect::ALL {
        assert_eq!(d.to_string().parse::<Dialect>(), Ok(d));
    }
    assert_eq!(Dialect::default(), Dialect::Reka);
    assert!("openai".parse::<Dialect>().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infer_answers_a_lean_submit() {
    let env = Env::new(config(Dialect::Infer)).await;
    let a = env
        .post(
            "/v2/inference/nano-banana/text-to-image",
            json!({"input": {"prompt": "x"}}),
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.text);
    let keys: Vec<&String> = a.json.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["request_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_list_wrapper_and_chat_models() {
    for (dialect, wrapper) in [
        (Dialect::Reka, "items"),
        (Dialect::Infer, "models"),
        (Dialect::Fal, "items"),
    ] {
        let env = Env::new(config(dialect)).await;
        let a = env.get("/v2/inference/models").await;
        assert_eq!(a.status, 200);
        assert_eq!(a.json.as_object().unwrap().len(), 1, "{}", a.text);
        let models = a.json[wrapper].as_array().unwrap();
        for m in models {
            assert!(m["model_id"].is_string() && m["capability"].is_string());
            assert_eq!(
                m.get("endpoint_id").is_some(),
                dialect != Dialect::Infer,
                "{m}"
            );
        }
        let chat: Vec<&str> = models
            .iter()
            .filter(|m| m["capability"] == "chat")
            .map(|m| m["model_id"].as_str().unwrap())
            .collect();
        assert_eq!(chat, ["qwen3-vl-32b", "qwen3-vl-8b", "qwen3-32b"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infer_answers_bad_input_422_as_fastapi_does() {
    let env = Env::new(config(Dialect::Infer)).await;
    for body in [
        json!({}),
        json!({"input": 3}),
        json!({"input": {}, "webhook_url": "nope"}),
    ] {
        let a = env
            .post("/v2/inference/nano-banana/text-to-image", body)
            .await;
        assert_eq!(a.status, 422, "{}", a.text);
        let detail = a.json["detail"].as_array().unwrap();
        assert!(!detail.is_empty());
        for d in detail {
            assert!(
                d["loc"].is_array() && d["msg"].is_string() && d["type"].is_string(),
                "{d}"
            );
        }
        assert!(a.json.get("error").is_none());
    }
    // An unknown model too; an unknown path stays 404 with the envelope.
    let a = env
        .post("/v2/inference/nope/text-to-image", json!({"input": {}}))
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    let a = env
        .post("/v2/inference/nano-banana/dance", json!({"input": {}}))
        .await;
    a.error(404, "not_found_error");
    // The reka dialect keeps the 400 envelope.
    let env = Env::new(config(Dialect::Reka)).await;
    let a = env
        .post("/v2/inference/nano-banana/text-to-image", json!({}))
        .await;
    a.error(400, "validation_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infer_outputs_are_extensionless_presigned_urls_with_a_content_type_and_a_price() {
    let env = Env::new(config(Dialect::Infer)).await;
    let cases = [
        (
            "nano-banana/text-to-image",
            "/images/0/url",
            "image/png",
            &b"\x89PNG"[..],
        ),
        (
            "kling-v3-pro/image-to-video",
            "/video/url",
            "image/gif",
            &b"GIF8"[..],
        ),
        (
            "reka-tts-1/text-to-speech",
            "/audio/url",
            "audio/wav",
            &b"RIFF"[..],
        ),
    ];
    for (endpoint, pointer, content_type, magic) in cases {
        let id = env
            .submit(endpoint, input_for(endpoint, "hello there"))
            .await;
        env.wait_for(&id, "COMPLETED").await;
        let r = env.result(&id).await;
        let url = r["output"]
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap();
        let parsed = url::Url::parse(url).unwrap();
        let last = parsed.path_segments().unwrap().next_back().unwrap();
        assert!(!last.contains('.'), "{url} has an extension");
        assert!(parsed.path().starts_with("/_sim/blobs/"), "{url}");
        assert!(
            parsed.query().unwrap().contains("X-Amz-Signature="),
            "{url}"
        );
        let resp = env.http.get(url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], content_type);
        assert!(resp.bytes().await.unwrap().starts_with(magic));
        let price = r["output"]["usage"]["price_usd"].as_f64().unwrap();
        assert!(price > 0.0 && price < 1.0, "{price}");
    }
    // The price is the catalog's, per endpoint: the same for every job.
    let a = env
        .submit("nano-banana/text-to-image", json!({"prompt": "a"}))
        .await;
    let b = env
        .submit("nano-banana/text-to-image", json!({"prompt": "b"}))
        .await;
    env.wait_for(&a, "COMPLETED").await;
    env.wait_for(&b, "COMPLETED").await;
    let pa = env.result(&a).await["output"]["usage"]["price_usd"].clone();
    assert_eq!(pa, json!(0.039));
    assert_eq!(pa, env.result(&b).await["output"]["usage"]["price_usd"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infer_failures_carry_a_message_and_a_code() {
    let env = Env::new(config(Dialect::Infer).failure_rate(1.0)).await;
    let id = env
        .submit("nano-banana/text-to-image", json!({"prompt": "fails"}))
        .await;
    env.wait_for(&id, "FAILED").await;
    let r = env.result(&id).await;
    assert!(
        r["error"]["message"].is_string() && r["error"]["code"].is_string(),
        "{r}"
    );
    assert!(r["output"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fal_answers_202_until_done_then_200_with_a_price() {
    let env = Env::new(config(Dialect::Fal).catalog(fixed_catalog(1, 100.0))).await;
    let id = env.submit("m/edit", json!({"prompt": "x"})).await;
    for path in [
        format!("/v2/inference/requests/{id}/status"),
        format!("/v2/inference/requests/{id}"),
    ] {
        let a = env.get(&path).await;
        assert_eq!(a.status, 202, "{}", a.text);
        assert_eq!(a.json["status"], "IN_PROGRESS");
    }
    let mut done = None;
    eventually("completion", async || {
        let a = env.get(&format!("/v2/inference/requests/{id}")).await;
        let finished = a.status == 200;
        if finished {
            done = Some(a.json);
        }
        finished
    })
    .await;
    let r = done.unwrap();
    assert_eq!(r["status"], "COMPLETED");
    assert!(r["output"]["usage"]["price_usd"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fal_reports_some_failures_as_completed_with_an_error() {
    let env = Env::new(config(Dialect::Fal).time_scale(0.0).failure_rate(1.0)).await;
    let mut words = Vec::new();
    for i in 0..12 {
        let id = env
            .submit(
                "nano-banana/text-to-image",
                json!({"prompt": format!("p{i}")}),
            )
            .await;
        let r = env.result(&id).await;
        assert!(r["output"].is_null(), "{r}");
        assert!(r["error"]["message"].is_string(), "{r}");
        words.push(r["status"].as_str().unwrap().to_string());
    }
    assert!(words.iter().any(|w| w == "COMPLETED"), "{words:?}");
    assert!(words.iter().any(|w| w == "FAILED"), "{words:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fal_cancels_a_running_job_asynchronously() {
    // 3 simulated seconds of cancel delay at 0.05: 150 ms of wall time.
    let env = Env::new(
        SimConfig::new()
            .time_scale(0.05)
            .dialect(Dialect::Fal)
            .catalog(fixed_catalog(1, 1000.0)),
    )
    .await;
    let id = env.submit("m/edit", json!({})).await;
    let queued = env.submit("m/edit", json!({})).await;
    let a = env
        .post(&format!("/v2/inference/requests/{id}/cancel"), json!({}))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json["status"], "IN_PROGRESS", "{}", a.text);
    let s = env
        .get(&format!("/v2/inference/requests/{id}/status"))
        .await;
    assert_eq!(
        (s.status, s.json["status"].as_str()),
        (202, Some("IN_PROGRESS"))
    );
    let status_of = async |id: &str| {
        let a = env
            .get(&format!("/v2/inference/requests/{id}/status"))
            .await;
        a.json["status"].as_str().unwrap().to_string()
    };
    eventually("the cancel to take effect", async || {
        status_of(&id).await == "CANCELLED"
    })
    .await;
    // The worker went to the next job once the cancel took effect.
    assert_eq!(status_of(&queued).await, "IN_PROGRESS");
    // A queued job is cancelled at once.
    let third = env.submit("m/edit", json!({})).await;
    let a = env
        .post(&format!("/v2/inference/requests/{third}/cancel"), json!({}))
        .await;
    assert_eq!(a.json["status"], "CANCELLED");
}

#[derive(Clone, Default)]
struct Receiver {
    bodies: Arc<Mutex<Vec<Value>>>,
}

async fn hook(State(r): State<Receiver>, body: String) -> StatusCode {
    r.bodies
        .lock()
        .unwrap()
        .push(serde_json::from_str(&body).unwrap());
    StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fal_webhooks_come_in_fals_envelope() {
    let rec = Receiver::default();
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(rec.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let catalog = Catalog::from_json(
        r#"{"models":[{"model_id":"ok","capability":"edit","duration":{"fixed":1}},
                      {"model_id":"bad","capability":"edit","duration":{"fixed":1},"failure_rate":1.0}]}"#,
    )
    .unwrap();
    let env = Env::new(config(Dialect::Fal).catalog(catalog)).await;
    let mut ids = Vec::new();
    for endpoint in ["ok/edit", "bad/edit"] {
        let a = env
            .post(
                &format!("/v2/inference/{endpoint}"),
                json!({"input": {"prompt": "p"}, "webhook_url": hook_url}),
            )
            .await;
        ids.push(a.json["request_id"].as_str().unwrap().to_string());
    }
    eventually("two deliveries", async || {
        rec.bodies.lock().unwrap().len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let bodies = rec.bodies.lock().unwrap().clone();
    let by_id = |id: &str| {
        bodies
            .iter()
            .find(|b| b["request_id"] == id)
            .unwrap()
            .clone()
    };
    let ok = by_id(&ids[0]);
    let keys: std::collections::BTreeSet<&str> =
        ok.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "error",
            "gateway_request_id",
            "payload",
            "payload_error",
            "request_id",
            "status"
        ]
        .into()
    );
    assert_eq!(ok["status"], "OK");
    assert!(ok["payload"]["images"].is_array(), "{ok}");
    assert!(ok["error"].is_null() && ok["payload_error"].is_null());
    assert!(uuid::Uuid::parse_str(ok["gateway_request_id"].as_str().unwrap()).is_ok());
    let bad = by_id(&ids[1]);
    assert_eq!(bad["status"], "ERROR");
    assert!(bad["payload"].is_null());
    assert!(
        bad["error"].as_str().is_some_and(|m| !m.is_empty()),
        "{bad}"
    );
}
