//! Domain values as API messages.

use crate::configstore::{Deployment, LiveConfig};
use crate::daemon::{DriftReport, DriftStatus, Placement};
use crate::pipeline::release::{GateRecord, Outcome, Phase, PhaseName, Release};
use crate::proto;
use crate::store::audit::AuditEvent;
use crate::telemetry::dora::Dora;

pub fn phase(p: PhaseName) -> proto::ReleasePhase {
    use proto::ReleasePhase as P;
    match p {
        PhaseName::Pending => P::Pending,
        PhaseName::Gating => P::Gating,
        PhaseName::AwaitingApproval => P::AwaitingApproval,
        PhaseName::Applying => P::Applying,
        PhaseName::Canary => P::Canary,
        PhaseName::Promoted => P::Promoted,
        PhaseName::Succeeded => P::Succeeded,
        PhaseName::Failed => P::Failed,
        PhaseName::RolledBack => P::RolledBack,
        PhaseName::Aborted => P::Aborted,
    }
}

fn outcome(o: Outcome) -> proto::Outcome {
    match o {
        Outcome::Pass => proto::Outcome::Pass,
        Outcome::Warn => proto::Outcome::Warn,
        Outcome::Fail => proto::Outcome::Fail,
        Outcome::Inconclusive => proto::Outcome::Inconclusive,
    }
}

fn gate(g: &GateRecord) -> proto::GateResult {
    proto::GateResult {
        gate: g.gate.clone(),
        plugin: g.plugin.clone(),
        plugin_digest: g.plugin_digest.map(|d| d.hex()).unwrap_or_default(),
        outcome: outcome(g.outcome) as i32,
        score: g.score,
        measurements: g
            .measurements
            .iter()
            .map(|m| proto::Measurement {
                name: m.name.clone(),
                value: m.value,
                unit: m.unit.clone(),
            })
            .collect(),
        reason: g.reason.clone(),
        fuel_used: g.fuel_used.unwrap_or(0),
        blocking: g.blocking,
        duration_us: g.duration_us,
    }
}

pub fn release(r: &Release) -> proto::Release {
    let failed_gate = match &r.phase {
        Phase::Failed { gate: Some(g), .. } => g.clone(),
        _ => String::new(),
    };
    proto::Release {
        id: r.id.0,
        pipeline: r.pipeline.name.clone(),
        candidate_digest: r.candidate.hex(),
        metadata: r.metadata.clone().into_iter().collect(),
        attachments: r
            .attachments
            .iter()
            .map(|a| proto::Attachment {
                name: a.name.clone(),
                digest: a.digest.hex(),
                size: a.size,
            })
            .collect(),
        phase: phase(r.phase.name()) as i32,
        environment: r.current_environment().unwrap_or_default().to_string(),
        reason: r.phase.reason().unwrap_or_default().to_string(),
        failed_gate,
        misconfigured: matches!(
            r.phase,
            Phase::Failed {
                misconfigured: true,
                ..
            }
        ),
        stages: r
            .stages
            .iter()
            .zip(&r.pipeline.environments)
            .map(|(s, e)| proto::StageStatus {
                environment: s.environment.clone(),
                gates: s.gates.iter().map(gate).collect(),
                approvals_required: e.approvals,
                approved_by: s.approved_by.clone(),
                promoted: s.promoted,
            })
            .collect(),
        submitted_by: r.submitted_by.clone(),
        submitted_at_ms: r.submitted_at_ms,
        updated_at_ms: r.updated_at_ms,
        terminal: r.phase.is_terminal(),
        waiting: r.waiting.clone().unwrap_or_default(),
    }
}

pub fn event(e: &AuditEvent) -> proto::Event {
    proto::Event {
        seq: e.seq,
        at_ms: e.at_ms,
        actor: e.actor.clone(),
        release_id: e.release.unwrap_or(0),
        environment: e.environment.clone().unwrap_or_default(),
        kind: e.kind.as_str().to_string(),
        message: e.message.clone(),
        detail_json: e.detail.to_string(),
        phase: e.phase.map_or(0, |p| phase(p) as i32),
        prev_hash: e.prev_hash.clone(),
        hash: e.hash.clone(),
    }
}

pub fn dora(f: &Dora) -> proto::DoraFigures {
    proto::DoraFigures {
        environment: f.environment.clone(),
        since_ms: f.since_ms,
        until_ms: f.until_ms,
        deployments: f.deployments,
        deployments_per_day: f.deployments_per_day,
        lead_time_median_ms: f.lead_time_median_ms,
        lead_time_p90_ms: f.lead_time_p90_ms,
        failed_deployments: f.failed_deployments,
        change_failure_rate: f.change_failure_rate,
        recovery_median_ms: f.recovery_median_ms,
        canaries_rolled_back: f.canaries_rolled_back,
    }
}

pub fn drift_report(r: &DriftReport) -> proto::DriftReport {
    let placement = |p: &Placement| proto::Placement {
        active: p.active.clone().unwrap_or_default(),
        canary: p.canary.clone().unwrap_or_default(),
        canary_weight_percent: p.canary_weight_percent,
    };
    let status = match r.status {
        DriftStatus::InSync => proto::DriftStatus::InSync,
        DriftStatus::Drifted => proto::DriftStatus::Drifted,
        DriftStatus::Changing => proto::DriftStatus::Changing,
        DriftStatus::Unreadable => proto::DriftStatus::Unreadable,
        DriftStatus::BuiltIn => proto::DriftStatus::BuiltIn,
    };
    proto::DriftReport {
        environment: r.environment.clone(),
        adapter: r.adapter.clone(),
        status: status as i32,
        expected: Some(placement(&r.expected)),
        live: r.live.as_ref().map(placement),
        differences: r.differences.clone(),
        detail: r.detail.clone(),
        checked_at_ms: r.checked_at_ms,
    }
}

pub fn config(c: &LiveConfig) -> proto::ActiveConfig {
    let deployment = |d: &Option<Deployment>, bytes: &Option<std::sync::Arc<Vec<u8>>>| {
        d.as_ref().map(|d| proto::Deployment {
            digest: d.digest.hex(),
            config: bytes.as_ref().map(|b| b.to_vec()).unwrap_or_default(),
            release_id: d.release.0,
            deployed_at_ms: d.deployed_at_ms,
        })
    };
    proto::ActiveConfig {
        environment: c.state.name.clone(),
        generation: c.state.generation,
        active: deployment(&c.state.active, &c.active_bytes),
        canary: deployment(&c.state.canary, &c.canary_bytes),
        canary_weight_percent: c.state.canary_weight_percent,
    }
}

pub fn pipeline(p: &crate::pipeline::definition::Pipeline) -> proto::Pipeline {
    proto::Pipeline {
        name: p.name.clone(),
        stages: p
            .environments
            .iter()
            .map(|e| proto::PipelineStage {
                environment: e.name.clone(),
                adapter: e.adapter.clone(),
                gates: e.gates.iter().map(|g| g.name.clone()).collect(),
                approvals_required: e.approvals,
                canary: e.canary.is_some(),
            })
            .collect(),
        four_eyes: p.four_eyes,
    }
}
