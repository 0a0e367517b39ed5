//! The demo's canary scene: a daemon serving `examples/canary-pipeline.toml`
//! and a serving service simulated on loopback, which follows its
//! configuration through `WatchConfig`, splits requests between the live
//! configuration and the canary by the sticky rule, and reports what each
//! arm did. A good configuration goes live; then a candidate whose model
//! fails one request in five runs as a canary, and the daemon rolls it back
//! with no one asking.

use crate::cli::release::follow;
use crate::cli::render::{Style, phase_name};
use crate::cli::{Output, rpc};
use anyhow::Context;
use gatehouse::client::{Client, routes_to_canary};
use gatehouse::proto;
use gatehouse::server::{self, Settings};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PIPELINE: &str = include_str!("../../../../examples/canary-pipeline.toml");
const JUDGE: &str = include_str!("../../../../examples/canary.toml");
const GOOD: &[u8] = include_bytes!("../../../../examples/candidates/triage-v2.json");
const REGRESSED: &[u8] = include_bytes!("../../../../examples/candidates/triage-v4-regressed.json");
const ENVIRONMENT: &str = "production";

/// Runs the scene; fails unless the bad canary was rolled back on its own.
pub async fn run() -> anyhow::Result<()> {
    println!("\n── canary scene: a regression in production, rolled back automatically");
    let dir = tempfile::tempdir().context("creating a temporary data directory")?;
    let pipeline = dir.path().join("canary-pipeline.toml");
    std::fs::write(&pipeline, PIPELINE)?;
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
    let service = tokio::spawn(serve(client.clone(), traffic.clone()));
    println!(
        "\n── a service sends ~10,000 requests/s; triage-v4-regressed.json is submitted and runs as a canary"
    );
    let bad = submit(&mut client, REGRESSED).await?;
    let done = follow(&mut client, bad, Output::Text, style).await?;
    // Let the service see the restored configuration.
    let deadline = Instant::now() + Duration::from_secs(5);
    while traffic.lock().restored.is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    service.abort();
    running.stop().await?;

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
fn fails_one_in(config: &[u8]) -> u64 {
    if config == REGRESSED { 5 } else { 200 }
}

/// Follows the configuration and serves simulated requests, reporting
/// every 10 ms.
async fn serve(mut client: Client, traffic: Traffic) -> anyhow::Result<()> {
    let mut watch = client
        .environments
        .watch_config(proto::WatchConfigRequest {
            environment: ENVIRONMENT.into(),
        })
        .await
        .map_err(rpc)?
        .into_inner();
    let follower = traffic.clone();
    tokio::spawn(async move {
        while let Ok(Some(c)) = watch.message().await {
            let mut t = follower.lock();
            match c.canary {
                Some(d) => {
                    let weight = c.canary_weight_percent;
                    t.canary = Some((d.digest, d.release_id, weight, fails_one_in(&d.config)));
                }
                None if t.canary.is_some() => {
                    t.canary = None;
                    t.restored = Some(Instant::now());
                }
                None => {}
            }
        }
    });
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let mut reporter = client.clone();
    tokio::spawn(async move {
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let _ = reporter.canaries.report_observations(stream).await;
    });
    let mut n: u64 = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        tick.tick().await;
        let Some(batch) = requests(&mut traffic.lock(), &mut n) else {
            continue;
        };
        if tx.send(batch).await.is_err() {
            return Ok(());
        }
    }
}

/// One tick of 100 requests while a canary runs, as a batch to report.
fn requests(t: &mut Seen, n: &mut u64) -> Option<proto::ObservationBatch> {
    let (digest, release, weight, one_in) = t.canary.clone()?;
    {
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
            batch.observations.push(proto::Observation {
                arm: arm as i32,
                latency_ms: 40.0 + (n * 7919 % 23) as f64,
                error,
                ..Default::default()
            });
        }
        Some(batch)
    }
}
