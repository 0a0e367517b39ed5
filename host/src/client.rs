//! A gRPC client for the daemon, with the bearer token on every call. Used by
//! the CLI, the demo, the end-to-end tests and the benchmarks.
//!
//! Serving services split traffic between the live configuration and a
//! canary with [`routes_to_canary`] (the rule is in `environments.proto`)
//! and report what each arm did through `canaries`.

pub use crate::canary::routing::{fnv1a64, routes_to_canary};

use crate::proto::audit_service_client::AuditServiceClient;
use crate::proto::canary_service_client::CanaryServiceClient;
use crate::proto::cluster_service_client::ClusterServiceClient;
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
    pub cluster: ClusterServiceClient<Authed>,
}

/// The port `gatehouse serve` listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 7443;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{addr:?} is not a daemon address; use e.g. http://127.0.0.1:7443 or https://HOST:7443"
    )]
    BadAddress { addr: String },
    #[error("{what} is for TLS, but {addr} is plaintext; use https://")]
    TlsFilesWithoutHttps { what: &'static str, addr: String },
    #[error("cannot read {what} {path}: {source}")]
    TlsFile {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("TLS with {addr} failed ({cause}); {hint}")]
    Tls {
        addr: String,
        cause: String,
        hint: &'static str,
    },
    #[error("the token contains characters that cannot be sent in a header")]
    BadToken,
    #[error("cannot reach the daemon at {addr} ({cause}); is `gatehouse serve` running there?")]
    Connect { addr: String, cause: String },
    #[error("{addr} does not answer gRPC ({cause}); is it the daemon's port (7443 by default)?")]
    NotGrpc { addr: String, cause: String },
}

impl Error {
    /// A TLS failure, with the hint its cause suggests.
    fn tls(addr: String, cause: String) -> Error {
        let hint = tls_hint(&cause);
        Error::Tls { addr, cause, hint }
    }
}

/// What a client brings for TLS (`https://` addresses). With no CA, the
/// system's roots check the daemon's certificate.
#[derive(Clone, Debug, Default)]
pub struct Tls {
    /// PEM CA certificates that signed the daemon's certificate.
    pub ca: Option<std::path::PathBuf>,
    /// PEM client certificate, for a daemon that asks for one (mTLS).
    pub cert: Option<std::path::PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<std::path::PathBuf>,
}

impl Tls {
    fn config(&self) -> Result<tonic::transport::ClientTlsConfig, Error> {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let read = |what: &'static str, path: &std::path::Path| {
            std::fs::read(path).map_err(|source| Error::TlsFile {
                what,
                path: path.display().to_string(),
                source,
            })
        };
        let mut config = ClientTlsConfig::new();
        config = match &self.ca {
            Some(ca) => config.ca_certificate(Certificate::from_pem(read("--ca", ca)?)),
            None => config.with_native_roots(),
        };
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            config = config.identity(Identity::from_pem(
                read("--cert", cert)?,
                read("--key", key)?,
            ));
        }
        Ok(config)
    }

    fn given(&self) -> Option<&'static str> {
        if self.ca.is_some() {
            Some("--ca")
        } else if self.cert.is_some() {
            Some("--cert")
        } else if self.key.is_some() {
            Some("--key")
        } else {
            None
        }
    }
}

/// What a failed TLS handshake most likely needs.
pub fn tls_hint(cause: &str) -> &'static str {
    let cause = cause.to_ascii_lowercase();
    if cause.contains("unknownissuer") || cause.contains("unknown issuer") {
        "pass the CA that signed the daemon's certificate with --ca"
    } else if cause.contains("notvalidforname") || cause.contains("not valid for name") {
        "the daemon's certificate does not name this host; connect by a name or IP it lists"
    } else if cause.contains("certificaterequired") || cause.contains("certificate required") {
        "the daemon asks for a client certificate: pass --cert and --key"
    } else if cause.contains("corrupt message") || cause.contains("invalidcontenttype") {
        "the daemon does not seem to serve TLS; plaintext is never used in its place"
    } else {
        "the daemon closed the connection: if it asks for client certificates (client_ca), pass --cert and --key; else check --ca"
    }
}

