//! The one seam through which every generated call is sent.
//!
//! The generated `Client` carries a [`Hooks`] value and, through
//! progenitor's `ClientHooks`, hands each `reqwest::Request` to it. An empty
//! `Hooks` sends the request as is; the ergonomic crate installs a
//! [`Transport`] that adds authentication, retries, deadlines and limits,
//! without a line of generated code being edited.
//!
//! A transport may have no answer to give (a deadline passed, an answer was
//! larger than allowed). It says so with a [`TransportFailure`], and the
//! generated call ends with `Error::Custom` carrying its message: no status
//! is invented for something the server never said.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use progenitor_client::{ClientHooks, ClientInfo, Error, OperationInfo};

use crate::generated::Client;

/// A boxed, `Send` future, as [`Transport::execute`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Sends the requests of a generated client.
///
/// Implement it to wrap every call: the request is complete (URL, query,
/// body, headers of the operation) and `operation_id` names the operation
/// of the OpenAPI document.
pub trait Transport: Send + Sync + 'static {
    /// Sends `request` with `client` and answers with the response, or with
    /// why there is none.
    fn execute<'a>(
        &'a self,
        client: &'a reqwest::Client,
        request: reqwest::Request,
        operation_id: &'static str,
    ) -> BoxFuture<'a, Result<reqwest::Response, TransportFailure>>;
}

/// Why a [`Transport`] has no answer to hand to the generated code.
#[derive(Debug)]
pub enum TransportFailure {
    /// reqwest's own error (the connection failed, the body broke off).
    Reqwest(reqwest::Error),
    /// Anything else (a deadline, a size limit, a refused redirect): the
    /// generated call ends with `Error::Custom` carrying this message.
    Other(String),
}

impl From<reqwest::Error> for TransportFailure {
    fn from(e: reqwest::Error) -> Self {
        TransportFailure::Reqwest(e)
    }
}

/// What the generated code is handed when the transport has no answer: an
/// empty response marked with the reason, which the `post` hook turns into
/// `Error::Custom` before any status is read.
#[derive(Debug, Clone)]
struct NoAnswer(String);

/// What the generated client calls for each request: a [`Transport`], or
/// none to send requests unchanged.
///
/// ```
/// use reka_inference_api::{Client, Hooks};
///
/// let client = Client::new_with_client(
///     "https://vision-agent.api.reka.ai",
///     reqwest::Client::new(),
///     Hooks::default(),
/// );
/// # let _ = client;
/// ```
#[derive(Clone, Default)]
pub struct Hooks {
    transport: Option<Arc<dyn Transport>>,
}

impl Hooks {
    /// Hooks that send every request through `transport`.
    pub fn new(transport: impl Transport) -> Self {
        Hooks {
            transport: Some(Arc::new(transport)),
        }
    }

    /// Hooks sharing an existing transport.
    pub fn from_arc(transport: Arc<dyn Transport>) -> Self {
        Hooks {
            transport: Some(transport),
        }
    }
}

impl fmt::Debug for Hooks {
    // A transport may hold secrets: say only whether there is one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("transport", &self.transport.as_ref().map(|_| ".."))
            .finish()
    }
}

impl PartialEq for Hooks {
    fn eq(&self, other: &Self) -> bool {
        match (&self.transport, &other.transport) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl ClientHooks<Hooks> for Client {
    async fn post<E>(
        &self,
        result: &reqwest::Result<reqwest::Response>,
        _info: &OperationInfo,
    ) -> Result<(), Error<E>> {
        match result {
            Ok(response) => match response.extensions().get::<NoAnswer>() {
                Some(NoAnswer(why)) => Err(Error::Custom(why.clone())),
                None => Ok(()),
            },
            Err(_) => Ok(()),
        }
    }

    async fn exec(
        &self,
        request: reqwest::Request,
        info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let Some(transport) = &self.inner().transport else {
            return self.client().execute(request).await;
        };
        match transport
            .execute(self.client(), request, info.operation_id)
            .await
        {
            Ok(response) => Ok(response),
            Err(TransportFailure::Reqwest(e)) => Err(e),
            Err(TransportFailure::Other(why)) => {
                let mut response = http::Response::new(bytes::Bytes::new());
                response.extensions_mut().insert(NoAnswer(why));
                Ok(reqwest::Response::from(response))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Refuses;

    impl Transport for Refuses {
        fn execute<'a>(
            &'a self,
            _client: &'a reqwest::Client,
            _request: reqwest::Request,
            _operation_id: &'static str,
        ) -> BoxFuture<'a, Result<reqwest::Response, TransportFailure>> {
            Box::pin(async { Err(TransportFailure::Other("over the limit".into())) })
        }
    }

    #[tokio::test]
    async fn a_transport_without_an_answer_ends_the_call_with_its_reason() {
        let client = Client::new("http://127.0.0.1:9", Hooks::new(Refuses));
        let err = client
            .get_status()
            .request_id("r1")
            .send()
            .await
            .unwrap_err();
        match err {
            Error::Custom(why) => assert_eq!(why, "over the limit"),
            other => panic!("{other:?}"),
        }
    }
}
