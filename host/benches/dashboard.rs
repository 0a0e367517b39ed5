//! Prints two figures of the dashboard, measured in a real headless
//! Chromium driven through WebDriver against a daemon on loopback:
//!
//! - first page load: the bytes transferred for the dashboard (the page and
//!   every asset and JSON read it makes on load; the live `/events` stream
//!   left out), as the browser's Resource Timing counts them, headers
//!   included, in a fresh profile (empty cache); and the same as an HTTP
//!   client reads it. Aim: < 300 KB.
//! - live update latency: from an audit event's commit (its `at_ms`) to the
//!   moment the page applied it to the DOM (`Date.now()` recorded right
//!   after, in `window.gatehouseApplied`), over the events of 20 releases
//!   submitted one after the other while the releases view is open. Both
//!   clocks are this machine's. Aim: median < 100 ms.
//!
//! Run: `cargo bench -p gatehouse --bench dashboard`. Needs `chromium` and
//! `chromedriver` on PATH (Debian: `apt-get install --no-install-recommends
//! chromium chromium-driver`).

// Shared with the end-to-end tests, which use more of it.
#[allow(dead_code)]
#[path = "../../tests/e2e/webdriver.rs"]
mod webdriver;

use gatehouse::api::auth::{Role, TokenEntry, generate_token, hash_token};
use gatehouse::client;
use gatehouse::proto;
use gatehouse::server::{self, Settings};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

const PIPELINE: &str =
    "name = \"bench\"\n[[environment]]\nname = \"dev\"\n[[environment]]\nname = \"staging\"\n";
const RELEASES: u32 = 20;

fn on_path(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!("{name} is not on PATH; install it with `apt-get install --no-install-recommends chromium chromium-driver`")
        })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

async fn bench() {
    let (chromium, chromedriver) = (on_path("chromium"), on_path("chromedriver"));
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = dir.path().join("bench.toml");
    std::fs::write(&pipeline, PIPELINE).expect("pipeline");
    let token = generate_token().expect("a token");
    let running = server::start(&Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().join("data"),
        pipelines: vec![pipeline],
        tokens: vec![TokenEntry {
            name: "bench".into(),
            role: Role::Admin,
            sha256: hex::encode(hash_token(&token)),
        }],
        ..Settings::default()
    })
    .await
    .expect("daemon");
    let base = format!("http://{}", running.http_addr.expect("the HTTP surface"));
    let mut c = client::connect(&format!("http://{}", running.addr), Some(&token))
        .await
        .expect("connect");
    // One release first, so the list the page loads is not empty.
    submit_and_finish(&mut c, 0).await;

    let driver = tokio::task::block_in_place(|| webdriver::Driver::start(&chromium, &chromedriver));
    let browser = tokio::task::block_in_place(|| {
        let b = driver.browser();
        b.log_in(&base, &token);
        b.until(
            Duration::from_secs(20),
            "the releases view is live",
            "return document.getElementById('live').textContent === 'live' && !!document.querySelector('tr[data-release]');",
        );
        b
    });

    // First page load, as the browser counted it.
    let load = browser.run(
        "const nav = performance.getEntriesByType('navigation')[0];
         const res = performance.getEntriesByType('resource').filter(r => !r.name.endsWith('/events'));
         return { page: nav.transferSize, assets: res.map(r => [new URL(r.name).pathname, r.transferSize]) };",
        json!([]),
    );
    let page = load["page"].as_u64().unwrap_or(0);
    let assets: Vec<(String, u64)> = load["assets"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r[0].as_str().unwrap_or("?").to_string(),
                        r[1].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let total = page + assets.iter().map(|(_, n)| n).sum::<u64>();
    println!(
        "{:<64} {:>9.1} KB (target < 300 KB)",
        "first page load, transferred (browser, headers included)",
        total as f64 / 1000.0
    );
    println!(
        "    / {page} B; {}",
        assets
            .iter()
            .map(|(p, n)| format!("{p} {n} B"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut bodies = 0;
    for path in [
        "/",
        "/assets/app.css",
        "/assets/charts.js",
        "/assets/app.js",
        "/api/me",
        "/api/releases?limit=100",
    ] {
        let mut r = agent
            .get(&format!("{base}{path}"))
            .header("Authorization", format!("Bearer {token}"))
            .call()
            .expect("a page or asset");
        bodies += r.body_mut().read_to_vec().map(|b| b.len()).unwrap_or(0);
    }
    println!(
        "{:<64} {:>9.1} KB (uncompressed; the surface serves no gzip)",
        "first page load, bodies (HTTP client)",
        bodies as f64 / 1000.0
    );

    // Live updates: events of releases submitted while the page is open.
    browser.run("window.gatehouseApplied.length = 0;", json!([]));
    for n in 1..=RELEASES {
        submit_and_finish(&mut c, n).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let applied = browser.run("return window.gatehouseApplied;", json!([]));
    let mut all: Vec<f64> = Vec::new();
    let mut firsts: Vec<f64> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for a in applied.as_array().cloned().unwrap_or_default() {
        let lag =
            a["applied_ms"].as_f64().unwrap_or(f64::NAN) - a["at_ms"].as_f64().unwrap_or(f64::NAN);
        all.push(lag);
        if a["kind"] == "release.submitted" && seen.insert(a["release"].as_u64().unwrap_or(0)) {
            firsts.push(lag);
        }
    }
    for v in [&mut all, &mut firsts] {
        v.sort_by(|a, b| a.total_cmp(b));
    }
    println!(
        "{:<64} {:>9.1} ms median, {:.1} ms p95 over {} events (target median < 100 ms)",
        "live update: event committed -> applied to the DOM",
        percentile(&all, 0.5),
        percentile(&all, 0.95),
        all.len()
    );
    println!(
        "{:<64} {:>9.1} ms median, {:.1} ms p95 over {} releases",
        "  of which each release's first event (a new row)",
        percentile(&firsts, 0.5),
        percentile(&firsts, 0.95),
        firsts.len()
    );
    drop(browser);
    drop(driver);
    running.stop().await.expect("stop");
}

async fn submit_and_finish(c: &mut client::Client, n: u32) {
    let candidate = format!(
        r#"{{"model":"gpt-4o-mini","prompt_template":"Label: {{{{input}}}}","parameters":{{"temperature":0.1,"max_tokens":16}},"revision":{n}}}"#
    );
    let id = c
        .releases
        .submit_release(proto::SubmitReleaseRequest {
            pipeline: "bench".into(),
            candidate: candidate.into_bytes(),
            ..Default::default()
        })
        .await
        .expect("submit")
        .into_inner()
        .release
        .expect("a release")
        .id;
    for _ in 0..3000 {
        let r = c
            .releases
            .get_release(proto::GetReleaseRequest { id })
            .await
            .expect("get")
            .into_inner();
        if r.terminal {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("release {id} did not finish within 30 s");
}
