//! Form bodies: `multipart/form-data`, and `application/x-www-form-urlencoded`
//! without a JSON alternative. progenitor sends neither as a form (it has no
//! multipart support, and it hands a urlencoded body to `serde_urlencoded`,
//! which fails on a list), so the normaliser describes each such operation
//! for the generator ([`crate::form_methods`]):
//!
//! - progenitor sees the operation with a JSON body of the form's *text*
//!   fields (or no body when every field is a file), and so generates the
//!   builder, the body type, the parameters, the response and error types
//!   and the call through the client's hooks as for any operation;
//! - the operation carries [`FORM_EXTENSION`]: the media type, each binary
//!   field (its wire name, its Rust name, one file or several, required or
//!   not, the media type the document's `encoding` gives it) and the
//!   encoding of the other fields, from which the generator adds the file
//!   setters and sends the form instead of the JSON.
//!
//! An operation whose body may also be a JSON document (or another body
//! progenitor sends) keeps that as its method, and gets a second one,
//! `<name>_multipart`, for the form: progenitor sees it at the same path
//! with [`TWIN_PATH_SUFFIX`] appended, which the generator takes off again.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::{METHODS, Normalizer, Rule, is_json_media, rust_names, snake_key};

/// The operation extension that describes a form body to the generator.
pub const FORM_EXTENSION: &str = "x-xtask-form";

/// The parameter extension that keeps the wire name of a parameter whose
/// Rust name was changed.
pub const WIRE_NAME_EXTENSION: &str = "x-xtask-wire-name";

/// A form taken out of an operation, until the document is normalised.
pub(super) const PENDING_EXTENSION: &str = "x-xtask-pending-form";

/// Appended to the path of a second, multipart, method of an operation: the
/// generator removes it from the URL.
pub const TWIN_PATH_SUFFIX: &str = "#multipart";

const MULTIPART: &str = "multipart/form-data";
const URLENCODED: &str = "application/x-www-form-urlencoded";

/// A form body taken out of an operation.
pub(super) struct PendingForm {
    media_type: &'static str,
    schema: Value,
    encoding: Value,
    /// The operation keeps another body progenitor sends: the form gets a
    /// method of its own.
    pub(super) twin: bool,
}

impl PendingForm {
    pub(super) fn into_value(self) -> Value {
        json!({"mediaType": self.media_type, "schema": self.schema,
            "encoding": self.encoding, "twin": self.twin})
    }

    fn from_value(value: &Value) -> Option<PendingForm> {
        let media_type = match value.get("mediaType")?.as_str()? {
            MULTIPART => MULTIPART,
            _ => URLENCODED,
        };
        Some(PendingForm {
            media_type,
            schema: value.get("schema").cloned().unwrap_or_else(|| json!({})),
            encoding: value.get("encoding").cloned().unwrap_or_else(|| json!({})),
            twin: value.get("twin").and_then(Value::as_bool).unwrap_or(false),
        })
    }
}

