//! Configuration through OpenFeature: a Python service using only PyPI's
//! `openfeature-sdk` and `openfeature-provider-flagd` (in-process
//! resolver) syncs an environment's flag from the daemon, splits requests
//! between the arms exactly as `canary::routing` does, and sees the canary
//! go when it is taken down. Tokens are required unless an environment is
//! opted in to `public_read`.

use crate::common::*;
use gatehouse::client::{Client, routes_to_canary};
use gatehouse::flagd::flag_sync_service_client::FlagSyncServiceClient;
use gatehouse::flagd::{FetchAllFlagsRequest, SyncFlagsRequest};
use gatehouse::proto;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tonic::Code;

const PIPELINE: &str = "\
name = \"serving\"
[[environment]]
name = \"staging\"
[[environment]]
name = \"production\"
  [environment.canary]
  steps = [20]
  step_seconds = 3600
";

const CONFIG: &str = "\
[openfeature]
public_read = [\"staging\"]
[openfeature.flag_keys]
production = \"triage-model\"
";

/// Keys each dump resolves.
const KEYS: usize = 10_000;

/// Reads one dump (a JSON line per key, then `{"done": true}`).
fn dump(lines: &mut impl Iterator<Item = String>) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for line in lines.by_ref() {
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the client printed {line:?}: {e}"));
        assert!(v.get("error").is_none_or(|e| e.is_null()), "{v}");
        if v.get("done").is_some() {
            return out;
        }
        out.push(v);
    }
    panic!(
        "the client stopped before finishing a dump ({} keys read)",
        out.len()
    );
}

/// A daemon serving the pipeline above with the config above, and its
/// admin token.
fn serving(root: &std::path::Path) -> (Daemon, String) {
    let pipeline = write(root, "serving.toml", PIPELINE);
    let config = write(root, "gatehouse.toml", CONFIG);
    let daemon = Daemon::start(
        &root.join("data"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--pipeline",
            pipeline.to_str().unwrap(),
        ],
    );
    let token = daemon.generated_token.clone().unwrap();
    (daemon, token)
}

