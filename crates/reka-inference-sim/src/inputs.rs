//! Inputs checked per endpoint: each catalog endpoint may declare the
//! `input` it takes as a JSON Schema (`input_schema`), and a submit whose
//! input does not match it is refused with FastAPI's 422 body, one
//! `{"loc", "msg", "type"}` per problem, in every dialect.
//!
//! The real schemas are unpublished, so the rules are lenient on what is
//! not declared (extra fields pass, an endpoint without a schema takes any
//! object) and strict on what is: a declared field of the wrong type, a
//! required one missing, a string that misses its pattern. The format
//! [`IMAGE_URL_FORMAT`] marks a field that must be an `http(s)` URL or a
//! `data:image/...;base64,` URI of a real image (see `images`).

use std::sync::Arc;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{Validator, paths::LocationSegment};
use serde_json::{Value, json};

use crate::images::{InputImage, check_image_url};

/// The JSON Schema `format` of an image input: an `http(s)` URL or a
/// `data:image/<type>;base64,<data>` URI whose bytes are an image.
pub const IMAGE_URL_FORMAT: &str = "image-url";

/// The field whose image a job's output describes (`input_image`).
pub(crate) const IMAGE_FIELD: &str = "image_url";

/// One endpoint's compiled input schema.
#[derive(Clone)]
pub(crate) struct InputRules {
    validator: Arc<Validator>,
}

impl std::fmt::Debug for InputRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InputRules")
    }
}

/// Compiles an input schema (JSON Schema 2020-12, formats asserted, with
/// [`IMAGE_URL_FORMAT`]); the error says why it is not a usable schema.
pub(crate) fn compile(schema: &Value) -> Result<InputRules, String> {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .with_format(IMAGE_URL_FORMAT, |s: &str| check_image_url(s).is_ok())
        .build(schema)
        .map(|v| InputRules {
            validator: Arc::new(v),
        })
        .map_err(|e| format!("input_schema is not a usable JSON Schema: {e}"))
}

impl InputRules {
    /// FastAPI-style details of everything wrong with `input`; empty when it
    /// matches. Locations start `["body", "input", ...]`.
    pub(crate) fn problems(&self, input: &Value) -> Vec<Value> {
        self.validator
            .iter_errors(input)
            .map(|e| {
                let mut loc = vec![json!("body"), json!("input")];
                for segment in e.instance_path().segments() {
                    loc.push(match segment {
                        LocationSegment::Property(p) => json!(p),
                        LocationSegment::Index(i) => json!(i),
                    });
                }
                let (kind, msg) = describe(e.kind(), e.instance(), &mut loc);
                json!({"loc": loc, "msg": msg, "type": kind})
            })
            .collect()
    }
}

/// Pydantic's error type and message for a schema violation (its wording,
/// so a 422 reads as FastAPI's would); a missing field is added to `loc`.
fn describe(
    kind: &ValidationErrorKind,
    instance: &Value,
    loc: &mut Vec<Value>,
) -> (String, String) {
    let text = |k: &str, m: String| (k.to_string(), m);
    match kind {
        ValidationErrorKind::Required { property } => {
            loc.push(property.clone());
            text("missing", "Field required".into())
        }
        ValidationErrorKind::Type { kind } => {
            let wanted = match kind {
                TypeKind::Single(t) => vec![*t],
                TypeKind::Multiple(ts) => ts.iter().collect(),
            };
            let name = |t: &jsonschema::JsonType| format!("{t}");
            let first = wanted.first().map(name).unwrap_or_default();
            match first.as_str() {
                "string" => text("string_type", "Input should be a valid string".into()),
                "integer" => text("int_type", "Input should be a valid integer".into()),
                "number" => text("float_type", "Input should be a valid number".into()),
                "boolean" => text("bool_type", "Input should be a valid boolean".into()),
                "object" => text("dict_type", "Input should be a valid dictionary".into()),
                "array" => text("list_type", "Input should be a valid list".into()),
                other => text("type_error", format!("Input should be of type {other}")),
            }
        }
        ValidationErrorKind::MinLength { limit } => text(
            "string_too_short",
            format!(
                "String should have at least {limit} character{}",
                plural(*limit)
            ),
        ),
        ValidationErrorKind::MaxLength { limit } => text(
            "string_too_long",
            format!(
                "String should have at most {limit} character{}",
                plural(*limit)
            ),
        ),
        ValidationErrorKind::Pattern { pattern } => text(
            "string_pattern_mismatch",
            format!("String should match pattern '{pattern}'"),
        ),
        ValidationErrorKind::Minimum { limit } => text(
            "greater_than_equal",
            format!("Input should be greater than or equal to {limit}"),
        ),
        ValidationErrorKind::Maximum { limit } => text(
            "less_than_equal",
            format!("Input should be less than or equal to {limit}"),
        ),
        ValidationErrorKind::ExclusiveMinimum { limit } => text(
            "greater_than",
            format!("Input should be greater than {limit}"),
        ),
        ValidationErrorKind::ExclusiveMaximum { limit } => {
            text("less_than", format!("Input should be less than {limit}"))
        }
        ValidationErrorKind::Enum { options } => {
            let listed: Vec<String> = options
                .as_array()
                .map(|o| o.iter().map(|v| v.to_string()).collect())
                .unwrap_or_default();
            text("enum", format!("Input should be {}", listed.join(", ")))
        }
        ValidationErrorKind::Format { format } if format == IMAGE_URL_FORMAT => {
            match instance.as_str().map(check_image_url) {
                Some(Err(bad)) => text(bad.kind, bad.message),
                _ => text("value_error", "Value error, not an image URL".into()),
            }
        }
        other => text(
            "value_error",
            format!("Value error, {}", message_of(other, instance)),
        ),
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn message_of(kind: &ValidationErrorKind, instance: &Value) -> String {
    format!("{} does not satisfy `{}`", short(instance), kind.keyword())
}

/// A value as shown in a message, cut to 80 characters.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() <= 80 {
        s
    } else {
        format!("{}...", s.chars().take(77).collect::<String>())
    }
}

