//! The shared state of one running simulator and the few operations on it
//! that need more than one of its parts (jobs + webhooks, stats, reset).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, Semaphore, mpsc};

use crate::catalog::Catalog;
use crate::clock::SimClock;
use crate::config::{ConnectionLimits, SimConfig};
use crate::dialect::Dialect;
use crate::faults::{
    DUPLICATE_GAP_SECS, Decision, FILES, FaultConfig, FileDecision, SPOOF_AFTER_SECS, WebhookPlan,
};
use crate::inputs::InputRules;
use crate::jobs::{JobStore, Status};
use crate::ratelimit::{RateLimiter, SubmitLimiter};
use crate::records::View;
use crate::stats::Stats;

/// Locks a mutex, recovering the data if a panicking thread poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Which kind of webhook delivery a [`WebhookJob`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// The delivery of a terminal state, retried until delivered or given up.
    Genuine,
    /// The second copy of a duplicated delivery (`webhook:duplicate`),
    /// retried like a genuine one.
    Duplicate,
    /// A forged `COMPLETED` sent before the job finished (`webhook:spoof`):
    /// one attempt, no retries, counted in no delivery counter.
    Spoof,
}

/// One webhook to deliver.
#[derive(Debug, Clone)]
pub(crate) struct WebhookJob {
    pub(crate) url: String,
    pub(crate) request_id: String,
    pub(crate) body: Bytes,
    /// When the first attempt is due, on the simulator's clock (fixed when
    /// the delivery is queued, so a manual clock's jump reaches it however
    /// soon the delivery task runs).
    pub(crate) due: Duration,
    pub(crate) kind: Delivery,
}

/// Fault configuration plus the per-operation request counters that make
/// fault decisions deterministic.
#[derive(Debug, Default)]
struct FaultState {
    config: FaultConfig,
    counters: HashMap<String, u64>,
}

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) keys: Vec<Arc<str>>,
    pub(crate) seed: u64,
    /// Mixed into request ids: the explicit seed, else a random number
    /// drawn at start (ids unique to the run).
    pub(crate) id_seed: u64,
    pub(crate) dialect: Dialect,
    /// Whether records and the model list report prices.
    pub(crate) prices: bool,
    pub(crate) catalog: Catalog,
    /// Each endpoint's input schema, in catalog order.
    pub(crate) inputs: Vec<Option<InputRules>>,
    /// Largest request body accepted, in bytes.
    pub(crate) max_body: usize,
    /// Connection and webhook limits.
    pub(crate) limits: ConnectionLimits,
    /// One permit per webhook attempt in flight.
    pub(crate) webhook_slots: Semaphore,
    pub(crate) failure_override: Option<f64>,
    pub(crate) clock: SimClock,
    /// Advertised base URL, without a trailing slash.
    pub(crate) base_url: String,
    pub(crate) rate: RateLimiter,
    /// The submit token bucket, when configured.
    pub(crate) submit_rate: Option<SubmitLimiter>,
    /// Wakes the scheduler when a job is created or cancelled.
    pub(crate) wake: Notify,
    store: Mutex<JobStore>,
    stats: Mutex<Stats>,
    faults: Mutex<FaultState>,
    webhooks: mpsc::UnboundedSender<WebhookJob>,
}

