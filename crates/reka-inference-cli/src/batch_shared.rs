//! `batch --journal postgres://…`: one batch shared by workers on many
//! machines, its journal in PostgreSQL (the SDK's `PostgresJournal`), and
//! the `batch export` and `batch status` subcommands that read it. The
//! database URL is never shown with its password.

use std::io::Write;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Subcommand};
use reka_inference::batch::{
    BatchItem, Claim, FileDigest, Journal, JournalEntry, PostgresJournal, PostgresOptions,
    SqliteJournal, redact_database_url,
};
use serde_json::json;

use crate::batch_results::ResultLine;
use crate::commands::Ctx;
use crate::exit::{ExitClass, Failure};

/// The environment variable that gives `--journal`.
pub const DATABASE_URL_ENV: &str = "REKA_BATCH_DATABASE_URL";

/// A database URL: shown (Debug, messages) without its password.
#[derive(Clone)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL itself, to connect with; never to print.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", redact_database_url(&self.0))
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_database_url(&self.0))
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(DatabaseUrl(s.to_owned()))
        } else {
            Err("a PostgreSQL URL, postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE".to_owned())
        }
    }
}

/// `batch export` and `batch status`.
#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Write a shared batch's results to stdout, one JSON line per
    /// finished line (as in results.jsonl, with `line` null: the database
    /// knows lines by id).
    Export(SharedBatchArgs),
    /// Where a shared batch stands: lines by state, workers alive, spend,
    /// lines done in the last minute.
    Status(SharedBatchArgs),
}

/// Which shared batch.
#[derive(Debug, Args)]
pub struct SharedBatchArgs {
    /// The batch's database (or REKA_BATCH_DATABASE_URL).
    #[arg(long, value_name = "URL", env = DATABASE_URL_ENV, hide_env_values = true)]
    pub journal: DatabaseUrl,

    /// The batch's name (as `batch --name`, or the name it printed).
    #[arg(long, value_name = "NAME")]
    pub name: String,
}

/// A run's journal: SQLite in DIR, or a shared batch in PostgreSQL.
pub enum RunJournal {
    /// DIR/journal.sqlite.
    Sqlite(SqliteJournal),
    /// A batch in PostgreSQL that other workers share.
    Postgres(PostgresJournal),
}

impl Journal for RunJournal {
    async fn load(&self) -> reka_inference::Result<Vec<JournalEntry>> {
        match self {
            RunJournal::Sqlite(j) => j.load().await,
            RunJournal::Postgres(j) => j.load().await,
        }
    }

    async fn save(&self, entry: &JournalEntry) -> reka_inference::Result<()> {
        match self {
            RunJournal::Sqlite(j) => j.save(entry).await,
            RunJournal::Postgres(j) => j.save(entry).await,
        }
    }

    async fn load_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> reka_inference::Result<Vec<JournalEntry>> {
        match self {
            RunJournal::Sqlite(j) => j.load_page(after, limit).await,
            RunJournal::Postgres(j) => j.load_page(after, limit).await,
        }
    }

    fn is_shared(&self) -> bool {
        matches!(self, RunJournal::Postgres(_))
    }

    async fn add_items(
        &self,
        items: &[BatchItem],
        first_seq: u64,
    ) -> reka_inference::Result<Vec<String>> {
        match self {
            RunJournal::Sqlite(j) => j.add_items(items, first_seq).await,
            RunJournal::Postgres(j) => j.add_items(items, first_seq).await,
        }
    }

    async fn claim(&self, max: usize) -> reka_inference::Result<Claim> {
        match self {
            RunJournal::Sqlite(j) => j.claim(max).await,
            RunJournal::Postgres(j) => j.claim(max).await,
        }
    }

    async fn save_reserving(
        &self,
        entry: &JournalEntry,
        estimate_usd: f64,
        budget_usd: Option<f64>,
    ) -> reka_inference::Result<bool> {
        match self {
            RunJournal::Sqlite(j) => j.save_reserving(entry, estimate_usd, budget_usd).await,
            RunJournal::Postgres(j) => j.save_reserving(entry, estimate_usd, budget_usd).await,
        }
    }

