//! `EnvironmentService`: what is live, the watch stream, rollback, drift.

use super::auth::{Permission, caller};
use super::errors;
use super::{async_stream, convert, errors::status};
use crate::daemon::Daemon;
use crate::proto::{self, environment_service_server::EnvironmentService};
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

pub struct EnvironmentApi {
    pub daemon: Arc<Daemon>,
}

#[tonic::async_trait]
impl EnvironmentService for EnvironmentApi {
    async fn list_environments(
        &self,
        req: Request<proto::ListEnvironmentsRequest>,
    ) -> Result<Response<proto::ListEnvironmentsResponse>, Status> {
        caller(&req)?.require(Permission::Read)?;
        let envs = self.daemon.environments().map_err(status)?;
        Ok(Response::new(proto::ListEnvironmentsResponse {
            environments: envs.iter().map(|c| convert::config(c)).collect(),
        }))
    }

    async fn get_config(
        &self,
        req: Request<proto::GetConfigRequest>,
    ) -> Result<Response<proto::ActiveConfig>, Status> {
        caller(&req)?.require(Permission::Read)?;
        let c = self
            .daemon
            .config(&req.get_ref().environment)
            .map_err(status)?;
        Ok(Response::new(convert::config(&c)))
    }

    type WatchConfigStream =
        Pin<Box<dyn Stream<Item = Result<proto::ActiveConfig, Status>> + Send>>;

    async fn watch_config(
        &self,
        req: Request<proto::WatchConfigRequest>,
    ) -> Result<Response<Self::WatchConfigStream>, Status> {
        caller(&req)?.require(Permission::Read)?;
        let mut rx = self
            .daemon
            .watch_config(&req.get_ref().environment)
            .map_err(status)?;
        let mut seen = req.get_ref().after_generation;
        Ok(Response::new(async_stream(
            &self.daemon,
            move |tx| async move {
                loop {
                    let current = convert::config(&rx.borrow_and_update());
                    // A service coming back (here or from another daemon)
                    // is not told again what it already has.
                    if current.generation > seen || (seen == 0 && current.generation == 0) {
                        seen = current.generation;
                        if tx.send(Ok(current)).await.is_err() {
                            return;
                        }
                    }
                    // A watcher that falls behind gets the newest state, not
                    // every intermediate one: configuration is a state, not a log.
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            },
        )))
    }

    async fn rollback_environment(
        &self,
        req: Request<proto::RollbackEnvironmentRequest>,
    ) -> Result<Response<proto::RollbackEnvironmentResponse>, Status> {
        let who = caller(&req)?;
        who.require(Permission::Operate)?;
        self.daemon.writable().map_err(errors::status)?;
        let r = req.into_inner();
        let (config, down) = self
            .daemon
            .rollback_environment(&who.name, &r.environment, &r.reason)
            .await
            .map_err(status)?;
        Ok(Response::new(proto::RollbackEnvironmentResponse {
            config: Some(convert::config(&config)),
            rolled_back_digest: down.hex(),
        }))
    }

    async fn check_drift(
        &self,
        req: Request<proto::CheckDriftRequest>,
    ) -> Result<Response<proto::CheckDriftResponse>, Status> {
        let who = caller(&req)?;
        who.require(Permission::Read)?;
        self.daemon.writable().map_err(errors::status)?;
        let reports = self
            .daemon
            .check_drift(&who.name, &req.get_ref().environment)
            .await
            .map_err(status)?;
        Ok(Response::new(proto::CheckDriftResponse {
            reports: reports.iter().map(convert::drift_report).collect(),
        }))
    }
}
