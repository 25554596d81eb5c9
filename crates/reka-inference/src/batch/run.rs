//! The engine of a [`Batch`](super::Batch): one loop that resumes what the
//! journal holds, pulls items while the submitter has room and the budget
//! allows, submits them, follows every job in one growing job set, saves
//! files as jobs finish and reports each item once, journalling every step
//! before the next.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::stream::FuturesUnordered;
use futures::{Future, Stream, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::download::download_outputs;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::http::Http;
use crate::job::Job;
use crate::job_set::JobSet;
use crate::job_set::{JobOutcome, JobOutcomes, JobSetOptions};
use crate::submit::SubmitOptions;
use crate::submitter::{PauseReason, SubmitItem, SubmitOutcome, Submitter};
use crate::vocab::JobOutput;

use super::files::{self, FILE_PROBLEM, FilesIntoInput};
use super::ledger::{Fits, Ledger};
use super::{
    BatchEvent, BatchItem, BatchOptions, BatchProgress, BatchSummary, Claim, ClaimedLine,
    EntryState, Journal, JournalEntry, StopReason,
};

mod items;
mod outputs;

/// How long a stopping run waits for submits in flight.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Items put into a shared journal per write.
const ADD_CHUNK: usize = 500;

/// How long to wait before claiming again when a claim found nothing and
/// said not how long.
const CLAIM_AGAIN: Duration = Duration::from_millis(500);

/// A download: the item's key, the request id it is for, what was saved.
type Download =
    Pin<Box<dyn Future<Output = (String, Option<String>, Result<Vec<PathBuf>>)> + Send>>;

/// One run's state.
pub(super) struct Run<J, F> {
    http: Http,
    journal: J,
    options: BatchOptions,
    on_event: F,
    entries: HashMap<String, JournalEntry>,
    /// Keys whose submit must be made or replayed, waiting for their item.
    awaiting_items: HashSet<String>,
    submitter: Submitter<String>,
    outcomes: JobOutcomes,
    /// The key of each job of the set, by its index there.
    set_keys: HashMap<usize, String>,
    set_pushed: usize,
    set_pending: usize,
    downloads: FuturesUnordered<Download>,
    /// An item pulled but not submitted yet: it waits for a price probe
    /// in flight to end.
    held: Option<BatchItem>,
    ledger: Ledger,
    /// Why the model list's prices could not be read, if they could not.
    list_error: Option<String>,
    items_exhausted: bool,
    budget_reached: bool,
    /// Stopped or past the deadline: jobs and downloads are left as they
    /// are, submits in flight get until `stop_by`.
    stopped: Option<StopReason>,
    stop_by: Option<Instant>,
    reported: usize,
    /// Keys of the items found changed and not run again.
    changed: HashSet<String>,
    /// Items of the stream not journalled: never pulled, or pulled and not
    /// sent (the budget, a stop, a file that could not be read).
    unpulled: usize,
    last_pause: Option<Instant>,
    /// The journal is shared: lines come from its claims, not the stream.
    shared: bool,
    /// Lines claimed and not taken up yet.
    claimed: VecDeque<ClaimedLine>,
    /// When to claim again after a claim that found nothing to take.
    next_claim: Option<Instant>,
}

impl<J: Journal, F: FnMut(BatchEvent<'_>) -> Result<()> + Send> Run<J, F> {
    pub(super) fn new(http: Http, journal: J, options: BatchOptions, on_event: F) -> Self {
        let submitter = Submitter::new(http.clone(), options.submitter.clone());
        let mut set_options = JobSetOptions::default();
        if let Some(t) = options.job_timeout {
            set_options = set_options.job_timeout(t);
        }
        let outcomes = JobSet::new(http.clone())
            .with_options(set_options)
            .into_stream();
        let shared = journal.is_shared();
        Run {
            http,
            journal,
            on_event,
            entries: HashMap::new(),
            awaiting_items: HashSet::new(),
            submitter,
            outcomes,
            set_keys: HashMap::new(),
            set_pushed: 0,
            set_pending: 0,
            downloads: FuturesUnordered::new(),
            held: None,
            ledger: Ledger::new(options.estimated_price_usd),
            list_error: None,
            items_exhausted: false,
            budget_reached: false,
            stopped: None,
            stop_by: None,
            reported: 0,
            changed: HashSet::new(),
            unpulled: 0,
            last_pause: None,
            shared,
            claimed: VecDeque::new(),
            next_claim: None,
            options,
        }
    }

    /// Reads the journal and takes up every entry where it was left.
    pub(super) async fn resume(&mut self) -> Result<()> {
        if self.options.budget_usd.is_some() {
            self.load_listed_prices().await;
        }
        if self.shared {
            // Entries come with the lines this run claims.
            return (self.on_event)(BatchEvent::Resumed {
                entries: 0,
                in_flight: 0,
                reported: 0,
                reported_failed: 0,
            });
        }
        let entries = self.journal.load().await?;
        let count = entries.len();
        let (mut in_flight, mut reported, mut reported_failed) = (0, 0, 0);
        let mut done = Vec::new();
        let mut missing_files = Vec::new();
        for mut entry in entries {
            match entry.state {
                EntryState::Submitting => {
                    self.ledger.started(&entry.key, &entry.endpoint);
                    // Only in flight once its item comes and it is sent.
                    self.ledger.lost_track(&entry.key);
                }
                EntryState::Submitted => self.ledger.started(&entry.key, &entry.endpoint),
                _ => self.ledger.priced(&entry),
            }
            match entry.state {
                EntryState::Submitting => {
                    self.awaiting_items.insert(entry.key.clone());
                }
                EntryState::Submitted => {
                    in_flight += 1;
                    self.follow(&entry)?;
                }
                EntryState::Finished => self.start_download(&entry),
                EntryState::Done | EntryState::Reported => {
                    let gone = self.missing_files(&entry);
                    if !gone.is_empty() {
                        missing_files.push((entry.key.clone(), gone));
                    } else if entry.state == EntryState::Done {
                        done.push(entry.key.clone());
                    } else {
                        reported += 1;
                        reported_failed += usize::from(!entry.succeeded());
                        // Only what the counts need stays in memory.
                        entry.output = None;
                    }
                }
            }
            self.entries.insert(entry.key.clone(), entry);
        }
        (self.on_event)(BatchEvent::Resumed {
            entries: count,
            in_flight,
            reported,
            reported_failed,
        })?;
        for (key, missing) in missing_files {
            (self.on_event)(BatchEvent::FilesMissing { key: &key, missing })?;
            let Some(entry) = self.entries.get_mut(&key) else {
                continue;
            };
            // Saved again, then reported again (the files are what the
            // report is about).
            entry.state = EntryState::Finished;
            entry.files.clear();
            let entry = entry.clone();
            self.start_download(&entry);
        }
        for key in done {
            self.report(&key).await?;
        }
        Ok(())
    }

    /// Whether the journal is shared by runs on other machines.
    pub(super) fn is_shared(&self) -> bool {
        self.shared
    }

    /// Shared journals: puts every item of the stream into the batch (an
    /// item the batch already holds is kept; one that differs is reported
    /// changed, and the batch's runs).
    pub(super) async fn add_items(
        &mut self,
        mut items: Pin<&mut (impl Stream<Item = BatchItem> + Send)>,
    ) -> Result<()> {
        let mut chunk = Vec::with_capacity(ADD_CHUNK);
        let mut first_seq = 0u64;
        loop {
            let next = items.next().await;
            let end = next.is_none();
            chunk.extend(next);
            if chunk.len() >= ADD_CHUNK || (end && !chunk.is_empty()) {
                let changed = self.journal.add_items(&chunk, first_seq).await?;
                first_seq = first_seq.saturating_add(chunk.len() as u64);
                chunk.clear();
                for key in changed {
                    (self.on_event)(BatchEvent::Changed {
                        key: &key,
                        reason: "the shared batch holds another input for it, which is the one \
                                 run"
                        .to_owned(),
                        rerun: false,
                    })?;
                }
            }
            if end {
                return Ok(());
            }
        }
    }

    /// Shared journals: gives back the lines this run still holds, so
    /// that other runs take them at once.
    pub(super) async fn release(&mut self) -> Result<()> {
        self.unpulled += self.claimed.len();
        self.claimed.clear();
        self.journal.release().await
    }

    /// Saves an entry: `false` when its line passed to another run (a
    /// shared journal's lease lapsed), which drops it here.
    async fn save(&mut self, entry: &JournalEntry) -> Result<bool> {
        match self.journal.save(entry).await {
            Ok(()) => Ok(true),
            Err(Error::LeaseLost { key }) => {
                self.lose_line(&key)?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Drops a line another run took over: its job, download and report
    /// are the new holder's.
    fn lose_line(&mut self, key: &str) -> Result<()> {
        if let Some(entry) = self.entries.remove(key)
            && matches!(entry.state, EntryState::Submitting | EntryState::Submitted)
        {
            self.ledger.stopped(key, &entry.endpoint);
        }
        (self.on_event)(BatchEvent::LeaseLost { key })
    }

    /// The model list's prices, the first estimate of each endpoint's. A
    /// list that cannot be read leaves endpoints to the caller's estimate
    /// (and says so, should one have none).
    async fn load_listed_prices(&mut self) {
        match crate::models::list(&self.http).await {
            Ok(models) => self.ledger.listed(models.into_iter().filter_map(|m| {
                let endpoint = m
                    .endpoint_id
                    .unwrap_or_else(|| format!("{}/{}", m.model_id, m.capability));
                Some((endpoint, m.price_usd?))
            })),
            Err(e) => self.list_error = Some(e.to_string()),
        }
    }

    /// The saved files of a completed entry that are no longer on disk.
    fn missing_files(&self, entry: &JournalEntry) -> Vec<String> {
        if self.options.download_dir.is_none() || !entry.succeeded() {
            return Vec::new();
        }
        entry
            .files
            .iter()
            .filter(|f| !std::path::Path::new(f).is_file())
            .cloned()
            .collect()
    }

    /// Follows a job the journal says is running.
    fn follow(&mut self, entry: &JournalEntry) -> Result<()> {
        let Some(id) = &entry.request_id else {
            return Ok(());
        };
        let endpoint = Endpoint::new(entry.endpoint.clone())?;
        let mut job = Job::new(self.http.clone(), id.clone(), Some(endpoint), None);
        if let Some(at) = entry.submitted_at {
            job = job.with_submit_time(at);
        }
        self.push_job(entry.key.clone(), job);
        Ok(())
    }

    fn push_job(&mut self, key: String, job: crate::Job) {
        self.set_keys.insert(self.set_pushed, key);
        self.set_pushed += 1;
        self.set_pending += 1;
        self.outcomes.push(job);
    }

    fn finished_everything(&self) -> bool {
        let nothing_to_submit =
            self.items_exhausted || self.budget_reached || self.stopped.is_some();
        nothing_to_submit
            && self.held.is_none()
            && self.submitter.is_idle()
            && self.set_pending == 0
            && self.downloads.is_empty()
    }

    fn wants_items(&self) -> bool {
        !self.items_exhausted
            && !self.budget_reached
            && self.stopped.is_none()
            && self.held.is_none()
            && self.submitter.has_room()
    }

    pub(super) async fn main_loop(
        &mut self,
        mut items: Pin<&mut (impl Stream<Item = BatchItem> + Send)>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<()> {
        let mut tick = tokio::time::interval(self.options.progress_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let deadline = self.options.deadline;
        let mut stop_open = true;
        loop {
            if self.finished_everything() {
                return Ok(());
            }
            if self.stopped.is_some() && self.submitter.in_flight() == 0 {
                return Ok(());
            }
            if self.stopped.is_some() && self.stop_by.is_some_and(|t| Instant::now() >= t) {
                // Submits still in flight are left for the next run to replay.
                return Ok(());
            }
            if self.shared && self.wants_items() && self.claim_lines().await? {
                continue;
            }
            let pause = self.submitter.paused_until();
            self.note_pause(pause);
            let wants = self.wants_items();
            tokio::select! {
                changed = stop.changed(), if stop_open && self.stopped.is_none() => {
                    match changed {
                        Ok(()) if *stop.borrow() => self.begin_stop(StopReason::Stopped),
                        Ok(()) => {}
                        Err(_) => stop_open = false,
                    }
                }
                () = sleep_until_or_never(deadline), if self.stopped.is_none() => {
                    self.begin_stop(StopReason::Deadline);
                }
                () = sleep_until_or_never(self.stop_by), if self.stop_by.is_some() => {}
                // A shared journal's next claim.
                () = sleep_until_or_never(self.next_claim), if wants && self.shared && self.next_claim.is_some() => {}
                item = items.next(), if wants && !self.shared => match item {
                    Some(item) => self.take_item(item).await?,
                    None => self.items_ended(),
                },
                Some(outcome) = self.submitter.next(), if !self.submitter.is_idle() => {
                    self.submitted(outcome).await?;
                }
                outcome = self.outcomes.next(), if self.set_pending > 0 && self.stopped.is_none() => {
                    match outcome {
                        Some(outcome) => self.job_ended(outcome).await?,
                        // Cannot be while jobs are pending; never spin on it.
                        None => self.set_pending = 0,
                    }
                }
                Some((key, request_id, saved)) = self.downloads.next(), if !self.downloads.is_empty() && self.stopped.is_none() => {
                    self.downloaded(&key, request_id, saved).await?;
                }
                // Paused with nothing queued: wake at the end to pull items.
                () = sleep_until_or_never(pause.map(|(until, _)| until)), if pause.is_some() && self.submitter.queued() == 0 => {}
                _ = tick.tick() => {
                    let progress = self.progress();
                    (self.on_event)(BatchEvent::Progress(&progress))?;
                }
            }
        }
    }

    /// The stream has no more items: entries still waiting for theirs
    /// will not be sent by this run, so their price is no longer committed.
    fn items_ended(&mut self) {
        self.items_exhausted = true;
        for key in self.awaiting_items.drain() {
            if let Some(entry) = self.entries.get(&key) {
                self.ledger.stopped(&key, &entry.endpoint);
            }
        }
    }

    /// Counts the items the run never pulled (see [`BatchSummary`]): read
    /// to the end after the budget stopped the run, taken from the
    /// stream's size hint after a stop or the deadline.
    pub(super) async fn count_unpulled(
        &mut self,
        mut items: Pin<&mut (impl Stream<Item = BatchItem> + Send)>,
    ) {
        if self.items_exhausted || self.shared {
            return;
        }
        if self.stopped.is_none() && self.budget_reached {
            while let Some(item) = items.next().await {
                if !self.entries.contains_key(item.key()) {
                    self.unpulled += 1;
                }
            }
        } else {
            self.unpulled += items.size_hint().0;
        }
    }

    fn begin_stop(&mut self, reason: StopReason) {
        self.stopped = Some(reason);
        self.stop_by = Instant::now().checked_add(STOP_GRACE);
        // Never sent: their entries (with their keys) are there for the
        // next run, which submits them again with the same keys.
        for item in self.submitter.take_queued() {
            self.ledger.lost_track(item.tag());
        }
        if self.held.take().is_some() {
            self.unpulled += 1;
        }
    }

    fn note_pause(&mut self, pause: Option<(Instant, PauseReason)>) {
        let Some((until, reason)) = pause else {
            self.last_pause = None;
            return;
        };
        if self.last_pause != Some(until) {
            self.last_pause = Some(until);
            // Best effort: a progress display shows it; nothing depends on it.
            let _ = (self.on_event)(BatchEvent::Paused { until, reason });
        }
    }

    /// A job of the set ended, one way or another.
    async fn job_ended(&mut self, outcome: JobOutcome) -> Result<()> {
        self.set_pending = self.set_pending.saturating_sub(1);
        let Some(key) = self.set_keys.remove(&outcome.index) else {
            return Ok(());
        };
        let Some(entry) = self.entries.get_mut(&key) else {
            return self.release_held().await;
        };
        if entry.request_id.as_deref() != Some(outcome.job.id()) {
            // A job of an earlier input, replaced by a rerun.
            return self.release_held().await;
        }
        match outcome.result {
            Ok(output) => {
                entry.status = Some("COMPLETED".into());
                entry.price_usd = output.price_usd();
                entry.output = Some(output.output);
            }
            Err(Error::JobFailed { error, record, .. }) => {
                entry.status = Some("FAILED".into());
                entry.error = Some(
                    error
                        .and_then(|e| e.message.clone())
                        .unwrap_or_else(|| "the job failed without saying why".into()),
                );
                entry.price_usd = JobOutput::from_record(*record).price_usd();
            }
            Err(Error::JobCancelled { .. }) => {
                entry.status = Some("CANCELLED".into());
                entry.error = Some("the job was cancelled".into());
            }
            Err(e) if matches!(e.status().map(|s| s.as_u16()), Some(404 | 410)) => {
                entry.status = Some("LOST".into());
                entry.error = Some(format!("the service no longer knows the job: {e}"));
            }
            Err(e) => {
                // Followed again by the next run; its price stays committed,
                // but it tells nothing more in this one.
                self.ledger.lost_track(&key);
                let reason = e.to_string();
                (self.on_event)(BatchEvent::Unfinished { key: &key, reason })?;
                return self.release_held().await;
            }
        }
        entry.state = EntryState::Finished;
        entry.finished_at = Some(Utc::now());
        self.ledger.ended(entry);
        self.finish(&key).await?;
        self.release_held().await
    }

    /// Submits a held item once its price can be judged.
    async fn release_held(&mut self) -> Result<()> {
        if self.stopped.is_some() || self.budget_reached {
            return Ok(());
        }
        let Some(item) = self.held.take() else {
            return Ok(());
        };
        self.take_new(item).await
    }

    fn reach_budget(&mut self) -> Result<()> {
        if self.budget_reached {
            return Ok(());
        }
        self.budget_reached = true;
        if self.held.take().is_some() {
            self.unpulled += 1;
        }
        // Submits and jobs in flight go on; nothing more is pulled.
        let (spent_usd, assumed_usd) = (self.ledger.spent, self.ledger.assumed);
        let committed_usd = self.ledger.committed();
        (self.on_event)(BatchEvent::BudgetReached {
            spent_usd,
            assumed_usd,
            committed_usd,
        })
    }

    fn progress(&self) -> BatchProgress {
        let counts = self.outcomes.counts();
        let mut p = BatchProgress {
            submitting: self.submitter.queued() + self.submitter.in_flight(),
            queued: counts.queued,
            running: counts.running,
            in_flight: self.set_pending,
            spent_usd: self.ledger.spent,
            paused_for_secs: self.submitter.paused_until().map(|(until, _)| {
                until
                    .saturating_duration_since(Instant::now())
                    .as_secs_f64()
            }),
            ..BatchProgress::default()
        };
        for e in self.entries.values() {
            if e.request_id.is_some() {
                p.submitted += 1;
            }
            if matches!(e.state, EntryState::Done | EntryState::Reported) {
                if e.succeeded() {
                    p.succeeded += 1;
                } else {
                    p.failed += 1;
                }
            }
        }
        p
    }

    pub(super) fn summary(&self) -> BatchSummary {
        let mut s = BatchSummary {
            spent_usd: self.ledger.spent,
            assumed_usd: self.ledger.assumed,
            priced: self.ledger.priced_any,
            reported: self.reported,
            unsubmitted: self.unpulled,
            stopped: self
                .stopped
                .or(self.budget_reached.then_some(StopReason::Budget)),
            ..BatchSummary::default()
        };
        for e in self.entries.values() {
            if self.changed.contains(&e.key) {
                s.changed += 1;
                continue;
            }
            match e.state {
                EntryState::Done | EntryState::Reported if e.succeeded() => s.succeeded += 1,
                EntryState::Done | EntryState::Reported => s.failed += 1,
                EntryState::Submitting => s.unsubmitted += 1,
                EntryState::Submitted => s.unfinished += 1,
                EntryState::Finished => s.unsaved += 1,
            }
        }
        s
    }
}

async fn sleep_until_or_never(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
