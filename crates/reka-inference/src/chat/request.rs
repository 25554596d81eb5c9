//! Requests: `async-openai`'s typed request plus any other field, and the
//! messages and tools people write every day.

use std::ops::{Deref, DerefMut};

use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionRequestAssistantMessage,
    ChatCompletionRequestAssistantMessageContent, ChatCompletionRequestMessage,
    ChatCompletionRequestMessageContentPartImage, ChatCompletionRequestMessageContentPartText,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestToolMessage,
    ChatCompletionRequestToolMessageContent, ChatCompletionRequestUserMessage,
    ChatCompletionRequestUserMessageContent, ChatCompletionRequestUserMessageContentPart,
    ChatCompletionStreamOptions, ChatCompletionTool, ChatCompletionToolChoiceOption,
    ChatCompletionTools, CreateChatCompletionRequest, FunctionObject, ImageUrl, ResponseFormat,
};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::answer::ChatCompletion;
use crate::error::{Error, Result};

/// A chat completion request: `async-openai`'s typed
/// [`CreateChatCompletionRequest`](crate::chat::openai::CreateChatCompletionRequest)
/// (every OpenAI field: tools, `tool_choice`, `response_format`,
/// `stream_options`, logprobs, image and audio parts, ...; reachable
/// through `Deref`/`DerefMut`) and [`extra`](Self::extra), any other field
/// a server takes, sent as is.
///
/// ```
/// use reka_inference::chat::{ChatRequest, Message, function_tool};
/// use serde_json::json;
///
/// let mut req = ChatRequest::new("qwen3-vl-32b")
///     .system("Answer in one word.")
///     .message(Message::user_with_image("What is this?", "https://example.com/cat.png"))
///     .tool(function_tool("get_weather", "The weather in a city",
///         json!({"type": "object", "properties": {"city": {"type": "string"}}})))
///     .temperature(0.2)
///     .with("top_k", 20);
/// req.seed = None; // any typed field, directly
/// let body = serde_json::to_value(&req)?;
/// assert_eq!(body["messages"][1]["content"][1]["image_url"]["url"], "https://example.com/cat.png");
/// assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
/// // A 32-bit float, as OpenAI's types keep it.
/// assert!((body["temperature"].as_f64().unwrap_or_default() - 0.2).abs() < 1e-6);
/// assert_eq!(body["top_k"], 20);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The typed request.
    #[serde(flatten)]
    pub request: CreateChatCompletionRequest,
    /// Any other field, passed through as is (a vendor's `top_k`, ...). A
    /// field here wins over the typed field of the same name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Deref for ChatRequest {
    type Target = CreateChatCompletionRequest;
    fn deref(&self) -> &CreateChatCompletionRequest {
        &self.request
    }
}

impl DerefMut for ChatRequest {
    fn deref_mut(&mut self) -> &mut CreateChatCompletionRequest {
        &mut self.request
    }
}

impl From<CreateChatCompletionRequest> for ChatRequest {
    fn from(request: CreateChatCompletionRequest) -> Self {
        ChatRequest {
            request,
            extra: Map::new(),
        }
    }
}

impl ChatRequest {
    /// A request to `model` with no messages yet.
    pub fn new(model: impl Into<String>) -> Self {
        ChatRequest::from(CreateChatCompletionRequest {
            model: model.into(),
            ..Default::default()
        })
    }

    /// Adds a message (see [`Message`] for the common ones).
    pub fn message(mut self, message: impl Into<ChatCompletionRequestMessage>) -> Self {
        self.request.messages.push(message.into());
        self
    }

    /// Adds a system message.
    pub fn system(self, text: impl Into<String>) -> Self {
        self.message(Message::system(text))
    }

    /// Adds a user message.
    pub fn user(self, text: impl Into<String>) -> Self {
        self.message(Message::user(text))
    }

