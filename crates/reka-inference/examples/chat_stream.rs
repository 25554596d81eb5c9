//! Stream a chat completion chunk by chunk, then ask for a tool call and
//! gather a stream into the whole answer (content, tool calls, usage).
//!
//! `cargo run -p reka-inference --example chat_stream`

use std::io::Write;

use futures::StreamExt;
use reka_inference::Client;
use reka_inference::chat::{ChatRequest, function_tool};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = reka_inference_sim::start(reka_inference_sim::SimConfig::new()).await?;
    let client = Client::builder_for_sim(&sim).build()?;

    let request = ChatRequest::new("qwen3-vl-32b")
        .system("You are terse.")
        .user("What does a lighthouse do?")
        .temperature(0.2)
        .include_usage();
    let mut chunks = client.chat().create_stream(&request).await?;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        print!("{}", chunk.text());
        std::io::stdout().flush()?;
        if let Some(usage) = chunk.usage() {
            println!("\n({} tokens)", usage.total_tokens);
        }
    }

    // The same, gathered: a tool call comes back whole.
    let request = ChatRequest::new("qwen3-vl-32b")
        .user("What is the weather in Oslo? Use the tool.")
        .tool(function_tool(
            "get_weather",
            "The weather in a city",
            json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        ));
    let answer = client
        .chat()
        .create_stream(&request)
        .await?
        .answer()
        .await?;
    for call in answer.tool_calls() {
        println!("tool call {}: {} {}", call.id, call.name, call.arguments);
    }
    sim.shutdown().await;
    Ok(())
}
