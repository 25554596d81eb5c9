//! A status the client does not know never breaks a wait, and never makes
//! it loop forever. The simulator only sends documented statuses, so a
//! small stand-in server plays a service that has added one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use futures::TryStreamExt;
use reka_inference::{Client, Error, JobEvent, JobStatus, PollPolicy, WaitOptions};
use serde_json::{Value, json};

/// Answers `EXPIRED` for the first `unknown_polls` status polls, then
/// `COMPLETED` (never, when `None`).
async fn service(unknown_polls: Option<usize>) -> Client {
    let polls = Arc::new(AtomicUsize::new(0));
    let status_of = move || {
        let n = polls.fetch_add(1, Ordering::SeqCst);
        match unknown_polls {
            Some(k) if n >= k => "COMPLETED",
            _ => "EXPIRED",
        }
    };
    let s1 = status_of.clone();
    let app = Router::new()
        .route(
            "/v2/inference/requests/{id}/status",
            get(move |Path(id): Path<String>| {
                let s = s1();
                async move { axum::Json(json!({"request_id": id, "status": s, "queue_position": null})) }
            }),
        )
        .route(
            "/v2/inference/requests/{id}",
            get(move |Path(id): Path<String>| {
                let s = status_of();
                async move {
                    let output: Value = if s == "COMPLETED" { json!({"text": "ok"}) } else { Value::Null };
                    axum::Json(json!({"request_id": id, "status": s, "output": output, "brand_new_field": 1}))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Client::builder()
        .api_key("k")
        .base_url(base)
        .poll_policy(PollPolicy::default().scaled(0.01))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn an_unknown_status_is_reported_once_and_polling_goes_on() {
    let client = service(Some(4)).await;
    let events: Vec<JobEvent> = client.job("req_1").events().try_collect().await.unwrap();
    let unknown: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, JobEvent::UnknownStatus(_)))
        .collect();
    assert_eq!(unknown, [&JobEvent::UnknownStatus("EXPIRED".into())]);
    assert!(
        matches!(events.last(), Some(JobEvent::Completed(c)) if c.output == json!({"text": "ok"}))
    );
}

#[tokio::test(start_paused = true)]
async fn an_unknown_status_forever_ends_at_the_deadline_with_the_last_status() {
    let client = service(None).await;
    let err = client
        .job("req_2")
        .wait_with(WaitOptions::default().timeout(Duration::from_millis(300)))
        .await
        .unwrap_err();
    match err {
        Error::Timeout {
            last_status,
            request_id,
            ..
        } => {
            assert_eq!(request_id, "req_2");
            assert_eq!(last_status, Some(JobStatus::Unknown("EXPIRED".into())));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}
