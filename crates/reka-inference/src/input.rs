//! Local files as job inputs: [`InputFile`] reads a file (from a path,
//! bytes or an async reader) within a size limit, learns its media type
//! from its bytes, and turns into the value the service takes for a field
//! such as `image_url`, through an [`InputEncoder`].
//!
//! Today the service takes a file inline, as a `data:<media type>;base64,...`
//! URI (reference, section 13 row 9): that is [`DataUri`], the default
//! encoder. When the service documents an upload route, an encoder that
//! uploads the bytes and returns a URL replaces it without any change to the
//! code that builds inputs. The size limit is checked before anything is
//! read (from the file's metadata), and again while reading, so memory stays
//! bounded even when a file grows or a reader never ends.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The default limit on a file sent inline: 20 MiB of file (about 27 MiB
/// once base64-encoded), below the service's and the simulator's request
/// size limits.
pub const DEFAULT_MAX_INLINE_BYTES: u64 = 20 << 20;

/// The media type of bytes whose kind is not recognised.
pub const UNKNOWN_MEDIA_TYPE: &str = "application/octet-stream";

/// Why a file could not become an input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputFileError {
    /// The file is larger than the limit. Nothing past the limit was read.
    #[error("{} is {}, over the limit of {}", .name.as_deref().unwrap_or("the file"), size_text(*.size), bytes_text(*.limit))]
    TooLarge {
        /// The file, when it has a name.
        name: Option<String>,
        /// Its size when known (from metadata or a whole buffer); `None`
        /// when reading stopped at the limit, so only "more than the limit"
        /// is known.
        size: Option<u64>,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The path names something other than a regular file (a directory,
    /// a FIFO, a device such as `/dev/zero`, a socket). Nothing was read.
    #[error("{} is {kind}, not a regular file", .path.display())]
    NotAFile {
        /// The path given.
        path: PathBuf,
        /// What it is instead (`a directory`, `a FIFO`, ...).
        kind: &'static str,
    },
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", .path.as_ref().map_or_else(|| "the input".to_owned(), |p| p.display().to_string()))]
    Io {
        /// The path, when reading from one.
        path: Option<PathBuf>,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A media type given by the caller is not of the form `type/subtype`.
    #[error("{0:?} is not a media type (expected type/subtype, such as image/png)")]
    InvalidMediaType(String),
    /// An encoder could not turn the file into an input value (an upload
    /// that failed, say).
    #[error("{0}")]
    Encode(String),
}

impl From<InputFileError> for crate::Error {
    fn from(e: InputFileError) -> crate::Error {
        match e {
            InputFileError::Io { source, .. } => crate::Error::Io(source),
            other => crate::Error::InvalidInput(other.to_string()),
        }
    }
}

fn size_text(size: Option<u64>) -> String {
    match size {
        Some(n) => bytes_text(n),
        None => "larger than that".to_owned(),
    }
}

/// `20 MiB (20971520 bytes)`: both the readable size and the exact count.
fn bytes_text(n: u64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    const KIB: f64 = 1024.0;
    let readable = if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / MIB)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / KIB)
    } else {
        return format!("{n} bytes");
    };
    format!("{readable} ({n} bytes)")
}

/// A file to send as a job's input, held in memory with its media type.
///
/// ```no_run
/// use reka_inference::{Client, InputFile};
/// use serde_json::json;
///
/// # async fn run(client: Client) -> reka_inference::Result<()> {
/// let photo = InputFile::from_path("photo.png").await?; // at most 20 MiB, type from the bytes
/// let input = json!({"prompt": "make it snow", "image_url": photo.to_data_uri()});
/// let job = client.submit("nano-banana/edit", input).await?;
/// # Ok(()) }
/// ```
///
/// From bytes, with the media type sniffed or given:
///
/// ```
/// use reka_inference::InputFile;
///
/// let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
/// let file = InputFile::from_bytes(png)?;
/// assert_eq!(file.media_type(), "image/png");
/// assert!(file.to_data_uri().starts_with("data:image/png;base64,iVBORw0KGgo"));
///
/// let other = InputFile::from_bytes(b"RIFF....WEBPVP8 ".to_vec())?.with_media_type("image/webp")?;
/// assert_eq!(other.media_type(), "image/webp");
/// # Ok::<(), reka_inference::input::InputFileError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct InputFile {
    bytes: Bytes,
    media_type: String,
    name: Option<String>,
}

