//! A [`Journal`] in PostgreSQL, shared by workers on many machines: one
//! named batch whose lines the workers claim in small groups, hold under
//! a lease renewed by a heartbeat, and write under a fencing token, with
//! one budget for all of them.
//!
//! # What it guarantees
//!
//! - **One holder per line at a time.** A worker claims lines with
//!   `SELECT … FOR UPDATE SKIP LOCKED` (no two claims take the same line)
//!   among those no one holds or whose holder's lease lapsed, and each
//!   claim bumps the line's `attempt`. Every write of a line is
//!   `UPDATE … WHERE batch = $1 AND key = $2 AND attempt = $mine`: a
//!   worker that lost its line (killed, cut off, paused past its lease)
//!   and comes back finds zero rows, gets [`Error::LeaseLost`] and drops
//!   the line; it never overwrites the new holder's state.
//! - **Exactly one job per line**, as far as the service keeps
//!   idempotency keys: a line's key is written (with its budget
//!   reservation, in one statement) before its submit, and whoever takes
//!   the line over replays the submit with that key.
//! - **One budget.** The batch's row holds what was spent and what is
//!   reserved for jobs in flight; a submit reserves its job's estimate
//!   with `UPDATE … WHERE spent + reserved + estimate <= budget` under the
//!   row's lock, and the reservation is settled to the job's reported
//!   price when its entry is saved finished. No combination of workers
//!   passes the budget as far as the estimates hold (a job that costs more
//!   than its estimate can, as with one machine).
//! - **Migrations** are versioned (`reka_batch_schema`), idempotent, and
//!   run by the tool itself under `pg_advisory_xact_lock`, so workers that
//!   start at once do not race; a database of a newer layout is refused.
//!
//! # What it does not
//!
//! - **No TLS yet.** Connections are plaintext (`NoTls`): fine on
//!   loopback, a private network or a socket. A URL asking for TLS
//!   (`sslmode=require`) is refused with [`Error::Config`] rather than
//!   connected without it; `sslmode=prefer` (the default) connects
//!   without TLS.
//! - A worker's own summary counts the lines it handled; the batch as a
//!   whole is in [`PostgresJournal::status`] and [`Journal::load`].
//! - `rerun_changed` has no effect: the batch holds each line's input as
//!   the first worker put it, and a worker whose input differs is told so
//!   ([`BatchEvent::Changed`](super::BatchEvent::Changed)) and runs the
//!   batch's.
//! - Time is the database's (`now()`): leases do not depend on the
//!   workers' clocks agreeing, but a worker paused longer than its lease
//!   loses its lines (and learns it at its next write).
//!
//! # The driver
//!
//! `tokio-postgres` (the maintained async driver of the rust-postgres
//! project) with a `deadpool-postgres` pool: both need Rust 1.85, within
//! the workspace's 1.89, and add a small, pure-Rust dependency tree.
//! `sqlx` was the alternative: its current releases need a newer Rust
//! than the workspace declares, and its macros and drivers weigh more to
//! compile than the handful of statements here need.
//!
//! # Cost
//!
//! Three statements per line, one round trip each: the key with its
//! reservation, the request id, and the report with the settlement (a
//! run of a shared journal does not write the intermediate finished and
//! done steps: a line taken over before its report is followed and saved
//! again from its job, which the service keeps), plus one claim per group
//! of lines. Statements are prepared once per connection.
//! [`PostgresJournal::stats`] counts the statements sent.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_postgres::NoTls;
use tokio_postgres::config::SslMode;

use super::journal::{Claim, ClaimedLine, EntryState, Journal, JournalEntry};
use super::{BatchItem, ItemFile};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};

mod failure;
mod lines;
mod schema;

use failure::Failure;
use schema::TERMINAL;

/// How a [`PostgresJournal`] connects and holds its lines.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    lease: Duration,
    retry_for: Duration,
    statement_timeout: Duration,
    pool_size: usize,
}