impl AppState {
    /// State for a validated `config`, advertising `base_url`, sending webhooks to `webhooks`.
    pub(crate) fn new(
        config: &SimConfig,
        base_url: String,
        webhooks: mpsc::UnboundedSender<WebhookJob>,
    ) -> Result<AppState, String> {
        let clock = SimClock::new(config.time_scale, config.manual_clock);
        let window = clock.wall(86_400.0);
        let inputs = config.catalog.input_rules().map_err(|e| e.to_string())?;
        Ok(AppState {
            inputs,
            max_body: config.max_body_bytes,
            limits: config.limits,
            webhook_slots: Semaphore::new(config.limits.webhook_concurrency),
            keys: config.accepted_keys().into_iter().map(Arc::from).collect(),
            seed: config.seed.unwrap_or(0),
            id_seed: config
                .seed
                .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0),
            dialect: config.dialect,
            prices: config.prices,
            catalog: config.catalog.clone(),
            failure_override: config.failure_rate,
            rate: RateLimiter::new(config.rate_limit, window),
            submit_rate: config.submit_rate.map(|(per_second, burst)| {
                SubmitLimiter::new(per_second, burst, config.submit_reset_whole_seconds)
            }),
            wake: Notify::new(),
            store: Mutex::new(JobStore::new(&config.catalog, 0)),
            stats: Mutex::new(Stats::default()),
            faults: Mutex::new(FaultState {
                config: config.faults.clone(),
                counters: HashMap::new(),
            }),
            webhooks,
            base_url,
            clock,
        })
    }

    /// The renderer of job records.
    pub(crate) fn view(&self) -> View<'_> {
        View {
            clock: &self.clock,
            catalog: &self.catalog,
            base_url: &self.base_url,
            dialect: self.dialect,
            seed: self.seed,
            prices: self.prices,
        }
    }

    /// Runs `f` on the job store at the current instant, then queues webhooks
    /// for every job that reached a terminal state meanwhile.
    pub(crate) fn with_store<R>(
        &self,
        f: impl FnOnce(&mut JobStore, Duration, &mut Vec<usize>) -> R,
    ) -> R {
        let mut store = lock(&self.store);
        let now = self.clock.now();
        let mut done = Vec::new();
        let r = f(&mut store, now, &mut done);
        if done.is_empty() {
            return r;
        }
        let view = self.view();
        let mut outgoing = Vec::new();
        for idx in done {
            let job = store.job(idx);
            if let Some(url) = &job.webhook_url {
                let body = self.dialect.webhook_body(self.seed, view.result(job));
                let plan =
                    lock(&self.faults)
                        .config
                        .webhook_plan(self.seed, store.epoch(), idx as u64);
                let hook = WebhookJob {
                    url: url.clone(),
                    request_id: job.id.clone(),
                    body: Bytes::from(body.to_string()),
                    due: now,
                    kind: Delivery::Genuine,
                };
                outgoing.push((hook, plan));
            }
        }
        drop(store);
        for (hook, plan) in outgoing {
            self.send_genuine(hook, plan, now);
        }
        r
    }

    /// Queues a genuine delivery as the webhook faults planned it: not at
    /// all, later, or twice.
    fn send_genuine(&self, mut hook: WebhookJob, plan: WebhookPlan, now: Duration) {
        let mut stats = self.stats_mut();
        if plan.lost {
            stats.webhooks_lost += 1;
            tracing::debug!(request_id = %hook.request_id, "webhook lost by fault injection");
            return;
        }
        let mut secs = 0.0;
        if plan.delay_secs > 0.0 {
            stats.webhooks_delayed += 1;
            secs += plan.delay_secs;
        }
        if let Some(extra) = plan.reorder_secs {
            stats.webhooks_reordered += 1;
            secs += extra;
        }
        hook.due = now.saturating_add(self.clock.wall(secs));
        if plan.duplicate {
            stats.webhooks_duplicated += 1;
            let copy = WebhookJob {
                due: hook.due.saturating_add(self.clock.wall(DUPLICATE_GAP_SECS)),
                kind: Delivery::Duplicate,
                ..hook.clone()
            };
            let _ = self.webhooks.send(copy);
        }
        drop(stats);
        let _ = self.webhooks.send(hook);
    }

    /// A forged `COMPLETED` webhook for the job at `idx` when the `webhook:spoof`
    /// fault picks it and it is still queued or running; to be sent with
    /// [`AppState::send_spoof`] once the store is unlocked. It is timed
    /// [`SPOOF_AFTER_SECS`] simulated seconds after `now`, or half the job's
    /// run time when that is shorter, so it always precedes the real end.
    pub(crate) fn spoof_for(&self, store: &JobStore, idx: usize) -> Option<WebhookJob> {
        let job = store.job(idx);
        let url = job.webhook_url.as_ref()?;
        if job.status.is_terminal()
            || !lock(&self.faults)
                .config
                .spoofs(self.seed, store.epoch(), idx as u64)
        {
            return None;
        }
        let wait = self.clock.wall(SPOOF_AFTER_SECS).min(job.wall / 2);
        let mut forged = job.clone();
        forged.status = Status::Completed;
        forged.fails = false;
        forged.cancel_at = None;
        forged.started = Some(job.started.unwrap_or(job.created));
        forged.ended = Some(job.created.saturating_add(wait));
        let body = self
            .dialect
            .webhook_body(self.seed, self.view().result(&forged));
        Some(WebhookJob {
            url: url.clone(),
            request_id: job.id.clone(),
            body: Bytes::from(body.to_string()),
            due: job.created.saturating_add(wait),
            kind: Delivery::Spoof,
        })
    }

    /// Queues a spoofed webhook made by [`AppState::spoof_for`].
    pub(crate) fn send_spoof(&self, hook: WebhookJob) {
        self.stats_mut().webhooks_spoofed += 1;
        let _ = self.webhooks.send(hook);
    }

    /// Updates the counters.
    pub(crate) fn stats_mut(&self) -> MutexGuard<'_, Stats> {
        lock(&self.stats)
    }

    /// A snapshot of the counters, with current job counts.
    pub(crate) fn stats(&self) -> Stats {
        let counts = self.with_store(|store, now, done| {
            store.advance_all(now, done);
            store.count_by_status()
        });
        let mut stats = self.stats_mut().clone();
        stats.jobs_by_status = Status::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), counts.get(s).copied().unwrap_or(0)))
            .collect();
        stats
    }

    /// The fault decision for the next request of `op`.
    pub(crate) fn decide_fault(&self, op: &str) -> Decision {
        let mut faults = lock(&self.faults);
        let counter = faults.counters.entry(op.to_string()).or_insert(0);
        let n = *counter;
        *counter += 1;
        faults.config.decide(op, self.seed, n)
    }

    /// The fault decision for the next download of an output file (one
    /// counter for `/_sim/files` and `/_sim/blobs` together).
    pub(crate) fn decide_file_fault(&self) -> FileDecision {
        let mut faults = lock(&self.faults);
        let counter = faults.counters.entry(FILES.to_string()).or_insert(0);
        let n = *counter;
        *counter = counter.saturating_add(1);
        faults.config.decide_file(self.seed, n)
    }

    /// The current fault configuration.
    pub(crate) fn faults(&self) -> FaultConfig {
        lock(&self.faults).config.clone()
    }

    /// Replaces the fault configuration (counters keep running).
    pub(crate) fn set_faults(&self, config: FaultConfig) {
        lock(&self.faults).config = config;
    }

    /// Clears jobs, idempotency records, stats, faults, fault counters, quotas
    /// and submit buckets.
    pub(crate) fn reset(&self) {
        {
            let mut store = lock(&self.store);
            let epoch = store.epoch() + 1;
            *store = JobStore::new(&self.catalog, epoch);
        }
        *lock(&self.stats) = Stats::default();
        *lock(&self.faults) = FaultState::default();
        self.rate.reset();
        if let Some(bucket) = &self.submit_rate {
            bucket.reset();
        }
        self.wake.notify_one();
    }

    /// Moves a manual clock by `by` and brings every lane to the new time
    /// (jobs end, webhooks are handed over); `None` for Tokio's clock.
    pub(crate) fn advance_clock(&self, by: Duration) -> Option<Duration> {
        if !self.clock.advance(by) {
            return None;
        }
        let now = self.with_store(|store, now, done| {
            store.advance_all(now, done);
            now
        });
        self.wake.notify_one();
        Some(now)
    }

    /// Clock time until the next running job ends.
    pub(crate) fn until_next_job_end(&self) -> Option<Duration> {
        self.with_store(|store, now, done| {
            store.advance_all(now, done);
            store.next_event().map(|at| at.saturating_sub(now))
        })
    }

    /// The failure rate of a catalog endpoint, after the global override.
    pub(crate) fn failure_rate(&self, lane: usize) -> f64 {
        self.failure_override
            .unwrap_or(self.catalog.models[lane].failure_rate)
    }
}
