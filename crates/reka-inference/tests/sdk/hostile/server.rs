//! The findings of the hostile-server review (issue 9), one test each:
//! bodies that never end, servers that never answer, records that
//! contradict their status, ids that try to leave their path segment, and
//! lists that never advance. Outcomes are asserted, never elapsed time.

use crate::common;

use std::time::Duration;

use common::hostile::{Hostile, Reply, record, status};
use futures::{StreamExt, TryStreamExt};
use reka_inference::{
    Client, Endpoint, Error, JobSetOptions, JobStatus, ListFilter, PollPolicy, RetryPolicy,
    SubmitOptions, WaitOptions,
};
use serde_json::json;

const KEY: &str = "sk-hostile-test";

fn client(server: &Hostile) -> Client {
    builder(server).build().unwrap()
}

fn builder(server: &Hostile) -> reka_inference::ClientBuilder {
    Client::builder()
        .api_key(KEY)
        .base_url(&server.url)
        .poll_policy(PollPolicy::default().scaled(0.01))
        .retry_policy(
            RetryPolicy::default()
                .initial_backoff(Duration::from_millis(2))
                .max_backoff(Duration::from_millis(10)),
        )
        .request_timeout(Duration::from_secs(5))
}

fn short_wait() -> WaitOptions {
    WaitOptions::default().timeout(Duration::from_millis(400))
}

/// Finding 1: a status body that never ends is refused at the limit, and
/// nothing past it is read.
#[tokio::test(start_paused = true)]
async fn an_endless_body_is_refused_at_the_limit() {
    let server = Hostile::start(|_, _, _, _| Reply::Endless).await;
    let client = builder(&server).max_body_bytes(1 << 20).build().unwrap();
    let err = client.job("req_1").status().await.unwrap_err();
    match err {
        Error::BodyTooLarge { operation, limit } => {
            assert_eq!(operation, "get_status");
            assert_eq!(limit, 1 << 20);
        }
        other => panic!("expected BodyTooLarge, got {other:?}"),
    }
    let err = client.models().await.unwrap_err();
    assert!(matches!(err, Error::BodyTooLarge { .. }), "{err:?}");
}

/// Finding 1: an announced oversize body is refused without being read.
#[tokio::test(start_paused = true)]
async fn an_announced_oversize_body_is_refused() {
    let server = Hostile::start(|_, _, _, _| {
        Reply::Raw(
            200,
            vec![("content-type", "application/json".into())],
            vec![b' '; 3 << 20].into(),
        )
    })
    .await;
    let client = builder(&server).max_body_bytes(1 << 20).build().unwrap();
    let err = client
        .jobs()
        .page(&ListFilter::default(), 0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BodyTooLarge { .. }), "{err:?}");
}

/// Finding 2: a download longer than the per-request timeout, but never
/// silent for long, completes: streams are bounded by idleness, not length.
#[tokio::test(start_paused = true)]
async fn a_long_steady_download_is_not_cut_off() {
    let server = Hostile::start(|_, _, _, _| Reply::Slow(20, Duration::from_millis(30))).await;
    let client = builder(&server)
        .request_timeout(Duration::from_millis(200))
        .read_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let bytes = client
        .download_bytes(&format!("{}/files/v", server.url), |_| {})
        .await
        .unwrap();
    assert_eq!(bytes.len(), 20);
}

/// Finding 3: a silent server cannot hold a wait past its deadline.
#[tokio::test(start_paused = true)]
async fn a_silent_server_ends_a_wait_at_its_deadline() {
    let server = Hostile::start(|_, _, _, _| Reply::Silent).await;
    let client = client(&server);
    let err = client
        .job("req_1")
        .wait_with(short_wait())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    // Also with a cancel on the deadline, which is bounded too.
    let err = client
        .job("req_1")
        .wait_with(short_wait().cancel_on_timeout(true))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                cancel_sent: false,
                ..
            }
        ),
        "{err:?}"
    );
}

/// Finding 3: a server that drips one byte at a time cannot either.
#[tokio::test(start_paused = true)]
async fn a_dripping_server_ends_a_wait_at_its_deadline() {
    let server = Hostile::start(|_, _, _, _| Reply::Drip(Duration::from_millis(20))).await;
    let client = client(&server);
    let err = client
        .job("req_1")
        .wait_with(short_wait())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}

