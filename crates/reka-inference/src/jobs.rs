//! Listing requests: filters, and pages followed for you.

use chrono::{DateTime, Utc};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use reka_inference_api::RequestStatus as JobStatus;
use reka_inference_api::types::{ListRequestsResponse, RequestItem};
use tokio::time::Instant;

use crate::endpoint::{Endpoint, IntoEndpoint};
use crate::error::{Error, Result};
use crate::http::Http;

/// The `expand` value that adds `input`, `output`, `error` and `metrics`
/// to each item.
const PAYLOADS: &str = "payloads";

/// The largest page the API serves.
pub(crate) const MAX_PAGE_SIZE: u32 = 100;

/// What to list. Every field is optional; the default lists everything,
/// newest first.
///
/// ```
/// use reka_inference::{Endpoint, ListFilter, JobStatus};
///
/// let filter = ListFilter::default()
///     .endpoint(Endpoint::SAM3_IMAGE_TO_BBOX)
///     .status(JobStatus::Completed)
///     .payloads(true);
/// # let _ = filter;
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ListFilter {
    /// Only this endpoint.
    pub endpoint: Option<Endpoint>,
    /// Only this capability (`text-to-image`, ...).
    pub capability: Option<String>,
    /// Only this model.
    pub model: Option<String>,
    /// Only this status.
    pub status: Option<JobStatus>,
    /// Created at or after.
    pub start: Option<DateTime<Utc>>,
    /// Created before.
    pub end: Option<DateTime<Utc>>,
    /// Include `input`, `output`, `error` and `metrics` in each item.
    pub payloads: bool,
    /// Items per page, 1 to 100 (default 100: fewest requests).
    pub page_size: Option<u32>,
    /// Stop after this many items.
    pub limit: Option<u64>,
    /// Why a value given to a builder method was refused.
    invalid: Option<String>,
}

impl ListFilter {
    /// Only requests to `endpoint` (an [`Endpoint`] or its id; a malformed
    /// id makes the listing fail with [`Error::InvalidInput`]).
    pub fn endpoint(mut self, endpoint: impl IntoEndpoint) -> Self {
        match endpoint.into_endpoint() {
            Ok(e) => self.endpoint = Some(e),
            Err(e) => self.invalid = Some(e.to_string()),
        }
        self
    }

    /// Only requests of `capability`.
    pub fn capability(mut self, capability: impl Into<String>) -> Self {
        self.capability = Some(capability.into());
        self
    }

    /// Only requests to `model`.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Only requests in `status`.
    pub fn status(mut self, status: JobStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only jobs created at or after `t` (a `chrono::DateTime<Utc>` or a
    /// `std::time::SystemTime`).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use reka_inference::ListFilter;
    ///
    /// let last_hour = ListFilter::default().start(SystemTime::now() - Duration::from_secs(3600));
    /// # let _ = last_hour;
    /// ```
    pub fn start(mut self, t: impl Into<DateTime<Utc>>) -> Self {
        self.start = Some(t.into());
        self
    }

    /// Only jobs created before `t` (a `chrono::DateTime<Utc>` or a
    /// `std::time::SystemTime`).
    pub fn end(mut self, t: impl Into<DateTime<Utc>>) -> Self {
        self.end = Some(t.into());
        self
    }

    /// Include payloads (`expand=payloads`).
    pub fn payloads(mut self, yes: bool) -> Self {
        self.payloads = yes;
        self
    }

    /// Items per page (clamped to 1..=100).
    pub fn page_size(mut self, n: u32) -> Self {
        self.page_size = Some(n);
        self
    }

    /// At most `n` items in all.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }
}

/// Listing jobs; from [`Client::jobs`](crate::Client::jobs).
#[derive(Clone)]
pub struct Jobs {
    http: Http,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs").finish_non_exhaustive()
    }
}

impl Jobs {
    pub(crate) fn new(http: Http) -> Self {
        Jobs { http }
    }

    /// One page, as the API returns it.
    pub async fn page(&self, filter: &ListFilter, offset: u64) -> Result<ListRequestsResponse> {
        self.page_until(filter, offset, None).await
    }

