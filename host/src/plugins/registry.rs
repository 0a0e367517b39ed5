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

use super::manifest::Manifest;
use super::signing::Trust;
use super::{Description, Plugin, Plugins};
use crate::digest::Digest;
use crate::store::audit::{Draft, EventKind};
use crate::store::{self, Refusal, Store, refuse};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use wasmtime::component::Component;

/// Largest plugin accepted.
pub const MAX_PLUGIN_BYTES: usize = 32 << 20;
/// Versions remembered for `rollback`.
const HISTORY: usize = 20;

/// Where a version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Shipped inside the daemon.
    Embedded,
    /// Pushed through the API.
    Pushed,
    /// Dropped into the watched plugin directory.
    Watched,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Embedded => "embedded",
            Origin::Pushed => "pushed",
            Origin::Watched => "watched",
        }
    }
}

/// One stored version of a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginRecord {
    pub digest: Digest,
    pub description: Description,
    pub manifest: Manifest,
    /// The `gatehouse:plugin` version it was built against.
    pub api_version: String,
    /// What it was given: the capabilities both sides named.
    pub granted: Vec<String>,
    pub size_bytes: u64,
    pub pushed_at_ms: i64,
    pub pushed_by: String,
    pub origin: Origin,
    /// Key id of the trusted key that signed it.
    pub signed_by: Option<String>,
}

