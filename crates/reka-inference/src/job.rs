//! One submitted request: follow it, wait for it, cancel it.
//!
//! A [`Job`] is only a request id and a client: it can be made from a
//! submit, or attached to a request submitted elsewhere with
//! [`Client::job`]. Waiting polls on the schedule of [`PollPolicy`] until the
//! job finishes or the deadline passes; [`Job::events`] yields what happens
//! along the way, each log line once, although the server re-sends the
//! whole log on every poll. Dropping a wait or an event stream never
//! cancels the job.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use futures::Stream;
use reka_inference_api::RequestStatus as JobStatus;
use reka_inference_api::types::{ResultResponse, StatusResponse};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::http::{Http, check_request_id, deadline_after};
use crate::poll::PollPolicy;
use crate::tracker::{LookKind, Tracker};
use crate::vocab::{JobEvent, JobOutput, outcome_of};
use crate::webhook::Deliveries;

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
/// let mut events = job.events();
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
    http: Http,
    id: String,
    endpoint: Option<Endpoint>,
    submitted_at: Option<Instant>,
    /// The same moment on the wall clock (what the list's `start` takes).
    submit_time: Option<DateTime<Utc>>,
    /// Where this job's webhook deliveries arrive, if it was submitted with one.
    deliveries: Option<Arc<dyn Deliveries>>,
    /// The count of deliveries for the job, subscribed when the handle got
    /// its webhook: while a handle lives, its id is one the source waits
    /// for (a flood of deliveries for other ids cannot push it out).
    delivery_count: Option<watch::Receiver<u64>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.id)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// How long and how a wait goes on.
#[derive(Debug, Clone, Default)]
pub struct WaitOptions {
    timeout: Option<Duration>,
    cancel_on_timeout: bool,
    poll: Option<PollPolicy>,
    without_logs: bool,
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

    /// Whether [`Job::events`] fetches the job's log lines (default: yes).
    /// Without them, the events say only where the job stands, and a
    /// running job is looked at through its record, so the look that sees
    /// it finish brings the output: what [`Job::wait`] does.
    pub fn logs(mut self, with_logs: bool) -> Self {
        self.without_logs = !with_logs;
        self
    }
}

impl Job {
    pub(crate) fn new(
        http: Http,
        id: String,
        endpoint: Option<Endpoint>,
        submitted_at: Option<Instant>,
    ) -> Job {
        let submit_time = submitted_at.map(|at| {
            let ago = Instant::now().saturating_duration_since(at);
            chrono::Duration::from_std(ago)
                .ok()
                .and_then(|ago| Utc::now().checked_sub_signed(ago))
                .unwrap_or_else(Utc::now)
        });
        Job {
            http,
            id,
            endpoint,
            submitted_at,
            submit_time,
            deliveries: None,
            delivery_count: None,
        }
    }

    /// The same handle, known to have been submitted at `at` (by another
    /// process, before a restart: a journal keeps it). Waits then plan
    /// from the submit, not from now, and a [`JobSet`](crate::JobSet)
    /// follows the job through list sweeps bounded by that time rather than
    /// polling it on its own. A time in the future counts as now.
    ///
    /// ```no_run
    /// # async fn run(client: reka_inference::Client) -> reka_inference::Result<()> {
    /// let submitted = chrono::Utc::now() - chrono::Duration::minutes(3);
    /// let job = client
    ///     .job_for("veo-3.1/text-to-video", "0193f6a2-7c1e-7d2b-9f3a-1b2c3d4e5f60")?
    ///     .with_submit_time(submitted);
    /// let mut set = client.job_set();
    /// set.push(job);
    /// # Ok(()) }
    /// ```
    pub fn with_submit_time(mut self, at: DateTime<Utc>) -> Job {
        let now = Utc::now();
        let at = at.min(now);
        let ago = (now - at).to_std().unwrap_or_default();
        self.submitted_at = Instant::now().checked_sub(ago);
        self.submit_time = Some(at);
        self
    }

    /// When the job was submitted, on the wall clock, when this handle
    /// knows: from its own submit, or [`with_submit_time`](Self::with_submit_time).
    pub fn submit_time(&self) -> Option<DateTime<Utc>> {
        self.submit_time
    }

    /// Waits of this handle park on `deliveries` for it (a webhook
    /// receiver): they end at a delivery, confirmed by one fetch, with a
    /// safety net of looks for a delivery that never comes (see
    /// [`webhook`](crate::webhook)). For a job submitted elsewhere with the
    /// receiver's URL: it is looked at once at the start (its delivery may
    /// have come before anything listened). While this handle (or a clone)
    /// lives, the receiver keeps the job's deliveries, whatever else it
    /// receives.
    pub fn with_webhook<D: Deliveries + Clone>(self, deliveries: &D) -> Job {
        self.with_deliveries(Some(Arc::new(deliveries.clone())))
    }

    pub(crate) fn with_deliveries(mut self, deliveries: Option<Arc<dyn Deliveries>>) -> Job {
        self.delivery_count = deliveries.as_ref().map(|d| d.for_job(&self.id));
        self.deliveries = deliveries;
        self
    }

