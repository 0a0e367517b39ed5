//! The canary end to end: a real daemon, a serving service simulated on
//! loopback that follows `WatchConfig`, splits traffic by the sticky rule and
//! reports observations; a candidate that hurts (errors, latency, divergent
//! answers on mirrored requests) is rolled back by the daemon with no one
//! asking, the previous configuration is live again at the service, and the
//! audit log says which metric and why. The same traffic promotes a clean
//! candidate.

use crate::canary_service::{Behaviour, HEALTHY, Service};
use crate::common::*;
use gatehouse::client::Client;
use gatehouse::proto::{self, ReleasePhase};
use std::time::Duration;

// Identical arms still fail a final look now and then at α = 0.01 (two
// correlated latency tests marginal at once); the regressions here are
// large, so a stricter α keeps the clean case from flaking.
const JUDGE: &str = "\
alpha = 0.001
[metrics.error_rate]
critical = true
[metrics.latency_mean]
critical = true
# Mirrored requests must get the same answers.
[metrics.label_divergence]
critical = true
";

const PIPELINE: &str = "\
name = \"canary\"
[[environment]]
name = \"production\"
  [environment.canary]
  steps = [20, 50]
  step_ms = 1200
  min_samples = 60
  max_extensions = 3
  config = \"canary.toml\"
";

/// Revision 1 is the baseline; revision 2 the candidate under test.
const BASELINE: u32 = 1;
const CANDIDATE: u32 = 2;

pub(crate) struct Scene {
    _root: tempfile::TempDir,
    pub(crate) daemon: Daemon,
    pub(crate) token: String,
    client: Client,
    service: Service,
    baseline: String,
}

/// A daemon with the canary pipeline, the baseline live in production, and
/// the service serving it.
pub(crate) async fn scene(behaves: Behaviour) -> Scene {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "canary.toml", JUDGE);
    let pipeline = write(root.path(), "pipeline.toml", PIPELINE);
    let daemon = Daemon::start(
        &root.path().join("data"),
        &["--pipeline", pipeline.to_str().unwrap()],
    );
    let token = daemon.generated_token.clone().unwrap();
    let mut client = daemon.client(Some(&token)).await;
    let first = submit(&mut client, "canary", &candidate(BASELINE))
        .await
        .release
        .unwrap();
    let done = finished(&mut client, first.id).await;
    assert_eq!(phase(&done), ReleasePhase::Succeeded, "{}", done.reason);
    let service = Service::start(client.clone(), "production", move |revision| {
        if revision == u64::from(CANDIDATE) {
            behaves
        } else {
            HEALTHY
        }
    })
    .await;
    service
        .wait_for(Duration::from_secs(10), |r| {
            r.active.as_deref() == Some(done.candidate_digest.as_str())
        })
        .await;
    Scene {
        _root: root,
        daemon,
        token,
        client,
        service,
        baseline: done.candidate_digest,
    }
}

/// Submits the candidate, checks its canary served traffic, and waits for
/// the release to end.
pub(crate) async fn release_candidate(s: &mut Scene) -> proto::Release {
    let id = submit(&mut s.client, "canary", &candidate(CANDIDATE))
        .await
        .release
        .unwrap()
        .id;
    let done = finished(&mut s.client, id).await;
    let seen = s.service.seen();
    assert!(
        seen.iter()
            .any(|r| r.canary.as_deref() == Some(done.candidate_digest.as_str())),
        "the service never saw the canary: {seen:?}"
    );
    assert!(
        s.service.canary_requests() > 0,
        "no request reached the canary"
    );
    done
}

