//! Ctrl-C while waiting: the job keeps running and the resume command is
//! printed, or with --cancel-on-interrupt the job is cancelled.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Sim, run_ok};

/// Starts the binary with `args`, and returns once the simulator has
/// answered at least `polls` status polls from it (the Ctrl-C handler is
/// installed before the first request, so it is in place by then).
fn spawn_waiting(sim: &Sim, args: &[&str], polls: u64) -> Child {
    let before = sim.stats().count("get_status", "200");
    let child = sim
        .std_cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let began = Instant::now();
    while sim.stats().count("get_status", "200") < before + polls {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the binary never polled"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn interrupt(child: Child) -> (i32, String, String) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let out = child.wait_with_output().expect("the binary ends");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn status_of(sim: &Sim, id: &str) -> String {
    let json = run_ok(sim.cmd().args(["--json", "status", id])).json();
    json["status"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn interrupting_wait_leaves_the_job_running_and_says_how_to_resume() {
    let sim = Sim::with_slow_jobs();
    let id = sim.submit("slow/text-to-video", "waves");
    let child = spawn_waiting(&sim, &["wait", &id], 1);
    let (code, stdout, stderr) = interrupt(child);
    assert_eq!(code, 130, "{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains(&format!("reka-inference wait {id}")),
        "{stderr}"
    );
    assert!(stderr.contains("keeps running"), "{stderr}");
    assert_eq!(
        sim.stats().count("cancel_request", "200"),
        0,
        "no cancel was sent"
    );
    let status = status_of(&sim, &id);
    assert!(status == "IN_QUEUE" || status == "IN_PROGRESS", "{status}");

    // Resuming works: the job is still there to wait for.
    let again = spawn_waiting(&sim, &["--json", "wait", &id], 1);
    let (code, _, stderr) = interrupt(again);
    assert_eq!(code, 130);
    let e: serde_json::Value =
        serde_json::from_str(stderr.lines().last().unwrap_or_default()).expect("JSON error");
    assert_eq!(e["error"]["kind"], "interrupted");
    assert_eq!(e["error"]["exit_code"], 130);
    assert_eq!(e["error"]["request_id"], id.as_str());
}

#[test]
fn interrupting_wait_with_cancel_on_interrupt_cancels_the_job() {
    let sim = Sim::with_slow_jobs();
    let id = sim.submit("slow/text-to-video", "waves");
    let child = spawn_waiting(&sim, &["wait", &id, "--cancel-on-interrupt"], 1);
    let (code, _, stderr) = interrupt(child);
    assert_eq!(code, 130, "{stderr}");
    assert!(stderr.contains(&format!("cancelled job {id}")), "{stderr}");
    assert_eq!(status_of(&sim, &id), "CANCELLED");
}

#[test]
fn interrupting_run_after_the_submit_names_the_job() {
    let sim = Sim::with_slow_jobs();
    let child = spawn_waiting(
        &sim,
        &["run", "slow/text-to-video", "--set", "prompt=waves"],
        1,
    );
    let (code, _, stderr) = interrupt(child);
    assert_eq!(code, 130, "{stderr}");
    let listed = run_ok(sim.cmd().args(["--json", "list"])).json();
    let id = listed[0]["request_id"]
        .as_str()
        .expect("the submitted job")
        .to_owned();
    assert!(
        stderr.contains(&format!("reka-inference wait {id}")),
        "{stderr}"
    );
    let status = status_of(&sim, &id);
    assert!(status == "IN_QUEUE" || status == "IN_PROGRESS", "{status}");
}
