//! A plugin's parameters: one type that the SDK parses, checks and hands to
//! the plugin, and that the host asks about through `check-params` when it
//! loads a pipeline, before any candidate arrives.
//!
//! ```
//! use gatehouse_plugin_sdk::{ParamError, Params};
//! use serde::Deserialize;
//!
//! #[derive(Debug, Deserialize, Default)]
//! #[serde(deny_unknown_fields, default)]
//! struct Limits {
//!     max_temperature: f64,
//! }
//!
//! impl Params for Limits {
//!     fn check(&self) -> Result<(), ParamError> {
//!         if (0.0..=2.0).contains(&self.max_temperature) {
//!             Ok(())
//!         } else {
//!             Err(ParamError::new("max_temperature", format!("{} is outside 0..=2", self.max_temperature)))
//!         }
//!     }
//! }
//!
//! let err = gatehouse_plugin_sdk::params::parse::<Limits>(r#"{"max_temperature": 3}"#).unwrap_err();
//! assert_eq!(err.path, "max_temperature");
//! assert!(gatehouse_plugin_sdk::params::parse::<Limits>(r#"{"max_temprature": 1}"#).is_err());
//! ```

use serde::de::DeserializeOwned;

pub use crate::bindings::gate::gatehouse::plugin::types::ParamError;

/// Parameters a gate or adapter accepts: parsed from the pipeline's JSON by
/// serde (unknown keys should be refused with `deny_unknown_fields`), then
/// checked by [`Params::check`] for what types cannot say.
pub trait Params: DeserializeOwned {
    /// Ranges, and how parameters go together. The error's path names the
    /// parameter the pipeline author should change.
    fn check(&self) -> Result<(), ParamError> {
        Ok(())
    }
}

/// Any JSON object, for plugins that read their parameters themselves.
pub type AnyParams = serde_json::Map<String, serde_json::Value>;

impl Params for AnyParams {}

/// No parameters at all: any key is refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoParams;

impl<'de> serde::Deserialize<'de> for NoParams {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Empty {}
        Empty::deserialize(d).map(|_| NoParams)
    }
}

impl Params for NoParams {}

impl ParamError {
    /// What is wrong at `path` (keys joined by `.`, empty for the whole).
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The same error one level down, under `key`: a nested type's check
    /// names its own fields, its owner adds where it sits.
    pub fn under(mut self, key: &str) -> Self {
        self.path = if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{key}.{}", self.path)
        };
        self
    }
}

impl From<ParamError> for String {
    /// "invalid param `PATH`: MESSAGE", as an `evaluate` error reads. (The
    /// bindings' own `Display` of the record is its debug form.)
    fn from(e: ParamError) -> String {
        if e.path.is_empty() {
            format!("invalid params: {}", e.message)
        } else {
            format!("invalid param `{}`: {}", e.path, e.message)
        }
    }
}

/// Parses parameters (a JSON object; empty or `null` read as `{}`) into `P`
/// and checks them. The error's path is where the parse or the check found
/// the mistake, e.g. `live.base_url`.
pub fn parse<P: Params>(json: &str) -> Result<P, ParamError> {
    let params: P = crate::request::parse_params(json)?;
    params.check()?;
    Ok(params)
}
