//! The receiver as a server exposed to the internet (issue 27, defects 2
//! and 3) and as a part of your own axum app (issue 21): forged deliveries
//! for unknown ids cannot push out a job waited for; connections that never
//! finish their headers or bodies are closed; a declared oversize body is
//! refused at once; bodies beyond the buffer budget are refused; the
//! connection cap makes room for the real delivery; the router mounts in
//! an app with its own state; the public URL is checked.
#![cfg(feature = "webhooks")]

use crate::common;

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use reka_inference::webhook::{
    Deliveries, ListenOptions, ReceiverLimits, UrlCheck, WebhookReceiver,
};
use reka_inference::{Client, Error, PollPolicy, SubmitOptions, WaitOptions};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Long enough for anything that should happen to have happened, on a
/// machine as busy as it gets; never reached when things work.
const BOUND: Duration = Duration::from_secs(30);

/// A client at the real time scale: its safety net's first look comes 2 s
/// after a submit, far after a simulated job (60 ms) and its delivery.
fn client(sim: &reka_inference_sim::RunningSim) -> Client {
    common::builder(sim)
        .poll_policy(PollPolicy::default())
        .build()
        .unwrap()
}

async fn listen(limits: ReceiverLimits) -> WebhookReceiver {
    WebhookReceiver::listen_with(
        "127.0.0.1:0".parse().unwrap(),
        ListenOptions::default().limits(limits),
    )
    .await
    .unwrap()
}

fn addr(receiver: &WebhookReceiver) -> String {
    let url = receiver.url();
    format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port_or_known_default().unwrap()
    )
}

/// Everything the server sends until it closes the connection (or errs),
/// within [`BOUND`].
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(BOUND, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the connection was not closed");
    String::from_utf8_lossy(&got).into_owned()
}

fn delivery(id: &str) -> String {
    json!({"request_id": id, "status": "COMPLETED", "output": {"images": []}}).to_string()
}

#[tokio::test]
async fn forged_deliveries_for_unknown_ids_cannot_push_out_the_job_waited_for() {
    let sim = common::sim().await;
    let receiver = listen(ReceiverLimits::default()).await;
    let job = client(&sim)
        .submit_with(
            "nano-banana/text-to-image",
            json!({"prompt": "x"}),
            SubmitOptions::default().webhook(&receiver),
        )
        .await
        .unwrap();
    // The real delivery arrives first (the job takes 60 ms)...
    // (Watched through `any`, which follows no id of its own: only the
    // job handle's subscription keeps the id waited for.)
    let mut delivered = receiver.any();
    tokio::time::timeout(BOUND, delivered.wait_for(|n| *n > 0))
        .await
        .expect("the delivery arrives in time")
        .expect("the receiver lives");
    // ...then 110,000 forged ones for ids nobody waits for.
    let headers = axum::http::HeaderMap::new();
    for i in 0..110_000 {
        let status = receiver.accept(&headers, delivery(&format!("forged-{i}")).as_bytes());
        assert_eq!(status, 200);
    }
    let stats = receiver.stats();
    assert_eq!(stats.unknown_ids, 110_000, "{stats:?}");
    // The wait still ends at the delivery: no safety-net look (the first
    // would come 2 s after the submit), one confirming fetch.
    let done = job
        .wait_with(WaitOptions::default().timeout(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(done.request_id, job.id());
    assert_eq!(receiver.stats().safety_net_looks, 0);
    assert_eq!(sim.stats().await.count("get_result", "200"), 1);
}

#[tokio::test]
async fn a_declared_oversize_body_is_refused_at_once() {
    let receiver = listen(ReceiverLimits::default()).await;
    let mut stream = TcpStream::connect(addr(&receiver)).await.unwrap();
    // 64 MiB announced, not a byte of it sent.
    stream
        .write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 67108864\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    assert_eq!(receiver.stats().refused, 1);
}

#[tokio::test]
async fn connections_that_never_finish_their_headers_are_closed() {
    let receiver =
        listen(ReceiverLimits::default().header_read_timeout(Duration::from_millis(200))).await;
    let mut slow = Vec::new();
    for _ in 0..5 {
        let mut stream = TcpStream::connect(addr(&receiver)).await.unwrap();
        stream.write_all(b"POST / HTTP/1.1\r\nhost:").await.unwrap();
        slow.push(stream);
    }
    for stream in &mut slow {
        let answer = read_to_close(stream).await;
        assert!(!answer.contains("200 OK"), "{answer:?}");
    }
    // The receiver still takes deliveries.
    let answer = reqwest::Client::new()
        .post(receiver.url().as_str())
        .body(delivery("r1"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn a_body_that_stalls_is_answered_408_and_closed() {
    let receiver =
        listen(ReceiverLimits::default().body_read_timeout(Duration::from_millis(200))).await;
    let mut stream = TcpStream::connect(addr(&receiver)).await.unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"request_id\"")
        .await
        .unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
}

#[tokio::test]
async fn bodies_beyond_the_buffer_budget_are_refused_at_once() {
    let limits = ReceiverLimits::default()
        .max_buffered_bytes(2 << 20)
        .body_read_timeout(Duration::from_secs(120));
    let receiver = listen(limits).await;
    // Three connections each send almost 1 MiB of a 1 MiB body and never
    // finish it. Two fit in the 2 MiB budget, three do not: whichever
    // the server reads last (the order is the scheduler's) is refused
    // with 503 and Retry-After as soon as its bytes pass the budget, long
    // before the 120 s body timeout; the other two are held.
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let stream = TcpStream::connect(addr(&receiver)).await.unwrap();
        let (mut read, mut write) = stream.into_split();
        // Reading while writing: the answer is taken as it comes, before
        // a reset of the connection the server closed could drop it.
        senders.spawn(async move {
            let writing = async move {
                let head = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1048576\r\n\r\n";
                if write.write_all(head).await.is_ok() {
                    let _ = write.write_all(&vec![b' '; 1_000_000]).await;
                }
                // The write half stays open: the body is never finished.
                std::future::pending::<()>().await;
            };
            let reading = async move {
                let mut got = Vec::new();
                let _ = read.read_to_end(&mut got).await;
                String::from_utf8_lossy(&got).into_owned()
            };
            tokio::select! {
                answer = reading => answer,
                () = writing => unreachable!(),
            }
        });
    }
    let first = tokio::time::timeout(BOUND, senders.join_next())
        .await
        .expect("a body beyond the budget is answered at once")
        .expect("three senders")
        .unwrap();
    assert!(first.starts_with("HTTP/1.1 503"), "{first:?}");
    assert!(
        first.to_ascii_lowercase().contains("retry-after: 1"),
        "{first:?}"
    );
    assert_eq!(receiver.stats().refused, 1);
    // The two bodies within the budget are still being read.
    assert!(senders.try_join_next().is_none());
    senders.abort_all();
}

#[tokio::test]
async fn at_the_connection_cap_the_idlest_connection_makes_room() {
    let limits = ReceiverLimits::default()
        .max_connections(8)
        .header_read_timeout(Duration::from_secs(120));
    let receiver = listen(limits).await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(addr(&receiver)).await.unwrap());
    }
    // The delivery gets in: connections that sent nothing gave way.
    let answer = tokio::time::timeout(
        BOUND,
        reqwest::Client::new()
            .post(receiver.url().as_str())
            .body(delivery("r1"))
            .send(),
    )
    .await
    .expect("answered in time")
    .unwrap();
    assert_eq!(answer.status(), 200);
    // The first idle connections were closed to make room.
    let closed = read_to_close(&mut idle[0]).await;
    assert!(closed.is_empty(), "{closed:?}");
}

#[derive(Clone)]
struct App {
    name: &'static str,
}

async fn hello(State(app): State<App>) -> &'static str {
    app.name
}

