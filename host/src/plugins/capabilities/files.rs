//! Capability "files": data directories (a golden dataset, a pricing table;
//! for an adapter, the directory it deploys into), opened through WASI
//! preopens, which wasmtime builds on cap-std: a path cannot climb out of its
//! directory.
//!
//! Grant: `"files"` in the manifest's capabilities and each directory under
//! `[[files]]` (`host`, the directory on the daemon's machine; `guest`, where
//! the plugin sees it; `writable`, false unless an admin says otherwise).
//! Link: WASI's filesystem is always linked; without the grant it has no
//! preopens, so no path resolves. Prepare: each call opens the granted
//! directories, read-only unless granted writable.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataDir {
    /// The directory on the daemon's machine.
    pub host: PathBuf,
    /// The absolute path the plugin opens it by, e.g. `/data`.
    pub guest: String,
    /// Whether the plugin may create, replace and remove files in it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub writable: bool,
}

/// Checks the manifest's `[[files]]` entries.
pub fn check(dirs: &[DataDir]) -> Result<(), String> {
    for dir in dirs {
        if !dir.guest.starts_with('/') {
            return Err(format!(
                "files: guest path {:?} must be absolute, e.g. \"/data\"",
                dir.guest
            ));
        }
        if !dir.host.is_dir() {
            return Err(format!(
                "files: host directory {} does not exist or is not a directory on the daemon's machine",
                dir.host.display()
            ));
        }
    }
    Ok(())
}

/// Opens each granted directory for this call, read-only unless granted
/// writable.
pub fn prepare(wasi: &mut WasiCtxBuilder, dirs: &[DataDir]) -> Result<(), String> {
    for dir in dirs {
        let perms = if dir.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        wasi.preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|e| format!("cannot open granted directory {}: {e}", dir.host.display()))?;
    }
    Ok(())
}
