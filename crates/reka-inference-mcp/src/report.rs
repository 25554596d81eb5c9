//! What a tool answers about a job: `structuredContent` (request id,
//! status, endpoint, price, session total, output URLs and the absolute
//! paths of the files saved) beside a short text an agent can act on, the
//! files as `resource_link`s, and small images and audio inline.

use std::path::{Path, PathBuf};

use base64::Engine;
use reka_inference::input::{InputFile, sniff_media_type};
use reka_inference::{JobOutput, MediaRef};
use rmcp::model::{CallToolResult, ContentBlock, Resource};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::ledger::Spend;
use crate::local_files::SentFile;

/// A job as every job tool reports it.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct JobReport {
    /// The request id: what `wait_for_job`, `job_status`, `job_result` and
    /// `cancel_job` take.
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `IN_QUEUE`, `IN_PROGRESS`, `COMPLETED`, `FAILED`, `CANCELLED`, or a
    /// status this version does not know.
    pub status: String,
    /// Whether the job has finished (any terminal status).
    pub done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u64>,
    /// What the service charged for the job, when its record says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_usd: Option<f64>,
    /// What the jobs this server submitted cost so far, as reported.
    pub session_spend_usd: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_budget_usd: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<SavedOutput>,
    /// The output object (inline files elided: see `outputs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub input_files: Vec<SentFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step: Option<String>,
}

impl JobReport {
    /// A report with the session's spend filled in.
    pub(crate) fn new(request_id: &str, endpoint: Option<&str>, spend: Spend) -> JobReport {
        JobReport {
            request_id: request_id.to_owned(),
            endpoint: endpoint.map(str::to_owned),
            session_spend_usd: round_usd(spend.reported_usd),
            session_budget_usd: spend.budget_usd,
            ..JobReport::default()
        }
    }

    /// `<endpoint> job <id>` for texts.
    pub(crate) fn job_words(&self) -> String {
        match &self.endpoint {
            Some(e) => format!("{e} job {}", self.request_id),
            None => format!("job {}", self.request_id),
        }
    }

    /// `$0.04 (session total $0.12)` or the session total alone.
    pub(crate) fn money_words(&self) -> String {
        let total = format!("session total {}", usd(self.session_spend_usd));
        match self.price_usd {
            Some(p) => format!("{} ({total})", usd(p)),
            None => format!("price not reported ({total})"),
        }
    }

    /// The tool result: this report as `structuredContent`, `text` first
    /// in `content`, then `extra`.
    pub(crate) fn into_result(
        self,
        text: String,
        extra: Vec<ContentBlock>,
        is_error: bool,
    ) -> CallToolResult {
        let structured = serde_json::to_value(&self).unwrap_or(Value::Null);
        let mut content = vec![ContentBlock::text(text)];
        content.extend(extra);
        let mut result = if is_error {
            CallToolResult::error(content)
        } else {
            CallToolResult::success(content)
        };
        result.structured_content = Some(structured);
        result
    }
}

/// One output file: where it came from and where it was saved.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct SavedOutput {
    /// The output's URL (absent for files sent inline as `data:` URIs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The absolute path of the saved file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A `file://` URI of the saved file (readable with `resources/read`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Where in the output object it was found.
    pub pointer: String,
}

/// Money with cents, or more digits below a cent.
pub(crate) fn usd(v: f64) -> String {
    if v > 0.0 && v < 0.01 {
        format!("${v:.4}")
    } else {
        format!("${v:.2}")
    }
}

