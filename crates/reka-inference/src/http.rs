//! The plumbing under every feature: building API URLs, sending calls
//! through the transport, and turning answers into this crate's types.
//!
//! Feature modules (jobs, job sets, listing, downloads, chat) hold an
//! [`Http`] and never the [`Client`](crate::Client) façade, so the
//! dependencies run one way: `client` → features → `http` → `transport`.
//! The crate's own calls are built here rather than through the generated
//! client's `send()`: they need typed errors for limits and deadlines, and
//! lenient decoding of answers whose shape the service does not publish
//! (a submit answered `200` with only `request_id`, say). The request and
//! response types are still the generated ones.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use url::Url;

use crate::error::{ApiError, Error, Result};
use crate::poll::{Estimates, PollPolicy};
use crate::retry::{RetryPolicy, parse_retry_after};
use crate::transport::{Answer, ApiTransport, Exchange, Mode, Redirects};

/// What every feature shares: the HTTP client and its transport, the base
/// URL, and the defaults of waits.
#[derive(Clone)]
pub(crate) struct Http {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    transport: Arc<ApiTransport>,
    base_url: Url,
    waits: Waits,
}

/// The defaults of waits, and what they have learnt.
pub(crate) struct Waits {
    pub poll: PollPolicy,
    pub timeout: Duration,
    pub estimates: Estimates,
}

/// A buffered success answer.
pub(crate) struct Buffered {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Http {
    pub(crate) fn new(
        client: reqwest::Client,
        transport: Arc<ApiTransport>,
        base_url: Url,
        waits: Waits,
    ) -> Http {
        Http {
            inner: Arc::new(Inner {
                client,
                transport,
                base_url,
                waits,
            }),
        }
    }

    pub(crate) fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    pub(crate) fn waits(&self) -> &Waits {
        &self.inner.waits
    }

    pub(crate) fn transport(&self) -> &Arc<ApiTransport> {
        &self.inner.transport
    }

    /// The API URL `<base>/v2/inference/<segments...>`, each segment
    /// percent-encoded as one path segment.
    pub(crate) fn api_url(&self, segments: &[&str]) -> Result<Url> {
        let mut url = self.inner.base_url.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|_| Error::Config("the base URL cannot take a path".into()))?;
            path.pop_if_empty().extend(["v2", "inference"]);
            for s in segments {
                // `url` drops `.` and `..` segments rather than encoding
                // them: refuse them here so nothing is sent elsewhere.
                if s.is_empty() || *s == "." || *s == ".." {
                    return Err(Error::InvalidInput(format!(
                        "{s:?} cannot be a path segment"
                    )));
                }
                path.push(s);
            }
        }
        Ok(url)
    }

    /// The URL of one request's resource: `requests/<id>[/<tail>]`.
    pub(crate) fn request_url(&self, request_id: &str, tail: Option<&str>) -> Result<Url> {
        check_request_id(request_id)?;
        match tail {
            Some(t) => self.api_url(&["requests", request_id, t]),
            None => self.api_url(&["requests", request_id]),
        }
    }

    /// A call to the API.
    pub(crate) fn call(&self, method: Method, url: Url, operation: &'static str) -> Call<'_> {
        Call {
            http: self,
            request: self.inner.client.request(method, url),
            operation,
            deadline: None,
            redirects: Redirects::SameOrigin,
            retry: None,
        }
    }

    /// A download of a file an output points at: any origin the address
    /// policy allows, redirects followed by hand.
    pub(crate) fn download(&self, url: Url) -> Call<'_> {
        Call {
            http: self,
            request: self.inner.client.get(url),
            operation: "download",
            deadline: None,
            redirects: Redirects::Anywhere,
            retry: None,
        }
    }
}

/// Checks a request id before it goes into a URL: it comes from users and
/// from servers, and must stay one path segment.
pub(crate) fn check_request_id(id: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::InvalidInput(format!(
            "request id {:?} {why}",
            crate::error::truncate(id, 80)
        )))
    };
    if id.is_empty() {
        return bad("is empty");
    }
    if id.len() > 256 {
        return bad("is longer than 256 bytes");
    }
    if id == "." || id == ".." {
        return bad("is a relative path");
    }
    if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("contains white space or control characters");
    }
    Ok(())
}

/// One API call being built.
pub(crate) struct Call<'a> {
    http: &'a Http,
    request: reqwest::RequestBuilder,
    operation: &'static str,
    deadline: Option<Instant>,
    redirects: Redirects,
    retry: Option<RetryPolicy>,
}

