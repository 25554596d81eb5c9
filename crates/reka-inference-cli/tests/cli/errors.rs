//! Exit codes by error class, the one-line messages, and JSON errors.

use reka_inference_sim::SimConfig;
use serde_json::Value;

use crate::common::{Sim, TEST_IMAGE_URL, bare, run, run_code, run_ok};

/// Bad input is refused with exit 2 and one line naming the problem,
/// before any request is sent.
#[test]
fn bad_input_is_a_usage_error_before_any_request() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.json");
    let missing_arg = format!("@{}", missing.display());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["submit", "nano-banana", "--set", "prompt=x"],
            "endpoint \"nano-banana\": not an endpoint",
        ),
        (vec!["run", "nano banana/text-to-image"], "not an endpoint"),
        (
            vec![
                "submit",
                "nano-banana/text-to-image",
                "--input",
                "{\"prompt\": ",
            ],
            "--input: not valid JSON",
        ),
        (
            vec!["submit", "nano-banana/text-to-image", "--input", "[1, 2]"],
            "must be a JSON object",
        ),
        (
            vec![
                "submit",
                "nano-banana/text-to-image",
                "--input",
                &missing_arg,
            ],
            "cannot read the file",
        ),
        (
            vec!["submit", "nano-banana/text-to-image", "--set", "prompt"],
            "--set prompt: expected KEY=VALUE",
        ),
        (
            vec![
                "submit",
                "nano-banana/text-to-image",
                "--webhook",
                "not a url",
            ],
            "--webhook",
        ),
        (
            vec!["run", "nano-banana/text-to-image", "--timeout", "soon"],
            "--timeout \"soon\": not a duration",
        ),
        (vec!["wait", "some-id", "--timeout=-5s"], "not a duration"),
        (
            vec!["list", "--since", "last tuesday"],
            "--since \"last tuesday\": not a time",
        ),
        (vec!["list", "--until", "2025-13-45"], "--until"),
        (
            vec!["list", "--status", "done"],
            "--status \"done\": not a status",
        ),
        (vec!["list", "--endpoint", "sam3"], "--endpoint \"sam3\""),
        (vec!["status", "a/b"], "not a job id"),
    ];
    for (args, expected) in &cases {
        let out = run_code(sim.cmd().args(args), 2);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: one line: {lines:?}");
        assert!(lines[0].starts_with("error: "), "{args:?}: {lines:?}");
        assert!(
            lines[0].contains(expected),
            "{args:?}: {lines:?} does not say {expected:?}"
        );
        assert_eq!(out.stdout, "", "{args:?}");

        let json = run_code(sim.cmd().arg("--json").args(args), 2).error_json();
        assert_eq!(json["error"]["kind"], "usage", "{args:?}");
        assert_eq!(json["error"]["exit_code"], 2);
        assert!(
            json["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(expected))
        );
    }
    assert_eq!(
        sim.total_requests(),
        0,
        "nothing was sent: {:?}",
        sim.stats().requests
    );
    assert_eq!(sim.stats().jobs_created, 0);

    // clap's own usage errors exit 2 too.
    run_code(sim.cmd().args(["submit"]), 2);
    run_code(sim.cmd().args(["list", "--frobnicate"]), 2);
    run_code(bare().arg("launch"), 2);
}

#[test]
fn unknown_but_well_formed_endpoints_reach_the_server() {
    let sim = Sim::start();
    // An unknown model of a known capability: the server's validation error.
    let out = run_code(
        sim.cmd().args([
            "--json",
            "submit",
            "imaginary-model/text-to-image",
            "--set",
            "prompt=x",
        ]),
        6,
    );
    let e = out.error_json();
    assert_eq!(e["error"]["kind"], "validation");
    assert_eq!(e["error"]["status"], 400);
    assert_eq!(e["error"]["type"], "validation_error");
    assert_eq!(e["error"]["param"], "model");
    assert!(e["error"]["x_request_id"].is_string());
    // An unknown capability: not found.
    let out = run_code(
        sim.cmd().args([
            "submit",
            "nano-banana/text-to-sculpture",
            "--set",
            "prompt=x",
        ]),
        5,
    );
    assert!(
        out.stderr.starts_with("error: 404 not_found_error"),
        "{out:?}"
    );
    assert_eq!(sim.stats().count("submit", "400"), 1);
    assert_eq!(sim.total_requests(), 2, "{:?}", sim.stats().requests);
}

