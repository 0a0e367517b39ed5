//! The HTTP surface beside gRPC, on its own port (`http_listen`): `GET
//! /metrics` in Prometheus' text format.
//!
//! Rules: the same tokens and roles as gRPC guard it: a request carries
//! `Authorization: Bearer <token>` (Prometheus' `authorization` scrape
//! setting sends one), and any role may read. A request without a valid
//! token gets 401 with what to send; nothing is served without one. Like
//! `api/`, it only authenticates and converts: the figures come from the
//! domain.

use crate::api::auth::Tokens;
use crate::daemon::Daemon;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;

/// Prometheus' classic text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone)]
struct Surface {
    daemon: Arc<Daemon>,
    tokens: Tokens,
}

/// Serves the HTTP surface on `listener` until the daemon stops.
pub async fn serve(
    listener: tokio::net::TcpListener,
    daemon: Arc<Daemon>,
    tokens: Tokens,
) -> std::io::Result<()> {
    let closed = daemon.closed();
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(Surface { daemon, tokens });
    axum::serve(listener, app)
        .with_graceful_shutdown(closed)
        .await
}

/// Binds the HTTP listener, naming the setting to change when it cannot.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        format!("cannot listen for HTTP on {addr}: {e}; set `http_listen` in the config to a free address")
    })
}

async fn metrics(State(s): State<Surface>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Err(refused) = s.tokens.check(bearer) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            format!("{}\n", refused.message()),
        )
            .into_response();
    }
    match s.daemon.metrics_text() {
        Ok(text) => ([(header::CONTENT_TYPE, TEXT_FORMAT)], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}
