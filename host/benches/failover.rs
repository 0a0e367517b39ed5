//! Prints figures for daemons that keep their state in etcd, beside one on
//! sled, all in this process, against a real 3-member etcd cluster on
//! loopback (Debian's `etcd-server`, found on the PATH):
//!
//! - submit → Succeeded, 3 environments × 1 wasm gate, one release at a
//!   time, on sled and on etcd taking turns, and the ratio of the medians;
//! - a rollback (the drill: the live configuration as a canary, then the
//!   rollback decision and the path a failed canary takes) → the restored
//!   configuration at watchers: the daemon's own figure from the decision
//!   to its watcher, and from the decision to a `WatchConfig` subscriber of
//!   the leader and of a follower (which hears of it through etcd's watch).
//!
//! Run: `cargo bench -p gatehouse --features etcd --bench failover`. Medians
//! and p90 over the iterations below; the machine is shared, so compare the
//! figures of one run.

// The tests' launcher; they use more of it than this benchmark does.
#[path = "../../tests/e2e/etcd_cluster.rs"]
#[allow(dead_code)]
mod etcd_cluster;

use gatehouse::client::{self, Client};
use gatehouse::proto;
use gatehouse::server::{self, Settings};
use gatehouse::store::{EtcdSettings, StoreSettings};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;

const RELEASES: usize = 100;
const DRILLS: usize = 60;

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

/// Where the drills run: something live, no gate.
const EDGE: &str = "name = \"edge\"\n[[environment]]\nname = \"edge\"\n";

fn candidate(n: usize) -> Vec<u8> {
    format!(r#"{{"model":"m","prompt_template":"{{{{input}}}}","parameters":{{"temperature":0.1,"max_tokens":16}},"n":{n}}}"#).into_bytes()
}

/// Submits `candidate(n)` and follows it until it succeeds.
async fn release(c: &mut Client, pipeline: &str, n: usize) {
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
    while let Some(e) = events.message().await.expect("event") {
        if e.kind == "release.phase"
            && matches!(
                proto::ReleasePhase::try_from(e.phase),
                Ok(proto::ReleasePhase::Succeeded | proto::ReleasePhase::Failed)
            )
        {
            assert_eq!(
                e.phase,
                proto::ReleasePhase::Succeeded as i32,
                "{}",
                e.message
            );
            return;
        }
    }
    panic!("release {id}: the stream ended before it did");
}

fn summary(name: &str, xs: &mut [Duration]) -> Duration {
    xs.sort();
    let pct = |p: f64| xs[((xs.len() as f64 * p) as usize).min(xs.len() - 1)];
    println!(
        "{name:<62} median {:>8.3} ms   p90 {:>8.3} ms   (n={})",
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.9).as_secs_f64() * 1e3,
        xs.len()
    );
    pct(0.5)
}

/// A `WatchConfig` subscriber of `env`: every generation it is told, and
/// when (by the clock the daemons' decisions are stamped with).
async fn subscribe(c: &Client, env: &str) -> mpsc::UnboundedReceiver<(u64, SystemTime)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut s = c
        .environments
        .clone()
        .watch_config(proto::WatchConfigRequest {
            environment: env.into(),
            after_generation: 0,
        })
        .await
        .expect("watch config")
        .into_inner();
    tokio::spawn(async move {
        while let Ok(Some(cfg)) = s.message().await {
            if cfg.canary.is_none() && tx.send((cfg.generation, SystemTime::now())).is_err() {
                return;
            }
        }
    });
    rx
}

/// When the subscriber was told generation `g` (or a later one).
async fn seen(rx: &mut mpsc::UnboundedReceiver<(u64, SystemTime)>, g: u64) -> SystemTime {
    loop {
        let (got, at) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("the subscriber stalled")
            .expect("the subscriber ended");
        if got >= g {
            return at;
        }
    }
}

