//! Turns an upstream OpenAPI 3.1 document (FastAPI's form) into the OpenAPI
//! 3.0.3 subset that progenitor 0.15 accepts.
//!
//! progenitor rejects 3.1 documents outright and panics (`todo!`) on
//! constructs such as `{"type": "null"}`, so every rewrite happens here, on
//! plain JSON, before the generator sees the document. What the generator
//! cannot express is converted, degraded or left out, each named in the
//! [`Report`]; form bodies (`forms`) are described for the xtask's own
//! generator ([`crate::form_methods`]). Only what cannot mean anything here
//! (a `$ref` into another file, another OpenAPI version) is refused, with
//! the JSON pointer of the offending value, never passed through to a
//! generator panic.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value, json};

mod dangling;
mod forms;
mod rust_names;

pub use forms::{FORM_EXTENSION, WIRE_NAME_EXTENSION};

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
    /// An operation the generator cannot express (a `multipart/form-data`
    /// upload, a required cookie parameter..) is left out of the client,
    /// named in the report's warnings, so the rest of the API generates.
    DroppedOperation,
    /// An optional parameter the generator cannot express (a cookie, a
    /// `deepObject`, one described by `content`, one typed as a model) is
    /// left out of its operation, named in the warnings.
    DroppedParameter,
    /// A parameter typed as a union of scalars (`[date-time, date]`,
    /// `[uuid, string]`) is typed as a string: on the wire it is text either
    /// way, and typify would make it an enum the generator cannot send. One
    /// of a value or a list of them (`[string, array of string]`) is a list.
    ParameterAsString,
    /// A `default` that typify cannot render (of the wrong JSON type, not
    /// among its enum's values, or on a union) is dropped, named.
    DroppedDefault,
    /// `prefixItems` (a tuple) becomes `items`: exact when every position has
    /// one schema, else a union of the positions' schemas (named).
    Tuple,
    /// `true`, or a schema whose only type is null, becomes an untyped value.
    UntypedValue,
    /// `type: [A, B]` with several non-null types, or an untyped enum of
    /// values of several types, becomes `anyOf`.
    TypeArrayUnion,
    /// A missing `operationId` is made from the method and path, and one
    /// that gives the same method name as another is made unique.
    OperationId,
    /// A `pattern` in PCRE-only syntax (`(?P<name>..)`) is rewritten for the
    /// ECMAScript engine the generated code uses, or dropped, named, when it
    /// cannot be.
    Pattern,
    /// A string enum whose values give no distinct Rust names (`[" ", ","]`)
    /// becomes a plain string, named.
    EnumAsString,
    /// In a union, members that accept anything move last: the untagged
    /// enum the generator makes tries its variants in order.
    UnionOrder,
    /// A schema with both `anyOf` and `oneOf` holds them under `allOf`.
    AnyOfAndOneOf,
    /// A component schema whose type name is a Rust prelude name
    /// (`Default`, `Option`..) or another component's (`foo_bar` beside
    /// `FooBar`) is renamed `<name>Schema`, with every reference to it.
    RenamedSchema,
    /// A required field the document left out is filled (`info.version`, a
    /// response `description`), and a draft-3 `required: true` inside a
    /// property moves to its parent's `required` list.
    Repaired,
    /// A success response of another body kind than the operation's other
    /// success responses (a 204 beside a JSON 200) is dropped, named: it
    /// reaches the caller as an unexpected response.
    MixedSuccess,
    /// A component that is a nullable union (object, enum) keeps the null,
    /// and its value moves to a new component `<Name>Variants`
    /// (`<Name>Value`): typify gave both the nullable wrapper and the value
    /// the component's name.
    NullableComponent,
    /// An untitled inline property schema whose type name (parent and
    /// property, as typify makes it) is a component's name gets a title of
    /// its own: two types of one name do not compile.
    InlineNameClash,
    /// A streaming response (NDJSON, server-sent events) the generator can
    /// only hand over as bytes, or drops beside a JSON form, is named.
    StreamingResponse,
    /// A status code covered by a range of its class (`202` beside `2XX`)
    /// is dropped: the generator matches the range first, so the code
    /// could never be reached, and after merging both decode one type.
    RangeResponse,
    /// An operation whose request body is a form (`multipart/form-data`,
    /// or `application/x-www-form-urlencoded` without a JSON alternative)
    /// is generated by the xtask beside progenitor's methods: its text
    /// fields typed from the form's schema, its binary fields file parts.
    FormOperation,
    /// An operation whose body may be a JSON document or a
    /// `multipart/form-data` upload gets a second method, `<name>_multipart`,
    /// for the upload.
    MultipartTwin,
    /// An `application/x-www-form-urlencoded` form with a binary field is
    /// sent as `multipart/form-data`, the only form encoding a file part
    /// travels in.
    FormAsMultipart,
    /// A `$ref` that points at nothing in the document: a schema becomes an
    /// untyped value, a response an untyped byte stream, and an operation
    /// whose parameter or body is missing is left out, each named.
    DanglingRef,
    /// A parameter whose Rust name is taken (by another parameter, or by
    /// the builder's own `new`, `send`, `body`..) gets another Rust name;
    /// its name on the wire is kept.
    RenamedParameter,
    /// A union of any string and strings of an enum (Stainless's open
    /// enum, `anyOf: [string, {enum: [..]}]`) is a string: typify makes
    /// the union a struct of flattened options that cannot hold a string.
    OpenEnum,
}

impl Rule {
    /// Every rule, in report order.
    pub const ALL: [Rule; 38] = [
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
        Rule::DroppedOperation,
        Rule::DroppedParameter,
        Rule::ParameterAsString,
        Rule::DroppedDefault,
        Rule::Tuple,
        Rule::UntypedValue,
        Rule::TypeArrayUnion,
        Rule::OperationId,
        Rule::Pattern,
        Rule::EnumAsString,
        Rule::UnionOrder,
        Rule::AnyOfAndOneOf,
        Rule::RenamedSchema,
        Rule::Repaired,
        Rule::MixedSuccess,
        Rule::NullableComponent,
        Rule::InlineNameClash,
        Rule::StreamingResponse,
        Rule::RangeResponse,
        Rule::FormOperation,
        Rule::MultipartTwin,
        Rule::FormAsMultipart,
        Rule::DanglingRef,
        Rule::RenamedParameter,
        Rule::OpenEnum,
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
            Rule::DroppedOperation => "operation the generator cannot express dropped",
            Rule::DroppedParameter => "optional parameter the generator cannot express dropped",
            Rule::ParameterAsString => "parameter typed as a union of scalars -> string or list",
            Rule::DroppedDefault => "default the generator cannot render dropped",
            Rule::Tuple => "prefixItems (tuple) -> items",
            Rule::UntypedValue => "`true` or null-only schema -> untyped value",
            Rule::TypeArrayUnion => "type array or untyped enum of several types -> anyOf",
            Rule::OperationId => "missing or clashing operationId made",
            Rule::Pattern => "PCRE-only pattern rewritten or dropped",
            Rule::EnumAsString => "enum without distinct Rust names -> string",
            Rule::UnionOrder => "catch-all union member moved last",
            Rule::AnyOfAndOneOf => "anyOf and oneOf on one schema -> allOf of both",
            Rule::RenamedSchema => "schema named like a prelude item or another schema renamed",
            Rule::Repaired => "missing required field filled or misplaced `required` moved",
            Rule::MixedSuccess => "success response of another body kind dropped",
            Rule::NullableComponent => {
                "nullable union component -> nullable reference to its union"
            }
            Rule::InlineNameClash => "inline type named like a component titled apart",
            Rule::StreamingResponse => "streaming response typed as bytes or dropped",
            Rule::RangeResponse => "status code covered by a range of its class dropped",
            Rule::FormOperation => {
                "form (multipart or urlencoded) operation generated by the xtask"
            }
            Rule::MultipartTwin => "multipart upload method beside an operation's JSON one",
            Rule::FormAsMultipart => "urlencoded form with a file part sent as multipart",
            Rule::DanglingRef => {
                "dangling $ref degraded to an untyped value (or its operation dropped)"
            }
            Rule::RenamedParameter => "parameter with a taken Rust name renamed (wire name kept)",
            Rule::OpenEnum => "union of any string and enum strings -> string",
        }
    }
}

/// Something of the document the generated client leaves out, named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The operation (`METHOD /path (operationId)`) or JSON pointer.
    pub place: String,
    /// What was dropped.
    pub dropped: String,
    /// What the user of the client loses.
    pub loss: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} dropped: {}", self.place, self.dropped, self.loss)
    }
}

