//! The webhook safety net (issue 27, defect 1): a delivery that never
//! comes costs seconds, not minutes, learnt or not; a deadline reached
//! before any look says no look was made; the receiver counts the safety
//! net's looks and the deliveries it found missing.
//!
//! Everything runs on one current-thread runtime with paused time (the
//! simulator, the client and the receiver, per the simulator's README),
//! at the real time scale: the durations asserted are paused time, exact
//! and free of the machine's load.
#![cfg(feature = "webhooks")]

use std::time::Duration;

use reka_inference::webhook::WebhookReceiver;
use reka_inference::{Client, Error, PollPolicy, SubmitOptions, WaitOptions};
use reka_inference_sim::{Catalog, DEV_API_KEY, RunningSim, SimConfig};
use serde_json::json;
use tokio::time::Instant;

/// `quick/text-to-image` jobs of 1.5 s and `long/text-to-video` jobs of
/// 120 s, four workers each, at real time.
async fn sim() -> RunningSim {
    let catalog = Catalog::from_json(
        &json!({"chat_models": ["qwen3-vl-32b"], "models": [
            {"model_id": "quick", "capability": "text-to-image", "workers": 4, "duration": {"fixed": 1.5}},
            {"model_id": "long", "capability": "text-to-video", "workers": 4, "duration": {"fixed": 120}}
        ]})
        .to_string(),
    )
    .unwrap();
    reka_inference_sim::start(SimConfig::new().catalog(catalog).seed(7))
        .await
        .unwrap()
}

/// A client at the real time scale (the safety net as the real service gets it).
fn client(sim: &RunningSim) -> Client {
    Client::builder()
        .api_key(DEV_API_KEY)
        .base_url(sim.base_url())
        .poll_policy(PollPolicy::default())
        .build()
        .unwrap()
}

async fn receiver() -> WebhookReceiver {
    WebhookReceiver::listen("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap()
}

/// How long after `completed_at` (on the simulator's clock) the wait saw
/// the job done: the lag.
async fn run(
    client: &Client,
    receiver: &WebhookReceiver,
    endpoint: &str,
) -> reka_inference::Result<Duration> {
    let job = client
        .submit_with(
            endpoint,
            json!({"prompt": "x"}),
            SubmitOptions::default().webhook(receiver),
        )
        .await?;
    let began = Instant::now();
    job.wait_with(WaitOptions::default().timeout(Duration::from_secs(600)))
        .await?;
    Ok(began.elapsed())
}

#[tokio::test(start_paused = true)]
async fn a_lost_delivery_of_a_short_job_costs_seconds_when_nothing_is_learnt() {
    let sim = sim().await;
    sim.set_faults("webhook:lost=1".parse().unwrap());
    let receiver = receiver().await;
    let took = run(&client(&sim), &receiver, "quick/text-to-image")
        .await
        .unwrap();
    // Done at 1.5 s; the first safety-net look 2 s after the submit finds
    // it (before: 120 s).
    assert!(took < Duration::from_secs(5), "found after {took:?}");
    let stats = receiver.stats();
    assert_eq!(stats.accepted, 0);
    assert!(stats.safety_net_looks >= 1, "{stats:?}");
    assert_eq!(stats.missed_deliveries, 1, "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn a_lost_delivery_of_a_learnt_long_job_costs_seconds_too() {
    let sim = sim().await;
    let receiver = receiver().await;
    let client = client(&sim);
    // Learn the endpoint with deliveries that arrive: the safety net then
    // waits past the likely finish, and makes no look at all.
    for _ in 0..5 {
        run(&client, &receiver, "long/text-to-video").await.unwrap();
    }
    let before = receiver.stats();
    assert_eq!(before.accepted, 5);
    assert_eq!(before.missed_deliveries, 0, "{before:?}");
    sim.set_faults("webhook:lost=1".parse().unwrap());
    let took = run(&client, &receiver, "long/text-to-video").await.unwrap();
    // Done at 120 s; looked at around the likely finish, the 75th
    // percentile of the runs learnt (before: 360 s, three times their
    // 99th percentile).
    assert!(
        took >= Duration::from_secs(120) && took < Duration::from_secs(140),
        "found after {took:?}"
    );
    let after = receiver.stats();
    assert_eq!(after.missed_deliveries, 1, "{after:?}");
    // No warning-worthy state: deliveries did reach this receiver.
    assert!(after.accepted > 0);
}

#[tokio::test(start_paused = true)]
async fn a_lost_delivery_of_an_unlearnt_long_job_is_found_within_thirty_seconds() {
    let sim = sim().await;
    sim.set_faults("webhook:lost=1".parse().unwrap());
    let receiver = receiver().await;
    let took = run(&client(&sim), &receiver, "long/text-to-video")
        .await
        .unwrap();
    assert!(
        took >= Duration::from_secs(120) && took <= Duration::from_secs(152),
        "found after {took:?}"
    );
    // Gaps doubling from 2 s to 30 s: a handful of looks, not a poll.
    let looks = receiver.stats().safety_net_looks;
    assert!((5..=10).contains(&looks), "{looks} looks");
}

#[tokio::test(start_paused = true)]
async fn a_deadline_before_any_look_says_no_look_was_made() {
    let sim = sim().await;
    sim.set_faults("webhook:lost=1".parse().unwrap());
    let receiver = receiver().await;
    let job = client(&sim)
        .submit_with(
            "long/text-to-video",
            json!({"prompt": "x"}),
            SubmitOptions::default().webhook(&receiver),
        )
        .await
        .unwrap();
    let err = job
        .wait_with(WaitOptions::default().timeout(Duration::from_secs(1)))
        .await
        .unwrap_err();
    match err {
        Error::Timeout {
            looks, last_status, ..
        } => {
            assert_eq!(looks, 0);
            assert_eq!(last_status, None);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn deliveries_that_arrive_cost_no_safety_net_look_once_learnt() {
    let sim = sim().await;
    let receiver = receiver().await;
    let client = client(&sim);
    run(&client, &receiver, "long/text-to-video").await.unwrap();
    let learnt = receiver.stats();
    for _ in 0..3 {
        run(&client, &receiver, "long/text-to-video").await.unwrap();
    }
    let stats = receiver.stats();
    assert_eq!(stats.accepted, 4);
    assert_eq!(
        stats.safety_net_looks, learnt.safety_net_looks,
        "the likely finish is past the delivery: {stats:?}"
    );
    assert_eq!(stats.missed_deliveries, 0);
}
