//! Plugin bytes and compiled artefacts: files beside the backend (see
//! [`super::plugin_files`]), and the size of each compiled artefact by
//! (engine, digest) in the table `plugin_artefacts`.
//!
//! Rules: a file is written, synced and renamed into place before the sled
//! record naming it, so a crash leaves at worst a file nothing names, never
//! a record naming missing bytes. Plugin bytes are checked against their
//! digest whenever they are read. A compiled artefact is not hashed at each
//! start: the data directory is as trusted as sled itself (whoever can
//! change an artefact can change the records that vouch for it, so a
//! stored sum proves nothing against tampering), writes are atomic (no torn
//! file), the size recorded here catches a truncated or swapped file, and
//! wasmtime checks the header and the engine before mapping it. A full
//! sha256 would read every page of every artefact (~15 MB for
//! cost-estimator alone) at each start, which is the cost mapping avoids.
//!
//! The records of pushed versions and of which one is active belong to the
//! registry (`plugins::registry::records`).
//!
//! Data directories from before the files keep the bytes in the sled trees
//! `plugin_blobs` and `plugin_compiled`; the first open moves them out.

use super::backend::{Backend, Fault, Table};
use super::plugin_files::{self, PluginFiles};
use super::sled::{Sled, fault};
use super::{Error, Store};
use crate::digest::Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::io;
use std::path::{Path, PathBuf};

/// Trees of the layout before the files: digest → bytes, and
/// (engine key, digest) → sha256 + compiled artefact.
const LEGACY_BLOBS: &str = "plugin_blobs";
const LEGACY_COMPILED: &str = "plugin_compiled";
/// Scratch tree written to move sled's log on after the move.
const SCRATCH: &str = "plugin_files_move";
/// (engine key, digest) → what is known of its compiled artefact file.
const ARTEFACTS: Table = Table("plugin_artefacts");
/// Digest → plugin bytes, in a store daemons share (etcd): the files are
/// each daemon's copy, fetched from here when missing.
const SHARED_BLOBS: Table = Table("plugin_bytes");

/// What sled knows of a compiled artefact file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct ArtefactRecord {
    size_bytes: u64,
}

fn artefact_key(engine: &[u8; 8], digest: &Digest) -> Vec<u8> {
    let mut key = engine.to_vec();
    key.extend_from_slice(&digest.0);
    key
}

/// A file operation failed. The raw OS error is kept as it is, so a full disk
/// still reads as one to whoever maps the error; the path goes to the log.
fn file_error(path: &Path, e: io::Error) -> Error {
    tracing::error!(path = %path.display(), "plugin file: {e}");
    Error::Storage(Fault::io(e))
}

pub(super) fn open_files(dir: &Path) -> Result<PluginFiles, Error> {
    PluginFiles::open(dir).map_err(|e| file_error(&dir.join("plugins"), e))
}

impl Store {
    /// Stores plugin bytes in the file named by their digest.
    /// In a shared store, also there, before any record names them.
    pub fn put_plugin_blob(&self, digest: &Digest, wasm: &[u8]) -> Result<(), Error> {
        if self.shared {
            self.check_leads()?;
            self.backend.put_new(SHARED_BLOBS, &digest.0, wasm)?;
        }
        put_blob(&self.plugin_files, digest, wasm)
    }

    /// The plugin bytes stored under `digest`, checked against it. In a
    /// shared store, bytes another daemon pushed are fetched and kept.
    pub fn plugin_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, Error> {
        let path = self.plugin_files.wasm(digest);
        let mut local = plugin_files::read(&path).map_err(|e| file_error(&path, e))?;
        if local.is_none() && self.shared {
            local = self.backend.get(SHARED_BLOBS, &digest.0)?;
            if let Some(wasm) = local.as_ref().filter(|w| Digest::of(w) == *digest) {
                put_blob(&self.plugin_files, digest, wasm)?;
            }
        }
        let Some(wasm) = local else {
            return Ok(None);
        };
        let found = Digest::of(&wasm);
        if found != *digest {
            return Err(Error::Corrupt {
                key: path.display().to_string(),
                detail: format!(
                    "the file's sha256 is {}, not {}; push the plugin again",
                    found.short(),
                    digest.short()
                ),
            });
        }
        Ok(Some(wasm))
    }

