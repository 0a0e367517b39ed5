//! Starting the daemon: read its settings, open the domain, decide who may
//! call, and serve gRPC on a loopback or network address until told to stop.

use crate::api::{self, auth};
use crate::daemon::{self, Daemon, Setup};
use crate::ids::DAEMON;
use crate::plugins::builtin;
use crate::plugins::manifest::Manifest;
use crate::plugins::signing::SigningSettings;
use crate::store::audit::{Draft, EventKind};
use crate::telemetry::notify;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7443";
const GENERATED_ADMIN_KEY: &str = "generated_admin_token_sha256";

/// The daemon's TOML configuration. Every field has a default that works for
/// a local first run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Where releases, the audit log and what is live are kept: `"sled"`
    /// in the data directory, or `{ etcd = { endpoints = [...] } }`.
    #[serde(default)]
    pub store: crate::store::StoreSettings,
    /// Pipeline files; none means the bundled example pipeline.
    #[serde(default)]
    pub pipelines: Vec<PathBuf>,
    /// A directory of plugins (`NAME.wasm`, manifests as `NAME.toml`)
    /// pushed at start and whenever a file in it changes.
    pub plugin_dir: Option<PathBuf>,
    /// Milliseconds between scans of `plugin_dir`.
    #[serde(default = "default_plugin_dir_poll_ms")]
    pub plugin_dir_poll_ms: u64,
    /// Seconds between drift checks of every environment placed by an
    /// adapter (what the adapter reads back as live against what Gatehouse
    /// made live); 0 turns the checks off. `gatehouse drift` checks at once.
    #[serde(default = "default_drift_check_s")]
    pub drift_check_s: u64,
    /// Optional ed25519 signing of plugins.
    #[serde(default)]
    pub signing: SigningSettings,
    /// Where compiled plugins are kept for every data directory of this
    /// user; default `~/.cache/gatehouse/compiled` (or
    /// `$GATEHOUSE_COMPILE_CACHE`); an empty path turns the cache off.
    pub compile_cache: Option<PathBuf>,
    /// Accepted tokens. With none, the first start generates an admin token
    /// and prints it once.
    #[serde(default)]
    pub tokens: Vec<auth::TokenEntry>,
    /// What an embedded plugin that reaches out (adapter-file,
    /// adapter-http) is granted, as a manifest under `[grants.NAME]`; it is
    /// installed only with one. Relative `host` paths are relative to the
    /// config file.
    #[serde(default)]
    pub grants: BTreeMap<String, Manifest>,
    /// PEM certificate chain to serve TLS with (rustls); with `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: with them, only clients presenting a certificate
    /// one of them signed may connect (mutual TLS). Needs `tls_cert`.
    pub client_ca: Option<PathBuf>,
    /// Where the HTTP surface (`GET /metrics`) listens. By default beside
    /// `listen`, on the next port (7444 beside 7443), or on an ephemeral
    /// port when `listen`'s is 0. Served over HTTPS with `tls_cert` and
    /// `tls_key` when they are set (`client_ca` guards gRPC only).
    pub http_listen: Option<SocketAddr>,
    /// Serve a non-loopback address without TLS. Bearer tokens then cross
    /// the network in clear: only behind a proxy that terminates TLS.
    #[serde(default)]
    pub allow_plaintext: bool,
    /// Receivers told of release outcomes, held canaries, drift and a
    /// broken audit chain, as `[[notify]]` entries (see the README,
    /// "Notifications").
    #[serde(default)]
    pub notify: Vec<notify::Target>,
    /// The dashboard's address as receivers should link to it, e.g. behind
    /// a proxy; by default the HTTP surface's own address.
    pub dashboard_url: Option<String>,
    /// flagd's sync protocol for OpenFeature providers (see the README,
    /// "OpenFeature").
    #[serde(default)]
    pub openfeature: api::flagd::Settings,
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN
        .parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 7443)))
}

fn default_plugin_dir_poll_ms() -> u64 {
    1000
}

