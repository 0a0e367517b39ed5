//! A compile cache shared by every daemon and `gatehouse plugin test` run of
//! one user on one machine: compiling a component takes Cranelift hundreds of
//! milliseconds to seconds, and the same embedded plugins would otherwise be
//! compiled again for each new data directory.
//!
//! Rules: an entry is named by what makes it valid and nothing else, the
//! engine's compatibility key and the sha256 of the component's bytes, so any
//! number of processes may share the directory; it is written under a unique
//! temporary name and renamed into place, so readers see a whole entry or
//! none; and each entry starts with the sha256 of the artefact after it,
//! checked before wasmtime sees a byte, so a damaged or partial entry is
//! compiled again rather than run. The directory is trusted as the data
//! directory is: whoever may write it may run code as the daemon.

use crate::digest::Digest;
use sha2::{Digest as _, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the cache lives unless the daemon's config says otherwise:
/// `$GATEHOUSE_COMPILE_CACHE` (empty turns the cache off), else
/// `$XDG_CACHE_HOME/gatehouse/compiled`, else `~/.cache/gatehouse/compiled`.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("GATEHOUSE_COMPILE_CACHE") {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("gatehouse").join("compiled"))
}

#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    pub fn new(dir: PathBuf) -> CompileCache {
        CompileCache { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, engine: &[u8; 8], wasm: &Digest) -> PathBuf {
        self.dir
            .join(hex::encode(engine))
            .join(format!("{}.cwasm", wasm.hex()))
    }

    /// Whether an entry is kept for these bytes on this engine; whether it is
    /// whole is checked when it is read.
    pub fn has(&self, engine: &[u8; 8], wasm: &Digest) -> bool {
        self.path(engine, wasm).is_file()
    }

    /// The artefact kept for these bytes on this engine, if a whole one is.
    pub fn get(&self, engine: &[u8; 8], wasm: &Digest) -> Option<Vec<u8>> {
        let path = self.path(engine, wasm);
        let mut bytes = std::fs::read(&path).ok()?;
        if bytes.len() < 32 || Sha256::digest(&bytes[32..])[..] != bytes[..32] {
            tracing::warn!(path = %path.display(), "compile cache entry is damaged; compiling again");
            return None;
        }
        bytes.drain(..32);
        Some(bytes)
    }

    /// Keeps `artefact` for later runs. Best effort: a cache that cannot be
    /// written costs a compile next time, nothing else.
    pub fn put(&self, engine: &[u8; 8], wasm: &Digest, artefact: &[u8]) {
        let path = self.path(engine, wasm);
        let write = || -> std::io::Result<()> {
            let dir = path.parent().unwrap_or(&self.dir);
            std::fs::create_dir_all(dir)?;
            let mut partial = tempfile::Builder::new()
                .prefix(".partial-")
                .tempfile_in(dir)?;
            partial.write_all(&Sha256::digest(artefact))?;
            partial.write_all(artefact)?;
            partial.persist(&path).map_err(|e| e.error)?;
            Ok(())
        };
        if let Err(e) = write() {
            tracing::warn!(path = %path.display(), "cannot keep the compiled plugin in the compile cache: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_and_a_damaged_one_is_a_miss() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = CompileCache::new(dir.path().to_path_buf());
        let engine = [7u8; 8];
        let wasm = Digest::of(b"component bytes");
        assert_eq!(cache.get(&engine, &wasm), None);
        assert!(!cache.has(&engine, &wasm));
        cache.put(&engine, &wasm, b"machine code");
        assert!(cache.has(&engine, &wasm));
        assert_eq!(
            cache.get(&engine, &wasm).as_deref(),
            Some(&b"machine code"[..])
        );
        assert_eq!(cache.get(&[8u8; 8], &wasm), None, "another engine's entry");

        let path = cache.path(&engine, &wasm);
        let mut bytes = std::fs::read(&path).expect("entry");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).expect("damage");
        assert_eq!(cache.get(&engine, &wasm), None, "a flipped bit is caught");
        std::fs::write(&path, &bytes[..10]).expect("truncate");
        assert_eq!(cache.get(&engine, &wasm), None, "a short entry is caught");
    }
}
