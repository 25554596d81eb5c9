//! Waiting for a job within a tool call: at most the call's time, telling
//! the host where the job is as it goes (a progress notification on every
//! change of status or place in the queue, on every new log line, and at
//! least every few seconds), and stopping at once when the host cancels.
//!
//! A wait that ends for any reason other than the job's end leaves the job
//! running: the answer then names it, so that `wait_for_job` picks it up.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use reka_inference::types::{JobError, ResultResponse};
use reka_inference::{Error, Job, JobEvent, JobOutput, WaitOptions};
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::task_manager::TaskContext;
use rmcp::{Peer, RoleServer};
use tokio::time::Instant;

/// Log lines kept for a report.
const KEPT_LOG_LINES: usize = 20;

/// How long one progress notification may take to send before it is given
/// up (a stuck transport must not stall the wait).
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(2);

/// What was seen of a job that has not finished.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Observed {
    /// The last status seen.
    pub status: Option<String>,
    /// The last place in the queue seen.
    pub queue_position: Option<u64>,
    /// The last log lines seen.
    pub logs: Vec<String>,
}

impl Observed {
    fn log(&mut self, line: String) {
        if self.logs.len() == KEPT_LOG_LINES {
            self.logs.remove(0);
        }
        self.logs.push(line);
    }

    /// `IN_QUEUE (place 2)`, `IN_PROGRESS`, or `submitted`.
    pub(crate) fn words(&self) -> String {
        match (&self.status, self.queue_position) {
            (Some(s), Some(p)) => format!("{s} (place {p} in the queue)"),
            (Some(s), None) => s.clone(),
            (None, _) => "not seen yet".into(),
        }
    }
}

/// How a wait ended.
#[derive(Debug)]
pub(crate) enum Waited {
    /// The job completed.
    Done(JobOutput),
    /// The job failed.
    Failed {
        error: Option<JobError>,
        record: Box<ResultResponse>,
    },
    /// The job was cancelled.
    Cancelled,
    /// The time ran out; the job goes on.
    Pending(Observed),
    /// The caller gave up (cancellation); the job goes on unless cancelled.
    Aborted(Observed),
    /// Following the job failed (the service did not answer, an unknown
    /// id); the job, if it exists, goes on.
    Broken(Error, Observed),
}

/// Where progress goes: MCP progress notifications (when the call carries
/// a token) and the status message of an MCP task (when it runs as one).
pub(crate) struct Progress {
    peer: Option<Peer<RoleServer>>,
    token: Option<ProgressToken>,
    task: Option<TaskContext>,
    sent: u64,
}

impl Progress {
    /// Notifications to `peer` for `token`, if the call carries one.
    pub(crate) fn notifications(peer: Peer<RoleServer>, token: Option<ProgressToken>) -> Progress {
        Progress {
            peer: Some(peer),
            token,
            task: None,
            sent: 0,
        }
    }

    /// Status messages of an MCP task.
    pub(crate) fn task(task: TaskContext) -> Progress {
        Progress {
            peer: None,
            token: None,
            task: Some(task),
            sent: 0,
        }
    }

    async fn report(&mut self, message: String) {
        if let Some(task) = &self.task {
            task.set_status_message(message.clone());
        }
        if let (Some(peer), Some(token)) = (&self.peer, &self.token) {
            self.sent += 1;
            let note = ProgressNotificationParam::new(token.clone(), self.sent as f64)
                .with_message(message);
            match tokio::time::timeout(NOTIFY_TIMEOUT, peer.notify_progress(note)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "a progress notification was not sent"),
                Err(_) => tracing::debug!("a progress notification timed out"),
            }
        }
    }
}

