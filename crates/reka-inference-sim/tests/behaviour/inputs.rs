//! Inputs checked per endpoint: the model list advertises each endpoint's
//! input schema; a submit whose input does not match is a 422 with
//! FastAPI's `detail` naming the field, in every dialect; an `image_url`
//! must be an http(s) URL or a data: URI of a real image; the output of an
//! image job proves the image arrived whole; bodies over the limit are 413.

use std::io::{Read, Write};
use std::time::Duration;

use reka_inference_sim::{Catalog, DEFAULT_MAX_BODY_BYTES, Dialect, SimConfig, samples};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{Answer, Env, KEY, client, image, input_for};

/// A JPEG's first segments (SOI, APP0, a baseline SOF0 of `width` x
/// `height`, EOI): enough to be an image by its magic bytes and header.
fn jpeg(width: u16, height: u16) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    b.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    b.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08]);
    b.extend_from_slice(&height.to_be_bytes());
    b.extend_from_slice(&width.to_be_bytes());
    b.extend_from_slice(&[0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xD9]);
    b
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Asserts FastAPI's 422 body naming `field` of the input, and returns its
/// error type.
fn rejected(a: &Answer, field: &str) -> String {
    assert_eq!(a.status, 422, "{}", a.text);
    let body = a.json.as_object().unwrap();
    assert_eq!(body.keys().collect::<Vec<_>>(), ["detail"], "{}", a.text);
    let detail = a.json["detail"].as_array().unwrap();
    let named = detail
        .iter()
        .find(|d| d["loc"] == json!(["body", "input", field]))
        .unwrap_or_else(|| panic!("no detail names {field}: {}", a.text));
    assert!(
        named["msg"].as_str().is_some_and(|m| !m.is_empty()),
        "{named}"
    );
    named["type"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_list_advertises_each_endpoints_input_schema() {
    let catalog = Catalog::default_catalog();
    for dialect in Dialect::ALL {
        let env = Env::new(SimConfig::new().dialect(dialect)).await;
        let a = env.get("/v2/inference/models").await;
        let wrapper = if dialect == Dialect::Infer {
            "models"
        } else {
            "items"
        };
        let entries = a.json[wrapper].as_array().unwrap();
        for m in &catalog.models {
            let entry = entries
                .iter()
                .find(|e| e["model_id"] == m.model_id && e["capability"] == m.capability)
                .unwrap();
            assert_eq!(
                Some(&entry["input_schema"]),
                m.input_schema.as_ref(),
                "{dialect}: {}",
                m.endpoint_id()
            );
            assert!(
                entry["input_schema"]["x-provenance"]
                    .as_str()
                    .unwrap()
                    .starts_with("INFERRED")
            );
        }
        for e in entries.iter().filter(|e| e["capability"] == "chat") {
            assert!(e.get("input_schema").is_none(), "{e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_input_is_a_422_naming_the_field_in_every_dialect() {
    let png = image();
    for dialect in Dialect::ALL {
        let env = Env::new(SimConfig::new().time_scale(0.0).dialect(dialect)).await;
        let submit = async |endpoint: &str, input: Value| {
            env.post(
                &format!("/v2/inference/{endpoint}"),
                json!({ "input": input }),
            )
            .await
        };
        // What each capability requires (reference section 13 row 9).
        let required = [
            ("nano-banana/text-to-image", json!({}), "prompt"),
            (
                "veo-3.1/text-to-video",
                json!({"duration_seconds": "5"}),
                "prompt",
            ),
            (
                "kling-v3-pro/image-to-video",
                json!({"prompt": "x"}),
                "image_url",
            ),
            (
                "sora-2-pro/image-to-video",
                json!({"prompt": "x"}),
                "image_url",
            ),
            ("nano-banana/edit", json!({"prompt": "x"}), "image_url"),
            ("nano-banana/edit", json!({"image_url": png}), "prompt"),
            ("sam3/image-to-bbox", json!({"prompt": "cat"}), "image_url"),
            ("reka-tts-1/text-to-speech", json!({"voice": "a"}), "text"),
            // A prompt is not a text.
            ("reka-tts-1/text-to-speech", json!({"prompt": "hi"}), "text"),
        ];
        for (endpoint, input, field) in required {
            let a = submit(endpoint, input.clone()).await;
            assert_eq!(
                rejected(&a, field),
                "missing",
                "{dialect} {endpoint} {input}"
            );
        }
        // Declared fields are typed strictly.
        let typed = [
            (
                "veo-3.1/text-to-video",
                json!({"prompt": "x", "duration_seconds": 5}),
                "duration_seconds",
                "string_type",
            ),
            (
                "veo-3.1/text-to-video",
                json!({"prompt": "x", "duration_seconds": "5s"}),
                "duration_seconds",
                "string_pattern_mismatch",
            ),
            (
                "nano-banana/text-to-image",
                json!({"prompt": "x", "num_images": "2"}),
                "num_images",
                "int_type",
            ),
            (
                "nano-banana/text-to-image",
                json!({"prompt": "x", "num_images": 0}),
                "num_images",
                "greater_than_equal",
            ),
            (
                "nano-banana/text-to-image",
                json!({"prompt": "x", "aspect_ratio": 1.5}),
                "aspect_ratio",
                "string_type",
            ),
            (
                "nano-banana/text-to-image",
                json!({"prompt": ""}),
                "prompt",
                "string_too_short",
            ),
            (
                "nano-banana/text-to-image",
                json!({"prompt": 7}),
                "prompt",
                "string_type",
            ),
            (
                "reka-tts-1/text-to-speech",
                json!({"text": "hi", "voice": 1}),
                "voice",
                "string_type",
            ),
        ];
        for (endpoint, input, field, kind) in typed {
            let a = submit(endpoint, input.clone()).await;
            assert_eq!(rejected(&a, field), kind, "{dialect} {endpoint} {input}");
        }
        // An image_url is an http(s) URL or a data: URI of a real image.
        let not_images = [
            json!("@photo.png"),
            json!("photo.png"),
            json!("ftp://example.com/a.png"),
            json!("data:text/plain;base64,aGVsbG8="),
            json!("data:image/png;base64,aGVsbG8="),
            json!("data:image/png;base64,%%%"),
            json!("data:image/png,not-base64"),
            json!({"url": "https://example.com/a.png"}),
        ];
        for bad in not_images {
            let a = submit("kling-v3-pro/image-to-video", json!({"image_url": bad})).await;
            rejected(&a, "image_url");
        }
        // Everything wrong is listed at once.
        let a = submit("nano-banana/edit", json!({"num_images": -1})).await;
        for field in ["prompt", "image_url", "num_images"] {
            rejected(&a, field);
        }
        // What is valid passes, unknown extra fields included.
        for (endpoint, input) in [
            (
                "kling-v3-pro/image-to-video",
                json!({"image_url": png, "prompt": "x", "duration_seconds": "10", "seed": 3}),
            ),
            (
                "kling-v3-pro/image-to-video",
                json!({"image_url": "https://images.example.com/fox.png"}),
            ),
            (
                "nano-banana/text-to-image",
                json!({"prompt": "x", "num_images": 2, "aspect_ratio": "16:9", "style": {"a": 1}}),
            ),
            (
                "reka-tts-1/text-to-speech",
                json!({"text": "hi", "voice": "calm"}),
            ),
            (
                "sam3/image-to-bbox",
                json!({"image_url": samples::data_uri("image/jpeg", &jpeg(8, 8))}),
            ),
        ] {
            let a = submit(endpoint, input.clone()).await;
            assert_eq!(a.status, 202, "{dialect} {endpoint} {input}: {}", a.text);
        }
        let stats = env.sim.stats().await;
        assert_eq!(
            stats.jobs_created, 5,
            "{dialect}: refused inputs make no job"
        );
        assert!(stats.count("submit", "422") >= 20, "{dialect}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_jobs_output_proves_the_image_arrived_whole() {
    let env = Env::new(SimConfig::new().time_scale(0.0)).await;
    let png = samples::png(37, 23);
    let edit = env
        .submit(
            "nano-banana/edit",
            json!({"prompt": "make it blue", "image_url": samples::data_uri("image/png", &png)}),
        )
        .await;
    let r = env.result(&edit).await;
    let out = &r["output"];
    assert_eq!(
        out["input_image"],
        json!({"source": "data", "media_type": "image/png", "bytes": png.len(), "sha256": sha256_hex(&png), "width": 37, "height": 23}),
        "{r}"
    );
    // The edit's output image has the input's dimensions.
    let image = &out["images"][0];
    assert_eq!(
        (image["width"].as_u64(), image["height"].as_u64()),
        (Some(37), Some(23))
    );
    let bytes = client()
        .get(image["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[12..16], b"IHDR");
    let dims = (
        u32::from_be_bytes(bytes[16..20].try_into().unwrap()),
        u32::from_be_bytes(bytes[20..24].try_into().unwrap()),
    );
    assert_eq!(dims, (37, 23));

    // A JPEG to image-to-video, declared as PNG: the bytes decide.
    let photo = jpeg(640, 480);
    let video = env
        .submit(
            "kling-v3-pro/image-to-video",
            json!({"image_url": samples::data_uri("image/png", &photo)}),
        )
        .await;
    let out = env.result(&video).await["output"].clone();
    assert_eq!(out["input_image"]["media_type"], "image/jpeg");
    assert_eq!(out["input_image"]["bytes"], photo.len());
    assert_eq!(out["input_image"]["sha256"], sha256_hex(&photo));
    assert_eq!(
        (
            out["input_image"]["width"].as_u64(),
            out["input_image"]["height"].as_u64()
        ),
        (Some(640), Some(480))
    );
    assert!(out["video"]["url"].is_string());

    // A URL is never fetched, nor repeated in the output (clients take an
    // output's `url` fields for its media).
    let boxes = env
        .submit(
            "sam3/image-to-bbox",
            json!({"image_url": "https://images.example.com/cat.png", "prompt": "cat"}),
        )
        .await;
    let out = env.result(&boxes).await["output"].clone();
    assert_eq!(out["input_image"], json!({"source": "url"}));
    assert!(!out.to_string().contains("images.example.com"), "{out}");
    assert!(!out["boxes"].as_array().unwrap().is_empty());

    // Another image, same prompt: another output.
    let other = env
        .submit(
            "nano-banana/edit",
            json!({"prompt": "make it blue", "image_url": samples::png_data_uri(37, 22)}),
        )
        .await;
    let url = env.result(&other).await["output"]["images"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let other_bytes = client()
        .get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_ne!(other_bytes, bytes);
    // A text-only job records no input image.
    let text = env
        .submit("nano-banana/text-to-image", json!({"prompt": "fox"}))
        .await;
    assert!(
        env.result(&text).await["output"]
            .get("input_image")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_input_image_gives_an_output_scaled_to_fit() {
    let env = Env::new(SimConfig::new().time_scale(0.0)).await;
    // A 20000 x 10000 JPEG header: the output keeps its 2:1 shape within 2048 x 2048 pixels.
    let id = env
        .submit(
            "nano-banana/edit",
            json!({"prompt": "x", "image_url": samples::data_uri("image/jpeg", &jpeg(20000, 10000))}),
        )
        .await;
    let out = env.result(&id).await["output"].clone();
    let (w, h) = (
        out["images"][0]["width"].as_u64().unwrap(),
        out["images"][0]["height"].as_u64().unwrap(),
    );
    assert!(w * h <= 2048 * 2048, "{w} x {h}");
    assert_eq!(w, 2 * h, "{w} x {h}");
    assert_eq!(out["input_image"]["width"], 20000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_default_limit_is_413_in_the_envelope_in_every_dialect() {
    assert_eq!(DEFAULT_MAX_BODY_BYTES, 32 * 1024 * 1024);
    let prefix = "{\"input\": {\"prompt\": \"x\", \"image_url\": \"";
    for dialect in Dialect::ALL {
        let env = Env::new(SimConfig::new().time_scale(0.0).dialect(dialect)).await;
        let pad = DEFAULT_MAX_BODY_BYTES + 1 - prefix.len() - 3;
        let body = format!("{prefix}{}\"}}}}", "A".repeat(pad));
        assert_eq!(body.len(), DEFAULT_MAX_BODY_BYTES + 1);
        let a = Env::answer(
            env.http
                .post(env.url("/v2/inference/nano-banana/edit"))
                .header("X-Api-Key", KEY)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let e = a.error(413, "request_too_large");
        assert!(e["message"].as_str().unwrap().contains("33554432"), "{e}");
        assert_eq!(env.sim.stats().await.jobs_created, 0);
    }
    // An inline image of about 20 MiB fits under the default limit.
    let env = Env::new(SimConfig::new().time_scale(0.0)).await;
    let mut big = samples::png(8, 8);
    big.resize(20 * 1024 * 1024, 0);
    let id = env
        .submit(
            "nano-banana/edit",
            json!({"prompt": "x", "image_url": samples::data_uri("image/png", &big)}),
        )
        .await;
    let out = env.result(&id).await["output"].clone();
    assert_eq!(out["input_image"]["bytes"], big.len());
    assert_eq!(out["input_image"]["sha256"], sha256_hex(&big));
}

#[test]
fn a_body_declared_far_over_the_limit_is_refused_before_it_is_read() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt
        .block_on(reka_inference_sim::start(
            SimConfig::new().api_key(KEY).max_body_bytes(1024),
        ))
        .unwrap();
    let mut conn = std::net::TcpStream::connect(sim.addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // 1 GiB announced, 10 bytes sent: the answer comes without the rest.
    write!(
        conn,
        "POST /v2/inference/nano-banana/text-to-image HTTP/1.1\r\nhost: sim\r\nx-api-key: {KEY}\r\ncontent-type: application/json\r\ncontent-length: 1073741824\r\n\r\n{{\"input\":"
    )
    .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&answer);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    drop(conn);
    rt.block_on(sim.shutdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_is_configurable_and_a_body_at_it_is_taken() {
    let env = Env::new(SimConfig::new().time_scale(0.0).max_body_bytes(4096)).await;
    let input = input_for("nano-banana/text-to-image", "");
    let empty = json!({ "input": input }).to_string();
    let pad = 4096 - empty.len();
    let body = json!({"input": {"prompt": "y".repeat(pad)}}).to_string();
    assert_eq!(body.len(), 4096);
    let send = async |body: String| {
        Env::answer(
            env.http
                .post(env.url("/v2/inference/nano-banana/text-to-image"))
                .header("X-Api-Key", KEY)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    };
    assert_eq!(send(body.clone()).await.status, 202);
    let over = body.replacen("\"y", "\"yy", 1);
    send(over).await.error(413, "request_too_large");
}
