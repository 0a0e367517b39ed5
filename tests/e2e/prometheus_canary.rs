//! Canaries judged on Prometheus alone, with the example service of
//! `examples/serving/python`: it reads its configuration per request
//! through OpenFeature (flagd's in-process resolver, syncing from the
//! daemon) and exports its own request metrics; a real Prometheus scrapes
//! it every second; the daemon judges each canary on those series, with the
//! example pipeline's own queries, and no service calls
//! `ReportObservations`. A failing candidate and a slow one are rolled back,
//! a clean one promoted, and a Prometheus stopped mid-canary makes the look
//! inconclusive, never a promotion.

use crate::common::*;
use crate::metrics::{Prometheus, free_port, start_prometheus, until};
use gatehouse::client::{Client, routes_to_canary};
use gatehouse::digest::Digest;
use gatehouse::proto;
use serde::Deserialize;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/serving/python");

/// A child process, killed when the test ends however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn example(file: &str) -> PathBuf {
    Path::new(EXAMPLE).join(file)
}

fn read(file: &str) -> Vec<u8> {
    std::fs::read(example(file)).unwrap_or_else(|e| panic!("read {file}: {e}"))
}

/// Prometheus on a free loopback port, scraping each (port, environment)
/// every second as the example's `prometheus.yml` does; and its API.
fn prometheus_scraping(root: &Path, targets: &[(u16, &str)]) -> (Prometheus, String) {
    let (binary, _) = prometheus();
    let mut config = "global:\n  scrape_interval: 1s\nscrape_configs:\n".to_string();
    for (port, env) in targets {
        config += &format!(
            "  - job_name: {env}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n        labels:\n          environment: {env}\n"
        );
    }
    start_prometheus(&binary, root, &config)
}

/// The example pipeline for `env`, under its own name, reading `url`, with
/// `changes` (text, replacement) made to it.
fn pipeline(root: &Path, env: &str, url: &str, changes: &[(&str, &str)]) -> PathBuf {
    let mut text = String::from_utf8(read("pipeline.toml")).unwrap();
    let mut edits = vec![
        ("name = \"serving\"", format!("name = \"{env}-pipeline\"")),
        ("name = \"production\"", format!("name = \"{env}\"")),
        (
            "url = \"http://127.0.0.1:9090\"",
            format!("url = \"{url}\""),
        ),
    ];
    edits.extend(changes.iter().map(|(a, b)| (*a, b.to_string())));
    for (from, to) in edits {
        assert!(text.contains(from), "the example pipeline has no {from:?}");
        text = text.replace(from, &to);
    }
    write(root, &format!("{env}.toml"), &text)
}

/// The example service for `env` on `port`, once its flag has arrived.
fn service(python: &Path, daemon: &Daemon, env: &str, port: u16, token: &str) -> Killed {
    let child = Command::new(python)
        .arg(example("service.py"))
        .args(["--daemon", daemon.addr.trim_start_matches("http://")])
        .args(["--environment", env, "--port", &port.to_string()])
        .env("GATEHOUSE_TOKEN", token)
        .stdout(Stdio::null())
        .spawn()
        .expect("run the example service");
    let running = Killed(child);
    let health = format!("http://127.0.0.1:{port}/healthz");
    let deadline = Instant::now() + Duration::from_secs(60);
    while ureq::get(&health).call().is_err() {
        assert!(
            Instant::now() < deadline,
            "the {env} service was not ready within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    running
}

/// One answer the load generator got.
#[derive(Debug, Clone, Deserialize)]
struct Answer {
    t_ms: i64,
    user: String,
    variant: Option<String>,
    status: u16,
}

/// The example load generator on `port`, its answers collected.
struct Load {
    _child: Killed,
    answers: Arc<Mutex<Vec<Answer>>>,
}

fn load(python: &Path, port: u16) -> Load {
    let mut child = Command::new(python)
        .arg(example("load.py"))
        .args(["--url", &format!("http://127.0.0.1:{port}")])
        .args([
            "--rps",
            "40",
            "--seconds",
            "900",
            "--users",
            "2000",
            "--log",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the load generator");
    let out = child.stdout.take().expect("its output");
    let answers = Arc::new(Mutex::new(Vec::new()));
    let into = answers.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(a) = serde_json::from_str::<Answer>(&line) {
                into.lock().unwrap().push(a);
            }
        }
    });
    Load {
        _child: Killed(child),
        answers,
    }
}

/// The last judgement deciding `decision` (`roll_back`, `promote`) that a
/// release's audit events carry.
async fn judgement_of(c: &mut Client, id: u64, decision: &str) -> serde_json::Value {
    events(c)
        .await
        .into_iter()
        .rev()
        .filter(|e| e.release_id == id)
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(&e.detail_json).ok())
        .map(|d| d["canary"].clone())
        .find(|canary| canary["judgement"]["decision"]["kind"] == decision)
        .unwrap_or_else(|| panic!("release {id} has no audited judgement to {decision}"))
}

