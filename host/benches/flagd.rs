//! Prints how fast a change reaches OpenFeature clients through the flagd
//! sync service (`flagd.sync.v1.FlagSyncService`), from a real daemon on
//! loopback:
//!
//! - a canary weight change (an operator approving a paused step: 10% →
//!   50%) and a rollback → each of 1,000 `SyncFlags` subscribers has the new
//!   flag set: per-subscriber latency, median and p99 over the rounds;
//! - a weight change and a rollback → an in-process Python client
//!   (`openfeature-sdk` with `openfeature-provider-flagd`, from PyPI, pinned
//!   in `tests/python/requirements.txt`) has been told of the new flag set
//!   and evaluates with it: median and p99.
//!
//! Run: `cargo bench -p gatehouse --bench flagd` (it makes the Python
//! virtual environment under the target directory if it is missing, as the
//! end-to-end tests do). The machine is shared; compare figures from one run.

use gatehouse::client::{self, Client};
use gatehouse::flagd::SyncFlagsRequest;
use gatehouse::flagd::flag_sync_service_client::FlagSyncServiceClient;
use gatehouse::proto;
use gatehouse::server::{self, Settings};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

const SUBSCRIBERS: usize = 1_000;
/// Streams per connection: HTTP/2 servers commonly cap concurrent streams.
const PER_CONNECTION: usize = 100;
const ROUNDS: usize = 20;
const PYTHON_ROUNDS: usize = 30;

const PIPELINE: &str = r#"
name = "flags"
[[environment]]
name = "production"
  [environment.canary]
  steps = [10, 50]
  step_ms = 50
  min_samples = 1000000
  on_inconclusive = "pause"
"#;

