//! Submit a job, wait for it, save its output.
//!
//! Runs against the local simulator unless `REKA_API_KEY` is set:
//! `cargo run -p reka-inference --example quickstart`

use reka_inference::{Client, Endpoint};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The real service when a key is configured, else a local simulator.
    let (client, _sim) = match std::env::var("REKA_API_KEY") {
        Ok(_) => (Client::from_env()?, None),
        Err(_) => {
            let sim =
                reka_inference_sim::start(reka_inference_sim::SimConfig::new().time_scale(0.05))
                    .await?;
            let client = Client::builder_for_sim(&sim).build()?;
            eprintln!("using the local simulator at {}", sim.base_url());
            (client, Some(sim))
        }
    };

    let job = client
        .submit(
            Endpoint::NANO_BANANA_TEXT_TO_IMAGE,
            json!({"prompt": "a lighthouse at dusk"}),
        )
        .await?;
    println!("submitted {}", job.id());
    let done = job.wait().await?;
    println!("output: {}", done.output);
    let dir = std::env::temp_dir().join("reka-quickstart");
    for path in client.download_outputs(&done, &dir).await? {
        println!("saved {}", path.display());
    }
    Ok(())
}
