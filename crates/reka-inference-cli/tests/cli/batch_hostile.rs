//! `batch` tried as a careless user would (issue 27, defects 4 to 10, and
//! issue 21's budget on an unpriced service): ids naming DIR's own files,
//! pipes and FIFOs, edited lines, a lost journal, deleted results and
//! files, budgets without prices, a byte-order mark; and local images
//! (issue 22) through a kill and a resume with bounded memory.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use reka_inference_sim::{SimConfig, samples};
use serde_json::{Value, json};

use crate::batch::{input, prompts, results, results_by_id};
use crate::common::{Sim, TEST_IMAGE_URL, run, run_code, run_ok, wait_for_peak_rss};

const ENDPOINT: &str = "nano-banana/text-to-image";

/// `batch FILE --out OUT --endpoint ENDPOINT --json` plus `extra`.
fn batch(sim: &Sim, file: &Path, out: &Path, extra: &[&str]) -> assert_cmd::Command {
    let mut cmd = sim.cmd();
    cmd.args(["--json", "batch"])
        .arg(file)
        .arg("--out")
        .arg(out)
        .args(["--endpoint", ENDPOINT])
        .args(extra);
    cmd
}

/// The `summary` event of a `--json` run.
fn summary(stdout: &str) -> Value {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "summary")
        .unwrap_or_else(|| panic!("no summary in {stdout}"))
}

/// The events of one kind of a `--json` run.
fn events(stdout: &str, kind: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == kind)
        .collect()
}

#[test]
fn ids_naming_the_directorys_own_files_are_refused_before_anything_is_paid() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut lines: Vec<String> = [
        "journal.sqlite",
        "journal.sqlite-wal",
        "journal.sqlite-shm",
        "results.jsonl",
        ".lock",
        "input.jsonl",
    ]
    .iter()
    .map(|id| json!({"input": {"prompt": "x"}, "id": id}).to_string())
    .collect();
    lines.push(json!({"input": {"prompt": "fine"}, "id": "fine"}).to_string());
    let file = input(dir.path(), &lines);
    for _ in 0..2 {
        let ran = run_code(&mut batch(&sim, &file, &out, &[]), 13);
        let s = summary(&ran.stdout);
        assert_eq!(s["succeeded"], 1, "{s}");
        assert_eq!(s["invalid"], 6, "{s}");
        assert_eq!(s["still_running"], 0, "{s}");
        assert_eq!(s["left"], 0, "{s}");
    }
    assert_eq!(sim.stats().jobs_created, 1);
    let by_id = results_by_id(&out);
    assert_eq!(by_id["fine"]["status"], "COMPLETED");
    assert_eq!(by_id["line-1"]["status"], "INVALID");
    assert!(
        by_id["line-1"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("journal.sqlite"),
        "{by_id:?}"
    );
}

#[test]
fn a_piped_input_is_read_once_into_the_directory() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let text = prompts(5).join("\n") + "\n";
    let ran = run_ok(
        sim.cmd()
            .args(["--json", "batch", "-", "--out"])
            .arg(&out)
            .args(["--endpoint", ENDPOINT])
            .write_stdin(text.clone()),
    );
    assert_eq!(summary(&ran.stdout)["succeeded"], 5, "{ran:?}");
    assert_eq!(
        std::fs::read_to_string(out.join("input.jsonl")).unwrap(),
        text
    );
    assert_eq!(sim.stats().jobs_created, 5);
}

#[test]
fn a_fifo_is_read_once_and_does_not_hang() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let fifo = dir.path().join("lines.fifo");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            // Blocks until the batch opens it for reading, as a shell's
            // process substitution would.
            let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            f.write_all((prompts(3).join("\n") + "\n").as_bytes())
                .unwrap();
        })
    };
    let ran = run_ok(&mut batch(&sim, &fifo, &out, &[]));
    writer.join().unwrap();
    assert_eq!(summary(&ran.stdout)["succeeded"], 3, "{ran:?}");
    assert_eq!(sim.stats().jobs_created, 3);
    assert_eq!(results(&out).len(), 3);
}

#[test]
fn an_edited_line_is_reported_and_run_again_only_when_asked() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = input(dir.path(), &prompts(3));
    run_ok(&mut batch(&sim, &file, &out, &[]));
    let first = results_by_id(&out)["line-2"]["request_id"].clone();

    let mut edited = prompts(3);
    edited[1] = json!({"prompt": "a different prompt"}).to_string();
    input(dir.path(), &edited);
    let ran = run(&mut batch(&sim, &file, &out, &[]));
    let changed = events(&ran.stdout, "changed");
    assert_eq!(changed.len(), 1, "{ran:?}");
    assert_eq!(changed[0]["id"], "line-2");
    assert_eq!(changed[0]["rerun"], false);
    assert_eq!(summary(&ran.stdout)["changed"], 1);
    assert_ne!(ran.code, 0, "a changed line is not a success: {ran:?}");
    assert_eq!(sim.stats().jobs_created, 3, "nothing new was paid");

    let ran = run_ok(&mut batch(&sim, &file, &out, &["--rerun-changed"]));
    assert_eq!(events(&ran.stdout, "changed")[0]["rerun"], true);
    assert_eq!(sim.stats().jobs_created, 4, "line 2 alone ran again");
    let by_id = results_by_id(&out);
    assert_ne!(by_id["line-2"]["request_id"], first);
    assert_eq!(by_id["line-2"]["status"], "COMPLETED");
    assert_eq!(by_id.len(), 3);
}

