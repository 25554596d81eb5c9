//! `batch`: every line of a JSONL file as a job, crash-safe and exactly
//! once, through the SDK's [`Batch`](reka_inference::batch::Batch) with a SQLite journal in DIR.
//!
//! This file holds what is the command line's own: checking the file
//! first, the out directory (its lock, journal and results file), the
//! progress display and events, Ctrl-C, and the summary and exit code.

use std::collections::HashMap;
use std::path::Path;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use reka_inference::batch::{
    BatchEvent, BatchOptions, BatchProgress, BatchSummary, JournalEntry, SqliteJournal, StopReason,
    SubmitterOptions,
};
use serde_json::json;

use crate::batch_input::{self, BadLine, Scan};
use crate::batch_results::{ResultLine, Results};
use crate::commands::{Ctx, parse_endpoint};
use crate::exit::{ExitClass, Failure};
use crate::interrupt::Interrupt;
use crate::output::{Output, price_text, printable};
use crate::progress::BatchBar;

pub(crate) const BATCH_HELP: &str = "\
Lines:
  {\"prompt\": \"a red fox\"}                                   the input of --endpoint
  {\"endpoint\": \"veo-3.1/text-to-video\", \"input\": {...}, \"id\": \"clip-7\"}
  The id names the line's files and result (default line-<N>): letters,
  digits, '.', '_', '-'. A line that cannot be run is reported with its
  number (status INVALID) and skipped; nothing is sent for it.

DIR:
  journal.sqlite   the journal (keep it to resume)
  results.jsonl    one line per finished input line: line, id, status, ok,
                   request_id, files, error, price_usd, timings
  <id>/            the files of each completed line

Exit code 0 when every line succeeded, 13 when some did not (the rest is
done), 130 after Ctrl-C, 9 at --timeout: run the same command to go on.";

/// `batch`.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// The input: one JSON object per line.
    #[arg(value_name = "INPUT.jsonl")]
    pub input: PathBuf,

    /// Where the journal, results.jsonl and each line's files go (created
    /// if missing). Run again with the same DIR to resume.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// The endpoint of lines that are bare input objects, MODEL/CAPABILITY.
    #[arg(long, value_name = "ENDPOINT")]
    pub endpoint: Option<String>,

    /// Submits in flight at most (fewer while the service pushes back).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub concurrency: usize,

    /// Stop submitting when the spend the service reported plus the
    /// estimated price of the jobs in flight would pass this many US
    /// dollars. Until a price is known, one job of an endpoint runs alone
    /// to learn it.
    #[arg(long, value_name = "USD")]
    pub budget_usd: Option<f64>,

    /// The price of a job to assume until the service reports one (and for
    /// an endpoint whose records carry none).
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

/// Runs `batch`.
pub async fn run(ctx: &mut Ctx, args: BatchArgs, timeout: Option<Duration>) -> Result<(), Failure> {
    let endpoint = args
        .endpoint
        .as_deref()
        .map(|e| parse_endpoint("--endpoint", e))
        .transpose()?;
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
    if let Some(prefix) = &args.idempotency_prefix
        && (prefix.len() > 100 || !prefix.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(Failure::usage(
            "--idempotency-prefix: at most 100 visible ASCII characters, no spaces",
        ));
    }
    let job_timeout = args
        .job_timeout
        .as_deref()
        .map(|t| crate::time::parse_duration("--job-timeout", t))
        .transpose()?
        .unwrap_or(DEFAULT_JOB_TIMEOUT);
    let scan = batch_input::scan(&args.input, endpoint.as_ref())?;
    if args.dry_run {
        return dry_run(&ctx.out, &args, endpoint, scan);
    }

    std::fs::create_dir_all(&args.out).map_err(|e| {
        Failure::new(
            ExitClass::Other,
            format!("cannot create {}: {e}", args.out.display()),
        )
    })?;
    let _lock = lock(&args.out)?;
    let journal = Arc::new(SqliteJournal::open(args.out.join("journal.sqlite"))?);
    let results = Results::open(&args.out.join("results.jsonl"))?;
    let written_before = scan.bad.iter().filter(|b| results.has(&b.key)).count() as u64;
    let total = (scan.good + scan.bad.len()) as u64;

    let out = ctx.out;
    let reporter = Arc::new(Mutex::new(Reporter {
        out,
        results,
        lines: scan.lines.clone(),
        bar: BatchBar::new(&out, total, written_before),
        done: written_before,
        failed: written_before,
        started_with: written_before,
        total,
        last: BatchProgress::default(),
    }));
    lock_reporter(&reporter).start(&args, total, &scan)?;

    let client = ctx.client().await?;
    let mut options = BatchOptions::default()
        .submitter(
            SubmitterOptions::default()
                .concurrency(args.concurrency)
                .max_attempts(20),
        )
        .job_timeout(job_timeout);
    if !args.no_download {
        options = options.download_dir(&args.out);
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
    let invalid = scan.bad.len();
    let prefix = args.idempotency_prefix.clone();
    let items = batch_input::items(args.input.clone(), endpoint, scan.lines)?.map(move |item| {
        let Some(prefix) = &prefix else { return item };
        let key = format!("{prefix}{}", item.key());
        // The prefix and the id were both checked: the key is valid.
        item.clone().with_idempotency_key(key).unwrap_or(item)
    });
    let batch = client.batch(journal.clone()).options(options);
    let stopper = batch.stopper();
    let events = reporter.clone();
    let mut running = pin!(batch.run(futures::stream::iter(items), move |event| {
        lock_reporter(&events).event(event)
    }));
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
    let mut reporter = lock_reporter(&reporter);
    reporter.bar.clear();
    reporter.finish(&args.out, &outcome?, total, invalid, interrupted)
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
                "out": args.out.display().to_string(),
            }));
        }
        for bad in &scan.bad {
            self.invalid(bad).map_err(|e| {
                Failure::new(
                    ExitClass::Other,
                    format!("{}: {e}", self.results.path().display()),
                )
            })?;
        }
        Ok(())
    }

    fn invalid(&mut self, bad: &BadLine) -> std::io::Result<()> {
        if self.results.has(&bad.key) {
            return Ok(());
        }
        let line = ResultLine::of_bad_line(bad);
        self.results.write(&line)?;
        self.done += 1;
        self.failed += 1;
        if self.out.json {
            self.out
                .json_line(&json!({"event": "result", "result": line}));
        } else {
            self.note(&format!("line {}: {}; skipped", bad.line, bad.reason));
        }
        Ok(())
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
            BatchEvent::NotSubmitted { key, reason } => self.problem("not_submitted", key, &reason),
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
            self.note(&format!("{key}: {reason}"));
        }
    }

    /// An item is done: its line in results.jsonl (once), and the counts.
    fn done_entry(&mut self, entry: &JournalEntry) -> reka_inference::Result<()> {
        let line = ResultLine::of_entry(entry, self.lines.get(&entry.key).copied());
        if !self.results.write(&line)? {
            // Written by a run that died before its journal said so.
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
        summary: &BatchSummary,
        total: u64,
        invalid: usize,
        interrupted: bool,
    ) -> Result<(), Failure> {
        let (succeeded, failed) = (summary.succeeded, summary.failed);
        let running = summary.unfinished;
        let left = (total as usize).saturating_sub(succeeded + failed + invalid);
        let results = self.results.path().display().to_string();
        let priced = summary.priced;
        if self.out.json {
            self.out.json_line(&json!({
                "event": "summary", "lines": total, "succeeded": succeeded, "failed": failed,
                "invalid": invalid, "left": left, "still_running": running,
                "spent_usd": priced.then_some(summary.spent_usd), "stopped": summary.stopped,
                "results": results,
            }));
        } else {
            let spent = if priced {
                format!("{} spent", price_text(summary.spent_usd))
            } else {
                "no price reported".to_owned()
            };
            self.out.line(format!(
                "batch: {succeeded} of {} succeeded, {failed} failed, {invalid} invalid, {left} left \
                 ({running} jobs still running); {spent}; results in {results}",
                lines(total as usize)
            ));
        }
        if interrupted || summary.stopped == Some(StopReason::Stopped) {
            return Err(Failure::new(
                ExitClass::Interrupted,
                format!(
                    "stopped with {} left; run the same command to resume",
                    lines(left)
                ),
            ));
        }
        if summary.stopped == Some(StopReason::Deadline) {
            return Err(Failure::new(
                ExitClass::Timeout,
                format!(
                    "--timeout reached with {} left; run the same command to resume",
                    lines(left)
                ),
            ));
        }
        if left == 0 && failed == 0 && invalid == 0 {
            return Ok(());
        }
        let why = match summary.stopped {
            Some(StopReason::Budget) => {
                format!("the budget stopped the batch with {left} lines not run")
            }
            _ if left > 0 => format!(
                "{} not done yet ({running} jobs still running): run the same command to go on",
                lines(left)
            ),
            _ => format!("{} did not succeed", lines(failed + invalid)),
        };
        Err(
            Failure::new(ExitClass::BatchIncomplete, why).with_hint(format!(
                "each line's outcome is in {}",
                dir.join("results.jsonl").display()
            )),
        )
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

/// One run per DIR at a time: an advisory lock the system drops when the
/// process ends, however it ends.
fn lock(dir: &Path) -> Result<std::fs::File, Failure> {
    let path = dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| {
            Failure::new(
                ExitClass::Other,
                format!("cannot open {}: {e}", path.display()),
            )
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Failure::usage(format!(
            "another batch is running on {}: one run per directory at a time",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Failure::new(
            ExitClass::Other,
            format!("cannot lock {}: {e}", path.display()),
        )),
    }
}

/// `--dry-run`: every line checked, what would be sent printed.
fn dry_run(
    out: &Output,
    args: &BatchArgs,
    endpoint: Option<reka_inference::Endpoint>,
    scan: Scan,
) -> Result<(), Failure> {
    let bad = scan.bad.len();
    let good = scan.good;
    for item in batch_input::items(args.input.clone(), endpoint, scan.lines)? {
        if out.json {
            out.json_line(&json!({
                "event": "would_submit", "id": item.key(), "endpoint": item.endpoint().as_str(),
                "input": item.input(),
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
