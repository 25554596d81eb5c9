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
    /// Several error schemas on one operation become one union schema, and
    /// error responses with a non-JSON body beside JSON ones are read as JSON
    /// (a body that does not match still reaches the caller raw).
    ErrorSchemas,
    /// Several 2xx schemas on one operation become one union schema.
    SuccessSchemas,
    /// A body with several media types keeps only its JSON one, and a
    /// `+json` response media type is read as `application/json`.
    MediaTypes,
    /// A 3.1-only annotation with no 3.0 meaning is dropped.
    DroppedKeyword,
    /// `nullable` on an optional parameter is dropped: absence already says null.
    OptionalParameter,
    /// A `default` response beside 2xx responses is dropped: progenitor would
    /// read it as a success as well as an error. A status the document does
    /// not list still reaches the caller, as an unexpected response.
    DefaultResponse,
    /// The `title` of an inline schema is dropped when another inline schema
    /// or a component has the same name: the generator names types by title
    /// and silently merges two types of one name.
    SharedTitle,
}

impl Rule {
    /// Every rule, in report order.
    pub const ALL: [Rule; 13] = [
        Rule::Version,
        Rule::NullableUnion,
        Rule::NullableTypeArray,
        Rule::Const,
        Rule::Examples,
        Rule::ExclusiveBound,
        Rule::ErrorSchemas,
        Rule::SuccessSchemas,
        Rule::MediaTypes,
        Rule::DroppedKeyword,
        Rule::OptionalParameter,
        Rule::DefaultResponse,
        Rule::SharedTitle,
    ];

    /// A one-line description, as the report prints it.
    pub fn describe(self) -> &'static str {
        match self {
            Rule::Version => "openapi 3.1.x -> 3.0.3",
            Rule::NullableUnion => "anyOf/oneOf with null member -> nullable",
            Rule::NullableTypeArray => "type array with \"null\" -> nullable",
            Rule::Const => "const -> one-value enum",
            Rule::Examples => "examples -> example",
            Rule::ExclusiveBound => "numeric exclusiveMinimum/Maximum -> boolean form",
            Rule::ErrorSchemas => "several error schemas or body kinds -> one",
            Rule::SuccessSchemas => "several 2xx schemas -> one",
            Rule::MediaTypes => "several body media types or +json -> application/json",
            Rule::DroppedKeyword => "3.1-only annotation dropped",
            Rule::OptionalParameter => "nullable optional parameter -> optional parameter",
            Rule::DefaultResponse => "default response beside 2xx responses dropped",
            Rule::SharedTitle => "inline schema title shared with another type dropped",
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

        self.shared_titles(root);
    }

