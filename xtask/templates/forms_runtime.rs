// The body of the `forms` module that `cargo xtask generate` adds to a
// generated client whose document has form operations. It is parsed and
// emitted as tokens, so `//` comments like this one do not reach the
// generated file; doc comments do.

//! File parts and form encoding for the operations whose request body is a
//! form: `multipart/form-data`, or `application/x-www-form-urlencoded`
//! without a JSON alternative. progenitor generates neither; the xtask adds
//! their builders beside progenitor's, and they are sent through the same
//! `ClientHooks` (`pre`, `exec`, `post`) as every other operation.
//!
//! The fields of a form are typed from its schema: a builder's `body` (or
//! `body_map`) sets the text fields, as for a JSON body, and each binary
//! field (`format: binary`) has a setter of its own taking a [`FilePart`].
//! On the wire, following the document's `encoding` object: strings,
//! numbers, booleans and enum values are text parts; an array is one part
//! per item (or one JSON part, or one delimited part, where the encoding
//! says so); an object is a JSON part (`application/json`); a null or
//! absent value sends no part.
//!
//! # Retries
//!
//! A form whose parts are all in memory (text fields and [`FilePart::bytes`])
//! is sent as one buffer, so a transport may clone the request and send it
//! again. A part read from a file ([`FilePart::path`]) or a stream
//! ([`FilePart::stream`]) is read once, as the request goes out: such a
//! request cannot be cloned, and gets one attempt.

use std::fmt;
use std::path::{Path, PathBuf};

/// One file of a `multipart/form-data` request: bytes in memory, a file read
/// from disk as the request is sent, or a stream of bytes; with a file name
/// and a media type.
///
/// Unless set, the file name is the path's file name (for
/// [`FilePart::path`]) or else the form field's name; the media type is the
/// one the document's `encoding` gives the part, else (for a path) the one
/// its extension suggests, else `application/octet-stream`.
///
/// ```ignore
/// let part = FilePart::bytes(std::fs::read("cat.png")?)
///     .file_name("cat.png")
///     .media_type("image/png");
/// ```
pub struct FilePart {
    source: Source,
    file_name: Option<String>,
    media_type: Option<String>,
}

enum Source {
    Bytes(bytes::Bytes),
    Path(PathBuf),
    Stream(reqwest::Body),
}

impl FilePart {
    /// A part holding `data`. A request whose file parts are all bytes can
    /// be sent again (retried).
    pub fn bytes(data: impl Into<bytes::Bytes>) -> Self {
        FilePart {
            source: Source::Bytes(data.into()),
            file_name: None,
            media_type: None,
        }
    }

    /// A part read from the file at `path`, asynchronously, as the request
    /// is sent (not loaded into memory first). A file that cannot be opened
    /// fails the call with `Error::InvalidRequest` naming it. The request
    /// gets one attempt.
    pub fn path(path: impl Into<PathBuf>) -> Self {
        FilePart {
            source: Source::Path(path.into()),
            file_name: None,
            media_type: None,
        }
    }

    /// A part read from `body` (for instance `reqwest::Body::wrap_stream`
    /// of a stream of chunks) as the request is sent. The request gets one
    /// attempt.
    pub fn stream(body: impl Into<reqwest::Body>) -> Self {
        FilePart {
            source: Source::Stream(body.into()),
            file_name: None,
            media_type: None,
        }
    }

    /// Sets the file name the server sees.
    pub fn file_name(mut self, file_name: impl Into<String>) -> Self {
        self.file_name = Some(file_name.into());
        self
    }

    /// Sets the part's media type (`Content-Type`), e.g. `image/png`.
    pub fn media_type(mut self, media_type: impl Into<String>) -> Self {
        self.media_type = Some(media_type.into());
        self
    }

    /// Whether the part is held in memory, so that a request carrying it
    /// can be sent again.
    pub fn is_replayable(&self) -> bool {
        matches!(self.source, Source::Bytes(_))
    }
}

impl From<Vec<u8>> for FilePart {
    fn from(data: Vec<u8>) -> Self {
        FilePart::bytes(data)
    }
}

impl From<bytes::Bytes> for FilePart {
    fn from(data: bytes::Bytes) -> Self {
        FilePart::bytes(data)
    }
}

impl From<&'static [u8]> for FilePart {
    fn from(data: &'static [u8]) -> Self {
        FilePart::bytes(data)
    }
}

impl From<PathBuf> for FilePart {
    fn from(path: PathBuf) -> Self {
        FilePart::path(path)
    }
}

impl From<&Path> for FilePart {
    fn from(path: &Path) -> Self {
        FilePart::path(path)
    }
}

