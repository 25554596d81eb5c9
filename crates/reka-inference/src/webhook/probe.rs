//! Whether a receiver's public URL reaches it: one request through the URL
//! to the receiver itself, told apart from any other server by a token only
//! this receiver knows. A wrong URL is otherwise silent: every delivery is
//! lost, and every wait falls back to its safety net.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::WebhookReceiver;
use crate::error::{Error, Result};

/// The header of the check's request, and of the receiver's answer.
pub(super) const PROBE_HEADER: &str = "x-reka-webhook-probe";

/// How long the check waits for its answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

impl WebhookReceiver {
    /// Checks that the public URL reaches this receiver: one `POST`
    /// through it, which the receiver answers (`204`, echoing a token only
    /// it knows) without counting it as a delivery. Run it once your
    /// server is up when you mount the [`router`](Self::router) yourself;
    /// [`listen`](Self::listen) runs it when it starts.
    ///
    /// Fails with [`Error::WebhookUnreachable`] when the URL cannot be
    /// reached from here, or another server (or another path of yours)
    /// answers it. A URL only the service can reach (an allow-list, its
    /// private network) fails here and still works: skip the check then.
    ///
    /// ```no_run
    /// # async fn run(receiver: reka_inference::webhook::WebhookReceiver) {
    /// if let Err(e) = receiver.check_url().await {
    ///     eprintln!("deliveries will not arrive: {e}");
    /// }
    /// # }
    /// ```
    pub async fn check_url(&self) -> Result<()> {
        let url = self.url().clone();
        let unreachable = |reason: String| Error::WebhookUnreachable {
            url: url.to_string(),
            reason,
        };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROBE_TIMEOUT)
            .build()
            .map_err(|e| unreachable(format!("no HTTP client: {e}")))?;
        let answer = client
            .post(url.clone())
            .header(PROBE_HEADER, self.inner.probe_token.as_str())
            .send()
            .await
            .map_err(|e| unreachable(format!("it could not be reached: {}", error_chain(&e))))?;
        let echoed = answer
            .headers()
            .get(PROBE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let status = answer.status();
        match echoed {
            Some(token) if token == self.inner.probe_token && status.is_success() => Ok(()),
            Some(_) => Err(unreachable(
                "another webhook receiver answered it (another process, or another receiver \
                 of this one)"
                    .into(),
            )),
            None => Err(unreachable(format!(
                "it answered {status}, but not as this receiver: another server, or another \
                 path of yours (is the receiver mounted at this URL's path?)"
            ))),
        }
    }

    /// The answer to a check's request: the token back if it is ours.
    pub(super) fn answer_probe(&self, token: &HeaderValue) -> Response {
        if token.as_bytes() != self.inner.probe_token.as_bytes() {
            return (
                StatusCode::CONFLICT,
                [(PROBE_HEADER, HeaderValue::from_static("other"))],
            )
                .into_response();
        }
        match HeaderValue::from_str(&self.inner.probe_token) {
            Ok(echo) => (StatusCode::NO_CONTENT, [(PROBE_HEADER, echo)]).into_response(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }
}

/// An error with its causes (reqwest's own words hide why).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