    /// Drops the `title` of every inline schema whose name another inline
    /// schema or a component also has. progenitor's type generator names an
    /// inline type by its title and, when two types get one name, keeps the
    /// first and silently uses it for both (FastAPI titles every property,
    /// so two `kind` properties with different enums would become one type).
    /// Without a title the type is named after its parent and property.
    fn shared_titles(&mut self, root: &mut Map<String, Value>) {
        let components: BTreeSet<String> = root
            .get("components")
            .and_then(|c| c.get("schemas"))
            .and_then(Value::as_object)
            .map(|s| s.keys().map(|k| title_key(k)).collect())
            .unwrap_or_default();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        visit_inline_schemas(root, &mut |schema| {
            if let Some(title) = schema.get("title").and_then(Value::as_str) {
                *seen.entry(title_key(title)).or_default() += 1;
            }
        });
        let mut dropped = 0;
        visit_inline_schemas(root, &mut |schema| {
            let shared = schema
                .get("title")
                .and_then(Value::as_str)
                .map(title_key)
                .is_some_and(|k| components.contains(&k) || seen.get(&k).is_some_and(|n| *n > 1));
            if shared {
                schema.remove("title");
                dropped += 1;
            }
        });
        for _ in 0..dropped {
            self.report.hit(Rule::SharedTitle);
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
            let bptr = child(ptr, "requestBody");
            self.content_holder(body, &bptr);
            self.request_media_type(body, &bptr);
        }
        if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
            let rptr = child(ptr, "responses");
            for (code, r) in responses.iter_mut() {
                let this = child(&rptr, code);
                self.response_schemas(r, &this);
                self.response_media_type(r, &this);
            }
            // progenitor reads `default` as a success and as an error at
            // once, so beside a 2xx response it needs both to share one
            // type: drop it, and let unlisted statuses reach the caller as
            // unexpected responses.
            if responses.contains_key("default") && responses.keys().any(|c| c.starts_with('2')) {
                responses.remove("default");
                self.report.hit(Rule::DefaultResponse);
            }
            let op_name = op_id.unwrap_or_else(|| ptr.to_owned());
            self.merge_responses(responses, &rptr, &op_name, true);
            self.merge_responses(responses, &rptr, &op_name, false);
        }
    }

    /// progenitor takes one request media type (and panics on more): keep
    /// the JSON one.
    fn request_media_type(&mut self, body: &mut Value, ptr: &str) {
        let Some(content) = body.get_mut("content").and_then(Value::as_object_mut) else {
            return;
        };
        if content.len() <= 1 {
            return;
        }
        let json_key = content
            .keys()
            .find(|k| is_plain_json(k))
            .or_else(|| content.keys().find(|k| is_json_media(k)))
            .cloned();
        match json_key {
            Some(key) => {
                content.retain(|k, _| *k == key);
                self.report.hit(Rule::MediaTypes);
            }
            None => self.refuse(
                child(ptr, "content"),
                "several request media types and none of them JSON: progenitor takes one",
            ),
        }
    }

    /// progenitor types a response body only under `application/json` and
    /// handles one media type per response: keep the JSON one, under that
    /// name.
    fn response_media_type(&mut self, response: &mut Value, ptr: &str) {
        let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) else {
            return;
        };
        if content.len() > 1 {
            let json_key = content
                .keys()
                .find(|k| is_plain_json(k))
                .or_else(|| content.keys().find(|k| is_json_media(k)))
                .cloned();
            match json_key {
                Some(key) => {
                    content.retain(|k, _| *k == key);
                    self.report.hit(Rule::MediaTypes);
                }
                None => {
                    self.refuse(
                        child(ptr, "content"),
                        "several media types and none of them JSON: progenitor handles one per response",
                    );
                    return;
                }
            }
        }
        // `application/problem+json` and the like: JSON that progenitor
        // would otherwise hand over as an untyped byte stream.
        let suffixed = content
            .keys()
            .find(|k| is_json_media(k) && !is_plain_json(k))
            .cloned();
        if let Some(key) = suffixed
            && let Some(mt) = content.remove(&key)
        {
            content.insert("application/json".into(), mt);
            self.report.hit(Rule::MediaTypes);
        }
    }

    /// Makes every success (or every error) response of an operation share
    /// one kind of body and one schema, as progenitor requires (it asserts
    /// one response type per class and panics otherwise).
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
        // A response given by `$ref` is left as it is.
        let members: Vec<(String, BodyKind)> = responses
            .iter()
            .filter(|(code, r)| in_class(code) && r.get("$ref").is_none())
            .map(|(code, r)| (code.clone(), body_kind(r)))
            .collect();
        let mut distinct: Vec<Value> = Vec::new();
        for (code, kind) in &members {
            if *kind == BodyKind::Json {
                let schema = responses
                    .get(code)
                    .and_then(json_schema)
                    .unwrap_or_else(|| json!({}));
                if !distinct.contains(&schema) {
                    distinct.push(schema);
                }
            }
        }
        let Some(&(_, first_kind)) = members.first() else {
            return;
        };
        let uniform = members.iter().all(|(_, k)| *k == first_kind);
        if success {
            if !uniform {
                // The generator needs one success type, and inventing a
                // body for a 204 (or reading CSV as JSON) would be a lie.
                let reference = if distinct.is_empty() {
                    first_kind
                } else {
                    BodyKind::Json
                };
                if let Some((code, kind)) = members.iter().find(|(_, k)| *k != reference) {
                    self.refuse(
                        child(ptr, code),
                        format!(
                            "a success response {} beside a success response {}: the generator reads every success response as one type",
                            kind.describe(),
                            reference.describe()
                        ),
                    );
                }
                return;
            }
            if first_kind != BodyKind::Json {
                return;
            }
        } else if uniform && first_kind != BodyKind::Json {
            // All raw or all empty: one kind already.
            return;
        }
        let made_union = distinct.len() > 1;
        let unified = match distinct.len() {
            // Error bodies of mixed kinds and none of them JSON.
            0 => json!({}),
            1 => distinct.remove(0),
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
        let mut converted = false;
        for (code, kind) in &members {
            let Some(r) = responses.get_mut(code).and_then(Value::as_object_mut) else {
                continue;
            };
            match kind {
                BodyKind::Json => {
                    if let Some(content) = r.get_mut("content").and_then(Value::as_object_mut) {
                        for mt in content.values_mut() {
                            if let Some(mt) = mt.as_object_mut() {
                                mt.insert("schema".into(), unified.clone());
                            }
                        }
                    }
                }
                // An error status declared without a body, or with a
                // non-JSON one, beside JSON errors: give it the operation's
                // error schema so the generator sees one type. A body that
                // does not match still reaches the caller raw.
                BodyKind::Empty | BodyKind::Other => {
                    converted |= *kind == BodyKind::Other;
                    r.insert(
                        "content".into(),
                        json!({ "application/json": { "schema": unified.clone() } }),
                    );
                }
            }
        }
        if converted && !made_union {
            self.report.hit(Rule::ErrorSchemas);
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

/// The name a title gives a type, as far as collisions go: letters and
/// digits only, case folded (`"Webhook Url"` and `WebhookUrl` collide).
fn title_key(title: &str) -> String {
    title
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Calls `f` on every schema of the document that is not itself a
/// component schema: properties, items and members below components, and
/// the schemas of parameters, headers and bodies.
fn visit_inline_schemas(root: &mut Map<String, Value>, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    if let Some(components) = root.get_mut("components").and_then(Value::as_object_mut) {
        if let Some(schemas) = components.get_mut("schemas").and_then(Value::as_object_mut) {
            for schema in schemas.values_mut() {
                if let Some(obj) = schema.as_object_mut() {
                    visit_schema_children(obj, f);
                }
            }
        }
        for section in ["parameters", "headers", "responses", "requestBodies"] {
            if let Some(items) = components.get_mut(section).and_then(Value::as_object_mut) {
                for item in items.values_mut() {
                    visit_holder(item, f);
                }
            }
        }
    }
    let Some(paths) = root.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for (key, value) in item.iter_mut() {
            if key == "parameters" {
                for p in value.as_array_mut().into_iter().flatten() {
                    visit_holder(p, f);
                }
                continue;
            }
            let Some(op) = value.as_object_mut() else {
                continue;
            };
            for p in op
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                visit_holder(p, f);
            }
            if let Some(body) = op.get_mut("requestBody") {
                visit_holder(body, f);
            }
            for r in op
                .get_mut("responses")
                .and_then(Value::as_object_mut)
                .into_iter()
                .flat_map(|r| r.values_mut())
            {
                visit_holder(r, f);
            }
        }
    }
}

/// A parameter, header, body or response: its `schema`, the schemas of its
/// `content`, and those of its `headers`.
fn visit_holder(holder: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    let Some(holder) = holder.as_object_mut() else {
        return;
    };
    if let Some(schema) = holder.get_mut("schema") {
        visit_schema(schema, f);
    }
    for mt in holder
        .get_mut("content")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|c| c.values_mut())
    {
        if let Some(schema) = mt.get_mut("schema") {
            visit_schema(schema, f);
        }
    }
    for h in holder
        .get_mut("headers")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|h| h.values_mut())
    {
        visit_holder(h, f);
    }
}

