//! One item of a batch: its key, endpoint and input, the local files that
//! go into the input, and the fingerprint that tells it from a changed one.

use serde::Serialize;
use serde_json::{Map, Value};

use super::files::{self, FileDigest, ItemFile};
use crate::endpoint::{Endpoint, IntoEndpoint};
use crate::error::{Error, Result};

/// One item of a batch: a key of yours that names it (and its files), an
/// endpoint and an input.
#[derive(Debug, Clone)]
pub struct BatchItem {
    pub(super) key: String,
    pub(super) endpoint: Endpoint,
    pub(super) input: Map<String, Value>,
    pub(super) files: Vec<ItemFile>,
    pub(super) fingerprint: String,
    pub(super) idempotency_key: Option<String>,
}

impl BatchItem {
    /// An item, checked now: the key must be usable as a file name (1 to
    /// 128 of `A-Z a-z 0-9 . _ -`, not `.` or `..`), the endpoint well
    /// formed, the input a JSON object.
    ///
    /// ```
    /// use reka_inference::batch::BatchItem;
    /// use serde_json::json;
    ///
    /// assert!(BatchItem::new("row-17", "nano-banana/text-to-image", json!({"prompt": "a fox"})).is_ok());
    /// assert!(BatchItem::new("../etc", "nano-banana/text-to-image", json!({})).is_err());
    /// assert!(BatchItem::new("row-18", "nano-banana/text-to-image", json!("a fox")).is_err());
    /// ```
    pub fn new(
        key: impl Into<String>,
        endpoint: impl IntoEndpoint,
        input: impl Serialize,
    ) -> Result<BatchItem> {
        let key = key.into();
        check_key(&key)?;
        let endpoint = endpoint.into_endpoint()?;
        let input = match serde_json::to_value(input) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(Error::InvalidInput(
                    "the input must be a JSON object".into(),
                ));
            }
            Err(e) => {
                return Err(Error::InvalidInput(format!(
                    "the input does not serialise: {e}"
                )));
            }
        };
        let fingerprint = fingerprint(&endpoint, &input, &[]);
        Ok(BatchItem {
            key,
            endpoint,
            input,
            files: Vec::new(),
            fingerprint,
            idempotency_key: None,
        })
    }

    /// Puts a local file into the input at `pointer` (a JSON pointer:
    /// `/image_url`, `/images/0`): an existing member or element, or a new
    /// member of an existing object. The item keeps the file's path and
    /// hash, not its bytes: the file is read, checked against its hash and
    /// encoded (a `data:` URI by default, [`BatchOptions::input_encoder`](super::BatchOptions::input_encoder))
    /// only when the item is sent, so items waiting their turn hold no file
    /// in memory and the journal stores the path and hash. The item's
    /// fingerprint covers the file's content (not its path): an item whose
    /// file changed since its job ran is a changed item.
    ///
    /// ```
    /// use reka_inference::batch::{BatchItem, FileDigest};
    /// use serde_json::json;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// std::fs::write(dir.path().join("a.png"), b"\x89PNG\r\n\x1a\n....")?;
    /// let photo = FileDigest::of_path(dir.path().join("a.png"), 1 << 20).await?;
    /// let item = BatchItem::new("clip-1", "kling-v3-pro/image-to-video", json!({"prompt": "zoom"}))?
    ///     .with_file("/image_url", &photo)?;
    /// assert_eq!(item.files()[0].pointer, "/image_url");
    /// assert!(item.input()["image_url"].is_null()); // filled in when it is sent
    /// assert!(BatchItem::new("x", "m/c", json!({}))?.with_file("/no/parent", &photo).is_err());
    /// # Ok(()) }
    /// ```
    pub fn with_file(mut self, pointer: &str, file: &FileDigest) -> Result<BatchItem> {
        files::reserve(&mut self.input, pointer)?;
        self.files.retain(|f| f.pointer != pointer);
        self.files.push(ItemFile::new(pointer, file));
        self.fingerprint = fingerprint(&self.endpoint, &self.input, &self.files);
        Ok(self)
    }

    /// The local files that go into its input ([`BatchItem::with_file`]).
    pub fn files(&self) -> &[ItemFile] {
        &self.files
    }

    /// Submits the item with this idempotency key rather than a fresh
    /// random one. Keys derived from the item (`"catalog-2026-12:" + key`)
    /// make runs that overlap harmless: two processes, or two journals,
    /// submitting the same item get the same job from the service (within
    /// the time the service keeps keys). Visible ASCII, at most 255 bytes.
    ///
    /// ```
    /// use reka_inference::batch::BatchItem;
    /// use serde_json::json;
    ///
    /// let item = BatchItem::new("row-17", "nano-banana/text-to-image", json!({"prompt": "a fox"}))?
    ///     .with_idempotency_key("catalog-2026-12:row-17")?;
    /// assert_eq!(item.idempotency_key(), Some("catalog-2026-12:row-17"));
    /// assert!(BatchItem::new("r", "m/c", json!({}))?.with_idempotency_key("two words").is_err());
    /// # Ok::<(), reka_inference::Error>(())
    /// ```
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Result<BatchItem> {
        let key = key.into();
        if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::InvalidInput(format!(
                "idempotency key {:?}: 1 to 255 visible ASCII characters",
                crate::error::truncate(&key, 80)
            )));
        }
        self.idempotency_key = Some(key);
        Ok(self)
    }

    /// The idempotency key given with [`with_idempotency_key`](Self::with_idempotency_key).
    pub fn idempotency_key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }

    /// The item's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The input.
    pub fn input(&self) -> &Map<String, Value> {
        &self.input
    }

    /// What tells this item from a changed one with its key: a hash of the
    /// endpoint and the input (16 hex digits), as the journal keeps it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 128
        && key != "."
        && key != ".."
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "item key {:?}: 1 to 128 of A-Z a-z 0-9 . _ - (it names the item's files), not . or ..",
            crate::error::truncate(key, 80)
        )))
    }
}

/// A stable fingerprint of what is submitted: FNV-1a over the endpoint,
/// the input's JSON text (key order as given) and, for each local file,
/// where it goes and its SHA-256, as 16 hex digits. Not a security
/// measure: it tells an item that changed between runs. An item without
/// files has the fingerprint earlier versions gave it.
fn fingerprint(endpoint: &Endpoint, input: &Map<String, Value>, files: &[ItemFile]) -> String {
    let text = serde_json::to_string(input).unwrap_or_default();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let files = files.iter().flat_map(|f| {
        [0u8]
            .into_iter()
            .chain(f.pointer.bytes())
            .chain([0])
            .chain(f.sha256.bytes())
    });
    for byte in endpoint
        .as_str()
        .bytes()
        .chain([0])
        .chain(text.bytes())
        .chain(files)
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}
