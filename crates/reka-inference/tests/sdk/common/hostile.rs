//! A hostile stand-in for the API: every answer is chosen by the test, and
//! may be huge, endless, dripping, silent, self-contradicting or malicious.
//! Every request is recorded (method, path and query, headers).
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};
use bytes::Bytes;
use serde_json::Value;

/// What the server answers to one request.
pub enum Reply {
    /// A JSON body with a status.
    Json(u16, Value),
    /// Any body, with a status and headers.
    Raw(u16, Vec<(&'static str, String)>, Bytes),
    /// A 200 whose JSON body never ends (`{"a":"xxxx...`).
    Endless,
    /// A 200 that sends one byte every `Duration`, forever.
    Drip(Duration),
    /// A 200 that sends `n` bytes, one every `Duration`, then ends.
    Slow(usize, Duration),
    /// Headers never come.
    Silent,
    /// Another reply, after a pause.
    Delayed(Duration, Box<Reply>),
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    /// Path and query, as sent.
    pub target: String,
    pub headers: HeaderMap,
    /// When it arrived.
    pub at: tokio::time::Instant,
}

pub struct Hostile {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Hostile {
    /// Starts a server answering each request with `answer(method, path,
    /// query, n)`, where `n` counts the requests before this one.
    pub async fn start<F>(answer: F) -> Hostile
    where
        F: Fn(&Method, &str, &str, usize) -> Reply + Send + Sync + 'static,
    {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let answer = Arc::new(answer);
        let app = Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
            let log = log.clone();
            let answer = answer.clone();
            async move {
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push(Seen {
                        method: method.clone(),
                        target: uri
                            .path_and_query()
                            .map(|p| p.as_str().to_owned())
                            .unwrap_or_default(),
                        headers,
                        at: tokio::time::Instant::now(),
                    });
                    log.len() - 1
                };
                let reply = answer(&method, uri.path(), uri.query().unwrap_or(""), n);
                respond(reply).await
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Hostile { url, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests had a path ending so.
    pub fn count(&self, path_suffix: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| {
                s.target
                    .split('?')
                    .next()
                    .unwrap_or("")
                    .ends_with(path_suffix)
            })
            .count()
    }
}

async fn respond(reply: Reply) -> Response<Body> {
    match reply {
        Reply::Delayed(pause, reply) => {
            tokio::time::sleep(pause).await;
            Box::pin(respond(*reply)).await
        }
        Reply::Json(status, value) => Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(value.to_string()))
            .unwrap(),
        Reply::Raw(status, headers, body) => {
            let mut b = Response::builder().status(status);
            for (k, v) in headers {
                b = b.header(k, v);
            }
            b.body(Body::from(body)).unwrap()
        }
        Reply::Endless => {
            let head = futures::stream::once(async {
                Ok::<_, Infallible>(Bytes::from_static(b"{\"a\":\""))
            });
            let tail = futures::stream::repeat_with(|| Ok(Bytes::from(vec![b'x'; 64 << 10])));
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Body::from_stream(futures::StreamExt::chain(head, tail)))
                .unwrap()
        }
        Reply::Drip(every) => {
            let drip = futures::stream::unfold((), move |()| async move {
                tokio::time::sleep(every).await;
                Some((Ok::<_, Infallible>(Bytes::from_static(b" ")), ()))
            });
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Body::from_stream(drip))
                .unwrap()
        }
        Reply::Slow(n, every) => {
            let slow = futures::stream::unfold(0usize, move |i| async move {
                if i == n {
                    return None;
                }
                tokio::time::sleep(every).await;
                Some((Ok::<_, Infallible>(Bytes::from_static(b"x")), i + 1))
            });
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "video/mp4")
                .body(Body::from_stream(slow))
                .unwrap()
        }
        Reply::Silent => {
            futures::future::pending::<()>().await;
            unreachable!()
        }
    }
}

/// A status answer.
pub fn status(id: &str, status: &str) -> Value {
    serde_json::json!({"request_id": id, "status": status})
}

/// A record answer.
pub fn record(id: &str, status: &str, output: Option<Value>) -> Value {
    let mut v = serde_json::json!({"request_id": id, "status": status});
    if let Some(o) = output {
        v["output"] = o;
    }
    v
}