fn base_media_type(key: &str) -> String {
    key.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Whether progenitor sends a body of this media type (after
/// `request_media_type` has picked one).
fn progenitor_sends(key: &str) -> bool {
    let base = base_media_type(key);
    is_json_media(&base)
        || matches!(
            base.as_str(),
            "application/octet-stream" | "text/plain" | "text/x-markdown"
        )
}

/// A media type of one concrete type (`image/png`), not a list or a range.
fn concrete_media_type(value: Option<&Value>) -> Option<String> {
    let text = value?.as_str()?.trim();
    (!text.is_empty() && !text.contains(',') && !text.contains('*')).then(|| text.to_owned())
}

/// How a form property is sent when it is a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    /// One file.
    One,
    /// A list of files, one part each.
    Several,
}

impl Normalizer {
    /// Takes the form body out of `body`'s content, if it has one that the
    /// xtask generates: `multipart/form-data`, or a urlencoded form without
    /// a JSON alternative.
    pub(super) fn take_form(&mut self, body: &mut Value) -> Option<PendingForm> {
        let content = body.get_mut("content")?.as_object_mut()?;
        let find = |media: &str| {
            content
                .keys()
                .find(|k| base_media_type(k) == media)
                .cloned()
        };
        let multipart = find(MULTIPART);
        let urlencoded = find(URLENCODED);
        let has_json = content.keys().any(|k| is_json_media(k));
        let (key, media_type) = match (multipart, &urlencoded) {
            (Some(key), _) => (key, MULTIPART),
            (None, Some(key)) if !has_json => (key.clone(), URLENCODED),
            _ => return None,
        };
        let mt = content.shift_remove(&key)?;
        if media_type == MULTIPART
            && let Some(urlencoded) = urlencoded
        {
            // The same fields in an encoding that cannot carry a file.
            content.shift_remove(&urlencoded);
            self.report.hit(Rule::MediaTypes);
        }
        let twin = content.keys().any(|k| progenitor_sends(k));
        if !twin && !content.is_empty() {
            // Bodies progenitor cannot send either (`application/sdp`..):
            // the form is the operation's body.
            content.clear();
            self.report.hit(Rule::MediaTypes);
        }
        Some(PendingForm {
            media_type,
            schema: mt.get("schema").cloned().unwrap_or_else(|| json!({})),
            encoding: mt.get("encoding").cloned().unwrap_or_else(|| json!({})),
            twin,
        })
    }

    /// Puts every form taken out by [`Self::take_form`] back, as the body
    /// progenitor types (the text fields) and [`FORM_EXTENSION`]; adds the
    /// second method of an operation that keeps another body. Runs last,
    /// on the normalised components, so that a form's fields copied from a
    /// component are the component's fields as they are generated.
    pub(super) fn apply_forms(&mut self, root: &mut Map<String, Value>) {
        let components = root.get("components").cloned().unwrap_or_else(|| json!({}));
        let Some(paths) = root.get_mut("paths").and_then(Value::as_object_mut) else {
            return;
        };
        let mut taken_ids: BTreeSet<String> = paths
            .values()
            .filter_map(Value::as_object)
            .flat_map(|item| METHODS.iter().filter_map(|m| item.get(*m)))
            .filter_map(|op| op.get("operationId").and_then(Value::as_str))
            .map(snake_key)
            .collect();
        let mut twins: Vec<(String, &'static str, Value)> = Vec::new();
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for method in METHODS {
                let Some(op) = item.get_mut(method).and_then(Value::as_object_mut) else {
                    continue;
                };
                let Some(pending) = op
                    .shift_remove(PENDING_EXTENSION)
                    .as_ref()
                    .and_then(PendingForm::from_value)
                else {
                    continue;
                };
                let id = op
                    .get("operationId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let place = format!("{} {path} ({id})", method.to_uppercase());
                if !pending.twin {
                    self.set_form(op, pending, &components, None, &place);
                    self.report.hit(Rule::FormOperation);
                    continue;
                }
                let mut twin = op.clone();
                let twin_id = (1..)
                    .map(|n| match n {
                        1 => format!("{id}_multipart"),
                        n => format!("{id}_multipart{n}"),
                    })
                    .find(|c| !taken_ids.contains(&snake_key(c)))
                    .unwrap_or_default();
                taken_ids.insert(snake_key(&twin_id));
                twin.insert("operationId".into(), json!(twin_id));
                self.set_form(&mut twin, pending, &components, Some(&id), &place);
                twins.push((
                    format!("{path}{TWIN_PATH_SUFFIX}"),
                    method,
                    Value::Object(twin),
                ));
                self.report.hit(Rule::MultipartTwin);
            }
        }
        for (path, method, op) in twins {
            if let Some(item) = paths
                .entry(path)
                .or_insert_with(|| json!({}))
                .as_object_mut()
            {
                item.insert(method.into(), op);
            }
        }
    }

    /// Makes `op`'s body the text fields of `form` and describes the rest
    /// in [`FORM_EXTENSION`].
    fn set_form(
        &mut self,
        op: &mut Map<String, Value>,
        form: PendingForm,
        components: &Value,
        twin_of: Option<&str>,
        place: &str,
    ) {
        let shape = FormShape::of(&form.schema, components);
        // Rust names the file setters must not take: the builder's own,
        // and the parameters'.
        let mut taken = rust_names::reserved(true, true);
        taken.insert("client".to_owned());
        for p in op
            .get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(name) = p.get("name").and_then(Value::as_str) {
                taken.insert(snake_key(name));
            }
        }
        let mut body_properties = Map::new();
        let mut files = Vec::new();
        for (name, schema) in &shape.properties {
            if let Some(s) = schema.as_object()
                && let Some((kind, rest)) = file_kind_of_union(s, components)
            {
                // A file or (another member) a reference object: the file
                // has a setter of its own, the rest stays a field.
                let mut kept = s.clone();
                let key = if s.contains_key("anyOf") {
                    "anyOf"
                } else {
                    "oneOf"
                };
                match <[Value; 1]>::try_from(rest) {
                    Ok([only]) => {
                        kept.shift_remove(key);
                        kept.insert("allOf".into(), json!([only]));
                    }
                    Err(rest) => {
                        kept.insert(key.into(), Value::Array(rest));
                    }
                }
                body_properties.insert(name.clone(), Value::Object(kept));
                taken.insert(snake_key(name));
                files.push(self.file_entry(
                    name,
                    kind,
                    false,
                    &form.encoding,
                    schema,
                    &mut taken,
                    true,
                ));
                continue;
            }
            match file_kind(schema, components, 0) {
                Some(kind) => {
                    let required = shape.required.contains(name)
                        && schema.get("nullable") != Some(&json!(true));
                    files.push(self.file_entry(
                        name,
                        kind,
                        required,
                        &form.encoding,
                        schema,
                        &mut taken,
                        false,
                    ));
                }
                None => {
                    body_properties.insert(name.clone(), schema.clone());
                }
            }
        }
        let mut media_type = form.media_type;
        if media_type == URLENCODED && !files.is_empty() {
            media_type = MULTIPART;
            self.report.drop(
                Rule::FormAsMultipart,
                place.to_owned(),
                format!("the `{URLENCODED}` encoding of the request body"),
                format!(
                    "the body is sent as `{MULTIPART}` instead: it has a file field, which only that encoding carries"
                ),
            );
        }
        let parts = part_encodings(&form.encoding, &body_properties);
        let body_schema = if files.is_empty() && form.schema.get("$ref").is_some() {
            // Nothing taken out: the component's own type.
            Some(form.schema.clone())
        } else if body_properties.is_empty() && !shape.open {
            None
        } else {
            let mut schema = Map::new();
            if let Some(d) = &shape.description {
                schema.insert("description".into(), json!(d));
            }
            schema.insert("type".into(), json!("object"));
            let required: Vec<Value> = shape
                .required
                .iter()
                .filter(|r| body_properties.contains_key(*r))
                .map(|r| json!(r))
                .collect();
            schema.insert("properties".into(), Value::Object(body_properties));
            if !required.is_empty() {
                schema.insert("required".into(), Value::Array(required));
            }
            if let Some(additional) = &shape.additional {
                schema.insert("additionalProperties".into(), additional.clone());
            }
            Some(Value::Object(schema))
        };
        match body_schema {
            Some(schema) => {
                let body = op.entry("requestBody").or_insert_with(|| json!({}));
                body["content"] = json!({"application/json": {"schema": schema}});
            }
            None => {
                op.shift_remove("requestBody");
            }
        }
        // A builder with a file part is not `Clone`, which a paginated
        // builder needs.
        op.shift_remove("x-dropshot-pagination");
        let mut extension = json!({"mediaType": media_type, "files": files, "parts": parts});
        if let Some(original) = twin_of {
            extension["twinOf"] = json!(original);
            extension["pathSuffix"] = json!(TWIN_PATH_SUFFIX);
        }
        op.insert(FORM_EXTENSION.into(), extension);
    }

    #[allow(clippy::too_many_arguments)]
    fn file_entry(
        &mut self,
        name: &str,
        kind: FileKind,
        required: bool,
        encoding: &Value,
        schema: &Value,
        taken: &mut BTreeSet<String>,
        beside_field: bool,
    ) -> Value {
        let mut field = rust_ident(&snake_key(name));
        if beside_field || taken.contains(&field) {
            field = (1..)
                .map(|n| match n {
                    1 => format!("{field}_file"),
                    n => format!("{field}_file{n}"),
                })
                .find(|c| !taken.contains(c))
                .unwrap_or_default();
        }
        taken.insert(field.clone());
        let mut entry = json!({"name": name, "field": field,
            "multiple": kind == FileKind::Several, "required": required});
        if let Some(ct) = concrete_media_type(encoding.get(name).and_then(|e| e.get("contentType")))
        {
            entry["contentType"] = json!(ct);
        }
        if let Some(d) = schema.get("description").and_then(Value::as_str) {
            entry["description"] = json!(d);
        }
        entry
    }
}

/// The encoding of the text fields that is not the default: a JSON part,
/// a delimited list, a part media type.
fn part_encodings(encoding: &Value, properties: &Map<String, Value>) -> Vec<Value> {
    let Some(encoding) = encoding.as_object() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, e) in encoding {
        if !properties.contains_key(name) {
            continue;
        }
        let content_type = concrete_media_type(e.get("contentType"));
        let json = e
            .get("contentType")
            .and_then(Value::as_str)
            .is_some_and(|ct| ct.split(',').any(|t| is_json_media(t.trim())));
        let exploded = e.get("explode").and_then(Value::as_bool).unwrap_or(true);
        let delimiter = match e.get("style").and_then(Value::as_str) {
            Some("spaceDelimited") => Some(" "),
            Some("pipeDelimited") => Some("|"),
            _ if !exploded => Some(","),
            _ => None,
        };
        if content_type.is_none() && !json && delimiter.is_none() {
            continue;
        }
        out.push(json!({"name": name, "json": json, "delimiter": delimiter,
            "contentType": content_type}));
    }
    out
}

