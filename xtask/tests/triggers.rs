//! A minimal document for each construct that made real published
//! documents fail (issue 11's failure classes). None may make the xtask
//! panic; each must generate (with the construct converted or dropped with
//! a warning). Issue 24's four classes have their own test (`classes.rs`),
//! which also compiles the clients.

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::{Value, json};
use xtask::generate::{generate_with, progenitor_tokens, standalone_settings};

fn with_op(op: Value, schemas: Value) -> Value {
    json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
        "paths": {"/x": {"post": op}},
        "components": {"schemas": schemas}})
}

fn ok_json(schema: Value) -> Value {
    json!({"description": "ok", "content": {"application/json": {"schema": schema}}})
}

/// An operation whose request body is `schema` (the schema is typed).
fn body(schema: Value) -> Value {
    with_op(
        json!({"operationId": "op",
            "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/S"}}}},
            "responses": {"200": ok_json(json!({"$ref": "#/components/schemas/S"}))}}),
        json!({"S": {"type": "object", "properties": {"p": schema}}}),
    )
}

fn param(p: Value) -> Value {
    with_op(
        json!({"operationId": "op", "parameters": [p], "responses": {"200": ok_json(json!({"type": "string"}))}}),
        json!({"M": {"type": "object", "properties": {"a": {"type": "integer"}}}}),
    )
}

fn responses(r: Value) -> Value {
    with_op(
        json!({"operationId": "op", "responses": r}),
        json!({"E": {"type": "object", "properties": {"m": {"type": "string"}}},
               "F": {"type": "object", "properties": {"n": {"type": "integer"}}}}),
    )
}

