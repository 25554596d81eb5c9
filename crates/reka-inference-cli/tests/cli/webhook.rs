//! `run --webhook-listen` (and `submit --webhook` then `wait
//! --webhook-listen`): the wait ends at the webhook delivery, confirmed by
//! one fetch of the record, with no status polls.

use crate::common::{Sim, run_ok};

#[test]
fn run_with_a_webhook_ends_at_the_delivery_with_one_fetch() {
    let sim = Sim::start();
    let out = run_ok(sim.cmd().args([
        "--json",
        "run",
        "nano-banana/text-to-image",
        "--set",
        "prompt=x",
        "--webhook-listen",
        "127.0.0.1:0",
    ]));
    let v = out.json();
    assert_eq!(v["status"], "COMPLETED", "{out:?}");
    let stats = sim.stats();
    assert_eq!(stats.webhooks_delivered, 1, "{stats:?}");
    assert_eq!(stats.count("get_status", "200"), 0, "{stats:?}");
    assert_eq!(stats.count("get_result", "200"), 1, "{stats:?}");
}

#[test]
fn submit_with_a_webhook_then_wait_listening_for_it() {
    let sim = Sim::start();
    // A port nothing else holds, for the submit to name and the wait to
    // listen on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let submitted = run_ok(sim.cmd().args([
        "--json",
        "submit",
        "nano-banana/text-to-image",
        "--set",
        "prompt=x",
        "--webhook",
        &format!("http://127.0.0.1:{port}/"),
    ]))
    .json();
    let id = submitted["request_id"].as_str().expect("request_id");
    let before = sim.stats();
    let waited = run_ok(sim.cmd().args([
        "--json",
        "wait",
        id,
        "--webhook-listen",
        &format!("127.0.0.1:{port}"),
    ]))
    .json();
    assert_eq!(waited["request_id"], id);
    assert_eq!(waited["status"], "COMPLETED");
    // One look at the start (the job may have ended before anything
    // listened), then the delivery and its confirming fetch: no polling.
    let after = sim.stats();
    let looks =
        |s: &reka_inference_sim::Stats| s.count("get_status", "200") + s.count("get_result", "200");
    assert!(looks(&after) - looks(&before) <= 3, "{after:?}");
}

#[test]
fn a_bad_listen_address_is_a_usage_error() {
    let sim = Sim::start();
    let out = crate::common::run_code(
        sim.cmd()
            .args(["run", "nano-banana/text-to-image", "--set", "prompt=x"])
            .args(["--webhook-listen", "not-an-address"]),
        2,
    );
    assert!(out.stderr.contains("--webhook-listen"), "{out:?}");
}

#[test]
fn a_batch_with_a_webhook_follows_its_jobs_by_delivery_not_by_polling() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = crate::batch::input(dir.path(), &crate::batch::prompts(12));
    run_ok(
        sim.cmd()
            .arg("batch")
            .arg(&file)
            .arg("--out")
            .arg(&out)
            .args(["--endpoint", "nano-banana/text-to-image", "--no-download"])
            .args(["--webhook-listen", "127.0.0.1:0"]),
    );
    assert_eq!(crate::batch::results_by_id(&out).len(), 12);
    let stats = sim.stats();
    assert_eq!(stats.webhooks_delivered, 12, "{stats:?}");
    // One confirming fetch per job; no status polls and no list sweeps.
    assert_eq!(stats.count("get_result", "200"), 12, "{stats:?}");
    assert_eq!(stats.count("get_status", "200"), 0, "{stats:?}");
    assert_eq!(stats.count("list_requests", "200"), 0, "{stats:?}");
}

/// Issue 27, defect 1: a lost delivery costs seconds, not the minutes of a
/// safety net that first looked 2 minutes after the submit (before: with
/// `--timeout 60s`, exit 9 after 60 s, "unknown (no look succeeded)").
#[test]
fn a_lost_delivery_is_found_in_seconds() {
    let sim = Sim::start();
    sim.set_faults("webhook:lost=1");
    let out = run_ok(sim.cmd().args([
        "--json",
        "run",
        "nano-banana/text-to-image",
        "--set",
        "prompt=x",
        "--webhook-listen",
        "127.0.0.1:0",
        "--timeout",
        "60s",
    ]));
    assert_eq!(out.json()["status"], "COMPLETED", "{out:?}");
    let stats = sim.stats();
    assert_eq!(stats.webhooks_lost, 1, "{stats:?}");
    // A few safety-net looks at most (the first 2 s after the submit).
    let looks = stats.count("get_status", "200") + stats.count("get_result", "200");
    assert!((1..=4).contains(&looks), "{stats:?}");
}

/// Issue 27, defect 1: a deadline that comes before the first look says
/// so, rather than that a look failed.
#[test]
fn a_deadline_before_any_look_does_not_claim_a_look_failed() {
    let sim = Sim::with_slow_jobs();
    let out = crate::common::run_code(
        sim.cmd().args([
            "run",
            "slow/text-to-video",
            "--set",
            "prompt=x",
            "--webhook-listen",
            "127.0.0.1:0",
            "--timeout",
            "1s",
        ]),
        9,
    );
    assert!(out.stderr.contains("before its first look"), "{out:?}");
    assert!(!out.stderr.contains("no look succeeded"), "{out:?}");
}

/// Issue 21: a `--webhook-url` that does not reach the listener is
/// refused before anything is submitted (before: the job was submitted,
/// and its wait fell back to the safety net).
#[test]
fn a_webhook_url_that_does_not_reach_the_listener_is_refused_before_the_submit() {
    let sim = Sim::start();
    let out = crate::common::run_code(
        sim.cmd().args([
            "run",
            "nano-banana/text-to-image",
            "--set",
            "prompt=x",
            "--webhook-listen",
            "127.0.0.1:0",
            "--webhook-url",
            "http://127.0.0.1:1/hook",
            "--timeout",
            "5s",
        ]),
        10,
    );
    assert!(out.stderr.contains("does not reach"), "{out:?}");
    assert!(
        out.stderr
            .contains("or pass --webhook-no-check if only the service can reach it"),
        "{out:?}"
    );
    let submits: u64 = sim
        .stats()
        .requests
        .get("submit")
        .map_or(0, |by_status| by_status.values().sum());
    assert_eq!(submits, 0, "nothing was submitted");
    // Told not to check, it submits, and the safety net finds the job.
    let out = run_ok(sim.cmd().args([
        "--json",
        "run",
        "nano-banana/text-to-image",
        "--set",
        "prompt=x",
        "--webhook-listen",
        "127.0.0.1:0",
        "--webhook-url",
        "http://127.0.0.1:1/hook",
        "--webhook-no-check",
        "--timeout",
        "60s",
    ]));
    assert_eq!(out.json()["status"], "COMPLETED", "{out:?}");
}
