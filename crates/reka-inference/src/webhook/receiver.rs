//! Receiving webhook deliveries, so waits end when the service says a job
//! is done instead of when a poll happens to look (feature `webhooks`).
//!
//! A [`WebhookReceiver`] is an HTTP handler (an axum [`Router`], mountable in
//! your own server, whatever its state) or a server of its own
//! ([`WebhookReceiver::listen`]). Submits made with it
//! ([`SubmitOptions::webhook`](crate::SubmitOptions::webhook)) carry its
//! public URL, and their waits park on the delivery of their request id,
//! with a safety net of looks around the job's likely finish (deliveries
//! can be lost).
//!
//! A delivery is a hint, never the truth: the service documents no
//! signature, so a wait woken by a delivery fetches the record once from
//! the API's origin and ends only if that record says the job is finished.
//! A spoofed or early delivery costs one request and changes nothing.
//! Deliveries for unknown ids, duplicates and late ones are answered `200`
//! (a retry would be pointless), and those for ids nothing waits for are
//! kept in a small bounded cache, apart from the ids waited for
//! ([`super::waiting`]). Bodies that are not a delivery are `400`, refused
//! by the verifier `401`, slower than the body timeout `408`, declared or
//! found larger than 1 MiB `413` (a declared one before any byte of it is
//! read), and beyond the cap on buffered bytes `503` ([`ReceiverLimits`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio::sync::{Semaphore, SemaphorePermit, watch};
use url::Url;

use super::options::MAX_DELIVERY_BYTES;
use super::waiting::Waiting;
use super::{Deliveries, ListenOptions, ReceiverLimits, UrlCheck, WebhookDelivery};
use crate::error::{Error, Result};

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
/// println!("{:?}", receiver.stats());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct WebhookReceiver {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) url: Url,
    verifier: Option<Box<dyn DeliveryVerifier>>,
    pub(super) limits: ReceiverLimits,
    waiting: Mutex<Waiting>,
    /// Bytes of bodies being read, across connections.
    budget: Semaphore,
    counters: Counters,
    /// Told with the URL check's request, so the receiver knows it is itself.
    pub(super) probe_token: String,
    /// The warning of a delivery missed while none ever came was logged.
    warned: AtomicBool,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    unknown_ids: AtomicU64,
    refused: AtomicU64,
    safety_net_looks: AtomicU64,
    missed_deliveries: AtomicU64,
}

