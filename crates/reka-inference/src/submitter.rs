//! Many submits: at most N at once, paced by what the service says of its
//! rate limits, slower when it struggles, never a job twice.
//!
//! A [`Submitter`] is a queue of [`SubmitItem`]s and a stream of their
//! outcomes; its documentation says how it adapts.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{Stream, StreamExt};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::time::{Instant, Sleep};

use crate::endpoint::{Endpoint, IntoEndpoint};
use crate::error::{Error, Result};
use crate::http::Http;
use crate::job::Job;
use crate::rate_limit::RateLimit;
use crate::retry::RetryPolicy;
use crate::submit::{SubmitOptions, submit_object};

/// How a [`Submitter`] sends.
///
/// ```
/// use std::time::Duration;
/// use reka_inference::batch::SubmitterOptions;
///
/// let options = SubmitterOptions::default().concurrency(16).max_attempts(10);
/// assert_eq!(options.max_in_flight(), 16);
/// ```
#[derive(Debug, Clone)]
pub struct SubmitterOptions {
    concurrency: usize,
    max_attempts: u32,
    first_backoff: Duration,
    max_backoff: Duration,
}

impl Default for SubmitterOptions {
    /// 8 submits in flight at most; 8 tries per item; backoff from 500 ms
    /// doubling to 60 s.
    fn default() -> Self {
        SubmitterOptions {
            concurrency: 8,
            max_attempts: 8,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
        }
    }
}

impl SubmitterOptions {
    /// At most `n` submits in flight (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Tries per item, the first included (at least 1), before its
    /// [`Error::SubmitOutcomeUnknown`] is handed back.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// The pause after the first failure; it doubles with each failure in
    /// a row.
    pub fn first_backoff(mut self, d: Duration) -> Self {
        self.first_backoff = d;
        self
    }

    /// The longest pause after failures (a 429's `Retry-After` may be
    /// longer: the server's word is kept).
    pub fn max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = d;
        self
    }

    /// The most submits in flight.
    pub fn max_in_flight(&self) -> usize {
        self.concurrency
    }
}

/// One job to submit, with a tag of yours that comes back with its outcome.
///
/// ```
/// use reka_inference::SubmitOptions;
/// use reka_inference::batch::SubmitItem;
/// use serde_json::json;
///
/// let item = SubmitItem::new(17, "nano-banana/text-to-image", json!({"prompt": "a fox"}))?
///     .options(SubmitOptions::default().idempotency_key("catalog-row-17"));
/// assert_eq!(item.idempotency_key(), Some("catalog-row-17"));
/// # Ok::<(), reka_inference::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SubmitItem<T> {
    tag: T,
    endpoint: Endpoint,
    input: Map<String, Value>,
    options: SubmitOptions,
    prepare: Option<Prepare>,
}

/// Turns an item's input into what is sent, just before each try: a
/// batch puts its local files into the input here, so that an item
/// waiting for its turn or its next try holds none of them in memory. An
/// error ends the item with that error, not counted as the service's.
pub(crate) trait PrepareInput: Send + Sync {
    fn prepare(
        &self,
        input: Map<String, Value>,
    ) -> futures::future::BoxFuture<'_, Result<Map<String, Value>>>;
}

/// A [`PrepareInput`], shared by the tries of an item.
#[derive(Clone)]
struct Prepare(std::sync::Arc<dyn PrepareInput>);

impl std::fmt::Debug for Prepare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prepare")
    }
}

impl<T> SubmitItem<T> {
    /// An item; the endpoint and input are checked now
    /// ([`Error::InvalidInput`] for a malformed endpoint or an input that
    /// is not a JSON object), so a bad one never reaches the queue.
    pub fn new(tag: T, endpoint: impl IntoEndpoint, input: impl Serialize) -> Result<Self> {
        let endpoint = endpoint.into_endpoint()?;
        let input = match serde_json::to_value(input) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(Error::InvalidInput(
                    "the input must be a JSON object".into(),
                ));
            }
            Err(e) => {
                return Err(Error::InvalidInput(format!(
                    "the input does not serialise: {e}"
                )));
            }
        };
        Ok(SubmitItem {
            tag,
            endpoint,
            input,
            options: SubmitOptions::default(),
            prepare: None,
        })
    }

    /// Makes each try send what `prepare` turns the input into.
    pub(crate) fn prepared_by(mut self, prepare: std::sync::Arc<dyn PrepareInput>) -> Self {
        self.prepare = Some(Prepare(prepare));
        self
    }

    /// Submit options (idempotency key, webhook); a deadline in them bounds
    /// each try, not the item's whole time in the queue.
    pub fn options(mut self, options: SubmitOptions) -> Self {
        self.options = options;
        self
    }

    /// The idempotency key, once chosen (given, or at the first try).
    pub fn idempotency_key(&self) -> Option<&str> {
        self.options.idempotency_key.as_deref()
    }

    /// Your tag.
    pub fn tag(&self) -> &T {
        &self.tag
    }
}

