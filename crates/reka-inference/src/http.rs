//! The one request path: every call this crate makes to the inference API
//! is a generated operation of `reka-inference-api`, sent through the
//! crate's transport by progenitor's hooks.
//!
//! A feature module asks [`Http::call`] for a [`Call`], sets its options,
//! starts it, builds the operation on [`Sending::api`] as any user of the
//! generated client would (`call.api().get_status().request_id(id).send()`),
//! and hands the result to [`Sending::read`]. The call's own generated client carries hooks that
//! send the request through [`ApiTransport::send`] with this call's
//! deadline, retries and answer mode, and that keep what the generated
//! code cannot hold: the typed error of a limit or a deadline, the raw body
//! of an error answer (in either of the API's two error shapes), or a
//! success answer to be read as a stream (chat). So the paths, methods,
//! parameters and decoding are the document's, and a regenerated document
//! reaches the SDK without a change to it.
//!
//! Downloads are the one other kind of request: their URLs come from
//! outputs, not from the document, and go to the transport directly
//! ([`Http::download`]).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use reka_inference_api::{BoxFuture, Hooks, ResponseValue, TransportFailure};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use tokio::time::Instant;
use url::Url;

use crate::error::{ApiError, Error, Result};
use crate::poll::{Estimates, PollPolicy};
use crate::retry::{RetryPolicy, parse_retry_after};
use crate::transport::{Answer, ApiTransport, CappedError, Exchange, Mode, Redirects, read_capped};

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
    /// The generated client's base: the base URL without its trailing `/`.
    api_base: String,
    /// A generated client sharing the transport, for callers of
    /// [`Client::api`](crate::Client::api).
    api: reka_inference_api::Client,
    waits: Waits,
}

/// The defaults of waits, and what they have learnt.
pub(crate) struct Waits {
    pub poll: PollPolicy,
    pub timeout: Duration,
    pub estimates: Estimates,
}

impl Http {
    pub(crate) fn new(
        client: reqwest::Client,
        transport: Arc<ApiTransport>,
        base_url: Url,
        waits: Waits,
    ) -> Http {
        let api_base = base_url.as_str().trim_end_matches('/').to_owned();
        let shared = Arc::new(CallTransport {
            transport: transport.clone(),
            options: CallOptions::default(),
            kept: None,
        });
        let api = reka_inference_api::Client::new_with_client(
            &api_base,
            client.clone(),
            Hooks::from_arc(shared),
        );
        Http {
            inner: Arc::new(Inner {
                client,
                transport,
                base_url,
                api_base,
                api,
                waits,
            }),
        }
    }

    pub(crate) fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// The generated client's base URL (no trailing `/`).
    pub(crate) fn api_base(&self) -> &str {
        &self.inner.api_base
    }

    pub(crate) fn waits(&self) -> &Waits {
        &self.inner.waits
    }

    pub(crate) fn transport(&self) -> &Arc<ApiTransport> {
        &self.inner.transport
    }

    /// The generated client on this transport: each call gets the answer
    /// as the generated code reads it (an error status is its
    /// `ErrorResponse`, a limit or deadline its `Error::Custom`).
    pub(crate) fn api(&self) -> &reka_inference_api::Client {
        &self.inner.api
    }

    /// One call of a generated operation, with the client's retries and
    /// no deadline of its own.
    pub(crate) fn call(&self) -> Call {
        Call {
            http: self.clone(),
            options: CallOptions::default(),
        }
    }

    /// A download of a file an output points at: any origin the address
    /// policy allows, redirects followed by hand; the success answer is
    /// handed over unread.
    pub(crate) async fn download(&self, url: Url) -> Result<reqwest::Response> {
        let request = self
            .inner
            .client
            .get(url)
            .build()
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        let exchange = Exchange {
            request,
            operation: "download",
            mode: Mode::Streaming,
            redirects: Redirects::Anywhere,
            deadline: None,
            retry: None,
            idempotent: true,
        };
        match self
            .inner
            .transport
            .send(&self.inner.client, exchange)
            .await?
        {
            Answer::Streaming(response) => Ok(response),
            Answer::Buffered {
                status,
                headers,
                body,
                ..
            } => Err(api_error(status, &headers, body)),
        }
    }

