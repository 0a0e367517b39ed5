//! Notifications to real HTTP receivers on loopback: one that fails its
//! first three deliveries, one that checks every signature, one that is
//! down while the daemon is killed and started again, and one that never
//! answers. Each event arrives once per idempotency key, in log order;
//! give-ups are audited, logged and counted; releases never wait.

use crate::common::*;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use gatehouse::proto;
use hmac::{Hmac, Mac};
use proto::ReleasePhase;
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "s3cret-for-receivers";

/// One request as a receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    key: String,
    event: String,
    seq: u64,
    release: Option<u64>,
    signed_right: bool,
}

/// A receiver: what it was sent, and how many requests it fails first.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
    fail_first: Arc<Mutex<u32>>,
    /// Keys of the requests it failed, in order.
    failed: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn failing_first(n: u32) -> Receiver {
        let r = Receiver::default();
        *r.fail_first.lock().unwrap() = n;
        r
    }

    /// Accepted deliveries, first arrival of each key only.
    fn distinct(&self) -> Vec<Seen> {
        let mut keys = std::collections::BTreeSet::new();
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| keys.insert(s.key.clone()))
            .cloned()
            .collect()
    }
}

async fn hook(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let key = header("idempotency-key");
    {
        let mut left = r.fail_first.lock().unwrap();
        if *left > 0 {
            *left -= 1;
            r.failed.lock().unwrap().push(key);
            return StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let v: serde_json::Value = serde_json::from_slice(&body).expect("a JSON body");
    assert_eq!(v["id"], key.as_str(), "the body names the idempotency key");
    assert_eq!(v["event"], header("x-gatehouse-event").as_str());
    r.seen.lock().unwrap().push(Seen {
        key,
        event: v["event"].as_str().unwrap_or_default().to_string(),
        seq: v["audit_seq"].as_u64().unwrap_or_default(),
        release: v["release"].as_u64(),
        signed_right: header("x-gatehouse-signature-256") == expected,
    });
    StatusCode::NO_CONTENT
}

/// Serves `r` on `listener` until the returned handle is aborted.
fn serve(listener: tokio::net::TcpListener, r: Receiver) -> tokio::task::JoinHandle<()> {
    let app = Router::new().route("/hook", post(hook)).with_state(r);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

async fn bind() -> (tokio::net::TcpListener, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    (l, url)
}

fn receiver_entry(name: &str, url: &str, extra: &str) -> String {
    format!(
        "[[notify]]\nname = \"{name}\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\nretry_first_ms = 50\nretry_max_ms = 200\n{extra}\n"
    )
}

/// Waits (at most 60 s) until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "within 60 s: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_arrives_once_per_key_in_order_signed_through_failures_and_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let flaky = Receiver::failing_first(3);
    let checker = Receiver::default();
    let late = Receiver::default();
    let (l, flaky_url) = bind().await;
    let _flaky = serve(l, flaky.clone());
    let (l, checker_url) = bind().await;
    let _checker = serve(l, checker.clone());
    // The late receiver's port is known but nothing listens there yet.
    let (l, late_url) = bind().await;
    let late_addr = l.local_addr().unwrap();
    drop(l);
    let config = write(
        root.path(),
        "gatehouse.toml",
        &[
            receiver_entry("flaky", &flaky_url, ""),
            receiver_entry("checker", &checker_url, ""),
            receiver_entry("late", &late_url, "give_up_after_s = 600"),
        ]
        .concat(),
    );
    let args = ["--config", config.to_str().unwrap()];
    let daemon = Daemon::start(&data, &args);
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;

    let mut ids = Vec::new();
    for (bytes, ends) in [
        (GOOD, ReleasePhase::Succeeded),
        (EXPENSIVE, ReleasePhase::Failed),
    ] {
        let r = submit_evaluated(&mut c, "model-config", bytes, GOOD_OUTPUTS)
            .await
            .release
            .unwrap();
        let done = finished(&mut c, r.id).await;
        assert_eq!(phase(&done), ends, "{}", done.reason);
        ids.push(r.id);
    }
    until("the flaky and checking receivers get both outcomes", || {
        flaky.distinct().len() == 2 && checker.distinct().len() == 2
    })
    .await;
    // The flaky receiver failed the first event three times: the retries
    // carried the same key.
    let failed = flaky.failed.lock().unwrap().clone();
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert!(
        failed.iter().all(|k| *k == flaky.distinct()[0].key),
        "{failed:?}"
    );
    let metrics = daemon.metrics.clone().expect("/metrics");
    let text = scrape(&metrics, &token);
    for line in [
        "gatehouse_notification_attempts_failed_total{notify=\"flaky\",reason=\"status_5xx\"} 3",
        "gatehouse_notifications_delivered_total{event=\"release.succeeded\",notify=\"checker\"} 1",
        "gatehouse_notifications_delivered_total{event=\"release.failed\",notify=\"flaky\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing in:\n{text}"
        );
    }

    // The daemon dies while the late receiver is still down, and a third
    // release ends after the restart.
    daemon.kill();
    let daemon = Daemon::start(&data, &args);
    let mut c = daemon.client(Some(&token)).await;
    let r = submit_evaluated(
        &mut c,
        "model-config",
        &[GOOD, b"\n"].concat(),
        GOOD_OUTPUTS,
    )
    .await
    .release
    .unwrap();
    assert_eq!(
        phase(&finished(&mut c, r.id).await),
        ReleasePhase::Succeeded
    );
    ids.push(r.id);
    let l = tokio::net::TcpListener::bind(late_addr).await.unwrap();
    let _late = serve(l, late.clone());
    until("every receiver gets all three outcomes", || {
        [&flaky, &checker, &late]
            .iter()
            .all(|r| r.distinct().len() == 3)
    })
    .await;
    // A moment more, for a duplicate to show if one were coming.
    tokio::time::sleep(Duration::from_millis(500)).await;

    for (name, r) in [("flaky", &flaky), ("checker", &checker), ("late", &late)] {
        let got = r.distinct();
        let told: Vec<_> = got.iter().map(|s| (s.release, s.event.as_str())).collect();
        assert_eq!(
            told,
            vec![
                (Some(ids[0]), "release.succeeded"),
                (Some(ids[1]), "release.failed"),
                (Some(ids[2]), "release.succeeded"),
            ],
            "{name}"
        );
        // First arrivals come in the audit log's order.
        assert!(
            got.windows(2).all(|w| w[0].seq < w[1].seq),
            "{name}: {got:?}"
        );
        let all = r.seen.lock().unwrap().clone();
        assert!(
            all.iter().all(|s| s.signed_right),
            "{name}: a bad signature in {all:?}"
        );
        // At least once, and here exactly once: each cursor was saved
        // when its delivery was accepted.
        assert_eq!(all.len(), 3, "{name}: {all:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_receiver_is_given_up_audited_logged_and_counted_and_releases_do_not_wait() {
    let root = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let (l, dead_url) = bind().await;
    drop(l);
    let config = write(
        root.path(),
        "gatehouse.toml",
        &receiver_entry("dead", &dead_url, "give_up_after_s = 1"),
    );
    let log = root.path().join("daemon.log");
    let daemon = Daemon::start_logged(
        &root.path().join("data"),
        &["--config", config.to_str().unwrap()],
        &[],
        &log,
    );
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;
    let r = submit_evaluated(&mut c, "model-config", GOOD, GOOD_OUTPUTS)
        .await
        .release
        .unwrap();
    assert_eq!(
        phase(&finished(&mut c, r.id).await),
        ReleasePhase::Succeeded
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    let gave_up = loop {
        let found = events(&mut c)
            .await
            .into_iter()
            .find(|e| e.kind == "notify.gave_up");
        if let Some(e) = found {
            break e;
        }
        assert!(Instant::now() < deadline, "no give-up within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(gave_up.release_id, r.id);
    assert!(gave_up.message.contains("\"dead\""), "{}", gave_up.message);
    let detail: serde_json::Value = serde_json::from_str(&gave_up.detail_json).unwrap();
    assert_eq!(detail["reason"], "connect", "{detail}");
    assert_eq!(detail["event"], "release.succeeded", "{detail}");
    let text = scrape(daemon.metrics.as_deref().expect("/metrics"), &token);
    assert!(
        text.lines()
            .any(|l| l == "gatehouse_notifications_given_up_total{notify=\"dead\"} 1"),
        "{text}"
    );
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(
        written
            .lines()
            .any(|l| l.contains("given up") && l.contains("notify=") && l.contains("dead")),
        "{written}"
    );
}
