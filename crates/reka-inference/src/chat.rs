//! OpenAI-compatible chat completions (proxied by Reka to Qwen models).
//!
//! The request is sent as built here rather than through the generated
//! operation, whose body type cannot carry OpenAI's many optional fields
//! (`temperature`, `max_tokens`, ...): [`ChatRequest::extra`] passes them
//! through. Answers use the generated types. Streams are read with the
//! `eventsource-stream` parser and yield [`ChatCompletionChunk`]s until
//! `data: [DONE]`.

use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use reka_inference_api::types::{
    ChatCompletionChunk, ChatCompletionResponse, ChatMessage, ChatMessageContent,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::client::Client;
use crate::error::{Error, Result};

/// A chat completion request.
///
/// ```
/// use reka_inference::ChatRequest;
///
/// let req = ChatRequest::new("qwen3-vl-32b")
///     .system("Answer in one word.")
///     .user("What colour is the sky?")
///     .with("temperature", 0.2);
/// let body = serde_json::to_value(&req)?;
/// assert_eq!(body["messages"][1]["content"], "What colour is the sky?");
/// assert_eq!(body["temperature"], 0.2);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// An allow-listed model id.
    pub model: String,
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// Any other OpenAI field, passed through as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatRequest {
    /// A request to `model` with no messages yet.
    pub fn new(model: impl Into<String>) -> Self {
        ChatRequest {
            model: model.into(),
            messages: Vec::new(),
            extra: Map::new(),
        }
    }

    /// Adds a message with a text content.
    pub fn message(mut self, role: impl Into<String>, text: impl Into<String>) -> Self {
        self.messages.push(ChatMessage {
            role: role.into(),
            content: Some(ChatMessageContent::String(text.into())),
            name: None,
        });
        self
    }

    /// Adds a system message.
    pub fn system(self, text: impl Into<String>) -> Self {
        self.message("system", text)
    }

    /// Adds a user message.
    pub fn user(self, text: impl Into<String>) -> Self {
        self.message("user", text)
    }

    /// Sets another OpenAI field (`temperature`, `max_tokens`, ...).
    pub fn with(mut self, field: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra.insert(field.into(), value.into());
        self
    }

    fn body(&self, stream: bool) -> Result<Value> {
        if self.messages.is_empty() {
            return Err(Error::InvalidInput(
                "a chat request needs at least one message".into(),
            ));
        }
        let mut body = serde_json::to_value(self).map_err(|e| {
            Error::InvalidInput(format!("the chat request does not serialise: {e}"))
        })?;
        if let Some(map) = body.as_object_mut() {
            map.insert("stream".into(), Value::Bool(stream));
        }
        Ok(body)
    }
}

/// Chat completions; from [`Client::chat`].
#[derive(Debug, Clone)]
pub struct Chat {
    client: Client,
}

impl Chat {
    pub(crate) fn new(client: Client) -> Self {
        Chat { client }
    }

    /// Sends `request` and returns the whole completion.
    #[tracing::instrument(level = "debug", skip_all, fields(model = %request.model))]
    pub async fn create(&self, request: &ChatRequest) -> Result<ChatCompletionResponse> {
        let body = request.body(false)?;
        let url = self.client.url("/v2/inference/chat/completions")?;
        let http = self.client.inner.http.post(url).json(&body);
        self.client.send_json(http, "create_chat_completion").await
    }

    /// Sends `request` with `stream: true` and yields the chunks as they
    /// arrive. The stream ends at `data: [DONE]`; an error item ends it too.
    ///
    /// ```no_run
    /// # async fn run(client: reka_inference::Client) -> reka_inference::Result<()> {
    /// use futures::StreamExt;
    /// use reka_inference::ChatRequest;
    ///
    /// let mut chunks = client.chat().create_stream(&ChatRequest::new("qwen3-vl-32b").user("Hi")).await?;
    /// while let Some(chunk) = chunks.next().await {
    ///     for choice in chunk?.choices {
    ///         print!("{}", choice.delta.content.unwrap_or_default());
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(level = "debug", skip_all, fields(model = %request.model))]
    pub async fn create_stream(
        &self,
        request: &ChatRequest,
    ) -> Result<impl Stream<Item = Result<ChatCompletionChunk>> + Send + Unpin + 'static> {
        let body = request.body(true)?;
        let url = self.client.url("/v2/inference/chat/completions")?;
        let http = self
            .client
            .inner
            .http
            .post(url)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .json(&body);
        let response = self
            .client
            .send_raw(http, "create_chat_completion", true)
            .await?;
        let status = response.status();
        let events = response.bytes_stream().eventsource();
        let chunks = events
            .take_while(|e| {
                let more = !matches!(e, Ok(ev) if ev.data.trim() == "[DONE]");
                std::future::ready(more)
            })
            .filter_map(move |e| {
                std::future::ready(match e {
                    Ok(ev) if ev.data.trim().is_empty() => None,
                    Ok(ev) => Some(
                        serde_json::from_str::<ChatCompletionChunk>(&ev.data).map_err(|err| {
                            Error::Decode {
                                status,
                                message: format!("a chat chunk did not decode: {err}"),
                                raw_body: ev.data.into_bytes().into(),
                            }
                        }),
                    ),
                    Err(eventsource_stream::EventStreamError::Transport(t)) => {
                        Some(Err(Error::Transport(t)))
                    }
                    Err(other) => Some(Err(Error::Decode {
                        status,
                        message: format!("the event stream is malformed: {other}"),
                        raw_body: Default::default(),
                    })),
                })
            });
        // An error ends the stream after it is yielded.
        let mut failed = false;
        Ok(Box::pin(chunks.take_while(move |item| {
            let go = !failed;
            failed = item.is_err();
            std::future::ready(go)
        })))
    }
}
