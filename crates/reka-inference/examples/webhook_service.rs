//! An axum service with its own state that receives its jobs' webhooks:
//! `POST /thumbnails` submits a job with the service's webhook and waits
//! for it, which ends at the delivery (confirmed by one fetch of the
//! record) instead of at a poll; the receiver is mounted at `/hooks`.
//!
//! Runs against the local simulator unless `REKA_API_KEY` is set (then set
//! `PUBLIC_URL` too: the URL at which the service reaches this program's
//! `/hooks`, through a tunnel or a load balancer):
//! `cargo run -p reka-inference --features webhooks --example webhook_service`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use reka_inference::webhook::WebhookReceiver;
use reka_inference::{Client, Endpoint, PollPolicy, SubmitOptions};
use serde_json::{Value, json};

/// The service's own state: what its handlers share.
#[derive(Clone)]
struct App {
    client: Client,
    receiver: WebhookReceiver,
    made: Arc<AtomicU64>,
}

/// Makes a thumbnail: submits with the webhook, waits for the delivery.
async fn thumbnail(
    State(app): State<App>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, (StatusCode, String)> {
    let prompt = body["prompt"].as_str().unwrap_or("a thumbnail").to_owned();
    let failed = |e: reka_inference::Error| (StatusCode::BAD_GATEWAY, e.to_string());
    let job = app
        .client
        .submit_with(
            Endpoint::NANO_BANANA_TEXT_TO_IMAGE,
            json!({ "prompt": prompt }),
            SubmitOptions::default().webhook(&app.receiver),
        )
        .await
        .map_err(failed)?;
    let done = job.wait().await.map_err(failed)?;
    app.made.fetch_add(1, Ordering::Relaxed);
    Ok(Json(
        json!({ "request_id": done.request_id, "output": done.output }),
    ))
}

/// What the service has done, and what its receiver has seen.
async fn stats(State(app): State<App>) -> Json<Value> {
    let seen = app.receiver.stats();
    Json(json!({
        "thumbnails": app.made.load(Ordering::Relaxed),
        "deliveries": seen.accepted,
        "safety_net_looks": seen.safety_net_looks,
        "missed_deliveries": seen.missed_deliveries,
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    // The real service when a key is configured, else a local simulator
    // (which reaches this program on loopback).
    let (client, public_url, _sim) = match std::env::var("REKA_API_KEY") {
        Ok(_) => {
            let url = std::env::var("PUBLIC_URL")
                .map_err(|_| "set PUBLIC_URL: where the service reaches /hooks")?;
            (Client::from_env()?, url, None)
        }
        Err(_) => {
            let sim =
                reka_inference_sim::start(reka_inference_sim::SimConfig::new().time_scale(0.05))
                    .await?;
            let client = Client::builder()
                .api_key(reka_inference_sim::DEV_API_KEY)
                .base_url(sim.base_url())
                .poll_policy(PollPolicy::default().scaled(0.05))
                .build()?;
            eprintln!("using the local simulator at {}", sim.base_url());
            (client, format!("http://127.0.0.1:{port}/hooks"), Some(sim))
        }
    };

    let receiver = WebhookReceiver::new(&public_url)?;
    let app = App {
        client,
        receiver: receiver.clone(),
        made: Arc::new(AtomicU64::new(0)),
    };
    // The router is generic over the app's state: it nests as is.
    let router = Router::new()
        .route("/thumbnails", post(thumbnail))
        .route("/stats", get(stats))
        .nest("/hooks", receiver.router())
        .with_state(app);
    // axum's `serve` sets no header read timeout and no connection cap:
    // a service exposed to the internet puts it behind a proxy that does,
    // or serves with hyper's `header_read_timeout` (see `ReceiverLimits`).
    tokio::spawn(async move { axum::serve(listener, router).await });

    // A wrong public URL is silent otherwise: every wait would fall back to
    // its safety net.
    receiver.check_url().await?;
    println!("webhooks reach this service at {public_url}");

    // Use the service as a caller would.
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    for prompt in ["a fox", "a heron"] {
        let made: Value = http
            .post(format!("{base}/thumbnails"))
            .json(&json!({ "prompt": prompt }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        println!("{prompt}: {}", made["request_id"]);
    }
    let seen: Value = http
        .get(format!("{base}/stats"))
        .send()
        .await?
        .json()
        .await?;
    println!("stats: {seen}");
    Ok(())
}
