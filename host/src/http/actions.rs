//! The dashboard's operator actions: approve, abort, roll back. Each is a
//! POST that must come from the dashboard itself ([`same_site`]) and needs
//! the permission its RPC needs (`Operate`), then calls the same domain
//! method the RPC calls. The body is JSON (`environment`, `comment`,
//! `reason`, each optional where the RPC allows it).

use super::Surface;
use super::reads::failed;
use super::session::{Refused, Viewer, same_site};
use super::views::{self, Document};
use crate::api::auth::Permission;
use crate::pipeline::release::ReleaseId;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

/// What an action's body may say.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Asked {
    #[serde(default)]
    environment: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    reason: String,
}

/// Lets the request through only from this dashboard, for a role that may
/// operate, and reads its body.
fn admitted(headers: &HeaderMap, v: &Viewer, body: &[u8]) -> Result<Asked, Box<Response>> {
    same_site(headers, Some(v)).map_err(|r| Box::new(r.into_response()))?;
    v.caller
        .require(Permission::Operate)
        .map_err(|e| Box::new(Refused::Forbidden(e.message().to_string()).into_response()))?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Asked::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        let problem = format!(
            "the body is not the JSON this action takes ({e}); send {{\"environment\", \"comment\", \"reason\"}}"
        );
        let answer = (StatusCode::BAD_REQUEST, Document(json!({ "error": problem })));
        Box::new(answer.into_response())
    })
}

/// `POST /api/releases/{id}/approve`: approves the stage it waits at (or a
/// paused canary step).
pub async fn approve(
    State(s): State<Surface>,
    v: Viewer,
    Path(id): Path<u64>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let asked = match admitted(&headers, &v, &body) {
        Ok(a) => a,
        Err(refused) => return *refused,
    };
    let environment = if asked.environment.is_empty() {
        match s.daemon.release(ReleaseId(id)) {
            Ok(r) => r.current_environment().unwrap_or_default().to_string(),
            Err(e) => return failed(e),
        }
    } else {
        asked.environment
    };
    match s
        .daemon
        .approve(&v.caller.name, ReleaseId(id), &environment, &asked.comment)
        .await
    {
        Ok(r) => Document(views::release_summary(&r)).into_response(),
        Err(e) => failed(e),
    }
}

/// `POST /api/releases/{id}/abort`.
pub async fn abort(
    State(s): State<Surface>,
    v: Viewer,
    Path(id): Path<u64>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let asked = match admitted(&headers, &v, &body) {
        Ok(a) => a,
        Err(refused) => return *refused,
    };
    match s
        .daemon
        .abort(&v.caller.name, ReleaseId(id), &asked.reason)
        .await
    {
        Ok(r) => Document(views::release_summary(&r)).into_response(),
        Err(e) => failed(e),
    }
}

/// `POST /api/environments/{env}/rollback`: takes a canary down, or
/// restores the previous deployment.
pub async fn rollback(
    State(s): State<Surface>,
    v: Viewer,
    Path(env): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let asked = match admitted(&headers, &v, &body) {
        Ok(a) => a,
        Err(refused) => return *refused,
    };
    match s
        .daemon
        .rollback_environment(&v.caller.name, &env, &asked.reason)
        .await
    {
        Ok((config, down)) => Document(json!({
            "environment": config.state.name,
            "generation": config.state.generation,
            "rolled_back_digest": down.hex(),
        }))
        .into_response(),
        Err(e) => failed(e),
    }
}
