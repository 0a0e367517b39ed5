//! `GET /metrics` read by a real Prometheus: a daemon's releases, gate
//! verdicts and an operator's rollback, scraped every second and asked back
//! through Prometheus' own query API; the exposition passes `promtool check
//! metrics`; and the endpoint refuses a request without a token.

use crate::common::*;
use gatehouse::proto;
use proto::ReleasePhase;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A port free on loopback now, for a process that takes no port 0.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("its address").port()
}

/// Kills the Prometheus process when the test ends, however it ends.
struct Prometheus(std::process::Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The single value of an instant query, once Prometheus has one.
fn value(api: &str, query: &str) -> Option<f64> {
    let url = format!("{api}/api/v1/query");
    let mut reply = ureq::get(&url).query("query", query).call().ok()?;
    let body: serde_json::Value =
        serde_json::from_str(&reply.body_mut().read_to_string().ok()?).ok()?;
    let result = body["data"]["result"].as_array()?;
    result.first()?["value"][1].as_str()?.parse().ok()
}

/// Waits (at most 60 s) until `query` reads `want` in Prometheus.
fn until(api: &str, query: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    while Instant::now() < deadline {
        last = value(api, query);
        if last == Some(want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("Prometheus read {query} as {last:?}, not {want}, within 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_outcomes_verdicts_and_rollbacks_and_promtool_passes_them() {
    let (prometheus, promtool) = prometheus();
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&root.path().join("data"), &[]);
    let token = daemon.generated_token.clone().unwrap();
    let metrics = daemon.metrics.clone().expect("the daemon serves /metrics");
    let mut c = daemon.client(Some(&token)).await;

    // Two releases that succeed, one a gate stops, then an operator rolls
    // production back to the first.
    let second = [GOOD, b"\n"].concat();
    for (bytes, ends) in [
        (GOOD, ReleasePhase::Succeeded),
        (EXPENSIVE, ReleasePhase::Failed),
        (&second[..], ReleasePhase::Succeeded),
    ] {
        let r = submit_evaluated(&mut c, "model-config", bytes, GOOD_OUTPUTS)
            .await
            .release
            .unwrap();
        let done = finished(&mut c, r.id).await;
        assert_eq!(phase(&done), ends, "{}", done.reason);
    }
    c.environments
        .rollback_environment(proto::RollbackEnvironmentRequest {
            environment: "production".into(),
            reason: "error spike".into(),
        })
        .await
        .expect("rollback");

    // Nothing without a token.
    let refused = ureq::get(&metrics).call();
    assert!(
        matches!(refused, Err(ureq::Error::StatusCode(401))),
        "{refused:?}"
    );
    let text = ureq::get(&metrics)
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .expect("scrape with the token")
        .body_mut()
        .read_to_string()
        .expect("the exposition");
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let checked = check.wait_with_output().expect("promtool");
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    let target = metrics
        .strip_prefix("http://")
        .and_then(|t| t.strip_suffix("/metrics"))
        .expect("an http:// address ending in /metrics");
    let port = free_port();
    let config = write(
        root.path(),
        "prometheus.yml",
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: gatehouse\n    scrape_interval: 1s\n    authorization:\n      credentials: {token}\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    );
    let _prometheus = Prometheus(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                root.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let api = format!("http://127.0.0.1:{port}");
    until(&api, "up{job=\"gatehouse\"}", 1.0);
    let outcome = |o: &str| {
        format!("gatehouse_release_outcomes_total{{pipeline=\"model-config\",outcome=\"{o}\"}}")
    };
    until(&api, &outcome("succeeded"), 2.0);
    until(&api, &outcome("failed"), 1.0);
    until(
        &api,
        "gatehouse_releases{pipeline=\"model-config\",phase=\"succeeded\"}",
        2.0,
    );
    until(
        &api,
        "gatehouse_gate_verdicts_total{gate=\"cost-estimator\",outcome=\"fail\"}",
        1.0,
    );
    // Every gate call was timed, and each that gave a verdict counted its
    // fuel.
    until(
        &api,
        "sum(gatehouse_gate_duration_seconds_count) - sum(gatehouse_gate_verdicts_total)",
        0.0,
    );
    until(
        &api,
        "sum(gatehouse_gate_fuel_instructions_count) + (sum(gatehouse_gate_calls_without_verdict_total) or vector(0)) - sum(gatehouse_gate_verdicts_total)",
        0.0,
    );
    until(
        &api,
        "gatehouse_rollbacks_total{environment=\"production\",cause=\"operator\"}",
        1.0,
    );
    until(&api, "count(gatehouse_build_info)", 1.0);
}
