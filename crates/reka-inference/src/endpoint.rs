//! Endpoint ids: `<model>/<capability>`, the address of every submit.
//!
//! Each endpoint the reference documents has a constant; any other id is
//! accepted too (models are added to the service faster than SDKs ship), as
//! long as it has the `<model>/<capability>` shape.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// An endpoint id, `<model>/<capability>`.
///
/// ```
/// use reka_inference::Endpoint;
///
/// assert_eq!(Endpoint::SAM3_IMAGE_TO_BBOX.model(), "sam3");
/// assert_eq!(Endpoint::SAM3_IMAGE_TO_BBOX.capability(), "image-to-bbox");
///
/// let custom: Endpoint = "new-model/text-to-image".parse()?;
/// assert_eq!(custom.as_str(), "new-model/text-to-image");
/// assert!("no-capability".parse::<Endpoint>().is_err());
/// # Ok::<(), reka_inference::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    id: Cow<'static, str>,
    slash: usize,
}

macro_rules! known {
    ($($(#[$doc:meta])* $name:ident = $model:literal / $cap:literal;)*) => {
        impl Endpoint {
            $(
                $(#[$doc])*
                pub const $name: Endpoint = Endpoint {
                    id: Cow::Borrowed(concat!($model, "/", $cap)),
                    slash: $model.len(),
                };
            )*

            /// Every endpoint the API reference documents.
            pub const KNOWN: &'static [Endpoint] = &[$(Endpoint::$name),*];
        }
    };
}

known! {
    /// Kling v3 Pro, image to video.
    KLING_V3_PRO_IMAGE_TO_VIDEO = "kling-v3-pro" / "image-to-video";
    /// Veo 3.1, image to video.
    VEO_3_1_IMAGE_TO_VIDEO = "veo-3.1" / "image-to-video";
    /// Sora 2 Pro, image to video.
    SORA_2_PRO_IMAGE_TO_VIDEO = "sora-2-pro" / "image-to-video";
    /// Nano Banana, text to image.
    NANO_BANANA_TEXT_TO_IMAGE = "nano-banana" / "text-to-image";
    /// Nano Banana, image edit.
    NANO_BANANA_EDIT = "nano-banana" / "edit";
    /// Veo 3.1, text to video.
    VEO_3_1_TEXT_TO_VIDEO = "veo-3.1" / "text-to-video";
    /// Kling v3 Pro, text to video.
    KLING_V3_PRO_TEXT_TO_VIDEO = "kling-v3-pro" / "text-to-video";
    /// Text to speech (the model id is illustrative in the reference).
    REKA_TTS_1_TEXT_TO_SPEECH = "reka-tts-1" / "text-to-speech";
    /// SAM 3, image to bounding boxes.
    SAM3_IMAGE_TO_BBOX = "sam3" / "image-to-bbox";
}

impl Endpoint {
    /// Checks and wraps an endpoint id.
    pub fn new(id: impl Into<String>) -> Result<Endpoint, Error> {
        let id: String = id.into();
        let bad = |why: &str| Error::InvalidInput(format!("endpoint {id:?} {why}"));
        let slash = id
            .find('/')
            .ok_or_else(|| bad("is not of the form <model>/<capability>"))?;
        let (model, capability) = (&id[..slash], &id[slash + 1..]);
        let ok_part = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && s != "."
                && s != ".."
        };
        if !ok_part(model) || !ok_part(capability) {
            return Err(bad(
                "must be <model>/<capability>, each made of letters, digits, '-', '_' and '.'",
            ));
        }
        Ok(Endpoint {
            id: Cow::Owned(id),
            slash,
        })
    }

    /// The id, `<model>/<capability>`.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The model part.
    pub fn model(&self) -> &str {
        &self.id[..self.slash]
    }

    /// The capability part.
    pub fn capability(&self) -> &str {
        &self.id[self.slash + 1..]
    }
}

impl FromStr for Endpoint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Endpoint::new(s)
    }
}

impl TryFrom<&str> for Endpoint {
    type Error = Error;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Endpoint::new(s)
    }
}

impl TryFrom<String> for Endpoint {
    type Error = Error;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Endpoint::new(s)
    }
}

impl From<&Endpoint> for Endpoint {
    fn from(e: &Endpoint) -> Self {
        e.clone()
    }
}

/// Anything that names an endpoint: an [`Endpoint`], or its id as a string
/// (checked when used; a malformed id is [`Error::InvalidInput`]).
///
/// ```no_run
/// # async fn run(client: reka_inference::Client) -> reka_inference::Result<()> {
/// use serde_json::json;
/// use reka_inference::Endpoint;
///
/// client.submit(Endpoint::NANO_BANANA_TEXT_TO_IMAGE, json!({"prompt": "a fox"})).await?;
/// client.submit("flux/text-to-image", json!({"prompt": "a fox"})).await?;
/// # Ok(()) }
/// ```
pub trait IntoEndpoint {
    /// The endpoint, or why the id is not one.
    fn into_endpoint(self) -> Result<Endpoint, Error>;
}

impl IntoEndpoint for Endpoint {
    fn into_endpoint(self) -> Result<Endpoint, Error> {
        Ok(self)
    }
}

impl IntoEndpoint for &Endpoint {
    fn into_endpoint(self) -> Result<Endpoint, Error> {
        Ok(self.clone())
    }
}

impl IntoEndpoint for &str {
    fn into_endpoint(self) -> Result<Endpoint, Error> {
        Endpoint::new(self)
    }
}

impl IntoEndpoint for String {
    fn into_endpoint(self) -> Result<Endpoint, Error> {
        Endpoint::new(self)
    }
}

impl IntoEndpoint for &String {
    fn into_endpoint(self) -> Result<Endpoint, Error> {
        Endpoint::new(self.as_str())
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({})", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ids_split_where_the_macro_says() {
        for e in Endpoint::KNOWN {
            let reparsed = Endpoint::new(e.as_str()).unwrap();
            assert_eq!(&reparsed, e);
            assert_eq!(format!("{}/{}", e.model(), e.capability()), e.as_str());
        }
    }

    #[test]
    fn rejects_malformed_ids() {
        for bad in ["", "/x", "x/", "a b/c", "a/b/c", "../x", "a/?q"] {
            assert!(Endpoint::new(bad).is_err(), "{bad}");
        }
    }
}
