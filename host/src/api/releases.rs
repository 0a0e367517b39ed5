//! `ReleaseService`: submit, inspect, watch, approve, abort.

use super::auth::{Permission, caller};
use super::errors;
use super::{convert, errors::status};
use crate::daemon::Daemon;
use crate::pipeline::release::ReleaseId;
use crate::proto::{self, release_service_server::ReleaseService};
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

/// What one ListReleases answer may hold, below the clients' 4 MiB limit.
const LIST_BYTES: usize = 3 << 20;

pub struct ReleaseApi {
    pub daemon: Arc<Daemon>,
}

type EventStream = Pin<Box<dyn Stream<Item = Result<proto::Event, Status>> + Send>>;

#[tonic::async_trait]
impl ReleaseService for ReleaseApi {
    async fn submit_release(
        &self,
        req: Request<proto::SubmitReleaseRequest>,
    ) -> Result<Response<proto::SubmitReleaseResponse>, Status> {
        let who = caller(&req)?;
        who.require(Permission::Submit)?;
        self.daemon.writable().map_err(errors::status)?;
        let r = req.into_inner();
        if r.pipeline.is_empty() {
            return Err(Status::invalid_argument(
                "pipeline is empty; name the pipeline to run (see `name` in pipeline.toml)",
            ));
        }
        let metadata = r.metadata.into_iter().collect();
        let (release, deduplicated, candidate_known) = self
            .daemon
            .submit(
                &who.name,
                &r.pipeline,
                r.candidate,
                metadata,
                r.attachments.into_iter().collect(),
                (!r.idempotency_key.is_empty()).then_some(r.idempotency_key.as_str()),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(proto::SubmitReleaseResponse {
            release: Some(convert::release(&release)),
            deduplicated,
            candidate_known,
        }))
    }

    async fn get_release(
        &self,
        req: Request<proto::GetReleaseRequest>,
    ) -> Result<Response<proto::Release>, Status> {
        caller(&req)?.require(Permission::Read)?;
        let r = self
            .daemon
            .release(ReleaseId(req.get_ref().id))
            .map_err(status)?;
        Ok(Response::new(convert::release(&r)))
    }

    async fn list_releases(
        &self,
        req: Request<proto::ListReleasesRequest>,
    ) -> Result<Response<proto::ListReleasesResponse>, Status> {
        caller(&req)?.require(Permission::Read)?;
        let r = req.into_inner();
        let limit = match r.limit {
            0 => 50,
            n => n.min(1000) as usize,
        };
        let pipeline = (!r.pipeline.is_empty()).then_some(r.pipeline.as_str());
        let releases = self.daemon.releases(pipeline, limit).map_err(status)?;
        let mut listed = proto::ListReleasesResponse::default();
        let mut size = 0;
        for release in &releases {
            let mut summary = convert::release(release);
            for gate in summary.stages.iter_mut().flat_map(|s| &mut s.gates) {
                gate.reason = crate::plugins::clip_to(std::mem::take(&mut gate.reason), 256);
            }
            size += prost::Message::encoded_len(&summary);
            if size > LIST_BYTES {
                listed.truncated = true;
                break;
            }
            listed.releases.push(summary);
        }
        Ok(Response::new(listed))
    }

    type WatchReleaseStream = EventStream;

    async fn watch_release(
        &self,
        req: Request<proto::WatchReleaseRequest>,
    ) -> Result<Response<Self::WatchReleaseStream>, Status> {
        caller(&req)?.require(Permission::Read)?;
        let id = ReleaseId(req.get_ref().id);
        let events = self.daemon.watch_release(id).map_err(status)?;
        let stream = events.map(|e| e.map(|e| convert::event(&e)).map_err(status));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn approve_stage(
        &self,
        req: Request<proto::ApproveStageRequest>,
    ) -> Result<Response<proto::Release>, Status> {
        let who = caller(&req)?;
        who.require(Permission::Operate)?;
        self.daemon.writable().map_err(errors::status)?;
        let r = req.into_inner();
        let release = self
            .daemon
            .approve(&who.name, ReleaseId(r.id), &r.environment, &r.comment)
            .await
            .map_err(status)?;
        Ok(Response::new(convert::release(&release)))
    }

    async fn abort_release(
        &self,
        req: Request<proto::AbortReleaseRequest>,
    ) -> Result<Response<proto::Release>, Status> {
        let who = caller(&req)?;
        who.require(Permission::Operate)?;
        self.daemon.writable().map_err(errors::status)?;
        let r = req.into_inner();
        let release = self
            .daemon
            .abort(&who.name, ReleaseId(r.id), &r.reason)
            .await
            .map_err(status)?;
        Ok(Response::new(convert::release(&release)))
    }

    async fn list_pipelines(
        &self,
        req: Request<proto::ListPipelinesRequest>,
    ) -> Result<Response<proto::ListPipelinesResponse>, Status> {
        caller(&req)?.require(Permission::Read)?;
        let pipelines = self.daemon.pipelines().map(convert::pipeline).collect();
        Ok(Response::new(proto::ListPipelinesResponse { pipelines }))
    }
}
