//! `/.well-known/acme-challenge/{token}`: the answers to the ACME CA's
//! http-01 challenges (`tls/acme.rs`), while an order waits for them.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/.well-known/acme-challenge/{token}", get(challenge))
}

/// The key authorization of a token the CA is checking; 404 for any
/// other token, and on a server without `[tls.acme]`.
async fn challenge(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let answer = state
        .server
        .acme
        .as_ref()
        .and_then(|acme| acme.challenges.answer(&token));
    match answer {
        Some(key_authorization) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            key_authorization,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
