//! The four classes of construct that still failed on published documents
//! (issue 24), each with a minimal trigger in `tests/fixtures/classes/`:
//! each generates, says what it did, and compiles (all four clients type-
//! checked as modules of one scratch crate, under
//! `target/xtask-corpus/classes`, sharing the corpus's build).
//!
//! 1. `dangling_ref.json`: `$ref`s that point at nothing (a schema, a
//!    response, a parameter) refused the whole document.
//! 2. `response_without_description.json`: an entry of
//!    `components.responses` without a `description` made the converted
//!    document invalid.
//! 3. `prelude_title.json`: inline schemas titled `Default`, `Option`..
//!    named types that broke compilation.
//! 4. `parameter_names.json`: parameters named like the builder's own
//!    items (`client`, `new`, `send`, `body`, `header_map`..) dropped their
//!    operation; operations named like the client's own methods (`new`,
//!    `client`) did not compile.

use std::path::PathBuf;

use serde_json::Value;
use xtask::corpus::Scratch;
use xtask::generate::{Generated, generate_with, standalone_settings};
use xtask::normalize::Rule;
use xtask::workspace_root;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/classes")
        .join(name);
    xtask::load_spec(&path).expect("fixture loads")
}

fn generated(name: &str) -> Generated {
    let doc = fixture(name);
    match std::panic::catch_unwind(|| generate_with(&doc, &standalone_settings())) {
        Ok(Ok(g)) => g,
        Ok(Err(e)) => panic!("{name} does not generate: {e:#}"),
        Err(_) => panic!("{name}: the xtask panicked"),
    }
}

/// The code without whitespace or trailing commas, for matching calls that
/// rustfmt splits over lines.
fn flat(code: &str) -> String {
    code.split_whitespace()
        .collect::<String>()
        .replace(",)", ")")
}

/// Whether `code` holds `snippet`, whitespace aside.
fn holds(code: &str, snippet: &str) -> bool {
    flat(code).contains(&flat(snippet))
}

fn dangling_ref() -> Generated {
    let g = generated("dangling_ref.json");
    let warnings: Vec<String> = g
        .report
        .warnings()
        .iter()
        .map(ToString::to_string)
        .collect();
    let text = warnings.join("\n");
    for pointer in [
        "/components/schemas/Pet/properties/owner/$ref",
        "/components/schemas/Pet/properties/tags/items/$ref",
        "/paths/~1pets~1{pet_id}/get/responses/404/$ref",
    ] {
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with(pointer) && w.contains("points at nothing")),
            "no warning names {pointer}:\n{text}"
        );
    }
    // The operation whose parameter is missing goes, named; the other stays.
    assert_eq!(g.report.operations(), 2);
    assert_eq!(g.report.dropped_operations(), 1, "{text}");
    assert!(
        text.contains("DELETE /pets/{pet_id} (delete_pet): the operation (its parameter `#/components/parameters/IfMatch` points at nothing"),
        "{text}"
    );
    let pet = &g.normalized["components"]["schemas"]["Pet"]["properties"];
    assert_eq!(
        pet["owner"],
        serde_json::json!({"description": "Who owns the pet."})
    );
    assert_eq!(pet["tags"]["items"], serde_json::json!({}));
    assert!(g.code.contains("pub fn get_pet(&self)"));
    assert!(!g.code.contains("pub fn delete_pet(&self)"));
    // The owner is any JSON value; the 404 hands its body over as bytes.
    assert!(
        holds(
            &g.code,
            "pub owner: ::std::option::Option<::serde_json::Value>"
        ),
        "{}",
        g.code
    );
    g
}

fn response_without_description() -> Generated {
    let g = generated("response_without_description.json");
    let responses = &g.normalized["components"]["responses"];
    assert_eq!(responses["Items"]["description"], "");
    assert_eq!(responses["BadRequest"]["description"], "");
    assert!(g.report.count(Rule::Repaired) >= 2);
    assert!(
        holds(
            &g.code,
            "Result<ResponseValue<::std::vec::Vec<::std::string::String>>, Error<types::Problem>>"
        ),
        "{}",
        g.code
    );
    g
}