/// Finding 3: a 429 whose Retry-After passes the deadline is a Timeout.
#[tokio::test(start_paused = true)]
async fn a_rate_limit_near_the_deadline_is_a_timeout() {
    let server = Hostile::start(|_, _, _, _| {
        Reply::Raw(429, vec![("retry-after", "30".into())], "{}".into())
    })
    .await;
    let client = client(&server);
    let err = client
        .job("req_1")
        .wait_with(short_wait())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}

/// Finding 3: a single call under a deadline ends at it, as RequestTimeout.
#[tokio::test(start_paused = true)]
async fn a_submit_with_a_deadline_ends_at_it_with_its_key() {
    let server = Hostile::start(|_, _, _, _| Reply::Silent).await;
    let client = client(&server);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    let err = client
        .submit_with(
            Endpoint::NANO_BANANA_TEXT_TO_IMAGE,
            json!({"prompt": "x"}),
            SubmitOptions::default()
                .idempotency_key("key-1")
                .deadline(deadline),
        )
        .await
        .unwrap_err();
    assert_eq!(err.idempotency_key(), Some("key-1"), "{err:?}");
    assert!(
        matches!(
            err,
            Error::SubmitOutcomeUnknown { ref source, .. }
                if matches!(**source, Error::RequestTimeout { by_deadline: true, .. })
        ),
        "{err:?}"
    );
}

/// Finding 4: extreme durations and server numbers never panic.
#[tokio::test(start_paused = true)]
async fn extreme_values_never_panic() {
    let server = Hostile::start(|_, path, _, _| {
        if path.ends_with("/status") {
            Reply::Json(200, status("req_1", "COMPLETED"))
        } else {
            let mut r = record("req_1", "COMPLETED", Some(json!({"x": 1})));
            r["metrics"] = json!({"inference_time": 1e30});
            Reply::Json(200, r)
        }
    })
    .await;
    let client = builder(&server)
        .wait_timeout(Duration::MAX)
        .build()
        .unwrap();
    let job = client.job("req_1");
    job.wait_with(WaitOptions::default().timeout(Duration::MAX))
        .await
        .unwrap();
    // A submitted job of an endpoint whose estimate saw 1e30 seconds.
    let server2 = Hostile::start(|method, path, _, _| match (method.as_str(), path) {
        ("POST", _) => Reply::Json(202, json!({"request_id": "req_2"})),
        (_, p) if p.ends_with("/status") => Reply::Json(200, status("req_2", "IN_PROGRESS")),
        _ => {
            let mut r = record("req_2", "COMPLETED", Some(json!({"x": 1})));
            r["metrics"] = json!({"inference_time": 9.3e18});
            Reply::Json(200, r)
        }
    })
    .await;
    let client = client_for(&server2);
    for _ in 0..3 {
        let job = client
            .submit(Endpoint::NANO_BANANA_TEXT_TO_IMAGE, json!({"prompt": "x"}))
            .await
            .unwrap();
        job.wait_with(WaitOptions::default().timeout(Duration::MAX))
            .await
            .unwrap();
    }
}

fn client_for(server: &Hostile) -> Client {
    client(server)
}

/// Finding 5: a final record fetch that fails once does not end the wait.
#[tokio::test(start_paused = true)]
async fn a_failed_final_fetch_is_tried_again() {
    let server = Hostile::start(|_, path, _, n| {
        if path.ends_with("/status") {
            Reply::Json(200, status("req_1", "COMPLETED"))
        } else if n < 2 {
            // Past the transport's retries: 400-class would end it, so a
            // connection-level failure is simulated with a 503 burst.
            Reply::Json(
                503,
                json!({"error": {"type": "server_error", "message": "busy"}}),
            )
        } else {
            Reply::Json(200, record("req_1", "COMPLETED", Some(json!({"ok": true}))))
        }
    })
    .await;
    let client = builder(&server)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let done = client.job("req_1").wait().await.unwrap();
    assert_eq!(done.output, json!({"ok": true}));
    // The events stream ends with its terminal event too.
    let events: Vec<_> = client.job("req_1").events().try_collect().await.unwrap();
    assert!(
        matches!(events.last(), Some(reka_inference::JobEvent::Completed(_))),
        "{events:?}"
    );
}

