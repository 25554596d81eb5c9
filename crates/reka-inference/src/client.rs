//! The [`Client`]: configuration, and the calls that are not about one job.
//!
//! One `Client` is cheap to clone and meant to be shared: it holds the
//! connection pool, the transport (key, retries) and what the poller has
//! learnt about how long each endpoint's jobs take.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reka_inference_api::Hooks;
use reka_inference_api::types::ModelInfo;
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;
use url::Url;

use crate::chat::Chat;
use crate::endpoint::IntoEndpoint;
use crate::error::{Error, Result};
use crate::http::{Http, Waits};
use crate::job::{Job, JobOutput};
use crate::job_set::JobSet;
use crate::jobs::Jobs;
use crate::output::{self, MediaRef, Progress};
use crate::poll::{Estimates, PollPolicy};
use crate::rate_limit::RateLimit;
use crate::retry::RetryPolicy;
use crate::submit::SubmitOptions;
use crate::submitter::{Submitter, SubmitterOptions};
use crate::transport::{
    AddressPolicy, ApiTransport, AuthHeader, Credentials, GuardedResolver, RequestHook,
};

/// The service's base URL.
pub const DEFAULT_BASE_URL: &str = "https://vision-agent.api.reka.ai";

/// How long [`Job::wait`] waits by default before giving up: 30 minutes,
/// long enough for a video job behind a queue, short enough that a stuck
/// job does not hang a program forever.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A client of the inference API.
///
/// ```no_run
/// use reka_inference::{Client, Endpoint};
/// use serde_json::json;
///
/// # async fn run() -> reka_inference::Result<()> {
/// let client = Client::from_env()?; // REKA_API_KEY, optional REKA_BASE_URL
/// let done = client
///     .run(Endpoint::NANO_BANANA_TEXT_TO_IMAGE, json!({"prompt": "a lighthouse at dusk"}))
///     .await?;
/// println!("{}", done.output);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    http: Http,
    api: reka_inference_api::Client,
    auth_header: AuthHeader,
    has_key: bool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waits = self.http.waits();
        f.debug_struct("Client")
            .field("base_url", &self.http.base_url().as_str())
            .field("auth_header", &self.auth_header)
            .field(
                "api_key",
                &if self.has_key { "<redacted>" } else { "<none>" },
            )
            .field("poll", &waits.poll)
            .field("retry", self.http.transport().retry_policy())
            .field("wait_timeout", &waits.timeout)
            .finish()
    }
}

impl Client {
    /// A client configured from the environment: `REKA_API_KEY` (required:
    /// [`Error::Config`] when it is missing, rather than a 401 on the first
    /// call) and `REKA_BASE_URL` (default [`DEFAULT_BASE_URL`]).
    pub fn from_env() -> Result<Client> {
        let builder = Client::builder().from_env();
        if builder.api_key.is_none() {
            return Err(Error::Config(
                "REKA_API_KEY is not set (or empty): the API needs a key".into(),
            ));
        }
        builder.build()
    }

