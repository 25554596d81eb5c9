//! `run` and `wait`: follow a job to its end with a progress display,
//! show its output and save its files; Ctrl-C stops waiting (or cancels).

use std::path::{Path, PathBuf};
use std::pin::pin;
use std::time::{Duration, Instant};

use clap::Args;
use futures::StreamExt;
use reka_inference::{
    Client, DEFAULT_WAIT_TIMEOUT, Error, Job, JobEvent, JobOutput, JobStatus, WaitOptions,
};
use serde::Serialize;
use serde_json::Value;

use crate::commands::job::print_output;
use crate::commands::submit::submit_options;
use crate::commands::{Ctx, check_id, parse_endpoint};
use crate::exit::{ExitClass, Failure};
use crate::input;
use crate::input::InputArgs;
use crate::interrupt::Interrupt;
use crate::output::{Output, human_bytes, job_error_text, log_line, metrics_text, price_text};
use crate::progress::{DownloadBars, JobSpinner};
use crate::time::human;

/// What `wait` and `run` share.
#[derive(Debug, Args, Clone, Default)]
pub struct FollowArgs {
    /// Save the job's output files into this directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub download: Option<PathBuf>,

    /// On Ctrl-C, cancel the job instead of leaving it running.
    #[arg(long)]
    pub cancel_on_interrupt: bool,
}

/// `wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The request id.
    pub id: String,

    #[command(flatten)]
    pub follow: FollowArgs,

    /// Receive the job's webhook on this address (the job was submitted
    /// with `submit --webhook URL`, URL reaching this address): look once
    /// now, then end the wait when the delivery arrives, confirmed by one
    /// fetch of the record; polls only as a rare safety net.
    #[cfg(feature = "webhooks")]
    #[arg(long, value_name = "ADDR")]
    pub webhook_listen: Option<String>,
}

/// `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The endpoint, MODEL/CAPABILITY, e.g. nano-banana/text-to-image.
    pub endpoint: String,

    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub follow: FollowArgs,

    /// A URL the service calls with the job's record when it finishes.
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,

    /// Your own idempotency key: running again with the same key and input
    /// follows the first job instead of creating a second one (printed
    /// when a submit's outcome is unknown).
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,

    /// Receive the job's webhook on this address (e.g. 0.0.0.0:8080) and end
    /// the wait when it arrives, confirmed by one fetch of the record;
    /// polls only as a rare safety net.
    #[cfg(feature = "webhooks")]
    #[arg(long, value_name = "ADDR", conflicts_with = "webhook")]
    pub webhook_listen: Option<String>,

    /// The public URL the service should call for --webhook-listen (a
    /// tunnel, a load balancer), when it is not http://ADDR/.
    #[cfg(feature = "webhooks")]
    #[arg(long, value_name = "URL", requires = "webhook_listen")]
    pub webhook_url: Option<String>,
}

/// `run`: submit, wait, show, save.
pub async fn run(ctx: &mut Ctx, args: RunArgs, timeout: Option<Duration>) -> Result<(), Failure> {
    let endpoint = parse_endpoint("endpoint", &args.endpoint)?;
    let input = input::build(&args.input, std::io::stdin().lock())?;
    let mut options = submit_options(args.webhook, args.idempotency_key)?;
    let plan = Plan::new(&args.follow, timeout)?;
    #[cfg(feature = "webhooks")]
    if let Some(addr) = &args.webhook_listen {
        let receiver = listen(addr, args.webhook_url.as_deref()).await?;
        ctx.out.note(&format!(
            "receiving the job's webhook at {}",
            receiver.url()
        ));
        options = options.webhook(&receiver);
    }
    // The submit is part of the command's time: it cannot outlast it.
    let submit_bound = timeout.unwrap_or(DEFAULT_WAIT_TIMEOUT);
    if let Some(deadline) = tokio::time::Instant::now().checked_add(submit_bound) {
        options = options.deadline(deadline);
    }
    let mut interrupt = install_interrupt()?;
    let client = ctx.client().await?;
    let spinner = JobSpinner::new(&ctx.out, endpoint.as_str());
    spinner.status("submitting");
    let began = Instant::now();
    let submitted = tokio::select! {
        r = client.submit_with(&endpoint, input, options) => Some(r),
        _ = interrupt.recv() => None,
    };
    let job = match submitted {
        Some(r) => r?,
        None => {
            spinner.clear_after_ctrl_c();
            return Err(Failure::new(
                ExitClass::Interrupted,
                "interrupted while submitting; the job may or may not have been created \
                 (`reka-inference list --limit 5` shows the latest jobs)",
            ));
        }
    };
    spinner.println(format!("submitted {} ({endpoint})", job.id()));
    spinner.prefix(job.id());
    let endpoint = Some(endpoint.to_string());
    follow(
        ctx,
        &client,
        job,
        endpoint,
        &plan,
        &mut interrupt,
        spinner,
        began,
    )
    .await
}