    /// Reads a streamed answer whole, up to the client's size limit.
    pub(crate) async fn read_whole(
        &self,
        mut response: reqwest::Response,
        operation: &str,
        progress: impl FnMut(u64, Option<u64>),
    ) -> Result<Bytes> {
        let limit = self.inner.transport.max_body_bytes();
        read_capped(&mut response, limit, progress)
            .await
            .map_err(|e| match e {
                CappedError::TooLarge => Error::BodyTooLarge {
                    operation: operation.to_owned(),
                    limit,
                },
                CappedError::Transport(e) => Error::Transport(e),
            })
    }
}

/// How one call is sent.
#[derive(Debug, Clone, Default)]
struct CallOptions {
    deadline: Option<Instant>,
    retry: Option<RetryPolicy>,
    streaming: bool,
    idempotent: bool,
    /// Sends the operation under another base: `(from, to)` replaces the
    /// URL prefix `from` with `to` (chat on an OpenAI-compatible server).
    rebase: Option<(String, Url)>,
    /// An `Accept` header instead of the operation's own.
    accept: Option<&'static str>,
}

/// One call of a generated operation: its options first, then
/// [`start`](Self::start), then the operation built and sent on
/// [`Sending::api`] and its outcome read with [`Sending::read`].
pub(crate) struct Call {
    http: Http,
    options: CallOptions,
}

/// What the hooks keep of one call for [`Sending::read`].
#[derive(Default)]
struct Kept {
    /// The status of the last answer.
    status: Option<StatusCode>,
    /// Why the call failed, in this crate's terms.
    error: Option<Error>,
    /// A success answer taken unread.
    stream: Option<reqwest::Response>,
}

/// A call being sent: the generated client of this one call, and what its
/// hooks keep.
pub(crate) struct Sending {
    api: reka_inference_api::Client,
    transport: Arc<CallTransport>,
}

impl Call {
    /// Bounds the whole call, retries included.
    pub(crate) fn deadline(mut self, deadline: Option<Instant>) -> Self {
        self.options.deadline = deadline;
        self
    }

    /// Retries this call by `policy` rather than the client's.
    pub(crate) fn retry_policy(mut self, policy: Option<RetryPolicy>) -> Self {
        self.options.retry = policy;
        self
    }

    /// The call is safe to repeat although it is a POST (a cancel).
    pub(crate) fn idempotent(mut self) -> Self {
        self.options.idempotent = true;
        self
    }

    /// A success answer is taken unread ([`Sending::read_stream`]); an
    /// error answer is still read whole.
    pub(crate) fn streaming(mut self) -> Self {
        self.options.streaming = true;
        self
    }

    /// Asks for the answer as `media_type` (a chat stream's
    /// `text/event-stream`), where the document declares only JSON.
    pub(crate) fn accept(mut self, media_type: &'static str) -> Self {
        self.options.accept = Some(media_type);
        self
    }

    /// Sends the call to `base` instead: the operation's path below the
    /// API's root, under `base` (`https://host/v1` + `/chat/completions`).
    pub(crate) fn rebased(mut self, base: &Url) -> Self {
        let from = format!(
            "{}{}",
            self.http.api_base(),
            reka_inference_api::operations::API_ROOT
        );
        self.options.rebase = Some((from, base.clone()));
        self
    }

    /// The generated client to build the operation on.
    pub(crate) fn start(self) -> Sending {
        let transport = Arc::new(CallTransport {
            transport: self.http.inner.transport.clone(),
            options: self.options,
            kept: Some(Mutex::new(Kept::default())),
        });
        let api = reka_inference_api::Client::new_with_client(
            self.http.api_base(),
            self.http.inner.client.clone(),
            Hooks::from_arc(transport.clone()),
        );
        Sending { api, transport }
    }
}

