//! Domain values as the dashboard's JSON, as `api/convert.rs` makes them
//! gRPC messages: digests in hex, phases by name, times in Unix
//! milliseconds, absent numbers as `null`.

use crate::canary::live::Snapshot;
use crate::configstore::{Deployment, LiveConfig};
use crate::pipeline::release::{Phase, Release};
use crate::plugins::registry::PluginRecord;
use crate::store::audit::{AuditEvent, Verification};
use crate::telemetry::dora::Dora;
use serde_json::{Value, json};

/// One line of the release list.
pub fn release_summary(r: &Release) -> Value {
    json!({
        "id": r.id.0,
        "pipeline": r.pipeline.name,
        "candidate": r.candidate.hex(),
        "phase": r.phase.name().to_string(),
        "terminal": r.phase.is_terminal(),
        "environment": r.current_environment(),
        "reason": r.phase.reason().or(r.waiting.as_deref()).unwrap_or_default(),
        "submitted_by": r.submitted_by,
        "submitted_at_ms": r.submitted_at_ms,
        "updated_at_ms": r.updated_at_ms,
    })
}

/// A release in full: its stages with their gates' verdicts and approvals
/// (`approvals_at` pairs each approver with when the log says they
/// approved), and its events.
pub fn release(r: &Release, events: &[AuditEvent]) -> Value {
    let current = r.phase.stage();
    let stages: Vec<Value> = r
        .stages
        .iter()
        .zip(&r.pipeline.environments)
        .enumerate()
        .map(|(i, (s, e))| {
            let approvals: Vec<Value> = events
                .iter()
                .filter(|ev| {
                    ev.kind.as_str() == "release.approved"
                        && ev.environment.as_deref() == Some(e.name.as_str())
                })
                .map(|ev| json!({ "by": ev.actor, "at_ms": ev.at_ms, "message": ev.message }))
                .collect();
            json!({
                "environment": s.environment,
                "state": stage_state(&r.phase, i, current, s.promoted),
                "gates": s.gates,
                "approvals_required": e.approvals,
                "approved_by": s.approved_by,
                "approvals": approvals,
                "promoted": s.promoted,
                "canary": e.canary.is_some(),
                "adapter": e.adapter,
            })
        })
        .collect();
    let mut v = release_summary(r);
    v["stages"] = Value::Array(stages);
    v["metadata"] = json!(r.metadata);
    v["four_eyes"] = json!(r.pipeline.four_eyes);
    v["awaiting_approval"] = json!(matches!(r.phase, Phase::AwaitingApproval { .. }));
    v["paused"] = json!(matches!(
        r.phase,
        Phase::Canary {
            hold: crate::pipeline::release::CanaryHold::Paused,
            ..
        }
    ));
    v["events"] = Value::Array(events.iter().map(event).collect());
    v
}

/// Where stage `i` stands: `done`, `current`, `failed`, `skipped` or
/// `pending`.
fn stage_state(phase: &Phase, i: usize, current: Option<usize>, promoted: bool) -> &'static str {
    if promoted {
        return "done";
    }
    match (phase, current) {
        (Phase::Succeeded, _) => "done",
        (Phase::Failed { .. } | Phase::RolledBack { .. } | Phase::Aborted { .. }, Some(c))
            if c == i =>
        {
            "failed"
        }
        (Phase::Failed { .. } | Phase::RolledBack { .. } | Phase::Aborted { .. }, _) => "skipped",
        (_, Some(c)) if c == i => "current",
        _ => "pending",
    }
}

pub fn event(e: &AuditEvent) -> Value {
    json!({
        "seq": e.seq,
        "at_ms": e.at_ms,
        "actor": e.actor,
        "release": e.release,
        "environment": e.environment,
        "kind": e.kind.as_str(),
        "message": e.message,
        "phase": e.phase.map(|p| p.to_string()),
    })
}

/// A canary judgement: position, decision, samples and each metric's
/// evidence (test, statistic, p- or e-value, threshold, effect, outcome).
pub fn judgement(s: &Snapshot) -> Value {
    let j = &s.judgement;
    let metrics: Vec<Value> = j
        .metrics
        .iter()
        .map(|m| {
            json!({
                "metric": m.metric.to_string(),
                "baseline": m.baseline,
                "canary": m.canary,
                "baseline_n": m.baseline_n,
                "canary_n": m.canary_n,
                "test": m.test.name(),
                "statistic": m.statistic,
                "p_value": m.p_value,
                "e_value": m.e_value,
                "threshold": m.threshold,
                "effect": m.effect,
                "effect_text": m.effect.map(|e| crate::canary::judgement::effect_text(m.metric, e)),
                "effect_floor": m.effect_floor,
                "outcome": m.outcome.name(),
                "critical": m.critical,
                "note": m.note,
            })
        })
        .collect();
    json!({
        "release": s.position.release,
        "environment": s.position.environment,
        "step": s.position.step + 1,
        "weight_percent": s.position.weight_percent,
        "mode": s.position.mode,
        "at_ms": s.at_ms,
        "last": s.last,
        "decision": j.decision,
        "reason": j.reason,
        "look": j.look,
        "score": j.score,
        "baseline_n": j.baseline_n,
        "canary_n": j.canary_n,
        "mirrored_pairs": j.mirrored_pairs,
        "metrics": metrics,
    })
}

fn deployment(d: &Option<Deployment>) -> Value {
    d.as_ref().map_or(Value::Null, |d| {
        json!({
            "digest": d.digest.hex(),
            "release": d.release.0,
            "deployed_at_ms": d.deployed_at_ms,
        })
    })
}

/// An environment: what is live, its canary, how it is placed and whether
/// it was last seen drifted.
pub fn environment(c: &LiveConfig, adapter: &str, drift: &str) -> Value {
    json!({
        "name": c.state.name,
        "generation": c.state.generation,
        "active": deployment(&c.state.active),
        "canary": deployment(&c.state.canary),
        "canary_weight_percent": c.state.canary_weight_percent,
        "holder": c.state.holder.map(|h| h.0),
        "adapter": adapter,
        "drift": drift,
    })
}

pub fn plugin(r: &PluginRecord, active: bool) -> Value {
    json!({
        "name": r.description.name,
        "version": r.description.version,
        "kind": r.description.kind,
        "digest": r.digest.hex(),
        "summary": r.description.summary,
        "granted": r.granted,
        "api_version": r.api_version,
        "size_bytes": r.size_bytes,
        "pushed_at_ms": r.pushed_at_ms,
        "pushed_by": r.pushed_by,
        "origin": r.origin.as_str(),
        "signed_by": r.signed_by,
        "active": active,
    })
}

pub fn dora(f: &Dora) -> Value {
    json!(f)
}

pub fn verification(v: &Verification) -> Value {
    match v {
        Verification::Intact { events, head_hash } => {
            json!({ "intact": true, "events": events, "head_hash": head_hash })
        }
        Verification::Broken {
            seq,
            checked,
            problem,
        } => json!({ "intact": false, "bad_seq": seq, "events": checked, "problem": problem }),
    }
}

/// A JSON document as an HTTP answer.
pub struct Document(pub Value);

impl axum::response::IntoResponse for Document {
    fn into_response(self) -> axum::response::Response {
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.0.to_string(),
        )
            .into_response()
    }
}