/// Issue 21: the obvious axum code compiles (the router is generic over the
/// app's state), and a wait ends at the delivery through it.
#[tokio::test]
async fn an_app_with_its_own_state_mounts_the_receiver_and_a_wait_ends_by_delivery() {
    let sim = common::sim().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let receiver = WebhookReceiver::new(&format!("http://127.0.0.1:{port}/hooks")).unwrap();
    let app = Router::new()
        .route("/", get(hello))
        .nest("/hooks", receiver.router())
        .with_state(App {
            name: "thumbnailer",
        });
    tokio::spawn(async move { axum::serve(listener, app).await });
    receiver.check_url().await.unwrap();

    let job = client(&sim)
        .submit_with(
            "nano-banana/text-to-image",
            json!({"prompt": "x"}),
            SubmitOptions::default().webhook(&receiver),
        )
        .await
        .unwrap();
    let done = job
        .wait_with(WaitOptions::default().timeout(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(done.request_id, job.id());
    let stats = receiver.stats();
    assert_eq!(
        (stats.accepted, stats.safety_net_looks),
        (1, 0),
        "{stats:?}"
    );
    let home = reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(home, "thumbnailer");
}

/// Issue 21: a public URL that does not reach the receiver is reported.
#[tokio::test]
async fn a_wrong_public_url_is_reported() {
    // Nothing listens there.
    let nowhere = WebhookReceiver::new("http://127.0.0.1:1/hooks").unwrap();
    match nowhere.check_url().await {
        Err(Error::WebhookUnreachable { url, reason }) => {
            assert_eq!(url, "http://127.0.0.1:1/hooks");
            assert!(reason.contains("could not be reached"), "{reason}");
        }
        other => panic!("expected WebhookUnreachable, got {other:?}"),
    }
    // Another path of the app answers: the receiver is mounted elsewhere.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let receiver = WebhookReceiver::new(&format!("http://127.0.0.1:{port}/webhooks")).unwrap();
    let app: Router = Router::new()
        .route("/webhooks", get(|| async { "not the receiver" }))
        .nest("/hooks", receiver.router());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let err = receiver.check_url().await.unwrap_err();
    assert!(err.to_string().contains("mounted"), "{err}");
    // Another receiver answers: not this one.
    let other = WebhookReceiver::listen("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let impostor = WebhookReceiver::new(other.url().as_str()).unwrap();
    let err = impostor.check_url().await.unwrap_err();
    assert!(
        err.to_string().contains("another webhook receiver"),
        "{err}"
    );
    // listen_with can make it an error, before anything is submitted.
    let refused = WebhookReceiver::listen_with(
        "127.0.0.1:0".parse().unwrap(),
        ListenOptions::default()
            .public_url("http://127.0.0.1:1/hooks")
            .url_check(UrlCheck::Require),
    )
    .await;
    assert!(
        matches!(refused, Err(Error::WebhookUnreachable { .. })),
        "{refused:?}"
    );
    // ...or skip it, for a URL only the service can reach.
    let trusted = WebhookReceiver::listen_with(
        "127.0.0.1:0".parse().unwrap(),
        ListenOptions::default()
            .public_url("http://127.0.0.1:1/hooks")
            .url_check(UrlCheck::Skip),
    )
    .await;
    assert!(trusted.is_ok());
}