#[test]
fn a_lost_or_emptied_journal_is_refused_rather_than_paid_again() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = input(dir.path(), &prompts(3));
    run_ok(&mut batch(&sim, &file, &out, &[]));
    let remove_journal = || {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(out.join(format!("journal.sqlite{suffix}")));
        }
    };

    remove_journal();
    let ran = run_code(&mut batch(&sim, &file, &out, &[]), 2);
    assert!(ran.stderr.contains("is missing"), "{ran:?}");
    std::fs::write(out.join("journal.sqlite"), b"").unwrap();
    let ran = run_code(&mut batch(&sim, &file, &out, &[]), 2);
    assert!(ran.stderr.contains("is empty"), "{ran:?}");
    assert_eq!(sim.stats().jobs_created, 3, "nothing was paid twice");

    remove_journal();
    run_ok(&mut batch(&sim, &file, &out, &["--start-over"]));
    assert_eq!(sim.stats().jobs_created, 6);
    let aside: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".old"))
        .collect();
    assert_eq!(aside.len(), 1, "the old results were moved aside");
    assert_eq!(results(&out).len(), 3);
}

#[test]
fn deleted_results_and_files_are_made_again_on_the_next_run() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = input(dir.path(), &prompts(4));
    run_ok(&mut batch(&sim, &file, &out, &[]));
    let before = results_by_id(&out);
    let saved = PathBuf::from(before["line-3"]["files"][0].as_str().unwrap());
    std::fs::remove_file(&saved).unwrap();
    std::fs::write(out.join("results.jsonl"), b"{\"id\": \"line-1\"").unwrap();

    let ran = run_ok(&mut batch(&sim, &file, &out, &[]));
    let missing = events(&ran.stdout, "files_missing");
    assert_eq!(missing.len(), 1, "{ran:?}");
    assert_eq!(missing[0]["id"], "line-3");
    assert!(saved.metadata().unwrap().len() > 0, "saved again");
    let after = results_by_id(&out);
    assert_eq!(after.len(), 4);
    for (id, r) in &before {
        assert_eq!(after[id]["request_id"], r["request_id"], "{id}");
    }
    assert_eq!(sim.stats().jobs_created, 4);
}

#[test]
fn a_budget_on_a_service_that_reports_no_price_needs_an_estimate() {
    let sim = Sim::with(SimConfig::new().prices(false));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = input(dir.path(), &prompts(20));
    let ran = run_code(&mut batch(&sim, &file, &out, &["--budget-usd", "20"]), 2);
    assert!(ran.stderr.contains("--estimate-usd"), "{ran:?}");
    assert_eq!(
        sim.stats().jobs_created,
        0,
        "refused before anything is sent"
    );

    // $1 at an assumed $0.25 a job: four jobs, the rest reported unsubmitted.
    let ran = run(&mut batch(
        &sim,
        &file,
        &out,
        &["--budget-usd", "1", "--estimate-usd", "0.25"],
    ));
    let s = summary(&ran.stdout);
    assert_eq!(sim.stats().jobs_created, 4, "{s}");
    assert_eq!(s["succeeded"], 4, "{s}");
    assert_eq!(s["unsubmitted"], 16, "{s}");
    assert_eq!(s["stopped"], "budget", "{s}");
    assert_eq!(ran.code, 13);
}

#[test]
fn a_budget_over_many_endpoints_is_kept_from_their_prices() {
    // The simulator's model list prices every endpoint: spend passes the
    // budget by at most one job, however many endpoints start at once.
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let endpoints = [
        "nano-banana/text-to-image",
        "reka-tts-1/text-to-speech",
        "veo-3.1/text-to-video",
        "kling-v3-pro/text-to-video",
        "sam3/image-to-bbox",
    ];
    let lines: Vec<String> = (0..40)
        .map(|i| {
            let endpoint = endpoints[i % endpoints.len()];
            let input = match endpoint {
                "reka-tts-1/text-to-speech" => json!({"text": format!("t {i}")}),
                "sam3/image-to-bbox" => {
                    json!({"prompt": format!("p {i}"), "image_url": TEST_IMAGE_URL})
                }
                _ => json!({"prompt": format!("p {i}")}),
            };
            json!({"endpoint": endpoint, "input": input}).to_string()
        })
        .collect();
    let file = input(dir.path(), &lines);
    let ran = run(&mut batch(
        &sim,
        &file,
        &out,
        &["--budget-usd", "2", "--concurrency", "16"],
    ));
    let s = summary(&ran.stdout);
    let prices: Vec<f64> = results(&out)
        .iter()
        .filter_map(|r| r["price_usd"].as_f64())
        .collect();
    let spent: f64 = prices.iter().sum();
    let dearest = prices.iter().cloned().fold(0.0, f64::max);
    assert!(!prices.is_empty(), "{ran:?}");
    assert!(spent <= 2.0 + dearest + 1e-9, "spent {spent} of 2: {s}");
    assert_eq!(s["stopped"], "budget", "{s}");
    assert_eq!(sim.stats().jobs_created as usize, prices.len());
}

