//! Prints how long `/metrics` takes to render with 1,000 releases behind
//! it (each submitted, gated by three gates and ended) and 10 environments
//! under canary (each with a judgement over both arms), and how large the
//! exposition is. The audit events are real ones, committed to a real
//! store and counted as the daemon counts them.
//!
//! Run: `cargo bench -p gatehouse --bench metrics`. Median and p99 over
//! the renders below; the machine is shared, so compare runs side by side.

use gatehouse::canary::live::{Board, Mode, Position};
use gatehouse::canary::{Arm, CanaryConfig, Observation};
use gatehouse::ids::{DAEMON, PhaseName};
use gatehouse::store::Store;
use gatehouse::store::audit::{Draft, EventKind};
use gatehouse::telemetry::metrics::{Metrics, Now};
use std::time::{Duration, Instant};

const RELEASES: u64 = 1_000;
const ENVIRONMENTS: usize = 10;
const RENDERS: usize = 500;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

async fn bench() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("store");
    let metrics = Metrics::new(env!("CARGO_PKG_VERSION"), "48").expect("metrics");
    let envs: Vec<String> = (0..ENVIRONMENTS).map(|i| format!("env-{i}")).collect();
    for id in 1..=RELEASES {
        let env = &envs[id as usize % ENVIRONMENTS];
        let mut drafts = vec![
            Draft::new(EventKind::ReleasePhase, DAEMON, "gating")
                .release(id, PhaseName::Gating)
                .environment(env),
        ];
        for gate in ["cost-estimator", "config-lint", "golden-eval"] {
            drafts.push(
                Draft::new(EventKind::GateVerdict, DAEMON, "verdict")
                    .release(id, PhaseName::Gating)
                    .environment(env)
                    .detail(serde_json::json!({
                        "gate": gate, "outcome": "pass",
                        "duration_us": 1_000 + id * 7 % 5_000, "fuel_used": 100_000 + id
                    })),
            );
        }
        let ended = match id % 10 {
            0 => PhaseName::RolledBack,
            1 => PhaseName::Failed,
            _ => PhaseName::Succeeded,
        };
        drafts.push(
            Draft::new(EventKind::ReleasePhase, DAEMON, "ended")
                .release(id, ended)
                .environment(env),
        );
        let events = store
            .commit(|tx| {
                drafts
                    .iter()
                    .map(|d| tx.append(d.clone()))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
            .expect("commit");
        for e in &events {
            metrics.observe(e, &store);
        }
    }

    let board = Board::default();
    for (i, env) in envs.iter().enumerate() {
        let position = Position {
            release: RELEASES + 1 + i as u64,
            environment: env.clone(),
            stage: 0,
            step: 0,
            weight_percent: 20,
            mode: Mode::Step,
        };
        let (running, _) = board.open(
            position,
            CanaryConfig::default(),
            None,
            Duration::from_secs(3600),
        );
        let batch: Vec<Result<Observation, String>> = (0..400)
            .map(|n| {
                Ok(Observation {
                    arm: if n % 2 == 0 {
                        Arm::Baseline
                    } else {
                        Arm::Canary
                    },
                    request_key: String::new(),
                    latency_ms: 40.0 + (n % 17) as f64,
                    error: n % 50 == 0,
                    cost: 0.001,
                    output_fingerprint: None,
                    prediction: None,
                })
            })
            .collect();
        running.ingest(batch).await;
    }

    let now = Now {
        leader: true,
        watchers: envs.iter().map(|e| (e.clone(), 3)).collect(),
        canaries: board.all(),
        drifted: envs.iter().map(|e| (e.clone(), false)).collect(),
        adapter_failures: envs
            .iter()
            .map(|e| ((format!("adapter-{e}"), "timeout"), 1))
            .collect(),
    };
    let mut times = Vec::with_capacity(RENDERS);
    let mut size = 0;
    for _ in 0..RENDERS {
        let started = Instant::now();
        let text = metrics.render(&now).expect("render");
        times.push(started.elapsed());
        size = text.len();
    }
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "/metrics with {RELEASES} releases and {ENVIRONMENTS} canaries: median {:.2} ms, p99 {:.2} ms over {RENDERS} renders; {size} bytes (aim: < 5 ms)",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
    );
}
