//! `AuditService`: export and verify the hash-chained log; DORA figures.

use super::auth::{Permission, caller};
use super::{async_stream, convert, errors::status};
use crate::daemon::Daemon;
use crate::proto::{self, audit_service_server::AuditService};
use crate::store::audit::Verification;
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

pub struct AuditApi {
    pub daemon: Arc<Daemon>,
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    type ExportAuditStream = Pin<Box<dyn Stream<Item = Result<proto::Event, Status>> + Send>>;

    async fn export_audit(
        &self,
        req: Request<proto::ExportAuditRequest>,
    ) -> Result<Response<Self::ExportAuditStream>, Status> {
        caller(&req)?.require(Permission::Read)?;
        let from = req.get_ref().from_seq.max(1);
        let daemon = self.daemon.clone();
        Ok(Response::new(async_stream(
            &self.daemon,
            move |tx| async move {
                for e in daemon.events_from(from) {
                    let item = e.map(|e| convert::event(&e)).map_err(status);
                    let stop = item.is_err();
                    if tx.send(item).await.is_err() || stop {
                        return;
                    }
                }
            },
        )))
    }

    async fn get_dora(
        &self,
        req: Request<proto::GetDoraRequest>,
    ) -> Result<Response<proto::DoraFigures>, Status> {
        caller(&req)?.require(Permission::Read)?;
        let r = req.into_inner();
        let env = if r.environment.is_empty() {
            "production".to_string()
        } else {
            r.environment
        };
        let days = if r.days == 0 { 30 } else { r.days };
        let daemon = self.daemon.clone();
        let f = tokio::task::spawn_blocking(move || daemon.dora(&env, days))
            .await
            .map_err(|e| Status::internal(format!("the figures were not computed: {e}")))?
            .map_err(status)?;
        Ok(Response::new(convert::dora(&f)))
    }

    async fn verify_audit(
        &self,
        req: Request<proto::VerifyAuditRequest>,
    ) -> Result<Response<proto::VerifyAuditResponse>, Status> {
        caller(&req)?.require(Permission::Read)?;
        let daemon = self.daemon.clone();
        let v = tokio::task::spawn_blocking(move || daemon.verify_audit())
            .await
            .map_err(|e| Status::internal(format!("verification did not complete: {e}")))?
            .map_err(status)?;
        Ok(Response::new(match v {
            Verification::Intact { events, head_hash } => proto::VerifyAuditResponse {
                ok: true,
                events_checked: events,
                bad_seq: 0,
                problem: String::new(),
                head_hash,
            },
            Verification::Broken {
                seq,
                checked,
                problem,
            } => proto::VerifyAuditResponse {
                ok: false,
                events_checked: checked,
                bad_seq: seq,
                problem,
                head_hash: String::new(),
            },
        }))
    }
}
