//! The engine of a [`Batch`](super::Batch): one loop that resumes what the
//! journal holds, pulls items while the submitter has room and the budget
//! allows, submits them, follows every job in one growing job set, saves
//! files as jobs finish and reports each item once, journalling every step
//! before the next.

use std::collections::{HashMap, HashSet};
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
    BatchEvent, BatchItem, BatchOptions, BatchProgress, BatchSummary, EntryState, Journal,
    JournalEntry, StopReason,
};

/// How long a stopping run waits for submits in flight.
const STOP_GRACE: Duration = Duration::from_secs(10);

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
            options,
        }
    }

    /// Reads the journal and takes up every entry where it was left.
    pub(super) async fn resume(&mut self) -> Result<()> {
        if self.options.budget_usd.is_some() {
            self.load_listed_prices().await;
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
                item = items.next(), if wants => match item {
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
        if self.items_exhausted {
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

    /// An item from the caller: submitted when new (or when its earlier
    /// submit's outcome is unknown), skipped when already taken care of,
    /// reported (or run again) when it changed.
    async fn take_item(&mut self, mut item: BatchItem) -> Result<()> {
        if let Some(entry) = self.entries.get(&item.key) {
            if entry.fingerprint == item.fingerprint {
                if entry.state == EntryState::Submitting && self.awaiting_items.remove(&item.key) {
                    let idempotency_key = entry.idempotency_key.clone();
                    self.replay(item, idempotency_key);
                }
                return Ok(());
            }
            let reason =
                files::describe_change(&entry.input_files, &item.files).unwrap_or_else(|| {
                    if entry.state == EntryState::Submitting {
                        "its input changed since an earlier run sent it (that submit may have \
                         made a job)"
                            .to_owned()
                    } else {
                        "its input changed since its job ran".to_owned()
                    }
                });
            let rerun = self.options.rerun_changed;
            let (state, endpoint) = (entry.state, entry.endpoint.clone());
            (self.on_event)(BatchEvent::Changed {
                key: &item.key,
                reason,
                rerun,
            })?;
            let awaiting = self.awaiting_items.remove(&item.key);
            if awaiting || (rerun && state == EntryState::Submitted) {
                // No longer in flight for this run: a submit not replayed,
                // or a job of the earlier input left running unfollowed
                // (its outcome no longer matches the entry).
                self.ledger.stopped(&item.key, &endpoint);
            }
            if !rerun {
                self.changed.insert(item.key.clone());
                return Ok(());
            }
            self.entries.remove(&item.key);
            if let Some(key) = item.idempotency_key.take() {
                // The caller's key sent again with another input would be
                // refused (409): the new job gets a key of its own.
                let base = &key[..key.len().min(238)];
                item.idempotency_key = Some(format!("{base}~{}", item.fingerprint));
            }
        }
        self.take_new(item).await
    }

    /// A new item (or one run again): submitted if the budget allows.
    async fn take_new(&mut self, item: BatchItem) -> Result<()> {
        if let Some(budget) = self.options.budget_usd {
            match self.ledger.fits(item.endpoint.as_str(), budget) {
                Fits::Yes { .. } => {}
                Fits::AfterProbe => {
                    self.held = Some(item);
                    return Ok(());
                }
                Fits::No => {
                    self.unpulled += 1;
                    return self.reach_budget();
                }
                Fits::Unknown => return Err(self.price_unknown(&item)),
            }
        }
        self.submit_new(item).await
    }

    fn price_unknown(&self, item: &BatchItem) -> Error {
        let why = match &self.list_error {
            Some(e) => {
                format!("no job of it reported a price, and the model list could not be read: {e}")
            }
            None => "no job of it reported a price, and the model list gives none".to_owned(),
        };
        Error::PriceUnknown {
            endpoint: item.endpoint.as_str().to_owned(),
            why,
        }
    }

    /// Journals a new item's key, then queues its submit.
    async fn submit_new(&mut self, item: BatchItem) -> Result<()> {
        let idempotency_key = item
            .idempotency_key
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let mut entry = JournalEntry::new(
            item.key.clone(),
            item.endpoint.as_str(),
            item.fingerprint.clone(),
            idempotency_key.clone(),
        );
        entry.input_files = item.files.clone();
        // The key is saved before the submit: a crash after it replays the
        // submit with the same key rather than make a second job.
        self.journal.save(&entry).await?;
        self.ledger.started(&entry.key, &entry.endpoint);
        self.entries.insert(entry.key.clone(), entry);
        self.push(item, idempotency_key);
        Ok(())
    }

    /// Sends again, with its key, an item whose earlier submit's outcome is
    /// unknown (its price was committed when the journal was read).
    fn replay(&mut self, item: BatchItem, idempotency_key: String) {
        self.ledger.mark_probe(&item.key, item.endpoint.as_str());
        self.push(item, idempotency_key);
    }

    /// Queues a submit. An item's local files are read into its input by
    /// the submitter just before each try.
    fn push(&mut self, item: BatchItem, idempotency_key: String) {
        let BatchItem {
            key,
            endpoint,
            input,
            files,
            ..
        } = item;
        let mut options = SubmitOptions::default().idempotency_key(idempotency_key);
        if let Some(deliveries) = &self.options.webhook {
            options = options.webhook_from(deliveries.clone());
        }
        if let Some(d) = self.options.deadline {
            options = options.deadline(d);
        }
        // Endpoint and input were checked when the item was made.
        let Ok(mut submit) = SubmitItem::new(key, endpoint, input) else {
            return;
        };
        if !files.is_empty() {
            submit = submit.prepared_by(Arc::new(FilesIntoInput {
                files,
                max_bytes: self.options.max_file_bytes,
                encoder: self.options.input_encoder.clone(),
            }));
        }
        self.submitter.push(submit.options(options));
    }

    /// A submit ended.
    async fn submitted(&mut self, outcome: SubmitOutcome<String>) -> Result<()> {
        let key = outcome.tag;
        match outcome.result {
            Ok(job) => {
                let Some(entry) = self.entries.get_mut(&key) else {
                    return Ok(());
                };
                entry.state = EntryState::Submitted;
                entry.request_id = Some(job.id().to_owned());
                entry.submitted_at = job.submit_time().or_else(|| Some(Utc::now()));
                let entry = entry.clone();
                self.journal.save(&entry).await?;
                (self.on_event)(BatchEvent::Submitted(&entry))?;
                self.push_job(key, job);
            }
            Err(e) if matches!(e.status().map(|s| s.as_u16()), Some(401 | 403)) => {
                // The key is refused: every other item would be too.
                return Err(e);
            }
            Err(e @ Error::SubmitOutcomeUnknown { .. }) => {
                self.ledger.lost_track(&key);
                (self.on_event)(BatchEvent::NotSubmitted {
                    key: &key,
                    reason: format!("{e}; the next run replays it with the same key"),
                })?;
            }
            Err(Error::InvalidInput(why)) if why.starts_with(FILE_PROBLEM) => {
                // Its file, not the service: left for the next run, which
                // sends it (with its key) or finds it changed.
                self.ledger.lost_track(&key);
                let reason = why.trim_start_matches(FILE_PROBLEM).to_owned();
                (self.on_event)(BatchEvent::NotSubmitted { key: &key, reason })?;
            }
            Err(e) => {
                // Refused (400, 404, 409, 413, 422): no job was made.
                let Some(entry) = self.entries.get_mut(&key) else {
                    return Ok(());
                };
                entry.state = EntryState::Finished;
                entry.status = Some("REJECTED".into());
                entry.error = Some(e.to_string());
                entry.finished_at = Some(Utc::now());
                self.ledger.ended(entry);
                self.finish(&key).await?;
            }
        }
        self.release_held().await
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

    /// Saves a finished entry, then its files (or reports it when it has
    /// none to save).
    async fn finish(&mut self, key: &str) -> Result<()> {
        let Some(entry) = self.entries.get(key).cloned() else {
            return Ok(());
        };
        self.journal.save(&entry).await?;
        (self.on_event)(BatchEvent::Finished(&entry))?;
        let has_files = entry.status.as_deref() == Some("COMPLETED")
            && self.options.download_dir.is_some()
            && entry
                .output
                .as_ref()
                .is_some_and(|o| !crate::media::find_media(o).is_empty());
        if has_files {
            self.start_download(&entry);
            return Ok(());
        }
        self.mark_done(key).await
    }

    /// Saves an entry's files into `<download dir>/<key>/`; an entry whose
    /// output the journal does not hold (journals of earlier versions
    /// dropped it once reported) has its record fetched first.
    fn start_download(&mut self, entry: &JournalEntry) {
        let key = entry.key.clone();
        let request_id = entry.request_id.clone();
        let Some(dir) = &self.options.download_dir else {
            // Nothing to save into: done as it is.
            self.downloads
                .push(Box::pin(async move { (key, request_id, Ok(Vec::new())) }));
            return;
        };
        let dir = dir.join(&entry.key);
        let http = self.http.clone();
        let output = entry.output.clone();
        let endpoint = Endpoint::new(entry.endpoint.clone()).ok();
        self.downloads.push(Box::pin(async move {
            let id = request_id.clone().unwrap_or_default();
            let output = match output {
                Some(output) => Ok(output),
                None => {
                    let job = Job::new(http.clone(), id.clone(), endpoint, None);
                    job.result()
                        .await
                        .map(|record| JobOutput::from_record(record).output)
                }
            };
            let saved = match output {
                Ok(output) => {
                    let output = JobOutput {
                        request_id: id,
                        output,
                        metrics: None,
                    };
                    download_outputs(&http, &output, &dir, |_, _, _| {}).await
                }
                Err(e) => Err(e),
            };
            (key, request_id, saved)
        }));
    }

    /// An item's files were saved (or not).
    async fn downloaded(
        &mut self,
        key: &str,
        request_id: Option<String>,
        saved: Result<Vec<PathBuf>>,
    ) -> Result<()> {
        let Some(entry) = self.entries.get_mut(key) else {
            return Ok(());
        };
        if entry.request_id != request_id {
            // The download of a job an item's rerun replaced.
            return Ok(());
        }
        match saved {
            Ok(paths) => {
                entry.files = paths.iter().map(|p| p.display().to_string()).collect();
            }
            // The file is gone (results expire): nothing will bring it back.
            Err(e) if matches!(e.status().map(|s| s.as_u16()), Some(403 | 404 | 410)) => {
                entry.error = Some(format!("its files could not be saved (expired?): {e}"));
            }
            Err(e) => {
                // Perhaps passing: the next run tries again.
                let reason = format!("its files could not be saved: {e}");
                return (self.on_event)(BatchEvent::Unfinished { key, reason });
            }
        }
        self.mark_done(key).await
    }

    async fn mark_done(&mut self, key: &str) -> Result<()> {
        let Some(entry) = self.entries.get_mut(key) else {
            return Ok(());
        };
        entry.state = EntryState::Done;
        let entry = entry.clone();
        self.journal.save(&entry).await?;
        self.report(key).await
    }

    /// Hands a done item to the caller, then marks it reported.
    async fn report(&mut self, key: &str) -> Result<()> {
        let Some(entry) = self.entries.get_mut(key) else {
            return Ok(());
        };
        (self.on_event)(BatchEvent::Done(entry))?;
        entry.state = EntryState::Reported;
        self.reported += 1;
        let saved = entry.clone();
        // The journal keeps the output (a report made again, files saved
        // again); the memory keeps only what the counts need, so that it
        // does not grow with what the jobs made.
        entry.output = None;
        self.journal.save(&saved).await
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
