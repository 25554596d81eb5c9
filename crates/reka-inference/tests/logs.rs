//! The API key never appears in logs, at any level, from any crate
//! (reqwest and hyper included). Alone in its test binary: `tracing` caches
//! per-callsite interest, and tests without a subscriber running on other
//! threads would make what is logged here depend on timing.

#[path = "sdk/common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex};

use reka_inference::{Client, Endpoint};
use reka_inference_sim::SimConfig;
use serde_json::json;

const KEY: &str = "sk-live-SECRET-4f9a";

/// Collects everything `tracing` writes, at every level and target.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_key_never_appears_in_debug_errors_or_logs() {
    let capture = Capture::default();
    let sink = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sim = common::sim_with(SimConfig::new().api_key(KEY).failure_rate(1.0)).await;
    let client = common::builder(&sim).api_key(KEY).build().unwrap();
    let job = client
        .submit(Endpoint::NANO_BANANA_TEXT_TO_IMAGE, json!({"prompt": "x"}))
        .await
        .unwrap();
    let err = job.wait().await.unwrap_err();
    let shown = format!(
        "{client:?} {job:?} {err} {err:?} {:?}",
        Client::builder().api_key(KEY)
    );
    assert!(!shown.contains(KEY), "{shown}");
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("reka.http"), "spans were logged: {logs}");
    assert!(!logs.contains(KEY), "the key is in the logs");
}

/// Issue 21: a public URL the service cannot reach is reported by the
/// check, and waits that find their jobs over without a delivery warn once,
/// with the URL (not once per job), while the receiver counts every one.
#[cfg(feature = "webhooks")]
#[tokio::test]
async fn a_wrong_webhook_url_is_warned_of_once_with_the_url() {
    use reka_inference::SubmitOptions;
    use reka_inference::webhook::WebhookReceiver;

    let capture = Capture::default();
    let sink = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sim = common::sim().await;
    let client = common::client(&sim);
    // Nothing listens there: the service's deliveries are all lost.
    let receiver = WebhookReceiver::new("http://127.0.0.1:1/wrong-hook").unwrap();
    let err = receiver.check_url().await.unwrap_err();
    assert!(
        matches!(err, reka_inference::Error::WebhookUnreachable { .. }),
        "{err:?}"
    );
    for i in 0..3 {
        let job = client
            .submit_with(
                Endpoint::NANO_BANANA_TEXT_TO_IMAGE,
                json!({"prompt": format!("p{i}")}),
                SubmitOptions::default().webhook(&receiver),
            )
            .await
            .unwrap();
        job.wait().await.unwrap();
    }
    let stats = receiver.stats();
    assert_eq!(stats.missed_deliveries, 3, "{stats:?}");
    assert!(stats.safety_net_looks >= 3, "{stats:?}");
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("no webhook delivery has ever reached"))
        .collect();
    assert_eq!(warnings.len(), 1, "{logs}");
    assert!(
        warnings[0].contains("http://127.0.0.1:1/wrong-hook"),
        "{}",
        warnings[0]
    );
}