#[test]
fn a_byte_order_mark_does_not_spoil_line_one() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = dir.path().join("bom.jsonl");
    let mut text = b"\xef\xbb\xbf".to_vec();
    text.extend((prompts(2).join("\n") + "\n").as_bytes());
    std::fs::write(&file, text).unwrap();
    let ran = run_ok(&mut batch(&sim, &file, &out, &[]));
    assert_eq!(summary(&ran.stdout)["succeeded"], 2, "{ran:?}");
    assert_eq!(results_by_id(&out)["line-1"]["status"], "COMPLETED");
}

#[test]
fn a_batch_of_local_images_survives_a_kill_with_memory_bounded_by_its_concurrency() {
    const IMAGES: usize = 20;
    const LINES: usize = 200;
    const IMAGE_BYTES: usize = 4 << 20;
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(dir.path().join("photos")).unwrap();
    for i in 0..IMAGES {
        // A PNG by its magic bytes, padded to size after its end.
        let mut png = samples::png(32 + i as u32, 24);
        png.extend((0..IMAGE_BYTES - png.len()).map(|b| (b * 31 + i) as u8));
        std::fs::write(dir.path().join(format!("photos/{i}.png")), png).unwrap();
    }
    let lines: Vec<String> = (0..LINES)
        .map(|i| {
            json!({
                "endpoint": "kling-v3-pro/image-to-video",
                "input": {"prompt": format!("shot {i}"), "image_url": format!("@photos/{}.png", i % IMAGES)},
            })
            .to_string()
        })
        .collect();
    let file = input(dir.path(), &lines);
    let spawn_on = |file: &Path, out: &Path, stdout: Stdio| {
        sim.std_cmd()
            .args(["--json", "batch"])
            .arg(file)
            .arg("--out")
            .arg(out)
            .args(["--no-download", "--concurrency", "2"])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts")
    };

    let spawn = |stdout: Stdio| spawn_on(&file, &out, stdout);

    // The memory of a small batch of the same files, for comparison.
    let small = dir.path().join("small.jsonl");
    std::fs::write(&small, lines[..IMAGES / 2].join("\n") + "\n").unwrap();
    let (code, small_peak_kib) = wait_for_peak_rss(spawn_on(
        &small,
        &dir.path().join("small-out"),
        Stdio::null(),
    ));
    assert_eq!(code, 0);

    // Killed once a quarter of the lines are submitted.
    let mut first = spawn(Stdio::piped());
    let events = BufReader::new(first.stdout.take().expect("piped"));
    let mut submitted = 0;
    for line in events.lines() {
        let Ok(line) = line else { break };
        if serde_json::from_str::<Value>(&line).is_ok_and(|v| v["event"] == "submitted") {
            submitted += 1;
            if submitted == LINES / 4 {
                break;
            }
        }
    }
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(submitted, LINES / 4, "killed mid-run");
    assert!(sim.stats().jobs_created < LINES as u64, "killed mid-run");

    let (code, peak_kib) = wait_for_peak_rss(spawn(Stdio::null()));
    assert_eq!(code, 0);
    assert_eq!(
        sim.stats().jobs_created,
        (LINES + IMAGES / 2) as u64,
        "one job per line"
    );
    let by_id = results_by_id(&out);
    assert_eq!(by_id.len(), LINES);
    for (id, r) in &by_id {
        assert_eq!(r["status"], "COMPLETED", "{id}: {r}");
    }
    // What the lines send: held at once, it would be gigabytes. Two
    // submits in flight hold two files (and their encodings): the memory
    // of 150 lines is that of 10.
    let sent_kib = (LINES * IMAGE_BYTES / 1024) as u64;
    eprintln!(
        "peak RSS {peak_kib} KiB resuming {LINES} lines ({sent_kib} KiB of files sent), \
         {small_peak_kib} KiB for {} lines",
        IMAGES / 2
    );
    assert!(
        peak_kib < sent_kib / 4,
        "peak RSS {peak_kib} KiB for {sent_kib} KiB of files"
    );
    assert!(
        peak_kib < small_peak_kib * 3 / 2,
        "peak RSS {peak_kib} KiB for {LINES} lines, {small_peak_kib} KiB for {}",
        IMAGES / 2
    );
}
