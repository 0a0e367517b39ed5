//! A plugin's manifest: what an admin grants it, written in TOML beside the
//! `.wasm` and sent with every push.
//!
//! ```toml
//! capabilities = ["log", "files", "http"]
//!
//! [[files]]
//! host = "/srv/gatehouse/golden"   # on the daemon's machine
//! guest = "/golden"                # where the plugin opens it
//!
//! [http]
//! allow_hosts = ["api.openai.com", "127.0.0.1:8089"]
//! timeout_ms = 10000
//! max_response_bytes = 4194304
//! ```
//!
//! A manifest grants; it never asks. The plugin gets only what it also asks
//! for in `describe()` (see [`super::capabilities`]).

use super::capabilities::files::{self, DataDir};
use super::capabilities::http::{self, HttpGrant};
use super::capabilities::{Capability, Grants};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(default)]
    pub capabilities: BTreeSet<Capability>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<DataDir>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpGrant>,
}

impl Manifest {
    /// Parses and checks a manifest; the error says what to fix.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let manifest: Manifest =
            toml::from_str(text).map_err(|e| format!("manifest: {}", e.message()))?;
        manifest.check()?;
        Ok(manifest)
    }

    /// Whether what it grants is whole and safe; the error says what to fix.
    pub fn check(&self) -> Result<(), String> {
        let has = |c| self.capabilities.contains(&c);
        match (has(Capability::Files), self.files.is_empty()) {
            (true, true) => {
                return Err(
                    "manifest grants `files` but lists no [[files]] directory; add one".into(),
                );
            }
            (false, false) => {
                return Err(
                    "manifest lists [[files]] but does not grant `files`; add \"files\" to capabilities"
                        .into(),
                );
            }
            _ => files::check(&self.files)?,
        }
        match (&self.http, has(Capability::Http)) {
            (None, true) => {
                Err("manifest grants `http` but has no [http] allow_hosts; add the hosts".into())
            }
            (Some(_), false) => Err(
                "manifest has an [http] table but does not grant `http`; add \"http\" to capabilities"
                    .into(),
            ),
            (Some(grant), true) => http::check(grant),
            (None, false) => Ok(()),
        }
    }

    /// The manifest the daemon gives its own embedded plugins: the harmless
    /// capabilities (log, clock) they ask for, nothing that reaches out.
    pub fn for_embedded(requested: &[String]) -> Manifest {
        Manifest {
            capabilities: requested
                .iter()
                .filter_map(|r| Capability::parse(r))
                .filter(|c| matches!(c, Capability::Log | Capability::Clock))
                .collect(),
            files: Vec::new(),
            http: None,
        }
    }

    /// The manifest as TOML, as stored and shown.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// What a plugin asking for `requested` gets under this manifest.
    pub fn grants_for(&self, requested: &[String]) -> Result<Grants, String> {
        Grants::resolve(requested, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_manifest_grants_nothing() {
        let m = Manifest::parse("").expect("empty is valid");
        assert!(m.capabilities.is_empty());
        assert_eq!(Manifest::parse(&m.to_toml()), Ok(m));
    }

    #[test]
    fn settings_without_their_capability_are_refused() {
        let err = Manifest::parse("[http]\nallow_hosts = [\"a.example\"]").unwrap_err();
        assert!(err.contains("add \"http\" to capabilities"), "{err}");
        let err = Manifest::parse("capabilities = [\"http\"]").unwrap_err();
        assert!(err.contains("allow_hosts"), "{err}");
        let err = Manifest::parse("capabilities = [\"files\"]").unwrap_err();
        assert!(err.contains("[[files]]"), "{err}");
    }

    #[test]
    fn unknown_keys_and_capabilities_are_refused() {
        assert!(Manifest::parse("capabilites = []").is_err());
        let err = Manifest::parse("capabilities = [\"network\"]").unwrap_err();
        assert!(err.contains("network"), "{err}");
    }

    #[test]
    fn data_directories_must_exist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = format!(
            "capabilities = [\"files\"]\n[[files]]\nhost = {:?}\nguest = \"/data\"",
            dir.path()
        );
        let m = Manifest::parse(&ok).expect("existing dir");
        assert_eq!(Manifest::parse(&m.to_toml()), Ok(m));
        let missing = ok.replace(&*dir.path().to_string_lossy(), "/no/such/dir");
        assert!(
            Manifest::parse(&missing)
                .unwrap_err()
                .contains("does not exist")
        );
    }

    #[test]
    fn embedded_plugins_get_only_harmless_capabilities() {
        let m = Manifest::for_embedded(&["log".into(), "http".into(), "clock".into()]);
        assert_eq!(
            m.capabilities.into_iter().collect::<Vec<_>>(),
            [Capability::Log, Capability::Clock]
        );
    }
}