    /// The count of the job's deliveries, as a watch, when it has a webhook.
    pub(crate) fn delivery_count(&self) -> Option<watch::Receiver<u64>> {
        let source = self.deliveries.as_ref()?;
        Some(
            self.delivery_count
                .clone()
                .unwrap_or_else(|| source.for_job(&self.id)),
        )
    }

    /// The request id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where this job's webhook deliveries arrive, if anywhere.
    pub(crate) fn deliveries(&self) -> Option<&Arc<dyn Deliveries>> {
        self.deliveries.as_ref()
    }

    /// When this handle's submit was accepted, if it came from one.
    pub(crate) fn submitted_at(&self) -> Option<Instant> {
        self.submitted_at
    }

    /// The endpoint, when this handle came from a submit.
    pub fn endpoint(&self) -> Option<&Endpoint> {
        self.endpoint.as_ref()
    }

    pub(crate) async fn status_until(
        &self,
        with_logs: bool,
        deadline: Option<Instant>,
    ) -> Result<StatusResponse> {
        check_request_id(&self.id)?;
        let call = self.http.call().deadline(deadline).start();
        let answer = call
            .api()
            .get_status()
            .request_id(self.id.as_str())
            .with_logs(with_logs)
            .send()
            .await;
        call.read(answer)
    }

    pub(crate) async fn result_until(&self, deadline: Option<Instant>) -> Result<ResultResponse> {
        check_request_id(&self.id)?;
        let call = self.http.call().deadline(deadline).start();
        let answer = call
            .api()
            .get_result()
            .request_id(self.id.as_str())
            .send()
            .await;
        call.read(answer)
    }

    /// The current status (and queue position while queued).
    #[tracing::instrument(level = "debug", skip(self), fields(request_id = %self.id))]
    pub async fn status(&self) -> Result<StatusResponse> {
        self.status_until(false, None).await
    }

    /// The current status with the whole log so far.
    #[tracing::instrument(level = "debug", skip(self), fields(request_id = %self.id))]
    pub async fn status_with_logs(&self) -> Result<StatusResponse> {
        self.status_until(true, None).await
    }

    /// The request's record, at any time: `output` is `None` until it
    /// completes.
    #[tracing::instrument(level = "debug", skip(self), fields(request_id = %self.id))]
    pub async fn result(&self) -> Result<ResultResponse> {
        self.result_until(None).await
    }

    /// The output decoded into your type: `Ok(None)` while the job is
    /// still queued or running, [`Error::JobFailed`] or
    /// [`Error::JobCancelled`] when it ended without one.
    ///
    /// ```no_run
    /// # async fn run(job: reka_inference::Job) -> reka_inference::Result<()> {
    /// match job.output::<serde_json::Value>().await? {
    ///     Some(output) => println!("done: {output}"),
    ///     None => println!("still running"),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn output<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        let record = self.result().await?;
        let failed_as_completed = record.output.is_none() && record.error.is_some();
        match record.status {
            JobStatus::Completed if !failed_as_completed => {
                JobOutput::from_record(record).output_as().map(Some)
            }
            JobStatus::Completed | JobStatus::Failed => Err(Error::JobFailed {
                request_id: self.id.clone(),
                error: record.error.clone().map(Box::new),
                record: Box::new(record),
            }),
            JobStatus::Cancelled => Err(Error::JobCancelled {
                request_id: self.id.clone(),
            }),
            _ => Ok(None),
        }
    }

    pub(crate) async fn cancel_until(&self, deadline: Option<Instant>) -> Result<ResultResponse> {
        check_request_id(&self.id)?;
        // A cancel asks for a state, not a change: sending it twice is
        // harmless, so it is retried like a GET.
        let call = self.http.call().deadline(deadline).idempotent().start();
        let answer = call
            .api()
            .cancel_request()
            .request_id(self.id.as_str())
            .send()
            .await;
        call.read(answer)
    }

    /// Cancels the job if it is queued or running; a finished job's record
    /// comes back unchanged.
    #[tracing::instrument(level = "debug", skip(self), fields(request_id = %self.id))]
    pub async fn cancel(&self) -> Result<ResultResponse> {
        self.cancel_until(None).await
    }

    /// Waits for the job with the client's default deadline.
    ///
    /// A failed job is [`Error::JobFailed`] (with the server's `error`), a
    /// cancelled one [`Error::JobCancelled`], a deadline reached
    /// [`Error::Timeout`] (with the last status). The job keeps running when
    /// the wait ends or is dropped.
    pub async fn wait(&self) -> Result<JobOutput> {
        self.wait_with(WaitOptions::default()).await
    }

    /// Waits with options (deadline, cancel on deadline, poll policy).
    #[tracing::instrument(level = "debug", skip_all, fields(request_id = %self.id))]
    pub async fn wait_with(&self, options: WaitOptions) -> Result<JobOutput> {
        let mut poller = Poller::new(self.clone(), options, false);
        while let Some(event) = poller.next().await {
            if let Some(outcome) = outcome_of(&self.id, event) {
                return outcome;
            }
        }
        Err(poller.tracker.timeout_error(false))
    }

    /// What happens to the job, until it finishes: see [`JobEvent`]. The
    /// stream ends after the terminal event, or after an error item
    /// (deadline, transport).
    pub fn events(&self) -> JobEvents {
        self.events_with(WaitOptions::default())
    }

    /// [`Job::events`] with options.
    pub fn events_with(&self, options: WaitOptions) -> JobEvents {
        let with_logs = !options.without_logs;
        let poller = Poller::new(self.clone(), options, with_logs);
        JobEvents {
            inner: Box::pin(futures::stream::unfold(poller, |mut p| async move {
                let item = p.next().await?;
                Some((item, p))
            })),
        }
    }
}

