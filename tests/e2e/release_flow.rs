//! Releases down the bundled pipeline through the real daemon and client:
//! promotion, gate failure with its reason, approvals, deduplication,
//! rollback seen by config watchers, and bad input.

use crate::common::*;
use gatehouse::proto::{self, ReleasePhase};
use std::time::Duration;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_candidate_reaches_production_and_expensive_one_stops_at_cost_gate() {
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&root.path().join("data"), &[]);
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;

    let mut watch = c
        .environments
        .watch_config(proto::WatchConfigRequest {
            environment: "production".into(),
            after_generation: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let initial = watch.message().await.unwrap().unwrap();
    assert!(initial.active.is_none());

    let good = submit_evaluated(&mut c, "model-config", GOOD, GOOD_OUTPUTS)
        .await
        .release
        .unwrap();
    let done = finished(&mut c, good.id).await;
    assert_eq!(phase(&done), ReleasePhase::Succeeded, "{}", done.reason);
    let seen = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(seen.active.as_ref().unwrap().digest, done.candidate_digest);
    assert_eq!(seen.active.unwrap().config, GOOD);
    let gate = &done.stages[1].gates[1];
    assert_eq!(gate.plugin, "cost-estimator");
    let golden = &done.stages[1].gates[0];
    assert_eq!(golden.plugin, "golden-eval");
    assert!(
        golden
            .measurements
            .iter()
            .any(|m| m.name == "pass_rate" && m.value >= 0.9),
        "{golden:?}"
    );
    assert_eq!(
        gate.plugin_digest.len(),
        64,
        "the judging plugin's digest is recorded"
    );
    assert!(
        gate.measurements
            .iter()
            .any(|m| m.name == "cost_per_request")
    );

    let bad = submit_evaluated(&mut c, "model-config", EXPENSIVE, GOOD_OUTPUTS)
        .await
        .release
        .unwrap();
    let stopped = finished(&mut c, bad.id).await;
    assert_eq!(phase(&stopped), ReleasePhase::Failed);
    assert_eq!(stopped.environment, "staging");
    assert_eq!(stopped.failed_gate, "cost-estimator");
    assert!(stopped.reason.contains("budget"), "{}", stopped.reason);
    assert!(stopped.stages[0].promoted && !stopped.stages[1].promoted);

    let prod = live(&mut c, "production").await;
    assert_eq!(
        prod.active.unwrap().digest,
        done.candidate_digest,
        "production untouched by the failed release"
    );
}

/// The bundled pipeline works with nothing feeding a canary: a second good
/// candidate replaces the first in production at once, it does not wait on
/// observations no service sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundled_pipeline_releases_one_good_candidate_after_another() {
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&root.path().join("data"), &[]);
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;
    let second = [GOOD, b"\n"].concat();
    for candidate in [GOOD, &second[..]] {
        let r = submit_evaluated(&mut c, "model-config", candidate, GOOD_OUTPUTS)
            .await
            .release
            .unwrap();
        let done = finished(&mut c, r.id).await;
        assert_eq!(phase(&done), ReleasePhase::Succeeded, "{}", done.reason);
        let prod = live(&mut c, "production").await;
        assert_eq!(prod.active.unwrap().digest, done.candidate_digest);
        assert!(prod.canary.is_none());
    }
}

