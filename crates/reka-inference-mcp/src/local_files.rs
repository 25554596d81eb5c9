//! Local files named in a job's input (`"image_url": "file:///…"` or a
//! plain path), read only under the directories allowed with `--allow-dir`
//! and sent as [`InputFile`]s through the configured encoder.
//!
//! A string is taken for a local file when it is a `file:` URI (in any
//! field), or when it has no URI scheme and its field is one that names a
//! file (`image_url`, `mask_url`, `audio_uri`, `image`, `file`, `*_path`,
//! ...): a prompt that happens to start with `/` is left alone. Paths are
//! canonicalised (symbolic links resolved) before the check, so a link
//! inside an allowed directory that leads outside it is refused; relative
//! paths are looked up in each allowed directory in turn.

use std::path::{Component, Path, PathBuf};

use reka_inference::input::{InputEncoder, InputFile, InputFileError};
use serde_json::{Map, Value};

use crate::options::OptionsError;

/// How deep the input is searched for file references.
const MAX_DEPTH: usize = 32;

/// Files one input may name, at most.
const MAX_FILES: usize = 16;

/// The directories local files may come from, canonicalised.
#[derive(Debug, Clone, Default)]
pub(crate) struct AllowedDirs {
    dirs: Vec<PathBuf>,
}

/// A local file that went into an input.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct SentFile {
    /// The input field (a JSON pointer into `input`).
    pub field: String,
    /// The file read.
    pub path: String,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub bytes: u64,
}

impl AllowedDirs {
    /// Checks and canonicalises the directories.
    pub(crate) fn new(dirs: &[PathBuf]) -> Result<AllowedDirs, OptionsError> {
        let mut out = Vec::new();
        for dir in dirs {
            let canonical = std::fs::canonicalize(dir).map_err(|e| OptionsError::AllowDir {
                path: dir.clone(),
                why: e.to_string(),
            })?;
            if !canonical.is_dir() {
                return Err(OptionsError::AllowDir {
                    path: dir.clone(),
                    why: "not a directory".into(),
                });
            }
            out.push(canonical);
        }
        Ok(AllowedDirs { dirs: out })
    }