/// A valid Rust identifier from a snake_case name.
fn rust_ident(snake: &str) -> String {
    let name = if snake.is_empty() {
        "file".to_owned()
    } else if snake.starts_with(|c: char| c.is_ascii_digit()) {
        format!("file_{snake}")
    } else {
        snake.to_owned()
    };
    if syn::parse_str::<syn::Ident>(&name).is_err() || name == "gen" {
        format!("{name}_")
    } else {
        name
    }
}

/// The properties of a form schema, `allOf` members merged.
struct FormShape {
    properties: Map<String, Value>,
    required: BTreeSet<String>,
    /// `additionalProperties` as a schema or `true`: the body type is open.
    additional: Option<Value>,
    open: bool,
    description: Option<String>,
}

impl FormShape {
    fn of(schema: &Value, components: &Value) -> FormShape {
        let mut shape = FormShape {
            properties: Map::new(),
            required: BTreeSet::new(),
            additional: None,
            open: false,
            description: None,
        };
        shape.merge(schema, components, 0);
        shape
    }

    fn merge(&mut self, schema: &Value, components: &Value, depth: usize) {
        let Some(s) = resolve(schema, components) else {
            return;
        };
        if depth > 8 {
            return;
        }
        if self.description.is_none() {
            self.description = s
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        for member in s
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.merge(member, components, depth + 1);
        }
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for (k, v) in props {
                self.properties.insert(k.clone(), v.clone());
            }
        }
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(r) = r.as_str() {
                self.required.insert(r.to_owned());
            }
        }
        match s.get("additionalProperties") {
            Some(Value::Bool(true)) => self.open = true,
            Some(Value::Object(a)) => {
                self.open = true;
                self.additional = Some(Value::Object(a.clone()));
            }
            _ => {}
        }
    }
}