/// The active version of a plugin and the ones active before it, newest last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveRecord {
    pub digest: Digest,
    pub previous: Vec<Digest>,
}

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

    /// Checks and stores a plugin version, and activates it if asked.
    pub async fn push(&self, push: Push) -> Result<Pushed, Error> {
        let _serial = self.changes.lock().await;
        let actor = push.actor.clone();
        let origin = push.origin;
        match self.check(push).await {
            Ok((plugin, record_in, activate)) => {
                self.store_version(plugin, record_in, activate).await
            }
            Err((digest, e)) => {
                let message = e.to_string();
                // A refused push is worth an audit record too: who tried what.
                self.store
                    .commit(|tx| {
                        tx.append(
                            Draft::new(EventKind::PluginRefused, &actor, format!("plugin push refused: {message}"))
                                .detail(serde_json::json!({ "digest": digest.map(|d| d.hex()), "origin": origin.as_str(), "reason": message })),
                        )
                    })
                    .await?;
                Err(e)
            }
        }
    }

    /// Everything a push must pass before it is stored.
    async fn check(
        &self,
        push: Push,
    ) -> Result<(Arc<Plugin>, PluginRecord, bool), (Option<Digest>, Error)> {
        if push.wasm.len() > MAX_PLUGIN_BYTES {
            return Err((
                None,
                Error::Invalid(format!(
                    "the plugin is {} bytes, over the {MAX_PLUGIN_BYTES}-byte limit",
                    push.wasm.len()
                )),
            ));
        }
        let digest = Digest::of(&push.wasm);
        let fail = |e: Error| (Some(digest), e);
        let manifest = Manifest::parse(&push.manifest).map_err(|e| fail(Error::Invalid(e)))?;
        // The daemon's own plugins are trusted as the daemon's binary is.
        let signed_by = match push.origin {
            Origin::Embedded => None,
            Origin::Pushed | Origin::Watched => self
                .trust
                .check(&digest, push.signature.as_deref())
                .map_err(|e| fail(Error::Untrusted(e)))?,
        };
        let size_bytes = push.wasm.len() as u64;
        let plugin = match self.loaded_version(&digest) {
            Some(p) if p.manifest == manifest => p,
            _ => {
                let plugins = self.plugins.clone();
                let store = self.store.clone();
                let source_name = push.source_name.clone();
                let wasm = push.wasm;
                let manifest = manifest.clone();
                // Compiling and writing megabytes of files: off the reactor.
                let plugin = tokio::task::spawn_blocking(move || {
                    let component = plugins.compile(&source_name, &wasm).map_err(invalid)?;
                    let plugin = plugins
                        .prepare(&source_name, digest, &component, manifest, None)
                        .map_err(invalid)?;
                    // The files go first: the transaction naming them comes
                    // after, in `store_version`.
                    store.put_plugin_blob(&digest, &wasm)?;
                    cache_compiled(&store, &plugins, &digest, &component);
                    Ok::<_, Error>(plugin)
                })
                .await
                .map_err(|e| fail(Error::Invalid(format!("checking the plugin panicked: {e}"))))?
                .map_err(fail)?;
                let plugin = Arc::new(plugin);
                self.remember(plugin.clone());
                plugin
            }
        };
        let record = PluginRecord {
            digest,
            description: plugin.description.clone(),
            manifest,
            api_version: plugin.api_version().to_string(),
            granted: plugin.grants.names(),
            size_bytes,
            pushed_at_ms: store::now_ms(),
            pushed_by: push.actor,
            origin: push.origin,
            signed_by,
        };
        Ok((plugin, record, push.activate))
    }

    async fn store_version(
        &self,
        plugin: Arc<Plugin>,
        record: PluginRecord,
        activate: bool,
    ) -> Result<Pushed, Error> {
        let name = record.description.name.clone();
        let (known, active) = self
            .store
            .commit(|tx| {
                let previous = tx.plugin_active(&name)?;
                let existing = tx.plugin_version(&record.description.name, &record.digest)?;
                let known = existing
                    .as_ref()
                    .is_some_and(|e| e.manifest == record.manifest);
                if !known {
                    tx.put_plugin_version(&record)?;
                    tx.append(
                        Draft::new(
                            EventKind::PluginPushed,
                            &record.pushed_by,
                            format!(
                                "plugin {name} {} ({}) pushed, granted [{}]",
                                record.description.version,
                                record.digest.short(),
                                record.granted.join(", ")
                            ),
                        )
                        .detail(push_detail(&record)),
                    )?;
                }
                let already = previous.as_ref().is_some_and(|p| p.digest == record.digest);
                if activate && !(already && known) {
                    put_active(tx, &record, &record.pushed_by)?;
                }
                Ok((known, activate || already))
            })
            .await?;
        if activate {
            self.plugins.activate(plugin);
        }
        Ok(Pushed {
            record,
            known,
            active,
        })
    }

    /// Pushes each plugin embedded in the daemon whose name has no active
    /// version yet, or whose active version is an older embedded build (the
    /// daemon was upgraded) or was given other grants. A version an admin
    /// pushed stays active. An embedded plugin that needs a grant is
    /// installed only with one in `grants` (see [`super::builtin`]).
    pub async fn ensure_embedded(
        self: &Arc<Self>,
        actor: &str,
        grants: &BTreeMap<String, Manifest>,
    ) -> Result<(), Error> {
        let stored = self.store.plugin_versions(None)?;
        let wanted: Vec<_> = super::builtin::embedded()
            .into_iter()
            .filter(|e| !e.needs_grant || grants.contains_key(e.name))
            .collect();
        self.precompile_embedded(&stored, &wanted).await;
        for embedded in wanted {
            let (file, wasm) = (embedded.file_name(), embedded.wasm);
            let digest = Digest::of(wasm);
            let (name, requested) = match stored.iter().find(|r| r.digest == digest) {
                Some(r) => (
                    r.description.name.clone(),
                    r.description.capabilities.clone(),
                ),
                None => {
                    let plugins = self.plugins.clone();
                    let source = file.clone();
                    let d = tokio::task::spawn_blocking(move || {
                        plugins.describe(&source, &plugins.compile(&source, wasm)?)
                    })
                    .await
                    .map_err(|e| Error::Invalid(format!("checking {file} panicked: {e}")))?
                    .map_err(invalid)?;
                    (d.name, d.capabilities)
                }
            };
            let mut manifest = Manifest::for_embedded(&requested);
            if let Some(granted) = grants.get(embedded.name) {
                manifest
                    .capabilities
                    .extend(granted.capabilities.iter().copied());
                manifest.files = granted.files.clone();
                manifest.http = granted.http.clone();
            }
            let replace = match self.store.plugin_active(&name)? {
                None => true,
                Some(active) => self
                    .store
                    .plugin_version(&name, &active.digest)?
                    .is_some_and(|r| {
                        r.origin == Origin::Embedded
                            && (active.digest != digest || r.manifest != manifest)
                    }),
            };
            if !replace {
                continue;
            }
            self.push(Push {
                wasm: wasm.to_vec(),
                manifest: manifest.to_toml(),
                signature: None,
                activate: true,
                actor: actor.to_string(),
                origin: Origin::Embedded,
                source_name: file,
            })
            .await?;
        }
        Ok(())
    }

    /// Compiles, side by side, the embedded plugins this data directory does
    /// not hold and the compile cache lacks, so the one-by-one install after
    /// loads them from the cache. Only a first start on a machine compiles.
    async fn precompile_embedded(
        &self,
        stored: &[PluginRecord],
        wanted: &[super::builtin::Embedded],
    ) {
        let fresh: Vec<_> = wanted
            .iter()
            .map(|e| (e.file_name(), e.wasm))
            .filter(|(_, wasm)| {
                let digest = Digest::of(wasm);
                !stored.iter().any(|r| r.digest == digest) && self.plugins.needs_compiling(wasm)
            })
            .collect();
        if fresh.is_empty() {
            return;
        }
        let names: Vec<_> = fresh.iter().map(|(file, _)| file.as_str()).collect();
        tracing::info!(
            "compiling {} plugins (first start only): {}",
            fresh.len(),
            names.join(", ")
        );
        let started = std::time::Instant::now();
        let compiles: Vec<_> = fresh
            .into_iter()
            .map(|(file, wasm)| {
                let plugins = self.plugins.clone();
                tokio::task::spawn_blocking(move || plugins.compile(&file, wasm).map(drop))
            })
            .collect();
        for compile in compiles {
            // A failure shows again, with its reason, in the install below.
            let _ = compile.await;
        }
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compiled the embedded plugins"
        );
    }

    /// Makes the stored version picked by `selector` (a version string or a
    /// digest prefix of at least 8 hex digits) active.
    pub async fn activate(
        self: &Arc<Self>,
        name: &str,
        selector: &str,
        actor: &str,
    ) -> Result<PluginRecord, Error> {
        let _serial = self.changes.lock().await;
        let record = self.find(name, Some(selector))?;
        let plugin = self.load_blocking(record.clone()).await?;
        self.store
            .commit(|tx| put_active(tx, &record, actor))
            .await?;
        self.plugins.activate(plugin);
        Ok(record)
    }

    /// Makes the version active before the current one active again.
    pub async fn rollback(
        self: &Arc<Self>,
        name: &str,
        actor: &str,
    ) -> Result<PluginRecord, Error> {
        let _serial = self.changes.lock().await;
        let active = self.store.plugin_active(name)?.ok_or_else(|| {
            Error::NotFound(format!(
                "plugin {name} has no active version; `gatehouse plugin list` shows the plugins"
            ))
        })?;
        let Some(target) = active.previous.last().copied() else {
            return Err(Error::NotFound(format!(
                "plugin {name} has no earlier version to roll back to"
            )));
        };
        let record = self.store.plugin_version(name, &target)?.ok_or_else(|| {
            Error::NotFound(format!(
                "plugin {name}: the record of {} is missing",
                target.short()
            ))
        })?;
        let plugin = self.load_blocking(record.clone()).await?;
        let from = active.digest;
        self.store
            .commit(|tx| {
                let Some(mut now) = tx.plugin_active(name)? else {
                    return refuse(Refusal::NotFound(format!("plugin {name} has no active version")));
                };
                if now.digest != from {
                    return refuse(Refusal::Precondition(format!("plugin {name} changed meanwhile; retry")));
                }
                now.previous.pop();
                now.digest = target;
                tx.put_plugin_active(name, &now)?;
                tx.append(
                    Draft::new(
                        EventKind::PluginRolledBack,
                        actor,
                        format!("plugin {name} rolled back from {} to {} ({})", from.short(), record.description.version, target.short()),
                    )
                    .detail(serde_json::json!({ "plugin": name, "from": from.hex(), "to": target.hex(), "version": record.description.version })),
                )
            })
            .await?;
        self.plugins.activate(plugin);
        Ok(record)
    }

    /// Loading may compile: keep it off the reactor.
    async fn load_blocking(self: &Arc<Self>, record: PluginRecord) -> Result<Arc<Plugin>, Error> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.load(&record))
            .await
            .map_err(|e| Error::Invalid(format!("loading the plugin panicked: {e}")))?
    }

    /// Stored versions with whether each is active; of one plugin or all.
    pub fn list(&self, name: Option<&str>) -> Result<Vec<(PluginRecord, bool)>, Error> {
        let actives: HashMap<String, Digest> = self
            .store
            .plugin_actives()?
            .into_iter()
            .map(|(n, a)| (n, a.digest))
            .collect();
        let versions = self.store.plugin_versions(name)?;
        if name.is_some() && versions.is_empty() {
            return Err(Error::NotFound(format!(
                "no plugin {:?} is stored; `gatehouse plugin list` shows the plugins",
                name.unwrap_or_default()
            )));
        }
        Ok(versions
            .into_iter()
            .map(|r| {
                let active = actives.get(&r.description.name) == Some(&r.digest);
                (r, active)
            })
            .collect())
    }

    /// One stored version: the active one, or the one `selector` picks.
    pub fn find(&self, name: &str, selector: Option<&str>) -> Result<PluginRecord, Error> {
        let versions = self.store.plugin_versions(Some(name))?;
        if versions.is_empty() {
            return Err(Error::NotFound(format!(
                "no plugin {name:?} is stored; `gatehouse plugin list` shows the plugins"
            )));
        }
        let Some(selector) = selector.filter(|s| !s.is_empty()) else {
            let active = self
                .store
                .plugin_active(name)?
                .ok_or_else(|| Error::NotFound(format!("plugin {name} has no active version")))?;
            return versions
                .into_iter()
                .find(|r| r.digest == active.digest)
                .ok_or_else(|| {
                    Error::NotFound(format!(
                        "plugin {name}: the active version's record is missing"
                    ))
                });
        };
        let by_digest = selector.len() >= 8 && selector.chars().all(|c| c.is_ascii_hexdigit());
        let matches: Vec<PluginRecord> = versions
            .into_iter()
            .filter(|r| {
                r.description.version == selector
                    || (by_digest && r.digest.hex().starts_with(&selector.to_ascii_lowercase()))
            })
            .collect();
        match matches.len() {
            0 => Err(Error::NotFound(format!(
                "plugin {name} has no version or digest {selector:?}; `gatehouse plugin list {name}` shows its versions"
            ))),
            1 => Ok(matches.into_iter().next().expect("one match")),
            n => {
                // Several pushes may share a version string: the newest wins
                // unless a digest says otherwise.
                let newest = matches.into_iter().max_by_key(|r| r.pushed_at_ms);
                tracing::debug!(plugin = %name, selector, candidates = n, "version names several pushes; taking the newest");
                newest.ok_or_else(|| {
                    Error::NotFound(format!("plugin {name}: no version {selector:?}"))
                })
            }
        }
    }
}

