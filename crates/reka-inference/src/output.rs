//! Finding the media files an output points at, and fetching them.
//!
//! Output shapes are not published, so [`find_media`] looks for what every
//! known shape shares: objects with a `url` field (plus `content_type` when
//! present). Downloads stream to disk through a `.part` file that is renamed
//! only when complete, so an interrupted download never leaves a truncated
//! file under the final name. The API key goes with a download only when the
//! file is on the API's own origin.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};
use crate::http::Http;
use crate::job::JobOutput;

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
fn is_data_uri(url: &str) -> bool {
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

/// Opens a download: the answer's headers are in, its body not yet read.
async fn open(http: &Http, url: &str) -> Result<reqwest::Response> {
    let url = url::Url::parse(url)
        .map_err(|e| Error::InvalidInput(format!("download URL {url:?}: {e}")))?;
    // `Url` lower-cases the scheme: `HTTP://` is `http`.
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::InvalidInput(format!(
            "download URL scheme {:?} is not http(s)",
            url.scheme()
        )));
    }
    http.download(url).await
}

/// The media type an answer declares, without parameters.
fn declared_type(response: &reqwest::Response) -> Option<String> {
    let ct = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)?
        .to_str()
        .ok()?;
    let essence = ct.split(';').next()?.trim().to_ascii_lowercase();
    (!essence.is_empty() && essence != "application/octet-stream").then_some(essence)
}

/// Streams the body of `response` into `path` through a `.part` file,
/// renamed only when complete.
async fn save(
    response: reqwest::Response,
    path: &Path,
    mut progress: impl FnMut(Progress) + Send,
) -> Result<u64> {
    let total = response.content_length();
    let part = part_path(path);
    let result = async {
        let mut file = tokio::fs::File::create(&part).await?;
        let mut received = 0u64;
        let mut body = response.bytes_stream();
        progress(Progress { received, total });
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(Error::Transport)?;
            file.write_all(&chunk).await?;
            received = received.saturating_add(chunk.len() as u64);
            progress(Progress { received, total });
        }
        file.flush().await?;
        file.sync_all().await?;
        Ok::<u64, Error>(received)
    }
    .await;
    match result {
        Ok(n) => {
            tokio::fs::rename(&part, path).await?;
            Ok(n)
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&part).await;
            Err(e)
        }
    }
}

/// Writes `bytes` to `path` through a `.part` file.
async fn save_bytes(bytes: &[u8], path: &Path) -> Result<()> {
    let part = part_path(path);
    let written = async {
        let mut file = tokio::fs::File::create(&part).await?;
        file.write_all(bytes).await?;
        file.sync_all().await?;
        tokio::fs::rename(&part, path).await
    }
    .await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&part).await;
    }
    Ok(written?)
}

pub(crate) async fn download_to_file(
    http: &Http,
    url: &str,
    path: &Path,
    progress: impl FnMut(Progress) + Send,
) -> Result<u64> {
    let response = open(http, url).await?;
    save(response, path, progress).await
}

pub(crate) async fn download_bytes(
    http: &Http,
    url: &str,
    mut progress: impl FnMut(Progress) + Send,
) -> Result<Bytes> {
    let response = open(http, url).await?;
    http.read_whole(response, "download", |received, total| {
        progress(Progress { received, total })
    })
    .await
}

/// Files of one output downloaded at once, at most.
const CONCURRENT_DOWNLOADS: usize = 4;

