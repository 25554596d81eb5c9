//! Per-call overhead of the generated and hand-written layers, a regression
//! guard: decoding a status and a 100-item list page into the generated
//! types, encoding a submit body, reading an error answer, and a status call
//! through the whole client next to a bare `reqwest` GET of the same URL
//! (the baseline, measured in the same run).
//!
//! `cargo bench -p reka-inference-bench --bench overhead`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use reka_inference::types::{ListRequestsResponse, StatusResponse, SubmitRequest};
use reka_inference::{ApiError, Client, Endpoint};
use serde_json::json;

fn status_body() -> Vec<u8> {
    let logs: Vec<_> = (0..20)
        .map(|i| json!({"message": format!("step {i}"), "level": "INFO", "source": "model", "timestamp": "2026-11-24T10:00:00.123Z"}))
        .collect();
    serde_json::to_vec(&json!({
        "request_id": "req_0123456789", "status": "IN_PROGRESS", "queue_position": null,
        "logs": logs, "metrics": {"inference_time": 1.25}
    }))
    .unwrap_or_default()
}

fn list_body() -> Vec<u8> {
    let items: Vec<_> = (0..100)
        .map(|i| {
            json!({
                "request_id": format!("req_{i:06}"), "endpoint_id": "nano-banana/text-to-image",
                "model_id": "nano-banana", "capability": "text-to-image", "status": "COMPLETED",
                "created_at": "2026-11-24T10:00:00.123Z", "updated_at": "2026-11-24T10:00:06.456Z",
                "completed_at": "2026-11-24T10:00:06.456Z",
                "input": {"prompt": "a lighthouse at dusk"},
                "output": {"images": [{"url": format!("https://cdn.example/{i}.png"), "content_type": "image/png"}]},
                "metrics": {"inference_time": 6.3}
            })
        })
        .collect();
    serde_json::to_vec(&json!({"items": items, "next_offset": 100, "has_more": true}))
        .unwrap_or_default()
}

fn decoding(c: &mut Criterion) {
    let status = status_body();
    let list = list_body();
    c.bench_function("decode status (20 log lines)", |b| {
        b.iter(|| {
            serde_json::from_slice::<StatusResponse>(black_box(&status)).map(|s| s.request_id.len())
        })
    });
    c.bench_function("decode list page (100 items, payloads)", |b| {
        b.iter(|| {
            serde_json::from_slice::<ListRequestsResponse>(black_box(&list)).map(|p| p.items.len())
        })
    });
    let submit: SubmitRequest = serde_json::from_value(json!({
        "input": {"prompt": "a lighthouse at dusk", "aspect_ratio": "16:9"}, "webhook_url": null
    }))
    .unwrap_or_else(|_| SubmitRequest {
        input: Default::default(),
        webhook_url: None,
    });
    c.bench_function("encode submit body", |b| {
        b.iter(|| serde_json::to_vec(black_box(&submit)))
    });
    let headers = reqwest::header::HeaderMap::new();
    let error = bytes::Bytes::from_static(
        br#"{"error":{"type":"validation_error","message":"bad","param":"model","details":[{"loc":["body","model"],"msg":"x","type":"y"}]}}"#,
    );
    c.bench_function("read an error answer", |b| {
        b.iter(|| {
            ApiError::from_parts(
                reqwest::StatusCode::BAD_REQUEST,
                &headers,
                black_box(error.clone()),
            )
        })
    });
    c.bench_function("parse an endpoint id", |b| {
        b.iter(|| black_box("kling-v3-pro/image-to-video").parse::<Endpoint>())
    });
}

fn round_trip(c: &mut Criterion) {
    let Ok(rt) = tokio::runtime::Runtime::new() else {
        return;
    };
    let setup = rt.block_on(async {
        let sim = reka_inference_sim::start(reka_inference_sim::SimConfig::new())
            .await
            .ok()?;
        let client = Client::builder()
            .api_key(reka_inference_sim::DEV_API_KEY)
            .base_url(sim.base_url())
            .build()
            .ok()?;
        let job = client
            .submit(Endpoint::NANO_BANANA_TEXT_TO_IMAGE, json!({"prompt": "x"}))
            .await
            .ok()?;
        Some((sim, client, job))
    });
    let Some((sim, _client, job)) = setup else {
        return;
    };
    let url = format!(
        "{}/v2/inference/requests/{}/status",
        sim.base_url(),
        job.id()
    );
    let bare = reqwest::Client::new();
    let mut group = c.benchmark_group("status call");
    group.bench_function("bare reqwest GET (baseline)", |b| {
        b.to_async(&rt).iter(|| async {
            let r = bare
                .get(&url)
                .header("x-api-key", reka_inference_sim::DEV_API_KEY)
                .send()
                .await;
            match r {
                Ok(r) => r.bytes().await.map(|b| b.len()).unwrap_or(0),
                Err(_) => 0,
            }
        })
    });
    group.bench_function("Job::status through the client", |b| {
        b.to_async(&rt)
            .iter(|| async { job.status().await.map(|s| s.request_id.len()).unwrap_or(0) })
    });
    group.finish();
    drop(sim);
}

criterion_group!(benches, decoding, round_trip);
criterion_main!(benches);
