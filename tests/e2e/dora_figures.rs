//! DORA figures end to end: releases reach production through a real
//! daemon, an operator rolls one back, and `GetDora`, `gatehouse dora` and
//! `gatehouse dora --file` of the exported log all tell the same story.

use crate::common::{BIN, Daemon, candidate, finished, phase, submit, write};
use gatehouse::proto::{self, ReleasePhase};
use std::process::Command;
use std::time::Instant;

const PIPELINE: &str = "name = \"plain\"
[[environment]]
name = \"dev\"
[[environment]]
name = \"production\"
";

fn cli(daemon: &Daemon, token: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["--addr", &daemon.addr, "--token", token])
        .args(args)
        .output()
        .expect("run gatehouse");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The figures of a `--output json` document, without the window's bounds
/// (they move with the clock between two calls).
fn figures(json: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON document");
    let o = v.as_object_mut().expect("an object");
    o.remove("since_ms");
    o.remove("until_ms");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_a_rollback_and_the_figures_they_make() {
    let root = tempfile::tempdir().unwrap();
    let pipeline = write(root.path(), "plain.toml", PIPELINE);
    let daemon = Daemon::start(
        &root.path().join("data"),
        &["--pipeline", pipeline.to_str().unwrap()],
    );
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;

    let started = Instant::now();
    for n in 1..=2 {
        let id = submit(&mut c, "plain", &candidate(n))
            .await
            .release
            .unwrap()
            .id;
        let done = finished(&mut c, id).await;
        assert_eq!(phase(&done), ReleasePhase::Succeeded, "{}", done.reason);
    }
    let deployed = started.elapsed();
    c.environments
        .rollback_environment(proto::RollbackEnvironmentRequest {
            environment: "production".into(),
            reason: "error spike".into(),
        })
        .await
        .expect("rollback");
    let all = started.elapsed();

    let dora = |env: &str| proto::GetDoraRequest {
        environment: env.into(),
        days: 7,
    };
    let production = c.audit.get_dora(dora("")).await.expect("dora").into_inner();
    assert_eq!(production.environment, "production");
    assert_eq!(production.until_ms - production.since_ms, 7 * 86_400_000);
    assert_eq!(production.deployments, 2);
    assert_eq!(production.deployments_per_day, 2.0 / 7.0);
    assert_eq!(production.failed_deployments, 1);
    assert_eq!(production.change_failure_rate, Some(0.5));
    assert_eq!(production.canaries_rolled_back, 0);
    let lead = production.lead_time_median_ms.expect("a lead time");
    assert!(
        (0..=deployed.as_millis() as i64).contains(&lead),
        "lead time {lead} ms, both releases took {deployed:?}"
    );
    let recovery = production.recovery_median_ms.expect("a recovery time");
    assert!(
        (0..=all.as_millis() as i64).contains(&recovery),
        "recovery {recovery} ms within {all:?}"
    );

    // dev saw the same two deployments and no failure.
    let dev = c
        .audit
        .get_dora(dora("dev"))
        .await
        .expect("dora")
        .into_inner();
    assert_eq!(dev.deployments, 2);
    assert_eq!(dev.failed_deployments, 0);
    assert_eq!(dev.change_failure_rate, Some(0.0));
    assert_eq!(dev.recovery_median_ms, None);

    // The CLI asks the daemon; `--file` computes from an exported log, with
    // no daemon, and both agree.
    let (code, online) = cli(
        &daemon,
        &token,
        &["dora", "--days", "7", "--output", "json"],
    );
    assert_eq!(code, 0, "{online}");
    let online = figures(&online);
    assert_eq!(online["deployments"], 2);
    assert_eq!(online["failed_deployments"], 1);
    assert_eq!(online["lead_time_median_ms"], lead);
    let export = root.path().join("audit.jsonl");
    let (code, out) = cli(
        &daemon,
        &token,
        &["audit", "export", "--out", export.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    let (code, offline) = cli(
        &daemon,
        &token,
        &[
            "dora",
            "--days",
            "7",
            "--file",
            export.to_str().unwrap(),
            "--output",
            "json",
        ],
    );
    assert_eq!(code, 0, "{offline}");
    assert_eq!(figures(&offline), online);

    let (code, text) = cli(&daemon, &token, &["dora", "--days", "7"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("DORA figures for production, last 7 days"),
        "{text}"
    );
    assert!(
        text.contains("change failure rate   50% (1 of 2 deployments rolled back)"),
        "{text}"
    );

    // An unknown environment says which ones there are.
    let err = c
        .audit
        .get_dora(dora("staging"))
        .await
        .expect_err("unknown environment");
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert!(err.message().contains("production"), "{}", err.message());
}
