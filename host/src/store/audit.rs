//! The audit log's events and the hash chain that makes tampering visible.
//!
//! Each event holds the hash of the one before it, and its own hash covers all
//! of its fields. Changing an event breaks its hash; removing one breaks the
//! sequence and the next event's link; removing the newest breaks the agreement
//! with the head the store keeps beside the log.

use crate::ids::PhaseName;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The hash the first event links to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "release.submitted")]
    ReleaseSubmitted,
    #[serde(rename = "release.phase")]
    ReleasePhase,
    #[serde(rename = "release.resumed")]
    ReleaseResumed,
    /// A release waits its turn for something shared (gate call slots, an
    /// environment another release is acting on).
    #[serde(rename = "release.waiting")]
    ReleaseWaiting,
    #[serde(rename = "gate.verdict")]
    GateVerdict,
    #[serde(rename = "release.approved")]
    ReleaseApproved,
    #[serde(rename = "release.aborted")]
    ReleaseAborted,
    #[serde(rename = "env.applied")]
    EnvApplied,
    #[serde(rename = "env.rolled_back")]
    EnvRolledBack,
    #[serde(rename = "env.drifted")]
    EnvDrifted,
    #[serde(rename = "env.in_sync")]
    EnvInSync,
    /// An adapter found ahead of the record with no release to repair it
    /// was told the record again (`plugins::adapter`).
    #[serde(rename = "env.repaired")]
    EnvRepaired,
    #[serde(rename = "daemon.started")]
    DaemonStarted,
    #[serde(rename = "auth.admin_token_generated")]
    AdminTokenGenerated,
    /// The daemon read its config's tokens again (SIGHUP).
    #[serde(rename = "auth.tokens_reloaded")]
    TokensReloaded,
    #[serde(rename = "plugin.pushed")]
    PluginPushed,
    #[serde(rename = "plugin.refused")]
    PluginRefused,
    #[serde(rename = "plugin.activated")]
    PluginActivated,
    #[serde(rename = "plugin.rolled_back")]
    PluginRolledBack,
    /// A notification receiver gave up on an event (`telemetry::notify`).
    #[serde(rename = "notify.gave_up")]
    NotifyGaveUp,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ReleaseSubmitted => "release.submitted",
            EventKind::ReleasePhase => "release.phase",
            EventKind::ReleaseResumed => "release.resumed",
            EventKind::ReleaseWaiting => "release.waiting",
            EventKind::GateVerdict => "gate.verdict",
            EventKind::ReleaseApproved => "release.approved",
            EventKind::ReleaseAborted => "release.aborted",
            EventKind::EnvApplied => "env.applied",
            EventKind::EnvRolledBack => "env.rolled_back",
            EventKind::EnvDrifted => "env.drifted",
            EventKind::EnvInSync => "env.in_sync",
            EventKind::EnvRepaired => "env.repaired",
            EventKind::DaemonStarted => "daemon.started",
            EventKind::AdminTokenGenerated => "auth.admin_token_generated",
            EventKind::TokensReloaded => "auth.tokens_reloaded",
            EventKind::PluginPushed => "plugin.pushed",
            EventKind::PluginRefused => "plugin.refused",
            EventKind::PluginActivated => "plugin.activated",
            EventKind::PluginRolledBack => "plugin.rolled_back",
            EventKind::NotifyGaveUp => "notify.gave_up",
        }
    }
}

/// An event as its author describes it, before the log numbers and links it.
#[derive(Debug, Clone)]
pub struct Draft {
    pub actor: String,
    pub release: Option<u64>,
    pub environment: Option<String>,
    pub kind: EventKind,
    pub message: String,
    pub detail: serde_json::Value,
    pub phase: Option<PhaseName>,
}

impl Draft {
    pub fn new(kind: EventKind, actor: &str, message: impl Into<String>) -> Draft {
        Draft {
            actor: actor.to_string(),
            release: None,
            environment: None,
            kind,
            message: message.into(),
            detail: serde_json::Value::Null,
            phase: None,
        }
    }

    pub fn release(mut self, id: u64, phase: PhaseName) -> Draft {
        self.release = Some(id);
        self.phase = Some(phase);
        self
    }

    pub fn environment(mut self, env: &str) -> Draft {
        self.environment = Some(env.to_string());
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Draft {
        self.detail = detail;
        self
    }
}

/// An event as stored: numbered, timestamped, linked and hashed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub seq: u64,
    pub at_ms: i64,
    pub actor: String,
    pub release: Option<u64>,
    pub environment: Option<String>,
    pub kind: EventKind,
    pub message: String,
    pub detail: serde_json::Value,
    pub phase: Option<PhaseName>,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEvent {
    pub fn seal(draft: Draft, seq: u64, at_ms: i64, prev_hash: String) -> AuditEvent {
        let mut e = AuditEvent {
            seq,
            at_ms,
            actor: draft.actor,
            release: draft.release,
            environment: draft.environment,
            kind: draft.kind,
            message: draft.message,
            detail: draft.detail,
            phase: draft.phase,
            prev_hash,
            hash: String::new(),
        };
        e.hash = e.content_hash();
        e
    }

    /// sha256 over every field but `hash`, in a fixed order.
    pub fn content_hash(&self) -> String {
        #[derive(Serialize)]
        struct Hashed<'a> {
            seq: u64,
            at_ms: i64,
            actor: &'a str,
            release: Option<u64>,
            environment: Option<&'a str>,
            kind: EventKind,
            message: &'a str,
            detail: &'a serde_json::Value,
            phase: Option<PhaseName>,
            prev_hash: &'a str,
        }
        let bytes = serde_json::to_vec(&Hashed {
            seq: self.seq,
            at_ms: self.at_ms,
            actor: &self.actor,
            release: self.release,
            environment: self.environment.as_deref(),
            kind: self.kind,
            message: &self.message,
            detail: &self.detail,
            phase: self.phase,
            prev_hash: &self.prev_hash,
        })
        .unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }
}

