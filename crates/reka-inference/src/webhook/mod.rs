//! Webhooks: waits that end at the service's delivery instead of at a poll.
//!
//! A submit with a webhook ([`SubmitOptions::webhook`](crate::SubmitOptions::webhook))
//! sends a URL the service POSTs the job's record to when it ends. Waits of
//! such a job listen to a [`Deliveries`] source for its request id: a
//! delivery wakes the wait, which confirms it with one fetch of the record
//! (a delivery is a hint: no signature is documented), and a sparse
//! safety-net poll covers deliveries that never come.
//!
//! - [`WebhookDelivery`] reads a delivery body in either known shape.
//! - [`Deliveries`] is the seam between waits and whatever receives the
//!   deliveries; it is always compiled, so a program with its own HTTP
//!   server can implement it.
//! - `WebhookReceiver` (feature `webhooks`) implements it: an axum handler
//!   to mount in your own server, or a server of its own.

use tokio::sync::watch;
use url::Url;

mod delivery;
#[cfg(feature = "webhooks")]
mod receiver;

pub use delivery::{DeliveryShape, WebhookDelivery};
#[cfg(feature = "webhooks")]
#[cfg_attr(docsrs, doc(cfg(feature = "webhooks")))]
pub use receiver::{DeliveryVerifier, WebhookReceiver};

/// Where deliveries for jobs arrive: what a wait listens to besides its
/// polls. [`WebhookReceiver`] (feature `webhooks`) is one;
/// implement it to feed the deliveries your own server receives (bump the
/// request id's count, then the count of all).
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::{Arc, Mutex};
/// use reka_inference::webhook::Deliveries;
/// use tokio::sync::watch;
///
/// /// Deliveries that an existing server hands over by request id.
/// #[derive(Clone)]
/// struct MyServer {
///     url: url::Url,
///     by_id: Arc<Mutex<HashMap<String, watch::Sender<u64>>>>,
///     all: Arc<watch::Sender<u64>>,
/// }
///
/// impl MyServer {
///     fn sender(&self, id: &str) -> watch::Sender<u64> {
///         let mut map = self.by_id.lock().unwrap_or_else(|e| e.into_inner());
///         map.entry(id.to_owned()).or_insert_with(|| watch::channel(0).0).clone()
///     }
///
///     /// Called by the server's handler with each delivery's request id.
///     fn delivered(&self, id: &str) {
///         self.sender(id).send_modify(|n| *n += 1);
///         self.all.send_modify(|n| *n += 1);
///     }
/// }
///
/// impl Deliveries for MyServer {
///     fn url(&self) -> &url::Url {
///         &self.url
///     }
///     fn for_job(&self, request_id: &str) -> watch::Receiver<u64> {
///         self.sender(request_id).subscribe()
///     }
///     fn any(&self) -> watch::Receiver<u64> {
///         self.all.subscribe()
///     }
/// }
///
/// let server = MyServer {
///     url: "https://hooks.example.com/reka".parse()?,
///     by_id: Default::default(),
///     all: Arc::new(watch::channel(0).0),
/// };
/// let seen = server.for_job("r1");
/// server.delivered("r1");
/// assert_eq!(*seen.borrow(), 1);
/// # Ok::<(), url::ParseError>(())
/// ```
pub trait Deliveries: Send + Sync + 'static {
    /// The URL the service delivers to (sent as the submit's `webhook_url`).
    fn url(&self) -> &Url;

    /// The number of deliveries for `request_id` so far, as a watch that
    /// moves with each new one (0 until the first).
    fn for_job(&self, request_id: &str) -> watch::Receiver<u64>;

    /// The number of deliveries for any job so far, as a watch.
    fn any(&self) -> watch::Receiver<u64>;

    /// A wait of `request_id` looked at the job by its safety net, not at
    /// a delivery: the delivery is late or lost, or never comes (a wrong
    /// URL). For counters and warnings; the default does nothing.
    fn safety_net_look(&self, request_id: &str) {
        let _ = request_id;
    }
}

impl std::fmt::Debug for dyn Deliveries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliveries")
            .field("url", &self.url().as_str())
            .finish_non_exhaustive()
    }
}
