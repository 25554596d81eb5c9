//! `batch`: every line of a JSONL file as a job, crash-safe and exactly
//! once, through the SDK's [`Batch`](reka_inference::batch::Batch) with a SQLite journal in DIR.
//!
//! This file holds what is the command line's own: checking the file
//! first, the out directory (its lock, journal and results file), prices
//! for a budget, the progress display and events, Ctrl-C, and the summary
//! and exit code.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use reka_inference::Client;
use reka_inference::batch::{
    BatchEvent, BatchOptions, BatchProgress, BatchSummary, EntryState, Journal, JournalEntry,
    SqliteJournal, StopReason, SubmitterOptions,
};
use reka_inference::input::DEFAULT_MAX_INLINE_BYTES;
use serde_json::json;

use crate::batch_dir::{self, JOURNAL, RESULTS};
use crate::batch_input::{self, BadLine, FileRules, InputKind, LateBadLines, Scan, Source};
use crate::batch_results::{self, ResultLine, Results};
use crate::batch_shared::{self, BatchCommand, DATABASE_URL_ENV, DatabaseUrl, RunJournal};
use crate::commands::{Ctx, parse_endpoint};
use crate::exit::{ExitClass, Failure};
use crate::interrupt::Interrupt;
use crate::output::{Output, price_text, printable};
use crate::progress::BatchBar;

