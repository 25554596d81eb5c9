use super::*;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01";

#[test]
fn every_listed_kind_is_sniffed_from_its_magic() {
    let cases: &[(&[u8], &str)] = &[
        (PNG, "image/png"),
        (b"\xff\xd8\xff\xdb\0\x43", "image/jpeg"),
        (b"\xff\xd8\xff\xe1\0\0Exif", "image/jpeg"),
        (b"GIF87a\x01\0", "image/gif"),
        (b"GIF89a\x01\0", "image/gif"),
        (b"RIFF\x24\0\0\0WEBPVP8 ", "image/webp"),
        (b"RIFF\x24\0\0\0WAVEfmt ", "audio/wav"),
        (b"RIFF\x24\0\0\0AVI LIST", "video/x-msvideo"),
        (b"\0\0\0\x20ftypisom\0\0\x02\0", "video/mp4"),
        (b"\0\0\0\x1cftypmp42\0\0\0\0", "video/mp4"),
        (b"\0\0\0\x14ftypqt  \0\0\0\0", "video/quicktime"),
        (b"\0\0\0\x20ftypM4A \0\0\0\0", "audio/mp4"),
        (b"\0\0\0\x1cftypavif\0\0\0\0", "image/avif"),
        (b"\0\0\0\x18ftypheic\0\0\0\0", "image/heic"),
        (
            b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm",
            "video/webm",
        ),
        (
            b"\x1a\x45\xdf\xa3\xa3\x42\x82\x88matroska",
            "video/x-matroska",
        ),
        (b"OggS\0\x02\0\0\0\0\0\0\0\0\x01vorbis", "audio/ogg"),
        (b"OggS\0\x02\0\0\0\0\0\0\0\0OpusHead", "audio/ogg"),
        (b"OggS\0\x02\0\0\0\0\0\0\0\0\x80theora", "video/ogg"),
        (b"fLaC\0\0\0\x22", "audio/flac"),
        (b"ID3\x04\0\0\0\0\0\0", "audio/mpeg"),
        (b"\xff\xfb\x90\x44\0\0", "audio/mpeg"),
        (b"\xff\xf3\x48\xc4", "audio/mpeg"),
        (b"\xff\xf1\x50\x80", "audio/aac"),
        (b"%PDF-1.7\n", "application/pdf"),
        (b"II*\0\x08\0\0\0", "image/tiff"),
        (b"MM\0*\0\0\0\x08", "image/tiff"),
        (b"BM\x46\0\0\0\0\0\0\0\x36\0\0\0", "image/bmp"),
    ];
    for (bytes, expected) in cases {
        assert_eq!(sniff_media_type(bytes), Some(*expected), "{bytes:?}");
    }
}

#[test]
fn unknown_and_truncated_bytes_are_not_guessed() {
    for bytes in [
        &b""[..],
        b"\x89PN",
        b"\xff",
        b"\xff\xd8",
        b"RIFF",
        b"RIFF\0\0\0\0ABCD",
        b"\0\0\0\x18ftyp",
        b"hello, world",
        b"{\"json\": true}",
        b"BMxx",
    ] {
        assert_eq!(sniff_media_type(bytes), None, "{bytes:?}");
    }
    let file = InputFile::from_bytes(&b"hello"[..]).unwrap();
    assert_eq!(file.media_type(), UNKNOWN_MEDIA_TYPE);
}

#[test]
fn the_extension_is_never_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("photo.jpg");
    std::fs::write(&path, PNG).unwrap();
    let file = tokio_test_block_on(InputFile::from_path(&path)).unwrap();
    assert_eq!(file.media_type(), "image/png");
    assert_eq!(file.name(), Some("photo.jpg"));
    assert_eq!(file.bytes().as_ref(), PNG);
}

#[test]
fn a_given_media_type_wins_and_is_checked() {
    let file = InputFile::from_bytes(PNG).unwrap();
    let file = file.with_media_type(" Image/X-Custom+PNG ").unwrap();
    assert_eq!(file.media_type(), "image/x-custom+png");
    assert!(
        file.to_data_uri()
            .starts_with("data:image/x-custom+png;base64,")
    );
    for bad in [
        "",
        "image",
        "image/",
        "/png",
        "image/png;charset=x",
        "image/png,evil",
        "a b/c",
    ] {
        let err = InputFile::from_bytes(PNG)
            .unwrap()
            .with_media_type(bad)
            .unwrap_err();
        assert!(matches!(err, InputFileError::InvalidMediaType(_)), "{bad}");
    }
}

#[test]
fn a_data_uri_round_trips_the_bytes() {
    let file = InputFile::from_bytes(PNG).unwrap();
    let uri = file.to_data_uri();
    let b64 = uri.strip_prefix("data:image/png;base64,").unwrap();
    let back = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(back, PNG);
}

