//! Streamable HTTP at `/mcp` (rmcp's transport in an axum server), behind
//! a guard that every request passes first:
//!
//! - **Origin**: a request that carries an `Origin` header is refused (403)
//!   unless the origin is the server's own (loopback at its port) or one
//!   allowed explicitly: the MCP specification's rule against DNS
//!   rebinding, which would otherwise let any web page reach a local server.
//!   Requests without `Origin` (every non-browser client) pass.
//! - **Bearer token**: with a token set, `Authorization: Bearer <token>` is
//!   required (401 otherwise), compared in constant time. Binding anything
//!   but loopback requires a token.
//! - **The message**: a POST body over the size limit is answered 413, one
//!   that is not JSON with a JSON-RPC parse error (-32700), a JSON value
//!   that is not a JSON-RPC message with -32600; all with a JSON-RPC error
//!   body, and the server goes on serving.
//!
//! rmcp also checks the `Host` header (loopback names by default).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use crate::{ServeError, Server};

/// The shortest bearer token accepted: guessing it must be hopeless.
pub const MIN_TOKEN_LEN: usize = 16;

/// How [`serve_http`] listens.
///
/// ```
/// use reka_inference_mcp::HttpOptions;
///
/// let local = HttpOptions::new("127.0.0.1:8765".parse().unwrap());
/// let shared = HttpOptions::new("0.0.0.0:8765".parse().unwrap())
///     .auth_token("a-long-random-token-from-a-secret-store")
///     .allow_origin("https://tools.example.com");
/// # let _ = (local, shared);
/// ```
#[derive(Clone)]
pub struct HttpOptions {
    addr: SocketAddr,
    auth_token: Option<String>,
    allowed_origins: Vec<String>,
    allowed_hosts: Vec<String>,
    max_body_bytes: Option<usize>,
}

impl std::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("addr", &self.addr)
            .field(
                "auth_token",
                &self.auth_token.as_ref().map(|_| "<redacted>"),
            )
            .field("allowed_origins", &self.allowed_origins)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

impl HttpOptions {
    /// Listen on `addr` (port 0 picks a free port).
    pub fn new(addr: SocketAddr) -> HttpOptions {
        HttpOptions {
            addr,
            auth_token: None,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            max_body_bytes: None,
        }
    }

    /// Require `Authorization: Bearer <token>` on every request (at least
    /// [`MIN_TOKEN_LEN`] characters). Required when `addr` is not loopback.
    pub fn auth_token(mut self, token: impl Into<String>) -> Self {
        self.auth_token = Some(token.into());
        self
    }

    /// Also accept requests from the browser origin `origin`
    /// (`https://app.example.com`, `http://localhost:3000`).
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.allowed_origins.push(origin.into());
        self
    }

    /// Also accept the `Host` header `host` (`mcp.example.com`, or with a
    /// port). Loopback names are always accepted.
    pub fn allow_host(mut self, host: impl Into<String>) -> Self {
        self.allowed_hosts.push(host.into());
        self
    }

    /// The largest request body (default: the server's
    /// [`ServerOptions::max_message_bytes`](crate::ServerOptions::max_message_bytes)).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = Some(bytes);
        self
    }
}

/// A running Streamable HTTP server.
#[derive(Debug)]
pub struct HttpServer {
    local_addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl HttpServer {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The MCP endpoint: `http://<addr>/mcp`.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.local_addr)
    }

    /// Stops accepting, ends the sessions, and waits for the server.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        self.stop.cancel();
        self.wait().await
    }

    /// Waits until the server stops (after [`HttpServer::shutdown`] or an
    /// I/O error).
    pub async fn wait(self) -> Result<(), ServeError> {
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ServeError::Io(e)),
            Err(e) => Err(ServeError::Stopped(e.to_string())),
        }
    }

    /// A token that stops the server when cancelled.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }
}