impl fmt::Debug for FilePart {
    // The bytes themselves are left out: they may be large, or private.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("FilePart");
        match &self.source {
            Source::Bytes(b) => s.field("bytes", &b.len()),
            Source::Path(p) => s.field("path", p),
            Source::Stream(_) => s.field("stream", &".."),
        };
        s.field("file_name", &self.file_name)
            .field("media_type", &self.media_type)
            .finish()
    }
}

/// How a field of a form is written, from the document's `encoding` object.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct FieldEncoding {
    /// The field's name on the wire.
    pub name: &'static str,
    /// An array is sent as one JSON part, not one part per item.
    pub json: bool,
    /// An array is sent as one part, its items joined with this
    /// (`explode: false`).
    pub delimiter: Option<&'static str>,
    /// The part's media type.
    pub content_type: Option<&'static str>,
}

/// Puts a form's fields and files together.
#[doc(hidden)]
pub struct FormBuilder {
    multipart: bool,
    form: reqwest::multipart::Form,
    pairs: Vec<(String, String)>,
    replayable: bool,
}

/// A finished form, ready to be attached to a request.
#[doc(hidden)]
pub enum FormBody {
    /// Every part is in memory: one buffer, which a request can be cloned with.
    Buffered {
        /// `multipart/form-data; boundary=..`.
        content_type: String,
        /// The encoded body.
        bytes: Vec<u8>,
    },
    /// A part is read as the request is sent.
    Streaming(reqwest::multipart::Form),
    /// `application/x-www-form-urlencoded` pairs.
    UrlEncoded(Vec<(String, String)>),
}

impl FormBuilder {
    /// A `multipart/form-data` body.
    pub fn multipart() -> Self {
        FormBuilder {
            multipart: true,
            form: reqwest::multipart::Form::new(),
            pairs: Vec::new(),
            replayable: true,
        }
    }

    /// An `application/x-www-form-urlencoded` body.
    pub fn urlencoded() -> Self {
        FormBuilder {
            multipart: false,
            ..FormBuilder::multipart()
        }
    }

    /// Adds every field of `body`, a value of the form schema's type: its
    /// serialised properties, by their wire names.
    pub fn fields<T: serde::Serialize>(
        mut self,
        body: &T,
        encodings: &[FieldEncoding],
    ) -> Result<Self, String> {
        let value = serde_json::to_value(body)
            .map_err(|e| format!("the form's fields cannot be encoded: {e}"))?;
        let fields = match value {
            serde_json::Value::Object(fields) => fields,
            serde_json::Value::Null => return Ok(self),
            other => {
                return Err(format!(
                    "the form's fields must be an object, not {}",
                    json_kind(&other)
                ));
            }
        };
        for (name, value) in &fields {
            let encoding = encodings.iter().find(|e| e.name == name.as_str());
            self = self.field(name, value, encoding)?;
        }
        Ok(self)
    }

    fn field(
        self,
        name: &str,
        value: &serde_json::Value,
        encoding: Option<&FieldEncoding>,
    ) -> Result<Self, String> {
        use serde_json::Value;
        let content_type = encoding.and_then(|e| e.content_type);
        let as_json = encoding.is_some_and(|e| e.json);
        match value {
            Value::Null => Ok(self),
            Value::Array(items) if !as_json => {
                if let Some(delimiter) = encoding.and_then(|e| e.delimiter) {
                    let texts: Vec<String> = items
                        .iter()
                        .filter(|item| !item.is_null())
                        .map(text_of)
                        .collect::<Result<_, _>>()?;
                    return self.text(name, texts.join(delimiter), content_type);
                }
                let mut form = self;
                for item in items {
                    form = match item {
                        Value::Null => form,
                        Value::Array(_) | Value::Object(_) => form.json(name, item, content_type)?,
                        scalar => form.text(name, text_of(scalar)?, content_type)?,
                    };
                }
                Ok(form)
            }
            Value::Array(_) | Value::Object(_) => self.json(name, value, content_type),
            scalar => {
                let text = text_of(scalar)?;
                self.text(name, text, content_type)
            }
        }
    }

    fn text(mut self, name: &str, text: String, content_type: Option<&str>) -> Result<Self, String> {
        if !self.multipart {
            self.pairs.push((name.to_owned(), text));
            return Ok(self);
        }
        let mut part = reqwest::multipart::Part::text(text);
        if let Some(media_type) = content_type {
            part = part
                .mime_str(media_type)
                .map_err(|e| format!("the media type `{media_type}` of `{name}`: {e}"))?;
        }
        self.form = self.form.part(name.to_owned(), part);
        Ok(self)
    }

