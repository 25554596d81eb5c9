//! Follow a job as it runs: queue position, start, each log line once.
//!
//! `cargo run -p reka-inference --example progress_events`

use futures::StreamExt;
use reka_inference::{Client, Endpoint, JobEvent};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim =
        reka_inference_sim::start(reka_inference_sim::SimConfig::new().time_scale(0.05)).await?;
    let client = Client::builder_for_sim(&sim).build()?;

    let job = client
        .submit(
            Endpoint::VEO_3_1_TEXT_TO_VIDEO,
            json!({"prompt": "waves at night"}),
        )
        .await?;
    let mut events = std::pin::pin!(job.events());
    while let Some(event) = events.next().await {
        match event? {
            JobEvent::Queued { position } => println!("queued (position {position:?})"),
            JobEvent::Started => println!("started"),
            JobEvent::Log(line) => println!("  | {}", line.message),
            JobEvent::Completed(done) => println!("done: {}", done.output),
            JobEvent::Failed { error, .. } => println!("failed: {error:?}"),
            JobEvent::Cancelled => println!("cancelled"),
            other => println!("{other:?}"),
        }
    }
    sim.shutdown().await;
    Ok(())
}