/// `wait`: follow a job submitted earlier.
pub async fn wait(ctx: &mut Ctx, args: WaitArgs, timeout: Option<Duration>) -> Result<(), Failure> {
    let id = check_id(&args.id)?.to_owned();
    let plan = Plan::new(&args.follow, timeout)?;
    let mut interrupt = install_interrupt()?;
    let client = ctx.client().await?;
    let spinner = JobSpinner::new(&ctx.out, &id);
    spinner.status("checking");
    let job = client.job(&id);
    #[cfg(feature = "webhooks")]
    let job = match &args.webhook_listen {
        Some(addr) => {
            let receiver = listen(addr, None).await?;
            ctx.out.note(&format!(
                "receiving the job's webhook at {}",
                receiver.url()
            ));
            job.with_webhook(&receiver)
        }
        None => job,
    };
    follow(
        ctx,
        &client,
        job,
        None,
        &plan,
        &mut interrupt,
        spinner,
        Instant::now(),
    )
    .await
}

/// The checked `--download`, `--timeout` and `--cancel-on-interrupt`.
struct Plan {
    download: Option<PathBuf>,
    timeout: Option<Duration>,
    cancel_on_interrupt: bool,
}

impl Plan {
    fn new(args: &FollowArgs, timeout: Option<Duration>) -> Result<Plan, Failure> {
        if let Some(dir) = &args.download
            && dir.exists()
            && !dir.is_dir()
        {
            return Err(Failure::usage(format!(
                "--download {}: exists and is not a directory",
                dir.display()
            )));
        }
        Ok(Plan {
            download: args.download.clone(),
            timeout,
            cancel_on_interrupt: args.cancel_on_interrupt,
        })
    }
}

fn install_interrupt() -> Result<Interrupt, Failure> {
    Interrupt::install().map_err(|e| {
        Failure::new(
            ExitClass::Other,
            format!("could not install the Ctrl-C handler: {e}"),
        )
    })
}

/// A file saved by `--download`.
#[derive(Debug, Serialize)]
struct SavedFile {
    path: PathBuf,
    url: String,
    content_type: Option<String>,
    bytes: u64,
}

/// The JSON result of `run` and `wait`.
#[derive(Debug, Serialize)]
struct Finished<'a> {
    request_id: &'a str,
    endpoint: Option<&'a str>,
    status: &'static str,
    output: &'a Value,
    metrics: Option<&'a reka_inference::types::Metrics>,
    /// What the service charged, when the record says.
    price_usd: Option<f64>,
    files: &'a [SavedFile],
}

