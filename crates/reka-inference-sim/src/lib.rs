//! A faithful local simulator of the Reka Vision Agent inference API.
//!
//! Start one in-process with [`start`] and point a client at
//! [`RunningSim::base_url`]; or run the `reka-inference-sim` binary. The
//! crate README documents the catalog format, the fault grammar, the admin
//! API and every decision taken where the API reference is silent.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use reka_inference_sim::{SimConfig, start};
//! let sim = start(SimConfig::new().time_scale(0.01).seed(7)).await?;
//! println!("listening on {}", sim.base_url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Table of contents:
//!
//! | module | what it holds |
//! |---|---|
//! | [`config`] | [`SimConfig`], [`DEV_API_KEY`] |
//! | `dialect` | [`Dialect`]: the variants of the service (`reka`, `infer`, `fal`), in one place |
//! | [`catalog`] | [`Catalog`]: endpoints, worker counts, duration distributions |
//! | [`faults`] | [`FaultConfig`] and the `--faults` SPEC grammar |
//! | [`stats`] | [`Stats`], the body of `GET /_sim/stats` |
//! | [`jobs`] | the lazy queue model and [`Status`] |
//! | `server` | [`start`], [`RunningSim`]: the accept loop and shutdown |
//! | `http` | routes, middleware (auth, rate limits, faults, envelope), handlers |
//! | `records` | how a job is rendered: status, result record, list item, logs |
//! | `outputs`, `media` | output JSON and the PNG / WAV / GIF files it points at |
//! | `inputs`, `images` | input schemas per endpoint (422), `image_url` checks and facts |
//! | [`samples`] | small valid images for tests (`png_data_uri`) |
//! | `scheduler`, `webhook` | the background task and webhook delivery |
//! | `state`, `clock`, `rng`, `ratelimit` | shared state, time, seeded randomness, quotas and the submit token bucket |

pub mod catalog;
mod clock;
pub mod config;
mod connections;
mod dialect;
pub mod faults;
mod http;
mod images;
mod inputs;
pub mod jobs;
mod media;
mod outputs;
mod ratelimit;
mod records;
mod rng;
pub mod samples;
mod scheduler;
mod server;
mod state;
pub mod stats;
mod webhook;

pub use catalog::{Catalog, DurationDist, ModelSpec, OutputKind};
pub use config::{ConnectionLimits, DEFAULT_MAX_BODY_BYTES, DEV_API_KEY, SimConfig};
pub use dialect::Dialect;
pub use faults::{FaultConfig, FaultSet, FaultSpecError};
pub use inputs::IMAGE_URL_FORMAT;
pub use jobs::Status;
pub use server::{NotManualClock, RunningSim, start};
pub use stats::Stats;