    fn json(
        self,
        name: &str,
        value: &serde_json::Value,
        content_type: Option<&str>,
    ) -> Result<Self, String> {
        let text = serde_json::to_string(value)
            .map_err(|e| format!("`{name}` cannot be encoded as JSON: {e}"))?;
        self.text(name, text, Some(content_type.unwrap_or("application/json")))
    }

    /// Adds the file part `name`.
    pub async fn file(
        mut self,
        name: &'static str,
        file: FilePart,
        default_media_type: Option<&'static str>,
    ) -> Result<Self, String> {
        if !self.multipart {
            return Err(format!(
                "`{name}` is a file, which an application/x-www-form-urlencoded body cannot carry"
            ));
        }
        let FilePart {
            source,
            file_name,
            media_type,
        } = file;
        let (part, from_path) = match source {
            Source::Bytes(bytes) => {
                let length = bytes.len() as u64;
                let part = reqwest::multipart::Part::stream_with_length(
                    reqwest::Body::from(bytes),
                    length,
                );
                (part, false)
            }
            Source::Path(path) => {
                self.replayable = false;
                let part = reqwest::multipart::Part::file(&path)
                    .await
                    .map_err(|e| format!("reading `{}` for `{name}`: {e}", path.display()))?;
                (part, true)
            }
            Source::Stream(body) => {
                self.replayable = false;
                (reqwest::multipart::Part::stream(body), false)
            }
        };
        // A path's part already has its file name and a media type guessed
        // from its extension.
        let mut part = match file_name {
            Some(file_name) => part.file_name(file_name),
            None if from_path => part,
            None => part.file_name(name),
        };
        let media_type = match (media_type.as_deref(), default_media_type, from_path) {
            (Some(given), _, _) => Some(given),
            (None, Some(documented), _) => Some(documented),
            (None, None, true) => None,
            (None, None, false) => Some("application/octet-stream"),
        };
        if let Some(media_type) = media_type {
            part = part
                .mime_str(media_type)
                .map_err(|e| format!("the media type `{media_type}` of `{name}`: {e}"))?;
        }
        self.form = self.form.part(name, part);
        Ok(self)
    }

    /// Adds the file part `name` when there is one.
    pub async fn optional_file(
        self,
        name: &'static str,
        file: Option<FilePart>,
        default_media_type: Option<&'static str>,
    ) -> Result<Self, String> {
        match file {
            Some(file) => self.file(name, file, default_media_type).await,
            None => Ok(self),
        }
    }

    /// Adds one part named `name` per file; `required` refuses none.
    pub async fn files(
        mut self,
        name: &'static str,
        files: Vec<FilePart>,
        required: bool,
        default_media_type: Option<&'static str>,
    ) -> Result<Self, String> {
        if required && files.is_empty() {
            return Err(format!("`{name}` needs at least one file"));
        }
        for file in files {
            self = self.file(name, file, default_media_type).await?;
        }
        Ok(self)
    }

    /// Finishes the body. A multipart form whose parts are all in memory is
    /// encoded into one buffer here, so that the request can be cloned (and
    /// retried); one with a part read from a file or a stream stays a
    /// stream.
    pub async fn finish(self) -> Result<FormBody, String> {
        use futures::TryStreamExt;
        if !self.multipart {
            return Ok(FormBody::UrlEncoded(self.pairs));
        }
        if !self.replayable {
            return Ok(FormBody::Streaming(self.form));
        }
        let content_type = format!("multipart/form-data; boundary={}", self.form.boundary());
        let mut stream = Box::pin(self.form.into_stream());
        let mut bytes = Vec::new();
        while let Some(chunk) = stream
            .try_next()
            .await
            .map_err(|e| format!("encoding the form: {e}"))?
        {
            bytes.extend_from_slice(&chunk);
        }
        Ok(FormBody::Buffered {
            content_type,
            bytes,
        })
    }
}

impl FormBody {
    /// Sets the request's body and `Content-Type`.
    pub fn attach(self, request: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, String> {
        match self {
            FormBody::Buffered {
                content_type,
                bytes,
            } => Ok(request
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes)),
            FormBody::Streaming(form) => Ok(request.multipart(form)),
            FormBody::UrlEncoded(pairs) => {
                progenitor_client::RequestBuilderExt::<()>::form_urlencoded(request, &pairs)
                    .map_err(|e| format!("encoding the form: {e}"))
            }
        }
    }
}

/// The text of a scalar: a string as it is, a number or a boolean as JSON
/// writes it.
fn text_of(value: &serde_json::Value) -> Result<String, String> {
    match value {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!(
            "{} cannot be written as one text value",
            json_kind(other)
        )),
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
