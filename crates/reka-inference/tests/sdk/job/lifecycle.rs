//! Jobs end to end against the simulator: every endpoint, lifecycle,
//! events, cancel, attach, many jobs at once, listing, models, downloads.

use crate::common;

use futures::TryStreamExt;
use reka_inference::{Endpoint, Error, JobEvent, JobStatus};
use reka_inference_sim::SimConfig;
use serde_json::json;

#[tokio::test(start_paused = true)]
async fn every_documented_endpoint_runs_to_an_output_with_media() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    for endpoint in Endpoint::KNOWN {
        let done = client
            .run(
                endpoint,
                // Every field an endpoint requires: the speech text, the image.
                json!({"prompt": format!("test {endpoint}"), "text": format!("test {endpoint}"), "image_url": "https://example.com/a.png"}),
            )
            .await
            .unwrap_or_else(|e| panic!("{endpoint}: {e}"));
        assert!(done.output.is_object(), "{endpoint}: {}", done.output);
        if endpoint.capability() == "image-to-bbox" {
            assert!(
                done.output.get("boxes").is_some_and(|b| b.is_array()),
                "{}",
                done.output
            );
        } else {
            assert!(
                !done.media().is_empty(),
                "{endpoint} has no media: {}",
                done.output
            );
        }
        assert!(
            done.metrics
                .as_ref()
                .and_then(|m| m.inference_time)
                .is_some()
        );
    }
    let stats = sim.stats().await;
    assert_eq!(stats.jobs_created, Endpoint::KNOWN.len() as u64);
}

#[tokio::test(start_paused = true)]
async fn events_follow_the_lifecycle_and_report_each_log_line_once() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    let job = client
        .submit(Endpoint::VEO_3_1_TEXT_TO_VIDEO, json!({"prompt": "waves"}))
        .await
        .unwrap();
    let events: Vec<JobEvent> = job.events().try_collect().await.unwrap();
    let started = events.iter().position(|e| *e == JobEvent::Started);
    let completed = events
        .iter()
        .position(|e| matches!(e, JobEvent::Completed(_)));
    assert!(started.is_some(), "{events:?}");
    assert_eq!(completed, Some(events.len() - 1), "terminal event last");
    assert!(started < completed);
    if let Some(q) = events
        .iter()
        .position(|e| matches!(e, JobEvent::Queued { .. }))
    {
        assert!(Some(q) < started);
    }
    // Every line of the final log, each exactly once, in order.
    let log_events: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            JobEvent::Log(l) => Some(l.message.clone()),
            _ => None,
        })
        .collect();
    let final_log: Vec<String> = job
        .status_with_logs()
        .await
        .unwrap()
        .logs
        .unwrap_or_default()
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert!(!final_log.is_empty());
    assert_eq!(log_events, final_log);
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_a_queued_job_and_wait_reports_it() {
    // One worker and long jobs: the second job waits in the queue.
    let catalog = common::fixed_catalog("slow", 1, 300);
    let sim = common::sim_with(SimConfig::new().catalog(catalog)).await;
    let client = common::client(&sim);
    let first = client
        .submit("slow/text-to-image".parse::<Endpoint>().unwrap(), json!({}))
        .await
        .unwrap();
    let second = client
        .submit("slow/text-to-image".parse::<Endpoint>().unwrap(), json!({}))
        .await
        .unwrap();
    let status = second.status().await.unwrap();
    assert_eq!(status.status, JobStatus::InQueue);
    assert_eq!(status.queue_position, Some(0));
    let record = second.cancel().await.unwrap();
    assert_eq!(record.status, JobStatus::Cancelled);
    match second.wait().await {
        Err(Error::JobCancelled { request_id }) => assert_eq!(request_id, second.id()),
        other => panic!("expected cancelled, got {other:?}"),
    }
    // Cancelling a running job frees it too; a finished one is unchanged.
    assert_eq!(first.cancel().await.unwrap().status, JobStatus::Cancelled);
    assert_eq!(first.cancel().await.unwrap().status, JobStatus::Cancelled);
}

