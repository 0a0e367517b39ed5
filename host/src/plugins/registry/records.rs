//! The registry's records: each pushed version with its manifest, and which
//! version of each plugin is active with the ones before it. Kept in two
//! tables of the store, written in the same transactions as their audit
//! events.

use crate::digest::Digest;
use crate::plugins::Description;
use crate::plugins::manifest::Manifest;
use crate::store::audit::{Draft, EventKind};
use crate::store::{self, Range, Store, Table, Tx, TxResult, decode};
use serde::{Deserialize, Serialize};

/// (name, 0, digest) → the pushed version's record.
pub const PLUGIN_VERSIONS: Table = Table("plugin_versions");
/// name → the active version and the ones before it.
pub const PLUGIN_ACTIVE: Table = Table("plugin_active");

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

fn version_key(name: &str, digest: &Digest) -> Vec<u8> {
    let mut key = name.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&digest.0);
    key
}

/// Reading the registry's records outside a transaction.
pub trait PluginReads {
    /// Every stored version, of one plugin or of all, by name then push time.
    fn plugin_versions(&self, name: Option<&str>) -> Result<Vec<PluginRecord>, store::Error>;
    fn plugin_version(
        &self,
        name: &str,
        digest: &Digest,
    ) -> Result<Option<PluginRecord>, store::Error>;
    /// The active version of every plugin, by name.
    fn plugin_actives(&self) -> Result<Vec<(String, ActiveRecord)>, store::Error>;
    fn plugin_active(&self, name: &str) -> Result<Option<ActiveRecord>, store::Error>;
}

impl PluginReads for Store {
    fn plugin_versions(&self, name: Option<&str>) -> Result<Vec<PluginRecord>, store::Error> {
        let mut prefix = Vec::new();
        let range = match name {
            Some(n) => {
                prefix.extend_from_slice(n.as_bytes());
                prefix.push(0);
                Range::Prefix(&prefix)
            }
            None => Range::All,
        };
        let mut out = Vec::new();
        for item in self.rows(PLUGIN_VERSIONS, range, false)? {
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

    fn plugin_version(
        &self,
        name: &str,
        digest: &Digest,
    ) -> Result<Option<PluginRecord>, store::Error> {
        self.get(PLUGIN_VERSIONS, &version_key(name, digest), || {
            format!("plugin {name} {}", digest.short())
        })
    }

    fn plugin_actives(&self) -> Result<Vec<(String, ActiveRecord)>, store::Error> {
        let mut out = Vec::new();
        for item in self.rows(PLUGIN_ACTIVE, Range::All, false)? {
            let (key, bytes) = item?;
            let name = String::from_utf8_lossy(&key).into_owned();
            let record = decode(&bytes, || format!("active version of plugin {name}"))?;
            out.push((name, record));
        }
        Ok(out)
    }

    fn plugin_active(&self, name: &str) -> Result<Option<ActiveRecord>, store::Error> {
        self.get(PLUGIN_ACTIVE, name.as_bytes(), || {
            format!("active version of plugin {name}")
        })
    }
}

/// Reading and writing the registry's records inside a transaction. A
/// record that cannot be read there reads as absent: the write that follows
/// replaces it.
pub trait PluginWrites {
    fn plugin_version(&self, name: &str, digest: &Digest) -> TxResult<Option<PluginRecord>>;
    fn put_plugin_version(&self, record: &PluginRecord) -> TxResult<()>;
    fn plugin_active(&self, name: &str) -> TxResult<Option<ActiveRecord>>;
    fn put_plugin_active(&self, name: &str, record: &ActiveRecord) -> TxResult<()>;
}

impl PluginWrites for Tx<'_> {
    fn plugin_version(&self, name: &str, digest: &Digest) -> TxResult<Option<PluginRecord>> {
        Ok(self
            .get_raw(PLUGIN_VERSIONS, &version_key(name, digest))?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    fn put_plugin_version(&self, record: &PluginRecord) -> TxResult<()> {
        let key = version_key(&record.description.name, &record.digest);
        self.put(PLUGIN_VERSIONS, &key, record)
    }

    fn plugin_active(&self, name: &str) -> TxResult<Option<ActiveRecord>> {
        Ok(self
            .get_raw(PLUGIN_ACTIVE, name.as_bytes())?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    fn put_plugin_active(&self, name: &str, record: &ActiveRecord) -> TxResult<()> {
        self.put(PLUGIN_ACTIVE, name.as_bytes(), record)
    }
}

pub(super) fn push_detail(record: &PluginRecord) -> serde_json::Value {
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

/// Makes `record` the active version of its plugin, keeping the one it
/// replaces for `rollback`, with its audit event.
pub(super) fn put_active(tx: &Tx<'_>, record: &PluginRecord, actor: &str) -> TxResult<()> {
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
