//! Under the simulator's faults every job still ends with its right output
//! or a correct typed error, and no retry ever creates a second job.

use crate::common;

use std::time::Duration;

use tokio::time::Instant;

use reka_inference::{Endpoint, Error, RetryPolicy};
use reka_inference_sim::{FaultConfig, SimConfig};
use serde_json::json;

async fn batch_survives(spec: &str) -> reka_inference_sim::Stats {
    let faults: FaultConfig = spec.parse().expect("fault spec");
    let sim = common::sim_with(SimConfig::new()).await;
    let client = common::builder(&sim)
        .retry_policy(
            RetryPolicy::default()
                .max_attempts(8)
                .initial_backoff(Duration::from_millis(5))
                .max_backoff(Duration::from_millis(40)),
        )
        .build()
        .unwrap();
    sim.set_faults(faults);
    let mut jobs = Vec::new();
    for i in 0..20 {
        let job = client
            .submit(
                Endpoint::NANO_BANANA_TEXT_TO_IMAGE,
                json!({"prompt": format!("p{i}")}),
            )
            .await
            .unwrap_or_else(|e| panic!("submit {i} under {spec}: {e}"));
        jobs.push((i, job));
    }
    for (i, job) in &jobs {
        let done = job
            .wait()
            .await
            .unwrap_or_else(|e| panic!("job {i} under {spec}: {e}"));
        // The right output: the one derived from this job's own prompt.
        let again = job.result().await.unwrap();
        assert_eq!(
            Some(&done.output),
            again.output.map(serde_json::Value::Object).as_ref()
        );
    }
    let stats = sim.stats().await;
    assert_eq!(
        stats.jobs_created, 20,
        "no duplicate jobs under {spec}: {stats:?}"
    );
    stats
}

#[tokio::test(start_paused = true)]
async fn twenty_percent_5xx_answers() {
    let stats = batch_survives("*:502=0.1,*:503=0.1").await;
    let injected: u64 = ["502", "503"]
        .iter()
        .map(|k| stats.faults_injected.get(*k).copied().unwrap_or(0))
        .sum();
    assert!(injected > 0, "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn dropped_connections() {
    let stats = batch_survives("*:drop=0.15").await;
    assert!(
        stats.faults_injected.get("drop").copied().unwrap_or(0) > 0,
        "{stats:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn bursts_of_429_with_short_retry_after() {
    let stats = batch_survives("*:429=0.2@retry_after=0").await;
    assert!(
        stats.faults_injected.get("429").copied().unwrap_or(0) > 0,
        "{stats:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn lost_submit_responses_replay_instead_of_duplicating() {
    let stats = batch_survives("submit:lost=0.3").await;
    let lost = stats.faults_injected.get("lost").copied().unwrap_or(0);
    assert!(lost > 0, "{stats:?}");
    assert_eq!(
        stats.idempotent_replays, lost,
        "each lost answer was replayed once"
    );
}

#[tokio::test(start_paused = true)]
async fn malformed_bodies_on_reads_are_retried() {
    batch_survives("get_status:malformed=0.2,get_result:malformed=0.2").await;
}

#[tokio::test(start_paused = true)]
async fn retry_after_of_two_seconds_gets_exactly_one_retry_after_two_seconds() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    let job = client
        .submit(Endpoint::NANO_BANANA_TEXT_TO_IMAGE, json!({"prompt": "x"}))
        .await
        .unwrap();
    sim.set_faults("get_status:429=1@retry_after=2".parse().unwrap());
    let started = Instant::now();
    let call = {
        let job = job.clone();
        tokio::spawn(async move { job.status().await })
    };
    // Let the first attempt meet the 429, then lift the fault.
    while sim.stats().await.count("get_status", "429") == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sim.set_faults(FaultConfig::none());
    let status = call.await.unwrap().unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status.request_id, job.id());
    let stats = sim.stats().await;
    assert_eq!(stats.count("get_status", "429"), 1);
    assert_eq!(stats.count("get_status", "200"), 1, "exactly one retry");
}

#[tokio::test(start_paused = true)]
async fn retry_after_of_a_day_is_a_typed_error_at_once() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    sim.set_faults("get_status:429=1@retry_after=86400".parse().unwrap());
    let started = Instant::now();
    let err = client.job("req_x").status().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    match err {
        Error::RateLimited { retry_after, api } => {
            assert_eq!(retry_after, Some(Duration::from_secs(86400)));
            assert_eq!(api.kind, "rate_limit_error");
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(sim.stats().await.count("get_status", "429"), 1, "no retry");
}

#[tokio::test(start_paused = true)]
async fn the_per_key_quota_is_a_rate_limit_error() {
    let sim = common::sim_with(SimConfig::new().rate_limit(2)).await;
    let client = common::client(&sim);
    client.models().await.unwrap();
    client.models().await.unwrap();
    // The window (24 h, scaled by the simulator's clock) is far beyond the
    // policy's 60 s maximum: a typed error at once, no retry.
    let err = client.models().await.unwrap_err();
    assert!(
        matches!(err, Error::RateLimited { retry_after: Some(d), .. } if d > Duration::from_secs(60)),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_wait_never_outlives_its_deadline_by_more_than_a_poll() {
    let catalog = common::fixed_catalog("slow", 1, 100000);
    let sim = common::sim_with(SimConfig::new().catalog(catalog)).await;
    let client = common::client(&sim);
    let job = client
        .submit("slow/text-to-image".parse::<Endpoint>().unwrap(), json!({}))
        .await
        .unwrap();
    let started = Instant::now();
    let err = job
        .wait_with(
            reka_inference::WaitOptions::default()
                .timeout(Duration::from_millis(300))
                .cancel_on_timeout(true),
        )
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300));
    assert!(
        elapsed < Duration::from_millis(300) + Duration::from_secs(2),
        "{elapsed:?}"
    );
    match err {
        Error::Timeout {
            request_id,
            last_status,
            cancel_sent,
            ..
        } => {
            assert_eq!(request_id, job.id());
            assert!(last_status.is_some());
            assert!(cancel_sent);
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert_eq!(
        job.status().await.unwrap().status,
        reka_inference::JobStatus::Cancelled
    );
}