fn visit_schema(schema: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    if let Some(obj) = schema.as_object_mut() {
        f(obj);
        visit_schema_children(obj, f);
    }
}

fn visit_schema_children(obj: &mut Map<String, Value>, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
        for s in props.values_mut() {
            visit_schema(s, f);
        }
    }
    for key in ["items", "not", "additionalProperties"] {
        if let Some(s) = obj.get_mut(key) {
            visit_schema(s, f);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for s in obj
            .get_mut(key)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            visit_schema(s, f);
        }
    }
}

/// How progenitor reads a response body, by its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    /// `application/json`: decoded into the response type.
    Json,
    /// Any other media type: handed over as a byte stream.
    Other,
    /// No content: an empty response.
    Empty,
}

impl BodyKind {
    fn describe(self) -> &'static str {
        match self {
            BodyKind::Json => "with a JSON body",
            BodyKind::Other => "with a non-JSON body",
            BodyKind::Empty => "without a body",
        }
    }
}

/// `application/json`, with or without parameters: what progenitor types.
fn is_plain_json(media_type: &str) -> bool {
    let base = media_type.split(';').next().unwrap_or_default().trim();
    base.eq_ignore_ascii_case("application/json")
}

/// Any JSON media type, `application/problem+json` and the like included.
fn is_json_media(media_type: &str) -> bool {
    let base = media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    base == "application/json" || base.ends_with("+json")
}