pub(crate) async fn download_outputs(
    http: &Http,
    completion: &JobOutput,
    dir: &Path,
    progress: impl FnMut(usize, &MediaRef, Progress) + Send,
) -> Result<Vec<PathBuf>> {
    tokio::fs::create_dir_all(dir).await?;
    let media = completion.media();
    // The callback is shared by downloads running at once.
    let progress = std::sync::Mutex::new(progress);
    let report = |i: usize, m: &MediaRef, p: Progress| {
        if let Ok(mut f) = progress.lock() {
            f(i, m, p);
        }
    };
    // Owned items: a stream of borrowed ones would make this future `Send`
    // only for one lifetime (a rustc limit), not for a caller that boxes it.
    futures::stream::iter(media.into_iter().enumerate())
        .map(|(i, m)| {
            let report = &report;
            async move {
                let m = &m;
                if is_data_uri(&m.url) {
                    let (media_type, bytes) = decode_data_uri(&m.url)?;
                    let name = file_name(&completion.request_id, i, m, media_type.as_deref());
                    let path = dir.join(name);
                    save_bytes(&bytes, &path).await?;
                    let n = bytes.len() as u64;
                    report(
                        i,
                        m,
                        Progress {
                            received: n,
                            total: Some(n),
                        },
                    );
                    return Ok::<PathBuf, Error>(path);
                }
                let response = open(http, &m.url).await?;
                // The answer's own type first: presigned URLs often have no
                // extension, and the output's `content_type` may be missing.
                let served = declared_type(&response);
                let name = file_name(&completion.request_id, i, m, served.as_deref());
                let path = dir.join(name);
                save(response, &path, |p| report(i, m, p)).await?;
                Ok::<PathBuf, Error>(path)
            }
        })
        .buffered(CONCURRENT_DOWNLOADS)
        .try_collect()
        .await
}

fn part_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".part");
    path.with_file_name(name)
}

/// `<request id>-<index>.<ext>`: unique per output, safe on every file
/// system; the extension from the served media type, else the output's
/// `content_type`, else the URL, else `bin`.
fn file_name(request_id: &str, index: usize, media: &MediaRef, served: Option<&str>) -> String {
    let safe_id: String = request_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let from_url = url::Url::parse(&media.url).ok().and_then(|u| {
        let last = u.path_segments()?.next_back()?.to_owned();
        let ext = last.rsplit_once('.')?.1.to_ascii_lowercase();
        (!ext.is_empty() && ext.len() <= 5 && ext.chars().all(|c| c.is_ascii_alphanumeric()))
            .then_some(ext)
    });
    let ext = served
        .and_then(extension_of)
        .or_else(|| media.content_type.as_deref().and_then(extension_of))
        .map(str::to_owned)
        .or(from_url)
        .unwrap_or_else(|| "bin".to_owned());
    format!("{safe_id}-{index}.{ext}")
}

/// The usual file extension of a media type.
fn extension_of(media_type: &str) -> Option<&'static str> {
    let essence = media_type.split(';').next()?.trim().to_ascii_lowercase();
    Some(match essence.as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpg",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "video/mp4" => "mp4",
        "video/webm" => "webm",
        "video/quicktime" => "mov",
        "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => "wav",
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/ogg" => "ogg",
        "audio/flac" => "flac",
        "application/json" => "json",
        _ => return None,
    })
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

    #[test]
    fn file_names_are_safe_and_typed() {
        let m = MediaRef {
            url: "https://x/files/abc".into(),
            content_type: Some("image/png".into()),
            pointer: String::new(),
        };
        assert_eq!(file_name("req/../1", 0, &m, None), "req____1-0.png");
        let m = MediaRef {
            url: "https://x/a.WAV?sig=1".into(),
            content_type: None,
            pointer: String::new(),
        };
        assert_eq!(file_name("r", 2, &m, None), "r-2.wav");
        // What the server serves wins over the URL's extension.
        assert_eq!(file_name("r", 2, &m, Some("audio/mpeg")), "r-2.mp3");
        let presigned = MediaRef {
            url: "https://bucket.example/obj/4f1c?X-Amz-Signature=abc".into(),
            content_type: None,
            pointer: String::new(),
        };
        assert_eq!(file_name("r", 0, &presigned, Some("video/mp4")), "r-0.mp4");
        assert_eq!(file_name("r", 0, &presigned, None), "r-0.bin");
    }
}
