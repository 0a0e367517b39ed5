//! The standard gates and adapters through the real daemon: each gate fails
//! a release for its own reason and the CLI shows it; golden-eval asks a
//! live OpenAI-compatible endpoint (a small server on 127.0.0.1); the file
//! adapter places, replaces and rolls back configurations in a granted
//! directory.

mod common;

use common::*;
use gatehouse::plugins::builtin::{ADAPTER_FILE_PATH, GOLDEN_EVAL_FULL_PATH};
use gatehouse::proto::{self, ReleasePhase};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `gatehouse status ID` as a person reads it.
fn status_text(daemon: &Daemon, token: &str, id: u64) -> String {
    let out = std::process::Command::new(BIN)
        .args([
            "status",
            &id.to_string(),
            "--addr",
            &daemon.addr,
            "--token",
            token,
        ])
        .output()
        .expect("run status");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regression_against_the_incumbent_fails_above_the_threshold() {
    let root = tempfile::tempdir().unwrap();
    // 0.75 is below both candidates' pass rates: only the paired comparison
    // with what production runs can stop the regressed one.
    let pipeline = write(
        root.path(),
        "golden.toml",
        "name = \"golden\"\n[[environment]]\nname = \"production\"\n[[environment.gate]]\nplugin = \"golden-eval\"\nparams = { dataset = \"attachment:golden.jsonl\", scorer = \"normalized\", threshold = 0.75 }\n",
    );
    let daemon = Daemon::start(
        &root.path().join("data"),
        &["--pipeline", pipeline.to_str().unwrap()],
    );
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;

    let first = submit_evaluated(&mut c, "golden", GOOD, GOOD_OUTPUTS).await;
    let first = finished(&mut c, first.release.unwrap().id).await;
    assert_eq!(phase(&first), ReleasePhase::Succeeded, "{}", first.reason);
    let verdict = &first.stages[0].gates[0];
    assert!(
        !verdict.measurements.iter().any(|m| m.name == "mcnemar_p"),
        "nothing to compare with yet: {}",
        verdict.reason
    );

    let second = submit_evaluated(&mut c, "golden", REGRESSED, REGRESSED_OUTPUTS).await;
    let id = second.release.unwrap().id;
    let stopped = finished(&mut c, id).await;
    assert_eq!(phase(&stopped), ReleasePhase::Failed);
    assert_eq!(stopped.failed_gate, "golden-eval");
    let gate = &stopped.stages[0].gates[0];
    let measured = |name: &str| {
        gate.measurements
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.value)
            .unwrap_or_else(|| panic!("no {name} in {:?}", gate.measurements))
    };
    assert!(measured("pass_rate") > 0.75, "above the threshold");
    assert!(measured("mcnemar_p") < 0.01, "a significant regression");
    assert!(measured("worse_than_incumbent") > measured("better_than_incumbent"));
    let shown = status_text(&daemon, &token, id);
    assert!(shown.contains("golden-eval"), "{shown}");
    assert!(
        shown.contains("incumbent"),
        "the CLI gives the reason: {shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_gate_fails_a_release_for_its_own_reason() {
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&root.path().join("data"), &[]);
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;
    let good = submit_evaluated(&mut c, "model-config", GOOD, GOOD_OUTPUTS).await;
    let good = finished(&mut c, good.release.unwrap().id).await;
    assert_eq!(phase(&good), ReleasePhase::Succeeded, "{}", good.reason);

    // config-lint in dev: a temperature above the pipeline's limit.
    let hot = String::from_utf8(GOOD.to_vec())
        .unwrap()
        .replace("\"temperature\": 0.1", "\"temperature\": 1.7");
    assert_ne!(hot.as_bytes(), GOOD);
    // (candidate, its outputs, where it stops, the gate, words of the reason)
    type Case<'a> = (&'a [u8], &'a [u8], &'a str, &'a str, &'a str);
    let cases: [Case; 3] = [
        (
            hot.as_bytes(),
            GOOD_OUTPUTS,
            "dev",
            "config-lint",
            "temperature",
        ),
        (
            EXPENSIVE,
            GOOD_OUTPUTS,
            "staging",
            "cost-estimator",
            "budget",
        ),
        (
            REGRESSED,
            REGRESSED_OUTPUTS,
            "staging",
            "golden-eval",
            "pass rate",
        ),
    ];
    for (candidate, outputs, env, gate, words) in cases {
        let r = submit_evaluated(&mut c, "model-config", candidate, outputs).await;
        let id = r.release.unwrap().id;
        let done = finished(&mut c, id).await;
        assert_eq!(
            phase(&done),
            ReleasePhase::Failed,
            "{gate}: {}",
            done.reason
        );
        assert_eq!(
            (done.environment.as_str(), done.failed_gate.as_str()),
            (env, gate)
        );
        assert!(
            done.reason.to_lowercase().contains(words),
            "{gate}: {}",
            done.reason
        );
        let shown = status_text(&daemon, &token, id);
        assert!(
            shown.contains(gate) && shown.to_lowercase().contains(words),
            "{shown}"
        );
    }
}

