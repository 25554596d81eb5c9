//! The catalog: which endpoints exist and how their queues behave.
//!
//! A catalog is a JSON data file (see the crate README for the format). The
//! default one ships inside the crate (`src/default_catalog.json`); the
//! binary's `--catalog FILE` replaces it.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The capabilities the API knows; the last path segment of every submit route.
pub const CAPABILITIES: [&str; 6] = [
    "image-to-video",
    "text-to-image",
    "edit",
    "text-to-video",
    "text-to-speech",
    "image-to-bbox",
];

/// The set of endpoints the simulator serves, plus the chat model allow-list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// Model ids accepted by `POST /v2/inference/chat/completions`.
    #[serde(default)]
    pub chat_models: Vec<String>,
    /// The queued endpoints, one per `<model_id>/<capability>`.
    pub models: Vec<ModelSpec>,
}

/// One queued endpoint and its queue model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// The model path segment, e.g. `kling-v3-pro`.
    pub model_id: String,
    /// One of [`CAPABILITIES`].
    pub capability: String,
    /// Human-readable name shown by `list_models`.
    #[serde(default)]
    pub title: Option<String>,
    /// Human-readable description shown by `list_models`.
    #[serde(default)]
    pub description: Option<String>,
    /// How many jobs of this endpoint run at once (at least 1).
    #[serde(default = "one")]
    pub workers: u32,
    /// How long one job runs, in simulated seconds.
    pub duration: DurationDist,
    /// Fraction of jobs that end `FAILED` (0.0 to 1.0).
    #[serde(default)]
    pub failure_rate: f64,
    /// What a completed job produces; derived from the capability when absent.
    #[serde(default)]
    pub output: Option<OutputKind>,
    /// The price of one job in US dollars, as a completed job's
    /// `output.usage.price_usd` and the model list's `price_usd` report it.
    /// `None` (the key absent): the capability's default price
    /// ([`default_price_usd`]); `Some(None)` (`"price_usd": null`): the
    /// endpoint reports no price; `Some(Some(p))`: `p`.
    #[serde(
        default,
        deserialize_with = "stated",
        skip_serializing_if = "Option::is_none"
    )]
    pub price_usd: Option<Option<f64>>,
    /// The `input` this endpoint takes, as a JSON Schema (2020-12); a
    /// submit whose input does not match is answered 422. Absent: any JSON
    /// object is taken. The format `image-url`
    /// ([`crate::IMAGE_URL_FORMAT`]) marks an `http(s)` URL or a
    /// `data:image/...;base64,` URI of a real image. Shown in the model list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<serde_json::Value>,
    /// Where the price comes from, free text (the default catalog says
    /// `INFERRED: ...` for every price: Reka publishes none). Not sent on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_provenance: Option<String>,
}

fn one() -> u32 {
    1
}

/// Reads a key that is present, `null` included, as `Some(...)`, so an
/// absent key (`None`, by `#[serde(default)]`) and an explicit `null`
/// (`Some(None)`) differ.
fn stated<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The price of one job of a capability, in US dollars, for catalog entries
/// that state none (INFERRED, illustrative: Reka publishes no prices): image
/// and edit 0.04, video 0.50, speech 0.015, bounding boxes 0.005.
pub fn default_price_usd(capability: &str) -> f64 {
    match capability {
        "text-to-image" | "edit" => 0.04,
        "image-to-video" | "text-to-video" => 0.5,
        "text-to-speech" => 0.015,
        "image-to-bbox" => 0.005,
        _ => 0.01,
    }
}

/// A distribution of job durations in simulated seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DurationDist {
    /// Always this many seconds: `{"fixed": 2}`.
    Fixed(f64),
    /// Uniform between `min` and `max`: `{"uniform": {"min": 2, "max": 5}}`.
    Uniform {
        /// Shortest duration.
        min: f64,
        /// Longest duration.
        max: f64,
    },
    /// Log-normal with this median and 95th percentile:
    /// `{"lognormal": {"median": 45, "p95": 90}}`.
    Lognormal {
        /// Median duration.
        median: f64,
        /// 95th percentile duration (at least the median).
        p95: f64,
    },
}

impl DurationDist {
    /// Draws a duration from two independent uniform numbers in `[0, 1)`.
    pub fn sample(&self, u1: f64, u2: f64) -> f64 {
        let secs = match *self {
            DurationDist::Fixed(s) => s,
            DurationDist::Uniform { min, max } => min + (max - min) * u1,
            DurationDist::Lognormal { median, p95 } => {
                // Box-Muller for a standard normal; p95 = median * e^(1.645 sigma).
                let sigma = (p95 / median).ln() / 1.644_853_6;
                let r = (-2.0 * (1.0 - u1).ln()).sqrt();
                let z = r * (std::f64::consts::TAU * u2).cos();
                median * (sigma * z).exp()
            }
        };
        if secs.is_finite() { secs.max(0.0) } else { 0.0 }
    }

