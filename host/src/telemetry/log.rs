//! One daemon log line for every decision an operator looks for: a release's
//! outcome, a gate's verdict, an approval, an abort, a rollback (by the
//! daemon or a person). Written from the audit events as they
//! become durable, so the log says only what was committed, once, in the
//! audit log's words; text a plugin wrote is escaped, so it cannot forge a
//! line.

use crate::pipeline::release::PhaseName;
use crate::plugins::escape_controls;
use crate::store::audit::{AuditEvent, EventKind};
use std::future::Future;
use tokio::sync::broadcast;

/// Logs each decisive event from `events` until `closed` resolves.
pub fn spawn(
    mut events: broadcast::Receiver<std::sync::Arc<AuditEvent>>,
    closed: impl Future<Output = ()> + Send + 'static,
) {
    tokio::spawn(async move {
        tokio::pin!(closed);
        loop {
            tokio::select! {
                _ = &mut closed => return,
                next = events.recv() => match next {
                    Ok(e) => log(&e),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "the log fell behind the audit log; `gatehouse audit export` has every event");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
}

fn log(e: &AuditEvent) {
    let message = escape_controls(&e.message);
    let release = e.release.unwrap_or_default();
    let env = e.environment.as_deref().unwrap_or_default();
    match e.kind {
        EventKind::ReleasePhase => match e.phase {
            Some(PhaseName::Succeeded) => {
                tracing::info!(release_id = release, outcome = "succeeded", "{message}")
            }
            Some(PhaseName::Failed) => {
                tracing::warn!(release_id = release, outcome = "failed", "{message}")
            }
            Some(PhaseName::RolledBack) => {
                tracing::warn!(release_id = release, outcome = "rolled_back", "{message}")
            }
            Some(PhaseName::Aborted) => {
                tracing::warn!(release_id = release, outcome = "aborted", "{message}")
            }
            _ => {}
        },
        EventKind::GateVerdict => {
            let outcome = e
                .detail
                .get("outcome")
                .and_then(|o| o.as_str())
                .unwrap_or("unknown")
                .to_string();
            if outcome == "pass" || outcome == "warn" {
                tracing::info!(
                    release_id = release,
                    environment = env,
                    outcome,
                    "{message}"
                );
            } else {
                tracing::warn!(
                    release_id = release,
                    environment = env,
                    outcome,
                    "{message}"
                );
            }
        }
        EventKind::ReleaseApproved => {
            tracing::info!(release_id = release, environment = env, actor = %e.actor, "{message}")
        }
        EventKind::ReleaseAborted => {
            tracing::warn!(release_id = release, environment = env, actor = %e.actor, "{message}")
        }
        EventKind::EnvRolledBack => {
            tracing::warn!(release_id = release, environment = env, actor = %e.actor, "{message}")
        }
        _ => {}
    }
}
