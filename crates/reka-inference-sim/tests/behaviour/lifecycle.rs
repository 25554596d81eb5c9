//! Lifecycle, queue positions, outputs, cancel, idempotency, key isolation,
//! chat, stats, reset and the binary.

use std::io::BufRead;

use reka_inference_sim::SimConfig;
use serde_json::{Value, json};

use crate::common::{Env, KEY, client, fixed_catalog, image};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_queue_run_and_complete_in_order() {
    // One worker, 200 simulated seconds per job, 2 s of wall time each.
    let env = Env::new(
        SimConfig::new()
            .catalog(fixed_catalog(1, 200.0))
            .time_scale(0.01),
    )
    .await;
    let a = env.submit("m/edit", json!({"prompt": "a"})).await;
    let b = env.submit("m/edit", json!({"prompt": "b"})).await;
    let c = env.submit("m/edit", json!({"prompt": "c"})).await;

    let sa = env.status(&a).await;
    assert_eq!(sa["status"], "IN_PROGRESS");
    assert!(sa["queue_position"].is_null());
    assert!(sa["logs"].is_null(), "logs only with with_logs=true");
    assert_eq!(env.status(&b).await["queue_position"], 0);
    let sc = env.status(&c).await;
    assert_eq!(
        (sc["status"].as_str(), sc["queue_position"].as_u64()),
        (Some("IN_QUEUE"), Some(1))
    );
    let rc = env.result(&c).await;
    assert!(rc["output"].is_null() && rc["completed_at"].is_null());

    // Watch c: positions count down, states only move forward.
    let order = ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"];
    let (mut last_state, mut last_pos) = (0, 1);
    loop {
        let s = env.status(&c).await;
        let i = order.iter().position(|o| *o == s["status"]).unwrap();
        assert!(
            i >= last_state,
            "went back from {} to {}",
            order[last_state],
            order[i]
        );
        if let Some(p) = s["queue_position"].as_u64() {
            assert!(p <= last_pos);
            last_pos = p;
        }
        last_state = i;
        if i == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let logs = env
        .get(&format!("/v2/inference/requests/{c}/status?with_logs=true"))
        .await
        .json;
    let messages: Vec<&str> = logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert!(messages.len() >= 5, "{messages:?}");
    for l in logs["logs"].as_array().unwrap() {
        assert!(l["level"].is_string() && l["source"].is_string() && l["timestamp"].is_string());
    }
    assert_eq!(logs["metrics"]["inference_time"], 200.0);

    // completed_at is the exact ground truth: one job after the other.
    let mut ends = Vec::new();
    for id in [&a, &b, &c] {
        let r = env.result(id).await;
        assert_eq!(r["status"], "COMPLETED");
        assert_eq!(r["metrics"]["inference_time"], 200.0);
        ends.push(
            chrono::DateTime::parse_from_rfc3339(r["completed_at"].as_str().unwrap()).unwrap(),
        );
    }
    let gap = |i: usize| (ends[i + 1] - ends[i]).num_milliseconds();
    assert!((1990..=2010).contains(&gap(0)), "{}", gap(0));
    assert!((1990..=2010).contains(&gap(1)), "{}", gap(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_point_at_real_files() {
    let env = Env::new(SimConfig::new().time_scale(0.0005)).await;
    let img = env
        .submit("nano-banana/text-to-image", json!({"prompt": "a red fox"}))
        .await;
    let vid = env
        .submit("veo-3.1/text-to-video", json!({"prompt": "waves"}))
        .await;
    let tts = env
        .submit("reka-tts-1/text-to-speech", json!({"text": "hello world"}))
        .await;
    let bbox = env
        .submit(
            "sam3/image-to-bbox",
            json!({"prompt": "cat and dog", "image_url": "http://x/y.png"}),
        )
        .await;
    for id in [&img, &vid, &tts, &bbox] {
        env.wait_for(id, "COMPLETED").await;
    }
    let http = client(); // no API key: files are public
    let fetch = async |url: &str| {
        let r = http.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        (ct, r.bytes().await.unwrap())
    };

    let out = env.result(&img).await["output"].clone();
    let image = &out["images"][0];
    let (ct, png) = fetch(image["url"].as_str().unwrap()).await;
    assert_eq!(ct, "image/png");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(&png[12..16], b"IHDR");
    assert_eq!(
        u32::from_be_bytes(png[16..20].try_into().unwrap()),
        image["width"].as_u64().unwrap() as u32
    );

    let out = env.result(&vid).await["output"].clone();
    let (ct, gif) = fetch(out["video"]["url"].as_str().unwrap()).await;
    assert_eq!(ct, out["video"]["content_type"].as_str().unwrap());
    assert!(gif.starts_with(b"GIF89a") && gif.ends_with(&[0x3B]));

    let out = env.result(&tts).await["output"].clone();
    let (ct, wav) = fetch(out["audio"]["url"].as_str().unwrap()).await;
    assert_eq!(ct, "audio/wav");
    assert!(wav.starts_with(b"RIFF") && &wav[8..12] == b"WAVE");
    let data_len = u32::from_le_bytes(wav[40..44].try_into().unwrap()) as f64;
    let secs = data_len / 2.0 / 16_000.0;
    assert!((secs - out["audio"]["duration"].as_f64().unwrap()).abs() < 0.01);

    let out = env.result(&bbox).await["output"].clone();
    let boxes = out["boxes"].as_array().unwrap();
    assert!(!boxes.is_empty());
    for b in boxes {
        for f in ["score", "x", "y", "width", "height"] {
            assert!(b[f].is_number(), "{b}");
        }
        assert!(b["label"].is_string());
    }
    assert_eq!(boxes[0]["label"], "cat");

    // Same prompt, same bytes.
    let again = env
        .submit("nano-banana/text-to-image", json!({"prompt": "a red fox"}))
        .await;
    env.wait_for(&again, "COMPLETED").await;
    let url = env.result(&again).await["output"]["images"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(fetch(&url).await.1, png);
    // A job that is not done has no file.
    let http_status = http
        .get(env.url(&format!("/_sim/files/{img}/video.gif")))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(http_status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_rate_makes_jobs_fail_with_an_error() {
    let env = Env::new(
        SimConfig::new()
            .catalog(fixed_catalog(4, 1.0))
            .time_scale(0.001)
            .failure_rate(1.0),
    )
    .await;
    let id = env.submit("m/edit", json!({})).await;
    env.wait_for(&id, "FAILED").await;
    let r = env.result(&id).await;
    assert!(r["output"].is_null());
    assert!(r["error"]["type"].is_string() && r["error"]["message"].is_string());
    assert!(r["completed_at"].is_string());
    let logs = env
        .get(&format!(
            "/v2/inference/requests/{id}/status?with_logs=true"
        ))
        .await
        .json;
    assert!(
        logs["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["level"] == "ERROR")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_runs_are_reproducible() {
    let run = async |seed: u64| {
        let env = Env::new(
            SimConfig::new()
                .time_scale(100.0)
                .seed(seed)
                .failure_rate(0.5),
        )
        .await;
        let mut out = Vec::new();
        for i in 0..5 {
            let id = env
                .submit(
                    "nano-banana/text-to-image",
                    json!({ "prompt": format!("p{i}") }),
                )
                .await;
            out.push(id);
        }
        out
    };
    let (a, b, c) = (run(42).await, run(42).await, run(43).await);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_queued_running_and_finished() {
    // One worker; jobs of 1000 simulated seconds = 10 s wall.
    let env = Env::new(
        SimConfig::new()
            .catalog(fixed_catalog(1, 1000.0))
            .time_scale(0.01),
    )
    .await;
    let running = env.submit("m/edit", json!({})).await;
    let queued = env.submit("m/edit", json!({})).await;
    let third = env.submit("m/edit", json!({})).await;
    assert_eq!(env.status(&third).await["queue_position"], 1);

    let r = env
        .post(
            &format!("/v2/inference/requests/{queued}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["status"].as_str()),
        (200, Some("CANCELLED"))
    );
    assert!(r.json["completed_at"].is_string());
    assert_eq!(
        env.status(&third).await["queue_position"],
        0,
        "the queue closed up"
    );
    assert_eq!(env.status(&running).await["status"], "IN_PROGRESS");

    let r = env
        .post(
            &format!("/v2/inference/requests/{running}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(r.json["status"], "CANCELLED");
    // The freed worker takes the next job at once.
    assert_eq!(env.status(&third).await["status"], "IN_PROGRESS");
    // Cancelling again changes nothing.
    let again = env
        .post(
            &format!("/v2/inference/requests/{running}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(again.json, r.json);

    // A finished job is returned unchanged.
    let fast = Env::new(
        SimConfig::new()
            .catalog(fixed_catalog(1, 1.0))
            .time_scale(0.001),
    )
    .await;
    let id = fast.submit("m/edit", json!({"prompt": "x"})).await;
    fast.wait_for(&id, "COMPLETED").await;
    let before = fast.result(&id).await;
    let c = fast
        .post(&format!("/v2/inference/requests/{id}/cancel"), json!({}))
        .await;
    assert_eq!(c.status, 200);
    assert_eq!(c.json, before);
    let stats = env.admin_stats().await;
    assert_eq!(stats["jobs_by_status"]["CANCELLED"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_replays_byte_for_byte_and_conflicts() {
    let env = Env::new(SimConfig::new().time_scale(0.01)).await;
    let send = async |key: &str, api_key: &str, path: &str, body: Value| {
        let resp = env
            .http
            .post(env.url(path))
            .header("X-Api-Key", api_key)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        Env::answer(resp).await
    };
    let path = "/v2/inference/nano-banana/text-to-image";
    let body = json!({"input": {"prompt": "once"}, "webhook_url": null});
    let first = send("idem-1", KEY, path, body.clone()).await;
    assert_eq!(first.status, 202);
    let second = send("idem-1", KEY, path, body.clone()).await;
    assert_eq!(second.status, 202);
    assert_eq!(second.text, first.text, "replayed byte for byte");
    // Key order does not make a different body.
    let reordered = send(
        "idem-1",
        KEY,
        path,
        json!({"webhook_url": null, "input": {"prompt": "once"}}),
    )
    .await;
    assert_eq!(reordered.text, first.text);

    let other_body = send("idem-1", KEY, path, json!({"input": {"prompt": "twice"}})).await;
    other_body.error(409, "conflict_error");
    // The same body on another endpoint that takes it.
    let other_endpoint = send(
        "idem-1",
        KEY,
        "/v2/inference/veo-3.1/text-to-video",
        body.clone(),
    )
    .await;
    other_endpoint.error(409, "conflict_error");

    let stats = env.admin_stats().await;
    assert_eq!(stats["jobs_created"], 1);
    assert_eq!(stats["idempotent_replays"], 2);
    assert_eq!(stats["idempotency_conflicts"], 2);
    let listed = env.get("/v2/inference/requests").await.json;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    // Concurrent retries of one logical request create one job.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let http = env.http.clone();
        let url = env.url(path);
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .header("X-Api-Key", KEY)
                .header("Idempotency-Key", "idem-2")
                .json(&json!({"input": {"prompt": "race"}}))
                .send()
                .await
                .unwrap();
            r.text().await.unwrap()
        }));
    }
    let mut bodies = Vec::new();
    for t in tasks {
        bodies.push(t.await.unwrap());
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]));
    assert_eq!(env.admin_stats().await["jobs_created"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_are_scoped_per_api_key() {
    let env = Env::new(SimConfig::new().api_key("other-key").time_scale(0.01)).await;
    let mut ids = Vec::new();
    for key in [KEY, "other-key"] {
        let r = env
            .http
            .post(env.url("/v2/inference/sam3/image-to-bbox"))
            .header("Authorization", format!("Bearer {key}"))
            .header("Idempotency-Key", "shared")
            .json(&json!({"input": {"image_url": image()}}))
            .send()
            .await
            .unwrap();
        let a = Env::answer(r).await;
        assert_eq!(a.status, 202);
        ids.push(a.json["request_id"].as_str().unwrap().to_string());
    }
    assert_ne!(ids[0], ids[1]);
    assert_eq!(env.admin_stats().await["jobs_created"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_see_only_their_own_requests() {
    let env = Env::new(SimConfig::new().api_key("key-b").time_scale(0.01)).await;
    let id = env
        .submit("sam3/image-to-bbox", json!({"image_url": image()}))
        .await;
    for path in [
        format!("/v2/inference/requests/{id}"),
        format!("/v2/inference/requests/{id}/status"),
    ] {
        env.get_as(&path, "key-b")
            .await
            .error(404, "not_found_error");
        assert_eq!(env.get_as(&path, KEY).await.status, 200);
    }
    let cancel = env
        .http
        .post(env.url(&format!("/v2/inference/requests/{id}/cancel")))
        .bearer_auth("key-b")
        .send()
        .await
        .unwrap();
    Env::answer(cancel).await.error(404, "not_found_error");
    let list_b = env.get_as("/v2/inference/requests", "key-b").await;
    assert_eq!(list_b.json["items"], json!([]));
    // Bearer works as well as X-Api-Key; unknown and missing keys are 401.
    let bearer = env
        .http
        .get(env.url("/v2/inference/requests"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(
        Env::answer(bearer).await.json["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    env.get_as("/v2/inference/models", "nope")
        .await
        .error(401, "authentication_error");
    let none = env
        .http
        .get(env.url("/v2/inference/models"))
        .send()
        .await
        .unwrap();
    Env::answer(none).await.error(401, "authentication_error");
    // The dev key is not accepted once keys are configured.
    env.get_as("/v2/inference/models", reka_inference_sim::DEV_API_KEY)
        .await
        .error(401, "authentication_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_and_chat_completions() {
    let env = Env::new(SimConfig::new()).await;
    let models = env.get("/v2/inference/models").await.json;
    let items = models["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|m| m["endpoint_id"] == "kling-v3-pro/image-to-video")
    );
    assert!(
        items
            .iter()
            .any(|m| m["endpoint_id"] == "sam3/image-to-bbox")
    );
    for m in items {
        assert_eq!(
            m["endpoint_id"],
            format!(
                "{}/{}",
                m["model_id"].as_str().unwrap(),
                m["capability"].as_str().unwrap()
            )
        );
    }

    let body = json!({"model": "qwen3-vl-32b", "temperature": 0.2,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "describe a cat"}]}]});
    let a = env
        .post("/v2/inference/chat/completions", body.clone())
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json["object"], "chat.completion");
    let content = a.json["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(content.contains("describe a cat"));
    assert_eq!(
        env.post("/v2/inference/chat/completions", body.clone())
            .await
            .json["choices"][0]["message"]["content"],
        content
    );

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let s = env.post("/v2/inference/chat/completions", streamed).await;
    assert_eq!(s.header("content-type"), Some("text/event-stream"));
    let events: Vec<&str> = s.text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(*events.last().unwrap(), "data: [DONE]");
    let mut text = String::new();
    for e in &events[..events.len() - 1] {
        let chunk: Value = serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(chunk["object"], "chat.completion.chunk");
        text.push_str(
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or(""),
        );
    }
    assert_eq!(text, content, "chunks add up to the whole answer");

    let bad = env
        .post(
            "/v2/inference/chat/completions",
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(bad.error(400, "validation_error")["param"], "model");
    let empty = env
        .post(
            "/v2/inference/chat/completions",
            json!({"model": "qwen3-vl-32b", "messages": []}),
        )
        .await;
    assert_eq!(empty.error(400, "validation_error")["param"], "messages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_and_reset_clears() {
    let env = Env::new(SimConfig::new().time_scale(0.01)).await;
    let id = env
        .submit("sam3/image-to-bbox", json!({"image_url": image()}))
        .await;
    env.status(&id).await;
    env.get("/v2/inference/requests/nope/status").await;
    env.get("/v2/inference/models").await;
    let stats = env.sim.stats().await;
    assert_eq!(stats.count("submit", "202"), 1);
    assert_eq!(stats.count("get_status", "200"), 1);
    assert_eq!(stats.count("get_status", "404"), 1);
    assert_eq!(stats.count("list_models", "200"), 1);
    assert_eq!(stats.jobs_created, 1);
    // The HTTP view is the same data.
    let http: reka_inference_sim::Stats = serde_json::from_value(env.admin_stats().await).unwrap();
    assert_eq!(http.requests, stats.requests);

    let r = env.http.post(env.url("/_sim/reset")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    env.get(&format!("/v2/inference/requests/{id}"))
        .await
        .error(404, "not_found_error");
    let stats = env.sim.stats().await;
    assert_eq!(stats.jobs_created, 0);
    assert_eq!(stats.count("submit", "202"), 0);
    // New ids after a reset never collide with old ones.
    let id2 = env
        .submit("sam3/image-to-bbox", json!({"image_url": image()}))
        .await;
    assert_ne!(id, id2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advertised_base_url_goes_into_every_url() {
    let env = Env::new(
        SimConfig::new()
            .time_scale(0.0005)
            .advertised_base_url("http://elsewhere.invalid:9/"),
    )
    .await;
    let a = env
        .post(
            "/v2/inference/nano-banana/text-to-image",
            json!({"input": {"prompt": "elsewhere"}}),
        )
        .await;
    for field in ["status_url", "response_url", "cancel_url"] {
        assert!(
            a.json[field]
                .as_str()
                .unwrap()
                .starts_with("http://elsewhere.invalid:9/v2/inference/requests/")
        );
    }
    let id = a.json["request_id"].as_str().unwrap();
    env.wait_for(id, "COMPLETED").await;
    let url = env.result(id).await["output"]["images"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(url.starts_with("http://elsewhere.invalid:9/_sim/files/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_and_drop_stop_the_server() {
    let env = Env::new(SimConfig::new()).await;
    let url = env.url("/v2/inference/models");
    env.sim.shutdown().await;
    assert!(
        env.http
            .get(&url)
            .header("X-Api-Key", KEY)
            .send()
            .await
            .is_err()
    );

    let sim = reka_inference_sim::start(SimConfig::new()).await.unwrap();
    let url = format!("{}/v2/inference/models", sim.base_url());
    drop(sim);
    crate::common::eventually("the dropped server to stop", async || {
        client().get(&url).send().await.is_err()
    })
    .await;
}

#[test]
fn the_binary_prints_its_base_url_first() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reka-inference-sim"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--time-scale",
            "0.01",
            "--seed",
            "3",
            "--faults",
            "list_requests:503=0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        client()
            .get(format!("{base}/v2/inference/models"))
            .header("X-Api-Key", reka_inference_sim::DEV_API_KEY)
            .send()
            .await
            .unwrap()
            .status()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status, 200);

    // A bad flag is refused with a message, not a panic.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_reka-inference-sim"))
        .args(["--faults", "nope:500=1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scope"));
}
