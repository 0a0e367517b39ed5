//! The gate's params: budgets, traffic, and where token counts and prices
//! come from, checked before judging.
//!
//! Data sources (`dataset`, `outputs`, `incumbent_outputs`, `pricing_table`)
//! are `attachment:NAME`, `incumbent-attachment:NAME`, or an absolute path in
//! a directory the manifest grants. Attachments need no grant. Paths need
//! the `files` capability, which the gate asks for only when built with the
//! `files` feature: the daemon embeds the default build, which must run
//! without a manifest.

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
    /// Prompt tokens per request (template plus input).
    #[serde(default = "default_input_tokens")]
    pub expected_input_tokens: u64,
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

fn default_input_tokens() -> u64 {
    DEFAULT_INPUT_TOKENS
}

impl Params {
    /// Parses and checks params; the error names the param and the fix.
    pub fn parse(json: &str) -> Result<Self, String> {
        let params: Self = gatehouse_plugin_sdk::parse_params(json)?;
        params.check()?;
        // `expected_input_tokens` has a default, so only the raw params tell
        // whether the pipeline set it alongside a dataset.
        let raw: Value = gatehouse_plugin_sdk::parse_params(json)?;
        if params.dataset.is_some() {
            for name in ["expected_input_tokens", "expected_output_tokens"] {
                if raw.get(name).is_some() {
                    return Err(format!(
                        "gate params set both `dataset` and `{name}`; the dataset gives the token counts, so remove `{name}`"
                    ));
                }
            }
        }
        Ok(params)
    }

    fn check(&self) -> Result<(), String> {
        if !(self.max_cost_per_request.is_finite() && self.max_cost_per_request > 0.0) {
            return Err(format!(
                "invalid gate param `max_cost_per_request`: {} is not a positive number of USD; set the most one request may cost, e.g. 0.01",
                self.max_cost_per_request
            ));
        }
        if let Some(max) = self.max_monthly_cost {
            if !(max.is_finite() && max > 0.0) {
                return Err(format!(
                    "invalid gate param `max_monthly_cost`: {max} is not a positive number of USD; set the most a month may cost, or remove it"
                ));
            }
            if self.requests_per_month.is_none() {
                return Err(
                    "gate param `max_monthly_cost` needs `requests_per_month` to estimate the month; add `requests_per_month` or remove `max_monthly_cost`"
                        .to_owned(),
                );
            }
        }
        if let Some(pct) = self.max_increase_pct
            && !(pct.is_finite() && pct >= 0.0)
        {
            return Err(format!(
                "invalid gate param `max_increase_pct`: {pct} is not a percentage of 0 or more; set how far the cost per request may rise against the incumbent, e.g. 20"
            ));
        }
        for (name, source) in [
            ("outputs", &self.outputs),
            ("incumbent_outputs", &self.incumbent_outputs),
        ] {
            if source.is_some() && self.dataset.is_none() {
                return Err(format!(
                    "gate param `{name}` needs `dataset`, the cases the outputs answer; add `dataset` or remove `{name}`"
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
                check_source(name, source)?;
            }
        }
        Ok(())
    }
}

/// Whether this build asks the host for data directories.
pub const READS_GRANTED_DIRECTORIES: bool = cfg!(feature = "files");

fn check_source(name: &str, source: &str) -> Result<(), String> {
    if source.starts_with("attachment:") || source.starts_with("incumbent-attachment:") {
        Ok(())
    } else if source.starts_with('/') {
        if READS_GRANTED_DIRECTORIES {
            Ok(())
        } else {
            Err(format!(
                "gate param `{name}` is the path {source:?}, but this build of cost-estimator does not ask for data directories; attach the file and write `attachment:NAME`, or push a build with `--features files` and a manifest granting the directory"
            ))
        }
    } else {
        Err(format!(
            "gate param `{name}` is {source:?}, not a data source; write `attachment:NAME`, `incumbent-attachment:NAME` or an absolute path in a granted directory"
        ))
    }
}

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

    #[test]
    fn only_the_budget_is_required() {
        let params = Params::parse(r#"{"max_cost_per_request": 0.01}"#).expect("valid params");
        assert_eq!(params.expected_input_tokens, DEFAULT_INPUT_TOKENS);
        assert_eq!(params.expected_output_tokens, None);
        assert_eq!(params.max_increase_pct, None);
    }

    #[test]
    fn missing_budget_is_named() {
        let err = Params::parse("{}").unwrap_err();
        assert!(err.contains("max_cost_per_request"), "{err}");
    }

    #[test]
    fn misspelt_param_is_rejected_by_name() {
        let err =
            Params::parse(r#"{"max_cost_per_request": 0.01, "requests_per_day": 5}"#).unwrap_err();
        assert!(err.contains("`requests_per_day`"), "{err}");
    }

    #[test]
    fn negative_budget_says_what_to_set() {
        let err = Params::parse(r#"{"max_cost_per_request": -1}"#).unwrap_err();
        assert!(err.contains("`max_cost_per_request`"), "{err}");
        assert!(err.contains("positive"), "{err}");
    }

    #[test]
    fn monthly_budget_without_traffic_is_rejected() {
        let err = Params::parse(r#"{"max_cost_per_request": 0.01, "max_monthly_cost": 100}"#)
            .unwrap_err();
        assert!(err.contains("needs `requests_per_month`"), "{err}");
    }

    #[test]
    fn negative_increase_limit_is_rejected() {
        let err =
            Params::parse(r#"{"max_cost_per_request": 0.01, "max_increase_pct": -5}"#).unwrap_err();
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
            let parsed = Params::parse(&Value::Object(params).to_string());
            assert!(parsed.is_ok(), "{parsed:?}");
        }
        assert_eq!(schema["required"], json!(["max_cost_per_request"]));
    }

    #[test]
    fn dataset_and_stated_token_counts_exclude_each_other() {
        let err = Params::parse(
            r#"{"max_cost_per_request": 1, "dataset": "attachment:golden.jsonl", "expected_input_tokens": 800}"#,
        )
        .unwrap_err();
        assert!(
            err.contains("`dataset` and `expected_input_tokens`"),
            "{err}"
        );
        let err =
            Params::parse(r#"{"max_cost_per_request": 1, "outputs": "attachment:outputs.jsonl"}"#)
                .unwrap_err();
        assert!(err.contains("`outputs` needs `dataset`"), "{err}");
    }

    #[test]
    fn sources_must_be_attachments_or_absolute_paths() {
        let err = Params::parse(r#"{"max_cost_per_request": 1, "pricing_table": "pricing.json"}"#)
            .unwrap_err();
        assert!(err.contains("not a data source"), "{err}");
        let path =
            Params::parse(r#"{"max_cost_per_request": 1, "dataset": "/golden/triage.jsonl"}"#);
        assert_eq!(path.is_ok(), READS_GRANTED_DIRECTORIES, "{path:?}");
        if let Err(err) = path {
            assert!(err.contains("--features files"), "{err}");
        }
    }
}