/// The schema a `#/components/..` reference chain ends at.
fn resolve(schema: &Value, components: &Value) -> Option<Value> {
    let mut current = schema.clone();
    for _ in 0..8 {
        let Some(target) = current.get("$ref").and_then(Value::as_str) else {
            return Some(current);
        };
        let pointer = target.strip_prefix("#/components")?;
        current = components.pointer(&super::percent_decode(pointer))?.clone();
    }
    None
}

/// Whether a (normalised) schema is a file: a binary string, one member
/// of `allOf`, a list of files, or a union whose members are all files.
fn file_kind(schema: &Value, components: &Value, depth: usize) -> Option<FileKind> {
    let s = resolve(schema, components)?;
    if depth > 8 {
        return None;
    }
    if s.get("type").and_then(Value::as_str) == Some("string")
        && s.get("format").and_then(Value::as_str) == Some("binary")
    {
        return Some(FileKind::One);
    }
    if let Some([only]) = s.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
        return file_kind(only, components, depth + 1);
    }
    if s.get("type").and_then(Value::as_str) == Some("array")
        && let Some(items) = s.get("items")
    {
        return (file_kind(items, components, depth + 1) == Some(FileKind::One))
            .then_some(FileKind::Several);
    }
    let members: Vec<&Value> = ["anyOf", "oneOf"]
        .iter()
        .filter_map(|k| s.get(*k).and_then(Value::as_array))
        .flatten()
        .collect();
    if members.is_empty() {
        return None;
    }
    let kinds: Option<Vec<FileKind>> = members
        .iter()
        .map(|m| file_kind(m, components, depth + 1))
        .collect();
    // A file, or a list of them: a list (a single file is a list of one).
    kinds.map(|k| {
        if k.contains(&FileKind::Several) {
            FileKind::Several
        } else {
            FileKind::One
        }
    })
}

