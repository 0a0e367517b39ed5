//! The demo's canary scene: a daemon and a serving service simulated on
//! loopback. The service follows its configuration as an OpenFeature flagd
//! provider does (`flagd.sync.v1.FlagSyncService`, the flag's `fractional`
//! split by user) and counts its requests per variant as Prometheus
//! metrics on its own `/metrics`. A good configuration goes live; then a
//! candidate whose model fails one request in five runs as a canary, and the
//! daemon rolls it back with no one asking.
//!
//! Rules: with a `prometheus` binary on the PATH the scene starts it
//! (scraping every 250 ms) and the daemon judges the canary on what
//! Prometheus holds (`examples/canary-prometheus-pipeline.toml`), with
//! nothing reported; without one, the service reports what each arm did with
//! `ReportObservations` (`examples/canary-pipeline.toml`) and the scene says
//! how to see the other path. Either way the canary has data.

use crate::cli::release::follow;
use crate::cli::render::{Style, phase_name};
use crate::cli::{Output, rpc};
use anyhow::Context;
use gatehouse::client::{Client, routes_to_canary};
use gatehouse::digest::Digest;
use gatehouse::flagd::SyncFlagsRequest;
use gatehouse::flagd::flag_sync_service_client::FlagSyncServiceClient;
use gatehouse::proto;
use gatehouse::server::{self, Settings};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PIPELINE: &str = include_str!("../../../../examples/canary-pipeline.toml");
const PROMETHEUS_PIPELINE: &str =
    include_str!("../../../../examples/canary-prometheus-pipeline.toml");
const JUDGE: &str = include_str!("../../../../examples/canary.toml");
const GOOD: &[u8] = include_bytes!("../../../../examples/candidates/triage-v2.json");
const REGRESSED: &[u8] = include_bytes!("../../../../examples/candidates/triage-v4-regressed.json");
const ENVIRONMENT: &str = "production";

/// Runs the scene; fails unless the bad canary was rolled back on its own.
pub async fn run() -> anyhow::Result<()> {
    println!("\n── canary scene: a regression in production, rolled back automatically");
    let dir = tempfile::tempdir().context("creating a temporary data directory")?;
    let metrics = Metrics::new()?;
    let exporter = metrics.serve().await?;
    let prometheus = match on_path("prometheus") {
        Some(binary) => match Prometheus::start(&binary, dir.path(), &exporter).await {
            Ok(p) => Some(p),
            Err(e) => {
                println!("   (prometheus is on the PATH but did not start: {e:#})");
                None
            }
        },
        None => None,
    };
    let pipeline = dir.path().join("canary-pipeline.toml");
    match &prometheus {
        Some(p) => std::fs::write(
            &pipeline,
            PROMETHEUS_PIPELINE.replace("http://127.0.0.1:9090", &p.url),
        )?,
        None => std::fs::write(&pipeline, PIPELINE)?,
    }
    std::fs::write(dir.path().join("canary.toml"), JUDGE)?;
    let settings = Settings {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().join("data"),
        pipelines: vec![pipeline],
        ..Settings::default()
    };
    let running = server::start(&settings).await?;
    let token = running
        .generated_admin_token
        .clone()
        .context("a fresh daemon should have generated a token")?;
    let addr = format!("http://{}", running.addr);
    let mut client = gatehouse::client::connect(&addr, Some(&token)).await?;
    let style = Style::detect();

    println!("── triage-v2.json goes live in production (nothing to compare a canary with yet)");
    let first = submit(&mut client, GOOD).await?;
    follow(&mut client, first, Output::Text, style).await?;

    let traffic = Traffic::default();
    let flags = follow_flags(&addr, &token, traffic.clone()).await?;
    let reports = prometheus.is_none();
    let service = tokio::spawn(serve(client.clone(), traffic.clone(), metrics, reports));
    match &prometheus {
        Some(p) => println!(
            "\n── a service follows its flag (flagd sync) and sends ~10,000 requests/s; Prometheus ({}) scrapes its /metrics every 250 ms and the daemon judges the canary on those series alone, at each 30 s step's end",
            p.url
        ),
        None => println!(
            "\n── a service follows its flag (flagd sync), sends ~10,000 requests/s and reports them (ReportObservations); with `prometheus` on the PATH this scene judges on Prometheus instead"
        ),
    }
    println!("── triage-v4-regressed.json is submitted and runs as a canary");
    let bad = submit(&mut client, REGRESSED).await?;
    let done = follow(&mut client, bad, Output::Text, style).await?;
    // Let the service see the restored configuration.
    let deadline = Instant::now() + Duration::from_secs(5);
    while traffic.lock().restored.is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    service.abort();
    flags.abort();
    exporter.task.abort();
    running.stop().await?;
    drop(prometheus);

    let t = traffic.lock();
    let rolled_back = phase_name(done.phase) == "RolledBack";
    match (t.canary_since, t.restored, rolled_back) {
        (Some(from), Some(to), true) => {
            println!(
                "canary served {} requests ({} failed) before the daemon rolled it back: {:.0} ms from the first canary request to the previous configuration back at the service, with no human call",
                t.canary_requests,
                t.canary_errors,
                to.duration_since(from).as_secs_f64() * 1e3
            );
            println!("why: {}", done.reason);
            Ok(())
        }
        _ => anyhow::bail!(
            "the regressed canary was not rolled back automatically (release {bad} is {})",
            phase_name(done.phase)
        ),
    }
}

