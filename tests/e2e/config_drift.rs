//! Configuration drift end to end: a real daemon places candidates with
//! adapter-file, someone edits the environment by hand, and the daemon's own
//! periodic check, `CheckDrift` and `gatehouse drift` all see it.

use crate::common::{
    BIN, Daemon, candidate, events, finished, grant_file_adapter, phase, submit, write,
};
use gatehouse::client::Client;
use gatehouse::digest::Digest;
use gatehouse::proto::{self, DriftStatus, ReleasePhase};
use std::process::Command;
use std::time::{Duration, Instant};

/// dev is placed by adapter-file; production by the built-in config store.
const PIPELINE: &str = "name = \"files\"
[[environment]]
name = \"dev\"
adapter = \"adapter-file\"
adapter_params = { dir = \"/deploy\" }
[[environment]]
name = \"production\"
";

async fn check(c: &mut Client, env: &str) -> Vec<proto::DriftReport> {
    c.environments
        .check_drift(proto::CheckDriftRequest {
            environment: env.into(),
        })
        .await
        .expect("check drift")
        .into_inner()
        .reports
}

fn status(r: &proto::DriftReport) -> DriftStatus {
    DriftStatus::try_from(r.status).unwrap_or(DriftStatus::Unspecified)
}

/// `gatehouse drift ARGS` against `daemon`: (exit code, stdout).
fn cli(daemon: &Daemon, token: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["--addr", &daemon.addr, "--token", token, "drift"])
        .args(args)
        .output()
        .expect("run gatehouse drift");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn drift_events(c: &mut Client, kind: &str) -> Vec<proto::Event> {
    events(c)
        .await
        .into_iter()
        .filter(|e| e.kind == kind && e.environment == "dev")
        .collect()
}

/// Waits (at most 30 s) until the audit log holds a `kind` event for dev.
async fn wait_event(c: &mut Client, kind: &str) -> proto::Event {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(e) = drift_events(c, kind).await.pop() {
            return e;
        }
        assert!(Instant::now() < deadline, "no {kind} event within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_edit_is_found_recorded_once_and_cleared_when_repaired() {
    let root = tempfile::tempdir().unwrap();
    let deploy = root.path().join("deploy");
    let plugins = root.path().join("plugins");
    grant_file_adapter(&plugins, &deploy);
    let pipeline = write(root.path(), "files.toml", PIPELINE);
    let config = write(root.path(), "gatehouse.toml", "drift_check_s = 1\n");
    let daemon = Daemon::start(
        &root.path().join("data"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--pipeline",
            pipeline.to_str().unwrap(),
            "--plugin-dir",
            plugins.to_str().unwrap(),
        ],
    );
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;

    // Nothing placed and nothing recorded: in sync; production cannot drift.
    let first = check(&mut c, "").await;
    let by_env = |reports: &[proto::DriftReport], env: &str| {
        reports
            .iter()
            .find(|r| r.environment == env)
            .cloned()
            .unwrap_or_else(|| panic!("no report for {env}: {reports:?}"))
    };
    assert_eq!(status(&by_env(&first, "dev")), DriftStatus::InSync);
    assert_eq!(status(&by_env(&first, "production")), DriftStatus::BuiltIn);

    let one = candidate(1);
    let id = submit(&mut c, "files", &one).await.release.unwrap().id;
    let done = finished(&mut c, id).await;
    assert_eq!(phase(&done), ReleasePhase::Succeeded, "{}", done.reason);
    let dev = check(&mut c, "dev").await.remove(0);
    assert_eq!(status(&dev), DriftStatus::InSync, "{dev:?}");
    assert_eq!(dev.adapter, "adapter-file");
    assert_eq!(dev.live.unwrap().active, Digest::of(&one).hex());
    assert_eq!(cli(&daemon, &token, &["dev"]).0, 0);

    // A hand edit: the environment now serves bytes nobody released. The
    // daemon's own check finds it first.
    let edited = br#"{"model":"gpt-4o","edited":"by hand"}"#;
    std::fs::write(deploy.join("dev").join("active.json"), edited).unwrap();
    let found = wait_event(&mut c, "env.drifted").await;
    assert_eq!(found.actor, "daemon");
    let expected = format!(
        "active: Gatehouse made {} live, the environment serves {}",
        Digest::of(&one).short(),
        Digest::of(edited).short()
    );
    assert_eq!(found.message, format!("dev drifted: {expected}"));

    let dev = check(&mut c, "dev").await.remove(0);
    assert_eq!(status(&dev), DriftStatus::Drifted);
    assert_eq!(dev.differences, vec![expected.clone()]);
    assert_eq!(dev.expected.unwrap().active, Digest::of(&one).hex());
    assert_eq!(dev.live.unwrap().active, Digest::of(edited).hex());
    let (code, out) = cli(&daemon, &token, &[]);
    assert_eq!(code, 6, "{out}");
    assert!(
        out.contains(&format!("dev (adapter-file): DRIFTED: {expected}")),
        "{out}"
    );
    assert!(
        out.contains("production (configstore): built-in config store"),
        "{out}"
    );
    let (_, json) = cli(&daemon, &token, &["dev", "--output", "json"]);
    let json: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON document");
    assert_eq!(json["status"], "drifted");
    assert_eq!(json["live"]["active"], Digest::of(edited).hex());

    // Several checks later (the daemon's, each second, and ours), still one
    // event: the log records a change of drift, not every check.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    check(&mut c, "dev").await;
    assert_eq!(drift_events(&mut c, "env.drifted").await.len(), 1);

    // Repaired by hand: back in sync, and the log says so once.
    std::fs::write(deploy.join("dev").join("active.json"), &one).unwrap();
    let dev = check(&mut c, "dev").await.remove(0);
    assert_eq!(status(&dev), DriftStatus::InSync, "{dev:?}");
    assert!(dev.differences.is_empty());
    let back = wait_event(&mut c, "env.in_sync").await;
    assert_eq!(back.message, "dev serves what Gatehouse made live again");
    assert_eq!(cli(&daemon, &token, &["dev"]).0, 0);

    // An environment the adapter cannot read is reported as such, with the
    // adapter's reason, and the CLI exits 1; it is never called in sync.
    let active = deploy.join("dev").join("active.json");
    std::fs::remove_file(&active).unwrap();
    std::fs::create_dir(&active).unwrap();
    let dev = check(&mut c, "dev").await.remove(0);
    assert_eq!(status(&dev), DriftStatus::Unreadable, "{dev:?}");
    assert!(dev.live.is_none());
    assert!(
        dev.detail.starts_with("plugin adapter-file failed: ")
            && dev.detail.contains("active.json"),
        "{}",
        dev.detail
    );
    let (code, out) = cli(&daemon, &token, &["dev"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("dev (adapter-file): could not be read"),
        "{out}"
    );

    // An unknown environment is an error naming the known ones.
    let err = c
        .environments
        .check_drift(proto::CheckDriftRequest {
            environment: "qa".into(),
        })
        .await
        .expect_err("unknown environment");
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
    assert!(err.message().contains("dev"), "{}", err.message());
}
