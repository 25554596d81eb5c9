//! What becomes of an item: taken from the caller or claimed from a
//! shared journal, skipped when already done, reported when it changed,
//! held until its price can be judged, submitted (or replayed with its
//! idempotency key), and followed once its submit is answered.

use super::*;

impl<J: Journal, F: FnMut(BatchEvent<'_>) -> Result<()> + Send> Run<J, F> {
    /// Claims lines from a shared journal (when none is waiting and the
    /// last claim does not say to wait): true when the loop should look
    /// again at once.
    pub(super) async fn claim_lines(&mut self) -> Result<bool> {
        if let Some(line) = self.claimed.pop_front() {
            self.take_claimed(line).await?;
            return Ok(true);
        }
        if self.next_claim.is_some_and(|t| Instant::now() < t) {
            return Ok(false);
        }
        self.next_claim = None;
        let max = self.options.submitter.max_in_flight();
        match self.journal.claim(max).await? {
            Claim::Lines(lines) if !lines.is_empty() => {
                self.claimed.extend(lines);
                Ok(true)
            }
            Claim::Finished => {
                self.items_ended();
                Ok(true)
            }
            Claim::Wait(d) => {
                self.next_claim = Instant::now().checked_add(d.max(Duration::from_millis(10)));
                Ok(false)
            }
            _ => {
                self.next_claim = Instant::now().checked_add(CLAIM_AGAIN);
                Ok(false)
            }
        }
    }

    /// A line claimed from a shared journal: a new one is submitted (if
    /// the budget allows); one an earlier holder left is taken up where
    /// its entry says, as a resumed run would.
    pub(super) async fn take_claimed(&mut self, line: ClaimedLine) -> Result<()> {
        let ClaimedLine { item, entry } = line;
        if self.entries.contains_key(item.key()) {
            // This run's own line, claimed again after its lease lapsed
            // with no one taking it: it goes on as it is (the journal
            // writes it under the new token).
            return Ok(());
        }
        let Some(entry) = entry else {
            return self.take_new(item).await;
        };
        let key = entry.key.clone();
        match entry.state {
            EntryState::Submitting => {
                // Its reservation is in the journal already: replayed with
                // its key, not reserved again.
                self.ledger.started(&key, &entry.endpoint);
                let idempotency_key = entry.idempotency_key.clone();
                self.entries.insert(key, entry);
                self.push(item, idempotency_key);
            }
            EntryState::Submitted => {
                self.ledger.started(&key, &entry.endpoint);
                self.follow(&entry)?;
                self.entries.insert(key, entry);
            }
            EntryState::Finished => {
                self.ledger.priced(&entry);
                self.start_download(&entry);
                self.entries.insert(key, entry);
            }
            EntryState::Done => {
                self.ledger.priced(&entry);
                self.entries.insert(key.clone(), entry);
                self.report(&key).await?;
            }
            EntryState::Reported => {
                self.ledger.priced(&entry);
                self.entries.insert(key, entry);
            }
        }
        Ok(())
    }

    /// An item from the caller: submitted when new (or when its earlier
    /// submit's outcome is unknown), skipped when already taken care of,
    /// reported (or run again) when it changed.
    pub(super) async fn take_item(&mut self, mut item: BatchItem) -> Result<()> {
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
    pub(super) async fn take_new(&mut self, item: BatchItem) -> Result<()> {
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

    pub(super) fn price_unknown(&self, item: &BatchItem) -> Error {
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
    pub(super) async fn submit_new(&mut self, item: BatchItem) -> Result<()> {
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
        if self.shared {
            // With the job's estimate reserved from the budget all runs
            // share, as one step.
            let estimate = self.ledger.estimate(item.endpoint.as_str()).unwrap_or(0.0);
            let budget = self.options.budget_usd;
            match self.journal.save_reserving(&entry, estimate, budget).await {
                Ok(true) => {}
                Ok(false) => {
                    self.unpulled += 1;
                    return self.reach_budget();
                }
                Err(Error::LeaseLost { key }) => return self.lose_line(&key),
                Err(e) => return Err(e),
            }
        } else {
            self.journal.save(&entry).await?;
        }
        self.ledger.started(&entry.key, &entry.endpoint);
        self.entries.insert(entry.key.clone(), entry);
        self.push(item, idempotency_key);
        Ok(())
    }

    /// Sends again, with its key, an item whose earlier submit's outcome is
    /// unknown (its price was committed when the journal was read).
    pub(super) fn replay(&mut self, item: BatchItem, idempotency_key: String) {
        self.ledger.mark_probe(&item.key, item.endpoint.as_str());
        self.push(item, idempotency_key);
    }

    /// Queues a submit. An item's local files are read into its input by
    /// the submitter just before each try.
    pub(super) fn push(&mut self, item: BatchItem, idempotency_key: String) {
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
    pub(super) async fn submitted(&mut self, outcome: SubmitOutcome<String>) -> Result<()> {
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
                if !self.save(&entry).await? {
                    return self.release_held().await;
                }
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
}