/// The URI for a daemon address as people write it: `HOST`, `HOST:PORT`,
/// `http://HOST:PORT` or `https://HOST:PORT`; without a port, the daemon's
/// default.
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
    let scheme = match uri.scheme_str() {
        Some(s @ ("http" | "https")) => s,
        _ => return Err(bad()),
    };
    let authority = uri.authority().ok_or_else(bad)?;
    if authority.port().is_some() {
        return Ok(uri);
    }
    format!(
        "{scheme}://{}:{DEFAULT_PORT}{}",
        authority.host(),
        uri.path()
    )
    .parse()
    .map_err(|_| bad())
}

/// The innermost cause of a transport error: what actually went wrong,
/// without the layers that each repeat "transport error".
pub(crate) fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

pub async fn connect(addr: &str, token: Option<&str>) -> Result<Client, Error> {
    connect_with(addr, token, None, &Tls::default()).await
}

/// The addresses of a comma-separated list (`http://a:7443,http://b:7443`).
pub fn addresses(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

/// How long [`connect_leader`] and [`Failover`] keep trying for a leader:
/// longer than an election after a leader dies (its lease, 5 s by
/// default, and the start of the next).
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);

/// Connects to the daemon of `addrs` that leads (daemons sharing a store
/// elect one; the others serve reads and refuse writes with UNAVAILABLE).
/// Asks each in turn, again and again until `patience` runs out; then
/// settles for any daemon that answers, so reads still work.
pub async fn connect_leader(
    addrs: &[String],
    token: Option<&str>,
    deadline: Option<std::time::Duration>,
    tls: &Tls,
    patience: std::time::Duration,
) -> Result<Client, Error> {
    let until = std::time::Instant::now() + patience;
    let mut pause = std::time::Duration::from_millis(50);
    loop {
        let mut last_error = None;
        let mut follower = None;
        for addr in addrs {
            let mut client = match connect_with(addr, token, deadline, tls).await {
                Ok(c) => c,
                Err(e) => {
                    last_error = Some(e);
                    continue;
                }
            };
            match client
                .cluster
                .get_cluster(crate::proto::GetClusterRequest {})
                .await
            {
                Ok(c) if c.get_ref().answered_by_leader => return Ok(client),
                Ok(_) => follower = follower.or(Some(client)),
                Err(s) if retryable(&s) => {}
                // A daemon from before clusters, or a token it refuses: the
                // call itself says so.
                Err(_) => return Ok(client),
            }
        }
        if std::time::Instant::now() + pause >= until {
            return match (follower, last_error) {
                (Some(client), _) => Ok(client),
                (None, Some(e)) => Err(e),
                (None, None) => Err(Error::BadAddress {
                    addr: String::new(),
                }),
            };
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(500));
    }
}

/// Calls to the daemons of an address list that survive one of them dying
/// or losing the lead: a call refused with UNAVAILABLE (a follower's answer
/// to a write, a daemon stopping, a connection lost) is made again on the
/// leader, found anew, until [`PATIENCE`] runs out. A write retried this
/// way may have landed the first time: give submissions an idempotency key.
pub struct Failover {
    addrs: Vec<String>,
    token: Option<String>,
    tls: Tls,
    current: tokio::sync::Mutex<Option<Client>>,
    pub patience: std::time::Duration,
}

impl Failover {
    pub fn new(addrs: Vec<String>, token: Option<&str>) -> Failover {
        Failover {
            addrs,
            token: token.map(str::to_string),
            tls: Tls::default(),
            current: tokio::sync::Mutex::new(None),
            patience: PATIENCE,
        }
    }

    /// Runs `call` on the leader's client, again on the next leader while
    /// it fails with UNAVAILABLE.
    pub async fn call<T, F, Fut>(&self, call: F) -> Result<T, tonic::Status>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        let until = std::time::Instant::now() + self.patience;
        loop {
            let client = self.client().await?;
            match call(client).await {
                Err(s) if retryable(&s) && std::time::Instant::now() < until => {
                    tracing::debug!("{}; asking the leader again", s.message());
                    *self.current.lock().await = None;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                other => return other,
            }
        }
    }

    /// The client of the daemon that leads (connected once, then kept).
    pub async fn client(&self) -> Result<Client, tonic::Status> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref() {
            return Ok(c.clone());
        }
        let c = connect_leader(
            &self.addrs,
            self.token.as_deref(),
            Some(std::time::Duration::from_secs(10)),
            &self.tls,
            self.patience,
        )
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        *current = Some(c.clone());
        Ok(c)
    }
}