/// What became of one [`SubmitItem`].
#[derive(Debug)]
#[non_exhaustive]
pub struct SubmitOutcome<T> {
    /// The item's tag.
    pub tag: T,
    /// The key every try of it carried: submitting again with it returns
    /// the same job, also after [`Error::SubmitOutcomeUnknown`].
    pub idempotency_key: String,
    /// How many tries it took.
    pub attempts: u32,
    /// The job, or why there is none.
    pub result: Result<Job>,
}

/// Why sends are paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PauseReason {
    /// The service said nothing is left, or answered 429.
    RateLimited,
    /// The service failed (5xx, timeouts, lost connections).
    Failures,
}

type InFlight<T> = Pin<Box<dyn Future<Output = (Queued<T>, Result<Job>)> + std::marker::Send>>;

struct Queued<T> {
    item: SubmitItem<T>,
    attempts: u32,
    started: Instant,
}

/// Submits many jobs, a few at a time, paced by the service.
///
/// Each item keeps one idempotency key across all its tries, so
/// a try whose answer was lost is replayed, not duplicated. How it adapts:
///
/// - **Rate limits.** Before each send it reads what the last submit answer
///   said (`x-ratelimit-*` in any of their spellings, see
///   [`RateLimit`]): nothing is sent while nothing is left before the
///   reset, nor more than is left. A 429 pauses every send until its
///   `Retry-After` (or the reset).
/// - **Trouble.** A 429, a 5xx, a timeout or a lost connection halves how
///   many submits may be in flight (additive increase, multiplicative
///   decrease: one more per round of successes, back up to
///   [`SubmitterOptions::concurrency`]) and pauses every send for a
///   jittered backoff that doubles while failures go on; the item is tried
///   again with its key, up to [`SubmitterOptions::max_attempts`] tries.
/// - **Refusals** (400, 401, 403, 404, 409, 422) are final at once.
///
/// So against a limit of R submits a second it sends at about R a second,
/// and against a failing service it slows to one try at a time, spaced by
/// up to [`SubmitterOptions::max_backoff`].
///
/// Push items, read outcomes (in the order they finish). The stream ends
/// (`None`) whenever nothing is queued or in flight, and goes on when more
/// is pushed, like [`FuturesUnordered`].
///
/// ```no_run
/// # async fn run(client: reka_inference::Client) -> reka_inference::Result<()> {
/// use futures::StreamExt;
/// use reka_inference::batch::{SubmitItem, SubmitterOptions};
/// use serde_json::json;
///
/// let mut submitter = client.submitter(SubmitterOptions::default().concurrency(16));
/// for (row, prompt) in ["a fox", "a heron", "an owl"].into_iter().enumerate() {
///     submitter.push(SubmitItem::new(row, "nano-banana/text-to-image", json!({"prompt": prompt}))?);
/// }
/// let mut set = client.job_set().into_stream();
/// while let Some(outcome) = submitter.next().await {
///     match outcome.result {
///         Ok(job) => set.push(job),
///         Err(e) => eprintln!("row {}: {e} (key {})", outcome.tag, outcome.idempotency_key),
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Submitter<T> {
    http: Http,
    options: SubmitterOptions,
    queue: VecDeque<Queued<T>>,
    in_flight: FuturesUnordered<InFlight<T>>,
    /// Submits allowed in flight now: halved on trouble, grown on success.
    limit: f64,
    /// Sends started before this do not change `limit` again (one halving
    /// per bout of trouble, not one per submit that was in it).
    last_decrease: Option<Instant>,
    failures_in_a_row: u32,
    paused_until: Option<(Instant, PauseReason)>,
    /// The part of a reset to wait when nothing is left (learnt: 1 to 1/64).
    reset_discount: f64,
    /// The send in flight was made when a wait for the reset ended.
    after_reset_wait: bool,
    sleep: Option<Pin<Box<Sleep>>>,
    waker: Option<Waker>,
}