/// Checks a judgement was made on Prometheus series alone, every query
/// answered once; returns the named metric's result.
fn judged_on_series<'a>(canary: &'a serde_json::Value, metric: &str) -> &'a serde_json::Value {
    let j = &canary["judgement"];
    assert_eq!(j["baseline_n"], 0, "no observations were reported: {j}");
    assert_eq!(j["canary_n"], 0, "no observations were reported: {j}");
    let source = &j["source"];
    assert!(source["error"].is_null(), "{source}");
    let metrics = source["metrics"].as_array().expect("series results");
    assert_eq!(metrics.len(), 2, "error_rate and latency_mean: {source}");
    for m in metrics {
        let queries = m["queries"].as_array().unwrap();
        // One query per metric and arm, each answered at the first attempt.
        assert_eq!(queries.len(), 2, "{m}");
        for q in queries {
            assert_eq!(q["attempts"], 1, "{q}");
            assert!(q["points"].as_u64().unwrap() >= 32, "{q}");
            assert!(q["error"].is_null(), "{q}");
        }
        assert!(m["intervals"].as_u64().unwrap() >= 32, "{m}");
    }
    metrics
        .iter()
        .find(|m| m["name"] == metric)
        .unwrap_or_else(|| panic!("no {metric} in {source}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_and_slow_canaries_roll_back_on_prometheus_alone_and_a_clean_one_is_promoted() {
    let python = python();
    let root = tempfile::tempdir().unwrap();
    // Three environments side by side, one service each, one Prometheus.
    let envs = ["failing", "slow", "clean"];
    let ports: Vec<u16> = envs.iter().map(|_| free_port()).collect();
    let targets: Vec<(u16, &str)> = ports.iter().copied().zip(envs).collect();
    let (_prometheus, api) = prometheus_scraping(root.path(), &targets);
    let files: Vec<PathBuf> = envs
        .iter()
        .map(|env| pipeline(root.path(), env, &api, &[]))
        .collect();
    let mut args = Vec::new();
    for f in &files {
        args.extend(["--pipeline", f.to_str().unwrap()]);
    }
    let daemon = Daemon::start(&root.path().join("data"), &args);
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;

    // What each environment serves first: nothing live yet, so no canary.
    let first = read("candidates/v1.json");
    for env in envs {
        let r = submit(&mut c, &format!("{env}-pipeline"), &first)
            .await
            .release
            .unwrap();
        assert_eq!(
            phase(&finished(&mut c, r.id).await),
            proto::ReleasePhase::Succeeded
        );
    }
    let services: Vec<Killed> = targets
        .iter()
        .map(|(port, env)| service(&python, &daemon, env, *port, &token))
        .collect();
    let loads: Vec<Load> = ports.iter().map(|p| load(&python, *p)).collect();
    for env in envs {
        until(&api, &format!("up{{environment=\"{env}\"}}"), 1.0);
    }

    let candidates = [
        read("candidates/v3-failing.json"),
        read("candidates/v4-slow.json"),
        read("candidates/v2.json"),
    ];
    let mut ids = Vec::new();
    for (env, bytes) in envs.iter().zip(&candidates) {
        let r = submit(&mut c, &format!("{env}-pipeline"), bytes)
            .await
            .release
            .unwrap();
        ids.push(r.id);
    }
    // A step observes 90 s; one that cannot decide may observe twice more.
    let limit = Duration::from_secs(90 * 3 + 60);
    let mut done = Vec::new();
    for id in &ids {
        done.push(wait_for(&mut c, *id, limit, |r| r.terminal).await);
    }

    // The failing candidate: rolled back on its error rate.
    assert_eq!(
        phase(&done[0]),
        proto::ReleasePhase::RolledBack,
        "{}",
        done[0].reason
    );
    assert!(done[0].reason.contains("error_rate"), "{}", done[0].reason);
    let canary = judgement_of(&mut c, ids[0], "roll_back").await;
    let errors = judged_on_series(&canary, "error_rate");
    assert_eq!(errors["outcome"], "fail", "{errors}");
    assert!(errors["canary"].as_f64().unwrap() > 0.1, "{errors}");
    assert!(errors["p_value"].as_f64().unwrap() <= 0.01, "{errors}");

    // The rollback reaches the service: from the decision to the first
    // request of a canary user served on the restored configuration.
    let decided_ms = canary["at_ms"].as_i64().expect("the decision's time");
    let canary_digest = Digest::of(&candidates[0]).hex();
    let in_canary = |user: &str| routes_to_canary(&canary_digest, user.as_bytes(), 50);
    let restored_after = |answers: &[Answer]| {
        answers
            .iter()
            .find(|a| {
                a.t_ms >= decided_ms && in_canary(&a.user) && a.variant.as_deref() == Some("active")
            })
            .cloned()
    };
    // Until a canary user is served again, and two seconds more.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (answers, restored) = loop {
        let answers = loads[0].answers.lock().unwrap().clone();
        if let Some(r) = restored_after(&answers)
            && answers.last().is_some_and(|a| a.t_ms > r.t_ms + 2_000)
        {
            break (answers, r);
        }
        assert!(
            Instant::now() < deadline,
            "no canary user served on the restored configuration within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let served_canary = answers
        .iter()
        .filter(|a| a.variant.as_deref() == Some("canary"))
        .count();
    assert!(
        served_canary > 100,
        "{served_canary} answers from the canary"
    );
    assert!(
        answers
            .iter()
            .filter(|a| a.t_ms > restored.t_ms + 1_000)
            .all(|a| a.variant.as_deref() == Some("active") && a.status == 200),
        "a second after the first restored answer, every answer is from the active configuration"
    );
    eprintln!(
        "rollback decision → first canary user served on the restored configuration: {} ms",
        restored.t_ms - decided_ms
    );
    // And the OpenFeature client sees `active` for every key.
    let out = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/python/flagd_client.py"
        ))
        .args([
            "127.0.0.1",
            daemon.addr.rsplit(':').next().unwrap(),
            "failing",
            "failing",
            "1000",
            &token,
        ])
        .output()
        .expect("run the flagd client");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        1001,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        lines[..1000].iter().all(|v| v["variant"] == "active"),
        "every key back on active"
    );

    // The slow candidate: rolled back on its latency.
    assert_eq!(
        phase(&done[1]),
        proto::ReleasePhase::RolledBack,
        "{}",
        done[1].reason
    );
    let canary = judgement_of(&mut c, ids[1], "roll_back").await;
    let latency = judged_on_series(&canary, "latency_mean");
    assert_eq!(latency["outcome"], "fail", "{latency}");
    assert!(latency["effect"].as_f64().unwrap() > 0.2, "{latency}");

    // The clean candidate: promoted, and live.
    assert_eq!(
        phase(&done[2]),
        proto::ReleasePhase::Succeeded,
        "{}",
        done[2].reason
    );
    let canary = judgement_of(&mut c, ids[2], "promote").await;
    let errors = judged_on_series(&canary, "error_rate");
    assert_eq!(errors["outcome"], "pass", "{errors}");
    let now = live(&mut c, "clean").await;
    assert_eq!(now.active.unwrap().digest, Digest::of(&candidates[2]).hex());
    drop(services);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_stopped_mid_canary_makes_the_look_inconclusive_never_a_promotion() {
    let python = python();
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let (mut prometheus, api) = prometheus_scraping(root.path(), &[(port, "outage")]);
    let file = pipeline(
        root.path(),
        "outage",
        &api,
        &[
            ("step_seconds = 90", "step_seconds = 20"),
            (
                "on_inconclusive = \"extend\"",
                "on_inconclusive = \"pause\"",
            ),
            ("consecutive_errors = 3", "consecutive_errors = 2"),
        ],
    );
    let daemon = Daemon::start(
        &root.path().join("data"),
        &["--pipeline", file.to_str().unwrap()],
    );
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;
    let first = read("candidates/v1.json");
    let r = submit(&mut c, "outage-pipeline", &first)
        .await
        .release
        .unwrap();
    assert_eq!(
        phase(&finished(&mut c, r.id).await),
        proto::ReleasePhase::Succeeded
    );
    let _service = service(&python, &daemon, "outage", port, &token);
    let _load = load(&python, port);
    until(&api, "up{environment=\"outage\"}", 1.0);

    let clean = read("candidates/v2.json");
    let id = submit(&mut c, "outage-pipeline", &clean)
        .await
        .release
        .unwrap()
        .id;
    let deadline = Instant::now() + Duration::from_secs(30);
    while live(&mut c, "outage").await.canary.is_none() {
        assert!(Instant::now() < deadline, "no canary within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Prometheus goes away mid-step.
    tokio::time::sleep(Duration::from_secs(8)).await;
    prometheus.kill();

    // The step's end: the look fails twice, 2 s apart, and the step is
    // paused for a person with the provider's error in the audit log.
    let deadline = Instant::now() + Duration::from_secs(90);
    let paused = loop {
        let found = events(&mut c)
            .await
            .into_iter()
            .find(|e| e.release_id == id && e.message.contains("canary paused"));
        if let Some(e) = found {
            break e;
        }
        assert!(Instant::now() < deadline, "no pause within 90 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        paused
            .message
            .contains("metric source failed 2 look(s) in a row")
            && paused.message.contains(&api),
        "{}",
        paused.message
    );
    let detail: serde_json::Value = serde_json::from_str(&paused.detail_json).unwrap();
    let j = &detail["canary"]["judgement"];
    assert_eq!(j["decision"]["kind"], "inconclusive", "{j}");
    assert_eq!(j["source"]["looks_failed"], 2, "{j}");
    let queries: Vec<&serde_json::Value> = j["source"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["queries"].as_array().unwrap())
        .collect();
    assert!(
        queries
            .iter()
            .all(|q| q["error"].is_string() && q["attempts"] == 3),
        "every query failed after its 3 attempts: {j}"
    );
    // Never a promotion: the first configuration is still what is live.
    let r = get(&mut c, id).await;
    assert!(!r.terminal, "{r:?}");
    let now = live(&mut c, "outage").await;
    assert_eq!(now.active.unwrap().digest, Digest::of(&first).hex());
    assert_eq!(now.canary.unwrap().digest, Digest::of(&clean).hex());
}
