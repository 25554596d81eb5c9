//! [`ServerOptions`]: where outputs go, which local files may be read, the
//! budget, the waits and the bounds of one [`Server`](crate::Server).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reka_inference::input::{DEFAULT_MAX_INLINE_BYTES, DataUri, InputEncoder};

/// How long `generate` and `wait_for_job` wait by default: 45 s, below the
/// 60 s after which common hosts cut a tool call.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(45);

/// The longest `wait_seconds` a caller may ask for: 10 minutes.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(600);

/// The longest gap between two progress notifications of a wait: 5 s.
pub const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

/// The largest image or audio file also returned inline, as MCP `image` or
/// `audio` content: 1 MiB (hosts drop or delay larger blocks).
pub const DEFAULT_INLINE_MAX_BYTES: u64 = 1 << 20;

/// Tool calls served at once, at most; more are refused with a tool error.
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 16;

/// Jobs this server submitted and has not seen finish, at most.
pub const DEFAULT_MAX_JOBS_IN_FLIGHT: usize = 8;

/// The largest JSON-RPC message read (stdio line or HTTP body): 4 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 << 20;

/// How long an MCP task (a `generate` or `wait_for_job` run as a task) is
/// kept: 2 hours, longer than any video job behind a queue.
pub const DEFAULT_TASK_TTL: Duration = Duration::from_secs(2 * 60 * 60);

/// Why options were refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// An `--allow-dir` is missing or not a directory.
    #[error("allowed directory {}: {why}", .path.display())]
    AllowDir {
        /// The directory as given.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The output directory cannot be used.
    #[error("output directory {}: {why}", .path.display())]
    OutputDir {
        /// The directory as given.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A number out of range (a negative budget, a zero limit).
    #[error("{0}")]
    Invalid(String),
}

/// The settings of a [`Server`](crate::Server). Every field has a default;
/// set what you need with the builder methods.
///
/// ```
/// use std::time::Duration;
/// use reka_inference_mcp::ServerOptions;
///
/// let options = ServerOptions::default()
///     .output_dir("/tmp/reka-outputs")
///     .allow_dir("/home/me/Pictures")
///     .budget_usd(5.0)
///     .default_wait(Duration::from_secs(30));
/// # let _ = options;
/// ```
#[derive(Clone)]
pub struct ServerOptions {
    pub(crate) output_dir: PathBuf,
    pub(crate) inline_max_bytes: u64,
    pub(crate) allow_dirs: Vec<PathBuf>,
    pub(crate) max_input_file_bytes: u64,
    pub(crate) encoder: Option<Arc<dyn InputEncoder>>,
    pub(crate) budget_usd: Option<f64>,
    pub(crate) estimate_usd: Option<f64>,
    pub(crate) cancel_on_abort: bool,
    pub(crate) default_wait: Duration,
    pub(crate) max_wait: Duration,
    pub(crate) progress_interval: Duration,
    pub(crate) max_concurrent_calls: usize,
    pub(crate) max_jobs_in_flight: usize,
    pub(crate) max_message_bytes: usize,
    pub(crate) task_ttl: Duration,
    pub(crate) secrets: Vec<String>,
}

impl fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerOptions")
            .field("output_dir", &self.output_dir)
            .field("inline_max_bytes", &self.inline_max_bytes)
            .field("allow_dirs", &self.allow_dirs)
            .field("max_input_file_bytes", &self.max_input_file_bytes)
            .field("custom_encoder", &self.encoder.is_some())
            .field("budget_usd", &self.budget_usd)
            .field("estimate_usd", &self.estimate_usd)
            .field("cancel_on_abort", &self.cancel_on_abort)
            .field("default_wait", &self.default_wait)
            .field("max_wait", &self.max_wait)
            .field("progress_interval", &self.progress_interval)
            .field("max_concurrent_calls", &self.max_concurrent_calls)
            .field("max_jobs_in_flight", &self.max_jobs_in_flight)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("task_ttl", &self.task_ttl)
            .field(
                "secrets",
                &format_args!("<{} redacted>", self.secrets.len()),
            )
            .finish()
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            output_dir: PathBuf::from("reka-outputs"),
            inline_max_bytes: DEFAULT_INLINE_MAX_BYTES,
            allow_dirs: Vec::new(),
            max_input_file_bytes: DEFAULT_MAX_INLINE_BYTES,
            encoder: None,
            budget_usd: None,
            estimate_usd: None,
            cancel_on_abort: false,
            default_wait: DEFAULT_WAIT,
            max_wait: DEFAULT_MAX_WAIT,
            progress_interval: DEFAULT_PROGRESS_INTERVAL,
            max_concurrent_calls: DEFAULT_MAX_CONCURRENT_CALLS,
            max_jobs_in_flight: DEFAULT_MAX_JOBS_IN_FLIGHT,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            task_ttl: DEFAULT_TASK_TTL,
            secrets: Vec::new(),
        }
    }
}