/// What a receiver has seen, from [`WebhookReceiver::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookStats {
    /// Deliveries taken (answered `200`): duplicates and unknown ids
    /// included.
    pub accepted: u64,
    /// Of those, deliveries for an id that had one before.
    pub duplicates: u64,
    /// Of those, deliveries for an id nothing in this process waited for
    /// when it came (forged, another program's, or a job whose wait had not
    /// begun: kept in a small cache for it).
    pub unknown_ids: u64,
    /// Requests refused: not a delivery (`400`), refused by the verifier
    /// (`401`), too slow (`408`), too large (`413`), or no room to buffer
    /// it (`503`).
    pub refused: u64,
    /// Looks the safety net of waits made, rather than a delivery.
    pub safety_net_looks: u64,
    /// Of those, looks that found the job over with no delivery for it:
    /// lost deliveries, or a URL the service cannot reach.
    pub missed_deliveries: u64,
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
        Self::build(public_url, None, ReceiverLimits::default())
    }

    fn build(
        public_url: &str,
        verifier: Option<Box<dyn DeliveryVerifier>>,
        limits: ReceiverLimits,
    ) -> Result<WebhookReceiver> {
        let url = Url::parse(public_url)
            .map_err(|e| Error::InvalidInput(format!("webhook URL {public_url:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::InvalidInput(format!(
                "webhook URL {public_url:?} is not http(s)"
            )));
        }
        let budget = limits
            .max_buffered_bytes
            .clamp(MAX_DELIVERY_BYTES, Semaphore::MAX_PERMITS);
        Ok(WebhookReceiver {
            inner: Arc::new(Inner {
                url,
                verifier,
                limits,
                waiting: Mutex::new(Waiting::default()),
                budget: Semaphore::new(budget),
                counters: Counters::default(),
                probe_token: uuid::Uuid::new_v4().simple().to_string(),
                warned: AtomicBool::new(false),
            }),
        })
    }

    /// Checks every delivery with `verifier` before believing it.
    pub fn with_verifier(self, verifier: impl DeliveryVerifier) -> Result<WebhookReceiver> {
        let inner = self.unshared("the verifier")?;
        Self::build(inner.url.as_str(), Some(Box::new(verifier)), inner.limits)
    }

    /// What the receiver tolerates from connections (the body's timeout
    /// and the cap on buffered bytes hold in your own server too).
    pub fn with_limits(self, limits: ReceiverLimits) -> Result<WebhookReceiver> {
        let inner = self.unshared("the limits")?;
        Self::build(inner.url.as_str(), inner.verifier, limits)
    }

    fn unshared(self, what: &str) -> Result<Inner> {
        Arc::try_unwrap(self.inner)
            .map_err(|_| Error::InvalidInput(format!("set {what} before the receiver is shared")))
    }

    /// Serves the receiver on `addr` (every path takes deliveries) with the
    /// default [`ReceiverLimits`]. The URL given to the service is
    /// `public_url`, or `http://<bound address>/` when none is given (a
    /// local service, a simulator). The URL is checked once
    /// ([`check_url`](Self::check_url)); a failed check is logged as a
    /// warning ([`listen_with`](Self::listen_with) can make it an error, or
    /// skip it).
    pub async fn listen(addr: SocketAddr, public_url: Option<&str>) -> Result<WebhookReceiver> {
        let mut options = ListenOptions::default();
        if let Some(url) = public_url {
            options = options.public_url(url);
        }
        Self::listen_with(addr, options).await
    }

    /// [`listen`](Self::listen) with options: the public URL, the limits,
    /// the URL check, a verifier.
    pub async fn listen_with(addr: SocketAddr, options: ListenOptions) -> Result<WebhookReceiver> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let url = match options.public_url {
            Some(u) => u,
            None => format!("http://{bound}/"),
        };
        let receiver = Self::build(&url, options.verifier, options.limits)?;
        let server = tokio::spawn(super::server::serve(
            listener,
            receiver.router(),
            receiver.inner.limits.clone(),
        ));
        match options.url_check {
            UrlCheck::Skip => {}
            UrlCheck::Warn => {
                if let Err(e) = receiver.check_url().await {
                    tracing::warn!(error = %e, "the webhook URL does not reach this receiver; waits will rely on their safety net");
                }
            }
            UrlCheck::Require => {
                if let Err(e) = receiver.check_url().await {
                    server.abort();
                    return Err(e);
                }
            }
        }
        Ok(receiver)
    }

    /// The URL to give the service.
    pub fn url(&self) -> &Url {
        &self.inner.url
    }

    /// What the receiver has seen so far.
    pub fn stats(&self) -> WebhookStats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WebhookStats {
            accepted: get(&c.accepted),
            duplicates: get(&c.duplicates),
            unknown_ids: get(&c.unknown_ids),
            refused: get(&c.refused),
            safety_net_looks: get(&c.safety_net_looks),
            missed_deliveries: get(&c.missed_deliveries),
        }
    }

    /// The handler, to mount in your own axum server whatever its state
    /// (every method and path of the router takes deliveries: nest it where
    /// you like, and give the service that URL).
    ///
    /// ```
    /// use axum::Router;
    /// use axum::routing::get;
    /// use reka_inference::webhook::WebhookReceiver;
    ///
    /// #[derive(Clone)]
    /// struct App {
    ///     name: &'static str,
    /// }
    ///
    /// let receiver = WebhookReceiver::new("https://example.com/hooks")?;
    /// let app: Router = Router::new()
    ///     .route("/", get(|axum::extract::State(app): axum::extract::State<App>| async move { app.name }))
    ///     .nest("/hooks", receiver.router())
    ///     .with_state(App { name: "thumbnailer" });
    /// # let _ = app;
    /// # Ok::<(), reka_inference::Error>(())
    /// ```
    ///
    /// The handler refuses a declared body over 1 MiB at once and bounds the
    /// time and memory of bodies ([`ReceiverLimits`]); your server must
    /// bound the time to send headers and the number of connections (see
    /// [`ReceiverLimits`]).
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        Router::new().fallback(handle).with_state(self.clone())
    }

    /// Takes one delivery body: what [`WebhookReceiver::router`] does with
    /// a request once its body is read, for servers that are not axum.
    pub fn accept(&self, headers: &HeaderMap, body: &[u8]) -> StatusCode {
        let counters = &self.inner.counters;
        let refuse = |status: StatusCode| {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            status
        };
        if body.len() > MAX_DELIVERY_BYTES {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE);
        }
        if let Some(v) = &self.inner.verifier
            && !v.verify(headers, body)
        {
            return refuse(StatusCode::UNAUTHORIZED);
        }
        let Ok(delivery) = WebhookDelivery::parse(body) else {
            return refuse(StatusCode::BAD_REQUEST);
        };
        let recorded = lock(&self.inner.waiting).record(&delivery.request_id);
        counters.accepted.fetch_add(1, Ordering::Relaxed);
        if recorded.duplicate {
            counters.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        if recorded.unknown {
            counters.unknown_ids.fetch_add(1, Ordering::Relaxed);
        }
        tracing::debug!(request_id = %delivery.request_id, status = %delivery.status,
            duplicate = recorded.duplicate, unknown = recorded.unknown, "webhook delivery");
        StatusCode::OK
    }

    /// Reads a request's body within the limits, then takes it.
    async fn take(&self, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        if let Some(token) = parts.headers.get(super::probe::PROBE_HEADER) {
            return self.answer_probe(token);
        }
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_DELIVERY_BYTES as u64) {
            return self.refuse(StatusCode::PAYLOAD_TOO_LARGE, "a delivery is at most 1 MiB");
        }
        let body = match self.read_body(body).await {
            Ok(body) => body,
            Err(refused) => return refused,
        };
        self.accept(&parts.headers, &body.bytes).into_response()
    }

    /// The body, read within the body timeout, the size limit and the
    /// budget of buffered bytes.
    async fn read_body(&self, body: Body) -> Result<Held<'_>, Response> {
        let limits = &self.inner.limits;
        let deadline =
            crate::http::deadline_after(tokio::time::Instant::now(), limits.body_read_timeout);
        let mut held = Held {
            bytes: Vec::new(),
            permits: Vec::new(),
        };
        let mut stream = body.into_data_stream();
        loop {
            let next = match deadline {
                Some(d) => match tokio::time::timeout_at(d, stream.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        return Err(self
                            .refuse(StatusCode::REQUEST_TIMEOUT, "the body did not come in time"));
                    }
                },
                None => stream.next().await,
            };
            let chunk = match next {
                None => return Ok(held),
                Some(Ok(chunk)) => chunk,
                Some(Err(_)) => {
                    return Err(self.refuse(StatusCode::BAD_REQUEST, "the body broke off"));
                }
            };
            let total = held.bytes.len().saturating_add(chunk.len());
            if total > MAX_DELIVERY_BYTES {
                return Err(
                    self.refuse(StatusCode::PAYLOAD_TOO_LARGE, "a delivery is at most 1 MiB")
                );
            }
            // Bytes count against the budget as they arrive: a body
            // declared but not sent holds nothing.
            held.reserve(&self.inner.budget, chunk.len())
                .map_err(|()| self.busy())?;
            held.bytes.extend_from_slice(&chunk);
        }
    }

    fn refuse(&self, status: StatusCode, why: &'static str) -> Response {
        self.inner.counters.refused.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(status = status.as_u16(), why, "webhook request refused");
        // The rest of the body is not read: the connection cannot carry
        // another request.
        (
            status,
            [(header::CONNECTION, HeaderValue::from_static("close"))],
            why,
        )
            .into_response()
    }

    fn busy(&self) -> Response {
        let mut answer = self.refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many deliveries being read; try again",
        );
        answer
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        answer
    }
}

