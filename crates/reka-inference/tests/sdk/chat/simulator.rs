//! Chat against the simulator, whole and streamed.

use crate::common;
use futures::StreamExt;

#[tokio::test(start_paused = true)]
async fn chat_completes_whole_and_streamed_with_the_same_text() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    let request =
        reka_inference::chat::ChatRequest::new("qwen3-vl-32b").user("Describe a lighthouse.");
    let whole = client.chat().create(&request).await.unwrap();
    let text = whole.text().expect("a text answer").to_owned();
    assert!(!text.is_empty());
    let mut streamed = String::new();
    let mut chunks = client.chat().create_stream(&request).await.unwrap();
    let mut n = 0;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.unwrap();
        n += 1;
        streamed.push_str(&chunk.text());
    }
    assert!(n > 1, "several chunks");
    assert_eq!(streamed, text);
    let refused = client
        .chat()
        .create(&reka_inference::chat::ChatRequest::new("gpt-4").user("hi"))
        .await
        .unwrap_err();
    assert_eq!(
        refused.api_error().and_then(|a| a.param.as_deref()),
        Some("model")
    );
}