impl ServerOptions {
    /// Where the jobs' output files are saved (default: `reka-outputs` in
    /// the working directory); made absolute when the server is built and
    /// created when the first file is saved.
    pub fn output_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.output_dir = dir.into();
        self
    }

    /// Images and audio files up to this size are also returned inline as
    /// MCP `image` / `audio` content (default [`DEFAULT_INLINE_MAX_BYTES`];
    /// 0 turns inline content off). Every file is linked either way.
    pub fn inline_max_bytes(mut self, bytes: u64) -> Self {
        self.inline_max_bytes = bytes;
        self
    }

    /// Allows inputs to name local files under `dir` (a `file://` URI or a
    /// path). Without any allowed directory no local file is read.
    /// Symbolic links are resolved: a link that leads outside every allowed
    /// directory is refused.
    pub fn allow_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.allow_dirs.push(dir.into());
        self
    }

    /// The largest local file sent as an input, and the largest total of
    /// the files of one input (default 20 MiB,
    /// [`reka_inference::input::DEFAULT_MAX_INLINE_BYTES`]).
    pub fn max_input_file_bytes(mut self, bytes: u64) -> Self {
        self.max_input_file_bytes = bytes;
        self
    }

    /// How local files become input values (default: [`DataUri`], inline,
    /// with the [`max_input_file_bytes`](Self::max_input_file_bytes) limit).
    /// An encoder that uploads and returns a URL replaces it when the
    /// service documents an upload route.
    pub fn input_encoder(mut self, encoder: Arc<dyn InputEncoder>) -> Self {
        self.encoder = Some(encoder);
        self
    }

    /// Caps what this server may spend, in US dollars: a submit that would
    /// pass it (the prices the service reported for the jobs of this server
    /// plus the estimated price of its jobs in flight) is refused with a
    /// tool error naming the spend so far.
    ///
    /// A job's estimate is the highest price the service reported for its
    /// endpoint in this session, else [`estimate_usd`](Self::estimate_usd).
    /// While an endpoint's price is unknown, one of its jobs runs at a time
    /// to learn it.
    pub fn budget_usd(mut self, usd: f64) -> Self {
        self.budget_usd = Some(usd);
        self
    }

    /// The price to assume for a job whose endpoint's price is not known
    /// yet (and for jobs whose records carry no price). Only used with a
    /// budget.
    pub fn estimate_usd(mut self, usd: f64) -> Self {
        self.estimate_usd = Some(usd);
        self
    }

    /// When the host cancels a `generate` or `wait_for_job` call
    /// (`notifications/cancelled`), cancel the job too. By default the wait
    /// stops and the job keeps running.
    pub fn cancel_on_abort(mut self, cancel: bool) -> Self {
        self.cancel_on_abort = cancel;
        self
    }

    /// How long `generate` and `wait_for_job` wait when the caller does not
    /// say (default [`DEFAULT_WAIT`]).
    pub fn default_wait(mut self, wait: Duration) -> Self {
        self.default_wait = wait;
        self
    }

    /// The longest `wait_seconds` honoured (default [`DEFAULT_MAX_WAIT`]);
    /// a longer one is shortened to it.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// The longest gap between two progress notifications while a call
    /// with a progress token waits (default [`DEFAULT_PROGRESS_INTERVAL`]).
    pub fn progress_interval(mut self, interval: Duration) -> Self {
        self.progress_interval = interval;
        self
    }

    /// Tool calls served at once, and MCP tasks following jobs at once
    /// (default [`DEFAULT_MAX_CONCURRENT_CALLS`]).
    pub fn max_concurrent_calls(mut self, n: usize) -> Self {
        self.max_concurrent_calls = n;
        self
    }

    /// Jobs in flight at once (default [`DEFAULT_MAX_JOBS_IN_FLIGHT`]).
    pub fn max_jobs_in_flight(mut self, n: usize) -> Self {
        self.max_jobs_in_flight = n;
        self
    }

    /// The largest JSON-RPC message read (default
    /// [`DEFAULT_MAX_MESSAGE_BYTES`]); a larger one is answered with a
    /// JSON-RPC error and skipped.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// How long an MCP task is kept (default [`DEFAULT_TASK_TTL`]).
    pub fn task_ttl(mut self, ttl: Duration) -> Self {
        self.task_ttl = ttl;
        self
    }

    /// A secret (the API key, an auth token) to scrub from every tool
    /// result, should a server message ever echo it. The client already
    /// keeps its key out of every error; this is a second guard.
    pub fn redact(mut self, secret: impl Into<String>) -> Self {
        let secret = secret.into();
        if !secret.is_empty() {
            self.secrets.push(secret);
        }
        self
    }

    /// The output directory, as given.
    pub fn output_dir_path(&self) -> &Path {
        &self.output_dir
    }

    /// The largest `wait_seconds` honoured.
    pub fn max_wait_duration(&self) -> Duration {
        self.max_wait
    }

    /// The largest JSON-RPC message read.
    pub fn max_message_len(&self) -> usize {
        self.max_message_bytes
    }

    /// Checks the numbers.
    pub(crate) fn validate(&self) -> Result<(), OptionsError> {
        let money = |name: &str, v: Option<f64>| match v {
            Some(v) if !v.is_finite() || v < 0.0 => Err(OptionsError::Invalid(format!(
                "{name} must be a finite number of US dollars, at least 0 (got {v})"
            ))),
            _ => Ok(()),
        };
        money("the budget", self.budget_usd)?;
        money("the price estimate", self.estimate_usd)?;
        for (name, n) in [
            ("max_concurrent_calls", self.max_concurrent_calls),
            ("max_jobs_in_flight", self.max_jobs_in_flight),
            ("max_message_bytes", self.max_message_bytes),
        ] {
            if n == 0 {
                return Err(OptionsError::Invalid(format!("{name} must be at least 1")));
            }
        }
        if self.progress_interval.is_zero() {
            return Err(OptionsError::Invalid(
                "the progress interval must be longer than 0".into(),
            ));
        }
        if self.default_wait > self.max_wait {
            return Err(OptionsError::Invalid(format!(
                "the default wait ({:?}) is longer than the longest wait ({:?})",
                self.default_wait, self.max_wait
            )));
        }
        Ok(())
    }

    /// The encoder of local files.
    pub(crate) fn encoder(&self) -> Arc<dyn InputEncoder> {
        self.encoder
            .clone()
            .unwrap_or_else(|| Arc::new(DataUri::with_limit(self.max_input_file_bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_numbers_are_refused() {
        assert!(ServerOptions::default().validate().is_ok());
        for bad in [
            ServerOptions::default().budget_usd(-1.0),
            ServerOptions::default().budget_usd(f64::NAN),
            ServerOptions::default().estimate_usd(f64::INFINITY),
            ServerOptions::default().max_jobs_in_flight(0),
            ServerOptions::default().max_concurrent_calls(0),
            ServerOptions::default().progress_interval(Duration::ZERO),
            ServerOptions::default().default_wait(Duration::from_secs(700)),
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let shown = format!("{:?}", ServerOptions::default().redact("sk-very-secret"));
        assert!(!shown.contains("sk-very-secret"), "{shown}");
        assert!(shown.contains("<1 redacted>"));
    }
}
