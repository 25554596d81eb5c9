//! The API key goes only to the configured origin and never shows up in
//! `Debug` output, errors or logs.

use crate::common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::get;
use reka_inference::{AuthHeader, Client, Endpoint};
use reka_inference_sim::SimConfig;
use serde_json::json;

const KEY: &str = "sk-live-SECRET-4f9a";

/// A server on its own port (another origin) that records every request's
/// headers and answers each with a few bytes, or a redirect to `/elsewhere`.
async fn recorder(redirect_to: Option<String>) -> (String, Arc<Mutex<Vec<HeaderMap>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = Router::new().fallback(get(move |uri: Uri, headers: HeaderMap| {
        let log = log.clone();
        let redirect_to = redirect_to.clone();
        async move {
            log.lock().unwrap().push(headers);
            match redirect_to {
                Some(target) if uri.path() != "/elsewhere" => (
                    StatusCode::FOUND,
                    [("location", format!("{target}/elsewhere"))],
                    "",
                )
                    .into_response(),
                _ => (StatusCode::OK, "file-bytes").into_response(),
            }
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn carries_key(h: &HeaderMap) -> bool {
    h.values()
        .any(|v| v.to_str().is_ok_and(|s| s.contains(KEY)))
}

#[tokio::test(start_paused = true)]
async fn urls_from_responses_on_another_origin_never_receive_the_key() {
    let (other, seen) = recorder(None).await;
    // The simulator advertises status/result/cancel and file URLs on `other`.
    let sim = common::sim_with(SimConfig::new().api_key(KEY).advertised_base_url(&other)).await;
    let client = common::builder(&sim).api_key(KEY).build().unwrap();
    let done = client
        .run(Endpoint::NANO_BANANA_TEXT_TO_IMAGE, json!({"prompt": "x"}))
        .await
        .unwrap();
    let media = done.media();
    assert!(media[0].url.starts_with(&other), "{media:?}");
    let bytes = client.download_bytes(&media[0].url, |_| {}).await.unwrap();
    assert_eq!(&bytes[..], b"file-bytes");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "the download reached the other origin");
    assert!(!seen.iter().any(carries_key), "the key leaked: {seen:?}");
}

/// A CDN's redirect (to a signed URL on another origin) is followed, but
/// the key stays with the API's origin, at every hop.
#[tokio::test(start_paused = true)]
async fn download_redirects_to_another_origin_are_followed_without_the_key() {
    let (other, other_seen) = recorder(None).await;
    let (api, api_seen) = recorder(Some(other.clone())).await;
    let client = Client::builder()
        .api_key(KEY)
        .base_url(&api)
        .build()
        .unwrap();
    let bytes = client
        .download_bytes(&format!("{api}/files/a.png"), |_| {})
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"file-bytes");
    // The configured origin got the key; the redirect target got the
    // request without it.
    assert!(api_seen.lock().unwrap().iter().all(carries_key));
    let other_seen = other_seen.lock().unwrap();
    assert_eq!(other_seen.len(), 1);
    assert!(!other_seen.iter().any(carries_key), "{other_seen:?}");
}

/// An API call is never redirected to another origin: the 302 comes back
/// as the answer, and nothing reaches the other origin.
#[tokio::test(start_paused = true)]
async fn api_calls_do_not_follow_redirects_to_another_origin() {
    let (other, other_seen) = recorder(None).await;
    let (api, _) = recorder(Some(other.clone())).await;
    let client = Client::builder()
        .api_key(KEY)
        .base_url(&api)
        .build()
        .unwrap();
    let err = client.job("req_1").status().await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(302));
    assert!(other_seen.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn bearer_style_authenticates_and_a_wrong_key_is_a_typed_401() {
    let sim = common::sim_with(SimConfig::new().api_key(KEY)).await;
    let bearer = common::builder(&sim)
        .api_key(KEY)
        .auth_header(AuthHeader::Bearer)
        .build()
        .unwrap();
    assert!(!bearer.models().await.unwrap().is_empty());
    let wrong = common::builder(&sim).api_key("sk-wrong").build().unwrap();
    let err = wrong.models().await.unwrap_err();
    assert_eq!(
        err.api_error().map(|a| a.kind.as_str()),
        Some("authentication_error")
    );
    assert!(!format!("{err} {err:?}").contains("sk-wrong"));
}