impl Call<'_> {
    /// Retries this call by `policy` rather than the client's.
    pub(crate) fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Bounds the whole call, retries included.
    pub(crate) fn deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    pub(crate) fn header(mut self, name: &'static str, value: &str) -> Self {
        self.request = self.request.header(name, value);
        self
    }

    pub(crate) fn query<T: Serialize + ?Sized>(mut self, query: &T) -> Self {
        self.request = self.request.query(query);
        self
    }

    pub(crate) fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        self.request = self.request.json(body);
        self
    }

    async fn answer(self, mode: Mode) -> Result<Answer> {
        let request = self
            .request
            .build()
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        let exchange = Exchange {
            request,
            operation: self.operation,
            mode,
            redirects: self.redirects,
            deadline: self.deadline,
            retry: self.retry,
        };
        let answer = self
            .http
            .inner
            .transport
            .send(&self.http.inner.client, exchange)
            .await?;
        if answer.status().is_success() {
            return Ok(answer);
        }
        match answer {
            Answer::Buffered {
                status,
                headers,
                body,
                ..
            } => Err(api_error(status, &headers, body)),
            // The transport reads every error answer whole.
            Answer::Streaming(r) => Err(api_error(r.status(), r.headers(), Bytes::new())),
        }
    }

    /// Sends the call and reads the whole answer; an error status is an
    /// [`Error`].
    pub(crate) async fn send(self) -> Result<Buffered> {
        match self.answer(Mode::Buffered).await? {
            Answer::Buffered { status, body, .. } => Ok(Buffered { status, body }),
            Answer::Streaming(r) => Ok(Buffered {
                status: r.status(),
                body: Bytes::new(),
            }),
        }
    }

    /// Sends the call and decodes its JSON answer.
    pub(crate) async fn decode<T: DeserializeOwned>(self) -> Result<T> {
        let answer = self.send().await?;
        decode(answer.status, &answer.body)
    }

    /// Sends the call and hands over a success answer unread.
    pub(crate) async fn stream(self) -> Result<reqwest::Response> {
        Ok(self.answer(Mode::Streaming).await?.into_response())
    }
}

/// Reads the body of a streamed answer whole, refusing it past `limit`
/// bytes (before reading, when `Content-Length` already says so);
/// `progress` gets the bytes received so far and the announced total.
pub(crate) async fn read_capped(
    response: reqwest::Response,
    limit: u64,
    operation: &'static str,
    mut progress: impl FnMut(u64, Option<u64>),
) -> Result<Bytes> {
    use futures::StreamExt;
    let too_large = || Error::BodyTooLarge {
        operation: operation.to_owned(),
        limit,
    };
    let total = response.content_length();
    if total.is_some_and(|t| t > limit) {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(total.unwrap_or(0).min(limit).min(64 << 20) as usize);
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(Error::Transport)?;
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
        progress(buf.len() as u64, total);
    }
    Ok(buf.into())
}

/// Decodes a JSON body, keeping it in the error when it does not fit.
pub(crate) fn decode<T: DeserializeOwned>(status: StatusCode, body: &Bytes) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::Decode {
        status,
        message: e.to_string(),
        raw_body: body.clone(),
    })
}

/// Turns an error answer into [`Error::Api`] or, for 429, [`Error::RateLimited`].
pub(crate) fn api_error(status: StatusCode, headers: &HeaderMap, body: Bytes) -> Error {
    let api = ApiError::from_parts(status, headers, body);
    if status == StatusCode::TOO_MANY_REQUESTS {
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
        return Error::RateLimited {
            retry_after,
            api: Box::new(api),
        };
    }
    Error::Api(Box::new(api))
}

/// `now + d`, or `None` (no deadline) when that is past what an `Instant`
/// can hold.
pub(crate) fn deadline_after(now: Instant, d: Duration) -> Option<Instant> {
    now.checked_add(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_stay_one_segment() {
        for bad in ["", ".", "..", "a b", "a\nb", "a\u{1b}[2J"] {
            assert!(check_request_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_request_id(&"x".repeat(300)).is_err());
        for ok in ["req_1", "a\\..\\..\\admin", "../x", "a/b", "%2e%2e", "ü"] {
            assert!(check_request_id(ok).is_ok(), "{ok:?}");
        }
    }
}
