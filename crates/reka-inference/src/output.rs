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
use futures::StreamExt;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::job::Completion;

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

/// Every `{"url": "http..."}` object in `output`, in document order.
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

fn walk(v: &Value, pointer: String, found: &mut Vec<MediaRef>) {
    match v {
        Value::Object(map) => {
            if let Some(url) = map.get("url").and_then(Value::as_str)
                && (url.starts_with("https://") || url.starts_with("http://"))
            {
                let content_type = ["content_type", "mime_type", "contentType"]
                    .iter()
                    .find_map(|k| map.get(*k).and_then(Value::as_str))
                    .map(str::to_owned);
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

impl Client {
    async fn open_download(&self, url: &str) -> Result<reqwest::Response> {
        let url = url::Url::parse(url)
            .map_err(|e| Error::InvalidInput(format!("download URL {url:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::InvalidInput(format!(
                "download URL scheme {:?} is not http(s)",
                url.scheme()
            )));
        }
        self.send_raw(self.inner.http.get(url), "download", true)
            .await
    }

    /// Streams the file at `url` into `path`, calling `progress` as bytes
    /// arrive; returns the number of bytes written.
    pub async fn download_to_file(
        &self,
        url: &str,
        path: impl AsRef<Path>,
        mut progress: impl FnMut(Progress) + Send,
    ) -> Result<u64> {
        let path = path.as_ref();
        let response = self.open_download(url).await?;
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
                received += chunk.len() as u64;
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

    /// Fetches the file at `url` into memory.
    pub async fn download_bytes(
        &self,
        url: &str,
        mut progress: impl FnMut(Progress) + Send,
    ) -> Result<Bytes> {
        let response = self.open_download(url).await?;
        let total = response.content_length();
        let mut buf = Vec::with_capacity(total.unwrap_or(0).min(64 << 20) as usize);
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(Error::Transport)?;
            buf.extend_from_slice(&chunk);
            progress(Progress {
                received: buf.len() as u64,
                total,
            });
        }
        Ok(buf.into())
    }

    /// Downloads every media file of a completed job into `dir` (created if
    /// missing); returns the paths written, in output order. `progress` gets
    /// the index of the file and its progress.
    pub async fn download_outputs(
        &self,
        completion: &Completion,
        dir: impl AsRef<Path>,
        mut progress: impl FnMut(usize, &MediaRef, Progress) + Send,
    ) -> Result<Vec<PathBuf>> {
        let dir = dir.as_ref();
        tokio::fs::create_dir_all(dir).await?;
        let media = completion.media();
        let mut written = Vec::with_capacity(media.len());
        for (i, m) in media.iter().enumerate() {
            let name = file_name(&completion.request_id, i, m);
            let path = dir.join(name);
            self.download_to_file(&m.url, &path, |p| progress(i, m, p))
                .await?;
            written.push(path);
        }
        Ok(written)
    }
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
/// system, the extension from the URL or the content type.
fn file_name(request_id: &str, index: usize, media: &MediaRef) -> String {
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
    let from_type = media.content_type.as_deref().and_then(|ct| {
        Some(
            match ct.split(';').next()?.trim() {
                "image/png" => "png",
                "image/jpeg" => "jpg",
                "image/webp" => "webp",
                "image/gif" => "gif",
                "video/mp4" => "mp4",
                "video/webm" => "webm",
                "audio/wav" | "audio/x-wav" | "audio/wave" => "wav",
                "audio/mpeg" => "mp3",
                "application/json" => "json",
                _ => return None,
            }
            .to_owned(),
        )
    });
    let ext = from_url.or(from_type).unwrap_or_else(|| "bin".to_owned());
    format!("{safe_id}-{index}.{ext}")
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
            "frames": [{"url": "http://x/1.png"}, {"note": "none"}]
        });
        let urls: Vec<_> = find_media(&out)
            .into_iter()
            .map(|m| (m.pointer, m.url))
            .collect();
        assert_eq!(
            urls,
            [
                ("/video".to_owned(), "https://x/v.mp4".to_owned()),
                ("/frames/0".to_owned(), "http://x/1.png".to_owned())
            ]
        );
    }

    #[test]
    fn file_names_are_safe_and_typed() {
        let m = MediaRef {
            url: "https://x/files/abc".into(),
            content_type: Some("image/png".into()),
            pointer: String::new(),
        };
        assert_eq!(file_name("req/../1", 0, &m), "req____1-0.png");
        let m = MediaRef {
            url: "https://x/a.WAV?sig=1".into(),
            content_type: None,
            pointer: String::new(),
        };
        assert_eq!(file_name("r", 2, &m), "r-2.wav");
    }
}