/// A daemon serving one pipeline (`toml`, written as `p.toml` in `root`),
/// its generated admin token, and a client holding it.
async fn serve_pipeline(
    root: &std::path::Path,
    toml: &str,
) -> (Daemon, String, gatehouse::client::Client) {
    let pipeline = write(root, "p.toml", toml);
    let daemon = Daemon::start(
        &root.join("data"),
        &["--pipeline", pipeline.to_str().unwrap()],
    );
    let token = daemon.generated_token.clone().unwrap();
    let c = daemon.client(Some(&token)).await;
    (daemon, token, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_bytes_twice_are_recognised() {
    let root = tempfile::tempdir().unwrap();
    let (_daemon, _token, mut c) = serve_pipeline(
        root.path(),
        "name = \"gated\"\n[[environment]]\nname = \"prod\"\napprovals = 1\n",
    )
    .await;

    let first = submit(&mut c, "gated", &candidate(1)).await;
    assert!(!first.deduplicated && !first.candidate_known);
    let again = submit(&mut c, "gated", &candidate(1)).await;
    assert!(again.deduplicated && again.candidate_known);
    assert_eq!(
        again.release.unwrap().id,
        first.release.as_ref().unwrap().id
    );

    let id = first.release.unwrap().id;
    c.releases
        .abort_release(proto::AbortReleaseRequest {
            id,
            reason: "superseded".into(),
        })
        .await
        .unwrap();
    let later = submit(&mut c, "gated", &candidate(1)).await;
    assert!(!later.deduplicated && later.candidate_known);
    assert_ne!(later.release.unwrap().id, id);
}

/// A token minted by `gatehouse token new`: the token and its config entry.
fn mint(name: &str, role: &str) -> (String, String) {
    let out = std::process::Command::new(BIN)
        .args(["token", "new", "--name", name, "--role", role])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let token = stdout
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .expect("the token is printed")
        .to_string();
    let entry = stdout[stdout.find("[[tokens]]").expect("a config entry")..].to_string();
    (token, entry)
}

/// With `four_eyes`, the identity that submitted a release cannot approve
/// it, even as an admin; another operator can, and the log names them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_eyes_refuses_the_submitter_as_approver() {
    let root = tempfile::tempdir().unwrap();
    let pipeline = write(
        root.path(),
        "p.toml",
        "name = \"gated\"\nfour_eyes = true\n[[environment]]\nname = \"prod\"\napprovals = 1\n",
    );
    let (alice, alice_entry) = mint("alice", "admin");
    let (bob, bob_entry) = mint("bob", "operator");
    let config = write(
        root.path(),
        "gatehouse.toml",
        &format!("{alice_entry}\n{bob_entry}"),
    );
    let daemon = Daemon::start(
        &root.path().join("data"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--pipeline",
            pipeline.to_str().unwrap(),
        ],
    );
    let mut as_alice = daemon.client(Some(&alice)).await;
    let mut as_bob = daemon.client(Some(&bob)).await;
    let id = submit(&mut as_alice, "gated", &candidate(1))
        .await
        .release
        .unwrap()
        .id;
    wait_for(&mut as_alice, id, Duration::from_secs(30), |r| {
        r.phase == ReleasePhase::AwaitingApproval as i32
    })
    .await;
    let approve = |id| proto::ApproveStageRequest {
        id,
        environment: "prod".into(),
        comment: String::new(),
    };
    let own = as_alice
        .releases
        .approve_stage(approve(id))
        .await
        .unwrap_err();
    assert_eq!(own.code(), Code::FailedPrecondition);
    assert!(
        own.message().contains("alice submitted release") && own.message().contains("four eyes"),
        "{}",
        own.message()
    );
    as_bob.releases.approve_stage(approve(id)).await.unwrap();
    let done = finished(&mut as_alice, id).await;
    assert_eq!(phase(&done), ReleasePhase::Succeeded);
    assert_eq!(done.submitted_by, "alice");
    assert_eq!(done.stages[0].approved_by, ["bob"]);
    let approved: Vec<String> = events(&mut as_alice)
        .await
        .into_iter()
        .filter(|e| e.kind == "release.approved" && e.release_id == id)
        .map(|e| e.actor)
        .collect();
    assert_eq!(approved, ["bob"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_gates_the_stage_and_rollback_restores_previous_digest() {
    let root = tempfile::tempdir().unwrap();
    let (_daemon, _token, mut c) = serve_pipeline(root.path(), "name = \"gated\"\n[[environment]]\nname = \"staging\"\n[[environment]]\nname = \"prod\"\napprovals = 1\n").await;

    let mut digests = Vec::new();
    for n in 1..=2 {
        let id = submit(&mut c, "gated", &candidate(n))
            .await
            .release
            .unwrap()
            .id;
        let waiting = wait_for(&mut c, id, Duration::from_secs(30), |r| {
            r.phase == ReleasePhase::AwaitingApproval as i32
        })
        .await;
        assert_eq!(waiting.environment, "prod");
        let wrong_env = c
            .releases
            .approve_stage(proto::ApproveStageRequest {
                id,
                environment: "staging".into(),
                comment: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(wrong_env.code(), Code::FailedPrecondition);
        c.releases
            .approve_stage(proto::ApproveStageRequest {
                id,
                environment: "prod".into(),
                comment: "looks good".into(),
            })
            .await
            .unwrap();
        let done = finished(&mut c, id).await;
        assert_eq!(phase(&done), ReleasePhase::Succeeded);
        assert_eq!(done.stages[1].approved_by, ["admin"]);
        digests.push(done.candidate_digest);
    }

    let mut watch = c
        .environments
        .watch_config(proto::WatchConfigRequest {
            environment: "prod".into(),
            after_generation: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch
            .message()
            .await
            .unwrap()
            .unwrap()
            .active
            .unwrap()
            .digest,
        digests[1]
    );
    let r = c
        .environments
        .rollback_environment(proto::RollbackEnvironmentRequest {
            environment: "prod".into(),
            reason: "error spike".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.rolled_back_digest, digests[1]);
    let seen = watch.message().await.unwrap().unwrap();
    assert_eq!(seen.active.unwrap().digest, digests[0]);
    let log = events(&mut c).await;
    let rb = log
        .iter()
        .find(|e| e.kind == "env.rolled_back")
        .expect("rollback audited");
    assert!(rb.message.contains("error spike"), "{}", rb.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_status_that_says_what_to_fix_and_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&root.path().join("data"), &[]);
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;
    let before = events(&mut c).await.len();

    let submit_err = |pipeline: &str, bytes: &[u8]| proto::SubmitReleaseRequest {
        pipeline: pipeline.into(),
        candidate: bytes.to_vec(),
        ..Default::default()
    };
    for (req, code, words) in [
        (
            submit_err("model-config", b"{\"model\": "),
            Code::InvalidArgument,
            "not valid JSON",
        ),
        (
            submit_err("model-config", b""),
            Code::InvalidArgument,
            "empty",
        ),
        (
            submit_err("model-config", b"{\"temperature\": 1}"),
            Code::InvalidArgument,
            "\"model\"",
        ),
        (
            submit_err("nope", GOOD),
            Code::NotFound,
            "served pipelines: model-config",
        ),
        (
            submit_err("", GOOD),
            Code::InvalidArgument,
            "pipeline is empty",
        ),
    ] {
        let e = c.releases.submit_release(req).await.unwrap_err();
        assert_eq!(e.code(), code, "{}", e.message());
        assert!(e.message().contains(words), "{}", e.message());
    }
    let e = c
        .environments
        .watch_config(proto::WatchConfigRequest {
            environment: "prod".into(),
            after_generation: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(
        e.message().contains("dev, production, staging"),
        "{}",
        e.message()
    );
    let e = c
        .releases
        .get_release(proto::GetReleaseRequest { id: 42 })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    assert_eq!(
        events(&mut c).await.len(),
        before,
        "refused calls leave no trace in the log"
    );
    assert!(
        c.releases
            .list_releases(proto::ListReleasesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .releases
            .is_empty()
    );
}

#[test]
fn invalid_pipeline_is_refused_at_start_with_file_and_line() {
    let root = tempfile::tempdir().unwrap();
    let pipeline = write(
        root.path(),
        "bad.toml",
        "name = \"p\"\n[[environment]]\nname = \"dev\"\n[[environment.gate]]\nplugin = \"config-lint\"\ntimeout_ms = 0\n",
    );
    let cache = root.path().join("compile-cache");
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(root.path().join("data"))
        .args(["--pipeline", pipeline.to_str().unwrap()])
        .env("GATEHOUSE_COMPILE_CACHE", &cache)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("bad.toml:6:14"), "{stderr}");
    assert!(stderr.contains("timeout_ms must be between"), "{stderr}");
    assert!(
        !cache.exists() && !root.path().join("data").exists(),
        "the pipeline is checked before the store opens or any plugin compiles"
    );
}

#[test]
fn a_taken_port_is_refused_before_any_plugin_compiles() {
    let root = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let cache = root.path().join("compile-cache");
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen", &addr, "--data-dir"])
        .arg(root.path().join("data"))
        .env("GATEHOUSE_COMPILE_CACHE", &cache)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(!cache.exists(), "nothing was compiled: {stderr}");
}

/// Daemons on new data directories share compiled plugins through the
/// compile cache: only the first compiles, and says so.
#[test]
fn a_second_data_dir_loads_compiled_plugins_from_the_shared_cache() {
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("compile-cache");
    let start = |data: &str| {
        let mut child = std::process::Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(root.path().join(data))
            .env("GATEHOUSE_COMPILE_CACHE", &cache)
            .env("GATEHOUSE_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let serving = std::io::BufRead::lines(std::io::BufReader::new(stdout))
            .map_while(Result::ok)
            .any(|l| l.starts_with("gatehouse ready"));
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        assert!(serving, "the daemon serves");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let first = start("first");
    assert!(
        first.contains("compiling 5 plugins (first start only)"),
        "{first}"
    );
    let entries = std::fs::read_dir(&cache)
        .unwrap()
        .flat_map(|engine| std::fs::read_dir(engine.unwrap().path()).unwrap())
        .count();
    assert_eq!(entries, 5, "one entry per embedded plugin");
    let second = start("second");
    assert!(!second.contains("compiling"), "{second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_naming_a_plugin_not_pushed_yet_refuses_releases_until_it_is() {
    let root = tempfile::tempdir().unwrap();
    let pipeline = write(
        root.path(),
        "later.toml",
        "name = \"later\"\n[[environment]]\nname = \"dev\"\n[[environment.gate]]\nplugin = \"answer-grader\"\n",
    );
    let daemon = Daemon::start(
        &root.path().join("data"),
        &["--pipeline", pipeline.to_str().unwrap()],
    );
    let token = daemon.generated_token.clone().expect("token");
    let mut c = daemon.client(Some(&token)).await;
    let refused = c
        .releases
        .submit_release(proto::SubmitReleaseRequest {
            pipeline: "later".into(),
            candidate: candidate(1),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    let message = refused.message();
    assert!(
        message.contains("plugin \"answer-grader\", which is not installed"),
        "{message}"
    );
    assert!(message.contains("gatehouse plugin push"), "{message}");
    assert!(
        c.releases
            .list_releases(proto::ListReleasesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .releases
            .is_empty()
    );
}

/// Runs `gatehouse demo` with `path` as its PATH; its output.
fn demo(path: &std::ffi::OsStr) -> String {
    let out = std::process::Command::new(BIN)
        .arg("demo")
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn demo_shows_one_release_in_production_and_two_stopped_at_named_gates() {
    // No Prometheus on the PATH: the scene's service reports observations.
    let stdout = demo(std::ffi::OsStr::new(""));
    assert!(
        stdout.contains("reports them (ReportObservations)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("release 1: Succeeded, reached production"),
        "{stdout}"
    );
    assert!(
        stdout.contains("release 2: Failed, stopped at gate cost-estimator in staging"),
        "{stdout}"
    );
    // The regressed candidate is stopped by golden-eval, the first gate in
    // staging; drift and latency judged it too, and failed it as well.
    assert!(
        stdout.contains(
            "release 3: Failed, stopped at gate golden-eval in staging (drift and latency failed it too)"
        ),
        "{stdout}"
    );
    // All four gates judged the good candidate before production.
    for gate in ["golden-eval", "cost-estimator", "drift", "latency"] {
        assert!(
            stdout.contains(&format!("gate.verdict production: gate {gate} → pass")),
            "{gate}: {stdout}"
        );
    }
    // adapter-file placed it where services read it, and the file holds
    // what the daemon says production runs.
    let live = stdout
        .lines()
        .find_map(|l| l.strip_prefix("production now runs "))
        .expect("what production runs");
    assert_eq!(live.len(), 12, "{stdout}");
    let placed = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("production ") && l.contains("active.json"))
        .unwrap_or_else(|| panic!("where production was placed: {stdout}"));
    assert!(
        placed.contains("/deploy/production/active.json") && placed.ends_with(live),
        "{placed}"
    );
    assert!(!stdout.contains("MISMATCH"), "{stdout}");
    assert!(stdout.contains("hash chain intact"), "{stdout}");
    // The canary scene: the regressed candidate is taken out of traffic by
    // the daemon, and the scene reports how long that took.
    assert!(
        stdout.contains("RolledBack  pipeline canary-demo"),
        "{stdout}"
    );
    assert!(
        stdout.contains("before the daemon rolled it back") && stdout.contains("error_rate fail"),
        "{stdout}"
    );
    assert!(!stdout.contains("(prometheus)"), "{stdout}");
}

#[test]
fn demo_judges_its_canary_on_prometheus_when_one_is_on_the_path() {
    let (prometheus, _) = prometheus();
    let stdout = demo(prometheus.parent().unwrap().as_os_str());
    assert!(
        stdout.contains("scrapes its /metrics every 250 ms"),
        "{stdout}"
    );
    let why = stdout
        .lines()
        .find_map(|l| l.strip_prefix("why: "))
        .unwrap_or_else(|| panic!("no reason: {stdout}"));
    assert!(
        why.contains("rolled back automatically")
            && why.contains("error_rate fail")
            && why.contains("(prometheus)"),
        "{why}"
    );
    assert!(
        stdout.contains("RolledBack  pipeline canary-demo"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_submit_wait_exit_codes_tell_success_from_gate_failure() {
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&root.path().join("data"), &[]);
    let token = daemon.generated_token.clone().unwrap();
    let good = write(root.path(), "good.json", std::str::from_utf8(GOOD).unwrap());
    let golden = write(
        root.path(),
        "golden.jsonl",
        std::str::from_utf8(GOLDEN).unwrap(),
    );
    let outputs = write(
        root.path(),
        "outputs.jsonl",
        std::str::from_utf8(GOOD_OUTPUTS).unwrap(),
    );
    let bad = write(
        root.path(),
        "bad.json",
        std::str::from_utf8(EXPENSIVE).unwrap(),
    );
    let run = |file: &std::path::Path, json: bool| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args([
            "submit",
            "--wait",
            "--addr",
            &daemon.addr,
            "--token",
            &token,
        ])
        .arg(file)
        .arg("--attach")
        .arg(&golden)
        .arg("--attach")
        .arg(&outputs);
        if json {
            cmd.args(["--output", "json"]);
        }
        cmd.output().unwrap()
    };
    let ok = run(&good, false);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{text}");
    assert!(text.contains("production: promoted"), "{text}");

    let failed = run(&bad, true);
    assert_eq!(failed.status.code(), Some(3));
    let doc: serde_json::Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert_eq!(doc["phase"], "Failed");
    assert_eq!(doc["failed_gate"], "cost-estimator");

    let no_daemon = std::process::Command::new(BIN)
        .args(["submit", "--addr", "http://127.0.0.1:1", "--token", "x"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(no_daemon.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_daemon.stderr).contains("cannot reach the daemon"));
}

/// What a person sees when the address is wrong: one sentence, the cause,
/// then the hint; and a client whose reader goes away ends quietly.
#[test]
fn connection_errors_read_as_one_sentence_and_a_closed_pipe_is_quiet() {
    let run = |addr: &str| {
        let out = std::process::Command::new(BIN)
            .args(["status", "--addr", addr, "--token", "x"])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, refused) = run("127.0.0.1:1");
    assert_eq!(code, Some(1), "{refused}");
    assert_eq!(refused.lines().count(), 1, "{refused}");
    assert_eq!(refused.matches("transport error").count(), 0, "{refused}");
    assert!(
        refused.contains("cannot reach the daemon at 127.0.0.1:1 (")
            && refused
                .trim_end()
                .ends_with("is `gatehouse serve` running there?"),
        "{refused}"
    );

    // https:// is reached over TLS (tests/e2e/access_control.rs); nothing
    // listening reads the same as over plaintext.
    let (code, tls) = run("https://127.0.0.1:1");
    assert_eq!(code, Some(1), "{tls}");
    assert!(
        tls.contains("cannot reach the daemon at https://127.0.0.1:1 ("),
        "{tls}"
    );

    // Something that speaks HTTP/1.1, not gRPC, on a loopback port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    listener.set_nonblocking(true).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    // Answers every connection (the client may retry) until told to stop,
    // for at most 30 s.
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !stopped.load(std::sync::atomic::Ordering::Relaxed)
            && std::time::Instant::now() < deadline
        {
            let Ok((mut conn, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            let _ = conn.set_nonblocking(false);
            let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        }
    });
    let (code, not_grpc) = run(&addr);
    assert_eq!(code, Some(1), "{not_grpc}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    server.join().unwrap();
    assert!(not_grpc.contains("does not answer gRPC"), "{not_grpc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_goes_away_ends_the_client_quietly() {
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&root.path().join("data"), &[]);
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;
    // More audit lines than a pipe holds, so the export is still writing
    // when its reader has gone.
    for n in 0..40 {
        let id = submit(&mut c, "model-config", &candidate(n))
            .await
            .release
            .unwrap()
            .id;
        finished(&mut c, id).await;
    }
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{BIN} audit export --addr {} --token {token} | head -c 1 > /dev/null",
            daemon.addr
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}

/// Ids are dense across restarts: the first release after a restart is
/// the next number, never one a million on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_ids_stay_dense_across_restarts() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let mut ids = Vec::new();
    let mut token = None;
    for round in 0..3u32 {
        let daemon = Daemon::start(&data, &[]);
        token = token.or(daemon.generated_token.clone());
        let mut c = daemon.client(token.as_deref()).await;
        for n in 0..2 {
            let r = submit(&mut c, "model-config", &candidate(round * 10 + n)).await;
            ids.push(r.release.unwrap().id);
        }
        daemon.kill();
    }
    assert_eq!(ids, [1, 2, 3, 4, 5, 6]);
}

/// The client checks attachments before it sends them: a file over the
/// limit is refused by its size, unread; a name comes once; and what was
/// attached is listed by `status --output json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_are_checked_before_sending_and_listed_in_status() {
    let root = tempfile::tempdir().unwrap();
    let good = write(
        root.path(),
        "candidate.json",
        std::str::from_utf8(GOOD).unwrap(),
    );
    // Sparse: a gigabyte by its size, nothing on disk.
    let huge = root.path().join("huge.jsonl");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let submit = |attach: &[String]| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["submit", "--addr", "http://127.0.0.1:1", "--token", "x"])
            .arg(&good);
        for a in attach {
            cmd.args(["--attach", a]);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = submit(&[format!("outputs.jsonl={}", huge.display())]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("over the 33554432-byte limit"), "{err}");
    let small = write(root.path(), "small.jsonl", "{}\n");
    let (code, err) = submit(&[
        format!("outputs.jsonl={}", small.display()),
        format!("outputs.jsonl={}", small.display()),
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("two attachments are named \"outputs.jsonl\""),
        "{err}"
    );

    let daemon = Daemon::start(&root.path().join("data"), &[]);
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;
    let id = submit_evaluated(&mut c, "model-config", GOOD, GOOD_OUTPUTS)
        .await
        .release
        .unwrap()
        .id;
    let out = std::process::Command::new(BIN)
        .args(["status", &id.to_string(), "-o", "json"])
        .args(["--addr", &daemon.addr, "--token", &token])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<_> = doc["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["golden.jsonl", "outputs.jsonl"], "{doc}");
}

/// A first start on a machine serves at once and compiles the embedded
/// plugins meanwhile: reads answer, the health of service "" says
/// NOT_SERVING, a submit waits for the plugins rather than find them missing,
/// and once they are in the daemon says "ready" and health says SERVING.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_serves_while_its_plugins_compile_and_submits_wait_for_them() {
    use std::io::BufRead;
    use tonic_health::pb::health_check_response::ServingStatus;
    let root = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(root.path().join("data"))
        .env("GATEHOUSE_COMPILE_CACHE", root.path().join("empty-cache"))
        .env("GATEHOUSE_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = || {
        rx.recv_timeout(Duration::from_secs(60))
            .expect("a line from serve")
    };
    let token = next_line()
        .split("): ")
        .nth(1)
        .expect("the admin token")
        .trim()
        .to_string();
    let metrics = next_line();
    assert!(
        metrics.starts_with("gatehouse metrics on http://127.0.0.1:")
            && metrics.ends_with("/metrics"),
        "{metrics}"
    );
    let addr = next_line();
    let addr = format!(
        "http://{}",
        addr.strip_prefix("gatehouse listening on ")
            .expect("address")
            .trim()
    );

    let mut c = gatehouse::client::connect(&addr, Some(&token))
        .await
        .unwrap();
    let channel = tonic::transport::Endpoint::from_shared(addr.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let overall = |h: &mut tonic_health::pb::health_client::HealthClient<_>| {
        let mut h = h.clone();
        async move {
            h.check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .status
        }
    };
    assert_eq!(
        overall(&mut health).await,
        ServingStatus::NotServing as i32,
        "compiling takes seconds"
    );
    let envs = c
        .environments
        .list_environments(proto::ListEnvironmentsRequest {})
        .await
        .expect("reads answer while the plugins compile");
    assert!(!envs.into_inner().environments.is_empty());

    // The default pipeline's gates are embedded: the submit waits for them.
    let submitted = c
        .releases
        .submit_release(proto::SubmitReleaseRequest {
            pipeline: "model-config".into(),
            candidate: GOOD.to_vec(),
            ..Default::default()
        })
        .await
        .expect("a submit during the compile waits, then goes ahead")
        .into_inner();
    assert!(submitted.release.is_some());
    assert_eq!(next_line(), "gatehouse ready: plugins installed");
    assert_eq!(overall(&mut health).await, ServingStatus::Serving as i32);
    let _ = child.kill();
    let _ = child.wait();
}

/// `gatehouse pipeline check FILES...`, offline.
fn pipeline_check(files: &[&std::path::Path]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(["pipeline", "check"])
        .args(files)
        .output()
        .unwrap()
}

/// A plugin name one typo from a known one fails the start at its line with
/// a did-you-mean, before anything is created; `pipeline check` runs the
/// same check offline, over several files, and reports every one.
#[test]
fn a_plugin_typo_is_found_at_load_by_serve_and_by_pipeline_check() {
    let root = tempfile::tempdir().unwrap();
    let typo = write(
        root.path(),
        "typo.toml",
        "name = \"p\"\n[[environment]]\nname = \"dev\"\n[[environment.gate]]\nplugin = \"cost-estimater\"\n",
    );
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(root.path().join("data"))
        .args(["--pipeline", typo.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("typo.toml:5:10"), "{stderr}");
    assert!(
        stderr.contains("did you mean \"cost-estimator\"?"),
        "{stderr}"
    );
    assert!(!root.path().join("data").exists(), "nothing was created");

    let standard = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/standard-pipeline.toml"
    ));
    let ok = pipeline_check(&[standard]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        stdout.contains("ok: ") && stdout.contains("pipeline standard, dev → staging → production"),
        "{stdout}"
    );

    let later = write(
        root.path(),
        "later.toml",
        "name = \"standard\"\n[[environment]]\nname = \"dev\"\n[[environment.gate]]\nplugin = \"answer-grader\"\n",
    );
    let bad = pipeline_check(&[standard, &typo, &later]);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("typo.toml:5:10") && stderr.contains("did you mean"),
        "{stderr}"
    );
    assert!(
        stderr.contains("pipeline \"standard\" is also defined in"),
        "{stderr}"
    );
    let offline = pipeline_check(&[&later]);
    assert!(offline.status.success());
    assert!(
        String::from_utf8_lossy(&offline.stdout)
            .contains("\"answer-grader\" (dev) is not embedded"),
        "a plugin to be pushed is a note, not an error"
    );
}

/// `--version` names the commit and the wasmtime; `completions` prints a
/// script a shell loads, quietly into a closed pipe too.
#[test]
fn version_names_commit_and_wasmtime_and_completions_print() {
    let out = std::process::Command::new(BIN)
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&out.stdout);
    let lock = include_str!("../../Cargo.lock");
    let wasmtime = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"wasmtime\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .unwrap()
        .trim_matches('"');
    assert!(
        version.contains(&format!("wasmtime {wasmtime}")),
        "{version}"
    );
    assert!(version.contains("(commit "), "{version}");
    for shell in ["bash", "zsh", "fish"] {
        let out = std::process::Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("gatehouse")
                && script.contains("submit")
                && script.contains("pipeline"),
            "{shell}"
        );
    }
    let piped = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{BIN} completions bash | head -1"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&piped.stderr).is_empty(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
}

/// The CLI's operator verbs: `pipeline list`, `env list`, the `status`
/// table (and an unknown pipeline as an error), `approve` without `--env`,
/// `watch -o json` as JSON lines, and client flags refused where they mean
/// nothing.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_lists_what_is_served_and_approves_the_stage_a_release_waits_at() {
    let root = tempfile::tempdir().unwrap();
    let (daemon, token, mut c) = serve_pipeline(root.path(), "name = \"gated\"\n[[environment]]\nname = \"staging\"\n[[environment]]\nname = \"prod\"\napprovals = 1\n").await;
    let gatehouse = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .args(args)
            .args(["--addr", &daemon.addr, "--token", &token])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (code, out, err) = gatehouse(&["pipeline", "list", "-o", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["name"], "gated", "{out}");
    assert_eq!(listed[0]["stages"][1]["environment"], "prod", "{out}");
    assert_eq!(listed[0]["stages"][1]["approvals_required"], 1, "{out}");
    let (_, out, _) = gatehouse(&["pipeline", "list"]);
    assert!(out.starts_with("gated: staging → prod"), "{out}");

    let id = submit(&mut c, "gated", &candidate(1))
        .await
        .release
        .unwrap()
        .id;
    wait_for(&mut c, id, Duration::from_secs(30), |r| {
        r.phase == ReleasePhase::AwaitingApproval as i32
    })
    .await;

    let (code, out, err) = gatehouse(&["status"]);
    assert_eq!(code, Some(0), "{err}");
    let mut lines = out.lines();
    let header: Vec<_> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PHASE", "ENVIRONMENT", "CANDIDATE", "AGE", "REASON"]
    );
    let row: Vec<_> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row[0], id.to_string(), "{out}");
    assert_eq!(row[2], "prod", "{out}");
    let (code, _, err) = gatehouse(&["status", "--pipeline", "gatd"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("\"gatd\" is not served") && err.contains("gated"),
        "{err}"
    );

    // approve with no --env approves where the release waits, and says
    // what the release does now.
    let (code, out, err) = gatehouse(&["approve", &id.to_string(), "--comment", "ok"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&format!("release {id}")), "{out}");
    let (code, out, err) = gatehouse(&["watch", &id.to_string(), "-o", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let docs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert!(
        docs.iter().any(|d| d["kind"] == "release.approved"),
        "{out}"
    );
    assert_eq!(docs.last().unwrap()["phase"], "Succeeded", "{out}");
    let (code, _, err) = gatehouse(&["approve", &id.to_string()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("waits at no stage"), "{err}");

    let (code, out, err) = gatehouse(&["env", "list", "-o", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let envs: serde_json::Value = serde_json::from_str(&out).unwrap();
    let prod = envs
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["environment"] == "prod")
        .expect("prod listed");
    assert_eq!(prod["release_id"], id, "{out}");
    let (_, out, _) = gatehouse(&["env", "list"]);
    assert!(out.starts_with("ENVIRONMENT"), "{out}");

    let file = root.path().join("p.toml");
    let (code, _, err) = gatehouse(&["pipeline", "check", file.to_str().unwrap()]);
    assert_eq!(
        code,
        Some(2),
        "a local verb refuses --addr and --token: {err}"
    );
    assert!(err.contains("--addr means nothing"), "{err}");
    let help = |verb: &[&str]| {
        let out = std::process::Command::new(BIN)
            .args(verb)
            .arg("--help")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for local in [&["serve"][..], &["canary", "judge"], &["plugin", "test"]] {
        let text = help(local);
        assert!(
            !text.contains("--addr") && !text.contains("--token"),
            "{local:?}: {text}"
        );
    }
    let text = help(&["status"]);
    assert!(
        text.contains("--addr") && text.contains("EXAMPLES:"),
        "{text}"
    );
}

/// A parameter its plugin refuses (a misspelt key, a negative price) is
/// found when the pipeline loads, at its place in the file, by `pipeline
/// check` and by `serve`, which stops once its plugins are installed (it
/// serves while they compile); the bundled pipelines pass the same check.
#[test]
fn a_param_a_plugin_refuses_is_found_at_load_at_its_place_in_the_file() {
    let root = tempfile::tempdir().unwrap();
    let head = "name = \"p\"\n[[environment]]\nname = \"dev\"\n[[environment.gate]]\nplugin = \"cost-estimator\"\n";
    let typo = write(
        root.path(),
        "cost.toml",
        &format!("{head}params = {{ requests_per_mnth = 1000 }}\n"),
    );
    let negative = write(
        root.path(),
        "negative.toml",
        &format!("{head}params = {{ max_cost_per_request = -1 }}\n"),
    );
    let out = pipeline_check(&[&typo, &negative]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cost.toml:6:12")
            && stderr.contains("refuses param `requests_per_mnth`")
            && stderr.contains("fix it in the pipeline"),
        "{stderr}"
    );
    assert!(
        stderr.contains("negative.toml:6:12")
            && stderr.contains("refuses param `max_cost_per_request`")
            && stderr.contains("-1 is not a positive number of USD"),
        "{stderr}"
    );

    let examples = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples"));
    let bundled: Vec<_> = [
        "pipeline.toml",
        "canary-pipeline.toml",
        "standard-pipeline.toml",
    ]
    .iter()
    .map(|f| examples.join(f))
    .collect();
    let bundled: Vec<&std::path::Path> = bundled.iter().map(|p| p.as_path()).collect();
    let ok = pipeline_check(&bundled);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let serve = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(root.path().join("data"))
        .args(["--pipeline", typo.to_str().unwrap()])
        .env("GATEHOUSE_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert_eq!(serve.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cost.toml:6:12") && stderr.contains("requests_per_mnth"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the daemon stopped: fix the pipeline"),
        "{stderr}"
    );
}
