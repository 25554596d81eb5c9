//! The `text/event-stream` reader of chat streams, and the answers a
//! stream can end in.

use std::collections::VecDeque;

use futures::{Stream, StreamExt};
use serde_json::Value;

use super::answer::ChatCompletionChunk;
use crate::error::{ApiError, Error, Result};

/// The largest event a chat stream may send: far above any real chunk, far
/// below what would hurt the machine.
pub(crate) const MAX_EVENT_BYTES: usize = 8 << 20;

/// A whole completion, sent where a stream was asked for, as one chunk:
/// each choice's `message` becomes its `delta`.
pub(crate) fn whole_answer_as_chunk(
    status: reqwest::StatusCode,
    body: bytes::Bytes,
) -> Result<ChatCompletionChunk> {
    let decode_error = |message: String| Error::Decode {
        status,
        message,
        raw_body: body.clone(),
    };
    let mut value: Value = serde_json::from_slice(&body)
        .map_err(|e| decode_error(format!("the chat answer did not decode: {e}")))?;
    if let Some(api) = error_event(status, &value, &body) {
        return Err(api);
    }
    if let Some(choices) = value.get_mut("choices").and_then(Value::as_array_mut) {
        for choice in choices {
            if let Some(map) = choice.as_object_mut()
                && let Some(message) = map.remove("message")
            {
                map.insert("delta".into(), message);
            }
        }
    }
    if let Some(map) = value.as_object_mut() {
        map.insert("object".into(), Value::from("chat.completion.chunk"));
    }
    ChatCompletionChunk::from_value(value)
        .map_err(|e| decode_error(format!("the chat answer did not decode: {e}")))
}

/// An `{"error": {...}}` payload, as an API error.
pub(crate) fn error_event(
    status: reqwest::StatusCode,
    value: &Value,
    raw: &bytes::Bytes,
) -> Option<Error> {
    value.get("error").filter(|e| e.is_object())?;
    // The HTTP status was a success; the error is the server's word.
    let status = if status.is_success() {
        reqwest::StatusCode::INTERNAL_SERVER_ERROR
    } else {
        status
    };
    Some(Error::Api(Box::new(ApiError::from_parts(
        status,
        &reqwest::header::HeaderMap::new(),
        raw.clone(),
    ))))
}

/// Reads `text/event-stream` lines in linear time: bytes are scanned once
/// for line ends, and an event larger than [`MAX_EVENT_BYTES`] is an error
/// rather than an ever-growing buffer.
#[derive(Default)]
struct SseReader {
    buf: Vec<u8>,
    /// Where the unread part of `buf` starts.
    start: usize,
    /// Where to look for the next line end (bytes before it have none).
    scanned: usize,
    /// The `data` lines of the event being read.
    data: Vec<u8>,
    has_data: bool,
}

impl SseReader {
    /// Takes more bytes; returns the events they complete.
    fn feed(&mut self, bytes: &[u8]) -> std::result::Result<Vec<Vec<u8>>, String> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(at) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
            let end = self.scanned + at;
            let mut line = &self.buf[self.start..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            if line.is_empty() {
                if self.has_data {
                    events.push(std::mem::take(&mut self.data));
                    self.has_data = false;
                }
            } else if let Some(value) = line.strip_prefix(b"data") {
                if let Some(value) = value.strip_prefix(b":") {
                    let value = value.strip_prefix(b" ").unwrap_or(value);
                    if self.has_data {
                        self.data.push(b'\n');
                    }
                    self.data.extend_from_slice(value);
                    self.has_data = true;
                } else if value.is_empty() {
                    if self.has_data {
                        self.data.push(b'\n');
                    }
                    self.has_data = true;
                }
            }
            // Comments (`:`) and other fields (`event`, `id`, `retry`) are
            // not used by chat streams.
            if self.data.len() > MAX_EVENT_BYTES {
                return Err(format!("an event is larger than {MAX_EVENT_BYTES} bytes"));
            }
            self.start = end + 1;
            self.scanned = self.start;
        }
        self.scanned = self.buf.len();
        if self.buf.len() - self.start > MAX_EVENT_BYTES {
            return Err(format!("a line is longer than {MAX_EVENT_BYTES} bytes"));
        }
        // Drop what was read, without moving bytes on every chunk.
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        Ok(events)
    }
}