impl fmt::Debug for InputFile {
    // The bytes are not shown: a file can be megabytes of noise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InputFile")
            .field("name", &self.name)
            .field("media_type", &self.media_type)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl InputFile {
    /// Reads the file at `path`, of at most [`DEFAULT_MAX_INLINE_BYTES`].
    /// See [`InputFile::from_path_with_limit`].
    pub async fn from_path(path: impl AsRef<Path>) -> Result<InputFile, InputFileError> {
        InputFile::from_path_with_limit(path, DEFAULT_MAX_INLINE_BYTES).await
    }

    /// Reads the file at `path`, of at most `max_bytes`.
    ///
    /// Only a regular file is read (symbolic links are followed): a
    /// directory, FIFO, device or socket is [`InputFileError::NotAFile`],
    /// refused before it is opened, so that neither a FIFO without writer
    /// nor `/dev/zero` can block or fill memory. The size is checked from
    /// the file's metadata before reading, and reading stops at the limit
    /// should the file grow meanwhile. The media type is sniffed from the
    /// bytes, not from the extension.
    pub async fn from_path_with_limit(
        path: impl AsRef<Path>,
        max_bytes: u64,
    ) -> Result<InputFile, InputFileError> {
        let path = path.as_ref();
        let io = |source| InputFileError::Io {
            path: Some(path.to_owned()),
            source,
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .or_else(|| Some(path.display().to_string()));
        // Before opening: opening a FIFO blocks until a writer comes.
        let before = tokio::fs::metadata(path).await.map_err(io)?;
        check_regular(path, &before)?;
        let file = tokio::fs::File::open(path).await.map_err(io)?;
        // The metadata of what was opened: the path may have changed.
        let meta = file.metadata().await.map_err(io)?;
        check_regular(path, &meta)?;
        if meta.len() > max_bytes {
            return Err(InputFileError::TooLarge {
                name,
                size: Some(meta.len()),
                limit: max_bytes,
            });
        }
        let bytes = read_capped(file, max_bytes, meta.len())
            .await
            .map_err(io)?
            .ok_or(InputFileError::TooLarge {
                name: name.clone(),
                size: None,
                limit: max_bytes,
            })?;
        Ok(InputFile::sniffed(bytes, name))
    }

    /// [`InputFile::from_path_with_limit`] on the calling thread, for code
    /// that is not async (a command line building its input before any
    /// runtime work). The same checks, in the same order: a regular file
    /// only, its size from the metadata before a byte is read, reading
    /// stopped at the limit.
    ///
    /// ```
    /// use reka_inference::input::{InputFile, InputFileError};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("dot.gif");
    /// std::fs::write(&path, b"GIF89a\x01\x00\x01\x00").unwrap();
    /// let file = InputFile::from_path_blocking(&path, 1024)?;
    /// assert_eq!(file.media_type(), "image/gif");
    /// assert!(matches!(
    ///     InputFile::from_path_blocking(dir.path(), 1024),
    ///     Err(InputFileError::NotAFile { kind: "a directory", .. })
    /// ));
    /// # Ok::<(), InputFileError>(())
    /// ```
    pub fn from_path_blocking(
        path: impl AsRef<Path>,
        max_bytes: u64,
    ) -> Result<InputFile, InputFileError> {
        use std::io::Read;
        let path = path.as_ref();
        let io = |source| InputFileError::Io {
            path: Some(path.to_owned()),
            source,
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .or_else(|| Some(path.display().to_string()));
        // Before opening: opening a FIFO blocks until a writer comes.
        let before = std::fs::metadata(path).map_err(io)?;
        check_regular(path, &before)?;
        let file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        check_regular(path, &meta)?;
        if meta.len() > max_bytes {
            return Err(InputFileError::TooLarge {
                name,
                size: Some(meta.len()),
                limit: max_bytes,
            });
        }
        let initial = usize::try_from(meta.len().min(max_bytes).saturating_add(1)).unwrap_or(0);
        let mut buf = Vec::with_capacity(initial.min(64 << 20));
        file.take(max_bytes.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(io)?;
        if buf.len() as u64 > max_bytes {
            return Err(InputFileError::TooLarge {
                name,
                size: None,
                limit: max_bytes,
            });
        }
        Ok(InputFile::sniffed(Bytes::from(buf), name))
    }

    /// The file from bytes in memory, of at most [`DEFAULT_MAX_INLINE_BYTES`].
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Result<InputFile, InputFileError> {
        InputFile::from_bytes_with_limit(bytes, DEFAULT_MAX_INLINE_BYTES)
    }

    /// The file from bytes in memory, of at most `max_bytes`.
    pub fn from_bytes_with_limit(
        bytes: impl Into<Bytes>,
        max_bytes: u64,
    ) -> Result<InputFile, InputFileError> {
        let bytes = bytes.into();
        let size = bytes.len() as u64;
        if size > max_bytes {
            return Err(InputFileError::TooLarge {
                name: None,
                size: Some(size),
                limit: max_bytes,
            });
        }
        Ok(InputFile::sniffed(bytes, None))
    }

    /// Reads `reader` to its end, at most `max_bytes` of it: a reader
    /// with more is [`InputFileError::TooLarge`], and nothing past the
    /// limit is read.
    ///
    /// ```
    /// use reka_inference::input::{InputFile, InputFileError};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), InputFileError> {
    /// let gif: &[u8] = b"GIF89a\x01\x00\x01\x00";
    /// let file = InputFile::from_reader(gif, 1024).await?;
    /// assert_eq!(file.media_type(), "image/gif");
    ///
    /// let endless = tokio::io::repeat(0);
    /// let err = InputFile::from_reader(endless, 1024).await.unwrap_err();
    /// assert!(matches!(err, InputFileError::TooLarge { limit: 1024, .. }));
    /// # Ok(()) }
    /// ```
    pub async fn from_reader(
        reader: impl AsyncRead + Unpin,
        max_bytes: u64,
    ) -> Result<InputFile, InputFileError> {
        let bytes = read_capped(reader, max_bytes, 0)
            .await
            .map_err(|source| InputFileError::Io { path: None, source })?
            .ok_or(InputFileError::TooLarge {
                name: None,
                size: None,
                limit: max_bytes,
            })?;
        Ok(InputFile::sniffed(bytes, None))
    }

    fn sniffed(bytes: Bytes, name: Option<String>) -> InputFile {
        let media_type = sniff_media_type(&bytes)
            .unwrap_or(UNKNOWN_MEDIA_TYPE)
            .to_owned();
        InputFile {
            bytes,
            media_type,
            name,
        }
    }

    /// The same file with the media type given rather than sniffed
    /// (`type/subtype`, parameters not allowed; kept in lower case).
    pub fn with_media_type(mut self, media_type: &str) -> Result<InputFile, InputFileError> {
        let media_type = media_type.trim();
        if !is_media_type(media_type) {
            return Err(InputFileError::InvalidMediaType(media_type.to_owned()));
        }
        self.media_type = media_type.to_ascii_lowercase();
        Ok(self)
    }

    /// The same file with a name (used in errors and by encoders that
    /// upload).
    pub fn with_name(mut self, name: impl Into<String>) -> InputFile {
        self.name = Some(name.into());
        self
    }

    /// The media type: given, or sniffed from the bytes, or
    /// [`UNKNOWN_MEDIA_TYPE`].
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// The file's name, when it came from a path or was given one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The file as a `data:<media type>;base64,...` URI, whatever its size
    /// ([`DataUri`] checks the inline limit).
    pub fn to_data_uri(&self) -> String {
        // Encoded straight into the URI: one buffer of the final size, not
        // a base64 string and then a copy of it (files can be megabytes).
        let prefix = format!("data:{};base64,", self.media_type);
        let encoded = base64::encoded_len(self.bytes.len(), true).unwrap_or(0);
        let mut uri = String::with_capacity(prefix.len().saturating_add(encoded));
        uri.push_str(&prefix);
        base64::engine::general_purpose::STANDARD.encode_string(&self.bytes, &mut uri);
        uri
    }

    /// The value to put in the input, as `encoder` makes it.
    ///
    /// ```
    /// use reka_inference::input::{DataUri, InputFile};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), reka_inference::input::InputFileError> {
    /// let file = InputFile::from_bytes(b"\xff\xd8\xff\xe0 jfif".to_vec())?;
    /// let value = file.encode(&DataUri::default()).await?;
    /// assert!(value.starts_with("data:image/jpeg;base64,"));
    /// # Ok(()) }
    /// ```
    pub async fn encode(&self, encoder: &dyn InputEncoder) -> Result<String, InputFileError> {
        encoder.encode(self).await
    }
}

/// Whether `text` is `type/subtype`, both non-empty RFC 6838 tokens.
fn is_media_type(text: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    text.split_once('/')
        .is_some_and(|(t, s)| token(t) && token(s))
}

pub(crate) fn check_regular(path: &Path, meta: &std::fs::Metadata) -> Result<(), InputFileError> {
    if meta.is_file() {
        return Ok(());
    }
    Err(InputFileError::NotAFile {
        path: path.to_owned(),
        kind: kind_of(meta),
    })
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    if meta.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// Reads `reader` to its end: `Ok(None)` when it holds more than `max`
/// bytes (one byte past the limit is read to know). `hint` sizes the buffer.
async fn read_capped(
    reader: impl AsyncRead + Unpin,
    max: u64,
    hint: u64,
) -> std::io::Result<Option<Bytes>> {
    let cap = max.saturating_add(1);
    // Pre-allocate for the expected size, never for an untrusted limit.
    let initial = usize::try_from(hint.min(max).saturating_add(1)).unwrap_or(0);
    let mut buf = Vec::with_capacity(initial.min(64 << 20));
    reader.take(cap).read_to_end(&mut buf).await?;
    if buf.len() as u64 > max {
        return Ok(None);
    }
    Ok(Some(Bytes::from(buf)))
}

/// The media type of `bytes`, from their first bytes (magic numbers), when
/// recognised: PNG, JPEG, GIF, WebP, BMP, TIFF, HEIC/AVIF, MP4, QuickTime,
/// M4A, WebM/Matroska, AVI, WAV, MP3, AAC, OGG (audio or video), FLAC, PDF.
///
/// The extension of a file name is never consulted: output URLs and
/// uploads often have none, or a wrong one.
///
/// ```
/// use reka_inference::input::sniff_media_type;
///
/// assert_eq!(sniff_media_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
/// assert_eq!(sniff_media_type(b"\0\0\0\x18ftypisom\0\0\0\0"), Some("video/mp4"));
/// assert_eq!(sniff_media_type(b"plain text"), None);
/// ```
pub fn sniff_media_type(bytes: &[u8]) -> Option<&'static str> {
    let at = |offset: usize, magic: &[u8]| {
        offset
            .checked_add(magic.len())
            .and_then(|end| bytes.get(offset..end))
            .is_some_and(|b| b == magic)
    };
    if at(0, b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if at(0, b"\xff\xd8\xff") {
        return Some("image/jpeg");
    }
    if at(0, b"GIF87a") || at(0, b"GIF89a") {
        return Some("image/gif");
    }
    if at(0, b"RIFF") {
        if at(8, b"WEBP") {
            return Some("image/webp");
        }
        if at(8, b"WAVE") {
            return Some("audio/wav");
        }
        if at(8, b"AVI ") {
            return Some("video/x-msvideo");
        }
        return None;
    }
    if at(4, b"ftyp")
        && let Some(brand) = bytes.get(8..12)
    {
        return Some(iso_media_type(brand));
    }
    if at(0, b"\x1a\x45\xdf\xa3") {
        // EBML: WebM names its doctype near the start.
        let head = &bytes[..bytes.len().min(64)];
        let webm = head.windows(4).any(|w| w == b"webm");
        return Some(if webm {
            "video/webm"
        } else {
            "video/x-matroska"
        });
    }
    if at(0, b"OggS") {
        let head = &bytes[..bytes.len().min(64)];
        let theora = head.windows(6).any(|w| w == b"theora");
        return Some(if theora { "video/ogg" } else { "audio/ogg" });
    }
    if at(0, b"fLaC") {
        return Some("audio/flac");
    }
    if at(0, b"ID3") {
        return Some("audio/mpeg");
    }
    if let [0xff, second, ..] = bytes
        && second & 0xe0 == 0xe0
    {
        // An MPEG audio frame: layer bits 00 is AAC in ADTS, else MP3.
        return Some(if second & 0x06 == 0 {
            "audio/aac"
        } else {
            "audio/mpeg"
        });
    }
    if at(0, b"%PDF-") {
        return Some("application/pdf");
    }
    if at(0, b"II*\0") || at(0, b"MM\0*") {
        return Some("image/tiff");
    }
    if at(0, b"BM") && bytes.len() >= 14 && at(6, b"\0\0\0\0") {
        return Some("image/bmp");
    }
    None
}

/// The media type of an ISO base media file (MP4 family) by its major brand.
fn iso_media_type(brand: &[u8]) -> &'static str {
    match brand {
        b"qt  " => "video/quicktime",
        b"M4A " | b"M4B " => "audio/mp4",
        b"avif" | b"avis" => "image/avif",
        b"heic" | b"heix" | b"mif1" | b"msf1" => "image/heic",
        _ => "video/mp4",
    }
}

/// How an [`InputFile`] becomes the value of an input field: inline as a
/// `data:` URI today ([`DataUri`]); an upload that returns a URL when the
/// service documents one.
///
/// An implementation is a future-returning method, so that it can be kept
/// as `Arc<dyn InputEncoder>` and swapped without touching the code that
/// builds inputs:
///
/// ```
/// use futures::future::BoxFuture;
/// use reka_inference::input::{InputEncoder, InputFile, InputFileError};
///
/// /// Uploads to your own storage and sends the URL instead.
/// struct MyBucket;
///
/// impl InputEncoder for MyBucket {
///     fn encode<'a>(&'a self, file: &'a InputFile) -> BoxFuture<'a, Result<String, InputFileError>> {
///         Box::pin(async move {
///             // ... PUT file.bytes() somewhere ...
///             Ok(format!("https://bucket.example/{}", file.len()))
///         })
///     }
/// }
/// ```
pub trait InputEncoder: Send + Sync {
    /// The value to send for `file`.
    fn encode<'a>(&'a self, file: &'a InputFile) -> BoxFuture<'a, Result<String, InputFileError>>;
}

/// Sends a file inline, as a `data:<media type>;base64,...` URI: what the
/// service takes today in `image_url` and the like (reference, section 13
/// row 9). A file over the inline limit is refused with
/// [`InputFileError::TooLarge`], which says both sizes.
///
/// ```
/// use reka_inference::input::{DataUri, InputEncoder, InputFile, InputFileError};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let file = InputFile::from_bytes(vec![0u8; 2048]).unwrap();
/// let err = DataUri::with_limit(1024).encode(&file).await.unwrap_err();
/// assert!(matches!(err, InputFileError::TooLarge { size: Some(2048), limit: 1024, .. }));
/// assert!(err.to_string().contains("2.0 KiB (2048 bytes), over the limit of 1.0 KiB (1024 bytes)"));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataUri {
    max_bytes: u64,
}

impl Default for DataUri {
    /// Files of at most [`DEFAULT_MAX_INLINE_BYTES`].
    fn default() -> Self {
        DataUri {
            max_bytes: DEFAULT_MAX_INLINE_BYTES,
        }
    }
}

impl DataUri {
    /// Inline files of at most `max_bytes`.
    pub fn with_limit(max_bytes: u64) -> DataUri {
        DataUri { max_bytes }
    }

    /// The largest file sent inline, in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }
}

impl InputEncoder for DataUri {
    fn encode<'a>(&'a self, file: &'a InputFile) -> BoxFuture<'a, Result<String, InputFileError>> {
        let outcome = if file.len() > self.max_bytes {
            Err(InputFileError::TooLarge {
                name: file.name.clone(),
                size: Some(file.len()),
                limit: self.max_bytes,
            })
        } else {
            Ok(file.to_data_uri())
        };
        Box::pin(std::future::ready(outcome))
    }
}

#[cfg(test)]
mod tests;
