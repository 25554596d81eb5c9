//! `status`, `result` and `cancel`: one job, by id.

use clap::Args;
use reka_inference::find_media;
use reka_inference::types::ResultResponse;
use reka_inference::{JobOutput, JobStatus};
use serde_json::Value;

use crate::commands::{Ctx, check_id};
use crate::exit::Failure;
use crate::output::{
    Output, indented_json, job_error_text, log_line, media_lines, metrics_text, price_text,
};

/// `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The job's id, as `submit` or `list` printed it.
    pub id: String,
    /// Also show the job's log lines.
    #[arg(long)]
    pub logs: bool,
}

/// `result` and `cancel`: the job they are about.
#[derive(Debug, Args)]
pub struct JobId {
    /// The job's id, as `submit` or `list` printed it.
    pub id: String,
}

/// Prints where a request is.
pub async fn status(ctx: &mut Ctx, id: &str, logs: bool) -> Result<(), Failure> {
    let id = check_id(id)?;
    let client = ctx.client().await?;
    let job = client.job(id);
    let status = if logs {
        job.status_with_logs().await
    } else {
        job.status().await
    }
    .map_err(|e| Failure::from(e).about_job(id))?;
    let out = ctx.out;
    if out.json {
        out.json_value(&status);
        return Ok(());
    }
    let mut line = format!("{}  {}", status.request_id, status.status);
    match (&status.status, status.queue_position) {
        (JobStatus::InQueue, Some(0)) => line.push_str("  (next in line)"),
        (JobStatus::InQueue, Some(n)) => line.push_str(&format!("  ({n} ahead)")),
        _ => {}
    }
    if let Some(m) = metrics_text(status.metrics.as_ref()) {
        line.push_str(&format!("  ({m})"));
    }
    out.line(line);
    for entry in status.logs.iter().flatten() {
        out.line(format!("  {}", log_line(entry)));
    }
    match status.status.is_terminal() {
        Some(true) => out.note(&format!("see the record: reka-inference result {id}")),
        _ => out.note(&format!("wait for it: reka-inference wait {id}")),
    }
    Ok(())
}

/// Prints a request's record.
pub async fn result(ctx: &mut Ctx, id: &str) -> Result<(), Failure> {
    let id = check_id(id)?;
    let client = ctx.client().await?;
    let record = client
        .job(id)
        .result()
        .await
        .map_err(|e| Failure::from(e).about_job(id))?;
    let out = ctx.out;
    if out.json {
        out.json_value(&record);
        return Ok(());
    }
    print_record(&out, &record);
    if record.status.is_terminal() != Some(true) {
        out.note(&format!(
            "no output yet; wait for it: reka-inference wait {id}"
        ));
    }
    Ok(())
}

/// Cancels a request and prints what became of it.
pub async fn cancel(ctx: &mut Ctx, id: &str) -> Result<(), Failure> {
    let id = check_id(id)?;
    let client = ctx.client().await?;
    let record = client
        .job(id)
        .cancel()
        .await
        .map_err(|e| Failure::from(e).about_job(id))?;
    let out = ctx.out;
    if out.json {
        out.json_value(&record);
        return Ok(());
    }
    match record.status.is_terminal() {
        _ if record.status == JobStatus::Cancelled => out.line(format!("cancelled {id}")),
        Some(true) => out.line(format!(
            "{id} had already finished ({}); nothing to cancel",
            record.status
        )),
        // Cancelling a running job can take a while (fal-style services
        // answer at once and stop the job later).
        _ => {
            out.line(format!(
                "cancel requested for {id}; it is still {} for now",
                record.status
            ));
            out.note(&format!(
                "cancelling can take a moment: `reka-inference wait {id}` follows it to its end"
            ));
        }
    }
    Ok(())
}

/// A record as text: the status line, then the output, error or nothing.
pub fn print_record(out: &Output, record: &ResultResponse) {
    let mut line = format!("{}  {}", record.request_id, record.status);
    if let Some(m) = metrics_text(record.metrics.as_ref()) {
        line.push_str(&format!("  ({m})"));
    }
    if let Some(price) = JobOutput::from_record(record.clone()).price_usd() {
        line.push_str(&format!("  {}", price_text(price)));
    }
    out.line(line);
    if record.status == JobStatus::Failed || record.error.is_some() {
        out.line(format!(
            "  error: {}",
            job_error_text(record.error.as_ref())
        ));
    }
    if let Some(output) = &record.output {
        let output = Value::Object(output.clone());
        print_output(out, &output);
    }
}

/// An output: its files, or the whole object when it has none.
pub fn print_output(out: &Output, output: &Value) {
    let media = find_media(output);
    let lines = if media.is_empty() {
        indented_json(output)
    } else {
        media_lines(&media)
    };
    for line in lines {
        out.line(line);
    }
}
