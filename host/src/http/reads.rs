//! The dashboard's JSON reads under `/api/`: for any role, each the
//! conversion of one or two domain calls (see [`super::views`]).

use super::Surface;
use super::session::Viewer;
use super::views::{self, Document};
use crate::api::auth::Permission;
use crate::canary::live::Snapshot;
use crate::pipeline::definition::BUILTIN_ADAPTER;
use crate::pipeline::release::ReleaseId;
use crate::telemetry::dora::{self, Window};
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Days the DORA figures and their chart cover.
const DORA_DAYS: u32 = 30;
/// Audit events the audit view lists, newest last.
const AUDIT_TAIL: u64 = 50;
const DAY_MS: i64 = 24 * 3600 * 1000;

/// A domain error as the HTTP status its gRPC twin would have.
pub fn failed(e: crate::daemon::Error) -> Response {
    status_response(&crate::api::errors::status(e))
}

/// A gRPC status as an HTTP answer with the same meaning and message.
pub fn status_response(s: &tonic::Status) -> Response {
    use tonic::Code;
    let code = match s.code() {
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::FailedPrecondition | Code::Aborted | Code::AlreadyExists => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (code, Document(json!({ "error": s.message() }))).into_response()
}

fn internal(what: &str, e: impl std::fmt::Display) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Document(json!({ "error": format!("{what}: {e}") })),
    )
        .into_response()
}

