//! How a job is shown: the status response, the result record (also the
//! cancel response and the webhook body), list items, logs and metrics.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::catalog::Catalog;
use crate::clock::SimClock;
use crate::dialect::{Ctx, Dialect};
use crate::jobs::{Job, JobStore, Status};

/// What rendering needs besides the job.
pub(crate) struct View<'a> {
    pub(crate) clock: &'a SimClock,
    pub(crate) catalog: &'a Catalog,
    /// The advertised base URL, without a trailing slash.
    pub(crate) base_url: &'a str,
    pub(crate) dialect: Dialect,
    pub(crate) seed: u64,
    /// Whether prices are reported.
    pub(crate) prices: bool,
}

impl View<'_> {
    /// `GET .../status`: `queue_position` only while queued, `logs` only when asked.
    pub(crate) fn status(
        &self,
        store: &JobStore,
        idx: usize,
        with_logs: bool,
        now: Duration,
    ) -> Value {
        let job = store.job(idx);
        json!({
            "request_id": job.id,
            "status": self.status_word(job),
            "queue_position": store.queue_position(idx),
            "logs": if with_logs { Value::Array(self.logs(job, now)) } else { Value::Null },
            "metrics": self.metrics(job),
        })
    }

    /// The result record: `GET .../{id}`, the cancel answer and the webhook body.
    pub(crate) fn result(&self, job: &Job) -> Value {
        json!({
            "request_id": job.id,
            "status": self.status_word(job),
            "output": self.output(job),
            "error": self.error(job),
            "metrics": self.metrics(job),
            "created_at": self.clock.rfc3339(job.created),
            "completed_at": self.completed_at(job),
        })
    }

    /// One item of `GET /v2/inference/requests`.
    pub(crate) fn item(&self, job: &Job, payloads: bool) -> Value {
        let spec = &self.catalog.models[job.lane];
        let mut item = Map::new();
        item.insert("request_id".into(), json!(job.id));
        item.insert("endpoint_id".into(), json!(spec.endpoint_id()));
        item.insert("model_id".into(), json!(spec.model_id));
        item.insert("capability".into(), json!(spec.capability));
        item.insert("status".into(), json!(self.status_word(job)));
        item.insert("created_at".into(), json!(self.clock.rfc3339(job.created)));
        item.insert(
            "updated_at".into(),
            json!(self.clock.rfc3339(job.updated())),
        );
        item.insert("completed_at".into(), self.completed_at(job));
        if payloads {
            item.insert("input".into(), job.input.clone());
            item.insert("output".into(), self.output(job));
            item.insert("error".into(), self.error(job));
            item.insert("metrics".into(), self.metrics(job));
        }
        Value::Object(item)
    }

    fn completed_at(&self, job: &Job) -> Value {
        match (job.status.is_terminal(), job.ended) {
            (true, Some(t)) => json!(self.clock.rfc3339(t)),
            _ => Value::Null,
        }
    }

    /// The status word shown for a job (fal shows some failures as `COMPLETED`).
    pub(crate) fn status_word(&self, job: &Job) -> &'static str {
        self.dialect.status_word(self.seed, job)
    }

    fn output(&self, job: &Job) -> Value {
        let ctx = Ctx {
            seed: self.seed,
            prices: self.prices,
            base_url: self.base_url,
        };
        self.dialect
            .output(&ctx, &self.catalog.models[job.lane], job)
    }

    fn error(&self, job: &Job) -> Value {
        self.dialect.error(job)
    }

    fn metrics(&self, job: &Job) -> Value {
        match (job.status, job.started, job.ended) {
            (Status::Completed | Status::Failed, _, _) => json!({ "inference_time": job.sim_secs }),
            (Status::Cancelled, Some(s), Some(e)) => {
                json!({ "inference_time": self.clock.simulated(e.saturating_sub(s)) })
            }
            _ => Value::Null,
        }
    }

    /// The whole log up to `now`: queued, started, progress quarters, the end.
    pub(crate) fn logs(&self, job: &Job, now: Duration) -> Vec<Value> {
        let endpoint = self.catalog.models[job.lane].endpoint_id();
        let line = |at: Duration, level: &str, message: String| json!({"message": message, "level": level, "source": "simulator", "timestamp": self.clock.rfc3339(at)});
        let mut logs = vec![line(
            job.created,
            "INFO",
            format!("Request queued for {endpoint}"),
        )];
        if let Some(start) = job.started {
            logs.push(line(start, "INFO", format!("Running {endpoint}")));
            let until = job.ended.unwrap_or(now);
            for pct in [25u32, 50, 75] {
                let at = start + job.wall.mul_f64(f64::from(pct) / 100.0);
                if at <= until && job.ended.is_none_or(|e| at < e) {
                    logs.push(line(at, "INFO", format!("Progress {pct}%")));
                }
            }
        }
        if let Some(end) = job.ended {
            logs.push(match job.status {
                Status::Completed => {
                    line(end, "INFO", format!("Completed in {:.3} s", job.sim_secs))
                }
                Status::Failed => line(
                    end,
                    "ERROR",
                    "Failed: the model failed to produce an output".into(),
                ),
                _ => line(end, "WARNING", "Cancelled".into()),
            });
        }
        logs
    }
}
