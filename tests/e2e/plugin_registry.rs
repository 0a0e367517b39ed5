//! The plugin registry through the real daemon: pushes are checked before
//! they are stored, versions are activated and rolled back with an audit
//! record, a release records the digest of the version that judged it even
//! when another is activated meanwhile, a restart keeps the active version,
//! a watched directory is a push, and signing is enforced when required.

use crate::common::*;
use gatehouse::client::Client;
use gatehouse::digest::Digest;
use gatehouse::plugins::builtin::{CHAOS_GATE_PATH, LEGACY_GATE_PATH, NOOP_GATE_PATH};
use gatehouse::plugins::signing;
use gatehouse::proto::{self, ReleasePhase};
use std::time::{Duration, Instant};

const CLOCK: &str = "capabilities = [\"clock\"]\n";

fn slow_pipeline(delay_ms: u64) -> String {
    format!(
        "name = \"chaos\"\n[[environment]]\nname = \"dev\"\n[[environment.gate]]\nplugin = \"chaos-gate\"\ntimeout_ms = 20000\nfuel = 1000000000000\nparams = {{ mode = \"slow\", delay_ms = {delay_ms} }}\n"
    )
}

/// The same component with a custom section appended: another digest, the
/// same behaviour, as a rebuilt plugin would be.
fn rebuilt(wasm: &[u8], tag: &str) -> Vec<u8> {
    let name = b"gatehouse-test";
    let payload = tag.as_bytes();
    let body_len = 1 + name.len() + payload.len();
    assert!(body_len < 128 && name.len() < 128, "one-byte LEB sizes");
    let mut out = wasm.to_vec();
    out.push(0); // custom section
    out.push(body_len as u8);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(payload);
    out
}

async fn push(
    c: &mut Client,
    wasm: &[u8],
    manifest: &str,
    signature: &str,
) -> Result<proto::PushPluginResponse, tonic::Status> {
    let parts = vec![
        proto::PushPluginRequest {
            part: Some(proto::push_plugin_request::Part::Header(
                proto::PushHeader {
                    manifest_toml: manifest.to_string(),
                    signature: signature.to_string(),
                    activate: true,
                    source_name: "test.wasm".into(),
                },
            )),
        },
        proto::PushPluginRequest {
            part: Some(proto::push_plugin_request::Part::Chunk(wasm.to_vec())),
        },
    ];
    c.plugins
        .push_plugin(tokio_stream::iter(parts))
        .await
        .map(|r| r.into_inner())
}

async fn active(c: &mut Client, name: &str) -> Option<proto::PluginVersion> {
    c.plugins
        .list_plugins(proto::ListPluginsRequest::default())
        .await
        .expect("list")
        .into_inner()
        .plugins
        .into_iter()
        .find(|p| p.name == name)
}