fn default_drift_check_s() -> u64 {
    300
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("gatehouse-data")
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: default_listen(),
            data_dir: default_data_dir(),
            store: Default::default(),
            pipelines: Vec::new(),
            plugin_dir: None,
            plugin_dir_poll_ms: default_plugin_dir_poll_ms(),
            drift_check_s: default_drift_check_s(),
            signing: SigningSettings::default(),
            compile_cache: None,
            tokens: Vec::new(),
            grants: BTreeMap::new(),
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            http_listen: None,
            allow_plaintext: false,
            notify: Vec::new(),
            dashboard_url: None,
            openfeature: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: cannot read the daemon config: {source}")]
    ReadConfig {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Config { file: String, message: String },
    #[error(transparent)]
    BadToken(#[from] auth::BadTokenHash),
    #[error(transparent)]
    Daemon(#[from] daemon::Error),
    #[error("cannot listen on {addr}: {source}; pick another address with --listen")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "refusing to serve {addr} without TLS: bearer tokens would cross the network in clear; set tls_cert and tls_key, listen on 127.0.0.1, or set allow_plaintext = true if a proxy in front terminates TLS"
    )]
    Plaintext { addr: SocketAddr },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Http(String),
    #[error("cannot set up the gRPC services: {0}")]
    Services(String),
    #[error("cannot generate a token: {0}")]
    Random(String),
    #[error("{0}")]
    Notify(String),
}

impl Settings {
    /// Reads a config file; relative paths in it are relative to the file.
    pub fn load(path: &Path) -> Result<Settings, Error> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadConfig {
            file: file.clone(),
            source,
        })?;
        let mut s: Settings = toml::from_str(&text).map_err(|e| Error::Config {
            file: file.clone(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        s.data_dir = base.join(&s.data_dir);
        s.pipelines = s.pipelines.iter().map(|p| base.join(p)).collect();
        s.plugin_dir = s.plugin_dir.map(|p| base.join(p));
        for path in [&mut s.tls_cert, &mut s.tls_key, &mut s.client_ca]
            .into_iter()
            .flatten()
        {
            *path = base.join(&*path);
        }
        s.compile_cache = s.compile_cache.map(|p| {
            if p.as_os_str().is_empty() {
                p
            } else {
                base.join(p)
            }
        });
        for (name, grant) in &mut s.grants {
            let problem = |message: String| Error::Config {
                file: file.clone(),
                message: format!("[grants.{name}]: {message}"),
            };
            if !builtin::embedded()
                .iter()
                .any(|e| e.needs_grant && e.name == name)
            {
                let known: Vec<_> = builtin::embedded()
                    .iter()
                    .filter(|e| e.needs_grant)
                    .map(|e| e.name)
                    .collect();
                return Err(problem(format!(
                    "{name:?} is not an embedded plugin that takes grants ({}); a plugin you push brings its own manifest",
                    known.join(", ")
                )));
            }
            for dir in &mut grant.files {
                dir.host = base.join(&dir.host);
            }
            grant.check().map_err(problem)?;
        }
        notify::check(&s.notify).map_err(|message| Error::Config {
            file: file.clone(),
            message,
        })?;
        Ok(s)
    }
}

/// The server, with TLS set up as `settings` ask: certificate files are read
/// and parsed here, before anything else starts, and a non-loopback address
/// without TLS is refused unless `allow_plaintext` says otherwise.
fn server_builder(settings: &Settings) -> Result<(tonic::transport::Server, bool), Error> {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let read = |what: &str, path: &Path| {
        std::fs::read(path)
            .map_err(|e| Error::Tls(format!("cannot read {what} {}: {e}", path.display())))
    };
    let tls = match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => {
            let identity = Identity::from_pem(read("tls_cert", cert)?, read("tls_key", key)?);
            let mut tls = ServerTlsConfig::new().identity(identity);
            if let Some(ca) = &settings.client_ca {
                tls = tls.client_ca_root(Certificate::from_pem(read("client_ca", ca)?));
            }
            Some(tls)
        }
        (None, None) if settings.client_ca.is_some() => {
            return Err(Error::Tls(
                "client_ca needs tls_cert and tls_key: clients are checked only over TLS".into(),
            ));
        }
        (None, None) => None,
        _ => {
            return Err(Error::Tls(
                "tls_cert and tls_key go together: set both, or neither".into(),
            ));
        }
    };
    let builder = tonic::transport::Server::builder();
    match tls {
        Some(tls) => {
            let builder = builder.tls_config(tls).map_err(|e| {
                Error::Tls(format!(
                    "cannot use tls_cert/tls_key/client_ca ({}); they must be PEM files: a certificate chain, its private key, CA certificates",
                    crate::client::innermost(&e)
                ))
            })?;
            Ok((builder, true))
        }
        None if !settings.listen.ip().is_loopback() && !settings.allow_plaintext => {
            Err(Error::Plaintext {
                addr: settings.listen,
            })
        }
        None => Ok((builder, false)),
    }
}

/// A daemon serving gRPC.
pub struct Running {
    pub addr: SocketAddr,
    /// Where the HTTP surface (`/metrics`) listens, when it does.
    pub http_addr: Option<SocketAddr>,
    /// Whether it serves TLS.
    pub tls: bool,
    /// Set only on the first start without configured tokens: shown once.
    pub generated_admin_token: Option<String>,
    pub daemon: Arc<Daemon>,
    /// The tokens every service checks; [`Running::reload_tokens`] swaps them.
    tokens: auth::Tokens,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Running {
    /// What reloads the tokens while the daemon serves.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            daemon: self.daemon.clone(),
            tokens: self.tokens.clone(),
        }
    }

    /// Stops accepting calls and waits for the server to wind down; then
    /// hands the lead of a shared store to another daemon at once.
    pub async fn stop(mut self) -> Result<(), tonic::transport::Error> {
        self.daemon.close();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let served = match (&mut self.task).await {
            Ok(r) => r,
            Err(_) => Ok(()),
        };
        self.daemon.resign().await;
        served
    }

    /// Serves until `signal` completes (then stops cleanly) or the server fails.
    pub async fn run_until(
        mut self,
        signal: impl std::future::Future<Output = ()>,
    ) -> Result<(), tonic::transport::Error> {
        tokio::select! {
            r = &mut self.task => r.unwrap_or(Ok(())),
            _ = signal => self.stop().await,
        }
    }
}

