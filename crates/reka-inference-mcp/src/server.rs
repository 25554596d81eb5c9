//! The [`Server`]: an MCP server over one [`reka_inference::Client`],
//! embeddable with any rmcp transport, and what its tools share (the
//! ledger of money and jobs, the model list, the files saved, the tasks).
//!
//! The tools themselves are in [`crate::tools`]; this module holds the
//! steps they share: checking an endpoint, reading local files, submitting
//! within the budget with an idempotency key derived from the call,
//! waiting, and turning the outcome into a tool result.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use reka_inference::input::{InputEncoder, InputFile};
use reka_inference::{Client, Endpoint, Error, Job, SubmitOptions};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ContentBlock,
    CreateTaskResult, GetTaskParams, GetTaskResult, Implementation, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::task_manager::{TaskExit, TaskManager, TaskOptions};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;

use crate::endpoints::{ModelCache, close_matches, endpoint_id};
use crate::idempotency::derive_key;
use crate::ledger::{Ledger, Refusal};
use crate::local_files::{AllowedDirs, SentFile, resolve_input_files};
use crate::options::{OptionsError, ServerOptions};
use crate::report::{
    JobReport, describe_outputs, elide_inline_files, error_value, error_words, redact,
};
use crate::wait::{Observed, Progress, Waited, wait_for};

/// Jobs whose endpoint and saved files are remembered, at most.
const REMEMBERED_JOBS: usize = 10_000;

/// How long one look at a job may take while settling the jobs in flight.
const SETTLE_LOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a cancel may take when the host gives up a wait.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest saved file `resources/read` returns.
const MAX_RESOURCE_BYTES: u64 = 32 << 20;

/// An MCP server for the inference API: the tools `list_models`,
/// `generate`, `submit_job`, `wait_for_job`, `job_status`, `job_result`,
/// `cancel_job` and `list_jobs` over your own [`Client`].
///
/// Serve it over stdio ([`Server::serve_stdio`]), any byte stream
/// ([`Server::serve_io`]), Streamable HTTP ([`crate::serve_http`], feature
/// `http`), or any other rmcp transport (it is an
/// [`rmcp::ServerHandler`]).
///
/// ```no_run
/// use reka_inference::Client;
/// use reka_inference_mcp::{Server, ServerOptions};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::from_env()?;
/// let options = ServerOptions::default().allow_dir("/home/me/Pictures").budget_usd(5.0);
/// Server::with_options(client, options)?.serve_stdio().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Server {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("client", &self.shared.client)
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

/// What every session of a server shares.
pub(crate) struct Shared {
    pub client: Client,
    pub options: ServerOptions,
    pub output_dir: PathBuf,
    pub allowed: AllowedDirs,
    pub encoder: Arc<dyn InputEncoder>,
    pub ledger: Ledger,
    pub models: ModelCache,
    pub calls: Arc<Semaphore>,
    pub tasks: TaskManager,
    pub router: ToolRouter<Server>,
    /// Random per server: idempotency keys of two servers never meet.
    pub namespace: String,
    memory: Mutex<Memory>,
    /// One download at a time per job: two waits on the same job must not
    /// write the same files at once.
    downloading: tokio::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// What is remembered of the jobs seen: their endpoint and saved files.
#[derive(Default)]
struct Memory {
    endpoints: HashMap<String, Endpoint>,
    saved: HashMap<String, Vec<PathBuf>>,
    order: VecDeque<String>,
}

impl Memory {
    fn touch(&mut self, id: &str) {
        if !self.endpoints.contains_key(id) && !self.saved.contains_key(id) {
            self.order.push_back(id.to_owned());
            while self.order.len() > REMEMBERED_JOBS {
                if let Some(old) = self.order.pop_front() {
                    self.endpoints.remove(&old);
                    self.saved.remove(&old);
                }
            }
        }
    }
}

impl Server {
    /// A server with the default [`ServerOptions`].
    pub fn new(client: Client) -> Result<Server, OptionsError> {
        Server::with_options(client, ServerOptions::default())
    }