    /// Adds an assistant message (an earlier answer).
    pub fn assistant(self, text: impl Into<String>) -> Self {
        self.message(Message::assistant(text))
    }

    /// Adds a user message with an image: a URL, or a `data:` URI
    /// ([`image_data_uri`]).
    pub fn user_with_image(self, text: impl Into<String>, image: impl Into<String>) -> Self {
        self.message(Message::user_with_image(text, image))
    }

    /// Adds a tool the model may call ([`function_tool`]).
    pub fn tool(mut self, tool: ChatCompletionTools) -> Self {
        self.request.tools.get_or_insert_with(Vec::new).push(tool);
        self
    }

    /// How the model chooses tools.
    pub fn tool_choice(mut self, choice: ChatCompletionToolChoiceOption) -> Self {
        self.request.tool_choice = Some(choice);
        self
    }

    /// The sampling temperature.
    pub fn temperature(mut self, t: f32) -> Self {
        self.request.temperature = Some(t);
        self
    }

    /// The most tokens to generate (`max_tokens`, which every compatible
    /// server reads; set `max_completion_tokens` directly for OpenAI's
    /// newer name).
    #[allow(deprecated)]
    pub fn max_tokens(mut self, n: u32) -> Self {
        self.request.max_tokens = Some(n);
        self
    }

    /// How many answers to generate.
    pub fn n(mut self, n: u8) -> Self {
        self.request.n = Some(n);
        self
    }

    /// The format of the answer.
    pub fn response_format(mut self, format: ResponseFormat) -> Self {
        self.request.response_format = Some(format);
        self
    }

    /// Asks for a JSON object as the answer (`response_format: {"type": "json_object"}`).
    pub fn json_object(self) -> Self {
        self.response_format(ResponseFormat::JsonObject)
    }

    /// Asks a stream for a final chunk with the token usage
    /// (`stream_options: {"include_usage": true}`; sent only with streams).
    pub fn include_usage(mut self) -> Self {
        let options = self
            .request
            .stream_options
            .get_or_insert_with(ChatCompletionStreamOptions::default);
        options.include_usage = Some(true);
        self
    }

    /// Sets any other field, sent as is.
    pub fn with(mut self, field: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra.insert(field.into(), value.into());
        self
    }

    /// The JSON body, with `stream` set.
    pub(crate) fn body(&self, stream: bool) -> Result<Value> {
        if self.request.messages.is_empty() {
            return Err(Error::InvalidInput(
                "a chat request needs at least one message".into(),
            ));
        }
        let mut body = serde_json::to_value(self).map_err(|e| {
            Error::InvalidInput(format!("the chat request does not serialise: {e}"))
        })?;
        if let Some(map) = body.as_object_mut() {
            map.insert("stream".into(), Value::Bool(stream));
            if !stream {
                // OpenAI refuses stream_options without a stream.
                map.remove("stream_options");
            }
        }
        Ok(body)
    }
}

/// The messages people write every day, as
/// [`ChatCompletionRequestMessage`](crate::chat::openai::ChatCompletionRequestMessage)s.
///
/// ```
/// use reka_inference::chat::{Message, image_data_uri};
///
/// let png = [0x89, b'P', b'N', b'G'];
/// let m = Message::user_with_image("What is in it?", image_data_uri(&png, "image/png"));
/// let json = serde_json::to_value(&m)?;
/// assert_eq!(json["role"], "user");
/// assert_eq!(json["content"][1]["image_url"]["url"], "data:image/png;base64,iVBORw==");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Message;

impl Message {
    /// A system message.
    pub fn system(text: impl Into<String>) -> ChatCompletionRequestMessage {
        ChatCompletionRequestSystemMessage::from(text.into()).into()
    }

    /// A user message.
    pub fn user(text: impl Into<String>) -> ChatCompletionRequestMessage {
        ChatCompletionRequestUserMessage::from(text.into()).into()
    }

