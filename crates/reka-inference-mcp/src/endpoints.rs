//! The endpoints jobs go to: the service's model list (cached a few
//! minutes), the input fields each endpoint takes, and the close matches of
//! an endpoint that does not exist.
//!
//! An entry of the model list may carry its `input_schema` (a JSON Schema
//! of the input; the simulator sends one, the real service documents
//! none): its fields are then the ones listed. Without one, the fields are
//! the ones seen in use for the capability (reference section 13 row 9,
//! labelled INFERRED): hints for the agent, never a check; the service's
//! own 422 answer is the check.

use std::time::Duration;

use reka_inference::Client;
use reka_inference::types::ModelInfo;
use serde::Serialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How long a fetched model list is used.
const CACHE_FOR: Duration = Duration::from_secs(300);

/// One input field an endpoint is known to take.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct InputField {
    /// The field's name in `input`.
    pub name: &'static str,
    /// Its JSON type.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Whether a job without it is refused.
    pub required: bool,
    /// What to put in it.
    pub description: &'static str,
}

const fn field(
    name: &'static str,
    kind: &'static str,
    required: bool,
    description: &'static str,
) -> InputField {
    InputField {
        name,
        kind,
        required,
        description,
    }
}

const IMAGE_URL: &str = "the image: an https URL, a data:image/...;base64 URI, or a local file \
(absolute path or file:// URI) under a directory the server allows";

/// The input fields a capability is known to take (INFERRED).
pub(crate) fn input_fields(capability: &str) -> Vec<InputField> {
    let prompt = |required| {
        field(
            "prompt",
            "string",
            required,
            "what to generate or do, in words",
        )
    };
    match capability {
        "text-to-image" => vec![
            prompt(true),
            field("num_images", "integer", false, "how many images (e.g. 1)"),
            field("aspect_ratio", "string", false, "e.g. \"1:1\", \"16:9\""),
        ],
        "edit" => vec![prompt(true), field("image_url", "string", true, IMAGE_URL)],
        "text-to-video" => vec![
            prompt(true),
            field(
                "duration_seconds",
                "string",
                false,
                "the clip's length in seconds, as a string (e.g. \"5\")",
            ),
            field("aspect_ratio", "string", false, "e.g. \"16:9\""),
        ],
        "image-to-video" => vec![
            field("image_url", "string", true, IMAGE_URL),
            prompt(false),
            field(
                "duration_seconds",
                "string",
                false,
                "the clip's length in seconds, as a string (e.g. \"5\")",
            ),
        ],
        "text-to-speech" => vec![
            field("text", "string", true, "the text to read aloud"),
            field("voice", "string", false, "the voice's name"),
        ],
        "image-to-bbox" => vec![field("image_url", "string", true, IMAGE_URL), prompt(false)],
        _ => Vec::new(),
    }
}

/// The input fields of a model entry, and where they come from: the
/// entry's own `input_schema` (`"service"`), else the fields known for its
/// capability (`"inferred"`).
pub(crate) fn fields_of(m: &ModelInfo) -> (Vec<serde_json::Value>, &'static str) {
    use serde_json::{Value, json};
    let Some(schema) = m
        .input_schema
        .as_ref()
        .filter(|s| s.contains_key("properties"))
    else {
        let known = input_fields(&m.capability)
            .into_iter()
            .filter_map(|f| serde_json::to_value(f).ok())
            .collect();
        return (known, "inferred");
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let fields = schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, property)| {
            let kind = property
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("any");
            let description = match property.get("format").and_then(Value::as_str) {
                Some("image-url") => Some(IMAGE_URL),
                _ => property.get("description").and_then(Value::as_str),
            };
            json!({
                "name": name,
                "type": kind,
                "required": required.contains(&name.as_str()),
                "description": description.unwrap_or_default(),
            })
        })
        .collect();
    (fields, "service")
}

/// The endpoint id of a model entry.
pub(crate) fn endpoint_id(m: &ModelInfo) -> String {
    m.endpoint_id
        .clone()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| format!("{}/{}", m.model_id, m.capability))
}

