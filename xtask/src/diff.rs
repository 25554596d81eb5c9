//! What changed between two versions of an OpenAPI document, for a reviewer.
//!
//! [`diff`] compares two documents (3.0 or 3.1, as JSON, in any mix) and
//! lists the operations, parameters, request bodies, responses, schema
//! fields and enum values that were added, removed or changed, marking the
//! changes that break an existing client. It reads both nullable forms
//! (`anyOf: [X, {"type": "null"}]`, type arrays, and 3.0's `nullable`) as
//! the same thing, so a 3.1 document and its normalised 3.0 form compare as
//! equal. Component schemas are compared once each, by name; whether a
//! change breaks depends on where the schema is used: a field removed from
//! something the server sends breaks readers, a field newly required in
//! something the client sends breaks writers.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// Where a change was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    /// Operations added or removed.
    Operations,
    /// Parameters of an operation.
    Parameters,
    /// The request body of an operation.
    RequestBodies,
    /// The responses of an operation.
    Responses,
    /// Component schemas: their fields, types and enum values.
    Schemas,
}

impl Section {
    fn title(self) -> &'static str {
        match self {
            Section::Operations => "operations",
            Section::Parameters => "parameters",
            Section::RequestBodies => "request bodies",
            Section::Responses => "responses",
            Section::Schemas => "schemas",
        }
    }
}

/// One difference between the two documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The section the change belongs to.
    pub section: Section,
    /// Whether an existing client may break.
    pub breaking: bool,
    /// What changed: an operation, a parameter, a schema field.
    pub subject: String,
    /// How it changed.
    pub text: String,
}

/// Every difference between two documents, in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffReport {
    /// `info.version` of the older document.
    pub old_version: String,
    /// `info.version` of the newer document.
    pub new_version: String,
    /// The changes, grouped by section.
    pub changes: Vec<Change>,
}

impl DiffReport {
    /// How many changes are breaking.
    pub fn breaking(&self) -> usize {
        self.changes.iter().filter(|c| c.breaking).count()
    }

    /// How many changes fall in `section`.
    pub fn section_count(&self, section: Section) -> usize {
        self.changes.iter().filter(|c| c.section == section).count()
    }

    /// Whether the documents are equivalent as far as this diff can tell.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

impl fmt::Display for DiffReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "OpenAPI diff: {} -> {}",
            self.old_version, self.new_version
        )?;
        if self.changes.is_empty() {
            return writeln!(f, "no changes");
        }
        writeln!(
            f,
            "{} change{}, {} breaking",
            self.changes.len(),
            if self.changes.len() == 1 { "" } else { "s" },
            self.breaking()
        )?;
        let mut section = None;
        for c in &self.changes {
            if section != Some(c.section) {
                writeln!(f, "\n{}", c.section.title())?;
                section = Some(c.section);
            }
            let mark = if c.breaking { "BREAKING" } else { "" };
            writeln!(f, "  {mark:<8}  {}: {}", c.subject, c.text)?;
        }
        Ok(())
    }
}

/// Compares two OpenAPI documents.
pub fn diff(old: &Value, new: &Value) -> DiffReport {
    let version = |d: &Value| {
        d.pointer("/info/version")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned()
    };
    let mut d = Differ {
        old,
        new,
        usage: usage(old),
        changes: Vec::new(),
    };
    for (name, dir) in usage(new) {
        let e = d.usage.entry(name).or_default();
        e.request |= dir.request;
        e.response |= dir.response;
    }
    d.operations();
    d.schemas();
    d.changes.sort_by_key(|c| c.section);
    DiffReport {
        old_version: version(old),
        new_version: version(new),
        changes: d.changes,
    }
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Where a component schema travels: in requests, in responses, or both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Dir {
    request: bool,
    response: bool,
}

impl Dir {
    const REQUEST: Dir = Dir {
        request: true,
        response: false,
    };
    const RESPONSE: Dir = Dir {
        request: false,
        response: true,
    };
    /// Used nowhere: judged as if used both ways.
    fn or_both(self) -> Dir {
        if self.request || self.response {
            self
        } else {
            Dir {
                request: true,
                response: true,
            }
        }
    }
}

struct Differ<'a> {
    old: &'a Value,
    new: &'a Value,
    usage: BTreeMap<String, Dir>,
    changes: Vec<Change>,
}

