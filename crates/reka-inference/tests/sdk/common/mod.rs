//! Shared set-up: an in-process simulator and a client pointed at it.
#![allow(dead_code)]

pub mod hostile;
#[cfg(feature = "postgres")]
pub mod pg;

use std::time::Duration;

use reka_inference::{Client, PollPolicy, RetryPolicy};
use reka_inference_sim::{DEV_API_KEY, RunningSim, SimConfig, start};

/// Simulated seconds per real second: a 30 s job takes 0.3 s.
pub const SCALE: f64 = 0.01;

pub async fn sim() -> RunningSim {
    sim_with(SimConfig::new()).await
}

pub async fn sim_with(config: SimConfig) -> RunningSim {
    start(config.time_scale(SCALE).seed(7))
        .await
        .expect("simulator starts")
}

/// A client for `sim`, its poller scaled to the simulator's clock.
pub fn client(sim: &RunningSim) -> Client {
    builder(sim).build().expect("client builds")
}

pub fn builder(sim: &RunningSim) -> reka_inference::ClientBuilder {
    Client::builder()
        .api_key(DEV_API_KEY)
        .base_url(sim.base_url())
        .poll_policy(PollPolicy::default().scaled(SCALE))
        .retry_policy(
            RetryPolicy::default()
                .initial_backoff(Duration::from_millis(5))
                .max_backoff(Duration::from_millis(50)),
        )
        .wait_timeout(Duration::from_secs(60))
}

/// A catalog of one text-to-image model, `<model_id>/text-to-image`, whose
/// jobs all take `seconds` (simulated) on `workers` workers.
pub fn fixed_catalog(model_id: &str, workers: u32, seconds: u64) -> reka_inference_sim::Catalog {
    let json = serde_json::json!({
        "chat_models": ["qwen3-vl-32b"],
        "models": [{"model_id": model_id, "capability": "text-to-image",
                    "workers": workers, "duration": {"fixed": seconds}}]
    });
    reka_inference_sim::Catalog::from_json(&json.to_string()).expect("valid catalog")
}
