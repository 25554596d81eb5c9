//! `reka-inference mcp`: the binary as an MCP server over stdio, against
//! the simulator, as a desktop host would launch it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reka_inference_sim::SimConfig;
use serde_json::{Value, json};

use crate::common::{BIN, Sim, bare, run_code};

/// The host's key: it must never come back on stdout or stderr.
const KEY: &str = "sk-cli-mcp-secret-0123456789";

#[test]
fn mcp_serves_stdio_and_keeps_the_key_to_itself() {
    let sim = Sim::with(SimConfig::new().api_key(KEY));
    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .env_remove("REKA_BASE_URL")
        .env_remove("RUST_LOG")
        .env("REKA_API_KEY", KEY)
        .args(["--base-url", &sim.url, "mcp", "--output-dir"])
        .arg(out.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let answer = |stdin: &mut std::process::ChildStdin, message: Value| -> Value {
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
        let id = message["id"].clone();
        loop {
            let line = rx.recv_timeout(Duration::from_secs(60)).expect("an answer");
            assert!(!line.contains(KEY), "the key on stdout: {line}");
            let value: Value = serde_json::from_str(&line).expect("stdout is JSON-RPC only");
            if value["id"] == id {
                return value;
            }
        }
    };
    let init = answer(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "cli-test", "version": "0"}}}),
    );
    assert_eq!(init["result"]["serverInfo"]["name"], "reka-inference-mcp");
    writeln!(
        stdin,
        "{}",
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
    )
    .unwrap();
    let tools = answer(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    );
    assert_eq!(tools["result"]["tools"].as_array().unwrap().len(), 8);
    let done = answer(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "generate",
            "arguments": {"endpoint": "nano-banana/text-to-image", "input": {"prompt": "a heron"}}}}),
    );
    let result = &done["result"];
    assert_eq!(result["isError"], false, "{result}");
    let path = result["structuredContent"]["outputs"][0]["path"]
        .as_str()
        .unwrap();
    assert!(std::path::Path::new(path).starts_with(out.path()), "{path}");
    assert!(std::path::Path::new(path).is_file());
    // A refused call says why, and carries no key either.
    let unknown = answer(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "generate",
            "arguments": {"endpoint": "nano-banana/text-to-imag", "input": {"prompt": "x"}}}}),
    );
    assert_eq!(unknown["result"]["isError"], true);
    drop(stdin);
    let ended = child
        .wait_with_output()
        .expect("the binary ends when stdin closes");
    assert_eq!(ended.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&ended.stderr);
    assert!(!stderr.contains(KEY), "the key on stderr: {stderr}");
    assert!(stderr.contains("output files go to"), "{stderr}");
    assert_eq!(sim.stats().jobs_created, 1);
}

#[test]
fn mcp_over_http_off_loopback_needs_a_token() {
    let out = run_code(bare().args(["--sim", "mcp", "--http", "0.0.0.0:0"]), 2);
    assert!(out.stderr.contains("auth token"), "{out:?}");
    let out = run_code(bare().args(["--sim", "mcp", "--http", "not-an-address"]), 2);
    assert!(out.stderr.contains("--http"), "{out:?}");
    let out = run_code(bare().args(["mcp", "--auth-token", "x"]), 2);
    assert!(
        out.stderr.contains("--http"),
        "--auth-token requires --http: {out:?}"
    );
}