fn triggers() -> Vec<(&'static str, Value)> {
    vec![
        // 1
        (
            "multipart body",
            with_op(
                json!({"operationId": "up",
            "requestBody": {"content": {"multipart/form-data": {"schema": {"type": "object", "properties": {"f": {"type": "string", "format": "binary"}}}}}},
            "responses": {"200": ok_json(json!({"type": "string"}))}}),
                json!({}),
            ),
        ),
        // 2
        (
            "default of the wrong type",
            body(json!({"type": "boolean", "default": "false"})),
        ),
        (
            "default on a union",
            body(
                json!({"anyOf": [{"type": "string"}, {"type": "string", "enum": ["auto"]}], "default": "auto"}),
            ),
        ),
        (
            "default outside the enum",
            body(json!({"type": "string", "enum": ["a"], "default": "b"})),
        ),
        // 3
        (
            "union parameter",
            param(
                json!({"name": "t", "in": "query", "schema": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]}}),
            ),
        ),
        (
            "uuid-or-string path parameter",
            with_op(
                json!({"operationId": "op",
            "parameters": [{"name": "x", "in": "path", "required": true, "schema": {"anyOf": [{"type": "string", "format": "uuid"}, {"type": "string"}]}}],
            "responses": {"200": ok_json(json!({"type": "string"}))}}),
                json!({}),
            ),
        ),
        (
            "optional model query parameter",
            param(
                json!({"name": "m", "in": "query", "schema": {"$ref": "#/components/schemas/M"}}),
            ),
        ),
        (
            "nullable model query parameter",
            param(
                json!({"name": "m", "in": "query", "schema": {"anyOf": [{"$ref": "#/components/schemas/M"}, {"type": "null"}]}}),
            ),
        ),
        // 4, 5
        (
            "propertyNames",
            body(
                json!({"type": "object", "propertyNames": {"pattern": "^a"}, "additionalProperties": {"type": "string"}}),
            ),
        ),
        (
            "prefixItems",
            body(json!({"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}]})),
        ),
        // 6
        (
            "null member with an extension",
            body(
                json!({"anyOf": [{"type": "string"}, {"type": "null", "x-stainless-skip": ["go"]}]}),
            ),
        ),
        ("property typed only null", body(json!({"type": "null"}))),
        // 7
        (
            "several non-JSON response types",
            responses(json!({"200": {"description": "a",
            "content": {"audio/mpeg": {"schema": {"type": "string", "format": "binary"}}, "audio/wav": {"schema": {"type": "string", "format": "binary"}}}}})),
        ),
        (
            "several non-JSON body types",
            with_op(
                json!({"operationId": "op",
            "requestBody": {"content": {"text/plain": {"schema": {"type": "string"}}, "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
            "responses": {"200": ok_json(json!({"type": "string"}))}}),
                json!({}),
            ),
        ),
        // 8
        (
            "deepObject parameter",
            param(
                json!({"name": "f", "in": "query", "style": "deepObject", "schema": {"$ref": "#/components/schemas/M"}}),
            ),
        ),
        (
            "required cookie parameter",
            param(
                json!({"name": "c", "in": "cookie", "required": true, "schema": {"type": "string"}}),
            ),
        ),
        (
            "parameter described by content",
            param(
                json!({"name": "q", "in": "query", "content": {"application/json": {"schema": {"type": "object"}}}}),
            ),
        ),
        (
            "no operationId",
            json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
            "paths": {"/x/{id}": {"get": {"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": ok_json(json!({"type": "string"}))}}}}}),
        ),
        (
            "PCRE named group",
            body(json!({"type": "string", "pattern": "^(?P<a>x)$"})),
        ),
        (
            "PCRE inline flag",
            body(json!({"type": "string", "pattern": "(?i)^x$"})),
        ),
        (
            "unevaluatedProperties",
            body(
                json!({"type": "object", "unevaluatedProperties": false, "properties": {"a": {"type": "string"}}}),
            ),
        ),
        (
            "type array of several types",
            body(json!({"type": ["string", "integer", "boolean"]})),
        ),
        (
            "bodiless 2xx beside JSON 2xx",
            responses(
                json!({"200": ok_json(json!({"type": "string"})), "204": {"description": "none"}}),
            ),
        ),
        (
            "missing info.version and response description",
            json!({"openapi": "3.1.0", "info": {"title": "t"},
            "paths": {"/x": {"get": {"operationId": "op", "responses": {"200": {"content": {"application/json": {"schema": {"type": "string"}}}}}}}}}),
        ),
        (
            "required: \"true\" in a property",
            body(json!({"type": "string", "required": "true"})),
        ),
        // 9
        (
            "$ref error response beside an inline one",
            json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
            "paths": {"/x": {"get": {"operationId": "op", "responses": {
                "200": ok_json(json!({"type": "string"})),
                "404": {"$ref": "#/components/responses/NotFound"},
                "422": ok_json(json!({"$ref": "#/components/schemas/F"}))}}}},
            "components": {"responses": {"NotFound": ok_json(json!({"$ref": "#/components/schemas/E"}))},
                "schemas": {"E": {"type": "object", "properties": {"m": {"type": "string"}}}, "F": {"type": "object", "properties": {"n": {"type": "integer"}}}}}}),
        ),
        (
            "enum of punctuation",
            body(json!({"type": "string", "enum": [" ", ","]})),
        ),
        (
            "anyOf and oneOf on one schema",
            body(
                json!({"anyOf": [{"type": "string"}, {"type": "integer"}], "oneOf": [{"type": "string"}, {"type": "boolean"}]}),
            ),
        ),
        // 10
        (
            "shared nullable union component",
            with_op(
                json!({"operationId": "op", "responses": {"200": ok_json(json!({"$ref": "#/components/schemas/A"}))}}),
                json!({"U": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
                   "A": {"type": "object", "properties": {"u": {"$ref": "#/components/schemas/U"}, "v": {"$ref": "#/components/schemas/U"}}}}),
            ),
        ),
        (
            "inline type named like a component",
            with_op(
                json!({"operationId": "op", "responses": {"200": ok_json(json!({"$ref": "#/components/schemas/A"}))}}),
                json!({"AB": {"type": "object", "properties": {"z": {"type": "integer"}}},
                   "A": {"type": "object", "properties": {"b": {"type": "string", "pattern": "^x"}, "c": {"$ref": "#/components/schemas/AB"}}}}),
            ),
        ),
        (
            "trailing-slash routes",
            json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
            "paths": {"/items": {"get": {"operationId": "list_items_items_get", "responses": {"200": ok_json(json!({"type": "string"}))}}},
                      "/items/": {"get": {"operationId": "list_items_items__get", "responses": {"200": ok_json(json!({"type": "string"}))}}}}}),
        ),
        (
            "schema named Default",
            with_op(
                json!({"operationId": "op", "responses": {"200": ok_json(json!({"$ref": "#/components/schemas/Default"}))}}),
                json!({"Default": {"type": "object", "properties": {"a": {"type": "string", "default": "x"}}}}),
            ),
        ),
        (
            "property names of one Rust name",
            body(
                json!({"type": "object", "required": ["fooBar"], "properties": {"foo_bar": {"type": "string"}, "fooBar": {"type": "string"}}}),
            ),
        ),
        // 11
        (
            "NDJSON response",
            responses(
                json!({"200": {"description": "s", "content": {"application/x-ndjson": {"schema": {"$ref": "#/components/schemas/E"}}}}}),
            ),
        ),
        (
            "untyped union member first",
            body(json!({"anyOf": [{}, {"type": "integer"}]})),
        ),
        // Beyond the list: path parameters that disagree with the
        // template, `false` and `true` schemas, a +json body.
        (
            "path parameters unlike the template",
            json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
            "paths": {"/a/{declared}/{undeclared}": {"get": {"operationId": "op",
                "parameters": [{"name": "declared", "in": "path", "schema": {"type": "string"}},
                               {"name": "stray", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": ok_json(json!({"type": "string"}))}}}}}),
        ),
        (
            "parameters of one Rust name",
            with_op(
                json!({"operationId": "op",
            "parameters": [{"name": "page-size", "in": "query", "schema": {"type": "integer"}},
                           {"name": "page_size", "in": "header", "schema": {"type": "string"}},
                           {"name": "client", "in": "query", "schema": {"type": "string"}},
                           {"name": "body", "in": "query", "schema": {"type": "string"}}],
            "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": {"200": ok_json(json!({"type": "string"}))}}),
                json!({}),
            ),
        ),
        (
            "a path and a query parameter of one name",
            json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
            "paths": {"/a/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "get": {"operationId": "op", "parameters": [{"name": "id", "in": "query", "schema": {"type": "string"}}],
                    "responses": {"200": ok_json(json!({"type": "string"}))}}}}}),
        ),
        (
            "enum with null",
            body(json!({"type": "string", "enum": ["a", "b", null], "nullable": true})),
        ),
        ("enum of mixed types", body(json!({"enum": [1, "a", true]}))),
        (
            "integer enum",
            body(json!({"type": "integer", "enum": [1, 2, 3]})),
        ),
        ("empty enum", body(json!({"type": "string", "enum": []}))),
        (
            "allOf of a model and a union",
            with_op(
                json!({"operationId": "op", "responses": {"200": ok_json(json!({"$ref": "#/components/schemas/A"}))}}),
                json!({"B": {"type": "object", "properties": {"id": {"type": "string"}}},
                   "A": {"allOf": [{"$ref": "#/components/schemas/B"}, {"oneOf": [
                       {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
                       {"type": "object", "properties": {"y": {"type": "string"}}, "required": ["y"]}]}]}}),
            ),
        ),
        ("not", body(json!({"not": {"type": "string"}}))),
        (
            "optional model body",
            with_op(
                json!({"operationId": "op",
            "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/M"}}}},
            "responses": {"200": ok_json(json!({"type": "string"}))}}),
                json!({"M": {"type": "object", "properties": {"a": {"type": "integer"}}}}),
            ),
        ),
        (
            "operationId of digits and dots",
            with_op(
                json!({"operationId": "2fa.enable",
            "responses": {"200": ok_json(json!({"type": "string"}))}}),
                json!({}),
            ),
        ),
        (
            "properties named like Rust keywords",
            body(json!({"type": "object", "properties": {
            "self": {"type": "string"}, "type": {"type": "string"}, "crate": {"type": "integer"}, "super": {"type": "boolean"}}})),
        ),
        (
            "component names of one Rust name",
            with_op(
                json!({"operationId": "op", "responses": {"200": ok_json(json!({"$ref": "#/components/schemas/A"}))}}),
                json!({"foo_bar": {"type": "object", "properties": {"a": {"type": "string"}}},
                   "FooBar": {"type": "object", "properties": {"b": {"type": "integer"}}},
                   "A": {"type": "object", "properties": {
                       "one": {"$ref": "#/components/schemas/foo_bar"},
                       "two": {"$ref": "#/components/schemas/FooBar"}}}}),
            ),
        ),
        (
            "self-referential schema",
            with_op(
                json!({"operationId": "op", "responses": {"200": ok_json(json!({"$ref": "#/components/schemas/Node"}))}}),
                json!({"Node": {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
                "parent": {"anyOf": [{"$ref": "#/components/schemas/Node"}, {"type": "null"}]}}}}),
            ),
        ),
        (
            "discriminated union",
            with_op(
                json!({"operationId": "op", "responses": {"200": ok_json(json!({"$ref": "#/components/schemas/Pet"}))}}),
                json!({"Cat": {"type": "object", "properties": {"kind": {"const": "cat"}, "lives": {"type": "integer"}}, "required": ["kind"]},
                   "Dog": {"type": "object", "properties": {"kind": {"const": "dog"}, "good": {"type": "boolean"}}, "required": ["kind"]},
                   "Pet": {"oneOf": [{"$ref": "#/components/schemas/Cat"}, {"$ref": "#/components/schemas/Dog"}],
                           "discriminator": {"propertyName": "kind", "mapping": {"cat": "#/components/schemas/Cat", "dog": "#/components/schemas/Dog"}}}}),
            ),
        ),
        (
            "form-urlencoded body",
            with_op(
                json!({"operationId": "token",
            "requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": {"grant_type": {"type": "string"}}}}}},
            "responses": {"200": ok_json(json!({"type": "string"}))}}),
                json!({}),
            ),
        ),
        (
            "2XX range and 3xx responses",
            responses(
                json!({"2XX": ok_json(json!({"type": "string"})), "302": {"description": "moved"}}),
            ),
        ),
        (
            "response header with a schema",
            responses(json!({"200": {"description": "ok",
            "headers": {"X-Rate": {"schema": {"type": ["integer", "null"]}}},
            "content": {"application/json": {"schema": {"type": "string"}}}}})),
        ),
        (
            "webhooks and callbacks",
            json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
            "webhooks": {"ping": {"post": {"responses": {"200": {"description": "ok"}}}}},
            "paths": {"/x": {"post": {"operationId": "op",
                "callbacks": {"cb": {"{$request.body#/url}": {"post": {"responses": {"200": {"description": "ok"}}}}}},
                "responses": {"200": ok_json(json!({"type": "string"}))}}}}}),
        ),
        (
            "boolean schemas",
            body(json!({"type": "object", "properties": {"t": true, "f": false}})),
        ),
        (
            "merge-patch body",
            with_op(
                json!({"operationId": "op",
            "requestBody": {"content": {"application/merge-patch+json": {"schema": {"type": "object"}}}},
            "responses": {"200": ok_json(json!({"type": "string"}))}}),
                json!({}),
            ),
        ),
    ]
}