/// What the normaliser changed, rule by rule, and what it dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    counts: BTreeMap<Rule, usize>,
    warnings: Vec<Warning>,
    operations: usize,
}

impl Report {
    fn hit(&mut self, rule: Rule) {
        *self.counts.entry(rule).or_default() += 1;
    }

    /// Records that `rule` dropped something the user loses.
    fn drop(
        &mut self,
        rule: Rule,
        place: String,
        dropped: impl Into<String>,
        loss: impl Into<String>,
    ) {
        self.hit(rule);
        self.warnings.push(Warning {
            place,
            dropped: dropped.into(),
            loss: loss.into(),
        });
    }

    /// What was dropped, in document order.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// How many operations were left out of the client.
    pub fn dropped_operations(&self) -> usize {
        self.count(Rule::DroppedOperation)
    }

    /// How many operations the document has.
    pub fn operations(&self) -> usize {
        self.operations
    }

    /// How many of the document's operations the client has a method for.
    pub fn generated_operations(&self) -> usize {
        self.operations.saturating_sub(self.dropped_operations())
    }

    /// How many operations have a form body, generated by the xtask rather
    /// than progenitor.
    pub fn form_operations(&self) -> usize {
        self.count(Rule::FormOperation)
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
        if !self.warnings.is_empty() {
            writeln!(f, "dropped (the generated client does not have these):")?;
            for w in &self.warnings {
                writeln!(f, "  - {w}")?;
            }
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

/// Keywords of JSON Schema 2020-12 that constrain a value and have no
/// OpenAPI 3.0 form. The types generated without them accept more than the
/// document allows, which a client can live with: dropped, each named.
/// (`prefixItems` and `patternProperties` are converted instead.)
const LOOSENING_31: &[&str] = &[
    "if",
    "then",
    "else",
    "dependentSchemas",
    "dependentRequired",
    "unevaluatedItems",
    "contains",
    "minContains",
    "maxContains",
    "$dynamicRef",
    "$dynamicAnchor",
];

/// The methods of a path item.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Names of the Rust prelude (and of progenitor's own items) that a type
/// of the generated `types` module must not take.
const PRELUDE_NAMES: &[&str] = &[
    "Default", "Option", "Result", "Some", "None", "Ok", "Err", "Box", "Vec", "String", "Self",
    "Clone", "Copy", "Debug", "Send", "Sync", "Sized", "From", "Into", "TryFrom", "TryInto",
];

/// How progenitor can send a parameter of a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ParameterShape {
    /// A scalar, an enum, or an array of them.
    Scalar,
    /// A union of scalars (text on the wire: a string to the client), or of
    /// a scalar and a list of it (a list): the schema to send it as.
    ScalarUnion(Value),
    /// A struct (a model, FastAPI's `Depends()`).
    Model,
}

/// 3.1-only keywords that carry no type information a client uses: dropped.
const ANNOTATIONS_31: &[&str] = &[
    // Constrains only the keys of a map, which are strings either way.
    "propertyNames",
    // Extra properties are ignored by the generated types anyway.
    "unevaluatedProperties",
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
    /// The component schemas as the document wrote them, to resolve `$ref`s
    /// while the schemas are being rewritten.
    raw_schemas: Map<String, Value>,
    /// The normalised `components`, to resolve the `$ref`s of operations.
    components: Value,
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
            && o.iter().all(|(k, v)| {
                matches!(k.as_str(), "type" | "title" | "description" | "nullable")
                    // Vendor annotations (`x-stainless-skip`) say nothing
                    // about the value.
                    || k.starts_with("x-")
                    || (k == "default" && v.is_null())
            })
    })
}

