//! The SDK's source stays a house a newcomer can find their way in (see
//! ARCHITECTURE.md): a file holds one idea, and one that grows past a few
//! screens is split into child modules, with unit tests in a `tests.rs`
//! beside the module they test.

use std::path::{Path, PathBuf};

/// The most lines a source file of the SDK may hold.
const MAX_LINES: usize = 700;

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn no_source_file_of_the_sdk_holds_more_than_700_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 40,
        "the SDK's sources were not found: {files:?}"
    );
    let too_long: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let lines = std::fs::read_to_string(path).unwrap().lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", path.display()))
        })
        .collect();
    assert!(
        too_long.is_empty(),
        "split these into child modules (one idea a file): {too_long:?}"
    );
}
