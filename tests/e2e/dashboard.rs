//! The operators' dashboard in a real headless Chromium, driven through
//! WebDriver: an operator logs in through the login page and watches a
//! release go through its stages live, without a reload; the canary view
//! of a release under canary (fed by a serving service through
//! `ReportObservations`) draws one chart per metric the judgement carries,
//! with points for both arms, and the judge's table (a screenshot of it is
//! kept under the target directory's `test-output/dashboard/`); a reader
//! sees no approve, abort or roll-back button, and a forged POST, from the
//! page or from another origin with the session's cookie, is refused with
//! 403 while the dashboard's own POST goes through. Under TLS the same
//! surface serves HTTPS with the gRPC certificate, and the cookie is
//! `Secure`.

use crate::access_control::{config, pki};
use crate::canary_service::{HEALTHY, Service};
use crate::common::*;
use crate::webdriver::{Browser, Driver};
use gatehouse::proto::ReleasePhase;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

const JUDGE: &str = "\
alpha = 0.001
[metrics.error_rate]
critical = true
[metrics.latency_mean]
critical = true
";

// Steps long enough that the canary still runs while the page is read
// after the first step's final look (which judges every metric); the test
// aborts it at the end.
const PIPELINE: &str = "\
name = \"canary\"
[[environment]]
name = \"production\"
  [environment.canary]
  steps = [20, 50, 80]
  step_ms = 10000
  min_samples = 60
  config = \"canary.toml\"
";

/// Where the dashboard is, from where the daemon said it serves metrics.
fn dashboard_base(daemon: &Daemon) -> String {
    daemon
        .metrics
        .as_deref()
        .and_then(|m| m.strip_suffix("/metrics"))
        .expect("the daemon serves its HTTP surface")
        .to_string()
}

/// Runs WebDriver's blocking calls off the runtime's turn, so the serving
/// service keeps reporting meanwhile.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// A POST the way another site's page would send it: with the session's
/// cookie (as if the browser attached it) and that site's Origin.
fn forged_post(url: &str, cookie: &str, origin: &str) -> (u16, String) {
    let mut reply = agent()
        .post(url)
        .header("Cookie", format!("gatehouse_session={cookie}"))
        .header("Origin", origin)
        .header("Content-Type", "application/json")
        .send("{\"reason\":\"forged\"}")
        .expect("the POST is answered");
    let status = reply.status().as_u16();
    (
        status,
        reply.body_mut().read_to_string().unwrap_or_default(),
    )
}

/// Where a test of this area keeps what it shows a person.
fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("test-output/dashboard");
    std::fs::create_dir_all(&dir).expect("create the test output directory");
    dir
}

