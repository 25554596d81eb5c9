//! The [`Client`]: configuration, and the calls that are not about one job.
//!
//! One `Client` is cheap to clone and meant to be shared: it holds the
//! connection pool, the transport (key, retries) and what the poller has
//! learnt about how long each endpoint's jobs take.

use std::fmt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use reka_inference_api::types::ModelInfo;
use serde::Serialize;
use url::Url;

use crate::batch::{Batch, Journal};
use crate::builder::ClientBuilder;
use crate::chat::Chat;
use crate::download;
use crate::endpoint::IntoEndpoint;
use crate::error::{Error, Result};
use crate::http::Http;
use crate::job::Job;
use crate::job_set::JobSet;
use crate::jobs::Jobs;
use crate::media::{MediaRef, Progress};
use crate::rate_limit::RateLimit;
use crate::submit::SubmitOptions;
use crate::submitter::{Submitter, SubmitterOptions};
use crate::transport::AuthHeader;
use crate::vocab::JobOutput;

/// A client of the inference API.
///
/// ```no_run
/// use reka_inference::{Client, Endpoint};
/// use serde_json::json;
///
/// # async fn run() -> reka_inference::Result<()> {
/// let client = Client::from_env()?; // REKA_API_KEY, optional REKA_BASE_URL
/// let done = client
///     .run(Endpoint::NANO_BANANA_TEXT_TO_IMAGE, json!({"prompt": "a lighthouse at dusk"}))
///     .await?;
/// println!("{}", done.output);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    http: Http,
    auth_header: AuthHeader,
    has_key: bool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waits = self.http.waits();
        f.debug_struct("Client")
            .field("base_url", &self.http.base_url().as_str())
            .field("auth_header", &self.auth_header)
            .field(
                "api_key",
                &if self.has_key { "<redacted>" } else { "<none>" },
            )
            .field("poll", &waits.poll)
            .field("retry", self.http.transport().retry_policy())
            .field("wait_timeout", &waits.timeout)
            .finish()
    }
}

impl Client {
    /// A client configured from the environment: `REKA_API_KEY` (required:
    /// [`Error::Config`] when it is missing, rather than a 401 on the first
    /// call) and `REKA_BASE_URL` (default [`DEFAULT_BASE_URL`](crate::DEFAULT_BASE_URL)).
    pub fn from_env() -> Result<Client> {
        let builder = Client::builder().from_env();
        if !builder.key_setting().0 {
            return Err(Error::Config(
                "REKA_API_KEY is not set (or empty): the API needs a key".into(),
            ));
        }
        builder.build()
    }

    /// A builder with the default settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A builder set up for a running simulator (feature `sim`): see
    /// [`ClientBuilder::for_sim`].
    #[cfg(feature = "sim")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
    pub fn builder_for_sim(sim: &reka_inference_sim::RunningSim) -> ClientBuilder {
        ClientBuilder::for_sim(sim)
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &Url {
        self.http.base_url()
    }

    /// The generated low-level client, sharing this client's transport
    /// (key, retries, redirects, limits).
    pub fn api(&self) -> &reka_inference_api::Client {
        self.http.api()
    }

    /// Listing jobs, pages followed for you.
    pub fn jobs(&self) -> Jobs {
        Jobs::new(self.http.clone())
    }

    /// OpenAI-compatible chat completions.
    pub fn chat(&self) -> Chat {
        Chat::new(self.http.clone())
    }

    /// A [`Submitter`]: many submits, a few at a time, paced by the
    /// service's rate limits.
    pub fn submitter<T: Send + 'static>(&self, options: SubmitterOptions) -> Submitter<T> {
        Submitter::new(self.http.clone(), options)
    }

