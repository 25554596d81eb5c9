//! How a [`WebhookReceiver`](super::WebhookReceiver) holds up as a server
//! exposed to the internet ([`ReceiverLimits`]), and how
//! [`WebhookReceiver::listen_with`](super::WebhookReceiver::listen_with)
//! starts ([`ListenOptions`], [`UrlCheck`]).

use std::time::Duration;

use super::DeliveryVerifier;

/// The largest delivery body read: a record or an envelope with an output
/// is a few kilobytes; outputs are URLs, not bytes.
pub const MAX_DELIVERY_BYTES: usize = 1 << 20;

/// What a receiver tolerates from the connections that reach it.
///
/// The body's timeout and the cap on buffered bytes hold wherever the
/// receiver's handler runs (its own server or yours); the header timeout
/// and the connection cap are its own server's
/// ([`WebhookReceiver::listen`](super::WebhookReceiver::listen)). Mounted
/// in your own server ([`WebhookReceiver::router`](super::WebhookReceiver::router)),
/// that server must bound the rest itself: a header read timeout (hyper's
/// `http1::Builder::header_read_timeout`, which axum's `serve` does not
/// set), a cap on connections, and HTTP/2 limits if it speaks HTTP/2.
///
/// ```
/// use std::time::Duration;
/// use reka_inference::webhook::ReceiverLimits;
///
/// let strict = ReceiverLimits::default()
///     .header_read_timeout(Duration::from_secs(2))
///     .max_connections(64);
/// # let _ = strict;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverLimits {
    pub(crate) header_read_timeout: Duration,
    pub(crate) body_read_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) max_buffered_bytes: usize,
}

impl Default for ReceiverLimits {
    /// 5 s for a request's headers (and between two requests of a kept-alive
    /// connection), 10 s for its body, 256 connections at once (at most
    /// half the files the process may open), 16 MiB of bodies buffered at
    /// once across connections.
    fn default() -> Self {
        ReceiverLimits {
            header_read_timeout: Duration::from_secs(5),
            body_read_timeout: Duration::from_secs(10),
            max_connections: 256,
            max_buffered_bytes: 16 << 20,
        }
    }
}

impl ReceiverLimits {
    /// Time a connection has to send a request's headers after it opens or
    /// after its previous answer; then it is closed (own server only).
    pub fn header_read_timeout(mut self, d: Duration) -> Self {
        self.header_read_timeout = d.max(Duration::from_millis(1));
        self
    }

    /// Time a request has to send its whole body once its headers are in;
    /// then it is answered `408` and its connection closed.
    pub fn body_read_timeout(mut self, d: Duration) -> Self {
        self.body_read_timeout = d.max(Duration::from_millis(1));
        self
    }

    /// Connections open at once; at the cap the longest-idle one is closed
    /// to make room (own server only). At least 8.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(8);
        self
    }

    /// Bytes of delivery bodies held at once, across connections (at least
    /// one whole delivery, [`MAX_DELIVERY_BYTES`]): a request whose body
    /// does not fit is answered `503` with `Retry-After: 1` at once.
    pub fn max_buffered_bytes(mut self, n: usize) -> Self {
        self.max_buffered_bytes = n.max(MAX_DELIVERY_BYTES);
        self
    }
}

/// What [`WebhookReceiver::listen_with`](super::WebhookReceiver::listen_with)
/// does with the check of its public URL
/// ([`WebhookReceiver::check_url`](super::WebhookReceiver::check_url)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UrlCheck {
    /// Check, and log a warning when the URL does not reach the receiver
    /// (what [`WebhookReceiver::listen`](super::WebhookReceiver::listen) does).
    #[default]
    Warn,
    /// Check, and fail with [`Error::WebhookUnreachable`](crate::Error::WebhookUnreachable)
    /// when the URL does not reach the receiver.
    Require,
    /// Do not check: for a URL only the service can reach (an allow-list,
    /// a private network of the service's).
    Skip,
}

/// How [`WebhookReceiver::listen_with`](super::WebhookReceiver::listen_with)
/// starts.
///
/// ```no_run
/// # async fn run() -> reka_inference::Result<()> {
/// use reka_inference::webhook::{ListenOptions, UrlCheck, WebhookReceiver};
///
/// let receiver = WebhookReceiver::listen_with(
///     "0.0.0.0:8080".parse().unwrap(),
///     ListenOptions::default()
///         .public_url("https://hooks.example.com/reka")
///         .url_check(UrlCheck::Require),
/// )
/// .await?; // fails here if https://hooks.example.com/reka does not reach this process
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct ListenOptions {
    pub(crate) public_url: Option<String>,
    pub(crate) limits: ReceiverLimits,
    pub(crate) url_check: UrlCheck,
    pub(crate) verifier: Option<Box<dyn DeliveryVerifier>>,
}

impl std::fmt::Debug for ListenOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenOptions")
            .field("public_url", &self.public_url)
            .field("limits", &self.limits)
            .field("url_check", &self.url_check)
            .field("verifier", &self.verifier.is_some())
            .finish()
    }
}

impl ListenOptions {
    /// The URL the service reaches the receiver at (a tunnel, a load
    /// balancer); default `http://<bound address>/`.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// What the receiver tolerates from connections.
    pub fn limits(mut self, limits: ReceiverLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Whether and how the public URL is checked at the start.
    pub fn url_check(mut self, check: UrlCheck) -> Self {
        self.url_check = check;
        self
    }

    /// Checks every delivery with `verifier` before believing it.
    pub fn verifier(mut self, verifier: impl DeliveryVerifier) -> Self {
        self.verifier = Some(Box::new(verifier));
        self
    }
}
