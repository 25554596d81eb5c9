//! The vendored document and the checked-in client generated from it: the
//! normalised document and the client's public shape are pinned by
//! snapshots, and `generated.rs` must be what the xtask makes today.

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::Value;
use xtask::{GENERATED_PATH, SPEC_PATH, generate, load_spec, normalize, shape, workspace_root};

fn spec() -> Value {
    load_spec(&workspace_root().join(SPEC_PATH)).expect("the vendored spec loads")
}

fn checked_in() -> String {
    std::fs::read_to_string(workspace_root().join(GENERATED_PATH))
        .expect("generated.rs is readable")
}

#[test]
fn normalised_spec() {
    let (normalized, report) = normalize::normalize(&spec()).expect("the vendored spec normalises");
    insta::assert_snapshot!("normalisation_report", report.to_string());
    insta::assert_json_snapshot!("normalised_spec", normalized);
}

#[test]
fn generated_shape() {
    let shape = shape::shape(&checked_in()).expect("generated.rs parses");
    insta::assert_snapshot!("generated_shape", shape);
}

/// A formatter that lays the same code out otherwise (a rustfmt release)
/// does not make the check fail; a change of code does.
#[test]
fn the_freshness_check_ignores_layout_but_not_code() {
    let code = "pub fn f(a: u32) -> u32 {\n    a + 1\n}\n";
    let relaid = "pub fn f(a: u32) -> u32 { a + 1 }\n";
    let changed = "pub fn f(a: u32) -> u32 {\n    a + 2\n}\n";
    assert!(generate::same_code(code, relaid));
    assert!(!generate::same_code(code, changed));
    assert!(!generate::same_code(code, "not rust {"));
}

#[test]
fn generated_rs_is_up_to_date() {
    let spec = spec();
    let generated = catch_unwind(AssertUnwindSafe(|| generate::generate(&spec)))
        .expect("generation never panics on the vendored spec")
        .expect("the vendored spec generates");
    let current = checked_in();
    if !generate::same_code(&current, &generated.code) {
        let diff = similar::TextDiff::from_lines(&current, &generated.code);
        let text = diff
            .unified_diff()
            .context_radius(2)
            .header(GENERATED_PATH, "regenerated")
            .to_string();
        let short: Vec<&str> = text.lines().take(80).collect();
        panic!(
            "{GENERATED_PATH} is stale: run `cargo xtask generate`\n{}{}",
            short.join("\n"),
            if text.lines().count() > 80 {
                "\n..."
            } else {
                ""
            }
        );
    }
}

/// The snake_case method name progenitor gives a parameter or operation.
fn snake(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The builder type name progenitor gives an operation.
fn pascal(op_id: &str) -> String {
    op_id
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            cs.next()
                .map(|c| c.to_ascii_uppercase().to_string() + cs.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The lines of the `impl<'a> Name<'a>` block of the top-level builder.
fn builder_impl<'s>(shape: &'s str, name: &str) -> Vec<&'s str> {
    let head = format!("    impl<'a> {name}<'a> {{");
    shape
        .lines()
        .skip_while(|l| *l != head)
        .skip(1)
        .take_while(|l| *l != "    }")
        .collect()
}

#[test]
fn every_operation_has_its_documented_parameters() {
    let spec = spec();
    let shape = shape::shape(&checked_in()).expect("generated.rs parses");
    let mut operations = 0;
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let id = op["operationId"].as_str().expect("operationId");
            operations += 1;
            let pascal = pascal(id);
            assert!(
                shape.contains(&format!("pub fn {id}(&self) -> builder::{pascal}<'_>;")),
                "{method} {path}: no Client::{id}"
            );
            let setters = builder_impl(&shape, &pascal);
            let has = |name: &str| {
                setters
                    .iter()
                    .any(|l| l.trim_start().starts_with(&format!("pub fn {name}<")))
            };
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = snake(p["name"].as_str().expect("parameter name"));
                assert!(has(&name), "{id}: no setter for parameter {name}");
            }
            if op.get("requestBody").is_some() {
                assert!(has("body"), "{id}: no body setter");
            }
            assert!(
                setters
                    .iter()
                    .any(|l| l.contains("pub async fn send(self) -> Result<ResponseValue<")),
                "{id}: no send()"
            );
        }
    }
    assert_eq!(operations, 17);
}
