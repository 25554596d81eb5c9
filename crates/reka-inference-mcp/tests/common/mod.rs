//! What the tests share: a simulator with short, fixed job durations, a
//! server over it, rmcp clients over stdio (an in-memory pipe) and over
//! Streamable HTTP, and a raw line client for messages rmcp would not send.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use reka_inference::{Client, PollPolicy};
use reka_inference_mcp::{HttpOptions, HttpServer, Server, ServerOptions, serve_http};
use reka_inference_sim::{Catalog, DEV_API_KEY, Dialect, RunningSim, SimConfig};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ClientRequest,
    Implementation, InitializeRequestParams, ProgressNotificationParam, Request, ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RequestHandle, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Wall seconds per simulated second: a 1 s image takes 0.05 s, a 60 s
/// video 3 s.
pub const TIME_SCALE: f64 = 0.05;

/// A real 1x1 PNG (the simulator checks images by their bytes).
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

/// The test catalog: fixed durations, one veo worker (a 3 s video at
/// [`TIME_SCALE`]), and a kling video that runs for days: a job that is
/// still running whenever a test looks, however busy the machine.
pub fn catalog() -> Catalog {
    Catalog::from_json(
        &json!({
            "chat_models": ["qwen3-vl-32b"],
            "models": [
                {"model_id": "nano-banana", "capability": "text-to-image", "title": "Nano Banana (text to image)",
                 "workers": 8, "duration": {"fixed": 1}},
                {"model_id": "nano-banana", "capability": "edit", "title": "Nano Banana (edit)",
                 "workers": 8, "duration": {"fixed": 1},
                 "input_schema": {"type": "object", "required": ["prompt", "image_url"], "properties": {
                     "prompt": {"type": "string", "description": "the change to make"},
                     "image_url": {"type": "string", "format": "image-url"}}}},
                {"model_id": "veo-3.1", "capability": "text-to-video", "title": "Veo 3.1 (text to video)",
                 "workers": 1, "duration": {"fixed": 60}},
                {"model_id": "kling-v3-pro", "capability": "text-to-video", "title": "Never ends in a test",
                 "workers": 4, "duration": {"fixed": 1000000}},
                {"model_id": "reka-tts-1", "capability": "text-to-speech", "title": "Reka TTS 1",
                 "workers": 8, "duration": {"fixed": 1}},
                {"model_id": "sam3", "capability": "image-to-bbox", "title": "SAM 3",
                 "workers": 8, "duration": {"fixed": 1}},
                {"model_id": "flaky", "capability": "text-to-image", "title": "Always fails",
                 "workers": 8, "duration": {"fixed": 1}, "failure_rate": 1.0}
            ]
        })
        .to_string(),
    )
    .expect("the test catalog is valid")
}

/// A simulator in `dialect` with the test catalog.
pub async fn sim(dialect: Dialect) -> RunningSim {
    reka_inference_sim::start(
        SimConfig::new()
            .time_scale(TIME_SCALE)
            .catalog(catalog())
            .dialect(dialect),
    )
    .await
    .expect("the simulator starts")
}

/// A client of `sim`.
pub fn client(sim: &RunningSim) -> Client {
    Client::builder()
        .api_key(DEV_API_KEY)
        .base_url(sim.base_url())
        .poll_policy(PollPolicy::default().scaled(TIME_SCALE))
        .build()
        .expect("a client")
}

/// Directories of one test: `allowed/` (with `photo.png`), `outside/`
/// (with `secret.png`) and `out/` (not created).
pub struct Dirs {
    pub root: tempfile::TempDir,
}

impl Dirs {
    pub fn new() -> Dirs {
        let root = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir(root.path().join("allowed")).unwrap();
        std::fs::create_dir(root.path().join("outside")).unwrap();
        std::fs::write(root.path().join("allowed/photo.png"), PNG).unwrap();
        std::fs::write(root.path().join("outside/secret.png"), PNG).unwrap();
        Dirs { root }
    }

    pub fn allowed(&self) -> PathBuf {
        self.root.path().join("allowed")
    }

    pub fn outside(&self) -> PathBuf {
        self.root.path().join("outside")
    }

    pub fn out(&self) -> PathBuf {
        self.root.path().join("out")
    }

    /// Options for a server of this test: outputs in `out/`, files from
    /// `allowed/`, progress every 300 ms.
    pub fn options(&self) -> ServerOptions {
        ServerOptions::default()
            .output_dir(self.out())
            .allow_dir(self.allowed())
            .progress_interval(Duration::from_millis(300))
    }
}

/// A test client: records progress notifications; declares the tasks
/// extension when asked.
#[derive(Clone)]
pub struct TestClient {
    pub progress: mpsc::UnboundedSender<ProgressNotificationParam>,
    pub tasks: bool,
}

impl ClientHandler for TestClient {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.progress.send(params);
    }

    fn get_info(&self) -> ClientConfig {
        let capabilities = if self.tasks {
            ClientCapabilities::builder().enable_tasks().build()
        } else {
            ClientCapabilities::default()
        };
        InitializeRequestParams::new(capabilities, Implementation::new("reka-mcp-tests", "0"))
    }
}

pub type Connected = RunningService<RoleClient, TestClient>;

/// A connected client and its progress notifications.
pub struct Session {
    pub client: Connected,
    pub progress: mpsc::UnboundedReceiver<ProgressNotificationParam>,
}