/// The input image of a submit: its `image_url`, when it is an acceptable
/// one (on an endpoint without a schema, an unacceptable one is ignored).
pub(crate) fn input_image(input: &Value) -> Option<InputImage> {
    input
        .get(IMAGE_FIELD)
        .and_then(Value::as_str)
        .and_then(|s| check_image_url(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> InputRules {
        compile(&json!({
            "type": "object",
            "required": ["image_url", "prompt"],
            "properties": {
                "image_url": {"type": "string", "format": "image-url"},
                "prompt": {"type": "string", "minLength": 1},
                "duration_seconds": {"type": "string", "pattern": "^[1-9][0-9]*$"},
                "num_images": {"type": "integer", "minimum": 1}
            }
        }))
        .unwrap()
    }

    fn problem(input: Value) -> (Vec<Value>, String) {
        let p = rules().problems(&input);
        assert_eq!(p.len(), 1, "{input}: {p:?}");
        (
            p[0]["loc"].as_array().unwrap().clone(),
            p[0]["type"].as_str().unwrap().to_string(),
        )
    }

    #[test]
    fn each_violation_names_its_field_as_fastapi_does() {
        let ok = json!({"image_url": "https://x.example/a.png", "prompt": "p", "extra": [1]});
        assert!(rules().problems(&ok).is_empty());
        let loc = |f: &str| vec![json!("body"), json!("input"), json!(f)];
        assert_eq!(
            problem(json!({"prompt": "p"})),
            (loc("image_url"), "missing".into())
        );
        assert_eq!(
            problem(json!({"image_url": 5, "prompt": "p"})),
            (loc("image_url"), "string_type".into())
        );
        assert_eq!(
            problem(json!({"image_url": "@photo.png", "prompt": "p"})),
            (loc("image_url"), "url_parsing".into())
        );
        assert_eq!(
            problem(json!({"image_url": "data:image/png;base64,aGVsbG8=", "prompt": "p"})),
            (loc("image_url"), "value_error".into())
        );
        assert_eq!(
            problem(json!({"image_url": "https://x.example/a.png", "prompt": ""})),
            (loc("prompt"), "string_too_short".into())
        );
        assert_eq!(
            problem(
                json!({"image_url": "https://x.example/a.png", "prompt": "p", "duration_seconds": 5})
            ),
            (loc("duration_seconds"), "string_type".into())
        );
        assert_eq!(
            problem(
                json!({"image_url": "https://x.example/a.png", "prompt": "p", "duration_seconds": "5s"})
            ),
            (loc("duration_seconds"), "string_pattern_mismatch".into())
        );
        assert_eq!(
            problem(
                json!({"image_url": "https://x.example/a.png", "prompt": "p", "num_images": 0})
            ),
            (loc("num_images"), "greater_than_equal".into())
        );
        // Everything wrong at once is reported at once.
        assert_eq!(rules().problems(&json!({})).len(), 2);
    }

    #[test]
    fn a_schema_that_is_not_one_is_refused() {
        assert!(compile(&json!({"type": "nonsense"})).is_err());
        assert!(compile(&json!({"properties": {"a": {"pattern": "("}}})).is_err());
    }
}
