//! Every RPC checks the caller's token and role.

use crate::common::*;
use gatehouse::api::auth::{generate_token, hash_token};
use gatehouse::client::Client;
use gatehouse::proto;
use tonic::Code;

/// A token of each role, as [`config`] admits them.
pub(crate) struct Tokens {
    pub(crate) reader: String,
    pub(crate) ci: String,
    pub(crate) operator: String,
    pub(crate) admin: String,
}

/// A config admitting a reader, a CI job, an operator and an admin.
pub(crate) fn config(root: &std::path::Path) -> (std::path::PathBuf, Tokens) {
    let t = Tokens {
        reader: generate_token().unwrap(),
        ci: generate_token().unwrap(),
        operator: generate_token().unwrap(),
        admin: generate_token().unwrap(),
    };
    let mut text = String::new();
    for (name, role, token) in [
        ("dashboard", "reader", &t.reader),
        ("ci-bot", "ci", &t.ci),
        ("oncall", "operator", &t.operator),
        ("root", "admin", &t.admin),
    ] {
        text.push_str(&format!(
            "[[tokens]]\nname = \"{name}\"\nrole = \"{role}\"\nsha256 = \"{}\"\n",
            hex::encode(hash_token(token))
        ));
    }
    (write(root, "gatehouse.toml", &text), t)
}

