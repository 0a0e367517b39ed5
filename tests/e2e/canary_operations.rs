//! The canary's edges through the real daemon: a step with no data is an
//! audited inconclusive judgement (never a pass); a paused step still rolls
//! back on a regression and an operator's approval promotes it; the watch
//! after promotion restores the previous configuration; a restart resumes a
//! canary step and says so; a drill measures the rollback path and refuses
//! production unless forced; an operator's abort takes a running canary out
//! of traffic.

use crate::canary_service::{Behaviour, HEALTHY, Service};
use crate::common::*;
use gatehouse::client::Client;
use gatehouse::proto::{self, ReleasePhase};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const BROKEN: Behaviour = Behaviour {
    error_rate: 0.3,
    ..HEALTHY
};

fn pipeline(root: &std::path::Path, canary: &str) -> std::path::PathBuf {
    write(
        root,
        "pipeline.toml",
        &format!(
            "name = \"canary\"\n[[environment]]\nname = \"staging\"\n[[environment]]\nname = \"production\"\n  [environment.canary]\n  alpha = 0.001\n{canary}"
        ),
    )
}

/// Starts a daemon with `canary` settings on production and makes revision
/// 1 live in both environments (nothing live yet: no canary).
async fn start(root: &std::path::Path, canary: &str) -> (Daemon, String, Client, String) {
    let p = pipeline(root, canary);
    let daemon = Daemon::start(&root.join("data"), &["--pipeline", p.to_str().unwrap()]);
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;
    let first = submit(&mut c, "canary", &candidate(1))
        .await
        .release
        .unwrap();
    let done = finished(&mut c, first.id).await;
    assert_eq!(phase(&done), ReleasePhase::Succeeded, "{}", done.reason);
    (daemon, token, c, done.candidate_digest)
}

/// Revision 2 behaves as `regress` says; the others are healthy.
fn switchable(regress: Arc<AtomicBool>) -> impl Fn(u64) -> Behaviour + Send + Sync {
    move |revision| {
        if revision == 2 && regress.load(Ordering::Relaxed) {
            BROKEN
        } else {
            HEALTHY
        }
    }
}

async fn release_events(c: &mut Client, id: u64) -> Vec<proto::Event> {
    events(c)
        .await
        .into_iter()
        .filter(|e| e.release_id == id)
        .collect()
}