#[test]
fn a_refused_or_missing_key_is_an_authentication_error() {
    let sim = Sim::start();
    let out = run_code(
        bare().args([
            "--base-url",
            &sim.url,
            "--api-key",
            "sk-wrong-key-123",
            "--json",
            "models",
        ]),
        3,
    );
    let e = out.error_json();
    assert_eq!(e["error"]["kind"], "authentication");
    assert_eq!(e["error"]["status"], 401);
    assert!(
        !out.stderr.contains("sk-wrong-key-123"),
        "the key is never printed"
    );

    // The key from the environment works like the flag.
    let out = run_code(
        bare()
            .env("REKA_API_KEY", "sk-env-wrong")
            .env("REKA_BASE_URL", &sim.url)
            .arg("models"),
        3,
    );
    assert!(out.stderr.starts_with("error: 401"), "{out:?}");

    let before = sim.total_requests();
    let out = run_code(bare().args(["--base-url", &sim.url, "models"]), 3);
    assert!(out.stderr.contains("no API key"), "{out:?}");
    assert!(
        out.stderr.contains("--sim"),
        "suggests the simulator: {out:?}"
    );
    assert_eq!(sim.total_requests(), before, "nothing sent without a key");
}

#[test]
fn a_forbidden_answer_is_a_permission_error() {
    // The simulator never answers 403: a one-line server that always does.
    let sim = Sim::start();
    let url = sim.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let body = r#"{"error":{"type":"permission_error","message":"this key may not list models"}}"#;
                let answer = format!(
                    "HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        format!("http://{addr}")
    });
    let out = run_code(
        bare().args(["--base-url", &url, "--api-key", "k", "--json", "models"]),
        4,
    );
    let e = out.error_json();
    assert_eq!(e["error"]["kind"], "permission");
    assert_eq!(e["error"]["status"], 403);
    assert!(
        e["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("may not list models"))
    );
}

#[test]
fn an_unknown_request_id_is_not_found() {
    let sim = Sim::start();
    let id = "00000000-0000-4000-8000-000000000000";
    for cmd in ["status", "result", "cancel", "wait"] {
        let out = run_code(sim.cmd().args(["--json", cmd, id]), 5);
        let e = out.error_json();
        assert_eq!(e["error"]["kind"], "not_found", "{cmd}");
        assert_eq!(e["error"]["status"], 404, "{cmd}");
        assert_eq!(e["error"]["request_id"], id, "{cmd}");
    }
    let out = run_code(sim.cmd().args(["status", id]), 5);
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
}

#[test]
fn the_quota_used_up_is_a_rate_limit_error() {
    let sim = Sim::with(SimConfig::new().rate_limit(1));
    run_ok(sim.cmd().arg("models"));
    let out = run_code(sim.cmd().args(["--json", "models"]), 7);
    let e = out.error_json();
    assert_eq!(e["error"]["kind"], "rate_limit");
    assert_eq!(e["error"]["status"], 429);
    assert_eq!(
        sim.stats().rate_limited,
        1,
        "given up at once: the wait is far too long"
    );
}

#[test]
fn server_failures_are_server_errors() {
    let sim = Sim::start();
    sim.set_faults("*:500=1");
    let out = run_code(sim.cmd().args(["--json", "models"]), 8);
    let e = out.error_json();
    assert_eq!(e["error"]["kind"], "server");
    assert_eq!(e["error"]["status"], 500);
    assert_eq!(e["error"]["type"], "server_error");
    let out = run_code(
        sim.cmd()
            .args(["run", "nano-banana/text-to-image", "--set", "prompt=x"]),
        8,
    );
    // A 500 after a submit leaves its outcome unknown: the key to replay it
    // is printed.
    assert!(
        out.stderr
            .starts_with("error: the submit may or may not have created a job"),
        "{out:?}"
    );
    assert!(out.stderr.contains("500 server_error"), "{out:?}");
    assert!(
        out.stderr
            .contains("hint: the job may have been created; submit again with --idempotency-key "),
        "{out:?}"
    );
}

