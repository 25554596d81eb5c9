//! What the client believes about one job, and when to look at it next:
//! the one state machine behind [`Job::wait`](crate::Job::wait),
//! [`Job::events`](crate::Job::events) and [`JobSet`](crate::JobSet).
//!
//! A [`Tracker`] is fed looks (a status, a record, a list item) and
//! failures, and answers with events and the time and kind of the next
//! look. The drivers only decide how a look is made (one request per job,
//! or a list page for many). What the tracker guarantees, whoever drives it:
//!
//! - **Terminal means the record is in hand and agrees.** A terminal status
//!   (or list item) only asks for the record; the job ends when a record
//!   naming this request says it is terminal. The record's own status wins
//!   over the status endpoint's: a `FAILED` status with a `COMPLETED`
//!   record and an output is a success. A `COMPLETED` record with an
//!   `error` and no `output` (fal reports some failures so) is a failure.
//! - **A server that contradicts itself is waited through, for a while.**
//!   A record that disagrees (still `IN_PROGRESS` after a `COMPLETED`
//!   status, another request's id) is reported once
//!   ([`JobEvent::Inconsistent`]) and both are asked again, at gaps from
//!   the policy's first gap doubling to [`DISAGREEMENT_MAX_GAP`]: replicas
//!   catching up agree within seconds. A disagreement that lasts
//!   [`DISAGREEMENT_LIMIT`] (scaled like the poll policy) ends the job with
//!   [`Error::Inconsistent`], naming both answers; a deadline that comes
//!   first is a timeout that names them.
//! - **Passing failures are survived.** A look that fails for a reason that
//!   may pass (transport, 5xx, a malformed body, a per-request timeout, a
//!   429) is tried again later, up to [`MAX_FAILURES`] in a row; a 429 is
//!   tried again after its `Retry-After`.
//! - **The deadline is the deadline.** A failure caused by the deadline, or
//!   a look due after it, ends the job with [`Error::Timeout`].
//! - **Learning.** A completed job teaches the endpoint's duration estimate.
//! - **Webhooks are a shortcut.** A job with a webhook is looked at when its
//!   delivery arrives and otherwise by the safety net of [`safety_net`],
//!   which tells the delivery source of each of its looks, and of each
//!   delivery it found missing.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use reka_inference_api::RequestStatus as JobStatus;
use reka_inference_api::types::{LogEntry, RequestItem, ResultResponse, StatusResponse};
use tokio::time::Instant;

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::http::Http;
use crate::poll::{Phase, Schedule};
use crate::vocab::{JobEvent, JobOutput};
use crate::webhook::Deliveries;

mod safety_net;

use safety_net::{SafetyNet, scaled};

/// How long the server may contradict itself about a job (a `COMPLETED`
/// status with a record still running, a record naming another request)
/// before a wait gives up on it with [`Error::Inconsistent`]: far longer
/// than replicas take to catch up (scaled like the poll policy, see
/// [`PollPolicy::scaled`](crate::PollPolicy::scaled)).
pub const DISAGREEMENT_LIMIT: Duration = Duration::from_secs(60);
/// The longest gap between two looks while the server contradicts itself.
pub(crate) const DISAGREEMENT_MAX_GAP: Duration = Duration::from_secs(5);

/// Looks of a job that may fail in a row before its wait gives up.
pub(crate) const MAX_FAILURES: u32 = 5;

/// Which request the next look should make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LookKind {
    /// `get_status` (with the logs when they are wanted).
    Status,
    /// `get_result`: the record, status and output together.
    Record,
}

/// Why the next look is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// The poll schedule, a retry, or the record a status asked for.
    Poll,
    /// The webhook safety net.
    SafetyNet,
    /// A webhook delivery.
    Delivery,
}

/// The server contradicting itself, since when, and how soon to look again.
struct Disagreement {
    since: Instant,
    /// The record named another request (only a record naming this one
    /// ends it); otherwise a record disagreed with a terminal status (a
    /// status no longer terminal ends it too).
    other_request: bool,
    gap: Duration,
}