impl Default for PostgresOptions {
    /// A 30 s lease (renewed every 10 s), database calls retried for 60 s
    /// when the connection fails, 30 s for one statement, 4 connections.
    fn default() -> Self {
        PostgresOptions {
            lease: Duration::from_secs(30),
            retry_for: Duration::from_secs(60),
            statement_timeout: Duration::from_secs(30),
            pool_size: 4,
        }
    }
}

impl PostgresOptions {
    /// How long a worker holds its lines without renewing them (at least
    /// 100 ms; renewed every third of it). A worker that stops (killed,
    /// cut off) loses its lines this long after its last renewal.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(100));
        self
    }

    /// How long a call keeps trying when the database cannot be reached
    /// (connection refused, reset, timed out); then the batch stops with
    /// [`Error::Journal`]. Errors of SQL are not retried.
    pub fn retry_for(mut self, d: Duration) -> Self {
        self.retry_for = d;
        self
    }

    /// The longest one statement (with getting a connection) may take.
    pub fn statement_timeout(mut self, d: Duration) -> Self {
        self.statement_timeout = d.max(Duration::from_millis(10));
        self
    }

    /// Connections in the pool.
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n.max(1);
        self
    }
}

/// What a [`PostgresJournal`] sent to its database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalStats {
    /// Calls to the database, retries counted: each one statement and
    /// one round trip (setting up the tables and `status`, a few).
    pub round_trips: u64,
    /// Lines this worker claimed.
    pub claimed: u64,
}

/// Where a shared batch stands, from [`PostgresJournal::status`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BatchStatus {
    /// The batch's name.
    pub name: String,
    /// Lines by state: `new` (not started), `submitting`, `submitted`,
    /// `finished`, `done`, `reported`.
    pub lines: BTreeMap<String, u64>,
    /// Lines held by a worker whose lease has not lapsed.
    pub held: u64,
    /// Workers that renewed their lease within the last two leases.
    pub workers_alive: u64,
    /// What the jobs cost, as reported (or estimated where they said not).
    pub spent_usd: f64,
    /// Estimates reserved for jobs in flight.
    pub reserved_usd: f64,
    /// The budget the last submit was checked against.
    pub budget_usd: Option<f64>,
    /// Lines that reached done in the last minute.
    pub done_last_minute: u64,
}

/// A line this worker holds: its fencing token and its reservation.
#[derive(Debug, Clone, Copy)]
struct Hold {
    attempt: i64,
    reserved_usd: f64,
    /// Its job's price is counted in the batch's spend (its entry was
    /// saved ended, by this worker or an earlier holder).
    settled: bool,
    terminal: bool,
}

/// A line's item as the batch keeps it.
#[derive(Serialize, Deserialize)]
struct StoredItem {
    endpoint: String,
    input: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    files: Vec<ItemFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<String>,
}

struct Inner {
    pool: Pool,
    batch: String,
    worker: String,
    target: String,
    options: PostgresOptions,
    holds: Mutex<HashMap<String, Hold>>,
    registered: AtomicBool,
    round_trips: AtomicU64,
    claimed: AtomicU64,
}

