//! Webhook delivery to a tiny receiver, with retries, and the `webhook`
//! faults (lost, duplicate, delay, reorder, spoof).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use reka_inference_sim::{Dialect, FaultConfig, SimConfig};
use serde_json::{Value, json};

use crate::common::{Env, eventually, fixed_catalog};

#[derive(Clone, Default)]
struct Receiver {
    /// Parsed bodies, in order of arrival.
    bodies: Arc<Mutex<Vec<Value>>>,
    /// The same bodies as received, byte for byte.
    raw: Arc<Mutex<Vec<String>>>,
    calls: Arc<Mutex<u32>>,
}

impl Receiver {
    fn count(&self) -> usize {
        self.bodies.lock().unwrap().len()
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// The `request_id` of each delivery, in order of arrival.
    fn ids(&self) -> Vec<String> {
        self.bodies()
            .iter()
            .map(|b| b["request_id"].as_str().unwrap().to_string())
            .collect()
    }
}

async fn hook(State(r): State<Receiver>, body: String) -> StatusCode {
    r.bodies
        .lock()
        .unwrap()
        .push(serde_json::from_str(&body).unwrap());
    r.raw.lock().unwrap().push(body);
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

fn faults(spec: &str) -> FaultConfig {
    spec.parse().unwrap()
}

/// Submits a job with a webhook to `url` and returns its request id.
async fn submit_hooked(env: &Env, url: &str) -> String {
    let body = json!({"input": {"prompt": "hook"}, "webhook_url": url});
    let a = env.post("/v2/inference/m/edit", body).await;
    assert_eq!(a.status, 202, "{}", a.text);
    a.json["request_id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_webhooks_are_never_attempted() {
    let (url, rec) = receiver().await;
    let hook_url = format!("{url}/hook");
    let env = Env::new(
        SimConfig::new()
            .catalog(fixed_catalog(3, 0.5))
            .time_scale(0.01)
            .faults(faults("webhook:lost=1")),
    )
    .await;
    let mut lost = Vec::new();
    for _ in 0..3 {
        lost.push(submit_hooked(&env, &hook_url).await);
    }
    for id in &lost {
        env.wait_for(id, "COMPLETED").await;
    }
    // The admin API takes the webhook scope too: lift the fault and send one
    // delivery through, which arrives alone.
    let put = Env::answer(
        env.http
            .put(env.url("/_sim/faults"))
            .json(&json!({"webhook": {"lost": 0.0}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.json["spec"], "webhook:lost=0");
    let kept = submit_hooked(&env, &hook_url).await;
    eventually("the one delivery", async || rec.count() == 1).await;
    assert_eq!(rec.ids(), [kept]);
    let stats = env.sim.stats().await;
    assert_eq!(stats.webhooks_lost, 3);
    assert_eq!(stats.webhook_attempts, 1, "lost deliveries make no attempt");
    assert_eq!((stats.webhooks_delivered, stats.webhooks_failed), (1, 0));
    // A nonsensical webhook fault is refused by the admin API.
    let bad = Env::answer(
        env.http
            .put(env.url("/_sim/faults"))
            .json(&json!("webhook:500=1"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let e = bad.error(400, "validation_error");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("not a webhook fault"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star_faults_do_not_touch_webhooks() {
    let (url, rec) = receiver().await;
    let env = Env::new(
        SimConfig::new()
            .catalog(fixed_catalog(1, 0.5))
            .time_scale(0.01)
            .faults(faults("*:lost=1,get_status:latency=1ms")),
    )
    .await;
    // `*:lost` loses the submit's answer (the job exists) but not its webhook.
    let send = env
        .http
        .post(env.url("/v2/inference/m/edit"))
        .header("X-Api-Key", crate::common::KEY)
        .json(&json!({"input": {}, "webhook_url": format!("{url}/hook")}))
        .send()
        .await;
    assert!(send.is_err());
    eventually("the delivery", async || rec.count() == 1).await;
    assert_eq!(rec.bodies()[0]["status"], "COMPLETED");
    assert_eq!(env.sim.stats().await.webhooks_lost, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_webhooks_arrive_twice_with_identical_bodies() {
    let (url, rec) = receiver().await;
    let env = Env::new(
        SimConfig::new()
            .catalog(fixed_catalog(1, 0.5))
            .time_scale(0.01)
            .faults(faults("webhook:duplicate=1")),
    )
    .await;
    let id = submit_hooked(&env, &format!("{url}/hook")).await;
    eventually("two deliveries", async || rec.count() == 2).await;
    let raw = rec.raw.lock().unwrap().clone();
    assert_eq!(raw[0], raw[1], "byte-identical copies");
    assert_eq!(rec.ids(), [id.clone(), id]);
    assert_eq!(rec.bodies()[0]["status"], "COMPLETED");
    eventually("stats", async || {
        env.sim.stats().await.webhooks_delivered == 2
    })
    .await;
    let stats = env.sim.stats().await;
    assert_eq!((stats.webhooks_duplicated, stats.webhook_attempts), (1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_completion_arrives_while_the_job_runs_then_the_real_one() {
    let (url, rec) = receiver().await;
    // Jobs of 300 simulated seconds, 3 s of wall time; the spoof is sent
    // after 1 simulated second (10 ms).
    let env = Env::new(
        SimConfig::new()
            .catalog(fixed_catalog(1, 300.0))
            .time_scale(0.01)
            .faults(faults("webhook:spoof=1")),
    )
    .await;
    let id = submit_hooked(&env, &format!("{url}/hook")).await;
    eventually("the spoofed delivery", async || rec.count() == 1).await;
    let spoof = rec.bodies()[0].clone();
    assert_eq!(spoof["request_id"], id);
    assert_eq!(spoof["status"], "COMPLETED");
    assert!(spoof["output"]["images"][0]["url"].is_string(), "{spoof}");
    assert!(spoof["completed_at"].is_string());
    // The API tells the truth: the job has not finished.
    let now = env.status(&id).await;
    assert!(
        ["IN_QUEUE", "IN_PROGRESS"].contains(&now["status"].as_str().unwrap()),
        "{now}"
    );
    assert!(env.result(&id).await["output"].is_null());
    // The genuine delivery follows at the real end.
    eventually("the genuine delivery", async || rec.count() == 2).await;
    let real = rec.bodies()[1].clone();
    assert_eq!(
        (&real["request_id"], &real["status"]),
        (&json!(id), &json!("COMPLETED"))
    );
    assert_eq!(env.result(&id).await["status"], "COMPLETED");
    assert_ne!(real["completed_at"], spoof["completed_at"]);
    // The receiver has the body before the simulator has its answer and
    // counts the delivery: wait for the count, then check all of them.
    eventually("the delivery counted", async || {
        env.sim.stats().await.webhooks_delivered == 1
    })
    .await;
    let stats = env.sim.stats().await;
    assert_eq!(stats.webhooks_spoofed, 1);
    assert_eq!(
        (stats.webhooks_delivered, stats.webhook_attempts),
        (1, 1),
        "spoofs count in no delivery counter"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofs_take_the_dialects_shape() {
    let (url, rec) = receiver().await;
    let env = Env::new(
        SimConfig::new()
            .dialect(Dialect::Fal)
            .catalog(fixed_catalog(1, 1000.0))
            .time_scale(0.1)
            .faults(faults("webhook:spoof=1")),
    )
    .await;
    let id = submit_hooked(&env, &format!("{url}/hook")).await;
    eventually("the spoofed delivery", async || rec.count() == 1).await;
    let spoof = rec.bodies()[0].clone();
    assert_eq!(spoof["status"], "OK", "{spoof}");
    assert!(spoof["payload"]["images"].is_array(), "{spoof}");
    assert!(spoof["error"].is_null());
    let a = env
        .get(&format!("/v2/inference/requests/{id}/status"))
        .await;
    assert_eq!(
        (a.status, a.json["status"].as_str()),
        (202, Some("IN_PROGRESS"))
    );
    // Cancelled for real: the genuine delivery says so.
    env.post(&format!("/v2/inference/requests/{id}/cancel"), json!({}))
        .await;
    eventually("the genuine delivery", async || rec.count() == 2).await;
    assert_eq!(rec.bodies()[1]["status"], "ERROR");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_webhooks_arrive_after_undelayed_ones() {
    let (url, rec) = receiver().await;
    let hook_url = format!("{url}/hook");
    let config = |seed: u64| {
        SimConfig::new()
            .seed(seed)
            .catalog(fixed_catalog(1, 0.5))
            .time_scale(0.1)
    };
    // 20 simulated seconds of delay are 2 s of wall time here.
    let delayed = Env::new(config(1).faults(faults("webhook:delay=20s"))).await;
    let prompt = Env::new(config(2)).await;
    let late = submit_hooked(&delayed, &hook_url).await;
    let early = submit_hooked(&prompt, &hook_url).await;
    delayed.wait_for(&late, "COMPLETED").await;
    eventually("both deliveries", async || rec.count() == 2).await;
    assert_eq!(rec.ids(), [early, late], "the delayed one comes last");
    assert_eq!(delayed.sim.stats().await.webhooks_delayed, 1);
    assert_eq!(prompt.sim.stats().await.webhooks_delayed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_webhooks_arrive_out_of_completion_order() {
    let (url, rec) = receiver().await;
    let hook_url = format!("{url}/hook");
    // One worker, 0.2 simulated seconds a job: jobs end 100 ms apart, in
    // submission order; each delivery is held back 0.5 to 2.5 simulated
    // seconds (250 ms to 1.25 s) more. Under seed 11 the first job's
    // delivery is due 0.37 simulated seconds (185 ms) after the second's.
    let env = Env::new(
        SimConfig::new()
            .seed(11)
            .catalog(fixed_catalog(1, 0.2))
            .time_scale(0.5)
            .faults(faults("webhook:reorder=1")),
    )
    .await;
    let mut submitted = Vec::new();
    for _ in 0..8 {
        submitted.push(submit_hooked(&env, &hook_url).await);
    }
    eventually("every delivery", async || rec.count() == 8).await;
    let arrived = rec.ids();
    let mut sorted = arrived.clone();
    sorted.sort_by_key(|id| submitted.iter().position(|s| s == id));
    assert_eq!(sorted, submitted, "each job delivered once");
    assert_ne!(arrived, submitted, "some arrive after later ones");
    assert_eq!(env.sim.stats().await.webhooks_reordered, 8);
}
