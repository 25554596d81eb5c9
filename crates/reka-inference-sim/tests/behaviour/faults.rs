//! Each fault kind, seen by the client and counted in stats; the admin
//! faults API; per-key rate limits.

use std::time::{Duration, Instant};

use reka_inference_sim::{FaultConfig, SimConfig};
use serde_json::json;

use crate::common::{Env, KEY, image};

fn faults(spec: &str) -> FaultConfig {
    spec.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_injected_429() {
    let env = Env::new(SimConfig::new().faults(faults(
        "get_status:503=1,list_models:500=1,list_requests:502=1",
    )))
    .await;
    env.get("/v2/inference/requests/x/status")
        .await
        .error(503, "server_error");
    env.get("/v2/inference/models")
        .await
        .error(500, "server_error");
    env.get("/v2/inference/requests")
        .await
        .error(502, "server_error");
    env.sim.set_faults(faults("*:429=1@retry_after=7"));
    let a = env.get("/v2/inference/models").await;
    a.error(429, "rate_limit_error");
    assert_eq!(a.header("retry-after"), Some("7"));
    let stats = env.sim.stats().await;
    for kind in ["500", "502", "503", "429"] {
        assert_eq!(stats.faults(kind), 1, "{kind}");
    }
    assert_eq!(stats.count("get_status", "503"), 1);
    assert_eq!(stats.count("list_models", "429"), 1);
    // Faults are infrastructure: they hit before authentication.
    let no_key = env
        .http
        .get(env.url("/v2/inference/models"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_is_added() {
    let env = Env::new(SimConfig::new().faults(faults("list_models:latency=300ms"))).await;
    let t = Instant::now();
    assert_eq!(env.get("/v2/inference/models").await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(env.sim.stats().await.faults("latency"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_transport_errors() {
    let env = Env::new(SimConfig::new().faults(faults("list_models:drop=1"))).await;
    let err = env
        .http
        .get(env.url("/v2/inference/models"))
        .header("X-Api-Key", KEY)
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_status() && !err.is_decode(), "{err:?}");
    // The same client still works on other routes.
    assert_eq!(env.get("/v2/inference/requests").await.status, 200);
    let stats = env.sim.stats().await;
    assert_eq!(stats.faults("drop"), 1);
    assert_eq!(stats.count("list_models", "dropped"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_not_json() {
    let env = Env::new(SimConfig::new().faults(faults("get_result:malformed=1"))).await;
    let id = env
        .submit("sam3/image-to-bbox", json!({"image_url": image()}))
        .await;
    let resp = env
        .http
        .get(env.url(&format!("/v2/inference/requests/{id}")))
        .header("X-Api-Key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(&text).is_err(),
        "{text}"
    );
    assert!(text.starts_with('{'));
    assert_eq!(env.sim.stats().await.faults("malformed"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_submit_creates_the_job_and_an_idempotent_retry_recovers_it() {
    let env = Env::new(
        SimConfig::new()
            .time_scale(0.01)
            .faults(faults("submit:lost=1")),
    )
    .await;
    let send = || {
        env.http
            .post(env.url("/v2/inference/nano-banana/text-to-image"))
            .header("X-Api-Key", KEY)
            .header("Idempotency-Key", "lost-1")
            .json(&json!({"input": {"prompt": "lost"}}))
            .send()
    };
    assert!(send().await.is_err(), "the client sees a transport error");
    let listed = env.get("/v2/inference/requests").await.json;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "but the job exists");
    env.sim.set_faults(FaultConfig::none());
    let retry = Env::answer(send().await.unwrap()).await;
    assert_eq!(retry.status, 202);
    assert_eq!(retry.json["request_id"], items[0]["request_id"]);
    let stats = env.sim.stats().await;
    assert_eq!(
        (
            stats.jobs_created,
            stats.idempotent_replays,
            stats.faults("lost")
        ),
        (1, 1, 1)
    );
    assert_eq!(stats.count("submit", "dropped"), 1);
    assert_eq!(stats.count("submit", "202"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_decisions_are_deterministic_under_a_seed() {
    let run = async |seed: u64| {
        let env = Env::new(SimConfig::new().seed(seed).faults(faults("*:503=0.5"))).await;
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(env.get("/v2/inference/models").await.status);
        }
        statuses
    };
    let (a, b, c) = (run(9).await, run(9).await, run(10).await);
    assert_eq!(a, b);
    assert_ne!(a, c);
    let failures = a.iter().filter(|s| **s == 503).count();
    assert!((8..=32).contains(&failures), "{failures} of 40");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_faults_api() {
    let env = Env::new(SimConfig::new()).await;
    let put = |body: serde_json::Value| env.http.put(env.url("/_sim/faults")).json(&body).send();
    let r = Env::answer(
        put(json!("get_status:503=0.25,*:latency=5ms"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["scopes"]["get_status"]["503"], 0.25);
    assert_eq!(r.json["scopes"]["*"]["latency_ms"], 5);
    let r = Env::answer(put(json!({"list_models": {"500": 1.0}})).await.unwrap()).await;
    assert_eq!(r.json["spec"], "list_models:500=1");
    env.get("/v2/inference/models")
        .await
        .error(500, "server_error");
    let got = Env::answer(env.http.get(env.url("/_sim/faults")).send().await.unwrap()).await;
    assert_eq!(got.json["scopes"], json!({"list_models": {"500": 1.0}}));
    for bad in [
        json!("nope:500=1"),
        json!({"*": {"teapot": 1}}),
        json!({"*": {"500": 3}}),
        json!(5),
    ] {
        let r = Env::answer(put(bad.clone()).await.unwrap()).await;
        assert_eq!(r.error(400, "validation_error")["param"], "faults", "{bad}");
    }
    // Reset clears faults.
    env.http.post(env.url("/_sim/reset")).send().await.unwrap();
    assert_eq!(env.get("/v2/inference/models").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_rate_limits() {
    // 24 simulated hours at this scale are 2.6 s of wall time.
    let env = Env::new(
        SimConfig::new()
            .api_key("other")
            .rate_limit(3)
            .time_scale(0.00003),
    )
    .await;
    for remaining in ["2", "1", "0"] {
        let a = env.get("/v2/inference/models").await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("x-ratelimit-requests-limit"), Some("3"));
        assert_eq!(a.header("x-ratelimit-requests-remaining"), Some(remaining));
        assert!(
            a.header("x-ratelimit-requests-reset")
                .unwrap()
                .parse::<u64>()
                .unwrap()
                <= 3
        );
    }
    let limited = env.get("/v2/inference/requests").await;
    limited.error(429, "rate_limit_error");
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3).contains(&retry_after));
    assert_eq!(limited.header("x-ratelimit-requests-remaining"), Some("0"));
    // Another key has its own quota.
    assert_eq!(
        env.get_as("/v2/inference/models", "other").await.status,
        200
    );
    assert_eq!(env.sim.stats().await.rate_limited, 1);
    // After the window, requests pass again.
    tokio::time::sleep(Duration::from_millis(2700)).await;
    assert_eq!(env.get("/v2/inference/models").await.status, 200);
}
