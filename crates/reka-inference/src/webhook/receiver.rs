//! Receiving webhook deliveries, so waits end when the service says a job
//! is done instead of when a poll happens to look (feature `webhooks`).
//!
//! A [`WebhookReceiver`] is an HTTP handler (an axum [`Router`], mountable in
//! your own server) or a server of its own ([`WebhookReceiver::listen`]).
//! Submits made with it ([`SubmitOptions::webhook`](crate::SubmitOptions::webhook))
//! carry its public URL, and their waits park on the delivery of their
//! request id, with a sparse safety-net poll (deliveries can be lost).
//!
//! A delivery is a hint, never the truth: the service documents no
//! signature, so a wait woken by a delivery fetches the record once from
//! the API's origin and ends only if that record says the job is finished.
//! A spoofed or early delivery costs one request and changes nothing.
//! Deliveries for unknown ids, duplicates and late ones are answered `200`
//! (a retry would be pointless); bodies that are not a delivery are `400`,
//! larger than 1 MiB `413`, refused by the verifier `401`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use tokio::sync::watch;
use url::Url;

use super::{Deliveries, WebhookDelivery};
use crate::error::{Error, Result};

/// The largest delivery body read.
const MAX_DELIVERY_BYTES: usize = 1 << 20;

/// Request ids whose deliveries are remembered (for waits that start after
/// their delivery arrived); the oldest are forgotten first.
const REMEMBERED: usize = 100_000;

/// Checks a delivery before it is believed at all (a signature, a shared
/// secret in a header). Reka documents no signature: the default is none,
/// and every delivery is confirmed by fetching the record anyway.
pub trait DeliveryVerifier: Send + Sync + 'static {
    /// Whether the delivery with these headers and body is genuine.
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> bool;
}

/// A webhook endpoint for the service to call.
///
/// ```no_run
/// # async fn run(client: reka_inference::Client) -> reka_inference::Result<()> {
/// use reka_inference::SubmitOptions;
/// use reka_inference::webhook::WebhookReceiver;
///
/// // A server of its own on port 8080, reached by the service through a tunnel.
/// let receiver = WebhookReceiver::listen(
///     "0.0.0.0:8080".parse().unwrap(),
///     Some("https://hooks.example.com/reka"),
/// )
/// .await?;
/// let job = client
///     .submit_with(
///         "nano-banana/text-to-image",
///         serde_json::json!({"prompt": "a fox"}),
///         SubmitOptions::default().webhook(&receiver),
///     )
///     .await?;
/// let done = job.wait().await?; // ends at the delivery, confirmed by one fetch
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct WebhookReceiver {
    inner: Arc<Inner>,
}

struct Inner {
    url: Url,
    verifier: Option<Box<dyn DeliveryVerifier>>,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// Deliveries per request id, as a count waits can watch.
    by_id: HashMap<String, watch::Sender<u64>>,
    order: VecDeque<String>,
    /// Every delivery, for sets of jobs that wait on any of them.
    any: Option<watch::Sender<u64>>,
}

impl std::fmt::Debug for WebhookReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookReceiver")
            .field("url", &self.inner.url.as_str())
            .finish_non_exhaustive()
    }
}

