//! What a plugin may reach beyond its own memory, granted on two sides: the
//! plugin asks in `describe()`, an admin grants in the plugin's manifest, and
//! only what both name is given.
//!
//! Each capability is one file with the same three steps: *grant* (its part
//! of the manifest, checked when the manifest is read), *link* (which host
//! interface it provides; a plugin importing an interface it was not given is
//! refused at push), *prepare* (its state in each call's fresh store).
//! Nothing is ambient: without grants a plugin sees no files, no environment
//! variables, no network and a clock stopped at the Unix epoch.

pub mod attachments;
pub mod clock;
pub mod files;
pub mod http;
pub mod log;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    Log,
    Clock,
    Files,
    Http,
}

impl Capability {
    pub const ALL: [Capability; 4] = [
        Capability::Log,
        Capability::Clock,
        Capability::Files,
        Capability::Http,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::Clock => "clock",
            Capability::Files => "files",
            Capability::Http => "http",
        }
    }

    pub fn parse(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What one plugin version was given: the capabilities both sides named,
/// with the manifest's settings for them.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    pub log: bool,
    pub clock: bool,
    pub files: Vec<files::DataDir>,
    pub http: Option<Arc<http::Policy>>,
}

impl Grants {
    /// Nothing at all: what a plugin gets when it asks for nothing.
    pub fn none() -> Grants {
        Grants::default()
    }

    /// Intersects what the plugin `requested` with what `manifest` grants.
    /// A request the manifest does not grant is an error: the plugin would
    /// not work, and the push should say so rather than fail later.
    pub fn resolve(
        requested: &[String],
        manifest: &super::manifest::Manifest,
    ) -> Result<Grants, String> {
        let mut grants = Grants::none();
        for name in requested {
            let Some(capability) = Capability::parse(name) else {
                return Err(format!(
                    "it asks for capability {name:?}, which the host does not offer (known: log, clock, files, http)"
                ));
            };
            if !manifest.capabilities.contains(&capability) {
                return Err(format!(
                    "it asks for `{capability}`, which the manifest does not grant; add \"{capability}\" to `capabilities` in the manifest{}",
                    match capability {
                        Capability::Files => " with the directories under [[files]]",
                        Capability::Http => " with the hosts under [http] allow_hosts",
                        Capability::Log | Capability::Clock => "",
                    }
                ));
            }
            match capability {
                Capability::Log => grants.log = true,
                Capability::Clock => grants.clock = true,
                Capability::Files => grants.files = manifest.files.clone(),
                Capability::Http => {
                    grants.http = manifest
                        .http
                        .as_ref()
                        .map(|g| Arc::new(http::Policy::from(g)))
                }
            }
        }
        Ok(grants)
    }

    /// The capabilities given, by name.
    pub fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if self.log {
            names.push("log".to_string());
        }
        if self.clock {
            names.push("clock".to_string());
        }
        if !self.files.is_empty() {
            names.push("files".to_string());
        }
        if self.http.is_some() {
            names.push("http".to_string());
        }
        names
    }

    fn has(&self, capability: &str) -> bool {
        self.names().iter().any(|n| n == capability)
    }
}

/// Refuses a component that imports a host interface it was not given.
/// WASI's own interfaces are always linked; what they can reach is decided
/// per call (no preopens, no sockets, a stopped clock) from the grants.
pub fn check_imports(imports: &[String], grants: &Grants) -> Result<(), String> {
    for import in imports {
        for (prefix, capability) in super::world::CAPABILITY_IMPORTS {
            if import.starts_with(prefix) && !grants.has(capability) {
                return Err(format!(
                    "it imports `{import}` but was not given `{capability}`; ask for it with `.with_capability(\"{capability}\")` (or `capabilities: [\"{capability}\"]` in `gate!`) and have the manifest grant it"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::manifest::Manifest;

    fn manifest(text: &str) -> Manifest {
        Manifest::parse(text).expect("valid manifest")
    }

    #[test]
    fn only_capabilities_named_on_both_sides_are_given() {
        let m = manifest(r#"capabilities = ["log", "clock"]"#);
        let g = Grants::resolve(&["log".into()], &m).expect("log is granted");
        assert!(g.log);
        assert!(!g.clock, "granted but not asked for");
        assert_eq!(g.names(), ["log"]);
    }

    #[test]
    fn asking_for_what_is_not_granted_names_the_fix() {
        let m = manifest(r#"capabilities = ["log"]"#);
        let err = Grants::resolve(&["http".into()], &m).unwrap_err();
        assert!(err.contains("add \"http\" to `capabilities`"), "{err}");
        assert!(err.contains("allow_hosts"), "{err}");
        let err = Grants::resolve(&["network".into()], &m).unwrap_err();
        assert!(err.contains("\"network\""), "{err}");
    }

    #[test]
    fn importing_an_interface_not_given_is_refused() {
        let g = Grants::none();
        let imports = vec![
            "wasi:cli/environment@0.2.6".to_string(),
            "gatehouse:plugin/log@0.1.0".to_string(),
        ];
        let err = check_imports(&imports, &g).unwrap_err();
        assert!(err.contains("gatehouse:plugin/log@0.1.0"), "{err}");
        let g = Grants {
            log: true,
            ..Grants::none()
        };
        assert!(check_imports(&imports, &g).is_ok());
    }
}