async fn until_live(c: &mut Client, what: &str, done: impl Fn(&proto::ActiveConfig) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let l = live(c, "production").await;
        if done(&l) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "within 60 s: {what}; live: {l:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_openfeature_service_splits_like_the_daemon_and_follows_the_canary() {
    let python = python();
    let root = tempfile::tempdir().unwrap();
    let (daemon, token) = serving(root.path());
    let mut c = daemon.client(Some(&token)).await;

    // A baseline (nothing live yet: applied without a canary), then a
    // canary at 20% that holds.
    let first = submit(&mut c, "serving", &candidate(1))
        .await
        .release
        .unwrap();
    assert_eq!(
        phase(&finished(&mut c, first.id).await),
        proto::ReleasePhase::Succeeded
    );
    let second = submit(&mut c, "serving", &candidate(2))
        .await
        .release
        .unwrap();
    until_live(&mut c, "a canary at 20%", |l| {
        l.canary.is_some() && l.canary_weight_percent == 20
    })
    .await;
    let now = live(&mut c, "production").await;
    let active = now.active.clone().unwrap();
    let canary = now.canary.clone().unwrap();

    let target = daemon.addr.trim_start_matches("http://").to_string();
    let (host, port) = target.rsplit_once(':').unwrap();
    let mut child = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/python/flagd_client.py"
        ))
        .args([
            host,
            port,
            "production",
            "triage-model",
            &KEYS.to_string(),
            &token,
        ])
        .arg("--until-generation-change")
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the Python client");
    let mut lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok);

    let during = dump(&mut lines);
    assert_eq!(during.len(), KEYS);
    let mut on_canary = 0;
    for v in &during {
        let key = v["key"].as_str().unwrap();
        let expected = routes_to_canary(&canary.digest, key.as_bytes(), 20);
        let variant = v["variant"].as_str().unwrap_or_default();
        assert_eq!(variant == "canary", expected, "{key}: {v}");
        assert_eq!(v["reason"], "TARGETING_MATCH", "{v}");
        let revision = if expected { 2 } else { 1 };
        assert_eq!(v["value"]["revision"], revision, "{v}");
        assert_eq!(v["metadata"]["digest"], active.digest.as_str(), "{v}");
        assert_eq!(
            v["metadata"]["canary_digest"],
            canary.digest.as_str(),
            "{v}"
        );
        assert_eq!(v["metadata"]["canary_release_id"], second.id, "{v}");
        on_canary += usize::from(expected);
    }
    // The split the Python SDK computes matches the weight within one
    // percentage point over 10,000 keys.
    let share = on_canary as f64 / KEYS as f64;
    eprintln!(
        "fractional split in the Python SDK: {on_canary} of {KEYS} keys on the canary ({:.2}%, weight 20%)",
        share * 100.0
    );
    assert!((share - 0.20).abs() <= 0.01, "{on_canary} of {KEYS} keys");

    // Taking the canary down pushes a new flag set: every key is back on
    // the active configuration.
    c.releases
        .abort_release(proto::AbortReleaseRequest {
            id: second.id,
            reason: "the flag test is done with it".into(),
        })
        .await
        .expect("abort");
    let after = dump(&mut lines);
    assert_eq!(after.len(), KEYS);
    for v in &after {
        assert_eq!(v["variant"], "active", "{v}");
        assert_eq!(v["value"]["revision"], 1, "{v}");
        assert!(v["metadata"].get("canary_digest").is_none(), "{v}");
    }
    let status = child.wait().expect("the client ends");
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flag_sync_needs_a_token_unless_the_environment_opted_in_to_public_reads() {
    let root = tempfile::tempdir().unwrap();
    let (daemon, token) = serving(root.path());
    let mut c = daemon.client(Some(&token)).await;
    let r = submit(&mut c, "serving", &candidate(1))
        .await
        .release
        .unwrap();
    assert_eq!(
        phase(&finished(&mut c, r.id).await),
        proto::ReleasePhase::Succeeded
    );

    let mut open = FlagSyncServiceClient::new(daemon.channel().await);
    let fetch = |selector: &str, token: Option<&str>| {
        let mut req = tonic::Request::new(FetchAllFlagsRequest::default());
        req.metadata_mut()
            .insert("flagd-selector", selector.parse().unwrap());
        if let Some(t) = token {
            req.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        req
    };
    let flags = |text: &str| -> serde_json::Value { serde_json::from_str(text).unwrap() };

    // Production is not public: no token, no flags, and the message says
    // what to do.
    let refused = open
        .fetch_all_flags(fetch("production", None))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().contains("public_read"), "{refused:?}");
    let refused = open
        .fetch_all_flags(fetch("production", Some("not-a-token")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let stream = open
        .sync_flags(tonic::Request::new(SyncFlagsRequest {
            provider_id: "test".into(),
            ..Default::default()
        }))
        .await;
    assert!(
        stream.is_ok(),
        "staging is public, so an unselected sync gets it"
    );

    // With a token: the flag under its configured key.
    let got = open
        .fetch_all_flags(fetch("environment=production", Some(&token)))
        .await
        .expect("fetch with a token")
        .into_inner();
    let set = flags(&got.flag_configuration);
    assert_eq!(
        set["flags"]["triage-model"]["variants"]["active"]["revision"], 1,
        "{set}"
    );
    // Staging opted in: readable without a token, under its own name.
    let got = open
        .fetch_all_flags(fetch("staging", None))
        .await
        .expect("public staging")
        .into_inner();
    let set = flags(&got.flag_configuration);
    assert_eq!(set["flags"]["staging"]["defaultVariant"], "active", "{set}");
    assert!(set["flags"].get("triage-model").is_none(), "{set}");
    // A selector naming nothing says what there is.
    let missing = open
        .fetch_all_flags(fetch("prod", Some(&token)))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    assert!(missing.message().contains("production"), "{missing:?}");
}
