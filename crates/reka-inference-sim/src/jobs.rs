//! The queue model: jobs, one FIFO lane per endpoint, and lazy advancement.
//!
//! No task runs per job. Each lane is a discrete-event simulation that is
//! advanced to "now" whenever somebody looks at it (a request, or the
//! scheduler task that exists for webhooks): finished jobs are completed at
//! their exact end instant and the next queued job starts at that same
//! instant. States and timestamps are therefore exact however rarely a lane
//! is observed, and 10,000 jobs in flight cost only their records.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::Catalog;
use crate::images::InputImage;

/// The lifecycle of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Waiting for a worker.
    InQueue,
    /// Running on a worker.
    InProgress,
    /// Finished with an output.
    Completed,
    /// Finished with an error.
    Failed,
    /// Cancelled while queued or running.
    Cancelled,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 5] = [
        Status::InQueue,
        Status::InProgress,
        Status::Completed,
        Status::Failed,
        Status::Cancelled,
    ];

    /// The wire spelling, e.g. `IN_QUEUE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InQueue => "IN_QUEUE",
            Status::InProgress => "IN_PROGRESS",
            Status::Completed => "COMPLETED",
            Status::Failed => "FAILED",
            Status::Cancelled => "CANCELLED",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// True for `COMPLETED`, `FAILED` and `CANCELLED`.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Cancelled)
    }
}

/// One submitted request.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) id: String,
    pub(crate) owner: Arc<str>,
    /// Index of the endpoint in the catalog (and of its lane).
    pub(crate) lane: usize,
    pub(crate) input: Value,
    /// The input's `image_url`, checked and described at submit.
    pub(crate) image: Option<InputImage>,
    pub(crate) webhook_url: Option<String>,
    pub(crate) created: Duration,
    pub(crate) started: Option<Duration>,
    pub(crate) ended: Option<Duration>,
    pub(crate) status: Status,
    /// Run time in simulated seconds (reported as `metrics.inference_time`).
    pub(crate) sim_secs: f64,
    /// Run time in wall time.
    pub(crate) wall: Duration,
    /// Whether the job ends `FAILED` instead of `COMPLETED`.
    pub(crate) fails: bool,
    /// When a cancel asked a running job to stop (it stops at this instant
    /// unless it ends earlier on its own).
    pub(crate) cancel_at: Option<Duration>,
}

impl Job {
    /// When the job last changed status.
    pub(crate) fn updated(&self) -> Duration {
        self.ended.or(self.started).unwrap_or(self.created)
    }
}

/// One endpoint's workers and queue.
#[derive(Debug, Default)]
struct Lane {
    workers: usize,
    /// Queued job indices; ascending, because indices grow with submission.
    queue: VecDeque<usize>,
    /// Running job indices and their end instants.
    running: Vec<(usize, Duration)>,
}

/// The first answer to a submit with an `Idempotency-Key`.
#[derive(Debug, Clone)]
pub(crate) struct IdemEntry {
    /// The submit path, e.g. `/v2/inference/sam3/image-to-bbox`.
    pub(crate) path: String,
    /// The parsed request body.
    pub(crate) body: Value,
    /// The exact bytes of the 202 body.
    pub(crate) response: Bytes,
}

/// All jobs, lanes and idempotency records. Guarded by one mutex.
#[derive(Debug, Default)]
pub(crate) struct JobStore {
    jobs: Vec<Job>,
    by_id: HashMap<String, usize>,
    by_owner: HashMap<Arc<str>, Vec<usize>>,
    /// Owners whose jobs were not all created in the order they were added
    /// (a clock set back): their lists are searched whole, not bisected.
    out_of_order: HashSet<Arc<str>>,
    lanes: Vec<Lane>,
    /// How many resets preceded this store; mixed into request ids.
    epoch: u64,
    pub(crate) idempotency: HashMap<(Arc<str>, String), IdemEntry>,
}

impl JobStore {
    /// An empty store with one lane per catalog endpoint.
    pub(crate) fn new(catalog: &Catalog, epoch: u64) -> JobStore {
        let lanes = catalog
            .models
            .iter()
            .map(|m| Lane {
                workers: m.workers.max(1) as usize,
                ..Lane::default()
            })
            .collect();
        JobStore {
            lanes,
            epoch,
            ..JobStore::default()
        }
    }