/// A [`Journal`] in PostgreSQL that workers on many machines share.
///
/// What it guarantees:
///
/// - **One holder per line at a time.** Workers claim lines in small
///   groups with `SELECT … FOR UPDATE SKIP LOCKED` among those no one
///   holds or whose holder's lease lapsed; each claim bumps the line's
///   `attempt`, and every write is `UPDATE … WHERE batch = $1 AND key = $2
///   AND attempt = $mine`. A worker that lost its line (killed, cut off,
///   paused past its lease) and writes again gets [`Error::LeaseLost`] and
///   drops the line: it never overwrites the new holder's state.
/// - **One job per line** (as long as the service keeps idempotency
///   keys): the key is written, with the budget reservation, before the
///   submit, and whoever takes a line over replays its submit with it.
/// - **One budget.** The batch's row holds the spend and the reservations
///   of jobs in flight; a submit reserves its job's estimate under the
///   row's lock (`spent + reserved + estimate <= budget`), settled to the
///   reported price when the job's entry is saved finished.
/// - **Migrations** (`reka_batch_schema`) are versioned, idempotent and
///   run by the tool itself under `pg_advisory_xact_lock`; a database of a
///   newer layout is refused.
///
/// What it does not: TLS (connections are plaintext, `NoTls`; a URL with
/// `sslmode=require` is refused with [`Error::Config`], and the default
/// `sslmode=prefer` connects without it), and `rerun_changed` (the batch
/// runs each line's input as the first worker added it). Leases are on
/// the database's clock (`now()`). A worker's own summary counts the lines
/// it handled; [`status`](PostgresJournal::status) and
/// [`load`](Journal::load) show the whole batch. One journal serves one
/// run: the run gives its lines back at its end.
///
/// ```no_run
/// use reka_inference::batch::{BatchItem, BatchOptions, PostgresJournal, PostgresOptions};
/// use serde_json::json;
///
/// # async fn demo(client: reka_inference::Client) -> reka_inference::Result<()> {
/// // Every worker runs this with the same items and the same batch name.
/// let journal = PostgresJournal::connect(
///     "postgres://batch@db.internal/reka",
///     "catalog-2026-12",
///     PostgresOptions::default(),
/// )
/// .await?;
/// let items = (0..1000)
///     .map(|i| BatchItem::new(format!("shot-{i}"), "nano-banana/text-to-image", json!({"prompt": i})))
///     .collect::<reka_inference::Result<Vec<_>>>()?;
/// let summary = client
///     .batch(journal)
///     .options(BatchOptions::default().budget_usd(40.0).estimated_price_usd(0.04))
///     .run(futures::stream::iter(items), |_| Ok(()))
///     .await?;
/// println!("this worker: {} succeeded", summary.succeeded);
/// # Ok(()) }
/// ```
pub struct PostgresJournal {
    inner: Arc<Inner>,
    heartbeat: JoinHandle<()>,
}

impl std::fmt::Debug for PostgresJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresJournal")
            .field("database", &self.inner.target)
            .field("batch", &self.inner.batch)
            .field("worker", &self.inner.worker)
            .finish_non_exhaustive()
    }
}

impl Drop for PostgresJournal {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// `url` with its password (if any) replaced by `***`, to show.
///
/// ```
/// use reka_inference::batch::redact_database_url;
///
/// assert_eq!(
///     redact_database_url("postgres://batch:s3cret@db:5432/reka"),
///     "postgres://batch:***@db:5432/reka"
/// );
/// assert_eq!(redact_database_url("host=db password=s3cret"), "host=db password=***");
/// ```
pub fn redact_database_url(url: &str) -> String {
    if let Ok(mut parsed) = url::Url::parse(url) {
        if parsed.password().is_some() {
            // Only fails for URLs that cannot have a password.
            let _ = parsed.set_password(Some("***"));
        }
        let mut query = Vec::new();
        let mut redacted = false;
        for (k, v) in parsed.query_pairs() {
            if k == "password" {
                redacted = true;
                query.push((k.into_owned(), "***".to_owned()));
            } else {
                query.push((k.into_owned(), v.into_owned()));
            }
        }
        if redacted {
            parsed.query_pairs_mut().clear().extend_pairs(query);
        }
        return parsed.to_string().replace("%2A%2A%2A", "***");
    }
    // The key=value form.
    url.split_whitespace()
        .map(|part| match part.split_once('=') {
            Some(("password", _)) => "password=***".to_owned(),
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl PostgresJournal {
    /// Connects to the database at `url` (`postgres://user:password@host/db`,
    /// or the `key=value` form), creates or migrates its tables, and
    /// joins the batch `batch` (created by the first worker to add items).
    /// Starts the heartbeat that renews this worker's leases: call it
    /// within a Tokio runtime.
    ///
    /// A URL that asks for TLS (`sslmode=require`) is refused
    /// ([`Error::Config`]): this build connects without TLS. Errors never
    /// show the password.
    pub async fn connect(
        url: &str,
        batch: &str,
        options: PostgresOptions,
    ) -> Result<PostgresJournal> {
        let target = redact_database_url(url);
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| Error::Config(format!("database URL {target}: {e}")))?;
        if config.get_ssl_mode() == SslMode::Require {
            return Err(Error::Config(format!(
                "database URL {target} requires TLS (sslmode=require), which the batch \
                 journal does not do yet: connect over a private network, loopback or a \
                 socket with sslmode=disable"
            )));
        }
        if batch.is_empty() || batch.len() > 200 {
            return Err(Error::InvalidInput(
                "a batch name is 1 to 200 characters".into(),
            ));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.statement_timeout);
        }
        config.keepalives(true);
        config.application_name("reka-inference batch");
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.statement_timeout))
            .create_timeout(Some(options.statement_timeout))
            .recycle_timeout(Some(options.statement_timeout))
            .build()
            .map_err(|e| Error::Config(format!("database {target}: {e}")))?;
        let inner = Arc::new(Inner {
            pool,
            batch: batch.to_owned(),
            worker: uuid::Uuid::new_v4().to_string(),
            target,
            options,
            holds: Mutex::new(HashMap::new()),
            registered: AtomicBool::new(false),
            round_trips: AtomicU64::new(0),
            claimed: AtomicU64::new(0),
        });
        inner.migrate().await?;
        let heartbeat = tokio::spawn(heartbeat(Arc::downgrade(&inner)));
        Ok(PostgresJournal { inner, heartbeat })
    }

