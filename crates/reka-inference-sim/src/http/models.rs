//! `GET /v2/inference/models`: the catalog's endpoints.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use crate::state::AppState;

/// Lists every catalog endpoint in catalog order (with its price, unless
/// prices are off), then the chat models, in the dialect's wrapper.
pub(crate) async fn list_models(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(state.dialect.models_body(&state.catalog, state.prices))
}
