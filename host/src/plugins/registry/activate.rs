//! Choosing the active version: activate one by version or digest, roll
//! back to the one before, and list or find stored versions.

use super::records::{PluginReads, PluginRecord, put_active};
use super::{Error, Registry};
use crate::digest::Digest;
use crate::plugins::Plugin;
use crate::plugins::registry::PluginWrites;
use crate::store::audit::{Draft, EventKind};
use crate::store::{Refusal, refuse};
use std::collections::HashMap;
use std::sync::Arc;

impl Registry {
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