    /// The batch's name.
    pub fn batch(&self) -> &str {
        &self.inner.batch
    }

    /// This worker's id (as `batch status` and the lines' `owner` show it).
    pub fn worker_id(&self) -> &str {
        &self.inner.worker
    }

    /// What this journal sent to the database so far.
    pub fn stats(&self) -> JournalStats {
        JournalStats {
            round_trips: self.inner.round_trips.load(Ordering::Relaxed),
            claimed: self.inner.claimed.load(Ordering::Relaxed),
        }
    }

    /// Where the whole batch stands: lines by state, workers alive,
    /// spend. [`Error::InvalidInput`] when the database has no batch of
    /// this name.
    pub async fn status(&self) -> Result<BatchStatus> {
        let inner = &self.inner;
        let batch = inner.batch.clone();
        let lease_ms = lease_ms(&inner.options);
        let (row, states) = inner
            .call("read the batch's status", move |c| {
                let batch = batch.clone();
                async move {
                    let row = c
                        .query_opt(
                            "SELECT budget_usd, spent_usd, reserved_usd,
                                 (SELECT count(*) FROM reka_batch_workers w
                                   WHERE w.batch = b.name
                                     AND w.heartbeat_at > now() - 2 * $2::float8 * interval '1 millisecond'),
                                 (SELECT count(*) FROM reka_batch_lines l
                                   WHERE l.batch = b.name AND l.owner IS NOT NULL
                                     AND l.lease_until > now()),
                                 (SELECT count(*) FROM reka_batch_lines l
                                   WHERE l.batch = b.name AND l.state IN ('done', 'reported')
                                     AND l.updated_at > now() - interval '1 minute')
                             FROM reka_batches b WHERE b.name = $1",
                            &[&batch, &(lease_ms as f64)],
                        )
                        .await?;
                    let states = c
                        .query(
                            "SELECT state, count(*) FROM reka_batch_lines
                             WHERE batch = $1 GROUP BY state",
                            &[&batch],
                        )
                        .await?;
                    Ok((row, states))
                }
            })
            .await?;
        let Some(row) = row else {
            return Err(Error::InvalidInput(format!(
                "the database has no batch named {:?}",
                inner.batch
            )));
        };
        let count = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
        Ok(BatchStatus {
            name: inner.batch.clone(),
            lines: states
                .iter()
                .map(|r| {
                    (
                        r.get::<_, String>(0),
                        u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
                    )
                })
                .collect(),
            held: count(4),
            workers_alive: count(3),
            spent_usd: row.get(1),
            reserved_usd: row.get(2),
            budget_usd: row.get(0),
            done_last_minute: count(5),
        })
    }

