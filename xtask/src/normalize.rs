//! Turns an upstream OpenAPI 3.1 document (FastAPI's form) into the OpenAPI
//! 3.0.3 subset that progenitor 0.15 accepts.
//!
//! progenitor rejects 3.1 documents outright and panics (`todo!`) on
//! constructs such as `{"type": "null"}`, so every rewrite happens here, on
//! plain JSON, before the generator sees the document. Anything that cannot
//! be expressed in 3.0 is refused with the JSON pointer of the offending
//! value, never passed through to a generator panic.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value, json};

/// A construct the normaliser cannot express in OpenAPI 3.0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unconvertible {
    /// JSON pointer (RFC 6901) of the value, from the document root.
    pub pointer: String,
    /// Why it cannot be converted.
    pub reason: String,
}

impl fmt::Display for Unconvertible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pointer, self.reason)
    }
}

/// Every construct of a document that could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizeError {
    /// The refusals, in document order.
    pub problems: Vec<Unconvertible>,
}

impl fmt::Display for NormalizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "the OpenAPI document cannot be converted to 3.0 ({} problem{}):",
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for NormalizeError {}

/// The rules the normaliser applies; [`Report`] counts each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// `openapi: 3.1.x` becomes `3.0.3`.
    Version,
    /// `anyOf`/`oneOf` with a `{"type": "null"}` member becomes `nullable`.
    NullableUnion,
    /// `type: [X, "null"]` becomes `type: X, nullable: true`.
    NullableTypeArray,
    /// `const: v` becomes `enum: [v]`.
    Const,
    /// `examples: [..]` (a schema keyword in 3.1) becomes `example`.
    Examples,
    /// Numeric `exclusiveMinimum`/`exclusiveMaximum` become the 3.0 boolean form.
    ExclusiveBound,
    /// Several error schemas on one operation become one union schema.
    ErrorSchemas,
    /// Several 2xx schemas on one operation become one union schema.
    SuccessSchemas,
    /// A response with several media types keeps only its JSON one.
    MediaTypes,
    /// A 3.1-only annotation with no 3.0 meaning is dropped.
    DroppedKeyword,
    /// `nullable` on an optional parameter is dropped: absence already says null.
    OptionalParameter,
}

impl Rule {
    fn describe(self) -> &'static str {
        match self {
            Rule::Version => "openapi 3.1.x -> 3.0.3",
            Rule::NullableUnion => "anyOf/oneOf with null member -> nullable",
            Rule::NullableTypeArray => "type array with \"null\" -> nullable",
            Rule::Const => "const -> one-value enum",
            Rule::Examples => "examples -> example",
            Rule::ExclusiveBound => "numeric exclusiveMinimum/Maximum -> boolean form",
            Rule::ErrorSchemas => "several error schemas -> one",
            Rule::SuccessSchemas => "several 2xx schemas -> one",
            Rule::MediaTypes => "several response media types -> application/json",
            Rule::DroppedKeyword => "3.1-only annotation dropped",
            Rule::OptionalParameter => "nullable optional parameter -> optional parameter",
        }
    }
}

/// What the normaliser changed, rule by rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    counts: BTreeMap<Rule, usize>,
}

impl Report {
    fn hit(&mut self, rule: Rule) {
        *self.counts.entry(rule).or_default() += 1;
    }

    /// How many times `rule` fired.
    pub fn count(&self, rule: Rule) -> usize {
        self.counts.get(&rule).copied().unwrap_or(0)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.counts.is_empty() {
            return writeln!(f, "normalisation: nothing to change");
        }
        writeln!(f, "normalisation:")?;
        for (rule, n) in &self.counts {
            writeln!(f, "  {:>4}  {}", n, rule.describe())?;
        }
        Ok(())
    }
}

/// Normalises `doc` (OpenAPI 3.0 or 3.1, as JSON) to OpenAPI 3.0.3.
///
/// Returns the converted document and what was changed, or every construct
/// that could not be converted, each named by its JSON pointer.
pub fn normalize(doc: &Value) -> Result<(Value, Report), NormalizeError> {
    let mut n = Normalizer::default();
    let mut doc = doc.clone();
    n.document(&mut doc);
    if n.problems.is_empty() {
        Ok((doc, n.report))
    } else {
        Err(NormalizeError {
            problems: n.problems,
        })
    }
}

