//! The tracker as a table: each case feeds a job's looks in order and
//! states the events it must report and where it must stand after.

use serde_json::{Value, json};

use super::*;
use crate::PollPolicy;

/// One thing a look saw.
enum Saw {
    Status(Value),
    Record(Value),
    Failure(Error),
}

fn status(s: &str) -> Saw {
    Saw::Status(json!({"request_id": "r1", "status": s}))
}

fn record(body: Value) -> Saw {
    let mut body = body;
    if body.get("request_id").is_none() {
        body["request_id"] = json!("r1");
    }
    Saw::Record(body)
}

fn passing() -> Saw {
    Saw::Failure(Error::Api(Box::new(crate::ApiError::from_parts(
        reqwest::StatusCode::SERVICE_UNAVAILABLE,
        &reqwest::header::HeaderMap::new(),
        bytes::Bytes::new(),
    ))))
}

/// An event reduced to what a case compares.
fn word(event: &Result<JobEvent>) -> String {
    match event {
        Ok(JobEvent::Queued { position }) => format!("queued {position:?}"),
        Ok(JobEvent::Started) => "started".into(),
        Ok(JobEvent::Log(line)) => format!("log {}", line.message),
        Ok(JobEvent::UnknownStatus(s)) => format!("unknown {s}"),
        Ok(JobEvent::Completed(done)) => format!("completed {}", done.output),
        Ok(JobEvent::Failed { error, .. }) => format!(
            "failed {}",
            error
                .as_ref()
                .and_then(|e| e.message.clone())
                .unwrap_or_default()
        ),
        Ok(JobEvent::Cancelled) => "cancelled".into(),
        Ok(JobEvent::Inconsistent(detail)) => format!("inconsistent {detail}"),
        Err(e) => format!("error {}", e.status().map_or(0, |s| s.as_u16())),
    }
}

/// A case: its name, whether logs are wanted, the looks, the events
/// they must give, and where the tracker must stand after.
type Case = (&'static str, bool, Vec<Saw>, Vec<&'static str>, Then);

/// Where the tracker stands after the looks.
#[derive(Debug, PartialEq)]
enum Then {
    Finished,
    Looks(LookKind),
}

fn tracker(with_logs: bool) -> Tracker {
    let http = crate::builder::ClientBuilder::default()
        .build_http()
        .expect("a client builds");
    Tracker::new(
        http,
        "r1".into(),
        None,
        None,
        PollPolicy::default(),
        None,
        with_logs,
    )
}

fn run(with_logs: bool, looks: Vec<Saw>) -> (Vec<String>, Then) {
    let mut t = tracker(with_logs);
    let mut events = Vec::new();
    let now = Instant::now();
    for look in looks {
        match look {
            Saw::Status(v) => t.observe_status(serde_json::from_value(v).unwrap(), now),
            Saw::Record(v) => t.observe_record(serde_json::from_value(v).unwrap(), now),
            Saw::Failure(e) => t.observe_failure(e, now),
        }
        while let Some(e) = t.take_event() {
            events.push(word(&e));
        }
    }
    let then = match t.next_look() {
        None => Then::Finished,
        Some((_, kind)) => Then::Looks(kind),
    };
    (events, then)
}

