//! `gatehouse plugin new`: a plugin crate that builds as it is, with a
//! sample request and manifest, so `plugin test` and `plugin push` work on
//! the first try.

use super::EXIT_OK;
use super::plugin::{Kind, NewArgs};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// The SDK this binary was built with, for a local first run.
const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugin-sdk");

pub fn new(a: NewArgs) -> anyhow::Result<u8> {
    let name = a.name.as_str();
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        bail!(
            "plugin name {name:?}: use 1 to 64 lowercase letters, digits and '-', starting with a letter"
        );
    }
    let dir = a.dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!(
            "{} exists and is not empty; pick another --dir",
            dir.display()
        );
    }
    let sdk = match a.sdk {
        Some(p) => format!("path = {:?}", absolute(&p)?.display().to_string()),
        None => {
            let built = Path::new(BUILT_SDK);
            if built.is_dir() {
                format!("path = {:?}", absolute(built)?.display().to_string())
            } else {
                format!("version = {:?}", env!("CARGO_PKG_VERSION"))
            }
        }
    };
    let fill = |t: &str| t.replace("{{name}}", name).replace("{{sdk}}", &sdk);
    let (lib, request, manifest) = match a.kind {
        Kind::Gate => (
            include_str!("scaffold/gate.rs.tmpl"),
            include_str!("scaffold/gate-request.json.tmpl"),
            include_str!("scaffold/gate-manifest.toml.tmpl"),
        ),
        Kind::Adapter => (
            include_str!("scaffold/adapter.rs.tmpl"),
            include_str!("scaffold/adapter-request.json.tmpl"),
            include_str!("scaffold/adapter-manifest.toml.tmpl"),
        ),
    };
    let files = [
        ("Cargo.toml", fill(include_str!("scaffold/Cargo.toml.tmpl"))),
        (
            "rust-toolchain.toml",
            include_str!("scaffold/rust-toolchain.toml.tmpl").to_string(),
        ),
        ("src/lib.rs", fill(lib)),
        // The request keeps its `{{ticket}}` placeholder: only the name and
        // SDK are filled in.
        ("request.json", request.to_string()),
        ("manifest.toml", manifest.to_string()),
    ];
    let sample = [(
        "candidate.json",
        include_str!("scaffold/candidate.json.tmpl").to_string(),
    )];
    let files = files
        .into_iter()
        .chain(sample.into_iter().filter(|_| a.kind == Kind::Gate));
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    for (path, text) in files {
        std::fs::write(dir.join(path), text)
            .with_context(|| format!("cannot write {}", dir.join(path).display()))?;
    }
    let wasm = format!(
        "target/wasm32-wasip2/release/{}.wasm",
        name.replace('-', "_")
    );
    println!(
        "created {} ({} plugin)",
        dir.display(),
        match a.kind {
            Kind::Gate => "gate",
            Kind::Adapter => "adapter",
        }
    );
    println!("next:");
    println!("  cd {}", dir.display());
    println!("  cargo build --release --target wasm32-wasip2");
    println!("  gatehouse plugin test {wasm} --request request.json");
    println!("  gatehouse plugin push {wasm} --manifest manifest.toml");
    Ok(EXIT_OK)
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    let p = std::path::absolute(p).with_context(|| format!("cannot resolve {}", p.display()))?;
    // Resolve `..` so the path in Cargo.toml reads cleanly.
    Ok(p.canonicalize().unwrap_or(p))
}