    /// Keeps a compiled artefact for `engine`: its file first, then its size
    /// in the store. The record becomes durable with the next commit; lost
    /// to a crash before that, the artefact is only compiled again.
    pub fn put_plugin_compiled(
        &self,
        engine: &[u8; 8],
        digest: &Digest,
        compiled: &[u8],
    ) -> Result<(), Error> {
        // Compiled code belongs to this machine: in a shared store its
        // record stays beside the file, not where other daemons read.
        let backend = (!self.shared).then_some(&*self.backend);
        put_compiled(backend, &self.plugin_files, engine, digest, compiled)
    }

    /// The file of the compiled artefact kept for this engine, if there is
    /// one and it has the size recorded when it was written. Anything else
    /// (no record, no file, another size) is `None`: compile again.
    pub fn plugin_compiled(
        &self,
        engine: &[u8; 8],
        digest: &Digest,
    ) -> Result<Option<PathBuf>, Error> {
        let path = self.plugin_files.compiled(engine, digest);
        let value = if self.shared {
            std::fs::read(record_path(&path)).ok()
        } else {
            self.backend.get(ARTEFACTS, &artefact_key(engine, digest))?
        };
        let Some(value) = value else {
            return Ok(None);
        };
        let Ok(record) = serde_json::from_slice::<ArtefactRecord>(&value) else {
            tracing::warn!(plugin_digest = %digest.short(), "record of the compiled plugin artefact is unreadable; recompiling");
            return Ok(None);
        };
        match plugin_files::size(&path) {
            Ok(Some(size)) if size == record.size_bytes => Ok(Some(path)),
            Ok(Some(size)) => {
                tracing::warn!(plugin_digest = %digest.short(), path = %path.display(), size, expected = record.size_bytes, "compiled plugin artefact has the wrong size; recompiling");
                Ok(None)
            }
            Ok(None) => {
                tracing::warn!(plugin_digest = %digest.short(), path = %path.display(), "compiled plugin artefact is missing; recompiling");
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(plugin_digest = %digest.short(), path = %path.display(), "compiled plugin artefact cannot be read ({e}); recompiling");
                Ok(None)
            }
        }
    }
}

/// Moves plugin bytes and artefacts kept inside sled by earlier versions
/// into files, then drops the old trees. Each file is written before its
/// tree is dropped, so an interrupted move is simply done again.
pub(super) fn move_plugin_bytes_out_of_sled(sled: &Sled, files: &PluginFiles) -> Result<(), Error> {
    let names = sled.db().tree_names();
    let has = |tree: &str| names.iter().any(|n| n.as_ref() == tree.as_bytes());
    let mut moved = false;
    if has(LEGACY_BLOBS) {
        let tree = sled.db().open_tree(LEGACY_BLOBS).map_err(fault)?;
        for item in tree.iter() {
            let (key, wasm) = item.map_err(fault)?;
            let Ok(digest) = <[u8; 32]>::try_from(key.as_ref()).map(Digest) else {
                continue;
            };
            if Digest::of(&wasm) != digest {
                tracing::warn!(plugin_digest = %digest.short(), "stored plugin bytes do not match their digest; left behind, push the plugin again");
                continue;
            }
            put_blob(files, &digest, &wasm)?;
        }
        drop(tree);
        sled.db().drop_tree(LEGACY_BLOBS).map_err(fault)?;
        moved = true;
    }
    if has(LEGACY_COMPILED) {
        let tree = sled.db().open_tree(LEGACY_COMPILED).map_err(fault)?;
        for item in tree.iter() {
            let (key, value) = item.map_err(fault)?;
            let Some((engine, digest)) = key.split_first_chunk::<8>() else {
                continue;
            };
            let Ok(digest) = <[u8; 32]>::try_from(digest).map(Digest) else {
                continue;
            };
            // A damaged artefact is left behind: it is compiled again.
            if value.len() < 32 || Sha256::digest(&value[32..]).as_slice() != &value[..32] {
                continue;
            }
            put_compiled(Some(sled), files, engine, &digest, &value[32..])?;
        }
        drop(tree);
        sled.db().drop_tree(LEGACY_COMPILED).map_err(fault)?;
        moved = true;
    }
    if moved {
        roll_sled_log(sled)?;
        tracing::info!("plugin bytes and compiled artefacts moved from sled to files");
    }
    Ok(())
}

