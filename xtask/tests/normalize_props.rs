//! Property tests of the normaliser: for any upstream-style schema, it
//! either refuses with JSON pointers or leaves no 3.1 construct behind, and
//! progenitor never panics on what it produced. `PROPTEST_CASES` sets the
//! campaign size (generation costs ~10 ms a case).

use proptest::prelude::*;
use serde_json::{Value, json};
use xtask::normalize::normalize;

/// Upstream-style (OpenAPI 3.1 / FastAPI) schemas, nested.
fn schema() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(json!({"type": "string"})),
        Just(json!({"type": "integer", "exclusiveMinimum": 0})),
        Just(json!({"type": "number", "exclusiveMaximum": 1.5, "minimum": 0})),
        Just(json!({"type": "boolean", "default": false})),
        Just(json!({"type": "string", "format": "date-time"})),
        Just(json!({"const": "fixed"})),
        Just(json!({"type": "string", "examples": ["a", "b"]})),
        Just(json!({"type": ["string", "null"]})),
        Just(json!({"$ref": "#/components/schemas/Leaf"})),
        Just(json!({"type": "string", "enum": ["A", "B"]})),
        Just(json!({"type": "null"})),
        Just(json!({"type": "object", "additionalProperties": true})),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            inner
                .clone()
                .prop_map(|s| json!({"anyOf": [s, {"type": "null"}], "title": "T"})),
            inner
                .clone()
                .prop_map(|s| json!({"oneOf": [{"type": "null"}, s]})),
            inner
                .clone()
                .prop_map(|s| json!({"type": "array", "items": s})),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| json!({"anyOf": [a, b, {"type": "null"}]})),
            proptest::collection::btree_map("[a-z]{1,6}", inner, 1..4).prop_map(|props| {
                let required: Vec<&String> = props.keys().take(1).collect();
                json!({"type": "object", "properties": props, "required": required})
            }),
        ]
    })
}

fn document(s: Value) -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {"/x": {"post": {
            "operationId": "op",
            "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/S"}}}},
            "responses": {
                "200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/S"}}}},
                "422": {"description": "bad", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Leaf"}}}}
            }
        }}},
        "components": {"schemas": {"S": s, "Leaf": {"type": "object", "properties": {"v": {"type": "integer"}}}}}
    })
}

/// Every 3.1-only construct left anywhere under `v`, as JSON pointers.
fn leftovers(v: &Value, at: &str, found: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if m.get("type") == Some(&json!("null")) || m.get("type").is_some_and(Value::is_array) {
                found.push(format!("{at}/type"));
            }
            if m.contains_key("const") {
                found.push(format!("{at}/const"));
            }
            if m.get("examples").is_some_and(Value::is_array) {
                found.push(format!("{at}/examples"));
            }
            for k in ["exclusiveMinimum", "exclusiveMaximum"] {
                if m.get(k).is_some_and(Value::is_number) {
                    found.push(format!("{at}/{k}"));
                }
            }
            for (k, child) in m {
                leftovers(child, &format!("{at}/{k}"), found);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                leftovers(child, &format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]

    #[test]
    fn normalised_documents_hold_no_31_construct_and_never_make_progenitor_panic(s in schema()) {
        let doc = document(s);
        match normalize(&doc) {
            Err(refused) => {
                // A refusal names where, and only things that are there.
                for p in &refused.problems {
                    let parent = p.pointer.rsplit_once('/').map_or("", |(a, _)| a);
                    prop_assert!(doc.pointer(&p.pointer).is_some() || doc.pointer(parent).is_some(), "{}", p);
                }
            }
            Ok((normalized, _)) => {
                prop_assert_eq!(&normalized["openapi"], "3.0.3");
                let mut found = Vec::new();
                leftovers(&normalized, "", &mut found);
                prop_assert!(found.is_empty(), "left behind: {:?}", found);
                let openapi: openapiv3::OpenAPI = serde_json::from_value(normalized)
                    .map_err(|e| TestCaseError::fail(format!("not 3.0: {e}")))?;
                let generated = std::panic::catch_unwind(|| {
                    progenitor::Generator::new(&xtask::generate::settings())
                        .generate_tokens(&openapi)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                });
                prop_assert!(generated.is_ok(), "progenitor panicked");
            }
        }
    }
}
