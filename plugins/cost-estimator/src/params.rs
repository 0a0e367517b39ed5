//! The gate's params: budgets, traffic, and where token counts and prices
//! come from, checked before judging.
//!
//! Data sources (`dataset`, `outputs`, `incumbent_outputs`, `pricing_table`)
//! are `attachment:NAME`, `incumbent-attachment:NAME`, or an absolute path in
//! a directory the manifest grants. Attachments need no grant. Paths need
//! the `files` capability, which the gate asks for only when built with the
//! `files` feature: the daemon embeds the default build, which must run
//! without a manifest.

use gatehouse_plugin_sdk::ParamError;
use serde::Deserialize;
use serde_json::{Value, json};

/// Input tokens assumed per request when the pipeline does not say.
pub const DEFAULT_INPUT_TOKENS: u64 = 500;

/// Params from the pipeline, e.g.
/// `{"max_cost_per_request": 0.01, "requests_per_month": 150000}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Most one request may cost, in USD.
    pub max_cost_per_request: f64,
    /// Prompt tokens per request (template plus input); unset means
    /// [`DEFAULT_INPUT_TOKENS`] (see [`Params::input_tokens`]).
    #[serde(default)]
    pub expected_input_tokens: Option<u64>,
    /// Completion tokens per request; unset means the candidate's
    /// `parameters.max_tokens`, the worst case.
    #[serde(default)]
    pub expected_output_tokens: Option<u64>,
    /// Traffic, to estimate the monthly bill.
    #[serde(default)]
    pub requests_per_month: Option<u64>,
    /// Most a month may cost, in USD; needs `requests_per_month`.
    #[serde(default)]
    pub max_monthly_cost: Option<f64>,
    /// Most the cost per request may rise against the incumbent, in percent.
    #[serde(default)]
    pub max_increase_pct: Option<f64>,
    /// Golden dataset (JSON lines of cases) to count tokens on, instead of
    /// `expected_input_tokens` and `expected_output_tokens`.
    #[serde(default)]
    pub dataset: Option<String>,
    /// The candidate's outputs on the dataset (JSON lines), priced instead
    /// of the expected answers.
    #[serde(default)]
    pub outputs: Option<String>,
    /// The incumbent's outputs on the dataset; defaults to the incumbent's
    /// attachment of the same name as `outputs`, when it has one.
    #[serde(default)]
    pub incumbent_outputs: Option<String>,
    /// Prices by model (JSON), winning over a configuration's own `pricing`.
    #[serde(default)]
    pub pricing_table: Option<String>,
}

impl Params {
    /// Prompt tokens per request when no dataset counts them.
    pub fn input_tokens(&self) -> u64 {
        self.expected_input_tokens.unwrap_or(DEFAULT_INPUT_TOKENS)
    }
}