/// Polls the audit log until an event of release `id` satisfies `pred`.
async fn wait_event(c: &mut Client, id: u64, pred: impl Fn(&proto::Event) -> bool) -> proto::Event {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(e) = release_events(c, id).await.into_iter().find(|e| pred(e)) {
            return e;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no such event for release {id} within 30 s: {:?}",
            release_events(c, id)
                .await
                .iter()
                .map(|e| &e.message)
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_with_no_data_is_an_audited_inconclusive_judgement_never_a_pass() {
    let root = tempfile::tempdir().unwrap();
    let (_daemon, _, mut c, baseline) = start(
        root.path(),
        "steps = [20]\nstep_ms = 200\nmin_samples = 60\nmax_extensions = 1\n",
    )
    .await;
    // No service reports anything.
    let id = submit(&mut c, "canary", &candidate(2))
        .await
        .release
        .unwrap()
        .id;
    let done = finished(&mut c, id).await;
    assert_eq!(phase(&done), ReleasePhase::RolledBack, "{}", done.reason);
    assert!(
        done.reason.contains("never promoted without evidence")
            && done
                .reason
                .contains("no service has reported observations for production in 400 ms")
            && done.reason.contains("CanaryService.ReportObservations"),
        "{}",
        done.reason
    );
    let log = release_events(&mut c, id).await;
    let undecided = log
        .iter()
        .find(|e| e.message.contains("undecided") && e.message.contains("extension 1 of 1"))
        .expect("the first step end is audited");
    assert!(
        undecided.message.contains("need 60 samples per arm")
            && undecided
                .message
                .contains("no service has reported observations for production in 200 ms"),
        "{}",
        undecided.message
    );
    let detail: serde_json::Value = serde_json::from_str(&undecided.detail_json).unwrap();
    assert_eq!(
        detail["canary"]["judgement"]["decision"],
        serde_json::json!({ "kind": "inconclusive", "needed": 60 })
    );
    // The record changes with the release; watchers hear of it just after.
    let mut prod = live(&mut c, "production").await;
    for _ in 0..100 {
        if prod.canary.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        prod = live(&mut c, "production").await;
    }
    assert_eq!(prod.active.unwrap().digest, baseline);
    assert!(prod.canary.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_canary_still_rolls_back_on_a_regression_and_an_approval_promotes_a_step() {
    let root = tempfile::tempdir().unwrap();
    // A step can never gather this many samples, so it always ends paused.
    let (daemon, token, mut c, baseline) = start(
        root.path(),
        "steps = [20]\nstep_ms = 300\nmin_samples = 1000000\non_inconclusive = \"pause\"\n",
    )
    .await;
    let regress = Arc::new(AtomicBool::new(false));
    let service = Service::start(c.clone(), "production", switchable(regress.clone())).await;

    let id = submit(&mut c, "canary", &candidate(2))
        .await
        .release
        .unwrap()
        .id;
    let paused = wait_event(&mut c, id, |e| e.message.contains("canary paused")).await;
    assert!(
        paused.message.contains("too few samples") && paused.message.contains("more"),
        "{}",
        paused.message
    );
    let mut feed = c
        .canaries
        .watch_judgement(proto::GetJudgementRequest { release_id: id })
        .await
        .unwrap()
        .into_inner();
    let first = feed.message().await.unwrap().unwrap();
    assert!(!first.r#final);

    // `gatehouse config` shows both arms while the canary runs.
    let shown = std::process::Command::new(BIN)
        .args(["config", "production", "-o", "json"])
        .args(["--addr", &daemon.addr, "--token", &token])
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["digest"], baseline.as_str());
    assert_eq!(shown["canary"]["release_id"], id);
    assert_eq!(shown["canary_weight_percent"], 20);
    assert_eq!(
        shown["canary"]["digest"].as_str().map(str::len),
        Some(64),
        "{shown}"
    );

    // Traffic goes on while the step waits for a person; the candidate
    // starts failing and the daemon does not wait for the person.
    regress.store(true, Ordering::Relaxed);
    let done = finished(&mut c, id).await;
    assert_eq!(phase(&done), ReleasePhase::RolledBack, "{}", done.reason);
    assert!(done.reason.contains("error_rate"), "{}", done.reason);
    service
        .wait_for(Duration::from_secs(10), |r| {
            r.canary.is_none() && r.active.as_deref() == Some(baseline.as_str())
        })
        .await;
    let mut last = first;
    while let Ok(Ok(Some(j))) = tokio::time::timeout(Duration::from_secs(10), feed.message()).await
    {
        last = j;
    }
    assert!(last.r#final, "{last:?}");
    assert_eq!(last.decision, proto::Decision::RollBack as i32);

    // A paused step an operator approves is promoted.
    regress.store(false, Ordering::Relaxed);
    let next = submit(&mut c, "canary", &candidate(3))
        .await
        .release
        .unwrap();
    wait_event(&mut c, next.id, |e| e.message.contains("canary paused")).await;
    c.releases
        .approve_stage(proto::ApproveStageRequest {
            id: next.id,
            environment: "production".into(),
            comment: "the numbers look fine to me".into(),
        })
        .await
        .unwrap();
    let done = finished(&mut c, next.id).await;
    assert_eq!(phase(&done), ReleasePhase::Succeeded, "{}", done.reason);
    let digest = done.candidate_digest.clone();
    service
        .wait_for(Duration::from_secs(10), |r| {
            r.active.as_deref() == Some(digest.as_str())
        })
        .await;
    wait_event(&mut c, next.id, |e| {
        e.message.contains("approved by an operator")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_after_promotion_restores_the_previous_configuration_on_a_late_regression() {
    let root = tempfile::tempdir().unwrap();
    let (_daemon, _, mut c, baseline) = start(
        root.path(),
        "steps = [50]\nstep_ms = 800\nmin_samples = 60\nwatch_ms = 30000\n",
    )
    .await;
    let regress = Arc::new(AtomicBool::new(false));
    let service = Service::start(c.clone(), "production", switchable(regress.clone())).await;
    let release = submit(&mut c, "canary", &candidate(2))
        .await
        .release
        .unwrap();
    let digest = release.candidate_digest.clone();
    service
        .wait_for(Duration::from_secs(30), |r| {
            r.canary.is_none() && r.active.as_deref() == Some(digest.as_str())
        })
        .await;
    let watching = get(&mut c, release.id).await;
    assert_eq!(
        phase(&watching),
        ReleasePhase::Promoted,
        "{}",
        watching.reason
    );

    // Under full load the promoted configuration starts failing.
    regress.store(true, Ordering::Relaxed);
    let done = finished(&mut c, release.id).await;
    assert_eq!(phase(&done), ReleasePhase::RolledBack, "{}", done.reason);
    assert!(
        done.reason.contains("watch after promotion") && done.reason.contains("error_rate"),
        "{}",
        done.reason
    );
    service
        .wait_for(Duration::from_secs(10), |r| {
            r.active.as_deref() == Some(baseline.as_str())
        })
        .await;
    let down = wait_event(&mut c, release.id, |e| e.kind == "env.rolled_back").await;
    assert_eq!(down.actor, "daemon");
    let detail: serde_json::Value = serde_json::from_str(&down.detail_json).unwrap();
    assert_eq!(detail["canary"]["mode"], "watch");
    assert_eq!(detail["to"], serde_json::json!(baseline));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_canary_resumes_the_step_and_says_so() {
    let root = tempfile::tempdir().unwrap();
    let p = pipeline(
        root.path(),
        "steps = [20]\nstep_ms = 1500\nmin_samples = 60\n",
    );
    let data = root.path().join("data");
    let args = ["--pipeline", p.to_str().unwrap()];
    let first = Daemon::start(&data, &args);
    let token = first.generated_token.clone().unwrap();
    let mut c = first.client(Some(&token)).await;
    let base = submit(&mut c, "canary", &candidate(1))
        .await
        .release
        .unwrap();
    finished(&mut c, base.id).await;
    let id = submit(&mut c, "canary", &candidate(2))
        .await
        .release
        .unwrap()
        .id;
    wait_for(&mut c, id, Duration::from_secs(30), |r| {
        r.phase == ReleasePhase::Canary as i32
    })
    .await;
    first.kill();

    let second = Daemon::start(&data, &args);
    let mut c = second.client(Some(&token)).await;
    let service = Service::start(c.clone(), "production", |_| HEALTHY).await;
    let done = finished(&mut c, id).await;
    assert_eq!(phase(&done), ReleasePhase::Succeeded, "{}", done.reason);
    let resumed = wait_event(&mut c, id, |e| e.kind == "release.resumed").await;
    assert!(
        resumed.message.contains("observes again from its start"),
        "{}",
        resumed.message
    );
    let digest = done.candidate_digest.clone();
    service
        .wait_for(Duration::from_secs(10), |r| {
            r.active.as_deref() == Some(digest.as_str())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_measures_the_rollback_path_and_refuses_production_unless_forced() {
    let root = tempfile::tempdir().unwrap();
    let (daemon, token, mut c, baseline) = start(root.path(), "steps = [20]\n").await;
    let drill = |args: &[&str]| {
        std::process::Command::new(BIN)
            .arg("drill")
            .args(args)
            .args(["--addr", &daemon.addr, "--token", &token])
            .output()
            .unwrap()
    };
    let refused = drill(&["production"]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("--force"), "{err}");

    let ok = drill(&["staging"]);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        out.contains("recovery:") && out.contains("received the restored"),
        "{out}"
    );
    let staging = live(&mut c, "staging").await;
    assert_eq!(staging.active.unwrap().digest, baseline);
    assert!(staging.canary.is_none());
    let log = events(&mut c).await;
    let recorded = log
        .iter()
        .find(|e| e.environment == "staging" && e.message.contains("drill recovery"))
        .expect("the recovery time is in the audit log");
    let detail: serde_json::Value = serde_json::from_str(&recorded.detail_json).unwrap();
    assert!(detail["recovery_us"].as_u64().unwrap() > 0);

    let forced = drill(&["production", "--force", "--output", "json"]);
    assert_eq!(forced.status.code(), Some(0), "{forced:?}");
    let shown: serde_json::Value = serde_json::from_slice(&forced.stdout).unwrap();
    assert_eq!(shown["seen_by_this_client"], true);
    assert!(shown["recovery_ms"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_during_a_canary_takes_it_out_of_traffic_and_the_baseline_serves() {
    let root = tempfile::tempdir().unwrap();
    // A step far longer than the test: only the abort can end it.
    let (_daemon, _, mut c, baseline) =
        start(root.path(), "steps = [30]\nstep_seconds = 3600\n").await;
    let id = submit(&mut c, "canary", &candidate(2))
        .await
        .release
        .unwrap()
        .id;
    wait_event(&mut c, id, |e| e.message.contains("gets 30% of traffic")).await;
    assert!(live(&mut c, "production").await.canary.is_some());

    c.releases
        .abort_release(proto::AbortReleaseRequest {
            id,
            reason: "wrong prompt template".into(),
        })
        .await
        .unwrap();
    let done = finished(&mut c, id).await;
    assert_eq!(phase(&done), ReleasePhase::Aborted, "{}", done.reason);
    let prod = live(&mut c, "production").await;
    assert!(prod.canary.is_none(), "{prod:?}");
    assert_eq!(prod.canary_weight_percent, 0);
    assert_eq!(prod.active.unwrap().digest, baseline);
    let down = wait_event(&mut c, id, |e| e.kind == "env.rolled_back").await;
    assert!(
        down.message.contains("taken out of traffic")
            && down.message.contains("wrong prompt template"),
        "{}",
        down.message
    );
    let detail: serde_json::Value = serde_json::from_str(&down.detail_json).unwrap();
    assert_eq!(detail["to"], serde_json::json!(baseline));
}
