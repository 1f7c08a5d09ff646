//! `/metrics`: the server's metrics in Prometheus text format (see
//! `src/metrics/`). On the main listeners only the addresses of
//! `http.metrics_allow` may read it (loopback by default); a listener of
//! `http.metrics_listen` serves it to anyone who reaches it.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};

use super::{AppState, Peer};

/// Who may read `/metrics` on a listener.
#[derive(Debug, Clone, Copy)]
pub(super) enum Access {
    AllowList,
    Anyone,
}

/// The content type of the text format, version 0.0.4.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) fn routes(access: Access) -> Router<AppState> {
    match access {
        Access::AllowList => Router::new().route("/metrics", get(allowed_only)),
        Access::Anyone => Router::new().route("/metrics", get(metrics)),
    }
}

async fn allowed_only(
    State(state): State<AppState>,
    Extension(Peer(peer)): Extension<Peer>,
) -> Response {
    if !state.metrics_allow.allows(peer.ip()) {
        return (
            StatusCode::FORBIDDEN,
            "/metrics answers only the addresses of http.metrics_allow\n",
        )
            .into_response();
    }
    metrics(State(state)).await
}

async fn metrics(State(state): State<AppState>) -> Response {
    let text = crate::metrics::scrape(&state.server).await;
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], text).into_response()
}
