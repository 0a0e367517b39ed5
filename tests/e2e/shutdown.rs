//! Stopping the daemon ends open streams instead of waiting on them forever.

use gatehouse::proto;
use gatehouse::server::{self, Settings};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_watch_streams_and_returns() {
    let dir = tempfile::tempdir().unwrap();
    let running = server::start(&Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        ..Settings::default()
    })
    .await
    .unwrap();
    let token = running.generated_admin_token.clone().unwrap();
    let mut c = gatehouse::client::connect(&format!("http://{}", running.addr), Some(&token))
        .await
        .unwrap();
    let mut watch = c
        .environments
        .watch_config(proto::WatchConfigRequest {
            environment: "production".into(),
            after_generation: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        watch.message().await.unwrap().is_some(),
        "the current state comes first"
    );

    tokio::time::timeout(Duration::from_secs(10), running.stop())
        .await
        .expect("stop must not wait on open watch streams")
        .unwrap();
    let after = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("the stream ends");
    assert!(
        !matches!(after, Ok(Some(_))),
        "no more configurations after stop"
    );
}

/// Starts `gatehouse serve` with `args`, waits until it serves, sends
/// SIGTERM, and returns its exit code and standard error.
fn serve_then_sigterm(args: &[&str]) -> (Option<i32>, String) {
    serve_use_then_sigterm(args, |_, _, _| {})
}

/// Like [`serve_then_sigterm`], running `during(addr, token, pid)` while the
/// daemon serves.
fn serve_use_then_sigterm(
    args: &[&str],
    during: impl FnOnce(&str, &str, u32),
) -> (Option<i32>, String) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(args)
        .env("GATEHOUSE_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut token = String::new();
    let mut addr = None;
    for line in std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
    {
        if let Some(t) = line
            .split("): ")
            .nth(1)
            .filter(|_| line.starts_with("admin token"))
        {
            token = t.trim().to_string();
        }
        if let Some(a) = line.strip_prefix("gatehouse listening on ") {
            addr = Some(format!("http://{}", a.trim()));
            break;
        }
    }
    let addr = addr.expect("the daemon serves");
    during(&addr, &token, child.id());
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    for _ in 0..200 {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            return (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("the daemon did not stop within 10 s of SIGTERM");
}

#[test]
fn sigterm_stops_the_daemon_cleanly_and_the_log_has_no_colour_codes_off_a_terminal() {
    let (code, stderr) = serve_then_sigterm(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("terminated (SIGTERM); stopping"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\x1b'),
        "no ANSI codes in a piped log: {stderr:?}"
    );
}

#[test]
fn log_format_json_writes_one_object_per_line() {
    let (code, stderr) = serve_then_sigterm(&["--log-format", "json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "terminated (SIGTERM); stopping"),
        "{stderr}"
    );
    assert!(lines.iter().all(|l| l["level"].is_string()), "{stderr}");
}

/// Every verdict and outcome gets one log line, with its real outcome.
#[test]
fn a_failed_gate_and_its_release_are_logged_as_failed() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
    let (code, stderr) = serve_use_then_sigterm(&["--log-format", "json"], |addr, token, _| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["submit", "--addr", addr, "--token", token, "--wait"])
            .arg(format!("{examples}/candidates/triage-v3-expensive.json"))
            .arg("--attach")
            .arg(format!("golden.jsonl={examples}/golden/triage.jsonl"))
            .arg("--attach")
            .arg(format!(
                "outputs.jsonl={examples}/outputs/triage-v2.outputs.jsonl"
            ))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "the cost gate fails it");
    });
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let with = |outcome: &str, words: &str| {
        lines
            .iter()
            .filter(|l| {
                l["fields"]["outcome"] == outcome
                    && l["fields"]["message"]
                        .as_str()
                        .is_some_and(|m| m.contains(words))
            })
            .count()
    };
    assert_eq!(with("fail", "gate cost-estimator"), 1, "{stderr}");
    assert_eq!(with("pass", "gate config-lint"), 1, "{stderr}");
    assert_eq!(with("failed", "release 1"), 1, "{stderr}");
    assert!(!stderr.contains("\"ok\":true"), "{stderr}");
}

#[test]
fn a_cli_call_to_a_daemon_that_does_not_answer_ends_at_its_deadline_and_says_so() {
    use std::process::Command;
    let signal = |sig: &str, pid: u32| {
        let sent = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    let (code, _) = serve_use_then_sigterm(&[], |addr, token, pid| {
        // Stopped, the daemon's socket still accepts, but nothing answers.
        signal("-STOP", pid);
        let started = std::time::Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args([
                "--addr",
                addr,
                "--token",
                token,
                "--timeout-s",
                "2",
                "status",
            ])
            .output()
            .unwrap();
        let took = started.elapsed();
        signal("-CONT", pid);
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(said.contains("did not answer within"), "{said}");
        assert!(took < Duration::from_secs(10), "the call took {took:?}");
    });
    assert_eq!(code, Some(0));
}