impl gatehouse_plugin_sdk::Params for Params {
    fn check(&self) -> Result<(), ParamError> {
        if !(self.max_cost_per_request.is_finite() && self.max_cost_per_request > 0.0) {
            return Err(ParamError::new(
                "max_cost_per_request",
                format!(
                    "{} is not a positive number of USD; set the most one request may cost, e.g. 0.01",
                    self.max_cost_per_request
                ),
            ));
        }
        if let Some(max) = self.max_monthly_cost {
            if !(max.is_finite() && max > 0.0) {
                return Err(ParamError::new(
                    "max_monthly_cost",
                    format!(
                        "{max} is not a positive number of USD; set the most a month may cost, or remove it"
                    ),
                ));
            }
            if self.requests_per_month.is_none() {
                return Err(ParamError::new(
                    "max_monthly_cost",
                    "it needs `requests_per_month` to estimate the month; add `requests_per_month` or remove `max_monthly_cost`",
                ));
            }
        }
        if let Some(pct) = self.max_increase_pct
            && !(pct.is_finite() && pct >= 0.0)
        {
            return Err(ParamError::new(
                "max_increase_pct",
                format!(
                    "{pct} is not a percentage of 0 or more; set how far the cost per request may rise against the incumbent, e.g. 20"
                ),
            ));
        }
        if self.dataset.is_some() {
            for (name, set) in [
                (
                    "expected_input_tokens",
                    self.expected_input_tokens.is_some(),
                ),
                (
                    "expected_output_tokens",
                    self.expected_output_tokens.is_some(),
                ),
            ] {
                if set {
                    return Err(ParamError::new(
                        name,
                        format!(
                            "both `dataset` and `{name}` are set; the dataset gives the token counts, so remove `{name}`"
                        ),
                    ));
                }
            }
        }
        for (name, source) in [
            ("outputs", &self.outputs),
            ("incumbent_outputs", &self.incumbent_outputs),
        ] {
            if source.is_some() && self.dataset.is_none() {
                return Err(ParamError::new(
                    name,
                    format!(
                        "it needs `dataset`, the cases the outputs answer; add `dataset` or remove `{name}`"
                    ),
                ));
            }
        }
        for (name, source) in [
            ("dataset", &self.dataset),
            ("outputs", &self.outputs),
            ("incumbent_outputs", &self.incumbent_outputs),
            ("pricing_table", &self.pricing_table),
        ] {
            if let Some(source) = source {
                gatehouse_plugin_sdk::data::check_source(
                    source,
                    READS_GRANTED_DIRECTORIES,
                    "cost-estimator",
                )
                .map_err(|m| ParamError::new(name, m))?;
            }
        }
        Ok(())
    }
}

/// Whether this build asks the host for data directories.
pub const READS_GRANTED_DIRECTORIES: bool = cfg!(feature = "files");

