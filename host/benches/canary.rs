//! Prints figures for the canary path through a real daemon on loopback:
//!
//! - ingest: observations per second over `ReportObservations`, batches of
//!   1,000, client (building and encoding batches) and daemon in this
//!   process, into a running canary's window — for one stream and for two;
//! - a final judgement over 2 × 100,000 samples (every test, the score);
//! - from sending the batch whose observations cross the rollback boundary
//!   to the restored configuration at a `WatchConfig` subscriber, on a
//!   daemon with no notification receiver and, taking turns with it, on one
//!   whose two receivers are dead: the change they make.
//!
//! Run: `cargo bench -p gatehouse --bench canary`. Medians and p90 over the
//! iterations below; the machine is shared, so compare runs side by side.

use gatehouse::canary::{Arm, Canary, CanaryConfig, Look, Observation};
use gatehouse::client::{self, Client};
use gatehouse::proto;
use gatehouse::server::{self, Settings};
use std::time::{Duration, Instant};

const BATCH: usize = 1_000;
const INGEST_BATCHES: usize = 3_000;
const JUDGE_SAMPLES: usize = 100_000;
const JUDGE_RUNS: usize = 15;
const ROLLBACKS: usize = 40;

/// A long step, so ingest never reaches a final look; a second pipeline
/// applies without a canary, to put a baseline in place.
const PIPELINE: &str = "\
name = \"bench\"
[[environment]]
name = \"production\"
  [environment.canary]
  steps = [50]
  step_seconds = 3600
";

fn candidate(n: usize) -> Vec<u8> {
    format!(r#"{{"model":"m","prompt_template":"{{{{input}}}}","parameters":{{"temperature":0.1,"max_tokens":16}},"n":{n}}}"#).into_bytes()
}

fn summary(name: &str, mut xs: Vec<Duration>) {
    xs.sort();
    let pct = |p: f64| xs[((xs.len() as f64 * p) as usize).min(xs.len() - 1)];
    println!(
        "{name:<64} median {:>9.3} ms   p90 {:>9.3} ms   (n={})",
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.9).as_secs_f64() * 1e3,
        xs.len()
    );
}

