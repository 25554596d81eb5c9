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
