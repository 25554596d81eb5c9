//! `$ref`s that point at nothing in the document. The document does not say
//! what the value is, but the rest of it still describes an API: a schema
//! becomes an untyped JSON value, a response an untyped byte stream, a
//! header, example or link goes; only an operation whose parameter or body
//! is missing is left out (a parameter it does not know may be required, a
//! body it does not know cannot be sent). Each is named by the pointer of
//! the reference. A reference into another file is still refused: the fix
//! is to bundle the document.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{METHODS, Normalizer, Rule, TOP_LEVEL_31, child, escape, percent_decode};

/// A `$ref` found in the document.
struct Reference {
    /// The JSON pointer of the object holding the `$ref`.
    at: String,
    /// The `$ref` as written.
    target: String,
}

/// What is done about a dangling reference, by where it is.
enum Repair {
    /// The operation at `paths/{0}/{1}` cannot be generated.
    DropOperation(String, String, &'static str),
    /// Every operation of a path item (a shared parameter is missing).
    DropPathOperations(String),
    /// A response: any body, handed over as bytes.
    RawResponse,
    /// A component that is itself only the dangling reference.
    RemoveEntry(&'static str),
    /// A header object: a header of any value.
    AnyHeader,
    /// A schema: any value.
    Untyped,
}

impl Normalizer {
    /// Repairs every `$ref` that points at nothing in the document (see the
    /// module documentation), and refuses every reference to another file.
    pub(super) fn repair_dangling_refs(&mut self, doc: &mut Value) {
        // Removing a component can leave the references to it dangling:
        // another round repairs those.
        for round in 0..4 {
            let mut refs = Vec::new();
            collect(doc, "", &mut refs);
            let mut dangling = Vec::new();
            for r in refs {
                match r.target.strip_prefix('#') {
                    Some(pointer) if doc.pointer(&percent_decode(pointer)).is_some() => {}
                    Some(_) => dangling.push(r),
                    None if round == 0 => self.refuse(
                        child(&r.at, "$ref"),
                        format!(
                            "`{}` is in another file: bundle the document into one file first",
                            r.target
                        ),
                    ),
                    None => {}
                }
            }
            if dangling.is_empty() {
                return;
            }
            self.repair(doc, dangling);
        }
    }

    fn repair(&mut self, doc: &mut Value, dangling: Vec<Reference>) {
        let mut dropped: BTreeSet<(String, String)> = BTreeSet::new();
        let mut repairs = Vec::new();
        for r in dangling {
            let tokens = tokens(&r.at);
            let repair = classify(&tokens);
            repairs.push((r, tokens, repair));
        }
        // Operations first: what lies inside a dropped operation needs no
        // repair of its own.
        for (r, _, repair) in &repairs {
            let targets: Vec<(String, String, &str)> = match repair {
                Repair::DropOperation(path, method, what) => {
                    vec![(path.clone(), method.clone(), *what)]
                }
                Repair::DropPathOperations(path) => METHODS
                    .iter()
                    .filter(|m| {
                        doc.pointer(&format!("/paths/{}/{m}", escape(path)))
                            .is_some()
                    })
                    .map(|m| (path.clone(), (*m).to_owned(), "shared parameter"))
                    .collect(),
                _ => continue,
            };
            for (path, method, what) in targets {
                if dropped.contains(&(path.clone(), method.clone())) {
                    continue;
                }
                let Some(item) = doc
                    .get_mut("paths")
                    .and_then(|p| p.get_mut(&path))
                    .and_then(Value::as_object_mut)
                else {
                    continue;
                };
                let Some(op) = item.shift_remove(&method) else {
                    continue;
                };
                let id = op
                    .get("operationId")
                    .and_then(Value::as_str)
                    .unwrap_or("no operationId")
                    .to_owned();
                self.report.operations += 1;
                self.report.drop(
                    Rule::DroppedOperation,
                    format!("{} {path} ({id})", method.to_uppercase()),
                    format!(
                        "the operation (its {what} `{}` points at nothing in the document)",
                        r.target
                    ),
                    "the client has no method for this endpoint",
                );
                self.report.hit(Rule::DanglingRef);
                dropped.insert((path, method));
            }
        }
        for (r, tokens, repair) in repairs {
            let inside_dropped = match tokens.as_slice() {
                [paths, path, method, ..] if paths == "paths" => {
                    dropped.contains(&(path.clone(), method.clone()))
                }
                _ => false,
            };
            if inside_dropped {
                continue;
            }
            let place = child(&r.at, "$ref");
            let dropped_what = format!("the reference `{}`", r.target);
            match repair {
                Repair::DropOperation(..) | Repair::DropPathOperations(_) => {}
                Repair::RawResponse => {
                    if let Some(slot) = doc.pointer_mut(&r.at) {
                        *slot =
                            json!({"description": "", "content": {"application/octet-stream": {}}});
                    }
                    self.report.drop(
                        Rule::DanglingRef,
                        place,
                        dropped_what,
                        "it points at nothing in the document: the response body is handed over as bytes",
                    );
                }
                Repair::RemoveEntry(what) => {
                    let (parent, last) = r.at.rsplit_once('/').unwrap_or_default();
                    let key = last.replace("~1", "/").replace("~0", "~");
                    if let Some(parent) = doc.pointer_mut(parent).and_then(Value::as_object_mut) {
                        parent.shift_remove(&key);
                    }
                    self.report.drop(
                        Rule::DanglingRef,
                        place,
                        dropped_what,
                        format!("it points at nothing in the document: the {what} is left out"),
                    );
                }
                Repair::AnyHeader => {
                    if let Some(slot) = doc.pointer_mut(&r.at) {
                        *slot = json!({"schema": {}});
                    }
                    self.report.drop(
                        Rule::DanglingRef,
                        place,
                        dropped_what,
                        "it points at nothing in the document: the header is of any value",
                    );
                }
                Repair::Untyped => {
                    if let Some(obj) = doc.pointer_mut(&r.at).and_then(Value::as_object_mut) {
                        obj.shift_remove("$ref");
                    }
                    self.report.drop(
                        Rule::DanglingRef,
                        place,
                        dropped_what,
                        "it points at nothing in the document: the value is untyped (any JSON value)",
                    );
                }
            }
        }
    }
}

/// Every `$ref` of the document outside values and vendor extensions
/// (where a `$ref` is data: Fern's `x-fern-examples` name files), and
/// outside the 3.1-only members the normaliser drops (`webhooks`).
fn collect(value: &Value, at: &str, out: &mut Vec<Reference>) {
    match value {
        Value::Object(m) => {
            if let Some(Value::String(target)) = m.get("$ref") {
                out.push(Reference {
                    at: at.to_owned(),
                    target: target.clone(),
                });
            }
            for (key, v) in m {
                let dropped = at.is_empty() && TOP_LEVEL_31.contains(&key.as_str());
                if !matches!(
                    key.as_str(),
                    "example" | "examples" | "default" | "enum" | "const"
                ) && !key.starts_with("x-")
                    && !dropped
                {
                    collect(v, &child(at, key), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect(v, &child(at, &i.to_string()), out);
            }
        }
        _ => {}
    }
}

/// The unescaped tokens of a JSON pointer.
fn tokens(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn classify(tokens: &[String]) -> Repair {
    let t: Vec<&str> = tokens.iter().map(String::as_str).collect();
    match t.as_slice() {
        ["paths", path, method, "parameters", _] if METHODS.contains(method) => {
            Repair::DropOperation((*path).to_owned(), (*method).to_owned(), "parameter")
        }
        ["paths", path, "parameters", _] => Repair::DropPathOperations((*path).to_owned()),
        ["paths", path, method, "requestBody"] if METHODS.contains(method) => {
            Repair::DropOperation((*path).to_owned(), (*method).to_owned(), "request body")
        }
        ["paths", _, method, "responses", _] if METHODS.contains(method) => Repair::RawResponse,
        ["paths", _] => Repair::RemoveEntry("path item"),
        ["components", "schemas", _] => Repair::Untyped,
        ["components", "responses", _] => Repair::RawResponse,
        ["components", "headers", _] => Repair::AnyHeader,
        ["components", _, _] => Repair::RemoveEntry("component"),
        [.., "responses", _, "headers", _] => Repair::AnyHeader,
        [.., "responses", _, "links", _] => Repair::RemoveEntry("link"),
        ["paths", _, method, "callbacks", _] if METHODS.contains(method) => {
            Repair::RemoveEntry("callback")
        }
        _ => Repair::Untyped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;

    #[test]
    fn a_dangling_schema_becomes_untyped_and_is_named() {
        let doc = json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
            "paths": {"/x": {"get": {"operationId": "x", "responses": {"200": {"description": "ok",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/S"}}}}}}}},
            "components": {"schemas": {"S": {"type": "object", "properties": {
                "p": {"$ref": "#/components/schemas/Nowhere", "description": "kept"}}}}}});
        let (doc, report) = normalize(&doc).unwrap();
        assert_eq!(
            doc["components"]["schemas"]["S"]["properties"]["p"],
            json!({"description": "kept"})
        );
        assert_eq!(report.count(Rule::DanglingRef), 1);
        let w = &report.warnings()[0];
        assert_eq!(w.place, "/components/schemas/S/properties/p/$ref");
        assert!(w.dropped.contains("#/components/schemas/Nowhere"), "{w}");
    }

    #[test]
    fn a_dangling_parameter_drops_its_operation_and_a_response_becomes_bytes() {
        let doc = json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
            "paths": {"/x": {
                "get": {"operationId": "x", "parameters": [{"$ref": "#/components/parameters/Gone"}],
                    "responses": {"200": {"description": "ok"}}},
                "post": {"operationId": "y", "responses": {"200": {"$ref": "#/components/responses/Gone"}}}}},
            "components": {"parameters": {"Alias": {"$ref": "#/components/parameters/Gone"}}}});
        let (doc, report) = normalize(&doc).unwrap();
        assert!(doc["paths"]["/x"].get("get").is_none());
        assert_eq!(report.dropped_operations(), 1);
        assert_eq!(report.operations(), 2);
        assert_eq!(report.generated_operations(), 1);
        assert!(
            doc["components"]["parameters"].get("Alias").is_none(),
            "{doc}"
        );
        assert_eq!(
            doc["paths"]["/x"]["post"]["responses"]["200"]["content"],
            json!({"application/octet-stream": {}})
        );
    }

    #[test]
    fn a_reference_into_another_file_is_still_refused() {
        let doc = json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {},
            "components": {"schemas": {"S": {"$ref": "other.json#/S"}}}});
        let err = normalize(&doc).unwrap_err();
        assert_eq!(err.problems[0].pointer, "/components/schemas/S/$ref");
    }
}
