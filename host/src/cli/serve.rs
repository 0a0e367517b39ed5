//! `serve`: run the daemon until interrupted.

use super::EXIT_OK;
use gatehouse::server::{self, Settings};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// The daemon's TOML config; flags below override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to serve gRPC on (port 0 picks a free one).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Where releases, candidates and the audit log are kept.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A pipeline file to serve (repeatable); default: the bundled example.
    #[arg(long = "pipeline")]
    pub pipelines: Vec<PathBuf>,
    /// A directory of extra gate plugins (*.wasm) to install at start.
    #[arg(long)]
    pub plugin_dir: Option<PathBuf>,
    /// PEM certificate chain to serve TLS with (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates that client certificates must be signed by
    /// (mutual TLS; needs --tls-cert).
    #[arg(long)]
    pub client_ca: Option<PathBuf>,
    /// How the log on standard error reads: `text` for people (coloured only
    /// on a terminal), `json` for log collectors, one object per line.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn init_log(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => log.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => log.json().init(),
    }
}

/// Resolves on SIGINT or SIGTERM: supervisors (systemd, Kubernetes) stop a
/// service with SIGTERM, people with Ctrl-C; both stop it the same way. The
/// handlers are installed when this is called, not when the future is first
/// polled, so a signal sent as soon as the daemon says it listens is caught.
/// On SIGHUP, reads the config's tokens again and accepts those from then
/// on (`kill -HUP`, `systemctl reload`). A config that no longer parses
/// changes nothing and says why.
fn reload_tokens_on_hangup(reloader: server::Reloader, config: PathBuf) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(
                    "cannot install the SIGHUP handler ({e}); tokens reload only with a restart"
                );
                return;
            }
        };
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                let reloaded = match Settings::load(&config) {
                    Ok(settings) => reloader.reload(&settings).await,
                    Err(e) => Err(e),
                };
                match reloaded {
                    Ok(generated) => {
                        tracing::info!(config = %config.display(), "SIGHUP: tokens reloaded");
                        if let Some(token) = generated {
                            use std::io::Write;
                            let _ = writeln!(
                                std::io::stdout(),
                                "admin token (shown once; store it, e.g. export GATEHOUSE_TOKEN=...): {token}"
                            );
                        }
                    }
                    Err(e) => {
                        tracing::error!(config = %config.display(), "SIGHUP: tokens not reloaded, the ones in use stay: {e}")
                    }
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (reloader, config);
}

fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let streams = signal(SignalKind::interrupt())
            .and_then(|int| signal(SignalKind::terminate()).map(|term| (int, term)));
        async move {
            match streams {
                Ok((mut int, mut term)) => tokio::select! {
                    _ = int.recv() => tracing::info!("interrupted (SIGINT); stopping"),
                    _ = term.recv() => tracing::info!("terminated (SIGTERM); stopping"),
                },
                Err(e) => {
                    tracing::warn!(
                        "cannot install the SIGTERM handler ({e}); stopping on Ctrl-C only"
                    );
                    if tokio::signal::ctrl_c().await.is_ok() {
                        tracing::info!("interrupted; stopping");
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("interrupted; stopping");
        }
    }
}

pub async fn run(a: ServeArgs) -> anyhow::Result<u8> {
    init_log(a.log_format);
    let mut settings = match &a.config {
        Some(path) => Settings::load(path)?,
        None => Settings::default(),
    };
    if let Some(l) = a.listen {
        settings.listen = l;
    }
    if let Some(d) = a.data_dir {
        settings.data_dir = d;
    }
    if !a.pipelines.is_empty() {
        settings.pipelines = a.pipelines;
    }
    if let Some(p) = a.plugin_dir {
        settings.plugin_dir = Some(p);
    }
    if a.tls_cert.is_some() {
        settings.tls_cert = a.tls_cert;
        settings.tls_key = a.tls_key;
    }
    if a.client_ca.is_some() {
        settings.client_ca = a.client_ca;
    }
    let running = server::start(&settings).await?;
    if let Some(path) = a.config.clone() {
        reload_tokens_on_hangup(running.reloader(), path);
    }
    // A plugin refusing a pipeline's parameters stops the start as a
    // mistake in the file's syntax does, once the plugins are in.
    let misconfigured = running.daemon.misconfigured();
    let (refused_tx, mut refused_rx) = tokio::sync::oneshot::channel();
    // The handlers are installed here, before the address is printed: a
    // supervisor may signal as soon as it reads it.
    let signalled = stop_signal();
    let stop = async move {
        tokio::select! {
            () = signalled => {}
            what = misconfigured => {
                let _ = refused_tx.send(what);
            }
        }
    };
    // Stdout carries what a person or a supervising script needs: the address,
    // a generated token exactly once, and when the plugins are in.
    if let Some(token) = &running.generated_admin_token {
        println!("admin token (shown once; store it, e.g. export GATEHOUSE_TOKEN=...): {token}");
    }
    // The metrics line comes first: a script that stops reading at the
    // address has read it.
    if let Some(http) = running.http_addr {
        let scheme = if running.tls { "https" } else { "http" };
        println!("gatehouse metrics on {scheme}://{http}/metrics");
    }
    if running.tls {
        println!("gatehouse listening on https://{}", running.addr);
    } else {
        println!("gatehouse listening on {}", running.addr);
    }
    // A first start serves while it compiles the embedded plugins; say when
    // releases can go ahead.
    let daemon = running.daemon.clone();
    tokio::spawn(async move {
        let following = daemon.ready().await;
        if daemon.is_misconfigured() {
            return;
        }
        // Whoever started the daemon may have stopped reading its stdout
        // once it had the address; that must not stop the daemon.
        use std::io::Write;
        let mut out = std::io::stdout();
        let said = match following {
            None => "gatehouse ready: plugins installed".to_string(),
            Some(leader) => format!(
                "gatehouse ready: following the leader at {leader} (reads served here; writes go to the leader)"
            ),
        };
        let _ = writeln!(out, "{said}").and_then(|()| out.flush());
    });
    let mut stopped = running.daemon.stopped();
    let store_failed = async move {
        let why = stopped
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|f| f.as_ref().map(|f| f.to_string()))
            .unwrap_or_default();
        // Let the calls that met the failure get their answers out.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        why
    };
    let failed = tokio::select! {
        r = running.run_until(stop) => { r?; None }
        why = store_failed => Some(why),
    };
    if let Ok(what) = refused_rx.try_recv() {
        anyhow::bail!("{what}\nthe daemon stopped: fix the pipeline, then start it again");
    }
    if let Some(why) = failed {
        eprintln!(
            "error: the store stopped: {why}; exiting with {EXIT_STORE_FAILED} so that a supervisor restarts it"
        );
        // Not through the runtime's shutdown: a write sled still has in
        // hand after a full disk may never return.
        std::process::exit(i32::from(EXIT_STORE_FAILED));
    }
    Ok(EXIT_OK)
}

/// `serve`'s exit code when its store stopped (EX_TEMPFAIL: try again).
pub const EXIT_STORE_FAILED: u8 = 75;
