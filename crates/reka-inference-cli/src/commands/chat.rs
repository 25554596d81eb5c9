//! `chat`: one question to an OpenAI-compatible chat model.

use futures::StreamExt;
use reka_inference::ChatRequest;
use reka_inference::types::ChatMessageContent;
use serde_json::Value;

use crate::cli::ChatArgs;
use crate::commands::Ctx;
use crate::exit::Failure;

/// Asks and prints the answer.
pub async fn run(ctx: &mut Ctx, args: ChatArgs) -> Result<(), Failure> {
    if args.message.trim().is_empty() {
        return Err(Failure::usage("MESSAGE is empty: say something"));
    }
    if args.model.trim().is_empty() {
        return Err(Failure::usage("--model is empty"));
    }
    let mut request = ChatRequest::new(args.model.trim());
    if let Some(system) = &args.system {
        request = request.system(system.as_str());
    }
    let request = request.user(args.message.as_str());
    let client = ctx.client().await?;
    let out = ctx.out;
    if args.stream {
        let mut chunks = client.chat().create_stream(&request).await?;
        let mut wrote = false;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            if out.json {
                out.json_line(&chunk);
                continue;
            }
            for choice in chunk.choices {
                if let Some(text) = choice.delta.content {
                    out.partial(&text);
                    wrote = true;
                }
            }
        }
        if wrote {
            out.line("");
        }
        return Ok(());
    }
    let response = client.chat().create(&request).await?;
    if out.json {
        out.json_value(&response);
        return Ok(());
    }
    let text = response
        .choices
        .first()
        .and_then(|c| c.message.content.as_ref())
        .map(content_text)
        .unwrap_or_default();
    out.line(text);
    Ok(())
}

/// The text of a message: the string, or the text parts joined.
fn content_text(content: &ChatMessageContent) -> String {
    match content {
        ChatMessageContent::String(s) => s.clone(),
        ChatMessageContent::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
    }
}