/// An OpenAI-compatible chat completions endpoint on 127.0.0.1 that answers
/// each golden case with its expected label, fails every `fail_every`-th
/// request with a 500, and counts requests. One request per connection.
async fn model_server(fail_every: u64) -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answers: Arc<HashMap<String, String>> = Arc::new(
        std::str::from_utf8(GOLDEN)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let case: serde_json::Value = serde_json::from_str(l).unwrap();
                let expected = match &case["expected"] {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Array(a) => a[0].as_str().unwrap_or_default().to_string(),
                    other => other.to_string(),
                };
                (case["input"].as_str().unwrap().to_string(), expected)
            })
            .collect(),
    );
    let served = Arc::new(AtomicU64::new(0));
    let count = served.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let answers = answers.clone();
            let n = count.fetch_add(1, Ordering::Relaxed) + 1;
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let body = loop {
                    let Ok(read) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if read == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..read]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + length {
                        break buf[end + 4..end + 4 + length].to_vec();
                    }
                };
                let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let prompt = request["messages"]
                    .as_array()
                    .and_then(|m| m.last())
                    .and_then(|m| m["content"].as_str())
                    .unwrap_or_default()
                    .to_string();
                // The template ends with the ticket: find the case it asks about.
                let label = answers
                    .iter()
                    .find(|(input, _)| prompt.ends_with(input.as_str()))
                    .map(|(_, l)| l.clone())
                    .unwrap_or_else(|| "other".into());
                let (status, reply) = if fail_every > 0 && n.is_multiple_of(fail_every) {
                    (
                        "500 Internal Server Error",
                        "{\"error\":\"overloaded\"}".to_string(),
                    )
                } else {
                    (
                        "200 OK",
                        serde_json::json!({"choices": [{"message": {"role": "assistant", "content": label}}]})
                            .to_string(),
                    )
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (format!("127.0.0.1:{}", addr.port()), served)
}