/// The newest event's number and hash, kept beside the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
    /// When the newest event was sealed, so the next is never earlier
    /// (absent in older data directories: 0).
    #[serde(default)]
    pub at_ms: i64,
}

impl Default for Head {
    fn default() -> Self {
        Head {
            seq: 0,
            hash: GENESIS.to_string(),
            at_ms: 0,
        }
    }
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq)]
pub enum Verification {
    Intact {
        events: u64,
        head_hash: String,
    },
    Broken {
        seq: u64,
        checked: u64,
        problem: String,
    },
}

/// Walks the chain. `events` yields each stored event's sequence number (from
/// its key) and its bytes, in order; `head` is what the store says is newest.
pub fn verify<I>(events: I, head: Option<&Head>) -> Verification
where
    I: IntoIterator<Item = (u64, Vec<u8>)>,
{
    let mut prev = Head::default();
    for (key_seq, bytes) in events {
        let expected = prev.seq + 1;
        let broken = |problem: String| Verification::Broken {
            seq: expected.min(key_seq),
            checked: prev.seq,
            problem,
        };
        if key_seq != expected {
            return broken(format!(
                "event {expected} is missing: the log jumps from {} to {key_seq}",
                prev.seq
            ));
        }
        let event: AuditEvent = match serde_json::from_slice(&bytes) {
            Ok(e) => e,
            Err(e) => return broken(format!("event {key_seq} cannot be read: {e}")),
        };
        if event.seq != key_seq {
            return broken(format!(
                "event {key_seq} was altered: it claims to be event {}",
                event.seq
            ));
        }
        if event.content_hash() != event.hash {
            return broken(format!(
                "event {key_seq} ({}) was altered: its content no longer matches its hash",
                event.kind.as_str()
            ));
        }
        if event.prev_hash != prev.hash {
            return broken(format!(
                "event {key_seq} does not link to event {}: an event before it was altered or removed",
                prev.seq
            ));
        }
        prev = Head {
            seq: event.seq,
            hash: event.hash,
            at_ms: event.at_ms,
        };
    }
    // The head's time is a floor for the next event, not part of the chain.
    if let Some(head) = head
        && (head.seq, &head.hash) != (prev.seq, &prev.hash)
    {
        return Verification::Broken {
            seq: prev.seq + 1,
            checked: prev.seq,
            problem: format!(
                "the log ends at event {} but its head records event {}: events were removed from the end",
                prev.seq, head.seq
            ),
        };
    }
    Verification::Intact {
        events: prev.seq,
        head_hash: prev.hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<AuditEvent> {
        let mut out = Vec::new();
        let mut prev = GENESIS.to_string();
        for seq in 1..=n {
            let d = Draft::new(EventKind::ReleasePhase, "daemon", format!("step {seq}"))
                .release(7, PhaseName::Gating)
                .detail(serde_json::json!({"score": 0.1 * seq as f64}));
            let e = AuditEvent::seal(d, seq, 1_700_000_000_000 + seq as i64, prev);
            prev = e.hash.clone();
            out.push(e);
        }
        out
    }

    fn stored(events: &[AuditEvent]) -> Vec<(u64, Vec<u8>)> {
        events
            .iter()
            .map(|e| (e.seq, serde_json::to_vec(e).unwrap()))
            .collect()
    }

    fn head(events: &[AuditEvent]) -> Head {
        let last = events.last().unwrap();
        Head {
            seq: last.seq,
            hash: last.hash.clone(),
            at_ms: last.at_ms,
        }
    }

    #[test]
    fn intact_chain_verifies_and_reports_its_head() {
        let events = chain(5);
        match verify(stored(&events), Some(&head(&events))) {
            Verification::Intact {
                events: n,
                head_hash,
            } => {
                assert_eq!(n, 5);
                assert_eq!(head_hash, events[4].hash);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn altered_event_is_named() {
        let events = chain(5);
        let mut rows = stored(&events);
        let mut e3 = events[2].clone();
        e3.message = "step 3, quietly changed".into();
        rows[2].1 = serde_json::to_vec(&e3).unwrap();
        match verify(rows, Some(&head(&events))) {
            Verification::Broken { seq, problem, .. } => {
                assert_eq!(seq, 3);
                assert!(problem.contains("altered"), "{problem}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rehashed_forgery_breaks_the_next_link() {
        let events = chain(5);
        let mut rows = stored(&events);
        let mut e2 = events[1].clone();
        e2.actor = "mallory".into();
        e2.hash = e2.content_hash();
        rows[1].1 = serde_json::to_vec(&e2).unwrap();
        match verify(rows, Some(&head(&events))) {
            Verification::Broken { seq, problem, .. } => {
                assert_eq!(seq, 3);
                assert!(problem.contains("does not link"), "{problem}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn removed_events_are_found_in_the_middle_and_at_the_end() {
        let events = chain(5);
        let mut rows = stored(&events);
        rows.remove(1);
        match verify(rows, Some(&head(&events))) {
            Verification::Broken { seq, problem, .. } => {
                assert_eq!(seq, 2);
                assert!(problem.contains("missing"), "{problem}");
            }
            other => panic!("{other:?}"),
        }
        let mut rows = stored(&events);
        rows.pop();
        match verify(rows, Some(&head(&events))) {
            Verification::Broken { problem, .. } => {
                assert!(problem.contains("removed from the end"), "{problem}")
            }
            other => panic!("{other:?}"),
        }
    }
}
