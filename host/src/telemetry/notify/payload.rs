//! What an audit event is worth telling, and the bodies that tell it: JSON
//! with the audit event's own fields, or a Slack incoming-webhook message.

use super::{Format, Links};
use crate::ids::PhaseName;
use crate::store::audit::{AuditEvent, EventKind};
use serde::{Deserialize, Serialize};

/// The events a receiver may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    #[serde(rename = "release.succeeded")]
    Succeeded,
    #[serde(rename = "release.failed")]
    Failed,
    #[serde(rename = "release.rolled_back")]
    RolledBack,
    #[serde(rename = "release.aborted")]
    Aborted,
    #[serde(rename = "release.awaiting_approval")]
    AwaitingApproval,
    /// A canary step's final look could not decide and the pipeline holds
    /// it for a person.
    #[serde(rename = "canary.paused")]
    CanaryPaused,
    /// A canary step's final look could not decide and the step was
    /// extended to gather more samples.
    #[serde(rename = "canary.inconclusive")]
    CanaryInconclusive,
    #[serde(rename = "env.drifted")]
    Drifted,
    #[serde(rename = "audit.broken")]
    AuditBroken,
}

impl Kind {
    const ALL: [Kind; 9] = [
        Kind::Succeeded,
        Kind::Failed,
        Kind::RolledBack,
        Kind::Aborted,
        Kind::AwaitingApproval,
        Kind::CanaryPaused,
        Kind::CanaryInconclusive,
        Kind::Drifted,
        Kind::AuditBroken,
    ];

    pub fn all() -> Vec<Kind> {
        Kind::ALL.to_vec()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Succeeded => "release.succeeded",
            Kind::Failed => "release.failed",
            Kind::RolledBack => "release.rolled_back",
            Kind::Aborted => "release.aborted",
            Kind::AwaitingApproval => "release.awaiting_approval",
            Kind::CanaryPaused => "canary.paused",
            Kind::CanaryInconclusive => "canary.inconclusive",
            Kind::Drifted => "env.drifted",
            Kind::AuditBroken => "audit.broken",
        }
    }

    pub(super) fn names() -> String {
        Kind::ALL.map(Kind::as_str).join(", ")
    }

    /// What `e` tells, if a receiver may want it.
    pub fn of(e: &AuditEvent) -> Option<Kind> {
        match (e.kind, e.phase) {
            (EventKind::ReleasePhase, Some(PhaseName::Succeeded)) => Some(Kind::Succeeded),
            (EventKind::ReleasePhase, Some(PhaseName::Failed)) => Some(Kind::Failed),
            (EventKind::ReleasePhase, Some(PhaseName::RolledBack)) => Some(Kind::RolledBack),
            (EventKind::ReleasePhase, Some(PhaseName::Aborted)) => Some(Kind::Aborted),
            (EventKind::ReleasePhase, Some(PhaseName::AwaitingApproval)) => {
                Some(Kind::AwaitingApproval)
            }
            (EventKind::ReleasePhase, Some(PhaseName::Canary)) => {
                if e.detail["hold"] == "paused" {
                    Some(Kind::CanaryPaused)
                } else if e.detail["canary"]["judgement"]["decision"]["kind"] == "inconclusive" {
                    Some(Kind::CanaryInconclusive)
                } else {
                    None
                }
            }
            (EventKind::EnvDrifted, _) => Some(Kind::Drifted),
            _ => None,
        }
    }
}

/// One delivery: its key, its body, what it tells.
#[derive(Debug, Clone)]
pub struct Message {
    pub kind: Kind,
    /// The same for every attempt of this event to this receiver.
    pub key: String,
    pub body: Vec<u8>,
    /// For logs and the give-up record.
    pub release: Option<u64>,
    pub environment: Option<String>,
    pub seq: Option<u64>,
}

/// The delivery of audit event `e` to a receiver of `format`.
pub fn message(kind: Kind, e: &AuditEvent, format: Format, links: &Links) -> Message {
    // The event's own hash makes the key unique across data directories.
    let key = format!("{}-{}", e.seq, e.hash.get(..16).unwrap_or(&e.hash));
    let url = match (e.release, e.environment.as_deref()) {
        (Some(id), _) => links.release(id),
        (None, Some(_)) => links.environments(),
        (None, None) => links.audit(),
    };
    let body = match format {
        Format::Json => serde_json::json!({
            "id": key,
            "event": kind.as_str(),
            "audit_seq": e.seq,
            "at_ms": e.at_ms,
            "release": e.release,
            "environment": e.environment,
            "phase": e.phase,
            "actor": e.actor,
            "message": e.message,
            "detail": e.detail,
            "url": url,
        }),
        Format::Slack => slack(kind, &e.message, url.as_deref()),
    };
    Message {
        kind,
        key,
        body: serde_json::to_vec(&body).unwrap_or_default(),
        release: e.release,
        environment: e.environment.clone(),
        seq: Some(e.seq),
    }
}

