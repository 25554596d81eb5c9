//! `mcp`: the API's jobs as tools for AI agents, over MCP: stdio (what
//! desktop hosts launch) or Streamable HTTP at `/mcp` (`--http ADDR`).
//! The server itself is `reka-inference-mcp`; this command builds its
//! options from flags, the client as every command does (`--sim`
//! included), and serves until stdin closes or Ctrl-C.
//!
//! On stdio, stdout carries the protocol only: every note goes to stderr.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use reka_inference_mcp::{Server, ServerOptions};

use crate::commands::Ctx;
use crate::exit::{ExitClass, Failure};
use crate::interrupt::Interrupt;

/// `mcp`.
#[derive(Debug, Args)]
#[command(after_help = MCP_HELP)]
pub struct McpArgs {
    /// Serve Streamable HTTP at http://ADDR/mcp instead of stdio, e.g.
    /// 127.0.0.1:8765. An address other than loopback needs --auth-token.
    #[cfg(feature = "mcp-http")]
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,

    /// With --http: require `Authorization: Bearer TOKEN` on every request
    /// (at least 16 characters). Never printed.
    #[cfg(feature = "mcp-http")]
    #[arg(
        long,
        env = "REKA_MCP_AUTH_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        requires = "http"
    )]
    pub auth_token: Option<String>,

    /// With --http: also accept requests from this browser origin, e.g.
    /// https://app.example.com (repeatable). Other origins are refused.
    #[cfg(feature = "mcp-http")]
    #[arg(long, value_name = "ORIGIN", requires = "http")]
    pub allow_origin: Vec<String>,

    /// With --http: also accept this Host header (repeatable); loopback
    /// names always are.
    #[cfg(feature = "mcp-http")]
    #[arg(long, value_name = "HOST", requires = "http")]
    pub allow_host: Vec<String>,

    /// Where the jobs' output files are saved (created when needed).
    #[arg(long, value_name = "DIR", default_value = "reka-outputs")]
    pub output_dir: PathBuf,

    /// Images and audio up to this many bytes are also returned inline
    /// (MCP image/audio content); 0 turns that off.
    #[arg(long, value_name = "BYTES", default_value_t = reka_inference_mcp::DEFAULT_INLINE_MAX_BYTES)]
    pub inline_max_bytes: u64,

    /// Inputs may name local files under this directory (repeatable):
    /// "image_url": "/path/photo.png" or a file:// URI. Without it no local
    /// file is read.
    #[arg(long, value_name = "DIR")]
    pub allow_dir: Vec<PathBuf>,

    /// The largest local file sent, and the largest total of one input's
    /// files, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = reka_inference::input::DEFAULT_MAX_INLINE_BYTES)]
    pub max_input_file_bytes: u64,

    /// Refuse a job that would bring the session's spend (reported prices
    /// plus estimates of the jobs in flight) past this many US dollars.
    #[arg(long, value_name = "USD")]
    pub budget_usd: Option<f64>,

    /// The price to assume for a job until the service reports one.
    #[arg(long, value_name = "USD", requires = "budget_usd")]
    pub estimate_usd: Option<f64>,

    /// When the host cancels a waiting call, cancel the job too (by
    /// default the job keeps running).
    #[arg(long)]
    pub cancel_on_abort: bool,

    /// How long generate and wait_for_job wait when the agent does not say.
    #[arg(long, value_name = "SECONDS", default_value_t = 45)]
    pub wait_seconds: u64,

    /// The longest wait an agent may ask for.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub max_wait_seconds: u64,

    /// Tool calls served at once; more are refused with a tool error.
    #[arg(long, value_name = "N", default_value_t = reka_inference_mcp::DEFAULT_MAX_CONCURRENT_CALLS)]
    pub max_calls: usize,

    /// Jobs of this server in flight at once.
    #[arg(long, value_name = "N", default_value_t = reka_inference_mcp::DEFAULT_MAX_JOBS_IN_FLIGHT)]
    pub max_jobs: usize,

    /// The largest JSON-RPC message read, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = reka_inference_mcp::DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,
}

const MCP_HELP: &str = "\
Tools: list_models, generate, submit_job, wait_for_job, job_status, job_result,
cancel_job, list_jobs. generate and submit_job create paid jobs.

