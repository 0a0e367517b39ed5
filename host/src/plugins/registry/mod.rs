//! The plugin registry: every pushed version kept in the store by digest,
//! with its manifest; one active version per plugin name; compiled artefacts
//! kept per engine, as files the next start maps, so a restart does not
//! recompile.
//!
//! Rules: a push is checked in full (signature, compile, world, describe,
//! grants) before anything is stored; the version record, the active pointer
//! and their audit events commit in one transaction; only then does the
//! in-memory swap happen, so what runs is always what the store says is
//! active. Registry changes are serialised by one lock: they are rare, and
//! this keeps the store's order and the swap's order the same. An artefact
//! that is missing or does not load is compiled again from the plugin's
//! bytes and written anew; it never stops the daemon.

mod activate;
mod push;
mod records;

use super::signing::Trust;
use super::{Plugin, Plugins};
use crate::digest::Digest;
use crate::store::{self, Store};
pub use records::{
    ActiveRecord, Origin, PLUGIN_ACTIVE, PLUGIN_VERSIONS, PluginReads, PluginRecord, PluginWrites,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wasmtime::component::Component;

/// Largest plugin accepted.
pub const MAX_PLUGIN_BYTES: usize = 32 << 20;

/// A push as the API or the plugin directory hands it over.
pub struct Push {
    pub wasm: Vec<u8>,
    pub manifest: String,
    pub signature: Option<String>,
    pub activate: bool,
    pub actor: String,
    pub origin: Origin,
    /// Labels errors: a file name, or "push".
    pub source_name: String,
}

#[derive(Debug, Clone)]
pub struct Pushed {
    pub record: PluginRecord,
    /// The same bytes and manifest were pushed before.
    pub known: bool,
    pub active: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Untrusted(String),
    #[error("{0}")]
    NotFound(String),
    /// Every plugin call slot is taken; the push may be retried.
    #[error("{0}")]
    Busy(String),
    /// The host, not the plugin, failed for a moment; the push may be retried.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] store::Error),
}

pub struct Registry {
    store: Store,
    plugins: Arc<Plugins>,
    trust: Trust,
    /// Versions compiled and checked in this process, by digest.
    loaded: Mutex<HashMap<Digest, Arc<Plugin>>>,
    changes: tokio::sync::Mutex<()>,
    /// Whether what the daemon installs as it starts is in (see
    /// [`Registry::installed`]).
    installed: tokio::sync::watch::Sender<bool>,
}

impl Registry {
    pub fn new(store: Store, plugins: Arc<Plugins>, trust: Trust) -> Registry {
        Registry {
            store,
            plugins,
            trust,
            loaded: Mutex::new(HashMap::new()),
            changes: tokio::sync::Mutex::new(()),
            installed: tokio::sync::watch::channel(false).0,
        }
    }

    /// Resolves once the daemon has installed what it installs as it starts
    /// (the embedded plugins, the plugin directory's): the daemon serves
    /// while a first start compiles them, and whatever needs a plugin waits
    /// here rather than find it missing.
    pub async fn installed(&self) {
        let mut rx = self.installed.subscribe();
        let _ = rx.wait_for(|done| *done).await;
    }

    /// Marks the start's installs done, wakes every [`Registry::installed`].
    pub fn mark_installed(&self) {
        self.installed.send_replace(true);
    }

    pub fn plugins(&self) -> &Arc<Plugins> {
        &self.plugins
    }

    /// Loads the active version of every stored plugin, from the compiled
    /// cache when it holds them. A version that no longer loads is skipped
    /// with an error in the log: its gates fail closed as "not installed",
    /// and the daemon still starts. Blocking.
    pub fn load_active(&self) -> Result<usize, Error> {
        let mut count = 0;
        for (name, active) in self.store.plugin_actives()? {
            let Some(record) = self.store.plugin_version(&name, &active.digest)? else {
                tracing::error!(plugin = %name, plugin_digest = %active.digest.short(), "active plugin version has no record; skipped");
                continue;
            };
            match self.load(&record) {
                Ok(plugin) => {
                    self.plugins.activate(plugin);
                    count += 1;
                }
                Err(e) => {
                    tracing::error!(plugin = %name, "active plugin version does not load: {e}")
                }
            }
        }
        Ok(count)
    }

    /// The compiled, checked plugin for a stored version. Blocking.
    fn load(&self, record: &PluginRecord) -> Result<Arc<Plugin>, Error> {
        if let Some(p) = self.loaded_version(&record.digest)
            && p.manifest == record.manifest
        {
            return Ok(p);
        }
        let source_name = format!("{} {}", record.description.name, record.digest.short());
        let component = match self.load_compiled(&record.digest) {
            Some(c) => c,
            None => {
                let wasm = self.store.plugin_blob(&record.digest)?.ok_or_else(|| {
                    Error::NotFound(format!(
                        "the bytes of {source_name} are missing from the data directory; push the plugin again"
                    ))
                })?;
                let component = self.plugins.compile(&source_name, &wasm).map_err(invalid)?;
                cache_compiled(&self.store, &self.plugins, &record.digest, &component);
                component
            }
        };
        let plugin = self
            .plugins
            .prepare(
                &source_name,
                record.digest,
                &component,
                record.manifest.clone(),
                Some(record.description.clone()),
            )
            .map_err(invalid)?;
        let plugin = Arc::new(plugin);
        self.remember(plugin.clone());
        Ok(plugin)
    }

    /// The artefact this engine compiled earlier, if one is kept and loads.
    fn load_compiled(&self, digest: &Digest) -> Option<Component> {
        let path = match self
            .store
            .plugin_compiled(&self.plugins.engine_key(), digest)
        {
            Ok(path) => path?,
            Err(e) => {
                tracing::warn!(plugin_digest = %digest.short(), "compiled plugin artefact cannot be looked up ({e}); recompiling");
                return None;
            }
        };
        // SAFETY: files under this engine's key are written only through
        // `Store::put_plugin_compiled`, with what `precompiled` made on an
        // engine of this build (or moved out of sled once their sha256 checked
        // out), and have the size recorded then; wasmtime checks the header and
        // the engine as it loads. Files are only ever replaced by a rename,
        // never changed in place, so the mapping keeps what was checked. The
        // data directory is trusted as sled is (see `store::plugins`).
        match unsafe { self.plugins.load_precompiled_file(&path) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(plugin_digest = %digest.short(), path = %path.display(), "compiled plugin artefact does not load ({e:#}); recompiling");
                None
            }
        }
    }

    fn loaded_version(&self, digest: &Digest) -> Option<Arc<Plugin>> {
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
            .cloned()
    }

    fn remember(&self, plugin: Arc<Plugin>) {
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(plugin.digest, plugin);
    }
}

/// Keeps the compiled artefact so a restart does not compile again. Best
/// effort: without it, the next load compiles.
pub(super) fn cache_compiled(
    store: &Store,
    plugins: &Plugins,
    digest: &Digest,
    component: &Component,
) {
    let Some(bytes) = plugins.precompiled(component) else {
        return;
    };
    if let Err(e) = store.put_plugin_compiled(&plugins.engine_key(), digest, &bytes) {
        tracing::warn!(plugin_digest = %digest.short(), "cannot keep the compiled plugin: {e}");
    }
}

pub(super) fn invalid(e: super::Error) -> Error {
    match e {
        super::Error::Describe {
            reason: super::GateError::Busy { .. },
            ..
        } => Error::Busy(e.to_string()),
        super::Error::Image { .. } => Error::Unavailable(e.to_string()),
        e => Error::Invalid(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