impl Sending {
    /// The generated client of this call.
    pub(crate) fn api(&self) -> &reka_inference_api::Client {
        &self.api
    }

    fn take(&self) -> Kept {
        self.transport.take()
    }

    /// The outcome of the generated call, in this crate's terms: the
    /// decoded answer, or the error the hooks kept (a limit, a deadline,
    /// the whole error answer), or the generated code's own error.
    pub(crate) fn read<T, E>(
        &self,
        outcome: std::result::Result<ResponseValue<T>, reka_inference_api::Error<E>>,
    ) -> Result<T> {
        let kept = self.take();
        match outcome {
            Ok(value) => Ok(value.into_inner()),
            Err(e) => Err(kept
                .error
                .unwrap_or_else(|| generated_error(e, kept.status))),
        }
    }

    /// The success answer of a [`Call::streaming`] call, unread.
    pub(crate) fn read_stream<T, E>(
        &self,
        outcome: std::result::Result<ResponseValue<T>, reka_inference_api::Error<E>>,
    ) -> Result<reqwest::Response> {
        let kept = self.take();
        if let Some(error) = kept.error {
            return Err(error);
        }
        if let Some(stream) = kept.stream {
            return Ok(stream);
        }
        match outcome {
            // The hooks hand every streamed success over; a generated
            // success here means the transport read it whole.
            Ok(_) => Err(Error::Decode {
                status: kept.status.unwrap_or(StatusCode::OK),
                message: "the answer was read whole where a stream was expected".into(),
                raw_body: Bytes::new(),
            }),
            Err(e) => Err(generated_error(e, kept.status)),
        }
    }
}

/// The generated code's own error, when the hooks kept none: a request it
/// could not build, a body it could not read or decode, a status the
/// document does not declare.
fn generated_error<E>(e: reka_inference_api::Error<E>, status: Option<StatusCode>) -> Error {
    use reka_inference_api::Error as Generated;
    match e {
        Generated::InvalidRequest(why) => Error::InvalidInput(why),
        Generated::CommunicationError(e) | Generated::InvalidUpgrade(e) if e.is_builder() => {
            Error::InvalidInput(e.to_string())
        }
        Generated::CommunicationError(e)
        | Generated::InvalidUpgrade(e)
        | Generated::ResponseBodyError(e) => Error::Transport(e),
        Generated::InvalidResponsePayload(body, e) => Error::Decode {
            status: status.unwrap_or(StatusCode::OK),
            message: e.to_string(),
            raw_body: body,
        },
        Generated::UnexpectedResponse(response) => Error::Decode {
            status: response.status(),
            message: format!(
                "the document declares no {} answer for this operation",
                response.status()
            ),
            raw_body: Bytes::new(),
        },
        // The hooks keep every error answer: this one came without them.
        Generated::ErrorResponse(response) => Error::Api(Box::new(ApiError::from_parts(
            response.status(),
            response.headers(),
            Bytes::new(),
        ))),
        Generated::Custom(why) => Error::InvalidInput(why),
    }
}

/// The hooks of one call (or, without `kept`, of the shared generated
/// client): each request goes through the transport with the call's
/// options.
struct CallTransport {
    transport: Arc<ApiTransport>,
    options: CallOptions,
    /// `None` for the shared client, whose answers go to the generated
    /// code as they are.
    kept: Option<Mutex<Kept>>,
}

impl CallTransport {
    fn keep(&self, f: impl FnOnce(&mut Kept)) -> bool {
        match &self.kept {
            Some(kept) => {
                f(&mut kept.lock().unwrap_or_else(PoisonError::into_inner));
                true
            }
            None => false,
        }
    }

