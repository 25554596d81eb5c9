//! One submit: the input checked, the idempotency key chosen and kept, the
//! answer read leniently, and a failure that may have created a job told
//! apart from one that cannot have.

use std::sync::Arc;

use reka_inference_api::types::SubmitRequest;
use reqwest::header::HeaderValue;
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::endpoint::{Endpoint, IntoEndpoint};
use crate::error::{Error, Result};
use crate::http::{Http, check_request_id};
use crate::job::Job;
use crate::retry::RetryPolicy;
use crate::webhook::Deliveries;

/// Options of [`Client::submit_with`](crate::Client::submit_with).
///
/// ```
/// use reka_inference::SubmitOptions;
///
/// let options = SubmitOptions::default()
///     .idempotency_key("catalog-row-17")
///     .webhook_url("https://hooks.example.com/reka");
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SubmitOptions {
    /// Called by the service with the request's record when it finishes.
    pub webhook_url: Option<String>,
    /// Your own idempotency key (default: a fresh UUID v4). Reuse it to
    /// make a resubmission after a crash return the original job.
    pub idempotency_key: Option<String>,
    /// The submit, retries included, ends by this instant.
    pub deadline: Option<Instant>,
    /// Where the webhook's deliveries arrive: waits park on them.
    pub(crate) deliveries: Option<Arc<dyn Deliveries>>,
    /// Retries of this submit, instead of the client's (the submitter makes
    /// one attempt per call and paces the retries itself).
    pub(crate) retry: Option<RetryPolicy>,
}

impl SubmitOptions {
    /// Sets the webhook URL.
    pub fn webhook_url(mut self, url: impl Into<String>) -> Self {
        self.webhook_url = Some(url.into());
        self
    }

    /// Sets the idempotency key.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sends the URL of `deliveries` (a
    /// [`WebhookReceiver`](crate::webhook::WebhookReceiver), feature
    /// `webhooks`) as the webhook, and makes the job's waits end at its
    /// delivery (confirmed by one fetch of the record) rather than at a
    /// poll; a sparse safety-net poll covers lost deliveries. A bare
    /// [`webhook_url`](Self::webhook_url) only tells the service where to
    /// deliver: waits then poll as usual.
    pub fn webhook<D: Deliveries + Clone>(mut self, deliveries: &D) -> Self {
        self.webhook_url = Some(deliveries.url().to_string());
        self.deliveries = Some(Arc::new(deliveries.clone()));
        self
    }

    /// [`webhook`](Self::webhook) with a shared source.
    pub(crate) fn webhook_from(mut self, deliveries: Arc<dyn Deliveries>) -> Self {
        self.webhook_url = Some(deliveries.url().to_string());
        self.deliveries = Some(deliveries);
        self
    }

    /// Bounds the submit, retries included: past it the submit ends with
    /// [`Error::SubmitOutcomeUnknown`] (or the rejection it got).
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The idempotency key this submit will send: the one given, or a
    /// fresh UUID v4 chosen now (and kept in the options).
    pub(crate) fn key(&mut self) -> &str {
        self.idempotency_key
            .get_or_insert_with(|| uuid::Uuid::new_v4().to_string())
    }
}

/// Submits one job: see [`Client::submit_with`](crate::Client::submit_with).
pub(crate) async fn submit(
    http: &Http,
    endpoint: impl IntoEndpoint,
    input: impl Serialize,
    options: SubmitOptions,
) -> Result<Job> {
    let endpoint = endpoint.into_endpoint()?;
    let input = match serde_json::to_value(input) {
        Ok(Value::Object(map)) => map,
        Ok(other) => {
            return Err(Error::InvalidInput(format!(
                "the input must be a JSON object, not {}",
                json_kind(&other)
            )));
        }
        Err(e) => {
            return Err(Error::InvalidInput(format!(
                "the input does not serialise: {e}"
            )));
        }
    };
    submit_object(http, endpoint, input, options).await
}

/// [`submit`] of an input already a JSON object: no copy of it is made
/// (an input can hold megabytes of inline files).
#[tracing::instrument(name = "submit", level = "debug", skip_all, fields(endpoint))]
pub(crate) async fn submit_object(
    http: &Http,
    endpoint: Endpoint,
    input: serde_json::Map<String, Value>,
    mut options: SubmitOptions,
) -> Result<Job> {
    tracing::Span::current().record("endpoint", endpoint.as_str());
    let webhook_url = match options.webhook_url.take() {
        Some(url) => Some(
            url.parse()
                .map_err(|e| Error::InvalidInput(format!("webhook_url: {e}")))?,
        ),
        None => None,
    };
    let key = options.key().to_owned();
    HeaderValue::from_str(&key).map_err(|_| {
        Error::InvalidInput("the idempotency key is not a valid header value".into())
    })?;
    let body = SubmitRequest { input, webhook_url };
    let submitted_at = Instant::now();
    let call = http
        .call()
        .deadline(options.deadline)
        .retry_policy(options.retry.take())
        .start();
    let sent = call
        .api()
        .submit()
        .model(endpoint.model())
        .capability(endpoint.capability())
        .idempotency_key(key.as_str())
        .body(body)
        .send()
        .await;
    let answer = call.read(sent).and_then(|accepted| {
        check_request_id(&accepted.request_id)?;
        Ok(accepted)
    });
    let accepted = match answer {
        Ok(a) => a,
        Err(e) if outcome_unknown(&e) => {
            return Err(Error::SubmitOutcomeUnknown {
                idempotency_key: key,
                source: Box::new(e),
            });
        }
        Err(e) => return Err(e),
    };
    tracing::debug!(request_id = %accepted.request_id, "submitted");
    let job = Job::new(
        http.clone(),
        accepted.request_id,
        Some(endpoint),
        Some(submitted_at),
    );
    Ok(job.with_deliveries(options.deliveries))
}

/// Whether a submit that failed so may still have created a job.
fn outcome_unknown(e: &Error) -> bool {
    match e {
        Error::Transport(_) | Error::RequestTimeout { .. } | Error::BodyTooLarge { .. } => true,
        Error::Decode { .. } => true,
        Error::Api(api) => api.status.is_server_error(),
        _ => false,
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
