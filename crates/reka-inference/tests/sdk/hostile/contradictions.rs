//! A server that contradicts itself (issue 27, from round 1): a short
//! disagreement (replicas catching up) is waited through; a lasting one
//! ends the wait after 60 s with `Error::Inconsistent` naming both answers,
//! reported meanwhile as `JobEvent::Inconsistent`, never held for the
//! whole deadline.
//!
//! Paused time, at the real time scale: the server, the client and the
//! test share one current-thread runtime, so the 60 s are exact and take
//! no wall time.

use crate::common;

use std::time::Duration;

use common::hostile::{Hostile, Reply, record, status};
use futures::StreamExt;
use reka_inference::{
    Client, DISAGREEMENT_LIMIT, Error, JobEvent, PollPolicy, RetryPolicy, WaitOptions,
};
use serde_json::json;
use tokio::time::Instant;

fn client(server: &Hostile) -> Client {
    Client::builder()
        .api_key("sk-hostile-test")
        .base_url(&server.url)
        .poll_policy(PollPolicy::default())
        .retry_policy(RetryPolicy::default())
        .build()
        .unwrap()
}

/// A deadline far past the limit: the default wait's 30 minutes.
fn long_wait() -> WaitOptions {
    WaitOptions::default().timeout(Duration::from_secs(30 * 60))
}

#[tokio::test(start_paused = true)]
async fn a_completed_status_with_a_record_running_forever_ends_after_the_limit() {
    let server = Hostile::start(|_, path, _, _| {
        if path.ends_with("/status") {
            Reply::Json(200, status("req_1", "COMPLETED"))
        } else {
            Reply::Json(200, record("req_1", "IN_PROGRESS", None))
        }
    })
    .await;
    let began = Instant::now();
    let err = client(&server)
        .job("req_1")
        .wait_with(long_wait())
        .await
        .unwrap_err();
    let waited = began.elapsed();
    match &err {
        Error::Inconsistent {
            request_id,
            detail,
            lasted,
        } => {
            assert_eq!(request_id, "req_1");
            assert!(
                detail.contains("COMPLETED") && detail.contains("IN_PROGRESS"),
                "both answers named: {detail}"
            );
            assert!(*lasted >= DISAGREEMENT_LIMIT, "{lasted:?}");
        }
        other => panic!("expected Inconsistent, got {other:?}"),
    }
    // The limit and a last gap, not the deadline's 30 minutes.
    assert!(
        waited >= DISAGREEMENT_LIMIT && waited < DISAGREEMENT_LIMIT + Duration::from_secs(10),
        "{waited:?}"
    );
    // Looked at no faster than every 5 s once settled: a dozen or two
    // pairs of requests, not a flood.
    let requests = server.seen().len();
    assert!((10..=60).contains(&requests), "{requests} requests");
}

#[tokio::test(start_paused = true)]
async fn a_record_of_another_request_forever_ends_after_the_limit() {
    let server = Hostile::start(|_, path, _, _| {
        if path.ends_with("/status") {
            Reply::Json(200, status("req_1", "COMPLETED"))
        } else {
            Reply::Json(200, record("req_2", "COMPLETED", Some(json!({"x": 1}))))
        }
    })
    .await;
    let err = client(&server)
        .job("req_1")
        .wait_with(long_wait())
        .await
        .unwrap_err();
    match &err {
        Error::Inconsistent { detail, .. } => {
            assert!(
                detail.contains("COMPLETED") && detail.contains("req_2"),
                "{detail}"
            );
        }
        other => panic!("expected Inconsistent, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_disagreement_is_reported_once_while_the_wait_goes_on() {
    let server = Hostile::start(|_, path, _, _| {
        if path.ends_with("/status") {
            Reply::Json(200, status("req_1", "COMPLETED"))
        } else {
            Reply::Json(200, record("req_1", "IN_PROGRESS", None))
        }
    })
    .await;
    let events: Vec<_> = client(&server)
        .job("req_1")
        .events_with(long_wait())
        .collect()
        .await;
    let reported: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            Ok(JobEvent::Inconsistent(what)) => Some(what),
            _ => None,
        })
        .collect();
    assert_eq!(reported.len(), 1, "{events:?}");
    assert!(reported[0].contains("IN_PROGRESS"), "{reported:?}");
    assert!(
        matches!(events.last(), Some(Err(Error::Inconsistent { .. }))),
        "{events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn replicas_that_catch_up_within_the_limit_are_waited_through() {
    // The record lags the status for 30 s, then agrees.
    let start = Instant::now();
    let server = Hostile::start(move |_, path, _, _| {
        if path.ends_with("/status") {
            Reply::Json(200, status("req_1", "COMPLETED"))
        } else if start.elapsed() < Duration::from_secs(30) {
            Reply::Json(200, record("req_1", "IN_PROGRESS", None))
        } else {
            Reply::Json(200, record("req_1", "COMPLETED", Some(json!({"ok": 1}))))
        }
    })
    .await;
    let done = client(&server)
        .job("req_1")
        .wait_with(long_wait())
        .await
        .unwrap();
    assert_eq!(done.output, json!({"ok": 1}));
    // Found within a gap (at most 5 s) of catching up.
    assert!(
        start.elapsed() < Duration::from_secs(36),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_status_that_goes_back_to_running_ends_the_disagreement() {
    // The status said COMPLETED once (a replica ahead), then the job runs
    // on for minutes and completes: no Inconsistent error.
    let start = Instant::now();
    let server = Hostile::start(move |_, path, _, n| {
        let done = start.elapsed() >= Duration::from_secs(180);
        if path.ends_with("/status") {
            match (n, done) {
                (0, _) => Reply::Json(200, status("req_1", "COMPLETED")),
                (_, false) => Reply::Json(200, status("req_1", "IN_PROGRESS")),
                (_, true) => Reply::Json(200, status("req_1", "COMPLETED")),
            }
        } else if done {
            Reply::Json(200, record("req_1", "COMPLETED", Some(json!({"ok": 2}))))
        } else {
            Reply::Json(200, record("req_1", "IN_PROGRESS", None))
        }
    })
    .await;
    let done = client(&server)
        .job("req_1")
        .wait_with(long_wait())
        .await
        .unwrap();
    assert_eq!(done.output, json!({"ok": 2}));
}