/// The shortest part of a reset waited for when nothing is left.
const MIN_RESET_DISCOUNT: f64 = 1.0 / 64.0;

/// Submits in flight at first, before the service has said anything.
const SLOW_START: f64 = 2.0;

// Nothing of `T` is ever pinned: it only sits in queues and boxed futures.
impl<T> Unpin for Submitter<T> {}

impl<T> std::fmt::Debug for Submitter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submitter")
            .field("queued", &self.queue.len())
            .field("in_flight", &self.in_flight.len())
            .field("limit", &self.limit)
            .field("paused_until", &self.paused_until)
            .finish_non_exhaustive()
    }
}

impl<T: std::marker::Send + 'static> Submitter<T> {
    pub(crate) fn new(http: Http, options: SubmitterOptions) -> Submitter<T> {
        // Slow start: a service's limits are unknown until it answers, so
        // the first round is small and each success adds one (doubling per
        // round) up to the concurrency.
        let limit = (options.concurrency as f64).min(SLOW_START);
        Submitter {
            http,
            options,
            queue: VecDeque::new(),
            in_flight: FuturesUnordered::new(),
            limit,
            last_decrease: None,
            failures_in_a_row: 0,
            paused_until: None,
            reset_discount: 1.0,
            after_reset_wait: false,
            sleep: None,
            waker: None,
        }
    }

    /// Queues an item; it is sent when there is room.
    pub fn push(&mut self, item: SubmitItem<T>) {
        self.queue.push_back(Queued {
            item,
            attempts: 0,
            started: Instant::now(),
        });
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Takes back the items not sent yet (waiting for room, or for another
    /// try): nothing more is sent for them.
    pub fn take_queued(&mut self) -> Vec<SubmitItem<T>> {
        self.queue.drain(..).map(|q| q.item).collect()
    }

    /// Items waiting for room (not sent yet, or waiting to be tried again).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Submits in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Nothing queued and nothing in flight.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.in_flight.is_empty()
    }

    /// Whether one more item would be sent at once: the items queued and
    /// in flight leave room under the concurrency and under what the
    /// service said is left, and sends are not paused. A caller that
    /// produces items lazily (from a file) pushes while this holds; items
    /// pushed are sent the next time the stream is polled.
    pub fn has_room(&self) -> bool {
        let now = Instant::now();
        let queued = self.queue.len();
        queued + self.in_flight.len() < self.allowed()
            && self.pause(now).is_none()
            && self.within_remaining(now, queued)
    }

    /// Until when sends are paused, and why.
    pub fn paused_until(&self) -> Option<(Instant, PauseReason)> {
        self.pause(Instant::now())
    }

    /// Submits allowed in flight now (between 1 and the concurrency).
    pub fn allowed(&self) -> usize {
        (self.limit.floor() as usize).clamp(1, self.options.concurrency)
    }

    fn rate_limit(&self) -> Option<RateLimit> {
        self.http.transport().rate_limits().get("submit")
    }

    /// The pause in force at `now`: ours (after failures or a 429), or the
    /// service's (nothing left before its reset).
    fn pause(&self, now: Instant) -> Option<(Instant, PauseReason)> {
        let ours = self.paused_until.filter(|(until, _)| *until > now);
        let theirs = self
            .rate_limit()
            .and_then(|r| match r.retry_at {
                Some(at) => Some(at),
                None if r.remaining == Some(0) => self.reset_wait_end(&r),
                None => None,
            })
            .filter(|until| *until > now)
            .map(|until| (until, PauseReason::RateLimited));
        match (ours, theirs) {
            (Some(a), Some(b)) => Some(if a.0 >= b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
    }

    /// Whether the last rate-limit answer leaves room for one more send,
    /// `queued` more counted as sent. Every send in flight counts against
    /// what it said is left, since the answer may not have counted it:
    /// over-counting costs a moment, under-counting a 429. Counted out, the
    /// answers in flight tell more; with none in flight, the reset (once
    /// passed) or, with no reset said, one try does.
    fn within_remaining(&self, now: Instant, queued: usize) -> bool {
        let Some(seen) = self.rate_limit() else {
            return true;
        };
        let Some(left) = seen.remaining else {
            return true;
        };
        let counted = (self.in_flight.len() + queued) as u64;
        if counted < left {
            return true;
        }
        counted == 0 && self.reset_wait_end(&seen).is_none_or(|end| now >= end)
    }

    /// When a wait for `seen`'s reset ends: the reset, or a fraction of it
    /// learnt from earlier waits (see [`Self::learn_reset`]).
    fn reset_wait_end(&self, seen: &RateLimit) -> Option<Instant> {
        let reset = seen.reset_at?;
        let wait = reset.saturating_duration_since(seen.seen_at);
        Some(seen.seen_at + wait.mul_f64(self.reset_discount))
    }

    /// After a send that followed a wait for a reset said in whole
    /// seconds: a bucket found full again means the wait was longer than
    /// needed (a service that
    /// rounds its reset up to whole seconds says "1" of a bucket full in
    /// 0.2 s), so the next wait is half as long; a 429 doubles it back (at
    /// most the whole reset). Against a window that really ends at its
    /// reset, that costs one refused try per window.
    fn learn_reset(&mut self, refused: bool) {
        if !std::mem::take(&mut self.after_reset_wait) {
            return;
        }
        if refused {
            self.reset_discount = (self.reset_discount * 2.0).min(1.0);
            return;
        }
        // Only a reset rounded to whole seconds hides the truth; one to the
        // millisecond is believed.
        let found_full = self
            .rate_limit()
            .filter(RateLimit::reset_is_whole_seconds)
            .and_then(|r| Some(r.remaining? + 1 >= r.limit?))
            .unwrap_or(false);
        if found_full {
            self.reset_discount = (self.reset_discount / 2.0).max(MIN_RESET_DISCOUNT);
        }
    }

    fn start_sends(&mut self, now: Instant) {
        while self.in_flight.len() < self.allowed() && self.pause(now).is_none() {
            if self.queue.is_empty() || !self.within_remaining(now, 0) {
                return;
            }
            // A try made because a wait for the reset ended teaches how
            // long such waits should be.
            if self.in_flight.is_empty()
                && self.rate_limit().is_some_and(|r| {
                    r.retry_at.is_none() && r.remaining == Some(0) && r.reset_at.is_some()
                })
            {
                self.after_reset_wait = true;
            }
            let Some(mut queued) = self.queue.pop_front() else {
                return;
            };
            queued.attempts += 1;
            queued.started = now;
            let http = self.http.clone();
            let mut options = queued.item.options.clone();
            // One try per send: retries are paced here, for every item.
            options.retry = Some(RetryPolicy::none());
            // The same key on every try: chosen once, kept in the item.
            let key = options.key().to_owned();
            queued.item.options.idempotency_key = Some(key);
            let endpoint = queued.item.endpoint.clone();
            let input = queued.item.input.clone();
            let prepare = queued.item.prepare.clone();
            self.in_flight.push(Box::pin(async move {
                let input = match prepare {
                    Some(Prepare(p)) => p.prepare(input).await,
                    None => Ok(input),
                };
                let result = match input {
                    Ok(input) => submit_object(&http, endpoint, input, options).await,
                    Err(e) => Err(e),
                };
                (queued, result)
            }));
        }
    }

    fn backoff(&self) -> Duration {
        let exp = self.failures_in_a_row.saturating_sub(1).min(20);
        let full = self
            .options
            .first_backoff
            .checked_mul(1u32 << exp)
            .unwrap_or(self.options.max_backoff)
            .min(self.options.max_backoff);
        // Equal jitter: half fixed, half random.
        let half = full / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    fn pause_for(&mut self, now: Instant, wait: Duration, reason: PauseReason) {
        if let Some(until) = now.checked_add(wait)
            && self.paused_until.is_none_or(|(u, _)| u < until)
        {
            self.paused_until = Some((until, reason));
        }
    }

    /// Trouble with a send started at `started`: fewer in flight (once per
    /// bout), a pause, and the item queued again unless out of tries.
    fn trouble(&mut self, now: Instant, started: Instant, wait: Duration, reason: PauseReason) {
        if self.last_decrease.is_none_or(|at| started >= at) {
            self.limit = (self.limit / 2.0).max(1.0);
            self.last_decrease = Some(now);
        }
        self.pause_for(now, wait, reason);
    }

    /// Handles one finished send: `Some` outcome when the item is done.
    fn finished(&mut self, queued: Queued<T>, result: Result<Job>) -> Option<SubmitOutcome<T>> {
        let now = Instant::now();
        self.learn_reset(matches!(result, Err(Error::RateLimited { .. })));
        let again = match &result {
            Ok(_) => {
                self.failures_in_a_row = 0;
                if self.last_decrease.is_none_or(|at| queued.started >= at) {
                    self.limit =
                        (self.limit + 1.0 / self.limit).min(self.options.concurrency as f64);
                }
                false
            }
            Err(Error::RateLimited { retry_after, .. }) => {
                self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
                let told = self
                    .rate_limit()
                    .and_then(|r| r.not_before())
                    .map(|at| at.saturating_duration_since(now));
                let wait = retry_after.or(told).unwrap_or_else(|| self.backoff());
                self.trouble(now, queued.started, wait, PauseReason::RateLimited);
                // A 429 created nothing: it does not use up a try.
                return self.requeue(queued, result, false);
            }
            Err(Error::SubmitOutcomeUnknown { .. }) => {
                self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
                let wait = self.backoff();
                self.trouble(now, queued.started, wait, PauseReason::Failures);
                true
            }
            Err(_) => false,
        };
        if again {
            return self.requeue(queued, result, true);
        }
        Some(outcome(queued, result))
    }

    /// Queues an item again at the front, unless its tries are used up.
    fn requeue(
        &mut self,
        queued: Queued<T>,
        result: Result<Job>,
        counts: bool,
    ) -> Option<SubmitOutcome<T>> {
        let mut queued = queued;
        if !counts {
            queued.attempts = queued.attempts.saturating_sub(1);
        }
        if queued.attempts >= self.options.max_attempts {
            return Some(outcome(queued, result));
        }
        tracing::debug!(attempts = queued.attempts, error = ?result.as_ref().err(), "submit to be tried again");
        self.queue.push_front(queued);
        None
    }
}

impl<T: std::marker::Send + 'static> Extend<SubmitItem<T>> for Submitter<T> {
    fn extend<I: IntoIterator<Item = SubmitItem<T>>>(&mut self, items: I) {
        for item in items {
            self.push(item);
        }
    }
}

fn outcome<T>(queued: Queued<T>, result: Result<Job>) -> SubmitOutcome<T> {
    SubmitOutcome {
        idempotency_key: queued
            .item
            .options
            .idempotency_key
            .clone()
            .unwrap_or_default(),
        tag: queued.item.tag,
        attempts: queued.attempts,
        result,
    }
}

impl<T: std::marker::Send + 'static> Stream for Submitter<T> {
    type Item = SubmitOutcome<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            let now = Instant::now();
            this.start_sends(now);
            if let Poll::Ready(Some((queued, result))) = this.in_flight.poll_next_unpin(cx) {
                if let Some(done) = this.finished(queued, result) {
                    return Poll::Ready(Some(done));
                }
                continue;
            }
            if this.is_idle() {
                return Poll::Ready(None);
            }
            // Waiting: for a send to finish (its waker is registered), for a
            // push, or for a pause to end.
            this.waker = Some(cx.waker().clone());
            if !this.queue.is_empty() {
                // Paused: until the pause ends. Counted out with sends in
                // flight: their answers wake us (their wakers are set).
                let wake = this.pause(now).map(|(until, _)| until);
                if let Some(until) = wake {
                    let sleep = this
                        .sleep
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until)));
                    if sleep.deadline() != until {
                        sleep.as_mut().reset(until);
                    }
                    if sleep.as_mut().poll(cx).is_ready() {
                        continue;
                    }
                }
            }
            return Poll::Pending;
        }
    }
}

#[cfg(test)]
mod tests;