/// A query parameter of `uri`, if given.
fn query(uri: &Uri, name: &str) -> Option<String> {
    form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Who is logged in, what the role may do, and the session's CSRF token
/// for the page's POSTs.
pub async fn me(v: Viewer) -> Document {
    Document(json!({
        "name": v.caller.name,
        "role": v.caller.role.to_string(),
        "may_operate": v.caller.role.allows(Permission::Operate),
        "csrf": v.csrf,
    }))
}

/// The latest releases, newest first (`?limit=`, default 100, at most 1000).
pub async fn releases(State(s): State<Surface>, _v: Viewer, uri: Uri) -> Response {
    let limit = query(&uri, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    match s.daemon.releases(None, limit) {
        Ok(list) => Document(json!({
            "releases": list.iter().map(views::release_summary).collect::<Vec<_>>(),
            "now_ms": crate::store::now_ms(),
        }))
        .into_response(),
        Err(e) => failed(e),
    }
}

pub async fn release(State(s): State<Surface>, _v: Viewer, Path(id): Path<u64>) -> Response {
    let id = ReleaseId(id);
    let r = match s.daemon.release(id) {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    match s.daemon.events_of(id) {
        Ok(events) => Document(views::release(&r, &events)).into_response(),
        Err(e) => failed(e),
    }
}

/// A release's canary: its judgements over time (those the audit log
/// holds, then the running canary's latest) and the latest in full.
pub async fn canary(State(s): State<Surface>, _v: Viewer, Path(id): Path<u64>) -> Response {
    let id = ReleaseId(id);
    let events = match s.daemon.events_of(id) {
        Ok(events) => events,
        Err(e) => return failed(e),
    };
    let mut history: Vec<Snapshot> = events
        .iter()
        .filter_map(|e| e.detail.get("canary"))
        .filter_map(|v| serde_json::from_value::<Snapshot>(v.clone()).ok())
        .collect();
    let latest = s.daemon.judgement(id).ok();
    if let Some(l) = &latest
        && history.last().is_none_or(|h| h.at_ms < l.at_ms)
    {
        history.push((**l).clone());
    }
    Document(json!({
        "release": id.0,
        "latest": latest.as_deref().map(views::judgement),
        "history": history.iter().map(views::judgement).collect::<Vec<_>>(),
    }))
    .into_response()
}

/// Every environment: what is live, its canary, its adapter and drift.
pub async fn environments(State(s): State<Surface>, _v: Viewer) -> Response {
    let adapters: BTreeMap<&str, &str> = s
        .daemon
        .pipelines()
        .flat_map(|p| &p.environments)
        .map(|e| (e.name.as_str(), e.adapter.as_str()))
        .collect();
    let drifted = s.daemon.drifted_environments();
    match s.daemon.environments() {
        Ok(envs) => {
            let shown: Vec<Value> = envs
                .iter()
                .map(|c| {
                    let name = c.state.name.as_str();
                    let adapter = adapters.get(name).copied().unwrap_or(BUILTIN_ADAPTER);
                    let drift = if adapter == BUILTIN_ADAPTER {
                        "built-in"
                    } else if drifted.contains(name) {
                        "drifted"
                    } else {
                        "no drift seen"
                    };
                    views::environment(c, adapter, drift)
                })
                .collect();
            Document(json!({ "environments": shown })).into_response()
        }
        Err(e) => failed(e),
    }
}

/// The plugin registry: every stored version, the active ones marked.
pub async fn plugins(State(s): State<Surface>, _v: Viewer) -> Response {
    let registry = s.daemon.registry();
    registry.installed().await;
    match registry.list(None) {
        Ok(listed) => Document(json!({
            "plugins": listed.iter().map(|(r, active)| views::plugin(r, *active)).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => status_response(&crate::api::errors::registry_status(e)),
    }
}

/// DORA figures of every environment over the last 30 days, and per day
/// the deployments and failed deployments, for a chart.
pub async fn dora(State(s): State<Surface>, _v: Viewer) -> Response {
    let daemon = s.daemon.clone();
    let computed = tokio::task::spawn_blocking(move || -> Result<Value, crate::daemon::Error> {
        let envs = daemon.environments()?;
        let events = daemon.events_from(1).collect::<Result<Vec<_>, _>>()?;
        let now = crate::store::now_ms();
        let mut shown = Vec::new();
        for c in &envs {
            let env = c.state.name.as_str();
            let figures = daemon.dora(env, DORA_DAYS)?;
            let days: Vec<Value> = (0..DORA_DAYS)
                .map(|d| {
                    let until_ms = now - i64::from(DORA_DAYS - 1 - d) * DAY_MS;
                    let window = Window {
                        environment: env.to_string(),
                        since_ms: until_ms - DAY_MS,
                        until_ms,
                    };
                    let f = dora::figures(&events, &window);
                    json!({
                        "until_ms": until_ms,
                        "deployments": f.deployments,
                        "failures": f.failed_deployments,
                    })
                })
                .collect();
            let mut v = views::dora(&figures);
            v["days"] = Value::Array(days);
            shown.push(v);
        }
        Ok(json!({ "days": DORA_DAYS, "environments": shown }))
    })
    .await;
    match computed {
        Ok(Ok(v)) => Document(v).into_response(),
        Ok(Err(e)) => failed(e),
        Err(e) => internal("the figures were not computed", e),
    }
}

/// The audit chain's state, verified now, and the latest events.
pub async fn audit(State(s): State<Surface>, _v: Viewer) -> Response {
    let daemon = s.daemon.clone();
    let checked = tokio::task::spawn_blocking(move || -> Result<Value, crate::daemon::Error> {
        let v = daemon.verify_audit()?;
        let count = match &v {
            crate::store::audit::Verification::Intact { events, .. } => *events,
            crate::store::audit::Verification::Broken { checked, .. } => *checked,
        };
        let from = count.saturating_sub(AUDIT_TAIL - 1).max(1);
        let tail = daemon
            .events_from(from)
            .take(AUDIT_TAIL as usize)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json!({
            "verification": views::verification(&v),
            "events": tail.iter().map(views::event).collect::<Vec<_>>(),
        }))
    })
    .await;
    match checked {
        Ok(Ok(v)) => Document(v).into_response(),
        Ok(Err(e)) => failed(e),
        Err(e) => internal("the audit log was not verified", e),
    }
}
