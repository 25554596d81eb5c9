//! Low-level client for the Reka Vision Agent inference API.
//!
//! Most users want the `reka-inference` crate, which builds on this one.
//!
//! # How this crate is made
//!
//! `generated.rs` is written by `cargo xtask generate`: it normalises the
//! vendored OpenAPI document (`openapi/reka-inference.json`, upstream 3.1
//! form) to OpenAPI 3.0.3, runs progenitor (Builder interface) and formats
//! the result. It is never edited by hand; `cargo xtask generate --check`
//! and `cargo test` fail when it is stale. This file and the two modules
//! beside it are the only hand-written code:
//!
//! - [`RequestStatus`] replaces the spec's status enum with a
//!   forward-compatible type (an unknown value never fails a call).
//! - [`Hooks`] is the generated client's inner value: every request goes
//!   through its [`Transport`], which is where the ergonomic crate adds
//!   authentication, retries, deadlines and limits.
//!
//! Beside the client, the generator writes [`operations`]: every operation's
//! id, method and path template as data, and the API's root path.
//!
//! ```
//! use reka_inference_api::{Client, Hooks};
//!
//! # async fn run() -> Result<(), reka_inference_api::Error<reka_inference_api::types::ErrorResponse>> {
//! let client = Client::new("http://127.0.0.1:8787", Hooks::default());
//! let status = client
//!     .get_status()
//!     .request_id("req_123")
//!     .with_logs(true)
//!     .send()
//!     .await?;
//! println!("{}", status.status);
//! # Ok(()) }
//! ```

mod generated;
mod hooks;
mod status;

pub use generated::*;
pub use hooks::{BoxFuture, Hooks, Transport, TransportFailure};
pub use status::RequestStatus;
