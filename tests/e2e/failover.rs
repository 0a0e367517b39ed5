//! Failover: `gatehouse serve` processes sharing a prefix of a real 3-member
//! etcd cluster (Debian's `etcd-server`) on loopback. One leads; the others
//! serve reads, keep their watchers up with what the leader writes, and send
//! writers to the leader with UNAVAILABLE. The soak kills the leader again
//! and again (SIGKILL, and a SIGSTOP past its lease), and an etcd member,
//! while releases and a canary run, and then checks that nothing was lost
//! or done twice.

use crate::common::*;
use crate::etcd_store::{Cluster, etcd};
use crate::metrics::free_port;
use gatehouse::client::{Failover, addresses};
use gatehouse::proto::{self, ReleasePhase};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::task::JoinHandle;

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
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            eprintln!("--- {} (last lines of its log)", self.name);
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// A client of the daemon at `addr` whose calls give up after a second (a
/// stopped daemon accepts connections but never answers).
async fn quick(addr: &str) -> Option<gatehouse::client::Client> {
    gatehouse::client::connect_with(
        addr,
        Some(TOKEN),
        Some(Duration::from_secs(1)),
        &Default::default(),
    )
    .await
    .ok()
}

/// Which running slot leads now, and its member id, waiting (at most 15 s)
/// until one does and has started leading.
async fn leader(slots: &[Slot], skip: Option<usize>) -> (usize, String) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        for (i, s) in slots.iter().enumerate() {
            if s.child.is_none() || skip == Some(i) {
                continue;
            }
            let Some(mut c) = quick(&s.addr()).await else {
                continue;
            };
            if let Ok(r) = c.cluster.get_cluster(proto::GetClusterRequest {}).await
                && r.get_ref().answered_by_leader
            {
                return (i, r.into_inner().answered_by);
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
    let cluster = Cluster::start(&etcd(), root.path(), 3);
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
    // OpenFeature providers syncing from the follower get the flag too.
    let mut flags = gatehouse::flagd::flag_sync_service_client::FlagSyncServiceClient::new(
        tonic::transport::Endpoint::from_shared(b.clone())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let mut fetch = tonic::Request::new(gatehouse::flagd::FetchAllFlagsRequest::default());
    fetch
        .metadata_mut()
        .insert("flagd-selector", "production".parse().unwrap());
    fetch
        .metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let set = flags
        .fetch_all_flags(fetch)
        .await
        .expect("flags from the follower")
        .into_inner()
        .flag_configuration;
    assert!(
        set.contains(&gatehouse::digest::Digest::of(&candidate(1)).hex()),
        "{set}"
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

    // A graceful stop hands the lead over at once: the leader gives up its
    // lease as it exits, rather than letting the others wait it out (the
    // lease, kept alive a moment ago, would hold for over a second more).
    slots[1].signal("-TERM");
    let stopped = slots[1]
        .exits_within(Duration::from_secs(15))
        .expect("SIGTERM stops the daemon");
    assert!(stopped.success(), "{stopped:?}");
    let exited = Instant::now();
    let (next, _) = leader(&slots, None).await;
    assert_eq!(next, 0);
    assert!(
        exited.elapsed() < Duration::from_secs(1),
        "the lead passed {:?} after the graceful stop",
        exited.elapsed()
    );
}

async fn events_of(c: &mut gatehouse::client::Client) -> Vec<(u64, String, String)> {
    events(c)
        .await
        .into_iter()
        .map(|e| (e.seq, e.kind, e.hash))
        .collect()
}

const JUDGE: &str = "\
alpha = 0.001
[metrics.error_rate]
critical = true
";

const EDGE: &str = "\
name = \"edge\"
[[environment]]
name = \"edge\"
  [environment.canary]
  steps = [20, 50]
  step_ms = 1500
  min_samples = 60
  max_extensions = 40
  config = \"canary.toml\"
";

/// Releases the soak runs through `flow`, one every `SUBMIT_EVERY`.
const RELEASES: u32 = 30;
const SUBMIT_EVERY: Duration = Duration::from_millis(2500);
/// SIGKILLs of the leader.
const KILLS: usize = 7;

/// When a leader was SIGKILLed, by the test's clock (ms since the epoch).
struct Kill {
    at_ms: i64,
    slot: usize,
}

/// A service of the canary environment reporting what each arm did, to
/// whichever daemon leads: the candidate errs on 30% of requests.
fn feeder(clients: Arc<Failover>, release: u64, stop: Arc<AtomicBool>) -> JoinHandle<u64> {
    tokio::spawn(async move {
        let mut sent = 0u64;
        let mut n = 0u64;
        while !stop.load(Ordering::SeqCst) {
            let mut observations = Vec::new();
            for i in 0..50u64 {
                n += 1;
                let canary = i % 5 == 0;
                let error_every = if canary { 3 } else { 100 };
                observations.push(proto::Observation {
                    arm: if canary {
                        proto::Arm::Canary
                    } else {
                        proto::Arm::Baseline
                    } as i32,
                    latency_ms: 40.0 + (n % 7) as f64,
                    error: n.is_multiple_of(error_every),
                    ..Default::default()
                });
            }
            let batch = proto::ObservationBatch {
                environment: "edge".into(),
                release_id: release,
                observations,
            };
            let reported = clients
                .call(|mut c| {
                    let batch = batch.clone();
                    async move {
                        c.canaries
                            .report_observations(tokio_stream::iter([batch]))
                            .await
                    }
                })
                .await;
            if let Ok(r) = reported {
                sent += r.get_ref().accepted;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        sent
    })
}

/// A service following production through any daemon of the list: when its
/// stream breaks it reconnects to the next one, asking only for what is
/// newer than the generation it has. Returns every generation it was told.
fn subscriber(addrs: Vec<String>, stop: Arc<AtomicBool>) -> JoinHandle<Vec<u64>> {
    tokio::spawn(async move {
        let mut seen: Vec<u64> = Vec::new();
        let mut next = 0usize;
        while !stop.load(Ordering::SeqCst) {
            let addr = &addrs[next % addrs.len()];
            next += 1;
            let Some(mut c) = quick(addr).await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let after = seen.last().copied().unwrap_or(0);
            let Ok(stream) = c
                .environments
                .watch_config(proto::WatchConfigRequest {
                    environment: "production".into(),
                    after_generation: after,
                })
                .await
            else {
                continue;
            };
            let mut stream = stream.into_inner();
            loop {
                let got = tokio::time::timeout(Duration::from_millis(500), stream.message()).await;
                match got {
                    Ok(Ok(Some(c))) => seen.push(c.generation),
                    Ok(_) => break,
                    Err(_) if stop.load(Ordering::SeqCst) => return seen,
                    Err(_) => {}
                }
            }
        }
        seen
    })
}

/// Whether a release of `flow` is under way.
async fn open_release(clients: &Failover) -> bool {
    clients
        .call(|mut c| async move {
            c.releases
                .list_releases(proto::ListReleasesRequest {
                    pipeline: "flow".into(),
                    limit: 3,
                })
                .await
        })
        .await
        .is_ok_and(|r| r.get_ref().releases.iter().any(|r| !r.terminal))
}

async fn release_of(clients: &Failover, id: u64) -> proto::Release {
    clients
        .call(|mut c| async move {
            c.releases
                .get_release(proto::GetReleaseRequest { id })
                .await
        })
        .await
        .expect("get release")
        .into_inner()
}

async fn submit_keyed(clients: &Failover, pipeline: &str, bytes: Vec<u8>, key: String) -> u64 {
    clients
        .call(|mut c| {
            let (pipeline, bytes, key) = (pipeline.to_string(), bytes.clone(), key.clone());
            async move {
                c.releases
                    .submit_release(proto::SubmitReleaseRequest {
                        pipeline,
                        candidate: bytes,
                        idempotency_key: key,
                        ..Default::default()
                    })
                    .await
            }
        })
        .await
        .expect("submit")
        .into_inner()
        .release
        .unwrap()
        .id
}

fn jitter(min_ms: u64, spread_ms: u64) -> Duration {
    Duration::from_millis(min_ms + fastrand::u64(0..spread_ms))
}

fn terminal(phase: i32) -> bool {
    matches!(
        ReleasePhase::try_from(phase),
        Ok(ReleasePhase::Succeeded
            | ReleasePhase::Failed
            | ReleasePhase::RolledBack
            | ReleasePhase::Aborted)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_leaders_killed_and_paused_while_releases_run_nothing_lost_or_doubled() {
    let root = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(&etcd(), root.path(), 3);
    let plugins = test_plugin_dir(root.path());
    let flow = pipeline(root.path(), 400);
    write(root.path(), "canary.toml", JUDGE);
    let edge = write(root.path(), "edge.toml", EDGE);
    // A release that waits for an approval the whole soak: every new
    // leader has it to resume.
    let held = write(
        root.path(),
        "held.toml",
        "name = \"held\"\n[[environment]]\nname = \"vault\"\napprovals = 1\n",
    );
    let args: Vec<String> = [
        "--pipeline",
        flow.to_str().unwrap(),
        "--pipeline",
        edge.to_str().unwrap(),
        "--pipeline",
        held.to_str().unwrap(),
        "--plugin-dir",
        plugins.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    const PREFIX: &str = "/soak/";
    let mut slots = slots(root.path(), &cluster, PREFIX, 3, &args);
    for s in &mut slots {
        s.start();
    }
    let addrs: Vec<String> = slots.iter().map(Slot::addr).collect();
    let clients = Arc::new(Failover::new(addrs.clone(), Some(TOKEN)));
    let stop = Arc::new(AtomicBool::new(false));
    let subscribed = subscriber(addrs.clone(), stop.clone());

    // What the canary compares against.
    let base = submit_keyed(&clients, "edge", candidate(1000), "edge-base".into()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !release_of(&clients, base).await.terminal {
        assert!(
            Instant::now() < deadline,
            "the canary's baseline did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let waiting = submit_keyed(&clients, "held", candidate(3000), "held".into()).await;

    // The releases, one at a time, each under its own idempotency key so
    // that a submit retried on the next leader does not start another.
    let submitter = {
        let clients = clients.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..RELEASES {
                ids.push(
                    submit_keyed(&clients, "flow", candidate(i + 1), format!("soak-{i}")).await,
                );
                tokio::time::sleep(SUBMIT_EVERY).await;
            }
            ids
        })
    };

    let mut kills: Vec<Kill> = Vec::new();
    let kill_leader = async |slots: &mut Vec<Slot>, kills: &mut Vec<Kill>| {
        // Killed while a release is open (it has something to resume).
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until && !open_release(&clients).await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (i, _) = leader(slots, None).await;
        kills.push(Kill {
            at_ms: now_ms(),
            slot: i,
        });
        slots[i].kill();
        tokio::time::sleep(Duration::from_secs(1)).await;
        slots[i].start();
    };

    // The canary, and the leader killed while it runs: its observations,
    // held in memory, are gone with it.
    tokio::time::sleep(jitter(3000, 2000)).await;
    let canary = submit_keyed(&clients, "edge", candidate(2000), "edge-canary".into()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = release_of(&clients, canary).await;
        if ReleasePhase::try_from(r.phase) == Ok(ReleasePhase::Canary) {
            break;
        }
        assert!(!r.terminal, "the canary ended before it ran: {}", r.reason);
        assert!(Instant::now() < deadline, "the canary did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    kill_leader(&mut slots, &mut kills).await;
    let fed = feeder(clients.clone(), canary, stop.clone());

    // More leaders killed at random moments; an etcd member down for a
    // while among them.
    for k in 1..KILLS {
        tokio::time::sleep(jitter(3000, 4000)).await;
        kill_leader(&mut slots, &mut kills).await;
        // Between takeovers: when etcd loses its own leader, it renews
        // every lease, which would stretch a takeover under way.
        if k == 1 || k == 4 {
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        if k == 1 {
            cluster.kill(2);
        }
        if k == 4 {
            cluster.restart(2);
            cluster.healthy(2);
        }
    }

    // The leader paused past its lease: another takes over, and when the
    // paused one wakes, its writes are refused and it exits.
    tokio::time::sleep(jitter(2000, 2000)).await;
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until && !open_release(&clients).await {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (paused, paused_id) = leader(&slots, None).await;
    slots[paused].signal("-STOP");
    let (_, successor) = leader(&slots, Some(paused)).await;
    assert_ne!(successor, paused_id);
    let (fence, _) = cluster
        .revisions(&format!("{PREFIX}leader"))
        .expect("a leader key");
    tokio::time::sleep(Duration::from_millis(500)).await;
    slots[paused].signal("-CONT");
    let exited = slots[paused]
        .exits_within(Duration::from_secs(15))
        .expect("the paused ex-leader exits once it finds its lease gone");
    assert_eq!(exited.code(), Some(75), "{exited:?}");
    let marker = cluster.revisions(&format!("{PREFIX}m/{paused_id}"));
    slots[paused].start();

    // Everything ends.
    let ids = submitter.await.unwrap();
    clients
        .call(|mut c| async move {
            c.releases
                .approve_stage(proto::ApproveStageRequest {
                    id: waiting,
                    environment: "vault".into(),
                    comment: "after the soak".into(),
                })
                .await
        })
        .await
        .expect("approve the held release");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut open: BTreeSet<u64> = ids.iter().copied().chain([canary, waiting]).collect();
    while !open.is_empty() {
        assert!(
            Instant::now() < deadline,
            "releases {open:?} did not finish within 120 s of the last submit"
        );
        for id in open.clone() {
            if release_of(&clients, id).await.terminal {
                open.remove(&id);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let observed = fed.await.unwrap();
    let generations = subscribed.await.unwrap();

    let (lead, _) = leader(&slots, None).await;
    let mut c = gatehouse::client::connect(&slots[lead].addr(), Some(TOKEN))
        .await
        .unwrap();
    let log = events(&mut c).await;
    let detail = |e: &proto::Event| -> serde_json::Value {
        serde_json::from_str(&e.detail_json).unwrap_or_default()
    };

    // Every release terminal, with exactly one terminal event.
    let mut terminal_events: BTreeMap<u64, usize> = BTreeMap::new();
    for e in &log {
        if e.kind == "release.phase" && terminal(e.phase) {
            *terminal_events.entry(e.release_id).or_default() += 1;
        }
    }
    for id in ids.iter().chain([&base, &canary, &waiting]) {
        assert_eq!(
            terminal_events.get(id),
            Some(&1),
            "release {id}: terminal events"
        );
    }
    for id in ids.iter().chain([&waiting]) {
        let r = release_of(&clients, *id).await;
        assert_eq!(
            phase(&r),
            ReleasePhase::Succeeded,
            "release {id}: {}",
            r.reason
        );
    }

    // No environment applied twice for one release and stage (a canary
    // step: once per weight).
    let mut applied: BTreeMap<(u64, String, i64), usize> = BTreeMap::new();
    for e in log.iter().filter(|e| e.kind == "env.applied") {
        let weight = detail(e)["weight_percent"].as_i64().unwrap_or(100);
        *applied
            .entry((e.release_id, e.environment.clone(), weight))
            .or_default() += 1;
    }
    let twice: Vec<_> = applied.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "applied more than once: {twice:?}");
    assert_eq!(
        applied
            .keys()
            .filter(|(_, env, w)| env == "production" && *w == 100)
            .count(),
        RELEASES as usize
    );

    // What production serves is what was promoted last.
    let last = log
        .iter()
        .rev()
        .find(|e| e.kind == "env.applied" && e.environment == "production")
        .unwrap();
    let live_now = live(&mut c, "production").await;
    assert_eq!(
        live_now.active.as_ref().unwrap().digest,
        detail(last)["digest"].as_str().unwrap()
    );

    // The canary: resumed by a new leader with its window restarted, then
    // rolled back exactly once.
    let r = release_of(&clients, canary).await;
    assert_eq!(phase(&r), ReleasePhase::RolledBack, "{}", r.reason);
    let rolled = log
        .iter()
        .filter(|e| e.kind == "env.rolled_back" && e.release_id == canary)
        .count();
    assert_eq!(rolled, 1, "the canary rolled back once");
    assert!(
        log.iter().any(|e| e.kind == "release.resumed"
            && e.release_id == canary
            && e.message.contains("observes again from its start")),
        "the audit log says the canary's window restarted"
    );
    assert!(observed > 0);

    // The audit chain verifies, through the CLI with the address list.
    assert_audit_verifies(&addrs.join(","), TOKEN);

    // The paused ex-leader wrote nothing once it had lost the lead: every
    // commit moves its marker, and its marker is older than the new
    // leader's key.
    let (_, marker_mod) = marker.expect("the paused leader had committed");
    assert!(
        marker_mod < fence,
        "the paused ex-leader committed at revision {marker_mod}, after the lead passed at {fence}"
    );
    // What it tried to write after waking: refused by etcd (the fence) or
    // by its own store, stopped once it found its lease gone.
    let paused_log = std::fs::read_to_string(&slots[paused].log).unwrap();
    let refused = paused_log
        .lines()
        .filter(|l| {
            l.contains("its write is refused")
                || (l.contains("failed") && l.contains("no longer leads"))
        })
        .count();
    assert!(
        refused > 0,
        "the paused ex-leader, paused mid-release, tried no write after waking"
    );

    // Subscribers moved between daemons saw every change once, in order,
    // and end at what is live.
    assert!(
        generations.windows(2).all(|w| w[0] < w[1]),
        "a generation seen twice or out of order: {generations:?}"
    );
    assert_eq!(generations.last(), Some(&live_now.generation));

    // Takeover: from the SIGKILL to the new leader's start, and to its
    // first executor step.
    let mut elected = Vec::new();
    let mut stepped = Vec::new();
    for k in &kills {
        let Some(start) = log.iter().position(|e| {
            e.kind == "daemon.started" && e.at_ms >= k.at_ms && e.message.contains("took the lead")
        }) else {
            panic!("no takeover after the kill of d{} at {}", k.slot, k.at_ms);
        };
        elected.push(log[start].at_ms - k.at_ms);
        // The new leader's first step: resuming what the dead one left
        // open (the held release, at least).
        let next = log[start + 1..]
            .iter()
            .position(|e| e.kind == "daemon.started")
            .map_or(log.len(), |n| start + 1 + n);
        if let Some(step) = log[start..next]
            .iter()
            .find(|e| e.kind == "release.resumed")
        {
            stepped.push(step.at_ms - k.at_ms);
        }
    }
    let limit = (LEASE_TTL_S * 1000 + 1000) as i64;
    assert_eq!(
        stepped.len(),
        kills.len(),
        "a takeover resumed nothing: {stepped:?}"
    );
    assert!(
        stepped.iter().all(|ms| *ms < limit),
        "takeover (SIGKILL to the first executor step) over {limit} ms: {stepped:?} (elected after {elected:?})"
    );
    let median = |v: &[i64]| {
        let mut v = v.to_vec();
        v.sort_unstable();
        v[v.len() / 2]
    };
    eprintln!(
        "soak: {} releases and a canary; {} SIGKILLs of the leader, 1 SIGSTOP past the lease \
         ({refused} fenced writes refused, exit 75), 1 etcd member down and back; \
         elected after median {} ms (max {}), first executor step after median {} ms (max {}) \
         of {stepped:?}; lease {LEASE_TTL_S} s; {} audit events; {} generations seen by a \
         subscriber moved between daemons; {observed} canary observations accepted",
        RELEASES,
        kills.len(),
        median(&elected),
        elected.iter().max().unwrap(),
        median(&stepped),
        stepped.iter().max().unwrap(),
        log.len(),
        generations.len(),
    );
}
