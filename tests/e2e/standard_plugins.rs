//! The standard gates and adapters through the real daemon: each gate fails
//! a release for its own reason and the CLI shows it; golden-eval asks a
//! live OpenAI-compatible endpoint and latency times one (small servers on
//! 127.0.0.1, in `loopback`); the file adapter places, replaces and rolls
//! back configurations in a granted directory; the HTTP adapter does the
//! same through a service's admin API, retrying a restarting service and
//! failing closed on a dead one.

use crate::common::*;
use crate::loopback::{AdminApi, Outage, model_endpoint};
use gatehouse::plugins::builtin::{ADAPTER_HTTP_PATH, GOLDEN_EVAL_FULL_PATH, LATENCY_FULL_PATH};
use gatehouse::proto::{self, ReleasePhase};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

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
    let endpoint = model_endpoint(GOLDEN, 0, Duration::ZERO).await;
    let daemon = live_daemon(root.path(), &endpoint.host);
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
        endpoint.served.load(Ordering::Relaxed),
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
    let endpoint = model_endpoint(GOLDEN, 5, Duration::ZERO).await;
    let daemon = live_daemon(root.path(), &endpoint.host);
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
    let plugins = root.path().join("plugins");
    grant_file_adapter(&plugins, &deploy);
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

/// A daemon with adapter-http pushed from its plugin directory, granted
/// `http` to the admin API at `host` only, and a pipeline `service` whose
/// production is placed through that API.
fn service_daemon(root: &Path, host: &str, retries: u32, backoff_ms: u64) -> Daemon {
    let plugins = root.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(ADAPTER_HTTP_PATH, plugins.join("adapter-http.wasm")).unwrap();
    std::fs::write(
        plugins.join("adapter-http.toml"),
        format!(
            "capabilities = [\"http\"]\n[http]\nallow_hosts = [\"{host}\"]\ntimeout_ms = 2000\n"
        ),
    )
    .unwrap();
    let pipeline = write(
        root,
        "service.toml",
        &format!(
            "name = \"service\"\n[[environment]]\nname = \"production\"\nadapter = \"adapter-http\"\nadapter_timeout_ms = 10000\nadapter_params = {{ base_url = \"http://{host}/admin\", token = {:?}, retries = {retries}, backoff_ms = {backoff_ms} }}\n",
            AdminApi::TOKEN
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

/// What the daemon records as live in `env`.
async fn recorded_live(c: &mut gatehouse::client::Client, env: &str) -> Option<String> {
    live(c, env).await.active.map(|d| d.digest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_adapter_places_and_rolls_back_through_a_services_admin_api() {
    let root = tempfile::tempdir().unwrap();
    let api = AdminApi::start().await;
    let daemon = service_daemon(root.path(), &api.host, 3, 50);
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;
    let active_path = "/admin/config/production/active";

    // First placement: the adapter reads what is live (nothing yet: 404),
    // then puts the candidate, named by its digest, with the token.
    let one = candidate(1);
    let first = submit(&mut c, "service", &one).await.release.unwrap().id;
    let first = finished(&mut c, first).await;
    assert_eq!(phase(&first), ReleasePhase::Succeeded, "{}", first.reason);
    let d1 = first.candidate_digest.clone();
    {
        let service = api.lock();
        let asked: Vec<_> = service
            .seen
            .iter()
            .map(|s| (s.method.as_str(), s.target.as_str(), s.status))
            .collect();
        assert_eq!(
            asked,
            [
                ("GET", "/admin/config/production", 404),
                ("PUT", active_path, 204)
            ]
        );
        assert_eq!(service.seen[1].digest.as_deref(), Some(d1.as_str()));
        assert_eq!(service.seen[1].body, one);
        let placed = service.environments["production"].active.clone().unwrap();
        assert_eq!((placed.digest, placed.bytes), (d1.clone(), one.clone()));
    }

    let two = candidate(2);
    let second = submit(&mut c, "service", &two).await.release.unwrap().id;
    let second = finished(&mut c, second).await;
    assert_eq!(phase(&second), ReleasePhase::Succeeded, "{}", second.reason);
    let d2 = second.candidate_digest.clone();
    assert_eq!(api.active("production"), Some(d2.clone()));
    assert_eq!(recorded_live(&mut c, "production").await, Some(d2.clone()));

    // The operator's rollback restores the previous configuration through
    // the API first, then in the daemon's record.
    let back = c
        .environments
        .rollback_environment(proto::RollbackEnvironmentRequest {
            environment: "production".into(),
            reason: "error spike".into(),
        })
        .await
        .expect("rollback")
        .into_inner();
    assert_eq!(back.rolled_back_digest, d2);
    let rollback = api.writes().pop().unwrap();
    assert_eq!(
        (rollback.method.as_str(), rollback.target.as_str()),
        ("POST", "/admin/config/production/rollback")
    );
    assert_eq!(rollback.digest.as_deref(), Some(d1.as_str()));
    assert_eq!(rollback.body, one);
    assert_eq!(api.active("production"), Some(d1.clone()));
    assert_eq!(recorded_live(&mut c, "production").await, Some(d1.clone()));

    // Idempotent by digest: releasing what the service already serves
    // reads it back and writes nothing.
    let writes = api.writes().len();
    let again = submit(&mut c, "service", &one).await.release.unwrap().id;
    let again = finished(&mut c, again).await;
    assert_eq!(phase(&again), ReleasePhase::Succeeded, "{}", again.reason);
    assert_eq!(api.writes().len(), writes, "{:?}", api.writes());
    assert_eq!(api.active("production"), Some(d1));
    let last = api.lock().seen.last().cloned().unwrap();
    assert_eq!((last.method.as_str(), last.status), ("GET", 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_adapter_retries_a_restarting_service_and_fails_closed_on_a_dead_one() {
    let root = tempfile::tempdir().unwrap();
    let api = AdminApi::start().await;
    let daemon = service_daemon(root.path(), &api.host, 3, 100);
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;

    // Restarting: the first two requests get 503, and the adapter waits
    // 100 ms, then 200 ms, before asking again.
    api.lock().outage = Outage::Next(2);
    let one = submit(&mut c, "service", &candidate(1))
        .await
        .release
        .unwrap()
        .id;
    let one = finished(&mut c, one).await;
    assert_eq!(phase(&one), ReleasePhase::Succeeded, "{}", one.reason);
    let d1 = one.candidate_digest.clone();
    let seen = api.lock().seen.clone();
    let statuses: Vec<_> = seen.iter().map(|s| (s.method.as_str(), s.status)).collect();
    assert_eq!(
        statuses,
        [("GET", 503), ("GET", 503), ("GET", 404), ("PUT", 204)]
    );
    let waited = |i: usize| seen[i].at.duration_since(seen[i - 1].at);
    assert!(waited(1) >= Duration::from_millis(100), "{:?}", waited(1));
    assert!(waited(2) >= Duration::from_millis(200), "{:?}", waited(2));
    assert_eq!(api.active("production"), Some(d1.clone()));

    // Dead: every request gets 500. The adapter gives up after its
    // retries, the daemon after its attempts, and the stage fails saying
    // why; nothing live changes, here or at the service.
    api.lock().outage = Outage::Always;
    let before = api.lock().seen.len();
    let two = submit(&mut c, "service", &candidate(2))
        .await
        .release
        .unwrap()
        .id;
    let two = finished(&mut c, two).await;
    assert_eq!(phase(&two), ReleasePhase::Failed, "{}", two.reason);
    assert_eq!(two.environment, "production");
    for words in [
        "adapter adapter-http could not apply",
        "to production",
        "HTTP 500",
        "database unavailable",
        "after 3 attempts",
    ] {
        assert!(two.reason.contains(words), "{words:?}: {}", two.reason);
    }
    let during: Vec<_> = api.lock().seen[before..].to_vec();
    assert_eq!(
        during.len(),
        3 * (1 + 3),
        "3 daemon attempts, each the first request and 3 retries: {during:?}"
    );
    assert!(during.iter().all(|s| s.method == "GET" && s.status == 500));
    assert_eq!(api.active("production"), Some(d1.clone()));
    assert_eq!(recorded_live(&mut c, "production").await, Some(d1));
    let shown = status_text(&daemon, &token, two.id);
    assert!(
        shown.contains("Failed") && shown.contains("database unavailable"),
        "{shown}"
    );
    // `/metrics` counts the daemon's three failed attempts by their kind.
    let text = scrape(daemon.metrics.as_deref().expect("/metrics"), &token);
    let failures: Vec<_> = text
        .lines()
        .filter(|l| l.starts_with("gatehouse_adapter_call_failures_total{"))
        .collect();
    assert_eq!(
        failures,
        [
            "gatehouse_adapter_call_failures_total{adapter=\"adapter-http\",reason=\"adapter_failed\"} 3"
        ],
        "{text}"
    );
}

/// Live requests the latency gate sends, and how many at once.
const LIVE_REQUESTS: u64 = 400;
const LIVE_IN_FLIGHT: u64 = 16;

/// A daemon with the live build of latency pushed from its plugin
/// directory, granted `http` to `host` and `clock`, and a pipeline
/// `measured` whose staging gate times the endpoint there against SLOs of
/// 250 ms (p95) and 500 ms (p99).
fn latency_daemon(root: &Path, host: &str) -> Daemon {
    let plugins = root.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(LATENCY_FULL_PATH, plugins.join("latency.wasm")).unwrap();
    std::fs::write(
        plugins.join("latency.toml"),
        format!(
            "capabilities = [\"http\", \"clock\"]\n[http]\nallow_hosts = [\"{host}\"]\ntimeout_ms = 5000\n"
        ),
    )
    .unwrap();
    let pipeline = write(
        root,
        "measured.toml",
        &format!(
            "name = \"measured\"\n[[environment]]\nname = \"staging\"\n[[environment.gate]]\nplugin = \"latency\"\ntimeout_ms = 60000\nparams = {{ p95_ms = 250, p99_ms = 500, live = {{ base_url = \"http://{host}/v1/chat/completions\", method = \"POST\", body = {{ model = \"gpt-4o-mini\", messages = [{{ role = \"user\", content = \"Ticket: I was charged twice\" }}] }}, requests = {LIVE_REQUESTS}, max_in_flight = {LIVE_IN_FLIGHT} }} }}\n"
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

fn measured(gate: &proto::GateResult, name: &str) -> f64 {
    gate.measurements
        .iter()
        .find(|m| m.name == name)
        .map(|m| m.value)
        .unwrap_or_else(|| panic!("no {name} in {:?}", gate.measurements))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_times_a_fast_endpoint_live_and_passes_it() {
    let root = tempfile::tempdir().unwrap();
    let endpoint = model_endpoint(GOLDEN, 0, Duration::ZERO).await;
    let daemon = latency_daemon(root.path(), &endpoint.host);
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;
    let id = submit(&mut c, "measured", GOOD).await.release.unwrap().id;
    let done = finished(&mut c, id).await;
    assert_eq!(phase(&done), ReleasePhase::Succeeded, "{}", done.reason);
    let gate = &done.stages[0].gates[0];
    assert_eq!(gate.outcome, proto::Outcome::Pass as i32, "{}", gate.reason);
    assert!(gate.reason.contains("live requests"), "{}", gate.reason);
    assert_eq!(measured(gate, "samples"), LIVE_REQUESTS as f64);
    assert_eq!(measured(gate, "http_errors"), 0.0);
    assert!(measured(gate, "p99") < 500.0, "{}", gate.reason);
    assert_eq!(endpoint.served.load(Ordering::SeqCst), LIVE_REQUESTS);
    assert!(
        endpoint.in_flight.most() <= LIVE_IN_FLIGHT,
        "{} at once",
        endpoint.in_flight.most()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_times_a_slow_endpoint_live_and_fails_its_slos() {
    let root = tempfile::tempdir().unwrap();
    // Every answer takes 600 ms: above both SLOs, whatever the load.
    let endpoint = model_endpoint(GOLDEN, 0, Duration::from_millis(600)).await;
    let daemon = latency_daemon(root.path(), &endpoint.host);
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;
    let id = submit(&mut c, "measured", GOOD).await.release.unwrap().id;
    let done = finished(&mut c, id).await;
    assert_eq!(phase(&done), ReleasePhase::Failed, "{}", done.reason);
    assert_eq!(
        (done.environment.as_str(), done.failed_gate.as_str()),
        ("staging", "latency")
    );
    let gate = &done.stages[0].gates[0];
    assert_eq!(gate.outcome, proto::Outcome::Fail as i32, "{}", gate.reason);
    assert!(measured(gate, "p95") >= 600.0, "{}", gate.reason);
    for words in ["exceeds the SLO 250 ms", "exceeds the SLO 500 ms"] {
        assert!(done.reason.contains(words), "{words}: {}", done.reason);
    }
    // Sent with bounded concurrency: side by side, never above the bound.
    assert_eq!(endpoint.served.load(Ordering::SeqCst), LIVE_REQUESTS);
    let most = endpoint.in_flight.most();
    assert!((2..=LIVE_IN_FLIGHT).contains(&most), "{most} at once");
    let shown = status_text(&daemon, &token, id);
    assert!(
        shown.contains("gate latency") && shown.contains("fail"),
        "{shown}"
    );
    assert!(
        shown.contains("p95") && shown.contains("p99") && shown.contains("exceeds the SLO"),
        "{shown}"
    );
}