fn ref_name(r: &str) -> &str {
    r.rsplit('/').next().unwrap_or(r)
}

/// Follows a local `$ref` (`#/components/...`), once.
fn resolve<'v>(doc: &'v Value, v: &'v Value) -> &'v Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) if r.starts_with("#/") => doc.pointer(&r[1..]).unwrap_or(v),
        _ => v,
    }
}

/// The component schemas reachable from requests and from responses.
fn usage(doc: &Value) -> BTreeMap<String, Dir> {
    let mut out: BTreeMap<String, Dir> = BTreeMap::new();
    let mut mark = |schema: &Value, dir: Dir| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![schema];
        while let Some(s) = stack.pop() {
            collect_refs(s, &mut |r| {
                if seen.insert(r.to_owned()) {
                    let e = out.entry(ref_name(r).to_owned()).or_default();
                    e.request |= dir.request;
                    e.response |= dir.response;
                    if let Some(target) = r.strip_prefix('#').and_then(|p| doc.pointer(p)) {
                        stack.push(target);
                    }
                }
            });
        }
    };
    for (_, _, op, item) in operations(doc) {
        for p in parameters(doc, item, op).values() {
            if let Some(s) = p.get("schema") {
                mark(s, Dir::REQUEST);
            }
        }
        if let Some(body) = op.get("requestBody") {
            mark(resolve(doc, body), Dir::REQUEST);
        }
        if let Some(responses) = op.get("responses") {
            mark(responses, Dir::RESPONSE);
        }
    }
    out
}

fn collect_refs(v: &Value, f: &mut dyn FnMut(&str)) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => f(r),
                    _ => collect_refs(v, f),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, f)),
        _ => {}
    }
}

/// `(path, method, operation, path item)` for every operation.
fn operations(doc: &Value) -> Vec<(&str, &str, &Value, &Value)> {
    let mut out = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            for m in METHODS {
                if let Some(op) = item.get(m) {
                    out.push((path.as_str(), m, op, item));
                }
            }
        }
    }
    out
}

/// The parameters of an operation (path-level ones included), by
/// `in` and name (header names case-folded).
fn parameters<'v>(doc: &'v Value, item: &'v Value, op: &'v Value) -> BTreeMap<String, &'v Value> {
    let mut out = BTreeMap::new();
    for list in [item.get("parameters"), op.get("parameters")] {
        for p in list.and_then(Value::as_array).into_iter().flatten() {
            let p = resolve(doc, p);
            let loc = p.get("in").and_then(Value::as_str).unwrap_or("?");
            let name = p.get("name").and_then(Value::as_str).unwrap_or("?");
            let name = if loc == "header" {
                name.to_ascii_lowercase()
            } else {
                name.to_owned()
            };
            out.insert(format!("{loc} `{name}`"), p);
        }
    }
    out
}

fn is_null(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("null")
}

