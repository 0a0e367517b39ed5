//! `GET /metrics` read by a real Prometheus: a daemon's releases, gate
//! verdicts, an operator's rollback and a canary the daemon rolled back on
//! its own, scraped every second and asked back through Prometheus' own
//! query API; the exposition passes `promtool check metrics`; the running
//! canary's step, weight and arms show while it runs and go when it ends;
//! and the endpoint refuses a request without a token.

use crate::canary_rollback::{release_candidate, scene};
use crate::canary_service::{Behaviour, HEALTHY};
use crate::common::*;
use gatehouse::proto;
use proto::ReleasePhase;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A port free on loopback now, for a process that takes no port 0.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("its address").port()
}

/// Kills the Prometheus process when the test ends, however it ends.
pub struct Prometheus(std::process::Child);

impl Prometheus {
    /// Stops it now (SIGKILL), as an outage would.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The single value of an instant query, once Prometheus has one.
pub fn value(api: &str, query: &str) -> Option<f64> {
    let url = format!("{api}/api/v1/query");
    let mut reply = ureq::get(&url).query("query", query).call().ok()?;
    let body: serde_json::Value =
        serde_json::from_str(&reply.body_mut().read_to_string().ok()?).ok()?;
    let result = body["data"]["result"].as_array()?;
    result.first()?["value"][1].as_str()?.parse().ok()
}

/// Waits (at most 60 s) until `query` reads `want` in Prometheus.
pub fn until(api: &str, query: &str, want: f64) {
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

/// A Prometheus scraping `metrics` every second with `token`, its data
/// under `root`; and the address of its HTTP API.
pub fn scraping(
    prometheus: &std::path::Path,
    root: &std::path::Path,
    metrics: &str,
    token: &str,
) -> (Prometheus, String) {
    let target = metrics
        .strip_prefix("http://")
        .and_then(|t| t.strip_suffix("/metrics"))
        .expect("an http:// address ending in /metrics");
    let (running, api) = start_prometheus(
        prometheus,
        root,
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: gatehouse\n    scrape_interval: 1s\n    authorization:\n      credentials: {token}\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    );
    until(&api, "up{job=\"gatehouse\"}", 1.0);
    (running, api)
}

/// Prometheus with `config` (its `prometheus.yml`) on a free loopback
/// port, its data under `root`; and the address of its HTTP API.
pub fn start_prometheus(
    prometheus: &std::path::Path,
    root: &std::path::Path,
    config: &str,
) -> (Prometheus, String) {
    let file = write(root, "prometheus.yml", config);
    let port = free_port();
    let running = Prometheus(
        Command::new(prometheus)
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                root.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    (running, format!("http://127.0.0.1:{port}"))
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
    let text = scrape(&metrics, &token);
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

    let (_prometheus, api) = scraping(&prometheus, root.path(), &metrics, &token);
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
    // DORA over the last 30 days: production was deployed to twice, and
    // lead times were measured.
    until(
        &api,
        "gatehouse_dora{environment=\"production\",figure=\"deployments_per_day\"} > bool 0",
        1.0,
    );
    until(
        &api,
        "gatehouse_dora{environment=\"production\",figure=\"lead_time_median_seconds\"} >= bool 0",
        1.0,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaries_show_while_they_run_and_a_rollback_on_its_own_counts_once_it_ends() {
    let (prometheus, _) = prometheus();
    // The candidate of revision 2 spikes errors; any other serves well.
    let mut s = scene(Behaviour {
        error_rate: 0.25,
        ..HEALTHY
    })
    .await;
    let metrics = s
        .daemon
        .metrics
        .clone()
        .expect("the daemon serves /metrics");
    let token = s.token.clone();
    let mut c = s.daemon.client(Some(&token)).await;

    // A clean candidate walks its two canary steps (1.2 s each) while
    // /metrics is read: the first exposition showing both arms with
    // samples is kept.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (metrics, token, stop) = (metrics.clone(), token.clone(), stop.clone());
        std::thread::spawn(move || {
            let has = |text: &str, series: &str| {
                text.lines().any(|l| {
                    l.strip_prefix(series)
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .is_some_and(|v| v > 0.0)
                })
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                let text = scrape(&metrics, &token);
                let arm = |a: &str| {
                    format!("gatehouse_canary_samples{{arm=\"{a}\",environment=\"production\"}}")
                };
                if has(&text, &arm("baseline")) && has(&text, &arm("canary")) {
                    return Some(text);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            None
        })
    };
    let clean = submit(&mut c, "canary", &candidate(3))
        .await
        .release
        .unwrap();
    let clean = finished(&mut c, clean.id).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(phase(&clean), ReleasePhase::Succeeded, "{}", clean.reason);
    let running = watcher
        .join()
        .expect("the scraper")
        .expect("/metrics showed the running canary's arms with samples");
    assert!(
        running
            .lines()
            .any(|l| l.starts_with("gatehouse_canary_step{environment=\"production\"} ")),
        "{running}"
    );
    let weight = running
        .lines()
        .find_map(|l| {
            l.strip_prefix("gatehouse_canary_weight_percent{environment=\"production\"} ")
        })
        .unwrap_or_else(|| panic!("no canary weight in:\n{running}"));
    assert!(["20", "50"].contains(&weight), "{weight}");
    assert!(
        running.lines().any(|l| l.starts_with(
            "gatehouse_canary_metric_value{arm=\"canary\",environment=\"production\",metric=\"error_rate\"}"
        )),
        "{running}"
    );
    // Once it ended, its gauges are gone.
    let after = scrape(&metrics, &token);
    assert!(
        !after.contains("gatehouse_canary_weight_percent{"),
        "{after}"
    );

    // The regressed candidate: rolled back by the daemon on its own.
    let done = release_candidate(&mut s).await;
    assert_eq!(phase(&done), ReleasePhase::RolledBack, "{}", done.reason);

    let root = tempfile::tempdir().unwrap();
    let (_prometheus, api) = scraping(&prometheus, root.path(), &metrics, &token);
    until(
        &api,
        "gatehouse_rollbacks_total{environment=\"production\",cause=\"automatic\"}",
        1.0,
    );
    until(
        &api,
        "gatehouse_canary_judgements_total{environment=\"production\",decision=\"roll_back\"}",
        1.0,
    );
    // Each of the clean candidate's two steps passed on a judgement.
    until(
        &api,
        "gatehouse_canary_judgements_total{environment=\"production\",decision=\"promote\"}",
        2.0,
    );
    let outcome = |o: &str| {
        format!("gatehouse_release_outcomes_total{{pipeline=\"canary\",outcome=\"{o}\"}}")
    };
    until(&api, &outcome("rolled_back"), 1.0);
    until(&api, &outcome("succeeded"), 2.0);
    // How long the rollback took, from the judgement to the restored
    // configuration: once, and within a second.
    until(
        &api,
        "gatehouse_rollback_seconds_count{environment=\"production\"}",
        1.0,
    );
    until(
        &api,
        "gatehouse_rollback_seconds_bucket{environment=\"production\",le=\"1\"}",
        1.0,
    );
    until(
        &api,
        "gatehouse_canary_observations_total{environment=\"production\",result=\"accepted\"} > bool 0",
        1.0,
    );
    until(
        &api,
        "gatehouse_environment_drifted{environment=\"production\"}",
        0.0,
    );
    until(&api, "gatehouse_audit_chain_intact", 1.0);
    assert_eq!(
        value(&api, "sum(gatehouse_rollbacks_total{cause=\"operator\"})"),
        None,
        "no operator rolled anything back"
    );
}
