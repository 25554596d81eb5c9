//! The generated code is written by one progenitor and run by one
//! progenitor-client: they must be of the same release line. The
//! workspace requires `progenitor = "=X.Y.Z"` (the generator the xtask
//! runs) and `progenitor-client = "~X.Y.Z"` (the runtime a user's build may
//! update within X.Y); this test fails as soon as the two, or the versions
//! Cargo.lock resolved, part.

fn workspace_file(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The version requirement of `name` in the workspace dependency table.
fn required(manifest: &str, name: &str) -> String {
    let line = manifest
        .lines()
        .find(|l| l.starts_with(&format!("{name} =")))
        .unwrap_or_else(|| panic!("{name} is not in the workspace table"));
    let quoted = line
        .split('"')
        .nth(1)
        .unwrap_or_else(|| panic!("no version: {line}"));
    quoted.to_owned()
}

/// The version Cargo.lock resolved for `name`.
fn locked(lock: &str, name: &str) -> String {
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l == format!("name = \"{name}\"") {
            let v = lines.next().unwrap_or_default();
            return v.split('"').nth(1).unwrap_or_default().to_owned();
        }
    }
    panic!("{name} is not in Cargo.lock")
}

fn release_line(version: &str) -> String {
    let digits = version.trim_start_matches(['=', '~', '^']);
    digits.split('.').take(2).collect::<Vec<_>>().join(".")
}

#[test]
fn generator_and_runtime_agree() {
    let manifest = workspace_file("Cargo.toml");
    let generator = required(&manifest, "progenitor");
    let runtime = required(&manifest, "progenitor-client");
    assert!(
        generator.starts_with('='),
        "the generator is pinned exactly: {generator}"
    );
    assert!(
        runtime.starts_with('~'),
        "the runtime stays on the generator's line: {runtime}"
    );
    assert_eq!(
        generator.trim_start_matches('='),
        runtime.trim_start_matches('~'),
        "the runtime requirement starts at the generator's version"
    );
    let lock = workspace_file("Cargo.lock");
    assert_eq!(
        release_line(&locked(&lock, "progenitor")),
        release_line(&locked(&lock, "progenitor-client")),
        "Cargo.lock resolved a runtime of another release line than the generator"
    );
}
