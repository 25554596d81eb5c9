//! An MCP (Model Context Protocol) server for the Reka Vision Agent
//! inference API: image, video, speech and bounding-box jobs as tools any
//! agent can use, built on the official Rust MCP SDK (`rmcp`).
//!
//! It is made for the places where such servers usually fail:
//!
//! - **Host time limits.** `generate` waits at most `wait_seconds`
//!   (default 45, below the ~60 s after which hosts cut a call); a job not
//!   done by then keeps running and the answer names it, so that
//!   `wait_for_job` finishes it. The job is never lost, and never paid twice.
//! - **Progress.** While a call with a progress token waits, a progress
//!   notification goes out on every change (status, place in the queue,
//!   each new log line) and at least every 5 s, so hosts that reset their
//!   timeout on progress keep waiting.
//! - **Files.** Outputs are saved under an output directory with absolute
//!   paths in the result, linked as `resource_link`s, and small images and
//!   audio are also returned as MCP `image` / `audio` content.
//! - **Money.** Tools that create jobs say so; a session budget refuses a
//!   submit that would pass it (reported prices plus estimates of the jobs
//!   in flight), naming the spend; every submit carries an idempotency key
//!   derived from the call, so a host retrying the same call pays once.
//! - **Safety.** Local files are read only under allowed directories;
//!   messages, concurrent calls and jobs in flight are bounded; a
//!   malformed message gets a JSON-RPC error and the server goes on; the
//!   HTTP transport checks `Origin` and, off loopback, a bearer token; the
//!   API key never appears in a result.
//!
//! # Embedding
//!
//! ```no_run
//! use reka_inference::Client;
//! use reka_inference_mcp::{Server, ServerOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::from_env()?; // REKA_API_KEY
//! let options = ServerOptions::default()
//!     .output_dir("/home/me/reka-outputs")
//!     .allow_dir("/home/me/Pictures")
//!     .budget_usd(5.0);
//! Server::with_options(client, options)?.serve_stdio().await?;
//! # Ok(()) }
//! ```
//!
//! Over Streamable HTTP (feature `http`, on by default), see [`serve_http`].
//! A [`Server`] is an [`rmcp::ServerHandler`], so any rmcp transport works.
//!
//! # Tools
//!
//! | tool | does | costs |
//! |---|---|---|
//! | `list_models` | the endpoints, with the input fields they take | free |
//! | `generate` | submit, wait up to `wait_seconds`, result or "call wait_for_job" | a job |
//! | `submit_job` | submit, answer at once with the request id | a job |
//! | `wait_for_job` | wait for a job up to `wait_seconds`, like `generate` | free |
//! | `job_status` | status, place in the queue, logs | free |
//! | `job_result` | the result now (files saved), or the status | free |
//! | `cancel_job` | cancel a queued or running job | free |
//! | `list_jobs` | recent jobs by endpoint and status | free |
//!
//! When the client declares MCP's tasks extension, `generate` and
//! `wait_for_job` answer with a task instead: `tasks/get` follows the job
//! and `tasks/cancel` cancels it.

#![warn(missing_docs)]

mod endpoints;
#[cfg(feature = "http")]
mod http;
mod idempotency;
mod ledger;
mod local_files;
mod options;
mod report;
mod server;
mod stdio;
mod tools;
mod wait;

#[cfg(feature = "http")]
pub use http::{HttpOptions, HttpServer, MIN_TOKEN_LEN, serve_http};
pub use options::{
    DEFAULT_INLINE_MAX_BYTES, DEFAULT_MAX_CONCURRENT_CALLS, DEFAULT_MAX_JOBS_IN_FLIGHT,
    DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_WAIT, DEFAULT_PROGRESS_INTERVAL, DEFAULT_TASK_TTL,
    DEFAULT_WAIT, OptionsError, ServerOptions,
};
pub use server::Server;

/// Why serving stopped or could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The MCP session could not start (the client's first message was not
    /// an initialisation, the transport closed at once).
    #[error("the MCP session could not start: {0}")]
    Start(String),
    /// The session ended with an error.
    #[error("the MCP session stopped: {0}")]
    Stopped(String),
    /// The settings cannot be served (a non-loopback address without a
    /// token, say).
    #[error("{0}")]
    Config(String),
    /// Binding or serving failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}
