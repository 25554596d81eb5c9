//! Inputs from local files (issue 22): `--set key=@path` sends a file as a
//! `data:` URI, `key:=@file.json` inserts JSON, `key=\@text` is a literal;
//! a file that cannot be sent is a usage error with nothing sent.

use std::path::Path;

use reka_inference_sim::samples;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{Sim, run_code, run_ok};

const IMAGE_TO_VIDEO: &str = "kling-v3-pro/image-to-video";

/// A JPEG as far as its magic bytes go, with some payload.
fn jpeg() -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    bytes.extend_from_slice(b"JFIF\0");
    bytes.extend((0..4000u32).map(|i| (i * 7 % 251) as u8));
    bytes.extend_from_slice(&[0xFF, 0xD9]);
    bytes
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `run IMAGE_TO_VIDEO --set prompt=x --set image_url=@<file>` in `dir`.
fn run_with_image(sim: &Sim, dir: &Path, file: &str) -> Value {
    run_ok(
        sim.cmd()
            .current_dir(dir)
            .args(["--json", "run", IMAGE_TO_VIDEO, "--set", "prompt=x"])
            .args(["--set", &format!("image_url=@{file}")]),
    )
    .json()
}

#[test]
fn a_local_png_and_jpeg_arrive_whole_as_data_uris() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let png = samples::png(64, 48);
    // The extension lies: the media type comes from the bytes.
    std::fs::write(dir.path().join("photo.jpg.png"), &png).unwrap();
    std::fs::write(dir.path().join("shot.bin"), jpeg()).unwrap();

    let done = run_with_image(&sim, dir.path(), "photo.jpg.png");
    assert_eq!(done["status"], "COMPLETED", "{done}");
    let seen = &done["output"]["input_image"];
    assert_eq!(seen["source"], "data", "{done}");
    assert_eq!(seen["media_type"], "image/png");
    assert_eq!(seen["bytes"], png.len());
    assert_eq!(seen["sha256"], sha256_hex(&png));

    let done = run_with_image(&sim, dir.path(), "shot.bin");
    let seen = &done["output"]["input_image"];
    assert_eq!(seen["media_type"], "image/jpeg", "{done}");
    assert_eq!(seen["bytes"], jpeg().len());
    assert_eq!(seen["sha256"], sha256_hex(&jpeg()));
    assert_eq!(sim.stats().jobs_created, 2);
}

#[test]
fn a_missing_image_is_refused_by_the_service_with_the_field_named() {
    let sim = Sim::start();
    let out = run_code(
        sim.cmd()
            .args(["--json", "run", IMAGE_TO_VIDEO, "--set", "prompt=x"]),
        6,
    );
    let err = out.error_json();
    assert!(err.to_string().contains("image_url"), "{out:?}");
    assert_eq!(sim.stats().jobs_created, 0);
}

#[test]
fn a_file_that_cannot_be_sent_is_a_usage_error_and_nothing_is_sent() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("photos")).unwrap();
    std::fs::write(dir.path().join("big.png"), samples::png(512, 512)).unwrap();
    let big_len = std::fs::metadata(dir.path().join("big.png")).unwrap().len();
    let cases: [(&str, &[&str], &str); 4] = [
        ("missing", &["image_url=@nowhere.png"], "nowhere.png"),
        ("directory", &["image_url=@photos"], "photos"),
        ("device", &["image_url=@/dev/zero"], "/dev/zero"),
        (
            "over the limit",
            &["image_url=@big.png", "--max-inline-bytes", "100"],
            "100",
        ),
    ];
    for (what, args, named) in cases {
        let mut cmd = sim.cmd();
        cmd.current_dir(dir.path())
            .args(["run", IMAGE_TO_VIDEO, "--set", "prompt=x", "--set"])
            .args(args);
        let out = run_code(&mut cmd, 2);
        assert!(out.stderr.contains(named), "{what}: {out:?}");
        if what == "over the limit" {
            assert!(out.stderr.contains(&big_len.to_string()), "{out:?}");
        }
    }
    let stats = sim.stats();
    assert_eq!(stats.jobs_created, 0);
    assert_eq!(stats.count("submit", "202"), 0);
}

#[test]
fn json_from_a_file_and_a_literal_at_sign() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("style.json"),
        json!({"palette": ["red", "teal"], "strength": 0.5}).to_string(),
    )
    .unwrap();
    run_ok(sim.cmd().current_dir(dir.path()).args([
        "submit",
        "nano-banana/text-to-image",
        "--set",
        r"prompt=\@home at dusk",
        "--set",
        "style:=@style.json",
    ]));
    let listed = run_ok(sim.cmd().args(["--json", "list", "--payloads"])).json();
    let items = listed.as_array().expect("a list");
    assert_eq!(items.len(), 1, "{listed}");
    let input = &items[0]["input"];
    assert_eq!(input["prompt"], "@home at dusk", "{listed}");
    assert_eq!(input["style"]["palette"][1], "teal", "{listed}");
    assert_eq!(input["style"]["strength"], 0.5);
}
