//! The [`Client`]: configuration, and the calls that are not about one job.
//!
//! One `Client` is cheap to clone and meant to be shared: it holds the
//! connection pool, the transport (key, retries) and what the poller has
//! learnt about how long each endpoint's jobs take.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reka_inference_api::types::{ErrorResponse, ModelInfo, SubmitRequest};
use reka_inference_api::{Hooks, ResponseValue};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::time::Instant;
use url::Url;

use crate::chat::Chat;
use crate::endpoint::Endpoint;
use crate::error::{ApiError, Error, Result};
use crate::job::{Completion, Job};
use crate::poll::{Estimates, PollPolicy};
use crate::requests::Requests;
use crate::retry::{RetryPolicy, parse_retry_after};
use crate::transport::{ApiTransport, AuthHeader, Credentials, RawAnswer, with_context};

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
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub api: reka_inference_api::Client,
    pub http: reqwest::Client,
    pub transport: Arc<ApiTransport>,
    pub base_url: Url,
    pub auth_header: AuthHeader,
    pub has_key: bool,
    pub poll: PollPolicy,
    pub wait_timeout: Duration,
    pub estimates: Estimates,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url.as_str())
            .field("auth_header", &self.inner.auth_header)
            .field(
                "api_key",
                &if self.inner.has_key {
                    "<redacted>"
                } else {
                    "<none>"
                },
            )
            .field("poll", &self.inner.poll)
            .field("retry", self.inner.transport.retry_policy())
            .field("wait_timeout", &self.inner.wait_timeout)
            .finish()
    }
}

impl Client {
    /// A client configured from the environment: `REKA_API_KEY` (required)
    /// and `REKA_BASE_URL` (default [`DEFAULT_BASE_URL`]).
    pub fn from_env() -> Result<Client> {
        Client::builder().from_env().build()
    }

    /// A builder with the default settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// The generated low-level client, sharing this client's transport.
    pub fn api(&self) -> &reka_inference_api::Client {
        &self.inner.api
    }

    /// Listing and inspecting requests.
    pub fn requests(&self) -> Requests {
        Requests::new(self.clone())
    }

    /// OpenAI-compatible chat completions.
    pub fn chat(&self) -> Chat {
        Chat::new(self.clone())
    }

    /// The endpoints this key can submit to.
    pub async fn models(&self) -> Result<Vec<ModelInfo>> {
        let list = self.call(None, self.api().list_models().send()).await?;
        Ok(list.items)
    }

    /// Submits a job with a fresh idempotency key.
    ///
    /// `input` is the endpoint's free-form input object (its fields are not
    /// published); anything that serialises to a JSON object works. The
    /// submit is retried with the same `Idempotency-Key` on transport errors
    /// and 5xx answers, so a lost response never creates a second job.
    pub async fn submit(
        &self,
        endpoint: impl Into<Endpoint>,
        input: impl Serialize,
    ) -> Result<Job> {
        self.submit_with(endpoint, input, SubmitOptions::default())
            .await
    }

    /// Submits a job with options (webhook, own idempotency key).
    #[tracing::instrument(level = "debug", skip_all, fields(endpoint))]
    pub async fn submit_with(
        &self,
        endpoint: impl Into<Endpoint>,
        input: impl Serialize,
        options: SubmitOptions,
    ) -> Result<Job> {
        let endpoint = endpoint.into();
        tracing::Span::current().record("endpoint", endpoint.as_str());
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
        let key = options
            .idempotency_key
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let submitted_at = Instant::now();
        let accepted = self
            .submit_raw(&endpoint, input, options.webhook_url, &key)
            .await?;
        tracing::debug!(request_id = %accepted.request_id, "submitted");
        Ok(Job::new(
            self.clone(),
            accepted.request_id,
            Some(endpoint),
            Some(submitted_at),
        ))
    }