    async fn release(&self) -> reka_inference::Result<()> {
        match self {
            RunJournal::Sqlite(j) => j.release().await,
            RunJournal::Postgres(j) => j.release().await,
        }
    }
}

/// The default name of a shared batch: a hash of the input's content, so
/// that every worker given the same file joins the same batch.
pub async fn default_name(input: &Path) -> Result<String, Failure> {
    let digest = FileDigest::of_path(input, u64::MAX).await.map_err(|e| {
        Failure::new(
            ExitClass::Other,
            format!("cannot hash {}: {e}", input.display()),
        )
    })?;
    Ok(format!("input-{}", &digest.sha256()[..16]))
}

/// Connects to a shared batch.
pub async fn connect(
    url: &DatabaseUrl,
    name: &str,
    lease: Duration,
) -> Result<PostgresJournal, Failure> {
    PostgresJournal::connect(url.secret(), name, PostgresOptions::default().lease(lease))
        .await
        .map_err(Failure::from)
}

/// Runs `batch export` or `batch status`.
pub async fn run_command(ctx: &mut Ctx, command: BatchCommand) -> Result<(), Failure> {
    match command {
        BatchCommand::Export(args) => export(args).await,
        BatchCommand::Status(args) => status(ctx, args).await,
    }
}

async fn export(args: SharedBatchArgs) -> Result<(), Failure> {
    let journal = connect(&args.journal, &args.name, Duration::from_secs(30)).await?;
    // Refuses a name the database does not know.
    journal.status().await?;
    let entries = journal.load().await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let failed = |e: std::io::Error| {
        Failure::new(ExitClass::Other, format!("cannot write the results: {e}"))
    };
    for entry in entries.iter().filter(|e| {
        matches!(
            e.state,
            reka_inference::batch::EntryState::Done | reka_inference::batch::EntryState::Reported
        )
    }) {
        serde_json::to_writer(&mut out, &ResultLine::of_entry(entry, None))
            .map_err(|e| failed(e.into()))?;
        out.write_all(b"\n").map_err(failed)?;
    }
    out.flush().map_err(failed)
}

async fn status(ctx: &mut Ctx, args: SharedBatchArgs) -> Result<(), Failure> {
    let journal = connect(&args.journal, &args.name, Duration::from_secs(30)).await?;
    let status = journal.status().await?;
    if ctx.out.json {
        ctx.out.json_line(&json!(status));
        return Ok(());
    }
    let total: u64 = status.lines.values().sum();
    let mut text = format!("batch {} on {}: {total} lines\n", status.name, args.journal);
    for (state, n) in &status.lines {
        text.push_str(&format!("  {state:<11} {n}\n"));
    }
    text.push_str(&format!(
        "held by workers: {} lines; workers alive: {}\n",
        status.held, status.workers_alive
    ));
    text.push_str(&format!(
        "spent ${:.4}, reserved for jobs in flight ${:.4}",
        status.spent_usd.max(0.0),
        status.reserved_usd.max(0.0)
    ));
    if let Some(budget) = status.budget_usd {
        text.push_str(&format!(", budget ${budget:.4}"));
    }
    text.push_str(&format!(
        "\ndone in the last minute: {} lines",
        status.done_last_minute
    ));
    ctx.out.line(&text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_never_shows_its_password() {
        let url: DatabaseUrl = "postgres://batch:s3cr3t@db:5432/reka".parse().unwrap();
        assert_eq!(url.secret(), "postgres://batch:s3cr3t@db:5432/reka");
        for shown in [format!("{url}"), format!("{url:?}")] {
            assert!(!shown.contains("s3cr3t"), "{shown}");
            assert!(shown.contains("batch:***@db:5432/reka"), "{shown}");
        }
        assert!("mysql://db/reka".parse::<DatabaseUrl>().is_err());
        assert!("db".parse::<DatabaseUrl>().is_err());
    }
}
