//! One daemon log line for every decision an operator looks for: a release's
//! outcome, a gate's verdict, an approval, an abort, a rollback (by the
//! daemon or a person), a notification given up; each with the audit
//! event's fields (seq, kind, actor, release, environment, phase). Written from the audit events as they
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

/// One line with the audit event's own fields, at `$level`, with any
/// fields more that the kind has.
macro_rules! line {
    ($level:ident, $e:expr, $message:expr $(, $k:ident = $v:expr)*) => {{
        let phase = $e.phase.map(|p| p.to_string());
        tracing::$level!(
            seq = $e.seq,
            kind = $e.kind.as_str(),
            actor = %$e.actor,
            release_id = $e.release,
            environment = $e.environment.as_deref(),
            phase = phase.as_deref(),
            $($k = $v,)*
            "{}",
            $message
        )
    }};
}

fn log(e: &AuditEvent) {
    let message = escape_controls(&e.message);
    match e.kind {
        EventKind::ReleasePhase => match e.phase {
            Some(PhaseName::Succeeded) => line!(info, e, message, outcome = "succeeded"),
            Some(PhaseName::Failed) => line!(warn, e, message, outcome = "failed"),
            Some(PhaseName::RolledBack) => line!(warn, e, message, outcome = "rolled_back"),
            Some(PhaseName::Aborted) => line!(warn, e, message, outcome = "aborted"),
            _ => {}
        },
        EventKind::GateVerdict => {
            let outcome = e.detail["outcome"].as_str().unwrap_or("unknown");
            let gate = e.detail["gate"].as_str().unwrap_or_default();
            if outcome == "pass" || outcome == "warn" {
                line!(info, e, message, gate = gate, outcome = outcome);
            } else {
                line!(warn, e, message, gate = gate, outcome = outcome);
            }
        }
        EventKind::ReleaseApproved => line!(info, e, message),
        EventKind::ReleaseAborted => line!(warn, e, message),
        EventKind::EnvRolledBack => {
            let cause = if e.actor == crate::ids::DAEMON {
                "automatic"
            } else {
                "operator"
            };
            line!(warn, e, message, cause = cause)
        }
        EventKind::NotifyGaveUp => {
            let notify = e.detail["notify"].as_str().unwrap_or_default();
            let reason = e.detail["reason"].as_str().unwrap_or_default();
            line!(error, e, message, notify = notify, reason = reason)
        }
        _ => {}
    }
}