    fn take(&self) -> Kept {
        let mut taken = Kept::default();
        self.keep(|kept| taken = std::mem::take(kept));
        taken
    }

    fn rebase(&self, request: &mut reqwest::Request) -> std::result::Result<(), Error> {
        let Some((from, to)) = &self.options.rebase else {
            return Ok(());
        };
        let url = request.url().as_str();
        let rest = url.strip_prefix(from.as_str()).ok_or_else(|| {
            Error::InvalidInput(format!("{url} is not below the API's root {from}"))
        })?;
        let joined = format!("{}{rest}", to.as_str().trim_end_matches('/'));
        *request.url_mut() =
            Url::parse(&joined).map_err(|e| Error::InvalidInput(format!("{joined}: {e}")))?;
        Ok(())
    }

    /// Sends one request of the call: its answer for the generated code,
    /// or `None` when the caller takes the answer as a stream.
    async fn send(
        &self,
        client: &reqwest::Client,
        mut request: reqwest::Request,
        operation: &'static str,
    ) -> Result<Option<reqwest::Response>> {
        self.rebase(&mut request)?;
        if let Some(accept) = self.options.accept {
            request.headers_mut().insert(
                reqwest::header::ACCEPT,
                reqwest::header::HeaderValue::from_static(accept),
            );
        }
        let streaming = self.options.streaming && self.kept.is_some();
        let exchange = Exchange {
            request,
            operation,
            mode: if streaming {
                Mode::Streaming
            } else {
                Mode::Buffered
            },
            redirects: Redirects::SameOrigin,
            deadline: self.options.deadline,
            retry: self.options.retry.clone(),
            idempotent: self.options.idempotent,
        };
        let answer = self.transport.send(client, exchange).await?;
        let status = answer.status();
        self.keep(|kept| kept.status = Some(status));
        match answer {
            Answer::Streaming(response) if streaming && status.is_success() => {
                self.keep(|kept| kept.stream = Some(response));
                Ok(None)
            }
            // The raw body of an error answer, in either shape, is the
            // crate's error; the shared client hands it to the generated
            // code as it came.
            Answer::Buffered {
                status,
                headers,
                body,
                ..
            } if !status.is_success() && self.kept.is_some() => {
                Err(api_error(status, &headers, body))
            }
            other => Ok(Some(other.into_response())),
        }
    }
}

impl reka_inference_api::Transport for CallTransport {
    fn execute<'a>(
        &'a self,
        client: &'a reqwest::Client,
        request: reqwest::Request,
        operation_id: &'static str,
    ) -> BoxFuture<'a, std::result::Result<reqwest::Response, TransportFailure>> {
        Box::pin(async move {
            match self.send(client, request, operation_id).await {
                Ok(Some(response)) => Ok(response),
                Ok(None) => Err(TransportFailure::Other(
                    "the answer is read as a stream by the caller".into(),
                )),
                Err(Error::Transport(e)) if self.kept.is_none() => {
                    Err(TransportFailure::Reqwest(e))
                }
                Err(e) => {
                    let message = e.to_string();
                    self.keep(|kept| kept.error = Some(e));
                    Err(TransportFailure::Other(message))
                }
            }
        })
    }
}

/// Checks a request id before it goes into a URL: it comes from users and
/// from servers, and must stay one path segment. The generated code
/// percent-encodes it, but `.` and `..` would still move the path, and it
/// leaves `\` as is, which an http(s) URL reads as `/`.
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
    if id.contains('\\') {
        return bad("contains a backslash, which a URL reads as a path separator");
    }
    if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("contains white space or control characters");
    }
    Ok(())
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
        assert!(check_request_id("a\\..\\..\\admin").is_err());
        for ok in ["req_1", "../x", "a/b", "%2e%2e", "a?b#c", "ü"] {
            assert!(check_request_id(ok).is_ok(), "{ok:?}");
        }
    }
}
