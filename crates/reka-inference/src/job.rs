//! One submitted request: follow it, wait for it, cancel it.
//!
//! A [`Job`] is only a request id and a client: it can be made from a
//! submit, or attached to a request submitted elsewhere with
//! [`Client::job`]. Waiting polls on the schedule of [`PollPolicy`] until the
//! job finishes or the deadline passes; [`Job::events`] yields what happens
//! along the way, each log line once, although the server re-sends the
//! whole log on every poll. Dropping a wait or an event stream never
//! cancels the job.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use futures::Stream;
use reka_inference_api::RequestStatus;
use reka_inference_api::types::{JobError, LogEntry, Metrics, ResultResponse, StatusResponse};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use crate::client::Client;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::output::{self, MediaRef};
use crate::poll::{Phase, PollPolicy, Schedule};

/// A submitted request.
///
/// ```no_run
/// # async fn run(client: reka_inference::Client) -> reka_inference::Result<()> {
/// use futures::StreamExt;
/// use reka_inference::{Endpoint, JobEvent};
///
/// let job = client
///     .submit(Endpoint::VEO_3_1_TEXT_TO_VIDEO, serde_json::json!({"prompt": "waves"}))
///     .await?;
/// let mut events = std::pin::pin!(job.events());
/// while let Some(event) = events.next().await {
///     match event? {
///         JobEvent::Queued { position } => println!("queued at {position:?}"),
///         JobEvent::Started => println!("running"),
///         JobEvent::Log(line) => println!("log: {}", line.message),
///         JobEvent::Completed(done) => println!("output: {}", done.output),
///         other => println!("{other:?}"),
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Job {
    client: Client,
    id: String,
    endpoint: Option<Endpoint>,
    submitted_at: Option<Instant>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.id)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// A finished job's output.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The request id.
    pub request_id: String,
    /// The output object (its shape depends on the endpoint; it is not
    /// published).
    pub output: Value,
    /// The server's measurements (`inference_time`, seconds).
    pub metrics: Option<Metrics>,
}

impl Completion {
    pub(crate) fn from_record(record: ResultResponse) -> Completion {
        Completion {
            request_id: record.request_id,
            output: record.output.map(Value::Object).unwrap_or(Value::Null),
            metrics: record.metrics,
        }
    }

    /// The output decoded into your own type.
    pub fn output_as<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.output.clone()).map_err(|e| Error::Decode {
            status: reqwest::StatusCode::OK,
            message: format!("the output does not match the requested type: {e}"),
            raw_body: serde_json::to_vec(&self.output).unwrap_or_default().into(),
        })
    }

    /// The media files the output points at (every `url` in it).
    pub fn media(&self) -> Vec<MediaRef> {
        output::find_media(&self.output)
    }
}

/// Something that happened to a job, as [`Job::events`] reports it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum JobEvent {
    /// The job is waiting; `position` 0 is next. Reported again when the
    /// position changes.
    Queued {
        /// Requests ahead of this one, when the server says.
        position: Option<u64>,
    },
    /// The job was seen running. A short job may finish between two polls
    /// and never be seen running.
    Started,
    /// A log line not reported before.
    Log(LogEntry),
    /// The server sent a status this version does not know. Polling goes
    /// on within the deadline; reported once per value.
    UnknownStatus(String),
    /// The job finished with an output (terminal).
    Completed(Completion),
    /// The job failed (terminal).
    Failed {
        /// The server's `error` object.
        error: Option<JobError>,
        /// The whole final record.
        record: Box<ResultResponse>,
    },
    /// The job was cancelled (terminal).
    Cancelled,
}

/// How long and how a wait goes on.
#[derive(Debug, Clone, Default)]
pub struct WaitOptions {
    timeout: Option<Duration>,
    cancel_on_timeout: bool,
    poll: Option<PollPolicy>,
}

impl WaitOptions {
    /// The overall deadline of this wait (default: the client's
    /// [`wait_timeout`](crate::ClientBuilder::wait_timeout)).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// Sends a best-effort cancel when the deadline passes.
    pub fn cancel_on_timeout(mut self, cancel: bool) -> Self {
        self.cancel_on_timeout = cancel;
        self
    }