fn handler(
    tasks: bool,
) -> (
    TestClient,
    mpsc::UnboundedReceiver<ProgressNotificationParam>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        TestClient {
            progress: tx,
            tasks,
        },
        rx,
    )
}

/// `server` served over an in-memory stdio pipe, and a client of it.
pub async fn stdio_session(server: Server, tasks: bool) -> Session {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let (read, write) = tokio::io::split(server_io);
    tokio::spawn(server.serve_io(read, write));
    let (handler, progress) = handler(tasks);
    let client = handler.serve(client_io).await.expect("the client connects");
    Session { client, progress }
}

/// `server` served over Streamable HTTP on loopback with `token`.
pub async fn http_server(server: Server, token: Option<&str>) -> HttpServer {
    let mut options = HttpOptions::new("127.0.0.1:0".parse().unwrap());
    if let Some(t) = token {
        options = options.auth_token(t);
    }
    serve_http(server, options)
        .await
        .expect("the HTTP server starts")
}

/// A client of an HTTP server.
pub async fn http_session(http: &HttpServer, token: Option<&str>, tasks: bool) -> Session {
    let mut config = StreamableHttpClientTransportConfig::with_uri(http.url());
    if let Some(t) = token {
        config = config.auth_header(t);
    }
    let transport = StreamableHttpClientTransport::from_config(config);
    let (handler, progress) = handler(tasks);
    let client = handler.serve(transport).await.expect("the client connects");
    Session { client, progress }
}

pub fn args(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// Calls a tool.
pub async fn call(client: &Connected, tool: &str, arguments: Value) -> CallToolResult {
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args(arguments)))
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

/// Starts a tool call that carries a progress token.
pub async fn start_call(
    client: &Connected,
    tool: &str,
    arguments: Value,
) -> RequestHandle<RoleClient> {
    client
        .peer()
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(
                CallToolRequestParams::new(tool.to_owned()).with_arguments(args(arguments)),
            )),
            PeerRequestOptions::no_options(),
        )
        .await
        .expect("the request is sent")
}

/// The tool result a started call ends with.
pub async fn finish_call(handle: RequestHandle<RoleClient>) -> CallToolResult {
    match handle.await_response().await.expect("an answer") {
        ServerResult::CallToolResult(r) => r,
        other => panic!("not a tool result: {other:?}"),
    }
}

/// The result's text blocks, joined.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The result's structured content.
pub fn structured(result: &CallToolResult) -> &Value {
    result
        .structured_content
        .as_ref()
        .unwrap_or_else(|| panic!("no structured content: {}", text(result)))
}

pub fn is_error(result: &CallToolResult) -> bool {
    result.is_error == Some(true)
}

/// Asserts success, showing the text otherwise.
pub fn ok(result: CallToolResult) -> CallToolResult {
    assert!(
        !is_error(&result),
        "unexpected tool error: {}",
        text(&result)
    );
    result
}

/// A raw newline-delimited JSON-RPC client of `server` over an in-memory
/// pipe, for messages an rmcp client never sends.
pub struct RawStdio {
    write: tokio::io::WriteHalf<tokio::io::DuplexStream>,
    read: tokio::io::Lines<BufReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>>,
}

impl RawStdio {
    pub async fn start(server: Server) -> RawStdio {
        let (client_io, server_io) = tokio::io::duplex(1 << 20);
        let (sr, sw) = tokio::io::split(server_io);
        tokio::spawn(server.serve_io(sr, sw));
        let (read, write) = tokio::io::split(client_io);
        let mut raw = RawStdio {
            write,
            read: BufReader::new(read).lines(),
        };
        raw.send_text(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"}}})
            .to_string(),
        )
        .await;
        let answer = raw.next_answer().await;
        assert_eq!(answer["id"], 0, "{answer}");
        assert!(answer.get("result").is_some(), "{answer}");
        raw.send_text(
            &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string(),
        )
        .await;
        raw
    }

    pub async fn send_text(&mut self, line: &str) {
        self.write.write_all(line.as_bytes()).await.unwrap();
        self.write.write_all(b"\n").await.unwrap();
        self.write.flush().await.unwrap();
    }

    /// The next message that is not a notification.
    pub async fn next_answer(&mut self) -> Value {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(60), self.read.next_line())
                .await
                .expect("an answer in time")
                .expect("readable")
                .expect("the server is still there");
            let value: Value = serde_json::from_str(&line).expect("the server writes JSON");
            if value.get("method").is_some() && value.get("id").is_none() {
                continue;
            }
            return value;
        }
    }

    /// Calls a tool with request id `id`, returns the answer's result.
    pub async fn call(&mut self, id: i64, tool: &str, arguments: Value) -> Value {
        self.send_text(
            &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                    "params": {"name": tool, "arguments": arguments}})
            .to_string(),
        )
        .await;
        let answer = self.next_answer().await;
        assert_eq!(answer["id"], id, "{answer}");
        answer["result"].clone()
    }
}

/// Whether `path` is an absolute path to an existing file.
pub fn is_saved_file(path: &str) -> bool {
    let p = Path::new(path);
    p.is_absolute() && p.is_file()
}

/// Polls `f` until it is true, at most `bound`.
pub async fn eventually<F, Fut>(bound: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + bound;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() > until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
