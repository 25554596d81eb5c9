//! `chat`: one question to an OpenAI-compatible chat model, on Reka or on
//! any OpenAI-compatible server (`--chat-base-url`).

use clap::Args;
use futures::StreamExt;
use reka_inference::chat::{
    Chat, ChatCollector, ChatCompletion, ChatRequest, function_tool, image_data_uri, openai,
};
use reka_inference::{AuthHeader, Client};
use serde_json::Value;

use crate::commands::Ctx;
use crate::exit::Failure;
use crate::output::printable;

/// `chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// The chat model.
    #[arg(long, short, value_name = "MODEL", default_value = "qwen3-vl-32b")]
    pub model: String,

    /// A system message sent before yours.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,

    /// Print the answer as it is written, piece by piece (with --json: one
    /// JSON chunk per line, as the server sent it, the final usage chunk
    /// included).
    #[arg(long)]
    pub stream: bool,

    /// An image sent with your message: a file (PNG, JPEG, GIF or WebP,
    /// sent as a data: URI), an http(s) URL or a data: URI. Repeatable.
    #[arg(long, value_name = "FILE|URL")]
    pub image: Vec<String>,

    /// A tool the model may call: a JSON object, `{"name": ..., "description":
    /// ..., "parameters": <JSON schema>}` or OpenAI's `{"type": "function",
    /// "function": {...}}`. Repeatable. Tool calls are printed.
    #[arg(long, value_name = "JSON")]
    pub tool: Vec<String>,

    /// Ask for a JSON object as the answer (`response_format: json_object`).
    #[arg(long)]
    pub json_object: bool,

    /// The most tokens to generate.
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u32>,

    /// The sampling temperature.
    #[arg(long, value_name = "T")]
    pub temperature: Option<f32>,

    /// Chat with any OpenAI-compatible server: the base URL of its
    /// OpenAI-style API (`http://localhost:4000/v1`), used as is; requests go
    /// to `<URL>/chat/completions`. Its key is --chat-api-key: the Reka key
    /// is sent there only when the URL is on the Reka base URL's origin.
    #[arg(long, env = "REKA_CHAT_BASE_URL", value_name = "URL")]
    pub chat_base_url: Option<String>,

    /// The key of the --chat-base-url server. Never printed.
    #[arg(
        long,
        env = "REKA_CHAT_API_KEY",
        hide_env_values = true,
        value_name = "KEY",
        requires = "chat_base_url"
    )]
    pub chat_api_key: Option<String>,

    /// How the key is sent: `x-api-key` (`X-Api-Key: <key>`, Reka's
    /// default) or `bearer` (`Authorization: Bearer <key>`, what most
    /// OpenAI-compatible servers want; the default with --chat-base-url).
    #[arg(long, value_name = "x-api-key|bearer")]
    pub auth: Option<String>,

    /// Your message.
    pub message: String,
}

/// Asks and prints the answer.
pub async fn run(ctx: &mut Ctx, args: ChatArgs) -> Result<(), Failure> {
    let request = build_request(&args)?;
    let auth = match args.auth.as_deref().map(str::trim) {
        None => None,
        Some("x-api-key") => Some(AuthHeader::XApiKey),
        Some("bearer") => Some(AuthHeader::Bearer),
        Some(other) => {
            return Err(Failure::usage(format!(
                "--auth {other:?}: expected x-api-key or bearer"
            )));
        }
    };
    let chat = chat_client(ctx, &args, auth).await?;
    let out = ctx.out;
    if args.stream {
        let mut chunks = chat.create_stream(&request.include_usage()).await?;
        let mut all = ChatCollector::default();
        let mut wrote = false;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            if out.json {
                out.json_line(&chunk);
                continue;
            }
            let text = chunk.text();
            if !text.is_empty() {
                out.partial(&printable(&text));
                wrote = true;
            }
            all.push(&chunk);
        }
        if wrote {
            out.line("");
        }
        if !out.json
            && let Ok(whole) = all.finish()
        {
            print_tool_calls(ctx, &whole);
        }
        return Ok(());
    }
    let response = chat.create(&request).await?;
    if out.json {
        out.json_value(&response);
        return Ok(());
    }
    if let Some(text) = response.text() {
        out.line(printable(text));
    }
    print_tool_calls(ctx, &response);
    Ok(())
}

fn print_tool_calls(ctx: &Ctx, answer: &ChatCompletion) {
    for call in answer.tool_calls() {
        ctx.out.line(printable(&format!(
            "tool call {}: {}({})",
            call.id, call.name, call.raw_arguments
        )));
    }
}

