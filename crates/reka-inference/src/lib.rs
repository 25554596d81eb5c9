//! Rust SDK for the Reka Vision Agent inference API: image, video, speech
//! and bounding-box generation jobs behind one queue, and an
//! OpenAI-compatible chat endpoint.
//!
//! # Quick start
//!
//! Submit, wait, download:
//!
//! ```no_run
//! use reka_inference::Client;
//! use serde_json::json;
//!
//! # async fn run() -> reka_inference::Result<()> {
//! let client = Client::from_env()?; // REKA_API_KEY, optional REKA_BASE_URL
//! let done = client.run("nano-banana/text-to-image", json!({"prompt": "a lighthouse at dusk"})).await?;
//! for path in client.download_outputs(&done, "out").await? {
//!     println!("saved {}", path.display());
//! }
//! # Ok(()) }
//! ```
//!
//! # Common tasks
//!
//! Many jobs at once, through a few list requests:
//!
//! ```no_run
//! # async fn run(client: reka_inference::Client) -> reka_inference::Result<()> {
//! use futures::StreamExt;
//!
//! let mut set = client.job_set();
//! for prompt in ["a fox", "a heron", "an owl"] {
//!     set.push(client.submit("nano-banana/text-to-image", serde_json::json!({"prompt": prompt})).await?);
//! }
//! let mut finished = set.into_stream();
//! while let Some(outcome) = finished.next().await {
//!     println!("{}: {:?}", outcome.job.id(), outcome.result.map(|done| done.output));
//! }
//! # Ok(()) }
//! ```
//!
//! Chat, streamed:
//!
//! ```no_run
//! # async fn run(client: reka_inference::Client) -> reka_inference::Result<()> {
//! use futures::StreamExt;
//! use reka_inference::chat::ChatRequest;
//!
//! let mut chunks = client.chat().create_stream(&ChatRequest::new("qwen3-vl-32b").user("Hi")).await?;
//! while let Some(chunk) = chunks.next().await {
//!     print!("{}", chunk?.text());
//! }
//! # Ok(()) }
//! ```
//!
//! Attach to a job submitted elsewhere (another process, before a restart),
//! and cancel one:
//!
//! ```no_run
//! # async fn run(client: reka_inference::Client) -> reka_inference::Result<()> {
//! let job = client.job_for("veo-3.1/text-to-video", "0193f6a2-7c1e-7d2b-9f3a-1b2c3d4e5f60")?;
//! match job.output::<serde_json::Value>().await? {
//!     Some(output) => println!("finished: {output}"),
//!     None => {
//!         job.cancel().await?;
//!     }
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
//!   through the list endpoint, 100 per request, in one task, with the same
//!   state machine as a lone wait, and takes new jobs while it is read.
//! - **Bulk work that survives a crash.** A [`batch::Batch`] submits
//!   thousands of items at the pace the service allows, follows them, saves
//!   their files and reports each once; killed at any point and run again,
//!   it makes no second job.
//! - **Bounded in time and memory.** Every call of a wait ends by its
//!   deadline; every buffered answer is capped
//!   ([`ClientBuilder::max_body_bytes`]); streams end when idle, not when
//!   long; no value from a server or a caller can make it panic.
//! - **Retries that are safe.** GETs and cancel retry on transport errors and
//!   408/502/503/504 with jittered backoff; a 429's `Retry-After` is honoured
//!   only when it fits ([`RetryPolicy`]).
//! - **The key stays home.** It is redacted from every `Debug` and error and
//!   sent only to the base URL's origin, never to a URL from a response or a
//!   redirect elsewhere (redirects are followed by the client, hop by hop);
//!   plain `http` is refused except on loopback.
//! - **One error type.** [`Error`] keeps what the server said, raw body
//!   included, in either of the API's two error shapes.
//!
//! # Map of the crate
//!
//! | items | for |
//! |---|---|
//! | [`Client`], [`ClientBuilder`], [`SubmitOptions`], [`AuthHeader`], [`HttpHook`] | configuration, submit, attach, models, downloads; your own code on every HTTP request |
//! | [`Endpoint`], [`IntoEndpoint`] | `<model>/<capability>` ids, the documented ones as constants; plain strings work too |
//! | [`Job`], [`JobStatus`], [`JobEvent`], [`JobEvents`], [`WaitOptions`], [`JobOutput`] | one job: status, result, output, cancel, wait, events |
//! | [`JobSet`], [`JobSetOptions`], [`JobOutcomes`], [`JobOutcome`], [`JobSender`], [`JobSetCounts`] | many jobs waited for together, more joining while it is read |
//! | [`Jobs`], [`ListFilter`], [`JobList`] | listing jobs, pages followed for you |
//! | [`PollPolicy`], [`DurationEstimate`], [`RetryPolicy`], [`RateLimit`] | when to poll, when to retry, what the service said of its limits |
//! | [`MediaRef`], [`Progress`], [`find_media`] | the files an output points at, and downloads of them |
//! | [`InputFile`], [`input`] | a local file (a photo, a clip) as an input value the service takes |
//! | [`Error`], [`ApiError`], [`Result`] | everything that can go wrong |
//! | [`batch`] | bulk work from a stream of items: crash-safe, exactly once, within a budget, paced by the service's rate limits ([`batch::Submitter`]) |
//! | [`webhook`] | waits that end at a webhook delivery ([`webhook::Deliveries`]; `WebhookReceiver` with feature `webhooks`) |
//! | [`chat`] | OpenAI-compatible chat with OpenAI's types ([`chat::openai`]), whole or streamed, with Reka or any compatible server |
//! | [`types`] | the API's request and response types (generated) |
//!
//! Every example in `examples/` runs against the local simulator
//! (`reka-inference-sim`), which needs no key. `ARCHITECTURE.md` at the
//! repository's root says how the crate is built, floor by floor.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The floors, bottom up: vocabulary, plumbing, engines, façade. Each
// module imports only from floors below it.
mod endpoint;
mod error;
mod media;
mod vocab;