/// One job being followed.
pub(crate) struct Tracker {
    http: Http,
    id: String,
    endpoint: Option<Endpoint>,
    with_logs: bool,
    /// While running and without logs, look at the record rather than the
    /// status (a lone wait); a job set leaves status looks to its sweeps.
    records_while_running: bool,
    began: Instant,
    /// When this process's submit of the job was accepted, if it made one:
    /// the job has existed at least since then.
    submitted_at: Option<Instant>,
    deadline: Option<Instant>,
    schedule: Schedule,
    next_at: Instant,
    /// A terminal status was seen: the next look fetches the record.
    want_record: bool,
    last_status: Option<JobStatus>,
    last_position: Option<u64>,
    logs_seen: usize,
    unknown_reported: HashSet<String>,
    failures: u32,
    /// The last disagreement seen, for the timeout's words.
    disagreement: Option<String>,
    /// The disagreement going on, if one is.
    disagreeing: Option<Disagreement>,
    events: VecDeque<Result<JobEvent>>,
    finished: bool,
    /// Webhook mode: deliveries wake the job; polls are only a safety net.
    safety: Option<SafetyNet>,
    next_reason: Reason,
    /// Looks made, answered or not.
    looks: u32,
}

impl Tracker {
    /// A tracker for `id`; `submitted_at` is when its submit was accepted,
    /// if this process made it (the first look then waits for the first
    /// gap, since the job surely has not finished yet).
    pub(crate) fn new(
        http: Http,
        id: String,
        endpoint: Option<Endpoint>,
        submitted_at: Option<Instant>,
        policy: crate::PollPolicy,
        deadline: Option<Instant>,
        with_logs: bool,
    ) -> Tracker {
        let estimate = match &endpoint {
            Some(e) if policy.learns() => http.waits().estimates.get(e.as_str()),
            _ => None,
        };
        let now = Instant::now();
        let schedule = Schedule::new(policy, estimate, submitted_at.unwrap_or(now));
        let next_at = match submitted_at {
            Some(at) => later(at, schedule.first_delay()),
            None => now,
        };
        Tracker {
            http,
            id,
            endpoint,
            with_logs,
            records_while_running: true,
            began: now,
            submitted_at,
            deadline,
            schedule,
            next_at,
            want_record: false,
            last_status: None,
            last_position: None,
            logs_seen: 0,
            unknown_reported: HashSet::new(),
            failures: 0,
            disagreement: None,
            disagreeing: None,
            events: VecDeque::new(),
            finished: false,
            safety: None,
            next_reason: Reason::Poll,
            looks: 0,
        }
    }

    /// Webhook mode: the job is looked at when a delivery from
    /// `deliveries` says so (and, if this process did not submit it, once
    /// at the start), and otherwise by the safety net ([`safety_net`]):
    /// around its likely finish, then at gaps capped at 30 s. A lost
    /// delivery costs seconds of lag, never a wrong end.
    pub(crate) fn with_safety_net(mut self, deliveries: Arc<dyn Deliveries>) -> Self {
        let mut net = SafetyNet::new(deliveries, self.schedule.policy().time_scale());
        // A job this process did not submit may have ended (its delivery
        // gone) before anything listened: it is looked at once now, then
        // by the safety net.
        if let Some(submitted) = self.submitted_at {
            self.next_at = net.first_look(submitted, self.schedule.estimate());
            self.next_reason = Reason::SafetyNet;
        }
        self.safety = Some(net);
        self
    }

    /// A webhook delivery for the job arrived: fetch the record now, and
    /// believe it, not the delivery.
    pub(crate) fn delivery_hint(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        if let Some(net) = &mut self.safety {
            net.delivered = true;
        }
        self.want_record = true;
        self.next_at = self.next_at.min(now);
        self.next_reason = Reason::Delivery;
    }

    /// The next look after one at `now` that saw `phase`: the poll
    /// schedule's, or the safety net's in webhook mode.
    fn plan_next(&mut self, phase: Phase, now: Instant) {
        let polled = later(now, self.schedule.observe(phase, now));
        let started = self.schedule.started().map(|(_, latest)| latest);
        let estimate = self.schedule.estimate();
        match &mut self.safety {
            Some(net) => {
                self.next_at = net.after_look(phase, now, started, estimate);
                self.next_reason = Reason::SafetyNet;
            }
            None => {
                self.next_at = polled;
                self.next_reason = Reason::Poll;
            }
        }
    }

