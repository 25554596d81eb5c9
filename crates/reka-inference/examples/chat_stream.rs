//! Stream a chat completion chunk by chunk.
//!
//! `cargo run -p reka-inference --example chat_stream`

use std::io::Write;

use futures::StreamExt;
use reka_inference::{ChatRequest, Client};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = reka_inference_sim::start(reka_inference_sim::SimConfig::new()).await?;
    let client = Client::builder()
        .api_key(reka_inference_sim::DEV_API_KEY)
        .base_url(sim.base_url())
        .build()?;

    let request = ChatRequest::new("qwen3-vl-32b")
        .system("You are terse.")
        .user("What does a lighthouse do?")
        .with("temperature", 0.2);
    let mut chunks = client.chat().create_stream(&request).await?;
    while let Some(chunk) = chunks.next().await {
        for choice in chunk?.choices {
            print!("{}", choice.delta.content.unwrap_or_default());
            std::io::stdout().flush()?;
        }
    }
    println!();
    sim.shutdown().await;
    Ok(())
}
