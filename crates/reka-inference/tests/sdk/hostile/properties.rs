//! Property tests (the fuzzing of this crate: cargo-fuzz needs a nightly
//! toolchain this project does not use). `PROPTEST_CASES=20000` runs a
//! longer campaign, as the benchmark command does.

use bytes::Bytes;
use proptest::prelude::*;
use reka_inference::types::{ListRequestsResponse, ResultResponse, StatusResponse};
use reka_inference::{ApiError, Endpoint, JobStatus, find_media};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Map, Value, json};

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
        "https?://[a-z]{1,8}/[a-z]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("(url|[a-z_]{1,10})", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A status string: the known ones, their odd spellings, and anything.
fn status_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("IN_QUEUE".to_owned()),
        Just("IN_PROGRESS".to_owned()),
        Just("COMPLETED".to_owned()),
        Just("CANCELED".to_owned()),
        "[A-Z_]{1,16}",
        ".{0,12}",
    ]
}

proptest! {
    #[test]
    fn error_answers_of_any_shape_are_read_without_loss(
        status in 400u16..600,
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..256).prop_map(Bytes::from),
            json_value().prop_map(|v| Bytes::from(v.to_string())),
            (json_value(), json_value()).prop_map(|(a, b)| Bytes::from(json!({"error": {"type": a, "message": b}}).to_string())),
            json_value().prop_map(|d| Bytes::from(json!({"detail": d}).to_string())),
        ],
    ) {
        let status = StatusCode::from_u16(status).unwrap();
        let e = ApiError::from_parts(status, &HeaderMap::new(), body.clone());
        prop_assert_eq!(e.raw_body, body);
        prop_assert!(!e.kind.is_empty());
        prop_assert!(!e.message.is_empty());
    }

    #[test]
    fn endpoint_ids_parse_back_to_themselves(text in ".{0,40}") {
        if let Ok(e) = Endpoint::new(text.clone()) {
            prop_assert_eq!(e.as_str(), text.as_str());
            prop_assert_eq!(format!("{}/{}", e.model(), e.capability()), text);
        }
    }

    #[test]
    fn media_found_in_any_output_are_http_urls(output in json_value()) {
        for m in find_media(&output) {
            prop_assert!(m.url.starts_with("http://") || m.url.starts_with("https://"));
            // The pointer leads back to the object holding the url.
            let at = output.pointer(&m.pointer).and_then(|o| o.get("url")).and_then(Value::as_str);
            prop_assert_eq!(at, Some(m.url.as_str()));
        }
    }

    /// Unknown fields and unknown statuses never break decoding.
    #[test]
    fn bodies_with_unknown_fields_and_statuses_decode(
        status in status_text(),
        extra in proptest::collection::btree_map("x_[a-z]{1,8}", json_value(), 0..4),
        output in proptest::option::of(proptest::collection::btree_map("[a-z]{1,8}", json_value(), 0..4)),
    ) {
        let extra: Map<String, Value> = extra.into_iter().collect();
        let mut s = json!({"request_id": "r1", "status": status, "queue_position": 3, "logs": [{"message": "m", "level": "INFO"}]});
        let mut r = json!({"request_id": "r1", "status": status, "output": output.map(|o| o.into_iter().collect::<Map<_, _>>())});
        let mut item = json!({"request_id": "r1", "status": status, "endpoint_id": "a/b"});
        for v in [&mut s, &mut r, &mut item] {
            v.as_object_mut().unwrap().extend(extra.clone());
        }
        let decoded: StatusResponse = serde_json::from_value(s).unwrap();
        prop_assert_eq!(decoded.status.clone(), JobStatus::from(status.as_str()));
        let _: ResultResponse = serde_json::from_value(r).unwrap();
        let page: ListRequestsResponse = serde_json::from_value(json!({"items": [item], "has_more": false, "x_new": 1})).unwrap();
        prop_assert_eq!(page.items.len(), 1);
    }
}
