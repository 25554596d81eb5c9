//! Rust SDK for the Reka Vision Agent inference API: image, video, speech
//! and bounding-box generation jobs behind one queue, and an
//! OpenAI-compatible chat endpoint.
//!
//! # Quick start
//!
//! ```no_run
//! use reka_inference::{Client, Endpoint};
//! use serde_json::json;
//!
//! # async fn run() -> reka_inference::Result<()> {
//! let client = Client::from_env()?; // REKA_API_KEY, optional REKA_BASE_URL
//! let job = client
//!     .submit(Endpoint::NANO_BANANA_TEXT_TO_IMAGE, json!({"prompt": "a lighthouse at dusk"}))
//!     .await?;
//! let done = job.wait().await?;
//! for path in client.download_outputs(&done, "out", |_, _, _| {}).await? {
//!     println!("saved {}", path.display());
//! }
//! # Ok(()) }
//! ```
//!
//! # What it does for you
//!
//! - **Never a duplicate job.** Every submit carries an `Idempotency-Key`,
//!   reused on each retry, so a response lost on the way back replays the
//!   original job instead of paying for a second one.
//! - **Polling that learns.** [`Job::wait`] starts fast, backs off, follows
//!   the queue position, and learns per endpoint how long jobs take, to poll
//!   sparsely early and densely around the expected finish ([`PollPolicy`]).
//!   Waits have a deadline ([`DEFAULT_WAIT_TIMEOUT`]) and never loop forever
//!   on a status they do not know.
//! - **Many jobs, few requests.** A [`JobSet`] follows thousands of jobs
//!   through the list endpoint, 100 per request, in one task.
//! - **Retries that are safe.** GETs and cancel retry on transport errors and
//!   408/502/503/504 with jittered backoff; a 429's `Retry-After` is honoured
//!   only when it fits ([`RetryPolicy`]).
//! - **The key stays home.** It is redacted from every `Debug` and error and
//!   sent only to the base URL's origin, never to a URL from a response or a
//!   redirect elsewhere; plain `http` is refused except on loopback.
//! - **One error type.** [`Error`] keeps what the server said, raw body
//!   included, in either of the API's two error shapes.
//!
//! # Map of the crate
//!
//! | module | for |
//! |---|---|
//! | [`Client`], [`ClientBuilder`] | configuration, submit, attach, models |
//! | [`Endpoint`] | `<model>/<capability>` ids, the documented ones as constants |
//! | [`Job`], [`JobEvent`], [`WaitOptions`] | one request: status, result, cancel, wait, events |
//! | [`JobSet`] | many requests waited for together |
//! | [`PollPolicy`] | when to poll |
//! | [`RetryPolicy`] | when to retry |
//! | [`Requests`], [`ListFilter`] | listing requests, pages followed for you |
//! | [`Chat`], [`ChatRequest`] | OpenAI-compatible chat, whole or streamed |
//! | [`find_media`], [`Client::download_to_file`] | output files |
//! | [`Error`], [`ApiError`] | everything that can go wrong |
//! | [`types`] | the API's request and response types (generated) |
//!
//! Every example in `examples/` runs against the local simulator
//! (`reka-inference-sim`), which needs no key.

#![warn(missing_docs)]

mod chat;
mod client;
mod endpoint;
mod error;
mod http;
mod job;
mod job_set;
mod output;
mod poll;
mod requests;
mod retry;
mod tracker;
mod transport;

pub use chat::{Chat, ChatRequest};
pub use client::{
    Client, ClientBuilder, DEFAULT_BASE_URL, DEFAULT_MAX_BODY_BYTES, DEFAULT_WAIT_TIMEOUT,
    SubmitOptions,
};
pub use endpoint::Endpoint;
pub use error::{ApiError, Error, Result};
pub use job::{Completion, Job, JobEvent, WaitOptions};
pub use job_set::{JobOutcome, JobSet, JobSetOptions};
pub use output::{MediaRef, Progress, find_media};
pub use poll::{DurationEstimate, PollPolicy};
pub use requests::{ListFilter, MAX_PAGE_SIZE, Requests};
pub use retry::{RetryPolicy, parse_retry_after};
pub use transport::AuthHeader;

pub use reka_inference_api::RequestStatus;
/// The API's request and response types, generated from the OpenAPI document.
pub use reka_inference_api::types;