    /// A poll policy for this wait only.
    pub fn poll_policy(mut self, p: PollPolicy) -> Self {
        self.poll = Some(p);
        self
    }
}

impl Job {
    pub(crate) fn new(
        client: Client,
        id: String,
        endpoint: Option<Endpoint>,
        submitted_at: Option<Instant>,
    ) -> Job {
        Job {
            client,
            id,
            endpoint,
            submitted_at,
        }
    }

    /// The request id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When this handle's submit was accepted, if it came from one.
    pub(crate) fn submitted_at(&self) -> Option<Instant> {
        self.submitted_at
    }

    /// The endpoint, when this handle came from a submit.
    pub fn endpoint(&self) -> Option<&Endpoint> {
        self.endpoint.as_ref()
    }

    /// The current status; with `with_logs`, the whole log so far.
    #[tracing::instrument(level = "debug", skip(self), fields(request_id = %self.id))]
    pub async fn status(&self, with_logs: bool) -> Result<StatusResponse> {
        self.client
            .call(
                None,
                self.client
                    .api()
                    .get_status()
                    .request_id(&self.id)
                    .with_logs(with_logs)
                    .send(),
            )
            .await
    }

    /// The request's record, at any time: `output` is `None` until it
    /// completes.
    #[tracing::instrument(level = "debug", skip(self), fields(request_id = %self.id))]
    pub async fn result(&self) -> Result<ResultResponse> {
        self.client
            .call(
                None,
                self.client.api().get_result().request_id(&self.id).send(),
            )
            .await
    }

    /// The output decoded into your type, or `None` while there is none.
    pub async fn output<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        let record = self.result().await?;
        if record.output.is_none() {
            return Ok(None);
        }
        Completion::from_record(record).output_as().map(Some)
    }

    /// Cancels the job if it is queued or running; a finished job's record
    /// comes back unchanged.
    #[tracing::instrument(level = "debug", skip(self), fields(request_id = %self.id))]
    pub async fn cancel(&self) -> Result<ResultResponse> {
        self.client
            .call(
                None,
                self.client
                    .api()
                    .cancel_request()
                    .request_id(&self.id)
                    .send(),
            )
            .await
    }

    /// Waits for the job with the client's default deadline.
    ///
    /// A failed job is [`Error::JobFailed`] (with the server's `error`), a
    /// cancelled one [`Error::JobCancelled`], a deadline reached
    /// [`Error::Timeout`] (with the last status). The job keeps running when
    /// the wait ends or is dropped.
    pub async fn wait(&self) -> Result<Completion> {
        self.wait_with(WaitOptions::default()).await
    }

    /// Waits with options (deadline, cancel on deadline, poll policy).
    #[tracing::instrument(level = "debug", skip_all, fields(request_id = %self.id))]
    pub async fn wait_with(&self, options: WaitOptions) -> Result<Completion> {
        let mut poller = Poller::new(self.clone(), options, false);
        while let Some(event) = poller.next().await {
            match event? {
                JobEvent::Completed(done) => return Ok(done),
                JobEvent::Failed { error, record } => {
                    return Err(Error::JobFailed {
                        request_id: self.id.clone(),
                        error,
                        record,
                    });
                }
                JobEvent::Cancelled => {
                    return Err(Error::JobCancelled {
                        request_id: self.id.clone(),
                    });
                }
                _ => {}
            }
        }
        Err(poller.timeout_error(false))
    }

    /// What happens to the job, until it finishes: see [`JobEvent`]. The
    /// stream ends after the terminal event, or after an error item
    /// (deadline, transport).
    pub fn events(&self) -> impl Stream<Item = Result<JobEvent>> + Send + 'static {
        self.events_with(WaitOptions::default())
    }

    /// [`Job::events`] with options.
    pub fn events_with(
        &self,
        options: WaitOptions,
    ) -> impl Stream<Item = Result<JobEvent>> + Send + 'static {
        let poller = Poller::new(self.clone(), options, true);
        futures::stream::unfold(poller, |mut p| async move {
            let item = p.next().await?;
            Some((item, p))
        })
    }
}

