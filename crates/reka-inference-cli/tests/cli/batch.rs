//! `batch`: a file of lines run as jobs, one result per line, resumable.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use reka_inference_sim::{Dialect, SimConfig};
use serde_json::{Value, json};

use crate::common::{Sim, run, run_code, run_ok};

/// Writes `lines` to `dir/input.jsonl`.
pub fn input(dir: &Path, lines: &[String]) -> std::path::PathBuf {
    let path = dir.join("input.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    path
}

/// `n` bare prompt lines.
pub fn prompts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| json!({"prompt": format!("prompt {i}")}).to_string())
        .collect()
}

/// The lines of `out/results.jsonl`.
pub fn results(out: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(out.join("results.jsonl")).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

/// Result lines by id, failing on a second line for an id.
pub fn results_by_id(out: &Path) -> HashMap<String, Value> {
    let mut by_id = HashMap::new();
    for r in results(out) {
        let id = r["id"].as_str().unwrap().to_owned();
        assert!(
            by_id.insert(id.clone(), r).is_none(),
            "two results for {id}"
        );
    }
    by_id
}

#[test]
fn every_line_gets_one_result_and_its_files_and_a_rerun_sends_nothing() {
    // A service that reports no prices: the summary says so.
    let sim = Sim::with(SimConfig::new().prices(false));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut lines = prompts(20);
    lines.push(
        r#"{"endpoint": "veo-3.1/text-to-video", "input": {"prompt": "waves"}, "id": "clip-1"}"#
            .into(),
    );
    lines.push("".into());
    lines.push("this is not json".into());
    lines.push(r#"{"endpoint": "no-slash", "input": {}}"#.into());
    let file = input(dir.path(), &lines);
    let ran = run_code(
        sim.cmd()
            .arg("batch")
            .arg(&file)
            .arg("--out")
            .arg(&out)
            .args([
                "--endpoint",
                "nano-banana/text-to-image",
                "--concurrency",
                "6",
            ]),
        13,
    );
    assert!(ran.stdout.contains("21 of 23 lines succeeded"), "{ran:?}");
    assert!(ran.stdout.contains("no price reported"), "{ran:?}");
    assert!(ran.stderr.contains("line 23"), "{ran:?}");
    let by_id = results_by_id(&out);
    assert_eq!(by_id.len(), 23);
    for i in 1..=20 {
        let r = &by_id[&format!("line-{i}")];
        assert_eq!(r["status"], "COMPLETED", "{r}");
        assert_eq!(r["ok"], true);
        assert_eq!(r["line"], i);
        assert!(r["output"]["images"].is_array(), "{r}");
        let files = r["files"].as_array().unwrap();
        assert!(!files.is_empty(), "{r}");
        for f in files {
            let path = Path::new(f.as_str().unwrap());
            assert!(path.starts_with(out.join(format!("line-{i}"))), "{f}");
            assert!(path.metadata().unwrap().len() > 0);
        }
    }
    assert_eq!(by_id["clip-1"]["status"], "COMPLETED");
    assert_eq!(by_id["clip-1"]["line"], 21);
    assert_eq!(by_id["line-23"]["status"], "INVALID");
    assert_eq!(by_id["line-24"]["status"], "INVALID");
    let stats = sim.stats();
    assert_eq!(stats.jobs_created, 21);

    // Again: nothing is sent, nothing is written twice.
    let again = run_code(
        sim.cmd()
            .arg("batch")
            .arg(&file)
            .arg("--out")
            .arg(&out)
            .args(["--endpoint", "nano-banana/text-to-image"]),
        13,
    );
    assert!(
        again.stdout.contains("21 of 23 lines succeeded"),
        "{again:?}"
    );
    assert_eq!(results(&out).len(), 23);
    assert_eq!(
        sim.stats().count("submit", "202"),
        stats.count("submit", "202")
    );
}

#[test]
fn a_batch_of_good_lines_exits_zero_with_json_events() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = input(dir.path(), &prompts(8));
    let ran = run_ok(
        sim.cmd()
            .args(["--json", "batch"])
            .arg(&file)
            .arg("--out")
            .arg(&out)
            .args(["--endpoint", "nano-banana/text-to-image", "--no-download"]),
    );
    let events: Vec<Value> = ran
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let count = |kind: &str| events.iter().filter(|e| e["event"] == kind).count();
    assert_eq!(count("started"), 1);
    assert_eq!(count("submitted"), 8);
    assert_eq!(count("result"), 8);
    let summary = events.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["succeeded"], 8);
    assert_eq!(summary["left"], 0);
    // --no-download: no directories of files.
    for r in results(&out) {
        assert_eq!(r["files"].as_array().unwrap().len(), 0, "{r}");
        assert!(!out.join(r["id"].as_str().unwrap()).exists());
    }
}