/// Waits for `job` for at most `wait`, reporting to `progress` at least
/// every `heartbeat`, until `abort` resolves.
pub(crate) async fn wait_for(
    job: &Job,
    wait: Duration,
    heartbeat: Duration,
    progress: &mut Progress,
    abort: impl Future<Output = ()>,
) -> Waited {
    let start = Instant::now();
    let mut observed = Observed::default();
    if wait.is_zero() {
        return look_once(job, observed).await;
    }
    // The client's own deadline ends the event stream; this one is a
    // backstop, a little later, should a request overrun it.
    let backstop = start
        .checked_add(wait.saturating_add(Duration::from_secs(5)))
        .unwrap_or(start);
    let mut events = job.events_with(WaitOptions::default().timeout(wait));
    let first_tick = start.checked_add(heartbeat).unwrap_or(backstop);
    let mut ticks = tokio::time::interval_at(first_tick, heartbeat);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let abort = std::pin::pin!(abort);
    let mut abort = abort;
    progress
        .report(format!(
            "waiting for job {} (at most {}s)",
            job.id(),
            wait.as_secs()
        ))
        .await;
    loop {
        tokio::select! {
            biased;
            () = &mut abort => return Waited::Aborted(observed),
            event = events.next() => {
                let message = match event {
                    None => return Waited::Pending(observed),
                    Some(Ok(JobEvent::Completed(done))) => return Waited::Done(done),
                    Some(Ok(JobEvent::Failed { error, record })) => {
                        return Waited::Failed { error, record };
                    }
                    Some(Ok(JobEvent::Cancelled)) => return Waited::Cancelled,
                    Some(Ok(JobEvent::Queued { position })) => {
                        observed.status = Some("IN_QUEUE".into());
                        observed.queue_position = position;
                        observed.words()
                    }
                    Some(Ok(JobEvent::Started)) => {
                        observed.status = Some("IN_PROGRESS".into());
                        observed.queue_position = None;
                        observed.words()
                    }
                    Some(Ok(JobEvent::Log(line))) => {
                        observed.log(line.message.clone());
                        format!("{}: {}", observed.words(), line.message)
                    }
                    Some(Ok(JobEvent::UnknownStatus(status))) => {
                        observed.status = Some(status);
                        observed.words()
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(Error::Timeout { last_status, .. })) => {
                        if let Some(s) = last_status {
                            observed.status = Some(s.as_str().to_owned());
                        }
                        return Waited::Pending(observed);
                    }
                    Some(Err(e)) => return Waited::Broken(e, observed),
                };
                progress.report(message).await;
            }
            _ = ticks.tick() => {
                let waited = start.elapsed().as_secs();
                progress
                    .report(format!("{} after {waited}s; still waiting", observed.words()))
                    .await;
            }
            () = tokio::time::sleep_until(backstop) => return Waited::Pending(observed),
        }
    }
}

/// One look at the job, for a wait of no time at all.
async fn look_once(job: &Job, mut observed: Observed) -> Waited {
    match tokio::time::timeout(Duration::from_secs(30), job.status()).await {
        Ok(Ok(status)) => {
            let terminal = status.status.is_terminal() == Some(true);
            observed.status = Some(status.status.as_str().to_owned());
            observed.queue_position = status.queue_position;
            if terminal {
                // The record says how it ended.
                return match job.result().await {
                    Ok(record) => ended(record, observed),
                    Err(e) => Waited::Broken(e, observed),
                };
            }
            Waited::Pending(observed)
        }
        Ok(Err(e)) => Waited::Broken(e, observed),
        Err(_) => Waited::Pending(observed),
    }
}

/// How a job whose record is `record` stands.
pub(crate) fn ended(record: ResultResponse, mut observed: Observed) -> Waited {
    use reka_inference::JobStatus;
    let failed_as_completed = record.output.is_none() && record.error.is_some();
    match record.status {
        JobStatus::Completed if !failed_as_completed => {
            Waited::Done(JobOutput::from_record(record))
        }
        JobStatus::Completed | JobStatus::Failed => Waited::Failed {
            error: record.error.clone(),
            record: Box::new(record),
        },
        JobStatus::Cancelled => Waited::Cancelled,
        other => {
            observed.status = Some(other.as_str().to_owned());
            Waited::Pending(observed)
        }
    }
}
