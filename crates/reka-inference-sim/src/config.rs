//! How to start a simulator: [`SimConfig`] and its builder methods.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::catalog::Catalog;
use crate::dialect::Dialect;
use crate::faults::FaultConfig;

/// The API key accepted when no keys are configured.
pub const DEV_API_KEY: &str = "sim-dev-key";

/// Everything [`crate::start`] needs. Build it with [`SimConfig::new`] and the
/// builder methods.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub(crate) addr: SocketAddr,
    pub(crate) api_keys: Vec<String>,
    pub(crate) time_scale: f64,
    pub(crate) seed: Option<u64>,
    pub(crate) faults: FaultConfig,
    pub(crate) catalog: Catalog,
    pub(crate) failure_rate: Option<f64>,
    pub(crate) rate_limit: Option<u64>,
    pub(crate) submit_rate: Option<(f64, u64)>,
    pub(crate) submit_reset_whole_seconds: bool,
    pub(crate) advertised_base_url: Option<String>,
    pub(crate) dialect: Dialect,
    pub(crate) prices: bool,
    pub(crate) max_body_bytes: usize,
    pub(crate) manual_clock: bool,
    pub(crate) limits: ConnectionLimits,
}

/// Limits that keep the simulator answering when clients or webhook
/// receivers misbehave (idle or half-open connections, slow bodies,
/// receivers that never answer). Set them with the `SimConfig` methods
/// that name them; [`ConnectionLimits::default`] gives the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time a connection has to send a request's headers, after it opens
    /// or after its previous answer (so also the keep-alive idle timeout);
    /// past it the connection is closed. Default 30 s.
    pub header_read_timeout: Duration,
    /// Time a request has to send its whole body; past it the answer is
    /// `408` and the connection is closed. Default 60 s.
    pub body_read_timeout: Duration,
    /// Most connections open at once. At the cap, the connection idle the
    /// longest (no request in progress) is closed to make room; with none
    /// idle, new connections wait in the listen queue. Default 512.
    pub max_connections: usize,
    /// Time a webhook delivery has to connect. Default 5 s.
    pub webhook_connect_timeout: Duration,
    /// Time one webhook attempt has in all (connect, send, the answer's
    /// status line); past it the connection is closed and the attempt
    /// failed. Default 10 s.
    pub webhook_attempt_timeout: Duration,
    /// Most webhook attempts in flight at once (each holds a connection);
    /// further deliveries wait their turn. Default 64.
    pub webhook_concurrency: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            max_connections: 512,
            webhook_connect_timeout: Duration::from_secs(5),
            webhook_attempt_timeout: Duration::from_secs(10),
            webhook_concurrency: 64,
        }
    }
}

/// The default of [`SimConfig::max_body_bytes`]: 32 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig::new()
    }
}

impl SimConfig {
    /// Defaults: `127.0.0.1:0`, only [`DEV_API_KEY`], time scale 1.0, no
    /// explicit seed (random choices drawn from seed 0, request ids unique
    /// to the run), no faults, the default catalog with its own failure rates, no rate
    /// limit, no submit rate limit.
    pub fn new() -> SimConfig {
        SimConfig {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            api_keys: Vec::new(),
            time_scale: 1.0,
            seed: None,
            faults: FaultConfig::none(),
            catalog: Catalog::default_catalog(),
            failure_rate: None,
            rate_limit: None,
            submit_rate: None,
            submit_reset_whole_seconds: false,
            advertised_base_url: None,
            dialect: Dialect::Reka,
            prices: true,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            manual_clock: false,
            limits: ConnectionLimits::default(),
        }
    }

    /// Accepts this API key; call several times for several keys. Once any key
    /// is configured, [`DEV_API_KEY`] is no longer accepted (unless added).
    pub fn api_key(mut self, key: impl Into<String>) -> SimConfig {
        self.api_keys.push(key.into());
        self
    }

    /// Clock seconds per simulated second: `0.01` makes a 30 s job take
    /// 0.3 s (of wall time, or of the manual or paused clock).
    pub fn time_scale(mut self, factor: f64) -> SimConfig {
        self.time_scale = factor;
        self
    }

