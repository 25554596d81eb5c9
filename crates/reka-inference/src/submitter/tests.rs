//! The submitter's decisions as a table: each case feeds the outcomes
//! of its sends in order and states what is left queued, what came
//! out, how many may be in flight, and whether sends are paused.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};

use super::*;
use crate::ApiError;
use crate::builder::ClientBuilder;

/// What one send came back with.
#[derive(Clone, Copy)]
enum Sent {
    Accepted,
    TooMany(u64),
    Unknown,
    Refused,
}

fn result(http: &Http, sent: Sent) -> Result<Job> {
    let api = |status: StatusCode| {
        Box::new(ApiError::from_parts(
            status,
            &HeaderMap::new(),
            Default::default(),
        ))
    };
    match sent {
        Sent::Accepted => Ok(Job::new(http.clone(), "r1".into(), None, None)),
        Sent::TooMany(secs) => Err(Error::RateLimited {
            retry_after: Some(Duration::from_secs(secs)),
            api: api(StatusCode::TOO_MANY_REQUESTS),
        }),
        Sent::Unknown => Err(Error::SubmitOutcomeUnknown {
            idempotency_key: "k".into(),
            source: Box::new(Error::Api(api(StatusCode::BAD_GATEWAY))),
        }),
        Sent::Refused => Err(Error::Api(api(StatusCode::UNPROCESSABLE_ENTITY))),
    }
}

/// Where a case stands after its sends.
#[derive(Debug, PartialEq)]
struct Stands {
    /// Outcomes handed out, as `(attempts, ok)`.
    out: Vec<(u32, bool)>,
    queued: usize,
    allowed: usize,
    paused: Option<PauseReason>,
}

/// Feeds `sends` to a submitter of concurrency 8 and 3 tries per item,
/// one item per send; an item sent again is the one requeued.
fn run(sends: &[Sent]) -> Stands {
    let http = ClientBuilder::default()
        .build_http()
        .expect("a client builds");
    let options = SubmitterOptions::default().concurrency(8).max_attempts(3);
    let mut s: Submitter<u32> = Submitter::new(http.clone(), options);
    let mut out = Vec::new();
    let mut next: Option<Queued<u32>> = None;
    for (i, sent) in sends.iter().enumerate() {
        let mut queued = next.take().unwrap_or_else(|| Queued {
            item: SubmitItem::new(i as u32, "m/c", serde_json::json!({})).unwrap(),
            attempts: 0,
            started: Instant::now(),
        });
        queued.attempts += 1;
        queued.started = Instant::now();
        match s.finished(queued, result(&http, *sent)) {
            Some(o) => out.push((o.attempts, o.result.is_ok())),
            None => next = s.queue.pop_front(),
        }
    }
    if let Some(q) = next {
        s.queue.push_front(q);
    }
    Stands {
        out,
        queued: s.queue.len(),
        allowed: s.allowed(),
        paused: s.paused_until().map(|(_, why)| why),
    }
}

#[tokio::test(start_paused = true)]
async fn the_submitter_paces_by_what_its_sends_come_back_with() {
    use Sent::*;
    let cases: Vec<(&str, Vec<Sent>, Stands)> = vec![
        (
            "slow start: two in flight, one more per round of successes",
            vec![Accepted, Accepted, Accepted, Accepted],
            Stands {
                out: vec![(1, true); 4],
                queued: 0,
                allowed: 3,
                paused: None,
            },
        ),
        (
            "a 429 pauses every send, halves the window and uses up no try",
            vec![Accepted, Accepted, TooMany(2), TooMany(2), TooMany(2)],
            Stands {
                out: vec![(1, true), (1, true)],
                queued: 1,
                allowed: 1,
                paused: Some(PauseReason::RateLimited),
            },
        ),
        (
            "an unknown outcome is tried again with its key, up to the tries",
            vec![Unknown, Unknown, Unknown],
            Stands {
                out: vec![(3, false)],
                queued: 0,
                allowed: 1,
                paused: Some(PauseReason::Failures),
            },
        ),
        (
            "a refusal is final at once and pauses nothing",
            vec![Refused, Accepted],
            Stands {
                out: vec![(1, false), (1, true)],
                queued: 0,
                allowed: 2,
                paused: None,
            },
        ),
        (
            "a success after trouble is the item's outcome, on its second try, and grows the window again",
            vec![Unknown, Accepted],
            Stands {
                out: vec![(2, true)],
                queued: 0,
                allowed: 2,
                paused: Some(PauseReason::Failures),
            },
        ),
    ];
    for (name, sends, stands) in cases {
        assert_eq!(run(&sends), stands, "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn nothing_is_sent_past_what_the_service_says_is_left() {
    let http = ClientBuilder::default()
        .build_http()
        .expect("a client builds");
    let mut s: Submitter<u32> = Submitter::new(http.clone(), SubmitterOptions::default());
    let said = |remaining: &'static str, reset: &'static str| {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-limit-requests", HeaderValue::from_static("10"));
        h.insert(
            "x-ratelimit-remaining-requests",
            HeaderValue::from_static(remaining),
        );
        h.insert(
            "x-ratelimit-reset-requests",
            HeaderValue::from_static(reset),
        );
        h
    };
    assert!(s.has_room(), "nothing said yet: room");
    http.transport()
        .rate_limits()
        .observe("submit", StatusCode::ACCEPTED, &said("1", "5"));
    assert!(s.has_room());
    s.push(SubmitItem::new(0, "m/c", serde_json::json!({})).unwrap());
    assert!(!s.has_room(), "the one left is taken by the queued item");
    http.transport()
        .rate_limits()
        .observe("submit", StatusCode::ACCEPTED, &said("0", "5"));
    s.take_queued();
    assert_eq!(
        s.paused_until().map(|(_, why)| why),
        Some(PauseReason::RateLimited),
        "nothing left: paused until the reset"
    );
    tokio::time::advance(Duration::from_secs(6)).await;
    assert!(s.paused_until().is_none(), "past the reset");
    assert!(s.has_room());
}
