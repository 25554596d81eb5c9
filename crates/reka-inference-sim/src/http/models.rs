//! `GET /v2/inference/models`: the catalog's endpoints.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::state::AppState;

/// Lists every catalog endpoint in catalog order.
pub(crate) async fn list_models(State(state): State<Arc<AppState>>) -> Json<Value> {
    let items: Vec<Value> = state
        .catalog
        .models
        .iter()
        .map(|m| {
            json!({
                "endpoint_id": m.endpoint_id(),
                "model_id": m.model_id,
                "capability": m.capability,
                "title": m.title,
                "description": m.description,
            })
        })
        .collect();
    Json(json!({ "items": items }))
}
