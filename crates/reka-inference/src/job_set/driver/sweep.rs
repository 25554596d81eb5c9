//! How a job set answers its jobs' status looks by reading the list:
//! placing jobs not seen yet (from the oldest of their submits), reading
//! the `created_at` chunks that hold due jobs, pausing the list when it
//! fails, and counting jobs a read should have shown but did not.

use super::*;

impl Driver {
    fn base_filter(&self) -> ListFilter {
        let mut filter = ListFilter::default().page_size(MAX_PAGE_SIZE);
        if let Some(Some(e)) = &self.common_endpoint {
            filter = filter.endpoint(e.clone());
        }
        filter
    }

    /// Looks at every listed job due before `horizon`: first the jobs not
    /// placed yet (from the oldest of their submits, until all are seen),
    /// then the chunks holding due jobs that placing did not show.
    pub(super) async fn sweep(&mut self, horizon: Instant) {
        let mut looked: HashSet<String> = HashSet::new();
        let unplaced: HashSet<String> = self
            .listed()
            .filter(|p| p.created.is_none())
            .map(|p| p.tracker.id().to_owned())
            .collect();
        let mut placing_read_whole = false;
        if !unplaced.is_empty() {
            let oldest = self
                .listed()
                .filter(|p| p.created.is_none())
                .filter_map(|p| p.submitted)
                .min();
            let mut filter = self.base_filter();
            filter.start = oldest.and_then(|t| t.checked_sub_signed(CLOCK_SKEW));
            match self.read_range(&filter, &mut looked, &unplaced).await {
                Ok(whole) => placing_read_whole = whole,
                Err(e) => {
                    self.list_failed(e);
                    return;
                }
            }
            self.rebuild_chunks();
        }
        let ranges: Vec<(CreatedRange, HashSet<String>)> = self
            .chunks
            .iter()
            .filter(|c| {
                c.ids.iter().any(|id| {
                    !looked.contains(id)
                        && self.by_id.get(id).is_some_and(|indices| {
                            indices.iter().any(|i| {
                                self.pending
                                    .get(i)
                                    .is_some_and(|p| p.due_for_sweep(horizon))
                            })
                        })
                })
            })
            .map(|c| ((Some(c.start), c.end), c.ids.iter().cloned().collect()))
            .collect();
        // The chunks are independent: read up to `max_concurrency` at a
        // time, so that a sweep over 10,000 jobs (100 chunks) does not take
        // 100 round trips end to end while the finishes it looks for wait.
        let jobs = Jobs::new(self.http.clone());
        let (base, deadline) = (self.base_filter(), self.deadline);
        let mut reads = futures::stream::iter(ranges)
            .map(|((start, end), ids)| {
                let (jobs, mut filter) = (jobs.clone(), base.clone());
                filter.start = start;
                filter.end = end;
                async move {
                    let items = chunk_items(&jobs, &filter, deadline, ids).await;
                    ((start, end), items)
                }
            })
            .buffer_unordered(self.options.max_concurrency);
        let mut read: Vec<CreatedRange> = Vec::new();
        while let Some((range, items)) = reads.next().await {
            match items {
                Ok(items) => {
                    let now = Instant::now();
                    for item in items {
                        self.observe_item(item, now, &mut looked);
                    }
                    read.push(range);
                }
                Err(e) => {
                    // No more reads of a list that fails (a 429 would be
                    // answered by up to a hundred more): the ones in
                    // flight are dropped, and the list pauses.
                    drop(reads);
                    self.list_failed(e);
                    return;
                }
            }
        }
        self.list_failures = 0;
        self.list_paused_until = None;
        self.count_misses(&looked, &unplaced, placing_read_whole, &read);
    }

    /// A list read failed: pause the list (longer each time, or for the
    /// server's `Retry-After`), and after a few failures, or at once when
    /// the server will not serve the list at all, poll jobs one by one.
    fn list_failed(&mut self, e: Error) {
        self.list_failures += 1;
        let refused =
            matches!(e.status().map(|s| s.as_u16()), Some(400..=499)) && !e.is_retryable();
        if refused || self.list_failures >= MAX_LIST_FAILURES {
            tracing::warn!(error = %e, "list endpoint unusable; polling jobs one by one");
            self.list_usable = false;
            return;
        }
        let backoff = self
            .policy
            .first_interval()
            .checked_mul(1u32 << self.list_failures.min(16))
            .unwrap_or(MAX_LIST_BACKOFF)
            .min(MAX_LIST_BACKOFF);
        let pause = match &e {
            Error::RateLimited {
                retry_after: Some(r),
                ..
            } => (*r).max(backoff),
            _ => backoff,
        };
        if pause > MAX_LIST_BACKOFF {
            // "Come back tomorrow": the jobs will not wait that long.
            tracing::warn!(error = %e, "list rate-limited for long; polling jobs one by one");
            self.list_usable = false;
            return;
        }
        tracing::debug!(error = %e, pause_ms = pause.as_millis() as u64, "list failed; pausing it");
        self.list_paused_until = Some(later(Instant::now(), pause));
    }

