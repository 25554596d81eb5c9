//! The public surface as a user meets it (issue 15): endpoints as strings,
//! `output()` that tells running from failed, storable streams, attaching
//! with an endpoint, and the request hook.

use crate::common;

use std::sync::{Arc, Mutex};

use common::hostile::{Hostile, Reply, record};
use futures::StreamExt;
use reka_inference::{
    Error, HttpHook, Job, JobEvent, JobEvents, JobList, JobOutcomes, JobStatus, ListFilter,
};
use reka_inference_sim::SimConfig;
use serde_json::{Value, json};

#[tokio::test(start_paused = true)]
async fn endpoints_can_be_plain_strings_and_bad_ones_send_nothing() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    let job = client
        .submit("nano-banana/text-to-image", json!({"prompt": "a fox"}))
        .await
        .unwrap();
    assert_eq!(
        job.endpoint().map(|e| e.as_str()),
        Some("nano-banana/text-to-image")
    );
    let err = client
        .submit("not an endpoint", json!({"prompt": "a fox"}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    let err = client
        .jobs()
        .page(&ListFilter::default().endpoint("a/b/c"), 0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert_eq!(
        sim.stats().await.count("submit", "202"),
        1,
        "nothing sent for bad ids"
    );
    assert!(client.job_for("bad id", "r").is_err());
}

#[tokio::test(start_paused = true)]
async fn output_tells_running_from_failed() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    let job = client
        .submit("nano-banana/text-to-image", json!({"prompt": "x"}))
        .await
        .unwrap();
    // Just submitted: still queued or running.
    assert_eq!(job.output::<Value>().await.unwrap(), None);
    job.wait().await.unwrap();
    assert!(job.output::<Value>().await.unwrap().is_some());

    let failing = common::sim_with(SimConfig::new().failure_rate(1.0)).await;
    let client = common::client(&failing);
    let job = client
        .submit("nano-banana/text-to-image", json!({"prompt": "x"}))
        .await
        .unwrap();
    let _ = job.wait().await;
    let err = job.output::<Value>().await.unwrap_err();
    assert!(matches!(err, Error::JobFailed { .. }), "{err:?}");
}

/// Streams are named and `Unpin`: they live in structs, no `pin!` needed.
struct Watcher {
    events: JobEvents,
}

fn is_unpin<T: Unpin>() {}

#[tokio::test(start_paused = true)]
async fn streams_are_named_and_storable() {
    is_unpin::<JobEvents>();
    is_unpin::<JobOutcomes>();
    is_unpin::<JobList>();
    let sim = common::sim().await;
    let client = common::client(&sim);
    let job: Job = client
        .submit("nano-banana/text-to-image", json!({"prompt": "x"}))
        .await
        .unwrap();
    let mut watcher = Watcher {
        events: job.events(),
    };
    let mut last = None;
    while let Some(event) = watcher.events.next().await {
        last = Some(event.unwrap());
    }
    assert!(matches!(last, Some(JobEvent::Completed(_))), "{last:?}");
    let mut set = client.job_set();
    set.push(job);
    let mut outcomes: JobOutcomes = set.into_stream();
    let outcome = outcomes.next().await.unwrap();
    assert_eq!(outcome.index, 0);
    assert!(outcome.result.is_ok());
    // The listing reads with the plain `while let`, kept in a variable of
    // a type that can be named, filtered by a `SystemTime`.
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let mut list: JobList = client
        .jobs()
        .list(ListFilter::default().start(an_hour_ago).limit(5));
    let mut seen = Vec::new();
    while let Some(item) = list.next().await {
        seen.push(item.unwrap().request_id);
    }
    assert_eq!(seen, [outcome.job.id().to_owned()]);
}

#[tokio::test(start_paused = true)]
async fn an_attached_job_with_its_endpoint_waits_like_a_submitted_one() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    let id = client
        .submit("nano-banana/text-to-image", json!({"prompt": "x"}))
        .await
        .unwrap()
        .id()
        .to_owned();
    let attached = client.job_for("nano-banana/text-to-image", &id).unwrap();
    assert_eq!(
        attached.endpoint().map(|e| e.as_str()),
        Some("nano-banana/text-to-image")
    );
    let done = attached.wait().await.unwrap();
    assert_eq!(done.request_id, id);
    assert_eq!(
        client.job(&id).result().await.unwrap().status,
        JobStatus::Completed
    );
}

/// Counts what it sees, and adds a header of its own.
struct Recorder {
    operations: Arc<Mutex<Vec<String>>>,
}

impl HttpHook for Recorder {
    fn on_request(&self, request: &mut reqwest::Request, operation: &str) {
        // The key is attached after the hooks: a hook never sees it.
        assert!(request.headers().get("x-api-key").is_none());
        request.headers_mut().insert(
            "traceparent",
            reqwest::header::HeaderValue::from_static("00-abc-def-01"),
        );
        self.operations.lock().unwrap().push(operation.to_owned());
    }
}

#[tokio::test(start_paused = true)]
async fn request_hooks_see_every_request_but_never_the_key() {
    let server = Hostile::start(|_, _, _, _| {
        Reply::Json(200, record("req_1", "COMPLETED", Some(json!({"x": 1}))))
    })
    .await;
    let operations = Arc::new(Mutex::new(Vec::new()));
    let client = reka_inference::Client::builder()
        .api_key("sk-hook")
        .base_url(&server.url)
        .hook(Recorder {
            operations: operations.clone(),
        })
        .build()
        .unwrap();
    client.job("req_1").wait().await.unwrap();
    let seen = server.seen();
    assert!(!seen.is_empty());
    for s in &seen {
        assert_eq!(s.headers.get("traceparent").unwrap(), "00-abc-def-01");
        assert_eq!(s.headers.get("x-api-key").unwrap(), "sk-hook");
    }
    assert_eq!(operations.lock().unwrap().len(), seen.len());
}