fn chaos() -> Vec<u8> {
    std::fs::read(CHAOS_GATE_PATH).expect("chaos-gate.wasm")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_are_checked_then_versions_swap_and_roll_back_with_audit() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let pipeline = write(root.path(), "chaos.toml", &slow_pipeline(1500));
    let args = ["--pipeline", pipeline.to_str().unwrap()];
    let daemon = Daemon::start(&data, &args);
    let token = daemon.generated_token.clone().expect("token");
    let mut c = daemon.client(Some(&token)).await;

    // The embedded gates are there from the start.
    let embedded = active(&mut c, "cost-estimator").await.expect("embedded");
    assert_eq!(embedded.origin, "embedded");
    assert!(embedded.active);

    // A release naming a plugin not yet pushed is refused, saying what to do.
    let refused = c
        .releases
        .submit_release(proto::SubmitReleaseRequest {
            pipeline: "chaos".into(),
            candidate: candidate(1),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused.message().contains("gatehouse plugin push"),
        "{}",
        refused.message()
    );

    // Not a component: refused before anything is stored.
    let err = push(&mut c, b"\0asm garbage", "", "").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("not a loadable plugin component"),
        "{}",
        err.message()
    );
    // It asks for the clock; a manifest that does not grant it is refused.
    let err = push(&mut c, &chaos(), "", "").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message()
            .contains("asks for `clock`, which the manifest does not grant"),
        "{}",
        err.message()
    );
    assert!(active(&mut c, "chaos-gate").await.is_none());

    let v1 = push(&mut c, &chaos(), CLOCK, "").await.expect("push v1");
    let v1 = v1.plugin.expect("version");
    assert!(v1.active);
    assert_eq!(v1.granted_capabilities, ["clock"]);
    assert_eq!(v1.digest, Digest::of(&chaos()).hex());
    let again = push(&mut c, &chaos(), CLOCK, "").await.expect("same push");
    assert!(again.already_known);

    // A slow release starts on v1; v2 is activated while it is judged.
    let id = submit(&mut c, "chaos", &candidate(2))
        .await
        .release
        .unwrap()
        .id;
    wait_for(&mut c, id, Duration::from_secs(30), |r| {
        r.phase == ReleasePhase::Gating as i32
    })
    .await;
    let v2_wasm = rebuilt(&chaos(), "v2");
    let v2 = push(&mut c, &v2_wasm, CLOCK, "").await.expect("push v2");
    let v2 = v2.plugin.expect("version");
    assert_ne!(v2.digest, v1.digest);
    let first = finished(&mut c, id).await;
    assert_eq!(phase(&first), ReleasePhase::Succeeded, "{}", first.reason);
    assert_eq!(
        first.stages[0].gates[0].plugin_digest, v1.digest,
        "the call in flight finishes on the version it started with"
    );
    assert!(
        first.stages[0].gates[0].fuel_used > 0,
        "fuel is reported with the verdict"
    );
    let id = submit(&mut c, "chaos", &candidate(3))
        .await
        .release
        .unwrap()
        .id;
    let second = finished(&mut c, id).await;
    assert_eq!(second.stages[0].gates[0].plugin_digest, v2.digest);

    // Roll back to v1, then activate v2 again by a digest prefix.
    let back = c
        .plugins
        .rollback_plugin(proto::RollbackPluginRequest {
            name: "chaos-gate".into(),
        })
        .await
        .expect("rollback")
        .into_inner();
    assert_eq!(back.digest, v1.digest);
    assert_eq!(
        active(&mut c, "chaos-gate").await.unwrap().digest,
        v1.digest
    );
    let err = c
        .plugins
        .rollback_plugin(proto::RollbackPluginRequest {
            name: "chaos-gate".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "nothing before v1");
    c.plugins
        .activate_plugin(proto::ActivatePluginRequest {
            name: "chaos-gate".into(),
            version: v2.digest[..12].to_string(),
        })
        .await
        .expect("activate v2");
    let versions = c
        .plugins
        .list_plugins(proto::ListPluginsRequest {
            name: "chaos-gate".into(),
        })
        .await
        .expect("list versions")
        .into_inner()
        .plugins;
    assert_eq!(versions.len(), 2);
    assert_eq!(versions.iter().filter(|v| v.active).count(), 1);

    let kinds: Vec<String> = events(&mut c).await.into_iter().map(|e| e.kind).collect();
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(count("plugin.refused"), 2);
    assert_eq!(count("plugin.rolled_back"), 1);
    // Each embedded plugin, v1, v2, then v2 again after the rollback.
    let embedded_count = gatehouse::plugins::builtin::embedded()
        .iter()
        .filter(|e| !e.needs_grant)
        .count();
    assert_eq!(count("plugin.activated"), embedded_count + 3);

    // A restart keeps v2 active, loaded from the store.
    daemon.kill();
    let daemon = Daemon::start(&data, &args);
    let mut c = daemon.client(Some(&token)).await;
    assert_eq!(
        active(&mut c, "chaos-gate").await.unwrap().digest,
        v2.digest
    );
    let id = submit(&mut c, "chaos", &candidate(4))
        .await
        .release
        .unwrap()
        .id;
    assert_eq!(
        finished(&mut c, id).await.stages[0].gates[0].plugin_digest,
        v2.digest
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_dropped_in_the_plugin_directory_is_pushed() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    let config = write(
        root.path(),
        "gatehouse.toml",
        &format!("plugin_dir = {:?}\nplugin_dir_poll_ms = 50\n", dir),
    );
    let daemon = Daemon::start(
        &root.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let token = daemon.generated_token.clone().expect("token");
    let mut c = daemon.client(Some(&token)).await;
    assert!(active(&mut c, "noop-gate").await.is_none());

    // Written elsewhere then renamed in, as a deploy tool would.
    let staging = root.path().join("noop.tmp");
    std::fs::copy(NOOP_GATE_PATH, &staging).unwrap();
    std::fs::rename(&staging, dir.join("noop-gate.wasm")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let found = loop {
        if let Some(p) = active(&mut c, "noop-gate").await {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "the dropped plugin was not pushed in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(found.origin, "watched");
    assert_eq!(found.pushed_by, "plugin-dir");
    assert_eq!(
        found.digest,
        Digest::of(&std::fs::read(NOOP_GATE_PATH).unwrap()).hex()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_signatures_refuse_unsigned_and_wrongly_signed_pushes() {
    let root = tempfile::tempdir().unwrap();
    let (secret, public) = signing::generate().unwrap();
    let (stranger, _) = signing::generate().unwrap();
    let config = write(
        root.path(),
        "gatehouse.toml",
        &format!("[signing]\nrequire_signed = true\ntrusted_keys = [{public:?}]\n"),
    );
    let daemon = Daemon::start(
        &root.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let token = daemon.generated_token.clone().expect("token");
    let mut c = daemon.client(Some(&token)).await;
    let wasm = std::fs::read(NOOP_GATE_PATH).unwrap();
    let digest = Digest::of(&wasm);

    let unsigned = push(&mut c, &wasm, "", "").await.unwrap_err();
    assert_eq!(unsigned.code(), tonic::Code::PermissionDenied);
    assert!(
        unsigned.message().contains("requires signed plugins"),
        "{}",
        unsigned.message()
    );
    let foreign = signing::sign(&stranger, &digest).unwrap();
    let wrong = push(&mut c, &wasm, "", &foreign).await.unwrap_err();
    assert_eq!(wrong.code(), tonic::Code::PermissionDenied);
    assert!(
        wrong.message().contains("does not verify"),
        "{}",
        wrong.message()
    );
    let other_file = signing::sign(&secret, &Digest::of(b"another plugin")).unwrap();
    assert!(push(&mut c, &wasm, "", &other_file).await.is_err());

    let good = signing::sign(&secret, &digest).unwrap();
    let pushed = push(&mut c, &wasm, "", &good).await.expect("signed push");
    let v = pushed.plugin.unwrap();
    assert_eq!(v.signed_by, public[..16]);
    assert!(v.active);
}

/// The binary alone runs the standard pipeline: the embedded adapter-file
/// is installed once the daemon's config grants it its directory, with no
/// push, and places what dev promotes there. Without the grant, a release
/// is refused with the way to grant it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_adapter_granted_in_the_config_runs_the_standard_pipeline_with_no_push() {
    let standard = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/standard-pipeline.toml"
    );
    let root = tempfile::tempdir().unwrap();
    let bare = Daemon::start(&root.path().join("bare"), &["--pipeline", standard]);
    let token = bare.generated_token.clone().unwrap();
    let mut c = bare.client(Some(&token)).await;
    let refused = c
        .releases
        .submit_release(proto::SubmitReleaseRequest {
            pipeline: "standard".into(),
            candidate: GOOD.to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused.message().contains("[grants.adapter-file]"),
        "{}",
        refused.message()
    );
    bare.kill();

    let config = write(
        root.path(),
        "gatehouse.toml",
        "[grants.adapter-file]\ncapabilities = [\"files\"]\nfiles = [{ host = \"deploy\", guest = \"/deploy\", writable = true }]\n",
    );
    std::fs::create_dir_all(root.path().join("deploy")).unwrap();
    let granted = Daemon::start(
        &root.path().join("granted"),
        &["--config", config.to_str().unwrap(), "--pipeline", standard],
    );
    let token = granted.generated_token.clone().unwrap();
    let mut c = granted.client(Some(&token)).await;
    let listed = c
        .plugins
        .list_plugins(proto::ListPluginsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .plugins;
    let adapter = listed
        .iter()
        .find(|p| p.name == "adapter-file")
        .expect("adapter-file is installed");
    assert_eq!(adapter.origin, "embedded");
    assert!(
        !listed.iter().any(|p| p.name == "adapter-http"),
        "adapter-http was never granted"
    );
    let id = submit(&mut c, "standard", GOOD).await.release.unwrap().id;
    let done = finished(&mut c, id).await;
    // Staging's gates want attachments this submission lacks; dev is placed.
    assert!(done.stages[0].promoted, "{done:?}");
    let placed = std::fs::read_to_string(root.path().join("deploy/dev/active.digest"))
        .expect("adapter-file placed dev");
    assert_eq!(placed.trim(), done.candidate_digest);
}

/// A grant for a plugin the binary does not embed is refused at start,
/// naming the file and what may be granted.
#[test]
fn a_grant_for_an_unknown_plugin_is_refused_at_start() {
    let root = tempfile::tempdir().unwrap();
    let config = write(
        root.path(),
        "gatehouse.toml",
        "[grants.adapter-fil]\ncapabilities = [\"files\"]\nfiles = [{ host = \"/tmp\", guest = \"/deploy\" }]\n",
    );
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(root.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("gatehouse.toml")
            && stderr.contains("[grants.adapter-fil]")
            && stderr.contains("adapter-file, adapter-http"),
        "{stderr}"
    );
}

/// `plugin export` writes the embedded bytes and a manifest that parses;
/// it does not overwrite without --force.
#[test]
fn plugin_export_writes_the_embedded_wasm_and_a_manifest_template() {
    use gatehouse::plugins::builtin::ADAPTER_FILE_PATH;
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    let export = |force: bool| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["plugin", "export", "adapter-file", "--out"])
            .arg(&out);
        if force {
            cmd.arg("--force");
        }
        cmd.output().unwrap()
    };
    let first = export(false);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(
        std::fs::read(out.join("adapter-file.wasm")).unwrap(),
        std::fs::read(ADAPTER_FILE_PATH).unwrap()
    );
    let manifest = std::fs::read_to_string(out.join("adapter-file.toml")).unwrap();
    // The template names a directory to grant; point it at one that exists.
    let granted = manifest.replace("/srv/model-config", &root.path().display().to_string());
    assert_ne!(granted, manifest, "the template names a host directory");
    let parsed =
        gatehouse::plugins::manifest::Manifest::parse(&granted).expect("the template parses");
    assert_eq!(parsed.files[0].guest, "/deploy");
    let again = export(false);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert!(export(true).status.success());
    let unknown = std::process::Command::new(BIN)
        .args(["plugin", "export", "nope"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("adapter-file"));
}

/// A gate built for plugin contract 0.1.0 (before `check-params`) still
/// loads from the plugin directory and judges; `pipeline check` says its
/// parameters could not be checked ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_built_for_contract_0_1_0_still_loads_and_judges() {
    let root = tempfile::tempdir().unwrap();
    let plugins = root.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(LEGACY_GATE_PATH, plugins.join("legacy-gate.wasm")).expect("legacy-gate.wasm");
    let pipeline = |name: &str, max: usize| {
        format!(
            "name = \"{name}\"\n[[environment]]\nname = \"dev\"\n[[environment.gate]]\nplugin = \"legacy-gate\"\nparams = {{ max_bytes = {max} }}\n"
        )
    };
    let roomy = write(root.path(), "roomy.toml", &pipeline("roomy", 1 << 20));
    let tight = write(root.path(), "tight.toml", &pipeline("tight", 10));

    let check = std::process::Command::new(BIN)
        .args(["pipeline", "check"])
        .arg(&roomy)
        .arg("--plugin-dir")
        .arg(&plugins)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        stdout.contains("plugin legacy-gate 0.1.0 predates check-params (plugin contract 0.1.0)"),
        "{stdout}"
    );

    let daemon = Daemon::start(
        &root.path().join("data"),
        &[
            "--pipeline",
            roomy.to_str().unwrap(),
            "--pipeline",
            tight.to_str().unwrap(),
            "--plugin-dir",
            plugins.to_str().unwrap(),
        ],
    );
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;
    let passed = submit(&mut c, "roomy", &candidate(1)).await;
    let passed = finished(&mut c, passed.release.unwrap().id).await;
    assert_eq!(phase(&passed), ReleasePhase::Succeeded, "{passed:?}");
    let verdicts: Vec<_> = passed
        .stages
        .iter()
        .flat_map(|s| s.gates.iter())
        .map(|g| g.reason.clone())
        .collect();
    assert!(
        verdicts.iter().any(|r| r.contains("at most 1048576")),
        "{verdicts:?}"
    );
    let failed = submit(&mut c, "tight", &candidate(2)).await;
    let failed = finished(&mut c, failed.release.unwrap().id).await;
    assert_eq!(phase(&failed), ReleasePhase::Failed, "{failed:?}");
    assert_eq!(failed.failed_gate, "legacy-gate");
    assert!(
        !failed.misconfigured,
        "the candidate failed the gate: {failed:?}"
    );
}

/// Parameters the plugin refuses that still reach a release (the plugin was
/// pushed after the pipeline loaded) fail it as misconfigured, before any
/// gate judges, and `submit --wait` exits 7, not 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn params_refused_after_load_fail_the_release_as_misconfigured() {
    let root = tempfile::tempdir().unwrap();
    let pipeline = write(
        root.path(),
        "chaos.toml",
        "name = \"chaos\"\n[[environment]]\nname = \"dev\"\n[[environment.gate]]\nplugin = \"chaos-gate\"\nparams = { mode = \"pass\", colour = \"red\" }\n",
    );
    let daemon = Daemon::start(
        &root.path().join("data"),
        &["--pipeline", pipeline.to_str().unwrap()],
    );
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;
    push(&mut c, &chaos(), CLOCK, "")
        .await
        .expect("push chaos-gate");

    let sent = submit(&mut c, "chaos", &candidate(1)).await;
    let release = finished(&mut c, sent.release.unwrap().id).await;
    assert_eq!(phase(&release), ReleasePhase::Failed, "{release:?}");
    assert!(release.misconfigured, "{release:?}");
    assert_eq!(release.failed_gate, "chaos-gate");
    for needle in [
        "the pipeline is misconfigured in dev",
        "refuses param `colour`",
        "gatehouse pipeline check",
    ] {
        assert!(
            release.reason.contains(needle),
            "{needle}: {}",
            release.reason
        );
    }
    assert!(
        release.stages.iter().all(|s| s.gates.is_empty()),
        "no gate judged the candidate: {release:?}"
    );

    let file = write(
        root.path(),
        "c.json",
        std::str::from_utf8(&candidate(2)).unwrap(),
    );
    let cli = std::process::Command::new(BIN)
        .args([
            "submit",
            "--pipeline",
            "chaos",
            "--wait",
            "--addr",
            &daemon.addr,
            "--token",
            &token,
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        cli.status.code(),
        Some(7),
        "{}{}",
        String::from_utf8_lossy(&cli.stdout),
        String::from_utf8_lossy(&cli.stderr)
    );
}