    /// A builder with the default settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &Url {
        self.http.base_url()
    }

    /// The generated low-level client, sharing this client's transport
    /// (key, retries, redirects, limits).
    pub fn api(&self) -> &reka_inference_api::Client {
        &self.api
    }

    /// Listing jobs, pages followed for you.
    pub fn jobs(&self) -> Jobs {
        Jobs::new(self.http.clone())
    }

    /// OpenAI-compatible chat completions.
    pub fn chat(&self) -> Chat {
        Chat::new(self.http.clone())
    }

    /// A [`Submitter`]: many submits, a few at a time, paced by the
    /// service's rate limits.
    pub fn submitter<T: Send + 'static>(&self, options: SubmitterOptions) -> Submitter<T> {
        Submitter::new(self.http.clone(), options)
    }

    /// What the service said of its rate limit in its last answer to a
    /// submit (or, before any submit, to any call): `None` when it never
    /// said anything. See [`RateLimit`] for the headers read.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        let limits = self.http.transport().rate_limits();
        limits.get("submit").or_else(|| limits.latest())
    }

    /// An empty set of jobs to wait for together.
    pub fn job_set(&self) -> JobSet {
        JobSet::new(self.http.clone())
    }

    /// The endpoints this key can submit to.
    ///
    /// The list is read whichever wrapper the server uses (`items` or
    /// `models`), and an entry needs only `model_id` and `capability`.
    pub async fn models(&self) -> Result<Vec<ModelInfo>> {
        let url = self.http.api_url(&["models"])?;
        let answer = self
            .http
            .call(Method::GET, url, "list_models")
            .send()
            .await?;
        models_from(answer.status, &answer.body)
    }

    /// Submits a job with a fresh idempotency key.
    ///
    /// `input` is the endpoint's free-form input object (its fields are not
    /// published); anything that serialises to a JSON object works. The
    /// submit is retried with the same `Idempotency-Key` on transport errors
    /// and 5xx answers, so a lost response never creates a second job; when
    /// the outcome stays unknown, the error is
    /// [`Error::SubmitOutcomeUnknown`] with the key to submit again with.
    pub async fn submit(&self, endpoint: impl IntoEndpoint, input: impl Serialize) -> Result<Job> {
        self.submit_with(endpoint, input, SubmitOptions::default())
            .await
    }

    /// Submits a job with options (webhook, own idempotency key, deadline).
    pub async fn submit_with(
        &self,
        endpoint: impl IntoEndpoint,
        input: impl Serialize,
        options: SubmitOptions,
    ) -> Result<Job> {
        crate::submit::submit(&self.http, endpoint, input, options).await
    }

    /// A handle on a request submitted elsewhere (another process, before a
    /// restart), by its id. Nothing is sent until the handle is used; an id
    /// that cannot be a request id (empty, `..`, control characters) makes
    /// every call of the handle fail with [`Error::InvalidInput`].
    pub fn job(&self, request_id: impl Into<String>) -> Job {
        Job::new(self.http.clone(), request_id.into(), None, None)
    }

    /// [`Client::job`] for a request whose endpoint you know: its wait then
    /// learns, and uses, how long that endpoint's jobs take.
    ///
    /// ```no_run
    /// # async fn run(client: reka_inference::Client) -> reka_inference::Result<()> {
    /// let job = client.job_for("veo-3.1/text-to-video", "0193f6a2-...")?;
    /// let done = job.wait().await?;
    /// # Ok(()) }
    /// ```
    pub fn job_for(
        &self,
        endpoint: impl IntoEndpoint,
        request_id: impl Into<String>,
    ) -> Result<Job> {
        let endpoint = endpoint.into_endpoint()?;
        Ok(Job::new(
            self.http.clone(),
            request_id.into(),
            Some(endpoint),
            None,
        ))
    }

    /// Submits, waits with the default deadline, and returns the output.
    pub async fn run(
        &self,
        endpoint: impl IntoEndpoint,
        input: impl Serialize,
    ) -> Result<JobOutput> {
        self.submit(endpoint, input).await?.wait().await
    }

    /// Streams the file at `url` into `path`, calling `progress` as bytes
    /// arrive; returns the number of bytes written. Redirects are followed
    /// (the key goes only to the API's origin), and addresses that no
    /// output should point at (link-local, multicast, unspecified; loopback
    /// and private ones unless the API is on one) are refused.
    pub async fn download_to_file(
        &self,
        url: &str,
        path: impl AsRef<Path>,
        progress: impl FnMut(Progress) + Send,
    ) -> Result<u64> {
        output::download_to_file(&self.http, url, path.as_ref(), progress).await
    }

    /// Fetches the file at `url` into memory, up to the client's
    /// [`max_body_bytes`](ClientBuilder::max_body_bytes).
    pub async fn download_bytes(
        &self,
        url: &str,
        progress: impl FnMut(Progress) + Send,
    ) -> Result<Bytes> {
        output::download_bytes(&self.http, url, progress).await
    }

    /// Downloads every media file of a finished job into `dir` (created if
    /// missing), up to four at a time; returns the paths written, in output
    /// order. Each file is named `<request id>-<index>.<ext>`, the
    /// extension from the media type the server sends.
    ///
    /// ```no_run
    /// # async fn run(client: reka_inference::Client) -> reka_inference::Result<()> {
    /// let done = client.run("nano-banana/text-to-image", serde_json::json!({"prompt": "a fox"})).await?;
    /// for path in client.download_outputs(&done, "out").await? {
    ///     println!("saved {}", path.display());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn download_outputs(
        &self,
        output: &JobOutput,
        dir: impl AsRef<Path>,
    ) -> Result<Vec<PathBuf>> {
        // A fn item, not a closure: its signature is general over the
        // `&MediaRef` lifetime, which keeps this future `Send` for callers
        // that spawn it or box it.
        fn no_progress(_: usize, _: &MediaRef, _: Progress) {}
        output::download_outputs(&self.http, output, dir.as_ref(), no_progress).await
    }

    /// [`Client::download_outputs`], calling `progress` with the index of
    /// the file, where it is, and how far its download has come.
    pub async fn download_outputs_with(
        &self,
        output: &JobOutput,
        dir: impl AsRef<Path>,
        progress: impl FnMut(usize, &MediaRef, Progress) + Send,
    ) -> Result<Vec<PathBuf>> {
        output::download_outputs(&self.http, output, dir.as_ref(), progress).await
    }
}