#[test]
fn bytes_over_the_limit_are_refused_with_both_sizes() {
    let err = InputFile::from_bytes_with_limit(vec![7u8; 3 << 20], 2 << 20).unwrap_err();
    match &err {
        InputFileError::TooLarge { size, limit, .. } => {
            assert_eq!((*size, *limit), (Some(3 << 20), 2 << 20));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "the file is 3.0 MiB (3145728 bytes), over the limit of 2.0 MiB (2097152 bytes)"
    );
    assert!(InputFile::from_bytes_with_limit(vec![7u8; 10], 10).is_ok());
}

#[test]
fn a_file_over_the_limit_is_refused_from_its_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    // Sparse: the size is in the metadata, the bytes are never read.
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(DEFAULT_MAX_INLINE_BYTES + 1).unwrap();
    let err = tokio_test_block_on(InputFile::from_path(&path)).unwrap_err();
    match &err {
        InputFileError::TooLarge { name, size, limit } => {
            assert_eq!(name.as_deref(), Some("big.bin"));
            assert_eq!(*size, Some(DEFAULT_MAX_INLINE_BYTES + 1));
            assert_eq!(*limit, DEFAULT_MAX_INLINE_BYTES);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("big.bin is 20.0 MiB (20971521 bytes)")
    );
    // At the limit exactly it is read.
    let ok = dir.path().join("ok.bin");
    std::fs::write(&ok, [1u8; 100]).unwrap();
    let file = tokio_test_block_on(InputFile::from_path_with_limit(&ok, 100)).unwrap();
    assert_eq!(file.len(), 100);
}

#[test]
fn directories_missing_files_and_devices_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = tokio_test_block_on(InputFile::from_path(dir.path())).unwrap_err();
    assert!(
        matches!(
            err,
            InputFileError::NotAFile {
                kind: "a directory",
                ..
            }
        ),
        "{err:?}"
    );
    let missing = dir.path().join("nope.png");
    let err = tokio_test_block_on(InputFile::from_path(&missing)).unwrap_err();
    match &err {
        InputFileError::Io { path, source } => {
            assert_eq!(path.as_deref(), Some(missing.as_path()));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("nope.png"));
    #[cfg(unix)]
    {
        let err = tokio_test_block_on(InputFile::from_path("/dev/zero")).unwrap_err();
        assert!(
            matches!(
                err,
                InputFileError::NotAFile {
                    kind: "a character device",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // No writer ever opens it: an open would block forever.
    let err = tokio_test_block_on(InputFile::from_path(&fifo)).unwrap_err();
    assert!(
        matches!(err, InputFileError::NotAFile { kind: "a FIFO", .. }),
        "{err:?}"
    );
}

#[cfg(unix)]
#[test]
fn a_symlink_to_a_file_is_read_and_to_a_directory_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("real.png");
    std::fs::write(&target, PNG).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let file = tokio_test_block_on(InputFile::from_path(&link)).unwrap();
    assert_eq!(file.media_type(), "image/png");
    let dlink = dir.path().join("dlink");
    std::os::unix::fs::symlink(dir.path(), &dlink).unwrap();
    assert!(matches!(
        tokio_test_block_on(InputFile::from_path(&dlink)),
        Err(InputFileError::NotAFile { .. })
    ));
}

#[test]
fn a_reader_is_read_up_to_its_cap_only() {
    let err = tokio_test_block_on(InputFile::from_reader(tokio::io::repeat(1), 4096)).unwrap_err();
    match &err {
        InputFileError::TooLarge { size, limit, .. } => {
            assert_eq!((*size, *limit), (None, 4096));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("larger than that"));
    let file = tokio_test_block_on(InputFile::from_reader(PNG, PNG.len() as u64)).unwrap();
    assert_eq!(file.bytes().as_ref(), PNG);
    assert_eq!(file.media_type(), "image/png");
}

#[test]
fn data_uri_encoder_applies_its_limit() {
    let file = InputFile::from_bytes(PNG).unwrap().with_name("dot.png");
    let uri = tokio_test_block_on(file.encode(&DataUri::default())).unwrap();
    assert_eq!(uri, file.to_data_uri());
    let small = DataUri::with_limit(4);
    assert_eq!(small.max_bytes(), 4);
    let err = tokio_test_block_on(file.encode(&small)).unwrap_err();
    assert!(err.to_string().starts_with("dot.png is"), "{err}");
}

#[test]
fn errors_become_the_crate_error() {
    let e: crate::Error = InputFileError::InvalidMediaType("x".into()).into();
    assert!(matches!(e, crate::Error::InvalidInput(_)));
    let e: crate::Error = InputFileError::Io {
        path: None,
        source: std::io::Error::other("boom"),
    }
    .into();
    assert!(matches!(e, crate::Error::Io(_)));
}

#[test]
fn debug_does_not_dump_the_bytes() {
    let file = InputFile::from_bytes(vec![b'x'; 1000]).unwrap();
    let shown = format!("{file:?}");
    assert!(shown.contains("len: 1000"));
    assert!(!shown.contains("xxxx"));
}

/// A small runtime per test: the crate's dev-dependencies have tokio's
/// runtime, and these tests need no shared one.
fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
