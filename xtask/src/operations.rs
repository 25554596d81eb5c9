//! The table of operations written beside progenitor's client.
//!
//! Progenitor turns each operation into a method, and the method knows its
//! path; nothing else in the generated crate does. Code built on the client
//! sometimes needs the paths as data: the SDK finds the API's root in them
//! (to accept a base URL given with it, and to send the chat operation to
//! another OpenAI-compatible server), and a reader of the crate sees every
//! operation in one place. So the generator writes `pub mod operations`,
//! from the same normalised document, and a renamed path reaches the table
//! as it reaches the method.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use serde_json::Value;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The operation's id, as progenitor names its method.
    pub id: String,
    /// The HTTP method, upper case.
    pub method: String,
    /// The path template, as written in the document.
    pub path: String,
}

/// The operations of a normalised document, in document order.
pub fn rows(normalized: &Value) -> Vec<Row> {
    let Some(paths) = normalized.get("paths").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            let Some(id) = item
                .get(method)
                .and_then(|op| op.get("operationId"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            rows.push(Row {
                id: id.to_owned(),
                method: method.to_ascii_uppercase(),
                path: path.clone(),
            });
        }
    }
    rows
}

/// The longest run of leading literal segments every path shares:
/// `/v2/inference` for the inference API, empty when there is none.
pub fn api_root(rows: &[Row]) -> String {
    let mut common: Option<Vec<&str>> = None;
    for row in rows {
        let segments: Vec<&str> = row
            .path
            .split('/')
            .filter(|s| !s.is_empty())
            .take_while(|s| !s.contains('{'))
            .collect();
        common = Some(match common {
            None => segments,
            Some(before) => before
                .iter()
                .zip(&segments)
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| *a)
                .collect(),
        });
    }
    let mut common = common.unwrap_or_default();
    // A path that is all literal (`/v2/inference/models`) must keep a last
    // segment of its own: the root is what is above every operation.
    if rows
        .iter()
        .any(|r| r.path.split('/').filter(|s| !s.is_empty()).count() == common.len())
    {
        common.pop();
    }
    common.iter().map(|s| format!("/{s}")).collect()
}

/// `pub mod operations { ... }`: a constant per operation, `ALL`, and `API_ROOT`.
pub fn table(normalized: &Value) -> TokenStream {
    let rows = rows(normalized);
    let root = api_root(&rows);
    let names = unique_names(&rows);
    let consts = rows.iter().zip(&names).map(|(row, name)| {
        let (id, method, path) = (&row.id, &row.method, &row.path);
        let doc = format!("`{method} {path}`");
        quote! {
            #[doc = #doc]
            pub const #name: Operation = Operation { id: #id, method: #method, path: #path };
        }
    });
    quote! {
        /// Every operation of the document, as data: its id (the method's
        /// name on [`Client`](super::Client)), HTTP method and path template.
        pub mod operations {
            /// One operation of the document.
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
            pub struct Operation {
                /// The `operationId`, which names the generated method.
                pub id: &'static str,
                /// The HTTP method, upper case.
                pub method: &'static str,
                /// The path template, with `{name}` for each path parameter.
                pub path: &'static str,
            }

            /// The leading path segments every operation shares
            /// (empty when they share none).
            pub const API_ROOT: &str = #root;

            #(#consts)*

            /// Every operation, in document order.
            pub const ALL: &[Operation] = &[#(#names),*];
        }
    }
}

/// The constant of each row: its [`const_name`], with `_2`, `_3`, ...
/// after a name an earlier row already took (`get.user` and `get_user`).
fn unique_names(rows: &[Row]) -> Vec<proc_macro2::Ident> {
    let mut taken = std::collections::BTreeSet::new();
    rows.iter()
        .map(|row| {
            let base = const_name(&row.id);
            let mut name = base.clone();
            let mut n = 1;
            while !taken.insert(name.clone()) {
                n += 1;
                name = format!("{base}_{n}");
            }
            format_ident!("{}", name)
        })
        .collect()
}

/// `get_status` to `GET_STATUS`; anything that cannot be in an identifier
/// becomes `_`, and a leading digit gets a `_` before it.
fn const_name(id: &str) -> String {
    let mut name: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(paths: Value) -> Value {
        json!({"openapi": "3.0.3", "paths": paths})
    }

    #[test]
    fn the_root_is_what_every_path_shares() {
        let d = doc(json!({
            "/v2/inference/models": {"get": {"operationId": "list_models"}},
            "/v2/inference/requests/{request_id}": {"get": {"operationId": "get_result"}},
            "/v2/inference/{model}/{capability}": {"post": {"operationId": "submit"}},
        }));
        assert_eq!(api_root(&rows(&d)), "/v2/inference");
    }

    #[test]
    fn a_lone_literal_path_keeps_its_last_segment() {
        let d = doc(json!({"/v1/models": {"get": {"operationId": "m"}}}));
        assert_eq!(api_root(&rows(&d)), "/v1");
        let d = doc(json!({
            "/a/x": {"get": {"operationId": "x"}},
            "/b/y": {"get": {"operationId": "y"}},
        }));
        assert_eq!(api_root(&rows(&d)), "");
        assert_eq!(api_root(&[]), "");
    }

    #[test]
    fn names_are_identifiers() {
        assert_eq!(const_name("get_status"), "GET_STATUS");
        assert_eq!(const_name("list-models.v2"), "LIST_MODELS_V2");
        assert_eq!(const_name("2fa"), "_2FA");
        assert_eq!(const_name(""), "_");
        let rows: Vec<Row> = ["get.user", "get_user", "get-user"]
            .into_iter()
            .map(|id| Row {
                id: id.into(),
                method: "GET".into(),
                path: "/u".into(),
            })
            .collect();
        let names: Vec<String> = unique_names(&rows).iter().map(|i| i.to_string()).collect();
        assert_eq!(names, ["GET_USER", "GET_USER_2", "GET_USER_3"]);
    }

    #[test]
    fn the_table_lists_every_method_of_a_path() {
        let d = doc(json!({
            "/things/{id}": {
                "get": {"operationId": "get_thing"},
                "delete": {"operationId": "delete_thing"},
                "parameters": []
            }
        }));
        let rows = rows(&d);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].method, "GET");
        assert_eq!(rows[1].method, "DELETE");
        let code = table(&d).to_string();
        assert!(code.contains("GET_THING"), "{code}");
        assert!(code.contains("\"/things/{id}\""), "{code}");
    }
}
