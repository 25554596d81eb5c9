//! Downloads of a job's files to disk.

use crate::common;
use reka_inference::Endpoint;
use serde_json::json;

#[tokio::test(start_paused = true)]
async fn downloads_stream_the_served_files_to_disk() {
    let sim = common::sim().await;
    let client = common::client(&sim);
    let done = client
        .run(
            Endpoint::REKA_TTS_1_TEXT_TO_SPEECH,
            json!({"text": "hello"}),
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut last = None;
    let paths = client
        .download_outputs_with_progress(&done, dir.path(), |_, _, p| last = Some(p))
        .await
        .unwrap();
    assert_eq!(paths.len(), done.media().len());
    let bytes = std::fs::read(&paths[0]).unwrap();
    assert_eq!(&bytes[..4], b"RIFF", "a WAV file");
    let direct = client
        .download_bytes(&done.media()[0].url, |_| {})
        .await
        .unwrap();
    assert_eq!(bytes, direct.to_vec());
    let progress = last.unwrap();
    assert_eq!(progress.received, bytes.len() as u64);
    // No partial file is left behind.
    assert!(
        std::fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".part"))
    );
}
