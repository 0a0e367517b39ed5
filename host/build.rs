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
    "gatehouse/v1/cluster.proto",
    "flagd/sync/v1/sync.proto",
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
    ("stall-adapter", Ship::TestOnly),
    ("sleepy-describe", Ship::TestOnly),
    ("sleepy-start", Ship::TestOnly),
    ("huge-describe", Ship::TestOnly),
    ("legacy-gate", Ship::TestOnly),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest
        .parent()
        .ok_or("host/ has no parent")?
        .to_path_buf();
    let out = PathBuf::from(std::env::var("OUT_DIR")?);

    compile_protos(&root, &out)?;
    version_facts(&root);
    ensure_wasm_target()?;
    build_plugins(&root, &out)?;
    Ok(())
}

/// What `gatehouse --version` names beside the crate's version: the commit
/// it was built from (when built from a git checkout) and the wasmtime that
/// runs the plugins (from `Cargo.lock`).
fn version_facts(root: &Path) {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(root)
        .output()
        .ok()
        .is_some_and(|o| o.status.success() && !o.stdout.is_empty());
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let wasmtime = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"wasmtime\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "unknown".into());
    println!(
        "cargo:rustc-env=GATEHOUSE_COMMIT={commit}{}",
        if dirty { "-modified" } else { "" }
    );
    println!("cargo:rustc-env=GATEHOUSE_WASMTIME={wasmtime}");
    for git in [".git/HEAD", ".git/index"] {
        if root.join(git).exists() {
            println!("cargo:rerun-if-changed={}", root.join(git).display());
        }
    }
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.lock").display()
    );
}

/// rustup installs the targets `rust-toolchain.toml` names only when it
/// installs the toolchain itself; a machine that already had the pinned
/// toolchain has no `wasm32-wasip2` until someone adds it. Add it here, for the
/// toolchain this build runs on, so `cargo build` alone is enough.
fn ensure_wasm_target() -> Result<(), Box<dyn std::error::Error>> {
    const TARGET: &str = "wasm32-wasip2";
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()?;
    let libdir = PathBuf::from(String::from_utf8_lossy(&libdir.stdout).trim());
    let installed = |dir: &Path| {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries.flatten().any(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    name.starts_with("libcore-") && name.ends_with(".rlib")
                })
            })
            .unwrap_or(false)
    };
    if installed(&libdir) {
        return Ok(());
    }
    let hint = format!("the {TARGET} target is not installed; run `rustup target add {TARGET}`");
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", TARGET]);
    if let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") {
        rustup.args(["--toolchain", &toolchain]);
    }
    println!("cargo:warning=adding the {TARGET} target through rustup (needed once)");
    match rustup.status() {
        Ok(status) if status.success() && installed(&libdir) => Ok(()),
        Ok(status) => Err(format!("{hint} (rustup target add exited with {status})").into()),
        Err(_) => Err(format!("{hint}: rustup was not found to add it").into()),
    }
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
    // A daemon compiles every plugin it meets with Cranelift, and that time
    // follows code size: optimise the guests for size, across crates, which
    // takes about a quarter off both their code and a cold first start.
    cmd.env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "s");
    cmd.env("CARGO_PROFILE_RELEASE_LTO", "true");
    cmd.env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1");
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

/// Where the nested cargo builds the plugins: one directory beside the outer
/// build's profiles (`target/wasm-plugins`), so the release build, the tests
/// and clippy share one plugin build instead of making one each. The nested
/// cargo takes that directory's lock, never the outer one's.
fn plugin_target_dir(out: &Path) -> PathBuf {
    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out, or with --target
    // <target>/<triple>/<profile>/build/…; the first ancestor holding a
    // CACHEDIR.TAG is cargo's target directory.
    out.ancestors()
        .skip(4)
        .find(|dir| dir.join("CACHEDIR.TAG").exists())
        .map(|target| target.join("wasm-plugins"))
        .unwrap_or_else(|| out.join("wasm"))
}

/// Builds every plugin crate for `wasm32-wasip2` in release mode, into a target
/// directory of its own so this nested cargo never waits on the outer one.
fn build_plugins(root: &Path, out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    for dir in ["plugin-sdk", "plugins", "tests/plugins"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let target_dir = plugin_target_dir(out);
    std::fs::create_dir_all(&target_dir)?;
    // Builds of other profiles share `target_dir`: hold its lock from the
    // first nested build to the last copy, so a variant one of them builds
    // never lands between our default build and our copies.
    let lock = std::fs::File::create(target_dir.join(".gatehouse-plugins.lock"))?;
    lock.lock()?;
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
        return Err(format!("building the plugins for wasm32-wasip2 failed ({status})").into());
    }
    let mut consts = String::new();
    for (p, ship) in PLUGINS {
        let stem = p.replace('-', "_");
        let wasm = built(p);
        if !wasm.exists() {
            return Err(format!("expected {} after building the plugins", wasm.display()).into());
        }
        // Our own copy: the shared directory is rebuilt by other profiles.
        let copy = out.join(format!("{stem}.wasm"));
        std::fs::copy(&wasm, &copy)?;
        let name = stem.to_uppercase();
        let path = copy.display().to_string();
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