#[test]
fn a_dry_run_checks_every_line_and_sends_nothing() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let mut lines = prompts(3);
    lines.push("{".into());
    let file = input(dir.path(), &lines);
    let ran = run_code(
        sim.cmd()
            .args(["--json", "batch", "--dry-run"])
            .arg(&file)
            .arg("--out")
            .arg(dir.path().join("out"))
            .args(["--endpoint", "nano-banana/text-to-image"]),
        2,
    );
    let events: Vec<Value> = ran
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let would: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "would_submit")
        .collect();
    assert_eq!(would.len(), 3);
    assert_eq!(would[0]["input"]["prompt"], "prompt 0");
    assert_eq!(would[0]["endpoint"], "nano-banana/text-to-image");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "invalid" && e["line"] == 4)
    );
    assert_eq!(sim.total_requests(), 0);
    assert!(
        !dir.path().join("out").exists(),
        "a dry run wrote its out dir"
    );
}

#[test]
fn the_budget_stops_submits_and_says_so() {
    let sim = Sim::with(SimConfig::new().dialect(Dialect::Infer));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = input(dir.path(), &prompts(30));
    // The price of one job, learnt from one run.
    let price = run_ok(sim.cmd().args([
        "--json",
        "run",
        "nano-banana/text-to-image",
        "--set",
        "prompt=x",
    ]))
    .json()["price_usd"]
        .as_f64()
        .expect("infer prices jobs");
    let budget = format!("{}", price * 4.5);
    let ran = run_code(
        sim.cmd()
            .arg("batch")
            .arg(&file)
            .arg("--out")
            .arg(&out)
            .args([
                "--endpoint",
                "nano-banana/text-to-image",
                "--budget-usd",
                &budget,
            ]),
        13,
    );
    assert!(ran.stderr.contains("budget"), "{ran:?}");
    let done = results(&out);
    assert_eq!(done.len(), 4, "{done:?}");
    let spent: f64 = done.iter().filter_map(|r| r["price_usd"].as_f64()).sum();
    assert!(spent <= price * 4.5 + 1e-9);
    assert_eq!(sim.stats().jobs_created, 1 + 4);
}

#[test]
fn one_run_per_directory_at_a_time() {
    let sim = Sim::with_slow_jobs();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = input(dir.path(), &prompts(2));
    let mut first = sim
        .std_cmd()
        .arg("batch")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .args(["--endpoint", "slow/text-to-video"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let began = Instant::now();
    while sim.stats().jobs_created < 2 {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the first run never submitted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = run_code(
        sim.cmd()
            .arg("batch")
            .arg(&file)
            .arg("--out")
            .arg(&out)
            .args(["--endpoint", "slow/text-to-video"]),
        2,
    );
    assert!(
        second.stderr.contains("another batch is running"),
        "{second:?}"
    );
    first.kill().unwrap();
    let _ = first.wait();
    // Once it is gone, the lock is too.
    let third = run(sim
        .cmd()
        .args(["--timeout", "1s", "batch"])
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .args(["--endpoint", "slow/text-to-video"]));
    assert_eq!(third.code, 9, "{third:?}");
    assert_eq!(sim.stats().jobs_created, 2, "the resumed run made new jobs");
}

#[test]
fn ctrl_c_stops_submitting_and_the_same_command_finishes() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = input(dir.path(), &prompts(200));
    let args = |cmd: &mut std::process::Command| {
        cmd.arg("batch").arg(&file).arg("--out").arg(&out).args([
            "--endpoint",
            "nano-banana/text-to-image",
            "--concurrency",
            "2",
            "--no-download",
        ]);
    };
    let mut cmd = sim.std_cmd();
    args(&mut cmd);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let began = Instant::now();
    while sim.stats().jobs_created < 10 {
        assert!(began.elapsed() < Duration::from_secs(60), "never submitted");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let stopped = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&stopped.stderr);
    assert_eq!(stopped.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("run the same command"), "{stderr}");
    let created = sim.stats().jobs_created;
    assert!(created < 200, "Ctrl-C did not stop the submits");
    let mut cmd = sim.std_cmd();
    args(&mut cmd);
    let finished = cmd.output().unwrap();
    assert_eq!(
        finished.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&finished.stderr)
    );
    assert_eq!(results_by_id(&out).len(), 200);
    assert_eq!(sim.stats().jobs_created, 200);
}

#[test]
fn lines_whose_ids_repeat_are_reported_not_run_twice() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = input(
        dir.path(),
        &[
            r#"{"input": {"prompt": "a"}, "id": "same"}"#.into(),
            r#"{"input": {"prompt": "b"}, "id": "same"}"#.into(),
        ],
    );
    let ran = run_code(
        sim.cmd()
            .arg("batch")
            .arg(&file)
            .arg("--out")
            .arg(&out)
            .args(["--endpoint", "nano-banana/text-to-image"]),
        13,
    );
    let by_id = results_by_id(&out);
    assert_eq!(by_id["same"]["status"], "COMPLETED");
    assert_eq!(by_id["line-2"]["status"], "INVALID");
    assert!(
        by_id["line-2"]["error"]
            .as_str()
            .unwrap()
            .contains("line 1"),
        "{ran:?}"
    );
    assert_eq!(sim.stats().jobs_created, 1);
    let ids: HashSet<&str> = by_id.keys().map(String::as_str).collect();
    assert_eq!(ids.len(), 2);
}

