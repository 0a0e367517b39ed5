//! A gRPC client for the daemon, with the bearer token on every call. Used by
//! the CLI, the demo, the end-to-end tests and the benchmarks.
//!
//! Serving services split traffic between the live configuration and a
//! canary with [`routes_to_canary`] (the rule is in `environments.proto`)
//! and report what each arm did through `canaries`.

pub use crate::canary::routing::{fnv1a64, routes_to_canary};

use crate::proto::audit_service_client::AuditServiceClient;
use crate::proto::canary_service_client::CanaryServiceClient;
use crate::proto::environment_service_client::EnvironmentServiceClient;
use crate::proto::plugin_service_client::PluginServiceClient;
use crate::proto::release_service_client::ReleaseServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

#[derive(Clone)]
pub struct Client {
    pub releases: ReleaseServiceClient<Authed>,
    pub environments: EnvironmentServiceClient<Authed>,
    pub audit: AuditServiceClient<Authed>,
    pub plugins: PluginServiceClient<Authed>,
    pub canaries: CanaryServiceClient<Authed>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{addr:?} is not a daemon address; use e.g. http://127.0.0.1:7443")]
    BadAddress { addr: String },
    #[error("the token contains characters that cannot be sent in a header")]
    BadToken,
    #[error("cannot reach the daemon at {addr}: {source}; is `gatehouse serve` running there?")]
    Connect {
        addr: String,
        source: tonic::transport::Error,
    },
}

pub async fn connect(addr: &str, token: Option<&str>) -> Result<Client, Error> {
    let uri = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    let endpoint = Endpoint::from_shared(uri).map_err(|_| Error::BadAddress {
        addr: addr.to_string(),
    })?;
    let channel = endpoint
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|source| Error::Connect {
            addr: addr.to_string(),
            source,
        })?;
    let bearer = match token {
        None => Bearer(None),
        Some(t) => Bearer(Some(
            format!("Bearer {t}").parse().map_err(|_| Error::BadToken)?,
        )),
    };
    Ok(Client {
        releases: ReleaseServiceClient::with_interceptor(channel.clone(), bearer.clone()),
        environments: EnvironmentServiceClient::with_interceptor(channel.clone(), bearer.clone()),
        audit: AuditServiceClient::with_interceptor(channel.clone(), bearer.clone()),
        plugins: PluginServiceClient::with_interceptor(channel.clone(), bearer.clone()),
        canaries: CanaryServiceClient::with_interceptor(channel, bearer),
    })
}
