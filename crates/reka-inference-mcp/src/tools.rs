//! The tools, with their arguments' JSON Schemas (from the types below) and
//! the descriptions an agent reads to choose and call them.
//!
//! Every failure a caller can act on (a job that failed, an input the
//! service refused, an unknown endpoint, a budget reached, a file outside
//! the allowed directories) is a tool result with `isError: true` and words
//! saying what to do, never a protocol error.

use std::str::FromStr;
use std::time::Duration;

use futures::StreamExt;
use reka_inference::{Endpoint, JobStatus, ListFilter};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, tool, tool_router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::endpoints::{endpoint_id, fields_of};
use crate::report::JobReport;
use crate::server::{Server, check_request_id, error_text, tool_error};
use crate::wait::{Observed, Waited, ended};

/// The most jobs `list_jobs` returns.
const MAX_LISTED: u32 = 100;

/// How long `list_jobs` may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(60);

/// Arguments of `list_models`.
#[derive(Debug, Default, Deserialize, Serialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ListModelsArgs {
    /// Only endpoints of this capability: text-to-image, edit,
    /// text-to-video, image-to-video, text-to-speech or image-to-bbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability: Option<String>,
}

/// Arguments of `generate` and `submit_job`.
#[derive(Debug, Deserialize, Serialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct GenerateArgs {
    /// The endpoint, `<model>/<capability>` exactly as list_models gives
    /// it, e.g. `nano-banana/text-to-image`.
    pub endpoint: String,
    /// The job's input object; its fields depend on the endpoint
    /// (list_models lists them), e.g. `{"prompt": "a lighthouse at dusk"}`.
    /// An image field (`image_url`) takes an https URL, a data: URI, or a
    /// local file as an absolute path or file:// URI under a directory the
    /// server allows.
    pub input: Map<String, Value>,
    /// generate only: seconds to wait for the result before answering
    /// (default 45; 0 answers at once). A job not done by then keeps
    /// running: finish it with wait_for_job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub wait_seconds: Option<f64>,
}

/// Arguments of `wait_for_job`.
#[derive(Debug, Deserialize, Serialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct WaitArgs {
    /// The request_id that generate, submit_job or list_jobs gave.
    pub request_id: String,
    /// Seconds to wait before answering (default 45; 0 answers at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub wait_seconds: Option<f64>,
}

/// Arguments of `job_status`.
#[derive(Debug, Deserialize, Serialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct StatusArgs {
    /// The request_id that generate, submit_job or list_jobs gave.
    pub request_id: String,
    /// Also return the job's log lines (the last 20).
    #[serde(default)]
    pub logs: bool,
}

/// Arguments of `job_result` and `cancel_job`.
#[derive(Debug, Deserialize, Serialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct JobArgs {
    /// The request_id that generate, submit_job or list_jobs gave.
    pub request_id: String,
}

/// Arguments of `list_jobs`.
#[derive(Debug, Default, Deserialize, Serialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ListJobsArgs {
    /// Only jobs of this endpoint, `<model>/<capability>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Only jobs in this status: IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED
    /// or CANCELLED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// How many jobs, newest first (default 20, at most 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
}

fn as_map(value: &impl Serialize) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// A result with `structured` content and `text`.
fn structured(structured: Value, text: String) -> CallToolResult {
    let mut result = CallToolResult::success(vec![rmcp::model::ContentBlock::text(text)]);
    result.structured_content = Some(structured);
    result
}