    /// The allowed directories.
    pub(crate) fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    fn listed(&self) -> String {
        self.dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The file `reference` names, canonical and inside an allowed
    /// directory; or why not.
    pub(crate) async fn resolve(&self, field: &str, reference: &str) -> Result<PathBuf, String> {
        let path = local_path(reference).map_err(|why| format!("{field}: {why}"))?;
        if self.dirs.is_empty() {
            return Err(format!(
                "{field}: {reference:?} is a local file, and this server reads no local files: \
                 it was started without --allow-dir. Pass an https URL instead, or ask the user \
                 to restart the server with --allow-dir <directory>."
            ));
        }
        let candidates: Vec<PathBuf> = if path.is_absolute() {
            vec![path.clone()]
        } else {
            self.dirs.iter().map(|d| d.join(&path)).collect()
        };
        let mut canonical = None;
        let mut last_error = None;
        for candidate in &candidates {
            match tokio::fs::canonicalize(candidate).await {
                Ok(c) => {
                    canonical = Some((candidate.clone(), c));
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        let Some((given, canonical)) = canonical else {
            let why = last_error.map(|e| e.to_string()).unwrap_or_default();
            return Err(format!(
                "{field}: cannot read {}: {why}",
                candidates
                    .first()
                    .map_or_else(|| reference.to_owned(), |c| c.display().to_string())
            ));
        };
        if self.dirs.iter().any(|d| canonical.starts_with(d)) {
            return Ok(canonical);
        }
        let lexically_inside = self.dirs.iter().any(|d| normalise(&given).starts_with(d));
        if lexically_inside {
            Err(format!(
                "{field}: {} is a symbolic link (or goes through one) that leads to {}, outside \
                 the allowed directories ({}): refused.",
                given.display(),
                canonical.display(),
                self.listed()
            ))
        } else {
            Err(format!(
                "{field}: {} is outside the allowed directories ({}): refused. Only files under \
                 the directories the server was started with (--allow-dir) are sent.",
                given.display(),
                self.listed()
            ))
        }
    }
}

/// `path` with `.` and `..` removed, without touching the file system.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The path a `file:` URI or a plain path names (`~/` is the home directory).
fn local_path(reference: &str) -> Result<PathBuf, String> {
    if has_scheme(reference, "file") {
        let url = url::Url::parse(reference)
            .map_err(|e| format!("{reference:?} is not a valid file: URI ({e})"))?;
        match url.host_str() {
            None | Some("") | Some("localhost") => {}
            Some(host) => {
                return Err(format!(
                    "{reference:?} names a file on another host ({host}); only local files are read"
                ));
            }
        }
        return url
            .to_file_path()
            .map_err(|()| format!("{reference:?} is not a file path"));
    }
    if let Some(rest) = reference.strip_prefix("~/") {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("{reference:?}: the home directory is not known (HOME)"))?;
        return Ok(PathBuf::from(home).join(rest));
    }
    Ok(PathBuf::from(reference))
}

/// Whether `text` starts with `<scheme>:` (any case).
fn has_scheme(text: &str, scheme: &str) -> bool {
    text.len() > scheme.len()
        && text.is_char_boundary(scheme.len())
        && text[..scheme.len()].eq_ignore_ascii_case(scheme)
        && text[scheme.len()..].starts_with(':')
}

/// Whether `text` starts with a URI scheme (`https:`, `data:`, `s3:`):
/// a one-letter "scheme" is a Windows drive, not a scheme.
fn starts_with_scheme(text: &str) -> bool {
    let Some(colon) = text.find(':') else {
        return false;
    };
    let scheme = &text[..colon];
    scheme.len() >= 2
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Whether a field of this name holds a file (a URL or a path).
fn names_a_file(field: &str) -> bool {
    let f = field.to_ascii_lowercase();
    f.ends_with("url")
        || f.ends_with("uri")
        || f.ends_with("_path")
        || f.ends_with("_file")
        || matches!(
            f.as_str(),
            "image" | "images" | "audio" | "video" | "file" | "files" | "mask" | "path"
        )
}

/// Whether the string `value` of field `field` names a local file.
pub(crate) fn is_local_reference(field: &str, value: &str) -> bool {
    let value = value.trim();
    if value.is_empty() {
        return false;
    }
    has_scheme(value, "file") || (names_a_file(field) && !starts_with_scheme(value))
}

/// Replaces every local file reference in `input` by the value `encoder`
/// makes of the file; returns what was sent. Nothing is changed on error.
pub(crate) async fn resolve_input_files(
    input: &mut Map<String, Value>,
    dirs: &AllowedDirs,
    max_file_bytes: u64,
    encoder: &dyn InputEncoder,
) -> Result<Vec<SentFile>, String> {
    let mut found = Vec::new();
    for (key, value) in input.iter() {
        collect(key, &format!("/{}", escape(key)), value, 0, &mut found)?;
    }
    if found.is_empty() {
        return Ok(Vec::new());
    }
    if found.len() > MAX_FILES {
        return Err(format!(
            "the input names {} local files; at most {MAX_FILES} are sent with one job",
            found.len()
        ));
    }
    let mut total: u64 = 0;
    let mut sent = Vec::new();
    let mut replacements = Vec::new();
    for (pointer, reference) in found {
        let path = dirs.resolve(&pointer, &reference).await?;
        let remaining = max_file_bytes.saturating_sub(total);
        let file = InputFile::from_path_with_limit(&path, remaining)
            .await
            .map_err(|e| match e {
                InputFileError::TooLarge { size, .. } if total > 0 => format!(
                    "{pointer}: {}: the local files of this input total more than the limit of \
                     {max_file_bytes} bytes{}",
                    path.display(),
                    size.map(|s| format!(" (this one is {s} bytes)"))
                        .unwrap_or_default()
                ),
                other => format!("{pointer}: {other}"),
            })?;
        total = total.saturating_add(file.len());
        let value = file
            .encode(encoder)
            .await
            .map_err(|e| format!("{pointer}: {e}"))?;
        sent.push(SentFile {
            field: pointer.clone(),
            path: path.display().to_string(),
            media_type: file.media_type().to_owned(),
            bytes: file.len(),
        });
        replacements.push((pointer, value));
    }
    let mut root = Value::Object(std::mem::take(input));
    for (pointer, value) in replacements {
        if let Some(slot) = root.pointer_mut(&pointer) {
            *slot = Value::String(value);
        }
    }
    if let Value::Object(map) = root {
        *input = map;
    }
    Ok(sent)
}

/// A JSON pointer token for `key`.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Collects `(pointer, reference)` for every local file reference under
/// `value`, whose field is `key`.
fn collect(
    key: &str,
    pointer: &str,
    value: &Value,
    depth: usize,
    found: &mut Vec<(String, String)>,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "the input is nested more than {MAX_DEPTH} levels deep"
        ));
    }
    match value {
        Value::String(s) if is_local_reference(key, s) => {
            found.push((pointer.to_owned(), s.trim().to_owned()));
        }
        // The items of an array take the array's field name.
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect(key, &format!("{pointer}/{i}"), item, depth + 1, found)?;
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                collect(k, &format!("{pointer}/{}", escape(k)), v, depth + 1, found)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reka_inference::input::DataUri;
    use serde_json::json;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";

    #[test]
    fn only_file_uris_and_paths_in_file_fields_are_references() {
        assert!(is_local_reference("image_url", "/home/me/a.png"));
        assert!(is_local_reference("image_url", "file:///home/me/a.png"));
        assert!(is_local_reference("prompt", "FILE:///x.png"));
        assert!(is_local_reference("image", "photos/a.png"));
        assert!(is_local_reference("mask_path", "~/m.png"));
        assert!(is_local_reference("image_url", r"C:\pics\a.png"));
        assert!(!is_local_reference(
            "image_url",
            "https://example.com/a.png"
        ));
        assert!(!is_local_reference(
            "image_url",
            "data:image/png;base64,AAAA"
        ));
        assert!(!is_local_reference("image_url", "s3://bucket/key"));
        assert!(!is_local_reference("image_url", "  "));
        assert!(!is_local_reference("prompt", "/imagine a cat"));
        assert!(!is_local_reference("text", "/etc/passwd"));
    }

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[tokio::test]
    async fn files_inside_are_sent_as_data_uris_and_outside_refused() {
        let allowed = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(allowed.path().join("in.png"), PNG).unwrap();
        std::fs::write(outside.path().join("out.png"), PNG).unwrap();
        let dirs = AllowedDirs::new(&[allowed.path().to_owned()]).unwrap();
        let encoder = DataUri::default();

        let inside = allowed.path().join("in.png");
        let uri = url::Url::from_file_path(&inside).unwrap().to_string();
        let mut input = object(json!({
            "prompt": "/not a path",
            "image_url": uri,
            "refs": {"images": ["in.png", "https://example.com/x.png"]}
        }));
        let sent = resolve_input_files(&mut input, &dirs, 1 << 20, &encoder)
            .await
            .unwrap();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].field, "/image_url");
        assert_eq!(sent[0].media_type, "image/png");
        assert_eq!(sent[1].field, "/refs/images/0");
        let data = input["image_url"].as_str().unwrap();
        assert!(
            data.starts_with("data:image/png;base64,iVBORw0KGgo"),
            "{data}"
        );
        assert_eq!(input["refs"]["images"][0], input["image_url"]);
        assert_eq!(input["refs"]["images"][1], "https://example.com/x.png");
        assert_eq!(input["prompt"], "/not a path");

        let out = outside.path().join("out.png");
        let mut input = object(json!({"image_url": out.display().to_string()}));
        let before = input.clone();
        let err = resolve_input_files(&mut input, &dirs, 1 << 20, &encoder)
            .await
            .unwrap_err();
        assert!(err.contains("outside the allowed directories"), "{err}");
        assert!(err.starts_with("/image_url:"), "{err}");
        assert_eq!(input, before, "nothing is changed on error");

        // `..` out of the allowed directory is outside too.
        let sneaky = allowed.path().join("..").join(
            outside
                .path()
                .strip_prefix(outside.path().parent().unwrap())
                .unwrap()
                .join("out.png"),
        );
        let mut input = object(json!({"image_url": sneaky.display().to_string()}));
        let err = resolve_input_files(&mut input, &dirs, 1 << 20, &encoder)
            .await
            .unwrap_err();
        assert!(err.contains("outside the allowed directories"), "{err}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_symlink_out_of_an_allowed_directory_is_refused() {
        let allowed = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.png"), PNG).unwrap();
        let link = allowed.path().join("link.png");
        std::os::unix::fs::symlink(outside.path().join("secret.png"), &link).unwrap();
        let dirs = AllowedDirs::new(&[allowed.path().to_owned()]).unwrap();
        let mut input = object(json!({"image_url": link.display().to_string()}));
        let err = resolve_input_files(&mut input, &dirs, 1 << 20, &DataUri::default())
            .await
            .unwrap_err();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(err.contains("refused"), "{err}");
    }

    #[tokio::test]
    async fn without_allowed_directories_no_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.png"), PNG).unwrap();
        let mut input = object(json!({"image_url": dir.path().join("a.png")}));
        let err = resolve_input_files(
            &mut input,
            &AllowedDirs::default(),
            1 << 20,
            &DataUri::default(),
        )
        .await
        .unwrap_err();
        assert!(err.contains("--allow-dir"), "{err}");
    }