/// Keywords of JSON Schema 2020-12 that shape what a value may be and have no
/// OpenAPI 3.0 form. Dropping them would silently loosen the types, so they
/// are refused.
const STRUCTURAL_31: &[&str] = &[
    "prefixItems",
    "if",
    "then",
    "else",
    "dependentSchemas",
    "dependentRequired",
    "unevaluatedProperties",
    "unevaluatedItems",
    "patternProperties",
    "propertyNames",
    "contains",
    "minContains",
    "maxContains",
    "$dynamicRef",
    "$dynamicAnchor",
];

/// 3.1-only annotations that carry no type information: dropped.
const ANNOTATIONS_31: &[&str] = &[
    "$schema",
    "$id",
    "$anchor",
    "$comment",
    "$defs",
    "contentMediaType",
    "contentEncoding",
    "contentSchema",
];

/// Top-level members a 3.0 document does not have.
const TOP_LEVEL_31: &[&str] = &["webhooks", "jsonSchemaDialect"];

#[derive(Default)]
struct Normalizer {
    report: Report,
    problems: Vec<Unconvertible>,
    /// Union schemas to add to `components.schemas`, by name.
    new_schemas: BTreeMap<String, Value>,
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn child(ptr: &str, token: &str) -> String {
    format!("{ptr}/{}", escape(token))
}

fn is_null_schema(v: &Value) -> bool {
    v.as_object().is_some_and(|o| {
        o.get("type") == Some(&Value::String("null".into()))
            && o.keys()
                .all(|k| k == "type" || k == "title" || k == "description")
    })
}

impl Normalizer {
    fn refuse(&mut self, pointer: String, reason: impl Into<String>) {
        self.problems.push(Unconvertible {
            pointer,
            reason: reason.into(),
        });
    }

    fn document(&mut self, doc: &mut Value) {
        let Some(root) = doc.as_object_mut() else {
            self.refuse(String::new(), "the document is not a JSON object");
            return;
        };
        match root.get("openapi").and_then(Value::as_str) {
            Some(v) if v.starts_with("3.1.") => {
                root.insert("openapi".into(), json!("3.0.3"));
                self.report.hit(Rule::Version);
            }
            Some(v) if v.starts_with("3.0.") => {}
            Some(v) => self.refuse(
                "/openapi".into(),
                format!("unsupported OpenAPI version {v:?}"),
            ),
            None => self.refuse("/openapi".into(), "missing the `openapi` version field"),
        }
        for key in TOP_LEVEL_31 {
            if root.remove(*key).is_some() {
                self.report.hit(Rule::DroppedKeyword);
            }
        }
        if let Some(license) = root.get_mut("info").and_then(|i| i.get_mut("license"))
            && let Some(l) = license.as_object_mut()
            && l.remove("identifier").is_some()
        {
            self.report.hit(Rule::DroppedKeyword);
        }

        if let Some(components) = root.get_mut("components").and_then(Value::as_object_mut) {
            if components.remove("pathItems").is_some() {
                self.report.hit(Rule::DroppedKeyword);
            }
            if let Some(schemas) = components.get_mut("schemas").and_then(Value::as_object_mut) {
                for (name, schema) in schemas.iter_mut() {
                    self.schema(schema, &child("/components/schemas", name));
                }
            }
            for (section, walk) in [
                (
                    "parameters",
                    Self::parameter as fn(&mut Self, &mut Value, &str),
                ),
                ("responses", Self::response_schemas),
                ("requestBodies", Self::content_holder),
                ("headers", Self::parameter),
            ] {
                if let Some(items) = components.get_mut(section).and_then(Value::as_object_mut) {
                    for (name, item) in items.iter_mut() {
                        walk(self, item, &child(&child("/components", section), name));
                    }
                }
            }
        }

        if let Some(paths) = root.get_mut("paths").and_then(Value::as_object_mut) {
            for (path, item) in paths.iter_mut() {
                self.path_item(item, &child("/paths", path));
            }
        }

        if !self.new_schemas.is_empty() {
            let schemas = root
                .entry("components")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .and_then(|c| {
                    c.entry("schemas")
                        .or_insert_with(|| json!({}))
                        .as_object_mut()
                });
            match schemas {
                Some(schemas) => {
                    for (name, schema) in std::mem::take(&mut self.new_schemas) {
                        if schemas.contains_key(&name) {
                            self.refuse(
                                child("/components/schemas", &name),
                                "a union schema made for several response schemas would replace this schema of the same name",
                            );
                        } else {
                            schemas.insert(name, schema);
                        }
                    }
                }
                None => self.refuse("/components".into(), "`components` is not an object"),
            }
        }
    }