#[tool_router(vis = "pub(crate)")]
impl Server {
    /// `list_models`.
    #[tool(
        title = "List the generation endpoints",
        description = "List the endpoints jobs can be submitted to (image, video, speech and \
bounding-box models), each as `<model>/<capability>` with its title, description and the input \
fields it takes (from the service's schema when it sends one, else inferred: \
`input_fields_source` says which) and its price when known. The service's own error says \
when an input is wrong. Free: creates no job. Call this first to pick \
`endpoint` and build `input` for generate or submit_job.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn list_models(
        &self,
        Parameters(args): Parameters<ListModelsArgs>,
    ) -> Result<CallToolResult, McpError> {
        let shared = &self.shared;
        let models = match shared.models.get(&shared.client).await {
            Ok(m) => m,
            Err(e) => {
                return Ok(tool_error(format!(
                    "the model list could not be had: {}",
                    error_text(&e)
                )));
            }
        };
        let wanted = args.capability.as_deref().map(str::trim);
        let mut entries = Vec::new();
        let mut lines = Vec::new();
        for m in &models {
            if wanted.is_some_and(|c| !c.eq_ignore_ascii_case(&m.capability)) {
                continue;
            }
            let id = endpoint_id(m);
            let (fields, source) = fields_of(m);
            let field_words: Vec<String> = fields
                .iter()
                .filter_map(|f| {
                    let name = f.get("name")?.as_str()?;
                    Some(if f.get("required") == Some(&json!(true)) {
                        format!("{name} (required)")
                    } else {
                        name.to_owned()
                    })
                })
                .collect();
            lines.push(format!(
                "- {id}: {}{}{}",
                m.title.as_deref().unwrap_or(&m.capability),
                m.price_usd
                    .filter(|p| p.is_finite() && *p >= 0.0)
                    .map_or(String::new(), |p| format!(" (${p:.3} a job)")),
                if field_words.is_empty() {
                    String::new()
                } else {
                    format!("; input: {}", field_words.join(", "))
                }
            ));
            entries.push(json!({
                "endpoint": id,
                "model": m.model_id,
                "capability": m.capability,
                "title": m.title,
                "description": m.description,
                "price_usd": m.price_usd,
                "input_fields": fields,
                "input_fields_source": source,
            }));
        }
        let text = if entries.is_empty() {
            match wanted {
                Some(c) => format!(
                    "No endpoint of capability {c:?}; list_models without a capability lists all."
                ),
                None => "The service lists no endpoints for this key.".to_owned(),
            }
        } else {
            format!(
                "{} endpoint(s); every job costs money:\n{}",
                entries.len(),
                lines.join("\n")
            )
        };
        Ok(structured(
            json!({
                "endpoints": entries,
            }),
            text,
        ))
    }

    /// `generate`.
    #[tool(
        title = "Generate (submit a paid job and wait for it)",
        description = "COSTS MONEY: creates a paid generation job (image, video, speech or \
bounding boxes) on `endpoint` with `input`, then waits up to `wait_seconds` (default 45) for it. \
Done in time: the output files are saved on the user's machine (absolute paths in the result), \
linked, and small images and audio are shown. Not done in time: the answer gives the job's \
`request_id` and status; the job keeps running and is never lost: call wait_for_job with that \
request_id (free) until it is done, and do NOT call generate again for it, which would pay for a \
second job. A failed job (refused input, moderation, provider error) is an error result with the \
service's message. Retrying the very same call does not pay twice. Local files may be used as \
inputs (e.g. `image_url` as an absolute path or file:// URI) only under the directories the \
server allows.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn generate(
        &self,
        Parameters(args): Parameters<GenerateArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let shared = &self.shared;
        let typed = as_map(&args);
        let wait = shared.wait_of(args.wait_seconds);
        let submitted = match shared
            .submit_for_call("generate", &typed, &args.endpoint, args.input, &context)
            .await
        {
            Ok(s) => s,
            Err(why) => return Ok(tool_error(why)),
        };
        Ok(shared
            .wait_and_report(
                &submitted.job,
                Some(&submitted.endpoint),
                wait,
                submitted.sent_files,
                &context,
            )
            .await)
    }

    /// `submit_job`.
    #[tool(
        title = "Submit a paid job without waiting",
        description = "COSTS MONEY: creates a paid generation job on `endpoint` with `input`, as \
generate does, but answers at once with its `request_id` instead of waiting. Use it to start \
several jobs in parallel, then call wait_for_job on each (free). Retrying the very same call does \
not pay twice.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn submit_job(
        &self,
        Parameters(args): Parameters<GenerateArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let shared = &self.shared;
        let typed = as_map(&args);
        let submitted = match shared
            .submit_for_call("submit_job", &typed, &args.endpoint, args.input, &context)
            .await
        {
            Ok(s) => s,
            Err(why) => return Ok(tool_error(why)),
        };
        let id = submitted.job.id().to_owned();
        let mut report = JobReport::new(&id, Some(&submitted.endpoint), shared.ledger.spend());
        report.status = "IN_QUEUE".into();
        report.input_files = submitted.sent_files;
        report.next_step = Some(format!(
            "call wait_for_job with request_id \"{id}\" to get its result (free)"
        ));
        let text = format!(
            "Submitted: the {} is queued. Call wait_for_job with request_id \"{id}\" to get its \
             result.",
            report.job_words()
        );
        Ok(report.into_result(text, Vec::new(), false))
    }

    /// `wait_for_job`.
    #[tool(
        title = "Wait for a job",
        description = "Free: waits up to `wait_seconds` (default 45) for a job submitted earlier \
(by generate or submit_job) and returns its result as generate does: saved files, links, small \
images and audio inline. Still running by then: the answer says so, and calling wait_for_job again \
goes on waiting. Never submits or pays.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn wait_for_job(
        &self,
        Parameters(args): Parameters<WaitArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let shared = &self.shared;
        let id = match check_request_id(&args.request_id) {
            Ok(id) => id,
            Err(why) => return Ok(tool_error(why)),
        };
        let job = shared.job(id);
        let wait = shared.wait_of(args.wait_seconds);
        Ok(shared
            .wait_and_report(&job, None, wait, Vec::new(), &context)
            .await)
    }

    /// `job_status`.
    #[tool(
        title = "Look at a job",
        description = "Free, answers at once: where a job is now (IN_QUEUE with its place in the \
queue, IN_PROGRESS, COMPLETED, FAILED or CANCELLED), and with `logs: true` its last log lines. \
To get a finished job's files, call job_result or wait_for_job.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn job_status(
        &self,
        Parameters(args): Parameters<StatusArgs>,
    ) -> Result<CallToolResult, McpError> {
        let shared = &self.shared;
        let id = match check_request_id(&args.request_id) {
            Ok(id) => id,
            Err(why) => return Ok(tool_error(why)),
        };
        let job = shared.job(id);
        let looked = if args.logs {
            job.status_with_logs().await
        } else {
            job.status().await
        };
        let status = match looked {
            Ok(s) => s,
            Err(e) => {
                return Ok(tool_error(format!(
                    "could not look at job {id}: {}",
                    error_text(&e)
                )));
            }
        };
        let done = status.status.is_terminal() == Some(true);
        if done && shared.ledger.is_ours(id) {
            // Settle its price now, so that the budget is up to date.
            if let Ok(record) = job.result().await {
                let price = reka_inference::JobOutput::from_record(record).price_usd();
                shared
                    .ledger
                    .finished(id, shared.endpoint_of(id).as_deref(), price);
            }
        }
        let endpoint = shared.endpoint_of(id);
        let mut report = JobReport::new(id, endpoint.as_deref(), shared.ledger.spend());
        report.status = status.status.as_str().to_owned();
        report.done = done;
        report.queue_position = status.queue_position;
        let logs = status.logs.unwrap_or_default();
        let skip = logs.len().saturating_sub(20);
        report.logs = logs.into_iter().skip(skip).map(|l| l.message).collect();
        report.next_step = Some(if done {
            format!("call job_result with request_id \"{id}\" for its result")
        } else {
            format!("call wait_for_job with request_id \"{id}\" to wait for it")
        });
        let observed = Observed {
            status: Some(report.status.clone()),
            queue_position: report.queue_position,
            logs: Vec::new(),
        };
        let text = format!(
            "The {} is {}.{}",
            report.job_words(),
            observed.words(),
            match report.logs.last() {
                Some(last) => format!(" Last log line: {last}"),
                None => String::new(),
            }
        );
        Ok(report.into_result(text, Vec::new(), false))
    }

    /// `job_result`.
    #[tool(
        title = "Get a job's result",
        description = "Free, answers at once without waiting: a COMPLETED job's result as \
generate returns it (files saved, linked, small images and audio shown), a FAILED job's error \
(as an error result), or the status of a job still running (then use wait_for_job).",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn job_result(
        &self,
        Parameters(args): Parameters<JobArgs>,
    ) -> Result<CallToolResult, McpError> {
        let shared = &self.shared;
        let id = match check_request_id(&args.request_id) {
            Ok(id) => id,
            Err(why) => return Ok(tool_error(why)),
        };
        let job = shared.job(id);
        let record = match job.result().await {
            Ok(r) => r,
            Err(e) => {
                return Ok(tool_error(format!(
                    "could not get the result of job {id}: {}",
                    error_text(&e)
                )));
            }
        };
        match ended(record, Observed::default()) {
            Waited::Pending(observed) => {
                let endpoint = shared.endpoint_of(id);
                let mut report = JobReport::new(id, endpoint.as_deref(), shared.ledger.spend());
                report.status = observed.status.clone().unwrap_or_default();
                report.next_step = Some(format!(
                    "call wait_for_job with request_id \"{id}\" to wait for it"
                ));
                let text = format!(
                    "The {} is {}: no result yet. Call wait_for_job with request_id \"{id}\" to \
                     wait for it.",
                    report.job_words(),
                    observed.words()
                );
                Ok(report.into_result(text, Vec::new(), false))
            }
            waited => Ok(shared
                .report(&job, None, waited, Duration::ZERO, Vec::new())
                .await),
        }
    }

    /// `cancel_job`.
    #[tool(
        title = "Cancel a job",
        description = "Cancels a queued or running job; a finished job is left as it is. A \
cancelled job produces no output. Use it to stop a job started by mistake or no longer wanted.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn cancel_job(
        &self,
        Parameters(args): Parameters<JobArgs>,
    ) -> Result<CallToolResult, McpError> {
        let shared = &self.shared;
        let id = match check_request_id(&args.request_id) {
            Ok(id) => id,
            Err(why) => return Ok(tool_error(why)),
        };
        let job = shared.job(id);
        let record = match job.cancel().await {
            Ok(r) => r,
            Err(e) => {
                return Ok(tool_error(format!(
                    "could not cancel job {id}: {}",
                    error_text(&e)
                )));
            }
        };
        let endpoint = shared.endpoint_of(id);
        let status = record.status.clone();
        if status.is_terminal() == Some(true) {
            let price = reka_inference::JobOutput::from_record(record).price_usd();
            shared.ledger.finished(id, endpoint.as_deref(), price);
        }
        let mut report = JobReport::new(id, endpoint.as_deref(), shared.ledger.spend());
        report.status = status.as_str().to_owned();
        report.done = status.is_terminal() == Some(true);
        let text = match status {
            JobStatus::Cancelled => format!("Cancelled the {}.", report.job_words()),
            JobStatus::Completed | JobStatus::Failed => format!(
                "The {} had already finished ({}): nothing to cancel. job_result gives its result.",
                report.job_words(),
                report.status
            ),
            _ => {
                report.next_step = Some(format!(
                    "call job_status with request_id \"{id}\" to see it become CANCELLED"
                ));
                format!(
                    "Cancel requested: the {} is still {} and should become CANCELLED shortly.",
                    report.job_words(),
                    report.status
                )
            }
        };
        Ok(report.into_result(text, Vec::new(), false))
    }

    /// `list_jobs`.
    #[tool(
        title = "List recent jobs",
        description = "Free: the most recent jobs of this API key, newest first, optionally only \
those of `endpoint` and in `status` (IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED, CANCELLED); \
`limit` default 20, at most 100. Use it to find a job's request_id again.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn list_jobs(
        &self,
        Parameters(args): Parameters<ListJobsArgs>,
    ) -> Result<CallToolResult, McpError> {
        let shared = &self.shared;
        let limit = args.limit.unwrap_or(20).clamp(1, MAX_LISTED);
        let mut filter = ListFilter::default()
            .limit(u64::from(limit))
            .page_size(limit);
        if let Some(e) = args
            .endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            match Endpoint::new(e) {
                Ok(endpoint) => filter = filter.endpoint(endpoint),
                Err(_) => {
                    return Ok(tool_error(format!(
                        "{e:?} is not an endpoint: expected <model>/<capability>"
                    )));
                }
            }
        }
        if let Some(s) = args
            .status
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match JobStatus::from_str(&s.to_ascii_uppercase()) {
                Ok(JobStatus::Unknown(_)) | Err(_) => {
                    return Ok(tool_error(format!(
                        "{s:?} is not a status: use IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED or \
                         CANCELLED"
                    )));
                }
                Ok(status) => filter = filter.status(status),
            }
        }
        let listing = shared.client.jobs().list(filter);
        let items = tokio::time::timeout(LIST_TIMEOUT, async {
            let mut listing = std::pin::pin!(listing);
            let mut items = Vec::new();
            while let Some(item) = listing.next().await {
                items.push(item?);
                if items.len() >= limit as usize {
                    break;
                }
            }
            Ok::<_, reka_inference::Error>(items)
        })
        .await;
        let items = match items {
            Ok(Ok(items)) => items,
            Ok(Err(e)) => {
                return Ok(tool_error(format!(
                    "could not list the jobs: {}",
                    error_text(&e)
                )));
            }
            Err(_) => {
                return Ok(tool_error(
                    "listing the jobs took too long; try a smaller limit",
                ));
            }
        };
        let mut jobs = Vec::new();
        let mut lines = Vec::new();
        for item in items {
            let endpoint = item.endpoint_id.clone().or_else(|| {
                Some(format!(
                    "{}/{}",
                    item.model_id.as_deref()?,
                    item.capability.as_deref()?
                ))
            });
            if let Some(e) = endpoint.as_deref().and_then(|e| Endpoint::new(e).ok()) {
                shared.remember_endpoint(&item.request_id, &e);
            }
            lines.push(format!(
                "- {} {} {}{}",
                item.request_id,
                endpoint.as_deref().unwrap_or("?"),
                item.status.as_str(),
                item.created_at
                    .map(|t| format!(" (created {})", t.to_rfc3339()))
                    .unwrap_or_default()
            ));
            jobs.push(json!({
                "request_id": item.request_id,
                "endpoint": endpoint,
                "status": item.status.as_str(),
                "created_at": item.created_at,
                "completed_at": item.completed_at,
            }));
        }
        let text = if jobs.is_empty() {
            "No job matches.".to_owned()
        } else {
            format!("{} job(s), newest first:\n{}", jobs.len(), lines.join("\n"))
        };
        Ok(structured(json!({"jobs": jobs}), text))
    }
}
