//! Waits that end at the webhook delivery (issue 13): a delivery wakes the
//! wait, one fetch of the record confirms it; a lost delivery is covered by
//! the safety net; a spoofed one never ends a wait. Runs with the
//! `webhooks` feature (on whenever the workspace is built, through the CLI).
#![cfg(feature = "webhooks")]

use crate::common;

use std::time::Duration;

use reka_inference::webhook::WebhookReceiver;
use reka_inference::{Error, SubmitOptions, WaitOptions};
use serde_json::json;

#[tokio::test(start_paused = true)]
async fn a_delivery_ends_the_wait_with_one_confirming_fetch() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    let receiver = WebhookReceiver::listen("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let mut jobs = Vec::new();
    for i in 0..5 {
        jobs.push(
            client
                .submit_with(
                    "nano-banana/text-to-image",
                    json!({"prompt": format!("p{i}")}),
                    SubmitOptions::default().webhook(&receiver),
                )
                .await
                .unwrap(),
        );
    }
    for job in &jobs {
        let done = job.wait().await.unwrap();
        assert_eq!(done.request_id, job.id());
    }
    let stats = sim.stats().await;
    assert_eq!(stats.webhooks_delivered, 5, "{stats:?}");
    // After the submit, at most two requests per job: the confirming
    // fetch, and at most one safety-net look.
    let looks = stats.count("get_status", "200") + stats.count("get_result", "200");
    assert!(looks <= 2 * 5, "{stats:?}");
    assert!(
        stats.count("get_result", "200") >= 5,
        "every delivery is confirmed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_lost_delivery_is_covered_by_the_safety_net() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    // Nothing listens there: every delivery is lost.
    let nowhere = WebhookReceiver::new("http://127.0.0.1:1/hook").unwrap();
    let job = client
        .submit_with(
            "nano-banana/text-to-image",
            json!({"prompt": "x"}),
            SubmitOptions::default().webhook(&nowhere),
        )
        .await
        .unwrap();
    let done = job.wait().await.unwrap();
    assert_eq!(done.request_id, job.id());
}

#[tokio::test(start_paused = true)]
async fn a_spoofed_delivery_never_ends_a_wait() {
    let sim = common::sim_with(
        reka_inference_sim::SimConfig::new().catalog(common::fixed_catalog("slow", 4, 100_000)),
    )
    .await;
    let client = common::client(&sim);
    let receiver = WebhookReceiver::listen("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let job = client
        .submit_with(
            "slow/text-to-image",
            json!({"prompt": "x"}),
            SubmitOptions::default().webhook(&receiver),
        )
        .await
        .unwrap();
    // Someone posts a completion for a job that is still running.
    let spoof = json!({"request_id": job.id(), "status": "COMPLETED", "output": {"images": []}});
    let answer = reqwest::Client::new()
        .post(receiver.url().as_str())
        .json(&spoof)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let err = job
        .wait_with(WaitOptions::default().timeout(Duration::from_millis(600)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    // The spoof cost exactly the confirming fetch.
    assert!(sim.stats().await.count("get_result", "200") >= 1);
}

#[tokio::test(start_paused = true)]
async fn garbage_deliveries_are_refused() {
    let receiver = WebhookReceiver::listen("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let post = |body: Vec<u8>| http.post(receiver.url().as_str()).body(body).send();
    assert_eq!(post(b"not json".to_vec()).await.unwrap().status(), 400);
    assert_eq!(post(vec![b'x'; 2 << 20]).await.unwrap().status(), 413);
    let unknown = br#"{"request_id": "never-submitted", "status": "COMPLETED"}"#.to_vec();
    assert_eq!(post(unknown).await.unwrap().status(), 200);
}

#[tokio::test(start_paused = true)]
async fn a_job_set_parks_on_deliveries_too() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    let receiver = WebhookReceiver::listen("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let mut set = client.job_set();
    for i in 0..6 {
        set.push(
            client
                .submit_with(
                    "nano-banana/text-to-image",
                    json!({"prompt": format!("p{i}")}),
                    SubmitOptions::default().webhook(&receiver),
                )
                .await
                .unwrap(),
        );
    }
    let results = set.wait_all().await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let stats = sim.stats().await;
    assert_eq!(stats.count("list_requests", "200"), 0, "{stats:?}");
    let looks = stats.count("get_status", "200") + stats.count("get_result", "200");
    assert!(looks <= 2 * 6, "{stats:?}");
}

/// `wait` of a job submitted elsewhere (the CLI's `submit --webhook` then
/// `wait --webhook-listen`): its delivery may have come and gone before
/// anything listened, so the job is looked at once at the start rather
/// than left to a safety net that first looks minutes later.
#[tokio::test(start_paused = true)]
async fn an_attached_job_that_already_ended_is_seen_at_once() {
    let sim = common::sim().await;
    // The policy at real time: the safety net's first look would come
    // 2 minutes after the attach, far past the wait's 30 s.
    let client = common::builder(&sim)
        .poll_policy(reka_inference::PollPolicy::default())
        .build()
        .unwrap();
    let fast = common::client(&sim);
    let submitted = fast
        .submit("nano-banana/text-to-image", json!({"prompt": "x"}))
        .await
        .unwrap();
    submitted.wait().await.unwrap();

    let receiver = WebhookReceiver::listen("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let before = sim.stats().await;
    let attached = client.job(submitted.id()).with_webhook(&receiver);
    let done = attached
        .wait_with(WaitOptions::default().timeout(Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(done.request_id, submitted.id());
    let after = sim.stats().await;
    let looks =
        |s: &reka_inference_sim::Stats| s.count("get_status", "200") + s.count("get_result", "200");
    assert!(looks(&after) - looks(&before) <= 2, "{after:?}");
}