/// JSON Schema of [`Params`], reported by `describe`.
pub fn schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "cost-estimator params",
        "type": "object",
        "additionalProperties": false,
        "required": ["max_cost_per_request"],
        "properties": {
            "max_cost_per_request": {
                "description": "Most one request may cost, in USD.",
                "type": "number",
                "exclusiveMinimum": 0
            },
            "expected_input_tokens": {
                "description": "Prompt tokens per request (template plus input).",
                "type": "integer",
                "minimum": 0,
                "default": DEFAULT_INPUT_TOKENS
            },
            "expected_output_tokens": {
                "description": "Completion tokens per request; defaults to the candidate's parameters.max_tokens (worst case).",
                "type": "integer",
                "minimum": 0
            },
            "requests_per_month": {
                "description": "Expected traffic, to estimate the monthly cost.",
                "type": "integer",
                "minimum": 0
            },
            "max_monthly_cost": {
                "description": "Most a month may cost, in USD; needs requests_per_month.",
                "type": "number",
                "exclusiveMinimum": 0
            },
            "max_increase_pct": {
                "description": "Most the cost per request may rise against the incumbent, in percent.",
                "type": "number",
                "minimum": 0
            },
            "dataset": {
                "description": "Golden dataset (JSON lines of cases) to count tokens on: `attachment:NAME`, `incumbent-attachment:NAME` or a path in a granted directory.",
                "type": "string"
            },
            "outputs": {
                "description": "The candidate's outputs on the dataset (JSON lines), priced instead of the expected answers; needs dataset.",
                "type": "string"
            },
            "incumbent_outputs": {
                "description": "The incumbent's outputs on the dataset; defaults to the incumbent's attachment named like outputs, when present.",
                "type": "string"
            },
            "pricing_table": {
                "description": "Prices by model, JSON {\"MODEL\": {\"input_per_1m_tokens\": USD, \"output_per_1m_tokens\": USD}}; a key ending in * is a prefix.",
                "type": "string"
            }
        },
        "dependentRequired": {
            "max_monthly_cost": ["requests_per_month"],
            "outputs": ["dataset"],
            "incumbent_outputs": ["dataset"]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_plugin_sdk::params::parse;

    #[test]
    fn only_the_budget_is_required() {
        let params = parse::<Params>(r#"{"max_cost_per_request": 0.01}"#).expect("valid params");
        assert_eq!(params.input_tokens(), DEFAULT_INPUT_TOKENS);
        assert_eq!(params.expected_output_tokens, None);
        assert_eq!(params.max_increase_pct, None);
    }

    #[test]
    fn missing_budget_is_named() {
        let err = String::from(parse::<Params>("{}").unwrap_err());
        assert!(err.contains("max_cost_per_request"), "{err}");
    }

    #[test]
    fn misspelt_param_is_rejected_by_name() {
        let err = String::from(
            parse::<Params>(r#"{"max_cost_per_request": 0.01, "requests_per_day": 5}"#)
                .unwrap_err(),
        );
        assert!(err.contains("`requests_per_day`"), "{err}");
    }

    #[test]
    fn negative_budget_says_what_to_set() {
        let err = String::from(parse::<Params>(r#"{"max_cost_per_request": -1}"#).unwrap_err());
        assert!(err.contains("`max_cost_per_request`"), "{err}");
        assert!(err.contains("positive"), "{err}");
    }

    #[test]
    fn monthly_budget_without_traffic_is_rejected() {
        let err = parse::<Params>(r#"{"max_cost_per_request": 0.01, "max_monthly_cost": 100}"#)
            .unwrap_err();
        assert_eq!(err.path, "max_monthly_cost");
        assert!(
            err.message.contains("needs `requests_per_month`"),
            "{err:?}"
        );
    }

    #[test]
    fn negative_increase_limit_is_rejected() {
        let err = String::from(
            parse::<Params>(r#"{"max_cost_per_request": 0.01, "max_increase_pct": -5}"#)
                .unwrap_err(),
        );
        assert!(err.contains("`max_increase_pct`"), "{err}");
    }

    #[test]
    fn schema_lists_exactly_the_accepted_params() {
        let schema = schema();
        let properties = schema["properties"].as_object().expect("properties");
        let value_for = |name: &str| match properties[name]["type"].as_str() {
            Some("string") => json!("attachment:file.jsonl"),
            _ => json!(1),
        };
        // Every param at once, but the dataset and the token counts it
        // replaces, which exclude each other.
        for excluded in ["dataset", "expected_input_tokens"] {
            let params: serde_json::Map<String, Value> = properties
                .keys()
                .filter(|name| {
                    let counts = name.starts_with("expected_");
                    let dataset =
                        ["dataset", "outputs", "incumbent_outputs"].contains(&name.as_str());
                    if excluded == "dataset" {
                        !dataset
                    } else {
                        !counts
                    }
                })
                .map(|name| (name.clone(), value_for(name)))
                .collect();
            let parsed = parse::<Params>(&Value::Object(params).to_string());
            assert!(parsed.is_ok(), "{parsed:?}");
        }
        assert_eq!(schema["required"], json!(["max_cost_per_request"]));
    }

    #[test]
    fn dataset_and_stated_token_counts_exclude_each_other() {
        let err = parse::<Params>(
            r#"{"max_cost_per_request": 1, "dataset": "attachment:golden.jsonl", "expected_input_tokens": 800}"#,
        )
        .unwrap_err();
        assert_eq!(err.path, "expected_input_tokens");
        assert!(
            err.message
                .contains("`dataset` and `expected_input_tokens`"),
            "{err:?}"
        );
        let err = parse::<Params>(
            r#"{"max_cost_per_request": 1, "outputs": "attachment:outputs.jsonl"}"#,
        )
        .unwrap_err();
        assert_eq!(err.path, "outputs");
        assert!(err.message.contains("needs `dataset`"), "{err:?}");
    }

    #[test]
    fn sources_must_be_attachments_or_absolute_paths() {
        let err =
            parse::<Params>(r#"{"max_cost_per_request": 1, "pricing_table": "pricing.json"}"#)
                .unwrap_err();
        assert_eq!(err.path, "pricing_table");
        assert!(err.message.contains("not a data source"), "{err:?}");
        let path =
            parse::<Params>(r#"{"max_cost_per_request": 1, "dataset": "/golden/triage.jsonl"}"#);
        assert_eq!(path.is_ok(), READS_GRANTED_DIRECTORIES, "{path:?}");
        if let Err(err) = path {
            assert_eq!(err.path, "dataset");
            assert!(err.message.contains("--features files"), "{err:?}");
        }
    }
}