/// A schema with its nullability taken out, in either OpenAPI version's
/// form: `(the schema of the non-null values, nullable)`.
fn unwrap_nullable(s: &Value) -> (Value, bool) {
    let Some(obj) = s.as_object() else {
        return (s.clone(), false);
    };
    let mut core = obj.clone();
    let mut nullable = core.remove("nullable") == Some(Value::Bool(true));
    if let Some(Value::Array(types)) = core.get("type") {
        let rest: Vec<Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .cloned()
            .collect();
        if rest.len() != types.len() {
            nullable = true;
        }
        let t = match rest.len() {
            1 => rest[0].clone(),
            _ => Value::Array(rest),
        };
        core.insert("type".into(), t);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(members)) = core.get(key) {
            let rest: Vec<Value> = members.iter().filter(|m| !is_null(m)).cloned().collect();
            if rest.len() == members.len() {
                continue;
            }
            nullable = true;
            core.remove(key);
            if rest.len() == 1 {
                // The member stands for the schema; annotations beside the
                // union (title, description, default) do not change types.
                let (inner, inner_null) = unwrap_nullable(&rest[0]);
                return (inner, nullable || inner_null);
            }
            core.insert(key.into(), Value::Array(rest));
        }
    }
    // 3.0's nullable reference: `allOf: [ {$ref} ]`.
    if let Some(Value::Array(members)) = core.get("allOf")
        && members.len() == 1
    {
        let (inner, inner_null) = unwrap_nullable(&members[0]);
        return (inner, nullable || inner_null);
    }
    (Value::Object(core), nullable)
}

/// A short description of a schema's type: `string(date-time)`,
/// `array<Item>`, `Item | null`.
fn describe(s: &Value) -> String {
    let (core, nullable) = unwrap_nullable(s);
    let mut d = describe_core(&core);
    if nullable {
        d.push_str(" | null");
    }
    d
}

fn describe_core(s: &Value) -> String {
    let Some(obj) = s.as_object() else {
        return match s {
            Value::Bool(true) => "any".into(),
            Value::Bool(false) => "nothing".into(),
            _ => "?".into(),
        };
    };
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        return ref_name(r).to_owned();
    }
    for (key, sep) in [("anyOf", " | "), ("oneOf", " | "), ("allOf", " & ")] {
        if let Some(Value::Array(members)) = obj.get(key) {
            let parts: Vec<String> = members.iter().map(describe).collect();
            return parts.join(sep);
        }
    }
    let ty = match obj.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => {
            let sample = obj
                .get("const")
                .or_else(|| obj.get("enum").and_then(|e| e.get(0)));
            match sample {
                Some(Value::String(_)) => "string".into(),
                Some(Value::Bool(_)) => "boolean".into(),
                Some(Value::Number(n)) if n.is_f64() => "number".into(),
                Some(Value::Number(_)) => "integer".into(),
                _ if obj.contains_key("properties") => "object".into(),
                _ if obj.contains_key("items") => "array".into(),
                _ => "any".into(),
            }
        }
    };
    match ty.as_str() {
        "array" => format!(
            "array<{}>",
            obj.get("items")
                .map(describe)
                .unwrap_or_else(|| "any".into())
        ),
        "object" => match obj.get("additionalProperties") {
            Some(ap @ Value::Object(_)) if !obj.contains_key("properties") => {
                format!("map<{}>", describe(ap))
            }
            _ => "object".into(),
        },
        _ => match obj.get("format").and_then(Value::as_str) {
            Some(fmt) => format!("{ty}({fmt})"),
            None => ty,
        },
    }
}

/// The allowed values of a schema, `const` included, if it lists them.
fn enum_values(s: &Value) -> Option<Vec<String>> {
    if let Some(c) = s.get("const") {
        return Some(vec![c.to_string()]);
    }
    let values = s.get("enum")?.as_array()?;
    Some(
        values
            .iter()
            .filter(|v| !v.is_null())
            .map(Value::to_string)
            .collect(),
    )
}