    /// Seed of every random choice (durations, failures, faults, request
    /// ids): two runs with the same seed and the same requests hand out the
    /// same request ids and make the same choices.
    ///
    /// Without it, every choice but the request ids is drawn from seed 0
    /// (as reproducible as with `seed(0)`), and the request ids are unique
    /// to the run: they mix in a random number drawn at start, so an id kept
    /// from an earlier run never names a job of this one.
    pub fn seed(mut self, seed: u64) -> SimConfig {
        self.seed = Some(seed);
        self
    }

    /// The seed given with [`SimConfig::seed`], if any.
    pub fn seed_value(&self) -> Option<u64> {
        self.seed
    }

    /// Faults injected from the start.
    pub fn faults(mut self, faults: FaultConfig) -> SimConfig {
        self.faults = faults;
        self
    }

    /// Replaces the default catalog.
    pub fn catalog(mut self, catalog: Catalog) -> SimConfig {
        self.catalog = catalog;
        self
    }

    /// Address to listen on (default `127.0.0.1:0`, an ephemeral port).
    pub fn addr(mut self, addr: SocketAddr) -> SimConfig {
        self.addr = addr;
        self
    }

    /// Fraction of jobs that end `FAILED`, overriding every catalog entry's rate.
    pub fn failure_rate(mut self, rate: f64) -> SimConfig {
        self.failure_rate = Some(rate);
        self
    }

    /// Per-key quota of API requests per window (24 simulated hours).
    pub fn rate_limit(mut self, requests_per_window: u64) -> SimConfig {
        self.rate_limit = Some(requests_per_window);
        self
    }

    /// A per-key token bucket on submits, independent of
    /// [`SimConfig::rate_limit`]: `burst` tokens, refilled at `per_second`
    /// tokens per second of **wall** time (not simulated time: it stands for
    /// a real API's admission limit, which a benchmark measures in wall
    /// throughput). Each submit takes a token or is refused with 429 before
    /// its handler runs; other operations are never limited by it.
    /// [`crate::start`] refuses a rate that is not finite and > 0, or a burst of 0.
    pub fn submit_rate_limit(mut self, per_second: f64, burst: u64) -> SimConfig {
        self.submit_rate = Some((per_second, burst));
        self
    }

    /// Makes the submit bucket's `x-ratelimit-requests-reset` whole seconds,
    /// rounded up (as a service that rounds would), rather than seconds to
    /// the millisecond (`0.250`). A bucket that refills within a second
    /// then cannot say when: clients can only learn it to the second.
    pub fn submit_reset_whole_seconds(mut self, whole: bool) -> SimConfig {
        self.submit_reset_whole_seconds = whole;
        self
    }

    /// The submit token bucket's `(per_second, burst)`, when one is configured.
    pub fn submit_rate_settings(&self) -> Option<(f64, u64)> {
        self.submit_rate
    }

    /// Origin written into `status_url`, `response_url`, `cancel_url` and
    /// output file URLs, instead of the real bound URL.
    pub fn advertised_base_url(mut self, url: impl Into<String>) -> SimConfig {
        self.advertised_base_url = Some(url.into());
        self
    }

    /// Which variant of the service to play (default [`Dialect::Reka`]).
    pub fn dialect(mut self, dialect: Dialect) -> SimConfig {
        self.dialect = dialect;
        self
    }

    /// Whether jobs and the model list report prices (default: yes, in
    /// every dialect). `false` plays a service that reports none: no
    /// `output.usage` in records, no `price_usd` in the model list, whatever
    /// the catalog says. The binary's `--no-prices`.
    pub fn prices(mut self, report: bool) -> SimConfig {
        self.prices = report;
        self
    }

    /// Largest request body accepted, in bytes (default
    /// [`DEFAULT_MAX_BODY_BYTES`], 32 MiB: room for an inline image of about
    /// 24 MiB as a base64 `data:` URI). A larger body is answered `413`
    /// (`request_too_large`, in the error envelope) without being kept in
    /// memory past the limit. The binary's `--max-body-bytes`.
    pub fn max_body_bytes(mut self, bytes: usize) -> SimConfig {
        self.max_body_bytes = bytes;
        self
    }

