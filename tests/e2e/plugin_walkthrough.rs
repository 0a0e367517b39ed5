//! The README's plugin-author walk-through, run line for line: scaffold a
//! gate, build it for wasm32-wasip2, unit-test it natively and as `.wasm`,
//! test it with no daemon, push it to a daemon and release a candidate it
//! judges.

use crate::common::BIN;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const README: &str = include_str!("../../README.md");

/// The shell block between the walk-through markers, exactly as printed.
fn walkthrough() -> &'static str {
    let start = README
        .find("<!-- walkthrough:begin -->")
        .expect("README has the walk-through");
    let block = &README[start..];
    let open = block.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let close = block[open..].find("```").expect("the block closes");
    &block[open..open + close]
}

#[test]
fn readme_plugin_walkthrough_runs_as_written() {
    let script = walkthrough();
    assert!(script.contains("gatehouse plugin push"), "{script}");
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(BIN).parent().expect("binary directory");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    // -e: any failing line fails the walk-through; the `for` loop waits at
    // most 60 s for the daemon. Output goes to files, not pipes: a daemon
    // left behind by a failing line must not hold the test's pipes open.
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    // Whatever the script leaves running in the background (the daemon,
    // when a line after `serve` failed) is killed as the shell exits.
    let script = format!("trap 'kill -KILL $(jobs -p) 2>/dev/null || true' EXIT\n{script}");
    cmd.args(["-e", "-c", &script])
        .current_dir(dir.path())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        // Its own process group, so everything it started can be stopped.
        .process_group(0)
        .env("PATH", &path)
        .env("GATEHOUSE_LOG", "warn")
        .env_remove("GATEHOUSE_TOKEN")
        .env_remove("GATEHOUSE_ADDR");
    // The build in the walk-through is a user's own: none of this build's
    // settings (target dir, flags, wrappers) may leak into it.
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_") || key.starts_with("RUSTC") || key == "RUSTFLAGS" {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd.spawn().expect("run bash");
    let deadline = Instant::now() + Duration::from_secs(900);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for bash") {
            break Some(status);
        }
        if Instant::now() > deadline {
            // Still running, so not reaped: its process group id cannot
            // have been handed to anyone else yet. Once reaped it could be,
            // which is why the group is never signalled after that.
            let _ = Command::new("kill")
                .args(["-KILL", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "walk-through failed ({status:?}; None is a timeout after 15 min):\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    // `cargo test` ran the gate natively and as the built component.
    assert!(
        stdout.contains("test tests::the_component_judges_as_the_native_code_does ... ok"),
        "{stdout}"
    );
    // `plugin test` printed the verdict of the local run.
    assert!(
        stdout.contains("max-tokens 0.1.0") && stdout.contains(": pass (score 1.00)"),
        "{stdout}"
    );
    // The push was checked and made active; `plugin list` shows it.
    assert!(stdout.contains("pushed max-tokens 0.1.0"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("max-tokens ") && l.contains("yes")),
        "{stdout}"
    );
    // The release it judged went through (`submit --wait` exits 0 only then).
    assert!(stdout.contains("Succeeded"), "{stdout}");

    scaffolded_adapter_builds_and_checks_its_params(dir.path(), &path);
}

/// The adapter scaffold builds too (reusing the gate's target directory),
/// and its `check-params` refuses a URL that is not one, at its place in
/// the pipeline.
fn scaffolded_adapter_builds_and_checks_its_params(root: &Path, path: &str) {
    let run = |program: &str, args: &[&str], cwd: &Path| {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(cwd)
            .env("PATH", path)
            .env("CARGO_TARGET_DIR", root.join("max-tokens/target"))
            .env_remove("GATEHOUSE_TOKEN")
            .env_remove("GATEHOUSE_ADDR");
        for (key, _) in std::env::vars() {
            if (key.starts_with("CARGO_") && key != "CARGO_TARGET_DIR")
                || key.starts_with("RUSTC")
                || key == "RUSTFLAGS"
            {
                cmd.env_remove(key);
            }
        }
        let out = cmd.output().expect("run");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), said)
    };
    let (code, said) = run(
        BIN,
        &["plugin", "new", "edge-admin", "--kind", "adapter"],
        root,
    );
    assert_eq!(code, Some(0), "{said}");
    let crate_dir = root.join("edge-admin");
    let (code, said) = run(
        "cargo",
        &["build", "--release", "--target", "wasm32-wasip2"],
        &crate_dir,
    );
    assert_eq!(code, Some(0), "the adapter scaffold builds: {said}");
    let plugins = root.join("adapter-plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(
        root.join("max-tokens/target/wasm32-wasip2/release/edge_admin.wasm"),
        plugins.join("edge-admin.wasm"),
    )
    .expect("the built adapter");
    let pipeline = root.join("edge.toml");
    std::fs::write(
        &pipeline,
        "name = \"edge\"\n[[environment]]\nname = \"dev\"\nadapter = \"edge-admin\"\nadapter_params = { url = \"127.0.0.1:9000\" }\n",
    )
    .unwrap();
    let (code, said) = run(
        BIN,
        &[
            "pipeline",
            "check",
            pipeline.to_str().unwrap(),
            "--plugin-dir",
            plugins.to_str().unwrap(),
        ],
        root,
    );
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("edge.toml:5:")
            && said.contains("refuses param `url`")
            && said.contains("is not an http:// or https:// URL"),
        "{said}"
    );
}
