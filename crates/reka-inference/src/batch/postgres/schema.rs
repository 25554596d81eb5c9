//! The batch tables' layouts and the migrations between them: versioned,
//! each applied once in its own transaction, under an advisory lock so
//! that workers starting at once do not race.

use super::Inner;
use crate::error::{Error, Result};

/// The key of the advisory lock migrations run under (any constant that
/// other applications of the database are unlikely to use).
const MIGRATION_LOCK: i64 = 0x7265_6b61_6261_7463; // "rekabatc"

/// The layouts, in order: each is applied once, in one transaction.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    "CREATE TABLE reka_batches (
         name text PRIMARY KEY,
         budget_usd double precision,
         spent_usd double precision NOT NULL DEFAULT 0,
         reserved_usd double precision NOT NULL DEFAULT 0,
         created_at timestamptz NOT NULL DEFAULT now()
     );
     CREATE TABLE reka_batch_lines (
         batch text NOT NULL REFERENCES reka_batches (name) ON DELETE CASCADE,
         key text NOT NULL,
         seq bigint NOT NULL,
         fingerprint text NOT NULL,
         item jsonb NOT NULL,
         state text NOT NULL DEFAULT 'new',
         owner text,
         lease_until timestamptz,
         attempt bigint NOT NULL DEFAULT 0,
         reserved_usd double precision NOT NULL DEFAULT 0,
         entry jsonb,
         updated_at timestamptz NOT NULL DEFAULT now(),
         PRIMARY KEY (batch, key)
     );
     CREATE INDEX reka_batch_lines_open ON reka_batch_lines (batch, seq)
         WHERE state NOT IN ('done', 'reported');
     CREATE TABLE reka_batch_workers (
         id text PRIMARY KEY,
         batch text NOT NULL,
         host text NOT NULL,
         started_at timestamptz NOT NULL DEFAULT now(),
         heartbeat_at timestamptz NOT NULL DEFAULT now()
     );",
)];

/// The states in which a line needs no more work from anyone.
pub(super) const TERMINAL: &str = "('done', 'reported')";

impl Inner {
    /// Creates the batch tables, or brings them to the latest layout, once
    /// whoever else is migrating at the same time has finished.
    pub(super) async fn migrate(&self) -> Result<()> {
        self.call("set up the batch tables", |mut c| async move {
            let tx = c.transaction().await?;
            // One migrator at a time; the lock ends with the transaction.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS reka_batch_schema (
                     version integer PRIMARY KEY,
                     applied_at timestamptz NOT NULL DEFAULT now()
                 )",
            )
            .await?;
            let current: Option<i32> = tx
                .query_one("SELECT max(version) FROM reka_batch_schema", &[])
                .await?
                .get(0);
            let current = current.unwrap_or(0);
            let latest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
            if current > latest {
                return Ok(Some(current));
            }
            for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
                tx.batch_execute(sql).await?;
                tx.execute(
                    "INSERT INTO reka_batch_schema (version) VALUES ($1)",
                    &[version],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(None)
        })
        .await?
        .map_or(Ok(()), |newer| {
            Err(Error::Journal(format!(
                "the database {} holds batch tables of layout {newer}, newer than this \
                 version reads ({}): upgrade reka-inference",
                self.target,
                MIGRATIONS.last().map_or(0, |(v, _)| *v)
            )))
        })
    }
}
