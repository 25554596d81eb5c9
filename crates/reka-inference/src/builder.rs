//! [`ClientBuilder`]: every setting of a client, checked, and the shared
//! plumbing built from them ([`Http`]: the HTTP client, the transport with
//! the key, the defaults of waits). A [`Client`](crate::Client) and a
//! [`Chat`](crate::chat::Chat) for another server are both built from it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::error::{Error, Result};
use crate::http::{Http, Waits};
use crate::poll::{Estimates, PollPolicy};
use crate::retry::RetryPolicy;
use crate::transport::{
    AddressPolicy, ApiTransport, AuthHeader, Credentials, GuardedResolver, HttpHook,
};

/// The service's base URL.
pub const DEFAULT_BASE_URL: &str = "https://vision-agent.api.reka.ai";

/// How long [`Job::wait`](crate::Job::wait) waits by default before giving
/// up: 30 minutes, long enough for a video job behind a queue, short enough
/// that a stuck job does not hang a program forever.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Builds a [`Client`](crate::Client).
///
/// ```
/// use std::time::Duration;
/// use reka_inference::{AuthHeader, Client};
///
/// let client = Client::builder()
///     .api_key("sk-example")
///     .auth_header(AuthHeader::Bearer)
///     .base_url("http://127.0.0.1:8787") // plain http is fine on loopback
///     .request_timeout(Duration::from_secs(30))
///     .build()?;
/// assert!(!format!("{client:?}").contains("sk-example"));
/// # Ok::<(), reka_inference::Error>(())
/// ```
pub struct ClientBuilder {
    api_key: Option<String>,
    auth_header: AuthHeader,
    base_url: String,
    allow_insecure_http: bool,
    allow_local_downloads: bool,
    request_timeout: Duration,
    read_timeout: Duration,
    connect_timeout: Duration,
    max_body_bytes: u64,
    user_agent: String,
    poll: PollPolicy,
    retry: RetryPolicy,
    wait_timeout: Duration,
    http: Option<reqwest::ClientBuilder>,
    hooks: Vec<Arc<dyn HttpHook>>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("auth_header", &self.auth_header)
            .field("base_url", &self.base_url)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("request_timeout", &self.request_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

/// The default [`ClientBuilder::max_body_bytes`]: 32 MiB, far above any
/// status, record or list page, far below what would hurt a small machine.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 32 << 20;

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            api_key: None,
            auth_header: AuthHeader::default(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            allow_insecure_http: false,
            allow_local_downloads: false,
            request_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            user_agent: concat!("reka-inference-rust/", env!("CARGO_PKG_VERSION")).to_owned(),
            poll: PollPolicy::default(),
            retry: RetryPolicy::default(),
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
            http: None,
            hooks: Vec::new(),
        }
    }
}

impl ClientBuilder {
    /// Reads `REKA_API_KEY` and `REKA_BASE_URL` where they are set.
    pub fn from_env(mut self) -> Self {
        if let Some(key) = std::env::var("REKA_API_KEY").ok().filter(|k| !k.is_empty()) {
            self.api_key = Some(key);
        }
        if let Some(url) = std::env::var("REKA_BASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            self.base_url = url;
        }
        self
    }

    /// The API key.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Which header carries the key (default `X-Api-Key`).
    pub fn auth_header(mut self, style: AuthHeader) -> Self {
        self.auth_header = style;
        self
    }

    /// The service's base URL (default [`DEFAULT_BASE_URL`]). A trailing
    /// `/v2/inference`, as OpenAI-style clients use, is accepted and removed.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Allows a plain-`http` base URL on a host other than loopback. The key
    /// then crosses the network unencrypted: only for trusted networks.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Allows downloads from loopback and private addresses although the
    /// API is not on one (they are allowed by default when it is).
    /// Link-local, multicast and unspecified addresses stay refused.
    pub fn allow_local_downloads(mut self, allow: bool) -> Self {
        self.allow_local_downloads = allow;
        self
    }

    /// The longest one exchange of a JSON call may take, its whole body
    /// read, retries not included (default 30 s). Downloads and chat
    /// streams are bounded by [`read_timeout`](Self::read_timeout) instead.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// The longest a streamed answer (a download, a chat stream) may stay
    /// silent (default 30 s). A slow but steady download never times out.
    pub fn read_timeout(mut self, d: Duration) -> Self {
        self.read_timeout = d;
        self
    }

    /// The connect timeout (default 10 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// The largest answer the client holds in memory (default
    /// [`DEFAULT_MAX_BODY_BYTES`]); a larger one is
    /// [`Error::BodyTooLarge`] and is not read past the limit. Downloads to
    /// a file are streamed and not limited.
    pub fn max_body_bytes(mut self, limit: u64) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// How jobs are polled.
    pub fn poll_policy(mut self, p: PollPolicy) -> Self {
        self.poll = p;
        self
    }

    /// How failed requests are retried.
    pub fn retry_policy(mut self, p: RetryPolicy) -> Self {
        self.retry = p;
        self
    }

    /// The default deadline of [`Job::wait`](crate::Job::wait) (default [`DEFAULT_WAIT_TIMEOUT`]).
    /// A duration too long to represent means no deadline.
    pub fn wait_timeout(mut self, d: Duration) -> Self {
        self.wait_timeout = d;
        self
    }