#[allow(clippy::too_many_arguments)]
async fn follow(
    ctx: &Ctx,
    client: &Client,
    job: Job,
    endpoint: Option<String>,
    plan: &Plan,
    interrupt: &mut Interrupt,
    spinner: JobSpinner,
    began: Instant,
) -> Result<(), Failure> {
    let out = ctx.out;
    let mut options = WaitOptions::default();
    if let Some(t) = plan.timeout {
        options = options.timeout(t);
    }
    let waited = tokio::select! {
        r = wait_for(&job, options, &spinner, &out) => Some(r),
        _ = interrupt.recv() => None,
    };
    if waited.is_some() {
        spinner.clear();
    } else {
        spinner.clear_after_ctrl_c();
    }
    let done = match waited {
        Some(Ok(done)) => done,
        Some(Err(f)) => return Err(f),
        None => return Err(interrupted(ctx, &job, plan.cancel_on_interrupt, interrupt).await),
    };
    let elapsed = began.elapsed();
    let files = match &plan.download {
        Some(dir) => download(ctx, client, &done, dir, interrupt).await?,
        None => Vec::new(),
    };
    if out.json {
        out.json_value(&Finished {
            request_id: &done.request_id,
            endpoint: endpoint.as_deref(),
            status: "COMPLETED",
            output: &done.output,
            metrics: done.metrics.as_ref(),
            price_usd: done.price_usd(),
            files: &files,
        });
        return Ok(());
    }
    let mut line = format!("completed {}", done.request_id);
    if let Some(e) = &endpoint {
        line.push_str(&format!(" ({e})"));
    }
    line.push_str(&format!(" in {}", human(elapsed)));
    if let Some(m) = metrics_text(done.metrics.as_ref()) {
        line.push_str(&format!(", {m}"));
        if ctx.is_sim() {
            line.push_str(" on the simulator's clock");
        }
    }
    if let Some(price) = done.price_usd() {
        line.push_str(&format!(", {}", price_text(price)));
    }
    out.line(line);
    print_output(&out, &done.output);
    for f in &files {
        out.line(format!(
            "saved {} ({})",
            f.path.display(),
            human_bytes(f.bytes)
        ));
    }
    Ok(())
}

/// Waits for the job: with the event stream (status, queue position, log
/// lines) when a person is watching, else with the plain wait, which polls
/// less.
async fn wait_for(
    job: &Job,
    options: WaitOptions,
    spinner: &JobSpinner,
    out: &Output,
) -> Result<JobOutput, Failure> {
    let id = job.id().to_owned();
    let failed = |e: Error| job_failure(e, &id);
    if !out.progress {
        return job.wait_with(options).await.map_err(failed);
    }
    let mut events = pin!(job.events_with(options));
    while let Some(event) = events.next().await {
        match event.map_err(failed)? {
            JobEvent::Queued { position } => spinner.status(match position {
                Some(0) => "queued, next in line".to_owned(),
                Some(n) => format!("queued, {n} ahead"),
                None => "queued".to_owned(),
            }),
            JobEvent::Started => spinner.status("running"),
            JobEvent::Log(entry) => spinner.println(format!("  {}", log_line(&entry))),
            JobEvent::UnknownStatus(s) => spinner.status(format!("status {s}")),
            JobEvent::Completed(done) => return Ok(done),
            JobEvent::Failed { error, .. } => {
                return Err(Failure::new(
                    ExitClass::JobFailed,
                    format!("job {id} failed: {}", job_error_text(error.as_ref())),
                )
                .about_job(&id));
            }
            JobEvent::Cancelled => {
                return Err(Failure::new(
                    ExitClass::JobCancelled,
                    format!("job {id} was cancelled"),
                )
                .about_job(&id));
            }
            _ => {}
        }
    }
    Err(Failure::new(
        ExitClass::Other,
        format!("stopped hearing about job {id} before it finished"),
    )
    .about_job(&id))
}

/// A wait's error as a failure; a deadline says how to resume.
fn job_failure(e: Error, id: &str) -> Failure {
    match &e {
        Error::Timeout {
            request_id,
            last_status,
            elapsed,
            ..
        } => {
            let status = last_status
                .as_ref()
                .map_or("unknown (no look succeeded)".to_owned(), |s| {
                    format!("still {s}")
                });
            Failure::new(
                ExitClass::Timeout,
                format!(
                    "stopped waiting for job {request_id} after {} (--timeout); it is {status} \
                     and keeps running",
                    human(*elapsed)
                ),
            )
            .about_job(request_id)
            .with_hint(format!("resume with: reka-inference wait {request_id}"))
        }
        Error::JobFailed { error, .. } => Failure::new(
            ExitClass::JobFailed,
            format!("job {id} failed: {}", job_error_text(error.as_deref())),
        )
        .about_job(id),
        _ => Failure::from(e).about_job(id),
    }
}