    fn path_item(&mut self, item: &mut Value, ptr: &str) {
        let Some(item) = item.as_object_mut() else {
            return;
        };
        if let Some(params) = item.get_mut("parameters").and_then(Value::as_array_mut) {
            for (i, p) in params.iter_mut().enumerate() {
                self.parameter(p, &child(&child(ptr, "parameters"), &i.to_string()));
            }
        }
        for method in [
            "get", "put", "post", "delete", "options", "head", "patch", "trace",
        ] {
            if let Some(op) = item.get_mut(method) {
                self.operation(op, &child(ptr, method));
            }
        }
    }

    fn parameter(&mut self, param: &mut Value, ptr: &str) {
        let optional = param.get("required") != Some(&Value::Bool(true));
        if let Some(schema) = param.get_mut("schema") {
            self.schema(schema, &child(ptr, "schema"));
            // FastAPI writes an optional parameter as `X | null`; in 3.0 an
            // absent parameter already says that, and progenitor would
            // otherwise wrap the value twice (`Option<Option<X>>`).
            if optional
                && let Some(s) = schema.as_object_mut()
                && s.remove("nullable").is_some()
            {
                self.report.hit(Rule::OptionalParameter);
            }
        }
        self.content_holder(param, ptr);
    }

    fn content_holder(&mut self, holder: &mut Value, ptr: &str) {
        if let Some(content) = holder.get_mut("content").and_then(Value::as_object_mut) {
            let cptr = child(ptr, "content");
            for (media, mt) in content.iter_mut() {
                if let Some(schema) = mt.get_mut("schema") {
                    self.schema(schema, &child(&child(&cptr, media), "schema"));
                }
            }
        }
    }

    fn response_schemas(&mut self, response: &mut Value, ptr: &str) {
        self.content_holder(response, ptr);
        if let Some(headers) = response.get_mut("headers").and_then(Value::as_object_mut) {
            for (name, h) in headers.iter_mut() {
                self.parameter(h, &child(&child(ptr, "headers"), name));
            }
        }
    }

