//! A plugin directory the daemon watches, for GitOps set-ups: dropping
//! `NAME.wasm` into it (with its manifest as `NAME.toml` beside it, or none
//! to grant nothing) is a push that activates; replacing either file pushes
//! again.
//!
//! The directory is polled rather than watched through the kernel: it works
//! the same on every filesystem (network and container mounts included), and
//! a file is pushed only once its size and modification time have stayed the
//! same over two scans, so a half-copied file is never read.

use super::registry::{Origin, Push, Registry};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

const ACTOR: &str = "plugin-dir";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    wasm: Stamp,
    manifest: Option<Stamp>,
}

/// What the watcher has seen of the directory.
pub struct PluginDir {
    dir: PathBuf,
    /// Fingerprints seen on the last scan, not yet handled.
    pending: HashMap<PathBuf, Fingerprint>,
    /// Fingerprints handled (pushed, or refused and logged).
    handled: HashMap<PathBuf, Fingerprint>,
}

impl PluginDir {
    pub fn new(dir: &Path) -> PluginDir {
        PluginDir {
            dir: dir.to_path_buf(),
            pending: HashMap::new(),
            handled: HashMap::new(),
        }
    }

    /// Pushes every new or changed plugin. With `settled_only`, a file is
    /// pushed only if it looked the same on the previous scan; at start-up
    /// everything present is pushed at once. Returns how many were pushed.
    pub async fn scan(&mut self, registry: &Arc<Registry>, settled_only: bool) -> usize {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), "cannot read the plugin directory: {e}");
                return 0;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        files.sort();
        let mut pushed = 0;
        for wasm_path in files {
            let Some(fingerprint) = fingerprint(&wasm_path) else {
                continue;
            };
            if self.handled.get(&wasm_path) == Some(&fingerprint) {
                continue;
            }
            let settled = self.pending.get(&wasm_path) == Some(&fingerprint);
            if settled_only && !settled {
                self.pending.insert(wasm_path, fingerprint);
                continue;
            }
            self.pending.remove(&wasm_path);
            self.handled.insert(wasm_path.clone(), fingerprint);
            if push_file(registry, &wasm_path).await {
                pushed += 1;
            }
        }
        pushed
    }
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

fn fingerprint(wasm: &Path) -> Option<Fingerprint> {
    Some(Fingerprint {
        wasm: stamp(wasm)?,
        manifest: stamp(&wasm.with_extension("toml")),
    })
}

/// Pushes one file; logs the outcome. True when it was stored.
async fn push_file(registry: &Arc<Registry>, wasm_path: &Path) -> bool {
    let source_name = wasm_path.display().to_string();
    let wasm = match std::fs::read(wasm_path) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(file = %source_name, "cannot read plugin file: {e}");
            return false;
        }
    };
    let manifest_path = wasm_path.with_extension("toml");
    let manifest = match std::fs::read_to_string(&manifest_path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            tracing::warn!(file = %manifest_path.display(), "cannot read plugin manifest: {e}");
            return false;
        }
    };
    let push = Push {
        wasm,
        manifest,
        signature: read_signature(wasm_path),
        activate: true,
        actor: ACTOR.to_string(),
        origin: Origin::Watched,
        source_name: source_name.clone(),
    };
    match registry.push(push).await {
        Ok(p) => {
            if !p.known {
                tracing::info!(file = %source_name, plugin = %p.record.description.name, plugin_digest = %p.record.digest.short(), "plugin from the plugin directory pushed and active");
            }
            true
        }
        Err(e) => {
            tracing::error!(file = %source_name, "plugin from the plugin directory refused: {e}");
            false
        }
    }
}

/// `NAME.wasm.sig` beside the plugin holds its signature, if it is signed.
fn read_signature(wasm_path: &Path) -> Option<String> {
    let mut sig = wasm_path.as_os_str().to_owned();
    sig.push(".sig");
    std::fs::read_to_string(PathBuf::from(sig))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Scans `dir` every `interval` until `closing` turns true.
pub fn spawn(
    registry: Arc<Registry>,
    mut dir: PluginDir,
    interval: Duration,
    mut closing: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        // A slow scan (a compile) must not make scans pile up.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => { dir.scan(&registry, true).await; }
                _ = closing.changed() => break,
            }
            if *closing.borrow() {
                break;
            }
        }
    });
}