    /// What the service said of its rate limit in its last answer to a
    /// submit (or, before any submit, to any call): `None` when it never
    /// said anything. See [`RateLimit`] for the headers read.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        let limits = self.http.transport().rate_limits();
        limits.get("submit").or_else(|| limits.latest())
    }

    /// An empty set of jobs to wait for together.
    pub fn job_set(&self) -> JobSet {
        JobSet::new(self.http.clone())
    }

    /// A batch of this client's jobs, journalled in `journal`: bulk work
    /// from a stream of items, crash-safe and exactly once (see
    /// [`batch`](crate::batch)).
    ///
    /// ```no_run
    /// # async fn run(client: reka_inference::Client) -> reka_inference::Result<()> {
    /// use reka_inference::batch::{BatchItem, MemoryJournal};
    ///
    /// let items = vec![BatchItem::new("fox", "nano-banana/text-to-image", serde_json::json!({"prompt": "a fox"}))?];
    /// let summary = client
    ///     .batch(MemoryJournal::default())
    ///     .run(futures::stream::iter(items), |_event| Ok(()))
    ///     .await?;
    /// assert_eq!(summary.succeeded + summary.failed, 1);
    /// # Ok(()) }
    /// ```
    pub fn batch<J: Journal>(&self, journal: J) -> Batch<J> {
        Batch::new(self.http.clone(), journal)
    }

    /// The endpoints this key can submit to.
    ///
    /// The list is read whichever wrapper the server uses (`models`,
    /// `items` or `data`), and an entry needs only `model_id` and
    /// `capability`: its `endpoint_id` is derived from them when absent.
    pub async fn models(&self) -> Result<Vec<ModelInfo>> {
        crate::models::list(&self.http).await
    }

    /// Submits a job with a fresh idempotency key.
    ///
    /// `input` is the endpoint's free-form input object (its fields are not
    /// published); anything that serialises to a JSON object works. The
    /// submit is retried with the same `Idempotency-Key` on transport errors
    /// and 5xx answers, so a lost response never creates a second job; when
    /// the outcome stays unknown, the error is
    /// [`Error::SubmitOutcomeUnknown`] with the key to submit again with.
    pub async fn submit(&self, endpoint: impl IntoEndpoint, input: impl Serialize) -> Result<Job> {
        self.submit_with(endpoint, input, SubmitOptions::default())
            .await
    }

    /// Submits a job with options (webhook, own idempotency key, deadline).
    pub async fn submit_with(
        &self,
        endpoint: impl IntoEndpoint,
        input: impl Serialize,
        options: SubmitOptions,
    ) -> Result<Job> {
        crate::submit::submit(&self.http, endpoint, input, options).await
    }

    /// A handle on a request submitted elsewhere (another process, before a
    /// restart), by its id. Nothing is sent until the handle is used; an id
    /// that cannot be a request id (empty, `..`, control characters) makes
    /// every call of the handle fail with [`Error::InvalidInput`].
    pub fn job(&self, request_id: impl Into<String>) -> Job {
        Job::new(self.http.clone(), request_id.into(), None, None)
    }

    /// [`Client::job`] for a request whose endpoint you know: its wait then
    /// learns, and uses, how long that endpoint's jobs take.
    ///
    /// ```no_run
    /// # async fn run(client: reka_inference::Client) -> reka_inference::Result<()> {
    /// let job = client.job_for("veo-3.1/text-to-video", "0193f6a2-...")?;
    /// let done = job.wait().await?;
    /// # Ok(()) }
    /// ```
    pub fn job_for(
        &self,
        endpoint: impl IntoEndpoint,
        request_id: impl Into<String>,
    ) -> Result<Job> {
        let endpoint = endpoint.into_endpoint()?;
        Ok(Job::new(
            self.http.clone(),
            request_id.into(),
            Some(endpoint),
            None,
        ))
    }

    /// Submits, waits with the default deadline, and returns the output.
    pub async fn run(
        &self,
        endpoint: impl IntoEndpoint,
        input: impl Serialize,
    ) -> Result<JobOutput> {
        self.submit(endpoint, input).await?.wait().await
    }

    /// Streams the file at `url` into `path`, calling `progress` as bytes
    /// arrive; returns the number of bytes written. Redirects are followed
    /// (the key goes only to the API's origin), and addresses that no
    /// output should point at (link-local, multicast, unspecified; loopback
    /// and private ones unless the API is on one) are refused.
    pub async fn download_to_file(
        &self,
        url: &str,
        path: impl AsRef<Path>,
        progress: impl FnMut(Progress) + Send,
    ) -> Result<u64> {
        download::download_to_file(&self.http, url, path.as_ref(), progress).await
    }

    /// Fetches the file at `url` into memory, up to the client's
    /// [`max_body_bytes`](ClientBuilder::max_body_bytes).
    pub async fn download_bytes(
        &self,
        url: &str,
        progress: impl FnMut(Progress) + Send,
    ) -> Result<Bytes> {
        download::download_bytes(&self.http, url, progress).await
    }

    /// Downloads every media file of a finished job into `dir` (created if
    /// missing), up to four at a time; returns the paths written, in output
    /// order. Each file is named `<request id>-<index>.<ext>`, the
    /// extension from the media type the server sends.
    ///
    /// ```no_run
    /// # async fn run(client: reka_inference::Client) -> reka_inference::Result<()> {
    /// let done = client.run("nano-banana/text-to-image", serde_json::json!({"prompt": "a fox"})).await?;
    /// for path in client.download_outputs(&done, "out").await? {
    ///     println!("saved {}", path.display());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn download_outputs(
        &self,
        output: &JobOutput,
        dir: impl AsRef<Path>,
    ) -> Result<Vec<PathBuf>> {
        // A fn item, not a closure: its signature is general over the
        // `&MediaRef` lifetime, which keeps this future `Send` for callers
        // that spawn it or box it.
        fn no_progress(_: usize, _: &MediaRef, _: Progress) {}
        download::download_outputs(&self.http, output, dir.as_ref(), no_progress).await
    }

    /// [`Client::download_outputs`], calling `progress` with the index of
    /// the file, where it is, and how far its download has come.
    pub async fn download_outputs_with_progress(
        &self,
        output: &JobOutput,
        dir: impl AsRef<Path>,
        progress: impl FnMut(usize, &MediaRef, Progress) + Send,
    ) -> Result<Vec<PathBuf>> {
        download::download_outputs(&self.http, output, dir.as_ref(), progress).await
    }
}

impl ClientBuilder {
    /// Checks the settings and builds the client.
    pub fn build(self) -> Result<Client> {
        let (has_key, auth_header) = self.key_setting();
        Ok(Client {
            http: self.build_http()?,
            auth_header,
            has_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_never_shows_in_debug() {
        let b = Client::builder().api_key("sk-secret-123");
        assert!(!format!("{b:?}").contains("sk-secret-123"));
        let c = b.build().unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("sk-secret-123"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
