//! Local files in a batch item's input (a photo for `image_url`): known by
//! their path, size and SHA-256 when the item is made, read and encoded
//! only when the item is sent, so that a batch of thousands of images
//! holds at most the few being sent in memory, and its journal keeps each
//! file's path and hash, never its bytes.
//!
//! The hash is what tells a file that changed: the item's fingerprint
//! covers it (so an item whose file changed since its job ran is a changed
//! item), and the bytes read at the send are hashed again, so a file
//! changed between the two is not sent in place of the one hashed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::error::{Error, Result};
use crate::input::{InputEncoder, InputFile, InputFileError, check_regular};
use crate::submitter::PrepareInput;

/// A local file's identity: where it is, its size and its SHA-256, read
/// once. Hash a file once and give the digest to every item that uses it.
///
/// ```no_run
/// use reka_inference::batch::{BatchItem, FileDigest};
/// use reka_inference::input::DEFAULT_MAX_INLINE_BYTES;
/// use serde_json::json;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let photo = FileDigest::of_path("photos/0001.png", DEFAULT_MAX_INLINE_BYTES).await?;
/// let item = BatchItem::new("clip-1", "kling-v3-pro/image-to-video", json!({"prompt": "slow zoom", "image_url": null}))?
///     .with_file("/image_url", &photo)?;
/// assert_eq!(item.files()[0].sha256, photo.sha256());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    path: PathBuf,
    bytes: u64,
    sha256: String,
}

impl FileDigest {
    /// Hashes the file at `path` (streamed: memory stays a small buffer),
    /// refusing what [`InputFile::from_path_with_limit`] would refuse: a
    /// directory, FIFO, device or socket before it is opened, a file over
    /// `max_bytes` from its metadata before a byte is read.
    pub async fn of_path(
        path: impl AsRef<Path>,
        max_bytes: u64,
    ) -> std::result::Result<FileDigest, InputFileError> {
        let path = path.as_ref();
        let io = |source| InputFileError::Io {
            path: Some(path.to_owned()),
            source,
        };
        let name = || {
            Some(path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ))
        };
        let before = tokio::fs::metadata(path).await.map_err(io)?;
        check_regular(path, &before)?;
        let file = tokio::fs::File::open(path).await.map_err(io)?;
        let meta = file.metadata().await.map_err(io)?;
        check_regular(path, &meta)?;
        if meta.len() > max_bytes {
            return Err(InputFileError::TooLarge {
                name: name(),
                size: Some(meta.len()),
                limit: max_bytes,
            });
        }
        let mut hasher = Sha256::new();
        let mut reader = file.take(max_bytes.saturating_add(1));
        let mut buf = vec![0u8; 256 << 10];
        let mut total = 0u64;
        loop {
            let n = reader.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            hasher.update(&buf[..n]);
        }
        if total > max_bytes {
            // It grew past the limit while it was read.
            return Err(InputFileError::TooLarge {
                name: name(),
                size: None,
                limit: max_bytes,
            });
        }
        Ok(FileDigest {
            path: path.to_owned(),
            bytes: total,
            sha256: hex(&hasher.finalize()),
        })
    }

    /// The path it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Its SHA-256, 64 lowercase hex digits.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
}

/// A local file in an item's input, as the item and its journal entry
/// keep it: where in the input it goes, and the file's path, size and
/// SHA-256 ([`BatchItem::with_file`](super::BatchItem::with_file)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ItemFile {
    /// Where in the input its value goes, as a JSON pointer (`/image_url`).
    pub pointer: String,
    /// The file.
    pub path: PathBuf,
    /// Its size when it was hashed.
    pub bytes: u64,
    /// Its SHA-256 when it was hashed (lowercase hex).
    pub sha256: String,
}

impl ItemFile {
    pub(super) fn new(pointer: &str, digest: &FileDigest) -> ItemFile {
        ItemFile {
            pointer: pointer.to_owned(),
            path: digest.path.clone(),
            bytes: digest.bytes,
            sha256: digest.sha256.clone(),
        }
    }
}

/// Checks that `pointer` names a place in `input` a value can be put:
/// an existing object member or array element, or a new member of an
/// existing object. Puts `null` there for now.
pub(super) fn reserve(input: &mut Map<String, Value>, pointer: &str) -> Result<()> {
    set(input, pointer, Value::Null)
        .map_err(|why| Error::InvalidInput(format!("file at {pointer:?}: {why}")))
}

/// Puts `value` at `pointer` in `input`.
fn set(
    input: &mut Map<String, Value>,
    pointer: &str,
    value: Value,
) -> std::result::Result<(), String> {
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err("a JSON pointer starts with '/' (\"/image_url\")".into());
    };
    let (parent, last) = match rest.rfind('/') {
        Some(at) => (&pointer[..at + 1], &rest[at + 1..]),
        None => ("", rest),
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    let mut root = Value::Object(std::mem::take(input));
    let outcome = match root.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(last, value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            match last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(slot) => {
                    *slot = value;
                    Ok(())
                }
                None => Err(format!("{parent:?} has no element {last:?}")),
            }
        }
        Some(_) => Err(format!("{parent:?} is neither an object nor an array")),
        None => Err(format!("the input has nothing at {parent:?}")),
    };
    if let Value::Object(map) = root {
        *input = map;
    }
    outcome
}

/// Puts an item's files into its input before each try of its submit
/// (read, checked against their hashes, encoded): only the items being
/// sent hold file bytes.
pub(super) struct FilesIntoInput {
    pub(super) files: Vec<ItemFile>,
    pub(super) max_bytes: u64,
    pub(super) encoder: std::sync::Arc<dyn InputEncoder>,
}

