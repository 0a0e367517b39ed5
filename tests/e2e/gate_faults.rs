//! A plugin that traps, loops, allocates without end or refuses fails its gate closed with a precise
//! reason, while the daemon goes on serving other releases.

use crate::common::*;
use gatehouse::proto::ReleasePhase;

fn pipeline(name: &str, params: &str, timeout_ms: u64) -> String {
    format!(
        "name = \"{name}\"\n[[environment]]\nname = \"dev-{name}\"\n[[environment.gate]]\nplugin = \"chaos-gate\"\ntimeout_ms = {timeout_ms}\nparams = {params}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_gates_fail_closed_with_their_reason_beside_a_healthy_release() {
    let root = tempfile::tempdir().unwrap();
    let plugins = test_plugin_dir(root.path());
    let cases = [
        ("trap", "{ mode = \"trap\" }", 5000, "trapped"),
        ("loop", "{ mode = \"loop\" }", 300, "timed out after 300 ms"),
        (
            "alloc",
            "{ mode = \"alloc\" }",
            5000,
            "ran out of memory (limit 64 MiB over all its memories)",
        ),
        (
            "error",
            "{ mode = \"error\" }",
            5000,
            "could not judge: chaos-gate asked to error",
        ),
        (
            "fail",
            "{ mode = \"fail\" }",
            5000,
            "chaos-gate asked to fail",
        ),
    ];
    let mut args = vec!["--plugin-dir".to_string(), plugins.display().to_string()];
    for (name, params, timeout, _) in &cases {
        let p = write(
            root.path(),
            &format!("{name}.toml"),
            &pipeline(name, params, *timeout),
        );
        args.extend(["--pipeline".to_string(), p.display().to_string()]);
    }
    let ok = write(
        root.path(),
        "ok.toml",
        &pipeline("ok", "{ mode = \"pass\" }", 5000),
    );
    args.extend(["--pipeline".to_string(), ok.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let daemon = Daemon::start(&root.path().join("data"), &args);
    let token = daemon.generated_token.clone().unwrap();
    let mut c = daemon.client(Some(&token)).await;

    let mut ids = Vec::new();
    for (name, ..) in &cases {
        ids.push(
            submit(&mut c, name, &candidate(1))
                .await
                .release
                .unwrap()
                .id,
        );
    }
    let healthy = submit(&mut c, "ok", &candidate(1))
        .await
        .release
        .unwrap()
        .id;

    for (id, (name, _, _, words)) in ids.iter().zip(&cases) {
        let r = finished(&mut c, *id).await;
        assert_eq!(phase(&r), ReleasePhase::Failed, "{name}");
        assert_eq!(r.failed_gate, "chaos-gate", "{name}");
        assert!(r.reason.contains(words), "{name}: {}", r.reason);
    }
    let r = finished(&mut c, healthy).await;
    assert_eq!(phase(&r), ReleasePhase::Succeeded, "{}", r.reason);

    // `/metrics` counts each call that gave no verdict by its reason (read
    // from the audit log as it is followed: a moment behind at most).
    let lines: Vec<String> = ["trap", "timeout", "out_of_memory", "plugin_error"]
        .iter()
        .map(|reason| {
            format!(
                "gatehouse_gate_calls_without_verdict_total{{gate=\"chaos-gate\",reason=\"{reason}\"}} 1"
            )
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = scrape(daemon.metrics.as_deref().expect("/metrics"), &token);
        let missing: Vec<_> = lines
            .iter()
            .filter(|line| !text.lines().any(|l| l == line.as_str()))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{missing:?} missing in:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
