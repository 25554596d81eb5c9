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
        Ok(chunk_stream(response.bytes_stream(), status))
    }
}

/// Parses a `text/event-stream` body into chunks, ending at `data: [DONE]`;
/// an error item ends the stream after it is yielded.
pub(crate) fn chunk_stream<S, B>(
    body: S,
    status: reqwest::StatusCode,
) -> impl Stream<Item = Result<ChatCompletionChunk>> + Send + Unpin + 'static
where
    S: Stream<Item = std::result::Result<B, reqwest::Error>> + Send + 'static,
    B: AsRef<[u8]> + Send,
{
    let chunks = body
        .eventsource()
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
    let mut failed = false;
    Box::pin(chunks.take_while(move |item| {
        let go = !failed;
        failed = item.is_err();
        std::future::ready(go)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stream_text(n: usize) -> String {
        let mut text = String::new();
        for i in 0..n {
            let chunk = serde_json::json!({
                "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": {"content": format!("w{i} ")}, "finish_reason": null}]
            });
            text.push_str(&format!("data: {chunk}\n\n"));
        }
        text.push_str(": a comment line\n\ndata: [DONE]\n\ndata: {\"ignored\": true}\n\n");
        text
    }

    fn collect(pieces: Vec<Vec<u8>>) -> Vec<Result<String>> {
        let body = futures::stream::iter(pieces.into_iter().map(Ok::<_, reqwest::Error>));
        let stream = chunk_stream(body, reqwest::StatusCode::OK);
        futures::executor::block_on(
            stream
                .map(|c| {
                    c.map(|c| {
                        c.choices
                            .into_iter()
                            .filter_map(|ch| ch.delta.content)
                            .collect::<String>()
                    })
                })
                .collect(),
        )
    }

    proptest! {
        /// However the bytes are split on the wire, the same chunks come
        /// out, and nothing after `[DONE]`.
        #[test]
        fn chunks_do_not_depend_on_how_bytes_are_split(n in 0usize..8, cuts in proptest::collection::vec(0usize..2000, 0..12)) {
            let text = stream_text(n).into_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (text.len() + 1)).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut last = 0;
            for c in cuts.into_iter().chain([text.len()]) {
                pieces.push(text[last..c].to_vec());
                last = c;
            }
            let got: Vec<String> = collect(pieces).into_iter().map(|r| r.unwrap()).collect();
            let want: Vec<String> = (0..n).map(|i| format!("w{i} ")).collect();
            prop_assert_eq!(got, want);
        }

        /// Arbitrary bytes never panic; whatever is not a chunk is one
        /// error that ends the stream.
        #[test]
        fn arbitrary_bytes_end_in_at_most_one_error(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let items = collect(vec![bytes]);
            let errors = items.iter().filter(|r| r.is_err()).count();
            prop_assert!(errors <= 1);
            if errors == 1 {
                prop_assert!(items.last().is_some_and(|r| r.is_err()));
            }
        }
    }
}
