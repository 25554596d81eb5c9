//! The HTTP surface: the router, its middleware and one module per group of
//! operations.

pub(crate) mod admin;
pub(crate) mod body;
pub(crate) mod chat;
pub(crate) mod error;
pub(crate) mod layers;
pub(crate) mod models;
pub(crate) mod query;
pub(crate) mod requests;
pub(crate) mod submit;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};

use crate::state::AppState;

/// Every route of the simulator, with its middleware.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/v2/inference/models", get(models::list_models))
        .route("/v2/inference/requests", get(requests::list_requests))
        .route(
            "/v2/inference/requests/{request_id}",
            get(requests::get_result),
        )
        .route(
            "/v2/inference/requests/{request_id}/status",
            get(requests::get_status),
        )
        .route(
            "/v2/inference/requests/{request_id}/cancel",
            post(requests::cancel_request),
        )
        .route(
            "/v2/inference/chat/completions",
            post(chat::create_chat_completion),
        )
        .route("/v2/inference/{model}/{capability}", post(submit::submit))
        .route_layer(from_fn_with_state(state.clone(), layers::api_guard));
    let admin = Router::new()
        .route("/_sim/stats", get(admin::stats))
        .route(
            "/_sim/faults",
            get(admin::get_faults).put(admin::put_faults),
        )
        .route("/_sim/reset", post(admin::reset))
        .route("/_sim/clock", get(admin::clock))
        .route("/_sim/advance", post(admin::advance))
        .route("/_sim/files/{request_id}/{name}", get(admin::file))
        .route("/_sim/blobs/{key}", get(admin::blob));
    api.merge(admin)
        .fallback(admin::fallback)
        .layer(from_fn_with_state(state.clone(), layers::outer))
        .with_state(state)
}