/// Asserts the daemon rolled the candidate back on its own because of
/// `metric`, the baseline serves again, and the log holds the evidence.
async fn assert_rolled_back_for(s: &mut Scene, done: &proto::Release, metric: &str) {
    assert_eq!(phase(done), ReleasePhase::RolledBack, "{}", done.reason);
    assert!(
        done.reason.contains("rolled back automatically") && done.reason.contains(metric),
        "{}",
        done.reason
    );
    // The previous digest is live again, as the service sees it.
    let baseline = s.baseline.clone();
    s.service
        .wait_for(Duration::from_secs(10), |r| {
            r.canary.is_none() && r.active.as_deref() == Some(baseline.as_str())
        })
        .await;
    let live = s
        .client
        .environments
        .get_config(proto::GetConfigRequest {
            environment: "production".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(live.active.unwrap().digest, s.baseline);
    assert!(live.canary.is_none());
    assert_eq!(live.canary_weight_percent, 0);

    // The audit log says why: the daemon took the canary down, with the
    // failing metric's evidence.
    let log = events(&mut s.client).await;
    let down = log
        .iter()
        .find(|e| e.kind == "env.rolled_back" && e.release_id == done.id)
        .expect("the rollback is audited");
    assert_eq!(down.actor, "daemon");
    assert!(
        down.message.contains("taken out of traffic by the daemon"),
        "{}",
        down.message
    );
    let detail: serde_json::Value = serde_json::from_str(&down.detail_json).unwrap();
    assert_eq!(detail["automatic"], true);
    assert_eq!(detail["to"], serde_json::json!(s.baseline));
    let judgement = &detail["canary"]["judgement"];
    assert_eq!(judgement["decision"]["kind"], "roll_back", "{judgement}");
    let evidence = judgement["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == metric)
        .unwrap_or_else(|| panic!("no {metric} in {judgement}"));
    assert_eq!(evidence["outcome"], "fail", "{evidence}");
    assert!(evidence["p_value"].as_f64().unwrap() <= evidence["threshold"].as_f64().unwrap());
    assert!(evidence["baseline_n"].as_u64().unwrap() > 0);
    assert!(evidence["canary_n"].as_u64().unwrap() > 0);
    assert!(evidence["test"].is_string() && evidence["statistic"].is_number());
    assert!(
        log.iter().any(|e| e.kind == "release.phase"
            && e.release_id == done.id
            && e.message.contains(metric)),
        "the release's phase event names {metric}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_spike_in_the_canary_is_rolled_back_with_no_human_call() {
    let mut s = scene(Behaviour {
        error_rate: 0.25,
        ..HEALTHY
    })
    .await;
    let done = release_candidate(&mut s).await;
    assert_rolled_back_for(&mut s, &done, "error_rate").await;

    // The CLI shows the judgement the canary ended with.
    let out = std::process::Command::new(BIN)
        .args(["canary", "status", &done.id.to_string(), "--output", "json"])
        .args(["--addr", &s.daemon.addr, "--token", &s.token])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["final"], true);
    assert_eq!(shown["judgement"]["decision"]["kind"], "roll_back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_regression_in_the_canary_is_rolled_back_with_no_human_call() {
    let mut s = scene(Behaviour {
        median_latency_ms: 80.0,
        ..HEALTHY
    })
    .await;
    let done = release_candidate(&mut s).await;
    assert_rolled_back_for(&mut s, &done, "latency_mean").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn divergent_answers_on_mirrored_requests_are_rolled_back_with_no_human_call() {
    // As fast and as reliable as the baseline: only its answers differ.
    let mut s = scene(Behaviour {
        flip_rate: 0.3,
        ..HEALTHY
    })
    .await;
    let done = release_candidate(&mut s).await;
    assert_rolled_back_for(&mut s, &done, "label_divergence").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_candidate_under_the_same_traffic_is_promoted_step_by_step() {
    let mut s = scene(HEALTHY).await;
    // `watch` on a terminal (a pseudo-terminal from util-linux's `script`)
    // shows a live line per canary step while the release runs.
    let watcher = std::process::Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(format!(
            // Ids are dense: the candidate's release follows the baseline's;
            // it is watched as soon as it exists (for at most 20 s).
            "for i in $(seq 400); do {BIN} status 2 {flags} >/dev/null 2>&1 && break; sleep 0.05; done; exec {BIN} watch 2 {flags}",
            flags = format!("--addr {} --token {}", s.daemon.addr, s.token)
        ))
        .arg("/dev/null")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run `script` (util-linux)");
    let done = release_candidate(&mut s).await;
    assert_eq!(done.id, 2);
    let out = watcher.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    for step in ["canary step 1 at 20%", "canary step 2 at 50%"] {
        assert!(screen.contains(step), "no live line for {step:?}: {screen}");
    }
    assert!(
        screen.contains("s left") && screen.contains("samples"),
        "{screen}"
    );
    assert_eq!(phase(&done), ReleasePhase::Succeeded, "{}", done.reason);
    let digest = done.candidate_digest.clone();
    let r = s
        .service
        .wait_for(Duration::from_secs(10), |r| {
            r.active.as_deref() == Some(digest.as_str())
        })
        .await;
    assert!(r.canary.is_none());
    // Both steps were served, in order, before the promotion.
    let weights: Vec<u32> = s
        .service
        .seen()
        .iter()
        .filter(|r| r.canary.as_deref() == Some(digest.as_str()))
        .map(|r| r.weight_percent)
        .collect();
    assert_eq!(weights.first(), Some(&20), "{weights:?}");
    assert_eq!(weights.last(), Some(&50), "{weights:?}");
    let log = events(&mut s.client).await;
    let promoted = log
        .iter()
        .find(|e| e.release_id == done.id && e.message.contains("promoted after its canary"))
        .expect("the promotion is audited");
    let detail: serde_json::Value = serde_json::from_str(&promoted.detail_json).unwrap();
    assert_eq!(detail["canary"]["judgement"]["decision"]["kind"], "promote");
}
