//! The server of [`WebhookReceiver::listen`](super::WebhookReceiver::listen):
//! an accept loop (hyper, HTTP/1.1) that a receiver exposed to the internet
//! can survive. A connection has [`ReceiverLimits::header_read_timeout`] to
//! send its request's headers (and the same to send the next request's,
//! when kept alive), so half-open and slowloris connections close on their
//! own; at most [`ReceiverLimits::max_connections`] are open at once (fewer
//! when the process may open few files), and at the cap the longest-idle
//! one gives way ([`super::connections`]). The body's timeout and the cap on
//! buffered bytes belong to the handler, so they hold in your own server
//! too.

use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower_service::Service;

use super::ReceiverLimits;
use super::connections::Connections;

/// Serves `router` on `listener` until the runtime ends.
pub(super) async fn serve(listener: TcpListener, router: Router, limits: ReceiverLimits) {
    let cap = effective_cap(limits.max_connections, open_files_limit());
    let connections = Connections::new(cap);
    let mut http1 = hyper::server::conn::http1::Builder::new();
    // Hyper starts the header read timeout whenever it waits for a request
    // head: it also closes connections idle between requests.
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        // At the cap, wait for room (the longest-idle connection is asked
        // to close) before taking another connection from the listen queue.
        connections.room().await;
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Usually EMFILE: out of file descriptors. Make room by
                // closing the longest-idle connection; with none idle, back
                // off instead of spinning.
                tracing::debug!(error = %e, "webhook receiver: accept failed");
                if !connections.free_one(Duration::from_millis(100)).await {
                    tracing::warn!(error = %e, "webhook receiver: accept failed and no connection is idle");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let open = connections.open();
        let conn_state = open.conn();
        let http1 = http1.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let mut router = router.clone();
                let in_progress = conn_state.begin();
                async move {
                    let answer = router.call(req.map(axum::body::Body::new)).await;
                    drop(in_progress);
                    answer
                }
            });
            let conn = http1.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = open.evicted() => {
                    // Idle (no request in progress): hyper closes it now; a
                    // request that raced in is answered first.
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(open);
        });
    }
}

/// The cap on connections: the one asked for, and at most half the files
/// the process may open (the rest are the program's own: its requests to
/// the API, its downloads), at least 8.
fn effective_cap(asked: usize, open_files: Option<u64>) -> usize {
    let by_files = open_files.map_or(usize::MAX, |n| usize::try_from(n / 2).unwrap_or(usize::MAX));
    asked.min(by_files).max(8)
}

/// The soft limit on open files, where the system tells it without
/// `unsafe` (Linux's `/proc/self/limits`).
fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_half_the_open_files_to_the_program() {
        assert_eq!(effective_cap(256, Some(128)), 64);
        assert_eq!(effective_cap(256, Some(1 << 20)), 256);
        assert_eq!(effective_cap(256, None), 256);
        assert_eq!(effective_cap(256, Some(4)), 8);
        assert_eq!(effective_cap(0, None), 8);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_open_files_limit_is_read_on_linux() {
        assert!(open_files_limit().is_some_and(|n| n > 0));
    }
}