#[test]
fn a_rate_limited_service_is_followed_not_hammered() {
    // 20 submits a second, bursts of 5: 60 lines take at least (60 - 5) /
    // 20 s. With the bucket's reset to the millisecond, and rounded up to
    // whole seconds (which hides how soon it refills).
    for whole_seconds in [false, true] {
        let sim = Sim::with(
            SimConfig::new()
                .submit_rate_limit(20.0, 5)
                .submit_reset_whole_seconds(whole_seconds),
        );
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let file = input(dir.path(), &prompts(60));
        let began = Instant::now();
        run_ok(
            sim.cmd()
                .arg("batch")
                .arg(&file)
                .arg("--out")
                .arg(&out)
                .args([
                    "--endpoint",
                    "nano-banana/text-to-image",
                    "--concurrency",
                    "16",
                    "--no-download",
                ]),
        );
        // Not faster than the limit (a lower bound: safe on a busy machine).
        assert!(began.elapsed() >= Duration::from_millis(2700));
        assert_eq!(results_by_id(&out).len(), 60);
        let stats = sim.stats();
        assert_eq!(stats.jobs_created, 60);
        // Sends keep within what the answers say is left: a refusal only
        // when answers cross on a busy machine (it was 40 before the
        // submitter counted its sends in flight and dropped crossed
        // answers).
        assert!(
            stats.submit_rate_limited <= 10,
            "whole seconds {whole_seconds}: {} submits refused",
            stats.submit_rate_limited
        );
    }
}

#[test]
fn two_directories_with_one_idempotency_prefix_share_their_jobs() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let file = input(dir.path(), &prompts(6));
    for out in ["a", "b"] {
        run_ok(
            sim.cmd()
                .arg("batch")
                .arg(&file)
                .arg("--out")
                .arg(dir.path().join(out))
                .args(["--endpoint", "nano-banana/text-to-image", "--no-download"])
                .args(["--idempotency-prefix", "shots-2026-12:"]),
        );
    }
    let (a, b) = (
        results_by_id(&dir.path().join("a")),
        results_by_id(&dir.path().join("b")),
    );
    assert_eq!(a.len(), 6);
    for (id, r) in &a {
        assert_eq!(r["request_id"], b[id]["request_id"], "{id}");
    }
    assert_eq!(sim.stats().jobs_created, 6);
    let bad = run_code(
        sim.cmd()
            .arg("batch")
            .arg(&file)
            .arg("--out")
            .arg(dir.path().join("c"))
            .args([
                "--endpoint",
                "nano-banana/text-to-image",
                "--idempotency-prefix",
                "has space",
            ]),
        2,
    );
    assert!(bad.stderr.contains("--idempotency-prefix"), "{bad:?}");
}
