//! MCP's stdio framing (one JSON-RPC message per line) with every line
//! bounded and every bad line answered: a line that is not JSON gets a
//! JSON-RPC parse error (-32700), a JSON value that is not a JSON-RPC
//! message an invalid-request error (-32600, with its id when it has one),
//! a line over the size limit -32600; then the next line is read.
//!
//! rmcp's own stdio transport skips unparsable lines silently; JSON-RPC 2.0
//! asks for an answer, and a host that sent a broken message learns why
//! instead of waiting for an answer that never comes.
//!
//! Writes go through one task that owns the writer, in order, so that an
//! error line can never be interleaved inside a message.

use std::io;

use rmcp::RoleServer;
use rmcp::model::ClientJsonRpcMessage;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Lines waiting to be written, at most (a slow reader of our output
/// slows the server down rather than growing memory).
const QUEUED_LINES: usize = 64;

/// A [`Transport`] over newline-delimited JSON-RPC.
pub(crate) struct LineTransport<R> {
    reader: BufReader<R>,
    line: Vec<u8>,
    /// The current line passed the limit: skip to its end.
    discarding: bool,
    max: usize,
    out: Option<mpsc::Sender<Vec<u8>>>,
    writer: Option<JoinHandle<()>>,
}

impl<R: AsyncRead + Unpin + Send> LineTransport<R> {
    pub(crate) fn new<W>(reader: R, writer: W, max: usize) -> LineTransport<R>
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUED_LINES);
        let writer = tokio::spawn(async move {
            let mut writer = writer;
            while let Some(line) = rx.recv().await {
                if writer.write_all(&line).await.is_err() || writer.flush().await.is_err() {
                    tracing::debug!("the output closed");
                    return;
                }
            }
            let _ = writer.flush().await;
        });
        LineTransport {
            reader: BufReader::new(reader),
            line: Vec::new(),
            discarding: false,
            max,
            out: Some(tx),
            writer: Some(writer),
        }
    }

    /// Queues an error answer without waiting (cancellation-safe): when
    /// the queue is full, the answer is dropped and logged.
    fn answer_error(&self, id: Value, code: i64, message: String) {
        let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
        let mut line = body.to_string().into_bytes();
        line.push(b'\n');
        if let Some(out) = &self.out
            && out.try_send(line).is_err()
        {
            tracing::warn!("an error answer was dropped: the output is not being read");
        }
    }

    /// Reads up to the next newline; `false` at the end of the input.
    /// Cancellation-safe: what was read stays in `self.line`.
    async fn read_line(&mut self) -> bool {
        loop {
            let available = match self.reader.fill_buf().await {
                Ok(b) => b,
                Err(e) => {
                    tracing::debug!(error = %e, "reading the input failed");
                    return false;
                }
            };
            if available.is_empty() {
                return false;
            }
            let (chunk, complete) = match available.iter().position(|b| *b == b'\n') {
                Some(end) => (&available[..end], Some(end + 1)),
                None => (available, None),
            };
            let used = complete.unwrap_or(chunk.len());
            if !self.discarding {
                if self.line.len().saturating_add(chunk.len()) > self.max {
                    self.discarding = true;
                    self.line = Vec::new();
                    let max = self.max;
                    self.answer_error(
                        Value::Null,
                        -32600,
                        format!("Invalid Request: the message is larger than {max} bytes"),
                    );
                } else {
                    self.line.extend_from_slice(chunk);
                }
            }
            self.reader.consume(used);
            if complete.is_some() {
                if self.discarding {
                    self.discarding = false;
                    continue;
                }
                return true;
            }
        }
    }

    /// The message of the line just read, or `None` after answering it.
    fn parse_line(&mut self) -> Option<ClientJsonRpcMessage> {
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        let value: Value = match serde_json::from_slice(&line) {
            Ok(v) => v,
            Err(e) => {
                self.answer_error(Value::Null, -32700, format!("Parse error: {e}"));
                return None;
            }
        };
        let id = value
            .get("id")
            .filter(|id| id.is_string() || id.is_number())
            .cloned();
        let is_notification = value.get("method").is_some() && value.get("id").is_none();
        match serde_json::from_value::<ClientJsonRpcMessage>(value) {
            Ok(message) => Some(message),
            // A notification is never answered, even a broken one.
            Err(e) if is_notification => {
                tracing::debug!(error = %e, "a malformed notification was ignored");
                None
            }
            Err(e) => {
                self.answer_error(
                    id.unwrap_or(Value::Null),
                    -32600,
                    format!(
                        "Invalid Request: not a JSON-RPC request, notification or response ({e})"
                    ),
                );
                None
            }
        }
    }
}

impl<R: AsyncRead + Unpin + Send + 'static> Transport<RoleServer> for LineTransport<R> {
    type Error = io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let out = self.out.clone();
        async move {
            let mut line = serde_json::to_vec(&item).map_err(io::Error::other)?;
            line.push(b'\n');
            let out = out.ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "closed"))?;
            out.send(line)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the output closed"))
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            if !self.read_line().await {
                return None;
            }
            if let Some(message) = self.parse_line() {
                return Some(message);
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        // The writer ends once every sender is gone and the queue is out.
        self.out = None;
        if let Some(writer) = self.writer.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), writer).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn run(input: &'static [u8], max: usize) -> (Vec<Option<String>>, String) {
        let (mut out_read, out_write) = tokio::io::duplex(1 << 16);
        let mut t = LineTransport::new(input, out_write, max);
        let mut got = Vec::new();
        while let Some(m) = Transport::<RoleServer>::receive(&mut t).await {
            got.push(
                serde_json::to_value(&m)
                    .ok()
                    .map(|v| v["method"].to_string()),
            );
        }
        Transport::<RoleServer>::close(&mut t).await.unwrap();
        drop(t);
        let mut written = String::new();
        out_read.read_to_string(&mut written).await.unwrap();
        (got, written)
    }

    #[tokio::test]
    async fn bad_lines_are_answered_and_good_ones_go_through() {
        let input: &[u8] = b"{not json\n\
[1,2]\n\
{\"jsonrpc\":\"2.0\",\"id\":7,\"bogus\":true}\n\
{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n\
\n\
{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r\n";
        let (got, written) = run(input, 1 << 20).await;
        assert_eq!(got.len(), 2, "{got:?}");
        let answers: Vec<Value> = written
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(answers.len(), 3, "{written}");
        assert_eq!(answers[0]["error"]["code"], -32700);
        assert_eq!(answers[0]["id"], Value::Null);
        assert_eq!(answers[1]["error"]["code"], -32600);
        assert_eq!(answers[2]["error"]["code"], -32600);
        assert_eq!(answers[2]["id"], 7);
    }

    #[tokio::test]
    async fn an_oversized_line_is_skipped_with_an_answer() {
        let mut input = Vec::new();
        input.extend_from_slice(
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"x\":\"",
        );
        input.extend(std::iter::repeat_n(b'a', 10_000));
        input.extend_from_slice(b"\"}}\n{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\n");
        let input: &'static [u8] = input.leak();
        let (got, written) = run(input, 1000).await;
        assert_eq!(got.len(), 1, "only the small message goes through");
        let answer: Value = serde_json::from_str(written.trim()).unwrap();
        assert_eq!(answer["error"]["code"], -32600);
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("larger than 1000 bytes")
        );
    }
}