fn required_set(s: &Value) -> BTreeSet<String> {
    s.get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn properties(s: &Value) -> Option<&Map<String, Value>> {
    s.get("properties").and_then(Value::as_object)
}

impl Differ<'_> {
    fn push(
        &mut self,
        section: Section,
        breaking: bool,
        subject: impl Into<String>,
        text: impl Into<String>,
    ) {
        self.changes.push(Change {
            section,
            breaking,
            subject: subject.into(),
            text: text.into(),
        });
    }

    fn operations(&mut self) {
        let index = |doc: &Value| -> BTreeMap<(String, String), (Value, Value)> {
            operations(doc)
                .into_iter()
                .map(|(p, m, op, item)| ((p.to_owned(), m.to_owned()), (op.clone(), item.clone())))
                .collect()
        };
        let old_ops = index(self.old);
        let new_ops = index(self.new);
        let label = |(path, method): &(String, String), op: &Value| match op
            .get("operationId")
            .and_then(Value::as_str)
        {
            Some(id) => format!("{} {path} ({id})", method.to_uppercase()),
            None => format!("{} {path}", method.to_uppercase()),
        };
        for (key, (op, _)) in &old_ops {
            if !new_ops.contains_key(key) {
                self.push(Section::Operations, true, label(key, op), "removed");
            }
        }
        for (key, (op, _)) in &new_ops {
            if !old_ops.contains_key(key) {
                self.push(Section::Operations, false, label(key, op), "added");
            }
        }
        for (key, (new_op, new_item)) in &new_ops {
            let Some((old_op, old_item)) = old_ops.get(key) else {
                continue;
            };
            let subject = label(key, new_op);
            self.parameters(&subject, old_op, old_item, new_op, new_item);
            self.request_body(&subject, old_op, new_op);
            self.responses(&subject, old_op, new_op);
        }
    }

    fn parameters(
        &mut self,
        op: &str,
        old_op: &Value,
        old_item: &Value,
        new_op: &Value,
        new_item: &Value,
    ) {
        let old = parameters(self.old, old_item, old_op);
        let new = parameters(self.new, new_item, new_op);
        let required = |p: &Value| p.get("required") == Some(&Value::Bool(true));
        for name in old.keys() {
            if !new.contains_key(name) {
                self.push(Section::Parameters, true, format!("{op} {name}"), "removed");
            }
        }
        for (name, p) in &new {
            let subject = format!("{op} {name}");
            let Some(o) = old.get(name) else {
                let req = required(p);
                let how = if req { "required" } else { "optional" };
                self.push(Section::Parameters, req, subject, format!("added ({how})"));
                continue;
            };
            match (required(o), required(p)) {
                (false, true) => self.push(Section::Parameters, true, &subject, "now required"),
                (true, false) => self.push(Section::Parameters, false, &subject, "now optional"),
                _ => {}
            }
            let (Some(os), Some(ns)) = (o.get("schema"), p.get("schema")) else {
                continue;
            };
            if required(o) || required(p) {
                self.schema_change(Section::Parameters, &subject, os, ns, Dir::REQUEST, 0);
            } else {
                // An optional parameter is absent rather than null: the
                // `X | null` FastAPI writes for it says nothing more.
                let (os, _) = unwrap_nullable(os);
                let (ns, _) = unwrap_nullable(ns);
                self.schema_change(Section::Parameters, &subject, &os, &ns, Dir::REQUEST, 0);
            }
        }
    }

    fn request_body(&mut self, op: &str, old_op: &Value, new_op: &Value) {
        let old = old_op.get("requestBody").map(|b| resolve(self.old, b));
        let new = new_op.get("requestBody").map(|b| resolve(self.new, b));
        let required = |b: &Value| b.get("required") == Some(&Value::Bool(true));
        let subject = format!("{op} request body");
        match (old, new) {
            (None, None) => {}
            (Some(_), None) => self.push(Section::RequestBodies, true, subject, "removed"),
            (None, Some(b)) => {
                let req = required(b);
                let how = if req { "required" } else { "optional" };
                self.push(
                    Section::RequestBodies,
                    req,
                    subject,
                    format!("added ({how})"),
                );
            }
            (Some(o), Some(n)) => {
                match (required(o), required(n)) {
                    (false, true) => {
                        self.push(Section::RequestBodies, true, &subject, "now required")
                    }
                    (true, false) => {
                        self.push(Section::RequestBodies, false, &subject, "now optional")
                    }
                    _ => {}
                }
                self.content(Section::RequestBodies, &subject, o, n, Dir::REQUEST);
            }
        }
    }

    fn responses(&mut self, op: &str, old_op: &Value, new_op: &Value) {
        let codes = |o: &Value| {
            o.get("responses")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let old = codes(old_op);
        let new = codes(new_op);
        for code in old.keys() {
            if !new.contains_key(code) {
                let subject = format!("{op} {code} response");
                self.push(Section::Responses, false, subject, "removed");
            }
        }
        for (code, n) in &new {
            let subject = format!("{op} {code} response");
            let Some(o) = old.get(code) else {
                self.push(Section::Responses, false, subject, "added");
                continue;
            };
            let (o, n) = (resolve(self.old, o), resolve(self.new, n));
            self.content(Section::Responses, &subject, o, n, Dir::RESPONSE);
        }
    }

    /// Compares the media types and body schemas of a body or response.
    fn content(&mut self, section: Section, subject: &str, old: &Value, new: &Value, dir: Dir) {
        let media = |v: &Value| -> BTreeMap<String, Value> {
            v.get("content")
                .and_then(Value::as_object)
                .map(|c| c.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        };
        let (om, nm) = (media(old), media(new));
        if om.keys().ne(nm.keys()) {
            let list = |m: &BTreeMap<String, Value>| {
                if m.is_empty() {
                    "no body".to_owned()
                } else {
                    m.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            };
            // Losing the JSON body a client reads or writes breaks it.
            let lost_json =
                om.keys().any(|k| k.contains("json")) && !nm.keys().any(|k| k.contains("json"));
            self.push(
                section,
                lost_json,
                subject,
                format!("media types {} -> {}", list(&om), list(&nm)),
            );
        }
        for (media_type, o) in &om {
            let Some(n) = nm.get(media_type) else {
                continue;
            };
            if let (Some(os), Some(ns)) = (o.get("schema"), n.get("schema")) {
                let s = if om.len() > 1 {
                    format!("{subject} ({media_type})")
                } else {
                    subject.to_owned()
                };
                self.schema_change(section, &s, os, ns, dir, 0);
            }
        }
    }

    fn schemas(&mut self) {
        let schemas = |d: &Value| {
            d.pointer("/components/schemas")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let old = schemas(self.old);
        let new = schemas(self.new);
        for name in old.keys() {
            if !new.contains_key(name) {
                // The generated type of that name disappears.
                self.push(Section::Schemas, true, name.as_str(), "schema removed");
            }
        }
        for (name, n) in &new {
            let Some(o) = old.get(name) else {
                self.push(Section::Schemas, false, name.as_str(), "schema added");
                continue;
            };
            let dir = self.usage.get(name).copied().unwrap_or_default().or_both();
            self.schema_change(Section::Schemas, name, o, n, dir, 0);
        }
    }

    /// Compares two schemas found at the same place. A reference is compared
    /// by name only: the component itself is compared in its own right.
    fn schema_change(
        &mut self,
        section: Section,
        subject: &str,
        old: &Value,
        new: &Value,
        dir: Dir,
        depth: usize,
    ) {
        if depth > 16 {
            return;
        }
        let (oc, on) = unwrap_nullable(old);
        let (nc, nn) = unwrap_nullable(new);
        let (od, nd) = (describe_core(&oc), describe_core(&nc));
        if od != nd {
            self.push(
                section,
                true,
                subject,
                format!("type {} -> {}", describe(old), describe(new)),
            );
            return;
        }
        match (on, nn) {
            // A reader may now get null; a writer may no longer send it.
            (false, true) => self.push(section, dir.response, subject, "now nullable"),
            (true, false) => self.push(section, dir.request, subject, "no longer nullable"),
            _ => {}
        }
        if let (Some(ov), Some(nv)) = (enum_values(&oc), enum_values(&nc)) {
            for v in ov.iter().filter(|v| !nv.contains(v)) {
                self.push(section, true, subject, format!("enum value {v} removed"));
            }
            for v in nv.iter().filter(|v| !ov.contains(v)) {
                self.push(section, false, subject, format!("enum value {v} added"));
            }
        }
        if oc.get("$ref").is_some() {
            return;
        }
        if let (Some(oi), Some(ni)) = (oc.get("items"), nc.get("items")) {
            self.schema_change(section, &format!("{subject}[]"), oi, ni, dir, depth + 1);
        }
        if let (Some(oa @ Value::Object(_)), Some(na @ Value::Object(_))) = (
            oc.get("additionalProperties"),
            nc.get("additionalProperties"),
        ) {
            self.schema_change(section, &format!("{subject}{{}}"), oa, na, dir, depth + 1);
        }
        let empty = Map::new();
        let (op, np) = (
            properties(&oc).unwrap_or(&empty),
            properties(&nc).unwrap_or(&empty),
        );
        if op.is_empty() && np.is_empty() {
            return;
        }
        let (oreq, nreq) = (required_set(&oc), required_set(&nc));
        let direction = match (dir.request, dir.response) {
            (true, false) => " (sent in requests)",
            (false, true) => " (read in responses)",
            _ => "",
        };
        for name in op.keys() {
            if !np.contains_key(name) {
                self.push(
                    section,
                    dir.response,
                    format!("{subject}.{name}"),
                    format!("field removed{direction}"),
                );
            }
        }
        for (name, n) in np {
            let field = format!("{subject}.{name}");
            let (was, is) = (oreq.contains(name), nreq.contains(name));
            let Some(o) = op.get(name) else {
                let how = if is { "required" } else { "optional" };
                self.push(
                    section,
                    is && dir.request,
                    field,
                    format!("field added, {}, {how}{direction}", describe(n)),
                );
                continue;
            };
            match (was, is) {
                (false, true) => self.push(
                    section,
                    dir.request,
                    field.clone(),
                    format!("now required{direction}"),
                ),
                (true, false) => self.push(
                    section,
                    dir.response,
                    field.clone(),
                    format!("now optional{direction}"),
                ),
                _ => {}
            }
            self.schema_change(section, &field, o, n, dir, depth + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_nullable_forms_describe_alike() {
        let a = json!({"anyOf": [{"$ref": "#/components/schemas/X"}, {"type": "null"}]});
        let b = json!({"allOf": [{"$ref": "#/components/schemas/X"}], "nullable": true});
        let c = json!({"type": ["string", "null"], "format": "date-time"});
        let d = json!({"type": "string", "format": "date-time", "nullable": true});
        assert_eq!(describe(&a), "X | null");
        assert_eq!(describe(&a), describe(&b));
        assert_eq!(describe(&c), "string(date-time) | null");
        assert_eq!(describe(&c), describe(&d));
    }

    #[test]
    fn field_removal_breaks_readers_not_writers() {
        let doc = |props: Value, dir: &str| {
            let op = if dir == "response" {
                json!({"responses": {"200": {"description": "", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/T"}}}}}})
            } else {
                json!({"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/T"}}}}, "responses": {}})
            };
            json!({"openapi": "3.1.0", "info": {"version": "1"}, "paths": {"/t": {"post": op}},
                "components": {"schemas": {"T": {"type": "object", "properties": props}}}})
        };
        let both = json!({"a": {"type": "string"}, "b": {"type": "string"}});
        let one = json!({"a": {"type": "string"}});
        let read = diff(
            &doc(both.clone(), "response"),
            &doc(one.clone(), "response"),
        );
        assert_eq!(read.breaking(), 1, "{read}");
        let write = diff(&doc(both, "request"), &doc(one, "request"));
        assert_eq!((write.breaking(), write.changes.len()), (0, 1), "{write}");
    }
}
