//! The gRPC surface: authenticate, check the role, parse, call the domain,
//! map its errors (in `errors`). No business logic lives here.

pub mod audit;
pub mod auth;
pub mod canary;
pub mod cluster;
pub mod convert;
pub mod environments;
pub mod errors;
pub mod flagd;
pub mod plugins;
pub mod releases;

use crate::daemon::Daemon;
use crate::proto;
use auth::Tokens;
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::Stream;
use tonic::Status;
use tonic::service::Routes;
use tonic::service::interceptor::InterceptedService;

/// Every service, each behind the token check; health and reflection are
/// open so probes and `grpcurl` work without a token.
pub async fn routes(
    daemon: Arc<Daemon>,
    tokens: Tokens,
    openfeature: &flagd::Settings,
) -> Result<Routes, String> {
    use crate::flagd::flag_sync_service_server::FlagSyncServiceServer;
    use proto::audit_service_server::AuditServiceServer;
    use proto::canary_service_server::CanaryServiceServer;
    use proto::cluster_service_server::ClusterServiceServer;
    use proto::environment_service_server::EnvironmentServiceServer;
    use proto::plugin_service_server::PluginServiceServer;
    use proto::release_service_server::ReleaseServiceServer;

    let (health, health_service) = tonic_health::server::health_reporter();
    // The whole server (service "") is ready once the start's plugins are
    // installed: a readiness probe then knows submits go ahead at once. A
    // follower is ready at once: it serves reads.
    health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    let ready = health.clone();
    let installing = daemon.clone();
    tokio::spawn(async move {
        installing.ready().await;
        ready
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
    });
    health
        .set_serving::<ReleaseServiceServer<releases::ReleaseApi>>()
        .await;
    health
        .set_serving::<EnvironmentServiceServer<environments::EnvironmentApi>>()
        .await;
    health
        .set_serving::<AuditServiceServer<audit::AuditApi>>()
        .await;
    health
        .set_serving::<PluginServiceServer<plugins::PluginApi>>()
        .await;
    health
        .set_serving::<CanaryServiceServer<canary::CanaryApi>>()
        .await;
    health
        .set_serving::<ClusterServiceServer<cluster::ClusterApi>>()
        .await;
    // Both reflection versions: v1alpha is what grpcio's reflection client,
    // evans and older grpcurl ask for.
    let reflector = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection = reflector().build_v1().map_err(|e| e.to_string())?;
    let reflection_v1alpha = reflector().build_v1alpha().map_err(|e| e.to_string())?;
    // flagd's sync service checks tokens itself: an environment may be
    // opted in to reads without one.
    let flag_sync = FlagSyncServiceServer::new(flagd::FlagSyncApi::new(
        daemon.clone(),
        tokens.clone(),
        openfeature,
    )?);
    health
        .set_serving::<FlagSyncServiceServer<flagd::FlagSyncApi>>()
        .await;

    let releases = InterceptedService::new(
        ReleaseServiceServer::new(releases::ReleaseApi {
            daemon: daemon.clone(),
        })
        // A submission may carry attachments up to their limit, beyond
        // gRPC's default of 4 MiB per message.
        .max_decoding_message_size(
            crate::pipeline::attachment::MAX_ATTACHMENT_BYTES
                + crate::pipeline::candidate::MAX_CANDIDATE_BYTES
                + 64 * 1024,
        ),
        tokens.clone(),
    );
    let environments = InterceptedService::new(
        EnvironmentServiceServer::new(environments::EnvironmentApi {
            daemon: daemon.clone(),
        }),
        tokens.clone(),
    );
    let plugins = InterceptedService::new(
        PluginServiceServer::new(plugins::PluginApi {
            daemon: daemon.clone(),
        }),
        tokens.clone(),
    );
    let canaries = InterceptedService::new(
        CanaryServiceServer::new(canary::CanaryApi {
            daemon: daemon.clone(),
        }),
        tokens.clone(),
    );
    let cluster = InterceptedService::new(
        ClusterServiceServer::new(cluster::ClusterApi {
            daemon: daemon.clone(),
        }),
        tokens.clone(),
    );
    let audit =
        InterceptedService::new(AuditServiceServer::new(audit::AuditApi { daemon }), tokens);
    Ok(Routes::new(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(releases)
        .add_service(environments)
        .add_service(plugins)
        .add_service(canaries)
        .add_service(audit)
        .add_service(cluster)
        .add_service(flag_sync))
}

/// A response stream fed by a task; the task stops when the client goes away
/// or the daemon is stopping (see [`Daemon::feed`]).
fn async_stream<T, F, Fut>(
    daemon: &Daemon,
    body: F,
) -> Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    Box::pin(daemon.feed(body))
}