#[tokio::test(start_paused = true)]
async fn the_tracker_turns_looks_into_events() {
    let logs = |n: usize| {
        let lines: Vec<Value> = (1..=n)
            .map(|i| json!({"message": format!("step {i}"), "level": "INFO", "source": "s", "timestamp": "2026-01-01T00:00:00Z"}))
            .collect();
        Saw::Status(json!({"request_id": "r1", "status": "IN_PROGRESS", "logs": lines}))
    };
    let cases: Vec<Case> = vec![
        (
            "a queue, a run, a terminal status, then its record",
            false,
            vec![
                Saw::Status(json!({"request_id": "r1", "status": "IN_QUEUE", "queue_position": 2})),
                Saw::Status(json!({"request_id": "r1", "status": "IN_QUEUE", "queue_position": 2})),
                Saw::Status(json!({"request_id": "r1", "status": "IN_QUEUE", "queue_position": 0})),
                status("IN_PROGRESS"),
                status("COMPLETED"),
                record(json!({"status": "COMPLETED", "output": {"images": []}})),
            ],
            vec![
                "queued Some(2)",
                "queued Some(0)",
                "started",
                "completed {\"images\":[]}",
            ],
            Then::Finished,
        ),
        (
            "a terminal status is not believed before its record",
            false,
            vec![status("COMPLETED")],
            vec![],
            Then::Looks(LookKind::Record),
        ),
        (
            "a running job without logs is looked at through its record",
            false,
            vec![status("IN_PROGRESS")],
            vec!["started"],
            Then::Looks(LookKind::Record),
        ),
        (
            "with logs, each line is reported once though each look resends all",
            true,
            vec![logs(1), logs(3), logs(3)],
            vec!["log step 1", "started", "log step 2", "log step 3"],
            Then::Looks(LookKind::Status),
        ),
        (
            "a record still running after a terminal status: a short disagreement is said once and waited through, asking the status again",
            false,
            vec![
                status("COMPLETED"),
                record(json!({"status": "IN_PROGRESS"})),
            ],
            vec!["inconsistent the status says COMPLETED but the record says IN_PROGRESS"],
            Then::Looks(LookKind::Status),
        ),
        (
            "a record of another request is not this job's end",
            false,
            vec![
                status("COMPLETED"),
                record(json!({"request_id": "r2", "status": "COMPLETED", "output": {}})),
            ],
            vec![
                r#"inconsistent the status says COMPLETED but the record is another request's ("r2")"#,
            ],
            Then::Looks(LookKind::Status),
        ),
        (
            "failed, with the service's message",
            false,
            vec![record(
                json!({"status": "FAILED", "error": {"message": "moderated"}}),
            )],
            vec!["failed moderated"],
            Then::Finished,
        ),
        (
            "fal's failure: COMPLETED with an error and no output",
            false,
            vec![record(
                json!({"status": "COMPLETED", "output": null, "error": {"message": "upstream"}}),
            )],
            vec!["failed upstream"],
            Then::Finished,
        ),
        (
            "cancelled, in either spelling",
            false,
            vec![record(json!({"status": "CANCELED"}))],
            vec!["cancelled"],
            Then::Finished,
        ),
        (
            "an unknown status is reported once and followed on",
            false,
            vec![
                status("EXPIRING"),
                status("EXPIRING"),
                status("IN_PROGRESS"),
            ],
            vec!["unknown EXPIRING", "started"],
            Then::Looks(LookKind::Record),
        ),
        (
            "passing failures are tried again, up to the budget",
            false,
            (0..MAX_FAILURES).map(|_| passing()).collect(),
            vec![],
            Then::Looks(LookKind::Status),
        ),
        (
            "one failure past the budget ends the wait with it",
            false,
            (0..=MAX_FAILURES).map(|_| passing()).collect(),
            vec!["error 503"],
            Then::Finished,
        ),
        (
            "a success between failures resets the budget",
            false,
            (0..MAX_FAILURES)
                .map(|_| passing())
                .chain([status("IN_QUEUE")])
                .chain((0..MAX_FAILURES).map(|_| passing()))
                .collect(),
            vec!["queued None"],
            Then::Looks(LookKind::Status),
        ),
        (
            "a failure that will not pass ends the wait at once",
            false,
            vec![Saw::Failure(Error::InvalidInput("bad id".into()))],
            vec!["error 0"],
            Then::Finished,
        ),
        (
            "nothing after the end changes it",
            false,
            vec![
                record(json!({"status": "CANCELLED"})),
                status("IN_PROGRESS"),
                passing(),
            ],
            vec!["cancelled"],
            Then::Finished,
        ),
    ];
    for (name, with_logs, looks, events, then) in cases {
        let (seen, stands) = run(with_logs, looks);
        assert_eq!(seen, events, "{name}");
        assert_eq!(stands, then, "{name}");
    }
}
