//! Altering one stored audit event makes `audit verify` fail, naming it.

use crate::common::*;
use gatehouse::proto::{self, ReleasePhase};
use gatehouse::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altered_event_is_named_by_audit_verify() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let daemon = Daemon::start(&data, &[]);
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;
    let id = submit_evaluated(&mut c, "model-config", GOOD, GOOD_OUTPUTS)
        .await
        .release
        .unwrap()
        .id;
    assert_eq!(phase(&finished(&mut c, id).await), ReleasePhase::Succeeded);

    // Pick a gate verdict and change its story.
    let victim = events(&mut c)
        .await
        .into_iter()
        .find(|e| e.kind == "gate.verdict")
        .expect("a verdict event");
    daemon.kill();
    {
        let store = Store::open(&data).unwrap();
        let raw = store.raw_event(victim.seq).unwrap().unwrap();
        let mut event: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        event["message"] = "dev: gate config-lint → pass: (edited)".into();
        store
            .overwrite_raw_event(victim.seq, &serde_json::to_vec(&event).unwrap())
            .unwrap();
    }

    // Offline, straight from the data directory.
    let out = std::process::Command::new(BIN)
        .args(["audit", "verify", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("BROKEN at event {}", victim.seq)) && stdout.contains("altered"),
        "{stdout}"
    );

    // And through a daemon serving that data.
    let daemon = Daemon::start(&data, &[]);
    let mut c = daemon.client(Some(&token)).await;
    let v = c
        .audit
        .verify_audit(proto::VerifyAuditRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!v.ok);
    assert_eq!(v.bad_seq, victim.seq);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_log_verifies_offline_and_a_removed_line_is_found() {
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&root.path().join("data"), &[]);
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;
    let id = submit_evaluated(&mut c, "model-config", GOOD, GOOD_OUTPUTS)
        .await
        .release
        .unwrap()
        .id;
    finished(&mut c, id).await;

    let file = root.path().join("audit.jsonl");
    let export = std::process::Command::new(BIN)
        .args([
            "audit",
            "export",
            "--addr",
            &daemon.addr,
            "--token",
            &token,
            "--out",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let verify = |path: &std::path::Path| {
        std::process::Command::new(BIN)
            .args(["audit", "verify", "--file"])
            .arg(path)
            .output()
            .unwrap()
    };
    let ok = verify(&file);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 5);
    lines.remove(3);
    let cut = root.path().join("cut.jsonl");
    std::fs::write(&cut, lines.join("\n")).unwrap();
    let bad = verify(&cut);
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stdout.contains("event 4 is missing"), "{stdout}");
}

fn verify_data_dir(dir: &std::path::Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(BIN)
        .args(["audit", "verify", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn verify_of_a_missing_or_empty_data_dir_refuses_and_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("no-such-dir");
    let (code, text) = verify_data_dir(&missing);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("holds no Gatehouse data"), "{text}");
    assert!(!missing.exists(), "no store is created");

    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, text) = verify_data_dir(&empty);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("holds no Gatehouse data"), "{text}");
    assert_eq!(
        std::fs::read_dir(&empty).unwrap().count(),
        0,
        "nothing written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_of_a_data_dir_a_daemon_holds_says_so_and_an_export_cut_at_its_start_is_named() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let daemon = Daemon::start(&data, &[]);
    let (code, text) = verify_data_dir(&data);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("held by a running daemon"), "{text}");

    let token = daemon.generated_token.clone().unwrap();
    let export = root.path().join("audit.jsonl");
    let out = std::process::Command::new(BIN)
        .args([
            "--addr",
            &daemon.addr,
            "--token",
            &token,
            "audit",
            "export",
            "--out",
        ])
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let whole = std::fs::read(&export).unwrap();
    let cut = root.path().join("cut.jsonl");
    std::fs::write(&cut, &whole[10..]).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["audit", "verify", "--file"])
        .arg(&cut)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("the first line") && stdout.contains("cut at its start"),
        "{stdout}"
    );
}
