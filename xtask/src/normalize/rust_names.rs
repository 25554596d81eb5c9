//! Rust names progenitor would give twice: a parameter named like a field
//! or method of the generated builder (`new`, `send`, `body`..) or a local
//! of its `send` (`header_map`, `encode_path`), or like another parameter,
//! gets another Rust name. Its name on the wire does not change: a query or
//! header parameter keeps it in [`WIRE_NAME_EXTENSION`], which the
//! generator writes back into the request; a path parameter is positional.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::{METHODS, Normalizer, Rule, WIRE_NAME_EXTENSION, snake_key};

/// Names a parameter of every builder must not take: the builder's own
/// `new` and `send`, and the locals of `send` that progenitor does not
/// make unique (`header_map` is shadowed before the headers are written;
/// `encode_path` is the function that writes the path).
const ALWAYS_RESERVED: &[&str] = &["new", "send", "header_map", "encode_path"];

/// The methods of the generated `Client` an operation must not be named
/// by: its constructors, and the methods of progenitor's `ClientInfo` and
/// `ClientHooks` traits, which the client's hand-written hooks call.
pub(super) const CLIENT_METHODS: &[&str] = &[
    "new",
    "new_with_client",
    "api_version",
    "baseurl",
    "client",
    "inner",
    "pre",
    "post",
    "exec",
];

/// The Rust names a parameter of an operation must not take.
pub(super) fn reserved(has_body: bool, paginated: bool) -> BTreeSet<String> {
    let mut taken: BTreeSet<String> = ALWAYS_RESERVED.iter().map(|s| (*s).to_owned()).collect();
    if has_body {
        // The body's setters.
        taken.insert("body".to_owned());
        taken.insert("body_map".to_owned());
    }
    if paginated {
        taken.insert("stream".to_owned());
    }
    taken
}

/// `<name>_param`, or `<name>_param2`.., the first not in `taken`.
pub(super) fn unused(name: &str, taken: &BTreeSet<String>) -> String {
    (1..)
        .map(|n| match n {
            1 => format!("{name}_param"),
            n => format!("{name}_param{n}"),
        })
        .find(|candidate| !taken.contains(candidate))
        .unwrap_or_default()
}

impl Normalizer {
    /// Renames the path template variables whose Rust name is reserved
    /// (`/items/{send}`) or another variable's (`{item-id}` beside
    /// `{item_id}`), in the path and in every path parameter of its
    /// operations. The URL is unchanged: the template's variables are
    /// filled by position.
    pub(super) fn rename_path_variables(&mut self, paths: &mut Map<String, Value>) {
        let reserved = reserved(true, true);
        let mut renamed_paths: Vec<RenamedPath> = Vec::new();
        for path in paths.keys() {
            let mut taken: BTreeSet<String> = BTreeSet::new();
            let mut renames = Vec::new();
            for var in template_variables(path) {
                let key = snake_key(&var);
                if reserved.contains(&key) || taken.contains(&key) {
                    let mut blocked = taken.clone();
                    blocked.extend(reserved.iter().cloned());
                    let new = unused(&key, &blocked);
                    taken.insert(new.clone());
                    renames.push((var, new));
                } else {
                    taken.insert(key);
                }
            }
            if !renames.is_empty() {
                let mut new_path = path.clone();
                for (from, to) in &renames {
                    new_path = new_path.replace(&format!("{{{from}}}"), &format!("{{{to}}}"));
                }
                renamed_paths.push((path.clone(), new_path, renames));
            }
        }
        if renamed_paths.is_empty() {
            return;
        }
        let old = std::mem::take(paths);
        for (path, mut item) in old {
            match renamed_paths.iter().find(|(from, _, _)| *from == path) {
                Some((_, new_path, renames)) => {
                    self.rename_path_parameters(&mut item, renames);
                    paths.insert(new_path.clone(), item);
                }
                None => {
                    paths.insert(path, item);
                }
            }
        }
    }

    fn rename_path_parameters(&mut self, item: &mut Value, renames: &[(String, String)]) {
        let Some(item) = item.as_object_mut() else {
            return;
        };
        let mut lists: Vec<&mut Value> = Vec::new();
        for (key, value) in item.iter_mut() {
            if key == "parameters" {
                lists.push(value);
            } else if METHODS.contains(&key.as_str())
                && let Some(params) = value.get_mut("parameters")
            {
                lists.push(params);
            }
        }
        for list in lists {
            for p in list.as_array_mut().into_iter().flatten() {
                // A shared component cannot be renamed for one path: the
                // operation gets its own copy.
                if p.get("$ref").is_some()
                    && let Some(resolved) = self.resolve(p)
                {
                    *p = resolved;
                }
                let is_path = p.get("in").and_then(Value::as_str) == Some("path");
                let Some(name) = p.get("name").and_then(Value::as_str).map(str::to_owned) else {
                    continue;
                };
                if let Some((_, to)) = renames.iter().find(|(from, _)| *from == name)
                    && is_path
                {
                    p["name"] = json!(to);
                    p[WIRE_NAME_EXTENSION] = json!(name);
                    self.report.hit(Rule::RenamedParameter);
                }
            }
        }
    }
}

/// A path whose variables are renamed: the path, the new path, and each
/// variable's old and new name.
type RenamedPath = (String, String, Vec<(String, String)>);

/// The variables of a path template, in order: `/a/{b}/{c}` gives `b`, `c`.
fn template_variables(path: &str) -> Vec<String> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unused_names_count_up() {
        let taken: BTreeSet<String> = ["send_param".to_owned()].into();
        assert_eq!(unused("send", &taken), "send_param2");
        assert_eq!(unused("new", &taken), "new_param");
    }

    #[test]
    fn reserved_names_follow_the_builder() {
        assert!(reserved(false, false).contains("send"));
        assert!(!reserved(false, false).contains("body"));
        assert!(reserved(true, false).contains("body_map"));
        assert!(reserved(false, true).contains("stream"));
    }
}