mod builder;
mod http;
mod rate_limit;
mod retry;
mod transport;

mod download;
mod job;
mod job_set;
mod jobs;
mod models;
mod poll;
mod submit;
mod submitter;
mod tracker;

pub mod batch;
pub mod chat;
pub mod input;
pub mod webhook;

mod client;

pub use builder::{ClientBuilder, DEFAULT_BASE_URL, DEFAULT_MAX_BODY_BYTES, DEFAULT_WAIT_TIMEOUT};
pub use client::Client;
pub use endpoint::{Endpoint, IntoEndpoint};
pub use error::{ApiError, Error, Result};
pub use input::InputFile;
pub use job::{Job, JobEvents, WaitOptions};
pub use job_set::{JobOutcome, JobOutcomes, JobSender, JobSet, JobSetCounts, JobSetOptions};
pub use jobs::{JobList, Jobs, ListFilter};
pub use media::{MediaRef, Progress, find_media};
pub use poll::{DurationEstimate, PollPolicy};
pub use rate_limit::RateLimit;
pub use retry::RetryPolicy;
pub use submit::SubmitOptions;
pub use transport::{AuthHeader, HttpHook};
pub use vocab::{JobEvent, JobOutput};

/// The date and time types the API's times use (`chrono::DateTime<Utc>`),
/// so that no other crate is needed to name them.
pub use chrono;
/// The lifecycle status of a job (`IN_QUEUE`, `IN_PROGRESS`, `COMPLETED`,
/// `FAILED`, `CANCELLED`), forward compatible: a status this version does
/// not know is kept, never an error. The API calls it `RequestStatus`.
pub use reka_inference_api::RequestStatus as JobStatus;
/// The API's request and response types, generated from the OpenAPI document.
pub use reka_inference_api::types;

/// The README's examples, compiled as doctests so that they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