fn body_kind(response: &Value) -> BodyKind {
    match response.get("content").and_then(Value::as_object) {
        Some(content) if content.keys().any(|k| is_plain_json(k)) => BodyKind::Json,
        Some(content) if !content.is_empty() => BodyKind::Other,
        _ => BodyKind::Empty,
    }
}

/// The schema of a response's JSON body, if it gives one.
fn json_schema(response: &Value) -> Option<Value> {
    response
        .get("content")?
        .as_object()?
        .iter()
        .find(|(k, _)| is_plain_json(k))?
        .1
        .get("schema")
        .cloned()
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

    fn op_doc(op: Value) -> Value {
        json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
            "paths": {"/x": {"post": op}},
            "components": {"schemas": {"E": {"type": "object"}, "F": {"type": "object"}}}})
    }

    fn json_body(schema: Value) -> Value {
        json!({"description": "d", "content": {"application/json": {"schema": schema}}})
    }

    #[test]
    fn default_beside_success_is_dropped() {
        // progenitor counts `default` as a success and an error at once and
        // asserts one type per class: 200 String and default E panicked.
        let (doc, report) = normalize(&op_doc(json!({"operationId": "x", "responses": {
            "200": json_body(json!({"type": "string"})),
            "default": json_body(json!({"$ref": "#/components/schemas/E"}))
        }})))
        .unwrap();
        assert_eq!(report.count(Rule::DefaultResponse), 1);
        assert!(
            doc["paths"]["/x"]["post"]["responses"]
                .get("default")
                .is_none()
        );
    }

    #[test]
    fn default_alone_is_kept_as_the_error_schema() {
        let (doc, report) = normalize(&op_doc(json!({"operationId": "x", "responses": {
            "404": {"description": "nf"},
            "default": json_body(json!({"$ref": "#/components/schemas/E"}))
        }})))
        .unwrap();
        assert_eq!(report.count(Rule::DefaultResponse), 0);
        let r = &doc["paths"]["/x"]["post"]["responses"];
        assert_eq!(r["default"]["content"], r["404"]["content"]);
    }

    #[test]
    fn non_json_error_beside_json_errors_is_read_as_json() {
        // A text/plain 500 beside a JSON 404 gave progenitor a raw and a
        // typed error, and it panicked.
        let (doc, report) = normalize(&op_doc(json!({"operationId": "x", "responses": {
            "200": json_body(json!({"type": "string"})),
            "404": json_body(json!({"$ref": "#/components/schemas/E"})),
            "500": {"description": "ise", "content": {"text/plain": {"schema": {"type": "string"}}}}
        }})))
        .unwrap();
        assert_eq!(report.count(Rule::ErrorSchemas), 1);
        assert_eq!(
            doc["paths"]["/x"]["post"]["responses"]["500"]["content"],
            json!({"application/json": {"schema": {"$ref": "#/components/schemas/E"}}})
        );
    }

    #[test]
    fn raw_and_empty_errors_become_one_any_json_type() {
        let (doc, _) = normalize(&op_doc(json!({"operationId": "x", "responses": {
            "200": json_body(json!({"type": "string"})),
            "404": {"description": "nf"},
            "500": {"description": "ise", "content": {"text/plain": {}}}
        }})))
        .unwrap();
        let r = &doc["paths"]["/x"]["post"]["responses"];
        for code in ["404", "500"] {
            assert_eq!(
                r[code]["content"],
                json!({"application/json": {"schema": {}}}),
                "{code}"
            );
        }
    }

    #[test]
    fn problem_json_is_read_as_application_json() {
        let (doc, report) = normalize(&op_doc(json!({"operationId": "x", "responses": {
            "200": json_body(json!({"type": "string"})),
            "404": {"description": "nf", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/F"}}}},
            "500": json_body(json!({"$ref": "#/components/schemas/E"}))
        }})))
        .unwrap();
        assert_eq!(report.count(Rule::MediaTypes), 1);
        assert_eq!(report.count(Rule::ErrorSchemas), 1);
        assert_eq!(
            doc["paths"]["/x"]["post"]["responses"]["404"]["content"],
            json!({"application/json": {"schema": {"$ref": "#/components/schemas/EOrF"}}})
        );
    }

    #[test]
    fn request_body_keeps_its_json_media_type() {
        // progenitor panics (`todo!`) on a body with two media types.
        let (doc, report) = normalize(&op_doc(json!({"operationId": "x",
            "requestBody": {"content": {
                "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/E"}},
                "application/json": {"schema": {"$ref": "#/components/schemas/E"}}
            }},
            "responses": {"200": json_body(json!({"type": "string"}))}
        })))
        .unwrap();
        assert_eq!(report.count(Rule::MediaTypes), 1);
        let content = doc["paths"]["/x"]["post"]["requestBody"]["content"]
            .as_object()
            .unwrap();
        assert_eq!(content.keys().collect::<Vec<_>>(), ["application/json"]);
    }

    #[test]
    fn json_response_without_schema_gets_an_any_schema() {
        // progenitor panics (`todo!`) on a JSON media type without a schema.
        let (doc, _) = normalize(&op_doc(json!({"operationId": "x", "responses": {
            "200": {"description": "ok", "content": {"application/json": {}}}
        }})))
        .unwrap();
        assert_eq!(
            doc["paths"]["/x"]["post"]["responses"]["200"]["content"]["application/json"],
            json!({"schema": {}})
        );
    }

    #[test]
    fn success_bodies_of_different_kinds_are_refused() {
        let err = normalize(&op_doc(json!({"operationId": "x", "responses": {
            "200": json_body(json!({"type": "string"})),
            "206": {"description": "part", "content": {"text/csv": {"schema": {"type": "string"}}}}
        }})))
        .unwrap_err();
        assert_eq!(err.problems[0].pointer, "/paths/~1x/post/responses/206");
        assert!(err.problems[0].reason.contains("non-JSON"));
    }

    #[test]
    fn shared_inline_titles_are_dropped() {
        // typify names inline types by title and reuses the first type of a
        // name: Square.kind was typed as Circle's one-value enum.
        let doc = json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {},
        "components": {"schemas": {
            "Circle": {"type": "object", "properties": {"kind": {"const": "circle", "title": "Kind"}}},
            "Square": {"type": "object", "properties": {"kind": {"const": "square", "title": "Kind"},
                "side": {"type": "integer", "title": "Side"}}},
            "Owner": {"type": "object"},
            "Pet": {"type": "object", "properties": {"owner": {"type": "object", "title": "owner"}}}
        }}});
        let (doc, report) = normalize(&doc).unwrap();
        assert_eq!(report.count(Rule::SharedTitle), 3);
        let s = &doc["components"]["schemas"];
        assert!(s["Circle"]["properties"]["kind"].get("title").is_none());
        assert!(s["Square"]["properties"]["kind"].get("title").is_none());
        // Unique titles stay; a title naming a component does not.
        assert_eq!(s["Square"]["properties"]["side"]["title"], "Side");
        assert!(s["Pet"]["properties"]["owner"].get("title").is_none());
    }

    #[test]
    fn version_other_than_3_is_refused() {
        let err = normalize(&json!({"swagger": "2.0"})).unwrap_err();
        assert_eq!(err.problems[0].pointer, "/openapi");
    }
}