Claude Desktop (claude_desktop_config.json), Cursor (.cursor/mcp.json):
  {\"mcpServers\": {\"reka\": {\"command\": \"reka-inference\", \"args\": [\"mcp\"],
                            \"env\": {\"REKA_API_KEY\": \"...\"}}}}
Claude Code:
  claude mcp add reka --env REKA_API_KEY=... -- reka-inference mcp
Without a key, on the simulator: args [\"--sim\", \"mcp\"].";

/// Serves MCP until stdin closes (stdio) or Ctrl-C.
pub async fn run(ctx: &mut Ctx, args: McpArgs) -> Result<(), Failure> {
    let mut options = ServerOptions::default()
        .output_dir(&args.output_dir)
        .inline_max_bytes(args.inline_max_bytes)
        .max_input_file_bytes(args.max_input_file_bytes)
        .cancel_on_abort(args.cancel_on_abort)
        .default_wait(Duration::from_secs(args.wait_seconds))
        .max_wait(Duration::from_secs(args.max_wait_seconds))
        .max_concurrent_calls(args.max_calls)
        .max_jobs_in_flight(args.max_jobs)
        .max_message_bytes(args.max_message_bytes);
    for dir in &args.allow_dir {
        options = options.allow_dir(dir);
    }
    if let Some(usd) = args.budget_usd {
        options = options.budget_usd(usd);
    }
    if let Some(usd) = args.estimate_usd {
        options = options.estimate_usd(usd);
    }
    if let Some(key) = &ctx.global.api_key {
        options = options.redact(key.clone());
    }
    #[cfg(feature = "mcp-http")]
    if let Some(token) = &args.auth_token {
        options = options.redact(token.clone());
    }
    // Checked before the client: a bad flag sends nothing.
    #[cfg(feature = "mcp-http")]
    let http = args.http.as_deref().map(parse_addr).transpose()?;
    let client = ctx.client().await?;
    let server =
        Server::with_options(client, options).map_err(|e| Failure::usage(format!("mcp: {e}")))?;
    let out = ctx.out;
    out.note(&format!(
        "reka-inference mcp: output files go to {}",
        server.output_dir().display()
    ));
    if server.allowed_dirs().is_empty() {
        out.note("reka-inference mcp: no local file is read (--allow-dir DIR allows some)");
    } else {
        let dirs: Vec<String> = server
            .allowed_dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        out.note(&format!(
            "reka-inference mcp: local files are read only under {}",
            dirs.join(", ")
        ));
    }
    if let Some(usd) = args.budget_usd {
        out.note(&format!("reka-inference mcp: session budget ${usd:.2}"));
    }
    let mut interrupt = Interrupt::install()
        .map_err(|e| Failure::new(ExitClass::Other, format!("mcp: Ctrl-C handler: {e}")))?;

    #[cfg(feature = "mcp-http")]
    if let Some(addr) = http {
        let mut http_options = reka_inference_mcp::HttpOptions::new(addr);
        if let Some(token) = args.auth_token {
            http_options = http_options.auth_token(token);
        }
        for origin in args.allow_origin {
            http_options = http_options.allow_origin(origin);
        }
        for host in args.allow_host {
            http_options = http_options.allow_host(host);
        }
        let running = reka_inference_mcp::serve_http(server, http_options)
            .await
            .map_err(|e| match e {
                reka_inference_mcp::ServeError::Config(m) => Failure::usage(format!("mcp: {m}")),
                other => Failure::new(ExitClass::Other, format!("mcp: {other}")),
            })?;
        out.note(&format!(
            "reka-inference mcp: serving Streamable HTTP at {} (Ctrl-C stops)",
            running.url()
        ));
        let stop = running.stop_token();
        tokio::select! {
            () = interrupt.recv() => stop.cancel(),
            () = stop.cancelled() => {}
        }
        return running
            .wait()
            .await
            .map_err(|e| Failure::new(ExitClass::Other, format!("mcp: {e}")));
    }

    out.note("reka-inference mcp: serving MCP on stdin/stdout");
    tokio::select! {
        served = server.serve_stdio() => served
            .map_err(|e| Failure::new(ExitClass::Other, format!("mcp: {e}"))),
        () = interrupt.recv() => Ok(()),
    }
}

/// `ADDR` of `--http`: `IP:PORT`, `localhost:PORT`, or `:PORT` (loopback).
#[cfg(feature = "mcp-http")]
fn parse_addr(text: &str) -> Result<std::net::SocketAddr, Failure> {
    use std::net::SocketAddr;
    let text = text.trim();
    let bad = |why: &str| {
        Failure::usage(format!(
            "--http {text:?}: {why}; expected IP:PORT, such as 127.0.0.1:8765"
        ))
    };
    if let Some(port) = text.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| bad("not a port"))?;
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    // A name: only `localhost` is taken (as 127.0.0.1), so that the
    // address bound is never a surprise of name resolution.
    match text.rsplit_once(':') {
        Some((host, port)) if host.eq_ignore_ascii_case("localhost") => {
            let port: u16 = port.parse().map_err(|_| bad("not a port"))?;
            Ok(SocketAddr::from(([127, 0, 0, 1], port)))
        }
        _ => Err(bad("not an address")),
    }
}

#[cfg(all(test, feature = "mcp-http"))]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked() {
        use std::net::SocketAddr;
        assert_eq!(
            parse_addr("127.0.0.1:8765").unwrap(),
            "127.0.0.1:8765".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(parse_addr(":9").unwrap(), "127.0.0.1:9".parse().unwrap());
        assert_eq!(
            parse_addr("localhost:80").unwrap(),
            "127.0.0.1:80".parse().unwrap()
        );
        assert_eq!(parse_addr("[::1]:1").unwrap(), "[::1]:1".parse().unwrap());
        for bad in ["example.com:80", "8765", "127.0.0.1", "localhost:x", ""] {
            let e = parse_addr(bad).unwrap_err();
            assert_eq!(e.class, ExitClass::Usage, "{bad}");
        }
    }
}