    pub(crate) async fn page_until(
        &self,
        filter: &ListFilter,
        offset: u64,
        deadline: Option<Instant>,
    ) -> Result<ListRequestsResponse> {
        if let Some(why) = &filter.invalid {
            return Err(Error::InvalidInput(why.clone()));
        }
        let size = filter
            .page_size
            .unwrap_or(MAX_PAGE_SIZE)
            .clamp(1, MAX_PAGE_SIZE);
        let call = self.http.call().deadline(deadline).start();
        let mut list = call
            .api()
            .list_requests()
            .limit(u64::from(size))
            .offset(offset);
        if let Some(e) = &filter.endpoint {
            list = list.endpoint_id(e.as_str());
        }
        if let Some(c) = &filter.capability {
            list = list.capability(c.as_str());
        }
        if let Some(m) = &filter.model {
            list = list.model_id(m.as_str());
        }
        if let Some(s) = &filter.status {
            list = list.status(s.clone());
        }
        if let Some(t) = filter.start {
            list = list.start(t);
        }
        if let Some(t) = filter.end {
            list = list.end(t);
        }
        if filter.payloads {
            list = list.expand(vec![PAYLOADS.to_owned()]);
        }
        call.read(list.send().await)
    }

    /// Every matching request, newest first, fetching pages as the stream
    /// is read. An error ends the stream after being yielded; so does a
    /// page whose `next_offset` does not move forward (a server bug that
    /// would otherwise loop forever).
    ///
    /// ```no_run
    /// # async fn run(client: reka_inference::Client) -> reka_inference::Result<()> {
    /// use futures::TryStreamExt;
    /// use reka_inference::ListFilter;
    ///
    /// let items: Vec<_> = client.jobs().list(ListFilter::default().limit(250)).try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn list(&self, filter: ListFilter) -> JobList {
        struct State {
            requests: Jobs,
            filter: ListFilter,
            offset: Option<u64>,
            buffered: std::vec::IntoIter<RequestItem>,
            /// An error to yield once the buffered items are out.
            failure: Option<Error>,
            yielded: u64,
        }
        let state = State {
            requests: self.clone(),
            filter,
            offset: Some(0),
            buffered: Vec::new().into_iter(),
            failure: None,
            yielded: 0,
        };
        JobList {
            inner: Box::pin(futures::stream::unfold(state, |mut s| async move {
                loop {
                    if s.filter.limit.is_some_and(|l| s.yielded >= l) {
                        return None;
                    }
                    if let Some(item) = s.buffered.next() {
                        s.yielded += 1;
                        return Some((Ok(item), s));
                    }
                    if let Some(e) = s.failure.take() {
                        return Some((Err(e), s));
                    }
                    let offset = s.offset?;
                    match s.requests.page(&s.filter, offset).await {
                        Ok(page) => {
                            // A page that does not advance is shown, then ends
                            // the listing with its error.
                            match next_offset(offset, &page) {
                                Ok(next) => s.offset = next,
                                Err(e) => {
                                    s.offset = None;
                                    s.failure = Some(e);
                                }
                            }
                            s.buffered = page.items.into_iter();
                        }
                        Err(e) => {
                            s.offset = None;
                            return Some((Err(e), s));
                        }
                    }
                }
            })),
        }
    }
}

/// Every matching job, newest first, from [`Jobs::list`]: a named, `Unpin`
/// stream, so it can be kept in a struct and read with
/// `while let Some(item) = list.next().await`.
pub struct JobList {
    inner: Pin<Box<dyn Stream<Item = Result<RequestItem>> + Send>>,
}

impl Stream for JobList {
    type Item = Result<RequestItem>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl std::fmt::Debug for JobList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobList").finish_non_exhaustive()
    }
}

/// Where the page after `page` (read at `offset`) starts, `None` when it
/// was the last. A `next_offset` that does not move forward is an error:
/// following it would read the same page forever.
pub(crate) fn next_offset(offset: u64, page: &ListRequestsResponse) -> Result<Option<u64>> {
    let n = page.items.len() as u64;
    match page.next_offset {
        Some(_) | None if n == 0 => Ok(None),
        Some(next) if next > offset => Ok(Some(next)),
        Some(next) => Err(Error::Decode {
            status: reqwest::StatusCode::OK,
            message: format!(
                "the list's next_offset ({next}) does not move past the page read at offset {offset}"
            ),
            raw_body: Default::default(),
        }),
        // No `next_offset` but `has_more`: step by the page.
        None if page.has_more => Ok(offset.checked_add(n)),
        None => Ok(None),
    }
}