/// Reads a model list in either wrapper (`items` or `models`, or a bare
/// array); an entry needs only `model_id` and `capability`.
fn models_from(status: reqwest::StatusCode, body: &Bytes) -> Result<Vec<ModelInfo>> {
    let bad = |message: String| Error::Decode {
        status,
        message,
        raw_body: body.clone(),
    };
    let value: Value = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    let entries = match &value {
        Value::Array(items) => items,
        Value::Object(map) => match map
            .get("items")
            .or_else(|| map.get("models"))
            .or_else(|| map.get("data"))
        {
            Some(Value::Array(items)) => items,
            _ => return Err(bad("no `items` or `models` list in the answer".into())),
        },
        _ => return Err(bad("the answer is not a model list".into())),
    };
    entries
        .iter()
        .map(|entry| {
            let mut entry = entry.clone();
            if let Value::Object(map) = &mut entry
                && !map.contains_key("endpoint_id")
                && let (Some(Value::String(m)), Some(Value::String(c))) =
                    (map.get("model_id"), map.get("capability"))
            {
                let id = format!("{m}/{c}");
                map.insert("endpoint_id".into(), Value::String(id));
            }
            serde_json::from_value(entry).map_err(|e| bad(format!("a model entry: {e}")))
        })
        .collect()
}

/// Builds a [`Client`].
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
    hooks: Vec<Arc<dyn RequestHook>>,
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

    /// The default deadline of [`Job::wait`] (default [`DEFAULT_WAIT_TIMEOUT`]).
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

    /// Adds a [`RequestHook`]: your own code on every request the client
    /// sends (headers for trace propagation, metrics), in the order added.
    pub fn hook(mut self, hook: impl RequestHook) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// Checks the settings and builds the client.
    pub fn build(self) -> Result<Client> {
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
        let hooks = Hooks::from_arc(transport.clone());
        let base = base_url.as_str().trim_end_matches('/');
        let api = reka_inference_api::Client::new_with_client(base, http.clone(), hooks);
        let waits = Waits {
            poll: self.poll,
            timeout: self.wait_timeout,
            estimates: Estimates::default(),
        };
        Ok(Client {
            http: Http::new(http, transport, base_url, waits),
            api,
            auth_header: self.auth_header,
            has_key: self.api_key.is_some(),
        })
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
    let path = path
        .strip_suffix("/v2/inference")
        .unwrap_or(path)
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

    #[test]
    fn the_key_never_shows_in_debug() {
        let b = Client::builder().api_key("sk-secret-123");
        assert!(!format!("{b:?}").contains("sk-secret-123"));
        let c = b.build().unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("sk-secret-123"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