/// Where the HTTP surface listens (see [`Settings::http_listen`]), if at all.
/// Under TLS it serves HTTPS with the same certificate, so any address will do.
fn http_address(settings: &Settings, grpc: SocketAddr) -> Result<Option<SocketAddr>, Error> {
    let addr = settings.http_listen.unwrap_or_else(|| {
        let port = match grpc.port() {
            0 => 0,
            p => p.wrapping_add(1),
        };
        SocketAddr::new(grpc.ip(), port)
    });
    if settings.tls_cert.is_none() && !addr.ip().is_loopback() && !settings.allow_plaintext {
        return Err(Error::Plaintext { addr });
    }
    Ok(Some(addr))
}

pub async fn start(settings: &Settings) -> Result<Running, Error> {
    // What a person can get wrong is checked first, so a typo in a token or
    // a taken port fails in milliseconds, not after the plugins compile;
    // pipelines are read first thing in `Daemon::open`, for the same reason.
    let configured = if settings.tokens.is_empty() {
        None
    } else {
        Some(auth::Tokens::new(&settings.tokens)?)
    };
    let receivers = notify::check(&settings.notify).map_err(Error::Notify)?;
    let (server, tls) = server_builder(settings)?;
    let incoming = tonic::transport::server::TcpIncoming::bind(settings.listen)
        .map_err(|source| Error::Listen {
            addr: settings.listen,
            source,
        })?
        .with_nodelay(Some(true));
    let addr = incoming.local_addr().map_err(|source| Error::Listen {
        addr: settings.listen,
        source,
    })?;
    let http = match http_address(settings, settings.listen)? {
        Some(a) => Some(crate::http::bind(a).await.map_err(Error::Http)?),
        None => None,
    };
    let http_addr = http.as_ref().and_then(|l| l.local_addr().ok());
    let http_tls = match (&settings.tls_cert, &settings.tls_key, &http) {
        (Some(cert), Some(key), Some(_)) => {
            Some(crate::http::tls::Acceptor::from_pem_files(cert, key).map_err(Error::Tls)?)
        }
        _ => None,
    };
    let scheme = if tls { "https" } else { "http" };
    let advertise = match &settings.store {
        crate::store::StoreSettings::Etcd(e) => e.advertise.clone(),
        crate::store::StoreSettings::Sled => None,
    }
    .unwrap_or_else(|| format!("{scheme}://{addr}"));
    let daemon = Daemon::open(&Setup {
        advertise,
        advertise_http: http_addr.map(|a| format!("{scheme}://{a}")),
        data_dir: settings.data_dir.clone(),
        store: settings.store.clone(),
        pipelines: settings.pipelines.clone(),
        plugin_dir: settings.plugin_dir.clone(),
        plugin_dir_poll: std::time::Duration::from_millis(settings.plugin_dir_poll_ms.max(10)),
        drift_check: (settings.drift_check_s > 0)
            .then(|| std::time::Duration::from_secs(settings.drift_check_s)),
        signing: settings.signing.clone(),
        compile_cache: match &settings.compile_cache {
            Some(dir) if dir.as_os_str().is_empty() => None,
            Some(dir) => Some(dir.clone()),
            None => crate::plugins::compile_cache::default_dir(),
        },
        grants: settings.grants.clone(),
        notify: receivers,
        links: notify::Links {
            dashboard: settings.dashboard_url.clone().or_else(|| {
                let scheme = if tls { "https" } else { "http" };
                http_addr.map(|a| format!("{scheme}://{a}"))
            }),
        },
    })
    .await?;
    let (tokens, generated_admin_token) = tokens(settings, configured, &daemon).await?;
    let routes = api::routes(daemon.clone(), tokens.clone(), &settings.openfeature)
        .await
        .map_err(Error::Services)?;

    let (tx, rx) = oneshot::channel();
    let mut server = server;
    let task = tokio::spawn(server.add_routes(routes).serve_with_incoming_shutdown(
        incoming,
        async {
            let _ = rx.await;
        },
    ));
    if let Some(listener) = http {
        let (daemon, tokens) = (daemon.clone(), tokens.clone());
        tokio::spawn(async move {
            if let Err(e) = crate::http::serve(listener, http_tls, daemon, tokens).await {
                tracing::error!(error = %e, "the HTTP surface stopped");
            }
        });
    }
    tracing::info!(%addr, tls, ?http_addr, "gatehouse serving");
    Ok(Running {
        addr,
        http_addr,
        tls,
        generated_admin_token,
        daemon,
        tokens,
        shutdown: Some(tx),
        task,
    })
}

