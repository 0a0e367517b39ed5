//! A daemon killed with SIGKILL in the middle of a release resumes it on
//! restart, and the release finishes exactly once; releases that meet at
//! one environment take it in turn, across a SIGKILL too.

use crate::common::*;
use gatehouse::client::Client;
use gatehouse::proto::{self, ReleasePhase};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PIPELINE: &str = r#"
name = "slow"
[[environment]]
name = "dev"
  [[environment.gate]]
  plugin = "config-lint"
[[environment]]
name = "staging"
  [[environment.gate]]
  plugin = "chaos-gate"
  timeout_ms = 20000
  # A busy wait's instructions grow with the host's speed: the deadline,
  # not the fuel, is what this gate is held to.
  fuel = 1000000000000
  params = { mode = "slow", delay_ms = 1500 }
[[environment]]
name = "production"
  [[environment.gate]]
  plugin = "cost-estimator"
  params = { max_cost_per_request = 0.01 }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_release_then_restart_finishes_exactly_once() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let plugins = test_plugin_dir(root.path());
    let pipeline = write(root.path(), "pipeline.toml", PIPELINE);
    let args = [
        "--pipeline",
        pipeline.to_str().unwrap(),
        "--plugin-dir",
        plugins.to_str().unwrap(),
    ];

    let first = Daemon::start(&data, &args);
    let token = first
        .generated_token
        .clone()
        .expect("first start prints a token");
    let mut c = first.client(Some(&token)).await;
    let id = submit(&mut c, "slow", GOOD).await.release.unwrap().id;
    // Dev is promoted and staging's slow gate is running: kill now.
    let mid = wait_for(&mut c, id, Duration::from_secs(30), |r| {
        r.phase == ReleasePhase::Gating as i32 && r.environment == "staging"
    })
    .await;
    assert!(
        mid.stages[0].promoted,
        "dev should be promoted before the kill"
    );
    first.kill();

    let second = Daemon::start(&data, &args);
    assert!(
        second.generated_token.is_none(),
        "the token is printed only once"
    );
    let mut c = second.client(Some(&token)).await;
    let done = finished(&mut c, id).await;
    assert_eq!(phase(&done), ReleasePhase::Succeeded, "{}", done.reason);
    assert!(done.stages.iter().all(|s| s.promoted));

    let events = events(&mut c).await;
    let mine: Vec<_> = events.iter().filter(|e| e.release_id == id).collect();
    let count = |pred: &dyn Fn(&proto::Event) -> bool| mine.iter().filter(|e| pred(e)).count();
    assert_eq!(count(&|e| e.kind == "release.resumed"), 1);
    assert_eq!(
        count(&|e| e.kind == "release.phase" && e.phase == ReleasePhase::Succeeded as i32),
        1,
        "exactly one Succeeded"
    );
    for env in ["dev", "staging", "production"] {
        assert_eq!(
            count(&|e| e.kind == "env.applied" && e.environment == env),
            1,
            "{env} applied exactly once"
        );
        let live = c
            .environments
            .get_config(proto::GetConfigRequest {
                environment: env.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(live.generation, 1, "{env} changed exactly once");
        assert_eq!(live.active.unwrap().digest, done.candidate_digest);
    }

    let v = c
        .audit
        .verify_audit(proto::VerifyAuditRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(v.ok, "{}", v.problem);
    assert_audit_verifies(&second.addr, &token);
}

/// Two pipelines share staging, placed by adapter-file: `hold` runs a long
/// canary there, `main` applies directly.
fn shared_staging(root: &Path) -> Vec<String> {
    let plugins = root.join("plugins");
    grant_file_adapter(&plugins, &root.join("deploy"));
    let main = write(
        root,
        "main.toml",
        "name = \"main\"\n[[environment]]\nname = \"staging\"\nadapter = \"adapter-file\"\nadapter_params = { dir = \"/deploy\" }\n",
    );
    let hold = write(
        root,
        "hold.toml",
        "name = \"hold\"\n[[environment]]\nname = \"staging\"\nadapter = \"adapter-file\"\nadapter_params = { dir = \"/deploy\" }\n  [environment.canary]\n  steps = [10]\n  step_seconds = 3600\n",
    );
    [
        "--plugin-dir",
        plugins.to_str().unwrap(),
        "--pipeline",
        main.to_str().unwrap(),
        "--pipeline",
        hold.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

/// Makes `candidate(n)` live in staging through the `main` pipeline.
async fn make_live(c: &mut Client, n: u32) {
    let id = submit(c, "main", &candidate(n)).await.release.unwrap().id;
    assert_eq!(phase(&finished(c, id).await), ReleasePhase::Succeeded);
}

/// The daemon's debug lines for adapter calls to `env`, in the order they
/// were written: whether any two overlapped.
fn overlapping_calls(log: &Path, env: &str) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let needle = format!("environment=\"{env}\"");
    let mut inside = 0;
    let mut calls = 0;
    let mut overlaps = Vec::new();
    for line in text.lines().filter(|l| l.contains(&needle)) {
        if line.contains("adapter call started") {
            inside += 1;
            calls += 1;
            if inside > 1 {
                overlaps.push(line.to_string());
            }
        } else if line.contains("adapter call ended") {
            inside -= 1;
        }
    }
    (calls, overlaps)
}

/// The releases that joined staging's line, in the order they joined.
fn lined_up(events: &[proto::Event]) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e.kind == "release.waiting" && e.environment == "staging")
        .map(|e| e.release_id)
        .collect()
}

const ADAPTER_DEBUG: (&str, &str) = ("GATEHOUSE_LOG", "warn,gatehouse::plugins::adapter=debug");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_queued_for_one_environment_resume_after_sigkill_in_turn() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let args = shared_staging(root.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (first_log, second_log) = (
        root.path().join("first.log"),
        root.path().join("second.log"),
    );

    let first = Daemon::start_logged(&data, &args, &[ADAPTER_DEBUG], &first_log);
    let token = first.generated_token.clone().expect("token");
    let mut c = first.client(Some(&token)).await;
    // Something live, then a canary that holds staging for an hour.
    make_live(&mut c, 0).await;
    let holder = submit(&mut c, "hold", &candidate(100))
        .await
        .release
        .unwrap()
        .id;
    wait_for(&mut c, holder, Duration::from_secs(30), |r| {
        r.phase == ReleasePhase::Canary as i32
    })
    .await;
    // Eight releases line up behind it, in order.
    let mut queued = Vec::new();
    for n in 1..=8 {
        queued.push(
            submit(&mut c, "main", &candidate(n))
                .await
                .release
                .unwrap()
                .id,
        );
    }
    // They line up in the order they reach staging, each told its place.
    let mut places = Vec::new();
    for id in &queued {
        let r = wait_for(&mut c, *id, Duration::from_secs(30), |r| {
            !r.waiting.is_empty()
        })
        .await;
        assert_eq!(phase(&r), ReleasePhase::Applying, "{r:?}");
        let said = format!("release {holder} is acting on it; place ");
        let place = r
            .waiting
            .split_once(&said)
            .and_then(|(_, rest)| rest.split(' ').next()?.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("no place in {:?}", r.waiting));
        places.push(place);
    }
    places.sort();
    assert_eq!(places, (1..=8).collect::<Vec<_>>());
    let line = lined_up(&events(&mut c).await);
    assert_eq!(
        line.iter().copied().collect::<BTreeSet<_>>(),
        queued.iter().copied().collect()
    );
    first.kill();

    // All eight resume at once; the holder's canary resumes too. Its abort
    // frees staging, and the line goes through one at a time.
    let second = Daemon::start_logged(&data, &args, &[ADAPTER_DEBUG], &second_log);
    let mut c = second.client(Some(&token)).await;
    c.releases
        .abort_release(proto::AbortReleaseRequest {
            id: holder,
            reason: "make way".into(),
        })
        .await
        .expect("abort");
    for id in &queued {
        let r = finished(&mut c, *id).await;
        assert_eq!(
            phase(&r),
            ReleasePhase::Succeeded,
            "release {id}: {}",
            r.reason
        );
        assert!(r.waiting.is_empty());
    }
    let events = events(&mut c).await;
    assert_eq!(lined_up(&events), line, "each joins the line once");
    let applied: Vec<u64> = events
        .iter()
        .filter(|e| {
            e.kind == "env.applied" && e.environment == "staging" && queued.contains(&e.release_id)
        })
        .map(|e| e.release_id)
        .collect();
    assert_eq!(
        applied, line,
        "staging took them in the order they lined up"
    );
    assert!(
        !events.iter().any(|e| e.message.contains("could not apply")),
        "an apply failed"
    );
    assert!(
        !events.iter().any(|e| e.kind == "env.repaired"),
        "the adapter was told what the record does not say"
    );
    for log in [&first_log, &second_log] {
        let (calls, overlaps) = overlapping_calls(log, "staging");
        assert!(calls > 0, "no adapter calls logged in {}", log.display());
        assert!(
            overlaps.is_empty(),
            "adapter calls overlapped: {overlaps:#?}"
        );
    }
    let last = get(&mut c, *line.last().expect("a line")).await;
    let live = live(&mut c, "staging").await;
    assert_eq!(live.active.map(|a| a.digest), Some(last.candidate_digest));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_canaries_racing_for_an_environment_the_second_never_reaches_traffic_first() {
    let root = tempfile::tempdir().unwrap();
    let args = shared_staging(root.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let daemon = Daemon::start(&root.path().join("data"), &args);
    let token = daemon.generated_token.clone().expect("token");
    let mut c = daemon.client(Some(&token)).await;
    make_live(&mut c, 0).await;

    // Watch the adapter's canary file at fine intervals from before the race.
    let canary_file = root.path().join("deploy/staging/canary.digest");
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (seen, stop, file) = (seen.clone(), stop.clone(), canary_file.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(d) = std::fs::read_to_string(&file) {
                    seen.lock().unwrap().insert(d.trim().to_string());
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let (mut c1, mut c2) = (c.clone(), c.clone());
    let (first, second) = (candidate(1), candidate(2));
    let (one, two) = tokio::join!(
        submit(&mut c1, "hold", &first),
        submit(&mut c2, "hold", &second)
    );
    let ids = [one.release.unwrap().id, two.release.unwrap().id];
    let mut winner = None;
    for _ in 0..300 {
        for id in ids {
            if phase(&get(&mut c, id).await) == ReleasePhase::Canary {
                winner = Some(id);
            }
        }
        if winner.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let winner = winner.expect("one canary runs");
    let loser = if winner == ids[0] { ids[1] } else { ids[0] };
    let waiting = wait_for(&mut c, loser, Duration::from_secs(10), |r| {
        !r.waiting.is_empty()
    })
    .await;
    assert_eq!(phase(&waiting), ReleasePhase::Applying);
    // Let the race run on a while, sampled.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let reports = c
        .environments
        .check_drift(proto::CheckDriftRequest {
            environment: "staging".into(),
        })
        .await
        .expect("drift")
        .into_inner()
        .reports;
    assert_eq!(
        reports.iter().map(|r| r.status).collect::<Vec<_>>(),
        [proto::DriftStatus::InSync as i32],
        "{reports:?}"
    );
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let digest_of = |id: u64, c: &mut Client| {
        let mut c = c.clone();
        async move { get(&mut c, id).await.candidate_digest }
    };
    let winner_digest = digest_of(winner, &mut c).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        BTreeSet::from([winner_digest]),
        "only the winner's canary may reach traffic while it runs"
    );
    assert_eq!(
        live(&mut c, "staging").await.canary.map(|d| d.digest),
        Some(digest_of(winner, &mut c).await)
    );

    // Once the winner is done, the second takes its turn, against what is
    // live then.
    c.releases
        .abort_release(proto::AbortReleaseRequest {
            id: winner,
            reason: "done".into(),
        })
        .await
        .expect("abort");
    let second = wait_for(&mut c, loser, Duration::from_secs(30), |r| {
        r.phase == ReleasePhase::Canary as i32
    })
    .await;
    assert!(second.waiting.is_empty());
    assert_eq!(
        std::fs::read_to_string(&canary_file).unwrap().trim(),
        second.candidate_digest
    );
}

/// An abort that lands while the release's apply is in flight leaves the
/// adapter told a candidate the record never made live, with no release
/// left to finish it: the daemon sees the breach once the apply's commit is
/// refused, tells the adapter the record again, and audits it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_told_what_the_record_refused_is_told_the_record_again() {
    use gatehouse::plugins::builtin::STALL_ADAPTER_PATH;
    let root = tempfile::tempdir().unwrap();
    let plugins = root.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(STALL_ADAPTER_PATH, plugins.join("stall-adapter.wasm")).unwrap();
    let pipeline = write(
        root.path(),
        "slow.toml",
        "name = \"slow\"\n[[environment]]\nname = \"dev-slow\"\nadapter = \"stall-adapter\"\nadapter_timeout_ms = 20000\nadapter_params = { sleep_ms = 1500, sleep_in = [\"apply\"] }\n",
    );
    let log = root.path().join("daemon.log");
    let args = [
        "--plugin-dir",
        plugins.to_str().unwrap(),
        "--pipeline",
        pipeline.to_str().unwrap(),
    ];
    let daemon = Daemon::start_logged(&root.path().join("data"), &args, &[ADAPTER_DEBUG], &log);
    let token = daemon.generated_token.clone().expect("token");
    let mut c = daemon.client(Some(&token)).await;
    let first = submit(&mut c, "slow", &candidate(1)).await.release.unwrap();
    assert_eq!(
        phase(&finished(&mut c, first.id).await),
        ReleasePhase::Succeeded
    );

    let second = submit(&mut c, "slow", &candidate(2)).await.release.unwrap();
    wait_for(&mut c, second.id, Duration::from_secs(30), |r| {
        r.phase == ReleasePhase::Applying as i32
    })
    .await;
    // The adapter sleeps in its apply; abort meanwhile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.releases
        .abort_release(proto::AbortReleaseRequest {
            id: second.id,
            reason: "changed my mind".into(),
        })
        .await
        .expect("abort");
    let mut repaired = None;
    for _ in 0..250 {
        repaired = events(&mut c)
            .await
            .into_iter()
            .find(|e| e.kind == "env.repaired");
        if repaired.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let repaired = repaired.expect("the breach is repaired and audited");
    assert_eq!(repaired.environment, "dev-slow");
    let detail: serde_json::Value = serde_json::from_str(&repaired.detail_json).unwrap();
    assert_eq!(detail["outcome"], "repaired", "{detail}");
    assert_eq!(
        detail["differences"],
        serde_json::json!([{
            "part": "active",
            "told": second.candidate_digest,
            "recorded": first.candidate_digest,
        }]),
    );
    assert_eq!(
        live(&mut c, "dev-slow").await.active.map(|a| a.digest),
        Some(first.candidate_digest)
    );
    // The repair went through the adapter, after the apply, in its turn.
    let text = std::fs::read_to_string(&log).unwrap();
    let calls: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("adapter call started") && l.contains("dev-slow"))
        .filter_map(|l| l.split("function=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(calls, ["apply", "apply", "rollback"], "{text}");
    let (_, overlaps) = overlapping_calls(&log, "dev-slow");
    assert!(overlaps.is_empty(), "{overlaps:#?}");
    let r = get(&mut c, second.id).await;
    assert_eq!(phase(&r), ReleasePhase::Aborted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_retried_with_its_key_after_a_lost_reply_returns_the_same_release() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let pipeline = write(
        root.path(),
        "quick.toml",
        "name = \"quick\"\n[[environment]]\nname = \"dev\"\n",
    );
    let args = ["--pipeline", pipeline.to_str().unwrap()];
    let keyed = |bytes: Vec<u8>, key: &str| proto::SubmitReleaseRequest {
        pipeline: "quick".into(),
        candidate: bytes,
        idempotency_key: key.into(),
        ..Default::default()
    };

    let first = Daemon::start(&data, &args);
    let token = first.generated_token.clone().expect("token");
    let mut c = first.client(Some(&token)).await;
    let id = c
        .releases
        .submit_release(keyed(candidate(1), "ci-run-42"))
        .await
        .expect("submit")
        .into_inner()
        .release
        .expect("release")
        .id;
    // The daemon dies right after it committed: as far as the client knows,
    // the reply was lost.
    first.kill();

    let second = Daemon::start(&data, &args);
    let mut c = second.client(Some(&token)).await;
    let done = finished(&mut c, id).await;
    assert_eq!(phase(&done), ReleasePhase::Succeeded, "{}", done.reason);
    // The retry with the same key: the same release, though it has ended.
    let again = c
        .releases
        .submit_release(keyed(candidate(1), "ci-run-42"))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(again.release.as_ref().map(|r| r.id), Some(id));
    assert!(again.deduplicated);
    // So does the CLI, given the key.
    let file = write(
        root.path(),
        "candidate.json",
        std::str::from_utf8(&candidate(1)).unwrap(),
    );
    let out = std::process::Command::new(BIN)
        .args(["--addr", &second.addr, "--token", &token, "submit"])
        .arg(&file)
        .args(["--pipeline", "quick", "--idempotency-key", "ci-run-42"])
        .output()
        .expect("run gatehouse submit");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains(&format!("release {id} submitted")),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The key belongs to that submission: other bytes under it are refused.
    let refused = c
        .releases
        .submit_release(keyed(candidate(2), "ci-run-42"))
        .await
        .expect_err("another candidate under the same key");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused
            .message()
            .contains("idempotency key \"ci-run-42\" was used for release"),
        "{}",
        refused.message()
    );
    // Without a key, the same finished bytes start a new release, and ids
    // stay dense across the restart.
    let fresh = submit(&mut c, "quick", &candidate(1)).await;
    assert!(!fresh.deduplicated);
    assert_eq!(fresh.release.map(|r| r.id), Some(id + 1));
    // Audit time never goes backwards in sequence order.
    let events = events(&mut c).await;
    assert!(
        events.windows(2).all(|w| w[0].at_ms <= w[1].at_ms),
        "audit times go backwards"
    );
}

/// A small tmpfs, unmounted when dropped.
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(path: std::path::PathBuf, size: &str) -> SmallDisk {
        std::fs::create_dir_all(&path).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root (as the README's test path runs): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { path }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

/// A candidate of about `kib` KiB that no other shares.
fn bulky(n: u32, kib: usize) -> Vec<u8> {
    let filler: String = (0..kib * 1024 / 16)
        .map(|i| {
            format!(
                "{:016x}",
                (u64::from(n) << 32 | i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            )
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "model": format!("m-{n}"), "prompt": filler })).unwrap()
}

fn offline_audit_count(data: &Path) -> String {
    let out = std::process::Command::new(BIN)
        .args(["audit", "verify", "--data-dir"])
        .arg(data)
        .output()
        .expect("run gatehouse audit verify");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_shows_nothing_unwritten_and_heals() {
    let root = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(root.path().join("disk"), "64m");
    let data = disk.path.join("data");
    let pipeline = write(
        root.path(),
        "quick.toml",
        "name = \"quick\"\n[[environment]]\nname = \"dev\"\n",
    );
    let args = ["--pipeline", pipeline.to_str().unwrap()];
    // Space to give back later.
    let spare = disk.path.join("spare");
    std::fs::write(&spare, vec![0u8; 24 << 20]).unwrap();

    let mut daemon = Daemon::start(&data, &args);
    let token = daemon.generated_token.clone().expect("token");
    let mut c = daemon.client(Some(&token)).await;
    let mut accepted = Vec::new();
    let mut refusal = None;
    for n in 0..200 {
        let submitted = c.releases.submit_release(proto::SubmitReleaseRequest {
            pipeline: "quick".into(),
            candidate: bulky(n, 512),
            ..Default::default()
        });
        match answered(submitted).await {
            Ok(r) => accepted.push(r.into_inner().release.expect("release").id),
            Err(status) => {
                refusal = Some(status);
                break;
            }
        }
    }
    let refusal = refusal.expect("the disk never filled");
    assert_eq!(
        refusal.code(),
        tonic::Code::ResourceExhausted,
        "{}",
        refusal.message()
    );
    assert!(refusal.message().contains("free"), "{}", refusal.message());

    // Whatever answers now shows only what was written.
    if daemon.exited().is_none()
        && let Ok(listed) = c
            .releases
            .list_releases(proto::ListReleasesRequest {
                limit: 1000,
                ..Default::default()
            })
            .await
    {
        let listed: Vec<u64> = listed.into_inner().releases.iter().map(|r| r.id).collect();
        for id in &listed {
            assert!(
                accepted.contains(id),
                "release {id} is listed but its submit was refused"
            );
        }
    }

    // Space comes back: the next submit works, in place or after a restart.
    std::fs::remove_file(&spare).unwrap();
    let mut again = None;
    for _ in 0..100 {
        if let Some(status) = daemon.exited() {
            assert!(!status.success(), "the daemon exited 0 on a full disk");
            break;
        }
        if let Ok(r) = submit_quick(&mut c, 1000).await {
            again = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if again.is_none() {
        daemon = Daemon::start(&data, &args);
        c = daemon.client(Some(&token)).await;
        again = Some(
            submit_quick(&mut c, 1000)
                .await
                .expect("submit after the restart"),
        );
    }
    let id = again.unwrap();
    assert_eq!(phase(&finished(&mut c, id).await), ReleasePhase::Succeeded);
    for id in &accepted {
        assert!(
            c.releases
                .get_release(proto::GetReleaseRequest { id: *id })
                .await
                .is_ok(),
            "release {id} was lost"
        );
    }
    let served = c
        .audit
        .verify_audit(proto::VerifyAuditRequest::default())
        .await
        .expect("verify")
        .into_inner();
    daemon.kill();
    let offline = offline_audit_count(&data);
    assert!(
        offline.contains(&format!("intact: {} events", served.events_checked)),
        "the daemon verified {} events, the data directory holds: {offline}",
        served.events_checked
    );
}

async fn submit_quick(c: &mut Client, n: u32) -> Result<u64, tonic::Status> {
    let submitted = c.releases.submit_release(proto::SubmitReleaseRequest {
        pipeline: "quick".into(),
        candidate: candidate(n),
        ..Default::default()
    });
    answered(submitted)
        .await
        .map(|r| r.into_inner().release.map_or(0, |r| r.id))
}

/// The call's answer; a daemon that does not answer within 10 s is wedged.
async fn answered<T>(
    call: impl std::future::Future<Output = Result<T, tonic::Status>>,
) -> Result<T, tonic::Status> {
    tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the daemon did not answer within 10 s: its store is wedged")
}