/// A daemon whose plugin directory holds the live build of golden-eval,
/// granted `http` to `host`, and a pipeline asking `base_url` for answers.
fn live_daemon(root: &Path, host: &str) -> Daemon {
    let plugins = root.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(GOLDEN_EVAL_FULL_PATH, plugins.join("golden-eval.wasm")).unwrap();
    let golden_dir = root.join("golden");
    std::fs::create_dir_all(&golden_dir).unwrap();
    std::fs::write(golden_dir.join("triage.jsonl"), GOLDEN).unwrap();
    std::fs::write(
        plugins.join("golden-eval.toml"),
        format!(
            "capabilities = [\"files\", \"http\"]\n[[files]]\nhost = {:?}\nguest = \"/golden\"\n[http]\nallow_hosts = [\"{host}\"]\ntimeout_ms = 5000\n",
            golden_dir.display().to_string()
        ),
    )
    .unwrap();
    let pipeline = write(
        root,
        "live.toml",
        &format!(
            "name = \"live\"\n[[environment]]\nname = \"staging\"\n[[environment.gate]]\nplugin = \"golden-eval\"\ntimeout_ms = 30000\nparams = {{ dataset = \"/golden/triage.jsonl\", scorer = \"normalized\", threshold = 0.9, live = {{ base_url = \"http://{host}\", max_in_flight = 8 }} }}\n"
        ),
    );
    Daemon::start(
        &root.join("data"),
        &[
            "--pipeline",
            pipeline.to_str().unwrap(),
            "--plugin-dir",
            plugins.to_str().unwrap(),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_eval_asks_a_live_endpoint_for_every_case() {
    let root = tempfile::tempdir().unwrap();
    let (host, served) = model_server(0).await;
    let daemon = live_daemon(root.path(), &host);
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;
    let id = submit(&mut c, "live", GOOD).await.release.unwrap().id;
    let done = finished(&mut c, id).await;
    assert_eq!(phase(&done), ReleasePhase::Succeeded, "{}", done.reason);
    let cases = GOLDEN
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count() as u64;
    assert_eq!(
        served.load(Ordering::Relaxed),
        cases,
        "one request per case"
    );
    let gate = &done.stages[0].gates[0];
    assert!(
        gate.measurements
            .iter()
            .any(|m| m.name == "pass_rate" && m.value == 1.0),
        "{gate:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_makes_golden_eval_inconclusive_not_a_pass() {
    let root = tempfile::tempdir().unwrap();
    // Every fifth request fails: 20% errors, above the 5% the gate allows.
    let (host, _) = model_server(5).await;
    let daemon = live_daemon(root.path(), &host);
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;
    let id = submit(&mut c, "live", GOOD).await.release.unwrap().id;
    let done = finished(&mut c, id).await;
    assert_eq!(phase(&done), ReleasePhase::Failed, "{}", done.reason);
    let gate = &done.stages[0].gates[0];
    assert_eq!(
        gate.outcome,
        proto::Outcome::Inconclusive as i32,
        "{gate:?}"
    );
    assert!(
        gate.measurements
            .iter()
            .any(|m| m.name == "http_errors" && m.value > 0.0),
        "{gate:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_adapter_places_replaces_and_rolls_back_configurations() {
    let root = tempfile::tempdir().unwrap();
    let deploy = root.path().join("deploy");
    std::fs::create_dir_all(&deploy).unwrap();
    let plugins = root.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(ADAPTER_FILE_PATH, plugins.join("adapter-file.wasm")).unwrap();
    std::fs::write(
        plugins.join("adapter-file.toml"),
        format!(
            "capabilities = [\"files\"]\n[[files]]\nhost = {:?}\nguest = \"/deploy\"\nwritable = true\n",
            deploy.display().to_string()
        ),
    )
    .unwrap();
    let pipeline = write(
        root.path(),
        "files.toml",
        "name = \"files\"\n[[environment]]\nname = \"dev\"\nadapter = \"adapter-file\"\nadapter_params = { dir = \"/deploy\" }\n",
    );
    let daemon = Daemon::start(
        &root.path().join("data"),
        &[
            "--pipeline",
            pipeline.to_str().unwrap(),
            "--plugin-dir",
            plugins.to_str().unwrap(),
        ],
    );
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;
    let live = |name: &str| std::fs::read(deploy.join("dev").join(name)).ok();

    let one = candidate(1);
    let first = submit(&mut c, "files", &one).await.release.unwrap().id;
    assert_eq!(
        phase(&finished(&mut c, first).await),
        ReleasePhase::Succeeded
    );
    assert_eq!(live("active.json"), Some(one.clone()));

    let two = candidate(2);
    let second = submit(&mut c, "files", &two).await.release.unwrap().id;
    let done = finished(&mut c, second).await;
    assert_eq!(phase(&done), ReleasePhase::Succeeded, "{}", done.reason);
    assert_eq!(live("active.json"), Some(two.clone()));
    assert_eq!(live("previous.json"), Some(one.clone()));
    assert_eq!(
        live("active.digest").map(|d| String::from_utf8(d).unwrap().trim().to_string()),
        Some(done.candidate_digest.clone())
    );

    // The operator's rollback goes through the adapter, then the record.
    let back = c
        .environments
        .rollback_environment(proto::RollbackEnvironmentRequest {
            environment: "dev".into(),
            reason: "drill".into(),
        })
        .await
        .expect("rollback")
        .into_inner();
    assert_eq!(back.rolled_back_digest, done.candidate_digest);
    assert_eq!(live("active.json"), Some(one));
    let leftovers: Vec<_> = std::fs::read_dir(deploy.join("dev"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "atomic writes leave nothing behind: {leftovers:?}"
    );
}
