//! OpenAI-compatible chat completions, with OpenAI's own types.
//!
//! Requests, answers and stream chunks are `async-openai`'s chat types
//! (types only: requests go through this crate's transport, with its key
//! rule, retries, limits and tracing). Answers keep the JSON they were read
//! from beside the typed view, so a field the types do not know (a
//! `reasoning_content`, a vendor field on a choice) is never dropped and
//! survives a round trip. Streams are read by a small linear-time
//! `text/event-stream` reader with a bound on event size, and end at
//! `data: [DONE]`; a stream that ends without it is an error, never a
//! silently partial answer.
//!
//! The same code talks to Reka or to any OpenAI-compatible server:
//! [`Chat::with_base_url`] and [`Chat::builder`] take a `.../v1`-style base
//! URL, used as is.

mod answer;
mod collect;
mod request;
mod sse;

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};
use reka_inference_api::types::ChatCompletionRequest;
use serde_json::Value;
use url::Url;

pub use answer::{ChatCompletion, ChatCompletionChunk, ToolCall};
/// OpenAI's chat types (`async-openai`'s, types only), so that no other
/// crate is needed to build requests or read answers.
pub use async_openai::types::chat as openai;
pub use collect::ChatCollector;
pub use request::{ChatRequest, Message, function_tool, image_data_uri};

use crate::builder::ClientBuilder;
use crate::error::{Error, Result};
use crate::http::Http;
use crate::retry::RetryPolicy;
use crate::transport::{AuthHeader, HttpHook};

/// The API's chat operation.
const OPERATION: reka_inference_api::operations::Operation =
    reka_inference_api::operations::CREATE_CHAT_COMPLETION;

/// What a streamed answer is asked for as.
const EVENT_STREAM: &str = "text/event-stream";

/// Chat completions; from [`Client::chat`](crate::Client::chat), or
/// [`Chat::builder`] for any OpenAI-compatible server.
///
/// Which key goes where: a `Chat` sends its client's key only to its
/// client's origin. [`Client::chat`](crate::Client::chat) with [`with_base_url`](Self::with_base_url)
/// on another origin therefore sends no key at all; to talk to another
/// server with a key of its own, build the chat with [`Chat::builder`],
/// whose key goes to that server's origin only.
#[derive(Clone)]
pub struct Chat {
    http: Http,
    /// An OpenAI-style base URL (`https://host/v1`) the operation is sent
    /// under instead of the API's root; `None` for the Reka API itself.
    base: Option<Url>,
}

impl std::fmt::Debug for Chat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat")
            .field(
                "url",
                &self.url().map(|u| u.to_string()).unwrap_or_default(),
            )
            .finish_non_exhaustive()
    }
}

impl Chat {
    pub(crate) fn new(http: Http) -> Self {
        Chat { http, base: None }
    }

    /// A chat client for an OpenAI-compatible server at `base_url` (the
    /// base URL of its OpenAI-style API, such as `http://localhost:4000/v1`:
    /// requests go to `<base_url>/chat/completions`), with a key of its own.
    ///
    /// ```
    /// use reka_inference::AuthHeader;
    /// use reka_inference::chat::Chat;
    ///
    /// let chat = Chat::builder("http://localhost:4000/v1")
    ///     .api_key("sk-litellm")
    ///     .auth_header(AuthHeader::Bearer)
    ///     .build()?;
    /// assert_eq!(chat.url()?.as_str(), "http://localhost:4000/v1/chat/completions");
    /// # Ok::<(), reka_inference::Error>(())
    /// ```
    pub fn builder(base_url: impl Into<String>) -> ChatBuilder {
        ChatBuilder {
            base_url: base_url.into(),
            settings: ClientBuilder::default(),
        }
    }

    /// This chat with its requests sent to `<base_url>/chat/completions`,
    /// `base_url` used as is (`https://host/v1`). The client's key is sent
    /// only when `base_url` is on the client's own origin.
    pub fn with_base_url(mut self, base_url: &str) -> Result<Chat> {
        self.base = Some(openai_base(base_url)?);
        Ok(self)
    }

    /// Where requests go: the chat operation's path under the API's base
    /// URL, or below the root under an OpenAI-style base URL.
    pub fn url(&self) -> Result<Url> {
        let path = OPERATION.path;
        let text = match &self.base {
            None => format!("{}{path}", self.http.api_base()),
            Some(base) => {
                let below_root = path
                    .strip_prefix(reka_inference_api::operations::API_ROOT)
                    .unwrap_or(path);
                format!("{}{below_root}", base.as_str().trim_end_matches('/'))
            }
        };
        Url::parse(&text).map_err(|e| Error::Config(format!("chat URL {text:?}: {e}")))
    }