fn push_detail(record: &PluginRecord) -> serde_json::Value {
    serde_json::json!({
        "plugin": record.description.name,
        "version": record.description.version,
        "kind": record.description.kind.as_str(),
        "digest": record.digest.hex(),
        "api_version": record.api_version,
        "requested": record.description.capabilities,
        "granted": record.granted,
        "origin": record.origin.as_str(),
        "signed_by": record.signed_by,
        "size_bytes": record.size_bytes,
    })
}

/// Keeps the compiled artefact so a restart does not compile again. Best
/// effort: without it, the next load compiles.
fn cache_compiled(store: &Store, plugins: &Plugins, digest: &Digest, component: &Component) {
    let Some(bytes) = plugins.precompiled(component) else {
        return;
    };
    if let Err(e) = store.put_plugin_compiled(&plugins.engine_key(), digest, &bytes) {
        tracing::warn!(plugin_digest = %digest.short(), "cannot keep the compiled plugin: {e}");
    }
}

fn invalid(e: super::Error) -> Error {
    match e {
        super::Error::Describe {
            reason: super::GateError::Busy { .. },
            ..
        } => Error::Busy(e.to_string()),
        super::Error::Image { .. } => Error::Unavailable(e.to_string()),
        e => Error::Invalid(e.to_string()),
    }
}