    /// A server with `options`: the allowed directories are checked and
    /// canonicalised, the output directory made absolute (it is created
    /// when the first file is saved).
    pub fn with_options(client: Client, options: ServerOptions) -> Result<Server, OptionsError> {
        options.validate()?;
        let allowed = AllowedDirs::new(&options.allow_dirs)?;
        let output_dir =
            std::path::absolute(&options.output_dir).map_err(|e| OptionsError::OutputDir {
                path: options.output_dir.clone(),
                why: e.to_string(),
            })?;
        let ledger = Ledger::new(
            options.budget_usd,
            options.estimate_usd,
            options.max_jobs_in_flight,
        );
        let shared = Shared {
            encoder: options.encoder(),
            calls: Arc::new(Semaphore::new(options.max_concurrent_calls)),
            client,
            output_dir,
            allowed,
            ledger,
            models: ModelCache::default(),
            tasks: TaskManager::new(),
            router: Server::tool_router(),
            namespace: uuid::Uuid::new_v4().to_string(),
            memory: Mutex::new(Memory::default()),
            downloading: tokio::sync::Mutex::new(HashMap::new()),
            options,
        };
        Ok(Server {
            shared: Arc::new(shared),
        })
    }

    /// The absolute directory outputs are saved in.
    pub fn output_dir(&self) -> &Path {
        &self.shared.output_dir
    }

    /// The allowed directories, canonicalised.
    pub fn allowed_dirs(&self) -> &[PathBuf] {
        self.shared.allowed.dirs()
    }

    /// The options.
    pub fn options(&self) -> &ServerOptions {
        &self.shared.options
    }

    /// Serves one client over this process's stdin and stdout until stdin
    /// closes. See [`Server::serve_io`].
    pub async fn serve_stdio(self) -> Result<(), crate::ServeError> {
        self.serve_io(tokio::io::stdin(), tokio::io::stdout()).await
    }

    /// Serves one client over a byte stream of newline-delimited JSON-RPC
    /// messages (MCP's stdio framing) until `reader` ends.
    ///
    /// A line that is not JSON is answered with a JSON-RPC parse error
    /// (-32700), a JSON value that is not a JSON-RPC message with an
    /// invalid-request error (-32600), a line longer than
    /// [`ServerOptions::max_message_bytes`] with -32600 and skipped; the
    /// server keeps serving after each.
    pub async fn serve_io<R, W>(self, reader: R, writer: W) -> Result<(), crate::ServeError>
    where
        R: tokio::io::AsyncRead + Send + Unpin + 'static,
        W: tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        use rmcp::ServiceExt;
        let max = self.shared.options.max_message_bytes;
        let transport = crate::stdio::LineTransport::new(reader, writer, max);
        let running = self
            .serve(transport)
            .await
            .map_err(|e| crate::ServeError::Start(e.to_string()))?;
        running
            .waiting()
            .await
            .map_err(|e| crate::ServeError::Stopped(e.to_string()))?;
        Ok(())
    }
}

/// A tool error: `isError: true` and `text`.
pub(crate) fn tool_error(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text.into())])
}

/// The words of an SDK error, for a tool error.
pub(crate) fn error_text(e: &Error) -> String {
    match e {
        Error::Api(api) if api.status.as_u16() == 404 => format!(
            "the service knows no such job or endpoint ({api}); list_jobs lists recent jobs, \
             list_models the endpoints"
        ),
        Error::Api(api) if matches!(api.status.as_u16(), 400 | 422) => format!(
            "the service refused the input ({api}); list_models shows the fields each endpoint \
             takes"
        ),
        Error::Api(api) if matches!(api.status.as_u16(), 401 | 403) => format!(
            "the service refused the API key ({api}): the server's key is missing, wrong or not \
             allowed to do this"
        ),
        Error::RateLimited { retry_after, .. } => format!(
            "the service is rate limiting this key{}: {e}",
            retry_after
                .map(|d| format!(" (try again in {} s)", d.as_secs().max(1)))
                .unwrap_or_default()
        ),
        Error::SubmitOutcomeUnknown { .. } => format!(
            "{e}. The job may exist: call list_jobs to look before submitting again (the same \
             call, retried with the same request id, would not pay twice)"
        ),
        other => other.to_string(),
    }
}