/// Makes sled delete the large values of the dropped trees now rather
/// than some day. sled keeps each large value in a file of its own and
/// deletes it only once its log moves past the segment where the drop
/// was written; until then every open reads the dead values back (the
/// whole old plugin data, twice, at each start). Writing a segment's
/// worth of scratch data, each piece removed again at once, moves it on.
fn roll_sled_log(sled: &Sled) -> Result<(), Error> {
    // sled's default segment is 512 KiB; pieces stay under a quarter of
    // it, so they are written inline rather than as files themselves.
    const PIECE: usize = 64 << 10;
    const PIECES: usize = 2 * (512 << 10) / PIECE;
    let scratch = sled.db().open_tree(SCRATCH).map_err(fault)?;
    let piece = vec![0u8; PIECE];
    for _ in 0..PIECES {
        scratch.insert(b"roll", piece.as_slice()).map_err(fault)?;
        scratch.remove(b"roll").map_err(fault)?;
    }
    drop(scratch);
    sled.db().drop_tree(SCRATCH).map_err(fault)?;
    sled.db().flush().map_err(fault)?;
    Ok(())
}

/// Stores plugin bytes in the file named by their digest.
fn put_blob(files: &PluginFiles, digest: &Digest, wasm: &[u8]) -> Result<(), Error> {
    let path = files.wasm(digest);
    // Rewritten even when present: pushes are rare, and a push then
    // repairs a damaged file.
    plugin_files::write_atomically(&path, wasm).map_err(|e| file_error(&path, e))
}

/// Where a compiled artefact's record is kept when the store is shared.
fn record_path(compiled: &Path) -> PathBuf {
    compiled.with_extension("record")
}

/// Writes a compiled artefact's file, then its record: in `backend`, or
/// (none: a shared store) in a file beside it.
fn put_compiled(
    backend: Option<&dyn Backend>,
    files: &PluginFiles,
    engine: &[u8; 8],
    digest: &Digest,
    compiled: &[u8],
) -> Result<(), Error> {
    let path = files.compiled(engine, digest);
    plugin_files::write_atomically(&path, compiled).map_err(|e| file_error(&path, e))?;
    let record = ArtefactRecord {
        size_bytes: compiled.len() as u64,
    };
    let value = serde_json::to_vec(&record).map_err(|e| Error::Corrupt {
        key: path.display().to_string(),
        detail: format!("cannot encode its record: {e}"),
    })?;
    match backend {
        Some(backend) => backend.put(ARTEFACTS, &artefact_key(engine, digest), &value)?,
        None => {
            let record = record_path(&path);
            plugin_files::write_atomically(&record, &value).map_err(|e| file_error(&record, e))?
        }
    }
    Ok(())
}

#[cfg(test)]
impl Store {
    /// Drops a plugin's bytes, so a test can show what loads without them.
    pub fn remove_plugin_blob(&self, digest: &Digest) -> Result<(), Error> {
        let path = self.plugin_files.wasm(digest);
        std::fs::remove_file(&path).map_err(|e| file_error(&path, e))
    }

    /// Where the compiled artefact for (`engine`, `digest`) is kept, whether
    /// or not it is there, so a test can damage it.
    pub fn plugin_compiled_path(&self, engine: &[u8; 8], digest: &Digest) -> PathBuf {
        self.plugin_files.compiled(engine, digest)
    }

    /// Puts a plugin's bytes and artefact back where versions before the
    /// files kept them (inside sled, the artefact behind its sha256), and
    /// removes the files and the artefact's record: a data directory as an
    /// older daemon left it.
    pub fn keep_plugin_bytes_in_sled(
        &self,
        engine: &[u8; 8],
        digest: &Digest,
        wasm: &[u8],
        compiled: &[u8],
    ) -> Result<(), Error> {
        self.backend.put(Table(LEGACY_BLOBS), &digest.0, wasm)?;
        let mut value = Sha256::digest(compiled).to_vec();
        value.extend_from_slice(compiled);
        self.backend.put(
            Table(LEGACY_COMPILED),
            &artefact_key(engine, digest),
            &value,
        )?;
        self.backend
            .remove(ARTEFACTS, &artefact_key(engine, digest))?;
        for path in [
            self.plugin_files.wasm(digest),
            self.plugin_files.compiled(engine, digest),
        ] {
            std::fs::remove_file(&path).map_err(|e| file_error(&path, e))?;
        }
        self.backend.flush()?;
        Ok(())
    }
}
