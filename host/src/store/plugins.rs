//! The plugin registry's records: each pushed version with its manifest,
//! which version of each plugin is active, and the size of each compiled
//! artefact by (engine, digest). The plugin bytes and the artefacts
//! themselves are files beside sled (see [`super::plugin_files`]).
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
//! Data directories from before the files keep the bytes in the sled trees
//! `plugin_blobs` and `plugin_compiled`; the first open moves them out.

use super::plugin_files::{self, PluginFiles};
use super::{Error, Store, Tx, TxResult, decode};
use crate::digest::Digest;
use crate::plugins::registry::{ActiveRecord, PluginRecord};
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

/// What sled knows of a compiled artefact file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct ArtefactRecord {
    size_bytes: u64,
}

fn version_key(name: &str, digest: &Digest) -> Vec<u8> {
    let mut key = name.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&digest.0);
    key
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
    Error::Storage(sled::Error::Io(e))
}

pub(super) fn open_files(dir: &Path) -> Result<PluginFiles, Error> {
    PluginFiles::open(dir).map_err(|e| file_error(&dir.join("plugins"), e))
}

impl Store {
    /// Stores plugin bytes in the file named by their digest.
    pub fn put_plugin_blob(&self, digest: &Digest, wasm: &[u8]) -> Result<(), Error> {
        let path = self.plugin_files.wasm(digest);
        // Rewritten even when present: pushes are rare, and a push then
        // repairs a damaged file.
        plugin_files::write_atomically(&path, wasm).map_err(|e| file_error(&path, e))
    }