    fn check(&self) -> Result<(), String> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        match *self {
            DurationDist::Fixed(s) if ok(s) => Ok(()),
            DurationDist::Uniform { min, max } if ok(min) && ok(max) && min <= max => Ok(()),
            DurationDist::Lognormal { median, p95 }
                if ok(median) && median > 0.0 && ok(p95) && p95 >= median =>
            {
                Ok(())
            }
            _ => Err(format!("invalid duration distribution {self:?}")),
        }
    }
}

/// What a completed job's `output` holds (shapes are illustrative; see README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// `{"images": [{url, content_type, width, height}]}` with a PNG file.
    Image,
    /// `{"video": {url, content_type, width, height, duration}}` with an animated GIF.
    Video,
    /// `{"audio": {url, content_type, duration}}` with a WAV file.
    Audio,
    /// `{"boxes": [{label, score, x, y, width, height}]}`.
    Boxes,
}

impl OutputKind {
    /// The natural output of a capability.
    pub fn for_capability(capability: &str) -> OutputKind {
        match capability {
            "image-to-video" | "text-to-video" => OutputKind::Video,
            "text-to-speech" => OutputKind::Audio,
            "image-to-bbox" => OutputKind::Boxes,
            _ => OutputKind::Image,
        }
    }
}

impl ModelSpec {
    /// `<model_id>/<capability>`.
    pub fn endpoint_id(&self) -> String {
        format!("{}/{}", self.model_id, self.capability)
    }

    /// Whether `endpoint_id` names this endpoint (without building the
    /// id: a list compares it against every job of a key).
    pub fn is_endpoint(&self, endpoint_id: &str) -> bool {
        endpoint_id
            .strip_prefix(self.model_id.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|capability| capability == self.capability)
    }

    /// The output kind, explicit or derived from the capability.
    pub fn output_kind(&self) -> OutputKind {
        self.output
            .unwrap_or_else(|| OutputKind::for_capability(&self.capability))
    }

    /// The price of one job in US dollars: the stated one, or the
    /// capability's default when none is stated; `None` for an endpoint
    /// stated as unpriced (`"price_usd": null`).
    pub fn price(&self) -> Option<f64> {
        match self.price_usd {
            None => Some(default_price_usd(&self.capability)),
            Some(stated) => stated,
        }
    }
}

/// Why a catalog could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file could not be read.
    #[error("cannot read catalog {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The text is not a catalog.
    #[error("invalid catalog JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The catalog parses but makes no sense.
    #[error("invalid catalog: {0}")]
    Invalid(String),
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog::default_catalog()
    }
}

const DEFAULT_CATALOG: &str = include_str!("default_catalog.json");

impl Catalog {
    /// The catalog shipped with the crate (`src/default_catalog.json`).
    pub fn default_catalog() -> Catalog {
        match Catalog::from_json(DEFAULT_CATALOG) {
            Ok(c) => c,
            // The shipped file is checked by a unit test; never reached.
            Err(_) => Catalog {
                chat_models: Vec::new(),
                models: Vec::new(),
            },
        }
    }

    /// Parses and checks a catalog from JSON text.
    pub fn from_json(text: &str) -> Result<Catalog, CatalogError> {
        let catalog: Catalog = serde_json::from_str(text)?;
        catalog.validate()?;
        Ok(catalog)
    }