/// A cheap, deterministic latency in [20, 60) ms.
fn latency(i: u64) -> f64 {
    20.0 + (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as f64 / (1u64 << 24) as f64 * 40.0
}

fn batch(seq: u64, release: u64, canary_error_every: u64) -> proto::ObservationBatch {
    let observations = (0..BATCH as u64)
        .map(|i| {
            let n = seq * BATCH as u64 + i;
            let canary = i % 2 == 1;
            proto::Observation {
                arm: if canary {
                    proto::Arm::Canary
                } else {
                    proto::Arm::Baseline
                } as i32,
                latency_ms: latency(n),
                error: canary && canary_error_every > 0 && n.is_multiple_of(canary_error_every),
                ..Default::default()
            }
        })
        .collect();
    proto::ObservationBatch {
        environment: "production".into(),
        release_id: release,
        observations,
    }
}

async fn submit(c: &mut Client, n: usize) -> u64 {
    c.releases
        .submit_release(proto::SubmitReleaseRequest {
            pipeline: "bench".into(),
            candidate: candidate(n),
            ..Default::default()
        })
        .await
        .expect("submit")
        .into_inner()
        .release
        .expect("release")
        .id
}

/// Waits on the config stream until `pred` holds.
async fn until(
    watch: &mut tonic::Streaming<proto::ActiveConfig>,
    pred: impl Fn(&proto::ActiveConfig) -> bool,
) {
    loop {
        let c = watch.message().await.expect("watch").expect("stream open");
        if pred(&c) {
            return;
        }
    }
}

async fn ingest(c: &Client, release: u64, streams: usize) -> f64 {
    let per_stream = INGEST_BATCHES / streams;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..streams {
        let mut canaries = c.canaries.clone();
        tasks.push(tokio::spawn(async move {
            let base = (s * per_stream) as u64 + 1_000_000;
            let batches = tokio_stream::iter(
                (0..per_stream as u64).map(move |i| batch(base + i, release, 0)),
            );
            canaries
                .report_observations(batches)
                .await
                .expect("report")
                .into_inner()
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        let r = t.await.expect("stream task");
        assert_eq!(r.rejected, 0, "{}", r.rejection);
        accepted += r.accepted;
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(
        accepted as usize,
        per_stream * streams * BATCH,
        "all accepted"
    );
    accepted as f64 / secs
}

fn judgement() {
    let mut c = Canary::new(CanaryConfig::default());
    for i in 0..JUDGE_SAMPLES as u64 {
        c.observe(Observation::latency(Arm::Baseline, latency(i)))
            .expect("valid");
        c.observe(Observation::latency(Arm::Canary, latency(i + 7_919)))
            .expect("valid");
    }
    let mut times = Vec::with_capacity(JUDGE_RUNS);
    for _ in 0..JUDGE_RUNS {
        let started = Instant::now();
        let j = c.judge(Look::Final);
        times.push(started.elapsed());
        assert_eq!(j.baseline_n, JUDGE_SAMPLES as u64);
    }
    summary(
        "final judgement, 2 x 100,000 samples, every metric (target < 15 ms)",
        times,
    );
}

fn main() {
    judgement();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let pipeline = dir.path().join("bench.toml");
        std::fs::write(&pipeline, PIPELINE).expect("pipeline");
        // A baseline (nothing live: applied without a canary), then a
        // canary that stays up while observations pour in.
        let mut daemon = Rollbacks::start(dir.path(), "ingest", Vec::new()).await;
        let release = submit(&mut daemon.c, 1).await;
        until(&mut daemon.watch, |c| c.canary.is_some()).await;
        for streams in [1, 2] {
            let rate = ingest(&daemon.c, release, streams).await;
            println!(
                "{:<64} {:>12.0} observations/s (target >= 500,000)",
                format!("ingest over gRPC, batches of {BATCH}, {streams} stream(s)"),
                rate
            );
        }
        daemon.stop().await;

        // The rollback path, on a daemon with no notification receiver and
        // on one whose receivers are dead (one refuses connections, one
        // accepts them and never answers), taking turns so the machine's
        // noise falls on both alike.
        let refused = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let refused_url = format!("http://{}/", refused.local_addr().expect("addr"));
        drop(refused);
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let silent_url = format!("http://{}/", silent.local_addr().expect("addr"));
        let dead_receivers = [("refused", refused_url), ("silent", silent_url)]
            .into_iter()
            .map(|(name, url)| {
                toml::from_str(&format!(
                    "name = \"{name}\"\nurl = \"{url}\"\ntimeout_ms = 2000\nretry_first_ms = 10\nretry_max_ms = 50"
                ))
                .expect("a [[notify]] entry")
            })
            .collect();
        let mut quiet = Rollbacks::start(dir.path(), "quiet", Vec::new()).await;
        let mut dead = Rollbacks::start(dir.path(), "dead", dead_receivers).await;
        let (mut q, mut d) = (Vec::new(), Vec::new());
        for n in 0..ROLLBACKS {
            q.push(quiet.one(n).await);
            d.push(dead.one(n).await);
        }
        quiet.stop().await;
        dead.stop().await;
        let change = (median(&d).as_secs_f64() - median(&q).as_secs_f64()) * 1e3;
        summary(
            "boundary-crossing batch sent -> restored config at WatchConfig (target < 10 ms)",
            q,
        );
        summary("the same, beside two dead notification receivers", d);
        println!(
            "{:<64} {:>+12.3} ms (target < 1 ms)",
            "median change the dead receivers make", change
        );
        drop(silent);
    });
}

fn median(xs: &[Duration]) -> Duration {
    let mut xs = xs.to_vec();
    xs.sort();
    xs[xs.len() / 2]
}

/// A daemon with a baseline live in production, on which canaries are
/// rolled back one at a time ([`Rollbacks::one`]): a fresh
/// canary each, warmed with clean data, then one batch whose canary errors
/// cross the boundary, timed from sending it to the restored configuration
/// at a `WatchConfig` subscriber.
struct Rollbacks {
    running: server::Running,
    c: Client,
    watch: tonic::Streaming<proto::ActiveConfig>,
    tx: tokio::sync::mpsc::Sender<proto::ObservationBatch>,
    reporter: tokio::task::JoinHandle<
        Result<tonic::Response<proto::ReportObservationsResponse>, tonic::Status>,
    >,
}

impl Rollbacks {
    async fn start(
        root: &std::path::Path,
        name: &str,
        notify: Vec<gatehouse::telemetry::notify::Target>,
    ) -> Rollbacks {
        let running = server::start(&Settings {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: root.join(name),
            pipelines: vec![root.join("bench.toml")],
            notify,
            ..Settings::default()
        })
        .await
        .expect("daemon");
        let token = running.generated_admin_token.clone().expect("token");
        let mut c = client::connect(&format!("http://{}", running.addr), Some(&token))
            .await
            .expect("connect");
        let mut watch = c
            .environments
            .watch_config(proto::WatchConfigRequest {
                environment: "production".into(),
                after_generation: 0,
            })
            .await
            .expect("watch")
            .into_inner();
        submit(&mut c, 0).await;
        until(&mut watch, |c| c.active.is_some()).await;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let mut canaries = c.canaries.clone();
        let reporter = tokio::spawn(async move {
            canaries
                .report_observations(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
        });
        Rollbacks {
            running,
            c,
            watch,
            tx,
            reporter,
        }
    }

    async fn one(&mut self, n: usize) -> Duration {
        let id = submit(&mut self.c, 100 + n).await;
        until(&mut self.watch, |c| {
            c.canary.as_ref().is_some_and(|d| d.release_id == id)
        })
        .await;
        self.tx
            .send(batch(2 * n as u64, id, 0))
            .await
            .expect("send");
        let bad = batch(2 * n as u64 + 1, id, 3);
        let sent = Instant::now();
        self.tx.send(bad).await.expect("send");
        until(&mut self.watch, |c| c.canary.is_none()).await;
        sent.elapsed()
    }

    async fn stop(self) {
        drop(self.tx);
        let _ = self.reporter.await;
        self.running.stop().await.expect("stop");
    }
}
