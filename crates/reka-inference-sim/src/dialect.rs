//! Dialects: coherent variants of the service, each resting on evidence
//! (section 13 of the project's API reference). Every place where the
//! variants differ asks [`Dialect`] here; the handlers hold no dialect logic.
//!
//! | dialect | stands for |
//! |---|---|
//! | [`Dialect::Reka`] | the reconstruction from Reka's reference (the default) |
//! | [`Dialect::Infer`] | what Infer's docs and third-party code show (INFER, INFER-CODE) |
//! | [`Dialect::Fal`] | fal.ai's queue behaviour (FAL) |

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::catalog::{Catalog, ModelSpec, OutputKind};
use crate::http::error::ApiError;
use crate::jobs::{Job, Status};
use crate::rng;

/// Which variant of the service the simulator plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// The reconstruction from Reka's public reference: full submit answer,
    /// `{"items": [...]}` model list, 400 validation errors in the envelope,
    /// output files with an extension.
    #[default]
    Reka,
    /// Infer's documented and observed shapes: lean submit answer,
    /// `{"models": [...]}`, FastAPI's 422, extensionless presigned-style
    /// output URLs, `error.code`.
    Infer,
    /// fal.ai's queue: 202 from status and result until done, some failures
    /// reported as `COMPLETED` with an `error`, asynchronous cancel of a
    /// running job, webhooks in fal's envelope.
    Fal,
}

impl Dialect {
    /// Every dialect.
    pub const ALL: [Dialect; 3] = [Dialect::Reka, Dialect::Infer, Dialect::Fal];

    /// The name used by `--dialect`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Reka => "reka",
            Dialect::Infer => "infer",
            Dialect::Fal => "fal",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Dialect {
    type Err = String;
    fn from_str(s: &str) -> Result<Dialect, String> {
        Dialect::ALL
            .into_iter()
            .find(|d| d.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| format!("unknown dialect {s:?}; known: reka, infer, fal"))
    }
}

/// Simulated seconds a running job stays `IN_PROGRESS` after a cancel (fal).
pub(crate) const FAL_CANCEL_DELAY_SECS: f64 = 3.0;

/// What the dialect-dependent rendering needs.
pub(crate) struct Ctx<'a> {
    pub(crate) seed: u64,
    /// Whether prices are reported ([`crate::SimConfig::prices`]).
    pub(crate) prices: bool,
    /// The advertised base URL, without a trailing slash.
    pub(crate) base_url: &'a str,
}

impl Dialect {
    /// The body of a submit's 202.
    pub(crate) fn submit_body(self, id: &str, base: &str) -> Value {
        match self {
            Dialect::Infer => json!({ "request_id": id }),
            Dialect::Reka | Dialect::Fal => json!({
                "request_id": id,
                "status": Status::InQueue.as_str(),
                "status_url": format!("{base}/v2/inference/requests/{id}/status"),
                "response_url": format!("{base}/v2/inference/requests/{id}"),
                "cancel_url": format!("{base}/v2/inference/requests/{id}/cancel"),
            }),
        }
    }

    /// A submit's error as this dialect answers it: Infer answers a bad
    /// request 422 with FastAPI's `{"detail": [...]}`.
    pub(crate) fn submit_error(self, e: ApiError) -> ApiError {
        match self {
            Dialect::Infer if e.status == StatusCode::BAD_REQUEST && e.details.is_some() => {
                ApiError {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    fastapi_detail: true,
                    ..e
                }
            }
            _ => e,
        }
    }

    /// `GET /v2/inference/models`: the catalog's endpoints (with their
    /// price when `prices` and the endpoint has one), then the chat models
    /// (capability `chat`).
    pub(crate) fn models_body(self, catalog: &Catalog, prices: bool) -> Value {
        let entry = |model_id: &str, capability: &str, title: Value, description: Value| {
            let mut v = json!({
                "model_id": model_id,
                "capability": capability,
                "title": title,
                "description": description,
            });
            if self != Dialect::Infer {
                v["endpoint_id"] = json!(format!("{model_id}/{capability}"));
            }
            v
        };
        let mut items: Vec<Value> = catalog
            .models
            .iter()
            .map(|m| {
                let mut v = entry(
                    &m.model_id,
                    &m.capability,
                    json!(m.title),
                    json!(m.description),
                );
                if let Some(schema) = &m.input_schema {
                    v["input_schema"] = schema.clone();
                }
                if prices && let Some(price) = m.price() {
                    v["price_usd"] = json!(price);
                }
                v
            })
            .collect();
        items.extend(catalog.chat_models.iter().map(|m| {
            entry(
                m,
                "chat",
                json!(format!("{m} (chat)")),
                json!(
                    "OpenAI-compatible chat: POST /v2/inference/chat/completions with this model."
                ),
            )
        }));
        match self {
            Dialect::Infer => json!({ "models": items }),
            Dialect::Reka | Dialect::Fal => json!({ "items": items }),
        }
    }

