//! Time under the tests' control (issue 20): the simulator's clock is
//! Tokio's, so `tokio::time::pause()` drives jobs, webhooks and rate limits;
//! or it is manual (`SimConfig::manual_clock`), moved only by
//! `RunningSim::advance`. Neither test sleeps on the wall clock.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use reka_inference_sim::{Catalog, FaultConfig, NotManualClock, SimConfig};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::common::Env;

/// One endpoint, `m/text-to-image`, 2 workers, 30-second jobs.
fn catalog() -> Catalog {
    Catalog::from_json(
        r#"{"models":[{"model_id":"m","capability":"text-to-image","workers":2,"duration":{"fixed":30}}]}"#,
    )
    .unwrap()
}

async fn submit(env: &Env, prompt: &str, webhook: Option<&str>) -> String {
    let a = env
        .post(
            "/v2/inference/m/text-to-image",
            json!({"input": {"prompt": prompt}, "webhook_url": webhook}),
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.text);
    a.json["request_id"].as_str().unwrap().to_string()
}

async fn statuses(env: &Env, ids: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for id in ids {
        out.push(env.status(id).await["status"].as_str().unwrap().to_string());
    }
    out
}

fn count(statuses: &[String], status: &str) -> usize {
    statuses.iter().filter(|s| *s == status).count()
}