#[tokio::test(start_paused = true)]
async fn attach_by_id_waits_for_a_job_submitted_elsewhere() {
    let sim = common::sim().await;
    let submitter = common::client(&sim);
    let job = submitter
        .submit(
            Endpoint::NANO_BANANA_TEXT_TO_IMAGE,
            json!({"prompt": "fox"}),
        )
        .await
        .unwrap();
    // A second client, as another process would have.
    let other = common::client(&sim);
    let attached = other.job(job.id());
    assert!(attached.endpoint().is_none());
    let done = attached.wait().await.unwrap();
    assert_eq!(done.request_id, job.id());
    let again = job.wait().await.unwrap();
    assert_eq!(done.output, again.output);
    // Unknown ids are a typed not-found error.
    let missing = other.job("req_does_not_exist").status().await.unwrap_err();
    assert_eq!(
        missing.api_error().map(|a| a.kind.as_str()),
        Some("not_found_error")
    );
    assert_eq!(missing.status().map(|s| s.as_u16()), Some(404));
}

#[tokio::test(start_paused = true)]
async fn failed_jobs_are_errors_carrying_the_server_error() {
    let sim = common::sim_with(SimConfig::new().failure_rate(1.0)).await;
    let client = common::client(&sim);
    let err = client
        .run(Endpoint::NANO_BANANA_TEXT_TO_IMAGE, json!({"prompt": "x"}))
        .await
        .unwrap_err();
    match err {
        Error::JobFailed { error, record, .. } => {
            assert_eq!(record.status, JobStatus::Failed);
            assert!(error.and_then(|e| e.message).is_some_and(|m| !m.is_empty()));
        }
        other => panic!("expected JobFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn the_poller_learns_and_then_needs_few_requests() {
    // At 0.05 of real time rather than the suite's 0.01: a millisecond of a
    // busy machine is then 20 ms simulated, not 100, and counts hold still.
    let scale = 0.05;
    let catalog = common::fixed_catalog("fixed", 64, 30);
    let sim =
        reka_inference_sim::start(SimConfig::new().catalog(catalog).time_scale(scale).seed(7))
            .await
            .unwrap();
    let client = common::builder(&sim)
        .poll_policy(reka_inference::PollPolicy::default().scaled(scale))
        .build()
        .unwrap();
    let endpoint: Endpoint = "fixed/text-to-image".parse().unwrap();
    client.run(&endpoint, json!({})).await.unwrap();
    let polls =
        |s: &reka_inference_sim::Stats| s.count("get_status", "200") + s.count("get_result", "200");
    // Three jobs at once; the polls they took, per job.
    let three = || async {
        let before = sim.stats().await;
        let runs = (0..3).map(|_| client.run(&endpoint, json!({})));
        for done in futures::future::join_all(runs).await {
            done.unwrap();
        }
        (polls(&sim.stats().await) - polls(&before)) as f64 / 3.0
    };
    // A fixed 2 s poller needs 15 polls for a 30 s job. With one job learnt
    // the schedule still allows for a spread and for that job having been
    // unusual (it looks from about a third of the learnt duration on), and
    // still needs fewer.
    let early = three().await;
    assert!(early < 15.0, "{early} polls per job after one job learnt");
    // Twelve jobs learnt, all alike: the window narrows.
    let eight = (0..8).map(|_| client.run(&endpoint, json!({})));
    for done in futures::future::join_all(eight).await {
        done.unwrap();
    }
    let late = three().await;
    assert!(
        late < early,
        "{late} polls per job after twelve, {early} after one"
    );
    assert!(late <= 8.0, "{late} polls per job after twelve jobs learnt");
    eprintln!("polls per job: {early} after one job learnt, {late} after twelve");
}