/// Makes `record` the active version of its plugin, keeping the one it
/// replaces for `rollback`, with its audit event.
fn put_active(tx: &store::Tx<'_>, record: &PluginRecord, actor: &str) -> store::TxResult<()> {
    let name = &record.description.name;
    let mut previous = Vec::new();
    if let Some(active) = tx.plugin_active(name)? {
        previous = active.previous;
        if active.digest != record.digest {
            previous.push(active.digest);
        }
    }
    let excess = previous.len().saturating_sub(HISTORY);
    previous.drain(..excess);
    tx.put_plugin_active(
        name,
        &ActiveRecord {
            digest: record.digest,
            previous,
        },
    )?;
    tx.append(
        Draft::new(
            EventKind::PluginActivated,
            actor,
            format!(
                "plugin {name} {} ({}) active",
                record.description.version,
                record.digest.short()
            ),
        )
        .detail(serde_json::json!({ "plugin": name, "digest": record.digest.hex(), "version": record.description.version })),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::builtin::NOOP_GATE_PATH;
    use crate::plugins::testing::{input, limits};
    use std::path::Path;

    /// A store holding noop-gate, pushed and active, with its engine.
    async fn pushed_noop(dir: &Path) -> (Store, Arc<Plugins>, Digest) {
        let wasm = std::fs::read(NOOP_GATE_PATH).expect("noop-gate.wasm");
        let digest = Digest::of(&wasm);
        let store = Store::open(dir).expect("store");
        let plugins = Arc::new(Plugins::new().expect("engine"));
        let registry = Registry::new(store.clone(), plugins.clone(), Trust::default());
        registry
            .push(Push {
                wasm,
                manifest: String::new(),
                signature: None,
                activate: true,
                actor: "test".into(),
                origin: Origin::Pushed,
                source_name: "noop-gate.wasm".into(),
            })
            .await
            .expect("push");
        (store, plugins, digest)
    }

    /// What a restarted daemon loads from `store`: asserts noop-gate is active
    /// again with `digest`, and returns the new engine.
    fn restart(store: &Store, digest: Digest) -> Arc<Plugins> {
        let fresh = Arc::new(Plugins::new().expect("engine"));
        let restarted = Registry::new(store.clone(), fresh.clone(), Trust::default());
        assert_eq!(restarted.load_active().expect("load"), 1);
        assert_eq!(fresh.gate("noop-gate").expect("active").digest, digest);
        fresh
    }

    /// Asserts the active noop-gate of `plugins` judges a candidate.
    async fn answers(plugins: &Plugins) {
        let gate = plugins.gate("noop-gate").expect("active");
        plugins
            .evaluate(&gate, &input(serde_json::json!({})), limits())
            .await
            .expect("a verdict");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn restart_loads_the_compiled_artefact_without_recompiling() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, plugins, digest) = pushed_noop(dir.path()).await;
        assert!(
            store
                .plugin_compiled(&plugins.engine_key(), &digest)
                .expect("read")
                .is_some(),
            "the push keeps the compiled artefact"
        );

        // Without the component's bytes, only the compiled artefact can load it.
        store.remove_plugin_blob(&digest).expect("remove");
        let fresh = restart(&store, digest);
        assert_eq!(fresh.engine_key(), plugins.engine_key());
        answers(&fresh).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_artefact_that_does_not_load_falls_back_to_compiling_the_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, plugins, digest) = pushed_noop(dir.path()).await;
        store
            .put_plugin_compiled(&plugins.engine_key(), &digest, b"not machine code")
            .expect("overwrite");
        assert!(
            store
                .plugin_compiled(&plugins.engine_key(), &digest)
                .expect("read")
                .is_some()
        );
        // The file has the size its record says but is no artefact: wasmtime
        // refuses it, and the registry falls back to compiling the bytes.
        restart(&store, digest);
    }

    /// Damages noop-gate's artefact file with `damage`, restarts, and asserts
    /// the plugin was compiled again, answers, and its artefact was written
    /// anew: a second restart loads it without the plugin's bytes.
    async fn falls_back_to_compiling_after(damage: impl FnOnce(&Path)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, plugins, digest) = pushed_noop(dir.path()).await;
        let path = store.plugin_compiled_path(&plugins.engine_key(), &digest);
        let intact = std::fs::read(&path).expect("the push wrote the artefact");
        damage(&path);

        let fresh = restart(&store, digest);
        answers(&fresh).await;
        assert_eq!(
            std::fs::read(&path).expect("rewritten").len(),
            intact.len(),
            "the artefact is written anew"
        );
        store.remove_plugin_blob(&digest).expect("remove");
        answers(&restart(&store, digest)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_truncated_artefact_file_falls_back_to_compiling_and_the_plugin_answers() {
        falls_back_to_compiling_after(|path| {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .expect("open");
            let len = file.metadata().expect("metadata").len();
            file.set_len(len / 2).expect("truncate");
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_corrupted_artefact_file_falls_back_to_compiling_and_the_plugin_answers() {
        // Same size, so only wasmtime's own header check can tell.
        falls_back_to_compiling_after(|path| {
            let mut bytes = std::fs::read(path).expect("read");
            for b in bytes.iter_mut().take(4096) {
                *b = !*b;
            }
            std::fs::write(path, bytes).expect("write");
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_artefact_file_falls_back_to_compiling_and_the_plugin_answers() {
        falls_back_to_compiling_after(|path| std::fs::remove_file(path).expect("remove")).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn plugin_bytes_that_do_not_match_their_digest_are_refused_not_compiled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, plugins, digest) = pushed_noop(dir.path()).await;
        std::fs::remove_file(store.plugin_compiled_path(&plugins.engine_key(), &digest))
            .expect("remove artefact");
        let wasm_path = dir
            .path()
            .join("plugins/wasm")
            .join(format!("{}.wasm", digest.hex()));
        let mut wasm = std::fs::read(&wasm_path).expect("read");
        wasm.extend_from_slice(b"tampered");
        std::fs::write(&wasm_path, wasm).expect("write");

        assert!(matches!(
            store.plugin_blob(&digest),
            Err(store::Error::Corrupt { .. })
        ));
        // The daemon still starts; the plugin is not installed.
        let fresh = Arc::new(Plugins::new().expect("engine"));
        let restarted = Registry::new(store.clone(), fresh.clone(), Trust::default());
        assert_eq!(restarted.load_active().expect("load"), 0);
        assert!(fresh.gate("noop-gate").is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_data_dir_with_plugin_bytes_in_sled_moves_them_to_files_on_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, plugins, digest) = pushed_noop(dir.path()).await;
        let engine = plugins.engine_key();
        let wasm = store.plugin_blob(&digest).expect("read").expect("bytes");
        let compiled_path = store.plugin_compiled_path(&engine, &digest);
        let compiled = std::fs::read(&compiled_path).expect("artefact");
        store
            .keep_plugin_bytes_in_sled(&engine, &digest, &wasm, &compiled)
            .expect("older layout");
        assert!(store.plugin_blob(&digest).expect("read").is_none());
        assert!(!compiled_path.exists());
        store.close().expect("close");

        // Opening moves both out of sled.
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(
            store.plugin_blob(&digest).expect("read").as_deref(),
            Some(&wasm[..])
        );
        assert_eq!(std::fs::read(&compiled_path).expect("artefact"), compiled);
        // The artefact moved too: without the bytes, it alone loads the plugin.
        store.remove_plugin_blob(&digest).expect("remove");
        answers(&restart(&store, digest)).await;
        store.close().expect("close");

        // The old trees are gone: a later open has nothing to move.
        let store = Store::open(dir.path()).expect("reopen again");
        assert!(store.plugin_blob(&digest).expect("read").is_none());
        answers(&restart(&store, digest)).await;
    }
}