/// A JSON pointer with `%XX` escapes (as URI fragments write them) decoded.
fn percent_decode(pointer: &str) -> String {
    if !pointer.contains('%') {
        return pointer.to_owned();
    }
    let bytes = pointer.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The words of an identifier: split at non-alphanumerics and at
/// lower-to-upper case changes, as heck (progenitor's case converter) does.
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        prev_lower = c.is_lowercase() || c.is_numeric();
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// The snake_case method name an operationId gives, for clash checks.
fn snake_key(id: &str) -> String {
    words(id).join("_")
}

/// The PascalCase type name a schema name gives.
fn pascal_key(name: &str) -> String {
    words(name)
        .iter()
        .map(|w| {
            let mut cs = w.chars();
            cs.next()
                .map(|c| c.to_uppercase().collect::<String>() + cs.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The Rust variant name an enum value gives, case-folded for clash
/// checks; empty when it gives none.
fn variant_key(value: &str) -> String {
    words(value).concat()
}

/// An operationId for an operation without one: `get_v1_items_item_id`.
fn operation_id_for(method: &str, path: &str) -> String {
    let mut id = method.to_owned();
    for w in words(path) {
        id.push('_');
        id.push_str(&w);
    }
    id
}

/// Rewrites every `$ref` equal to a `from` into its `to`.
fn rewrite_refs(value: &mut Value, renames: &[(String, String)]) {
    match value {
        Value::Object(m) => {
            if let Some(Value::String(target)) = m.get_mut("$ref")
                && let Some((_, to)) = renames.iter().find(|(from, _)| from == target)
            {
                *target = to.clone();
            }
            for v in m.values_mut() {
                rewrite_refs(v, renames);
            }
        }
        Value::Array(items) => {
            for v in items {
                rewrite_refs(v, renames);
            }
        }
        _ => {}
    }
}

/// A schema that constrains nothing about the value's type.
fn accepts_anything(schema: &Value) -> bool {
    schema.as_object().is_some_and(|o| {
        o.keys().all(|k| {
            matches!(
                k.as_str(),
                "title" | "description" | "nullable" | "example" | "default" | "deprecated"
            ) || k.starts_with("x-")
        })
    })
}

/// The keywords that apply to values of one JSON type.
fn keywords_of_type(t: &str) -> &'static [&'static str] {
    match t {
        "string" => &["minLength", "maxLength", "pattern", "format"],
        "integer" | "number" => &[
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "multipleOf",
            "format",
        ],
        "array" => &["items", "minItems", "maxItems", "uniqueItems"],
        "object" => &[
            "properties",
            "required",
            "additionalProperties",
            "minProperties",
            "maxProperties",
        ],
        _ => &[],
    }
}

/// A media type of a stream of items: NDJSON, JSON lines, server-sent events.
fn is_streaming_media(media_type: &str) -> bool {
    let base = media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    matches!(
        base.as_str(),
        "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/jsonlines"
            | "application/json-seq"
            | "text/event-stream"
    )
}

/// How well progenitor sends a request body of a media type (lower is
/// better); what it cannot send comes last.
fn request_media_rank(media_type: &str) -> u8 {
    let base = media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match base.as_str() {
        "application/json" => 0,
        _ if is_json_media(&base) => 1,
        "application/x-www-form-urlencoded" => 2,
        "application/octet-stream" => 3,
        "text/plain" | "text/x-markdown" => 4,
        _ => 5,
    }
}

impl Normalizer {
    fn refuse(&mut self, pointer: String, reason: impl Into<String>) {
        self.problems.push(Unconvertible {
            pointer,
            reason: reason.into(),
        });
    }

    fn document(&mut self, doc: &mut Value) {
        self.repair_dangling_refs(doc);
        let Some(root) = doc.as_object_mut() else {
            self.refuse(String::new(), "the document is not a JSON object");
            return;
        };
        self.repair_info(root);
        self.rename_clashing_schemas(root);
        self.raw_schemas = root
            .get("components")
            .and_then(|c| c.get("schemas"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
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
                self.split_nullable_unions(schemas);
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
                        if section == "responses" {
                            self.response_description(item);
                        }
                    }
                }
            }
        }

        self.components = root.get("components").cloned().unwrap_or_else(|| json!({}));
        if let Some(paths) = root.get_mut("paths").and_then(Value::as_object_mut) {
            self.rename_path_variables(paths);
            for (path, item) in paths.iter_mut() {
                self.path_item(item, path, &child("/paths", path));
            }
            self.unique_operation_ids(paths);
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
        self.inline_name_clashes(root);
        self.apply_forms(root);
    }

    /// typify names an untitled inline property type `{Parent}{Property}`;
    /// where that is a component's name (`BetaSkill.version` beside a
    /// `BetaSkillVersion` component), the two types clash. Such a property
    /// schema gets a title typify uses instead.
    fn inline_name_clashes(&mut self, root: &mut Map<String, Value>) {
        let Some(schemas) = root
            .get_mut("components")
            .and_then(|c| c.get_mut("schemas"))
            .and_then(Value::as_object_mut)
        else {
            return;
        };
        let mut taken: BTreeSet<String> = schemas.keys().map(|k| pascal_key(k)).collect();
        let mut hits = 0;
        for (parent, schema) in schemas.iter_mut() {
            let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
                continue;
            };
            for (property, s) in props.iter_mut() {
                let Some(s) = s.as_object_mut() else { continue };
                if s.contains_key("$ref") || s.contains_key("title") {
                    continue;
                }
                let name = pascal_key(&format!("{parent}-{property}"));
                if !taken.contains(&name) {
                    continue;
                }
                let title = (0..)
                    .map(|n| match n {
                        0 => format!("{name}Property"),
                        n => format!("{name}Property{n}"),
                    })
                    .find(|c| !taken.contains(c))
                    .unwrap_or_default();
                taken.insert(title.clone());
                s.insert("title".into(), json!(title));
                hits += 1;
            }
        }
        for _ in 0..hits {
            self.report.hit(Rule::InlineNameClash);
        }
    }

    /// A component `S` that is a nullable union (or a nullable object or
    /// enum) made typify emit a `struct S(Option<S>)` beside the union,
    /// object or enum `S`. The value moves to a new component (`SVariants`
    /// for a union, `SValue` otherwise); `S` becomes a nullable reference
    /// to it.
    fn split_nullable_unions(&mut self, schemas: &mut Map<String, Value>) {
        let nullable_types: Vec<(String, &'static str)> = schemas
            .iter()
            .filter(|(_, s)| s.get("nullable") == Some(&json!(true)))
            .filter_map(|(name, s)| {
                let union = ["anyOf", "oneOf"].iter().any(|k| {
                    s.get(*k)
                        .and_then(Value::as_array)
                        .is_some_and(|m| m.len() > 1)
                });
                let named_type = s.get("properties").is_some()
                    || s.get("enum").is_some()
                    || s.get("type").and_then(Value::as_str) == Some("object");
                if union {
                    Some((name.clone(), "Variants"))
                } else if named_type {
                    Some((name.clone(), "Value"))
                } else {
                    None
                }
            })
            .collect();
        for (name, suffix) in nullable_types {
            let Some(Value::Object(mut union)) = schemas.get_mut(&name).map(Value::take) else {
                continue;
            };
            let variants = (0..)
                .map(|n| match n {
                    0 => format!("{name}{suffix}"),
                    n => format!("{name}{suffix}{n}"),
                })
                .find(|c| !schemas.contains_key(c) && !self.new_schemas.contains_key(c))
                .unwrap_or_default();
            union.remove("nullable");
            union.remove("title");
            let mut wrapper = Map::new();
            for key in ["description", "default", "example", "deprecated"] {
                if let Some(v) = union.get(key) {
                    wrapper.insert(key.into(), v.clone());
                }
            }
            union.remove("default");
            wrapper.insert(
                "allOf".into(),
                json!([{ "$ref": format!("#/components/schemas/{}", escape(&variants)) }]),
            );
            wrapper.insert("nullable".into(), json!(true));
            if let Some(slot) = schemas.get_mut(&name) {
                *slot = Value::Object(wrapper);
            }
            self.new_schemas.insert(variants, Value::Object(union));
            self.report.hit(Rule::NullableComponent);
        }
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
        let mut renamed = 0;
        // Names a renamed title must not take.
        let mut taken: BTreeSet<String> = components.clone();
        taken.extend(seen.keys().cloned());
        visit_inline_schemas(root, &mut |schema| {
            let Some(title) = schema
                .get("title")
                .and_then(Value::as_str)
                .map(str::to_owned)
            else {
                return;
            };
            let key = title_key(&title);
            if components.contains(&key) || seen.get(&key).is_some_and(|n| *n > 1) {
                schema.remove("title");
                dropped += 1;
            } else if PRELUDE_NAMES.contains(&pascal_key(&title).as_str()) {
                // `Default` (FastAPI's title of a property `default`) would
                // name a type that shadows the prelude's: renamed as a
                // component of that name is.
                let new = (0..)
                    .map(|n| match n {
                        0 => format!("{title}Schema"),
                        n => format!("{title}Schema{n}"),
                    })
                    .find(|c| !taken.contains(&title_key(c)))
                    .unwrap_or_default();
                taken.insert(title_key(&new));
                schema.insert("title".into(), json!(new));
                renamed += 1;
            }
        });
        for _ in 0..dropped {
            self.report.hit(Rule::SharedTitle);
        }
        for _ in 0..renamed {
            self.report.hit(Rule::RenamedSchema);
        }
    }

    fn path_item(&mut self, item: &mut Value, path: &str, ptr: &str) {
        let Some(item) = item.as_object_mut() else {
            return;
        };
        // Parameters shared by the path's operations move into each one
        // (an operation's own parameter of the same name and place wins), so
        // that each operation can be checked, and dropped, on its own.
        if let Some(Value::Array(shared)) = item.remove("parameters") {
            let shared: Vec<Value> = shared
                .iter()
                .map(|p| self.resolve(p).unwrap_or_else(|| p.clone()))
                .collect();
            for method in METHODS {
                let Some(op) = item.get_mut(method).and_then(Value::as_object_mut) else {
                    continue;
                };
                let params = op.entry("parameters").or_insert_with(|| json!([]));
                let Some(params) = params.as_array_mut() else {
                    continue;
                };
                let own: Vec<(Value, Value)> = params
                    .iter()
                    .map(|p| {
                        let p = self.resolve(p).unwrap_or_else(|| p.clone());
                        (p["name"].clone(), p["in"].clone())
                    })
                    .collect();
                for p in &shared {
                    if !own.contains(&(p["name"].clone(), p["in"].clone())) {
                        params.push(p.clone());
                    }
                }
            }
        }
        for method in METHODS {
            let Some(op) = item.get_mut(method) else {
                continue;
            };
            self.report.operations += 1;
            if let Some(op) = op.as_object_mut()
                && !op.get("operationId").is_some_and(Value::is_string)
            {
                op.insert("operationId".into(), json!(operation_id_for(method, path)));
                self.report.hit(Rule::OperationId);
            }
            let id = op
                .get("operationId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let place = format!("{} {path} ({id})", method.to_uppercase());
            if let Some((what, loss)) = self.operation(op, path, &child(ptr, method), &place) {
                item.remove(method);
                self.report.drop(Rule::DroppedOperation, place, what, loss);
            }
        }
    }

    /// Gives every operation a distinct method name: progenitor names
    /// methods by the snake_case form of the operationId, and FastAPI's
    /// trailing-slash routes (`/items` and `/items/`) give two operations
    /// ids that differ only in underscores. The generated `Client`'s own
    /// methods (`new`, and those of progenitor's `ClientInfo` and
    /// `ClientHooks`, which an inherent method would shadow) are taken.
    fn unique_operation_ids(&mut self, paths: &mut Map<String, Value>) {
        let mut taken: BTreeSet<String> = rust_names::CLIENT_METHODS
            .iter()
            .map(|m| (*m).to_owned())
            .collect();
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for method in METHODS {
                let Some(op) = item.get_mut(method).and_then(Value::as_object_mut) else {
                    continue;
                };
                let id = op
                    .get("operationId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if taken.insert(snake_key(&id)) {
                    continue;
                }
                let unique = (2..)
                    .map(|n| format!("{id}_{n}"))
                    .find(|candidate| !taken.contains(&snake_key(candidate)))
                    .unwrap_or_default();
                taken.insert(snake_key(&unique));
                op.insert("operationId".into(), json!(unique));
                self.report.hit(Rule::OperationId);
            }
        }
    }

    /// The target of a `#/components/..` reference, from the normalised
    /// components; `value` itself when it is not a reference.
    fn resolve(&self, value: &Value) -> Option<Value> {
        let mut current = value.clone();
        // A chain of references, not a cycle: give up after a few.
        for _ in 0..8 {
            let Some(target) = current.get("$ref").and_then(Value::as_str) else {
                return Some(current);
            };
            let pointer = target.strip_prefix("#/components")?;
            current = self.components.pointer(&percent_decode(pointer))?.clone();
        }
        None
    }

    /// `info.title` and `info.version` are required in 3.0 (and by the
    /// parser progenitor uses); a document without them still describes an
    /// API.
    fn repair_info(&mut self, root: &mut Map<String, Value>) {
        let info = root.entry("info").or_insert_with(|| json!({}));
        let Some(info) = info.as_object_mut() else {
            self.refuse("/info".into(), "`info` is not an object");
            return;
        };
        for key in ["title", "version"] {
            match info.get(key) {
                Some(Value::String(_)) => {}
                Some(Value::Number(n)) => {
                    let text = n.to_string();
                    info.insert(key.into(), json!(text));
                    self.report.hit(Rule::Repaired);
                }
                _ => {
                    info.insert(key.into(), json!(""));
                    self.report.hit(Rule::Repaired);
                }
            }
        }
    }

    /// Renames component schemas whose type name would be a Rust prelude
    /// name (`struct Default` breaks every `Default` derive of the module)
    /// or another component's (`foo_bar` beside `FooBar`).
    fn rename_clashing_schemas(&mut self, root: &mut Map<String, Value>) {
        let Some(schemas) = root
            .get("components")
            .and_then(|c| c.get("schemas"))
            .and_then(Value::as_object)
        else {
            return;
        };
        let mut renames: Vec<(String, String)> = Vec::new();
        // Type names already given, as typify spells them (`foo_bar` and
        // `FooBar` are both `FooBar`).
        let mut taken: BTreeSet<String> = BTreeSet::new();
        for name in schemas.keys() {
            let key = pascal_key(name);
            if !PRELUDE_NAMES.contains(&key.as_str()) && taken.insert(key) {
                continue;
            }
            let new = (0..)
                .map(|n| match n {
                    0 => format!("{name}Schema"),
                    n => format!("{name}Schema{n}"),
                })
                .find(|c| !schemas.contains_key(c) && !taken.contains(&pascal_key(c)))
                .unwrap_or_default();
            taken.insert(pascal_key(&new));
            renames.push((name.clone(), new));
        }
        if renames.is_empty() {
            return;
        }
        if let Some(schemas) = root
            .get_mut("components")
            .and_then(|c| c.get_mut("schemas"))
            .and_then(Value::as_object_mut)
        {
            // Rebuild the map so the renamed schema keeps its place.
            let old = std::mem::take(schemas);
            for (k, v) in old {
                match renames.iter().find(|(from, _)| *from == k) {
                    Some((_, to)) => schemas.insert(to.clone(), v),
                    None => schemas.insert(k, v),
                };
            }
        }
        let targets: Vec<(String, String)> = renames
            .iter()
            .map(|(from, to)| {
                (
                    format!("#/components/schemas/{}", escape(from)),
                    format!("#/components/schemas/{}", escape(to)),
                )
            })
            .collect();
        let mut doc = Value::Object(std::mem::take(root));
        rewrite_refs(&mut doc, &targets);
        if let Value::Object(m) = doc {
            *root = m;
        }
        for _ in &renames {
            self.report.hit(Rule::RenamedSchema);
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

    /// A response's `description` is required in 3.0 (and by the parser
    /// progenitor uses): one the document left out is filled, empty.
    fn response_description(&mut self, response: &mut Value) {
        if let Some(r) = response.as_object_mut()
            && !r.contains_key("$ref")
            && !r.get("description").is_some_and(Value::is_string)
        {
            r.insert("description".into(), json!(""));
            self.report.hit(Rule::Repaired);
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

    /// Rewrites one operation. Returns what to drop and what the user loses
    /// when the generator cannot express the operation at all.
    fn operation(
        &mut self,
        op: &mut Value,
        path: &str,
        ptr: &str,
        place: &str,
    ) -> Option<(String, String)> {
        let op_id = op
            .get("operationId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let op = op.as_object_mut()?;
        if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
            for (i, p) in params.iter_mut().enumerate() {
                // A `$ref` resolves to an already normalised component.
                if p.get("$ref").is_some() {
                    if let Some(resolved) = self.resolve(p) {
                        *p = resolved;
                    }
                } else {
                    self.parameter(p, &child(&child(ptr, "parameters"), &i.to_string()));
                }
            }
        }
        self.path_parameters(op, path);
        let mut unsupported = self.check_parameters(op, place);
        let mut form = None;
        if let Some(body) = op.get_mut("requestBody") {
            let bptr = child(ptr, "requestBody");
            if body.get("$ref").is_some() {
                if let Some(resolved) = self.resolve(body) {
                    *body = resolved;
                }
            } else {
                self.content_holder(body, &bptr);
            }
            // A form body is generated by the xtask (see `forms`): taken out
            // here, put back as the operation's body once the document is
            // normalised. Beside a body progenitor sends, it becomes a
            // second method.
            form = self.take_form(body);
            let form_alone = form.as_ref().is_some_and(|f| !f.twin);
            if !form_alone {
                self.request_media_type(body);
                unsupported = unsupported.or_else(|| self.request_body_kind(body));
            }
        }
        if let Some(form) = form {
            op.insert(forms::PENDING_EXTENSION.into(), form.into_value());
        }
        if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
            let rptr = child(ptr, "responses");
            for (code, r) in responses.iter_mut() {
                let this = child(&rptr, code);
                if r.get("$ref").is_some() {
                    // Resolved so that merging sees its body beside the
                    // inline ones.
                    if let Some(resolved) = self.resolve(r) {
                        *r = resolved;
                    }
                } else {
                    self.response_schemas(r, &this);
                }
                self.response_description(r);
                self.response_media_type(r, &format!("{place} response {code}"));
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
            self.merge_responses(responses, &op_name, true, place);
            self.merge_responses(responses, &op_name, false, place);
            self.drop_codes_under_ranges(responses);
        }
        unsupported
    }

    /// Drops the codes a range of their class covers (`202` beside
    /// `2XX`), keeping the class's first code (`200`): progenitor sorts a
    /// range as its first code and matches it before the codes above it,
    /// which would be unreachable patterns in the generated match. The
    /// responses are merged by now, so the range decodes the same type.
    fn drop_codes_under_ranges(&mut self, responses: &mut Map<String, Value>) {
        let ranges: Vec<char> = responses
            .keys()
            .filter(|c| c.len() == 3 && c[1..].eq_ignore_ascii_case("XX"))
            .filter_map(|c| c.chars().next())
            .collect();
        let covered: Vec<String> = responses
            .keys()
            .filter(|c| {
                c.len() == 3
                    && c.bytes().all(|b| b.is_ascii_digit())
                    && !c.ends_with("00")
                    && c.chars()
                        .next()
                        .is_some_and(|class| ranges.contains(&class))
            })
            .cloned()
            .collect();
        for code in covered {
            responses.remove(&code);
            self.report.hit(Rule::RangeResponse);
        }
    }

    /// Makes the path parameters those of the path template: progenitor
    /// panics on a path parameter the template does not name, or one not
    /// marked required, and writes a template variable without a
    /// parameter into code that does not compile. A variable without a
    /// parameter gets a string one; a parameter without a variable is
    /// dropped (no URL can carry it).
    fn path_parameters(&mut self, op: &mut Map<String, Value>, path: &str) {
        let names: Vec<String> = path
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
            .collect();
        if names.is_empty() && !op.contains_key("parameters") {
            return;
        }
        let Some(params) = op
            .entry("parameters")
            .or_insert_with(|| json!([]))
            .as_array_mut()
        else {
            return;
        };
        let is_path = |p: &Value| p.get("in").and_then(Value::as_str) == Some("path");
        let name_of = |p: &Value| p.get("name").and_then(Value::as_str).map(str::to_owned);
        let before = params.len();
        params.retain(|p| !is_path(p) || name_of(p).is_some_and(|n| names.contains(&n)));
        let mut repaired = before - params.len();
        for p in params.iter_mut().filter(|p| is_path(p)) {
            if p.get("required") != Some(&Value::Bool(true)) {
                p["required"] = json!(true);
                repaired += 1;
            }
        }
        for name in &names {
            if !params
                .iter()
                .any(|p| is_path(p) && name_of(p).as_deref() == Some(name.as_str()))
            {
                params.push(json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}));
                repaired += 1;
            }
        }
        for _ in 0..repaired {
            self.report.hit(Rule::Repaired);
        }
    }

    /// Drops the optional parameters progenitor cannot send (named), and
    /// retypes unions of scalars as strings. Returns why the operation must
    /// go when a required parameter cannot be sent.
    fn check_parameters(
        &mut self,
        op: &mut Map<String, Value>,
        place: &str,
    ) -> Option<(String, String)> {
        let has_body = op.contains_key("requestBody");
        let paginated = op.contains_key("x-dropshot-pagination");
        let params = op.get_mut("parameters")?.as_array_mut()?;
        // progenitor makes each parameter a builder field and setter named
        // by its snake_case form, beside the builder's own fields and
        // methods and the locals of its `send`: two of one name do not
        // compile. Path parameters come first (their clashes are renamed
        // with the path, see `rename_path_variables`).
        let mut taken = rust_names::reserved(has_body, paginated);
        for p in params.iter() {
            if p.get("in").and_then(Value::as_str) == Some("path")
                && let Some(name) = p.get("name").and_then(Value::as_str)
            {
                taken.insert(snake_key(name));
            }
        }
        let mut kept = Vec::with_capacity(params.len());
        let mut unsupported = None;
        for mut p in std::mem::take(params) {
            let name = p
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let location = p
                .get("in")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let required = p.get("required") == Some(&Value::Bool(true)) || location == "path";
            if location != "path" && !taken.insert(snake_key(&name)) {
                let rust_name = rust_names::unused(&snake_key(&name), &taken);
                taken.insert(rust_name.clone());
                p[WIRE_NAME_EXTENSION] = json!(name);
                p["name"] = json!(rust_name);
                self.report.hit(Rule::RenamedParameter);
            }
            let why = self.unsendable(&mut p, required);
            match why {
                None => kept.push(p),
                Some(why) if required => {
                    unsupported.get_or_insert((
                        format!(
                            "the operation (its required {location} parameter `{name}` is {why})"
                        ),
                        "the client has no method for this endpoint".to_owned(),
                    ));
                    kept.push(p);
                }
                Some(why) => self.report.drop(
                    Rule::DroppedParameter,
                    format!("{place} {location} parameter `{name}`"),
                    format!("the parameter ({why})"),
                    "the method cannot set it; the server sees it absent",
                ),
            }
        }
        *params = kept;
        unsupported
    }

    /// Why progenitor cannot send `param`, if it cannot. A union of scalars
    /// is retyped as a string on the way.
    fn unsendable(&mut self, param: &mut Value, required: bool) -> Option<String> {
        let location = param.get("in").and_then(Value::as_str).unwrap_or_default();
        let default_style = match location {
            "query" => "form",
            "path" | "header" => "simple",
            "cookie" => return Some("a cookie, which progenitor does not send".into()),
            other => return Some(format!("in `{other}`, not a known place")),
        };
        if let Some(style) = param.get("style").and_then(Value::as_str)
            && style != default_style
        {
            return Some(format!(
                "`{style}`-style, which progenitor does not serialise"
            ));
        }
        let Some(schema) = param.get("schema") else {
            return Some(if param.get("content").is_some() {
                "described by `content`, which progenitor does not read".into()
            } else {
                "without a schema".into()
            });
        };
        let in_query = location == "query";
        let is_list = |schema: &Value| {
            self.resolve(schema)
                .is_some_and(|s| s.get("type").and_then(Value::as_str) == Some("array"))
        };
        match self.parameter_shape(schema, 0) {
            // progenitor writes path and header values with `to_string()`,
            // which lists and models do not have.
            ParameterShape::Scalar if !in_query && is_list(schema) => {
                Some("a list, which progenitor cannot write into a path or header".into())
            }
            ParameterShape::Scalar => None,
            ParameterShape::ScalarUnion(replacement) if !in_query && is_list(&replacement) => Some(
                "a value or a list, which progenitor cannot write into a path or header".into(),
            ),
            ParameterShape::ScalarUnion(mut replacement) => {
                if let Some(d) = schema.get("description") {
                    replacement["description"] = d.clone();
                }
                param["schema"] = replacement;
                self.report.hit(Rule::ParameterAsString);
                None
            }
            ParameterShape::Model if !in_query => {
                Some("typed as a model, which progenitor cannot write into a path or header".into())
            }
            // progenitor sends a required model as its fields; an optional
            // one makes it panic (method.rs: optional builder parameter).
            ParameterShape::Model if required => None,
            ParameterShape::Model => {
                Some("typed as a model, which progenitor cannot make optional".into())
            }
        }
    }

    fn parameter_shape(&self, schema: &Value, depth: usize) -> ParameterShape {
        let Some(s) = self.resolve(schema) else {
            return ParameterShape::Model;
        };
        if depth > 8 {
            return ParameterShape::Model;
        }
        if s.get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty())
        {
            return ParameterShape::Model;
        }
        if let Some(members) = s.get("allOf").and_then(Value::as_array)
            && members
                .iter()
                .any(|m| self.parameter_shape(m, depth + 1) != ParameterShape::Scalar)
        {
            return ParameterShape::Model;
        }
        let union: Vec<&Value> = ["anyOf", "oneOf"]
            .iter()
            .filter_map(|k| s.get(*k).and_then(Value::as_array))
            .flatten()
            .collect();
        if !union.is_empty() {
            // `[string, array of string]`: one value or several. On the wire
            // a single value is a list of one, so the list form says both.
            let mut list_items: Option<Value> = None;
            for member in &union {
                let Some(resolved) = self.resolve(member) else {
                    return ParameterShape::Model;
                };
                if let Some(items) = resolved.get("items") {
                    if self.parameter_shape(items, depth + 1) != ParameterShape::Scalar
                        || list_items.as_ref().is_some_and(|seen| seen != items)
                    {
                        return ParameterShape::Model;
                    }
                    list_items = Some(items.clone());
                } else if self.parameter_shape(member, depth + 1) != ParameterShape::Scalar {
                    return ParameterShape::Model;
                }
            }
            return ParameterShape::ScalarUnion(match list_items {
                Some(items) => json!({"type": "array", "items": items}),
                None => json!({"type": "string"}),
            });
        }
        if let Some(items) = s.get("items") {
            return match self.parameter_shape(items, depth + 1) {
                ParameterShape::Scalar => ParameterShape::Scalar,
                _ => ParameterShape::Model,
            };
        }
        ParameterShape::Scalar
    }

    /// Why progenitor cannot send the request body, if it cannot: it sends
    /// JSON, form-urlencoded, octet-stream and plain text bodies only.
    fn request_body_kind(&mut self, body: &mut Value) -> Option<(String, String)> {
        let content = body.get_mut("content")?.as_object_mut()?;
        let (key, mt) = content.iter_mut().next()?;
        let base = key
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let raw_schema = match base.as_str() {
            "application/json" | "application/x-www-form-urlencoded" => None,
            // A raw body: progenitor wants exactly these schemas, and the
            // bytes on the wire do not depend on them.
            "application/octet-stream" => Some(json!({"type": "string", "format": "binary"})),
            "text/plain" | "text/x-markdown" => Some(json!({"type": "string"})),
            _ => {
                return Some((
                    format!("the operation (its request body is `{key}`)"),
                    "progenitor 0.15 cannot send this kind of body: the client has no method for this endpoint".to_owned(),
                ));
            }
        };
        let mt = mt.as_object_mut()?;
        if mt.remove("encoding").is_some() {
            // Per-part encodings of a form; progenitor `todo!`s on them.
            self.report.hit(Rule::DroppedKeyword);
        }
        match raw_schema {
            Some(schema) => {
                let description = mt.get("schema").and_then(|s| s.get("description")).cloned();
                let mut schema = schema;
                if let Some(d) = description {
                    schema["description"] = d;
                }
                mt.insert("schema".into(), schema);
            }
            None => {
                mt.entry("schema").or_insert_with(|| json!({}));
            }
        }
        None
    }

    /// progenitor takes one request media type (and panics on more): keep
    /// the one it sends best (JSON, then a form, then raw bytes or text), or
    /// leave the one body [`Self::request_body_kind`] will turn down.
    fn request_media_type(&mut self, body: &mut Value) {
        let Some(content) = body.get_mut("content").and_then(Value::as_object_mut) else {
            return;
        };
        if content.len() <= 1 {
            if let Some(key) = content.keys().next().cloned()
                && is_json_media(&key)
                && !is_plain_json(&key)
                && let Some(mt) = content.remove(&key)
            {
                // `application/merge-patch+json` and the like: progenitor
                // sends only `application/json`.
                content.insert("application/json".into(), mt);
                self.report.hit(Rule::MediaTypes);
            }
            return;
        }
        let best = content
            .keys()
            .min_by_key(|k| request_media_rank(k))
            .cloned();
        if let Some(key) = best {
            content.retain(|k, _| *k == key);
            self.report.hit(Rule::MediaTypes);
            if is_json_media(&key)
                && !is_plain_json(&key)
                && let Some(mt) = content.remove(&key)
            {
                content.insert("application/json".into(), mt);
            }
        }
    }

    /// progenitor types a response body only under `application/json` and
    /// handles one media type per response: keep the JSON one, under that
    /// name, or else one of the raw ones (all are handed over as bytes).
    fn response_media_type(&mut self, response: &mut Value, place: &str) {
        let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) else {
            return;
        };
        for mt in content.values_mut().filter_map(Value::as_object_mut) {
            if mt.remove("encoding").is_some() {
                // Meaningful for multipart bodies only; progenitor asserts
                // there is none.
                self.report.hit(Rule::DroppedKeyword);
            }
        }
        if content.len() > 1 {
            let json_key = content
                .keys()
                .find(|k| is_plain_json(k))
                .or_else(|| content.keys().find(|k| is_json_media(k)))
                .cloned();
            let key = json_key.or_else(|| content.keys().next().cloned());
            if let Some(key) = key {
                let streams: Vec<String> = content
                    .keys()
                    .filter(|k| **k != key && is_streaming_media(k))
                    .cloned()
                    .collect();
                if is_json_media(&key) && !streams.is_empty() {
                    self.report.drop(
                        Rule::StreamingResponse,
                        place.to_owned(),
                        format!("the streaming form ({}) beside the JSON one", streams.join(", ")),
                        "the client reads only the JSON body; a request that asks for a stream gets an error",
                    );
                }
                content.retain(|k, _| *k == key);
                self.report.hit(Rule::MediaTypes);
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
        if let Some(key) = content.keys().find(|k| is_streaming_media(k)).cloned() {
            self.report.drop(
                Rule::StreamingResponse,
                place.to_owned(),
                format!("the type of each `{key}` item"),
                "the body is handed over as a byte stream, to be split and decoded by the caller",
            );
        }
    }

    /// Makes every success (or every error) response of an operation share
    /// one kind of body and one schema, as progenitor requires (it asserts
    /// one response type per class and panics otherwise).
    fn merge_responses(
        &mut self,
        responses: &mut Map<String, Value>,
        op_id: &str,
        success: bool,
        place: &str,
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
        let mut first_kind = first_kind;
        if success {
            if !uniform {
                // The generator needs one success type, and inventing a body
                // for a 204 (or reading CSV as JSON) would be a lie: keep
                // the JSON ones, drop the others, named.
                let reference = if distinct.is_empty() {
                    first_kind
                } else {
                    BodyKind::Json
                };
                let off: Vec<(String, BodyKind)> = members
                    .iter()
                    .filter(|(_, k)| *k != reference)
                    .cloned()
                    .collect();
                for (code, kind) in off {
                    responses.remove(&code);
                    self.report.drop(
                        Rule::MixedSuccess,
                        format!("{place} response {code}"),
                        format!("the success response {}", kind.describe()),
                        format!(
                            "the method returns the responses {} only; a {code} reaches the caller as an unexpected response, with its raw body",
                            reference.describe()
                        ),
                    );
                }
                first_kind = reference;
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
        if let Value::Bool(accepts) = *schema {
            // `true`/`false` schemas are 3.1 (and 2019-09) forms.
            *schema = json!({});
            if accepts {
                self.report.hit(Rule::UntypedValue);
            } else {
                self.report.drop(
                    Rule::UntypedValue,
                    ptr.to_owned(),
                    "the `false` schema (no value is valid)",
                    "the client accepts any value here",
                );
            }
            return;
        }
        let Some(obj) = schema.as_object_mut() else {
            return;
        };

        for key in LOOSENING_31 {
            if obj.remove(*key).is_some() {
                self.report.drop(
                    Rule::DroppedKeyword,
                    child(ptr, key),
                    format!("`{key}`"),
                    "a constraint the generated types do not check",
                );
            }
        }
        self.content_keywords(obj);
        for key in ANNOTATIONS_31 {
            if obj.remove(*key).is_some() {
                self.report.hit(Rule::DroppedKeyword);
            }
        }
        if let Some(patterns) = obj.remove("patternProperties") {
            let only = patterns
                .as_object()
                .filter(|p| p.len() == 1)
                .and_then(|p| p.values().next());
            match only {
                // One key pattern, no other extra properties: a map.
                Some(values) if !obj.contains_key("additionalProperties") => {
                    obj.insert("additionalProperties".into(), values.clone());
                    self.report.drop(
                        Rule::DroppedKeyword,
                        child(ptr, "patternProperties"),
                        "the key pattern of `patternProperties`",
                        "extra properties are typed by its schema, whatever their names",
                    );
                }
                _ => self.report.drop(
                    Rule::DroppedKeyword,
                    child(ptr, "patternProperties"),
                    "`patternProperties`",
                    "properties matched by pattern are not typed",
                ),
            }
        }
        if obj.get("required").is_some_and(|r| !r.is_array()) {
            obj.remove("required");
            self.report.hit(Rule::Repaired);
        }
        if let Some(Value::Array(positions)) = obj.remove("prefixItems") {
            self.tuple(obj, positions, ptr);
        }
        if obj.contains_key("anyOf") && obj.contains_key("oneOf") {
            let any_of = obj.remove("anyOf").unwrap_or_default();
            let one_of = obj.remove("oneOf").unwrap_or_default();
            let all_of = obj.entry("allOf").or_insert_with(|| json!([]));
            if let Some(all_of) = all_of.as_array_mut() {
                all_of.push(json!({ "anyOf": any_of }));
                all_of.push(json!({ "oneOf": one_of }));
            }
            self.report.hit(Rule::AnyOfAndOneOf);
        }

        self.property_names(obj, ptr);

        // A draft-3 `required: true` inside a property belongs to the parent.
        if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
            let mut hoisted = Vec::new();
            for (name, s) in props.iter_mut() {
                if let Some(s) = s.as_object_mut()
                    && let Some(flag) = s.get("required").filter(|r| !r.is_array()).cloned()
                {
                    s.remove("required");
                    if flag == json!(true) || flag == json!("true") {
                        hoisted.push(json!(name));
                    }
                    self.report.hit(Rule::Repaired);
                }
            }
            if !hoisted.is_empty()
                && let Some(required) = obj
                    .entry("required")
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
            {
                for name in hoisted {
                    if !required.contains(&name) {
                        required.push(name);
                    }
                }
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

        self.nullable_type_array(obj);
        for key in ["anyOf", "oneOf"] {
            self.nullable_union(obj, key);
        }
        self.open_enum(obj);
        if obj.get("type") == Some(&json!("null")) {
            // Always null: an untyped value holds it (and anything else).
            obj.remove("type");
            obj.insert("nullable".into(), json!(true));
            self.report.hit(Rule::UntypedValue);
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
                _ => {
                    // Not the 3.1 keyword's form: an annotation, dropped.
                    obj.remove("examples");
                    self.report.hit(Rule::DroppedKeyword);
                }
            }
        }
        self.exclusive_bound(obj, "exclusiveMinimum", "minimum", true);
        self.exclusive_bound(obj, "exclusiveMaximum", "maximum", false);
        if obj.remove("not").is_some() {
            // typify `todo!`s on most `not` schemas.
            self.report.drop(
                Rule::DroppedKeyword,
                child(ptr, "not"),
                "`not`",
                "a constraint the generated types do not check",
            );
        }
        self.enum_types(obj);
        self.pattern(obj, ptr);
        self.enum_names(obj, ptr);
        self.union_order(obj);
        self.default_value(obj, ptr);
    }

    /// `anyOf: [{type: string}, {type: string, enum: [..]}]` accepts any
    /// string (the enum names the known ones): a string, as on the wire.
    fn open_enum(&mut self, obj: &mut Map<String, Value>) {
        for key in ["anyOf", "oneOf"] {
            let Some(Value::Array(members)) = obj.get(key) else {
                continue;
            };
            let resolved: Vec<Value> = members
                .iter()
                .map(|m| {
                    m.get("$ref")
                        .and_then(Value::as_str)
                        .and_then(|r| r.strip_prefix("#/components/schemas/"))
                        .and_then(|name| {
                            self.raw_schemas
                                .get(&percent_decode(name).replace("~1", "/").replace("~0", "~"))
                        })
                        .cloned()
                        .unwrap_or_else(|| m.clone())
                })
                .collect();
            let is_string = |m: &Value| {
                m.get("type").and_then(Value::as_str) == Some("string")
                    || m.get("enum")
                        .and_then(Value::as_array)
                        .is_some_and(|e| !e.is_empty() && e.iter().all(Value::is_string))
            };
            let is_any_string = |m: &Value| {
                m.get("type").and_then(Value::as_str) == Some("string")
                    && m.as_object().is_some_and(|o| {
                        o.keys().all(|k| {
                            matches!(
                                k.as_str(),
                                "type"
                                    | "title"
                                    | "description"
                                    | "example"
                                    | "default"
                                    | "nullable"
                            ) || k.starts_with("x-")
                        })
                    })
            };
            if resolved.len() < 2
                || !resolved.iter().all(is_string)
                || !resolved.iter().any(is_any_string)
                || resolved.iter().any(|m| m.get("properties").is_some())
            {
                continue;
            }
            obj.remove(key);
            obj.insert("type".into(), json!("string"));
            self.report.hit(Rule::OpenEnum);
        }
    }

    /// 3.1 says a string's content is raw bytes with `contentMediaType`
    /// (and base64 text with `contentEncoding: base64`); 3.0 says it with
    /// `format: binary` (`byte`), which is what a form's file parts are
    /// recognised by.
    fn content_keywords(&self, obj: &mut Map<String, Value>) {
        let string_or_untyped = obj.get("type").is_none_or(|t| t == &json!("string"));
        if obj.contains_key("format") || !string_or_untyped {
            return;
        }
        let format = match obj.get("contentEncoding").and_then(Value::as_str) {
            Some(e) if e.eq_ignore_ascii_case("base64") => "byte",
            Some(_) => return,
            None if obj.contains_key("contentMediaType") => "binary",
            None => return,
        };
        // The keywords themselves go (and are counted) with the other
        // 3.1-only annotations.
        obj.insert("type".into(), json!("string"));
        obj.insert("format".into(), json!(format));
    }

    /// typify names a field by the snake_case form of its property, and a
    /// required name with no property of its own gets a field too: two
    /// names of one form (`client_id` beside `clientId`) give a struct two
    /// fields of one name. The later property, or the undeclared required
    /// name, is dropped, named.
    fn property_names(&mut self, obj: &mut Map<String, Value>, ptr: &str) {
        let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) else {
            return;
        };
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        let mut clashing: Vec<(String, String)> = Vec::new();
        for name in props.keys() {
            let field = snake_key(name);
            match fields.get(&field) {
                Some(first) => clashing.push((name.clone(), first.clone())),
                None => {
                    fields.insert(field, name.clone());
                }
            }
        }
        for (name, first) in &clashing {
            props.shift_remove(name);
            self.report.drop(
                Rule::Repaired,
                child(&child(ptr, "properties"), name),
                format!("the property `{name}`"),
                format!(
                    "its Rust field name is that of `{first}`; the client does not read or send it"
                ),
            );
        }
        let declared: BTreeSet<String> = props.keys().cloned().collect();
        let Some(required) = obj.get_mut("required").and_then(Value::as_array_mut) else {
            return;
        };
        let mut dropped = Vec::new();
        required.retain(|r| {
            let Some(name) = r.as_str() else { return false };
            let clash =
                !declared.contains(name) && fields.get(&snake_key(name)).is_some_and(|p| p != name);
            if clash {
                dropped.push(name.to_owned());
            }
            !clash
        });
        for name in dropped {
            self.report.drop(
                Rule::Repaired,
                child(ptr, "required"),
                format!("the requirement of undeclared `{name}`"),
                "it names no property, and its Rust field name is a declared property's",
            );
        }
    }

    /// `prefixItems` (pydantic's tuples) as `items`: the one schema of every
    /// position, or a union of them (named: position typing is lost).
    fn tuple(&mut self, obj: &mut Map<String, Value>, positions: Vec<Value>, ptr: &str) {
        let mut members: Vec<Value> = Vec::new();
        let rest = obj.remove("items");
        for m in positions.into_iter().chain(rest.filter(Value::is_object)) {
            if !members.contains(&m) {
                members.push(m);
            }
        }
        match members.len() {
            0 => {}
            1 => {
                obj.insert("items".into(), members.remove(0));
                self.report.hit(Rule::Tuple);
            }
            _ => {
                obj.insert("items".into(), json!({ "anyOf": members }));
                self.report.drop(
                    Rule::Tuple,
                    child(ptr, "prefixItems"),
                    "the type of each tuple position",
                    "every item is typed as any of the positions' types",
                );
            }
        }
    }

    /// typify compiles a `pattern` with regress (ECMAScript syntax) and
    /// fails on one it cannot compile.
    fn pattern(&mut self, obj: &mut Map<String, Value>, ptr: &str) {
        let Some(Value::String(pattern)) = obj.get("pattern") else {
            return;
        };
        // PCRE and Python name a group `(?P<name>..)`, ECMAScript `(?<name>..)`.
        let rewritten = pattern.replace("(?P<", "(?<");
        if regress::Regex::new(&rewritten).is_ok() {
            if rewritten != *pattern {
                obj.insert("pattern".into(), json!(rewritten));
                self.report.hit(Rule::Pattern);
            }
            return;
        }
        let dropped = format!("the pattern `{pattern}`");
        obj.remove("pattern");
        self.report.drop(
            Rule::Pattern,
            child(ptr, "pattern"),
            dropped,
            "the ECMAScript engine of the generated code cannot compile it; values are not checked against it",
        );
    }

    /// An enum's values must fit its type: a value of another type can
    /// never be valid (the schema asks for both), and typify refuses it, so
    /// it goes. An untyped enum of values of several types (typify panics)
    /// becomes a union of one enum per type.
    fn enum_types(&mut self, obj: &mut Map<String, Value>) {
        let Some(Value::Array(values)) = obj.get("enum") else {
            return;
        };
        let nullable = obj.get("nullable") == Some(&json!(true));
        if let Some(t) = obj.get("type").and_then(Value::as_str) {
            let fits = |v: &Value| match json_type(v) {
                None => nullable,
                Some("integer") => t == "integer" || t == "number",
                Some(vt) => vt == t,
            };
            if values.iter().all(fits) {
                return;
            }
            let kept: Vec<Value> = values.iter().filter(|v| fits(v)).cloned().collect();
            obj.insert("enum".into(), Value::Array(kept));
            self.report.hit(Rule::Repaired);
            return;
        }
        let has_null = values.iter().any(Value::is_null);
        let mut by_type: Vec<(&'static str, Vec<Value>)> = Vec::new();
        for v in values {
            let Some(t) = json_type(v) else { continue };
            match by_type.iter_mut().find(|(seen, _)| *seen == t) {
                Some((_, vs)) => vs.push(v.clone()),
                None => by_type.push((t, vec![v.clone()])),
            }
        }
        if by_type.len() < 2 {
            // One type (typify infers it), or only null.
            return;
        }
        let members: Vec<Value> = by_type
            .into_iter()
            .map(|(t, vs)| json!({"type": t, "enum": vs}))
            .collect();
        obj.remove("enum");
        if has_null {
            obj.insert("nullable".into(), json!(true));
        }
        obj.insert("anyOf".into(), Value::Array(members));
        self.report.hit(Rule::TypeArrayUnion);
    }

    /// A string enum whose values give no Rust variant name, or two of the
    /// same name, makes typify panic: keep it a string.
    fn enum_names(&mut self, obj: &mut Map<String, Value>, ptr: &str) {
        let Some(Value::Array(values)) = obj.get("enum") else {
            return;
        };
        let names: Vec<String> = values
            .iter()
            .filter_map(Value::as_str)
            .map(variant_key)
            .collect();
        let mut seen = BTreeSet::new();
        let clash = names
            .iter()
            .any(|n| n.is_empty() || !seen.insert(n.clone()));
        if !clash {
            return;
        }
        let dropped = format!("the enum {}", Value::Array(values.clone()));
        obj.remove("enum");
        self.report.drop(
            Rule::EnumAsString,
            child(ptr, "enum"),
            dropped,
            "its values give no distinct Rust names: any string is accepted",
        );
    }

    /// An untagged enum tries its variants in order: a member that accepts
    /// anything must come last, or the typed members are never reached.
    fn union_order(&mut self, obj: &mut Map<String, Value>) {
        for key in ["anyOf", "oneOf"] {
            let Some(Value::Array(members)) = obj.get_mut(key) else {
                continue;
            };
            let Some(first_catch_all) = members.iter().position(accepts_anything) else {
                continue;
            };
            if members[first_catch_all..].iter().all(accepts_anything) {
                continue;
            }
            let (mut typed, catch_all): (Vec<Value>, Vec<Value>) =
                members.drain(..).partition(|m| !accepts_anything(m));
            typed.extend(catch_all);
            *members = typed;
            self.report.hit(Rule::UnionOrder);
        }
    }

    /// Drops a `default` typify cannot render: of another JSON type than
    /// the schema's, outside its enum, null where null is not allowed, or
    /// on a union.
    fn default_value(&mut self, obj: &mut Map<String, Value>, ptr: &str) {
        let Some(default) = obj.get("default") else {
            return;
        };
        let Some(why) = self.default_problem(obj, default) else {
            return;
        };
        if default.is_null() {
            // An optional value the server omits is absent either way: the
            // client loses nothing, so there is nothing to warn about.
            obj.remove("default");
            self.report.hit(Rule::DroppedDefault);
            return;
        }
        let dropped = format!("the default {default}");
        obj.remove("default");
        self.report.drop(
            Rule::DroppedDefault,
            child(ptr, "default"),
            dropped,
            format!("{why}; a value the server omits is not filled in"),
        );
    }

    fn default_problem(&self, obj: &Map<String, Value>, default: &Value) -> Option<String> {
        let nullable = obj.get("nullable") == Some(&json!(true));
        if default.is_null() {
            return (!nullable).then(|| "null, for a schema that does not allow null".into());
        }
        if ["anyOf", "oneOf"].iter().any(|k| obj.contains_key(*k)) {
            return Some("on a union, which typify cannot render".into());
        }
        // `allOf: [{$ref}]`: check against what it refers to.
        let target = match obj
            .get("allOf")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            Some([member]) => member
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                .and_then(|name| {
                    self.raw_schemas
                        .get(&percent_decode(name).replace("~1", "/").replace("~0", "~"))
                })
                .and_then(Value::as_object),
            Some(_) => {
                return Some("on a combination of schemas, which typify cannot render".into());
            }
            None => None,
        };
        for schema in std::iter::once(obj).chain(target) {
            if let Some(Value::Array(values)) = schema.get("enum")
                && !values.contains(default)
            {
                return Some("not one of the enum's values".into());
            }
            if ["anyOf", "oneOf"].iter().any(|k| schema.contains_key(*k)) {
                return Some("on a union, which typify cannot render".into());
            }
            let fits = match schema.get("type").and_then(Value::as_str) {
                Some("string") => default.is_string(),
                Some("integer") => default.is_i64() || default.is_u64(),
                Some("number") => default.is_number(),
                Some("boolean") => default.is_boolean(),
                Some("array") => default.is_array(),
                Some("object") => default.is_object(),
                _ => true,
            };
            if !fits {
                return Some("of another JSON type than the schema".into());
            }
        }
        None
    }

    fn nullable_type_array(&mut self, obj: &mut Map<String, Value>) {
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
            [] => {
                obj.remove("type");
                obj.insert("nullable".into(), json!(true));
                self.report.hit(Rule::UntypedValue);
            }
            several => {
                // Each member takes the keywords of its own type.
                let members: Vec<Value> = several
                    .iter()
                    .map(|t| {
                        let mut member = Map::new();
                        member.insert("type".into(), t.clone());
                        for key in keywords_of_type(t.as_str().unwrap_or_default()) {
                            if let Some(v) = obj.get(*key) {
                                member.insert((*key).into(), v.clone());
                            }
                        }
                        Value::Object(member)
                    })
                    .collect();
                obj.remove("type");
                for t in several {
                    for key in keywords_of_type(t.as_str().unwrap_or_default()) {
                        obj.remove(*key);
                    }
                }
                if had_null {
                    obj.insert("nullable".into(), json!(true));
                }
                if !obj.contains_key("anyOf") {
                    obj.insert("anyOf".into(), Value::Array(members));
                }
                self.report.hit(Rule::TypeArrayUnion);
            }
        }
    }

    fn nullable_union(&mut self, obj: &mut Map<String, Value>, key: &str) {
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
                // Only null: an untyped value holds it.
                obj.insert("nullable".into(), json!(true));
                self.report.hit(Rule::UntypedValue);
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
        exclusive: &str,
        inclusive: &str,
        lower: bool,
    ) {
        let Some(bound) = obj.get(exclusive).cloned() else {
            return;
        };
        match bound {
            Value::Bool(true) if !obj.contains_key(inclusive) => {
                // Bounds nothing: meaningless, dropped.
                obj.remove(exclusive);
                self.report.hit(Rule::DroppedKeyword);
            }
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
            _ => {
                obj.remove(exclusive);
                self.report.hit(Rule::DroppedKeyword);
            }
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
            "paths": {}, "components": {"schemas": {"S": s, "X": {"type": "object"}}}});
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
    fn null_only_schema_becomes_an_untyped_nullable_value() {
        let out = norm_schema(json!({"type": "object", "properties": {
            "gone": {"type": "null"}, "also": {"type": ["null"]},
            "skip": {"anyOf": [{"type": "null", "x-stainless-skip": ["go"]}]}}}))
        .unwrap();
        for p in ["gone", "also", "skip"] {
            assert_eq!(out["properties"][p], json!({"nullable": true}), "{p}");
        }
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        let doc = json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
            "paths": {"/a/{b}": {"get": {"responses": {"200": {"description": "ok",
              "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Gone"}}}}}}}}});
        let (_, report) = normalize(&doc).unwrap();
        assert_eq!(
            report.warnings()[0].place,
            "/paths/~1a~1{b}/get/responses/200/content/application~1json/schema/$ref"
        );
    }

    #[test]
    fn enums_fit_their_type_and_untyped_mixed_enums_become_unions() {
        let out = norm_schema(json!({"type": "object", "properties": {
            "mixed": {"enum": [1, "a", null]},
            "typed": {"type": "string", "enum": ["a", 2]},
            "negated": {"type": "string", "not": {"enum": ["x"]}}}}))
        .unwrap();
        let p = &out["properties"];
        assert_eq!(
            p["mixed"],
            json!({"nullable": true, "anyOf": [{"type": "integer", "enum": [1]}, {"type": "string", "enum": ["a"]}]})
        );
        assert_eq!(p["typed"], json!({"type": "string", "enum": ["a"]}));
        assert_eq!(p["negated"], json!({"type": "string"}));
    }

    #[test]
    fn components_of_one_type_name_are_renamed_with_their_references() {
        let doc = json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {},
            "components": {"schemas": {"foo_bar": {"type": "string"}, "FooBar": {"type": "integer"},
              "Option": {"type": "boolean"},
              "S": {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/FooBar"},
                "b": {"$ref": "#/components/schemas/Option"}}}}}});
        let (doc, report) = normalize(&doc).unwrap();
        let s = &doc["components"]["schemas"];
        assert_eq!(report.count(Rule::RenamedSchema), 2);
        assert_eq!(s["foo_bar"], json!({"type": "string"}));
        assert_eq!(s["FooBarSchema"], json!({"type": "integer"}));
        assert_eq!(
            s["S"]["properties"]["a"]["$ref"],
            "#/components/schemas/FooBarSchema"
        );
        assert_eq!(
            s["S"]["properties"]["b"]["$ref"],
            "#/components/schemas/OptionSchema"
        );
    }

    #[test]
    fn percent_encoded_references_resolve() {
        let doc = json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {},
            "components": {"schemas": {"A B": {"type": "string"},
              "S": {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/A%20B"}}}}}});
        assert!(normalize(&doc).is_ok());
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
    fn codes_under_a_range_are_dropped_but_the_first_stays() {
        let doc = op_doc(json!({"operationId": "x", "responses": {
            "200": json_body(json!({"type": "object"})),
            "202": json_body(json!({"type": "object"})),
            "2XX": json_body(json!({"type": "object"})),
            "404": json_body(json!({"$ref": "#/components/schemas/E"})),
            "4XX": json_body(json!({"$ref": "#/components/schemas/E"})),
            "500": json_body(json!({"$ref": "#/components/schemas/E"})),
        }}));
        let (n, report) = normalize(&doc).unwrap();
        let r = n["paths"]["/x"]["post"]["responses"].as_object().unwrap();
        let mut codes: Vec<&str> = r.keys().map(String::as_str).collect();
        codes.sort_unstable();
        assert_eq!(codes, ["200", "2XX", "4XX", "500"]);
        assert_eq!(report.count(Rule::RangeResponse), 2);
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
    fn success_response_of_another_kind_is_dropped_and_named() {
        let (doc, report) = normalize(&op_doc(json!({"operationId": "x", "responses": {
            "200": json_body(json!({"type": "string"})),
            "206": {"description": "part", "content": {"text/csv": {"schema": {"type": "string"}}}}
        }})))
        .unwrap();
        assert!(doc["paths"]["/x"]["post"]["responses"].get("206").is_none());
        assert_eq!(report.count(Rule::MixedSuccess), 1);
        let w = &report.warnings()[0];
        assert_eq!(w.place, "POST /x (x) response 206");
        assert!(w.dropped.contains("non-JSON"), "{w}");
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
