//! Real published OpenAPI documents (`../shared/openapi-corpus`, beside the
//! repository; see its SOURCES.md): each must generate, without a panic,
//! with every operation it leaves out named, and none left out for want of
//! multipart. Compiling the clients is the
//! `corpus` cargo-make task's job (minutes), not this test's.

use std::path::PathBuf;

use xtask::corpus::{Outcome, documents, generate_one};
use xtask::workspace_root;

fn corpus_dir() -> PathBuf {
    workspace_root().join("../shared/openapi-corpus")
}

/// Generates every document, two at a time (the generation is
/// single-threaded and CI has two cores).
fn outcomes() -> Vec<Outcome> {
    let dir = corpus_dir();
    let files = documents(&dir).unwrap_or_else(|e| {
        panic!(
            "the corpus of real OpenAPI documents is expected at {}: {e:#}",
            dir.display()
        )
    });
    assert_eq!(
        files.len(),
        16,
        "{} documents in {}",
        files.len(),
        dir.display()
    );
    let (left, right) = files.split_at(files.len() / 2);
    std::thread::scope(|scope| {
        let a = scope.spawn(|| left.iter().map(|f| generate_one(f)).collect::<Vec<_>>());
        let b = scope.spawn(|| right.iter().map(|f| generate_one(f)).collect::<Vec<_>>());
        let mut all = a.join().expect("no panic escapes generate_one");
        all.extend(b.join().expect("no panic escapes generate_one"));
        all
    })
}

#[test]
fn every_corpus_document_generates_with_its_drops_named() {
    let outcomes = outcomes();
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| o.report.is_none())
        .map(Outcome::line)
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));

    let by_name = |name: &str| {
        outcomes
            .iter()
            .find(|o| o.name == name)
            .and_then(|o| o.report.as_ref())
            .unwrap_or_else(|| panic!("{name} generated"))
    };
    // Every dropped operation has its warning, named by method, path and id.
    for o in &outcomes {
        let report = o.report.as_ref().expect("generated");
        let named = report
            .warnings()
            .iter()
            .filter(|w| w.dropped.starts_with("the operation"))
            .count();
        assert_eq!(named, report.dropped_operations(), "{}", o.name);
    }
    // dropshot's document, the one progenitor is written for, loses nothing.
    assert_eq!(by_name("oxide.json").dropped_operations(), 0);
    // Uploads are generated: no operation is dropped for its form body.
    for o in &outcomes {
        let report = o.report.as_ref().expect("generated");
        let for_forms: Vec<String> = report
            .warnings()
            .iter()
            .filter(|w| w.dropped.starts_with("the operation") && w.dropped.contains("form"))
            .map(ToString::to_string)
            .collect();
        assert!(for_forms.is_empty(), "{}: {for_forms:?}", o.name);
    }
    assert_eq!(by_name("cohere.json").form_operations(), 2);
    assert_eq!(by_name("elevenlabs.json").form_operations(), 30);
    let forms: usize = outcomes
        .iter()
        .filter_map(|o| o.report.as_ref())
        .map(|r| r.form_operations())
        .sum();
    // The corpus's 74 operations whose only body is `multipart/form-data`
    // (all dropped before issue 24), and 7 whose only body is a urlencoded
    // form (oxide 2, speaches 5; speaches' carry a file).
    assert_eq!(forms, 81);
    // Operations with a JSON body and a multipart one (openai 8, ideogram
    // 6) get an upload method too.
    let twins: usize = outcomes
        .iter()
        .filter_map(|o| o.report.as_ref())
        .map(|r| r.count(xtask::normalize::Rule::MultipartTwin))
        .sum();
    assert_eq!(twins, 14);
    let cohere = outcomes
        .iter()
        .find(|o| o.name == "cohere.json")
        .and_then(|o| o.code.as_deref())
        .expect("cohere generated");
    assert!(cohere.contains("pub fn create_dataset(&self)"));
}