/// Finding 6: a COMPLETED status whose record is still running is not a
/// completion with no output: the wait follows the record.
#[tokio::test(start_paused = true)]
async fn a_completed_status_waits_for_its_record() {
    let server = Hostile::start(|_, path, _, n| {
        if path.ends_with("/status") {
            Reply::Json(200, status("req_1", "COMPLETED"))
        } else if n < 6 {
            Reply::Json(200, record("req_1", "IN_PROGRESS", None))
        } else {
            Reply::Json(200, record("req_1", "COMPLETED", Some(json!({"ok": 1}))))
        }
    })
    .await;
    let done = client(&server).job("req_1").wait().await.unwrap();
    assert_eq!(done.output, json!({"ok": 1}));

    // A record that never agrees: a Timeout that says so, never Ok(null).
    let server = Hostile::start(|_, path, _, _| {
        if path.ends_with("/status") {
            Reply::Json(200, status("req_1", "COMPLETED"))
        } else {
            Reply::Json(200, record("req_1", "IN_PROGRESS", None))
        }
    })
    .await;
    let err = client(&server)
        .job("req_1")
        .wait_with(short_wait())
        .await
        .unwrap_err();
    match err {
        Error::Timeout {
            disagreement: Some(d),
            ..
        } => assert!(d.contains("IN_PROGRESS"), "{d}"),
        other => panic!("expected a Timeout naming the disagreement, got {other:?}"),
    }
}

/// Finding 6: the record's word wins over the status's.
#[tokio::test(start_paused = true)]
async fn a_failed_status_with_a_completed_record_is_a_success() {
    let server = Hostile::start(|_, path, _, _| {
        if path.ends_with("/status") {
            Reply::Json(200, status("req_1", "FAILED"))
        } else {
            Reply::Json(
                200,
                record("req_1", "COMPLETED", Some(json!({"kept": true}))),
            )
        }
    })
    .await;
    let done = client(&server).job("req_1").wait().await.unwrap();
    assert_eq!(done.output, json!({"kept": true}));
}

/// Finding 6: a record naming another request is never used.
#[tokio::test(start_paused = true)]
async fn a_record_of_another_request_is_refused() {
    let server = Hostile::start(|_, path, _, _| {
        if path.ends_with("/status") {
            Reply::Json(200, status("req_1", "COMPLETED"))
        } else {
            Reply::Json(
                200,
                record("../../etc/passwd", "COMPLETED", Some(json!({"x": 1}))),
            )
        }
    })
    .await;
    let err = client(&server)
        .job("req_1")
        .wait_with(short_wait())
        .await
        .unwrap_err();
    match err {
        Error::Timeout {
            disagreement: Some(d),
            ..
        } => assert!(d.contains("another request"), "{d}"),
        other => panic!("expected a Timeout naming the disagreement, got {other:?}"),
    }
}

/// Finding 7: a job set survives passing failures as a lone wait does,
/// and a job pushed twice gets both its outcomes.
#[tokio::test(start_paused = true)]
async fn a_job_set_survives_failed_looks_and_duplicates() {
    let server = Hostile::start(|method, path, _, n| {
        let id = path.split('/').nth(4).unwrap_or("").to_owned();
        match method.as_str() {
            "POST" => Reply::Json(202, json!({"request_id": format!("req_{n}")})),
            // Every other look fails: five in a row would be needed to end a job.
            _ if n % 2 == 0 => Reply::Json(500, json!({"error": {"message": "flaky"}})),
            _ => Reply::Json(200, record(&id, "COMPLETED", Some(json!({"id": id})))),
        }
    })
    .await;
    let client = builder(&server)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let mut set = client
        .job_set()
        .with_options(JobSetOptions::default().list_threshold(usize::MAX));
    let mut jobs = Vec::new();
    for _ in 0..10 {
        let job = client
            .submit(Endpoint::NANO_BANANA_TEXT_TO_IMAGE, json!({"prompt": "x"}))
            .await
            .unwrap();
        jobs.push(job.clone());
        set.push(job);
    }
    set.push(jobs[0].clone());
    let results = set.wait_all().await;
    assert_eq!(results.len(), 11);
    for (i, r) in results.iter().enumerate() {
        let done = r.as_ref().unwrap_or_else(|e| panic!("job {i}: {e}"));
        let want = jobs[i % 10].id();
        assert_eq!(done.request_id, want);
    }
}