/// Parses a `text/event-stream` body into chunks, ending at `data: [DONE]`.
/// An error item ends the stream after it is yielded: a chunk that does not
/// decode, an `{"error": ...}` event, invalid UTF-8, an oversized event, or
/// the end of the body before `[DONE]`.
pub(crate) fn chunk_stream<S, B>(
    body: S,
    status: reqwest::StatusCode,
) -> impl Stream<Item = Result<ChatCompletionChunk>> + Send + Unpin + 'static
where
    S: Stream<Item = std::result::Result<B, reqwest::Error>> + Send + 'static,
    B: AsRef<[u8]> + Send,
{
    struct State<S> {
        body: std::pin::Pin<Box<S>>,
        reader: SseReader,
        ready: VecDeque<Vec<u8>>,
        done: bool,
    }
    let malformed = move |message: String, raw: Vec<u8>| Error::Decode {
        status,
        message,
        raw_body: raw.into(),
    };
    let state = State {
        body: Box::pin(body),
        reader: SseReader::default(),
        ready: VecDeque::new(),
        done: false,
    };
    Box::pin(futures::stream::unfold(state, move |mut s| async move {
        loop {
            if s.done {
                return None;
            }
            if let Some(data) = s.ready.pop_front() {
                let text = match std::str::from_utf8(&data) {
                    Ok(t) => t,
                    Err(e) => {
                        s.done = true;
                        let err = malformed(format!("an event is not UTF-8: {e}"), data);
                        return Some((Err(err), s));
                    }
                };
                let text = text.trim();
                if text == "[DONE]" {
                    return None;
                }
                if text.is_empty() {
                    continue;
                }
                let item = match serde_json::from_str::<Value>(text) {
                    Ok(value) => match error_event(status, &value, &data.clone().into()) {
                        Some(err) => Err(err),
                        None => ChatCompletionChunk::from_value(value).map_err(|e| {
                            malformed(format!("a chat chunk did not decode: {e}"), data.clone())
                        }),
                    },
                    Err(e) => Err(malformed(
                        format!("a chat chunk did not decode: {e}"),
                        data.clone(),
                    )),
                };
                s.done = item.is_err();
                return Some((item, s));
            }
            match s.body.next().await {
                Some(Ok(bytes)) => match s.reader.feed(bytes.as_ref()) {
                    Ok(events) => s.ready.extend(events),
                    Err(why) => {
                        s.done = true;
                        return Some((
                            Err(malformed(
                                format!("the event stream is malformed: {why}"),
                                Vec::new(),
                            )),
                            s,
                        ));
                    }
                },
                Some(Err(e)) => {
                    s.done = true;
                    return Some((Err(Error::Transport(e)), s));
                }
                None => {
                    // A last event without its blank line still counts.
                    if let Ok(events) = s.reader.feed(b"\n\n")
                        && !events.is_empty()
                    {
                        s.ready.extend(events);
                        continue;
                    }
                    s.done = true;
                    let err = malformed(
                        "the stream ended before `data: [DONE]`: the answer is incomplete".into(),
                        Vec::new(),
                    );
                    return Some((Err(err), s));
                }
            }
        }
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
        futures::executor::block_on(stream.map(|c| c.map(|c| c.text())).collect())
    }

    fn chunk_event(text: &str) -> String {
        let chunk = serde_json::json!({
            "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]
        });
        format!("data: {chunk}\n\n")
    }

    #[test]
    fn a_stream_that_stops_before_done_is_an_error() {
        let items = collect(vec![chunk_event("partial").into_bytes()]);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().unwrap(), "partial");
        let err = items[1].as_ref().unwrap_err();
        assert!(err.to_string().contains("[DONE]"), "{err}");
    }

    #[test]
    fn invalid_utf8_is_an_error_not_silence() {
        let mut bytes = chunk_event("before").into_bytes();
        bytes.extend_from_slice(b"data: {\"x\": \"\xff\"}\n\n");
        bytes.extend_from_slice(chunk_event("after").as_bytes());
        bytes.extend_from_slice(b"data: [DONE]\n\n");
        let items = collect(vec![bytes]);
        assert_eq!(items.len(), 2, "{items:?}");
        assert_eq!(items[0].as_ref().unwrap(), "before");
        assert!(items[1].as_ref().unwrap_err().to_string().contains("UTF-8"));
    }

    #[test]
    fn an_error_event_is_an_api_error() {
        let mut text = chunk_event("a");
        text.push_str("data: {\"error\": {\"type\": \"server_error\", \"message\": \"model overloaded\"}}\n\n");
        let items = collect(vec![text.into_bytes()]);
        assert_eq!(items.len(), 2);
        match &items[1] {
            Err(Error::Api(api)) => {
                assert_eq!(api.kind, "server_error");
                assert_eq!(api.message, "model overloaded");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_large_event_is_read_whole_and_an_oversized_one_refused() {
        // 4 MiB of content in one event, fed in 1 KiB pieces: every byte is
        // scanned once, so this is quick whatever the piece size.
        let big = "x".repeat(4 << 20);
        let text = format!("{}data: [DONE]\n\n", chunk_event(&big)).into_bytes();
        let pieces: Vec<Vec<u8>> = text.chunks(1024).map(<[u8]>::to_vec).collect();
        let items = collect(pieces);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].as_ref().unwrap().len(), 4 << 20);

        let huge = format!("data: {}", "y".repeat(MAX_EVENT_BYTES + 10)).into_bytes();
        let pieces: Vec<Vec<u8>> = huge.chunks(64 << 10).map(<[u8]>::to_vec).collect();
        let items = collect(pieces);
        assert_eq!(items.len(), 1);
        assert!(
            items[0]
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("malformed")
        );
    }

    #[test]
    fn a_whole_answer_to_a_stream_request_is_one_chunk() {
        let body = serde_json::json!({
            "id": "c1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "whole"}, "finish_reason": "stop"}]
        });
        let chunk =
            whole_answer_as_chunk(reqwest::StatusCode::OK, body.to_string().into()).unwrap();
        assert_eq!(chunk.choices[0].delta.content.as_deref(), Some("whole"));
        assert_eq!(
            chunk.choices[0].finish_reason,
            Some(async_openai::types::chat::FinishReason::Stop)
        );
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
