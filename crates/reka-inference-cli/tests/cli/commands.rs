//! Every command, in text and in JSON.

use serde_json::{Value, json};

use crate::common::{Sim, TEST_IMAGE_URL, bare, run_ok};

#[test]
fn models_lists_the_catalog() {
    let sim = Sim::start();
    let out = run_ok(sim.cmd().args(["--json", "models"]));
    let models = out.json();
    let ids: Vec<&str> = models
        .as_array()
        .expect("an array")
        .iter()
        .map(|m| m["endpoint_id"].as_str().expect("endpoint_id"))
        .collect();
    assert!(ids.contains(&"nano-banana/text-to-image"), "{ids:?}");
    assert!(ids.contains(&"sam3/image-to-bbox"), "{ids:?}");
    // The chat models are listed too, with capability `chat`.
    assert!(ids.contains(&"qwen3-vl-32b/chat"), "{ids:?}");
    assert_eq!(ids.len(), 12);
    let nano = models
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|m| m["endpoint_id"] == "nano-banana/text-to-image")
        })
        .expect("nano-banana");
    assert_eq!(nano["capability"], "text-to-image");
    assert_eq!(nano["model_id"], "nano-banana");

    let text = run_ok(sim.cmd().arg("models"));
    let first = text.stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("ENDPOINT"), "{first}");
    assert_eq!(text.stdout.lines().count(), 13, "{}", text.stdout);
    assert!(text.stdout.contains("Nano Banana (text to image)"));
}

#[test]
fn submit_status_wait_result_cancel() {
    let sim = Sim::start();
    let submitted = run_ok(sim.cmd().args([
        "--json",
        "submit",
        "nano-banana/text-to-image",
        "--set",
        "prompt=a red fox",
    ]));
    let sub = submitted.json();
    let id = sub["request_id"].as_str().expect("request_id").to_owned();
    assert_eq!(sub["endpoint"], "nano-banana/text-to-image");
    assert_eq!(sim.stats().jobs_created, 1);

    let status = run_ok(sim.cmd().args(["--json", "status", &id])).json();
    assert_eq!(status["request_id"], id.as_str());
    let s = status["status"].as_str().expect("status");
    assert!(["IN_QUEUE", "IN_PROGRESS", "COMPLETED"].contains(&s), "{s}");

    let waited = run_ok(sim.cmd().args(["--json", "wait", &id])).json();
    assert_eq!(waited["request_id"], id.as_str());
    assert_eq!(waited["status"], "COMPLETED");
    assert_eq!(
        waited["endpoint"],
        Value::Null,
        "wait does not know the endpoint"
    );
    let url = waited["output"]["images"][0]["url"]
        .as_str()
        .expect("an image url");
    assert!(url.starts_with(&sim.url), "{url}");
    assert!(
        waited["metrics"]["inference_time"]
            .as_f64()
            .expect("metrics")
            > 0.0
    );
    assert_eq!(waited["files"], json!([]));

    let result = run_ok(sim.cmd().args(["--json", "result", &id])).json();
    assert_eq!(result["status"], "COMPLETED");
    assert_eq!(result["output"], waited["output"]);

    let status = run_ok(sim.cmd().args(["status", &id, "--logs"]));
    let first = status.stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with(&format!("{id}  COMPLETED")), "{first}");
    assert!(
        status.stdout.lines().count() > 2,
        "log lines follow: {}",
        status.stdout
    );

    // Cancelling a finished job leaves it as it is.
    let cancel = run_ok(sim.cmd().args(["--json", "cancel", &id])).json();
    assert_eq!(cancel["status"], "COMPLETED");
    let cancel = run_ok(sim.cmd().args(["cancel", &id]));
    assert!(
        cancel.stdout.contains("had already finished (COMPLETED)"),
        "{cancel:?}"
    );

    let text = run_ok(sim.cmd().args(["result", &id]));
    assert!(
        text.stdout.starts_with(&format!("{id}  COMPLETED")),
        "{text:?}"
    );
    assert!(text.stdout.contains(url), "{text:?}");
}

