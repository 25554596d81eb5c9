//! The submitter against servers that limit, fail and refuse: it keeps to
//! what they say, slows down on trouble, never sends one job twice, and
//! never sends more than its concurrency at once.

use crate::common;

use std::time::Duration;

use common::hostile::{Hostile, Reply};
use futures::StreamExt;
use reka_inference::batch::{PauseReason, SubmitItem, SubmitOutcome, Submitter, SubmitterOptions};
use reka_inference::{Client, Error};
use reka_inference_sim::{FaultConfig, SimConfig};
use serde_json::json;

const IMAGE: &str = "nano-banana/text-to-image";

fn client(url: &str) -> Client {
    Client::builder()
        .api_key("k")
        .base_url(url)
        .build()
        .unwrap()
}

fn fast() -> SubmitterOptions {
    SubmitterOptions::default()
        .first_backoff(Duration::from_millis(20))
        .max_backoff(Duration::from_millis(100))
}

fn accepted(n: usize) -> Reply {
    Reply::Json(202, json!({"request_id": format!("req_{n}")}))
}

fn with_headers(status: u16, headers: &[(&'static str, &str)], body: serde_json::Value) -> Reply {
    let mut h: Vec<(&'static str, String)> =
        headers.iter().map(|(k, v)| (*k, v.to_string())).collect();
    h.push(("content-type", "application/json".into()));
    Reply::Raw(status, h, body.to_string().into())
}

async fn drain(submitter: &mut Submitter<usize>) -> Vec<SubmitOutcome<usize>> {
    let mut out = Vec::new();
    while let Some(o) = submitter.next().await {
        out.push(o);
    }
    out.sort_by_key(|o| o.tag);
    out
}

fn items(n: usize) -> impl Iterator<Item = SubmitItem<usize>> {
    (0..n).map(|i| SubmitItem::new(i, IMAGE, json!({"prompt": format!("p{i}")})).unwrap())
}

fn keys(server: &Hostile) -> Vec<String> {
    server
        .seen()
        .iter()
        .map(|s| s.headers["idempotency-key"].to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_429_pauses_every_send_until_its_retry_after_and_keeps_the_key() {
    let server = Hostile::start(|_, _, _, n| match n {
        0 => with_headers(
            429,
            &[("retry-after", "1")],
            json!({"error": {"type": "rate_limit_error", "message": "slow down"}}),
        ),
        n => accepted(n),
    })
    .await;
    let client = client(&server.url);
    let mut submitter = client.submitter(fast().concurrency(1));
    submitter.extend(items(3));
    let outcomes = drain(&mut submitter).await;
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "{outcomes:?}");
    // The 429 created nothing, so it used up no try.
    assert_eq!(outcomes[0].attempts, 1);
    let seen = server.seen();
    assert_eq!(seen.len(), 4);
    assert!(
        seen[1].at.duration_since(seen[0].at) >= Duration::from_secs(1),
        "sent again before the Retry-After"
    );
    let keys = keys(&server);
    assert_eq!(
        keys[0], keys[1],
        "the retry of the refused submit carries its key"
    );
    assert_eq!(outcomes[0].idempotency_key, keys[0]);
}

#[tokio::test(start_paused = true)]
async fn nothing_left_holds_sends_until_the_reset_in_any_spelling() {
    for spelling in [
        [
            ("x-ratelimit-requests-remaining", "0"),
            ("x-ratelimit-requests-reset", "1"),
        ],
        [
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "1s"),
        ],
        [("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1")],
    ] {
        let server = Hostile::start(move |_, _, _, n| match n {
            0 => with_headers(202, &spelling, json!({"request_id": "req_0"})),
            n => accepted(n),
        })
        .await;
        let client = client(&server.url);
        let mut submitter = client.submitter(fast().concurrency(4));
        // One first, so that its answer is in before the others are pushed.
        submitter.push(items(1).next().unwrap());
        assert!(submitter.next().await.unwrap().result.is_ok());
        assert!(
            !submitter.has_room(),
            "{spelling:?}: room with nothing left"
        );
        let (_, why) = submitter.paused_until().expect("paused");
        assert_eq!(why, PauseReason::RateLimited);
        submitter.extend(items(3).skip(1));
        let outcomes = drain(&mut submitter).await;
        assert_eq!(outcomes.len(), 2);
        let seen = server.seen();
        assert_eq!(seen.len(), 3);
        for later in &seen[1..] {
            assert!(
                later.at.duration_since(seen[0].at) >= Duration::from_secs(1),
                "{spelling:?}: sent before the reset"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn sends_stay_within_what_is_left() {
    // Two left in the window of 60 s: of five items, two go now and the
    // rest wait (longer than this test looks).
    let server = Hostile::start(|_, _, _, n| {
        let left = 2usize.saturating_sub(n + 1).to_string();
        with_headers(
            202,
            &[
                ("x-ratelimit-requests-remaining", &left),
                ("x-ratelimit-requests-reset", "60"),
            ],
            json!({"request_id": format!("req_{n}")}),
        )
    })
    .await;
    let client = client(&server.url);
    let mut submitter = client.submitter(fast().concurrency(1));
    submitter.push(items(1).next().unwrap());
    assert!(submitter.next().await.unwrap().result.is_ok());
    submitter.extend(items(5).skip(1));
    let second = tokio::time::timeout(Duration::from_secs(10), submitter.next())
        .await
        .expect("one more is allowed")
        .unwrap();
    assert!(second.result.is_ok());
    let third = tokio::time::timeout(Duration::from_millis(500), submitter.next()).await;
    assert!(third.is_err(), "sent past what was left: {third:?}");
    assert_eq!(server.seen().len(), 2);
    assert_eq!(submitter.queued(), 3);
}

#[tokio::test(start_paused = true)]
async fn server_failures_are_tried_again_with_the_same_key_and_fewer_in_flight() {
    let server = Hostile::start(|_, _, _, n| {
        if n < 3 {
            Reply::Json(
                503,
                json!({"error": {"type": "server_error", "message": "busy"}}),
            )
        } else {
            accepted(n)
        }
    })
    .await;
    let client = client(&server.url);
    let mut submitter = client.submitter(fast().concurrency(8));
    submitter.push(items(1).next().unwrap());
    let outcomes = drain(&mut submitter).await;
    assert!(outcomes[0].result.is_ok(), "{outcomes:?}");
    assert_eq!(outcomes[0].attempts, 4);
    let keys = keys(&server);
    assert_eq!(keys.len(), 4);
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
    // Three bouts of trouble halved the room: 8 -> 4 -> 2 -> 1, and one
    // success adds back only a little.
    assert!(submitter.allowed() <= 2, "{}", submitter.allowed());
}

#[tokio::test(start_paused = true)]
async fn a_failing_service_is_not_hammered_and_gives_back_the_keys() {
    let server = Hostile::start(|_, _, _, _| {
        Reply::Json(
            502,
            json!({"error": {"type": "server_error", "message": "down"}}),
        )
    })
    .await;
    let client = client(&server.url);
    let mut submitter = client.submitter(fast().concurrency(8).max_attempts(3));
    submitter.extend(items(10));
    let outcomes = drain(&mut submitter).await;
    assert_eq!(outcomes.len(), 10);
    for o in &outcomes {
        match &o.result {
            Err(Error::SubmitOutcomeUnknown {
                idempotency_key, ..
            }) => {
                assert_eq!(*idempotency_key, o.idempotency_key);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(o.attempts, 3);
    }
    // Every try is one request: 30, not 30 times the client's own retries.
    assert_eq!(server.seen().len(), 30);
    assert_eq!(submitter.allowed(), 1);
}

#[tokio::test(start_paused = true)]
async fn refusals_are_final_at_once() {
    let server = Hostile::start(|_, _, _, _| {
        Reply::Json(
            422,
            json!({"detail": [{"loc": ["body", "input"], "msg": "bad prompt", "type": "value_error"}]}),
        )
    })
    .await;
    let client = client(&server.url);
    let mut submitter = client.submitter(fast());
    submitter.extend(items(3));
    let outcomes = drain(&mut submitter).await;
    assert_eq!(server.seen().len(), 3);
    for o in outcomes {
        assert_eq!(o.attempts, 1);
        assert_eq!(
            o.result.unwrap_err().status().map(|s| s.as_u16()),
            Some(422)
        );
    }
    assert!(submitter.has_room(), "a refusal is not trouble");
}

#[tokio::test(start_paused = true)]
async fn never_more_in_flight_than_the_concurrency() {
    let pause = Duration::from_millis(200);
    let server =
        Hostile::start(move |_, _, _, n| Reply::Delayed(pause, Box::new(accepted(n)))).await;
    let client = client(&server.url);
    let mut submitter = client.submitter(fast().concurrency(3));
    submitter.extend(items(12));
    let outcomes = drain(&mut submitter).await;
    assert!(outcomes.iter().all(|o| o.result.is_ok()));
    let arrivals: Vec<tokio::time::Instant> = server.seen().iter().map(|s| s.at).collect();
    assert_eq!(arrivals.len(), 12);
    // Each send holds its place for at least `pause`, so no window shorter
    // than that can see more arrivals than places.
    for (i, a) in arrivals.iter().enumerate() {
        let within = arrivals[i..]
            .iter()
            .filter(|b| b.duration_since(*a) < pause / 2)
            .count();
        assert!(within <= 3, "{within} sends within {:?}", pause / 2);
    }
}

#[tokio::test(start_paused = true)]
async fn lost_answers_are_replayed_into_the_same_jobs() {
    let sim = common::sim_with(
        SimConfig::new().faults(
            "submit:lost=0.3,submit:503=0.1"
                .parse::<FaultConfig>()
                .unwrap(),
        ),
    )
    .await;
    let client = common::client(&sim);
    let mut submitter = client.submitter(fast().concurrency(6).max_attempts(20));
    submitter.extend(items(40));
    let outcomes = drain(&mut submitter).await;
    let ids: std::collections::HashSet<String> = outcomes
        .iter()
        .map(|o| o.result.as_ref().unwrap().id().to_owned())
        .collect();
    assert_eq!(ids.len(), 40);
    let stats = sim.stats().await;
    assert!(
        stats.faults("lost") > 0,
        "no answer was lost: the test proves nothing"
    );
    assert_eq!(stats.jobs_created, 40, "a lost answer made a second job");
}
