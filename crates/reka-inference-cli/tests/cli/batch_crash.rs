//! The crash test of `batch`: a few hundred lines on a faulty simulator,
//! the process killed with SIGKILL while submitting, while waiting and
//! while downloading, and started again each time with the same command.
//! At the end every line has exactly one job on the simulator, one result
//! line and its files, and no job was created twice.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reka_inference_sim::{Catalog, DEV_API_KEY, SimConfig};
use serde_json::Value;

use crate::batch::{input, prompts, results_by_id};
use crate::common::Sim;

const LINES: usize = 300;
const ENDPOINT: &str = "crash/text-to-image";

/// When a run is killed: once its `--json` events show this much.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// After this many `submitted` events (of this run).
    Submitted(usize),
    /// After this many `finished` events: jobs are waited for.
    Finished(usize),
    /// After this many `finished` events of completed jobs: their files are
    /// being saved, slowly (the simulator drips them).
    Downloading(usize),
}

impl KillAt {
    fn reached(self, counts: &HashMap<String, usize>) -> bool {
        let n = |k: &str| counts.get(k).copied().unwrap_or(0);
        match self {
            KillAt::Submitted(x) => n("submitted") >= x,
            KillAt::Finished(x) => n("finished") >= x,
            KillAt::Downloading(x) => n("finished_completed") >= x,
        }
    }
}

fn spawn(sim: &Sim, file: &Path, out: &Path) -> Child {
    sim.std_cmd()
        .args(["--json", "batch"])
        .arg(file)
        .arg("--out")
        .arg(out)
        .args(["--endpoint", ENDPOINT, "--concurrency", "8"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts")
}

/// Runs the batch until `at`, then kills it with SIGKILL. Returns whether
/// the point was reached (a run may also finish before it).
fn run_until_killed(sim: &Sim, file: &Path, out: &Path, at: KillAt) -> bool {
    let mut child = spawn(sim, file, out);
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel::<Value>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && tx.send(v).is_err()
            {
                break;
            }
        }
    });
    let mut counts: HashMap<String, usize> = HashMap::new();
    let began = Instant::now();
    let mut reached = false;
    while began.elapsed() < Duration::from_secs(120) {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(event) => {
                let kind = event["event"].as_str().unwrap_or_default().to_owned();
                if kind == "finished" && event["status"] == "COMPLETED" {
                    *counts.entry("finished_completed".into()).or_default() += 1;
                }
                *counts.entry(kind).or_default() += 1;
                if at.reached(&counts) {
                    reached = true;
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // The run ended on its own.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // SIGKILL: no handler runs, nothing is flushed on the way out.
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    reached
}

/// Every job the simulator holds, with its input, read through the list
/// endpoint with payloads.
fn jobs_on_the_simulator(sim: &Sim) -> Vec<Value> {
    sim.block_on(async {
        let http = reqwest::Client::new();
        let mut jobs = Vec::new();
        let mut offset = 0;
        loop {
            let page: Value = http
                .get(format!("{}/v2/inference/requests", sim.url))
                .header("x-api-key", DEV_API_KEY)
                .query(&[
                    ("expand", "payloads"),
                    ("limit", "100"),
                    ("offset", &offset.to_string()),
                ])
                .send()
                .await
                .expect("list")
                .json()
                .await
                .expect("list JSON");
            let items = page["items"].as_array().cloned().unwrap_or_default();
            jobs.extend(items);
            match page["next_offset"].as_u64() {
                Some(n) => offset = n,
                None => return jobs,
            }
        }
    })
}

#[test]
fn killed_anywhere_and_resumed_every_line_has_one_job_one_result_and_its_files() {
    let catalog = Catalog::from_json(
        r#"{"chat_models": ["qwen3-vl-32b"], "models": [{"model_id": "crash",
            "capability": "text-to-image", "workers": 64,
            "duration": {"lognormal": {"median": 60, "p95": 120}}, "failure_rate": 0}]}"#,
    )
    .expect("catalog");
    let faults = "submit:lost=0.1,submit:503=0.05,*:drop=0.01,get_result:500=0.05,\
                  list_requests:503=0.05,files:drip=5ms";
    let sim = Sim::with(
        SimConfig::new()
            .catalog(catalog)
            .faults(faults.parse().expect("faults")),
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = input(dir.path(), &prompts(LINES));

    let kills = [
        KillAt::Submitted(30),
        KillAt::Submitted(120),
        KillAt::Finished(20),
        KillAt::Downloading(3),
        KillAt::Downloading(40),
        KillAt::Finished(100),
    ];
    let mut reached = 0;
    for at in kills {
        if run_until_killed(&sim, &file, &out, at) {
            reached += 1;
        }
        let parts = walk(&out)
            .into_iter()
            .filter(|p| p.ends_with(".part"))
            .count();
        eprintln!(
            "killed at {at:?}: {} jobs on the simulator, {} result lines, {parts} files half-saved",
            sim.stats().jobs_created,
            crate::batch::results(&out).len()
        );
    }
    // Each kill point is past where the previous run left off; most must
    // have been reached for the test to mean anything.
    assert!(reached >= 4, "only {reached} kill points were reached");

    // The last run, to the end.
    let last = spawn(&sim, &file, &out)
        .wait_with_output()
        .expect("the last run");
    let stdout = String::from_utf8_lossy(&last.stdout);
    assert_eq!(last.status.code(), Some(0), "{stdout}");

    // One result line per input line, each completed with its files.
    let by_id = results_by_id(&out);
    assert_eq!(by_id.len(), LINES);
    for i in 1..=LINES {
        let r = &by_id[&format!("line-{i}")];
        assert_eq!(r["status"], "COMPLETED", "{r}");
        let files = r["files"].as_array().expect("files");
        assert!(!files.is_empty(), "{r}");
        for f in files {
            let size = std::fs::metadata(f.as_str().unwrap())
                .map(|m| m.len())
                .unwrap_or(0);
            assert!(size > 0, "line {i}: {f} missing or empty");
        }
    }
    // No file left half-written.
    let parts: Vec<_> = walk(&out)
        .into_iter()
        .filter(|p| p.ends_with(".part"))
        .collect();
    assert!(parts.is_empty(), "{parts:?}");

    // Exactly one job per line on the simulator, none made twice.
    let stats = sim.stats();
    assert_eq!(stats.jobs_created, LINES as u64, "{stats:?}");
    assert!(
        stats.faults("lost") > 0,
        "no submit answer was lost: {stats:?}"
    );
    // The test's own reads must not meet the faults.
    sim.set_faults("*:latency=0ms");
    let jobs = jobs_on_the_simulator(&sim);
    assert_eq!(jobs.len(), LINES);
    let mut per_prompt: HashMap<String, usize> = HashMap::new();
    for job in &jobs {
        let prompt = job["input"]["prompt"].as_str().expect("prompt").to_owned();
        *per_prompt.entry(prompt).or_default() += 1;
    }
    assert_eq!(per_prompt.len(), LINES);
    assert!(per_prompt.values().all(|&n| n == 1));
    // Each result names the job of its own line.
    for job in &jobs {
        let prompt = job["input"]["prompt"].as_str().unwrap();
        let line: usize = prompt
            .trim_start_matches("prompt ")
            .parse::<usize>()
            .unwrap()
            + 1;
        assert_eq!(
            by_id[&format!("line-{line}")]["request_id"],
            job["request_id"]
        );
    }
}

fn walk(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                found.extend(walk(&p));
            } else {
                found.push(p.display().to_string());
            }
        }
    }
    found
}
