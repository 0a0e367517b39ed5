//! `CanaryService`: observations in, judgements out, the rollback drill.
//!
//! Ingest is the hot path: a batch is decoded by tonic, then each
//! observation is moved (not copied) into the domain's type on its way into
//! the running canary's window; the only per-batch costs beyond that are one
//! map lookup, one lock and one interim look.

use super::auth::{Permission, caller};
use super::errors;
use super::errors::status;
use crate::canary::live::{Ingested, Mode, Snapshot};
use crate::canary::{Arm, Decision, Look, Observation};
use crate::daemon::Daemon;
use crate::pipeline::release::ReleaseId;
use crate::proto::{self, canary_service_server::CanaryService};
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

pub struct CanaryApi {
    pub daemon: Arc<Daemon>,
}

type JudgementStream = Pin<Box<dyn Stream<Item = Result<proto::Judgement, Status>> + Send>>;

#[tonic::async_trait]
impl CanaryService for CanaryApi {
    async fn report_observations(
        &self,
        req: Request<Streaming<proto::ObservationBatch>>,
    ) -> Result<Response<proto::ReportObservationsResponse>, Status> {
        caller(&req)?.require(Permission::Report)?;
        self.daemon.writable().map_err(errors::status)?;
        let mut stream = req.into_inner();
        let mut total = Ingested::default();
        while let Some(batch) = stream.message().await? {
            let observations = batch.observations.into_iter().map(observation);
            let got = self
                .daemon
                .report(&batch.environment, batch.release_id, observations)
                .await;
            total.add(got);
        }
        Ok(Response::new(proto::ReportObservationsResponse {
            accepted: total.accepted,
            dropped: total.dropped,
            rejected: total.rejected,
            rejection: total.rejection.unwrap_or_default(),
        }))
    }

    async fn get_judgement(
        &self,
        req: Request<proto::GetJudgementRequest>,
    ) -> Result<Response<proto::Judgement>, Status> {
        caller(&req)?.require(Permission::Read)?;
        let s = self
            .daemon
            .judgement(ReleaseId(req.get_ref().release_id))
            .map_err(status)?;
        Ok(Response::new(judgement(&s)))
    }

    type WatchJudgementStream = JudgementStream;

    async fn watch_judgement(
        &self,
        req: Request<proto::GetJudgementRequest>,
    ) -> Result<Response<Self::WatchJudgementStream>, Status> {
        caller(&req)?.require(Permission::Read)?;
        let id = ReleaseId(req.get_ref().release_id);
        let judged = self.daemon.watch_judgement(id).map_err(status)?;
        let stream = judged.map(|j| {
            let mut shown = judgement(&j.snapshot);
            shown.r#final |= j.recorded_final;
            Ok(shown)
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn run_drill(
        &self,
        req: Request<proto::RunDrillRequest>,
    ) -> Result<Response<proto::RunDrillResponse>, Status> {
        let who = caller(&req)?;
        who.require(Permission::Operate)?;
        self.daemon.writable().map_err(errors::status)?;
        let r = req.into_inner();
        if r.environment.is_empty() {
            return Err(Status::invalid_argument(
                "environment is empty; name the environment to drill",
            ));
        }
        let report = self
            .daemon
            .drill(&who.name, &r.environment, r.force)
            .await
            .map_err(status)?;
        Ok(Response::new(proto::RunDrillResponse {
            environment: report.environment,
            digest: report.digest.hex(),
            weight_percent: report.weight_percent,
            generation: report.generation,
            recovery_us: report.recovery.as_micros() as u64,
            decided_at_us: report
                .decided_at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as i64),
        }))
    }
}

/// One reported observation in the domain's terms; a missing arm is refused
/// here, bad numbers by the window.
fn observation(o: proto::Observation) -> Result<Observation, String> {
    let arm = match proto::Arm::try_from(o.arm) {
        Ok(proto::Arm::Baseline) => Arm::Baseline,
        Ok(proto::Arm::Canary) => Arm::Canary,
        _ => {
            return Err(format!(
                "arm {} is neither ARM_BASELINE nor ARM_CANARY; report the arm that served the request",
                o.arm
            ));
        }
    };
    Ok(Observation {
        arm,
        request_key: o.request_key,
        latency_ms: o.latency_ms,
        error: o.error,
        cost: o.cost,
        output_fingerprint: (!o.output_fingerprint.is_empty()).then_some(o.output_fingerprint),
        prediction: o.prediction,
    })
}

fn judgement(s: &Snapshot) -> proto::Judgement {
    let j = &s.judgement;
    let (decision, needed) = match j.decision {
        Decision::Promote => (proto::Decision::Promote, 0),
        Decision::Continue => (proto::Decision::Continue, 0),
        Decision::RollBack => (proto::Decision::RollBack, 0),
        Decision::Inconclusive { needed } => (proto::Decision::Inconclusive, needed),
    };
    proto::Judgement {
        release_id: s.position.release,
        environment: s.position.environment.clone(),
        weight_percent: s.position.weight_percent,
        step: s.position.step as u32,
        decision: decision as i32,
        reason: j.reason.clone(),
        evidence_json: serde_json::to_string(j).unwrap_or_default(),
        baseline_samples: j.baseline_n,
        canary_samples: j.canary_n,
        judged_at_ms: s.at_ms,
        r#final: s.last,
        needed,
        interim: j.look == Look::Interim,
        watch: s.position.mode == Mode::Watch,
        score: j.score,
    }
}