    /// The database's size of the batch's tables, in bytes
    /// (`pg_total_relation_size`, indexes included), for all batches.
    pub async fn table_bytes(&self) -> Result<i64> {
        self.inner
            .call("read the tables' size", |c| async move {
                let row = c
                    .query_one(
                        "SELECT pg_total_relation_size('reka_batch_lines')
                              + pg_total_relation_size('reka_batches')
                              + pg_total_relation_size('reka_batch_workers')",
                        &[],
                    )
                    .await?;
                Ok(row.get::<_, i64>(0))
            })
            .await
    }
}

fn lease_ms(options: &PostgresOptions) -> i64 {
    i64::try_from(options.lease.as_millis()).unwrap_or(i64::MAX)
}

/// Renews this worker's leases every third of a lease, until the journal
/// is dropped. A renewal that fails is tried again at the next beat: the
/// lease is three beats long.
async fn heartbeat(inner: std::sync::Weak<Inner>) {
    let every = match inner.upgrade() {
        Some(i) => i.options.lease / 3,
        None => return,
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if let Err(e) = inner.renew().await {
            tracing::warn!(batch = %inner.batch, "could not renew the batch's leases: {e}");
        }
    }
}

impl Inner {
    /// Runs `op` on a pooled connection, again (with backoff) while the
    /// connection fails, for up to `retry_for`. Each try counts a round
    /// trip.
    async fn call<T, F, Fut>(&self, what: &str, op: F) -> Result<T>
    where
        F: Fn(Object) -> Fut,
        Fut: Future<Output = std::result::Result<T, Failure>>,
    {
        let give_up = Instant::now().checked_add(self.options.retry_for);
        let mut backoff = Duration::from_millis(50);
        loop {
            self.round_trips.fetch_add(1, Ordering::Relaxed);
            let attempt = async {
                let client = self.pool.get().await.map_err(Failure::Pool)?;
                op(client).await
            };
            let failure = match tokio::time::timeout(self.options.statement_timeout, attempt).await
            {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(failure)) => failure,
                Err(_) => Failure::Timeout,
            };
            let retry_at = Instant::now().checked_add(backoff);
            let retry = failure.transient()
                && matches!((retry_at, give_up), (Some(at), Some(end)) if at < end);
            if !retry {
                return Err(Error::Journal(format!(
                    "cannot {what} (database {}): {failure}",
                    self.target
                )));
            }
            tracing::debug!(database = %self.target, "cannot {what}, trying again: {failure}");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    fn hold(&self, key: &str) -> Option<Hold> {
        self.lock().get(key).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Hold>> {
        // Nothing panics while holding it.
        self.holds.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn renew(&self) -> Result<()> {
        if !self.registered.load(Ordering::Relaxed) {
            return Ok(());
        }
        let keys: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, h)| !h.terminal)
            .map(|(k, _)| k.clone())
            .collect();
        let (batch, worker, lease) = (
            self.batch.clone(),
            self.worker.clone(),
            lease_ms(&self.options),
        );
        self.call("renew the leases", move |c| {
            let (batch, worker, keys) = (batch.clone(), worker.clone(), keys.clone());
            async move {
                c.execute(
                    &format!(
                        "WITH w AS (UPDATE reka_batch_workers SET heartbeat_at = now() WHERE id = $2)
                         UPDATE reka_batch_lines
                            SET lease_until = now() + $3::float8 * interval '1 millisecond'
                          WHERE batch = $1 AND owner = $2 AND key = ANY($4)
                            AND state NOT IN {TERMINAL}"
                    ),
                    &[&batch, &worker, &(lease as f64), &keys],
                )
                .await?;
                Ok(())
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests;
