//! A lifecycle status the spec does not list never fails a call.
//!
//! The spec lists five statuses; a server that adds one (`EXPIRED`, say)
//! must still be readable in every body that carries a status, and the
//! value must survive a round trip unchanged. `CANCELED`, the American
//! spelling, reads as cancelled.

use std::sync::{Arc, Mutex};

use reka_inference_api::types::{
    ListRequestsResponse, RequestItem, ResultResponse, StatusResponse, SubmitResponse,
};
use reka_inference_api::{BoxFuture, Client, Hooks, RequestStatus, Transport, TransportFailure};
use serde_json::{Value, json};

const ID: &str = "req_01JNV7C9W3B6Q2ZK8T4M5XH1PD";

fn bodies(status: &str) -> [Value; 4] {
    let url =
        "https://vision-agent.api.reka.ai/v2/inference/requests/req_01JNV7C9W3B6Q2ZK8T4M5XH1PD";
    [
        json!({"request_id": ID, "status": status}),
        json!({"request_id": ID, "status": status, "output": null, "error": null}),
        json!({"request_id": ID, "status": status, "endpoint_id": "sam3/image-to-bbox",
               "created_at": "2026-03-01T10:00:00Z"}),
        json!({"request_id": ID, "status": status, "status_url": format!("{url}/status"),
               "response_url": url, "cancel_url": format!("{url}/cancel")}),
    ]
}

/// Decodes the status out of each body type that carries one, and what each
/// writes back.
fn read_all(status: &str) -> Vec<(&'static str, RequestStatus, Value)> {
    let [s, r, i, sub] = bodies(status);
    fn go<T: serde::de::DeserializeOwned + serde::Serialize>(
        name: &'static str,
        v: Value,
        status: impl Fn(&T) -> RequestStatus,
    ) -> (&'static str, RequestStatus, Value) {
        let decoded: T =
            serde_json::from_value(v).unwrap_or_else(|e| panic!("{name} does not decode: {e}"));
        let wire = serde_json::to_value(&decoded).expect("encodes");
        (name, status(&decoded), wire["status"].clone())
    }
    vec![
        go::<StatusResponse>("StatusResponse", s, |b| b.status.clone()),
        go::<ResultResponse>("ResultResponse", r, |b| b.status.clone()),
        go::<RequestItem>("RequestItem", i, |b| b.status.clone()),
        go::<SubmitResponse>("SubmitResponse", sub, |b| {
            b.status.clone().expect("the body carries a status")
        }),
    ]
}

#[test]
fn unlisted_status_decodes_everywhere_and_round_trips() {
    for (name, status, wire) in read_all("EXPIRED") {
        assert_eq!(status, RequestStatus::Unknown("EXPIRED".into()), "{name}");
        assert_eq!(status.is_terminal(), None, "{name}");
        assert_eq!(wire, "EXPIRED", "{name}");
    }
}

#[test]
fn american_spelling_reads_as_cancelled() {
    for (name, status, wire) in read_all("CANCELED") {
        assert_eq!(status, RequestStatus::Cancelled, "{name}");
        assert_eq!(status.is_terminal(), Some(true), "{name}");
        assert_eq!(wire, "CANCELLED", "{name}");
    }
}

#[test]
fn case_and_white_space_do_not_matter_but_unknown_values_are_kept_as_sent() {
    for (text, expected) in [
        ("completed", RequestStatus::Completed),
        (" In_Progress ", RequestStatus::InProgress),
        ("canceled", RequestStatus::Cancelled),
        ("in_queue", RequestStatus::InQueue),
    ] {
        assert_eq!(RequestStatus::from(text), expected, "{text:?}");
        for (name, status, wire) in read_all(text) {
            assert_eq!(status, expected, "{name}");
            assert_eq!(wire, expected.as_str(), "{name}");
        }
    }
    assert_eq!(
        RequestStatus::from("expired"),
        RequestStatus::Unknown("expired".into())
    );
}

#[test]
fn listed_statuses_decode_to_their_variants() {
    for (text, expected) in [
        ("IN_QUEUE", RequestStatus::InQueue),
        ("IN_PROGRESS", RequestStatus::InProgress),
        ("COMPLETED", RequestStatus::Completed),
        ("FAILED", RequestStatus::Failed),
        ("CANCELLED", RequestStatus::Cancelled),
    ] {
        for (name, status, wire) in read_all(text) {
            assert_eq!(status, expected, "{name}");
            assert_eq!(wire, text, "{name}");
        }
    }
}

#[test]
fn a_page_with_an_unlisted_status_still_decodes() {
    let page: ListRequestsResponse = serde_json::from_value(json!({
        "items": [
            {"request_id": "req_a", "status": "COMPLETED"},
            {"request_id": "req_b", "status": "EXPIRED"},
            {"request_id": "req_c", "status": "ARCHIVED_FOR_AUDIT"}
        ],
        "next_offset": null,
        "has_more": false
    }))
    .expect("a page with unknown statuses decodes");
    let statuses: Vec<&str> = page.items.iter().map(|i| i.status.as_str()).collect();
    assert_eq!(statuses, ["COMPLETED", "EXPIRED", "ARCHIVED_FOR_AUDIT"]);
    assert!(!page.items[1].status.is_known());
}

/// Answers every request with one canned JSON body and keeps the URL asked.
struct Canned {
    body: Value,
    urls: Arc<Mutex<Vec<String>>>,
}

impl Transport for Canned {
    fn execute<'a>(
        &'a self,
        _client: &'a reqwest::Client,
        request: reqwest::Request,
        _operation_id: &'static str,
    ) -> BoxFuture<'a, Result<reqwest::Response, TransportFailure>> {
        if let Ok(mut urls) = self.urls.lock() {
            urls.push(request.url().to_string());
        }
        let response = http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(self.body.to_string())
            .expect("a valid response");
        Box::pin(std::future::ready(Ok(reqwest::Response::from(response))))
    }
}

#[test]
fn list_call_filters_on_and_returns_an_unlisted_status() {
    let urls = Arc::new(Mutex::new(Vec::new()));
    let hooks = Hooks::new(Canned {
        body: json!({"items": [{"request_id": "req_b", "status": "EXPIRED"}]}),
        urls: urls.clone(),
    });
    let client = Client::new("http://127.0.0.1:9", hooks);
    let page = futures::executor::block_on(client.list_requests().status("EXPIRED").send())
        .expect("the call succeeds")
        .into_inner();
    assert_eq!(
        page.items[0].status,
        RequestStatus::Unknown("EXPIRED".into())
    );
    let urls = urls.lock().expect("urls").clone();
    assert_eq!(
        urls,
        ["http://127.0.0.1:9/v2/inference/requests?status=EXPIRED"]
    );
}