/// The request the flags describe; nothing is sent when one is wrong.
fn build_request(args: &ChatArgs) -> Result<ChatRequest, Failure> {
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
    request = match args.image.as_slice() {
        [] => request.user(args.message.as_str()),
        images => {
            let mut parts = vec![openai::ChatCompletionRequestUserMessageContentPart::Text(
                args.message.as_str().into(),
            )];
            for image in images {
                parts.push(
                    openai::ChatCompletionRequestUserMessageContentPart::ImageUrl(
                        openai::ChatCompletionRequestMessageContentPartImage {
                            image_url: image_url(image)?.into(),
                            prompt_cache_breakpoint: None,
                        },
                    ),
                );
            }
            request.message(openai::ChatCompletionRequestUserMessage::from(
                openai::ChatCompletionRequestUserMessageContent::Array(parts),
            ))
        }
    };
    for tool in &args.tool {
        request = request.tool(parse_tool(tool)?);
    }
    if args.json_object {
        request = request.json_object();
    }
    if let Some(n) = args.max_tokens {
        request = request.max_tokens(n);
    }
    if let Some(t) = args.temperature {
        request = request.temperature(t);
    }
    Ok(request)
}

/// An image flag as what goes into `image_url.url`.
fn image_url(image: &str) -> Result<String, Failure> {
    let lower = image.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("data:") {
        return Ok(image.to_owned());
    }
    let media_type = match std::path::Path::new(image)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        _ => {
            return Err(Failure::usage(format!(
                "--image {image:?}: not a URL, and not a .png, .jpg, .gif or .webp file"
            )));
        }
    };
    let bytes =
        std::fs::read(image).map_err(|e| Failure::usage(format!("--image {image:?}: {e}")))?;
    Ok(image_data_uri(&bytes, media_type))
}

/// A `--tool` flag: OpenAI's tool object, or a bare function definition.
fn parse_tool(text: &str) -> Result<openai::ChatCompletionTools, Failure> {
    let bad = |why: String| Failure::usage(format!("--tool: {why}"));
    let value: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    if value.get("type").is_some() {
        return serde_json::from_value(value).map_err(|e| bad(format!("not a tool: {e}")));
    }
    let name = value
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| bad("a tool needs a \"name\"".into()))?;
    let description = value
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let parameters = value
        .get("parameters")
        .cloned()
        .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}}));
    Ok(function_tool(name, description, parameters))
}

/// The chat client: Reka's (the global client, or one with `--auth`), or
/// an OpenAI-compatible server's with `--chat-base-url`.
async fn chat_client(
    ctx: &mut Ctx,
    args: &ChatArgs,
    auth: Option<AuthHeader>,
) -> Result<Chat, Failure> {
    let Some(url) = args
        .chat_base_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    else {
        if let Some(style) = auth
            && !ctx.global.sim
        {
            // The global client, with the key in the header asked for.
            let reka = ctx.client().await?;
            let key = ctx.global.api_key.clone().unwrap_or_default();
            let client = Client::builder()
                .api_key(key.trim())
                .auth_header(style)
                .base_url(reka.base_url().as_str())
                .build()?;
            return Ok(client.chat());
        }
        return Ok(ctx.client().await?.chat());
    };
    let mut builder = Chat::builder(url).auth_header(auth.unwrap_or(AuthHeader::Bearer));
    let own_key = args
        .chat_api_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty());
    if let Some(key) = own_key {
        builder = builder.api_key(key);
    } else if !ctx.global.sim
        && let Some(key) = ctx
            .global
            .api_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
        && same_origin(url, ctx.global.base_url.as_deref())
    {
        // The chat URL is on Reka's own origin: the Reka key may go there.
        builder = builder.api_key(key);
    }
    Ok(builder.build()?)
}

/// Whether `url` is on the origin of the Reka base URL (`base`, or the
/// default).
fn same_origin(url: &str, base: Option<&str>) -> bool {
    let base = base
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .unwrap_or(reka_inference::DEFAULT_BASE_URL);
    let (Ok(chat), Ok(reka)) = (
        Chat::builder(url).allow_insecure_http(true).build(),
        Client::builder()
            .base_url(base)
            .allow_insecure_http(true)
            .build(),
    ) else {
        return false;
    };
    chat.url()
        .is_ok_and(|u| u.origin() == reka.base_url().origin())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reka_key_goes_only_to_rekas_origin() {
        assert!(same_origin(
            "https://vision-agent.api.reka.ai/v2/inference",
            None
        ));
        assert!(!same_origin("https://api.example.com/v1", None));
        assert!(same_origin(
            "http://127.0.0.1:9/v1",
            Some("http://127.0.0.1:9")
        ));
        assert!(!same_origin(
            "http://127.0.0.1:10/v1",
            Some("http://127.0.0.1:9")
        ));
    }

    #[test]
    fn tools_are_read_in_either_form() {
        let bare = parse_tool(r#"{"name": "f", "parameters": {"type": "object"}}"#).unwrap();
        let full = parse_tool(
            r#"{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}"#,
        )
        .unwrap();
        assert_eq!(bare, full);
        assert!(parse_tool(r#"{"description": "no name"}"#).is_err());
        assert!(parse_tool("nope").is_err());
    }
}
