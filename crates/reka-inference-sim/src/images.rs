//! Input images: what an `image_url` may be (an `http(s)` URL, or a
//! `data:image/<type>;base64,<data>` URI whose bytes are an image), and
//! the facts the simulator records about an inline image (media type by
//! its magic bytes, size, SHA-256, pixel dimensions), so a job's output can
//! prove the image arrived whole.
//!
//! A URL is never fetched: the simulator has no business reaching out to
//! the network on a client's behalf, and a test cannot tell what it got.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Standard base64, padding optional (both forms are common in data URIs).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a value is not an acceptable `image_url`: a FastAPI-style error
/// type and a message for the 422's `detail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadImageUrl {
    /// `url_parsing` (not a URL at all) or `value_error` (a URL or data URI
    /// that cannot be an image).
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

impl BadImageUrl {
    fn new(kind: &'static str, message: impl Into<String>) -> BadImageUrl {
        BadImageUrl {
            kind,
            message: message.into(),
        }
    }
}

/// An accepted `image_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InputImage {
    /// An `http(s)` URL, not fetched.
    Url(String),
    /// An inline image, described.
    Inline(ImageFacts),
}

/// What the simulator knows of an inline image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageFacts {
    /// By the magic bytes, whatever the data URI declared:
    /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`.
    pub(crate) media_type: &'static str,
    /// Decoded size in bytes.
    pub(crate) bytes: usize,
    /// SHA-256 of the decoded bytes, lowercase hex.
    pub(crate) sha256: String,
    /// Pixel dimensions, when the header says them.
    pub(crate) dimensions: Option<(u32, u32)>,
}

impl InputImage {
    /// The `input_image` object an output records. A URL is not repeated:
    /// clients look for media in an output by its `url` fields, and the
    /// input's URL is not an output.
    pub(crate) fn to_json(&self) -> Value {
        match self {
            InputImage::Url(_) => json!({ "source": "url" }),
            InputImage::Inline(f) => {
                let mut v = json!({
                    "source": "data",
                    "media_type": f.media_type,
                    "bytes": f.bytes,
                    "sha256": f.sha256,
                });
                if let Some((w, h)) = f.dimensions {
                    v["width"] = json!(w);
                    v["height"] = json!(h);
                }
                v
            }
        }
    }

    /// The SHA-256 of an inline image (outputs mix it into their content).
    pub(crate) fn sha256(&self) -> Option<&str> {
        match self {
            InputImage::Url(_) => None,
            InputImage::Inline(f) => Some(&f.sha256),
        }
    }
}

/// Checks an `image_url`: an absolute `http`/`https` URL with a host, or a
/// well-formed `data:image/<type>[;params];base64,<data>` URI whose data
/// decodes to an image by its magic bytes (PNG, JPEG, GIF, WebP).
pub(crate) fn check_image_url(value: &str) -> Result<InputImage, BadImageUrl> {
    if value.len() >= 5 && value[..5].eq_ignore_ascii_case("data:") {
        return inline(&value[5..]).map(InputImage::Inline);
    }
    let url = url::Url::parse(value).map_err(|e| {
        BadImageUrl::new(
            "url_parsing",
            format!(
                "Input should be a valid URL or a data: URI, {e}: an http(s) URL or data:image/<type>;base64,<data>"
            ),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(BadImageUrl::new(
            "url_scheme",
            format!(
                "URL scheme should be 'http', 'https' or 'data', not {:?}",
                url.scheme()
            ),
        ));
    }
    Ok(InputImage::Url(value.to_string()))
}

/// The part of a data URI after `data:`.
fn inline(rest: &str) -> Result<ImageFacts, BadImageUrl> {
    let bad = |why: String| BadImageUrl::new("value_error", format!("Value error, {why}"));
    let Some((meta, data)) = rest.split_once(',') else {
        return Err(bad("a data: URI needs a comma before its data".into()));
    };
    let mut params = meta.split(';');
    let media_type = params.next().unwrap_or("").trim().to_ascii_lowercase();
    let Some(subtype) = media_type.strip_prefix("image/") else {
        return Err(bad(format!(
            "a data: URI image_url must declare an image media type (data:image/<type>;base64,...), not {media_type:?}"
        )));
    };
    if subtype.is_empty() {
        return Err(bad("data:image/ names no image type".into()));
    }
    let params: Vec<&str> = params.map(str::trim).collect();
    if params.last() != Some(&"base64") {
        return Err(bad(
            "a data: URI image_url must be base64-encoded (data:image/<type>;base64,...)".into(),
        ));
    }
    let bytes = BASE64
        .decode(data)
        .map_err(|e| bad(format!("the data: URI's data is not valid base64: {e}")))?;
    let Some(media_type) = sniff(&bytes) else {
        return Err(bad(format!(
            "the data: URI's {} bytes are not an image (PNG, JPEG, GIF or WebP by their first bytes)",
            bytes.len()
        )));
    };
    Ok(ImageFacts {
        media_type,
        bytes: bytes.len(),
        sha256: hex(&Sha256::digest(&bytes)),
        dimensions: dimensions(media_type, &bytes),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The media type of an image by its magic bytes.
pub(crate) fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

fn be16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
    ])))
}

fn le16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_le_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
    ])))
}

fn le24(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        0,
    ]))
}

/// Pixel dimensions from an image's header, when it has a readable one.
pub(crate) fn dimensions(media_type: &str, b: &[u8]) -> Option<(u32, u32)> {
    let dims = match media_type {
        // The IHDR chunk comes first: width and height at 16 and 20.
        "image/png" if b.get(12..16) == Some(b"IHDR") => {
            let w = u32::from_be_bytes(b.get(16..20)?.try_into().ok()?);
            let h = u32::from_be_bytes(b.get(20..24)?.try_into().ok()?);
            (w, h)
        }
        "image/jpeg" => jpeg_dimensions(b)?,
        // The logical screen: width and height at 6 and 8.
        "image/gif" => (le16(b, 6)?, le16(b, 8)?),
        "image/webp" => match b.get(12..16)? {
            // Lossy: the frame header after the start code 9D 01 2A.
            b"VP8 " if b.get(23..26) == Some(&[0x9D, 0x01, 0x2A]) => {
                (le16(b, 26)? & 0x3FFF, le16(b, 28)? & 0x3FFF)
            }
            // Lossless: 14-bit width - 1 and height - 1 after the signature 0x2F.
            b"VP8L" if b.get(20) == Some(&0x2F) => {
                let bits = u32::from_le_bytes(b.get(21..25)?.try_into().ok()?);
                ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
            }
            // Extended: 24-bit canvas width - 1 and height - 1.
            b"VP8X" => (le24(b, 24)? + 1, le24(b, 27)? + 1),
            _ => return None,
        },
        _ => return None,
    };
    (dims.0 > 0 && dims.1 > 0).then_some(dims)
}

/// Walks a JPEG's segments to its first start-of-frame marker.
fn jpeg_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    let mut at = 2;
    loop {
        // Fill bytes (0xFF) may precede a marker.
        while *b.get(at)? == 0xFF && *b.get(at + 1)? == 0xFF {
            at += 1;
        }
        if *b.get(at)? != 0xFF {
            return None;
        }
        let marker = *b.get(at + 1)?;
        // Markers without a length: TEM, RSTn.
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            at += 2;
            continue;
        }
        let len = be16(b, at + 2)? as usize;
        let is_sof = (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            // Length, precision, then height and width.
            return Some((be16(b, at + 7)?, be16(b, at + 5)?));
        }
        if marker == 0xDA || len < 2 {
            // Start of scan before any frame header: not a readable header.
            return None;
        }
        at = at.checked_add(2 + len)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_uri(media_type: &str, bytes: &[u8]) -> String {
        format!(
            "data:{media_type};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }

    #[test]
    fn png_jpeg_gif_and_webp_are_recognised_with_their_dimensions() {
        let png = crate::media::png(3, 2, |_, _| [1, 2, 3]);
        let gif = crate::media::gif(5, 4, &[[0, 0, 0]], &[vec![0; 20]], 10);
        // A baseline JPEG's first segments: SOI, APP0 (JFIF), SOF0 7x9.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
        jpeg.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        jpeg.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x09, 0x00, 0x07]);
        jpeg.extend_from_slice(&[0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xD9]);
        let mut webp = b"RIFF\x1a\0\0\0WEBPVP8L\x0d\0\0\0\x2f".to_vec();
        // Width 10 and height 6, minus one, in 14 bits each.
        webp.extend_from_slice(&(9u32 | (5 << 14)).to_le_bytes());
        webp.extend_from_slice(&[0; 8]);
        for (bytes, media_type, dims) in [
            (&png[..], "image/png", (3, 2)),
            (&jpeg[..], "image/jpeg", (7, 9)),
            (&gif[..], "image/gif", (5, 4)),
            (&webp[..], "image/webp", (10, 6)),
        ] {
            let Ok(InputImage::Inline(facts)) = check_image_url(&data_uri("image/png", bytes))
            else {
                panic!("{media_type} refused")
            };
            // The bytes decide the type, not the declared one.
            assert_eq!(facts.media_type, media_type);
            assert_eq!(facts.bytes, bytes.len());
            assert_eq!(facts.dimensions, Some(dims), "{media_type}");
            assert_eq!(facts.sha256, hex(&Sha256::digest(bytes)));
            assert_eq!(facts.sha256.len(), 64);
        }
    }

    #[test]
    fn urls_are_accepted_as_they_are_and_nothing_else_is() {
        for ok in [
            "https://images.example.com/fox.png",
            "http://127.0.0.1:8080/a?b=c",
        ] {
            assert_eq!(check_image_url(ok), Ok(InputImage::Url(ok.into())));
        }
        let png = crate::media::png(1, 1, |_, _| [0, 0, 0]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
        assert!(check_image_url(&format!("DATA:image/png;base64,{b64}")).is_ok());
        assert!(check_image_url(&format!("data:image/png;name=a.png;base64,{b64}")).is_ok());
        assert!(
            check_image_url(&format!(
                "data:image/png;base64,{}",
                b64.trim_end_matches('=')
            ))
            .is_ok()
        );
        for (bad, kind) in [
            ("", "url_parsing"),
            ("@photo.png", "url_parsing"),
            ("photo.png", "url_parsing"),
            ("ftp://example.com/a.png", "url_scheme"),
            ("file:///etc/passwd", "url_scheme"),
            ("data:image/png;base64", "value_error"),
            ("data:text/plain;base64,aGVsbG8=", "value_error"),
            ("data:image/png,rawbytes", "value_error"),
            ("data:image/;base64,aGVsbG8=", "value_error"),
            ("data:image/png;base64,not base64!", "value_error"),
            // Valid base64 of "hello": not an image.
            ("data:image/png;base64,aGVsbG8=", "value_error"),
        ] {
            let err = check_image_url(bad).unwrap_err();
            assert_eq!(err.kind, kind, "{bad:?}: {}", err.message);
            assert!(!err.message.is_empty());
        }
        // A PNG cut short is still a PNG by its magic bytes, without dimensions.
        let facts = match check_image_url(&data_uri("image/png", &png[..10])) {
            Ok(InputImage::Inline(f)) => f,
            other => panic!("{other:?}"),
        };
        assert_eq!((facts.media_type, facts.dimensions), ("image/png", None));
    }

    #[test]
    fn hostile_headers_never_panic() {
        let jpeg_loop = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x00, 0xFF];
        assert_eq!(jpeg_dimensions(&jpeg_loop), None);
        assert_eq!(dimensions("image/jpeg", &[0xFF, 0xD8, 0xFF]), None);
        assert_eq!(dimensions("image/webp", b"RIFF\0\0\0\0WEBPVP8X"), None);
        assert_eq!(
            dimensions(
                "image/png",
                b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\0\0\0\0\0"
            ),
            None
        );
    }
}
