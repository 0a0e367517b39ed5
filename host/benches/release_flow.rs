//! Prints figures for the release path through a real daemon on loopback:
//!
//! - submit → Succeeded wall time, 3 environments, one wasm gate each (no
//!   canary), one release at a time;
//! - a change of production's configuration → all of 100 `WatchConfig`
//!   subscribers have seen it, for a promotion and for a rollback;
//! - the same submit → Succeeded while 64 gates of other releases sleep to
//!   their deadline in a blocking host call, beside its idle figure: plugin
//!   calls that wait must not hold up the rest.
//!
//! Run: `cargo bench -p gatehouse --bench release_flow`. Medians and p90 over
//! the iterations below; the machine is shared, so compare runs side by side.

use gatehouse::client::{self, Client};
use gatehouse::proto;
use gatehouse::server::{self, Settings};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const RELEASES: usize = 300;
const WATCHERS: usize = 100;
const CHANGES: usize = 100;

const PIPELINE: &str = r#"
name = "bench"
[[environment]]
name = "dev"
  [[environment.gate]]
  plugin = "config-lint"
[[environment]]
name = "staging"
  [[environment.gate]]
  plugin = "config-lint"
[[environment]]
name = "production"
  [[environment.gate]]
  plugin = "config-lint"
"#;

const DIRECT: &str = "name = \"direct\"\n[[environment]]\nname = \"production\"\n";

/// Gates of one sleeper release, each asleep until its deadline.
const SLEEPERS: usize = 64;
const SLEEPER_TIMEOUT_MS: u64 = 2000;
/// Healthy releases timed while the sleepers sleep.
const BUSY_RELEASES: usize = 100;

fn sleepers_pipeline() -> String {
    let mut text = "name = \"sleepers\"\n[[environment]]\nname = \"sleep\"\n".to_string();
    for n in 0..SLEEPERS {
        text += &format!(
            "[[environment.gate]]\nname = \"sleeper-{n}\"\nplugin = \"hostile-gate\"\ntimeout_ms = {SLEEPER_TIMEOUT_MS}\nparams = {{ mode = \"sleep\", ms = 3600000 }}\n"
        );
    }
    text
}