async fn submit(client: &mut Client, bytes: &[u8]) -> anyhow::Result<u64> {
    let resp = client
        .releases
        .submit_release(proto::SubmitReleaseRequest {
            pipeline: "canary-demo".into(),
            candidate: bytes.to_vec(),
            metadata: [("source".to_string(), "gatehouse demo".to_string())].into(),
            ..Default::default()
        })
        .await
        .map_err(rpc)?
        .into_inner();
    Ok(resp.release.context("no release in the answer")?.id)
}

/// What the simulated service saw.
#[derive(Default)]
struct Seen {
    /// The canary it routes to: (digest, release, weight, fails one in N).
    canary: Option<(String, u64, u32, u64)>,
    canary_since: Option<Instant>,
    canary_requests: u64,
    canary_errors: u64,
    restored: Option<Instant>,
}

#[derive(Clone, Default)]
struct Traffic(Arc<Mutex<Seen>>);

impl Traffic {
    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How often a configuration fails: the regressed candidate one request in
/// five, anything else one in two hundred.
fn fails_one_in(digest: &str) -> u64 {
    if digest == Digest::of(REGRESSED).hex() {
        5
    } else {
        200
    }
}

/// Follows production's flag as a flagd provider does: each flag set names
/// the canary (if any) in its metadata, with its weight.
async fn follow_flags(
    addr: &str,
    token: &str,
    traffic: Traffic,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let channel = tonic::transport::Endpoint::from_shared(addr.to_string())?
        .connect()
        .await?;
    let mut request = tonic::Request::new(SyncFlagsRequest::default());
    request
        .metadata_mut()
        .insert("flagd-selector", ENVIRONMENT.parse()?);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let mut sync = FlagSyncServiceClient::new(channel)
        .sync_flags(request)
        .await
        .map_err(rpc)?
        .into_inner();
    Ok(tokio::spawn(async move {
        while let Ok(Some(set)) = sync.message().await {
            let Ok(set) = serde_json::from_str::<serde_json::Value>(&set.flag_configuration) else {
                continue;
            };
            let meta = &set["flags"][ENVIRONMENT]["metadata"];
            let mut t = traffic.lock();
            match meta["canary_digest"].as_str() {
                Some(digest) => {
                    let release = meta["canary_release_id"].as_u64().unwrap_or(0);
                    let weight = meta["canary_weight_percent"].as_u64().unwrap_or(0) as u32;
                    t.canary = Some((digest.to_string(), release, weight, fails_one_in(digest)));
                }
                None if t.canary.is_some() => {
                    t.canary = None;
                    t.restored = Some(Instant::now());
                }
                None => {}
            }
        }
    }))
}

/// The service's request metrics, as `prometheus_client` would export
/// them from a Python service: requests by variant and status, latency by
/// variant.
#[derive(Clone)]
struct Metrics {
    registry: prometheus::Registry,
    requests: prometheus::IntCounterVec,
    latency: prometheus::HistogramVec,
}

impl Metrics {
    fn new() -> anyhow::Result<Metrics> {
        let registry = prometheus::Registry::new();
        let requests = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "http_requests_total",
                "Requests answered, by variant and status.",
            ),
            &["variant", "status"],
        )?;
        let latency = prometheus::HistogramVec::new(
            prometheus::HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer a request, by variant.",
            ),
            &["variant"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        // Every series exists from the start, so an arm without errors
        // reads 0 rather than nothing.
        for variant in ["active", "canary"] {
            for status in ["200", "500"] {
                requests.with_label_values(&[variant, status]);
            }
            latency.with_label_values(&[variant]);
        }
        Ok(Metrics {
            registry,
            requests,
            latency,
        })
    }

