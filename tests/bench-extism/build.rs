//! Builds the two trivial plugins the benchmark calls, each with a nested
//! cargo into a target directory under OUT_DIR (so it never waits on the
//! outer build's lock): Gatehouse's `noop-gate` for `wasm32-wasip2`, and its
//! Extism equivalent in `guest/` for `wasm32-unknown-unknown`. Their paths
//! reach the crate as `NOOP_GATE_WASM` and `EXTISM_NOOP_WASM`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest
        .parent()
        .and_then(Path::parent)
        .ok_or("tests/bench-extism is not two levels below the repository root")?
        .to_path_buf();
    let out = PathBuf::from(std::env::var("OUT_DIR")?);

    for dir in ["plugin-sdk", "tests/plugins/noop-gate"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        manifest.join("guest").display()
    );

    let gate = build(
        &root,
        &["-p", "noop-gate"],
        "wasm32-wasip2",
        &out.join("noop-gate"),
    )?;
    let guest = build(
        &manifest.join("guest"),
        &[],
        "wasm32-unknown-unknown",
        &out.join("extism-guest"),
    )?;
    let gate = gate.join("noop_gate.wasm");
    let guest = guest.join("bench_extism_guest.wasm");
    for wasm in [&gate, &guest] {
        if !wasm.exists() {
            return Err(format!("expected {} after building it", wasm.display()).into());
        }
    }
    println!("cargo:rustc-env=NOOP_GATE_WASM={}", gate.display());
    println!("cargo:rustc-env=EXTISM_NOOP_WASM={}", guest.display());
    Ok(())
}

/// Runs `cargo build --release --target {target}` in `dir`; returns the
/// directory the artefacts land in.
fn build(
    dir: &Path,
    args: &[&str],
    target: &str,
    target_dir: &Path,
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(dir)
        .args(["build", "--release", "--target", target])
        .args(args)
        .arg("--target-dir")
        .arg(target_dir)
        // Small guests; the benchmark compiles them once, at start-up.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false");
    // The outer build's flags and wrappers (clippy's driver, coverage flags)
    // are for the host, not for the guests.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status()?;
    if !status.success() {
        return Err(format!(
            "building {} for {target} failed ({status}); run `rustup target add {target}`",
            dir.display()
        )
        .into());
    }
    Ok(target_dir.join(target).join("release"))
}
