//! Chaos: every fault of the simulator at once, jobs that fail, jobs
//! cancelled mid-way, waits with short deadlines. Every job must end with
//! its right output or the right typed error, no retry may create a second
//! job, and no wait may outlive its deadline by more than one poll gap.
//!
//! Sized to run in seconds under `cargo test`; `CHAOS_JOBS=2000` (the
//! benchmark command) runs a larger mix.

use crate::common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reka_inference::{Endpoint, Error, JobStatus, RetryPolicy, WaitOptions};
use reka_inference_sim::{FaultConfig, SimConfig};
use serde_json::{Value, json};

const FAULTS: &str = "*:502=0.04,*:503=0.04,*:drop=0.04,*:malformed=0.03,*:429=0.04@retry_after=0,\
                      submit:lost=0.1,*:latency=2ms";

/// The longest gap the scaled default schedule leaves between two polls.
const MAX_GAP: Duration = Duration::from_millis(600);

fn jobs() -> usize {
    std::env::var("CHAOS_JOBS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(40)
}

#[derive(Debug)]
enum Plan {
    Finish,
    Cancel,
    ShortDeadline,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_job_ends_right_under_every_fault_at_once() {
    let n = jobs();
    let sim = common::sim_with(SimConfig::new().failure_rate(0.15)).await;
    let client = common::builder(&sim)
        .retry_policy(
            RetryPolicy::default()
                .max_attempts(10)
                .initial_backoff(Duration::from_millis(2))
                .max_backoff(Duration::from_millis(20)),
        )
        .build()
        .unwrap();
    let faults: FaultConfig = FAULTS.parse().unwrap();
    sim.set_faults(faults);

    let endpoints = [
        Endpoint::NANO_BANANA_TEXT_TO_IMAGE,
        Endpoint::SAM3_IMAGE_TO_BBOX,
        Endpoint::VEO_3_1_TEXT_TO_VIDEO,
    ];
    let mut waits = Vec::new();
    for i in 0..n {
        let endpoint = endpoints[i % endpoints.len()].clone();
        let job = client
            .submit(
                &endpoint,
                json!({"prompt": format!("chaos {i}"), "image_url": "https://example.com/a.png"}),
            )
            .await
            .unwrap_or_else(|e| panic!("submit {i}: {e}"));
        let plan = match i % 5 {
            3 => Plan::Cancel,
            4 => Plan::ShortDeadline,
            _ => Plan::Finish,
        };
        waits.push(async move {
            let deadline = match plan {
                Plan::ShortDeadline => Duration::from_millis(50),
                _ => Duration::from_secs(60),
            };
            if matches!(plan, Plan::Cancel) {
                // Cancel may race the job's own end: either is a right end.
                let _ = job.cancel().await;
            }
            let started = Instant::now();
            let result = job
                .wait_with(WaitOptions::default().timeout(deadline))
                .await;
            (job, plan, deadline, started.elapsed(), result)
        });
    }
    let outcomes: Vec<_> = futures::stream::iter(waits)
        .buffer_unordered(32)
        .collect()
        .await;

    // Judge against the simulator's own records, with the faults lifted.
    sim.set_faults(FaultConfig::none());
    let mut ends: HashMap<&'static str, usize> = HashMap::new();
    for (job, plan, deadline, elapsed, result) in outcomes {
        let record = job.result().await.unwrap();
        let end = match (&plan, result) {
            (_, Ok(done)) => {
                assert_eq!(record.status, JobStatus::Completed, "{plan:?}");
                assert_eq!(
                    Some(done.output),
                    record.output.map(Value::Object),
                    "the job's own output"
                );
                "completed"
            }
            (_, Err(Error::JobFailed { record: failed, .. })) => {
                assert_eq!(record.status, JobStatus::Failed);
                assert_eq!(failed.status, JobStatus::Failed);
                "failed"
            }
            (_, Err(Error::JobCancelled { .. })) => {
                assert_eq!(record.status, JobStatus::Cancelled);
                "cancelled"
            }
            (Plan::ShortDeadline, Err(Error::Timeout { request_id, .. })) => {
                assert_eq!(request_id, job.id());
                assert!(
                    elapsed <= deadline + MAX_GAP,
                    "the wait outlived its deadline: {elapsed:?}"
                );
                "timed out"
            }
            (plan, Err(e)) => panic!("job {} ({plan:?}) ended with {e:?}", job.id()),
        };
        *ends.entry(end).or_default() += 1;
    }
    let stats = sim.stats().await;
    assert_eq!(stats.jobs_created, n as u64, "no duplicate jobs: {stats:?}");
    let injected: u64 = stats
        .faults_injected
        .iter()
        .filter(|(k, _)| *k != "latency")
        .map(|(_, v)| v)
        .sum();
    assert!(injected > 0, "faults were injected: {stats:?}");
    assert!(ends.get("completed").copied().unwrap_or(0) > 0, "{ends:?}");
    eprintln!(
        "chaos: {n} jobs, ends {ends:?}, faults {:?}",
        stats.faults_injected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_set_under_faults_loses_nothing() {
    let n = jobs();
    let sim = common::sim_with(SimConfig::new()).await;
    let client = common::builder(&sim)
        .retry_policy(
            RetryPolicy::default()
                .max_attempts(10)
                .initial_backoff(Duration::from_millis(2)),
        )
        .build()
        .unwrap();
    sim.set_faults(FAULTS.parse().unwrap());
    let mut set = client.job_set();
    for i in 0..n {
        set.push(
            client
                .submit(
                    Endpoint::NANO_BANANA_TEXT_TO_IMAGE,
                    json!({"prompt": format!("set {i}")}),
                )
                .await
                .unwrap(),
        );
    }
    let results = set.wait_all().await;
    sim.set_faults(FaultConfig::none());
    assert_eq!(results.len(), n);
    for r in &results {
        let done = r.as_ref().unwrap_or_else(|e| panic!("{e:?}"));
        let record = client.job(&done.request_id).result().await.unwrap();
        assert_eq!(Some(done.output.clone()), record.output.map(Value::Object));
    }
    assert_eq!(sim.stats().await.jobs_created, n as u64);
}