/// A body being read, and the share of the budget it holds.
struct Held<'a> {
    bytes: Vec<u8>,
    permits: Vec<SemaphorePermit<'a>>,
}

impl<'a> Held<'a> {
    fn reserve(&mut self, budget: &'a Semaphore, n: usize) -> std::result::Result<(), ()> {
        if n == 0 {
            return Ok(());
        }
        let n = u32::try_from(n).map_err(|_| ())?;
        let permit = budget.try_acquire_many(n).map_err(|_| ())?;
        self.permits.push(permit);
        Ok(())
    }
}

impl Deliveries for WebhookReceiver {
    fn url(&self) -> &Url {
        &self.inner.url
    }

    fn any(&self) -> watch::Receiver<u64> {
        lock(&self.inner.waiting).any()
    }

    fn for_job(&self, id: &str) -> watch::Receiver<u64> {
        lock(&self.inner.waiting).subscribe(id)
    }

    fn safety_net_look(&self, _request_id: &str) {
        self.inner
            .counters
            .safety_net_looks
            .fetch_add(1, Ordering::Relaxed);
    }

    fn delivery_missed(&self, request_id: &str) {
        let c = &self.inner.counters;
        c.missed_deliveries.fetch_add(1, Ordering::Relaxed);
        let delivered_to_waits = c
            .accepted
            .load(Ordering::Relaxed)
            .saturating_sub(c.unknown_ids.load(Ordering::Relaxed));
        if delivered_to_waits == 0 && !self.inner.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                url = %self.inner.url,
                request_id,
                "a job ended but no webhook delivery has ever reached this receiver: \
                 the service may not reach this URL, or the receiver is mounted at another path \
                 (WebhookReceiver::check_url tests it); waits rely on their safety-net looks"
            );
        } else {
            tracing::debug!(url = %self.inner.url, request_id, "a job ended without its webhook delivery");
        }
    }
}

async fn handle(State(receiver): State<WebhookReceiver>, request: Request) -> Response {
    receiver.take(request).await
}

/// Locks `m`, taking the data of a poisoned lock (every change to the
/// table is whole before anything could panic).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
        // A delivery for an id nobody waits for is fine too, and kept for a
        // wait that begins later.
        assert_eq!(
            r.accept(&h, br#"{"request_id":"r9","status":"OK","payload":{}}"#),
            StatusCode::OK
        );
        assert_eq!(*r.for_job("r9").borrow(), 1);
        assert_eq!(
            r.stats(),
            WebhookStats {
                accepted: 3,
                duplicates: 1,
                unknown_ids: 1,
                refused: 2,
                safety_net_looks: 0,
                missed_deliveries: 0,
            }
        );
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

    #[test]
    fn a_missed_delivery_is_counted_and_warned_of_once() {
        let r = WebhookReceiver::new("http://127.0.0.1:9/hook").unwrap();
        r.safety_net_look("r1");
        r.delivery_missed("r1");
        r.delivery_missed("r2");
        assert!(r.inner.warned.load(Ordering::Relaxed));
        let s = r.stats();
        assert_eq!((s.safety_net_looks, s.missed_deliveries), (1, 2));
    }
}