/// The events of one job, from [`Job::events`]: a named, `Unpin` stream,
/// so it can be kept in a struct and polled without pinning.
pub struct JobEvents {
    inner: std::pin::Pin<Box<dyn Stream<Item = Result<JobEvent>> + Send>>,
}

impl Stream for JobEvents {
    type Item = Result<JobEvent>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl std::fmt::Debug for JobEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobEvents").finish_non_exhaustive()
    }
}

/// How long a cancel sent on a wait's deadline may take: the wait has
/// already used its time, and must return promptly.
const CANCEL_GRACE: Duration = Duration::from_secs(1);

/// One job's looks, one request each: the driver of a [`Tracker`] for
/// [`Job::wait`] and [`Job::events`].
struct Poller {
    job: Job,
    tracker: Tracker,
    cancel_on_timeout: bool,
    /// The count of webhook deliveries for the job, when it has a webhook.
    deliveries: Option<tokio::sync::watch::Receiver<u64>>,
}

impl Poller {
    fn new(job: Job, options: WaitOptions, with_logs: bool) -> Poller {
        let waits = job.http.waits();
        let policy = options.poll.unwrap_or_else(|| waits.poll.clone());
        let timeout = options.timeout.unwrap_or(waits.timeout);
        let deadline = deadline_after(Instant::now(), timeout);
        let tracker = Tracker::new(
            job.http.clone(),
            job.id.clone(),
            job.endpoint.clone(),
            job.submitted_at,
            policy,
            deadline,
            with_logs,
        );
        let (tracker, deliveries) = match (&job.deliveries, job.delivery_count()) {
            (Some(source), Some(mut deliveries)) => {
                let mut tracker = tracker.with_safety_net(source.clone());
                // Delivered before this wait began: look now.
                if *deliveries.borrow_and_update() > 0 {
                    tracker.delivery_hint(Instant::now());
                }
                (tracker, Some(deliveries))
            }
            _ => (tracker, None),
        };
        Poller {
            job,
            tracker,
            cancel_on_timeout: options.cancel_on_timeout,
            deliveries,
        }
    }

    /// Sleeps until `wake`, or until a webhook delivery for the job.
    async fn sleep_until(&mut self, wake: Instant) {
        if let Some(deliveries) = &mut self.deliveries {
            tokio::select! {
                () = tokio::time::sleep_until(wake) => {}
                changed = deliveries.changed() => match changed {
                    Ok(()) => self.tracker.delivery_hint(Instant::now()),
                    // The receiver is gone: the safety net goes on alone.
                    Err(_) => self.deliveries = None,
                },
            }
            return;
        }
        tokio::time::sleep_until(wake).await;
    }

    async fn next(&mut self) -> Option<Result<JobEvent>> {
        loop {
            if let Some(event) = self.tracker.take_event() {
                return Some(event);
            }
            let (at, kind) = self.tracker.next_look()?;
            let deadline = self.tracker.deadline();
            if self.tracker.is_due_to_expire(Instant::now()) {
                let cancel_sent = self.cancel_on_timeout && self.cancel_at_deadline().await;
                self.tracker.expire(cancel_sent);
                continue;
            }
            if at > Instant::now() {
                let wake = deadline.map_or(at, |d| at.min(d));
                self.sleep_until(wake).await;
                continue;
            }
            let look = match kind {
                LookKind::Status => self
                    .job
                    .status_until(self.tracker_wants_logs(), deadline)
                    .await
                    .map(Look::Status),
                LookKind::Record => self.job.result_until(deadline).await.map(Look::Record),
            };
            let now = Instant::now();
            match look {
                Ok(Look::Status(s)) => self.tracker.observe_status(s, now),
                Ok(Look::Record(r)) => self.tracker.observe_record(r, now),
                Err(e) => self.tracker.observe_failure(e, now),
            }
        }
    }

    fn tracker_wants_logs(&self) -> bool {
        self.tracker.with_logs()
    }

    async fn cancel_at_deadline(&self) -> bool {
        let grace = deadline_after(Instant::now(), CANCEL_GRACE);
        self.job.cancel_until(grace).await.is_ok()
    }
}

enum Look {
    Status(StatusResponse),
    Record(ResultResponse),
}