    /// Sends `request` and returns the whole completion.
    #[tracing::instrument(level = "debug", skip_all, fields(model = %request.model))]
    pub async fn create(&self, request: &ChatRequest) -> Result<ChatCompletion> {
        let body = request.body(false)?;
        let response = self.post(body, false).await?;
        let status = response.status();
        let raw = self
            .http
            .read_whole(response, OPERATION.id, |_, _| {})
            .await?;
        let decode_error = |message: String| Error::Decode {
            status,
            message,
            raw_body: raw.clone(),
        };
        let value: Value = serde_json::from_slice(&raw)
            .map_err(|e| decode_error(format!("the chat answer did not decode: {e}")))?;
        if let Some(api) = sse::error_event(status, &value, &raw) {
            return Err(api);
        }
        ChatCompletion::from_value(value)
            .map_err(|e| decode_error(format!("the chat answer did not decode: {e}")))
    }

    /// Sends `request` with `stream: true` and yields the chunks as they
    /// arrive. The stream ends at `data: [DONE]`; an error item ends it too
    /// (an `{"error": ...}` event is [`Error::Api`]), and so does a stream
    /// that stops before `[DONE]` (an error: the answer is incomplete). A
    /// server that answers the streaming request with a whole JSON
    /// completion yields it as one chunk. [`ChatStream::answer`] gathers
    /// the chunks into the whole answer.
    ///
    /// ```no_run
    /// # async fn run(client: reka_inference::Client) -> reka_inference::Result<()> {
    /// use futures::StreamExt;
    /// use reka_inference::chat::ChatRequest;
    ///
    /// let mut chunks = client.chat().create_stream(&ChatRequest::new("qwen3-vl-32b").user("Hi")).await?;
    /// while let Some(chunk) = chunks.next().await {
    ///     print!("{}", chunk?.text());
    /// }
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(level = "debug", skip_all, fields(model = %request.model))]
    pub async fn create_stream(&self, request: &ChatRequest) -> Result<ChatStream> {
        let body = request.body(true)?;
        let response = self.post(body, true).await?;
        let status = response.status();
        let is_json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        if is_json {
            let whole = self
                .http
                .read_whole(response, OPERATION.id, |_, _| {})
                .await?;
            let chunk = sse::whole_answer_as_chunk(status, whole);
            return Ok(ChatStream::new(futures::stream::iter(vec![chunk])));
        }
        Ok(ChatStream::new(sse::chunk_stream(
            response.bytes_stream(),
            status,
        )))
    }

    /// Sends the chat operation with `body` and takes its success answer
    /// unread (whole JSON or event stream: the caller reads it). A chat
    /// request is not idempotent, so the transport never retries it; here
    /// it is retried only when the connection could not be made (nothing
    /// reached the server), never once a byte was sent.
    async fn post(&self, body: Value, stream: bool) -> Result<reqwest::Response> {
        let request: ChatCompletionRequest = serde_json::from_value(body).map_err(|e| {
            Error::InvalidInput(format!(
                "the chat request does not fit the API's document: {e}"
            ))
        })?;
        let policy: RetryPolicy = self.http.transport().retry_policy().clone();
        let mut attempt = 1u32;
        loop {
            let mut call = self.http.call().streaming();
            if stream {
                call = call.accept(EVENT_STREAM);
            }
            if let Some(base) = &self.base {
                call = call.rebased(base);
            }
            let sending = call.start();
            let sent = sending
                .api()
                .create_chat_completion()
                .body(request.clone())
                .send()
                .await;
            match sending.read_stream(sent) {
                Err(Error::Transport(e)) if e.is_connect() && attempt < policy.attempts() => {
                    let wait = policy.backoff(attempt);
                    tracing::debug!(error = %e, attempt, wait_ms = wait.as_millis() as u64,
                        "no connection: nothing was sent, retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// An OpenAI-style base URL (`https://host/v1`), checked: http(s), a host,
/// no query, fragment or credentials.
fn openai_base(base: &str) -> Result<Url> {
    let mut url = Url::parse(base.trim())
        .map_err(|e| Error::Config(format!("chat base URL {base:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Config(format!(
            "chat base URL scheme {:?} is not http(s)",
            url.scheme()
        )));
    }
    if url.host().is_none() || url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Config(format!(
            "chat base URL {base:?} must be an origin with an optional path, without query or fragment"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Config(
            "chat base URL must not carry credentials".into(),
        ));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

/// Builds a [`Chat`] for an OpenAI-compatible server; from
/// [`Chat::builder`]. Its settings are those of [`ClientBuilder`], with no
/// key unless one is given here: the key goes to the base URL's origin
/// only, and plain `http` is refused off loopback unless allowed.
#[derive(Debug)]
pub struct ChatBuilder {
    base_url: String,
    settings: ClientBuilder,
}

impl ChatBuilder {
    /// The server's key.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.settings = self.settings.api_key(key);
        self
    }

    /// Which header carries the key (default `X-Api-Key`; most
    /// OpenAI-compatible servers want [`AuthHeader::Bearer`]).
    pub fn auth_header(mut self, style: AuthHeader) -> Self {
        self.settings = self.settings.auth_header(style);
        self
    }

    /// See [`ClientBuilder::allow_insecure_http`].
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.settings = self.settings.allow_insecure_http(allow);
        self
    }

    /// See [`ClientBuilder::request_timeout`].
    pub fn request_timeout(mut self, d: std::time::Duration) -> Self {
        self.settings = self.settings.request_timeout(d);
        self
    }

    /// See [`ClientBuilder::read_timeout`].
    pub fn read_timeout(mut self, d: std::time::Duration) -> Self {
        self.settings = self.settings.read_timeout(d);
        self
    }

    /// See [`ClientBuilder::connect_timeout`].
    pub fn connect_timeout(mut self, d: std::time::Duration) -> Self {
        self.settings = self.settings.connect_timeout(d);
        self
    }

    /// See [`ClientBuilder::max_body_bytes`].
    pub fn max_body_bytes(mut self, limit: u64) -> Self {
        self.settings = self.settings.max_body_bytes(limit);
        self
    }

    /// See [`ClientBuilder::retry_policy`]: here it bounds the retries of
    /// a connection that could not be made.
    pub fn retry_policy(mut self, p: RetryPolicy) -> Self {
        self.settings = self.settings.retry_policy(p);
        self
    }

    /// See [`ClientBuilder::hook`].
    pub fn hook(mut self, hook: impl HttpHook) -> Self {
        self.settings = self.settings.hook(hook);
        self
    }

    /// See [`ClientBuilder::http_client_builder`].
    pub fn http_client_builder(mut self, builder: reqwest::ClientBuilder) -> Self {
        self.settings = self.settings.http_client_builder(builder);
        self
    }

    /// Checks the settings and builds the chat client.
    pub fn build(self) -> Result<Chat> {
        let base = openai_base(&self.base_url)?;
        let origin = base.origin().ascii_serialization();
        let http = self.settings.base_url(origin).build_http()?;
        Ok(Chat {
            http,
            base: Some(base),
        })
    }
}

/// The chunks of a streamed chat completion; from [`Chat::create_stream`].
pub struct ChatStream {
    inner: Pin<Box<dyn Stream<Item = Result<ChatCompletionChunk>> + Send>>,
}

impl std::fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatStream").finish_non_exhaustive()
    }
}

impl ChatStream {
    fn new(s: impl Stream<Item = Result<ChatCompletionChunk>> + Send + 'static) -> Self {
        ChatStream { inner: Box::pin(s) }
    }

    /// Reads the rest of the stream and returns the whole answer: content,
    /// tool calls and usage put together ([`ChatCollector`]). An error
    /// item, or a stream that ends before `[DONE]`, is the error.
    pub async fn answer(mut self) -> Result<ChatCompletion> {
        let mut all = ChatCollector::default();
        while let Some(chunk) = self.next().await {
            all.push(&chunk?);
        }
        all.finish().map_err(|e| Error::Decode {
            status: reqwest::StatusCode::OK,
            message: format!("the streamed chunks do not make an answer: {e}"),
            raw_body: bytes::Bytes::new(),
        })
    }
}

impl Stream for ChatStream {
    type Item = Result<ChatCompletionChunk>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_is_used_as_is() {
        for (base, want) in [
            (
                "http://127.0.0.1:4000/v1",
                "http://127.0.0.1:4000/v1/chat/completions",
            ),
            (
                "http://127.0.0.1:4000/v1/",
                "http://127.0.0.1:4000/v1/chat/completions",
            ),
            (
                "https://api.example.com",
                "https://api.example.com/chat/completions",
            ),
            (
                "https://vision-agent.api.reka.ai/v2/inference",
                "https://vision-agent.api.reka.ai/v2/inference/chat/completions",
            ),
        ] {
            let chat = Chat::builder(base).build().unwrap();
            assert_eq!(chat.url().unwrap().as_str(), want);
        }
        for bad in [
            "ftp://x/v1",
            "http://x/v1?a=b",
            "http://u:p@x/v1",
            "not a url",
        ] {
            assert!(openai_base(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_http_off_loopback_needs_consent() {
        assert!(Chat::builder("http://api.example.com/v1").build().is_err());
        assert!(
            Chat::builder("http://api.example.com/v1")
                .allow_insecure_http(true)
                .build()
                .is_ok()
        );
    }
}