/// The polling loop shared by [`Job::wait`] and [`Job::events`].
struct Poller {
    job: Job,
    with_logs: bool,
    began: Instant,
    deadline: Instant,
    cancel_on_timeout: bool,
    schedule: Schedule,
    next_poll_at: Instant,
    pending: VecDeque<JobEvent>,
    done: bool,
    last_status: Option<RequestStatus>,
    last_position: Option<u64>,
    logs_seen: usize,
    unknown_reported: HashSet<String>,
    /// Polls failed in a row.
    failures: u32,
}

/// Polls of a wait that may fail in a row before the wait gives up.
const MAX_POLL_FAILURES: u32 = 5;

/// Errors worth another poll: the server or the network, not the request.
fn is_passing(e: &Error) -> bool {
    match e {
        Error::RateLimited { .. } => false,
        Error::Transport(_) | Error::Decode { .. } => true,
        other => other
            .status()
            .is_some_and(|s| s.is_server_error() || s.as_u16() == 408),
    }
}

impl Poller {
    fn new(job: Job, options: WaitOptions, with_logs: bool) -> Poller {
        let inner = &job.client.inner;
        let policy = options.poll.unwrap_or_else(|| inner.poll.clone());
        let estimate = match &job.endpoint {
            Some(e) if policy.learns() => inner.estimates.get(e.as_str()),
            _ => None,
        };
        let now = Instant::now();
        let origin = job.submitted_at.unwrap_or(now);
        let schedule = Schedule::new(policy, estimate, origin);
        // A fresh submit is surely still queued: look after the first gap.
        // An attached job may be done already: look now.
        let next_poll_at = match job.submitted_at {
            Some(at) => at + schedule.first_delay(),
            None => now,
        };
        let deadline = now + options.timeout.unwrap_or(inner.wait_timeout);
        Poller {
            job,
            with_logs,
            began: now,
            deadline,
            cancel_on_timeout: options.cancel_on_timeout,
            schedule,
            next_poll_at,
            pending: VecDeque::new(),
            done: false,
            last_status: None,
            last_position: None,
            logs_seen: 0,
            unknown_reported: HashSet::new(),
            failures: 0,
        }
    }

