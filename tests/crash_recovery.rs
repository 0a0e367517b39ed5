//! A daemon killed with SIGKILL in the middle of a release resumes it on
//! restart, and the release finishes exactly once.

mod common;

use common::*;
use gatehouse::proto::{self, ReleasePhase};
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
    let cli = std::process::Command::new(BIN)
        .args(["audit", "verify", "--addr", &second.addr, "--token", &token])
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stdout)
    );
}