    /// The plugin bytes stored under `digest`, checked against it.
    pub fn plugin_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, Error> {
        let path = self.plugin_files.wasm(digest);
        let Some(wasm) = plugin_files::read(&path).map_err(|e| file_error(&path, e))? else {
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
    /// in sled. The record becomes durable with the next commit; lost to a
    /// crash before that, the artefact is only compiled again.
    pub fn put_plugin_compiled(
        &self,
        engine: &[u8; 8],
        digest: &Digest,
        compiled: &[u8],
    ) -> Result<(), Error> {
        let path = self.plugin_files.compiled(engine, digest);
        plugin_files::write_atomically(&path, compiled).map_err(|e| file_error(&path, e))?;
        let record = ArtefactRecord {
            size_bytes: compiled.len() as u64,
        };
        let value = serde_json::to_vec(&record).map_err(|e| Error::Corrupt {
            key: path.display().to_string(),
            detail: format!("cannot encode its record: {e}"),
        })?;
        self.plugin_artefacts
            .insert(artefact_key(engine, digest), value)?;
        Ok(())
    }

    /// The file of the compiled artefact kept for this engine, if there is
    /// one and it has the size recorded when it was written. Anything else
    /// (no record, no file, another size) is `None`: compile again.
    pub fn plugin_compiled(
        &self,
        engine: &[u8; 8],
        digest: &Digest,
    ) -> Result<Option<PathBuf>, Error> {
        let Some(value) = self.plugin_artefacts.get(artefact_key(engine, digest))? else {
            return Ok(None);
        };
        let Ok(record) = serde_json::from_slice::<ArtefactRecord>(&value) else {
            tracing::warn!(plugin_digest = %digest.short(), "record of the compiled plugin artefact is unreadable; recompiling");
            return Ok(None);
        };
        let path = self.plugin_files.compiled(engine, digest);
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

    /// Moves plugin bytes and artefacts kept inside sled by earlier versions
    /// into files, then drops the old trees. Each file is written before its
    /// tree is dropped, so an interrupted move is simply done again.
    pub(super) fn move_plugin_bytes_out_of_sled(&self) -> Result<(), Error> {
        let names = self.db.tree_names();
        let has = |tree: &str| names.iter().any(|n| n.as_ref() == tree.as_bytes());
        let mut moved = false;
        if has(LEGACY_BLOBS) {
            let tree = self.db.open_tree(LEGACY_BLOBS)?;
            for item in tree.iter() {
                let (key, wasm) = item?;
                let Ok(digest) = <[u8; 32]>::try_from(key.as_ref()).map(Digest) else {
                    continue;
                };
                if Digest::of(&wasm) != digest {
                    tracing::warn!(plugin_digest = %digest.short(), "stored plugin bytes do not match their digest; left behind, push the plugin again");
                    continue;
                }
                self.put_plugin_blob(&digest, &wasm)?;
            }
            drop(tree);
            self.db.drop_tree(LEGACY_BLOBS)?;
            moved = true;
        }
        if has(LEGACY_COMPILED) {
            let tree = self.db.open_tree(LEGACY_COMPILED)?;
            for item in tree.iter() {
                let (key, value) = item?;
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
                self.put_plugin_compiled(engine, &digest, &value[32..])?;
            }
            drop(tree);
            self.db.drop_tree(LEGACY_COMPILED)?;
            moved = true;
        }
        if moved {
            self.roll_sled_log()?;
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
    fn roll_sled_log(&self) -> Result<(), Error> {
        // sled's default segment is 512 KiB; pieces stay under a quarter of
        // it, so they are written inline rather than as files themselves.
        const PIECE: usize = 64 << 10;
        const PIECES: usize = 2 * (512 << 10) / PIECE;
        let scratch = self.db.open_tree(SCRATCH)?;
        let piece = vec![0u8; PIECE];
        for _ in 0..PIECES {
            scratch.insert(b"roll", piece.as_slice())?;
            scratch.remove(b"roll")?;
        }
        drop(scratch);
        self.db.drop_tree(SCRATCH)?;
        self.db.flush()?;
        Ok(())
    }

    /// Every stored version, of one plugin or of all, by name then push time.
    pub fn plugin_versions(&self, name: Option<&str>) -> Result<Vec<PluginRecord>, Error> {
        let iter = match name {
            Some(n) => {
                let mut prefix = n.as_bytes().to_vec();
                prefix.push(0);
                self.plugin_versions.scan_prefix(prefix)
            }
            None => self.plugin_versions.iter(),
        };
        let mut out = Vec::new();
        for item in iter {
            let (key, bytes) = item?;
            out.push(decode::<PluginRecord>(&bytes, || {
                format!("plugin version {}", String::from_utf8_lossy(&key))
            })?);
        }
        out.sort_by(|a, b| {
            (&a.description.name, a.pushed_at_ms).cmp(&(&b.description.name, b.pushed_at_ms))
        });
        Ok(out)
    }

    pub fn plugin_version(
        &self,
        name: &str,
        digest: &Digest,
    ) -> Result<Option<PluginRecord>, Error> {
        match self.plugin_versions.get(version_key(name, digest))? {
            None => Ok(None),
            Some(bytes) => decode(&bytes, || format!("plugin {name} {}", digest.short())).map(Some),
        }
    }

    /// The active version of every plugin, by name.
    pub fn plugin_actives(&self) -> Result<Vec<(String, ActiveRecord)>, Error> {
        let mut out = Vec::new();
        for item in self.plugin_active.iter() {
            let (key, bytes) = item?;
            let name = String::from_utf8_lossy(&key).into_owned();
            let record = decode(&bytes, || format!("active version of plugin {name}"))?;
            out.push((name, record));
        }
        Ok(out)
    }

    pub fn plugin_active(&self, name: &str) -> Result<Option<ActiveRecord>, Error> {
        match self.plugin_active.get(name)? {
            None => Ok(None),
            Some(bytes) => decode(&bytes, || format!("active version of plugin {name}")).map(Some),
        }
    }
}

impl Tx<'_> {
    pub fn plugin_version(&self, name: &str, digest: &Digest) -> TxResult<Option<PluginRecord>> {
        match self.plugin_versions.get(version_key(name, digest))? {
            None => Ok(None),
            Some(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        }
    }

    pub fn put_plugin_version(&self, record: &PluginRecord) -> TxResult<()> {
        let key = version_key(&record.description.name, &record.digest);
        self.plugin_versions.insert(key, super::encode(record)?)?;
        Ok(())
    }

    pub fn plugin_active(&self, name: &str) -> TxResult<Option<ActiveRecord>> {
        match self.plugin_active.get(name)? {
            None => Ok(None),
            Some(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        }
    }

    pub fn put_plugin_active(&self, name: &str, record: &ActiveRecord) -> TxResult<()> {
        self.plugin_active.insert(name, super::encode(record)?)?;
        Ok(())
    }
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
        self.db.open_tree(LEGACY_BLOBS)?.insert(digest.0, wasm)?;
        let mut value = Sha256::digest(compiled).to_vec();
        value.extend_from_slice(compiled);
        self.db
            .open_tree(LEGACY_COMPILED)?
            .insert(artefact_key(engine, digest), value)?;
        self.plugin_artefacts.remove(artefact_key(engine, digest))?;
        for path in [
            self.plugin_files.wasm(digest),
            self.plugin_files.compiled(engine, digest),
        ] {
            std::fs::remove_file(&path).map_err(|e| file_error(&path, e))?;
        }
        self.db.flush()?;
        Ok(())
    }
}
