//! A faithful local simulator of the Reka Vision Agent inference API.
//!
//! Start one in-process with [`start`] and point a client at
//! [`RunningSim::base_url`]; or run the `reka-inference-sim` binary. The
//! crate README has the full tables (catalog format, fault grammar, admin
//! API, every decision taken where the API reference is silent); this page
//! states the rules, so that what the simulator answers can be predicted.
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
//! # Behaviour
//!
//! **Jobs.** Each catalog endpoint (`<model_id>/<capability>`, see
//! [`Catalog`]) is one FIFO queue with `workers` slots. A job's run time is
//! drawn from the endpoint's duration distribution at submit (simulated
//! seconds, times [`SimConfig::time_scale`]); it is `IN_QUEUE` until a slot
//! frees, `IN_PROGRESS` while it runs (logs at 25, 50 and 75 %), then
//! `COMPLETED` with an output, or `FAILED` with the endpoint's
//! `failure_rate` (or [`SimConfig::failure_rate`]), decided at submit from
//! the seed. Cancelling a queued or running job makes it `CANCELLED` at once
//! (`fal`: a running one 3 simulated seconds later) and frees its slot; a
//! finished job is returned unchanged. Another key's request id answers 404
//! like an unknown one.
//!
//! **Inputs.** An endpoint with an `input_schema` (every default one)
//! refuses an input that does not match it with `422` and FastAPI's body
//! `{"detail": [{"loc": ["body", "input", field], "msg", "type"}]}`, one
//! entry per problem, in every dialect; undeclared fields pass. Required:
//! `prompt` for text-to-image and text-to-video, `image_url` for
//! image-to-video and image-to-bbox, both for edit, `text` for
//! text-to-speech (INFERRED; the README says why). `image_url` is an
//! `http(s)` URL (never fetched) or a `data:image/<type>;base64,<data>` URI
//! whose bytes are a PNG, JPEG, GIF or WebP ([`IMAGE_URL_FORMAT`];
//! [`samples::png_data_uri`] makes one). A body over
//! [`SimConfig::max_body_bytes`] (32 MiB) is `413`. Other bad bodies: `400`
//! with the error envelope (`422` with FastAPI's body in the `infer`
//! dialect).
//!
//! **Outputs and prices.** Outputs are illustrative and deterministic: an
//! image (`images[].url`, a PNG), a video (an animated GIF), speech (a WAV)
//! or bounding boxes, derived from the prompt (or text) and the input
//! image's SHA-256. A job with an `image_url` records `output.input_image`
//! (media type, size, SHA-256, dimensions; `{"source": "url"}` for a URL),
//! and an edit's image has the input's dimensions. Every dialect puts the
//! catalog's price in `output.usage.price_usd` and the model list's
//! `price_usd`; [`SimConfig::prices`]`(false)` reports none.
//!
//! **Dialects** ([`Dialect`]): `reka` (default) answers the full submit
//! body, `{"items": [...]}` models, 400 envelopes, files with extensions;
//! `infer` a lean `{"request_id"}`, `{"models": [...]}`, FastAPI 422s,
//! extensionless presigned-style URLs and `error.code`; `fal` 202 from
//! status and result until done, half of its failures as `COMPLETED` with
//! an `error` and no output, asynchronous cancel of running jobs, and
//! webhooks in fal's `{"status": "OK"|"ERROR", "payload", ...}` envelope.
//!
//! **Chat** (`POST /v2/inference/chat/completions`): models from the
//! catalog's `chat_models` only (else `400`, `param: "model"`). The answer
//! is deterministic: `[<model>] You said: "<first 200 characters of the last
//! user message>". <one of four fixed phrases, chosen by a hash of the
//! message>`, plus ` (I was shown N image(s).)` for image parts. **Tool
//! calls**: with `tools` offered and `tool_choice` not `"none"`, the answer is
//! a call (`finish_reason: "tool_calls"`, `content: null`) when
//! `tool_choice` is `"required"` (the first tool) or names a function (that
//! one), or, with `tool_choice` absent or `"auto"`, when the last user
//! message names a tool (case-insensitive; that tool) or contains the word
//! "tool" (the first tool); its arguments give every property of the tool's
//! parameter schema a value: strings the message's last capitalised word
//! (`"example"` without one), numbers and integers `1`, booleans `true`,
//! arrays `[]`, objects `{}`. When the last message is a tool result
//! (`role: "tool"`), the answer is text, `[<model>] The tool answered:
//! <its first 200 characters>`. `n` (1 to 8) repeats the choice;
//! `max_tokens`/`max_completion_tokens` cut the text at that many words
//! (`finish_reason: "length"`); `response_format` `json_object` or
//! `json_schema` wraps it as `{"answer": text}`; `stream: true` sends it as
//! `text/event-stream` chunks (word by word; tool-call arguments 8
//! characters at a time) ending `data: [DONE]`, with a last usage chunk
//! when `stream_options.include_usage`. `usage` counts words. Other OpenAI
//! fields are accepted and ignored.
//!
//! **Faults** ([`FaultConfig`], `--faults`, `PUT /_sim/faults`): per API
//! operation (or `*`), rates of `500`/`502`/`503`/`429` answers, dropped
//! connections, `malformed` (half a body) and `lost` submits (job created,
//! answer never sent), plus latency; a `webhook` scope (lost, duplicate,
//! delay, reorder, spoof) and a `files` scope (latency, drip, 5xx, drop,
//! `410` expired) that `*` never reaches. Each decision is a hash of the
//! seed and a counter, so a sequential client meets the same faults on
//! every run with the same seed. Faults act before authentication and rate
//! limits.
//!
//! **Rate limits.** [`SimConfig::rate_limit`]: a per-key quota of requests
//! per 24 simulated hours (`429` with `retry-after`, `x-ratelimit-*` headers
//! on every answer). [`SimConfig::submit_rate_limit`]: a per-key token
//! bucket on submits only, on clock time (not scaled); every key has its
//! own; the quota decides first.
//!
//! **Webhooks.** A job with a `webhook_url` gets a POST of its result
//! record (fal: its envelope) on every terminal state, `x-sim-request-id`
//! header; 2xx is delivered; up to 5 attempts, 250 ms, 500 ms, 1 s, 2 s
//! apart; `http://` only. Attempts are bounded ([`ConnectionLimits`]): at
//! most 64 at once, 5 s to connect, 10 s in all.
//!
//! **Time.** The service's clock is Tokio's (so `tokio::time::pause()`
//! drives jobs, webhooks and buckets when the simulator and its peers share
//! the test's current-thread runtime) or manual
//! ([`SimConfig::manual_clock`], moved by [`RunningSim::advance`]). See the
//! README's "Time" section for the two patterns that need no wall-clock
//! sleep.
//!
//! **Connections.** Headers within 30 s of opening or of the last answer
//! (also the idle timeout), bodies within 60 s (else `408`), at most 512
//! connections (the longest-idle one closes to make room, also when the
//! process runs out of file descriptors): see [`ConnectionLimits`].
//!
//! **Ids and seeds.** Request ids are UUID-shaped. With
//! [`SimConfig::seed`], every random choice, ids included, is the same on
//! every run; without it, ids are unique to the run and the other choices
//! are drawn from seed 0.
//!
//! Table of contents:
//!
//! | module | what it holds |
//! |---|---|
//! | [`config`] | [`SimConfig`], [`ConnectionLimits`], [`DEV_API_KEY`] |
//! | `dialect` | [`Dialect`]: the variants of the service (`reka`, `infer`, `fal`), in one place |
//! | [`catalog`] | [`Catalog`]: endpoints, worker counts, duration distributions |
//! | [`faults`] | [`FaultConfig`] and the `--faults` SPEC grammar |
//! | [`stats`] | [`Stats`], the body of `GET /_sim/stats` |
//! | [`jobs`] | the lazy queue model and [`Status`] |
//! | `server`, `connections` | [`start`], [`RunningSim`]: the accept loop, the connection cap, shutdown |
//! | `http` | routes, middleware (auth, rate limits, faults, envelope), handlers (chat in `http::chat`) |
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
