//! The idempotency key of a submit made by a tool call: derived from the
//! call itself (the server's namespace, the MCP session when there is one,
//! the tool, its arguments and the JSON-RPC request id), so that a host
//! that sends the same call again (a retry after a lost answer or a
//! reconnection) gets the job it already paid for, not a second one.
//!
//! The namespace is random per server, so that two servers (two desktop
//! sessions, each with its own stdio process) whose hosts number requests
//! alike never share a job. The arguments are taken in a canonical form
//! (object keys sorted), so that a retry whose JSON orders them otherwise
//! is still the same call.

use rmcp::model::RequestId;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The key for one call: `mcp-` and 64 hex digits.
pub(crate) fn derive_key(
    namespace: &str,
    session: Option<&str>,
    tool: &str,
    arguments: &Map<String, Value>,
    request_id: &RequestId,
) -> String {
    let mut hash = Sha256::new();
    // Every part is length-prefixed: no two calls share their bytes.
    for part in [
        b"reka-inference-mcp idempotency v1".as_slice(),
        namespace.as_bytes(),
        session.unwrap_or("").as_bytes(),
        tool.as_bytes(),
        canonical(&Value::Object(arguments.clone())).as_bytes(),
        serde_json::to_string(request_id)
            .unwrap_or_default()
            .as_bytes(),
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    let digest = hash.finalize();
    let mut key = String::with_capacity(4 + 64);
    key.push_str("mcp-");
    for byte in digest.iter() {
        key.push_str(&format!("{byte:02x}"));
    }
    key
}

/// `value` as JSON with every object's keys sorted.
fn canonical(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&map[k]));
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sorted(value)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::NumberOrString;
    use serde_json::json;

    fn args(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_same_call_gets_the_same_key_whatever_the_key_order() {
        let id = NumberOrString::Number(7);
        let a = derive_key(
            "ns",
            None,
            "generate",
            &args(json!({"endpoint": "a/b", "input": {"prompt": "x", "seed": 1}})),
            &id,
        );
        let b = derive_key(
            "ns",
            None,
            "generate",
            &args(json!({"input": {"seed": 1, "prompt": "x"}, "endpoint": "a/b"})),
            &id,
        );
        assert_eq!(a, b);
        assert!(a.starts_with("mcp-") && a.len() == 68, "{a}");
        assert!(a[4..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn anything_else_that_differs_gives_another_key() {
        let base = args(json!({"endpoint": "a/b", "input": {"prompt": "x"}}));
        let key = |ns: &str, session: Option<&str>, tool: &str, a: &Map<String, Value>, id| {
            derive_key(ns, session, tool, a, &id)
        };
        let n = |i| NumberOrString::Number(i);
        let reference = key("ns", None, "generate", &base, n(1));
        let others = [
            key("other", None, "generate", &base, n(1)),
            key("ns", Some("s1"), "generate", &base, n(1)),
            key("ns", None, "submit_job", &base, n(1)),
            key(
                "ns",
                None,
                "generate",
                &args(json!({"endpoint": "a/b", "input": {"prompt": "y"}})),
                n(1),
            ),
            key("ns", None, "generate", &base, n(2)),
            // The number 1 and the string "1" are different request ids.
            key(
                "ns",
                None,
                "generate",
                &base,
                NumberOrString::String("1".into()),
            ),
        ];
        for other in others {
            assert_ne!(other, reference);
        }
    }
}