    /// Counts a look; tells the delivery source of a safety-net look, and
    /// of a delivery it found missing (`finished`: the look saw the job
    /// over, and no delivery for it had come).
    fn looked(&mut self, reason: Reason, finished: bool) {
        self.looks = self.looks.saturating_add(1);
        let Some(net) = &self.safety else {
            return;
        };
        if reason != Reason::SafetyNet {
            return;
        }
        net.deliveries().safety_net_look(&self.id);
        if finished && !net.delivered {
            net.deliveries().delivery_missed(&self.id);
        }
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The job's schedule: a job set plans it with what it sees of the
    /// endpoint's other jobs.
    pub(crate) fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    pub(crate) fn schedule_mut(&mut self) -> &mut Schedule {
        &mut self.schedule
    }

    /// Leaves status looks of a running job as status looks (for a job set,
    /// whose sweeps answer them).
    pub(crate) fn without_record_looks_while_running(mut self) -> Self {
        self.records_while_running = false;
        self
    }

    pub(crate) fn with_logs(&self) -> bool {
        self.with_logs
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The status the job was last seen in.
    pub(crate) fn last_status(&self) -> Option<&JobStatus> {
        self.last_status.as_ref()
    }

    /// Whether the job has ended (its last event may still be unread).
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// When the next look is due and what it is; `None` once finished.
    pub(crate) fn next_look(&self) -> Option<(Instant, LookKind)> {
        if self.finished {
            return None;
        }
        // While running and without logs to show, ask for the record rather
        // than the status: the look that sees completion brings the output.
        let running = self.last_status == Some(JobStatus::InProgress);
        let kind = if self.want_record || (running && !self.with_logs && self.records_while_running)
        {
            LookKind::Record
        } else {
            LookKind::Status
        };
        Some((self.next_at, kind))
    }

    /// Makes the next look no earlier than `at`.
    pub(crate) fn postpone(&mut self, at: Instant) {
        self.next_at = self.next_at.max(at);
    }

    /// The next event, if one is ready.
    pub(crate) fn take_event(&mut self) -> Option<Result<JobEvent>> {
        self.events.pop_front()
    }

    /// Whether the deadline has come.
    pub(crate) fn is_due_to_expire(&self, now: Instant) -> bool {
        !self.finished && self.deadline.is_some_and(|d| now >= d)
    }

    /// Ends the job at its deadline.
    pub(crate) fn expire(&mut self, cancel_sent: bool) {
        if self.finished {
            return;
        }
        let error = self.timeout_error(cancel_sent);
        self.end(Err(error));
    }

    pub(crate) fn timeout_error(&self, cancel_sent: bool) -> Error {
        if let Some(seen) = &self.disagreement {
            tracing::warn!(request_id = %self.id, seen = %seen, "deadline reached while the server disagreed with itself");
        }
        Error::Timeout {
            request_id: self.id.clone(),
            last_status: self.last_status.clone(),
            elapsed: self.began.elapsed(),
            cancel_sent,
            disagreement: self.disagreement.clone(),
            looks: self.looks,
        }
    }

    /// A status answer.
    pub(crate) fn observe_status(&mut self, status: StatusResponse, now: Instant) {
        if self.finished {
            return;
        }
        self.failures = 0;
        if let Some(logs) = status.logs {
            self.observe_logs(logs);
        }
        self.observe_phase(status.status, status.queue_position, now);
    }

    /// A list item (without payloads): as good as a status.
    pub(crate) fn observe_item(&mut self, item: RequestItem, now: Instant) {
        if self.finished {
            return;
        }
        self.failures = 0;
        self.observe_phase(item.status, None, now);
    }

    fn observe_phase(&mut self, status: JobStatus, position: Option<u64>, now: Instant) {
        let reason = self.next_reason;
        let terminal = status.is_terminal() == Some(true);
        self.looked(reason, terminal);
        if terminal {
            // Terminal is the record's word, not the status's.
            self.last_status = Some(status);
            self.want_record = true;
            self.next_at = now;
            self.next_reason = Reason::Poll;
            return;
        }
        // A status that went back from terminal (a lagging replica, which
        // ends a disagreement of status and record): follow it.
        if self.disagreeing.as_ref().is_some_and(|d| !d.other_request) {
            self.agree();
        }
        self.want_record = false;
        let phase = self.note_status(status, position);
        self.plan_next(phase, now);
    }

    /// Records a non-terminal status and the events it implies.
    fn note_status(&mut self, status: JobStatus, position: Option<u64>) -> Phase {
        let previous = self.last_status.replace(status.clone());
        let entered = previous.as_ref() != Some(&status);
        match &status {
            JobStatus::InQueue => {
                if entered || position != self.last_position {
                    self.events.push_back(Ok(JobEvent::Queued { position }));
                }
                self.last_position = position;
                Phase::Queued { position }
            }
            JobStatus::Unknown(value) => {
                if self.unknown_reported.insert(value.clone()) {
                    tracing::warn!(request_id = %self.id, status = %value,
                        "unknown request status; polling on until the deadline");
                    self.events
                        .push_back(Ok(JobEvent::UnknownStatus(value.clone())));
                }
                Phase::Unknown
            }
            _ => {
                if entered {
                    self.events.push_back(Ok(JobEvent::Started));
                }
                Phase::Running
            }
        }
    }

    fn observe_logs(&mut self, logs: Vec<LogEntry>) {
        if logs.len() >= self.logs_seen {
            let fresh = logs.into_iter().skip(self.logs_seen);
            let before = self.events.len();
            self.events.extend(fresh.map(|l| Ok(JobEvent::Log(l))));
            self.logs_seen += self.events.len() - before;
        } else {
            // The server shortened the log (rotation): nothing in it can be
            // told new, so only later lines are reported.
            self.logs_seen = logs.len();
        }
    }

    /// A record answer.
    pub(crate) fn observe_record(&mut self, record: ResultResponse, now: Instant) {
        if self.finished {
            return;
        }
        self.failures = 0;
        let reason = self.next_reason;
        let terminal = record.status.is_terminal() == Some(true);
        if record.request_id != self.id {
            self.looked(reason, false);
            let other = crate::error::truncate(&record.request_id, 80);
            let what = match &self.last_status {
                Some(said) => format!(
                    "the status says {said} but the record is another request's ({other:?})"
                ),
                None => format!("the record is another request's ({other:?})"),
            };
            self.disagree(what, true, now);
            return;
        }
        self.looked(reason, terminal);
        // A record still running after a terminal status. (After a
        // delivery it is an early delivery or a spoof: followed below.)
        let status_was_terminal = self
            .last_status
            .as_ref()
            .is_some_and(|s| s.is_terminal() == Some(true));
        if !terminal && self.want_record && status_was_terminal {
            let said = self.last_status.as_ref().map_or("", |s| s.as_str());
            self.disagree(
                format!(
                    "the status says {said} but the record says {}",
                    record.status.as_str()
                ),
                false,
                now,
            );
            return;
        }
        self.agree();
        let failed_as_completed = record.status == JobStatus::Completed
            && record.output.is_none()
            && record.error.is_some();
        match record.status {
            JobStatus::Completed if failed_as_completed => self.resolve_failed(record),
            JobStatus::Completed => {
                self.learn(&record);
                self.last_status = Some(JobStatus::Completed);
                self.end(Ok(JobEvent::Completed(JobOutput::from_record(record))));
            }
            JobStatus::Failed => self.resolve_failed(record),
            JobStatus::Cancelled => {
                self.last_status = Some(JobStatus::Cancelled);
                self.end(Ok(JobEvent::Cancelled));
            }
            status => {
                // A delivery that came early, or a spoof: the record is
                // the truth, and the job goes on being followed.
                self.want_record = false;
                let phase = self.note_status(status, None);
                self.plan_next(phase, now);
            }
        }
    }

    fn resolve_failed(&mut self, record: ResultResponse) {
        self.last_status = Some(JobStatus::Failed);
        let error = record.error.clone();
        self.end(Ok(JobEvent::Failed {
            error,
            record: Box::new(record),
        }));
    }

    /// The server contradicted itself: report it once, ask again (the
    /// status too: it may be the one lagging) a little later, and end the
    /// job with [`Error::Inconsistent`] once it has lasted
    /// [`DISAGREEMENT_LIMIT`].
    fn disagree(&mut self, what: String, other_request: bool, now: Instant) {
        let policy = self.schedule.policy();
        let limit = scaled(DISAGREEMENT_LIMIT, policy.time_scale());
        let max_gap = scaled(DISAGREEMENT_MAX_GAP, policy.time_scale());
        let first_gap = policy.first_interval().min(max_gap);
        let began = self.disagreeing.is_none();
        let episode = self.disagreeing.get_or_insert(Disagreement {
            since: now,
            other_request,
            gap: first_gap,
        });
        episode.other_request |= other_request;
        let lasted = now.saturating_duration_since(episode.since);
        let gap = episode.gap;
        episode.gap = gap.saturating_mul(2).min(max_gap);
        if began {
            tracing::warn!(request_id = %self.id, what = %what,
                "the server contradicts itself about the job; asking again");
            self.events
                .push_back(Ok(JobEvent::Inconsistent(what.clone())));
        } else {
            tracing::debug!(request_id = %self.id, what = %what, "still inconsistent; asking again");
        }
        self.disagreement = Some(what.clone());
        if lasted >= limit {
            self.end(Err(Error::Inconsistent {
                request_id: self.id.clone(),
                detail: what,
                lasted,
            }));
            return;
        }
        // Ask the status again: a lagging status endpoint is as likely as a
        // lagging record.
        self.want_record = false;
        self.next_at = later(now, gap);
        self.next_reason = Reason::Poll;
    }

    /// An answer that does not contradict the others: any disagreement is over.
    fn agree(&mut self) {
        if self.disagreeing.take().is_some() {
            tracing::debug!(request_id = %self.id, "the server agrees with itself again");
        }
    }

    /// A look that failed.
    pub(crate) fn observe_failure(&mut self, error: Error, now: Instant) {
        if self.finished {
            return;
        }
        self.looked(self.next_reason, false);
        if matches!(
            error,
            Error::RequestTimeout {
                by_deadline: true,
                ..
            }
        ) || self.deadline.is_some_and(|d| now >= d)
        {
            let timeout = self.timeout_error(false);
            self.end(Err(timeout));
            return;
        }
        let retry_after = match &error {
            Error::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        };
        if self.failures < MAX_FAILURES && is_passing(&error) {
            self.failures += 1;
            tracing::warn!(request_id = %self.id, error = %error, failures = self.failures,
                "looking at the job failed; trying again");
            self.next_at = later(now, self.failure_gap(retry_after));
            self.next_reason = Reason::Poll;
            return;
        }
        self.end(Err(error));
    }

    /// The gap after a failure: the policy's first gap, doubling per
    /// failure, or the server's `Retry-After` when longer.
    fn failure_gap(&self, retry_after: Option<Duration>) -> Duration {
        let base = self.schedule.policy().first_interval();
        let doubled = base
            .checked_mul(1u32 << self.failures.min(16))
            .unwrap_or(base);
        retry_after.map_or(doubled, |r| r.max(doubled))
    }

    fn end(&mut self, last: Result<JobEvent>) {
        self.finished = true;
        self.events.push_back(last);
    }

    /// Feeds the endpoint's duration estimate: the server's own
    /// `inference_time` where it sends one (no longer than the job has
    /// existed, when this process submitted it: a server's clock or units
    /// may be off), else what the looks saw.
    fn learn(&self, record: &ResultResponse) {
        let Some(endpoint) = &self.endpoint else {
            return;
        };
        if !self.schedule.policy().learns() {
            return;
        }
        let scale = self.schedule.policy().time_scale();
        let lifetime = self.submitted_at.map(|at| at.elapsed().as_secs_f64());
        let reported = record
            .metrics
            .as_ref()
            .and_then(|m| m.inference_time)
            .map(|s| s * scale)
            .map(|s| lifetime.map_or(s, |l| s.min(l)));
        let observed = self.schedule.started().map(|(earliest, latest)| {
            let start = earliest + latest.saturating_duration_since(earliest) / 2;
            Instant::now()
                .saturating_duration_since(start)
                .as_secs_f64()
        });
        if let Some(seconds) = reported.or(observed) {
            self.http
                .waits()
                .estimates
                .record(endpoint.as_str(), seconds);
        }
    }
}

/// Errors worth another look: the server or the network, not the request.
fn is_passing(e: &Error) -> bool {
    match e {
        Error::Transport(_)
        | Error::Decode { .. }
        | Error::RequestTimeout { .. }
        | Error::RateLimited { .. } => true,
        other => other
            .status()
            .is_some_and(|s| s.is_server_error() || s.as_u16() == 408),
    }
}

/// `at + d`, saturating far in the future rather than overflowing.
pub(crate) fn later(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .or_else(|| at.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(at)
}

#[cfg(test)]
mod tests;