pub(crate) const BATCH_HELP: &str = "\
Lines:
  {\"prompt\": \"a red fox\"}                                   the input of --endpoint
  {\"endpoint\": \"veo-3.1/text-to-video\", \"input\": {...}, \"id\": \"clip-7\"}
  {\"input\": {\"prompt\": \"zoom\", \"image_url\": \"@photos/7.png\"}, \"id\": \"clip-7\"}
  The id names the line's files and result (default line-<N>): letters,
  digits, '.', '_', '-'; not a name of DIR's own files (.lock,
  journal.sqlite*, results.jsonl*, input.jsonl). A string value starting
  with @ is a local file, relative to the input file's directory (the
  current directory for a pipe), sent as a data: URI (\\@ for a literal @).
  A line that cannot be run is reported with its number (status INVALID)
  and skipped; nothing is sent for it. INPUT may be a pipe or - (stdin):
  it is read once, into DIR/input.jsonl.

DIR:
  journal.sqlite   the journal (keep it to resume; without it, a DIR with
                   results is refused unless --start-over)
  results.jsonl    one line per finished input line: line, id, status, ok,
                   request_id, files, error, price_usd, timings (rewritten
                   from the journal at each run's start and end)
  <id>/            the files of each completed line (saved again if deleted)

Shared (--journal postgres://...): the journal is a batch in PostgreSQL
that every worker running the same command joins (named after the input's
content, or --name); each line runs once, on one worker; a worker killed
or cut off loses its lines after --lease and another takes them over.
`batch status --journal URL --name N` shows it, `batch export` writes its
results.

A line edited since its job ran is reported and not run again (its old
result stands) unless --rerun-changed. Exit code 0 when every line
succeeded, 13 when some did not (the rest is done), 130 after Ctrl-C, 9 at
--timeout: run the same command to go on.";

/// `batch`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BatchArgs {
    /// `export` or `status` of a shared batch (see --journal).
    #[command(subcommand)]
    pub command: Option<BatchCommand>,

    /// The input: one JSON object per line (a file, a pipe, or - for
    /// stdin). A file named like a subcommand (export, status) is given
    /// as ./export.
    #[arg(value_name = "INPUT.jsonl", required = true)]
    pub input: Option<PathBuf>,

    /// Where the journal, results.jsonl and each line's files go (created
    /// if missing). Run again with the same DIR to resume.
    #[arg(long, value_name = "DIR", required = true)]
    pub out: Option<PathBuf>,

    /// Share the batch with workers on other machines: its journal in this
    /// PostgreSQL database (postgres://USER:PASSWORD@HOST/DB; or
    /// REKA_BATCH_DATABASE_URL) instead of DIR/journal.sqlite. Every
    /// worker that runs the same command (same input, or same --name)
    /// joins the batch: each line runs once, on one of them. No TLS yet:
    /// sslmode=require is refused.
    #[arg(long, value_name = "URL", env = DATABASE_URL_ENV, hide_env_values = true)]
    pub journal: Option<DatabaseUrl>,

    /// The shared batch's name (default: input-<hash of the input's
    /// content>, so that workers given the same file join one batch).
    #[arg(long, value_name = "NAME", requires = "journal")]
    pub name: Option<String>,

    /// How long a worker holds its lines of a shared batch without
    /// renewing them (renewed every third of it; default 30s): a worker
    /// that dies or is cut off loses its lines this long after, and
    /// another takes them over.
    #[arg(long, value_name = "DURATION", requires = "journal")]
    pub lease: Option<String>,

    /// The endpoint of lines that are bare input objects, MODEL/CAPABILITY.
    #[arg(long, value_name = "ENDPOINT")]
    pub endpoint: Option<String>,

    /// Submits in flight at most (fewer while the service pushes back).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub concurrency: usize,

    /// Stop submitting when the spend so far plus the estimated price of
    /// the jobs in flight and of the next would pass this many US dollars.
    /// Each endpoint's price comes from the service (its model list, or
    /// its jobs) or from --estimate-usd; without any, the batch is refused
    /// before anything is sent.
    #[arg(long, value_name = "USD")]
    pub budget_usd: Option<f64>,

    /// The price of a job to assume where the service says none (and
    /// until it does): needed for a budget against a service that reports
    /// no prices. Jobs that report no price count this as spent.
    #[arg(long, value_name = "USD", requires = "budget_usd")]
    pub estimate_usd: Option<f64>,

    /// How long each job is waited for, e.g. 30m, 2h (default 1h). A job
    /// still running then is left running and followed by the next run.
    #[arg(long, value_name = "DURATION")]
    pub job_timeout: Option<String>,

    /// Submit each line with the idempotency key PREFIX<id> rather than a
    /// random one: batches on several machines that share a prefix (and
    /// the API key) get one job per line even where their inputs overlap,
    /// for as long as the service keeps idempotency keys.
    #[arg(long, value_name = "PREFIX")]
    pub idempotency_prefix: Option<String>,

    /// The largest local file (a line's "@path" value) sent inline, in
    /// bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_INLINE_BYTES)]
    pub max_inline_bytes: u64,

    /// Run again, as new jobs, the lines whose input (or local file)
    /// changed since their jobs ran; by default they are reported and
    /// their earlier results stand.
    #[arg(long)]
    pub rerun_changed: bool,

    /// Run every line although DIR holds an earlier run's results and no
    /// journal (each line is paid again); the old results.jsonl is moved
    /// aside first.
    #[arg(long)]
    pub start_over: bool,

    /// Check every line and print what would be sent; send nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Do not save the jobs' files (results.jsonl still lists each job).
    #[arg(long)]
    pub no_download: bool,

    /// Receive the jobs' webhooks on this address (e.g. 0.0.0.0:8080):
    /// each wait ends at its delivery, confirmed by one fetch of the
    /// record, instead of list sweeps.
    #[cfg(feature = "webhooks")]
    #[arg(long, value_name = "ADDR")]
    pub webhook_listen: Option<String>,

    /// The public URL the service should call for --webhook-listen (a
    /// tunnel, a load balancer), when it is not http://ADDR/.
    #[cfg(feature = "webhooks")]
    #[arg(long, value_name = "URL", requires = "webhook_listen")]
    pub webhook_url: Option<String>,
}

/// How long each job is waited for by default.
const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(3600);

/// The copy of an input read from a pipe, in DIR.
const INPUT_COPY: &str = "input.jsonl";

/// Runs `batch`.
pub async fn run(
    ctx: &mut Ctx,
    mut args: BatchArgs,
    timeout: Option<Duration>,
) -> Result<(), Failure> {
    if let Some(command) = args.command.take() {
        return batch_shared::run_command(ctx, command).await;
    }
    let (Some(input), Some(out_dir)) = (args.input.clone(), args.out.clone()) else {
        return Err(Failure::usage(
            "batch: INPUT.jsonl and --out DIR are needed",
        ));
    };
    let endpoint = args
        .endpoint
        .as_deref()
        .map(|e| parse_endpoint("--endpoint", e))
        .transpose()?;
    check_flags(&args)?;
    let job_timeout = args
        .job_timeout
        .as_deref()
        .map(|t| crate::time::parse_duration("--job-timeout", t))
        .transpose()?
        .unwrap_or(DEFAULT_JOB_TIMEOUT);
    let kind = Source::kind(&input)?;
    if args.dry_run {
        let source = match kind {
            InputKind::File => Source::file(&input),
            InputKind::Pipe => Source::copy(&input, temporary_copy(), true)?,
        };
        let rules = file_rules(&source, &args);
        let scan = batch_input::scan(&source.path, endpoint.as_ref(), &rules)?;
        return dry_run(&ctx.out, &source, endpoint, scan, rules);
    }
    // A file is checked before DIR is made; a pipe is copied into DIR
    // (under its lock) first.
    let early_scan = match kind {
        InputKind::File => {
            let source = Source::file(&input);
            let scan =
                batch_input::scan(&source.path, endpoint.as_ref(), &file_rules(&source, &args))?;
            Some((source, scan))
        }
        InputKind::Pipe => None,
    };
    std::fs::create_dir_all(&out_dir).map_err(|e| {
        Failure::new(
            ExitClass::Other,
            format!("cannot create {}: {e}", out_dir.display()),
        )
    })?;
    let _lock = batch_dir::lock(&out_dir)?;
    let (source, scan) = match early_scan {
        Some(found) => found,
        None => {
            ctx.out.note(&format!(
                "reading {} once (a pipe or FIFO cannot be read twice) into {}",
                input.display(),
                out_dir.join(INPUT_COPY).display()
            ));
            let source = Source::copy(&input, out_dir.join(INPUT_COPY), false)?;
            let scan =
                batch_input::scan(&source.path, endpoint.as_ref(), &file_rules(&source, &args))?;
            (source, scan)
        }
    };
    let rules = file_rules(&source, &args);

    // What an earlier run left: read before anything is written, so that
    // a refused run leaves DIR as it was.
    let journal_path = out_dir.join(JOURNAL);
    let (shared, entries) = match &args.journal {
        Some(url) => {
            let name = match &args.name {
                Some(name) => name.clone(),
                None => batch_shared::default_name(&source.path).await?,
            };
            let lease = args
                .lease
                .as_deref()
                .map(|t| crate::time::parse_duration("--lease", t))
                .transpose()?
                .unwrap_or(Duration::from_secs(30));
            let journal = batch_shared::connect(url, &name, lease).await?;
            if ctx.out.json {
                ctx.out.json_line(&json!({
                    "event": "joined", "batch": name, "database": url.to_string(),
                    "worker": journal.worker_id(),
                }));
            } else {
                ctx.out.note(&format!(
                    "shared batch {name} on {url} (worker {})",
                    journal.worker_id()
                ));
            }
            let entries = journal.load().await?;
            (Some(journal), entries)
        }
        None => {
            let journal_existed = journal_path.exists();
            let entries = if journal_existed {
                SqliteJournal::open(&journal_path)?.load().await?
            } else {
                Vec::new()
            };
            if let Some(aside) = batch_dir::check_earlier_run(
                &out_dir,
                entries.len(),
                journal_existed,
                args.start_over,
            )? {
                ctx.out.note(&format!(
                    "--start-over: the earlier results are now {}",
                    aside.display()
                ));
            }
            (None, entries)
        }
    };
    let client = ctx.client().await?;
    if let Some(budget) = args.budget_usd
        && args.estimate_usd.is_none()
    {
        check_prices(&client, &scan, &entries, budget).await?;
    }
    let journal = Arc::new(match shared {
        Some(journal) => RunJournal::Postgres(journal),
        None => RunJournal::Sqlite(SqliteJournal::open(&journal_path)?),
    });
    // The results file from the journal: whole again if it was deleted,
    // cut short or edited since.
    let results_path = out_dir.join(RESULTS);
    if !entries.is_empty() || !scan.bad.is_empty() || results_path.exists() {
        batch_results::rewrite(&results_path, &entries, &scan.lines, &scan.bad)?;
    }
    drop(entries);
    let results = Results::open(&results_path)?;
    let total = (scan.good + scan.bad.len()) as u64;

    let out = ctx.out;
    let reporter = Arc::new(Mutex::new(Reporter {
        out,
        results,
        lines: scan.lines.clone(),
        bar: BatchBar::new(&out, total, 0),
        done: 0,
        failed: 0,
        started_with: 0,
        total,
        last: BatchProgress::default(),
        changed: HashSet::new(),
    }));
    lock_reporter(&reporter).start(&args, total, &scan)?;

    let mut options = BatchOptions::default()
        .submitter(
            SubmitterOptions::default()
                .concurrency(args.concurrency)
                .max_attempts(20),
        )
        .job_timeout(job_timeout)
        .max_file_bytes(args.max_inline_bytes)
        .input_encoder(reka_inference::input::DataUri::with_limit(
            args.max_inline_bytes,
        ))
        .rerun_changed(args.rerun_changed);
    if !args.no_download {
        options = options.download_dir(&out_dir);
    }
    if let Some(b) = args.budget_usd {
        options = options.budget_usd(b);
    }
    if let Some(e) = args.estimate_usd {
        options = options.estimated_price_usd(e);
    }
    if let Some(deadline) = timeout.and_then(|t| tokio::time::Instant::now().checked_add(t)) {
        options = options.deadline(deadline);
    }
    #[cfg(feature = "webhooks")]
    let _receiver = match &args.webhook_listen {
        Some(addr) => {
            let receiver = super::follow::listen(addr, args.webhook_url.as_deref()).await?;
            lock_reporter(&reporter).note(&format!(
                "receiving the jobs' webhooks at {}",
                receiver.url()
            ));
            options = options.webhook(&receiver);
            Some(receiver)
        }
        None => None,
    };

    let mut interrupt = Interrupt::install()
        .map_err(|e| Failure::new(ExitClass::Other, format!("cannot handle Ctrl-C: {e}")))?;
    let prefix = args.idempotency_prefix.clone();
    let late: LateBadLines = Arc::default();
    let items = batch_input::items(source.path.clone(), endpoint, scan.lines.clone(), rules)?;
    let items = batch_input::with_files(items, scan.lines.clone(), late.clone());
    let items = futures::StreamExt::map(items, move |item| {
        let Some(prefix) = &prefix else { return item };
        let key = format!("{prefix}{}", item.key());
        // The prefix and the id were both checked: the key is valid.
        item.clone().with_idempotency_key(key).unwrap_or(item)
    });
    let batch = client.batch(journal.clone()).options(options);
    let stopper = batch.stopper();
    let events = reporter.clone();
    let mut running = pin!(batch.run(items, move |event| lock_reporter(&events).event(event)));
    let mut interrupted = false;
    let outcome = loop {
        tokio::select! {
            outcome = &mut running => break outcome,
            () = interrupt.recv() => {
                if interrupted {
                    lock_reporter(&reporter).bar.clear();
                    return Err(Failure::new(
                        ExitClass::Interrupted,
                        "interrupted again: stopped at once; the journal holds every step taken, \
                         run the same command to resume",
                    ));
                }
                interrupted = true;
                stopper.stop();
                lock_reporter(&reporter).note(
                    "stopping: no more submits; the jobs keep running and the same command picks \
                     them up (Ctrl-C again to stop at once)",
                );
            }
        }
    };
    lock_reporter(&reporter).bar.clear();
    let summary = match outcome {
        Ok(summary) => summary,
        Err(e @ reka_inference::Error::PriceUnknown { .. }) => {
            return Err(Failure::from(e).with_hint(
                "--estimate-usd USD gives the price to assume per job where the service says none",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let late = std::mem::take(&mut *late.lock().unwrap_or_else(|e| e.into_inner()));
    // The journal's final word, and the results file rewritten from it, a
    // page of entries at a time: the batch's outputs are never all in
    // memory.
    let mut bad = scan.bad.clone();
    bad.extend(late.iter().cloned());
    let mut standings = Standings::new();
    batch_results::rewrite_from(&results_path, &*journal, &scan.lines, &bad, |entry| {
        standings.insert(entry.key.clone(), (entry.state, entry.succeeded()));
    })
    .await?;
    let mut reporter = lock_reporter(&reporter);
    for b in &late {
        reporter.note(&format!("line {}: {}; skipped", b.line, b.reason));
    }
    let late_keys: HashSet<String> = late.iter().map(|b| b.key.clone()).collect();
    let counts = Counts::of(&scan, &standings, &reporter.changed, &late_keys);
    reporter.finish(&out_dir, &source, &summary, &counts, interrupted)
}

/// Checks the flags that clap cannot.
fn check_flags(args: &BatchArgs) -> Result<(), Failure> {
    if !(1..=1000).contains(&args.concurrency) {
        return Err(Failure::usage("--concurrency: between 1 and 1000"));
    }
    for (flag, value) in [
        ("--budget-usd", args.budget_usd),
        ("--estimate-usd", args.estimate_usd),
    ] {
        if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
            return Err(Failure::usage(format!(
                "{flag}: a number of dollars, 0 or more"
            )));
        }
    }
    if args.journal.is_some() && args.rerun_changed {
        return Err(Failure::usage(
            "--rerun-changed: a shared batch (--journal) runs each line's input as the batch \
             holds it",
        ));
    }
    if args.journal.is_some() && args.start_over {
        return Err(Failure::usage(
            "--start-over: a shared batch (--journal) keeps its state in the database; give \
             it another --name to start over",
        ));
    }
    if let Some(prefix) = &args.idempotency_prefix
        && (prefix.len() > 100 || !prefix.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(Failure::usage(
            "--idempotency-prefix: at most 100 visible ASCII characters, no spaces",
        ));
    }
    Ok(())
}

fn file_rules(source: &Source, args: &BatchArgs) -> FileRules {
    FileRules {
        base: source.base.clone(),
        max_bytes: args.max_inline_bytes,
    }
}

/// Where `--dry-run` copies a piped input (removed when done).
fn temporary_copy() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "reka-inference-batch-{}-{nanos}.jsonl",
        std::process::id()
    ))
}

/// A budget without an estimate needs each endpoint's price from the
/// service: its model list, or a job of it in the journal. Refused before
/// anything is sent otherwise.
async fn check_prices(
    client: &Client,
    scan: &Scan,
    entries: &[JournalEntry],
    budget: f64,
) -> Result<(), Failure> {
    let reported: HashSet<&str> = entries
        .iter()
        .filter(|e| e.price_usd.is_some())
        .map(|e| e.endpoint.as_str())
        .collect();
    let unknown: Vec<&String> = scan
        .endpoints
        .iter()
        .filter(|e| !reported.contains(e.as_str()))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let listed: HashMap<String, f64> = client
        .models()
        .await?
        .into_iter()
        .filter_map(|m| {
            let id = m
                .endpoint_id
                .unwrap_or_else(|| format!("{}/{}", m.model_id, m.capability));
            Some((id, m.price_usd.filter(|p| p.is_finite() && *p >= 0.0)?))
        })
        .collect();
    let unpriced: Vec<&str> = unknown
        .iter()
        .filter(|e| !listed.contains_key(e.as_str()))
        .map(|e| e.as_str())
        .collect();
    if unpriced.is_empty() {
        return Ok(());
    }
    Err(Failure::usage(format!(
        "--budget-usd {budget}: the service reports no price for {} (its model list gives none, \
         and no job of it in the journal reported one), so the budget could not be kept; \
         nothing was sent",
        unpriced.join(", ")
    ))
    .with_hint(
        "add --estimate-usd USD, the price to assume per job (jobs that report none count it as \
         spent)",
    ))
}

/// How each journal entry stands, by key: its state and whether it
/// succeeded (all that the counts need of it).
type Standings = HashMap<String, (EntryState, bool)>;

/// Where each input line stands at the end of a run: they add up to the
/// lines of the input.
#[derive(Debug, Default, PartialEq)]
struct Counts {
    lines: usize,
    succeeded: usize,
    failed: usize,
    invalid: usize,
    changed: usize,
    running: usize,
    unsaved: usize,
    unsubmitted: usize,
}

impl Counts {
    /// `late`: the keys of lines found invalid during the run (their files
    /// could not be hashed); they were never submitted.
    fn of(
        scan: &Scan,
        standings: &Standings,
        changed: &HashSet<String>,
        late: &HashSet<String>,
    ) -> Counts {
        let mut c = Counts {
            lines: scan.good + scan.bad.len(),
            invalid: scan.bad.len(),
            ..Counts::default()
        };
        for key in scan.lines.keys() {
            if changed.contains(key) {
                c.changed += 1;
                continue;
            }
            if late.contains(key) && !standings.contains_key(key) {
                c.invalid += 1;
                continue;
            }
            match standings.get(key).copied() {
                Some((EntryState::Done | EntryState::Reported, true)) => c.succeeded += 1,
                Some((EntryState::Done | EntryState::Reported, false)) => c.failed += 1,
                Some((EntryState::Submitted, _)) => c.running += 1,
                Some((EntryState::Finished, _)) => c.unsaved += 1,
                Some(_) | None => c.unsubmitted += 1,
            }
        }
        c
    }

    /// Lines neither done nor invalid nor changed.
    fn left(&self) -> usize {
        self.running + self.unsaved + self.unsubmitted
    }
}

/// Where the callback of the run writes: results, progress, events.
struct Reporter {
    out: Output,
    results: Results,
    lines: HashMap<String, u64>,
    bar: BatchBar,
    /// Lines done, of every kind, and how many of them did not succeed.
    done: u64,
    failed: u64,
    started_with: u64,
    total: u64,
    last: BatchProgress,
    /// Lines found changed and not run again.
    changed: HashSet<String>,
}

impl Reporter {
    fn note(&self, text: &str) {
        if self.out.json {
            self.out.note(text);
        } else {
            self.bar.println(printable(text));
        }
    }

    /// Says what this run starts from, and reports the bad lines.
    fn start(&mut self, args: &BatchArgs, total: u64, scan: &Scan) -> Result<(), Failure> {
        if self.out.json {
            self.out.json_line(&json!({
                "event": "started", "lines": total, "valid": scan.good, "invalid": scan.bad.len(),
                "out": args.out.as_deref().map(|o| o.display().to_string()),
            }));
        }
        for bad in &scan.bad {
            self.invalid(bad);
        }
        Ok(())
    }

    /// A line that cannot be run (its result line is in the file already:
    /// the results are rewritten before a run starts).
    fn invalid(&mut self, bad: &BadLine) {
        self.done += 1;
        self.failed += 1;
        self.started_with = self.done;
        if self.out.json {
            let line = ResultLine::of_bad_line(bad);
            self.out
                .json_line(&json!({"event": "result", "result": line}));
        } else {
            self.note(&format!("line {}: {}; skipped", bad.line, bad.reason));
        }
    }

    fn line_of(&self, key: &str) -> String {
        match self.lines.get(key) {
            Some(n) => format!("line {n} ({key})"),
            None => key.to_owned(),
        }
    }

    fn event(&mut self, event: BatchEvent<'_>) -> reka_inference::Result<()> {
        match event {
            BatchEvent::Resumed {
                entries,
                in_flight,
                reported,
                reported_failed,
                ..
            } => {
                self.done += reported as u64;
                self.failed += reported_failed as u64;
                self.started_with = self.done;
                self.bar
                    .update(self.done, self.failed, &self.last, self.started_with);
                if self.out.json {
                    self.out.json_line(&json!({
                        "event": "resumed", "journalled": entries, "in_flight": in_flight,
                        "reported": reported,
                    }));
                } else if entries > 0 {
                    self.note(&format!(
                        "resuming: {entries} of {} lines are in the journal ({reported} done, \
                         {in_flight} jobs still running)",
                        self.total
                    ));
                }
            }
            BatchEvent::Done(entry) => self.done_entry(entry)?,
            BatchEvent::Submitted(entry) if self.out.json => {
                self.out.json_line(&json!({
                    "event": "submitted", "id": entry.key, "request_id": entry.request_id,
                }));
            }
            BatchEvent::Finished(entry) if self.out.json => {
                self.out.json_line(&json!({
                    "event": "finished", "id": entry.key, "status": entry.status,
                }));
            }
            BatchEvent::Changed { key, reason, rerun } => {
                if !rerun {
                    self.changed.insert(key.to_owned());
                }
                if self.out.json {
                    self.out.json_line(&json!({
                        "event": "changed", "id": key, "reason": reason, "rerun": rerun,
                    }));
                } else if rerun {
                    self.note(&format!(
                        "{}: {reason}; running it again (--rerun-changed)",
                        self.line_of(key)
                    ));
                } else {
                    self.note(&format!(
                        "{}: {reason}; not run again, its earlier result stands \
                         (--rerun-changed runs it again)",
                        self.line_of(key)
                    ));
                }
            }
            BatchEvent::FilesMissing { key, missing } => {
                if self.out.json {
                    self.out.json_line(&json!({
                        "event": "files_missing", "id": key, "files": missing,
                    }));
                } else {
                    self.note(&format!(
                        "{}: {} saved file(s) are gone; saving them again",
                        self.line_of(key),
                        missing.len()
                    ));
                }
            }
            BatchEvent::NotSubmitted { key, reason } => self.problem("not_submitted", key, &reason),
            BatchEvent::LeaseLost { key } => self.problem(
                "lease_lost",
                key,
                "this worker's lease on it lapsed and another worker took it over",
            ),
            BatchEvent::Unfinished { key, reason } => self.problem("unfinished", key, &reason),
            BatchEvent::Paused { until, reason } => {
                let secs = until
                    .saturating_duration_since(tokio::time::Instant::now())
                    .as_secs_f64();
                if self.out.json {
                    self.out.json_line(&json!({
                        "event": "paused", "seconds": secs, "reason": format!("{reason:?}"),
                    }));
                } else if secs >= 5.0 {
                    self.note(&format!(
                        "submits paused for {} ({reason:?})",
                        crate::time::human(Duration::from_secs_f64(secs))
                    ));
                }
            }
            BatchEvent::BudgetReached {
                spent_usd,
                assumed_usd,
                committed_usd,
                ..
            } => {
                if self.out.json {
                    self.out.json_line(&json!({
                        "event": "budget_reached", "spent_usd": spent_usd,
                        "assumed_usd": assumed_usd, "committed_usd": committed_usd,
                    }));
                } else {
                    let assumed = if assumed_usd > 0.0 {
                        format!(
                            ", {} assumed for jobs that reported no price",
                            price_text(assumed_usd)
                        )
                    } else {
                        String::new()
                    };
                    self.note(&format!(
                        "budget reached: {} spent{assumed}, {} in flight; no more submits",
                        price_text(spent_usd),
                        price_text(committed_usd)
                    ));
                }
            }
            BatchEvent::Progress(p) => {
                self.last = p.clone();
                if self.out.json {
                    self.out.json_line(&json!({
                        "event": "progress", "done": self.done, "failed": self.failed, "progress": p,
                    }));
                }
                self.bar
                    .update(self.done, self.failed, p, self.started_with);
            }
            _ => {}
        }
        Ok(())
    }

    fn problem(&self, kind: &str, key: &str, reason: &str) {
        if self.out.json {
            self.out
                .json_line(&json!({"event": kind, "id": key, "reason": reason}));
        } else {
            self.note(&format!("{}: {reason}", self.line_of(key)));
        }
    }

    /// An item is done: its line in results.jsonl (once per job), and the
    /// counts.
    fn done_entry(&mut self, entry: &JournalEntry) -> reka_inference::Result<()> {
        let line = ResultLine::of_entry(entry, self.lines.get(&entry.key).copied());
        if !self.results.write(&line)? {
            // Written by a run that died before its journal said so, or
            // rewritten from the journal when this run started.
            return Ok(());
        }
        self.done += 1;
        if !entry.succeeded() {
            self.failed += 1;
            if !self.out.json {
                let at = line.line.map_or(String::new(), |n| format!("line {n}, "));
                self.note(&format!(
                    "{at}{}: {} {}",
                    entry.key,
                    line.status,
                    entry.error.as_deref().unwrap_or("")
                ));
            }
        }
        if self.out.json {
            self.out
                .json_line(&json!({"event": "result", "result": line}));
        }
        Ok(())
    }

    /// Prints the summary and decides the exit code.
    fn finish(
        &mut self,
        dir: &Path,
        source: &Source,
        summary: &BatchSummary,
        c: &Counts,
        interrupted: bool,
    ) -> Result<(), Failure> {
        let results = self.results.path().display().to_string();
        let priced = summary.priced;
        let left = c.left();
        if self.out.json {
            self.out.json_line(&json!({
                "event": "summary", "lines": c.lines, "succeeded": c.succeeded, "failed": c.failed,
                "invalid": c.invalid, "changed": c.changed, "left": left,
                "still_running": c.running, "unsaved": c.unsaved, "unsubmitted": c.unsubmitted,
                "spent_usd": priced.then_some(summary.spent_usd),
                "assumed_usd": (summary.assumed_usd > 0.0).then_some(summary.assumed_usd),
                "stopped": summary.stopped, "results": results,
            }));
        } else {
            let mut spent = if priced {
                format!("{} spent", price_text(summary.spent_usd))
            } else {
                "no price reported".to_owned()
            };
            if summary.assumed_usd > 0.0 {
                spent.push_str(&format!(
                    " ({} assumed for jobs that reported none)",
                    price_text(summary.assumed_usd)
                ));
            }
            let changed = if c.changed > 0 {
                format!(", {} changed", c.changed)
            } else {
                String::new()
            };
            self.out.line(format!(
                "batch: {} of {} succeeded, {} failed, {} invalid{changed}, {left} left ({}); \
                 {spent}; results in {results}",
                c.succeeded,
                lines(c.lines),
                c.failed,
                c.invalid,
                left_text(c),
            ));
        }
        if interrupted || summary.stopped == Some(StopReason::Stopped) {
            return Err(Failure::new(
                ExitClass::Interrupted,
                format!(
                    "stopped with {} left; {}",
                    lines(left),
                    go_on_text(source, dir)
                ),
            ));
        }
        if summary.stopped == Some(StopReason::Deadline) {
            return Err(Failure::new(
                ExitClass::Timeout,
                format!(
                    "--timeout reached with {} left; {}",
                    lines(left),
                    go_on_text(source, dir)
                ),
            ));
        }
        if left == 0 && c.failed == 0 && c.invalid == 0 && c.changed == 0 {
            return Ok(());
        }
        let why = match summary.stopped {
            Some(StopReason::Budget) => format!(
                "the budget stopped the batch with {} not submitted",
                lines(c.unsubmitted)
            ),
            _ if left > 0 => format!(
                "{} not done yet ({}): {}",
                lines(left),
                left_text(c),
                go_on_text(source, dir)
            ),
            _ if c.changed > 0 && c.failed + c.invalid == 0 => format!(
                "{} changed since {} ran and {} not run again (the earlier results stand): \
                 --rerun-changed runs them again",
                lines(c.changed),
                if c.changed == 1 {
                    "its job"
                } else {
                    "their jobs"
                },
                if c.changed == 1 { "was" } else { "were" },
            ),
            _ => format!(
                "{} did not succeed",
                lines(c.failed + c.invalid + c.changed)
            ),
        };
        Err(
            Failure::new(ExitClass::BatchIncomplete, why).with_hint(format!(
                "each line's outcome is in {}",
                dir.join(RESULTS).display()
            )),
        )
    }
}

/// `3 jobs still running, 1 finished job whose files are not saved, 2
/// not submitted`, of what is not zero.
fn left_text(c: &Counts) -> String {
    let mut parts = vec![format!(
        "{} still running",
        if c.running == 1 {
            "1 job".to_owned()
        } else {
            format!("{} jobs", c.running)
        }
    )];
    if c.unsaved > 0 {
        parts.push(format!(
            "{} finished but files not saved",
            if c.unsaved == 1 {
                "1 job".to_owned()
            } else {
                format!("{} jobs", c.unsaved)
            }
        ));
    }
    if c.unsubmitted > 0 {
        parts.push(format!("{} not submitted", c.unsubmitted));
    }
    parts.join(", ")
}

/// How to go on: the same command (a pipe's lines are read again from the
/// same command, or taken from their copy in DIR).
fn go_on_text(source: &Source, dir: &Path) -> String {
    if source.copied {
        format!(
            "run the same command with the same lines to go on (they are also in {})",
            dir.join(INPUT_COPY).display()
        )
    } else {
        "run the same command to go on".to_owned()
    }
}

/// `1 line`, `2 lines`.
fn lines(n: usize) -> String {
    if n == 1 {
        "1 line".to_owned()
    } else {
        format!("{n} lines")
    }
}

fn lock_reporter(r: &Arc<Mutex<Reporter>>) -> std::sync::MutexGuard<'_, Reporter> {
    // Nothing panics while holding it; a poisoned one is still consistent.
    r.lock().unwrap_or_else(|e| e.into_inner())
}

/// `--dry-run`: every line checked, what would be sent printed.
fn dry_run(
    out: &Output,
    source: &Source,
    endpoint: Option<reka_inference::Endpoint>,
    scan: Scan,
    rules: FileRules,
) -> Result<(), Failure> {
    let bad = scan.bad.len();
    let good = scan.good;
    for parsed in batch_input::items(source.path.clone(), endpoint, scan.lines, rules)? {
        let item = &parsed.item;
        let files: Vec<serde_json::Value> = parsed
            .files
            .iter()
            .map(|(pointer, path)| json!({"field": pointer, "path": path.display().to_string()}))
            .collect();
        if out.json {
            out.json_line(&json!({
                "event": "would_submit", "id": item.key(), "endpoint": item.endpoint().as_str(),
                "input": item.input(), "files": files,
            }));
        } else {
            let input = serde_json::to_string(item.input()).unwrap_or_default();
            out.line(format!(
                "{}  {}  {}",
                item.key(),
                item.endpoint(),
                crate::output::printable(&shorten(&input, 200))
            ));
        }
    }
    for b in &scan.bad {
        if out.json {
            out.json_line(
                &json!({"event": "invalid", "line": b.line, "id": b.key, "reason": b.reason}),
            );
        } else {
            out.note(&format!("line {}: {}", b.line, b.reason));
        }
    }
    if out.json {
        out.json_line(&json!({"event": "summary", "valid": good, "invalid": bad, "sent": 0}));
    } else {
        out.line(format!(
            "dry run: {} would be submitted, {bad} cannot be run; nothing was sent",
            lines(good)
        ));
    }
    if bad > 0 {
        return Err(Failure::usage(format!("{} cannot be run", lines(bad))));
    }
    Ok(())
}

/// The first `max` characters of `text`, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_of(keys: &[&str], bad: usize) -> Scan {
        let mut scan = Scan::default();
        for (i, k) in keys.iter().enumerate() {
            scan.lines.insert((*k).to_owned(), i as u64 + 1);
            scan.good += 1;
        }
        for i in 0..bad {
            scan.bad.push(BadLine {
                line: 100 + i as u64,
                key: format!("line-{}", 100 + i),
                reason: "not JSON".into(),
            });
        }
        scan
    }

    fn entry(key: &str, state: EntryState, status: Option<&str>) -> JournalEntry {
        let mut e = JournalEntry::new(key, "m/c", "fp", "k");
        e.state = state;
        e.status = status.map(str::to_owned);
        e
    }

    #[test]
    fn counts_add_up_to_the_lines_of_the_input() {
        let scan = scan_of(&["a", "b", "c", "d", "e", "f", "g", "h"], 2);
        let entries = [
            entry("a", EntryState::Reported, Some("COMPLETED")),
            entry("b", EntryState::Reported, Some("FAILED")),
            entry("c", EntryState::Submitted, None),
            entry("d", EntryState::Finished, Some("COMPLETED")),
            entry("e", EntryState::Submitting, None),
            entry("f", EntryState::Reported, Some("COMPLETED")),
            // Not in the input any more: not counted.
            entry("zz", EntryState::Reported, Some("COMPLETED")),
        ];
        let changed: HashSet<String> = ["f".to_owned()].into();
        let late: HashSet<String> = ["g".to_owned()].into();
        let standings: Standings = entries
            .iter()
            .map(|e| (e.key.clone(), (e.state, e.succeeded())))
            .collect();
        let c = Counts::of(&scan, &standings, &changed, &late);
        assert_eq!(
            c,
            Counts {
                lines: 10,
                succeeded: 1,
                failed: 1,
                invalid: 3,
                changed: 1,
                running: 1,
                unsaved: 1,
                // e and h (g's file could not be hashed: invalid)
                unsubmitted: 2,
            }
        );
        assert_eq!(
            c.succeeded + c.failed + c.invalid + c.changed + c.left(),
            c.lines
        );
        assert_eq!(
            left_text(&c),
            "1 job still running, 1 job finished but files not saved, 2 not submitted"
        );
    }
}
