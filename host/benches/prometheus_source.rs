//! Prints what a canary look on Prometheus costs: how many `query_range`
//! requests reach Prometheus per look (the aim: one per metric and arm,
//! nothing more), and how long a look takes, over a real Prometheus
//! (Debian's `prometheus`, found on the PATH) scraping a loopback exporter
//! every 250 ms. Requests are counted by a forwarding proxy in front of
//! Prometheus.
//!
//! Run: `cargo bench -p gatehouse --bench prometheus_source`.

use axum::extract::{RawQuery, State};
use gatehouse::canary::source::{Arms, PrometheusSource, look};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const LOOKS: usize = 50;
/// Seconds of series each look reads.
const RANGE_S: i64 = 60;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Forwards a range query to Prometheus, counting it.
async fn forward(
    State((upstream, count)): State<(String, Arc<AtomicU64>)>,
    RawQuery(query): RawQuery,
) -> (axum::http::StatusCode, String) {
    count.fetch_add(1, Ordering::SeqCst);
    let url = format!(
        "{upstream}/api/v1/query_range?{}",
        query.unwrap_or_default()
    );
    let answer = tokio::task::spawn_blocking(move || {
        let mut r = ureq::get(&url)
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let body = r.body_mut().read_to_string().map_err(|e| e.to_string())?;
        Ok::<_, String>((status, body))
    })
    .await;
    match answer {
        Ok(Ok((status, body))) => (
            axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_GATEWAY),
            body,
        ),
        _ => (axum::http::StatusCode::BAD_GATEWAY, String::new()),
    }
}

#[tokio::main]
async fn main() {
    let binary = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
        .expect("prometheus on the PATH: apt-get install --no-install-recommends prometheus");
    let dir = tempfile::tempdir().expect("tempdir");

    // The exporter: both arms' requests, errors and latency, growing.
    let registry = prometheus::Registry::new();
    let requests = prometheus::IntCounterVec::new(
        prometheus::Opts::new("http_requests_total", "requests"),
        &["variant", "status"],
    )
    .expect("counter");
    let latency = prometheus::HistogramVec::new(
        prometheus::HistogramOpts::new("http_request_duration_seconds", "latency"),
        &["variant"],
    )
    .expect("histogram");
    registry
        .register(Box::new(requests.clone()))
        .expect("register");
    registry
        .register(Box::new(latency.clone()))
        .expect("register");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let exporter = listener.local_addr().expect("addr");
    let gather = registry.clone();
    tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let registry = gather.clone();
                async move {
                    prometheus::TextEncoder::new()
                        .encode_to_string(&registry.gather())
                        .unwrap_or_default()
                }
            }),
        );
        let _ = axum::serve(listener, app).await;
    });
    for variant in ["active", "canary"] {
        for status in ["200", "500"] {
            requests.with_label_values(&[variant, status]);
        }
    }
    tokio::spawn(async move {
        let mut n: u64 = 0;
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        loop {
            tick.tick().await;
            n += 1;
            for variant in ["active", "canary"] {
                let status = if n.is_multiple_of(50) { "500" } else { "200" };
                requests.with_label_values(&[variant, status]).inc();
                latency
                    .with_label_values(&[variant])
                    .observe(0.04 + (n % 23) as f64 / 1e3);
            }
        }
    });

    let port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 250ms\nscrape_configs:\n  - job_name: serving\n    static_configs:\n      - targets: ['{exporter}']\n"
        ),
    )
    .expect("config");
    let mut child = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let upstream = format!("http://127.0.0.1:{port}");

    // The counting proxy the source asks.
    let count = Arc::new(AtomicU64::new(0));
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let proxy_url = format!("http://{}", proxy.local_addr().expect("addr"));
    let app = axum::Router::new()
        .route("/api/v1/query_range", axum::routing::get(forward))
        .with_state((upstream.clone(), count.clone()));
    tokio::spawn(async move {
        let _ = axum::serve(proxy, app).await;
    });

    let source: PrometheusSource = toml::from_str(&format!(
        r#"
url = "{proxy_url}"
interval_ms = 500
[metrics.error_rate]
query = 'sum(rate(http_requests_total{{variant="{{{{arm}}}}", status="500"}}[500ms])) / sum(rate(http_requests_total{{variant="{{{{arm}}}}"}}[500ms]))'
[metrics.latency_mean]
query = 'sum(rate(http_request_duration_seconds_sum{{variant="{{{{arm}}}}"}}[500ms])) / sum(rate(http_request_duration_seconds_count{{variant="{{{{arm}}}}"}}[500ms]))'
"#
    ))
    .expect("source");
    source.validate().expect("valid source");
    let arms = Arms {
        baseline_digest: "a".into(),
        canary_digest: "b".into(),
        environment: "production".into(),
        release: 1,
    };

    // Enough series for the range to be full.
    let started = now_ms();
    println!("waiting {RANGE_S} s for Prometheus to hold a full range...");
    tokio::time::sleep(Duration::from_secs(RANGE_S as u64 + 2)).await;

    let mut took = Vec::with_capacity(LOOKS);
    let mut per_look = Vec::with_capacity(LOOKS);
    let mut intervals = 0;
    for _ in 0..LOOKS {
        let end = now_ms();
        let start = (end - RANGE_S * 1000).max(started);
        let before = count.load(Ordering::SeqCst);
        let (s, a) = (source.clone(), arms.clone());
        let t = Instant::now();
        let (evidence, _) = tokio::task::spawn_blocking(move || look(&s, &a, start, end, 0.01))
            .await
            .expect("look");
        took.push(t.elapsed());
        per_look.push(count.load(Ordering::SeqCst) - before);
        assert!(evidence.error.is_none(), "{:?}", evidence.error);
        for m in &evidence.metrics {
            assert!(m.p_value.is_some(), "{}: {}", m.name, m.note);
        }
        intervals = evidence.metrics[0].intervals;
    }
    let _ = child.kill();
    let _ = child.wait();
    took.sort();
    let pct = |p: f64| took[((took.len() as f64 * p) as usize).min(took.len() - 1)];
    let (fewest, most) = (
        per_look.iter().min().copied().unwrap_or(0),
        per_look.iter().max().copied().unwrap_or(0),
    );
    println!(
        "query_range requests per look, 2 metrics × 2 arms: min {fewest}, max {most} (aim: 4)"
    );
    println!(
        "one look over {RANGE_S} s ({intervals} intervals per arm): median {:.2} ms   p99 {:.2} ms   (n={LOOKS})",
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
}