/// Whether another daemon of the list may take the call: this one does not
/// lead, is stopping, or the connection to it broke.
pub fn retryable(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable
        || (status.code() == tonic::Code::Unknown && transport_cause(status).is_some())
}

/// [`connect`], with `deadline` bounding the connection and every call's
/// wait for its answer (for a stream, until it starts); a call past it
/// fails with a status that says so ([`is_past_deadline`]). An `https://`
/// address is reached over TLS as `tls` says, and never in plaintext.
pub async fn connect_with(
    addr: &str,
    token: Option<&str>,
    deadline: Option<std::time::Duration>,
    tls: &Tls,
) -> Result<Client, Error> {
    let uri = daemon_uri(addr)?;
    let secure = uri.scheme_str() == Some("https");
    if let (false, Some(what)) = (secure, tls.given()) {
        return Err(Error::TlsFilesWithoutHttps {
            what,
            addr: addr.to_string(),
        });
    }
    let mut endpoint = Endpoint::from(uri);
    if secure {
        endpoint = endpoint
            .tls_config(tls.config()?)
            .map_err(|e| Error::tls(addr.to_string(), innermost(&e)))?;
    }
    if let Some(d) = deadline {
        endpoint = endpoint.connect_timeout(d).timeout(d);
    }
    let channel = endpoint.tcp_nodelay(true).connect().await.map_err(|e| {
        let (addr, cause) = (addr.to_string(), innermost(&e));
        if secure && is_tls_failure(&cause) {
            Error::tls(addr, cause)
        } else if cause.contains("http2") || cause.contains("h2") || cause.contains("frame") {
            // TCP connected but no HTTP/2 came back: something else listens.
            Error::NotGrpc { addr, cause }
        } else {
            Error::Connect { addr, cause }
        }
    })?;
    // A TCP port that accepts may still be no gRPC server: ask the health
    // service (it needs no token), so a wrong port is named as such instead
    // of failing the real call with a bare "transport error". Under TLS 1.3
    // a refused client certificate, too, shows only here.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let probe = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await;
    if let Err(status) = probe {
        let addr = addr.to_string();
        match transport_cause(&status) {
            // Over TLS, a connection the daemon drops right after the
            // handshake is its refusal; the alert saying why may be lost in
            // the race.
            Some(cause) if secure => return Err(Error::tls(addr, cause)),
            cause
                if matches!(
                    status.code(),
                    tonic::Code::Unknown | tonic::Code::Internal | tonic::Code::Unavailable
                ) =>
            {
                let cause = cause.unwrap_or_else(|| status.message().to_string());
                return Err(
                    if cause.contains("tcp connect") || cause.contains("refused") {
                        Error::Connect { addr, cause }
                    } else {
                        Error::NotGrpc { addr, cause }
                    },
                );
            }
            _ => {}
        }
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
        canaries: CanaryServiceClient::with_interceptor(channel.clone(), bearer.clone()),
        cluster: ClusterServiceClient::with_interceptor(channel, bearer),
    })
}

/// The innermost cause of a call's failure below gRPC (a TLS alert, a reset
/// connection), if it has one.
pub fn transport_cause(status: &tonic::Status) -> Option<String> {
    std::error::Error::source(status).map(innermost)
}

/// Whether a transport failure reads as TLS refusing the connection.
pub fn is_tls_failure(cause: &str) -> bool {
    let lower = cause.to_ascii_lowercase();
    [
        "certificate",
        "tls",
        "handshake",
        "corrupt message",
        "alert",
    ]
    .iter()
    .any(|w| lower.contains(w))
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
    fn https_stays_https_and_other_schemes_are_refused() {
        assert_eq!(
            daemon_uri("https://gatehouse.internal")
                .unwrap()
                .to_string(),
            "https://gatehouse.internal:7443/"
        );
        assert!(matches!(
            daemon_uri("ftp://x").unwrap_err(),
            Error::BadAddress { .. }
        ));
    }

    #[tokio::test]
    async fn tls_files_with_a_plaintext_address_are_refused() {
        let tls = Tls {
            ca: Some("ca.pem".into()),
            ..Tls::default()
        };
        let e = connect_with("http://127.0.0.1:1", None, None, &tls)
            .await
            .err()
            .expect("refused");
        assert!(matches!(e, Error::TlsFilesWithoutHttps { .. }), "{e}");
        assert!(e.to_string().contains("use https://"), "{e}");
    }
}
