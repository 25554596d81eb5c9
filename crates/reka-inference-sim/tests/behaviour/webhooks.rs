//! Webhook delivery to a tiny receiver, with retries.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use reka_inference_sim::SimConfig;
use serde_json::{Value, json};

use crate::common::{Env, eventually, fixed_catalog};

#[derive(Clone, Default)]
struct Receiver {
    bodies: Arc<Mutex<Vec<Value>>>,
    calls: Arc<Mutex<u32>>,
}

async fn hook(State(r): State<Receiver>, body: String) -> StatusCode {
    r.bodies
        .lock()
        .unwrap()
        .push(serde_json::from_str(&body).unwrap());
    StatusCode::NO_CONTENT
}

/// Fails the first two calls, then accepts.
async fn flaky(State(r): State<Receiver>, body: String) -> StatusCode {
    let n = {
        let mut calls = r.calls.lock().unwrap();
        *calls += 1;
        *calls
    };
    if n <= 2 {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    r.bodies
        .lock()
        .unwrap()
        .push(serde_json::from_str(&body).unwrap());
    StatusCode::OK
}

async fn receiver() -> (String, Receiver) {
    let r = Receiver::default();
    let app = Router::new()
        .route("/hook", post(hook))
        .route("/flaky", post(flaky))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_states_are_posted_to_the_webhook() {
    let (url, rec) = receiver().await;
    let env = Env::new(
        SimConfig::new()
            .catalog(fixed_catalog(1, 1.0))
            .time_scale(0.01),
    )
    .await;
    let body = json!({"input": {"prompt": "hook"}, "webhook_url": format!("{url}/hook")});
    let done = env.post("/v2/inference/m/edit", body.clone()).await.json["request_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Nobody polls: the scheduler alone must finish the job and call the hook.
    eventually("a webhook", async || !rec.bodies.lock().unwrap().is_empty()).await;
    let got = rec.bodies.lock().unwrap()[0].clone();
    assert_eq!(got["request_id"], done);
    assert_eq!(got["status"], "COMPLETED");
    assert!(got["output"]["images"].is_array());
    assert!(got["completed_at"].is_string());

    // Cancelled is terminal too.
    // Another seed: same-seed simulators hand out the same request ids.
    let slow = Env::new(
        SimConfig::new()
            .seed(1)
            .catalog(fixed_catalog(1, 1000.0))
            .time_scale(1.0),
    )
    .await;
    let id = slow.post("/v2/inference/m/edit", body).await.json["request_id"]
        .as_str()
        .unwrap()
        .to_string();
    slow.post(&format!("/v2/inference/requests/{id}/cancel"), json!({}))
        .await;
    eventually("the cancel webhook", async || {
        rec.bodies
            .lock()
            .unwrap()
            .iter()
            .any(|b| b["request_id"] == id)
    })
    .await;
    let got = rec
        .bodies
        .lock()
        .unwrap()
        .iter()
        .find(|b| b["request_id"] == id)
        .unwrap()
        .clone();
    assert_eq!(got["status"], "CANCELLED");
    let stats = env.sim.stats().await;
    assert_eq!(stats.webhooks_delivered, 1);
    assert_eq!(stats.webhook_attempts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_retried_with_backoff() {
    let (url, rec) = receiver().await;
    let env = Env::new(
        SimConfig::new()
            .catalog(fixed_catalog(1, 1.0))
            .time_scale(0.001),
    )
    .await;
    let body = json!({"input": {}, "webhook_url": format!("{url}/flaky")});
    env.post("/v2/inference/m/edit", body).await;
    eventually("a delivery after retries", async || {
        !rec.bodies.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(*rec.calls.lock().unwrap(), 3);
    eventually("stats", async || {
        env.sim.stats().await.webhooks_delivered == 1
    })
    .await;
    assert_eq!(env.sim.stats().await.webhook_attempts, 3);

    // An unreachable receiver is given up after the last retry.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/gone", dead.local_addr().unwrap());
    drop(dead);
    env.post(
        "/v2/inference/m/edit",
        json!({"input": {}, "webhook_url": dead_url}),
    )
    .await;
    eventually("give up", async || {
        env.sim.stats().await.webhooks_failed == 1
    })
    .await;
    assert_eq!(env.sim.stats().await.webhook_attempts, 3 + 5);
}