    /// A manual clock: the simulator's time stands still until
    /// [`crate::RunningSim::advance`] (or `POST /_sim/advance`) moves it,
    /// so a test decides exactly when jobs start and end, webhooks fall
    /// due and rate limits refill, with no wall-clock sleep and no race
    /// with real I/O. Without it the clock is Tokio's (the wall clock, or
    /// the test's under `tokio::time::pause()`). The binary's `--manual-clock`.
    ///
    /// ```
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use reka_inference_sim::{SimConfig, start};
    /// let sim = start(SimConfig::new().manual_clock()).await?;
    /// // ... submit jobs over HTTP: they stay queued ...
    /// sim.advance(Duration::from_secs(90))?; // ... now 90 s have passed for them
    /// # Ok(()) }
    /// ```
    pub fn manual_clock(mut self) -> SimConfig {
        self.manual_clock = true;
        self
    }

    /// Time a connection has to send a request's headers after it opens or
    /// after its previous answer (slow or idle connections are closed);
    /// default 30 s. The binary's `--header-read-timeout`.
    pub fn header_read_timeout(mut self, timeout: Duration) -> SimConfig {
        self.limits.header_read_timeout = timeout;
        self
    }

    /// Time a request has to send its whole body (then `408`); default
    /// 60 s. The binary's `--body-read-timeout`.
    pub fn body_read_timeout(mut self, timeout: Duration) -> SimConfig {
        self.limits.body_read_timeout = timeout;
        self
    }

    /// Most connections open at once (default 512): at the cap the
    /// longest-idle connection is closed to make room. The binary's
    /// `--max-connections`.
    pub fn max_connections(mut self, n: usize) -> SimConfig {
        self.limits.max_connections = n;
        self
    }

    /// A webhook attempt's time to connect (default 5 s) and its time in
    /// all (default 10 s). The binary's `--webhook-connect-timeout` and
    /// `--webhook-timeout`.
    pub fn webhook_timeouts(mut self, connect: Duration, attempt: Duration) -> SimConfig {
        self.limits.webhook_connect_timeout = connect;
        self.limits.webhook_attempt_timeout = attempt;
        self
    }

    /// Most webhook attempts in flight at once (default 64). The binary's
    /// `--webhook-concurrency`.
    pub fn webhook_concurrency(mut self, n: usize) -> SimConfig {
        self.limits.webhook_concurrency = n;
        self
    }

    /// The connection and webhook limits in effect.
    pub fn connection_limits(&self) -> ConnectionLimits {
        self.limits
    }

    /// The keys that are accepted: the configured ones, or [`DEV_API_KEY`].
    pub fn accepted_keys(&self) -> Vec<String> {
        if self.api_keys.is_empty() {
            vec![DEV_API_KEY.to_string()]
        } else {
            self.api_keys.clone()
        }
    }

    /// Checks the numeric settings and the catalog.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !self.time_scale.is_finite() || self.time_scale < 0.0 {
            return Err(format!(
                "time scale must be a finite number >= 0, got {}",
                self.time_scale
            ));
        }
        if let Some(r) = self.failure_rate
            && !(0.0..=1.0).contains(&r)
        {
            return Err(format!("failure rate must be between 0 and 1, got {r}"));
        }
        let l = &self.limits;
        for (name, d) in [
            ("header read timeout", l.header_read_timeout),
            ("body read timeout", l.body_read_timeout),
            ("webhook connect timeout", l.webhook_connect_timeout),
            ("webhook timeout", l.webhook_attempt_timeout),
        ] {
            if d.is_zero() {
                return Err(format!("the {name} must be longer than zero"));
            }
        }
        if l.max_connections == 0 || l.webhook_concurrency == 0 {
            return Err("connection and webhook concurrency caps must be at least 1".into());
        }
        if self.max_body_bytes == 0 {
            return Err("the body size limit must be at least 1 byte".into());
        }
        if self.rate_limit == Some(0) {
            return Err("rate limit must be at least 1 request per window".into());
        }
        if let Some((rate, burst)) = self.submit_rate {
            if !rate.is_finite() || rate <= 0.0 {
                return Err(format!(
                    "submit rate must be a finite number of submits per second > 0, got {rate}"
                ));
            }
            if burst == 0 {
                return Err("submit burst must be at least 1 submit".into());
            }
        }
        if self.api_keys.iter().any(|k| k.is_empty()) {
            return Err("API keys must not be empty".into());
        }
        self.catalog.validate().map_err(|e| e.to_string())?;
        FaultConfig::from_scopes(self.faults.scopes().clone()).map_err(|e| e.to_string())?;
        Ok(())
    }
}