/// The code each guarded RPC answers with, in a fixed order:
/// submit, approve, abort, rollback, get, list, get_config, verify,
/// check_drift.
async fn codes(c: &mut Client) -> Vec<Code> {
    let code = |r: Result<(), tonic::Status>| r.err().map_or(Code::Ok, |s| s.code());
    vec![
        code(
            c.releases
                .submit_release(proto::SubmitReleaseRequest {
                    pipeline: "model-config".into(),
                    candidate: candidate(7),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
        ),
        code(
            c.releases
                .approve_stage(proto::ApproveStageRequest {
                    id: 999,
                    environment: "dev".into(),
                    comment: String::new(),
                })
                .await
                .map(|_| ()),
        ),
        code(
            c.releases
                .abort_release(proto::AbortReleaseRequest {
                    id: 999,
                    reason: String::new(),
                })
                .await
                .map(|_| ()),
        ),
        code(
            c.environments
                .rollback_environment(proto::RollbackEnvironmentRequest {
                    environment: "dev".into(),
                    reason: String::new(),
                })
                .await
                .map(|_| ()),
        ),
        code(
            c.releases
                .get_release(proto::GetReleaseRequest { id: 999 })
                .await
                .map(|_| ()),
        ),
        code(
            c.releases
                .list_releases(proto::ListReleasesRequest::default())
                .await
                .map(|_| ()),
        ),
        code(
            c.environments
                .get_config(proto::GetConfigRequest {
                    environment: "dev".into(),
                })
                .await
                .map(|_| ()),
        ),
        code(
            c.audit
                .verify_audit(proto::VerifyAuditRequest {})
                .await
                .map(|_| ()),
        ),
        code(
            c.environments
                .check_drift(proto::CheckDriftRequest {
                    environment: "dev".into(),
                })
                .await
                .map(|_| ()),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_is_refused_outside_its_rights_and_no_token_is_unauthenticated() {
    use Code::{FailedPrecondition as Pre, NotFound as Nf, Ok, PermissionDenied as Deny};
    let root = tempfile::tempdir().unwrap();
    let (cfg, t) = config(root.path());
    let daemon = Daemon::start(
        &root.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    assert!(
        daemon.generated_token.is_none(),
        "configured tokens: nothing generated"
    );

    // Allowed calls on missing things answer NotFound/FailedPrecondition: the
    // role check passed and the domain answered.
    let expect = [
        (
            "reader",
            &t.reader,
            [Deny, Deny, Deny, Deny, Nf, Ok, Ok, Ok, Ok],
        ),
        ("ci", &t.ci, [Ok, Deny, Deny, Deny, Nf, Ok, Ok, Ok, Ok]),
        (
            "operator",
            &t.operator,
            [Deny, Nf, Nf, Pre, Nf, Ok, Ok, Ok, Ok],
        ),
        ("admin", &t.admin, [Ok, Nf, Nf, Pre, Nf, Ok, Ok, Ok, Ok]),
    ];
    for (role, token, want) in expect {
        let mut c = daemon.client(Some(token)).await;
        assert_eq!(codes(&mut c).await, want, "role {role}");
    }

    let mut anonymous = daemon.client(None).await;
    assert!(
        codes(&mut anonymous)
            .await
            .iter()
            .all(|c| *c == Code::Unauthenticated)
    );
    let mut forged = daemon.client(Some("gatehouse_0000")).await;
    assert!(
        codes(&mut forged)
            .await
            .iter()
            .all(|c| *c == Code::Unauthenticated)
    );

    let denied = daemon
        .client(Some(&t.reader))
        .await
        .releases
        .submit_release(proto::SubmitReleaseRequest::default())
        .await
        .unwrap_err();
    assert!(
        denied.message().contains("role reader"),
        "{}",
        denied.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_without_a_token() {
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&root.path().join("data"), &[]);
    let channel = daemon.channel().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let r = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "gatehouse.v1.ReleaseService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_api_without_a_token() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&root.path().join("data"), &[]);
    let channel = daemon.channel().await;
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a list of services");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for service in [
        "gatehouse.v1.ReleaseService",
        "gatehouse.v1.EnvironmentService",
        "gatehouse.v1.AuditService",
        "flagd.sync.v1.FlagSyncService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == service),
            "{service} missing from {names:?}"
        );
    }
}

/// The older reflection version answers too (grpcio's reflection client,
/// evans and older grpcurl ask for it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1alpha_lists_the_api_too() {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;

    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&root.path().join("data"), &[]);
    let mut reflection = ServerReflectionClient::new(daemon.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a list of services");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.iter().any(|n| n == "gatehouse.v1.ReleaseService"),
        "{names:?}"
    );
}

/// `token new --role service` mints what the README tells serving services
/// to use: the entry it prints admits that token with the service role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_new_mints_a_service_token_the_daemon_admits() {
    let out = std::process::Command::new(BIN)
        .args(["token", "new", "--name", "ranker", "--role", "service"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = stdout
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .expect("the token is printed")
        .to_string();
    let entry = &stdout[stdout.find("[[tokens]]").expect("a config entry")..];
    assert!(entry.contains("role = \"service\""), "{entry}");

    let root = tempfile::tempdir().unwrap();
    let config = write(root.path(), "gatehouse.toml", entry);
    let daemon = Daemon::start(
        &root.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let mut c = daemon.client(Some(&token)).await;
    let read = c
        .environments
        .get_config(proto::GetConfigRequest {
            environment: "production".into(),
        })
        .await;
    assert!(read.is_ok(), "a service reads its configuration: {read:?}");
    let submit = c
        .releases
        .submit_release(proto::SubmitReleaseRequest {
            pipeline: "model-config".into(),
            candidate: GOOD.to_vec(),
            ..Default::default()
        })
        .await;
    assert_eq!(submit.unwrap_err().code(), Code::PermissionDenied);
}

/// SIGHUP makes the daemon read its config's tokens again: a token dropped
/// is refused from the next call, a new one admitted, the reload audited;
/// a config that no longer parses changes nothing. `token list` shows what
/// the config admits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_tokens_and_token_list_shows_them() {
    let root = tempfile::tempdir().unwrap();
    let (config, t) = config(root.path());
    let daemon = Daemon::start(
        &root.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let pid = daemon.pid();
    let reads = |token: String| {
        let addr = daemon.addr.clone();
        async move {
            let mut c = gatehouse::client::connect(&addr, Some(&token))
                .await
                .unwrap();
            c.releases
                .list_releases(proto::ListReleasesRequest::default())
                .await
                .map(|_| ())
                .map_err(|s| s.code())
        }
    };
    assert_eq!(reads(t.reader.clone()).await, Ok(()));

    let newcomer = generate_token().unwrap();
    let text = format!(
        "[[tokens]]\nname = \"root\"\nrole = \"admin\"\nsha256 = \"{}\"\n[[tokens]]\nname = \"newcomer\"\nrole = \"reader\"\nsha256 = \"{}\"\n",
        hex::encode(hash_token(&t.admin)),
        hex::encode(hash_token(&newcomer))
    );
    std::fs::write(&config, &text).unwrap();
    let listed = std::process::Command::new(BIN)
        .args(["token", "list", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{stdout}");
    assert!(
        stdout.contains("newcomer") && stdout.contains("reader") && !stdout.contains("dashboard"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not accepted while the config lists tokens"),
        "{stdout}"
    );

    let hup = || {
        assert!(
            std::process::Command::new("kill")
                .args(["-HUP", &pid.to_string()])
                .status()
                .unwrap()
                .success()
        );
    };
    hup();
    let mut refused = false;
    for _ in 0..100 {
        if reads(t.reader.clone()).await == Err(Code::Unauthenticated) {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(refused, "the dropped token is refused after SIGHUP");
    assert_eq!(reads(newcomer.clone()).await, Ok(()));
    let mut admin = daemon.client(Some(&t.admin)).await;
    let kinds: Vec<_> = events(&mut admin)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "auth.tokens_reloaded")
            .count(),
        1
    );

    // A broken config changes nothing.
    std::fs::write(
        &config,
        "[[tokens]]\nname = \"x\"\nrole = \"admin\"\nsha256 = \"nope\"\n",
    )
    .unwrap();
    hup();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(reads(newcomer).await, Ok(()), "the tokens in use stay");
    let kinds: Vec<_> = events(&mut admin)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "auth.tokens_reloaded")
            .count(),
        1
    );
}

/// Configuring tokens on a daemon that generated its admin token warns that
/// the generated one is no longer accepted, and it is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_tokens_replace_the_generated_admin_token_with_a_warning() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let first = Daemon::start(&data, &[]);
    let generated = first
        .generated_token
        .clone()
        .expect("a first start generates one");
    first.kill();
    let (config, t) = config(root.path());
    let log = root.path().join("serve.log");
    let daemon = Daemon::start_logged(&data, &["--config", config.to_str().unwrap()], &[], &log);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("generated on the first start is no longer accepted"),
        "{text}"
    );
    let mut c = daemon.client(Some(&generated)).await;
    let e = c
        .releases
        .list_releases(proto::ListReleasesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let mut c = daemon.client(Some(&t.admin)).await;
    assert!(
        c.releases
            .list_releases(proto::ListReleasesRequest::default())
            .await
            .is_ok()
    );
}

/// A CA, a certificate it signed for 127.0.0.1, and a client certificate it
/// signed, as PEM files in `root`: (ca, server cert, server key, client
/// cert, client key).
pub(crate) struct Pki {
    pub(crate) ca: std::path::PathBuf,
    pub(crate) server_cert: std::path::PathBuf,
    pub(crate) server_key: std::path::PathBuf,
    pub(crate) client_cert: std::path::PathBuf,
    pub(crate) client_key: std::path::PathBuf,
}

pub(crate) fn pki(root: &std::path::Path) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(DnType::CommonName, "gatehouse test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(
        vec!["127.0.0.1".into(), "localhost".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client_cert, client_key) = leaf(
        vec!["ci.example".into()],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    Pki {
        ca: write(root, "ca.pem", &ca_cert.pem()),
        server_cert: write(root, "server.pem", &server_cert),
        server_key: write(root, "server.key", &server_key),
        client_cert: write(root, "client.pem", &client_cert),
        client_key: write(root, "client.key", &client_key),
    }
}

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(args)
        .env_remove("GATEHOUSE_ADDR")
        .env_remove("GATEHOUSE_TOKEN")
        .output()
        .expect("run gatehouse")
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_serves_grpcio_and_the_cli_and_never_falls_back_to_plaintext() {
    let python = python();
    let tmp = tempfile::tempdir().unwrap();
    let (config, tokens) = config(tmp.path());
    let pki = pki(tmp.path());
    let p = |path: &std::path::Path| path.to_str().unwrap().to_string();
    let daemon = Daemon::start(
        &tmp.path().join("data"),
        &[
            "--config",
            &p(&config),
            "--tls-cert",
            &p(&pki.server_cert),
            "--tls-key",
            &p(&pki.server_key),
            "--client-ca",
            &p(&pki.ca),
        ],
    );
    assert!(daemon.addr.starts_with("https://"), "{}", daemon.addr);
    let target = daemon.addr.trim_start_matches("https://").to_string();

    // grpcio (C core, BoringSSL) with the CA, a client certificate and a token.
    let out = std::process::Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/python/tls_client.py"
        ))
        .args([
            &target,
            &p(&pki.ca),
            &p(&pki.client_cert),
            &p(&pki.client_key),
            &tokens.reader,
        ])
        .output()
        .expect("run the grpcio client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checks: std::collections::BTreeMap<String, serde_json::Value> = stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            (v["check"].as_str().unwrap().to_string(), v)
        })
        .collect();
    assert_eq!(checks["health"]["code"], "OK", "{stdout}");
    assert_eq!(checks["environments"]["code"], "OK", "{stdout}");
    assert!(
        checks["environments"]["reply"]
            .as_str()
            .unwrap()
            .contains("production"),
        "{stdout}"
    );
    assert_eq!(
        checks["environments_without_token"]["code"], "UNAUTHENTICATED",
        "TLS replaces no token: {stdout}"
    );
    assert_eq!(
        checks["without_client_certificate"]["code"], "UNAVAILABLE",
        "the daemon asks for a client certificate: {stdout}"
    );

    // The CLI over https, with the CA and the client certificate.
    let tls = [
        "--ca",
        &p(&pki.ca),
        "--cert",
        &p(&pki.client_cert),
        "--key",
        &p(&pki.client_key),
    ];
    let mut args = vec!["--addr", &daemon.addr, "--token", &tokens.reader];
    args.extend(tls.iter().copied());
    let out = cli(&[&args[..], &["status", "-o", "json"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without a client certificate: refused, and said how to fix it.
    let out = cli(&[
        "--addr",
        &daemon.addr,
        "--token",
        &tokens.reader,
        "--ca",
        &p(&pki.ca),
        "status",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("TLS with"), "{err}");
    // Without the CA, the system's roots do not know this one.
    let out = cli(&["--addr", &daemon.addr, "--token", &tokens.reader, "status"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--ca"), "{err}");
    // Plaintext to the TLS port is no gRPC answer, and says so.
    let plain = format!("http://{target}");
    let out = cli(&["--addr", &plain, "--token", &tokens.reader, "status"]);
    assert_eq!(out.status.code(), Some(1));

    // https:// to a plaintext daemon fails at the handshake: no fallback.
    let plain_daemon = Daemon::start(&tmp.path().join("plain"), &["--config", &p(&config)]);
    let https = plain_daemon.addr.replace("http://", "https://");
    let mut args = vec!["--addr", &https, "--token", &tokens.reader];
    args.extend(tls.iter().copied());
    let out = cli(&[&args[..], &["status"]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("TLS with") && err.contains("plaintext is never used"),
        "{err}"
    );
    // And TLS files with an http:// address are a mistake, not a downgrade.
    let mut args = vec!["--addr", &plain_daemon.addr, "--token", &tokens.reader];
    args.extend(tls.iter().copied());
    let out = cli(&[&args[..], &["status"]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("use https://"), "{err}");
}

#[test]
fn a_network_address_without_tls_is_refused_before_anything_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = cli(&[
        "serve",
        "--listen",
        "0.0.0.0:0",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("without TLS") && err.contains("allow_plaintext = true"),
        "{err}"
    );
    assert!(!data.exists(), "nothing is created");
    // Half a TLS setup is named as such.
    let config = write(
        tmp.path(),
        "half.toml",
        "tls_cert = \"server.pem\"\ndata_dir = \"data\"\n",
    );
    let out = cli(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--config",
        config.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("tls_cert and tls_key go together"), "{err}");
}
