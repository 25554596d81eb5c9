//! The media files an output points at, found by shape.
//!
//! Output shapes are not published, so [`find_media`] looks for what every
//! known shape shares: objects with a `url` field (plus `content_type` when
//! present), whether the URL is http(s) or an inline `data:` URI.

use serde_json::Value;

use crate::error::{Error, Result};

/// A media file an output points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRef {
    /// Where the file is.
    pub url: String,
    /// Its MIME type, when the output says.
    pub content_type: Option<String>,
    /// Where in the output it was found (a JSON pointer).
    pub pointer: String,
}

/// Progress of one download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes received so far.
    pub received: u64,
    /// The size announced by the server, if any.
    pub total: Option<u64>,
}

/// Every `{"url": ...}` object in `output` whose URL is http(s) (any case)
/// or an inline `data:` URI, in document order: `images[].url`,
/// `video.url`, `audio.url` and any other shape alike.
///
/// ```
/// use reka_inference::find_media;
/// use serde_json::json;
///
/// let output = json!({"images": [{"url": "https://cdn.example/a.png", "content_type": "image/png"}]});
/// let media = find_media(&output);
/// assert_eq!(media[0].url, "https://cdn.example/a.png");
/// assert_eq!(media[0].pointer, "/images/0");
/// ```
pub fn find_media(output: &Value) -> Vec<MediaRef> {
    let mut found = Vec::new();
    walk(output, String::new(), &mut found);
    found
}

/// Whether `url` is an absolute http(s) URL, whatever the scheme's case.
fn is_http_url(url: &str) -> bool {
    url.split_once("://").is_some_and(|(scheme, _)| {
        scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
    })
}

/// Whether `url` is a `data:` URI (the file inline).
pub(crate) fn is_data_uri(url: &str) -> bool {
    url.get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("data:"))
}

/// A `data:` URI's media type and bytes (base64 or percent-encoded text).
pub(crate) fn decode_data_uri(uri: &str) -> Result<(Option<String>, Vec<u8>)> {
    use base64::Engine;
    let bad = |why: &str| Error::InvalidInput(format!("a data: URI in the output {why}"));
    let rest = uri.get(5..).ok_or_else(|| bad("is empty"))?;
    let (meta, data) = rest.split_once(',').ok_or_else(|| bad("has no ','"))?;
    let mut parts = meta.split(';');
    let media_type = parts
        .next()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_ascii_lowercase);
    let base64 = parts.any(|p| p.trim().eq_ignore_ascii_case("base64"));
    let bytes = if base64 {
        let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(compact.as_bytes()))
            .map_err(|e| bad(&format!("is not valid base64: {e}")))?
    } else {
        percent_decode(data)
    };
    Ok((media_type, bytes))
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let pair = bytes
            .get(i + 1)
            .copied()
            .and_then(hex)
            .zip(bytes.get(i + 2).copied().and_then(hex));
        match (bytes[i], pair) {
            (b'%', Some((h, l))) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn walk(v: &Value, pointer: String, found: &mut Vec<MediaRef>) {
    match v {
        Value::Object(map) => {
            if let Some(url) = map.get("url").and_then(Value::as_str)
                && (is_http_url(url) || is_data_uri(url))
            {
                let declared = ["content_type", "mime_type", "contentType"]
                    .iter()
                    .find_map(|k| map.get(*k).and_then(Value::as_str))
                    .map(str::to_owned);
                let inline = is_data_uri(url)
                    .then(|| {
                        url[5..]
                            .split([';', ','])
                            .next()
                            .map(str::to_ascii_lowercase)
                    })
                    .flatten()
                    .filter(|t| !t.is_empty());
                let content_type = declared.or(inline);
                found.push(MediaRef {
                    url: url.to_owned(),
                    content_type,
                    pointer: pointer.clone(),
                });
            }
            for (k, child) in map {
                let token = k.replace('~', "~0").replace('/', "~1");
                walk(child, format!("{pointer}/{token}"), found);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, format!("{pointer}/{i}"), found);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_nested_media_and_ignores_non_http() {
        let out = json!({
            "video": {"url": "https://x/v.mp4", "content_type": "video/mp4"},
            "thumb": {"url": "file:///etc/passwd"},
            "frames": [{"url": "http://x/1.png"}, {"note": "none"}],
            "upper": {"url": "HTTPS://X/2.png"}
        });
        let urls: Vec<_> = find_media(&out)
            .into_iter()
            .map(|m| (m.pointer, m.url))
            .collect();
        assert_eq!(
            urls,
            [
                ("/video".to_owned(), "https://x/v.mp4".to_owned()),
                ("/frames/0".to_owned(), "http://x/1.png".to_owned()),
                ("/upper".to_owned(), "HTTPS://X/2.png".to_owned())
            ]
        );
    }

    #[test]
    fn data_uris_are_media_too() {
        let out = json!({"images": [{"url": "data:image/png;base64,iVBORw0KGgo="}], "text": {"url": "data:,hello%20there"}});
        let media = find_media(&out);
        assert_eq!(media.len(), 2);
        assert_eq!(media[0].content_type.as_deref(), Some("image/png"));
        let (t, bytes) = decode_data_uri(&media[0].url).unwrap();
        assert_eq!(t.as_deref(), Some("image/png"));
        assert_eq!(&bytes[..4], b"\x89PNG");
        let (t, bytes) = decode_data_uri(&media[1].url).unwrap();
        assert_eq!(t, None);
        assert_eq!(bytes, b"hello there");
        assert!(decode_data_uri("data:image/png;base64,@@@").is_err());
        assert!(decode_data_uri("data:nocomma").is_err());
    }
}