/// Finding 7: a failing list is backed off, not hammered, and the set
/// falls back to polling jobs one by one.
#[tokio::test(start_paused = true)]
async fn a_failing_list_is_not_hammered() {
    let server = Hostile::start(|method, path, _, n| {
        let id = path.split('/').nth(4).unwrap_or("").to_owned();
        match (method.as_str(), path) {
            ("POST", _) => Reply::Json(202, json!({"request_id": format!("req_{n}")})),
            (_, "/v2/inference/requests") => {
                Reply::Raw(429, vec![("retry-after", "86400".into())], "{}".into())
            }
            _ => Reply::Json(200, record(&id, "COMPLETED", Some(json!({"id": id})))),
        }
    })
    .await;
    let client = client(&server);
    let mut set = client.job_set();
    for _ in 0..8 {
        set.push(
            client
                .submit(Endpoint::NANO_BANANA_TEXT_TO_IMAGE, json!({"prompt": "x"}))
                .await
                .unwrap(),
        );
    }
    let results = set
        .with_options(JobSetOptions::default().timeout(Duration::from_secs(30)))
        .wait_all()
        .await;
    // The list said "come back tomorrow": the set neither hammers it nor
    // waits a day; it polls the jobs one by one.
    assert_eq!(server.count("/v2/inference/requests"), 1);
    assert_eq!(results.len(), 8);
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }
}

/// Finding 7: jobs attached by id (their age unknown) are polled on their
/// own: a set of them never sweeps the key's whole history.
#[tokio::test(start_paused = true)]
async fn attached_jobs_never_trigger_history_sweeps() {
    let server = Hostile::start(|_, path, _, _| {
        let id = path.split('/').nth(4).unwrap_or("").to_owned();
        Reply::Json(200, record(&id, "COMPLETED", Some(json!({"id": id}))))
    })
    .await;
    let client = client(&server);
    let mut set = client.job_set();
    for i in 0..12 {
        set.push(client.job(format!("req_{i}")));
    }
    let results = set.wait_all().await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(server.count("/v2/inference/requests"), 0);
    assert_eq!(server.seen().len(), 12, "one record fetch per job");
}

/// Finding 7: a next_offset that never advances ends the listing with an
/// error instead of looping forever.
#[tokio::test(start_paused = true)]
async fn a_list_that_never_advances_ends_with_an_error() {
    let server = Hostile::start(|_, _, _, _| {
        Reply::Json(
            200,
            json!({"items": [{"request_id": "req_1", "status": "IN_QUEUE"}], "has_more": true, "next_offset": 0}),
        )
    })
    .await;
    let client = client(&server);
    let items: Vec<_> = client.jobs().list(ListFilter::default()).collect().await;
    assert_eq!(items.len(), 2, "one item, then the error");
    let err = items[1].as_ref().unwrap_err();
    assert!(err.to_string().contains("does not move past"), "{err}");
    assert_eq!(server.count("/v2/inference/requests"), 1);
}

/// Finding 8: a submit answered 200, or without any URL, still gives the job.
#[tokio::test(start_paused = true)]
async fn lean_and_200_submit_answers_give_the_job() {
    for code in [200, 201, 202] {
        let server =
            Hostile::start(move |_, _, _, _| Reply::Json(code, json!({"request_id": "req_lean"})))
                .await;
        let job = client(&server)
            .submit(Endpoint::NANO_BANANA_TEXT_TO_IMAGE, json!({"prompt": "x"}))
            .await
            .unwrap();
        assert_eq!(job.id(), "req_lean");
    }
}