    /// Reads, parses and checks a catalog file.
    pub fn load(path: impl AsRef<Path>) -> Result<Catalog, CatalogError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Catalog::from_json(&text)
    }

    /// Checks capabilities, worker counts, rates, durations and uniqueness.
    pub fn validate(&self) -> Result<(), CatalogError> {
        let mut seen = HashSet::new();
        for m in &self.models {
            let id = m.endpoint_id();
            let bad = |why: String| Err(CatalogError::Invalid(format!("{id}: {why}")));
            if !CAPABILITIES.contains(&m.capability.as_str()) {
                return bad(format!(
                    "unknown capability (known: {})",
                    CAPABILITIES.join(", ")
                ));
            }
            if m.model_id.is_empty() || m.model_id.contains('/') {
                return bad("model_id must be one non-empty path segment".into());
            }
            if let Some(Some(p)) = m.price_usd
                && !(p.is_finite() && p >= 0.0)
            {
                return bad(format!("price_usd must be a finite number >= 0, got {p}"));
            }
            if m.workers == 0 {
                return bad("workers must be at least 1".into());
            }
            if !(0.0..=1.0).contains(&m.failure_rate) {
                return bad("failure_rate must be between 0 and 1".into());
            }
            if let Err(why) = m.duration.check() {
                return bad(why);
            }
            if let Some(schema) = &m.input_schema {
                crate::inputs::compile(schema)
                    .map_err(|why| CatalogError::Invalid(format!("{id}: {why}")))?;
            }
            if !seen.insert(id.clone()) {
                return bad("duplicate endpoint".into());
            }
        }
        Ok(())
    }

    /// Each endpoint's compiled input schema, in catalog order (`None`:
    /// the endpoint takes any object).
    pub(crate) fn input_rules(
        &self,
    ) -> Result<Vec<Option<crate::inputs::InputRules>>, CatalogError> {
        self.models
            .iter()
            .map(|m| {
                m.input_schema
                    .as_ref()
                    .map(|schema| {
                        crate::inputs::compile(schema).map_err(|why| {
                            CatalogError::Invalid(format!("{}: {why}", m.endpoint_id()))
                        })
                    })
                    .transpose()
            })
            .collect()
    }

    /// The index of the endpoint `<model>/<capability>`, if the catalog has it.
    pub fn find(&self, model: &str, capability: &str) -> Option<usize> {
        self.models
            .iter()
            .position(|m| m.model_id == model && m.capability == capability)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_catalog_is_valid_and_covers_every_capability() {
        let c = Catalog::from_json(DEFAULT_CATALOG).unwrap();
        for cap in CAPABILITIES {
            assert!(c.models.iter().any(|m| m.capability == cap), "{cap}");
        }
        assert!(!c.chat_models.is_empty());
    }

    #[test]
    fn lognormal_median_is_the_median() {
        let d = DurationDist::Lognormal {
            median: 10.0,
            p95: 30.0,
        };
        // u2 = 0.25 makes cos(...) = 0, so z = 0 and the sample is the median.
        assert!((d.sample(0.5, 0.25) - 10.0).abs() < 1e-9);
    }

    #[test]
    fn a_price_is_stated_defaulted_or_stated_absent() {
        let c = Catalog::from_json(
            r#"{"models":[
                {"model_id":"a","capability":"edit","duration":{"fixed":1},"price_usd":0.25},
                {"model_id":"b","capability":"edit","duration":{"fixed":1}},
                {"model_id":"c","capability":"edit","duration":{"fixed":1},"price_usd":null}
            ]}"#,
        )
        .unwrap();
        let prices: Vec<Option<f64>> = c.models.iter().map(ModelSpec::price).collect();
        assert_eq!(prices, [Some(0.25), Some(0.04), None]);
        // Every endpoint of the default catalog states its price and says where it comes from.
        for m in Catalog::default_catalog().models {
            assert!(
                matches!(m.price_usd, Some(Some(p)) if p > 0.0),
                "{}",
                m.endpoint_id()
            );
            assert!(
                m.price_provenance
                    .as_deref()
                    .is_some_and(|p| p.starts_with("INFERRED")),
                "{}",
                m.endpoint_id()
            );
        }
        for bad in ["-1", "\"free\""] {
            let text = format!(
                r#"{{"models":[{{"model_id":"a","capability":"edit","duration":{{"fixed":1}},"price_usd":{bad}}}]}}"#
            );
            assert!(Catalog::from_json(&text).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_default_catalog_declares_what_each_capability_takes() {
        let c = Catalog::default_catalog();
        for m in &c.models {
            let schema = m
                .input_schema
                .as_ref()
                .unwrap_or_else(|| panic!("{}", m.endpoint_id()));
            assert!(
                schema["x-provenance"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("INFERRED")),
                "{}",
                m.endpoint_id()
            );
            let required: Vec<&str> = schema["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            let want: &[&str] = match m.capability.as_str() {
                "text-to-image" | "text-to-video" => &["prompt"],
                "image-to-video" | "image-to-bbox" => &["image_url"],
                "edit" => &["prompt", "image_url"],
                "text-to-speech" => &["text"],
                other => panic!("{other}"),
            };
            assert_eq!(required, want, "{}", m.endpoint_id());
            if want.contains(&"image_url") {
                assert_eq!(schema["properties"]["image_url"]["format"], "image-url");
            }
        }
        assert_eq!(c.input_rules().unwrap().len(), c.models.len());
    }

    #[test]
    fn bad_catalogs_are_rejected() {
        let bad = r#"{"models":[{"model_id":"x","capability":"edit","duration":{"fixed":1},"input_schema":{"type":"nonsense"}}]}"#;
        assert!(
            Catalog::from_json(bad)
                .unwrap_err()
                .to_string()
                .contains("input_schema")
        );
        let bad = r#"{"models":[{"model_id":"x","capability":"nope","duration":{"fixed":1}}]}"#;
        assert!(Catalog::from_json(bad).is_err());
        let bad = r#"{"models":[{"model_id":"x","capability":"edit","workers":0,"duration":{"fixed":1}}]}"#;
        assert!(Catalog::from_json(bad).is_err());
    }
}