fn prelude_title() -> Generated {
    let g = generated("prelude_title.json");
    let props = &g.normalized["components"]["schemas"]["Settings"]["properties"];
    for (property, title) in [
        ("default", "DefaultSchema"),
        ("option", "OptionSchema"),
        ("result", "ResultSchema"),
        ("box", "BoxSchema"),
        ("vec", "VecSchema"),
        ("string", "StringSchema"),
        ("some", "SomeSchema"),
        ("none", "NoneSchema"),
        ("ok", "OkSchema"),
        ("err", "ErrSchema"),
    ] {
        assert_eq!(props[property]["title"], title, "{property}");
        assert!(
            g.code.contains(&format!("pub enum {title} "))
                || g.code.contains(&format!("pub struct {title} ")),
            "no type {title}"
        );
    }
    // A title that is no prelude name keeps its name.
    assert_eq!(props["maybe"]["title"], "Optional");
    for prelude in ["Default", "Option", "Result", "Box", "Vec", "String"] {
        assert!(
            !g.code.contains(&format!("pub enum {prelude} ")),
            "{prelude}"
        );
        assert!(
            !g.code.contains(&format!("pub struct {prelude} ")),
            "{prelude}"
        );
    }
    g
}

fn parameter_names() -> Generated {
    let g = generated("parameter_names.json");
    assert_eq!(g.report.dropped_operations(), 0, "{}", g.report);
    assert!(
        g.report.warnings().is_empty(),
        "nothing is dropped: {}",
        g.report
    );
    let code = &g.code;
    // Renamed in Rust, the wire name kept.
    for (setter, sent) in [
        (
            "pub fn new_param<V>",
            "QueryParam::new(\"new\", &new_param)",
        ),
        (
            "pub fn body_param<V>",
            "QueryParam::new(\"body\", &body_param)",
        ),
        (
            "pub fn body_map_param<V>",
            "QueryParam::new(\"body_map\", &body_map_param)",
        ),
        (
            "pub fn encode_path_param<V>",
            "QueryParam::new(\"encode_path\", &encode_path_param)",
        ),
        (
            "pub fn header_map_param<V>",
            "header_map.append(\"header_map\", header_map_param.to_string().try_into()?)",
        ),
        (
            "pub fn page_size_param<V>",
            "header_map.append(\"page_size\", value.to_string().try_into()?)",
        ),
        (
            "pub fn page_size<V>",
            "QueryParam::new(\"page-size\", &page_size)",
        ),
        ("pub fn client<V>", "QueryParam::new(\"client\", &client)"),
    ] {
        assert!(holds(code, setter), "no {setter}");
        assert!(holds(code, sent), "not sent as {sent}");
    }
    // The path variable `{send}` is filled by position, under another name.
    assert!(holds(code, "pub fn send_param<V>"), "no send_param setter");
    assert!(
        holds(
            code,
            "format!(\"{}/things/{}\", _client.baseurl, encode_path(&send_param.to_string()))"
        ),
        "{code}"
    );
    assert_eq!(g.report.count(Rule::RenamedParameter), 7);
    // Operations named like the client's own methods get other names.
    assert!(
        holds(code, "pub fn new_2(&self) -> builder::New2<'_>"),
        "{code}"
    );
    assert!(holds(
        code,
        "pub fn client_2(&self) -> builder::Client2<'_>"
    ));
    assert!(holds(code, "QueryParam::new(\"inner\", &inner)"));
    g
}

#[test]
fn each_class_generates_and_compiles() {
    let clients = [
        ("dangling_ref", dangling_ref()),
        (
            "response_without_description",
            response_without_description(),
        ),
        ("prelude_title", prelude_title()),
        ("parameter_names", parameter_names()),
    ];
    let root = workspace_root();
    let scratch = Scratch::create(
        &root.join("target/xtask-corpus/classes"),
        &root.join("Cargo.lock"),
    )
    .expect("scratch crate")
    .with_target_dir(&root.join("target/xtask-corpus/target"));
    let code: String = clients
        .iter()
        .map(|(name, g)| format!("pub mod {name} {{\n{}\n}}\n", g.code))
        .collect();
    if let Err(errors) = scratch.check(&code).expect("cargo check runs") {
        panic!("the clients do not compile: {errors}");
    }
}