/// How long the cancel sent on Ctrl-C may take.
const CANCEL_BOUND: Duration = Duration::from_secs(10);

/// Ctrl-C during the wait: leave the job running and say how to resume,
/// or cancel it.
async fn interrupted(ctx: &Ctx, job: &Job, cancel: bool, interrupt: &mut Interrupt) -> Failure {
    let id = job.id();
    let message = if cancel {
        // A second Ctrl-C, or a server that does not answer in time, ends
        // the attempt: the person asked to stop.
        let cancelled = tokio::select! {
            r = tokio::time::timeout(CANCEL_BOUND, job.cancel()) => r.unwrap_or_else(|_| {
                Err(Error::InvalidInput(format!("no answer within {}", human(CANCEL_BOUND))))
            }),
            _ = interrupt.recv() => {
                ctx.out.note(&format!("interrupted again: job {id} may still be running"));
                std::process::exit(i32::from(ExitClass::Interrupted.code()));
            }
        };
        match cancelled {
            Ok(record) if record.status == JobStatus::Cancelled => {
                format!("interrupted: cancelled job {id}")
            }
            Ok(record) => format!(
                "interrupted: job {id} had already finished ({}); nothing to cancel",
                record.status
            ),
            Err(e) => format!(
                "interrupted: could not cancel job {id} ({e}); it may still be running. {}",
                ctx.resume_text(id)
            ),
        }
    } else {
        format!(
            "interrupted: stopped waiting; job {id} keeps running. {}",
            ctx.resume_text(id)
        )
    };
    Failure::new(ExitClass::Interrupted, message).about_job(id)
}

/// Saves the output files into `dir`, with a bar per file.
async fn download(
    ctx: &Ctx,
    client: &Client,
    done: &JobOutput,
    dir: &Path,
    interrupt: &mut Interrupt,
) -> Result<Vec<SavedFile>, Failure> {
    let media = done.media();
    if media.is_empty() {
        ctx.out.note("the output has no files to download");
        return Ok(Vec::new());
    }
    let mut bars = DownloadBars::new(&ctx.out, media.len());
    let fetched = tokio::select! {
        r = client.download_outputs_with_progress(done, dir, |i, _, p| bars.update(i, p)) => Some(r),
        _ = interrupt.recv() => None,
    };
    bars.clear();
    let id = &done.request_id;
    let paths = match fetched {
        Some(r) => r.map_err(|e| {
            Failure::from(e).about_job(id).with_hint(format!(
                "try again with: reka-inference wait {id} --download {}",
                dir.display()
            ))
        })?,
        None => {
            return Err(Failure::new(
                ExitClass::Interrupted,
                format!(
                    "interrupted during the download; job {id} is complete. {}",
                    if ctx.is_sim() {
                        "The in-process simulator stops with this command.".to_owned()
                    } else {
                        format!(
                            "Download again with: reka-inference wait {id} --download {}",
                            dir.display()
                        )
                    }
                ),
            )
            .about_job(id));
        }
    };
    let mut files = Vec::with_capacity(paths.len());
    for (path, m) in paths.into_iter().zip(media) {
        let bytes = std::fs::metadata(&path).map(|md| md.len()).unwrap_or(0);
        files.push(SavedFile {
            path,
            url: m.url,
            content_type: m.content_type,
            bytes,
        });
    }
    Ok(files)
}

/// `--webhook-listen ADDR [--webhook-url URL]`: a receiver listening.
#[cfg(feature = "webhooks")]
pub async fn listen(
    addr: &str,
    public_url: Option<&str>,
) -> Result<reka_inference::webhook::WebhookReceiver, Failure> {
    let addr: std::net::SocketAddr = addr.trim().parse().map_err(|_| {
        Failure::usage(format!(
            "--webhook-listen {addr:?}: not an address; use HOST:PORT, e.g. 0.0.0.0:8080"
        ))
    })?;
    reka_inference::webhook::WebhookReceiver::listen(addr, public_url)
        .await
        .map_err(|e| {
            Failure::new(
                ExitClass::Other,
                format!("--webhook-listen {addr}: could not listen: {e}"),
            )
        })
}
