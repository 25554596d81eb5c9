//! `run --webhook-listen`: the wait ends at the webhook delivery, confirmed
//! by one fetch of the record, with no status polls.

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