    fn record(&self, variant: &str, failed: bool, latency_ms: f64) {
        let status = if failed { "500" } else { "200" };
        self.requests.with_label_values(&[variant, status]).inc();
        self.latency
            .with_label_values(&[variant])
            .observe(latency_ms / 1e3);
    }

    /// Serves `/metrics` on a free loopback port.
    async fn serve(&self) -> anyhow::Result<Exporter> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let target = listener.local_addr()?.to_string();
        let registry = self.registry.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let registry = registry.clone();
                async move {
                    prometheus::TextEncoder::new()
                        .encode_to_string(&registry.gather())
                        .unwrap_or_default()
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Exporter { target, task })
    }
}

/// Where the service's `/metrics` is served.
struct Exporter {
    /// `host:port`, as Prometheus names a target.
    target: String,
    task: tokio::task::JoinHandle<()>,
}

/// A Prometheus for the scene, stopped when dropped.
struct Prometheus {
    child: Child,
    url: String,
}

impl Prometheus {
    async fn start(binary: &Path, dir: &Path, exporter: &Exporter) -> anyhow::Result<Prometheus> {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 250ms\nscrape_configs:\n  - job_name: serving\n    static_configs:\n      - targets: ['{}']\n",
                exporter.target
            ),
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prometheus").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let running = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let ready = format!("{}/-/ready", running.url);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let probe = ready.clone();
            let up = tokio::task::spawn_blocking(move || ureq::get(&probe).call().is_ok())
                .await
                .unwrap_or(false);
            if up {
                return Ok(running);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "not ready at {} within 30 s",
                running.url
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name` in a directory of the PATH, if it is there.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Serves simulated requests every 10 ms: each counted in the metrics and,
/// when `reports`, reported to the daemon.
async fn serve(
    mut client: Client,
    traffic: Traffic,
    metrics: Metrics,
    reports: bool,
) -> anyhow::Result<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    if reports {
        tokio::spawn(async move {
            let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
            let _ = client.canaries.report_observations(stream).await;
        });
    }
    let mut n: u64 = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        tick.tick().await;
        let Some(batch) = requests(&mut traffic.lock(), &mut n, &metrics) else {
            continue;
        };
        if reports && tx.send(batch).await.is_err() {
            return Ok(());
        }
    }
}

/// One tick of 100 requests while a canary runs, as a batch to report.
fn requests(t: &mut Seen, n: &mut u64, metrics: &Metrics) -> Option<proto::ObservationBatch> {
    let (digest, release, weight, one_in) = t.canary.clone()?;
    let mut batch = proto::ObservationBatch {
        environment: ENVIRONMENT.into(),
        release_id: release,
        observations: Vec::with_capacity(100),
    };
    for _ in 0..100 {
        *n += 1;
        let n = *n;
        let key = format!("user-{}", n % 50_000);
        let canary = routes_to_canary(&digest, key.as_bytes(), weight);
        let (arm, error) = if canary {
            t.canary_since.get_or_insert_with(Instant::now);
            t.canary_requests += 1;
            let failed = n.is_multiple_of(one_in);
            t.canary_errors += u64::from(failed);
            (proto::Arm::Canary, failed)
        } else {
            (proto::Arm::Baseline, n.is_multiple_of(200))
        };
        let latency_ms = 40.0 + (n * 7919 % 23) as f64;
        let variant = if canary { "canary" } else { "active" };
        metrics.record(variant, error, latency_ms);
        batch.observations.push(proto::Observation {
            arm: arm as i32,
            latency_ms,
            error,
            ..Default::default()
        });
    }
    Some(batch)
}
