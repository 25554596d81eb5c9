//! The crate's vocabulary: the nouns every engine speaks. A finished job's
//! [`JobOutput`], the [`JobEvent`]s of a job on its way there, and how a
//! terminal event ends a wait. Engines (a lone job's wait, job sets,
//! batches, downloads) import this module; it imports none of them.

use reka_inference_api::types::{JobError, LogEntry, Metrics, ResultResponse};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::media::{MediaRef, find_media};

/// A finished job's output.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobOutput {
    /// The request id.
    pub request_id: String,
    /// The output object (its shape depends on the endpoint; it is not
    /// published).
    pub output: Value,
    /// The server's measurements (`inference_time`, seconds).
    pub metrics: Option<Metrics>,
}

impl JobOutput {
    /// The output of a record you fetched yourself
    /// ([`Job::result`](crate::Job::result), a list item, a webhook delivery).
    pub fn from_record(record: ResultResponse) -> JobOutput {
        JobOutput {
            request_id: record.request_id,
            output: record.output.map(Value::Object).unwrap_or(Value::Null),
            metrics: record.metrics,
        }
    }

    /// The output decoded into your own type.
    pub fn output_as<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.output.clone()).map_err(|e| Error::Decode {
            status: reqwest::StatusCode::OK,
            message: format!("the output does not match the requested type: {e}"),
            raw_body: serde_json::to_vec(&self.output).unwrap_or_default().into(),
        })
    }

    /// What the service charged for the job, in US dollars, when the record
    /// says (`output.usage.price_usd`, or `usage.price_usd` / `price_usd`
    /// beside the output).
    ///
    /// ```
    /// use reka_inference::JobOutput;
    /// use reka_inference::types::ResultResponse;
    ///
    /// let record: ResultResponse = serde_json::from_value(serde_json::json!({
    ///     "request_id": "r1", "status": "COMPLETED",
    ///     "output": {"images": [{"url": "https://cdn.example/a"}], "usage": {"price_usd": 0.039}}
    /// }))?;
    /// assert_eq!(JobOutput::from_record(record).price_usd(), Some(0.039));
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn price_usd(&self) -> Option<f64> {
        let number = |v: Option<&Value>| -> Option<f64> {
            match v? {
                Value::Number(n) => n.as_f64(),
                // Some services send money as a string.
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }
        };
        let out = &self.output;
        number(out.pointer("/usage/price_usd"))
            .or_else(|| number(out.get("price_usd")))
            .filter(|p| p.is_finite() && *p >= 0.0)
    }

    /// The summed price of `outputs`, over those whose record carries one;
    /// `None` when none does.
    pub fn total_price_usd<'a>(outputs: impl IntoIterator<Item = &'a JobOutput>) -> Option<f64> {
        outputs
            .into_iter()
            .filter_map(JobOutput::price_usd)
            .fold(None, |sum, p| Some(sum.unwrap_or(0.0) + p))
    }

    /// The media files the output points at (every `url` in it).
    pub fn media(&self) -> Vec<MediaRef> {
        find_media(&self.output)
    }
}

/// Something that happened to a job, as [`Job::events`](crate::Job::events) reports it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum JobEvent {
    /// The job is waiting; `position` 0 is next. Reported again when the
    /// position changes.
    Queued {
        /// Jobs ahead of this one, when the server says.
        position: Option<u64>,
    },
    /// The job was seen running. A short job may finish between two polls
    /// and never be seen running.
    Started,
    /// A log line not reported before.
    Log(LogEntry),
    /// The server sent a status this version does not know. Polling goes
    /// on within the deadline; reported once per value.
    UnknownStatus(String),
    /// The server contradicts itself about the job (a `COMPLETED` status
    /// with a record still `IN_PROGRESS`, a record naming another request);
    /// the text names both answers. Both are asked again, at gaps of at
    /// most 5 s: a replica catching up agrees within seconds. Reported once
    /// per disagreement; one that lasts 60 s (scaled like the poll policy)
    /// ends the wait with [`Error::Inconsistent`].
    Inconsistent(String),
    /// The job finished with an output (terminal).
    Completed(JobOutput),
    /// The job failed (terminal).
    Failed {
        /// The server's `error` object.
        error: Option<JobError>,
        /// The whole final record.
        record: Box<ResultResponse>,
    },
    /// The job was cancelled (terminal).
    Cancelled,
}

/// The outcome a terminal event (or an error) means for a wait; `None` for
/// an event along the way.
pub(crate) fn outcome_of(id: &str, event: Result<JobEvent>) -> Option<Result<JobOutput>> {
    match event {
        Err(e) => Some(Err(e)),
        Ok(JobEvent::Completed(done)) => Some(Ok(done)),
        Ok(JobEvent::Failed { error, record }) => Some(Err(Error::JobFailed {
            request_id: id.to_owned(),
            error: error.map(Box::new),
            record,
        })),
        Ok(JobEvent::Cancelled) => Some(Err(Error::JobCancelled {
            request_id: id.to_owned(),
        })),
        Ok(_) => None,
    }
}
