//! Plugin bytes and compiled artefacts as files in the data directory, each
//! named by what it holds:
//!
//! ```text
//! <data dir>/plugins/wasm/<sha256 hex>.wasm                      a plugin as pushed
//! <data dir>/plugins/compiled/<engine key hex>/<sha256 hex>.cwasm  its machine code for one engine
//! ```
//!
//! They live beside sled rather than inside it: sled replays its log at every
//! open, at a cost that grows with what it holds, and hands values back as
//! copies; a file costs nothing until it is read, and wasmtime maps an
//! artefact straight from its file.
//!
//! Rules: a file is written whole under a temporary name in its own
//! directory, synced, renamed into place, and the directory synced, so a name
//! holds complete contents or nothing. A file is never changed in place:
//! rewriting one renames a new file over it, which leaves any mapping of the
//! old one intact. Temporary files left by a crash are removed on open.

use crate::digest::Digest;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Prefix of files being written; never a name the store hands out.
const PARTIAL: &str = ".partial-";

#[derive(Debug, Clone)]
pub(super) struct PluginFiles {
    root: PathBuf,
}

impl PluginFiles {
    /// Creates the folders under `data_dir` if needed and removes what an
    /// interrupted write left behind. Only one process opens a data
    /// directory (sled locks it), so no write is in flight here.
    pub fn open(data_dir: &Path) -> io::Result<PluginFiles> {
        let files = PluginFiles {
            root: data_dir.join("plugins"),
        };
        create_dir_durably(&files.wasm_dir())?;
        create_dir_durably(&files.compiled_dir())?;
        remove_partials(&files.wasm_dir())?;
        for entry in fs::read_dir(files.compiled_dir())? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                remove_partials(&entry.path())?;
            }
        }
        Ok(files)
    }

    fn wasm_dir(&self) -> PathBuf {
        self.root.join("wasm")
    }

    fn compiled_dir(&self) -> PathBuf {
        self.root.join("compiled")
    }

    pub fn wasm(&self, digest: &Digest) -> PathBuf {
        self.wasm_dir().join(format!("{}.wasm", digest.hex()))
    }

    /// The digests of every plugin's bytes kept here.
    pub fn wasm_digests(&self) -> io::Result<Vec<Digest>> {
        let mut digests = Vec::new();
        for entry in fs::read_dir(self.wasm_dir())? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(d) = name.strip_suffix(".wasm").and_then(|h| h.parse().ok()) {
                digests.push(d);
            }
        }
        digests.sort();
        Ok(digests)
    }

    pub fn compiled(&self, engine: &[u8; 8], digest: &Digest) -> PathBuf {
        self.compiled_dir()
            .join(hex::encode(engine))
            .join(format!("{}.cwasm", digest.hex()))
    }
}

/// Replaces `path` with `bytes` so that a crash at any point leaves either
/// the old file or the whole new one, durably once this returns.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no parent directory", path.display()),
        )
    })?;
    create_dir_durably(dir)?;
    // Same directory as the target: rename is atomic only within a file system.
    let mut partial = tempfile::Builder::new().prefix(PARTIAL).tempfile_in(dir)?;
    partial.write_all(bytes)?;
    partial.as_file().sync_all()?;
    partial.persist(path).map_err(|e| e.error)?;
    // The rename is in the directory's data: sync it too, or a crash may
    // forget the new name while the record naming it survives.
    sync_dir(dir)
}

/// The whole file, or `None` when there is none.
pub(super) fn read(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The file's length, or `None` when there is none.
pub(super) fn size(path: &Path) -> io::Result<Option<u64>> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(m.len())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and any missing parent, syncing each parent whose entries
/// changed, so a file later written inside stays reachable after a crash.
fn create_dir_durably(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_durably(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    match dir.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

fn remove_partials(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(PARTIAL) {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewriting_a_file_replaces_it_whole_and_leaves_no_partial_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = PluginFiles::open(dir.path()).expect("open");
        let path = files.compiled(&[7; 8], &Digest::of(b"x"));
        write_atomically(&path, b"first, longer contents").expect("write");
        write_atomically(&path, b"second").expect("rewrite");
        assert_eq!(read(&path).expect("read").as_deref(), Some(&b"second"[..]));
        let names: Vec<_> = fs::read_dir(path.parent().expect("parent"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "only the artefact remains: {names:?}");
    }

    #[test]
    fn opening_removes_files_an_interrupted_write_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = PluginFiles::open(dir.path()).expect("open");
        let wasm = files.wasm(&Digest::of(b"x"));
        let wasm_dir = wasm.parent().expect("parent");
        let left = wasm_dir.join(format!("{PARTIAL}abc"));
        fs::write(&left, b"half a plugin").expect("write");
        write_atomically(&wasm, b"x").expect("write");
        PluginFiles::open(dir.path()).expect("reopen");
        assert!(!left.exists(), "the partial file is gone");
        assert!(wasm.exists(), "complete files stay");
    }
}