    /// The HTTP status of a status or result answer: fal answers 202 until done.
    pub(crate) fn poll_status(self, wire: &str) -> StatusCode {
        let done = Status::parse(wire).is_some_and(Status::is_terminal);
        match self {
            Dialect::Fal if !done => StatusCode::ACCEPTED,
            _ => StatusCode::OK,
        }
    }

    /// Whether a failed job is shown as `COMPLETED` plus an `error` (fal,
    /// about half of the failures, chosen per request id under the seed).
    fn completed_with_error(self, seed: u64, job: &Job) -> bool {
        self == Dialect::Fal
            && job.status == Status::Failed
            && rng::hash(&[seed, rng::str_hash(&job.id), 11]).is_multiple_of(2)
    }

    /// The status word shown for a job.
    pub(crate) fn status_word(self, seed: u64, job: &Job) -> &'static str {
        if self.completed_with_error(seed, job) {
            Status::Completed.as_str()
        } else {
            job.status.as_str()
        }
    }

    /// The `error` of a job's record.
    pub(crate) fn error(self, job: &Job) -> Value {
        if job.status != Status::Failed {
            return Value::Null;
        }
        let message = "the model failed to produce an output (simulated failure)";
        match self {
            Dialect::Infer => json!({"code": "inference_failed", "message": message}),
            Dialect::Reka | Dialect::Fal => json!({"type": "inference_error", "message": message}),
        }
    }

    /// The `output` of a completed job.
    pub(crate) fn output(self, ctx: &Ctx<'_>, spec: &ModelSpec, job: &Job) -> Value {
        if job.status != Status::Completed {
            return Value::Null;
        }
        let kind = spec.output_kind();
        let mut output = match self {
            Dialect::Reka | Dialect::Fal => crate::outputs::output_json(
                kind,
                &job.input,
                job.image.as_ref(),
                &format!("{}/_sim/files/{}", ctx.base_url, job.id),
            ),
            Dialect::Infer => {
                let url = json!({ "url": blob_url(ctx, &job.id) });
                match kind {
                    OutputKind::Image => json!({ "images": [url] }),
                    OutputKind::Video => json!({ "video": url }),
                    OutputKind::Audio => json!({ "audio": url }),
                    OutputKind::Boxes => {
                        crate::outputs::output_json(kind, &job.input, job.image.as_ref(), "")
                    }
                }
            }
        };
        // The input image as the job received it: a test can tell it
        // arrived whole (media type, size, SHA-256, dimensions).
        if let Some(image) = &job.image {
            output["input_image"] = image.to_json();
        }
        if ctx.prices
            && let Some(price) = spec.price()
        {
            output["usage"] = json!({ "price_usd": price });
        }
        output
    }

    /// When a cancelled running job actually stops: at once, or (fal) after
    /// a short delay during which it stays `IN_PROGRESS`.
    pub(crate) fn cancel_delay(self, wall: impl Fn(f64) -> Duration) -> Duration {
        match self {
            Dialect::Fal => wall(FAL_CANCEL_DELAY_SECS),
            Dialect::Reka | Dialect::Infer => Duration::ZERO,
        }
    }

    /// The body POSTed to a job's `webhook_url`, given its result record.
    pub(crate) fn webhook_body(self, seed: u64, record: Value) -> Value {
        if self != Dialect::Fal {
            return record;
        }
        let id = record["request_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let ok = record["status"] == "COMPLETED" && record["error"].is_null();
        let error = if ok {
            Value::Null
        } else if let Some(m) = record["error"]["message"].as_str() {
            json!(m)
        } else {
            json!(format!(
                "request {}",
                record["status"].as_str().unwrap_or("failed").to_lowercase()
            ))
        };
        let mut gateway = [0u8; 16];
        gateway[..8].copy_from_slice(&rng::hash(&[seed, rng::str_hash(&id), 21]).to_le_bytes());
        gateway[8..].copy_from_slice(&rng::hash(&[seed, rng::str_hash(&id), 22]).to_le_bytes());
        json!({
            "request_id": id,
            "gateway_request_id": uuid::Builder::from_random_bytes(gateway).into_uuid().to_string(),
            "status": if ok { "OK" } else { "ERROR" },
            "payload": if ok { record["output"].clone() } else { Value::Null },
            "error": error,
            "payload_error": Value::Null,
        })
    }
}

/// A presigned-storage-style URL without a file extension for a job's
/// output file: `{base}/_sim/blobs/{id without dashes}?X-Amz-...`.
pub(crate) fn blob_url(ctx: &Ctx<'_>, id: &str) -> String {
    let key: String = id.chars().filter(|c| *c != '-').collect();
    let signature = format!(
        "{:016x}{:016x}",
        rng::hash(&[ctx.seed, rng::str_hash(id), 41]),
        rng::hash(&[ctx.seed, rng::str_hash(id), 42])
    );
    format!(
        "{}/_sim/blobs/{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600&X-Amz-Signature={signature}",
        ctx.base_url
    )
}

/// The request id behind a blob key (the id without its dashes).
pub(crate) fn blob_request_id(key: &str) -> Option<String> {
    uuid::Uuid::try_parse(key)
        .ok()
        .filter(|_| key.len() == 32)
        .map(|u| u.to_string())
}
