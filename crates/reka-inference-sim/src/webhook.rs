//! Webhook delivery: POST the result record to `webhook_url` when a job
//! reaches a terminal state, retrying with exponential backoff.
//!
//! Every attempt waits for one of `webhook_concurrency` slots, connects
//! within the connect timeout and ends within the attempt timeout (its
//! connection closed with it), so receivers that never answer cannot pile
//! up connections or tasks that live forever
//! ([`crate::ConnectionLimits`]).
//!
//! Schedule: up to [`ATTEMPTS`] attempts, waiting 250 ms, 500 ms, 1 s and 2 s
//! between them, on the simulator's clock (wall time unless the clock is
//! paused or manual; not scaled by the time scale). Any 2xx answer counts as delivered. Only
//! `http://` receivers are supported (the simulator ships no TLS stack);
//! `https://` webhooks are counted as failed without an attempt.
//!
//! The `webhook` faults are decided before a job reaches this module (see
//! `AppState::with_store` and `AppState::spoof_for`): a lost delivery never
//! arrives here; a delayed, reordered or duplicated one arrives with the
//! clock time its first attempt is due at; a spoofed one gets one attempt and
//! touches no delivery counter.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::state::{AppState, Delivery, WebhookJob};

/// Attempts per webhook, the first included.
pub(crate) const ATTEMPTS: u32 = 5;
/// Wait before the first retry; doubled for each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// Receives webhook jobs and delivers each on its own task until the channel closes.
pub(crate) async fn dispatch(state: Arc<AppState>, mut rx: mpsc::UnboundedReceiver<WebhookJob>) {
    while let Some(job) = rx.recv().await {
        tokio::spawn(deliver(state.clone(), job));
    }
}

async fn deliver(state: Arc<AppState>, job: WebhookJob) {
    state.clock.sleep_until(job.due).await;
    let supported = job.url.starts_with("http://");
    if job.kind == Delivery::Spoof {
        if supported {
            let sent = try_once(&state, &job).await;
            tracing::debug!(request_id = %job.request_id, ?sent, "spoofed webhook sent");
        }
        return;
    }
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        if !supported {
            break;
        }
        state.stats_mut().webhook_attempts += 1;
        let began = state.clock.now();
        match try_once(&state, &job).await {
            Ok(()) => {
                state.stats_mut().webhooks_delivered += 1;
                return;
            }
            Err(why) => {
                tracing::debug!(request_id = %job.request_id, attempt, %why, "webhook attempt failed")
            }
        }
        if attempt < ATTEMPTS {
            // A manual clock stands still during the attempt unless a test
            // moves it: the retry falls due its backoff after the attempt
            // began, so a test that advances by the backoff once it sees the
            // attempt reaches it, however soon the failure was processed.
            let from = if state.clock.is_manual() {
                began
            } else {
                state.clock.now()
            };
            state.clock.sleep_until(from.saturating_add(backoff)).await;
            backoff = backoff.saturating_mul(2);
        }
    }
    tracing::warn!(request_id = %job.request_id, url = %job.url, "webhook given up");
    state.stats_mut().webhooks_failed += 1;
}

/// One attempt: waits for a free slot (at most `webhook_concurrency`
/// attempts in flight), then POSTs within the attempt timeout. When the
/// time is up the attempt's future is dropped, and with it its connection:
/// a receiver that accepts and never answers holds nothing for long.
async fn try_once(state: &AppState, job: &WebhookJob) -> Result<(), String> {
    let _slot = state
        .webhook_slots
        .acquire()
        .await
        .map_err(|_| "the simulator is stopping".to_string())?;
    let limits = state.limits;
    match tokio::time::timeout(
        limits.webhook_attempt_timeout,
        post(job, limits.webhook_connect_timeout),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err(format!(
            "no answer within {} s",
            limits.webhook_attempt_timeout.as_secs_f64()
        )),
    }
}

/// One POST over a fresh HTTP/1.1 connection that this future owns (it is
/// closed when the future ends or is dropped); Ok on a 2xx answer.
async fn post(job: &WebhookJob, connect_timeout: Duration) -> Result<(), String> {
    let url = url::Url::parse(&job.url).map_err(|e| e.to_string())?;
    let host = url.host_str().ok_or("no host")?.to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let connect_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let stream = tokio::time::timeout(
        connect_timeout,
        TcpStream::connect((connect_host.as_str(), port)),
    )
    .await
    .map_err(|_| {
        format!(
            "could not connect within {} s",
            connect_timeout.as_secs_f64()
        )
    })?
    .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    // The connection is driven here, not on a task of its own, so that it
    // ends with this future: nothing outlives a timed-out attempt.
    tokio::pin!(conn);
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    };
    let req = Request::post(path)
        .header(header::HOST, authority)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, "reka-inference-sim")
        .header("x-sim-request-id", job.request_id.as_str())
        .header(header::CONNECTION, "close")
        .body(Body::from(job.body.clone()))
        .map_err(|e| e.to_string())?;
    let send = sender.send_request(req);
    tokio::pin!(send);
    let resp = tokio::select! {
        biased;
        resp = &mut send => resp,
        // The connection ended (the receiver closes it after answering, as
        // asked): its answer, if it sent one, is already waiting.
        _ = conn.as_mut() => send.await,
    }
    .map_err(|e| e.to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("receiver answered {}", resp.status()))
    }
}
