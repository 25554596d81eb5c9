//! `list`: past and current requests, newest first.

use clap::Args;
use futures::TryStreamExt;
use reka_inference::types::RequestItem;
use reka_inference::{JobStatus, ListFilter};

use crate::commands::{Ctx, parse_endpoint};
use crate::exit::Failure;
use crate::output::table;
use crate::time::parse_time;

/// `list`.
#[derive(Debug, Args)]
#[command(after_help = "\
Times (--since, --until): RFC 3339 (2025-01-31T12:00:00Z), a date (2025-01-31, UTC),
or an age: 30m, 1h, 2d means that long ago.")]
pub struct ListArgs {
    /// Only this endpoint, MODEL/CAPABILITY.
    #[arg(long, value_name = "ENDPOINT")]
    pub endpoint: Option<String>,

    /// Only this model, e.g. veo-3.1.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,

    /// Only this capability, e.g. text-to-image.
    #[arg(long, value_name = "CAPABILITY")]
    pub capability: Option<String>,

    /// Only this status: IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED or
    /// CANCELLED (any case).
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,

    /// Only requests created at or after this time.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only requests created before this time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Include each request's input, output and error.
    #[arg(long)]
    pub payloads: bool,

    /// Show at most this many requests.
    #[arg(long, value_name = "N", default_value_t = 20, conflicts_with = "all")]
    pub limit: u64,

    /// Show every matching request (pages are fetched as needed).
    #[arg(long)]
    pub all: bool,
}

/// Lists requests.
pub async fn run(ctx: &mut Ctx, args: ListArgs) -> Result<(), Failure> {
    let filter = filter(&args, chrono::Utc::now())?;
    // One more than asked, to tell whether more match.
    let shown = (!args.all).then_some(args.limit);
    let filter = match shown {
        Some(n) => {
            let wanted = n.saturating_add(1);
            let page = u32::try_from(wanted).unwrap_or(u32::MAX);
            filter.limit(wanted).page_size(page)
        }
        None => filter,
    };
    let client = ctx.client().await?;
    let mut items: Vec<RequestItem> = client.jobs().list(filter).try_collect().await?;
    let more = shown.is_some_and(|n| items.len() as u64 > n);
    if let Some(n) = shown {
        items.truncate(usize::try_from(n).unwrap_or(usize::MAX));
    }
    let out = ctx.out;
    if out.json {
        out.json_value(&items);
        return Ok(());
    }
    if items.is_empty() {
        out.note("no jobs match");
        return Ok(());
    }
    let mut rows = vec![vec![
        "REQUEST ID".to_owned(),
        "STATUS".to_owned(),
        "ENDPOINT".to_owned(),
        "CREATED".to_owned(),
    ]];
    for item in &items {
        rows.push(vec![
            item.request_id.clone(),
            item.status.to_string(),
            item.endpoint_id.clone().unwrap_or_else(|| "-".into()),
            item.created_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    for (i, line) in table(&rows).into_iter().enumerate() {
        out.line(line);
        if args.payloads && i > 0 {
            let item = &items[i - 1];
            for (name, value) in [
                ("input", item.input.as_ref().map(serde_json::to_string)),
                ("output", item.output.as_ref().map(serde_json::to_string)),
                ("error", item.error.as_ref().map(serde_json::to_string)),
            ] {
                if let Some(Ok(text)) = value {
                    out.line(format!("    {name}: {text}"));
                }
            }
        }
    }
    if more {
        out.note(&format!(
            "showing the newest {}; more match (--limit N or --all for more)",
            items.len()
        ));
    }
    Ok(())
}

/// The filter, checked.
fn filter(args: &ListArgs, now: chrono::DateTime<chrono::Utc>) -> Result<ListFilter, Failure> {
    let mut filter = ListFilter::default().payloads(args.payloads);
    if let Some(e) = &args.endpoint {
        filter = filter.endpoint(parse_endpoint("--endpoint", e)?);
    }
    if let Some(m) = &args.model {
        filter = filter.model(non_empty("--model", m)?);
    }
    if let Some(c) = &args.capability {
        filter = filter.capability(non_empty("--capability", c)?);
    }
    if let Some(s) = &args.status {
        filter = filter.status(parse_status(s)?);
    }
    if let Some(t) = &args.since {
        filter = filter.start(parse_time("--since", t, now)?);
    }
    if let Some(t) = &args.until {
        filter = filter.end(parse_time("--until", t, now)?);
    }
    if let (Some(start), Some(end)) = (filter.start, filter.end)
        && start >= end
    {
        return Err(Failure::usage(format!(
            "--since ({start}) is not before --until ({end})"
        )));
    }
    if !args.all && args.limit == 0 {
        return Err(Failure::usage("--limit 0: ask for at least one job"));
    }
    Ok(filter)
}

fn non_empty<'a>(flag: &str, text: &'a str) -> Result<&'a str, Failure> {
    let t = text.trim();
    if t.is_empty() || t.contains('/') || t.chars().any(char::is_whitespace) {
        return Err(Failure::usage(format!(
            "{flag} {text:?}: not a valid value"
        )));
    }
    Ok(t)
}

/// A status name, in any case, `-` or `_`.
fn parse_status(text: &str) -> Result<JobStatus, Failure> {
    let norm = text.trim().to_ascii_uppercase().replace('-', "_");
    Ok(match norm.as_str() {
        "IN_QUEUE" | "QUEUED" => JobStatus::InQueue,
        "IN_PROGRESS" | "RUNNING" => JobStatus::InProgress,
        "COMPLETED" => JobStatus::Completed,
        "FAILED" => JobStatus::Failed,
        "CANCELLED" | "CANCELED" => JobStatus::Cancelled,
        _ => {
            return Err(Failure::usage(format!(
                "--status {text:?}: not a status; use IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED or CANCELLED"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_in_any_case() {
        assert_eq!(parse_status("completed").unwrap(), JobStatus::Completed);
        assert_eq!(parse_status("in-queue").unwrap(), JobStatus::InQueue);
        assert_eq!(parse_status("Canceled").unwrap(), JobStatus::Cancelled);
        assert!(parse_status("done").is_err());
    }
}
