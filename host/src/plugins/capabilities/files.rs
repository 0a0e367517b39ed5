//! Capability "files": read-only data directories (a golden dataset, a
//! pricing table), opened through WASI preopens, which wasmtime builds on
//! cap-std: a path cannot climb out of its directory.
//!
//! Grant: `"files"` in the manifest's capabilities and each directory under
//! `[[files]]` (`host`, the directory on the daemon's machine; `guest`, where
//! the plugin sees it). Link: WASI's filesystem is always linked; without the
//! grant it has no preopens, so no path resolves. Prepare: each call opens
//! the granted directories read-only.

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

/// Opens each granted directory read-only for this call.
pub fn prepare(wasi: &mut WasiCtxBuilder, dirs: &[DataDir]) -> Result<(), String> {
    for dir in dirs {
        wasi.preopened_dir(&dir.host, &dir.guest, FsPerms::ReadOnly)
            .map_err(|e| format!("cannot open granted directory {}: {e}", dir.host.display()))?;
    }
    Ok(())
}