#[test]
fn cancel_stops_a_running_job() {
    let sim = Sim::with_slow_jobs();
    let id = sim.submit("slow/text-to-video", "waves");
    let out = run_ok(sim.cmd().args(["cancel", &id]));
    assert_eq!(out.stdout.trim(), format!("cancelled {id}"));
    let status = run_ok(sim.cmd().args(["--json", "status", &id])).json();
    assert_eq!(status["status"], "CANCELLED");
}

#[test]
fn submit_with_idempotency_key_and_webhook() {
    let sim = Sim::start();
    let submit = |key: &str| {
        run_ok(sim.cmd().args([
            "--json",
            "submit",
            "nano-banana/text-to-image",
            "--set",
            "prompt=same",
            "--idempotency-key",
            key,
            "--webhook",
            "http://127.0.0.1:9/hook",
        ]))
        .json()["request_id"]
            .as_str()
            .expect("id")
            .to_owned()
    };
    let a = submit("my-key-1");
    let b = submit("my-key-1");
    assert_eq!(a, b, "the same key returns the same job");
    let stats = sim.stats();
    assert_eq!(stats.jobs_created, 1);
    assert_eq!(stats.idempotent_replays, 1);
}

#[test]
fn run_downloads_the_files_the_simulator_serves() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("out");
    let out = run_ok(
        sim.cmd()
            .args([
                "--json",
                "run",
                "nano-banana/text-to-image",
                "--set",
                "prompt=a lighthouse at dusk",
                "--download",
            ])
            .arg(&target),
    );
    let done = out.json();
    assert_eq!(done["status"], "COMPLETED");
    assert_eq!(done["endpoint"], "nano-banana/text-to-image");
    let files = done["files"].as_array().expect("files");
    assert_eq!(files.len(), 1, "{done}");
    let path = std::path::PathBuf::from(files[0]["path"].as_str().expect("path"));
    assert!(path.starts_with(&target), "{}", path.display());
    let url = files[0]["url"].as_str().expect("url");
    assert_eq!(
        url,
        done["output"]["images"][0]["url"].as_str().expect("url")
    );
    let written = std::fs::read(&path).expect("the file is on disk");
    let served = sim.fetch(url);
    assert!(written.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert_eq!(written, served, "the bytes on disk are the bytes served");
    assert_eq!(files[0]["bytes"], written.len() as u64);
    // No partial file is left next to it.
    let names: Vec<_> = std::fs::read_dir(&target)
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");

    // In text: a summary, the saved path, and no progress display when
    // stdout is not a terminal.
    let text = run_ok(
        sim.cmd()
            .args([
                "run",
                "reka-tts-1/text-to-speech",
                "--set",
                "text=hello",
                "--download",
            ])
            .arg(&target),
    );
    let mut lines = text.stdout.lines();
    let first = lines.next().unwrap_or_default();
    assert!(
        first.starts_with("completed ") && first.contains("(reka-tts-1/text-to-speech)"),
        "{first}"
    );
    let saved = text
        .stdout
        .lines()
        .find(|l| l.starts_with("saved "))
        .expect("a saved line");
    assert!(saved.contains(".wav"), "{saved}");
    assert_eq!(
        text.stderr, "",
        "nothing but results when not on a terminal"
    );
}

