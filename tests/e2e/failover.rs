//! Failover: `gatehouse serve` processes sharing a prefix of a real 3-member
//! etcd cluster (Debian's `etcd-server`) on loopback. One leads; the others
//! serve reads, keep their watchers up with what the leader writes, and send
//! writers to the leader with UNAVAILABLE. The soak kills the leader again
//! and again (SIGKILL, and a SIGSTOP past its lease), and an etcd member,
//! while releases and a canary run, and then checks that nothing was lost
//! or done twice.

use crate::common::*;
use crate::etcd_store::Cluster;
use crate::metrics::free_port;
use gatehouse::client::{Failover, addresses};
use gatehouse::proto::{self, ReleasePhase};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const TOKEN: &str = "failover-admin-token-3f9c1e";
/// Short, so the soak sees many takeovers in its two minutes.
const LEASE_TTL_S: u64 = 2;

/// One daemon's place: a fixed port and data directory, so a daemon killed
/// and started again comes back where clients look for it.
struct Slot {
    name: String,
    port: u16,
    http: u16,
    dir: PathBuf,
    config: PathBuf,
    /// stderr of every start, appended.
    log: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl Slot {
    fn new(root: &Path, name: &str, endpoints: &[String], prefix: &str, args: &[String]) -> Slot {
        let (port, http) = (free_port(), free_port());
        let endpoints = endpoints
            .iter()
            .map(|e| format!("{e:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let config = write(
            root,
            &format!("{name}.toml"),
            &format!(
                "http_listen = \"127.0.0.1:{http}\"\n\
                 store = {{ etcd = {{ endpoints = [{endpoints}], prefix = {prefix:?}, lease_ttl_s = {LEASE_TTL_S} }} }}\n\
                 [[tokens]]\nname = \"admin\"\nrole = \"admin\"\nsha256 = \"{}\"\n",
                hex::encode(gatehouse::api::auth::hash_token(TOKEN))
            ),
        );
        Slot {
            name: name.into(),
            port,
            http,
            dir: root.join(name),
            config,
            log: root.join(format!("{name}.log")),
            args: args.to_vec(),
            child: None,
        }
    }

    fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts `gatehouse serve` here and waits (at most 60 s) until it says
    /// it is ready, as leader or follower; returns that line.
    fn start(&mut self) -> String {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the daemon's log");
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--data-dir")
            .arg(&self.dir)
            .arg("--config")
            .arg(&self.config)
            .args(&self.args)
            .env("GATEHOUSE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn gatehouse serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // Keeps reading after the ready line, so the daemon never
                // blocks on a full pipe.
                let _ = tx.send(line);
            }
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("{} did not get ready within 60 s", self.name));
            if line.starts_with("gatehouse ready") {
                return line;
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill {signal} {}", self.pid());
    }

    /// Waits (at most `limit`) for the daemon to exit on its own.
    fn exits_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut()?.try_wait().expect("wait") {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn metrics(&self) -> String {
        scrape(&format!("http://127.0.0.1:{}/metrics", self.http), TOKEN)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The cluster as `slot` sees it.
async fn cluster_of(addr: &str) -> proto::Cluster {
    gatehouse::client::connect(addr, Some(TOKEN))
        .await
        .expect("connect")
        .cluster
        .get_cluster(proto::GetClusterRequest {})
        .await
        .expect("get cluster")
        .into_inner()
}

/// Which slot leads now, waiting (at most 15 s) until one does and it has
/// started leading.
async fn leader(slots: &[Slot]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        for (i, s) in slots.iter().enumerate() {
            if s.child.is_none() {
                continue;
            }
            let Ok(mut c) = gatehouse::client::connect(&s.addr(), Some(TOKEN)).await else {
                continue;
            };
            if let Ok(r) = c.cluster.get_cluster(proto::GetClusterRequest {}).await
                && r.get_ref().answered_by_leader
            {
                return i;
            }
        }
        assert!(Instant::now() < deadline, "no daemon leads within 15 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn pipeline(root: &Path, gate_ms: u64) -> PathBuf {
    let gate = format!(
        "  [[environment.gate]]\n  plugin = \"chaos-gate\"\n  timeout_ms = 20000\n  fuel = 1000000000000\n  params = {{ mode = \"slow\", delay_ms = {gate_ms} }}\n"
    );
    write(
        root,
        "flow.toml",
        &format!(
            "name = \"flow\"\n[[environment]]\nname = \"dev\"\n{gate}[[environment]]\nname = \"staging\"\n{gate}[[environment]]\nname = \"production\"\n{gate}"
        ),
    )
}

fn slots(root: &Path, cluster: &Cluster, prefix: &str, n: usize, args: &[String]) -> Vec<Slot> {
    (0..n)
        .map(|i| Slot::new(root, &format!("d{i}"), &cluster.endpoints, prefix, args))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_serve_reads_send_writers_to_the_leader_and_take_over() {
    let root = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(root.path(), 3);
    let plugins = test_plugin_dir(root.path());
    let flow = pipeline(root.path(), 300);
    let args: Vec<String> = [
        "--pipeline",
        flow.to_str().unwrap(),
        "--plugin-dir",
        plugins.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let mut slots = slots(root.path(), &cluster, "/reads/", 2, &args);
    let first = slots[0].start();
    assert_eq!(first, "gatehouse ready: plugins installed");
    let second = slots[1].start();
    assert!(
        second.contains("following the leader at") && second.contains(&slots[0].addr()),
        "{second}"
    );
    let (a, b) = (slots[0].addr(), slots[1].addr());

    // A write sent to the follower: UNAVAILABLE, naming the leader.
    let mut follower = gatehouse::client::connect(&b, Some(TOKEN)).await.unwrap();
    let refused = follower
        .releases
        .submit_release(proto::SubmitReleaseRequest {
            pipeline: "flow".into(),
            candidate: candidate(1),
            ..Default::default()
        })
        .await
        .expect_err("a follower does not take writes");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains(&a), "{}", refused.message());
    assert_eq!(
        refused.metadata().get("gatehouse-leader").unwrap(),
        a.as_str()
    );

    // A client with both addresses (the follower first) gets there anyway;
    // the follower's watchers see the change the leader made.
    let mut watch = follower
        .environments
        .watch_config(proto::WatchConfigRequest {
            environment: "production".into(),
            after_generation: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(watch.message().await.unwrap().unwrap().generation, 0);
    let clients = Failover::new(addresses(&format!("{b},{a}")), Some(TOKEN));
    let r = clients
        .call(|mut c| async move {
            c.releases
                .submit_release(proto::SubmitReleaseRequest {
                    pipeline: "flow".into(),
                    candidate: candidate(1),
                    idempotency_key: "reads-1".into(),
                    ..Default::default()
                })
                .await
        })
        .await
        .expect("submitted through the leader")
        .into_inner()
        .release
        .unwrap();
    let mut stream = follower
        .releases
        .watch_release(proto::WatchReleaseRequest { id: r.id })
        .await
        .expect("watch the release on the follower")
        .into_inner();
    let mut kinds = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("the follower streams the leader's events")
    {
        kinds.push(e.kind.clone());
        if e.kind == "release.phase"
            && ReleasePhase::try_from(e.phase) == Ok(ReleasePhase::Succeeded)
        {
            break;
        }
    }
    assert!(
        kinds.iter().filter(|k| *k == "env.applied").count() == 3,
        "{kinds:?}"
    );
    let changed = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("the follower's watcher hears of the change")
        .unwrap()
        .unwrap();
    assert_eq!(
        changed.active.unwrap().digest,
        gatehouse::digest::Digest::of(&candidate(1)).hex()
    );
    assert_eq!(
        phase(&get(&mut follower, r.id).await),
        ReleasePhase::Succeeded
    );
    let mut leader_client = gatehouse::client::connect(&a, Some(TOKEN)).await.unwrap();
    assert_eq!(
        events_of(&mut follower).await,
        events_of(&mut leader_client).await,
        "the follower exports the same audit log"
    );

    // cluster status, from either daemon, and leadership in /metrics.
    let out = Command::new(BIN)
        .args([
            "cluster",
            "status",
            "-o",
            "json",
            "--addr",
            &format!("{b},{a}"),
        ])
        .args(["--token", TOKEN])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["store"], "etcd");
    assert_eq!(status["members"].as_array().unwrap().len(), 2, "{status}");
    let leading = status["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["leader"] == true)
        .expect("a leader among the members");
    assert_eq!(leading["grpc"], a.as_str());
    let left = status["lease_left_s"].as_i64().unwrap();
    assert!((0..=LEASE_TTL_S as i64).contains(&left), "{status}");
    let endpoints = status["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 3);
    assert!(endpoints.iter().all(|e| e["healthy"] == true), "{status}");
    assert_eq!(
        endpoints
            .iter()
            .filter(|e| e["raft_leader"] == true)
            .count(),
        1
    );
    let text = Command::new(BIN)
        .args(["cluster", "status", "--addr", &b, "--token", TOKEN])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("leader   {a}")), "{text}");
    assert!(slots[0].metrics().contains("\ngatehouse_leader 1\n"));
    assert!(slots[1].metrics().contains("\ngatehouse_leader 0\n"));

    // The leader dies mid-release: the follower takes over within the
    // lease and a second, and finishes the release.
    let r2 = clients
        .call(|mut c| async move {
            c.releases
                .submit_release(proto::SubmitReleaseRequest {
                    pipeline: "flow".into(),
                    candidate: candidate(2),
                    idempotency_key: "reads-2".into(),
                    ..Default::default()
                })
                .await
        })
        .await
        .unwrap()
        .into_inner()
        .release
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let killed_at = now_ms();
    slots[0].kill();
    let done = wait_for(&mut follower, r2.id, Duration::from_secs(30), |r| {
        r.terminal
    })
    .await;
    assert_eq!(phase(&done), ReleasePhase::Succeeded, "{}", done.reason);
    let log = events(&mut follower).await;
    let took = log
        .iter()
        .find(|e| e.kind == "daemon.started" && e.at_ms >= killed_at)
        .expect("the new leader's start is in the log");
    assert!(took.message.contains("took the lead"), "{}", took.message);
    assert!(
        took.at_ms - killed_at < (LEASE_TTL_S * 1000 + 1000) as i64,
        "took over {} ms after the kill",
        took.at_ms - killed_at
    );
    let resumed = log
        .iter()
        .find(|e| e.kind == "release.resumed" && e.release_id == r2.id)
        .expect("the release resumed");
    assert!(
        resumed.message.contains("by a new leader"),
        "{}",
        resumed.message
    );
    assert!(slots[1].metrics().contains("\ngatehouse_leader 1\n"));
    // Its first daemon back follows the new leader.
    let back = slots[0].start();
    assert!(back.contains(&b), "{back}");
}

async fn events_of(c: &mut gatehouse::client::Client) -> Vec<(u64, String, String)> {
    events(c)
        .await
        .into_iter()
        .map(|e| (e.seq, e.kind, e.hash))
        .collect()
}
