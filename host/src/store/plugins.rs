//! The plugin registry's records: plugin bytes by digest, each pushed version
//! with its manifest, which version of each plugin is active, and compiled
//! artefacts by (engine, digest).
//!
//! Bytes and compiled artefacts are content-addressed and written before the
//! transaction that names them, so a crash leaves at worst an unreferenced
//! blob, never a record naming missing bytes.

use super::{Error, Store, Tx, TxResult, decode};
use crate::digest::Digest;
use crate::plugins::registry::{ActiveRecord, PluginRecord};
use sha2::{Digest as _, Sha256};

fn version_key(name: &str, digest: &Digest) -> Vec<u8> {
    let mut key = name.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&digest.0);
    key
}

fn compiled_key(engine: &[u8; 8], digest: &Digest) -> Vec<u8> {
    let mut key = engine.to_vec();
    key.extend_from_slice(&digest.0);
    key
}

impl Store {
    /// Stores plugin bytes under their digest (a no-op when known).
    pub fn put_plugin_blob(&self, digest: &Digest, wasm: &[u8]) -> Result<(), Error> {
        let _ = self
            .plugin_blobs
            .compare_and_swap(digest.0, None as Option<&[u8]>, Some(wasm))?;
        Ok(())
    }

    pub fn plugin_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.plugin_blobs.get(digest.0)?.map(|v| v.to_vec()))
    }

    /// Keeps a compiled artefact, prefixed by its own sha256 so that a damaged
    /// one is never handed to wasmtime.
    pub fn put_plugin_compiled(
        &self,
        engine: &[u8; 8],
        digest: &Digest,
        compiled: &[u8],
    ) -> Result<(), Error> {
        let mut value = Sha256::digest(compiled).to_vec();
        value.extend_from_slice(compiled);
        self.plugin_compiled
            .insert(compiled_key(engine, digest), value)?;
        Ok(())
    }

    /// The compiled artefact, if one is kept for this engine and it is intact.
    pub fn plugin_compiled(
        &self,
        engine: &[u8; 8],
        digest: &Digest,
    ) -> Result<Option<sled::IVec>, Error> {
        let Some(value) = self.plugin_compiled.get(compiled_key(engine, digest))? else {
            return Ok(None);
        };
        if value.len() < 32 || Sha256::digest(&value[32..]).as_slice() != &value[..32] {
            tracing::warn!(plugin_digest = %digest.short(), "compiled plugin artefact is damaged; recompiling");
            return Ok(None);
        }
        Ok(Some(value.subslice(32, value.len() - 32)))
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
        self.plugin_blobs.remove(digest.0)?;
        Ok(())
    }
}
