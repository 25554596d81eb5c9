//! `cargo xtask diff` on two upstream-style documents: every kind of change
//! the report knows, with the breaking ones marked.

use std::path::PathBuf;

use serde_json::Value;
use xtask::diff::{Section, diff};
use xtask::{SPEC_PATH, load_spec, normalize, workspace_root};

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/diff")
        .join(name);
    load_spec(&path).expect("fixture loads")
}

#[test]
fn report_between_two_versions() {
    let report = diff(&fixture("old.json"), &fixture("new.json"));
    insta::assert_snapshot!("diff_old_new", report.to_string());
}

#[test]
fn breaking_changes_are_marked_by_direction() {
    let report = diff(&fixture("old.json"), &fixture("new.json"));
    let find = |subject: &str, text: &str| {
        report
            .changes
            .iter()
            .find(|c| c.subject.ends_with(subject) && c.text.starts_with(text))
            .unwrap_or_else(|| panic!("no change `{subject}: {text}` in\n{report}"))
    };
    // Removing an operation or a parameter breaks callers.
    assert!(find("(delete_item_items__item_id__delete)", "removed").breaking);
    assert!(find("query `q`", "removed").breaking);
    assert!(find("query `tenant`", "added (required)").breaking);
    assert!(!find("query `sort`", "added (optional)").breaking);
    assert!(find("query `limit`", "now required").breaking);
    // A response field removed breaks readers; a request field removed
    // breaks nobody.
    assert!(find("Item.legacy_code", "field removed").breaking);
    assert!(!find("ItemCreate.note", "field removed").breaking);
    // A request field newly required breaks writers; a new optional
    // response field breaks nobody.
    assert!(find("ItemCreate.sku", "field added").breaking);
    assert!(!find("Item.color", "field added").breaking);
    // Enum values: removal breaks, addition does not.
    assert!(find("Kind", "enum value \"fish\" removed").breaking);
    assert!(!find("Kind", "enum value \"bird\" added").breaking);
    assert!(find("query `state`", "enum value \"archived\" removed").breaking);
    assert_eq!(report.section_count(Section::Operations), 2);
}

#[test]
fn identical_documents_have_no_changes() {
    let spec = load_spec(&workspace_root().join(SPEC_PATH)).expect("vendored spec");
    let report = diff(&spec, &spec);
    assert!(report.is_empty(), "{report}");
    assert_eq!(
        report.to_string(),
        "OpenAPI diff: 2.0.0 -> 2.0.0\nno changes\n"
    );
}

#[test]
fn a_document_and_its_normalised_form_differ_only_by_the_normalisers_unions() {
    // The diff reads both nullable forms alike, so the 3.0.3 document
    // progenitor sees differs from the upstream 3.1 one only where the
    // normaliser made one union of an operation's several error (or
    // success) schemas (the client's error type is that union), and where
    // it dropped a media type its report names (the streaming form of
    // chat beside the JSON one), and where a status code was dropped under
    // a range of its class (`202` beside `2XX`: one arm of the generated
    // match covers both).
    let spec = load_spec(&workspace_root().join(SPEC_PATH)).expect("vendored spec");
    let (normalized, report) = normalize::normalize(&spec).expect("normalises");
    // "METHOD /path (op) response 200" -> "METHOD /path (op) 200 response: media types"
    let dropped_media: Vec<String> = report
        .warnings()
        .iter()
        .filter_map(|w| {
            let (op, code) = w.place.rsplit_once(" response ")?;
            Some(format!("{op} {code} response: media types "))
        })
        .collect();
    let names = |doc: &serde_json::Value| -> Vec<String> {
        doc.pointer("/components/schemas")
            .and_then(serde_json::Value::as_object)
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default()
    };
    let before = names(&spec);
    let unions: Vec<String> = names(&normalized)
        .into_iter()
        .filter(|n| !before.contains(n))
        .collect();
    for union in &unions {
        let members = &normalized["components"]["schemas"][union]["oneOf"];
        assert!(members.is_array(), "{union} is not a normaliser union");
    }
    let report = diff(&spec, &normalized).to_string();
    // Change lines are indented; headers and section titles are not.
    let unexplained: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with(' '))
        .filter(|l| {
            !unions.iter().any(|u| {
                l.contains(&format!("-> {u}")) || l.contains(&format!("{u}: schema added"))
            })
        })
        .filter(|l| !dropped_media.iter().any(|d| l.trim_start().starts_with(d)))
        .filter(|l| !under_a_range(&spec, l))
        .collect();
    assert!(unexplained.is_empty(), "{report}");
}

/// Whether `line` says a response was removed whose status code a range of
/// its class covers in the source document (`... (op) 202 response: removed`
/// where `op` declares `2XX`).
fn under_a_range(spec: &serde_json::Value, line: &str) -> bool {
    let Some(head) = line.trim().strip_suffix(" response: removed") else {
        return false;
    };
    let Some((op_part, code)) = head.rsplit_once(' ') else {
        return false;
    };
    let Some(op_id) = op_part
        .rsplit_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
    else {
        return false;
    };
    let Some(class) = code.chars().next() else {
        return false;
    };
    let range = format!("{class}XX");
    spec["paths"]
        .as_object()
        .into_iter()
        .flat_map(|paths| paths.values())
        .filter_map(serde_json::Value::as_object)
        .flat_map(|item| item.values())
        .filter(|op| op["operationId"] == op_id)
        .any(|op| op["responses"].get(&range).is_some())
}