impl PrepareInput for FilesIntoInput {
    fn prepare(
        &self,
        mut input: Map<String, Value>,
    ) -> futures::future::BoxFuture<'_, Result<Map<String, Value>>> {
        Box::pin(async move {
            match resolve(
                &mut input,
                &self.files,
                self.max_bytes,
                self.encoder.as_ref(),
            )
            .await
            {
                Ok(()) => Ok(input),
                Err(why) => Err(Error::InvalidInput(format!("{FILE_PROBLEM}{why}"))),
            }
        })
    }
}

/// How a submit's error says that an item's file, not the service, was
/// the problem (the batch leaves the item unsubmitted rather than refused).
pub(super) const FILE_PROBLEM: &str = "local file: ";

/// Reads each file of an item, checks it against its hash, and puts its
/// encoded value into the input; else says why it could not (a file that
/// cannot be read or encoded now, or whose bytes are not those hashed when
/// the item was made).
async fn resolve(
    input: &mut Map<String, Value>,
    files: &[ItemFile],
    max_bytes: u64,
    encoder: &dyn InputEncoder,
) -> std::result::Result<(), String> {
    for f in files {
        let file = InputFile::from_path_with_limit(&f.path, max_bytes)
            .await
            .map_err(|e| e.to_string())?;
        let now = hex(&Sha256::digest(file.bytes()));
        if now != f.sha256 {
            return Err(format!(
                "its file {} changed after it was hashed for this item (sha256 {}… then, {}… now): \
                 not sent",
                f.path.display(),
                &f.sha256[..f.sha256.len().min(12)],
                &now[..12]
            ));
        }
        let value = encoder.encode(&file).await.map_err(|e| e.to_string())?;
        drop(file);
        set(input, &f.pointer, Value::String(value))?;
    }
    Ok(())
}

/// What tells how an item's files differ from those its entry recorded.
pub(super) fn describe_change(before: &[ItemFile], now: &[ItemFile]) -> Option<String> {
    for f in now {
        match before.iter().find(|b| b.pointer == f.pointer) {
            Some(b) if b.sha256 != f.sha256 => {
                return Some(format!(
                    "its file {} ({}) changed since it was sent: sha256 {}… then, {}… now",
                    f.path.display(),
                    f.pointer,
                    &b.sha256[..b.sha256.len().min(12)],
                    &f.sha256[..f.sha256.len().min(12)]
                ));
            }
            Some(_) => {}
            None => return Some(format!("it has a file at {} it did not have", f.pointer)),
        }
    }
    before
        .iter()
        .find(|b| !now.iter().any(|f| f.pointer == b.pointer))
        .map(|b| format!("its file at {} is gone from its input", b.pointer))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn pointers_set_members_and_elements_and_refuse_the_rest() {
        let mut input = map(json!({"a": {"b": 1}, "list": [0, 1], "text": "x"}));
        set(&mut input, "/image_url", json!("u")).unwrap();
        set(&mut input, "/a/c", json!(2)).unwrap();
        set(&mut input, "/list/1", json!("v")).unwrap();
        set(&mut input, "/a~1b", json!(3)).unwrap();
        assert_eq!(
            Value::Object(input.clone()),
            json!({"a": {"b": 1, "c": 2}, "list": [0, "v"], "text": "x", "image_url": "u", "a/b": 3})
        );
        for bad in ["image_url", "/missing/x", "/list/9", "/text/x"] {
            assert!(set(&mut input, bad, json!(0)).is_err(), "{bad}");
        }
        // A failed set leaves the input as it was.
        assert_eq!(input["text"], "x");
    }

    #[tokio::test]
    async fn a_digest_is_the_sha256_of_the_bytes_and_refuses_what_input_files_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        std::fs::write(&path, b"abc").unwrap();
        let d = FileDigest::of_path(&path, 10).await.unwrap();
        assert_eq!(
            d.sha256(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.bytes(), 3);
        assert!(matches!(
            FileDigest::of_path(&path, 2).await,
            Err(InputFileError::TooLarge {
                size: Some(3),
                limit: 2,
                ..
            })
        ));
        assert!(matches!(
            FileDigest::of_path(dir.path(), 10).await,
            Err(InputFileError::NotAFile { .. })
        ));
        assert!(matches!(
            FileDigest::of_path(dir.path().join("none"), 10).await,
            Err(InputFileError::Io { .. })
        ));
    }

    #[tokio::test]
    async fn a_file_changed_after_its_hash_is_not_sent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("photo.png");
        std::fs::write(&path, b"\x89PNG\r\n\x1a\nfirst").unwrap();
        let d = FileDigest::of_path(&path, 1 << 20).await.unwrap();
        let files = vec![ItemFile::new("/image_url", &d)];
        let mut input = map(json!({"image_url": null}));
        resolve(
            &mut input,
            &files,
            1 << 20,
            &crate::input::DataUri::default(),
        )
        .await
        .ok()
        .unwrap();
        assert!(
            input["image_url"]
                .as_str()
                .unwrap()
                .starts_with("data:image/png;base64,")
        );
        std::fs::write(&path, b"\x89PNG\r\n\x1a\nsecond").unwrap();
        let mut input = map(json!({"image_url": null}));
        match resolve(
            &mut input,
            &files,
            1 << 20,
            &crate::input::DataUri::default(),
        )
        .await
        {
            Err(why) => assert!(why.contains("photo.png"), "{why}"),
            _ => panic!("a changed file was sent"),
        }
        assert_eq!(input["image_url"], Value::Null);
    }
}
