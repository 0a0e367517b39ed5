//! Canary metrics read from a real Prometheus (`canary::prometheus`): a
//! service's counters by variant, scraped every second, come back as one
//! series per arm; no match is no data; several series, a malformed query,
//! a rate-limiting and a dead Prometheus each say what happened.

use crate::common::*;
use crate::metrics::{free_port, scraping};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use gatehouse::canary::prometheus::{Ask, Vars, query_range, render};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A service's `/metrics`: requests per variant, growing at each scrape.
async fn exported(State(scrapes): State<Arc<AtomicU64>>) -> String {
    let n = scrapes.fetch_add(1, Ordering::SeqCst) + 1;
    format!(
        "# TYPE http_requests_total counter\nhttp_requests_total{{variant=\"active\"}} {}\nhttp_requests_total{{variant=\"canary\"}} {}\n",
        n * 90,
        n * 10
    )
}

/// Answers 429 (retry after 0 s) `refusals` times, then a one-series matrix.
async fn limited(State(refusals): State<Arc<AtomicU64>>) -> axum::response::Response {
    let left = refusals.load(Ordering::SeqCst);
    if left > 0 {
        refusals.store(left - 1, Ordering::SeqCst);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "0")],
            "{\"status\":\"error\",\"error\":\"slow down\"}",
        )
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},\"values\":[[10,\"1\"],[20,\"NaN\"],[30,\"3\"]]}]}}",
    )
        .into_response()
}

async fn serve(app: Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    format!("http://{addr}")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_queries_come_back_per_arm_and_failures_say_what_happened() {
    let (prometheus, _promtool) = prometheus();
    let root = tempfile::tempdir().unwrap();
    let service = serve(
        Router::new()
            .route("/metrics", get(exported))
            .with_state(Arc::new(AtomicU64::new(0))),
    )
    .await;
    let (_running, api) = scraping(
        &prometheus,
        root.path(),
        &format!("{service}/metrics"),
        "unused",
    );
    let ask = |query: String| {
        let (end, api) = (now_ms(), api.clone());
        move || {
            query_range(&Ask {
                url: &api,
                query: &query,
                start_ms: end - 60_000,
                end_ms: end,
                step: Duration::from_secs(1),
                timeout: Duration::from_secs(5),
                attempts: 3,
            })
        }
    };
    let template = r#"sum(http_requests_total{variant="{{arm}}"})"#;
    let vars = |arm| Vars {
        arm,
        digest: "d",
        environment: "production",
        release: 1,
    };

    // Each arm's series, once Prometheus has a few scrapes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let canary = loop {
        let q = render(template, &vars("canary")).unwrap();
        let got = tokio::task::spawn_blocking(ask(q)).await.unwrap().unwrap();
        if got.series.len() >= 3 {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than 3 points in 60 s: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(canary.attempts, 1);
    assert!(
        canary
            .series
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
        "{canary:?}"
    );
    assert!(
        canary
            .series
            .iter()
            .all(|(_, v)| *v > 0.0 && v % 10.0 == 0.0)
    );
    let q = render(template, &vars("active")).unwrap();
    let active = tokio::task::spawn_blocking(ask(q)).await.unwrap().unwrap();
    assert!(
        active.series.iter().all(|(_, v)| v % 90.0 == 0.0),
        "{active:?}"
    );

    // A query that matches nothing is no data: an empty series.
    let q = render(template, &vars("nobody")).unwrap();
    let none = tokio::task::spawn_blocking(ask(q)).await.unwrap().unwrap();
    assert!(none.series.is_empty(), "{none:?}");

    // Two series: refused, saying how to aggregate, and not retried.
    let two = tokio::task::spawn_blocking(ask("http_requests_total".into()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(!two.transient && two.attempts == 1, "{two:?}");
    assert!(
        two.detail.contains("returns 2 series") && two.detail.contains("sum("),
        "{two}"
    );

    // A malformed query: Prometheus' own words, not retried.
    let bad = tokio::task::spawn_blocking(ask("sum(".into()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(!bad.transient && bad.attempts == 1, "{bad:?}");
    assert!(bad.detail.contains("refused the query"), "{bad}");

    // A Prometheus that is down: retried, then a transient failure.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let failed = tokio::task::spawn_blocking(move || {
        query_range(&Ask {
            url: &dead,
            query: "up",
            start_ms: 0,
            end_ms: 60_000,
            step: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            attempts: 3,
        })
    })
    .await
    .unwrap()
    .unwrap_err();
    assert!(failed.transient && failed.attempts == 3, "{failed:?}");

    // Rate limited twice, then answered: NaN dropped, never read as 0.
    let limiter = serve(
        Router::new()
            .route("/api/v1/query_range", get(limited))
            .with_state(Arc::new(AtomicU64::new(2))),
    )
    .await;
    let got = tokio::task::spawn_blocking(move || {
        query_range(&Ask {
            url: &limiter,
            query: "up",
            start_ms: 0,
            end_ms: 30_000,
            step: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            attempts: 3,
        })
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(got.attempts, 3);
    assert_eq!(got.series, vec![(10_000, 1.0), (30_000, 3.0)]);
    assert_eq!(got.dropped, 1);
}
