//! `gatehouse plugin test` on each built standard plugin with the example
//! requests in `examples/requests/` prints the verdict the example is
//! there to show, with no daemon (adapter-http's talks to an admin API the
//! test serves on 127.0.0.1).

use crate::common::BIN;
use crate::loopback::AdminApi;
use gatehouse::plugins::builtin::{
    ADAPTER_FILE_PATH, ADAPTER_HTTP_PATH, CONFIG_LINT_PATH, COST_ESTIMATOR_PATH, DRIFT_PATH,
    GOLDEN_EVAL_PATH, LATENCY_PATH,
};
use std::path::{Path, PathBuf};
use std::process::Command;

fn request(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/requests")
        .join(name)
}

/// Runs `plugin test`; returns its exit code and what it printed.
fn plugin_test(plugin: &str, request_file: &str, extra: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["plugin", "test", plugin, "--request"])
        .arg(request(request_file))
        .args(extra)
        .output()
        .expect("run gatehouse plugin test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn each_gates_example_request_gives_its_verdict() {
    // (plugin, request, exit code, outcome line, words of the reason)
    let cases = [
        (
            GOLDEN_EVAL_PATH,
            "golden-eval.json",
            0,
            ": pass (score",
            "pass rate",
        ),
        (
            GOLDEN_EVAL_PATH,
            "golden-eval-regressed.json",
            3,
            ": fail (score",
            "incumbent",
        ),
        (
            COST_ESTIMATOR_PATH,
            "cost-estimator.json",
            3,
            ": fail (score",
            "max_increase_pct",
        ),
        (CONFIG_LINT_PATH, "config-lint.json", 0, ": pass (score", ""),
        (DRIFT_PATH, "drift.json", 3, ": fail (score", "output_label"),
        (LATENCY_PATH, "latency.json", 0, ": pass (score", "p99"),
        (
            LATENCY_PATH,
            "latency-regressed.json",
            3,
            ": fail (score",
            "p99 rose",
        ),
    ];
    for (plugin, file, code, outcome, words) in cases {
        let (got, text) = plugin_test(plugin, file, &[]);
        assert_eq!(got, code, "{file}: {text}");
        assert!(text.contains(outcome), "{file}: {text}");
        assert!(text.contains(words), "{file}: {text}");
        assert!(text.contains("instructions (fuel)"), "{file}: {text}");
    }
}

#[test]
fn the_file_adapters_example_request_places_the_candidate() {
    let dir = tempfile::tempdir().unwrap();
    let deploy = dir.path().join("deploy");
    std::fs::create_dir_all(&deploy).unwrap();
    let manifest = dir.path().join("adapter-file.toml");
    std::fs::write(&manifest, crate::common::file_adapter_manifest(&deploy)).unwrap();
    let (code, text) = plugin_test(
        ADAPTER_FILE_PATH,
        "adapter-file.json",
        &["--manifest", manifest.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(": done"), "{text}");
    let placed = std::fs::read(deploy.join("staging/active.json")).unwrap();
    assert_eq!(
        placed,
        std::fs::read(request("../candidates/triage-v2.json")).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_adapters_example_request_places_the_candidate_and_reads_it_back() {
    let api = AdminApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The example names a service on 127.0.0.1:8089; this one listens
    // where the system put it, so the request and the grant say so.
    let mut example: serde_json::Value =
        serde_json::from_slice(&std::fs::read(request("adapter-http.json")).unwrap()).unwrap();
    assert_eq!(example["params"]["base_url"], "http://127.0.0.1:8089/admin");
    example["params"]["base_url"] = format!("http://{}/admin", api.host).into();
    let candidate = request("../candidates/triage-v2.json");
    example["candidate_file"] = candidate.to_str().unwrap().into();
    let apply = dir.path().join("apply.json");
    std::fs::write(&apply, example.to_string()).unwrap();
    example["call"] = "current".into();
    let current = dir.path().join("current.json");
    std::fs::write(&current, example.to_string()).unwrap();
    let manifest = dir.path().join("adapter-http.toml");
    std::fs::write(
        &manifest,
        format!(
            "capabilities = [\"http\"]\n[http]\nallow_hosts = [\"{}\"]\n",
            api.host
        ),
    )
    .unwrap();

    let run = |file: PathBuf| {
        let manifest = manifest.clone();
        tokio::task::spawn_blocking(move || {
            plugin_test(
                ADAPTER_HTTP_PATH,
                file.to_str().unwrap(),
                &["--manifest", manifest.to_str().unwrap()],
            )
        })
    };
    let (code, text) = run(apply).await.unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(": done"), "{text}");
    let digest = gatehouse::digest::Digest::of(&std::fs::read(&candidate).unwrap()).hex();
    assert_eq!(api.active("staging"), Some(digest.clone()));
    let (code, text) = run(current).await.unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!(": live {digest} canary - at 0%")),
        "{text}"
    );
}
