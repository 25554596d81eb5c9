//! Regeneration reaches the SDK: the vendored document with one
//! operation's path changed is generated into a copy of the generated
//! crate, the SDK is built unchanged against it, and a probe program shows
//! that the SDK's own call (`Job::status`) now requests the new path.
//!
//! The copy lives under `target/regeneration/` (the SDK's sources are
//! copied as they are, never edited) and builds into the workspace's own
//! target directory, so only the three small crates compile.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use xtask::generate::generate;
use xtask::{SPEC_PATH, load_spec, workspace_root};

const OLD_PATH: &str = "/v2/inference/requests/{request_id}/status";
const NEW_PATH: &str = "/v2/inference/requests/{request_id}/state";

/// The probe: a one-request HTTP server on loopback that answers any
/// request with a status record and prints the path it was asked for,
/// and the SDK asking for a job's status.
const PROBE: &str = r##"
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await?;
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await?;
            if n == 0 { break; }
            head.extend_from_slice(&buf[..n]);
        }
        let body = r#"{"request_id":"r1","status":"IN_QUEUE","queue_position":0}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(answer.as_bytes()).await?;
        let text = String::from_utf8_lossy(&head).into_owned();
        let target = text.split_whitespace().nth(1).unwrap_or_default().to_owned();
        Ok::<String, std::io::Error>(target)
    });
    let client = reka_inference::Client::builder().api_key("k").base_url(base).build()?;
    let status = client.job("r1").status().await?;
    let target = server.await??;
    println!("{} {}", target.split('?').next().unwrap_or_default(), status.status);
    Ok(())
}
"##;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy's directory");
    for entry in std::fs::read_dir(from).expect("read a source directory") {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a source file");
        }
    }
}

/// The workspace manifest of the copy: the root's, with its members
/// replaced and its crates' paths pointing into the copy.
fn manifest(root: &Path) -> String {
    let text = std::fs::read_to_string(root.join("Cargo.toml")).expect("the root manifest");
    let start = text.find("members = [").expect("a members list");
    let end = start + text[start..].find(']').expect("the members list ends");
    let mut text = format!(
        "{}members = [\"reka-inference-api\", \"reka-inference\", \"reka-inference-sim\", \"probe\"]{}",
        &text[..start],
        &text[end + 1..]
    );
    for name in ["reka-inference-api", "reka-inference", "reka-inference-sim"] {
        text = text.replace(
            &format!("path = \"crates/{name}\""),
            &format!("path = \"{name}\""),
        );
    }
    // The crates not copied leave the table.
    text.lines()
        .filter(|line| !line.contains("path = \"crates/"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_changed_path_reaches_the_sdk_without_a_change_to_it() {
    let root = workspace_root();
    let mut spec: Value = load_spec(&root.join(SPEC_PATH)).expect("the vendored document");
    let paths = spec["paths"].as_object_mut().expect("paths");
    let item = paths.remove(OLD_PATH).expect("get_status's path");
    paths.insert(NEW_PATH.to_owned(), item);
    let generated = generate(&spec).expect("the changed document generates");

    let copy = root.join("target/regeneration");
    let _ = std::fs::remove_dir_all(&copy);
    // The simulator is the SDK's dev-dependency: copied so the manifest
    // loads, never built here.
    for name in ["reka-inference-api", "reka-inference", "reka-inference-sim"] {
        copy_dir(&root.join("crates").join(name), &copy.join(name));
    }
    std::fs::write(
        copy.join("reka-inference-api/src/generated.rs"),
        &generated.code,
    )
    .expect("write the regenerated client");
    std::fs::write(copy.join("Cargo.toml"), manifest(&root)).expect("write the manifest");
    std::fs::copy(root.join("Cargo.lock"), copy.join("Cargo.lock")).expect("copy Cargo.lock");
    let probe = copy.join("probe");
    std::fs::create_dir_all(probe.join("src")).expect("the probe's directory");
    std::fs::write(
        probe.join("Cargo.toml"),
        "[package]\nname = \"regeneration-probe\"\nversion = \"0.0.0\"\nedition.workspace = true\npublish = false\n\n\
         [dependencies]\nreka-inference = { workspace = true, features = [\"rustls\"] }\n\
         tokio = { workspace = true, features = [\"macros\", \"rt\", \"net\", \"io-util\"] }\n",
    )
    .expect("the probe's manifest");
    std::fs::write(probe.join("src/main.rs"), PROBE).expect("the probe's code");

    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["run", "-q", "--offline", "-p", "regeneration-probe"])
        .current_dir(&copy)
        .env("CARGO_TARGET_DIR", target_dir)
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the SDK did not build or run against the regenerated client:\n{}{}",
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.trim(), "/v2/inference/requests/r1/state IN_QUEUE");
}
