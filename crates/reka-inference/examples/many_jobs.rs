//! Wait for many jobs at once through the list endpoint.
//!
//! `cargo run -p reka-inference --example many_jobs`

use futures::StreamExt;
use reka_inference::{Client, Endpoint};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim =
        reka_inference_sim::start(reka_inference_sim::SimConfig::new().time_scale(0.02)).await?;
    let client = Client::builder_for_sim(&sim).build()?;

    let mut set = client.job_set();
    for i in 0..200 {
        set.push(
            client
                .submit(
                    Endpoint::NANO_BANANA_TEXT_TO_IMAGE,
                    json!({"prompt": format!("tile {i}")}),
                )
                .await?,
        );
    }
    let mut finished = 0;
    let mut outcomes = std::pin::pin!(set.into_stream());
    while let Some(outcome) = outcomes.next().await {
        finished += 1;
        if let Err(e) = outcome.result {
            println!("job {} failed: {e}", outcome.index);
        }
    }
    let stats = sim.stats().await;
    println!(
        "{finished} jobs finished with {} list requests and {} per-job polls",
        stats.count("list_requests", "200"),
        stats.count("get_status", "200") + stats.count("get_result", "200"),
    );
    sim.shutdown().await;
    Ok(())
}
