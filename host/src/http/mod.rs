//! The HTTP surface beside gRPC, on its own port (`http_listen`): `GET
//! /metrics` in Prometheus' text format, and the operators' dashboard at
//! `/` with the JSON it reads under `/api/`, its live feed at `/events`
//! (server-sent events) and its embedded assets.
//!
//! Rules: the same tokens and roles as gRPC guard every page and endpoint
//! but the login page and the static assets (which hold no data). A caller
//! presents `Authorization: Bearer <token>` (Prometheus' `authorization`
//! scrape setting sends one) or the session cookie a browser got from
//! `POST /login` (see [`session`]); a request without either gets 401 (a
//! page: a redirect to the login page). Mutating endpoints are POST, need the
//! role's permission exactly as their RPC does, and refuse a cross-site
//! request (see [`session::same_site`]). Like `api/`, this module only
//! authenticates and converts: everything shown comes from the domain's
//! methods on [`Daemon`], never from the store. Under TLS the surface serves
//! HTTPS with the gRPC side's certificate ([`tls`]).

mod actions;
mod assets;
mod events;
mod metrics;
mod reads;
mod session;
pub mod tls;
mod views;

use crate::api::auth::Tokens;
use crate::daemon::Daemon;
use axum::Router;
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::sync::Arc;

/// What every handler reads: the domain, the tokens and the browser
/// sessions.
#[derive(Clone)]
struct Surface {
    daemon: Arc<Daemon>,
    tokens: Tokens,
    sessions: session::Sessions,
    /// Whether the surface serves HTTPS, so cookies are marked `Secure`.
    secure: bool,
}

/// The routes of the surface, over `daemon` and `tokens`.
pub fn router(daemon: Arc<Daemon>, tokens: Tokens, secure: bool) -> Router {
    Router::new()
        .route("/metrics", get(metrics::metrics))
        .route("/", get(assets::dashboard))
        .route("/login", get(assets::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/assets/{name}", get(assets::asset))
        .route("/events", get(events::events))
        .route("/api/me", get(reads::me))
        .route("/api/releases", get(reads::releases))
        .route("/api/releases/{id}", get(reads::release))
        .route("/api/releases/{id}/canary", get(reads::canary))
        .route("/api/environments", get(reads::environments))
        .route("/api/plugins", get(reads::plugins))
        .route("/api/dora", get(reads::dora))
        .route("/api/audit", get(reads::audit))
        .route("/api/releases/{id}/approve", post(actions::approve))
        .route("/api/releases/{id}/abort", post(actions::abort))
        .route("/api/environments/{env}/rollback", post(actions::rollback))
        .with_state(Surface {
            daemon,
            tokens,
            sessions: session::Sessions::default(),
            secure,
        })
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
    let app = router(daemon, tokens, tls.is_some());
    match tls {
        Some(acceptor) => {
            axum::serve(tls::Listener::new(listener, acceptor), app)
                .with_graceful_shutdown(closed)
                .await
        }
        None => {
            // SSE frames are small writes: Nagle would hold them back.
            use axum::serve::ListenerExt;
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
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
