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

/// The port `gatehouse serve` listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 7443;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{addr:?} is not a daemon address; use e.g. http://127.0.0.1:7443")]
    BadAddress { addr: String },
    #[error(
        "{addr} asks for TLS, which this client does not speak; use http:// on loopback (plaintext is never used in its place)"
    )]
    NoTls { addr: String },
    #[error("the token contains characters that cannot be sent in a header")]
    BadToken,
    #[error("cannot reach the daemon at {addr} ({cause}); is `gatehouse serve` running there?")]
    Connect { addr: String, cause: String },
    #[error("{addr} does not answer gRPC ({cause}); is it the daemon's port (7443 by default)?")]
    NotGrpc { addr: String, cause: String },
}

/// The URI for a daemon address as people write it: `HOST`, `HOST:PORT` or
/// `http://HOST:PORT`; without a port, the daemon's default.
pub fn daemon_uri(addr: &str) -> Result<tonic::codegen::http::Uri, Error> {
    use tonic::codegen::http::Uri;
    let bad = || Error::BadAddress {
        addr: addr.to_string(),
    };
    let with_scheme = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    let uri: Uri = with_scheme.parse().map_err(|_| bad())?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(Error::NoTls {
                addr: addr.to_string(),
            });
        }
        _ => return Err(bad()),
    }
    let authority = uri.authority().ok_or_else(bad)?;
    if authority.port().is_some() {
        return Ok(uri);
    }
    format!("http://{}:{DEFAULT_PORT}{}", authority.host(), uri.path())
        .parse()
        .map_err(|_| bad())
}

/// The innermost cause of a transport error: what actually went wrong,
/// without the layers that each repeat "transport error".
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

pub async fn connect(addr: &str, token: Option<&str>) -> Result<Client, Error> {
    connect_with_deadline(addr, token, None).await
}

/// [`connect`], with `deadline` bounding the connection and every call's
/// wait for its answer (for a stream, until it starts); a call past it
/// fails with a status that says so ([`is_past_deadline`]).
pub async fn connect_with_deadline(
    addr: &str,
    token: Option<&str>,
    deadline: Option<std::time::Duration>,
) -> Result<Client, Error> {
    let mut endpoint = Endpoint::from(daemon_uri(addr)?);
    if let Some(d) = deadline {
        endpoint = endpoint.connect_timeout(d).timeout(d);
    }
    let channel = endpoint.tcp_nodelay(true).connect().await.map_err(|e| {
        let cause = innermost(&e);
        let addr = addr.to_string();
        // TCP connected but no HTTP/2 came back: something else listens.
        if cause.contains("http2") || cause.contains("h2") || cause.contains("frame") {
            Error::NotGrpc { addr, cause }
        } else {
            Error::Connect { addr, cause }
        }
    })?;
    // A TCP port that accepts may still be no gRPC server: ask the health
    // service (it needs no token), so a wrong port is named as such instead
    // of failing the real call with a bare "transport error".
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let probe = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await;
    if let Err(status) = probe
        && matches!(
            status.code(),
            tonic::Code::Unknown | tonic::Code::Internal | tonic::Code::Unavailable
        )
    {
        let cause = std::error::Error::source(&status)
            .map(innermost)
            .unwrap_or_else(|| status.message().to_string());
        let addr = addr.to_string();
        return Err(
            if cause.contains("tcp connect") || cause.contains("refused") {
                Error::Connect { addr, cause }
            } else {
                Error::NotGrpc { addr, cause }
            },
        );
    }
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

/// Whether a call failed because its deadline passed.
pub fn is_past_deadline(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::DeadlineExceeded
        || (status.code() == tonic::Code::Cancelled && status.message().contains("Timeout expired"))
}

#[cfg(test)]
mod address_tests {
    use super::*;

    #[test]
    fn an_address_without_a_port_means_the_default_port() {
        for (given, uri) in [
            ("127.0.0.1", "http://127.0.0.1:7443/"),
            ("localhost:9000", "http://localhost:9000/"),
            ("http://[::1]", "http://[::1]:7443/"),
            (
                "http://gatehouse.internal:7443",
                "http://gatehouse.internal:7443/",
            ),
        ] {
            assert_eq!(daemon_uri(given).unwrap().to_string(), uri, "{given}");
        }
    }

    #[test]
    fn https_is_refused_rather_than_sent_in_plaintext() {
        let e = daemon_uri("https://gatehouse.internal:7443").unwrap_err();
        assert!(matches!(e, Error::NoTls { .. }), "{e}");
        assert!(matches!(
            daemon_uri("ftp://x").unwrap_err(),
            Error::BadAddress { .. }
        ));
    }
}