fn candidate(n: usize) -> Vec<u8> {
    format!(r#"{{"model":"m","prompt_template":"{{{{input}}}}","n":{n}}}"#).into_bytes()
}

/// What a flag set says about production's canary: its weight, 0 without.
fn weight_of(flag_configuration: &str) -> Option<u64> {
    let set: serde_json::Value = serde_json::from_str(flag_configuration).ok()?;
    let meta = &set["flags"]["production"]["metadata"];
    Some(meta["canary_weight_percent"].as_u64().unwrap_or(0))
}

fn summary(name: &str, mut xs: Vec<Duration>) {
    xs.sort();
    let pct = |p: f64| xs[((xs.len() as f64 * p) as usize).min(xs.len() - 1)];
    println!(
        "{name:<62} median {:>8.3} ms   p99 {:>8.3} ms   (n={})",
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        xs.len()
    );
}

/// Submits candidate `n` and waits until its first step is paused at 10%.
async fn paused_canary(c: &mut Client, n: usize) -> u64 {
    let id = c
        .releases
        .submit_release(proto::SubmitReleaseRequest {
            pipeline: "flags".into(),
            candidate: candidate(n),
            ..Default::default()
        })
        .await
        .expect("submit")
        .into_inner()
        .release
        .expect("release")
        .id;
    let mut events = c
        .releases
        .watch_release(proto::WatchReleaseRequest { id })
        .await
        .expect("watch")
        .into_inner();
    while let Some(e) = events.message().await.expect("event") {
        if e.message.contains("canary paused") {
            return id;
        }
    }
    panic!("release {id} ended before its canary paused");
}

async fn approve(c: &mut Client, id: u64) {
    c.releases
        .approve_stage(proto::ApproveStageRequest {
            id,
            environment: "production".into(),
            comment: "bench".into(),
        })
        .await
        .expect("approve");
}

async fn rollback(c: &mut Client) {
    c.environments
        .rollback_environment(proto::RollbackEnvironmentRequest {
            environment: "production".into(),
            reason: "bench".into(),
        })
        .await
        .expect("rollback");
}

/// Waits until every subscriber has reported `weight`; each one's latency
/// from `from`.
async fn all_saw(
    rx: &mut mpsc::UnboundedReceiver<(usize, u64, Instant)>,
    weight: u64,
    from: Instant,
) -> Vec<Duration> {
    let mut seen = vec![None; SUBSCRIBERS];
    let mut left = SUBSCRIBERS;
    while left > 0 {
        let (who, w, at) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("every subscriber hears within 30 s")
            .expect("subscribers run");
        if w == weight && seen[who].is_none() {
            seen[who] = Some(at.saturating_duration_since(from));
            left -= 1;
        }
    }
    seen.into_iter().flatten().collect()
}

fn wall_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// The tests' Python environment, made if missing.
#[path = "../../tests/e2e/python_env.rs"]
mod python_env;
use python_env::python;

/// The wall-clock time the Python client was told of the next set whose
/// canary weight is `want`.
async fn heard(rx: &mut mpsc::UnboundedReceiver<serde_json::Value>, want: u64) -> u128 {
    loop {
        let v = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("the Python client hears within 30 s")
            .expect("the Python client runs");
        if v["weight"].as_u64() == Some(want) {
            return v["t_ns"].as_u64().unwrap_or(0) as u128;
        }
    }
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = dir.path().join("flags.toml");
    std::fs::write(&pipeline, PIPELINE).expect("write pipeline");
    let settings = Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().join("data"),
        pipelines: vec![pipeline],
        ..Settings::default()
    };
    let running = server::start(&settings).await.expect("start daemon");
    let token = running.generated_admin_token.clone().expect("token");
    let addr = format!("http://{}", running.addr);
    let mut c = client::connect(&addr, Some(&token)).await.expect("connect");

    // Something live, so that each next candidate runs as a canary.
    c.releases
        .submit_release(proto::SubmitReleaseRequest {
            pipeline: "flags".into(),
            candidate: candidate(0),
            ..Default::default()
        })
        .await
        .expect("submit");
    while c
        .environments
        .get_config(proto::GetConfigRequest {
            environment: "production".into(),
        })
        .await
        .map(|r| r.into_inner().active.is_none())
        .unwrap_or(true)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(usize, u64, Instant)>();
    let mut channels = Vec::new();
    for _ in 0..SUBSCRIBERS.div_ceil(PER_CONNECTION) {
        channels.push(
            tonic::transport::Endpoint::from_shared(addr.clone())
                .expect("address")
                .connect()
                .await
                .expect("connect"),
        );
    }
    for who in 0..SUBSCRIBERS {
        let channel = channels[who / PER_CONNECTION].clone();
        let (tx, token) = (seen_tx.clone(), token.clone());
        tokio::spawn(async move {
            let mut request = tonic::Request::new(SyncFlagsRequest::default());
            request
                .metadata_mut()
                .insert("flagd-selector", "production".parse().expect("header"));
            request.metadata_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().expect("header"),
            );
            let mut sync = FlagSyncServiceClient::new(channel)
                .sync_flags(request)
                .await
                .expect("sync flags")
                .into_inner();
            while let Ok(Some(set)) = sync.message().await {
                let at = Instant::now();
                if let Some(w) = weight_of(&set.flag_configuration)
                    && tx.send((who, w, at)).is_err()
                {
                    break;
                }
            }
        });
    }
    // Everyone has the current set (no canary) before the first round.
    all_saw(&mut seen_rx, 0, Instant::now()).await;

    let mut weight_change = Vec::new();
    let mut rolled_back = Vec::new();
    for round in 0..ROUNDS {
        let id = paused_canary(&mut c, 1 + round).await;
        all_saw(&mut seen_rx, 10, Instant::now()).await;
        let t = Instant::now();
        approve(&mut c, id).await;
        weight_change.extend(all_saw(&mut seen_rx, 50, t).await);
        // The second step pauses too; roll it back from there.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = Instant::now();
        rollback(&mut c).await;
        rolled_back.extend(all_saw(&mut seen_rx, 0, t).await);
    }
    summary(
        &format!("approval (10% → 50%) → each of {SUBSCRIBERS} SyncFlags subscribers"),
        weight_change,
    );
    summary(
        &format!("rollback RPC → each of {SUBSCRIBERS} SyncFlags subscribers"),
        rolled_back,
    );

    // An in-process Python client, told by its provider of each new set.
    let python = python();
    let port = running.addr.port().to_string();
    let mut child = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/python/flag_changes.py"
        ))
        .args(["127.0.0.1", &port, "production", "production", &token])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the Python client");
    let (line_tx, mut line_rx) = mpsc::unbounded_channel::<serde_json::Value>();
    let out = child.stdout.take().expect("its output");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let Ok(v) = serde_json::from_str(&line) else {
                break;
            };
            if line_tx.send(v).is_err() {
                break;
            }
        }
    });
    heard(&mut line_rx, 0).await;
    let mut py_weight = Vec::new();
    let mut py_rollback = Vec::new();
    for round in 0..PYTHON_ROUNDS {
        let id = paused_canary(&mut c, 1_000 + round).await;
        heard(&mut line_rx, 10).await;
        let t = wall_ns();
        approve(&mut c, id).await;
        py_weight.push(Duration::from_nanos(
            (heard(&mut line_rx, 50).await.saturating_sub(t)) as u64,
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = wall_ns();
        rollback(&mut c).await;
        py_rollback.push(Duration::from_nanos(
            (heard(&mut line_rx, 0).await.saturating_sub(t)) as u64,
        ));
    }
    let _ = child.kill();
    let _ = child.wait();
    summary(
        "approval (10% → 50%) → in-process Python OpenFeature client",
        py_weight,
    );
    summary(
        "rollback RPC → in-process Python OpenFeature client",
        py_rollback,
    );
    running.stop().await.expect("stop");
}
