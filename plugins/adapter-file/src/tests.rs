//! Native tests of the adapter's calls on a temporary directory, which
//! stands in for the granted guest path.

use std::fs;

use gatehouse_plugin_sdk::testing::target;

use super::*;
use crate::digest::sha256_hex;

/// A candidate named by its real sha256, as the daemon sends it.
fn config(text: &str) -> Candidate {
    Candidate {
        digest: sha256_hex(text.as_bytes()),
        bytes: text.as_bytes().to_vec(),
        metadata: Vec::new(),
    }
}

struct Deploy {
    dir: tempfile::TempDir,
}

impl Deploy {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn target(&self, environment: &str) -> Target {
        let params = json!({ "dir": self.dir.path() }).to_string();
        target(environment, &params)
    }

    fn file(&self, environment: &str, name: &str) -> Option<String> {
        fs::read_to_string(self.dir.path().join(environment).join(name)).ok()
    }

    fn names(&self, environment: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.dir.path().join(environment))
            .expect("listed")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        names.sort();
        names
    }
}

#[test]
fn apply_places_the_candidate_and_keeps_the_one_before() {
    let deploy = Deploy::new();
    let (v1, v2) = (config(r#"{"v": 1}"#), config(r#"{"v": 2}"#));
    FileAdapter::apply(deploy.target("production"), v1.clone()).expect("applied v1");
    assert_eq!(
        deploy.file("production", "active.json").as_deref(),
        Some(r#"{"v": 1}"#)
    );
    assert_eq!(deploy.file("production", "previous.json"), None);

    FileAdapter::apply(deploy.target("production"), v2.clone()).expect("applied v2");
    assert_eq!(
        deploy.file("production", "active.json").as_deref(),
        Some(r#"{"v": 2}"#)
    );
    assert_eq!(
        deploy.file("production", "active.digest"),
        Some(format!("{}\n", v2.digest))
    );
    assert_eq!(
        deploy.file("production", "previous.digest"),
        Some(format!("{}\n", v1.digest))
    );
    assert_eq!(
        deploy.file("production", "previous.json").as_deref(),
        Some(r#"{"v": 1}"#)
    );
}

#[test]
fn applying_the_active_digest_again_changes_nothing() {
    let deploy = Deploy::new();
    let (v1, v2) = (config("one"), config("two"));
    FileAdapter::apply(deploy.target("staging"), v1.clone()).expect("applied v1");
    FileAdapter::apply(deploy.target("staging"), v2.clone()).expect("applied v2");
    FileAdapter::apply(deploy.target("staging"), v2.clone()).expect("repeated");
    // The repeat did not rotate v2 into previous.
    assert_eq!(
        deploy.file("staging", "previous.digest"),
        Some(format!("{}\n", v1.digest))
    );
    let live = FileAdapter::current(deploy.target("staging")).expect("read");
    assert_eq!(live.active, Some(v2.digest));
}

#[test]
fn apply_finishes_an_apply_torn_by_a_crash() {
    let deploy = Deploy::new();
    let (v1, v2) = (config("one"), config("two"));
    FileAdapter::apply(deploy.target("prod"), v1.clone()).expect("applied v1");
    // A crash after writing v2's bytes, before its digest.
    fs::write(deploy.dir.path().join("prod/active.json"), "two").expect("torn");
    FileAdapter::apply(deploy.target("prod"), v2.clone()).expect("repeated after crash");
    assert_eq!(
        deploy.file("prod", "active.digest"),
        Some(format!("{}\n", v2.digest))
    );
    // The torn bytes were not taken for a configuration worth restoring.
    assert_eq!(deploy.file("prod", "previous.json"), None);
}

#[test]
fn current_reads_back_digests_and_weight() {
    let deploy = Deploy::new();
    let live = FileAdapter::current(deploy.target("prod")).expect("read");
    assert_eq!(
        (live.active, live.canary, live.canary_weight_percent),
        (None, None, 0)
    );
    assert!(live.detail.contains("nothing placed"), "{}", live.detail);

    let (v1, v2) = (config("one"), config("two"));
    FileAdapter::apply(deploy.target("prod"), v1.clone()).expect("applied");
    FileAdapter::set_traffic(deploy.target("prod"), v2.clone(), 10).expect("canary");
    let live = FileAdapter::current(deploy.target("prod")).expect("read");
    assert_eq!(live.active, Some(v1.digest.clone()));
    assert_eq!(live.canary, Some(v2.digest.clone()));
    assert_eq!(live.canary_weight_percent, 10);
    assert!(!live.detail.contains("drift"), "{}", live.detail);
}

#[test]
fn hand_edited_active_file_is_reported_as_drift() {
    let deploy = Deploy::new();
    let v1 = config(r#"{"temperature": 0.1}"#);
    FileAdapter::apply(deploy.target("prod"), v1.clone()).expect("applied");
    let edited = r#"{"temperature": 0.9}"#;
    fs::write(deploy.dir.path().join("prod/active.json"), edited).expect("edited by hand");
    let live = FileAdapter::current(deploy.target("prod")).expect("read");
    assert_eq!(live.active, Some(sha256_hex(edited.as_bytes())));
    assert!(
        live.detail
            .contains("drift: active.json was changed outside Gatehouse"),
        "{}",
        live.detail
    );
    assert!(live.detail.contains(&v1.digest), "{}", live.detail);
    // Applying the release again puts the released bytes back.
    FileAdapter::apply(deploy.target("prod"), v1.clone()).expect("re-applied");
    let live = FileAdapter::current(deploy.target("prod")).expect("read");
    assert_eq!(live.active, Some(v1.digest));
    assert!(!live.detail.contains("drift"), "{}", live.detail);
}

#[test]
fn set_traffic_is_idempotent_and_replaces_a_different_canary() {
    let deploy = Deploy::new();
    let (v1, v2, v3) = (config("one"), config("two"), config("three"));
    FileAdapter::apply(deploy.target("prod"), v1).expect("applied");
    FileAdapter::set_traffic(deploy.target("prod"), v2.clone(), 25).expect("canary");
    FileAdapter::set_traffic(deploy.target("prod"), v2.clone(), 25).expect("repeated");
    assert_eq!(
        deploy.file("prod", "canary_weight").as_deref(),
        Some("25\n")
    );
    FileAdapter::set_traffic(deploy.target("prod"), v3.clone(), 5).expect("other canary");
    let live = FileAdapter::current(deploy.target("prod")).expect("read");
    assert_eq!(
        (live.canary, live.canary_weight_percent),
        (Some(v3.digest), 5)
    );
    let err = FileAdapter::set_traffic(deploy.target("prod"), v2, 101).unwrap_err();
    assert!(err.contains("over 100%"), "{err}");
}

#[test]
fn applying_the_canary_promotes_it_and_empties_the_canary_slot() {
    let deploy = Deploy::new();
    let (v1, v2) = (config("one"), config("two"));
    FileAdapter::apply(deploy.target("prod"), v1.clone()).expect("applied");
    FileAdapter::set_traffic(deploy.target("prod"), v2.clone(), 50).expect("canary");
    FileAdapter::apply(deploy.target("prod"), v2.clone()).expect("promoted");
    let live = FileAdapter::current(deploy.target("prod")).expect("read");
    assert_eq!(
        (live.active, live.canary, live.canary_weight_percent),
        (Some(v2.digest), None, 0)
    );
    assert_eq!(
        deploy.file("prod", "previous.digest"),
        Some(format!("{}\n", v1.digest))
    );
}

#[test]
fn rollback_takes_the_canary_out_and_restores_the_given_configuration() {
    let deploy = Deploy::new();
    let (v1, v2) = (config("one"), config("two"));
    FileAdapter::apply(deploy.target("prod"), v1.clone()).expect("applied");
    FileAdapter::set_traffic(deploy.target("prod"), v2.clone(), 50).expect("canary");
    FileAdapter::rollback(deploy.target("prod"), Some(v1.clone())).expect("rolled back");
    FileAdapter::rollback(deploy.target("prod"), Some(v1.clone())).expect("repeated");
    let live = FileAdapter::current(deploy.target("prod")).expect("read");
    assert_eq!(
        (live.active, live.canary, live.canary_weight_percent),
        (Some(v1.digest), None, 0)
    );
    assert_eq!(
        deploy.names("prod"),
        ["active.digest", "active.json", "canary_weight"],
        "canary files removed, no temporaries left"
    );
}

#[test]
fn rollback_without_restore_returns_to_previous_once() {
    let deploy = Deploy::new();
    let (v1, v2) = (config("one"), config("two"));
    FileAdapter::apply(deploy.target("prod"), v1.clone()).expect("applied v1");
    FileAdapter::apply(deploy.target("prod"), v2).expect("applied v2");
    FileAdapter::rollback(deploy.target("prod"), None).expect("rolled back");
    FileAdapter::rollback(deploy.target("prod"), None).expect("repeated");
    let live = FileAdapter::current(deploy.target("prod")).expect("read");
    assert_eq!(live.active, Some(v1.digest));
}

#[test]
fn rollback_without_restore_or_previous_leaves_the_active_configuration() {
    let deploy = Deploy::new();
    let (v1, v2) = (config("one"), config("two"));
    FileAdapter::rollback(deploy.target("fresh"), None).expect("nothing to undo");
    FileAdapter::apply(deploy.target("prod"), v1.clone()).expect("applied");
    FileAdapter::set_traffic(deploy.target("prod"), v2, 10).expect("canary");
    FileAdapter::rollback(deploy.target("prod"), None).expect("rolled back");
    let live = FileAdapter::current(deploy.target("prod")).expect("read");
    assert_eq!((live.active, live.canary), (Some(v1.digest), None));
}

#[test]
fn every_call_leaves_no_temporary_files() {
    let deploy = Deploy::new();
    let (v1, v2, v3) = (config("one"), config("two"), config("three"));
    FileAdapter::apply(deploy.target("prod"), v1).expect("applied");
    FileAdapter::apply(deploy.target("prod"), v2).expect("applied");
    FileAdapter::set_traffic(deploy.target("prod"), v3, 30).expect("canary");
    assert_eq!(
        deploy.names("prod"),
        [
            "active.digest",
            "active.json",
            "canary.digest",
            "canary.json",
            "canary_weight",
            "previous.digest",
            "previous.json"
        ]
    );
}

#[test]
fn candidate_bytes_must_match_their_digest() {
    let deploy = Deploy::new();
    let mut forged = config("one");
    forged.bytes = b"two".to_vec();
    let err = FileAdapter::apply(deploy.target("prod"), forged).unwrap_err();
    assert!(err.contains("does not match its bytes"), "{err}");
    assert!(!deploy.dir.path().join("prod").exists());
}

#[test]
fn params_and_environment_names_are_checked() {
    let err = FileAdapter::apply(target("prod", r#"{"dir": "deploy"}"#), config("x")).unwrap_err();
    assert!(err.contains("not absolute"), "{err}");
    let err = FileAdapter::apply(target("prod", "{}"), config("x")).unwrap_err();
    assert!(err.contains("`dir`"), "{err}");
    let deploy = Deploy::new();
    let err = FileAdapter::apply(deploy.target("../etc"), config("x")).unwrap_err();
    assert!(err.contains("cannot name a directory"), "{err}");
}

#[test]
fn garbage_weight_file_says_how_to_fix_it() {
    let deploy = Deploy::new();
    FileAdapter::apply(deploy.target("prod"), config("one")).expect("applied");
    fs::write(deploy.dir.path().join("prod/canary_weight"), "lots").expect("garbage");
    let err = FileAdapter::current(deploy.target("prod")).unwrap_err();
    assert!(err.contains("from 0 to 100"), "{err}");
}

#[test]
fn description_asks_for_files_only() {
    let description = FileAdapter::describe();
    assert_eq!(description.name, "adapter-file");
    assert_eq!(description.capabilities, ["files"]);
    assert!(description.params_schema.contains("\"dir\""));
}
