//! Asking a plugin whether parameters are right before any candidate
//! arrives: `check-params` (plugin contract 0.2.0). The daemon asks when it
//! loads a pipeline, so a mistake is refused at its line in the file, and
//! again before a release's stage runs, so a plugin pushed after the
//! pipeline loaded cannot blame its parameters on a candidate.

use super::{
    Answer, CALL_MEMORY_LIMIT, Entry, Error, GateError, Plugin, PluginKind, Plugins, Wait,
    answered_otherwise, plugin_text,
};
use crate::digest::Digest;
use crate::plugins::capabilities::Grants;
use crate::plugins::manifest::Manifest;
use crate::plugins::sandbox::Callee;
use crate::plugins::sandbox::Limits;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `check-params` must answer at once, as `describe()` must.
const CHECK_LIMITS: Limits = Limits {
    timeout: Duration::from_secs(2),
    fuel: 100_000_000,
    memory: CALL_MEMORY_LIMIT,
};

/// Longest path kept from a plugin's answer.
const MAX_PATH_BYTES: usize = 256;

/// Answers kept per plugin version (digest) and parameters; past this many,
/// all are forgotten and asked again (a pipeline holds a few dozen).
const MAX_ANSWERS: usize = 4096;

/// What plugin versions said of parameters, by (digest, parameters as JSON).
#[derive(Default)]
pub(super) struct Answers(Mutex<HashMap<(Digest, String), ParamsChecked>>);

impl Answers {
    fn get(&self, key: &(Digest, String)) -> Option<ParamsChecked> {
        self.lock().get(key).cloned()
    }

    fn put(&self, key: (Digest, String), answer: ParamsChecked) {
        let mut answers = self.lock();
        if answers.len() >= MAX_ANSWERS {
            answers.clear();
        }
        answers.insert(key, answer);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Digest, String), ParamsChecked>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a plugin said of a set of parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamsChecked {
    Accepted,
    /// Wrong at `path` (keys joined by `.`; empty for the whole set).
    Refused {
        path: String,
        message: String,
    },
    /// The plugin predates `check-params` (contract 0.1.0): its parameters
    /// are checked only when it runs.
    Unchecked,
}

/// Why a plugin was not asked about its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unasked {
    /// No plugin of that name and kind is active.
    NotInstalled(String),
    /// Built against a contract without `check-params`.
    Predates(String),
}

impl Plugins {
    /// What the active plugin `name` of `kind` says of `params`, as
    /// (path, problem) for a person: `None` when it accepts them. A call
    /// that fails (a trap, a timeout) is a refusal of the whole set.
    pub async fn refusal(
        &self,
        kind: PluginKind,
        name: &str,
        params: &serde_json::Value,
    ) -> Result<Option<(String, String)>, Unasked> {
        let installed = match kind {
            PluginKind::Gate => self.gate(name),
            PluginKind::Adapter => self.adapter(name),
        };
        let installed =
            installed.map_err(|e| Unasked::NotInstalled(format!("plugin {name} {e}")))?;
        match self.check_params(&installed, params).await {
            Ok(ParamsChecked::Accepted) => Ok(None),
            Ok(ParamsChecked::Refused { path, message }) => {
                let what = if path.is_empty() {
                    "its parameters".to_string()
                } else {
                    format!("param `{path}`")
                };
                Ok(Some((path, format!("{what}: {message}"))))
            }
            Ok(ParamsChecked::Unchecked) => Err(Unasked::Predates(format!(
                "plugin {name} {} predates check-params (plugin contract {}), so its parameters are checked only when it runs",
                installed.description.version,
                installed.api_version()
            ))),
            Err(e) => Ok(Some((
                String::new(),
                format!("plugin {name} could not check its parameters: {e}"),
            ))),
        }
    }

    /// Asks `plugin` about `params` (a JSON object), in a fresh sandbox with
    /// the limits of `describe()`, unless this version answered for these
    /// parameters before. An error is the call failing (a trap, a timeout),
    /// which the caller treats as a refusal it cannot place; it is not kept.
    pub async fn check_params(
        &self,
        plugin: &Plugin,
        params: &serde_json::Value,
    ) -> Result<ParamsChecked, GateError> {
        let params = match params {
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        let key = (plugin.digest, params);
        if let Some(answer) = self.params_answers.get(&key) {
            return Ok(answer);
        }
        let called = self
            .call(
                &plugin.callee,
                CHECK_LIMITS,
                Arc::default(),
                Entry::CheckParams(key.1.clone()),
                Wait::InOrder,
            )
            .await?;
        let answer = match called.value {
            Answer::ParamsChecked(None) => ParamsChecked::Unchecked,
            Answer::ParamsChecked(Some(Ok(()))) => ParamsChecked::Accepted,
            Answer::ParamsChecked(Some(Err(e))) => ParamsChecked::Refused {
                path: super::clip_to(super::escape_controls(&e.path), MAX_PATH_BYTES),
                message: plugin_text(e.message),
            },
            _ => return Err(answered_otherwise()),
        };
        self.params_answers.put(key, answer.clone());
        Ok(answer)
    }

    /// Loads and activates `wasm` with no grants at all, whatever it asks
    /// for, to be asked `check-params` (which needs none) and nothing else
    /// that could reach out: `gatehouse pipeline check` checks offline with
    /// it. Blocking.
    pub fn install_for_checking(
        &self,
        source_name: &str,
        wasm: &[u8],
    ) -> Result<Arc<Plugin>, Error> {
        let component = self.compile(source_name, wasm)?;
        let none = Arc::new(Grants::none());
        let callee = self.callee(source_name, &component, none.clone())?;
        let description = self.block_on(self.describe_callee(&callee, source_name))?;
        let plugin = Arc::new(Plugin {
            digest: Digest::of(wasm),
            callee: Callee {
                name: description.name.as_str().into(),
                ..callee
            },
            description,
            manifest: Manifest::default(),
            grants: none,
        });
        self.activate(plugin.clone());
        Ok(plugin)
    }

    /// [`Plugins::check_params`] for callers outside an async runtime.
    pub fn check_params_blocking(
        &self,
        plugin: &Plugin,
        params: &serde_json::Value,
    ) -> Result<ParamsChecked, GateError> {
        self.block_on(self.check_params(plugin, params))
    }
}
