//! The SDK's source stays a house a newcomer can find their way in (see
//! ARCHITECTURE.md): a file holds one idea, and one that grows past a few
//! screens is split into child modules, with unit tests in a `tests.rs`
//! beside the module they test; and the modules form floors, each
//! importing only from those below it, so no two import each other.

use std::collections::{BTreeMap, BTreeSet};
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

/// The top-level modules each top-level module of the SDK names through
/// `crate::` (in code, not in comments; unit tests left out).
fn imports_between_modules(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| top_module(src, f)).collect();
    let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(from) = top_module(src, file) else {
            continue;
        };
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            for (at, _) in code.match_indices("crate::") {
                let name: String = code[at + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if name != from && modules.contains(&name) {
                    imports.entry(from.clone()).or_default().insert(name);
                }
            }
        }
    }
    imports
}

/// `src/batch/run.rs` -> `batch`; `src/error.rs` -> `error`; `lib.rs`, the
/// table of contents that names every module, is none.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let first = file.strip_prefix(src).ok()?.components().next()?;
    let name = first.as_os_str().to_str()?.trim_end_matches(".rs");
    (name != "lib").then(|| name.to_owned())
}

/// A circle of imports reached from the last module of `path`, if there is
/// one; `clear` holds the modules already known to reach none.
fn circle_from(
    imports: &BTreeMap<String, BTreeSet<String>>,
    path: &mut Vec<String>,
    clear: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    let last = path.last()?.clone();
    for next in imports.get(&last).into_iter().flatten() {
        if let Some(start) = path.iter().position(|m| m == next) {
            let mut circle = path[start..].to_vec();
            circle.push(next.clone());
            return Some(circle);
        }
        if clear.contains(next) {
            continue;
        }
        path.push(next.clone());
        if let Some(circle) = circle_from(imports, path, clear) {
            return Some(circle);
        }
        path.pop();
    }
    clear.insert(last);
    None
}

#[test]
fn no_two_modules_of_the_sdk_import_each_other_even_through_others() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let imports = imports_between_modules(&src);
    // The floors of ARCHITECTURE.md, as the code has them.
    assert!(imports["job"].contains("tracker"), "{imports:?}");
    assert!(imports["batch"].contains("job_set"), "{imports:?}");
    let mut clear = BTreeSet::new();
    for module in imports.keys() {
        let circle = circle_from(&imports, &mut vec![module.clone()], &mut clear);
        assert_eq!(circle, None, "an import circle: {circle:?}");
    }
}

#[test]
fn a_circle_of_imports_is_found() {
    let imports: BTreeMap<String, BTreeSet<String>> = [
        ("a", &["b"][..]),
        ("b", &["c"][..]),
        ("c", &["a", "d"][..]),
        ("d", &[][..]),
    ]
    .into_iter()
    .map(|(m, to)| (m.to_owned(), to.iter().map(|t| t.to_string()).collect()))
    .collect();
    assert_eq!(
        circle_from(&imports, &mut vec!["b".to_owned()], &mut BTreeSet::new()),
        Some(["b", "c", "a", "b"].map(String::from).to_vec())
    );
    assert_eq!(
        circle_from(&imports, &mut vec!["d".to_owned()], &mut BTreeSet::new()),
        None
    );
}