    /// The job at an index.
    pub(crate) fn job(&self, idx: usize) -> &Job {
        &self.jobs[idx]
    }

    /// How many resets preceded this store.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Number of jobs ever created (since the last reset).
    pub(crate) fn len(&self) -> usize {
        self.jobs.len()
    }

    /// The index of `id` if it belongs to `owner`, after advancing its lane.
    pub(crate) fn find(
        &mut self,
        owner: &str,
        id: &str,
        now: Duration,
        done: &mut Vec<usize>,
    ) -> Option<usize> {
        let idx = *self.by_id.get(id)?;
        if &*self.jobs[idx].owner != owner {
            return None;
        }
        self.advance(self.jobs[idx].lane, now, done);
        Some(idx)
    }

    /// The index of `id` whoever owns it, after advancing its lane.
    pub(crate) fn find_any(
        &mut self,
        id: &str,
        now: Duration,
        done: &mut Vec<usize>,
    ) -> Option<usize> {
        let idx = *self.by_id.get(id)?;
        self.advance(self.jobs[idx].lane, now, done);
        Some(idx)
    }

    /// The jobs of one owner, oldest first.
    pub(crate) fn owned_by(&self, owner: &str) -> &[usize] {
        self.by_owner.get(owner).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The owner's jobs that may have been created in `[start, end)` (by
    /// `created_at`, whatever the precision `key` reads it at), oldest
    /// first: found by bisection, as a server with an index would, so a
    /// list of a narrow range costs the range and not every job the key
    /// ever made. The caller still filters each job (the bounds are a
    /// superset when the clock was ever set back).
    pub(crate) fn owned_created_between<T: Ord>(
        &self,
        owner: &str,
        start: Option<&T>,
        end: Option<&T>,
        key: impl Fn(Duration) -> T,
    ) -> &[usize] {
        let owned = self.owned_by(owner);
        if self.out_of_order.contains(owner) {
            return owned;
        }
        let created = |i: &usize| key(self.jobs[*i].created);
        let from = start.map_or(0, |s| owned.partition_point(|i| created(i) < *s));
        let to = end.map_or(owned.len(), |e| owned.partition_point(|i| created(i) < *e));
        owned.get(from..to.max(from)).unwrap_or(&[])
    }

    /// Adds a job created at `job.created` and queues or starts it.
    pub(crate) fn create(&mut self, job: Job, done: &mut Vec<usize>) -> usize {
        let (lane, now) = (job.lane, job.created);
        self.advance(lane, now, done);
        let idx = self.jobs.len();
        self.by_id.insert(job.id.clone(), idx);
        let owned = self.by_owner.entry(job.owner.clone()).or_default();
        if owned
            .last()
            .is_some_and(|&last| self.jobs[last].created > now)
        {
            self.out_of_order.insert(job.owner.clone());
        }
        owned.push(idx);
        self.jobs.push(job);
        self.lanes[lane].queue.push_back(idx);
        self.start_next(lane, now);
        // A zero-length job (time scale 0) is finished at once.
        self.advance(lane, now, done);
        idx
    }

    /// Zero-based position in the queue while `IN_QUEUE`.
    pub(crate) fn queue_position(&self, idx: usize) -> Option<usize> {
        let job = &self.jobs[idx];
        if job.status != Status::InQueue {
            return None;
        }
        self.lanes[job.lane].queue.binary_search(&idx).ok()
    }

    /// Cancels a queued or running job; returns false when it had already
    /// finished. A running job stops `delay` later (it stays `IN_PROGRESS`
    /// meanwhile, and completes normally if it ends sooner); zero stops it now.
    pub(crate) fn cancel(
        &mut self,
        idx: usize,
        now: Duration,
        delay: Duration,
        done: &mut Vec<usize>,
    ) -> bool {
        let lane = self.jobs[idx].lane;
        self.advance(lane, now, done);
        match self.jobs[idx].status {
            Status::InQueue => {
                if let Ok(pos) = self.lanes[lane].queue.binary_search(&idx) {
                    self.lanes[lane].queue.remove(pos);
                }
            }
            Status::InProgress if !delay.is_zero() => {
                let at = now.saturating_add(delay);
                let job = &mut self.jobs[idx];
                let at = job.cancel_at.map_or(at, |earlier| earlier.min(at));
                job.cancel_at = Some(at);
                for r in &mut self.lanes[lane].running {
                    if r.0 == idx {
                        r.1 = r.1.min(at);
                    }
                }
                return true;
            }
            Status::InProgress => {
                self.lanes[lane].running.retain(|&(j, _)| j != idx);
            }
            _ => return false,
        }
        let job = &mut self.jobs[idx];
        job.status = Status::Cancelled;
        job.ended = Some(now);
        done.push(idx);
        // The freed worker (or queue slot) goes to the next job right away.
        self.start_next(lane, now);
        self.advance(lane, now, done);
        true
    }

    /// Advances every lane to `now`.
    pub(crate) fn advance_all(&mut self, now: Duration, done: &mut Vec<usize>) {
        for lane in 0..self.lanes.len() {
            self.advance(lane, now, done);
        }
    }

    /// Replays one lane's events up to `now`, pushing newly finished jobs to `done`.
    pub(crate) fn advance(&mut self, lane: usize, now: Duration, done: &mut Vec<usize>) {
        loop {
            let next = self.lanes[lane]
                .running
                .iter()
                .enumerate()
                .filter(|(_, r)| r.1 <= now)
                .min_by_key(|(_, r)| (r.1, r.0))
                .map(|(pos, &(j, end))| (pos, j, end));
            let Some((pos, idx, end)) = next else { break };
            self.lanes[lane].running.swap_remove(pos);
            let job = &mut self.jobs[idx];
            job.status = if job.cancel_at.is_some_and(|at| at <= end) {
                Status::Cancelled
            } else if job.fails {
                Status::Failed
            } else {
                Status::Completed
            };
            job.ended = Some(end);
            done.push(idx);
            self.start_next(lane, end);
        }
    }

    /// Starts queued jobs on free workers at instant `at`.
    fn start_next(&mut self, lane: usize, at: Duration) {
        let Lane {
            workers,
            queue,
            running,
        } = &mut self.lanes[lane];
        while running.len() < *workers {
            let Some(idx) = queue.pop_front() else { break };
            let job = &mut self.jobs[idx];
            job.status = Status::InProgress;
            job.started = Some(at);
            running.push((idx, at.saturating_add(job.wall)));
        }
    }

    /// The earliest instant at which some running job ends.
    pub(crate) fn next_event(&self) -> Option<Duration> {
        self.lanes
            .iter()
            .flat_map(|l| l.running.iter().map(|&(_, end)| end))
            .min()
    }

    /// How many jobs are in each status.
    pub(crate) fn count_by_status(&self) -> HashMap<Status, u64> {
        let mut counts = HashMap::new();
        for j in &self.jobs {
            *counts.entry(j.status).or_insert(0) += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(workers: u32) -> Catalog {
        Catalog::from_json(&format!(
            r#"{{"models":[{{"model_id":"m","capability":"edit","workers":{workers},"duration":{{"fixed":1}}}}]}}"#
        ))
        .unwrap()
    }

    fn job(id: &str, created_ms: u64, wall_ms: u64) -> Job {
        Job {
            id: id.into(),
            owner: Arc::from("k"),
            lane: 0,
            input: Value::Null,
            image: None,
            webhook_url: None,
            created: Duration::from_millis(created_ms),
            started: None,
            ended: None,
            status: Status::InQueue,
            sim_secs: 1.0,
            wall: Duration::from_millis(wall_ms),
            fails: false,
            cancel_at: None,
        }
    }

    #[test]
    fn a_created_range_is_bisected_and_a_clock_set_back_searches_all() {
        let mut s = JobStore::new(&catalog(4), 0);
        let mut done = Vec::new();
        let idx: Vec<usize> = [0, 10, 10, 20, 30]
            .iter()
            .enumerate()
            .map(|(i, &ms)| s.create(job(&format!("j{i}"), ms, 100), &mut done))
            .collect();
        let ms = |d: Duration| d.as_millis();
        let range = |s: &JobStore, a: Option<u128>, b: Option<u128>| {
            s.owned_created_between("k", a.as_ref(), b.as_ref(), ms)
                .to_vec()
        };
        // [start, end): both jobs at 10 ms in, the one at 20 ms out.
        assert_eq!(range(&s, Some(10), Some(20)), idx[1..3].to_vec());
        assert_eq!(range(&s, None, Some(10)), idx[..1].to_vec());
        assert_eq!(range(&s, Some(25), None), idx[4..].to_vec());
        assert!(range(&s, Some(40), None).is_empty());
        assert!(range(&s, Some(20), Some(10)).is_empty());
        assert!(s.owned_created_between("other", None, None, ms).is_empty());
        // A job created before the last one (the clock was set back): the
        // owner's jobs are no longer in order, every one is a candidate.
        s.create(job("late", 5, 100), &mut done);
        assert_eq!(range(&s, Some(10), Some(20)).len(), 6);
    }

    #[test]
    fn fifo_with_one_worker_is_exact() {
        let mut s = JobStore::new(&catalog(1), 0);
        let mut done = Vec::new();
        let a = s.create(job("a", 0, 100), &mut done);
        let b = s.create(job("b", 10, 100), &mut done);
        let c = s.create(job("c", 20, 100), &mut done);
        assert_eq!(s.queue_position(b), Some(0));
        assert_eq!(s.queue_position(c), Some(1));
        // Observed late: everything happened at the right instants anyway.
        s.advance(0, Duration::from_millis(1000), &mut done);
        assert_eq!(done, vec![a, b, c]);
        assert_eq!(s.job(b).started, Some(Duration::from_millis(100)));
        assert_eq!(s.job(c).ended, Some(Duration::from_millis(300)));
    }

    #[test]
    fn cancel_frees_the_worker_and_reorders_nothing() {
        let mut s = JobStore::new(&catalog(1), 0);
        let mut done = Vec::new();
        let a = s.create(job("a", 0, 100), &mut done);
        let b = s.create(job("b", 0, 100), &mut done);
        let c = s.create(job("c", 0, 100), &mut done);
        assert!(s.cancel(b, Duration::from_millis(10), Duration::ZERO, &mut done));
        assert_eq!(s.queue_position(c), Some(0));
        assert!(s.cancel(a, Duration::from_millis(20), Duration::ZERO, &mut done));
        assert_eq!(s.job(c).status, Status::InProgress);
        assert_eq!(s.job(c).started, Some(Duration::from_millis(20)));
        s.advance(0, Duration::from_millis(500), &mut done);
        assert!(!s.cancel(c, Duration::from_millis(500), Duration::ZERO, &mut done));
        assert_eq!(s.job(c).status, Status::Completed);
    }

    #[test]
    fn a_delayed_cancel_keeps_the_job_running_until_then() {
        let mut s = JobStore::new(&catalog(1), 0);
        let mut done = Vec::new();
        let a = s.create(job("a", 0, 1000), &mut done);
        let b = s.create(job("b", 0, 1000), &mut done);
        let delay = Duration::from_millis(50);
        assert!(s.cancel(a, Duration::from_millis(10), delay, &mut done));
        assert_eq!(s.job(a).status, Status::InProgress);
        s.advance(0, Duration::from_millis(59), &mut done);
        assert_eq!(s.job(a).status, Status::InProgress);
        s.advance(0, Duration::from_millis(60), &mut done);
        assert_eq!(s.job(a).status, Status::Cancelled);
        assert_eq!(s.job(a).ended, Some(Duration::from_millis(60)));
        assert_eq!(s.job(b).started, Some(Duration::from_millis(60)));
        // A job that ends on its own before the cancel takes effect completes.
        assert!(s.cancel(b, Duration::from_millis(1050), delay, &mut done));
        s.advance(0, Duration::from_millis(2000), &mut done);
        assert_eq!(s.job(b).status, Status::Completed);
    }
}