    fn operation(&mut self, op: &mut Value, ptr: &str) {
        let op_id = op
            .get("operationId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let Some(op) = op.as_object_mut() else {
            return;
        };
        if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
            for (i, p) in params.iter_mut().enumerate() {
                self.parameter(p, &child(&child(ptr, "parameters"), &i.to_string()));
            }
        }
        if let Some(body) = op.get_mut("requestBody") {
            self.content_holder(body, &child(ptr, "requestBody"));
        }
        if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
            let rptr = child(ptr, "responses");
            for (code, r) in responses.iter_mut() {
                let this = child(&rptr, code);
                self.response_schemas(r, &this);
                self.single_media_type(r, &this);
            }
            let op_name = op_id.unwrap_or_else(|| ptr.to_owned());
            self.merge_responses(responses, &rptr, &op_name, true);
            self.merge_responses(responses, &rptr, &op_name, false);
        }
    }

    /// progenitor handles one media type per response; keep the JSON one.
    fn single_media_type(&mut self, response: &mut Value, ptr: &str) {
        let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) else {
            return;
        };
        if content.len() <= 1 {
            return;
        }
        let json_key = content
            .keys()
            .find(|k| k.as_str() == "application/json" || k.ends_with("+json"))
            .cloned();
        match json_key {
            Some(key) => {
                content.retain(|k, _| *k == key);
                self.report.hit(Rule::MediaTypes);
            }
            None => self.refuse(
                child(ptr, "content"),
                "several media types and none of them JSON: progenitor handles one per response",
            ),
        }
    }

    /// Makes every success (or every error) response of an operation share
    /// one schema, as progenitor requires.
    fn merge_responses(
        &mut self,
        responses: &mut Map<String, Value>,
        ptr: &str,
        op_id: &str,
        success: bool,
    ) {
        let in_class = |code: &str| {
            if success {
                code.starts_with('2')
            } else {
                code.starts_with('4') || code.starts_with('5') || code == "default"
            }
        };
        let schema_of = |r: &Value| -> Option<Value> {
            r.get("content")?
                .as_object()?
                .values()
                .next()?
                .get("schema")
                .cloned()
        };
        let mut distinct: Vec<Value> = Vec::new();
        let mut without_body: Vec<String> = Vec::new();
        for (code, r) in responses.iter() {
            if !in_class(code) {
                continue;
            }
            match schema_of(r) {
                Some(s) if !distinct.contains(&s) => distinct.push(s),
                Some(_) => {}
                None => without_body.push(code.clone()),
            }
        }
        let unified = match distinct.len() {
            0 => return,
            1 => {
                if without_body.is_empty() || !success {
                    distinct.remove(0)
                } else {
                    // A 2xx with a body beside a 2xx without one: the
                    // generator needs one success type, and inventing a
                    // body for a 204 would be a lie.
                    self.refuse(
                        child(ptr, &without_body[0]),
                        "a success response without a body beside success responses with one",
                    );
                    return;
                }
            }
            _ => {
                let name = union_name(op_id, &distinct, success);
                let descr = if success {
                    "Any of the success bodies of the operation (made by the normaliser)."
                } else {
                    "Any of the error bodies of the operation (made by the normaliser)."
                };
                self.new_schemas.insert(
                    name.clone(),
                    json!({ "description": descr, "oneOf": distinct }),
                );
                self.report.hit(if success {
                    Rule::SuccessSchemas
                } else {
                    Rule::ErrorSchemas
                });
                json!({ "$ref": format!("#/components/schemas/{name}") })
            }
        };
        for (code, r) in responses.iter_mut() {
            if !in_class(code) {
                continue;
            }
            let Some(r) = r.as_object_mut() else { continue };
            if r.contains_key("$ref") {
                continue;
            }
            let content = r.entry("content").or_insert_with(|| json!({}));
            let Some(content) = content.as_object_mut() else {
                continue;
            };
            if content.is_empty() {
                // An error status declared without a body: give it the
                // operation's error schema so the generator sees one type.
                // A body that does not match still reaches the caller raw.
                content.insert("application/json".into(), json!({}));
            }
            for mt in content.values_mut() {
                if let Some(mt) = mt.as_object_mut() {
                    mt.insert("schema".into(), unified.clone());
                }
            }
        }
    }

    /// Rewrites one schema (and everything below it) in place.
    fn schema(&mut self, schema: &mut Value, ptr: &str) {
        let Some(obj) = schema.as_object_mut() else {
            // `true`/`false` schemas are 3.1 (and 2019-09) forms.
            if schema.is_boolean() {
                self.refuse(ptr.to_owned(), "boolean schemas have no OpenAPI 3.0 form");
            }
            return;
        };

        for key in STRUCTURAL_31 {
            if obj.contains_key(*key) {
                self.refuse(
                    child(ptr, key),
                    format!("`{key}` has no OpenAPI 3.0 equivalent"),
                );
            }
        }
        for key in ANNOTATIONS_31 {
            if obj.remove(*key).is_some() {
                self.report.hit(Rule::DroppedKeyword);
            }
        }

        // Recurse first, so that unions below are already rewritten.
        for key in ["properties"] {
            if let Some(props) = obj.get_mut(key).and_then(Value::as_object_mut) {
                for (name, s) in props.iter_mut() {
                    self.schema(s, &child(&child(ptr, key), name));
                }
            }
        }
        for key in ["items", "not"] {
            if let Some(s) = obj.get_mut(key) {
                self.schema(s, &child(ptr, key));
            }
        }
        if let Some(s) = obj.get_mut("additionalProperties")
            && s.is_object()
        {
            self.schema(s, &child(ptr, "additionalProperties"));
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(list) = obj.get_mut(key).and_then(Value::as_array_mut) {
                // A null member of a union is removed below, not converted.
                for (i, s) in list
                    .iter_mut()
                    .enumerate()
                    .filter(|(_, s)| !is_null_schema(s))
                {
                    self.schema(s, &child(&child(ptr, key), &i.to_string()));
                }
            }
        }

        self.nullable_type_array(obj, ptr);
        for key in ["anyOf", "oneOf"] {
            self.nullable_union(obj, key, ptr);
        }
        if obj.get("type") == Some(&json!("null")) {
            self.refuse(
                child(ptr, "type"),
                "a schema whose only type is null has no OpenAPI 3.0 form",
            );
        }

        if let Some(value) = obj.remove("const") {
            if !obj.contains_key("type")
                && let Some(t) = json_type(&value)
            {
                obj.insert("type".into(), json!(t));
            }
            obj.insert("enum".into(), json!([value]));
            self.report.hit(Rule::Const);
        }
        if let Some(examples) = obj.get("examples").cloned() {
            match examples {
                Value::Array(list) => {
                    obj.remove("examples");
                    if let Some(first) = list.into_iter().next() {
                        obj.entry("example").or_insert(first);
                    }
                    self.report.hit(Rule::Examples);
                }
                _ => self.refuse(
                    child(ptr, "examples"),
                    "`examples` in a schema must be an array",
                ),
            }
        }
        self.exclusive_bound(obj, ptr, "exclusiveMinimum", "minimum", true);
        self.exclusive_bound(obj, ptr, "exclusiveMaximum", "maximum", false);
    }

    fn nullable_type_array(&mut self, obj: &mut Map<String, Value>, ptr: &str) {
        let Some(Value::Array(types)) = obj.get("type") else {
            return;
        };
        let non_null: Vec<Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .cloned()
            .collect();
        let had_null = non_null.len() != types.len();
        match non_null.as_slice() {
            [one] => {
                obj.insert("type".into(), one.clone());
                if had_null {
                    obj.insert("nullable".into(), json!(true));
                }
                self.report.hit(Rule::NullableTypeArray);
            }
            [] => self.refuse(
                child(ptr, "type"),
                "a schema whose only type is null has no OpenAPI 3.0 form",
            ),
            _ => self.refuse(
                child(ptr, "type"),
                "a type array with several non-null types has no OpenAPI 3.0 form (write it as anyOf)",
            ),
        }
    }

    fn nullable_union(&mut self, obj: &mut Map<String, Value>, key: &str, ptr: &str) {
        let Some(Value::Array(members)) = obj.get(key) else {
            return;
        };
        if !members.iter().any(is_null_schema) {
            return;
        }
        let rest: Vec<Value> = members
            .iter()
            .filter(|m| !is_null_schema(m))
            .cloned()
            .collect();
        obj.remove(key);
        match rest.len() {
            0 => {
                self.refuse(
                    child(ptr, key),
                    "a union whose only member is null has no OpenAPI 3.0 form",
                );
                return;
            }
            1 => {
                let member = rest.into_iter().next().unwrap_or_default();
                let is_ref = member.get("$ref").is_some();
                if is_ref {
                    // 3.0 ignores siblings of `$ref`; `allOf` carries it
                    // together with `nullable`.
                    obj.insert("allOf".into(), json!([member]));
                } else if let Value::Object(m) = member {
                    for (k, v) in m {
                        if obj.contains_key(&k) && k != "type" {
                            // The union's own title/description/default win,
                            // as FastAPI puts them there.
                            continue;
                        }
                        obj.insert(k, v);
                    }
                }
            }
            _ => {
                obj.insert(key.into(), Value::Array(rest));
            }
        }
        obj.insert("nullable".into(), json!(true));
        self.report.hit(Rule::NullableUnion);
    }

    fn exclusive_bound(
        &mut self,
        obj: &mut Map<String, Value>,
        ptr: &str,
        exclusive: &str,
        inclusive: &str,
        lower: bool,
    ) {
        let Some(bound) = obj.get(exclusive).cloned() else {
            return;
        };
        match bound {
            Value::Bool(true) if !obj.contains_key(inclusive) => self.refuse(
                child(ptr, exclusive),
                format!("`{exclusive}: true` without `{inclusive}`"),
            ),
            Value::Bool(_) => {}
            Value::Number(n) => {
                let Some(x) = n.as_f64() else { return };
                // Where both are given, the stricter bound wins.
                let keep_inclusive = obj
                    .get(inclusive)
                    .and_then(Value::as_f64)
                    .is_some_and(|i| if lower { i > x } else { i < x });
                if keep_inclusive {
                    obj.remove(exclusive);
                } else {
                    obj.insert(inclusive.into(), Value::Number(n));
                    obj.insert(exclusive.into(), json!(true));
                }
                self.report.hit(Rule::ExclusiveBound);
            }
            _ => self.refuse(
                child(ptr, exclusive),
                format!("`{exclusive}` must be a number or a boolean"),
            ),
        }
    }
}

