//! The HTTP surface beside gRPC, on its own port (`http_listen`): `GET
//! /metrics` in Prometheus' text format.
//!
//! Rules: the same tokens and roles as gRPC guard it: a request carries
//! `Authorization: Bearer <token>` (Prometheus' `authorization` scrape
//! setting sends one), and any role may read. A request without a valid
//! token gets 401 with what to send; nothing is served without one. Like
//! `api/`, it only authenticates and converts: the figures come from the
//! domain. Under TLS the surface serves HTTPS with the gRPC side's
//! certificate ([`tls`]).

mod metrics;
pub mod tls;

use crate::api::auth::Tokens;
use crate::daemon::Daemon;
use axum::Router;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Clone)]
struct Surface {
    daemon: Arc<Daemon>,
    tokens: Tokens,
}

/// The routes of the surface, over `daemon` and `tokens`.
pub fn router(daemon: Arc<Daemon>, tokens: Tokens) -> Router {
    Router::new()
        .route("/metrics", get(metrics::metrics))
        .with_state(Surface { daemon, tokens })
}

/// Serves the HTTP surface on `listener` until the daemon stops: HTTPS
/// when `tls` is given, plaintext otherwise.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<tls::Acceptor>,
    daemon: Arc<Daemon>,
    tokens: Tokens,
) -> std::io::Result<()> {
    let closed = daemon.closed();
    let app = router(daemon, tokens);
    match tls {
        Some(acceptor) => {
            axum::serve(tls::Listener::new(listener, acceptor), app)
                .with_graceful_shutdown(closed)
                .await
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(closed)
                .await
        }
    }
}

/// Binds the HTTP listener, naming the setting to change when it cannot.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        format!("cannot listen for HTTP on {addr}: {e}; set `http_listen` in the config to a free address")
    })
}
