//! The store on etcd (`store = { etcd = ... }`): a real 3-member etcd
//! cluster on loopback (Debian's `etcd-server`), started by the test.
//! Two writers on one prefix append to one hash chain without a gap or a
//! duplicate; a blob larger than etcd takes in one request comes back
//! whole; a daemon keeps its releases in etcd, so after a SIGKILL a daemon
//! with an empty data directory finishes them; and a member down does not
//! stop it.

use crate::common::*;
pub use crate::etcd_cluster::Cluster;
use gatehouse::store::audit::{AuditEvent, Draft, EventKind, Verification};
use gatehouse::store::{EtcdSettings, Lead, Store, StoreSettings};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Debian's etcd (see [`debian_binaries`]).
pub fn etcd() -> PathBuf {
    debian_binaries(&["etcd"], &["etcd-server"]).remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_store_leads_a_prefix_a_deposed_one_cannot_write_and_the_chain_stays_whole() {
    let root = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(&etcd(), root.path(), 3);
    let s = StoreSettings::Etcd(EtcdSettings {
        endpoints: cluster.endpoints.clone(),
        prefix: "/chain-test/".into(),
        lease_ttl_s: 2,
        advertise: None,
    });
    let me = |name: &str| gatehouse::store::Member {
        grpc: format!("http://{name}.invalid:7443"),
        ..Default::default()
    };
    let a = tokio::task::block_in_place(|| Store::open_in(&s, &root.path().join("a"), me("a")))
        .expect("open the store on etcd");
    assert_eq!(
        *a.lead().borrow(),
        Lead::Leading,
        "alone on the prefix, it leads"
    );

    // Appends side by side from one leader: each reads the head and writes
    // the next event.
    const EACH: usize = 50;
    let mut tasks = Vec::new();
    for name in ["x", "y"] {
        let store = a.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                store
                    .commit(|tx| {
                        tx.append(Draft::new(
                            EventKind::PluginPushed,
                            name,
                            format!("{name} {i}"),
                        ))
                    })
                    .await
                    .expect("append");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }

    // A second store on the prefix follows while the first holds its
    // lease: it reads, and its writes are refused, naming the leader...
    let b = tokio::task::block_in_place(|| Store::open_in(&s, &root.path().join("b"), me("b")))
        .expect("open a second store on the prefix");
    let mut lead = b.lead();
    assert!(
        matches!(&*lead.borrow(), Lead::Following { leader: Some(m) } if m.grpc == "http://a.invalid:7443"),
        "{:?}",
        *lead.borrow()
    );
    assert_eq!(
        tokio::task::block_in_place(|| b.head_seq()).unwrap(),
        2 * EACH as u64
    );
    let refused = b
        .commit(|tx| {
            tx.append(Draft::new(
                EventKind::PluginPushed,
                "b",
                "early".to_string(),
            ))
        })
        .await
        .expect_err("a follower does not write");
    assert!(
        refused.to_string().contains("follows") && refused.to_string().contains("a.invalid"),
        "{refused}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !lead.borrow().leads(),
        "a second leader while the first holds its lease"
    );
    // ...until the first's lease ends as a paused leader's would: revoked here.
    cluster.revoke_lease_of("/chain-test/leader");
    tokio::time::timeout(Duration::from_secs(10), lead.wait_for(Lead::leads))
        .await
        .expect("the second store takes the lead within seconds")
        .unwrap();
    b.commit(|tx| tx.append(Draft::new(EventKind::PluginPushed, "b", "b 0".to_string())))
        .await
        .expect("the new leader writes");

    // The deposed one cannot.
    let refused = a
        .commit(|tx| tx.append(Draft::new(EventKind::PluginPushed, "x", "late".to_string())))
        .await
        .expect_err("a deposed leader's write is refused");
    assert!(
        refused.to_string().contains("lease") || refused.to_string().contains("taken over"),
        "{refused}"
    );

    let total = 2 * EACH as u64 + 1;
    let verified = tokio::task::block_in_place(|| b.verify_audit()).unwrap();
    assert!(
        matches!(verified, Verification::Intact { events, .. } if events == total),
        "{verified:?}"
    );
    let events: Vec<AuditEvent> =
        tokio::task::block_in_place(|| b.events_from(1).collect::<Result<_, _>>()).unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
    for writer in ["x", "y"] {
        let mine: Vec<&str> = events
            .iter()
            .filter(|e| e.actor == writer)
            .map(|e| e.message.as_str())
            .collect();
        let expected: Vec<String> = (0..EACH).map(|i| format!("{writer} {i}")).collect();
        assert_eq!(mine, expected, "each task's events once, in its order");
    }

    // A 3 MiB attachment: chunked under the prefix, read back whole.
    let blob: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let digest = gatehouse::digest::Digest::of(&blob);
    tokio::task::block_in_place(|| b.put_attachment(&digest, &blob)).unwrap();
    let back = tokio::task::block_in_place(|| b.attachment(&digest))
        .unwrap()
        .unwrap();
    assert!(back == blob, "the blob comes back as it went in");
    // The deposed store has stopped: it reads nothing more either.
    assert!(tokio::task::block_in_place(|| a.attachment(&digest)).is_err());
    assert!(cluster.keys_under("/chain-test/") > total + 12);
}

const SLOW_PIPELINE: &str = "\
name = \"slow\"
[[environment]]
name = \"dev\"
  [[environment.gate]]
  plugin = \"chaos-gate\"
  timeout_ms = 20000
  fuel = 1000000000000
  params = { mode = \"slow\", delay_ms = 1500 }
[[environment]]
name = \"staging\"
  [[environment.gate]]
  plugin = \"chaos-gate\"
  timeout_ms = 20000
  fuel = 1000000000000
  params = { mode = \"slow\", delay_ms = 1500 }
[[environment]]
name = \"production\"
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_live_in_etcd_a_new_daemon_finishes_them_after_a_sigkill() {
    let root = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(&etcd(), root.path(), 3);
    let endpoints = cluster
        .endpoints
        .iter()
        .map(|e| format!("{e:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let config = write(
        root.path(),
        "gatehouse.toml",
        &format!(
            "store = {{ etcd = {{ endpoints = [{endpoints}], prefix = \"/daemon-test/\" }} }}\n"
        ),
    );
    let plugins = test_plugin_dir(root.path());
    let pipeline = write(root.path(), "slow.toml", SLOW_PIPELINE);
    let first_args = [
        "--config",
        config.to_str().unwrap(),
        "--pipeline",
        pipeline.to_str().unwrap(),
        "--plugin-dir",
        plugins.to_str().unwrap(),
    ];
    let daemon = Daemon::start(&root.path().join("first"), &first_args);
    let token = daemon
        .generated_token
        .clone()
        .expect("a token on first start");
    let mut c = daemon.client(Some(&token)).await;

    let r = submit(&mut c, "slow", &candidate(1)).await.release.unwrap();
    // Killed while its first gate sleeps.
    tokio::time::sleep(Duration::from_millis(700)).await;
    daemon.kill();

    // One member down too: a quorum of two still serves.
    cluster.kill(2);

    // A daemon on another (empty) data directory: the state is in etcd.
    let second = Daemon::start(&root.path().join("second"), &first_args);
    assert!(
        second.generated_token.is_none(),
        "the admin token is already in etcd"
    );
    let mut c = second.client(Some(&token)).await;
    let done = wait_for(&mut c, r.id, Duration::from_secs(60), |r| r.terminal).await;
    assert_eq!(
        phase(&done),
        gatehouse::proto::ReleasePhase::Succeeded,
        "{}",
        done.reason
    );
    assert_eq!(
        live(&mut c, "production").await.active.unwrap().digest,
        gatehouse::digest::Digest::of(&candidate(1)).hex()
    );
    cluster.restart(2);
    cluster.healthy(2);

    // Every transition once, and the chain intact.
    let log = events(&mut c).await;
    let applied = log
        .iter()
        .filter(|e| e.kind == "env.applied" && e.release_id == r.id)
        .count();
    assert_eq!(applied, 3, "each environment applied once");
    assert_audit_verifies(&second.addr, &token);
    assert!(cluster.keys_under("/daemon-test/") > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_store_moves_into_etcd_with_its_audit_chain_intact() {
    let root = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(&etcd(), root.path(), 1);
    let pipeline = write(
        root.path(),
        "direct.toml",
        "name = \"direct\"\n[[environment]]\nname = \"production\"\n",
    );
    let pipeline_args = ["--pipeline", pipeline.to_str().unwrap()];

    // A single-node daemon on sled makes a release, and stops.
    let sled_dir = root.path().join("sled");
    let daemon = Daemon::start(&sled_dir, &pipeline_args);
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;
    let r = submit(&mut c, "direct", &candidate(7))
        .await
        .release
        .unwrap();
    assert_eq!(
        phase(&finished(&mut c, r.id).await),
        gatehouse::proto::ReleasePhase::Succeeded
    );
    let before = events(&mut c).await;
    daemon.kill();

    let migrate = |prefix: &str| {
        Command::new(BIN)
            .args(["store", "migrate", "--from"])
            .arg(format!("sled:{}", sled_dir.display()))
            .args(["--to", &format!("etcd:{}", cluster.endpoints.join(","))])
            .args(["--prefix", prefix])
            .output()
            .unwrap()
    };
    let out = migrate("/moved/");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = &before.last().unwrap().hash;
    assert!(
        said.contains(&format!("{} events, head {head}", before.len())),
        "{said}"
    );

    // A daemon on the etcd prefix, with an empty data directory, has it all:
    // the release, what is live, the token, the same chain.
    let endpoints = cluster
        .endpoints
        .iter()
        .map(|e| format!("{e:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let config = write(
        root.path(),
        "gatehouse.toml",
        &format!("store = {{ etcd = {{ endpoints = [{endpoints}], prefix = \"/moved/\" }} }}\n"),
    );
    let mut args = vec!["--config", config.to_str().unwrap()];
    args.extend(pipeline_args);
    let on_etcd = Daemon::start(&root.path().join("etcd-node"), &args);
    assert!(on_etcd.generated_token.is_none());
    let mut c = on_etcd.client(Some(&token)).await;
    assert_eq!(
        phase(&get(&mut c, r.id).await),
        gatehouse::proto::ReleasePhase::Succeeded
    );
    assert_eq!(
        live(&mut c, "production").await.active.unwrap().digest,
        gatehouse::digest::Digest::of(&candidate(7)).hex()
    );
    let after = events(&mut c).await;
    assert_eq!(
        after[..before.len()],
        before[..],
        "the same chain, event for event"
    );
    drop(on_etcd);

    // A prefix that holds a store already is refused.
    let again = migrate("/moved/");
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("empty prefix"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}
