//! Pushing a version: everything it must pass before it is stored, storing
//! it with its audit event, and installing the plugins the daemon embeds.

use super::records::{Origin, PluginReads, PluginRecord, PluginWrites, push_detail, put_active};
use super::{Error, MAX_PLUGIN_BYTES, Push, Pushed, Registry, cache_compiled, invalid};
use crate::digest::Digest;
use crate::plugins::Plugin;
use crate::plugins::manifest::Manifest;
use crate::store;
use crate::store::audit::{Draft, EventKind};
use std::collections::BTreeMap;
use std::sync::Arc;

impl Registry {
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
    /// installed only with one in `grants` (see [`crate::plugins::builtin`]).
    pub async fn ensure_embedded(
        self: &Arc<Self>,
        actor: &str,
        grants: &BTreeMap<String, Manifest>,
    ) -> Result<(), Error> {
        let stored = self.store.plugin_versions(None)?;
        let wanted: Vec<_> = crate::plugins::builtin::embedded()
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
        wanted: &[crate::plugins::builtin::Embedded],
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
}