    /// Reads the pages of one range until every one of `until_seen` has
    /// been seen, or to its end. Whether the range was read to its end.
    async fn read_range(
        &mut self,
        filter: &ListFilter,
        looked: &mut HashSet<String>,
        until_seen: &HashSet<String>,
    ) -> Result<bool> {
        let requests = Jobs::new(self.http.clone());
        let mut offset = 0u64;
        loop {
            let page = requests.page_until(filter, offset, self.deadline).await?;
            let next = next_offset(offset, &page)?;
            let now = Instant::now();
            for item in page.items {
                self.observe_item(item, now, looked);
            }
            if until_seen.iter().all(|id| looked.contains(id)) {
                return Ok(next.is_none());
            }
            match next {
                Some(n) => offset = n,
                None => return Ok(true),
            }
        }
    }

    pub(super) fn observe_item(
        &mut self,
        item: RequestItem,
        now: Instant,
        looked: &mut HashSet<String>,
    ) {
        let Some(indices) = self.by_id.get(&item.request_id) else {
            return;
        };
        for index in indices {
            let Some(p) = self.pending.get_mut(index) else {
                continue;
            };
            if p.own_polling {
                continue;
            }
            looked.insert(item.request_id.clone());
            p.misses = 0;
            if p.created.is_none() {
                p.created = item.created_at;
            }
            // A job whose record is wanted is looked at on its own. Every
            // other job the sweep shows is planned again from this look,
            // due or not: jobs of one chunk then come due together, and
            // share the next sweep.
            if p.next_look().is_some_and(|(_, k)| k == LookKind::Status) {
                if frees_a_worker(&item.status) {
                    note_finish(p, item.completed_at, now);
                }
                p.tracker.observe_item(item.clone(), now);
            }
        }
    }

    /// Jobs a sweep should have shown but did not: after a few misses they
    /// are polled on their own. A job should have been shown when it was
    /// being placed and the placing read went to its end, or when its
    /// chunk was read.
    pub(super) fn count_misses(
        &mut self,
        looked: &HashSet<String>,
        unplaced: &HashSet<String>,
        placing_read_whole: bool,
        chunks_read: &[CreatedRange],
    ) {
        let in_chunks_read: HashSet<&str> = self
            .chunks
            .iter()
            .filter(|c| chunks_read.contains(&(Some(c.start), c.end)))
            .flat_map(|c| c.ids.iter().map(String::as_str))
            .collect();
        let limit = self.options.misses_before_fallback;
        let again = later(Instant::now(), self.policy.first_interval());
        let mut missed: Vec<usize> = Vec::new();
        for p in self.pending.values() {
            let id = p.tracker.id();
            if p.own_polling || looked.contains(id) {
                continue;
            }
            let expected =
                (placing_read_whole && unplaced.contains(id)) || in_chunks_read.contains(id);
            if expected {
                missed.push(p.index);
            }
        }
        for index in missed {
            let Some(p) = self.pending.get_mut(&index) else {
                continue;
            };
            p.misses += 1;
            if p.misses > limit {
                tracing::debug!(request_id = %p.tracker.id(), "not in the list; polling it on its own");
                p.own_polling = true;
            } else {
                // Not shown yet (a list that lags): the next sweep, not this one.
                p.tracker.postpone(again);
            }
        }
    }

    /// Cuts the placed pending jobs into `created_at` ranges of about 100,
    /// on boundaries where the time strictly increases (`start` is
    /// inclusive, `end` exclusive, so a boundary inside equal times would
    /// split them).
    pub(super) fn rebuild_chunks(&mut self) {
        let mut placed: Vec<(DateTime<Utc>, &str)> = self
            .listed()
            .filter_map(|p| Some((p.created?, p.tracker.id())))
            .collect();
        placed.sort_unstable();
        placed.dedup();
        let size = MAX_PAGE_SIZE as usize;
        let mut chunks: Vec<Chunk> = Vec::new();
        let mut last_created = None;
        for (created, id) in placed {
            match chunks.last_mut() {
                Some(last) if last.ids.len() < size || last_created == Some(created) => {
                    last.ids.push(id.to_owned());
                }
                _ => chunks.push(Chunk {
                    start: created,
                    end: None,
                    ids: vec![id.to_owned()],
                }),
            }
            last_created = Some(created);
        }
        for i in 1..chunks.len() {
            let next_start = chunks[i].start;
            chunks[i - 1].end = Some(next_start);
        }
        self.chunks = chunks;
    }
}

/// The latest item of each of `ids` in one `created_at` range, page after
/// page (a chunk is about one page of the set's jobs, more when others'
/// jobs share its times). Only the chunk's own jobs are kept, once each:
/// memory stays bounded by the chunk however many pages the server sends.
async fn chunk_items(
    jobs: &Jobs,
    filter: &ListFilter,
    deadline: Option<Instant>,
    ids: HashSet<String>,
) -> Result<Vec<RequestItem>> {
    let mut items: HashMap<String, RequestItem> = HashMap::new();
    let mut offset = 0u64;
    loop {
        let page = jobs.page_until(filter, offset, deadline).await?;
        let next = next_offset(offset, &page)?;
        for item in page.items {
            if ids.contains(&item.request_id) {
                items.insert(item.request_id.clone(), item);
            }
        }
        match next {
            Some(n) => offset = n,
            None => return Ok(items.into_values().collect()),
        }
    }
}