/// Swaps a serving daemon's tokens (see [`Running::reloader`]).
#[derive(Clone)]
pub struct Reloader {
    daemon: Arc<Daemon>,
    tokens: auth::Tokens,
}

impl Reloader {
    /// Accepts the tokens `settings` lists from now on (with none, the
    /// generated admin token), and audits who they admit; a token dropped
    /// from the config is refused from the next call on. A mistake in them
    /// changes nothing. Returns a token generated now, to be shown once.
    pub async fn reload(&self, settings: &Settings) -> Result<Option<String>, Error> {
        let configured = if settings.tokens.is_empty() {
            None
        } else {
            Some(auth::Tokens::new(&settings.tokens)?)
        };
        let (fresh, generated) = tokens(settings, configured, &self.daemon).await?;
        let callers: Vec<_> = fresh
            .callers()
            .into_iter()
            .map(|c| serde_json::json!({ "name": c.name, "role": c.role }))
            .collect();
        self.daemon
            .audit(
                Draft::new(
                    EventKind::TokensReloaded,
                    DAEMON,
                    format!("tokens reloaded: {} accepted", callers.len()),
                )
                .detail(serde_json::json!({ "tokens": callers })),
            )
            .await?;
        self.tokens.replace(&fresh);
        Ok(generated)
    }
}

/// The configured tokens (parsed at start); with none, the admin token generated on the first
/// start (its hash kept in the store), generating it now if needed.
async fn tokens(
    settings: &Settings,
    configured: Option<auth::Tokens>,
    daemon: &Daemon,
) -> Result<(auth::Tokens, Option<String>), Error> {
    if let Some(configured) = configured {
        if daemon.setting(GENERATED_ADMIN_KEY)?.is_some() {
            tracing::warn!(
                configured = settings.tokens.len(),
                "the admin token generated on the first start is no longer accepted: tokens in the config replace it; add an admin token there (`gatehouse token new --role admin`) to keep admin access"
            );
        }
        return Ok((configured, None));
    }
    let generated = daemon.setting(GENERATED_ADMIN_KEY)?;
    let (hash, fresh) = match generated {
        Some(hash) => (hex::encode(hash), None),
        None => {
            let token = auth::generate_token().map_err(|e| Error::Random(e.to_string()))?;
            let hash = auth::hash_token(&token);
            daemon
                .put_setting(
                    GENERATED_ADMIN_KEY,
                    &hash,
                    Draft::new(
                        EventKind::AdminTokenGenerated,
                        DAEMON,
                        "no tokens configured: generated an admin token (shown once)",
                    )
                    .detail(serde_json::json!({ "sha256": hex::encode(hash) })),
                )
                .await?;
            (hex::encode(hash), Some(token))
        }
    };
    let entry = auth::TokenEntry {
        name: "admin".into(),
        role: auth::Role::Admin,
        sha256: hash,
    };
    Ok((auth::Tokens::new(&[entry])?, fresh))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_beyond_loopback_needs_an_explicit_yes() {
        let mut s = Settings {
            listen: "0.0.0.0:7443".parse().unwrap(),
            ..Settings::default()
        };
        assert!(matches!(server_builder(&s), Err(Error::Plaintext { .. })));
        s.allow_plaintext = true;
        assert!(matches!(server_builder(&s), Ok((_, false))));
        s.listen = "[::1]:7443".parse().unwrap();
        s.allow_plaintext = false;
        assert!(matches!(server_builder(&s), Ok((_, false))));
        s.client_ca = Some("ca.pem".into());
        let Err(e) = server_builder(&s) else {
            panic!("client_ca without TLS was accepted");
        };
        assert!(e.to_string().contains("client_ca needs tls_cert"), "{e}");
    }
}
