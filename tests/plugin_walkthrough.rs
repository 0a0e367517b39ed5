//! The README's plugin-author walk-through, run line for line: scaffold a
//! gate, build it for wasm32-wasip2, unit-test it natively and as `.wasm`,
//! test it with no daemon, push it to a daemon and release a candidate it
//! judges.

mod common;

use common::BIN;
use std::path::Path;
use std::process::Command;

const README: &str = include_str!("../README.md");

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
    // most 10 s for the daemon.
    cmd.args(["-e", "-c", script])
        .current_dir(dir.path())
        .env("PATH", path)
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
    let out = cmd.output().expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "walk-through failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
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
}