/// The delivery telling that the audit chain no longer verifies.
pub fn broken_chain(problem: &str, head_seq: u64, format: Format, links: &Links) -> Message {
    let kind = Kind::AuditBroken;
    let key = format!("audit-broken-{head_seq}");
    let text = format!(
        "the audit log's hash chain does not verify: {problem}; run `gatehouse audit verify`"
    );
    let body = match format {
        Format::Json => serde_json::json!({
            "id": key,
            "event": kind.as_str(),
            "audit_seq": head_seq,
            "message": text,
            "url": links.audit(),
        }),
        Format::Slack => slack(kind, &text, links.audit().as_deref()),
    };
    Message {
        kind,
        key,
        body: serde_json::to_vec(&body).unwrap_or_default(),
        release: None,
        environment: None,
        seq: None,
    }
}

/// A Slack incoming-webhook message. The text is escaped as Slack asks, so
/// a reason a plugin wrote cannot mention `@channel` or forge a link.
fn slack(kind: Kind, message: &str, url: Option<&str>) -> serde_json::Value {
    let icon = match kind {
        Kind::Succeeded => ":white_check_mark:",
        Kind::AwaitingApproval | Kind::CanaryPaused | Kind::CanaryInconclusive => {
            ":hourglass_flowing_sand:"
        }
        _ => ":rotating_light:",
    };
    let mut text = format!("{icon} *{}*: {}", kind.as_str(), escape_slack(message));
    if let Some(url) = url {
        text.push_str(&format!(" <{}|open in Gatehouse>", escape_slack(url)));
    }
    serde_json::json!({ "text": text })
}

fn escape_slack(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::Draft;

    fn sealed(draft: Draft) -> AuditEvent {
        AuditEvent::seal(draft, 7, 1_000, crate::store::audit::GENESIS.into())
    }

    #[test]
    fn release_outcomes_holds_and_drift_are_told_and_the_rest_is_not() {
        let phase = |p: PhaseName, detail: serde_json::Value| {
            sealed(
                Draft::new(EventKind::ReleasePhase, "gatehouse", "m")
                    .release(3, p)
                    .detail(detail),
            )
        };
        let null = serde_json::Value::Null;
        assert_eq!(
            Kind::of(&phase(PhaseName::Succeeded, null.clone())),
            Some(Kind::Succeeded)
        );
        assert_eq!(
            Kind::of(&phase(PhaseName::RolledBack, null.clone())),
            Some(Kind::RolledBack)
        );
        assert_eq!(
            Kind::of(&phase(PhaseName::AwaitingApproval, null.clone())),
            Some(Kind::AwaitingApproval)
        );
        assert_eq!(Kind::of(&phase(PhaseName::Gating, null.clone())), None);
        let paused = serde_json::json!({ "phase": "canary", "hold": "paused",
            "canary": { "judgement": { "decision": { "kind": "inconclusive" } } } });
        assert_eq!(
            Kind::of(&phase(PhaseName::Canary, paused)),
            Some(Kind::CanaryPaused)
        );
        let extended = serde_json::json!({ "phase": "canary", "hold": "observing",
            "canary": { "judgement": { "decision": { "kind": "inconclusive" } } } });
        assert_eq!(
            Kind::of(&phase(PhaseName::Canary, extended)),
            Some(Kind::CanaryInconclusive)
        );
        let stepped = serde_json::json!({ "phase": "canary", "hold": "observing",
            "canary": { "judgement": { "decision": { "kind": "promote" } } } });
        assert_eq!(Kind::of(&phase(PhaseName::Canary, stepped)), None);
        let drift = sealed(Draft::new(EventKind::EnvDrifted, "gatehouse", "d").environment("prod"));
        assert_eq!(Kind::of(&drift), Some(Kind::Drifted));
        let applied =
            sealed(Draft::new(EventKind::EnvApplied, "gatehouse", "a").environment("prod"));
        assert_eq!(Kind::of(&applied), None);
    }

    #[test]
    fn json_carries_the_event_and_a_stable_key_and_slack_text_is_escaped() {
        let e = sealed(
            Draft::new(
                EventKind::ReleasePhase,
                "gatehouse",
                "rolled back: <!channel> p99 & errors",
            )
            .release(3, PhaseName::RolledBack)
            .environment("prod")
            .detail(serde_json::json!({ "reason": "p99" })),
        );
        let links = Links {
            dashboard: Some("http://127.0.0.1:7444/".into()),
        };
        let m = message(Kind::RolledBack, &e, Format::Json, &links);
        assert_eq!(
            m.key,
            message(Kind::RolledBack, &e, Format::Json, &links).key
        );
        assert!(m.key.starts_with("7-"));
        let body: serde_json::Value = serde_json::from_slice(&m.body).unwrap();
        assert_eq!(body["id"], m.key.as_str());
        assert_eq!(body["event"], "release.rolled_back");
        assert_eq!(body["release"], 3);
        assert_eq!(body["phase"], "rolled_back");
        assert_eq!(body["detail"]["reason"], "p99");
        assert_eq!(body["url"], "http://127.0.0.1:7444/#/releases/3");

        let s = message(Kind::RolledBack, &e, Format::Slack, &links);
        let body: serde_json::Value = serde_json::from_slice(&s.body).unwrap();
        let text = body["text"].as_str().unwrap();
        assert!(text.contains("&lt;!channel&gt; p99 &amp; errors"), "{text}");
        assert!(
            text.ends_with("<http://127.0.0.1:7444/#/releases/3|open in Gatehouse>"),
            "{text}"
        );
    }
}