/// The release `id`'s phase as the releases view shows it now.
const ROW_PHASE: &str = "const row = document.querySelector('tr[data-release=\"' + arguments[0] + '\"] .phase'); return row ? row.textContent : null;";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dashboard_follows_releases_live_charts_the_canary_and_keeps_readers_and_other_sites_out() {
    let (chromium, chromedriver) = chromium();
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "canary.toml", JUDGE);
    let pipeline = write(root.path(), "pipeline.toml", PIPELINE);
    let (config, t) = config(root.path());
    let daemon = Daemon::start(
        &root.path().join("data"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--pipeline",
            pipeline.to_str().unwrap(),
        ],
    );
    let base = dashboard_base(&daemon);
    let mut c = daemon.client(Some(&t.admin)).await;
    let driver = blocking(|| Driver::start(&chromium, &chromedriver));

    // An operator logs in through the form; the cookie is out of scripts'
    // and other sites' reach.
    let operator = blocking(|| driver.browser());
    blocking(|| operator.log_in(&base, &t.operator));
    let who = operator.run(
        "return document.getElementById('who').textContent",
        json!([]),
    );
    assert_eq!(who, json!("oncall (operator)"));
    let cookie = operator.cookie("gatehouse_session");
    assert_eq!(cookie["httpOnly"], json!(true), "{cookie}");
    assert_eq!(cookie["sameSite"], json!("Strict"), "{cookie}");
    let operator_cookie = cookie["value"].as_str().unwrap().to_string();

    // A release submitted once the page is open goes through its stages
    // on the page, live, without a reload.
    blocking(|| {
        operator.until(
            Duration::from_secs(20),
            "the releases view and its live feed are up",
            "return document.getElementById('live').textContent === 'live' && document.querySelector('h1') && document.querySelector('h1').textContent === 'Releases';",
        )
    });
    operator.run("window.notReloaded = true;", json!([]));
    let first = submit(&mut c, "canary", &candidate(1))
        .await
        .release
        .unwrap();
    let shown = blocking(|| {
        operator.until(
            Duration::from_secs(60),
            "the first release shows Succeeded",
            &format!(
                "const p = (function() {{ {ROW_PHASE} }}).apply(null, [{}]); return p === 'Succeeded' ? p : null;",
                first.id
            ),
        )
    });
    assert_eq!(shown, json!("Succeeded"));
    let live = operator.run(
        "return { kept: window.notReloaded === true, applied: window.gatehouseApplied.filter(a => a.seq > 0).length };",
        json!([]),
    );
    assert_eq!(live["kept"], json!(true), "the page was reloaded: {live}");
    assert!(
        live["applied"].as_u64().unwrap() >= 3,
        "too few events applied live: {live}"
    );

    // A canary, fed by a serving service through ReportObservations.
    let service = Service::start(c.clone(), "production", |_| HEALTHY).await;
    let done = finished(&mut c, first.id).await;
    service
        .wait_for(Duration::from_secs(10), |r| {
            r.active.as_deref() == Some(done.candidate_digest.as_str())
        })
        .await;
    let second = submit(&mut c, "canary", &candidate(2))
        .await
        .release
        .unwrap();
    wait_for(&mut c, second.id, Duration::from_secs(60), |r| {
        phase(r) == ReleasePhase::Canary
    })
    .await;

    // The operator's release page has the actions; the canary view charts
    // every metric over time for both arms.
    blocking(|| {
        operator.goto(&format!("{base}/#/releases/{}", second.id));
        operator.until(
            Duration::from_secs(20),
            "the operator sees abort and roll back",
            "return !!document.getElementById('abort') && !!document.getElementById('rollback');",
        );
        operator.goto(&format!("{base}/#/releases/{}/canary", second.id));
    });
    let charts = blocking(|| {
        operator.until(
            Duration::from_secs(60),
            "the canary view charts error rate and mean latency over two looks per arm, and the tail latencies of a final look",
            "const charts = [...document.querySelectorAll('#charts svg.chart')].map(c => ({ metric: c.dataset.metric, baseline: c.querySelectorAll('[data-arm=baseline]').length, canary: c.querySelectorAll('[data-arm=canary]').length }));
             const ready = ['error_rate', 'latency_mean'].every(m => charts.some(c => c.metric === m && c.baseline >= 2 && c.canary >= 2))
               && ['latency_p95', 'latency_p99'].every(m => charts.some(c => c.metric === m && c.baseline >= 1 && c.canary >= 1));
             if (!ready) return null;
             const rows = [...document.querySelectorAll('#judge tbody tr')].map(r => ({ metric: r.dataset.metric, baseline: r.children[1].textContent, canary: r.children[2].textContent }));
             return { charts: charts, rows: rows, facts: document.getElementById('canary-facts').textContent, reason: document.getElementById('decision-reason').textContent };",
        )
    });
    let chart_list = charts["charts"].as_array().unwrap();
    let rows = charts["rows"].as_array().unwrap();
    assert!(!rows.is_empty(), "{charts}");
    assert_eq!(
        chart_list.iter().map(|c| &c["metric"]).collect::<Vec<_>>(),
        rows.iter().map(|r| &r["metric"]).collect::<Vec<_>>(),
        "one chart per metric of the judge's table: {charts}"
    );
    for (chart, row) in chart_list.iter().zip(rows) {
        if row["baseline"] != json!("—") && row["canary"] != json!("—") {
            assert!(
                chart["baseline"].as_u64() > Some(0) && chart["canary"].as_u64() > Some(0),
                "a metric with values for both arms has points for both: {chart} {row}"
            );
        }
    }
    let facts = charts["facts"].as_str().unwrap();
    for shown in [
        "Decision", "Step", "Weight", "Samples", "baseline", "canary",
    ] {
        assert!(facts.contains(shown), "{shown:?} not in {facts:?}");
    }
    let png = blocking(|| operator.screenshot());
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let shot = output_dir().join("canary.png");
    std::fs::write(&shot, &png).expect("write the screenshot");
    println!("dashboard screenshot: {}", shot.display());

    // A reader sees no action, on the release or the environments.
    let reader = blocking(|| driver.browser());
    blocking(|| {
        reader.log_in(&base, &t.reader);
        reader.goto(&format!("{base}/#/releases/{}", second.id));
        reader.until(
            Duration::from_secs(20),
            "the reader's release page shows the timeline",
            "return !!document.getElementById('timeline');",
        );
    });
    let buttons = reader.run(
        "return document.querySelectorAll('#approve, #abort, #rollback, button.rollback').length;",
        json!([]),
    );
    assert_eq!(buttons, json!(0), "a reader sees no action");
    let text = reader.run("return document.body.innerText;", json!([]));
    let text = text.as_str().unwrap_or_default();
    assert!(
        !text.contains("[object") && !text.split_whitespace().any(|w| w == "null"),
        "the page shows a value the script failed to render: {text}"
    );
    blocking(|| {
        reader.goto(&format!("{base}/#/environments"));
        reader.until(
            Duration::from_secs(20),
            "the environments view lists production",
            "return !!document.querySelector('#environments tr[data-environment=production]') && !!document.querySelector('#dora svg.chart') && !!document.querySelector('#plugins tbody tr');",
        );
    });
    let buttons = reader.run(
        "return document.querySelectorAll('button.rollback').length;",
        json!([]),
    );
    assert_eq!(buttons, json!(0), "a reader sees no roll-back button");

    // The reader's POST from the page itself, CSRF token and all: refused
    // for the role, as gRPC refuses it.
    let abort_url = format!("{base}/api/releases/{}/abort", second.id);
    let from_page = "return fetch('/api/me').then(r => r.json()).then(me => fetch(arguments[0], { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Gatehouse-CSRF': me.csrf }, body: '{}' })).then(r => r.text().then(t => [r.status, t]));";
    let refused = reader.run(from_page, json!([abort_url]));
    assert_eq!(refused[0], json!(403), "{refused}");
    assert!(
        refused[1].as_str().unwrap().contains("role reader"),
        "{refused}"
    );
    // Another site's POST with the reader's or the operator's cookie.
    let reader_cookie = reader.cookie("gatehouse_session")["value"]
        .as_str()
        .unwrap()
        .to_string();
    for cookie in [&reader_cookie, &operator_cookie] {
        let (status, body) = forged_post(&abort_url, cookie, "http://evil.example");
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("cross-site request refused"), "{body}");
    }
    // The operator's cookie from the right origin but without the session's
    // CSRF token: refused too.
    let (status, body) = forged_post(&abort_url, &operator_cookie, &base);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("X-Gatehouse-CSRF") || body.contains("x-gatehouse-csrf"),
        "{body}"
    );
    assert_eq!(
        phase(&get(&mut c, second.id).await),
        ReleasePhase::Canary,
        "no refused POST changed anything"
    );

    // The operator's own page may: the release ends Aborted, and the
    // reader's page shows it live.
    blocking(|| {
        reader.goto(&base);
        reader.until(
            Duration::from_secs(20),
            "the reader's releases view is up",
            &format!(
                "return (function() {{ {ROW_PHASE} }}).apply(null, [{}]) === 'Canary';",
                second.id
            ),
        );
    });
    let done = operator.run(
        from_page
            .replace("'{}'", "'{\"reason\":\"from the dashboard\"}'")
            .as_str(),
        json!([abort_url]),
    );
    assert_eq!(done[0], json!(200), "{done}");
    blocking(|| {
        reader.until(
            Duration::from_secs(20),
            "the reader sees the release aborted",
            &format!(
                "return (function() {{ {ROW_PHASE} }}).apply(null, [{}]) === 'Aborted';",
                second.id
            ),
        )
    });
    let aborted = get(&mut c, second.id).await;
    assert_eq!(phase(&aborted), ReleasePhase::Aborted);
    assert!(aborted.reason.contains("oncall"), "{}", aborted.reason);
    drop(service);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_metrics_serve_https_with_the_grpc_certificate_and_a_secure_cookie() {
    let (chromium, chromedriver) = chromium();
    let root = tempfile::tempdir().unwrap();
    let (config, t) = config(root.path());
    let pki = pki(root.path());
    let daemon = Daemon::start(
        &root.path().join("data"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--tls-cert",
            pki.server_cert.to_str().unwrap(),
            "--tls-key",
            pki.server_key.to_str().unwrap(),
        ],
    );
    let base = dashboard_base(&daemon);
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let ca = std::fs::read(&pki.ca).unwrap();
    let ca = ureq::tls::Certificate::from_pem(&ca)
        .expect("the CA")
        .to_owned();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
            ca,
        ])))
        .build();
    let https: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();

    let mut metrics = https
        .get(&format!("{base}/metrics"))
        .header("Authorization", format!("Bearer {}", t.reader))
        .call()
        .expect("metrics over https");
    assert_eq!(metrics.status(), 200);
    let text = metrics.body_mut().read_to_string().unwrap();
    assert!(text.contains("gatehouse_build_info"), "{text}");

    let login = https
        .post(&format!("{base}/login"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(format!("token={}", t.reader))
        .expect("login over https");
    assert_eq!(login.status(), 303);
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    for part in [
        "gatehouse_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
    ] {
        assert!(cookie.contains(part), "{part} not in {cookie}");
    }
    // The live feed resumes after the event a client names, in order.
    let mut feed = https
        .get(&format!("{base}/events"))
        .header("Authorization", format!("Bearer {}", t.reader))
        .header("Last-Event-ID", "2")
        .config()
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .call()
        .expect("the live feed over https");
    assert_eq!(feed.status(), 200);
    let mut ids = Vec::new();
    let lines = std::io::BufRead::lines(std::io::BufReader::new(feed.body_mut().as_reader()));
    for line in lines {
        let line = line.expect("a line of the feed");
        if let Some(id) = line.strip_prefix("id:") {
            ids.push(id.trim().parse::<u64>().expect("a sequence number"));
        }
        if let Some(data) = line.strip_prefix("data:") {
            let event: Value = serde_json::from_str(data.trim()).expect("an event as JSON");
            assert_eq!(event["seq"].as_u64(), ids.last().copied(), "{data}");
        }
        if ids.len() == 3 {
            break;
        }
    }
    assert_eq!(ids, [3, 4, 5], "the events after the one named, in order");

    // A wrong token is refused, saying so on the login page.
    let mut wrong = https
        .post(&format!("{base}/login"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send("token=gatehouse_wrong")
        .expect("a refused login is answered");
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong
            .body_mut()
            .read_to_string()
            .unwrap()
            .contains("unknown token")
    );
    // Plaintext to the HTTPS port gets no page.
    let plain = agent()
        .get(&format!("{}/login", base.replace("https://", "http://")))
        .call();
    assert!(
        plain.as_ref().map_or(true, |r| r.status() != 200),
        "{plain:?}"
    );

    // A browser logs in over HTTPS (the test CA is not in its store).
    let driver = Driver::start(&chromium, &chromedriver);
    let browser: Browser = driver.browser();
    browser.log_in(&base, &t.reader);
    assert!(browser.url().starts_with("https://"), "{}", browser.url());
    let secure: Value = browser.cookie("gatehouse_session");
    assert_eq!(secure["secure"], json!(true), "{secure}");
}
