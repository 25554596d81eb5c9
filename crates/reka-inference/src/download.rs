//! Fetching the media files of an output.
//!
//! Downloads stream to disk through a `.part` file that is renamed
//! only when complete, so an interrupted download never leaves a truncated
//! file under the final name. The API key goes with a download only when the
//! file is on the API's own origin.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};
use crate::http::Http;
use crate::media::{MediaRef, Progress, decode_data_uri, is_data_uri};
use crate::vocab::JobOutput;

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