fn json_type(v: &Value) -> Option<&'static str> {
    Some(match v {
        Value::String(_) => "string",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => return None,
    })
}

/// The name of a union schema: the member names joined with `Or` where every
/// member is a reference, else derived from the operation.
fn union_name(op_id: &str, members: &[Value], success: bool) -> String {
    let refs: Option<BTreeSet<&str>> = members
        .iter()
        .map(|m| m.get("$ref")?.as_str()?.rsplit('/').next())
        .collect();
    match refs {
        Some(names) => names.into_iter().collect::<Vec<_>>().join("Or"),
        None => {
            let camel: String = op_id
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(|w| {
                    let mut cs = w.chars();
                    cs.next()
                        .map(|c| c.to_ascii_uppercase().to_string() + cs.as_str())
                        .unwrap_or_default()
                })
                .collect();
            format!("{camel}{}", if success { "Success" } else { "Failure" })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm_schema(s: Value) -> Result<Value, NormalizeError> {
        let doc = json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
            "paths": {}, "components": {"schemas": {"S": s}}});
        normalize(&doc).map(|(d, _)| d["components"]["schemas"]["S"].clone())
    }

    #[test]
    fn nullable_ref_keeps_siblings_and_uses_all_of() {
        let out = norm_schema(json!({
            "anyOf": [{"$ref": "#/components/schemas/X"}, {"type": "null"}],
            "description": "d"
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({"description": "d", "allOf": [{"$ref": "#/components/schemas/X"}], "nullable": true})
        );
    }

    #[test]
    fn nullable_inline_member_is_merged() {
        let out = norm_schema(json!({
            "anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}],
            "title": "T"
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({"title": "T", "type": "string", "maxLength": 3, "nullable": true})
        );
    }

    #[test]
    fn exclusive_bound_becomes_boolean_form() {
        let out =
            norm_schema(json!({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1.5}))
                .unwrap();
        assert_eq!(
            out,
            json!({"type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 1.5, "exclusiveMaximum": true})
        );
    }

    #[test]
    fn stricter_inclusive_bound_wins() {
        let out =
            norm_schema(json!({"type": "integer", "minimum": 5, "exclusiveMinimum": 1})).unwrap();
        assert_eq!(out, json!({"type": "integer", "minimum": 5}));
    }

    #[test]
    fn null_only_schema_is_refused_with_pointer() {
        let err = norm_schema(json!({"type": "object", "properties": {"gone": {"type": "null"}}}))
            .unwrap_err();
        assert_eq!(
            err.problems[0].pointer,
            "/components/schemas/S/properties/gone/type"
        );
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        let doc = json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
            "paths": {"/a/{b}": {"get": {"responses": {"200": {"description": "ok",
              "content": {"application/json": {"schema": {"type": ["null"]}}}}}}}}});
        let err = normalize(&doc).unwrap_err();
        assert_eq!(
            err.problems[0].pointer,
            "/paths/~1a~1{b}/get/responses/200/content/application~1json/schema/type"
        );
    }

    #[test]
    fn version_other_than_3_is_refused() {
        let err = normalize(&json!({"swagger": "2.0"})).unwrap_err();
        assert_eq!(err.problems[0].pointer, "/openapi");
    }
}