    async fn submit_raw(
        &self,
        endpoint: &Endpoint,
        input: Map<String, Value>,
        webhook_url: Option<String>,
        key: &str,
    ) -> Result<reka_inference_api::types::SubmitResponse> {
        let webhook = match webhook_url {
            Some(url) => Some(
                url.parse()
                    .map_err(|e| Error::InvalidInput(format!("webhook_url: {e}")))?,
            ),
            None => None,
        };
        let body = SubmitRequest {
            input,
            webhook_url: webhook,
        };
        let api = self.api();
        let model = endpoint.model();
        macro_rules! submit {
            ($op:ident) => {
                self.call(
                    None,
                    api.$op()
                        .model(model)
                        .idempotency_key(key)
                        .body(body)
                        .send(),
                )
                .await
            };
        }
        match endpoint.capability() {
            "image-to-video" => submit!(submit_image_to_video),
            "text-to-image" => submit!(submit_text_to_image),
            "edit" => submit!(submit_edit),
            "text-to-video" => submit!(submit_text_to_video),
            "text-to-speech" => submit!(submit_text_to_speech),
            "image-to-bbox" => submit!(submit_image_to_bbox),
            // A capability the spec does not know yet: the same envelope,
            // sent through the same transport.
            _ => {
                let url = self.url(&format!("/v2/inference/{}", endpoint.as_str()))?;
                let request = self
                    .inner
                    .http
                    .post(url)
                    .header("idempotency-key", key)
                    .json(&body);
                self.send_json(request, "submit").await
            }
        }
    }

    /// A handle on a request submitted elsewhere (another process, before a
    /// restart), by its id. Nothing is sent until the handle is used.
    pub fn job(&self, request_id: impl Into<String>) -> Job {
        Job::new(self.clone(), request_id.into(), None, None)
    }

    /// Submits, waits with the default deadline, and returns the output.
    pub async fn run(
        &self,
        endpoint: impl Into<Endpoint>,
        input: impl Serialize,
    ) -> Result<Completion> {
        self.submit(endpoint, input).await?.wait().await
    }

    /// An absolute URL under the base URL.
    pub(crate) fn url(&self, path: &str) -> Result<Url> {
        let base = self.inner.base_url.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}{path}"))
            .map_err(|e| Error::InvalidInput(format!("{path}: {e}")))
    }

    /// Runs one generated call and turns its outcome into this crate's
    /// types, keeping the raw body of an error answer.
    pub(crate) async fn call<T>(
        &self,
        deadline: Option<Instant>,
        fut: impl Future<
            Output = std::result::Result<
                ResponseValue<T>,
                reka_inference_api::Error<ErrorResponse>,
            >,
        >,
    ) -> Result<T> {
        let (outcome, raw) = with_context(deadline, fut).await;
        match outcome {
            Ok(value) => Ok(value.into_inner()),
            Err(e) => Err(convert_error(e, raw).await),
        }
    }

    /// Sends a hand-built request through the transport and decodes JSON.
    pub(crate) async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        operation: &'static str,
    ) -> Result<T> {
        let response = self.send_raw(request, operation, false).await?;
        let status = response.status();
        let raw_body = response.bytes().await.map_err(Error::Transport)?;
        serde_json::from_slice(&raw_body).map_err(|e| Error::Decode {
            status,
            message: e.to_string(),
            raw_body,
        })
    }

    /// Sends a hand-built request through the transport; an error status
    /// becomes an [`Error`].
    pub(crate) async fn send_raw(
        &self,
        request: reqwest::RequestBuilder,
        operation: &'static str,
        stream: bool,
    ) -> Result<reqwest::Response> {
        let request = request
            .build()
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        let http = &self.inner.http;
        let (outcome, _) = with_context(
            None,
            self.inner.transport.send(http, request, operation, stream),
        )
        .await;
        let response = outcome.map_err(Error::Transport)?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(Error::Transport)?;
        Err(api_error(RawAnswer {
            status,
            headers,
            body,
        }))
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

/// Turns an error answer into [`Error::Api`] or, for 429, [`Error::RateLimited`].
pub(crate) fn api_error(raw: RawAnswer) -> Error {
    let api = ApiError::from_parts(raw.status, &raw.headers, raw.body);
    if raw.status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        let retry_after = raw
            .headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
        return Error::RateLimited {
            retry_after,
            api: Box::new(api),
        };
    }
    Error::Api(Box::new(api))
}

