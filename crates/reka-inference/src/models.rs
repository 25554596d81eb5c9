//! The endpoint list (`GET /v2/models`), read whichever wrapper the server
//! uses, for the client's `models()` and for a batch's budget, which takes
//! each endpoint's listed price as its first estimate.

use reka_inference_api::types::{ListModelsResponse, ModelInfo};

use crate::error::Result;
use crate::http::Http;

/// The endpoints the key can submit to, each with its `endpoint_id`.
pub(crate) async fn list(http: &Http) -> Result<Vec<ModelInfo>> {
    let call = http.call().start();
    let list = call.read(call.api().list_models().send().await)?;
    Ok(models_of(list))
}

/// The entries of a model list, from whichever wrapper holds them, each
/// with its `endpoint_id`.
fn models_of(list: ListModelsResponse) -> Vec<ModelInfo> {
    let ListModelsResponse {
        data,
        items,
        models,
    } = list;
    let entries = [models, items, data]
        .into_iter()
        .find(|wrapper| !wrapper.is_empty())
        .unwrap_or_default();
    entries
        .into_iter()
        .map(|mut entry| {
            if entry.endpoint_id.is_none() {
                entry.endpoint_id = Some(format!("{}/{}", entry.model_id, entry.capability));
            }
            entry
        })
        .collect()
}
