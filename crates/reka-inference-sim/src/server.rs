//! Starting and stopping: the accept loop (hyper, so a fault can close a
//! connection without answering; with a header read timeout and a cap on
//! connections, so idle ones cannot starve it), the background tasks, and
//! [`RunningSim`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tower_service::Service;

use crate::config::{ConnectionLimits, SimConfig};
use crate::connections::Connections;
use crate::faults::FaultConfig;
use crate::http::layers::DropConnection;
use crate::state::AppState;
use crate::stats::Stats;
use crate::{http, scheduler, webhook};

/// How long [`RunningSim::shutdown`] waits for open connections to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The error a connection's service returns to make hyper close it unanswered.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

/// [`RunningSim::advance`] on a simulator whose clock is not manual.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotManualClock;

impl std::fmt::Display for NotManualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the simulator's clock is not manual (SimConfig::manual_clock, --manual-clock): it follows Tokio's time")
    }
}

impl std::error::Error for NotManualClock {}

/// A simulator listening in this process. Dropping it stops the server too.
#[derive(Debug)]
pub struct RunningSim {
    base_url: String,
    addr: SocketAddr,
    state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
    accept: Option<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
    drained: Option<mpsc::Receiver<()>>,
}

/// Starts a simulator: binds `config.addr`, spawns the server on the current
/// Tokio runtime and returns once it is listening.
pub async fn start(config: SimConfig) -> std::io::Result<RunningSim> {
    config
        .validate()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let listener = TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let advertised = config
        .advertised_base_url
        .clone()
        .unwrap_or_else(|| base_url.clone());
    let advertised = advertised.trim_end_matches('/').to_string();

    let (hook_tx, hook_rx) = mpsc::unbounded_channel();
    let state = Arc::new(
        AppState::new(&config, advertised, hook_tx)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
    );
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (conn_tx, drained) = mpsc::channel::<()>(1);

    let router = http::router(state.clone());
    let accept = tokio::spawn(accept_loop(
        listener,
        router,
        config.limits,
        shutdown_rx.clone(),
        conn_tx,
    ));
    let background = vec![
        tokio::spawn(scheduler::run(state.clone(), shutdown_rx)),
        tokio::spawn(webhook::dispatch(state.clone(), hook_rx)),
    ];
    Ok(RunningSim {
        base_url,
        addr,
        state,
        shutdown,
        accept: Some(accept),
        background,
        drained: Some(drained),
    })
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    mut shutdown: watch::Receiver<bool>,
    conn_tx: mpsc::Sender<()>,
) {
    let connections = Connections::new(limits.max_connections);
    let mut http1 = hyper::server::conn::http1::Builder::new();
    // The header read timeout also closes connections idle between
    // requests: hyper starts it whenever it waits for a request head.
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        // At the cap, wait for room (the longest-idle connection is asked
        // to close) before taking another connection from the listen queue.
        tokio::select! {
            _ = connections.room() => {}
            _ = shutdown.changed() => return,
        }
        let stream = tokio::select! {
            res = listener.accept() => match res {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Usually EMFILE: out of file descriptors. Make room by
                    // closing the longest-idle connection; with none idle,
                    // back off instead of spinning.
                    tracing::debug!(error = %e, "accept failed");
                    if !connections.free_one(Duration::from_millis(100)).await {
                        tracing::warn!(error = %e, "accept failed and no connection is idle");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let mut shutdown = shutdown.clone();
        let guard = conn_tx.clone();
        let open = connections.open();
        let conn_state = open.conn();
        let http1 = http1.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let mut router = router.clone();
                let in_progress = conn_state.begin();
                async move {
                    let resp = match router.call(req).await {
                        Ok(resp) => resp,
                        Err(never) => match never {},
                    };
                    drop(in_progress);
                    if resp.extensions().get::<DropConnection>().is_some() {
                        Err(Dropped)
                    } else {
                        Ok(resp)
                    }
                }
            });
            let conn = http1.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = shutdown.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
                _ = open.evicted() => {
                    // Idle (no request in progress): hyper closes it now; a
                    // request that raced in is answered first.
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(open);
            drop(guard);
        });
    }
}

impl RunningSim {
    /// `http://127.0.0.1:PORT`, without a trailing slash; API paths start with `/v2/inference/`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// An API key the simulator accepts: the first configured with
    /// [`SimConfig::api_key`], else [`DEV_API_KEY`](crate::DEV_API_KEY).
    pub fn api_key(&self) -> &str {
        self.state.keys.first().map_or(crate::DEV_API_KEY, |k| k)
    }

    /// Clock seconds per simulated second ([`SimConfig::time_scale`]): a
    /// client's poll schedule is to be scaled by it.
    pub fn time_scale(&self) -> f64 {
        self.state.clock.scale()
    }

    /// The counters, as `GET /_sim/stats` returns them.
    pub async fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// Replaces the fault configuration, as `PUT /_sim/faults` does.
    pub fn set_faults(&self, faults: FaultConfig) {
        self.state.set_faults(faults);
    }

    /// Clears jobs, stats, faults and quotas, as `POST /_sim/reset` does.
    pub fn reset(&self) {
        self.state.reset();
    }

    /// Moves a manual clock ([`SimConfig::manual_clock`]) forward by `by`
    /// and returns its new reading (the time since the simulator started,
    /// on its clock). Everything due by then has happened when it returns:
    /// jobs started and ended at their exact instants (however far the jump),
    /// webhooks of finished jobs handed to delivery, buckets refilled; a
    /// webhook's delay or retry backoff that ends within the jump is due too
    /// (its delivery then goes out over the network as usual).
    ///
    /// With Tokio's clock (no `manual_clock`) nothing moves: the error
    /// says so (under `tokio::time::pause()`, use `tokio::time::advance`).
    pub fn advance(&self, by: Duration) -> Result<Duration, NotManualClock> {
        self.state.advance_clock(by).ok_or(NotManualClock)
    }

    /// The simulator's clock: time since it started (wall time, the paused
    /// test clock, or the manual clock).
    pub fn elapsed(&self) -> Duration {
        self.state.clock.now()
    }

    /// How long until the next running job ends, on the simulator's clock;
    /// `None` when no job is running. With a manual clock, advancing by it
    /// steps to the next job end:
    ///
    /// ```no_run
    /// # fn demo(sim: &reka_inference_sim::RunningSim) {
    /// while let Some(next) = sim.until_next_job_end() {
    ///     sim.advance(next).expect("a manual clock");
    /// }
    /// # }
    /// ```
    pub fn until_next_job_end(&self) -> Option<Duration> {
        self.state.until_next_job_end()
    }

    /// Stops accepting, lets open connections finish (up to 5 s) and stops
    /// the background tasks.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(accept) = self.accept.take() {
            let _ = accept.await;
        }
        if let Some(mut drained) = self.drained.take() {
            // Resolves with None once every connection task dropped its sender.
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, drained.recv()).await;
        }
        for task in self.background.drain(..) {
            task.abort();
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        for task in self.background.drain(..) {
            task.abort();
        }
    }
}
