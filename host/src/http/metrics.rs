//! `GET /metrics`: the daemon's figures in Prometheus' classic text format,
//! for any role.

use super::Surface;
use super::session::Viewer;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Prometheus' classic text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn metrics(State(s): State<Surface>, _viewer: Viewer) -> Response {
    match s.daemon.metrics_text() {
        Ok(text) => ([(header::CONTENT_TYPE, TEXT_FORMAT)], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}