#[test]
fn no_minimal_trigger_makes_the_xtask_panic_and_each_generates() {
    let mut failures = Vec::new();
    for (name, doc) in triggers() {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            generate_with(&doc, &standalone_settings())
        }));
        match outcome {
            Err(_) => failures.push(format!("{name}: PANICKED")),
            Ok(Err(e)) => failures.push(format!("{name}: {e:#}")),
            Ok(Ok(generated)) => {
                assert!(
                    syn::parse_file(&generated.code).is_ok(),
                    "{name}: unparsable"
                );
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_dangling_ref_becomes_an_untyped_value_named_by_its_pointer() {
    let doc = body(json!({"$ref": "#/components/schemas/Nowhere"}));
    let generated = catch_unwind(AssertUnwindSafe(|| {
        generate_with(&doc, &standalone_settings())
    }))
    .expect("no panic")
    .expect("generated");
    let warnings: Vec<String> = generated
        .report
        .warnings()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        warnings.iter().any(|w| w.starts_with(
            "/components/schemas/S/properties/p/$ref: the reference `#/components/schemas/Nowhere` dropped: it points at nothing"
        )),
        "{warnings:?}"
    );
    assert!(
        generated
            .code
            .contains("pub p: ::std::option::Option<::serde_json::Value>"),
        "{}",
        generated.code
    );
}

#[test]
fn a_generator_panic_becomes_an_error_naming_the_operation() {
    // Not normalised: a JSON response without a schema is progenitor's
    // `todo!` (the normaliser adds an any-value schema; this skips it).
    let doc = json!({"openapi": "3.0.3", "info": {"title": "t", "version": "1"},
    "paths": {
        "/fine": {"get": {"operationId": "fine", "responses": {"200": ok_json(json!({"type": "string"}))}}},
        "/broken": {"get": {"operationId": "broken", "responses": {"200": {"description": "ok", "content": {"application/json": {}}}}}}
    }});
    let err = catch_unwind(AssertUnwindSafe(|| {
        progenitor_tokens(&doc, &standalone_settings()).err()
    }))
    .expect("the guard catches the panic")
    .expect("an error");
    let text = format!("{err:#}");
    assert!(text.contains("progenitor panicked"), "{text}");
    assert!(text.contains("operation `broken` (GET /broken)"), "{text}");
    assert!(!text.contains("`fine`"), "{text}");
}
