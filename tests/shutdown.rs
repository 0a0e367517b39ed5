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
