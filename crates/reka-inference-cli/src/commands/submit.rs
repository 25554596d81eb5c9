//! `submit`: send a job and print its id, without waiting.

use clap::Args;
use reka_inference::SubmitOptions;
use serde_json::json;

use crate::commands::{Ctx, parse_endpoint};
use crate::exit::Failure;
use crate::input;
use crate::input::InputArgs;

/// `submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The endpoint, MODEL/CAPABILITY, e.g. nano-banana/text-to-image
    /// (`reka-inference models` lists them).
    pub endpoint: String,

    #[command(flatten)]
    pub input: InputArgs,

    /// A URL the service calls with the job's record when it finishes.
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,

    /// Your own idempotency key: submitting again with the same key and
    /// input returns the first job instead of creating a second one.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
}

/// Submits and prints the request id.
pub async fn run(ctx: &mut Ctx, args: SubmitArgs) -> Result<(), Failure> {
    let endpoint = parse_endpoint("endpoint", &args.endpoint)?;
    let input = input::build(&args.input, std::io::stdin().lock())?;
    let options = submit_options(args.webhook, args.idempotency_key)?;
    let client = ctx.client().await?;
    let job = client.submit_with(&endpoint, input, options).await?;
    let out = ctx.out;
    if out.json {
        out.json_value(&json!({
            "request_id": job.id(),
            "endpoint": endpoint.as_str(),
        }));
    } else {
        out.line(format!("submitted {} ({})", job.id(), endpoint));
        if !ctx.is_sim() {
            out.note(&format!(
                "follow it with: reka-inference wait {}  (or status, result, cancel)",
                job.id()
            ));
        }
    }
    Ok(())
}

/// The submit options, checked.
pub fn submit_options(
    webhook: Option<String>,
    idempotency_key: Option<String>,
) -> Result<SubmitOptions, Failure> {
    let mut options = SubmitOptions::default();
    if let Some(url) = webhook {
        let ok = url.starts_with("https://") || url.starts_with("http://");
        if !ok || url.chars().any(char::is_whitespace) {
            return Err(Failure::usage(format!(
                "--webhook {url:?}: not an http(s) URL"
            )));
        }
        options = options.webhook_url(url);
    }
    if let Some(key) = idempotency_key {
        if key.is_empty() || key.len() > 255 || !key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(Failure::usage(format!(
                "--idempotency-key {key:?}: use 1 to 255 visible ASCII characters"
            )));
        }
        options = options.idempotency_key(key);
    }
    Ok(options)
}
