//! Shared helpers: a simulator plus a client, and small request shortcuts.

use std::time::{Duration, Instant};

use reka_inference_sim::{Catalog, RunningSim, SimConfig, samples, start};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

pub const KEY: &str = "test-key";

/// A one-endpoint catalog (`m/edit`) with `workers` workers and fixed `secs` jobs.
pub fn fixed_catalog(workers: u32, secs: f64) -> Catalog {
    Catalog::from_json(&format!(
        r#"{{"chat_models":["qwen3-vl-32b"],"models":[{{"model_id":"m","capability":"edit","workers":{workers},"duration":{{"fixed":{secs}}}}}]}}"#
    ))
    .unwrap()
}

/// A small valid image, inline: what an `image_url` may be.
pub fn image() -> String {
    samples::png_data_uri(4, 3)
}

/// A valid input of the default catalog's endpoint `endpoint` (by its
/// capability), with `prompt` as its prompt or text.
pub fn input_for(endpoint: &str, prompt: &str) -> Value {
    match endpoint.rsplit('/').next().unwrap_or_default() {
        "image-to-video" | "image-to-bbox" | "edit" => {
            json!({"prompt": prompt, "image_url": image()})
        }
        "text-to-speech" => json!({"text": prompt}),
        _ => json!({"prompt": prompt}),
    }
}

/// A simulator and a client that sends `KEY`.
pub struct Env {
    pub sim: RunningSim,
    pub http: reqwest::Client,
}

/// One answer: status, headers, body text and its JSON (Null when not JSON).
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a 4xx with the error envelope and returns the error object.
    pub fn error(&self, status: u16, kind: &str) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert!(self.header("x-request-id").is_some());
        let e = &self.json["error"];
        assert_eq!(e["type"], kind, "{}", self.text);
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
        e
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

impl Env {
    pub async fn new(config: SimConfig) -> Env {
        Env {
            sim: start(config.api_key(KEY)).await.unwrap(),
            http: client(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.sim.base_url(), path)
    }

    pub async fn answer(resp: reqwest::Response) -> Answer {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            text,
            json,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        Env::answer(
            self.http
                .get(self.url(path))
                .header("X-Api-Key", KEY)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn get_as(&self, path: &str, key: &str) -> Answer {
        Env::answer(
            self.http
                .get(self.url(path))
                .header("X-Api-Key", key)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        Env::answer(
            self.http
                .post(self.url(path))
                .header("X-Api-Key", KEY)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Submits `input` to an endpoint id and returns the request id.
    pub async fn submit(&self, endpoint: &str, input: Value) -> String {
        let a = self
            .post(
                &format!("/v2/inference/{endpoint}"),
                json!({ "input": input }),
            )
            .await;
        assert_eq!(a.status, 202, "{}", a.text);
        a.json["request_id"].as_str().unwrap().to_string()
    }

    pub async fn status(&self, id: &str) -> Value {
        let a = self
            .get(&format!("/v2/inference/requests/{id}/status"))
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.json
    }

    pub async fn result(&self, id: &str) -> Value {
        let a = self.get(&format!("/v2/inference/requests/{id}")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.json
    }

    /// Polls until the request reaches `status` (generous 30 s bound).
    pub async fn wait_for(&self, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.status(id).await;
            if s["status"] == status {
                return s;
            }
            assert!(Instant::now() < deadline, "{id} stuck at {s}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn admin_stats(&self) -> Value {
        let a = Env::answer(self.http.get(self.url("/_sim/stats")).send().await.unwrap()).await;
        assert_eq!(a.status, 200);
        a.json
    }
}

/// Waits up to 30 s for `cond` to hold.
pub async fn eventually<F: AsyncFnMut() -> bool>(what: &str, mut cond: F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
