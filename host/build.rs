//! Compiles the public API from `proto/` with protox (no system `protoc`), and
//! builds the plugins the daemon embeds as WebAssembly components.

use std::path::{Path, PathBuf};
use std::process::Command;

const PROTOS: &[&str] = &[
    "gatehouse/v1/releases.proto",
    "gatehouse/v1/environments.proto",
    "gatehouse/v1/audit.proto",
    "gatehouse/v1/plugins.proto",
    "gatehouse/v1/canary.proto",
];

/// How the daemon carries a plugin it builds.
#[derive(Clone, Copy, PartialEq)]
enum Ship {
    /// Embedded and installed at start: the default gates, which need no grant.
    Installed,
    /// Embedded but not installed: adapters need a directory or hosts granted
    /// by an admin's manifest, so they are pushed with one (the demo does).
    Bundled,
    /// Left on disk for tests to load.
    TestOnly,
}

/// Plugin crates built for wasm32-wasip2, and how the daemon carries them.
const PLUGINS: &[(&str, Ship)] = &[
    ("cost-estimator", Ship::Installed),
    ("config-lint", Ship::Installed),
    ("golden-eval", Ship::Installed),
    ("drift", Ship::Installed),
    ("latency", Ship::Installed),
    ("adapter-file", Ship::Bundled),
    ("adapter-http", Ship::Bundled),
    ("chaos-gate", Ship::TestOnly),
    ("hostile-gate", Ship::TestOnly),
    ("noop-gate", Ship::TestOnly),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest
        .parent()
        .ok_or("host/ has no parent")?
        .to_path_buf();
    let out = PathBuf::from(std::env::var("OUT_DIR")?);

    compile_protos(&root, &out)?;
    build_plugins(&root, &out)?;
    Ok(())
}

fn compile_protos(root: &Path, out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    use prost::Message;
    let include = root.join("proto");
    println!("cargo:rerun-if-changed={}", include.display());
    let files: Vec<PathBuf> = PROTOS.iter().map(|p| include.join(p)).collect();
    let fds = protox::compile(&files, [&include])?;
    std::fs::write(out.join("gatehouse_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}

/// Plugins also built with extra features, as `NAME_FULL_PATH`.
const VARIANTS: &[(&str, &str)] = &[("golden-eval", "files,live"), ("latency", "live")];

/// A cargo building plugins for `wasm32-wasip2` in release mode into
/// `target_dir`, with none of the outer build's settings.
fn nested_cargo(root: &Path, target_dir: &Path) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(target_dir);
    // The daemon embeds these: keep them small (about a tenth of the size
    // with line tables). Function names stay, so trap backtraces still read.
    cmd.env("CARGO_PROFILE_RELEASE_DEBUG", "false");
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
    cmd
}

/// Builds every plugin crate for `wasm32-wasip2` in release mode, into a target
/// directory of its own so this nested cargo never waits on the outer one.
fn build_plugins(root: &Path, out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    for dir in ["plugin-sdk", "plugins", "tests/plugins"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let target_dir = out.join("wasm");
    let built = |p: &str| {
        target_dir
            .join("wasm32-wasip2/release")
            .join(format!("{}.wasm", p.replace('-', "_")))
    };
    // Builds that ask for more capabilities than the embedded defaults (a
    // plugin's Cargo features decide what it asks for), for admins to push
    // with a manifest that grants them. Built first, in the same target
    // directory, and copied aside: the default build below then reuses
    // everything but the plugin itself.
    let mut variants = String::new();
    for (p, features) in VARIANTS {
        let mut cmd = nested_cargo(root, &target_dir);
        cmd.args(["-p", p, "--features", features]);
        let status = cmd.status()?;
        if !status.success() {
            return Err(format!("building {p} with features {features} failed ({status})").into());
        }
        let stem = p.replace('-', "_");
        let copy = out.join(format!("{stem}_full.wasm"));
        std::fs::copy(built(p), &copy)?;
        variants.push_str(&format!(
            "/// Where the build left `{p}` built with features `{features}`.\npub const {}_FULL_PATH: &str = {:?};\n",
            stem.to_uppercase(),
            copy.display().to_string()
        ));
    }
    let mut cmd = nested_cargo(root, &target_dir);
    for (p, _) in PLUGINS {
        cmd.args(["-p", p]);
    }
    let status = cmd.status()?;
    if !status.success() {
        return Err(format!("building the plugins for wasm32-wasip2 failed ({status}); run `rustup target add wasm32-wasip2`").into());
    }
    let mut consts = String::new();
    for (p, ship) in PLUGINS {
        let stem = p.replace('-', "_");
        let wasm = built(p);
        if !wasm.exists() {
            return Err(format!("expected {} after building the plugins", wasm.display()).into());
        }
        let name = stem.to_uppercase();
        let path = wasm.display().to_string();
        consts.push_str(&format!(
            "/// Where the build left the `{p}` plugin.\npub const {name}_PATH: &str = {path:?};\n"
        ));
        if *ship != Ship::TestOnly {
            consts.push_str(&format!(
                "/// The `{p}` plugin, embedded.\npub const {name}_WASM: &[u8] = include_bytes!({path:?});\n"
            ));
        }
    }
    consts.push_str(&variants);
    std::fs::write(out.join("plugin_paths.rs"), consts)?;
    Ok(())
}