/// What the guard checks.
struct Guard {
    token_digest: Option<[u8; 32]>,
    origins: Vec<Origin>,
    allow_null_origin: bool,
    max_body: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    fn parse(text: &str) -> Option<Origin> {
        let url = url::Url::parse(text.trim()).ok()?;
        let host = url.host_str()?.to_ascii_lowercase();
        Some(Origin {
            scheme: url.scheme().to_ascii_lowercase(),
            host,
            port: url.port_or_known_default(),
        })
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// A JSON-RPC error answer with HTTP `status`.
fn rpc_error(status: StatusCode, id: Value, code: i64, message: String) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

impl Guard {
    fn origin_allowed(&self, origin: &str) -> bool {
        if origin.trim() == "null" {
            return self.allow_null_origin;
        }
        Origin::parse(origin).is_some_and(|o| self.origins.contains(&o))
    }

    fn token_ok(&self, request: &Request) -> bool {
        let Some(expected) = &self.token_digest else {
            return true;
        };
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        // Hashing first gives both sides one length: the comparison takes
        // the same time whatever the token.
        let given = digest(given.unwrap_or(""));
        bool::from(given.ct_eq(expected))
    }
}

async fn guard(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let allowed = origin.to_str().is_ok_and(|o| guard.origin_allowed(o));
        if !allowed {
            let shown = String::from_utf8_lossy(origin.as_bytes())
                .chars()
                .take(200)
                .collect::<String>();
            tracing::warn!(origin = %shown, "refused a request from a foreign origin");
            return rpc_error(
                StatusCode::FORBIDDEN,
                Value::Null,
                -32600,
                format!("Forbidden: requests from the origin {shown:?} are not allowed"),
            );
        }
    }
    if !guard.token_ok(&request) {
        let mut response = rpc_error(
            StatusCode::UNAUTHORIZED,
            Value::Null,
            -32600,
            "Unauthorized: this server requires Authorization: Bearer <token>".into(),
        );
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let limited = http_body_util::Limited::new(body, guard.max_body);
    let bytes = match limited.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let too_large = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            return if too_large {
                rpc_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Value::Null,
                    -32600,
                    format!(
                        "Invalid Request: the message is larger than {} bytes",
                        guard.max_body
                    ),
                )
            } else {
                rpc_error(
                    StatusCode::BAD_REQUEST,
                    Value::Null,
                    -32700,
                    format!("Parse error: the body could not be read ({e})"),
                )
            };
        }
    };
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                Value::Null,
                -32700,
                format!("Parse error: {e}"),
            );
        }
    };
    let id = value
        .get("id")
        .filter(|id| id.is_string() || id.is_number())
        .cloned()
        .unwrap_or(Value::Null);
    if let Err(e) = serde_json::from_value::<ClientJsonRpcMessage>(value) {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            id,
            -32600,
            format!("Invalid Request: not a JSON-RPC request, notification or response ({e})"),
        );
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Serves `server` over Streamable HTTP at `http://<addr>/mcp` until
/// [`HttpServer::shutdown`]. Every session shares the server's budget,
/// jobs and files.
///
/// Refused: a non-loopback address without an auth token, and a token
/// shorter than [`MIN_TOKEN_LEN`].
///
/// ```no_run
/// use reka_inference::Client;
/// use reka_inference_mcp::{HttpOptions, Server, serve_http};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let server = Server::new(Client::from_env()?)?;
/// let http = serve_http(server, HttpOptions::new("127.0.0.1:8765".parse()?)).await?;
/// println!("MCP at {}", http.url());
/// http.wait().await?;
/// # Ok(()) }
/// ```
pub async fn serve_http(server: Server, options: HttpOptions) -> Result<HttpServer, ServeError> {
    let loopback = is_loopback(options.addr.ip());
    match &options.auth_token {
        None if !loopback => {
            return Err(ServeError::Config(format!(
                "{} is not a loopback address: serving it needs an auth token (Bearer), or any \
                 machine that reaches it could spend on this API key",
                options.addr
            )));
        }
        Some(t) if t.chars().count() < MIN_TOKEN_LEN || t.chars().any(char::is_whitespace) => {
            return Err(ServeError::Config(format!(
                "the auth token must be at least {MIN_TOKEN_LEN} characters, without spaces"
            )));
        }
        _ => {}
    }
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(ServeError::Io)?;
    let local_addr = listener.local_addr().map_err(ServeError::Io)?;
    let port = local_addr.port();

    let mut origins = Vec::new();
    for host in ["localhost", "127.0.0.1", "[::1]"] {
        for scheme in ["http", "https"] {
            origins.extend(Origin::parse(&format!("{scheme}://{host}:{port}")));
        }
    }
    if !local_addr.ip().is_unspecified() && !loopback {
        let host = match local_addr.ip() {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        for scheme in ["http", "https"] {
            origins.extend(Origin::parse(&format!("{scheme}://{host}:{port}")));
        }
    }
    let mut allow_null_origin = false;
    for origin in &options.allowed_origins {
        if origin.trim() == "null" {
            allow_null_origin = true;
            continue;
        }
        let parsed = Origin::parse(origin).ok_or_else(|| {
            ServeError::Config(format!(
                "{origin:?} is not an origin (expected scheme://host[:port])"
            ))
        })?;
        origins.push(parsed);
    }
    let max_body = options
        .max_body_bytes
        .unwrap_or(server.options().max_message_len());
    let guard_state = Arc::new(Guard {
        token_digest: options.auth_token.as_deref().map(digest),
        origins,
        allow_null_origin,
        max_body,
    });

    let stop = CancellationToken::new();
    let mut config = StreamableHttpServerConfig::default()
        .with_cancellation_token(stop.child_token())
        .with_max_request_body_bytes(max_body)
        // The guard checks origins, with the server's own port.
        .disable_allowed_origins();
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1", "[::1]"]
        .iter()
        .map(|h| (*h).to_owned())
        .collect();
    hosts.extend(options.allowed_hosts.iter().cloned());
    if !loopback {
        if local_addr.ip().is_unspecified() && options.allowed_hosts.is_empty() {
            // Any name may reach 0.0.0.0; the token guards it.
            config = config.disable_allowed_hosts();
        } else {
            hosts.push(local_addr.ip().to_string());
            config = config.with_allowed_hosts(hosts);
        }
    } else {
        config = config.with_allowed_hosts(hosts);
    }
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        LocalSessionManager::default().into(),
        config,
    );
    let router = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(guard_state, guard));
    let shutdown = stop.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    });
    tracing::info!(url = %format!("http://{local_addr}/mcp"), "serving MCP over Streamable HTTP");
    Ok(HttpServer {
        local_addr,
        stop,
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_by_scheme_host_and_port() {
        let guard = Guard {
            token_digest: None,
            origins: vec![
                Origin::parse("http://localhost:8765").unwrap(),
                Origin::parse("https://app.example.com").unwrap(),
            ],
            allow_null_origin: false,
            max_body: 1,
        };
        assert!(guard.origin_allowed("http://localhost:8765"));
        assert!(guard.origin_allowed("HTTP://LOCALHOST:8765"));
        assert!(guard.origin_allowed("https://app.example.com:443"));
        assert!(!guard.origin_allowed("http://localhost:8766"));
        assert!(!guard.origin_allowed("https://localhost:8765"));
        assert!(!guard.origin_allowed("http://evil.example"));
        assert!(!guard.origin_allowed("null"));
        assert!(!guard.origin_allowed("not a url"));
    }

    #[test]
    fn the_token_is_checked_whatever_its_form() {
        let guard = Guard {
            token_digest: Some(digest("correct-horse-battery")),
            origins: Vec::new(),
            allow_null_origin: false,
            max_body: 1,
        };
        let with = |value: Option<&str>| {
            let mut request = Request::new(Body::empty());
            if let Some(v) = value {
                request
                    .headers_mut()
                    .insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            }
            guard.token_ok(&request)
        };
        assert!(with(Some("Bearer correct-horse-battery")));
        assert!(with(Some("bearer  correct-horse-battery ")));
        assert!(!with(Some("Bearer correct-horse-batter")));
        assert!(!with(Some("Basic correct-horse-battery")));
        assert!(!with(Some("correct-horse-battery")));
        assert!(!with(None));
    }

    #[test]
    fn the_token_never_shows_in_debug() {
        let shown = format!(
            "{:?}",
            HttpOptions::new("127.0.0.1:1".parse().unwrap()).auth_token("s3cret-token-value")
        );
        assert!(!shown.contains("s3cret-token-value"));
    }
}