/// `v` rounded to a hundredth of a cent (sums of floats drift).
pub(crate) fn round_usd(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// The output object with every inline `data:` URI replaced by a short
/// note: the files are in `outputs`, and an agent's context is not the
/// place for megabytes of base64.
pub(crate) fn elide_inline_files(value: &Value) -> Value {
    match value {
        Value::String(s)
            if s.len() > 64 && s.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("data:")) =>
        {
            let media = s[5..].split([';', ',']).next().unwrap_or("");
            Value::String(format!(
                "data:{media} ({} characters, saved: see outputs)",
                s.len()
            ))
        }
        Value::Array(items) => Value::Array(items.iter().map(elide_inline_files).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), elide_inline_files(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The media type of a saved file: from its first bytes, else what the
/// output said.
async fn media_type_of(path: &Path, declared: Option<&str>) -> Option<String> {
    let mut head = [0u8; 64];
    let mut read = 0;
    if let Ok(mut file) = tokio::fs::File::open(path).await {
        while read < head.len() {
            match file.read(&mut head[read..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    }
    sniff_media_type(&head[..read])
        .map(str::to_owned)
        .or_else(|| declared.map(|d| d.split(';').next().unwrap_or(d).trim().to_owned()))
}

/// Describes the files of `done` saved at `paths` (in output order): the
/// structured entries, a `resource_link` per file, and `image` / `audio`
/// content for those of at most `inline_max` bytes.
pub(crate) async fn describe_outputs(
    done: &JobOutput,
    paths: &[PathBuf],
    inline_max: u64,
) -> (Vec<SavedOutput>, Vec<ContentBlock>) {
    let media: Vec<MediaRef> = done.media();
    let mut saved = Vec::new();
    let mut inline = Vec::new();
    let mut links = Vec::new();
    for (i, m) in media.iter().enumerate() {
        let remote = m
            .url
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("http"))
            .then(|| m.url.clone());
        let path = paths.get(i);
        let bytes = match path {
            Some(p) => tokio::fs::metadata(p).await.ok().map(|meta| meta.len()),
            None => None,
        };
        let media_type = match path {
            Some(p) => media_type_of(p, m.content_type.as_deref()).await,
            None => m.content_type.clone(),
        };
        let file_uri = path
            .and_then(|p| url::Url::from_file_path(p).ok())
            .map(|u| u.to_string());
        let name = path
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{}-{i}", done.request_id));
        if let (Some(p), Some(kind), Some(size)) = (path, media_type.as_deref(), bytes)
            && inline_max > 0
            && size <= inline_max
            && (kind.starts_with("image/") || kind.starts_with("audio/"))
            && let Ok(file) = InputFile::from_path_with_limit(p, inline_max).await
        {
            let data = base64::engine::general_purpose::STANDARD.encode(file.bytes());
            inline.push(if kind.starts_with("image/") {
                ContentBlock::image(data, kind)
            } else {
                ContentBlock::audio(data, kind)
            });
        }
        if let Some(uri) = remote.clone().or_else(|| file_uri.clone()) {
            let mut link = Resource::new(uri, name);
            link.mime_type = media_type.clone();
            link.size = bytes;
            link.description = path.map(|p| format!("saved at {}", p.display()));
            links.push(ContentBlock::resource_link(link));
        }
        saved.push(SavedOutput {
            url: remote,
            path: path.map(|p| p.display().to_string()),
            file_uri,
            media_type,
            bytes,
            pointer: m.pointer.clone(),
        });
    }
    inline.extend(links);
    (saved, inline)
}

/// The service's `error` object of a failed job, as JSON.
pub(crate) fn error_value(error: Option<&reka_inference::types::JobError>) -> Option<Value> {
    error.map(|e| json!({"type": e.type_, "message": e.message, "code": e.code}))
}

/// The service's message of a failed job.
pub(crate) fn error_words(error: Option<&reka_inference::types::JobError>) -> String {
    match error {
        Some(e) => match (&e.type_, &e.message) {
            (Some(t), Some(m)) => format!("{t}: {m}"),
            (None, Some(m)) => m.clone(),
            (Some(t), None) => t.clone(),
            (None, None) => "the service gave no reason".into(),
        },
        None => "the service gave no reason".into(),
    }
}

/// Scrubs every secret from a tool result (text, structured content,
/// links), should a server message ever echo one.
pub(crate) fn redact(result: CallToolResult, secrets: &[String]) -> CallToolResult {
    if secrets.is_empty() {
        return result;
    }
    fn scrub(value: &mut Value, secrets: &[String]) {
        match value {
            Value::String(s) => {
                for secret in secrets {
                    if s.contains(secret.as_str()) {
                        *s = s.replace(secret.as_str(), "<redacted>");
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| scrub(v, secrets)),
            Value::Object(map) => map.values_mut().for_each(|v| scrub(v, secrets)),
            _ => {}
        }
    }
    let Ok(mut value) = serde_json::to_value(&result) else {
        return result;
    };
    scrub(&mut value, secrets);
    serde_json::from_value(value).unwrap_or(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_shown_with_cents_or_finer() {
        assert_eq!(usd(0.04), "$0.04");
        assert_eq!(usd(1.5), "$1.50");
        assert_eq!(usd(0.0042), "$0.0042");
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(round_usd(0.1 + 0.2), 0.3);
    }

    #[test]
    fn inline_files_are_elided_from_the_output() {
        let big = format!("data:image/png;base64,{}", "A".repeat(1000));
        let out = json!({"images": [{"url": big}], "note": "data:short"});
        let shown = elide_inline_files(&out);
        let url = shown["images"][0]["url"].as_str().unwrap();
        assert!(url.starts_with("data:image/png (1022 characters"), "{url}");
        assert_eq!(shown["note"], "data:short");
    }

    #[test]
    fn secrets_are_scrubbed_everywhere() {
        let report = JobReport {
            request_id: "r1".into(),
            error: Some(json!({"message": "bad key sk-live-123 given"})),
            ..JobReport::default()
        };
        let result = report.into_result(
            "the key sk-live-123 leaked".into(),
            vec![ContentBlock::text("again sk-live-123")],
            true,
        );
        let result = redact(result, &["sk-live-123".to_owned()]);
        let text = serde_json::to_string(&result).unwrap();
        assert!(!text.contains("sk-live-123"), "{text}");
        assert!(text.contains("<redacted>"));
        assert_eq!(result.is_error, Some(true));
    }

    #[tokio::test]
    async fn a_small_image_is_inline_and_every_file_is_linked() {
        let dir = tempfile::tempdir().unwrap();
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        let small = dir.path().join("r-0.png");
        std::fs::write(&small, &png).unwrap();
        let big = dir.path().join("r-1.png");
        let mut big_bytes = png.clone();
        big_bytes.resize(5000, 0);
        std::fs::write(&big, &big_bytes).unwrap();
        let record: reka_inference::types::ResultResponse = serde_json::from_value(json!({
            "request_id": "r", "status": "COMPLETED",
            "output": {"images": [
                {"url": "https://cdn.example/a", "content_type": "image/png"},
                {"url": "https://cdn.example/b"}
            ]}
        }))
        .unwrap();
        let done = JobOutput::from_record(record);
        let (saved, content) = describe_outputs(&done, &[small.clone(), big.clone()], 1024).await;
        assert_eq!(saved.len(), 2);
        assert_eq!(saved[1].media_type.as_deref(), Some("image/png"));
        assert_eq!(saved[1].bytes, Some(5000));
        assert_eq!(saved[0].path.as_deref(), Some(small.to_str().unwrap()));
        let images: Vec<_> = content.iter().filter_map(|c| c.as_image()).collect();
        assert_eq!(images.len(), 1, "only the small one is inline");
        assert_eq!(images[0].mime_type, "image/png");
        let links: Vec<_> = content
            .iter()
            .filter_map(|c| c.as_resource_link())
            .collect();
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].uri, "https://cdn.example/a");
        assert_eq!(links[1].size, Some(5000));
    }
}