async fn convert_error(
    e: reka_inference_api::Error<ErrorResponse>,
    raw: Option<RawAnswer>,
) -> Error {
    use reka_inference_api::Error as E;
    match e {
        E::ErrorResponse(rv) => match raw {
            Some(raw) => api_error(raw),
            None => {
                // The transport always records error answers; rebuild one
                // from the typed value should that ever not hold.
                let status = rv.status();
                let headers = rv.headers().clone();
                let body = serde_json::to_vec(&rv.into_inner()).unwrap_or_default();
                api_error(RawAnswer {
                    status,
                    headers,
                    body: body.into(),
                })
            }
        },
        E::UnexpectedResponse(resp) => {
            let status = resp.status();
            let headers = resp.headers().clone();
            match resp.bytes().await {
                Ok(body) if !status.is_success() => api_error(RawAnswer {
                    status,
                    headers,
                    body,
                }),
                Ok(body) => Error::Decode {
                    status,
                    message: format!("unexpected status {status}"),
                    raw_body: body,
                },
                Err(e) => Error::Transport(e),
            }
        }
        E::InvalidResponsePayload(body, err) => match raw {
            Some(raw) if !raw.status.is_success() => api_error(raw),
            _ => Error::Decode {
                status: reqwest::StatusCode::OK,
                message: err.to_string(),
                raw_body: body,
            },
        },
        E::CommunicationError(e) | E::ResponseBodyError(e) | E::InvalidUpgrade(e) => {
            Error::Transport(e)
        }
        E::InvalidRequest(msg) | E::Custom(msg) => Error::InvalidInput(msg),
    }
}

/// Options of [`Client::submit_with`].
#[derive(Debug, Clone, Default)]
pub struct SubmitOptions {
    /// Called by the service with the request's record when it finishes.
    pub webhook_url: Option<String>,
    /// Your own idempotency key (default: a fresh UUID v4). Reuse it to
    /// make a resubmission after a crash return the original job.
    pub idempotency_key: Option<String>,
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
///     .timeout(Duration::from_secs(30))
///     .build()?;
/// assert!(!format!("{client:?}").contains("sk-example"));
/// # Ok::<(), reka_inference::Error>(())
/// ```
#[derive(Clone)]
pub struct ClientBuilder {
    api_key: Option<String>,
    auth_header: AuthHeader,
    base_url: String,
    allow_insecure_http: bool,
    timeout: Duration,
    connect_timeout: Duration,
    user_agent: String,
    poll: PollPolicy,
    retry: RetryPolicy,
    wait_timeout: Duration,
    http: Option<reqwest::Client>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("auth_header", &self.auth_header)
            .field("base_url", &self.base_url)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            api_key: None,
            auth_header: AuthHeader::default(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            allow_insecure_http: false,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            user_agent: concat!("reka-inference-rust/", env!("CARGO_PKG_VERSION")).to_owned(),
            poll: PollPolicy::default(),
            retry: RetryPolicy::default(),
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
            http: None,
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

    /// The timeout of one HTTP exchange (default 60 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// The connect timeout (default 10 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
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
    pub fn wait_timeout(mut self, d: Duration) -> Self {
        self.wait_timeout = d;
        self
    }

    /// Uses your own `reqwest::Client` (proxies, certificates, pools). The
    /// builder's timeouts and user agent then do not apply. Configure it
    /// not to follow redirects across origins
    /// (`reqwest::redirect::Policy::none()` is simplest): a redirect that
    /// reqwest follows by itself never passes back through the transport.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
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
        let http = match self.http {
            Some(http) => http,
            None => {
                let same_origin = origin.clone();
                reqwest::Client::builder()
                    .timeout(self.timeout)
                    .connect_timeout(self.connect_timeout)
                    .user_agent(self.user_agent)
                    // The transport strips the key from requests to other
                    // origins, but a redirect followed inside reqwest would
                    // keep `X-Api-Key`: follow same-origin redirects only.
                    .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                        if attempt.previous().len() >= 5 {
                            attempt.error("too many redirects")
                        } else if attempt.url().origin() == same_origin {
                            attempt.follow()
                        } else {
                            attempt.stop()
                        }
                    }))
                    .build()
                    .map_err(|e| Error::Config(format!("building the HTTP client: {e}")))?
            }
        };
        let transport = Arc::new(ApiTransport::new(origin, credentials, self.retry));
        let hooks = Hooks::from_arc(transport.clone());
        let base = base_url.as_str().trim_end_matches('/');
        let api = reka_inference_api::Client::new_with_client(base, http.clone(), hooks);
        Ok(Client {
            inner: Arc::new(Inner {
                api,
                http,
                transport,
                base_url,
                auth_header: self.auth_header,
                has_key: self.api_key.is_some(),
                poll: self.poll,
                wait_timeout: self.wait_timeout,
                estimates: Estimates::default(),
            }),
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