    /// Starts from your own `reqwest::ClientBuilder` (proxies, certificates,
    /// pools). The client still sets its timeouts, user agent and redirect
    /// policy on it: redirects are followed by the client itself, so the key
    /// never follows one to another origin.
    pub fn http_client_builder(mut self, builder: reqwest::ClientBuilder) -> Self {
        self.http = Some(builder);
        self
    }

    /// Adds a [`HttpHook`]: your own code on every request the client
    /// sends (headers for trace propagation, metrics), in the order added.
    pub fn hook(mut self, hook: impl HttpHook) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// Checks the settings and builds what every feature shares: the
    /// HTTP client, the transport with the key, and the defaults of waits.
    pub(crate) fn build_http(self) -> Result<Http> {
        let base_url = parse_base_url(&self.base_url, self.allow_insecure_http)?;
        let origin = base_url.origin();
        let credentials = match &self.api_key {
            Some(key) => Some(Credentials::new(key, self.auth_header).map_err(Error::Config)?),
            None => None,
        };
        let http = self
            .http
            .unwrap_or_default()
            .read_timeout(self.read_timeout)
            .connect_timeout(self.connect_timeout)
            .user_agent(self.user_agent)
            // Redirects are followed by the transport, hop by hop, so that
            // the key is only ever sent to the API's own origin.
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver))
            .build()
            .map_err(|e| Error::Config(format!("building the HTTP client: {e}")))?;
        let mut addresses = AddressPolicy::for_base_url(&base_url);
        addresses.allow_local |= self.allow_local_downloads;
        let transport = Arc::new(ApiTransport::new(
            origin,
            credentials,
            self.retry,
            self.request_timeout,
            self.max_body_bytes,
            addresses,
            self.hooks,
        ));
        let waits = Waits {
            poll: self.poll,
            timeout: self.wait_timeout,
            estimates: Estimates::default(),
        };
        Ok(Http::new(http, transport, base_url, waits))
    }

    /// Whether a key was given, and in which header it goes.
    pub(crate) fn key_setting(&self) -> (bool, AuthHeader) {
        (self.api_key.is_some(), self.auth_header)
    }
}

#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
impl ClientBuilder {
    /// A builder set up for a running simulator: its base URL, a key it
    /// accepts, and the default poll policy scaled to its clock (a
    /// simulator at time scale 0.01 runs a 30 s job in 0.3 s, and a client
    /// that did not know would poll as if it took 30 s).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use reka_inference::Client;
    /// use reka_inference_sim::{SimConfig, start};
    ///
    /// let sim = start(SimConfig::new().time_scale(0.01)).await?;
    /// let client = Client::builder_for_sim(&sim).build()?;
    /// let done = client
    ///     .run("nano-banana/text-to-image", serde_json::json!({"prompt": "a fox"}))
    ///     .await?;
    /// # let _ = done;
    /// # Ok(()) }
    /// ```
    pub fn for_sim(sim: &reka_inference_sim::RunningSim) -> ClientBuilder {
        ClientBuilder::default()
            .api_key(sim.api_key())
            .base_url(sim.base_url())
            .poll_policy(PollPolicy::default().scaled(sim.time_scale()))
    }
}

fn parse_base_url(text: &str, allow_insecure_http: bool) -> Result<Url> {
    let mut url = Url::parse(text.trim())
        .map_err(|e| Error::Config(format!("base URL {text:?} is not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure_http || is_loopback(&url) => {}
        "http" => {
            return Err(Error::Config(format!(
                "base URL {text:?} is plain http on a non-loopback host: the API key would cross \
                 the network unencrypted (use https, or allow_insecure_http(true))"
            )));
        }
        other => {
            return Err(Error::Config(format!(
                "base URL scheme {other:?} is not http(s)"
            )));
        }
    }
    if url.host().is_none() || url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Config(format!(
            "base URL {text:?} must be an origin with an optional path, without query or fragment"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Config("base URL must not carry credentials".into()));
    }
    let path = url.path().trim_end_matches('/');
    // The API's own root given with the base (OpenAI-style
    // `https://host/v2/inference`): the operations add it again.
    let root = reka_inference_api::operations::API_ROOT;
    let path = match path.strip_suffix(root) {
        Some(above) if !root.is_empty() => above,
        _ => path,
    }
    .to_owned();
    url.set_path(&path);
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback_unless_allowed() {
        assert!(parse_base_url("http://127.0.0.1:8787", false).is_ok());
        assert!(parse_base_url("http://localhost:1", false).is_ok());
        assert!(parse_base_url("http://[::1]:1", false).is_ok());
        assert!(matches!(
            parse_base_url("http://api.example.com", false),
            Err(Error::Config(_))
        ));
        assert!(parse_base_url("http://api.example.com", true).is_ok());
        assert!(parse_base_url("ftp://x", true).is_err());
    }

    #[test]
    fn openai_style_suffix_is_removed() {
        let u = parse_base_url("https://vision-agent.api.reka.ai/v2/inference/", false).unwrap();
        assert_eq!(u.as_str(), "https://vision-agent.api.reka.ai/");
        let u = parse_base_url("https://proxy.example.com/reka", false).unwrap();
        assert_eq!(u.path(), "/reka");
    }
}