async fn drill(c: &mut Client) -> proto::RunDrillResponse {
    c.canaries
        .run_drill(proto::RunDrillRequest {
            environment: "edge".into(),
            force: false,
        })
        .await
        .expect("drill")
        .into_inner()
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let etcd = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("etcd"))
        .find(|p| p.is_file())
        .expect("etcd on the PATH: apt-get install --no-install-recommends etcd-server");
    let cluster = etcd_cluster::Cluster::start(&etcd, dir.path(), 3);
    std::fs::write(dir.path().join("bench.toml"), PIPELINE).expect("write pipeline");
    std::fs::write(dir.path().join("edge.toml"), EDGE).expect("write pipeline");
    let settings = |name: &str, store: StoreSettings| Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().join(name),
        store,
        pipelines: vec![dir.path().join("bench.toml"), dir.path().join("edge.toml")],
        ..Settings::default()
    };
    let on_etcd = StoreSettings::Etcd(EtcdSettings {
        endpoints: cluster.endpoints.clone(),
        prefix: "/bench/".into(),
        lease_ttl_s: 5,
        advertise: None,
    });
    let sled = server::start(&settings("sled", StoreSettings::Sled))
        .await
        .expect("start the daemon on sled");
    let leader = server::start(&settings("leader", on_etcd.clone()))
        .await
        .expect("start the daemon on etcd");
    let follower = server::start(&settings("follower", on_etcd))
        .await
        .expect("start a second daemon on etcd");
    assert!(leader.daemon.leads() && !follower.daemon.leads());
    let connect = async |running: &server::Running, token: &str| {
        client::connect(&format!("http://{}", running.addr), Some(token))
            .await
            .expect("connect")
    };
    let sled_token = sled.generated_admin_token.clone().expect("token");
    let etcd_token = leader.generated_admin_token.clone().expect("token");
    let mut s = connect(&sled, &sled_token).await;
    let mut l = connect(&leader, &etcd_token).await;
    let f = connect(&follower, &etcd_token).await;

    // Warm up, then take turns so both meet the same machine.
    for n in 0..10 {
        release(&mut s, "bench", 1_000_000 + n).await;
        release(&mut l, "bench", 1_000_000 + n).await;
    }
    let (mut on_sled, mut on_etcd) = (Vec::new(), Vec::new());
    for n in 0..RELEASES {
        let t = Instant::now();
        release(&mut s, "bench", n).await;
        on_sled.push(t.elapsed());
        let t = Instant::now();
        release(&mut l, "bench", n).await;
        on_etcd.push(t.elapsed());
    }
    let sled_median = summary(
        "submit → Succeeded, 3 stages × 1 wasm gate, sled",
        &mut on_sled,
    );
    let etcd_median = summary(
        "submit → Succeeded, 3 stages × 1 wasm gate, etcd",
        &mut on_etcd,
    );
    println!(
        "{:<62} {:.2}×",
        "  ratio of the medians, etcd / sled",
        etcd_median.as_secs_f64() / sled_median.as_secs_f64()
    );

    release(&mut s, "edge", 2_000_000).await;
    release(&mut l, "edge", 2_000_000).await;
    let mut at_leader = subscribe(&l, "edge").await;
    let mut at_follower = subscribe(&f, "edge").await;
    let (mut sled_own, mut etcd_own, mut to_leader, mut to_follower) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..DRILLS {
        let r = drill(&mut s).await;
        sled_own.push(Duration::from_micros(r.recovery_us));
        let r = drill(&mut l).await;
        etcd_own.push(Duration::from_micros(r.recovery_us));
        let decided = SystemTime::UNIX_EPOCH + Duration::from_micros(r.decided_at_us as u64);
        let after = |at: SystemTime| at.duration_since(decided).unwrap_or_default();
        to_leader.push(after(seen(&mut at_leader, r.generation).await));
        to_follower.push(after(seen(&mut at_follower, r.generation).await));
    }
    summary(
        "rollback decision → restored, the daemon's watcher, sled",
        &mut sled_own,
    );
    summary(
        "rollback decision → restored, the daemon's watcher, etcd",
        &mut etcd_own,
    );
    summary(
        "rollback decision → WatchConfig subscriber of the leader, etcd",
        &mut to_leader,
    );
    summary(
        "rollback decision → WatchConfig subscriber of a follower, etcd",
        &mut to_follower,
    );
    drop(follower);
    drop(leader);
    drop(sled);
    drop(cluster);
}