impl WebhookReceiver {
    /// A receiver whose deliveries arrive at `public_url` (where the
    /// service can reach it), to be mounted with [`WebhookReceiver::router`].
    pub fn new(public_url: &str) -> Result<WebhookReceiver> {
        let url = Url::parse(public_url)
            .map_err(|e| Error::InvalidInput(format!("webhook URL {public_url:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::InvalidInput(format!(
                "webhook URL {public_url:?} is not http(s)"
            )));
        }
        Ok(WebhookReceiver {
            inner: Arc::new(Inner {
                url,
                verifier: None,
                seen: Mutex::new(Seen::default()),
            }),
        })
    }

    /// Checks every delivery with `verifier` before believing it.
    pub fn with_verifier(self, verifier: impl DeliveryVerifier) -> Result<WebhookReceiver> {
        let inner = Arc::try_unwrap(self.inner).map_err(|_| {
            Error::InvalidInput("set the verifier before the receiver is shared".into())
        })?;
        Ok(WebhookReceiver {
            inner: Arc::new(Inner {
                verifier: Some(Box::new(verifier)),
                ..inner
            }),
        })
    }

    /// Serves the receiver on `addr` (every path takes deliveries). The URL
    /// given to the service is `public_url`, or `http://<bound address>/`
    /// when none is given (a local service, a simulator).
    pub async fn listen(addr: SocketAddr, public_url: Option<&str>) -> Result<WebhookReceiver> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let url = match public_url {
            Some(u) => u.to_owned(),
            None => format!("http://{bound}/"),
        };
        let receiver = WebhookReceiver::new(&url)?;
        let app = receiver.router();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "the webhook receiver stopped");
            }
        });
        Ok(receiver)
    }

    /// The URL to give the service.
    pub fn url(&self) -> &Url {
        &self.inner.url
    }

    /// The handler, to mount in your own axum server (every method and
    /// path of the router takes deliveries: nest it where you like).
    pub fn router(&self) -> Router {
        Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::max(MAX_DELIVERY_BYTES))
            .with_state(self.clone())
    }

    /// Takes one delivery body: what [`WebhookReceiver::router`] does with
    /// a request, for servers that are not axum.
    pub fn accept(&self, headers: &HeaderMap, body: &[u8]) -> StatusCode {
        if body.len() > MAX_DELIVERY_BYTES {
            return StatusCode::PAYLOAD_TOO_LARGE;
        }
        if let Some(v) = &self.inner.verifier
            && !v.verify(headers, body)
        {
            return StatusCode::UNAUTHORIZED;
        }
        match WebhookDelivery::parse(body) {
            Ok(delivery) => {
                tracing::debug!(request_id = %delivery.request_id, status = %delivery.status, "webhook delivery");
                self.record(&delivery.request_id);
                StatusCode::OK
            }
            Err(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn record(&self, id: &str) {
        let Ok(mut seen) = self.inner.seen.lock() else {
            return;
        };
        match seen.by_id.get(id) {
            Some(tx) => {
                tx.send_modify(|n| *n += 1);
            }
            None => {
                let (tx, _) = watch::channel(1u64);
                seen.by_id.insert(id.to_owned(), tx);
                seen.order.push_back(id.to_owned());
                while seen.order.len() > REMEMBERED {
                    if let Some(old) = seen.order.pop_front() {
                        seen.by_id.remove(&old);
                    }
                }
            }
        }
        if let Some(any) = &seen.any {
            any.send_modify(|n| *n += 1);
        }
    }
}

impl Deliveries for WebhookReceiver {
    fn url(&self) -> &Url {
        &self.inner.url
    }

    fn any(&self) -> watch::Receiver<u64> {
        let Ok(mut seen) = self.inner.seen.lock() else {
            return watch::channel(0).1;
        };
        seen.any
            .get_or_insert_with(|| watch::channel(0u64).0)
            .subscribe()
    }

    fn for_job(&self, id: &str) -> watch::Receiver<u64> {
        let Ok(mut seen) = self.inner.seen.lock() else {
            return watch::channel(0).1;
        };
        if let Some(tx) = seen.by_id.get(id) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(0u64);
        seen.by_id.insert(id.to_owned(), tx);
        seen.order.push_back(id.to_owned());
        rx
    }
}

async fn handle(
    State(receiver): State<WebhookReceiver>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    receiver.accept(&headers, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_and_deliveries_are_counted() {
        let r = WebhookReceiver::new("http://127.0.0.1:9/hook").unwrap();
        let h = HeaderMap::new();
        assert_eq!(r.accept(&h, b"nope"), StatusCode::BAD_REQUEST);
        assert_eq!(
            r.accept(&h, &vec![b' '; MAX_DELIVERY_BYTES + 1]),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let watch = r.for_job("r1");
        assert_eq!(*watch.borrow(), 0);
        let body = br#"{"request_id":"r1","status":"COMPLETED","output":{}}"#;
        assert_eq!(r.accept(&h, body), StatusCode::OK);
        assert_eq!(r.accept(&h, body), StatusCode::OK, "a duplicate is fine");
        assert_eq!(*watch.borrow(), 2);
        // A delivery for an id nobody waits for is fine too, and remembered.
        assert_eq!(
            r.accept(&h, br#"{"request_id":"r9","status":"OK","payload":{}}"#),
            StatusCode::OK
        );
        assert_eq!(*r.for_job("r9").borrow(), 1);
    }

    struct SharedSecret;

    impl DeliveryVerifier for SharedSecret {
        fn verify(&self, headers: &HeaderMap, _body: &[u8]) -> bool {
            headers.get("x-secret").is_some_and(|v| v == "s3")
        }
    }

    #[test]
    fn a_verifier_refuses_what_it_does_not_trust() {
        let r = WebhookReceiver::new("https://hooks.example.com/")
            .unwrap()
            .with_verifier(SharedSecret)
            .unwrap();
        let body = br#"{"request_id":"r1","status":"COMPLETED"}"#;
        assert_eq!(r.accept(&HeaderMap::new(), body), StatusCode::UNAUTHORIZED);
        let mut h = HeaderMap::new();
        h.insert("x-secret", "s3".parse().unwrap());
        assert_eq!(r.accept(&h, body), StatusCode::OK);
        assert!(WebhookReceiver::new("ftp://x/").is_err());
    }
}