/// Whether `id` can be a request id (it goes into a URL path).
pub(crate) fn check_request_id(id: &str) -> Result<&str, String> {
    let id = id.trim();
    let ok = !id.is_empty()
        && id.len() <= 200
        && id != "."
        && id != ".."
        && !id.contains(['/', '\\', '?', '#', '%'])
        && !id.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(id)
    } else {
        Err(format!(
            "{id:?} is not a request id: use the request_id that generate, submit_job or \
             list_jobs gave"
        ))
    }
}

/// The MCP session of a call, when its transport has one.
fn session_of(context: &RequestContext<RoleServer>) -> Option<String> {
    #[cfg(feature = "http")]
    {
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.headers.get("mcp-session-id"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
    #[cfg(not(feature = "http"))]
    {
        let _ = context;
        None
    }
}

/// A submit made by a tool call.
pub(crate) struct Submitted {
    pub job: Job,
    pub endpoint: String,
    pub sent_files: Vec<SentFile>,
}

impl Shared {
    fn memory<T>(&self, f: impl FnOnce(&mut Memory) -> T) -> T {
        let mut guard = match self.memory.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// Remembers the endpoint of a job.
    pub(crate) fn remember_endpoint(&self, id: &str, endpoint: &Endpoint) {
        self.memory(|m| {
            m.touch(id);
            m.endpoints.insert(id.to_owned(), endpoint.clone());
        });
    }

    /// A handle on the job `id`, with its endpoint when known.
    pub(crate) fn job(&self, id: &str) -> Job {
        match self.memory(|m| m.endpoints.get(id).cloned()) {
            Some(endpoint) => self
                .client
                .job_for(endpoint, id)
                .unwrap_or_else(|_| self.client.job(id)),
            None => self.client.job(id),
        }
    }

    /// The endpoint of a job, when known.
    pub(crate) fn endpoint_of(&self, id: &str) -> Option<String> {
        self.memory(|m| m.endpoints.get(id).map(|e| e.as_str().to_owned()))
    }

    /// The saved files of every job, for `resources/list`.
    fn saved_files(&self) -> Vec<PathBuf> {
        self.memory(|m| m.saved.values().flatten().cloned().collect())
    }

    /// Checks `endpoint` against the service's model list; an unknown one
    /// is refused with the close ones named. When the list cannot be had,
    /// the service decides.
    pub(crate) async fn check_endpoint(&self, endpoint: &str) -> Result<Endpoint, String> {
        let parsed = Endpoint::new(endpoint.trim()).map_err(|_| {
            format!(
                "{endpoint:?} is not an endpoint: expected <model>/<capability>, such as \
                 nano-banana/text-to-image. Call list_models for the endpoints."
            )
        })?;
        match self.models.get(&self.client).await {
            Ok(models) if !models.is_empty() => {
                let known: Vec<String> = models.iter().map(endpoint_id).collect();
                if known.iter().any(|k| k == parsed.as_str()) {
                    return Ok(parsed);
                }
                let close = close_matches(parsed.as_str(), &known);
                Err(format!(
                    "unknown endpoint {:?}. The closest: {}. list_models lists all {}.",
                    parsed.as_str(),
                    close.join(", "),
                    known.len()
                ))
            }
            Ok(_) => Ok(parsed),
            Err(e) => {
                tracing::debug!(error = %e, "the model list could not be had; the service decides");
                Ok(parsed)
            }
        }
    }

    /// Submits a job for a tool call: endpoint checked, local files read,
    /// budget and job bound kept, idempotency key derived from the call.
    pub(crate) async fn submit_for_call(
        &self,
        tool: &str,
        arguments: &Map<String, Value>,
        endpoint: &str,
        mut input: Map<String, Value>,
        context: &RequestContext<RoleServer>,
    ) -> Result<Submitted, String> {
        let endpoint = self.check_endpoint(endpoint).await?;
        let sent_files = resolve_input_files(
            &mut input,
            &self.allowed,
            self.options.max_input_file_bytes,
            self.encoder.as_ref(),
        )
        .await
        .map_err(|why| format!("{why}. Nothing was submitted."))?;
        let reservation = match self.ledger.reserve(endpoint.as_str()) {
            Ok(r) => r,
            Err(_) => {
                // Jobs may have finished unseen: look, then decide.
                self.settle_in_flight().await;
                self.ledger
                    .reserve(endpoint.as_str())
                    .map_err(|refusal: Refusal| refusal.message().to_owned())?
            }
        };
        let key = derive_key(
            &self.namespace,
            session_of(context).as_deref(),
            tool,
            arguments,
            &context.id,
        );
        let options = SubmitOptions::default().idempotency_key(key);
        match self.client.submit_with(&endpoint, input, options).await {
            Ok(job) => {
                reservation.confirm(job.id());
                self.remember_endpoint(job.id(), &endpoint);
                tracing::info!(request_id = %job.id(), endpoint = %endpoint, "submitted");
                Ok(Submitted {
                    job,
                    endpoint: endpoint.as_str().to_owned(),
                    sent_files,
                })
            }
            Err(e) => Err(format!(
                "the job was not submitted to {endpoint}: {}",
                error_text(&e)
            )),
        }
    }

    /// Looks once at every job in flight and settles those that finished.
    pub(crate) async fn settle_in_flight(&self) {
        let in_flight = self.ledger.in_flight();
        futures::stream::iter(in_flight)
            .map(|(id, endpoint)| async move {
                let job = self
                    .client
                    .job_for(endpoint.as_str(), id.as_str())
                    .unwrap_or_else(|_| self.client.job(id.as_str()));
                if let Ok(Ok(record)) =
                    tokio::time::timeout(SETTLE_LOOK_TIMEOUT, job.result()).await
                    && record.status.is_terminal() == Some(true)
                {
                    let price = reka_inference::JobOutput::from_record(record).price_usd();
                    self.ledger.finished(&id, Some(&endpoint), price);
                }
            })
            .buffer_unordered(4)
            .collect::<Vec<()>>()
            .await;
    }

    /// The wait a caller asked for, within the server's bounds.
    pub(crate) fn wait_of(&self, wait_seconds: Option<f64>) -> Duration {
        match wait_seconds {
            Some(s) if s.is_finite() && s > 0.0 => Duration::try_from_secs_f64(s)
                .map_or(self.options.max_wait, |d| d.min(self.options.max_wait)),
            Some(_) => Duration::ZERO,
            None => self.options.default_wait,
        }
    }

    /// Waits for `job` as a tool call does, then reports.
    pub(crate) async fn wait_and_report(
        &self,
        job: &Job,
        endpoint: Option<&str>,
        wait: Duration,
        sent_files: Vec<SentFile>,
        context: &RequestContext<RoleServer>,
    ) -> CallToolResult {
        let mut progress =
            Progress::notifications(context.peer.clone(), context.meta.get_progress_token());
        let waited = wait_for(
            job,
            wait,
            self.options.progress_interval,
            &mut progress,
            context.ct.cancelled(),
        )
        .await;
        let waited = match waited {
            Waited::Aborted(observed) => {
                if self.options.cancel_on_abort {
                    self.cancel_quietly(job).await;
                }
                Waited::Aborted(observed)
            }
            other => other,
        };
        self.report(job, endpoint, waited, wait, sent_files).await
    }

    /// Sends a cancel, bounded in time; failures are logged only.
    pub(crate) async fn cancel_quietly(&self, job: &Job) {
        match tokio::time::timeout(CANCEL_TIMEOUT, job.cancel()).await {
            Ok(Ok(record)) => {
                tracing::info!(request_id = %job.id(), status = %record.status, "cancelled on abort");
                if record.status.is_terminal() == Some(true) {
                    let price = reka_inference::JobOutput::from_record(record).price_usd();
                    self.ledger.finished(job.id(), None, price);
                }
            }
            Ok(Err(e)) => tracing::warn!(request_id = %job.id(), error = %e, "the cancel failed"),
            Err(_) => tracing::warn!(request_id = %job.id(), "the cancel timed out"),
        }
    }

    /// The tool result of a wait's outcome.
    pub(crate) async fn report(
        &self,
        job: &Job,
        endpoint: Option<&str>,
        waited: Waited,
        wait: Duration,
        sent_files: Vec<SentFile>,
    ) -> CallToolResult {
        let id = job.id();
        let endpoint = endpoint
            .map(str::to_owned)
            .or_else(|| job.endpoint().map(|e| e.as_str().to_owned()))
            .or_else(|| self.endpoint_of(id));
        let endpoint = endpoint.as_deref();
        match waited {
            Waited::Done(done) => {
                self.ledger.finished(id, endpoint, done.price_usd());
                self.report_done(done, endpoint, sent_files).await
            }
            Waited::Failed { error, record } => {
                let price = reka_inference::JobOutput::from_record((*record).clone()).price_usd();
                self.ledger.finished(id, endpoint, price);
                let mut report = JobReport::new(id, endpoint, self.ledger.spend());
                report.status = record.status.as_str().to_owned();
                report.done = true;
                report.price_usd = price;
                report.error = error_value(error.as_ref());
                report.input_files = sent_files;
                let text = format!(
                    "The {} FAILED: {}. Nothing was produced; {}.",
                    report.job_words(),
                    error_words(error.as_ref()),
                    report.money_words()
                );
                report.into_result(text, Vec::new(), true)
            }
            Waited::Cancelled => {
                self.ledger.finished(id, endpoint, None);
                let mut report = JobReport::new(id, endpoint, self.ledger.spend());
                report.status = "CANCELLED".into();
                report.done = true;
                report.input_files = sent_files;
                let text = format!(
                    "The {} was CANCELLED: it has no output.",
                    report.job_words()
                );
                report.into_result(text, Vec::new(), true)
            }
            Waited::Pending(observed) | Waited::Aborted(observed) => {
                let report = self.pending_report(id, endpoint, &observed, sent_files);
                let text = format!(
                    "Not done yet: the {} is {} after waiting {}s. It keeps running and is not \
                     lost: call wait_for_job with request_id \"{id}\" to wait for it again (that \
                     does not submit or pay again; do not call generate again for it).",
                    report.job_words(),
                    observed.words(),
                    wait.as_secs()
                );
                report.into_result(text, Vec::new(), false)
            }
            Waited::Broken(e, observed) => {
                let mut report = self.pending_report(id, endpoint, &observed, sent_files);
                report.next_step = Some(format!(
                    "call job_status or wait_for_job with request_id \"{id}\" again"
                ));
                let text = format!(
                    "Could not follow the {}: {}. If the job exists it keeps running: call \
                     wait_for_job with request_id \"{id}\" again.",
                    report.job_words(),
                    error_text(&e)
                );
                report.into_result(text, Vec::new(), true)
            }
        }
    }

    fn pending_report(
        &self,
        id: &str,
        endpoint: Option<&str>,
        observed: &Observed,
        sent_files: Vec<SentFile>,
    ) -> JobReport {
        let mut report = JobReport::new(id, endpoint, self.ledger.spend());
        report.status = observed.status.clone().unwrap_or_else(|| "IN_QUEUE".into());
        report.queue_position = observed.queue_position;
        report.logs = observed.logs.clone();
        report.input_files = sent_files;
        report.next_step = Some(format!(
            "call wait_for_job with request_id \"{id}\" (free; the job keeps running)"
        ));
        report
    }

    /// The result of a completed job: files saved (once), described,
    /// linked, and shown inline when small.
    pub(crate) async fn report_done(
        &self,
        done: reka_inference::JobOutput,
        endpoint: Option<&str>,
        sent_files: Vec<SentFile>,
    ) -> CallToolResult {
        let id = done.request_id.clone();
        let mut report = JobReport::new(&id, endpoint, self.ledger.spend());
        report.status = "COMPLETED".into();
        report.done = true;
        report.price_usd = done.price_usd();
        report.output = Some(elide_inline_files(&done.output));
        report.input_files = sent_files;
        let paths = match self.save_outputs(&done).await {
            Ok(paths) => paths,
            Err(e) => {
                report.download_error = Some(format!(
                    "the files could not be saved in {}: {}",
                    self.output_dir.display(),
                    error_text(&e)
                ));
                Vec::new()
            }
        };
        let (saved, extra) = describe_outputs(&done, &paths, self.options.inline_max_bytes).await;
        report.outputs = saved;
        let files = match report
            .outputs
            .iter()
            .filter_map(|o| o.path.as_deref())
            .count()
        {
            0 if report.download_error.is_some() => {
                "its files could not be saved (see download_error); their URLs are in outputs"
                    .to_owned()
            }
            0 if report.outputs.is_empty() => "it has no files: see output".to_owned(),
            0 => "no file was saved".to_owned(),
            n => format!(
                "{n} file(s) saved: {}",
                report
                    .outputs
                    .iter()
                    .filter_map(|o| o.path.as_deref())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let text = format!(
            "Done: the {} COMPLETED, {}; {files}.",
            report.job_words(),
            report.money_words()
        );
        report.into_result(text, extra, false)
    }

    /// The files of a completed job, saved once: a second wait on the same
    /// job waits for the first one's download and takes its files.
    async fn save_outputs(&self, done: &reka_inference::JobOutput) -> Result<Vec<PathBuf>, Error> {
        let id = done.request_id.clone();
        let lock = {
            let mut downloading = self.downloading.lock().await;
            downloading
                .entry(id.clone())
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
                .clone()
        };
        let outcome = {
            let _one_at_a_time = lock.lock().await;
            match self.memory(|m| m.saved.get(&id).cloned()) {
                Some(paths) => Ok(paths),
                None => {
                    let saved = self.client.download_outputs(done, &self.output_dir).await;
                    if let Ok(paths) = &saved {
                        self.memory(|m| {
                            m.touch(&id);
                            m.saved.insert(id.clone(), paths.clone());
                        });
                    }
                    saved
                }
            }
        };
        drop(lock);
        // The last one out removes the entry (then only the map holds it).
        let mut downloading = self.downloading.lock().await;
        if downloading
            .get(&id)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            downloading.remove(&id);
        }
        outcome
    }

    /// Reads a saved output file for `resources/read`.
    async fn read_saved(&self, uri: &str) -> Result<ReadResourceResult, McpError> {
        let not_found =
            || McpError::resource_not_found(format!("{uri} is not a file this server saved"), None);
        let url = url::Url::parse(uri).map_err(|_| not_found())?;
        if url.scheme() != "file" {
            return Err(not_found());
        }
        let path = url.to_file_path().map_err(|()| not_found())?;
        let canonical = tokio::fs::canonicalize(&path)
            .await
            .map_err(|_| not_found())?;
        let root = tokio::fs::canonicalize(&self.output_dir)
            .await
            .map_err(|_| not_found())?;
        if !canonical.starts_with(&root) {
            return Err(not_found());
        }
        let file = InputFile::from_path_with_limit(&canonical, MAX_RESOURCE_BYTES)
            .await
            .map_err(|e| McpError::invalid_params(e.to_string(), None))?;
        use base64::Engine;
        let blob = base64::engine::general_purpose::STANDARD.encode(file.bytes());
        Ok(ReadResourceResult::new(vec![
            ResourceContents::blob(blob, uri).with_mime_type(file.media_type()),
        ]))
    }
}

/// What the server tells a host about itself.
const INSTRUCTIONS: &str = "Generates images, videos, speech and bounding boxes with the Reka \
inference API. Start with list_models to pick an endpoint and see its input fields. generate \
submits a job and waits up to 45 s; a job still running then is NOT lost: call wait_for_job with \
its request_id (free) until it is done, never generate again for it. Jobs cost money: generate \
and submit_job create paid jobs; everything else is free. Results name the saved files by \
absolute path and link them.";

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        let mut server_info = Implementation::new("reka-inference-mcp", env!("CARGO_PKG_VERSION"));
        server_info.title = Some("Reka inference".into());
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_tasks()
                .build(),
        )
        .with_server_info(server_info)
        .with_instructions(INSTRUCTIONS.to_owned())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let Ok(_permit) = self.shared.calls.clone().try_acquire_owned() else {
            return Ok(tool_error(format!(
                "the server is already serving {} tool calls at once: try again when one has \
                 answered",
                self.shared.options.max_concurrent_calls
            ))
            .into());
        };
        let tasks = context
            .client_capabilities()
            .is_some_and(|caps| caps.supports_tasks());
        let response = if tasks && matches!(&*request.name, "generate" | "wait_for_job") {
            self.call_as_task(request, context).await?
        } else {
            let call = ToolCallContext::new(self, request, context);
            self.shared.router.call(call).await?
        };
        Ok(match response {
            CallToolResponse::Complete(result) => {
                CallToolResponse::Complete(redact(result, &self.shared.options.secrets))
            }
            other => other,
        })
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(
            self.shared.router.list_all(),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        self.shared.router.get(name).cloned()
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let resources = self
            .shared
            .saved_files()
            .into_iter()
            .filter_map(|path| {
                let uri = url::Url::from_file_path(&path).ok()?.to_string();
                let name = path.file_name()?.to_string_lossy().into_owned();
                let mut resource = Resource::new(uri, name);
                resource.description = Some(format!("a saved output, {}", path.display()));
                Some(resource)
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        Ok(self.shared.read_saved(&request.uri).await?.into())
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        Ok(GetTaskResult::new(
            self.shared.tasks.get_task(&request.task_id)?,
        ))
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.shared.tasks.cancel_task(&request.task_id)
    }
}

impl Server {
    /// `generate` or `wait_for_job` as an MCP task: the submit (for
    /// `generate`) happens now, so that a refusal is an immediate tool
    /// error; the wait runs in the task, as long as the task lives;
    /// `tasks/cancel` cancels the job.
    async fn call_as_task(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let arguments = request.arguments.clone().unwrap_or_default();
        let shared = self.shared.clone();
        // Before any submit: a refused task must not leave a job behind.
        if shared.tasks.running_task_count() >= shared.options.max_concurrent_calls {
            return Ok(tool_error(format!(
                "{} tasks are already following jobs (the limit): wait for one to finish, or \
                 cancel one with tasks/cancel",
                shared.options.max_concurrent_calls
            ))
            .into());
        }
        let (job, endpoint, sent_files) = if request.name == "generate" {
            let args: crate::tools::GenerateArgs =
                match serde_json::from_value(Value::Object(arguments.clone())) {
                    Ok(a) => a,
                    Err(e) => return Ok(tool_error(format!("invalid arguments: {e}")).into()),
                };
            let typed = serde_json::to_value(&args)
                .ok()
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default();
            match shared
                .submit_for_call("generate", &typed, &args.endpoint, args.input, &context)
                .await
            {
                Ok(s) => (s.job, Some(s.endpoint), s.sent_files),
                Err(why) => return Ok(tool_error(why).into()),
            }
        } else {
            let args: crate::tools::WaitArgs =
                match serde_json::from_value(Value::Object(arguments)) {
                    Ok(a) => a,
                    Err(e) => return Ok(tool_error(format!("invalid arguments: {e}")).into()),
                };
            let id = match check_request_id(&args.request_id) {
                Ok(id) => id.to_owned(),
                Err(why) => return Ok(tool_error(why).into()),
            };
            (shared.job(&id), shared.endpoint_of(&id), Vec::new())
        };
        let ttl = shared.options.task_ttl;
        let wait = ttl
            .saturating_sub(Duration::from_secs(60))
            .max(Duration::from_secs(1));
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let options = TaskOptions::new()
            .with_ttl_ms(ttl_ms)
            .with_status_message(format!("waiting for job {}", job.id()));
        let task = shared.tasks.clone().spawn(options, move |task_context| {
            Box::pin(async move {
                let mut progress = Progress::task(task_context.clone());
                let waited = wait_for(
                    &job,
                    wait,
                    shared.options.progress_interval,
                    &mut progress,
                    task_context.cancelled(),
                )
                .await;
                if let Waited::Aborted(_) = waited {
                    shared.cancel_quietly(&job).await;
                    return Err(TaskExit::Cancelled);
                }
                let result = shared
                    .report(&job, endpoint.as_deref(), waited, wait, sent_files)
                    .await;
                Ok(redact(result, &shared.options.secrets))
            })
        });
        Ok(CallToolResponse::Task(CreateTaskResult::new(task)))
    }
}