/// A webhook receiver that answers `codes` in turn (then 204) and hands
/// every body it gets to the channel.
async fn receiver(codes: Vec<u16>) -> (String, mpsc::UnboundedReceiver<Value>) {
    #[derive(Clone)]
    struct Hook {
        tx: mpsc::UnboundedSender<Value>,
        codes: std::sync::Arc<std::sync::Mutex<Vec<u16>>>,
    }
    async fn hook(State(h): State<Hook>, body: String) -> StatusCode {
        let _ = h.tx.send(serde_json::from_str(&body).unwrap());
        let mut codes = h.codes.lock().unwrap();
        let code = if codes.is_empty() {
            204
        } else {
            codes.remove(0)
        };
        StatusCode::from_u16(code).unwrap()
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().route("/hook", post(hook)).with_state(Hook {
        tx,
        codes: std::sync::Arc::new(std::sync::Mutex::new(codes)),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

/// The next delivery, waited for as an event (a generous bound, no sleep).
async fn delivery(rx: &mut mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("a delivery within 30 s")
        .expect("the receiver is alive")
}

fn millis(rfc3339: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_clock_runs_a_queue_to_completion_with_no_sleep() {
    let env = Env::new(SimConfig::new().catalog(catalog()).manual_clock()).await;
    let ids = {
        let mut ids = Vec::new();
        for i in 0..6 {
            ids.push(submit(&env, &format!("job {i}"), None).await);
        }
        ids
    };
    // Nothing moves until the test says so.
    let s = statuses(&env, &ids).await;
    assert_eq!(
        (count(&s, "IN_PROGRESS"), count(&s, "IN_QUEUE")),
        (2, 4),
        "{s:?}"
    );
    assert_eq!(env.sim.elapsed(), Duration::ZERO);
    assert_eq!(env.sim.until_next_job_end(), Some(Duration::from_secs(30)));
    env.sim.advance(Duration::from_millis(29_999)).unwrap();
    let s = statuses(&env, &ids).await;
    assert_eq!(count(&s, "COMPLETED"), 0, "{s:?}");
    env.sim.advance(Duration::from_millis(1)).unwrap();
    let s = statuses(&env, &ids).await;
    assert_eq!(
        (count(&s, "COMPLETED"), count(&s, "IN_PROGRESS")),
        (2, 2),
        "{s:?}"
    );
    // Step from one job end to the next until the queue is empty.
    let mut steps = 0;
    while let Some(next) = env.sim.until_next_job_end() {
        env.sim.advance(next).unwrap();
        steps += 1;
    }
    assert_eq!(steps, 2);
    assert_eq!(env.sim.elapsed(), Duration::from_secs(90));
    assert_eq!(count(&statuses(&env, &ids).await, "COMPLETED"), 6);
    // Exact instants: the last pair ran from 60 s to 90 s after the first submit.
    let first = env.result(&ids[0]).await;
    let last = env.result(&ids[5]).await;
    assert_eq!(
        millis(&last["completed_at"]) - millis(&first["created_at"]),
        90_000
    );
    assert_eq!(last["metrics"]["inference_time"], 30.0);
    // A jump over several job ends runs them all at their own instants.
    let more: Vec<String> = {
        let mut more = Vec::new();
        for i in 0..4 {
            more.push(submit(&env, &format!("more {i}"), None).await);
        }
        more
    };
    env.sim.advance(Duration::from_secs(3600)).unwrap();
    let done = env.result(&more[3]).await;
    assert_eq!(
        millis(&done["completed_at"]) - millis(&env.result(&more[0]).await["created_at"]),
        60_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_manual_clock_can_be_advanced_and_the_admin_api_says_which() {
    let env = Env::new(SimConfig::new().catalog(catalog())).await;
    assert_eq!(env.sim.advance(Duration::from_secs(1)), Err(NotManualClock));
    let a = Env::answer(
        env.http
            .post(env.url("/_sim/advance"))
            .json(&json!({"seconds": 1}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    a.error(409, "conflict_error");
    let clock = Env::answer(env.http.get(env.url("/_sim/clock")).send().await.unwrap()).await;
    assert_eq!(clock.json["manual"], false);

    let manual = Env::new(SimConfig::new().catalog(catalog()).manual_clock()).await;
    let id = submit(&manual, "admin", None).await;
    for (body, status) in [
        (json!({"seconds": -1}), 400),
        (json!({"seconds": "ten"}), 400),
        (json!({}), 400),
        (json!({"seconds": 12.5}), 200),
        (json!({"seconds": 17.5}), 200),
    ] {
        let a = Env::answer(
            manual
                .http
                .post(manual.url("/_sim/advance"))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(a.status, status, "{body}: {}", a.text);
    }
    let clock = Env::answer(
        manual
            .http
            .get(manual.url("/_sim/clock"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(clock.json, json!({"manual": true, "elapsed_seconds": 30.0}));
    assert_eq!(manual.status(&id).await["status"], "COMPLETED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_manual_clock_webhook_delays_and_retries_wait_for_it() {
    let (url, mut deliveries) = receiver(vec![503]).await;
    let env = Env::new(
        SimConfig::new()
            .catalog(catalog())
            .manual_clock()
            .faults("webhook:delay=5s".parse::<FaultConfig>().unwrap()),
    )
    .await;
    let id = submit(&env, "hooked", Some(&url)).await;
    env.sim.advance(Duration::from_secs(30)).unwrap();
    assert_eq!(env.status(&id).await["status"], "COMPLETED");
    // Due 5 s after the end: a round trip later, still nothing attempted.
    env.sim.advance(Duration::from_millis(4_999)).unwrap();
    let _ = env.get("/v2/inference/models").await;
    assert_eq!(env.sim.stats().await.webhook_attempts, 0);
    env.sim.advance(Duration::from_millis(1)).unwrap();
    let first = delivery(&mut deliveries).await;
    assert_eq!(first["request_id"], id.as_str());
    // The receiver answered 503: the retry waits 250 ms of the clock.
    let stats = env.sim.stats().await;
    assert_eq!((stats.webhook_attempts, stats.webhooks_delivered), (1, 0));
    env.sim.advance(Duration::from_millis(250)).unwrap();
    let second = delivery(&mut deliveries).await;
    assert_eq!(second, first);
}

#[tokio::test(start_paused = true)]
async fn tokios_paused_time_drives_jobs_webhooks_and_rate_limits() {
    // Everything in this test runs on one current-thread runtime with
    // paused time: the simulator, the client and the webhook receiver. The
    // runtime advances the clock only when every task waits on a timer, so
    // the polls' sleeps below take no wall time and the client's 30 s
    // timeout never fires early.
    let (url, mut deliveries) = receiver(vec![]).await;
    let env = Env::new(
        SimConfig::new()
            .catalog(catalog())
            .submit_rate_limit(1.0, 6),
    )
    .await;
    let started = tokio::time::Instant::now();
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(submit(&env, &format!("paused {i}"), Some(&url)).await);
    }
    // The bucket is empty; a second of paused time gives one token back.
    let refused = env
        .post(
            "/v2/inference/m/text-to-image",
            json!({"input": {"prompt": "one too many"}}),
        )
        .await;
    refused.error(429, "rate_limit_error");
    tokio::time::sleep(Duration::from_secs(1)).await;
    ids.push(submit(&env, "refilled", Some(&url)).await);
    let mut polls = 0;
    loop {
        let s = statuses(&env, &ids).await;
        polls += 1;
        if count(&s, "COMPLETED") == ids.len() {
            break;
        }
        assert!(polls < 100, "{s:?}");
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    // 7 jobs of 30 s on 2 workers: 4 rounds, the first starting at once.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(120) && elapsed < Duration::from_secs(130),
        "{elapsed:?} of paused time"
    );
    let first = env.result(&ids[0]).await;
    assert_eq!(
        millis(&first["completed_at"]) - millis(&first["created_at"]),
        30_000
    );
    let mut delivered: Vec<String> = Vec::new();
    for _ in 0..ids.len() {
        delivered.push(
            delivery(&mut deliveries).await["request_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    delivered.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(delivered, want);
    assert_eq!(env.sim.stats().await.count("submit", "429"), 1);
}
