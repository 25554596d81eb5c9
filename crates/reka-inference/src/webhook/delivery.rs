//! Webhook deliveries: what the service POSTs to a submit's `webhook_url`
//! when the job ends, read into one value whichever shape it comes in.
//!
//! Reka documents no delivery format; two shapes are plausible and both are
//! read: the result record itself (`{"request_id", "status", "output",
//! "error", ...}`, section 11 of the reference, INFERRED) and fal's
//! envelope (`{"request_id", "status": "OK" | "ERROR", "payload", "error",
//! "payload_error"}`, FAL). A delivery is a *hint*: no signature is
//! documented, so a program should confirm it with one fetch of the record
//! before acting on it.

use bytes::Bytes;
use reka_inference_api::RequestStatus as JobStatus;
use reka_inference_api::types::{JobError, ResultResponse};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::http::check_request_id;

/// The shape a delivery came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryShape {
    /// The result record, as `get_result` answers it.
    Record,
    /// fal's envelope: `{"status": "OK" | "ERROR", "payload": ...}`.
    FalEnvelope,
}

/// One webhook delivery, whatever its shape.
///
/// ```
/// use reka_inference::JobStatus;
/// use reka_inference::webhook::WebhookDelivery;
///
/// let fal = br#"{"request_id": "r1", "gateway_request_id": "g1", "status": "OK",
///                "payload": {"images": [{"url": "https://cdn.example/a"}]}}"#;
/// let delivery = WebhookDelivery::parse(fal)?;
/// assert_eq!(delivery.request_id, "r1");
/// assert_eq!(delivery.status, JobStatus::Completed);
///
/// let record = br#"{"request_id": "r2", "status": "FAILED", "error": {"message": "moderated"}}"#;
/// let delivery = WebhookDelivery::parse(record)?;
/// assert_eq!(delivery.status, JobStatus::Failed);
/// assert_eq!(delivery.error.and_then(|e| e.message).as_deref(), Some("moderated"));
/// # Ok::<(), reka_inference::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WebhookDelivery {
    /// The request the delivery is about.
    pub request_id: String,
    /// The status it reports (terminal in every known shape; kept as sent
    /// when it is not).
    pub status: JobStatus,
    /// The output, when it carries one.
    pub output: Option<Map<String, Value>>,
    /// Why the job failed, when it did.
    pub error: Option<JobError>,
    /// Which shape it came in.
    pub shape: DeliveryShape,
}

impl WebhookDelivery {
    /// Reads a delivery body in either known shape. Anything else (not
    /// JSON, no usable `request_id`, no status) is [`Error::Decode`].
    pub fn parse(body: &[u8]) -> Result<WebhookDelivery> {
        let bad = |message: String| Error::Decode {
            status: reqwest::StatusCode::OK,
            message: format!("webhook delivery: {message}"),
            raw_body: Bytes::copy_from_slice(body),
        };
        let value: Value = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
        let Value::Object(map) = value else {
            return Err(bad("not a JSON object".into()));
        };
        let request_id = map
            .get("request_id")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no request_id".into()))?
            .to_owned();
        check_request_id(&request_id).map_err(|e| bad(e.to_string()))?;
        let status = map
            .get("status")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no status".into()))?;
        if matches!(status, "OK" | "ERROR") {
            return Ok(Self::from_fal(request_id, status == "OK", &map));
        }
        let record: ResultResponse =
            serde_json::from_value(Value::Object(map)).map_err(|e| bad(e.to_string()))?;
        Ok(WebhookDelivery {
            request_id,
            status: record.status,
            output: record.output,
            error: record.error,
            shape: DeliveryShape::Record,
        })
    }

    fn from_fal(request_id: String, ok: bool, map: &Map<String, Value>) -> WebhookDelivery {
        let output = match map.get("payload") {
            Some(Value::Object(o)) if ok => Some(o.clone()),
            _ => None,
        };
        let text = |v: Option<&Value>| match v {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        let message = text(map.get("error")).or_else(|| text(map.get("payload_error")));
        let error = (!ok || message.is_some()).then(|| JobError {
            message: message.or_else(|| Some("the job failed".into())),
            type_: None,
            code: None,
        });
        let status = if ok && output.is_some() {
            JobStatus::Completed
        } else {
            JobStatus::Failed
        };
        WebhookDelivery {
            request_id,
            status,
            output,
            error,
            shape: DeliveryShape::FalEnvelope,
        }
    }

    /// Whether the delivery reports a finished job.
    pub fn is_terminal(&self) -> bool {
        self.status.is_terminal() == Some(true)
    }

    /// The delivery as a result record.
    pub fn to_record(&self) -> ResultResponse {
        ResultResponse {
            request_id: self.request_id.clone(),
            status: self.status.clone(),
            output: self.output.clone(),
            error: self.error.clone(),
            metrics: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fal_errors_are_failures() {
        let d = WebhookDelivery::parse(
            br#"{"request_id":"r1","status":"ERROR","payload":null,"error":"Invalid status code: 422","payload_error":null}"#,
        )
        .unwrap();
        assert_eq!(d.status, JobStatus::Failed);
        assert_eq!(d.shape, DeliveryShape::FalEnvelope);
        assert_eq!(
            d.error.unwrap().message.as_deref(),
            Some("Invalid status code: 422")
        );
        // OK without a usable payload is not a success either.
        let d = WebhookDelivery::parse(
            br#"{"request_id":"r1","status":"OK","payload":null,"payload_error":"too large"}"#,
        )
        .unwrap();
        assert_eq!(d.status, JobStatus::Failed);
    }

    #[test]
    fn records_keep_unknown_statuses() {
        let d =
            WebhookDelivery::parse(br#"{"request_id":"r1","status":"EXPIRED","extra":1}"#).unwrap();
        assert_eq!(d.status, JobStatus::Unknown("EXPIRED".into()));
        assert!(!d.is_terminal());
        assert_eq!(d.to_record().request_id, "r1");
    }

    #[test]
    fn garbage_is_a_decode_error() {
        for bad in [
            &b"not json"[..],
            b"[]",
            b"{}",
            br#"{"request_id": 5, "status": "OK"}"#,
            br#"{"request_id": "..", "status": "COMPLETED"}"#,
            br#"{"request_id": "r1"}"#,
        ] {
            assert!(
                matches!(WebhookDelivery::parse(bad), Err(Error::Decode { .. })),
                "{bad:?}"
            );
        }
    }
}