    async fn next(&mut self) -> Option<Result<JobEvent>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            let now = Instant::now();
            if now >= self.deadline {
                self.done = true;
                let cancel_sent = self.cancel_on_timeout && self.job.cancel().await.is_ok();
                return Some(Err(self.timeout_error(cancel_sent)));
            }
            if self.next_poll_at > now {
                tokio::time::sleep_until(self.next_poll_at.min(self.deadline)).await;
                continue;
            }
            match self.poll_once().await {
                Ok(()) => self.failures = 0,
                // A poll that failed after the transport's own retries
                // (a flaky proxy, a 500 from one replica) should not end a
                // long wait: look again later, within the deadline.
                Err(e) if self.failures < MAX_POLL_FAILURES && is_passing(&e) => {
                    self.failures += 1;
                    tracing::warn!(request_id = %self.job.id, error = %e, failures = self.failures,
                        "status poll failed; trying again");
                    let gap = self.schedule.policy().initial_interval() * (1 << self.failures);
                    self.next_poll_at = Instant::now() + gap;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }

    fn timeout_error(&self, cancel_sent: bool) -> Error {
        Error::Timeout {
            request_id: self.job.id.clone(),
            last_status: self.last_status.clone(),
            elapsed: self.began.elapsed(),
            cancel_sent,
        }
    }

    async fn poll_once(&mut self) -> Result<()> {
        let client = &self.job.client;
        let id = &self.job.id;
        let deadline = Some(self.deadline);
        // While running and without logs to show, ask for the record rather
        // than the status: the poll that sees completion brings the output.
        let running = self.last_status == Some(RequestStatus::InProgress);
        if running && !self.with_logs {
            let record = client
                .call(deadline, client.api().get_result().request_id(id).send())
                .await?;
            self.observe(record.status.clone(), None, None, Some(record))
                .await
        } else {
            let status = client
                .call(
                    deadline,
                    client
                        .api()
                        .get_status()
                        .request_id(id)
                        .with_logs(self.with_logs)
                        .send(),
                )
                .await?;
            let position = status.queue_position;
            self.observe(status.status, position, status.logs, None)
                .await
        }
    }

    async fn observe(
        &mut self,
        status: RequestStatus,
        position: Option<u64>,
        logs: Option<Vec<LogEntry>>,
        record: Option<ResultResponse>,
    ) -> Result<()> {
        let now = Instant::now();
        let previous = self.last_status.replace(status.clone());
        let entered = previous.as_ref() != Some(&status);
        let phase = match &status {
            RequestStatus::InQueue => {
                if entered || position != self.last_position {
                    self.pending.push_back(JobEvent::Queued { position });
                }
                self.last_position = position;
                Phase::Queued { position }
            }
            RequestStatus::InProgress => {
                if entered {
                    self.pending.push_back(JobEvent::Started);
                }
                Phase::Running
            }
            RequestStatus::Unknown(value) => {
                if self.unknown_reported.insert(value.clone()) {
                    tracing::warn!(request_id = %self.job.id, status = %value,
                        "unknown request status; polling on until the deadline");
                    self.pending
                        .push_back(JobEvent::UnknownStatus(value.clone()));
                }
                Phase::Unknown
            }
            RequestStatus::Completed | RequestStatus::Failed | RequestStatus::Cancelled => {
                Phase::Running
            }
        };
        if let Some(logs) = logs {
            if logs.len() >= self.logs_seen {
                let fresh = logs.into_iter().skip(self.logs_seen);
                let before = self.pending.len();
                self.pending.extend(fresh.map(JobEvent::Log));
                self.logs_seen += self.pending.len() - before;
            } else {
                // The server shortened the log (rotation): nothing in it can
                // be told new, so only later lines are reported.
                self.logs_seen = logs.len();
            }
        }
        if status.is_terminal() == Some(true) {
            self.finish(status, record).await?;
            return Ok(());
        }
        let delay = self.schedule.observe(phase, now);
        self.next_poll_at = now + delay;
        Ok(())
    }

    async fn finish(
        &mut self,
        status: RequestStatus,
        record: Option<ResultResponse>,
    ) -> Result<()> {
        self.done = true;
        if status == RequestStatus::Cancelled {
            self.pending.push_back(JobEvent::Cancelled);
            return Ok(());
        }
        let record = match record {
            Some(r) => r,
            None => {
                let client = &self.job.client;
                client
                    .call(
                        Some(self.deadline),
                        client.api().get_result().request_id(&self.job.id).send(),
                    )
                    .await?
            }
        };
        if status == RequestStatus::Failed {
            let error = record.error.clone();
            self.pending.push_back(JobEvent::Failed {
                error,
                record: Box::new(record),
            });
            return Ok(());
        }
        self.learn(&record);
        self.pending
            .push_back(JobEvent::Completed(Completion::from_record(record)));
        Ok(())
    }

    /// Feeds the endpoint's duration estimate: the server's own
    /// `inference_time` where it sends one, else what the poller saw.
    fn learn(&self, record: &ResultResponse) {
        let Some(endpoint) = &self.job.endpoint else {
            return;
        };
        let scale = self.schedule.policy().time_scale();
        let reported = record
            .metrics
            .as_ref()
            .and_then(|m| m.inference_time)
            .map(|s| s * scale);
        let observed = self.schedule.started().map(|(earliest, latest)| {
            let start = earliest + (latest - earliest) / 2;
            Instant::now()
                .saturating_duration_since(start)
                .as_secs_f64()
        });
        if let Some(seconds) = reported.or(observed) {
            self.job
                .client
                .inner
                .estimates
                .record(endpoint.as_str(), seconds);
        }
    }
}