fn candidate(n: usize) -> Vec<u8> {
    format!(r#"{{"model":"m","prompt_template":"{{{{input}}}}","parameters":{{"temperature":0.1,"max_tokens":16}},"n":{n}}}"#).into_bytes()
}

/// Submits `candidate(n)` to `pipeline` and follows it to its end: the
/// release's id and its last phase.
async fn run(c: &mut Client, pipeline: &str, n: usize) -> (u64, i32) {
    let id = c
        .releases
        .submit_release(proto::SubmitReleaseRequest {
            pipeline: pipeline.into(),
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
    let mut last = 0;
    while let Some(e) = events.message().await.expect("event") {
        last = e.phase;
    }
    (id, last)
}

async fn release(c: &mut Client, pipeline: &str, n: usize) -> u64 {
    let (id, last) = run(c, pipeline, n).await;
    assert_eq!(
        last,
        proto::ReleasePhase::Succeeded as i32,
        "release {id} did not succeed"
    );
    id
}

fn summary(name: &str, mut xs: Vec<Duration>) {
    xs.sort();
    let pct = |p: f64| xs[((xs.len() as f64 * p) as usize).min(xs.len() - 1)];
    println!(
        "{name:<58} median {:>9.3} ms   p90 {:>9.3} ms   (n={})",
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.9).as_secs_f64() * 1e3,
        xs.len()
    );
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("bench.toml"), PIPELINE).expect("write pipeline");
    std::fs::write(dir.path().join("direct.toml"), DIRECT).expect("write pipeline");
    std::fs::write(dir.path().join("sleepers.toml"), sleepers_pipeline()).expect("write pipeline");
    let plugin_dir = dir.path().join("plugins");
    std::fs::create_dir_all(&plugin_dir).expect("plugin dir");
    std::fs::copy(
        gatehouse::plugins::builtin::HOSTILE_GATE_PATH,
        plugin_dir.join("hostile-gate.wasm"),
    )
    .expect("copy hostile-gate");
    // It asks for every capability; the sleep needs none of them.
    let granted = dir.path().join("granted");
    std::fs::create_dir_all(&granted).expect("granted dir");
    std::fs::write(
        plugin_dir.join("hostile-gate.toml"),
        format!(
            "capabilities = [\"log\", \"clock\", \"files\", \"http\"]\n[[files]]\nhost = {:?}\nguest = \"/data\"\n[http]\nallow_hosts = [\"127.0.0.1:9\"]\n",
            granted.display().to_string()
        ),
    )
    .expect("manifest");
    let settings = Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().join("data"),
        pipelines: vec![
            dir.path().join("bench.toml"),
            dir.path().join("direct.toml"),
            dir.path().join("sleepers.toml"),
        ],
        plugin_dir: Some(plugin_dir),
        ..Settings::default()
    };
    let running = server::start(&settings).await.expect("start daemon");
    let token = running.generated_admin_token.clone().expect("token");
    let addr = format!("http://{}", running.addr);
    let mut c = client::connect(&addr, Some(&token)).await.expect("connect");

    // Warm up: connections, plugin instances, sled trees.
    for n in 0..20 {
        release(&mut c, "bench", 1_000_000 + n).await;
    }
    let mut walls = Vec::with_capacity(RELEASES);
    for n in 0..RELEASES {
        let t = Instant::now();
        release(&mut c, "bench", n).await;
        walls.push(t.elapsed());
    }
    let idle = median(&walls);
    summary("submit → Succeeded, 3 stages × 1 wasm gate", walls);

    // 100 watchers of production, each on its own stream.
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(usize, u64, Instant)>();
    for w in 0..WATCHERS {
        let mut wc = client::connect(&addr, Some(&token)).await.expect("connect");
        let tx = seen_tx.clone();
        tokio::spawn(async move {
            let mut s = wc
                .environments
                .watch_config(proto::WatchConfigRequest {
                    environment: "production".into(),
                    after_generation: 0,
                })
                .await
                .expect("watch config")
                .into_inner();
            while let Ok(Some(cfg)) = s.message().await {
                if tx.send((w, cfg.generation, Instant::now())).is_err() {
                    break;
                }
            }
        });
    }
    let generation = |c: &mut Client| {
        let mut c = c.clone();
        async move {
            c.environments
                .get_config(proto::GetConfigRequest {
                    environment: "production".into(),
                })
                .await
                .expect("get config")
                .into_inner()
                .generation
        }
    };
    // Every watcher first receives the current state.
    let start_gen = generation(&mut c).await;
    wait_all(&mut seen_rx, start_gen).await;

    let mut promote = Vec::new();
    let mut rollback = Vec::new();
    for n in 0..CHANGES {
        let t = Instant::now();
        release(&mut c, "direct", 2_000_000 + n).await;
        let g = generation(&mut c).await;
        promote.push(wait_all(&mut seen_rx, g).await - t);

        let t = Instant::now();
        let r = c
            .environments
            .rollback_environment(proto::RollbackEnvironmentRequest {
                environment: "production".into(),
                reason: "bench".into(),
            })
            .await
            .expect("rollback")
            .into_inner();
        let g = r.config.expect("config").generation;
        rollback.push(wait_all(&mut seen_rx, g).await - t);
    }
    summary(
        "promotion (submit, 1 stage, no gate) → 100 watchers saw it",
        promote,
    );
    summary("rollback RPC → 100 watchers saw it", rollback);

    // Sleeper releases back to back, so 64 gates are always asleep.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sleeping = {
        let mut c = c.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 3_000_000;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let (id, last) = run(&mut c, "sleepers", n).await;
                // Failed at its gates' deadlines, so they did sleep.
                assert_eq!(
                    last,
                    proto::ReleasePhase::Failed as i32,
                    "sleeper release {id} did not fail"
                );
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut busy = Vec::with_capacity(BUSY_RELEASES);
    for n in 0..BUSY_RELEASES {
        let t = Instant::now();
        release(&mut c, "bench", 4_000_000 + n).await;
        busy.push(t.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let busy_median = median(&busy);
    summary(
        &format!("submit → Succeeded beside {SLEEPERS} gates asleep in a host call"),
        busy,
    );
    println!(
        "{:<58} {:.2}× the idle median",
        "  ratio, beside the sleepers / idle",
        busy_median.as_secs_f64() / idle.as_secs_f64()
    );
    sleeping
        .await
        .expect("the sleeper releases ran as intended");
    running.stop().await.expect("stop");
}

fn median(xs: &[Duration]) -> Duration {
    let mut xs = xs.to_vec();
    xs.sort();
    xs[xs.len() / 2]
}

/// Waits until every watcher reported generation `g` or later; returns when
/// the last one did.
async fn wait_all(rx: &mut mpsc::UnboundedReceiver<(usize, u64, Instant)>, g: u64) -> Instant {
    let mut seen = [false; WATCHERS];
    let mut count = 0;
    let mut last = Instant::now();
    while count < WATCHERS {
        let (w, gen_seen, at) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("watchers stalled")
            .expect("watchers gone");
        if gen_seen >= g && !seen[w] {
            seen[w] = true;
            count += 1;
            last = at;
        }
    }
    last
}