#[test]
fn an_unreachable_server_is_a_connection_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    // The listener is closed: nothing listens on the port any more.
    let url = format!("http://127.0.0.1:{port}");
    let out = run_code(
        bare().args(["--base-url", &url, "--api-key", "k", "--json", "models"]),
        10,
    );
    let e = out.error_json();
    assert_eq!(e["error"]["kind"], "connection");
    assert_eq!(e["error"]["status"], Value::Null);
    assert!(
        e["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("could not reach the server")),
        "{e}"
    );
}

#[test]
fn a_wait_past_its_timeout_is_a_timeout_and_the_job_goes_on() {
    let sim = Sim::with_slow_jobs();
    let id = sim.submit("slow/text-to-video", "waves");
    let out = run_code(sim.cmd().args(["wait", &id, "--timeout", "1ms"]), 9);
    assert!(
        out.stderr.contains(&format!("reka-inference wait {id}")),
        "says how to resume: {out:?}"
    );
    let e = run_code(
        sim.cmd().args(["--json", "wait", &id, "--timeout", "1ms"]),
        9,
    )
    .error_json();
    assert_eq!(e["error"]["kind"], "timeout");
    assert_eq!(e["error"]["request_id"], id.as_str());
    let status = run_ok(sim.cmd().args(["--json", "status", &id])).json();
    assert!(
        ["IN_QUEUE", "IN_PROGRESS"].contains(&status["status"].as_str().unwrap_or_default()),
        "{status}"
    );

    // `run` too.
    let out = run_code(
        sim.cmd().args([
            "run",
            "slow/text-to-video",
            "--set",
            "prompt=x",
            "--timeout",
            "50ms",
        ]),
        9,
    );
    // The submit is inside the 50 ms too: on a busy machine it may be the
    // submit that runs out of time, and then its idempotency key is given.
    assert!(
        out.stderr.contains("reka-inference wait ") || out.stderr.contains("--idempotency-key "),
        "{out:?}"
    );
}

#[test]
fn a_failed_job_is_a_job_failed_error() {
    let sim = Sim::with(SimConfig::new().failure_rate(1.0));
    let out = run_code(
        sim.cmd().args([
            "--json",
            "run",
            "nano-banana/text-to-image",
            "--set",
            "prompt=x",
        ]),
        11,
    );
    let e = out.error_json();
    assert_eq!(e["error"]["kind"], "job_failed");
    let id = e["error"]["request_id"]
        .as_str()
        .expect("the failed request")
        .to_owned();
    assert!(
        e["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("inference_error")),
        "{e}"
    );
    // `result` shows the failed record and exits 0; `wait` gives the outcome.
    let record = run_ok(sim.cmd().args(["--json", "result", &id])).json();
    assert_eq!(record["status"], "FAILED");
    assert_eq!(record["error"]["type"], "inference_error");
    run_code(sim.cmd().args(["wait", &id]), 11);
}

#[test]
fn a_cancelled_job_is_a_job_cancelled_error() {
    let sim = Sim::with_slow_jobs();
    let id = sim.submit("slow/text-to-video", "waves");
    run_ok(sim.cmd().args(["cancel", &id]));
    let out = run_code(sim.cmd().args(["--json", "wait", &id]), 12);
    let e = out.error_json();
    assert_eq!(e["error"]["kind"], "job_cancelled");
    assert_eq!(e["error"]["request_id"], id.as_str());
    let text = run_code(sim.cmd().args(["wait", &id]), 12);
    assert_eq!(text.stderr.trim(), format!("error: job {id} was cancelled"));
}

#[test]
fn verbose_logs_requests_but_never_the_key() {
    let secret = "sk-live-very-secret-0042";
    let sim = Sim::with(SimConfig::new().api_key(secret));
    let out = run_ok(bare().args([
        "--base-url",
        &sim.url,
        "--api-key",
        secret,
        "--verbose",
        "run",
        "sam3/image-to-bbox",
        "--set",
        "prompt=cat",
        "--set",
        &format!("image_url={TEST_IMAGE_URL}"),
    ]));
    assert!(
        out.stderr.contains("reka.http"),
        "HTTP exchanges are logged: {}",
        out.stderr
    );
    assert!(out.stderr.contains("submit"), "{}", out.stderr);
    assert!(
        !out.stderr.contains(secret) && !out.stdout.contains(secret),
        "the key leaked"
    );

    let out = run(bare().env("REKA_API_KEY", secret).arg("--help"));
    assert_eq!(out.code, 0);
    assert!(
        !out.stdout.contains(secret),
        "--help hides the key from the environment"
    );
}
