//! `ClusterService`: the daemons sharing the store, as any of them sees it.

use super::auth::{Permission, caller};
use super::errors::status;
use crate::daemon::Daemon;
use crate::proto::{self, cluster_service_server::ClusterService};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct ClusterApi {
    pub daemon: Arc<Daemon>,
}

#[tonic::async_trait]
impl ClusterService for ClusterApi {
    async fn get_cluster(
        &self,
        req: Request<proto::GetClusterRequest>,
    ) -> Result<Response<proto::Cluster>, Status> {
        caller(&req)?.require(Permission::Read)?;
        let daemon = self.daemon.clone();
        let view = tokio::task::spawn_blocking(move || daemon.cluster())
            .await
            .map_err(|e| Status::internal(format!("reading the cluster failed: {e}")))?
            .map_err(status)?;
        let me = self.daemon.member();
        Ok(Response::new(proto::Cluster {
            store: view.store,
            prefix: view.prefix,
            members: view
                .members
                .into_iter()
                .map(|m| proto::Member {
                    id: m.id,
                    grpc: m.grpc,
                    http: m.http.unwrap_or_default(),
                    host: m.host,
                    pid: m.pid,
                    version: m.version,
                    since_ms: m.since_ms,
                })
                .collect(),
            leader: view.leader.unwrap_or_default(),
            lease_left_s: view.lease_left_s,
            lease_ttl_s: view.lease_ttl_s,
            endpoints: view
                .endpoints
                .into_iter()
                .map(|e| proto::Endpoint {
                    endpoint: e.endpoint,
                    healthy: e.healthy,
                    version: e.version,
                    raft_leader: e.raft_leader,
                    took_ms: e.took_ms,
                    error: e.error.unwrap_or_default(),
                })
                .collect(),
            answered_by: me.id.clone(),
            answered_by_leader: self.daemon.leads(),
        }))
    }
}