#[test]
fn input_from_stdin_a_file_and_set_flags() {
    let sim = Sim::start();
    let out = run_ok(
        sim.cmd()
            .args([
                "--json",
                "submit",
                "nano-banana/text-to-image",
                "--input",
                "-",
                "--set",
                "style.tone=warm",
                "--set",
                "seed=7",
            ])
            .write_stdin(r#"{"prompt": "from stdin", "style": {"size": 2}}"#),
    );
    let stdin_id = out.json()["request_id"].as_str().expect("id").to_owned();

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("input.json");
    std::fs::write(&file, r#"{"prompt": "from a file"}"#).expect("write");
    let out = run_ok(
        sim.cmd()
            .args(["--json", "submit", "nano-banana/text-to-image", "--input"])
            .arg(format!("@{}", file.display())),
    );
    let file_id = out.json()["request_id"].as_str().expect("id").to_owned();

    let out = run_ok(sim.cmd().args([
        "--json",
        "submit",
        "nano-banana/text-to-image",
        "--input",
        r#"{"prompt":"inline","n":1}"#,
        "--set",
        "n=2",
    ]));
    let inline_id = out.json()["request_id"].as_str().expect("id").to_owned();

    let listed = run_ok(sim.cmd().args(["--json", "list", "--payloads"])).json();
    let input_of = |id: &str| {
        listed
            .as_array()
            .and_then(|a| a.iter().find(|i| i["request_id"] == id))
            .map(|i| i["input"].clone())
            .unwrap_or_else(|| panic!("{id} not listed: {listed}"))
    };
    assert_eq!(
        input_of(&stdin_id),
        json!({"prompt": "from stdin", "style": {"size": 2, "tone": "warm"}, "seed": 7})
    );
    assert_eq!(input_of(&file_id), json!({"prompt": "from a file"}));
    assert_eq!(input_of(&inline_id), json!({"prompt": "inline", "n": 2}));
}

#[test]
fn list_filters_limits_and_pages() {
    let sim = Sim::start();
    let a = sim.submit("nano-banana/text-to-image", "one");
    let b = sim.submit("nano-banana/text-to-image", "two");
    let c = sim.submit("sam3/image-to-bbox", "three");
    run_ok(sim.cmd().args(["wait", &a]));
    run_ok(sim.cmd().args(["wait", &b]));
    run_ok(sim.cmd().args(["wait", &c]));

    let ids = |args: &[&str]| -> Vec<String> {
        let out = run_ok(sim.cmd().arg("--json").arg("list").args(args));
        out.json()
            .as_array()
            .expect("array")
            .iter()
            .map(|i| i["request_id"].as_str().expect("id").to_owned())
            .collect()
    };
    assert_eq!(ids(&[]), [c.clone(), b.clone(), a.clone()], "newest first");
    assert_eq!(ids(&["--endpoint", "sam3/image-to-bbox"]), vec![c.clone()]);
    assert_eq!(ids(&["--model", "nano-banana"]), [b.clone(), a.clone()]);
    assert_eq!(ids(&["--capability", "image-to-bbox"]), vec![c.clone()]);
    assert_eq!(ids(&["--status", "completed"]).len(), 3);
    assert!(ids(&["--status", "FAILED"]).is_empty());
    assert_eq!(ids(&["--since", "1h"]).len(), 3);
    assert!(ids(&["--until", "1h"]).is_empty());
    assert_eq!(
        ids(&["--since", "2000-01-01", "--until", "2100-01-01T00:00:00Z"]).len(),
        3
    );
    assert_eq!(ids(&["--limit", "2"]), [c.clone(), b.clone()]);
    assert_eq!(ids(&["--all"]).len(), 3);

    let with_payloads = run_ok(
        sim.cmd()
            .args(["--json", "list", "--payloads", "--limit", "1"]),
    )
    .json();
    assert_eq!(
        with_payloads[0]["input"],
        json!({"prompt": "three", "image_url": TEST_IMAGE_URL})
    );
    assert!(with_payloads[0]["output"]["boxes"].is_array());

    let text = run_ok(sim.cmd().args(["list", "--limit", "1"]));
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert!(lines[0].starts_with("REQUEST ID"), "{lines:?}");
    assert!(
        lines[1].starts_with(&c)
            && lines[1].contains("COMPLETED")
            && lines[1].contains("sam3/image-to-bbox"),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 2);
    assert!(text.stderr.contains("more match"), "{text:?}");
}

#[test]
fn list_follows_pages_with_all() {
    let sim = Sim::start();
    for i in 0..105 {
        sim.block_on(async {
            let client = reqwest::Client::new();
            let resp = client
                .post(format!("{}/v2/inference/sam3/image-to-bbox", sim.url))
                .header("x-api-key", reka_inference_sim::DEV_API_KEY)
                .json(&json!({"input": {"prompt": format!("p{i}"), "image_url": TEST_IMAGE_URL}}))
                .send()
                .await
                .expect("submit");
            assert_eq!(resp.status(), 202);
        });
    }
    let all = run_ok(sim.cmd().args(["--json", "list", "--all"])).json();
    assert_eq!(all.as_array().expect("array").len(), 105);
    assert_eq!(
        sim.stats().count("list_requests", "200"),
        2,
        "two pages of at most 100"
    );
    let some = run_ok(sim.cmd().args(["--json", "list"])).json();
    assert_eq!(some.as_array().expect("array").len(), 20, "20 by default");
}

#[test]
fn chat_answers_whole_and_streamed() {
    let sim = Sim::start();
    let out = run_ok(
        sim.cmd()
            .args(["chat", "--model", "qwen3-vl-8b", "what is a lighthouse?"]),
    );
    assert!(out.stdout.contains("what is a lighthouse?"), "{out:?}");
    assert_eq!(out.stdout.lines().count(), 1);

    let json = run_ok(
        sim.cmd()
            .args(["--json", "chat", "--system", "be brief", "hello"]),
    )
    .json();
    assert_eq!(json["object"], "chat.completion");
    assert_eq!(json["model"], "qwen3-vl-32b", "the default model");
    let content = json["choices"][0]["message"]["content"]
        .as_str()
        .expect("content");
    assert!(content.contains("hello"), "{content}");

    let streamed = run_ok(sim.cmd().args(["chat", "--stream", "hello"]));
    assert_eq!(
        streamed.stdout.trim_end(),
        content,
        "the same answer, in pieces"
    );

    let chunks = run_ok(sim.cmd().args(["--json", "chat", "--stream", "hello"]));
    let lines: Vec<Value> = chunks
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON chunk per line"))
        .collect();
    assert!(lines.len() > 1, "{lines:?}");
    let joined: String = lines
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(joined, content);
}

#[test]
fn sim_flag_runs_the_readme_command_without_a_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_ok(bare().current_dir(dir.path()).args([
        "--sim",
        "run",
        "nano-banana/text-to-image",
        "--set",
        "prompt=a lighthouse at dusk",
        "--download",
        "out/",
    ]));
    let stderr: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(stderr.len(), 1, "one line about the simulator: {stderr:?}");
    assert!(stderr[0].contains("in-process simulator"), "{stderr:?}");
    assert!(out.stdout.starts_with("completed "), "{out:?}");
    let saved: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .expect("out/ exists")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(saved.len(), 1);
    let bytes = std::fs::read(&saved[0]).expect("read");
    assert!(bytes.starts_with(b"\x89PNG"), "a PNG image");
    assert!(
        out.stdout.contains(&format!(
            "saved out/{}",
            saved[0].file_name().and_then(|n| n.to_str()).unwrap_or("?")
        )),
        "{out:?}"
    );

    // --quiet leaves only the result.
    let quiet = run_ok(bare().args([
        "--sim",
        "--quiet",
        "run",
        "sam3/image-to-bbox",
        "--set",
        "prompt=dog",
        "--set",
        &format!("image_url={TEST_IMAGE_URL}"),
    ]));
    assert_eq!(quiet.stderr, "");
    assert!(quiet.stdout.contains("\"label\": \"dog\""), "{quiet:?}");
}

#[test]
fn help_explains_every_command_and_the_exit_codes() {
    let out = run_ok(bare().arg("--help"));
    assert!(out.stdout.contains("Exit codes:"), "{}", out.stdout);
    for line in [
        "2  usage",
        "3  authentication",
        "5  not found",
        "9  timeout",
        "11  job failed",
        "12  job cancelled",
        "130  interrupted",
    ] {
        assert!(out.stdout.contains(line), "{line} missing from --help");
    }
    for cmd in [
        "models", "submit", "status", "result", "cancel", "wait", "list", "run", "chat",
    ] {
        let help = run_ok(bare().args([cmd, "--help"]));
        assert!(
            help.stdout.lines().count() > 5,
            "{cmd} --help is too short: {}",
            help.stdout
        );
        assert!(
            help.stdout.contains("Usage: reka-inference"),
            "{}",
            help.stdout
        );
    }
    let run = run_ok(bare().args(["run", "--help"]));
    assert!(
        run.stdout.contains("--set prompt="),
        "the input syntax is explained"
    );
    assert!(run.stdout.contains("--cancel-on-interrupt"));
}
