//! The one seam through which every generated call is sent.
//!
//! The generated `Client` carries a [`Hooks`] value and, through
//! progenitor's `ClientHooks`, hands each `reqwest::Request` to it. An empty
//! `Hooks` sends the request as is; the ergonomic crate installs a
//! [`Transport`] that adds authentication, retries and tracing, without a
//! line of generated code being edited.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};

use crate::generated::Client;

/// A boxed, `Send` future, as [`Transport::execute`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Sends the requests of a generated client.
///
/// Implement it to wrap every call: the request is complete (URL, query,
/// body, headers of the operation) and `operation_id` names the operation
/// of the OpenAPI document.
pub trait Transport: Send + Sync + 'static {
    /// Sends `request` with `client` and answers with the response.
    fn execute<'a>(
        &'a self,
        client: &'a reqwest::Client,
        request: reqwest::Request,
        operation_id: &'static str,
    ) -> BoxFuture<'a, reqwest::Result<reqwest::Response>>;
}

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
    async fn exec(
        &self,
        request: reqwest::Request,
        info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        match &self.inner().transport {
            Some(transport) => {
                transport
                    .execute(self.client(), request, info.operation_id)
                    .await
            }
            None => self.client().execute(request).await,
        }
    }
}
