//! Upload operations, generated and called (issue 24): a client generated
//! from OpenAI's published document (`../shared/openapi-corpus/openai.json`,
//! beside the repository; see its SOURCES.md) calls three of its
//! `multipart/form-data` operations against a local axum server that checks
//! what arrives: field names, file names, media types, the bytes, repeated
//! list fields, JSON parts, the encoding object's part media types, and
//! that every call goes through the client's hooks.
//!
//! The document is restricted to those three operations (and the
//! components they reach) before it is generated: the whole of it is
//! generated and type-checked by `cargo xtask corpus --compile`; building
//! and running its 300 operations here would take minutes.
//!
//! The program that calls the client is `tests/fixtures/upload/harness.rs`;
//! it is built in a scratch crate under `target/xtask-corpus/upload`, with
//! the corpus's build directory.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::{Map, Value};
use xtask::generate::{generate_with, standalone_settings};
use xtask::normalize::Rule;
use xtask::workspace_root;

const OPERATIONS: [(&str, &str); 3] = [
    ("/audio/transcriptions", "post"),
    ("/images/edits", "post"),
    ("/realtime/calls", "post"),
];

const MANIFEST: &str = r#"[package]
name = "upload-harness"
version = "0.0.0"
edition = "2024"
publish = false

# Not a member of the workspace this directory happens to sit in.
[workspace]

[dependencies]
axum = { version = "0.8.9", default-features = false, features = ["http1", "json", "multipart", "tokio"] }
bytes = "1"
chrono = { version = "0.4.41", default-features = false, features = ["serde", "std", "clock"] }
futures = "0.3.31"
progenitor-client = "=0.15.1"
regress = "0.12"
reqwest = { version = "0.13.4", default-features = false, features = ["http2", "json", "multipart", "query", "stream"] }
serde = { version = "1.0.226", features = ["derive"] }
serde_json = "1.0.140"
tokio = { version = "1.47", features = ["macros", "rt-multi-thread", "net"] }
uuid = { version = "1.18", features = ["v4", "serde"] }

[profile.dev]
debug = false
"#;

fn openai() -> Value {
    let path = workspace_root().join("../shared/openapi-corpus/openai.json");
    xtask::load_spec(&path).unwrap_or_else(|e| {
        panic!(
            "the corpus of real OpenAPI documents is expected at {}: {e:#}",
            path.display()
        )
    })
}

/// `doc` with only `operations`, the components they reach (through any
/// `#/components/..` reference) and no webhooks.
fn restrict(doc: &Value, operations: &[(&str, &str)]) -> Value {
    let mut out = doc.clone();
    let mut paths = Map::new();
    for (path, method) in operations {
        let op = doc["paths"][*path][*method].clone();
        assert!(op.is_object(), "{method} {path} is in the document");
        paths
            .entry(path.to_string())
            .or_insert_with(|| Value::Object(Map::new()))[*method] = op;
    }
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut todo = Vec::new();
    refs(&Value::Object(paths.clone()), &mut todo);
    while let Some(target) = todo.pop() {
        if !seen.insert(target.clone()) {
            continue;
        }
        if let Some(component) = doc.pointer(&target[1..]) {
            refs(component, &mut todo);
        }
    }
    let mut components = Map::new();
    for target in &seen {
        let mut tokens = target.trim_start_matches("#/components/").splitn(2, '/');
        let (Some(section), Some(name)) = (tokens.next(), tokens.next()) else {
            continue;
        };
        let name = name.replace("~1", "/").replace("~0", "~");
        if let Some(component) = doc["components"][section].get(&name) {
            components
                .entry(section.to_owned())
                .or_insert_with(|| Value::Object(Map::new()))[name] = component.clone();
        }
    }
    out["paths"] = Value::Object(paths);
    out["components"] = Value::Object(components);
    if let Some(root) = out.as_object_mut() {
        root.remove("webhooks");
    }
    out
}

fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref")
                && r.starts_with("#/components/")
            {
                out.push(r.clone());
            }
            m.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn upload_operations_send_what_the_document_describes() {
    let doc = restrict(&openai(), &OPERATIONS);
    let generated = generate_with(&doc, &standalone_settings()).expect("the client generates");
    let report = &generated.report;
    assert_eq!(report.operations(), 3);
    assert_eq!(report.dropped_operations(), 0, "{report}");
    // Transcription and the realtime call have only a form body; the image
    // edit has a JSON one too, and gets an upload method beside it.
    assert_eq!(report.form_operations(), 2);
    assert_eq!(report.count(Rule::MultipartTwin), 1);
    assert!(generated.code.contains("pub fn create_image_edit(&self)"));
    assert!(
        generated
            .code
            .contains("pub fn create_image_edit_multipart(&self)")
    );

    let root = workspace_root();
    let dir = root.join("target/xtask-corpus/upload");
    std::fs::create_dir_all(dir.join("src")).expect("scratch dir");
    std::fs::write(dir.join("Cargo.toml"), MANIFEST).expect("manifest");
    let lock = dir.join("Cargo.lock");
    if !lock.exists() {
        std::fs::copy(root.join("Cargo.lock"), &lock).expect("lock file");
    }
    let harness =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upload/harness.rs");
    std::fs::copy(&harness, dir.join("src/main.rs")).expect("harness");
    std::fs::write(dir.join("src/client.rs"), &generated.code).expect("client");

    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["run", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", root.join("target/xtask-corpus/target"))
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the upload harness failed:\n{stdout}\n{stderr}"
    );
    for check in [
        "ok: a form in memory is clonable and its retry is the same body",
        "ok: the file part's name, file name, media type and bytes",
        "ok: text fields",
        "ok: a list is one part per item, in order",
        "ok: an object is a JSON part",
        "ok: a missing or unreadable file is an invalid request",
        "ok: a list of files is repeated parts, from memory and from disk",
        "ok: the encoding object's content types",
        "ok: every call went through the client's hooks",
    ] {
        assert!(
            stdout.contains(check),
            "not passed: {check}\n{stdout}\n{stderr}"
        );
    }
}
