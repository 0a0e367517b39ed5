//! The gate's params: how far to narrow the default limits. All are optional.

use gatehouse_plugin_sdk::ParamError;
use serde::Deserialize;
use serde_json::{Value, json};

/// Highest temperature model APIs accept.
pub const TEMPERATURE_CEILING: f64 = 2.0;
/// Default ceiling on `parameters.max_tokens`.
pub const DEFAULT_MAX_TOKENS_LIMIT: u64 = 32_768;
/// Default placeholder the prompt template must contain.
pub const DEFAULT_PLACEHOLDER: &str = "{{input}}";

/// Params from the pipeline, e.g. `{"max_temperature": 1.0, "max_tokens_limit": 4096}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Highest `parameters.temperature` allowed, at most 2.
    pub max_temperature: f64,
    /// Highest `parameters.max_tokens` allowed.
    pub max_tokens_limit: u64,
    /// Whether `prompt_template`, when present, must contain `placeholder`.
    pub require_placeholder: bool,
    /// Where the input goes in the prompt template.
    pub placeholder: String,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            max_temperature: TEMPERATURE_CEILING,
            max_tokens_limit: DEFAULT_MAX_TOKENS_LIMIT,
            require_placeholder: true,
            placeholder: DEFAULT_PLACEHOLDER.to_owned(),
        }
    }
}

impl gatehouse_plugin_sdk::Params for Params {
    fn check(&self) -> Result<(), ParamError> {
        if !(0.0..=TEMPERATURE_CEILING).contains(&self.max_temperature) {
            return Err(ParamError::new(
                "max_temperature",
                format!(
                    "{} is outside 0..=2; it can only narrow the range model APIs accept",
                    self.max_temperature
                ),
            ));
        }
        if self.max_tokens_limit == 0 {
            return Err(ParamError::new(
                "max_tokens_limit",
                "0 would reject every `max_tokens`; set a positive limit or remove it",
            ));
        }
        if self.require_placeholder && self.placeholder.is_empty() {
            return Err(ParamError::new(
                "placeholder",
                "it is empty, so every template would contain it; set it, e.g. \"{{input}}\", or set `require_placeholder` to false",
            ));
        }
        Ok(())
    }
}

/// JSON Schema of [`Params`], reported by `describe`.
pub fn schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "config-lint params",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "max_temperature": {
                "description": "Highest parameters.temperature allowed; narrows the 0..=2 range.",
                "type": "number",
                "minimum": 0,
                "maximum": TEMPERATURE_CEILING,
                "default": TEMPERATURE_CEILING
            },
            "max_tokens_limit": {
                "description": "Highest parameters.max_tokens allowed.",
                "type": "integer",
                "minimum": 1,
                "default": DEFAULT_MAX_TOKENS_LIMIT
            },
            "require_placeholder": {
                "description": "Whether prompt_template, when present, must contain the placeholder.",
                "type": "boolean",
                "default": true
            },
            "placeholder": {
                "description": "Where the input goes in the prompt template.",
                "type": "string",
                "minLength": 1,
                "default": DEFAULT_PLACEHOLDER
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_plugin_sdk::params::parse;

    #[test]
    fn no_params_means_defaults() {
        assert_eq!(parse::<Params>(""), Ok(Params::default()));
        assert_eq!(parse::<Params>("{}"), Ok(Params::default()));
    }

    #[test]
    fn temperature_limit_can_only_narrow() {
        let err = String::from(parse::<Params>(r#"{"max_temperature": 3}"#).unwrap_err());
        assert!(err.contains("`max_temperature`"), "{err}");
        assert!(parse::<Params>(r#"{"max_temperature": 0.5}"#).is_ok());
    }

    #[test]
    fn zero_token_limit_is_rejected() {
        let err = String::from(parse::<Params>(r#"{"max_tokens_limit": 0}"#).unwrap_err());
        assert!(err.contains("`max_tokens_limit`"), "{err}");
    }

    #[test]
    fn empty_placeholder_is_rejected_while_required() {
        assert!(parse::<Params>(r#"{"placeholder": ""}"#).is_err());
        assert!(parse::<Params>(r#"{"placeholder": "", "require_placeholder": false}"#).is_ok());
    }

    #[test]
    fn schema_lists_exactly_the_accepted_params() {
        let schema = schema();
        let every_param: serde_json::Map<String, Value> = schema["properties"]
            .as_object()
            .expect("properties")
            .iter()
            .map(|(name, property)| (name.clone(), property["default"].clone()))
            .collect();
        assert_eq!(
            parse::<Params>(&Value::Object(every_param).to_string()),
            Ok(Params::default())
        );
    }
}