/// A union of files and other values (`oneOf: [binary, ReferenceObject]`):
/// the kind of its files and the members that are not files.
fn file_kind_of_union(
    s: &Map<String, Value>,
    components: &Value,
) -> Option<(FileKind, Vec<Value>)> {
    let key = if s.contains_key("anyOf") {
        "anyOf"
    } else {
        "oneOf"
    };
    let members = s.get(key)?.as_array()?;
    let (files, rest): (Vec<&Value>, Vec<&Value>) = members
        .iter()
        .partition(|m| file_kind(m, components, 1).is_some());
    if files.is_empty() || rest.is_empty() {
        return None;
    }
    let kind = if files
        .iter()
        .any(|m| file_kind(m, components, 1) == Some(FileKind::Several))
    {
        FileKind::Several
    } else {
        FileKind::One
    };
    Some((kind, rest.into_iter().cloned().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;

    fn doc_with(body: Value, schemas: Value) -> Value {
        json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
            "paths": {"/up": {"post": {"operationId": "up", "requestBody": body,
                "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"type": "string"}}}}}}}},
            "components": {"schemas": schemas}})
    }

    #[test]
    fn files_leave_the_body_and_are_described() {
        let body = json!({"required": true, "content": {"multipart/form-data": {
            "schema": {"$ref": "#/components/schemas/Upload"},
            "encoding": {"file": {"contentType": "image/png"}, "meta": {"contentType": "application/json"},
                "tags": {"style": "form", "explode": false}}}}});
        let schemas = json!({"Upload": {"type": "object", "required": ["file", "name"], "properties": {
            "file": {"type": "string", "format": "binary"},
            "extra": {"type": "array", "items": {"type": "string", "contentMediaType": "application/octet-stream"}},
            "maybe": {"anyOf": [{"type": "string", "format": "binary"}, {"type": "null"}]},
            "name": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "meta": {"type": "object", "properties": {"a": {"type": "integer"}}}}}});
        let (doc, report) = normalize(&doc_with(body, schemas)).unwrap();
        assert_eq!(report.count(Rule::FormOperation), 1);
        assert_eq!(report.dropped_operations(), 0);
        let op = &doc["paths"]["/up"]["post"];
        let schema = &op["requestBody"]["content"]["application/json"]["schema"];
        let props: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        assert_eq!(props, ["name", "tags", "meta"]);
        assert_eq!(schema["required"], json!(["name"]));
        let form = &op[FORM_EXTENSION];
        assert_eq!(form["mediaType"], MULTIPART);
        assert_eq!(
            form["files"],
            json!([
                {"name": "file", "field": "file", "multiple": false, "required": true, "contentType": "image/png"},
                {"name": "extra", "field": "extra", "multiple": true, "required": false},
                {"name": "maybe", "field": "maybe", "multiple": false, "required": false}
            ])
        );
        assert_eq!(
            form["parts"],
            json!([
                {"name": "meta", "json": true, "delimiter": null, "contentType": "application/json"},
                {"name": "tags", "json": false, "delimiter": ",", "contentType": null}
            ])
        );
    }

    #[test]
    fn a_form_beside_json_gets_a_second_method() {
        let body = json!({"content": {
            "multipart/form-data": {"schema": {"type": "object", "properties": {"image": {"type": "string", "format": "binary"}}}},
            "application/json": {"schema": {"type": "object", "properties": {"image_url": {"type": "string"}}}}}});
        let (doc, report) = normalize(&doc_with(body, json!({}))).unwrap();
        assert_eq!(report.count(Rule::MultipartTwin), 1);
        let op = &doc["paths"]["/up"]["post"];
        assert!(op.get(FORM_EXTENSION).is_none());
        assert!(
            op["requestBody"]["content"]
                .get("application/json")
                .is_some()
        );
        let twin = &doc["paths"][format!("/up{TWIN_PATH_SUFFIX}")]["post"];
        assert_eq!(twin["operationId"], "up_multipart");
        assert_eq!(twin[FORM_EXTENSION]["twinOf"], "up");
        // Only files: no JSON body left.
        assert!(twin.get("requestBody").is_none());
    }

    #[test]
    fn a_urlencoded_form_with_a_file_is_sent_as_multipart() {
        let body = json!({"content": {"application/x-www-form-urlencoded": {"schema": {"type": "object",
            "properties": {"f": {"type": "string", "format": "binary"}, "n": {"type": "integer"}}}}}});
        let (doc, report) = normalize(&doc_with(body, json!({}))).unwrap();
        assert_eq!(report.count(Rule::FormAsMultipart), 1);
        assert_eq!(
            doc["paths"]["/up"]["post"][FORM_EXTENSION]["mediaType"],
            MULTIPART
        );
    }

    #[test]
    fn a_file_or_a_reference_keeps_both() {
        let body = json!({"content": {"multipart/form-data": {"schema": {"type": "object", "properties": {
            "video": {"oneOf": [{"type": "string", "format": "binary"}, {"$ref": "#/components/schemas/Ref"}]}}}}}});
        let schemas = json!({"Ref": {"type": "object", "properties": {"id": {"type": "string"}}}});
        let (doc, _) = normalize(&doc_with(body, schemas)).unwrap();
        let op = &doc["paths"]["/up"]["post"];
        assert_eq!(
            op["requestBody"]["content"]["application/json"]["schema"]["properties"]["video"],
            json!({"allOf": [{"$ref": "#/components/schemas/Ref"}]})
        );
        assert_eq!(op[FORM_EXTENSION]["files"][0]["field"], "video_file");
    }

    #[test]
    fn file_names_become_identifiers() {
        assert_eq!(rust_ident("type"), "type_");
        assert_eq!(rust_ident("2nd"), "file_2nd");
        assert_eq!(rust_ident(""), "file");
        assert_eq!(rust_ident("gen"), "gen_");
        assert_eq!(rust_ident("image"), "image");
    }
}