/// Finding 8: an idempotency key survives a failed submit, so the caller's
/// retry replays the same job.
#[tokio::test(start_paused = true)]
async fn a_failed_submit_gives_back_its_key_and_a_retry_reuses_it() {
    let server = Hostile::start(|_, _, _, n| {
        if n < 5 {
            Reply::Json(503, json!({"error": {"message": "try later"}}))
        } else {
            Reply::Json(202, json!({"request_id": "req_1"}))
        }
    })
    .await;
    let client = client(&server);
    let err = client
        .submit(Endpoint::NANO_BANANA_TEXT_TO_IMAGE, json!({"prompt": "x"}))
        .await
        .unwrap_err();
    let key = err
        .idempotency_key()
        .expect("the key is in the error")
        .to_owned();
    let job = client
        .submit_with(
            Endpoint::NANO_BANANA_TEXT_TO_IMAGE,
            json!({"prompt": "x"}),
            SubmitOptions::default().idempotency_key(key.clone()),
        )
        .await
        .unwrap();
    assert_eq!(job.id(), "req_1");
    let keys: Vec<String> = server
        .seen()
        .iter()
        .filter_map(|s| {
            s.headers
                .get("idempotency-key")?
                .to_str()
                .ok()
                .map(str::to_owned)
        })
        .collect();
    assert!(
        keys.len() >= 6 && keys.iter().all(|k| *k == key),
        "{keys:?}"
    );
}

/// Finding 9: an id cannot leave its path segment.
#[tokio::test(start_paused = true)]
async fn request_ids_cannot_leave_their_path_segment() {
    let server =
        Hostile::start(|_, _, _, _| Reply::Json(404, json!({"error": {"message": "no"}}))).await;
    let client = client(&server);
    // A backslash is a path separator to an http(s) URL, and the generated
    // code does not escape it: refused like the relative segments.
    for id in ["..", ".", "a\\..\\..\\..\\..\\admin"] {
        let err = client.job(id).cancel().await.unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{id}: {err:?}");
    }
    for id in ["../../admin", "%2e%2e", "a?b#c", "a/b"] {
        let _ = client.job(id).status().await;
    }
    for seen in server.seen() {
        let path = seen.target.split('?').next().unwrap().to_owned();
        assert!(path.starts_with("/v2/inference/requests/"), "{path}");
        assert!(path.ends_with("/status"), "{path}");
        assert_eq!(
            path.matches('/').count(),
            5,
            "one segment for the id: {path}"
        );
    }
    assert_eq!(server.seen().len(), 4);
}

/// Finding 11: downloads never reach a link-local address, follow a
/// same-host redirect, find upper-case schemes, and name files by the
/// served media type.
#[tokio::test(start_paused = true)]
async fn downloads_are_safe_and_typed() {
    let server = Hostile::start(|_, path, _, _| match path {
        "/cdn/a" => Reply::Raw(
            302,
            vec![("location", "/signed/a?sig=1".into())],
            Bytes::new(),
        ),
        "/signed/a" => Reply::Raw(
            200,
            vec![("content-type", "image/png".into())],
            "png-bytes".into(),
        ),
        _ => Reply::Json(404, json!({})),
    })
    .await;
    let client = client(&server);
    let err = client
        .download_bytes("http://169.254.169.254/latest/meta-data", |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput(ref m) if m.contains("link-local")),
        "{err:?}"
    );
    let url = format!("{}/cdn/a", server.url.replace("http://", "HTTP://"));
    let done = reka_inference_test_completion(&url);
    let dir = tempfile::tempdir().unwrap();
    let files = client.download_outputs(&done, dir.path()).await.unwrap();
    assert_eq!(files.len(), 1);
    assert!(
        files[0].to_string_lossy().ends_with("req_1-0.png"),
        "{files:?}"
    );
    assert_eq!(std::fs::read(&files[0]).unwrap(), b"png-bytes");
}

use bytes::Bytes;

/// A completion whose output points at `url`, as a job's would.
fn reka_inference_test_completion(url: &str) -> reka_inference::JobOutput {
    let server_record =
        json!({"request_id": "req_1", "status": "COMPLETED", "output": {"images": [{"url": url}]}});
    let record: reka_inference::types::ResultResponse =
        serde_json::from_value(server_record).unwrap();
    assert_eq!(record.status, JobStatus::Completed);
    reka_inference::JobOutput::from_record(record)
}