    /// An assistant message.
    pub fn assistant(text: impl Into<String>) -> ChatCompletionRequestMessage {
        ChatCompletionRequestAssistantMessage::from(text.into()).into()
    }

    /// A user message of a text and an image: a URL, or a `data:` URI
    /// ([`image_data_uri`]).
    pub fn user_with_image(
        text: impl Into<String>,
        image: impl Into<String>,
    ) -> ChatCompletionRequestMessage {
        let parts = vec![
            ChatCompletionRequestUserMessageContentPart::Text(
                ChatCompletionRequestMessageContentPartText::from(text.into()),
            ),
            ChatCompletionRequestUserMessageContentPart::ImageUrl(
                ChatCompletionRequestMessageContentPartImage {
                    image_url: ImageUrl::from(image.into()),
                    prompt_cache_breakpoint: None,
                },
            ),
        ];
        ChatCompletionRequestUserMessage::from(ChatCompletionRequestUserMessageContent::Array(
            parts,
        ))
        .into()
    }

    /// A user message of a text and an image's bytes (sent as a `data:` URI).
    pub fn user_with_image_bytes(
        text: impl Into<String>,
        bytes: &[u8],
        media_type: &str,
    ) -> ChatCompletionRequestMessage {
        Message::user_with_image(text, image_data_uri(bytes, media_type))
    }

    /// The result of a tool call, for the call `tool_call_id`.
    pub fn tool_result(
        tool_call_id: impl Into<String>,
        content: impl Into<String>,
    ) -> ChatCompletionRequestMessage {
        ChatCompletionRequestToolMessage {
            content: ChatCompletionRequestToolMessageContent::Text(content.into()),
            tool_call_id: tool_call_id.into(),
        }
        .into()
    }

    /// The first choice of an answer, as the assistant message to send
    /// back with the conversation (its text and tool calls).
    pub fn from_answer(answer: &ChatCompletion) -> ChatCompletionRequestMessage {
        let message = answer.choices.first().map(|c| &c.message);
        let tool_calls: Option<Vec<ChatCompletionMessageToolCalls>> = message
            .and_then(|m| m.tool_calls.clone())
            .filter(|c| !c.is_empty());
        ChatCompletionRequestAssistantMessage {
            content: message
                .and_then(|m| m.content.clone())
                .map(ChatCompletionRequestAssistantMessageContent::Text),
            tool_calls,
            ..Default::default()
        }
        .into()
    }
}

/// A `data:` URI of `bytes` (`data:<media type>;base64,...`), for an image
/// part.
pub fn image_data_uri(bytes: &[u8], media_type: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    format!("data:{media_type};base64,{b64}")
}

/// A function tool from its name, description and parameters' JSON schema.
pub fn function_tool(
    name: impl Into<String>,
    description: impl Into<String>,
    parameters: Value,
) -> ChatCompletionTools {
    ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObject {
            name: name.into(),
            description: Some(description.into()).filter(|d: &String| !d.is_empty()),
            parameters: Some(parameters),
            strict: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_request_round_trips_with_unknown_fields() {
        let wire = json!({
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.5,
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "tool_choice": "auto",
            "response_format": {"type": "json_object"},
            "stream_options": {"include_usage": true},
            "top_k": 40,
            "chat_template_kwargs": {"enable_thinking": false}
        });
        let req: ChatRequest = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(req.temperature, Some(0.5));
        assert_eq!(req.extra["top_k"], 40);
        assert_eq!(serde_json::to_value(&req).unwrap(), wire);
    }

    #[test]
    fn stream_options_go_only_with_streams() {
        let req = ChatRequest::new("m").user("hi").include_usage();
        assert!(req.body(false).unwrap().get("stream_options").is_none());
        assert_eq!(
            req.body(true).unwrap()["stream_options"]["include_usage"],
            true
        );
        assert!(ChatRequest::new("m").body(true).is_err());
    }
}