/// Whether an entry is a job endpoint (chat models are listed too, but
/// are not submitted to).
pub(crate) fn is_job_endpoint(m: &ModelInfo) -> bool {
    !m.capability.eq_ignore_ascii_case("chat")
}

/// The model list, fetched on first use and kept [`CACHE_FOR`].
#[derive(Debug, Default)]
pub(crate) struct ModelCache {
    cached: Mutex<Option<(Instant, Vec<ModelInfo>)>>,
}

impl ModelCache {
    /// The job endpoints, from the cache or the service.
    pub(crate) async fn get(&self, client: &Client) -> reka_inference::Result<Vec<ModelInfo>> {
        let mut cached = self.cached.lock().await;
        if let Some((at, models)) = cached.as_ref()
            && at.elapsed() < CACHE_FOR
        {
            return Ok(models.clone());
        }
        let models: Vec<ModelInfo> = client
            .models()
            .await?
            .into_iter()
            .filter(is_job_endpoint)
            .collect();
        *cached = Some((Instant::now(), models.clone()));
        Ok(models)
    }
}

/// Up to three known endpoints closest to `wanted`: by edit distance,
/// then sharing its model or its capability.
pub(crate) fn close_matches(wanted: &str, known: &[String]) -> Vec<String> {
    let wanted_lower = wanted.trim().to_ascii_lowercase();
    let (w_model, w_cap) = wanted_lower
        .split_once('/')
        .unwrap_or((wanted_lower.as_str(), ""));
    let mut scored: Vec<(usize, &String)> = known
        .iter()
        .map(|k| {
            let lower = k.to_ascii_lowercase();
            let mut score = strsim::levenshtein(&wanted_lower, &lower);
            let (model, cap) = lower.split_once('/').unwrap_or((lower.as_str(), ""));
            // Sharing a whole part is worth more than a few edits.
            if !w_model.is_empty() && model == w_model {
                score = score.saturating_sub(4);
            }
            if !w_cap.is_empty() && cap == w_cap {
                score = score.saturating_sub(4);
            }
            (score, k)
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, k)| k.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        [
            "nano-banana/text-to-image",
            "nano-banana/edit",
            "veo-3.1/text-to-video",
            "veo-3.1/image-to-video",
            "kling-v3-pro/text-to-video",
            "sam3/image-to-bbox",
            "reka-tts-1/text-to-speech",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn a_typo_finds_the_endpoint_first() {
        let m = close_matches("nano-banan/text-to-image", &known());
        assert_eq!(m[0], "nano-banana/text-to-image");
        let m = close_matches("veo-3/text-to-video", &known());
        assert_eq!(m[0], "veo-3.1/text-to-video");
        let m = close_matches("VEO-3.1/TEXT-TO-VIDEO", &known());
        assert_eq!(m[0], "veo-3.1/text-to-video");
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn a_wrong_capability_finds_the_models_endpoints() {
        let m = close_matches("nano-banana/image-to-image", &known());
        assert!(
            m.iter().take(2).all(|e| e.starts_with("nano-banana/")),
            "{m:?}"
        );
        let m = close_matches("sora/text-to-video", &known());
        assert!(
            m.iter().take(2).all(|e| e.ends_with("/text-to-video")),
            "{m:?}"
        );
        assert!(close_matches("x", &[]).is_empty());
    }

    #[test]
    fn every_known_capability_has_a_required_field() {
        for cap in [
            "text-to-image",
            "edit",
            "text-to-video",
            "image-to-video",
            "text-to-speech",
            "image-to-bbox",
        ] {
            let fields = input_fields(cap);
            assert!(fields.iter().any(|f| f.required), "{cap}");
        }
        assert!(input_fields("brand-new").is_empty());
        let speech = input_fields("text-to-speech");
        assert_eq!(speech[0].name, "text");
        assert!(
            input_fields("image-to-video")
                .iter()
                .any(|f| f.name == "image_url" && f.required)
        );
    }
}