    #[tokio::test]
    async fn missing_directories_and_oversized_files_are_refused_with_reasons() {
        let allowed = tempfile::tempdir().unwrap();
        let dirs = AllowedDirs::new(&[allowed.path().to_owned()]).unwrap();
        std::fs::write(allowed.path().join("big.png"), vec![0u8; 5000]).unwrap();
        std::fs::create_dir(allowed.path().join("folder")).unwrap();
        for (name, expected) in [
            ("missing.png", "cannot read"),
            ("big.png", "over the limit of"),
            ("folder", "is a directory"),
        ] {
            let mut input = object(json!({"image_url": name}));
            let err = resolve_input_files(&mut input, &dirs, 4096, &DataUri::default())
                .await
                .unwrap_err();
            assert!(err.contains(expected), "{name}: {err}");
        }
        assert!(AllowedDirs::new(&[allowed.path().join("nope")]).is_err());
        assert!(AllowedDirs::new(&[allowed.path().join("big.png")]).is_err());
    }

    #[test]
    fn file_uris_on_other_hosts_are_refused() {
        assert!(local_path("file://server/share/a.png").is_err());
        assert_eq!(
            local_path("file:///tmp/a%20b.png").unwrap(),
            PathBuf::from("/tmp/a b.png")
        );
        assert_eq!(
            local_path("file://localhost/tmp/x").unwrap(),
            PathBuf::from("/tmp/x")
        );
    }
}
