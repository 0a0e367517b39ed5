//! The gate's params: budgets and traffic assumptions, checked before judging.

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
}

fn default_input_tokens() -> u64 {
    DEFAULT_INPUT_TOKENS
}

impl Params {
    /// Parses and checks params; the error names the param and the fix.
    pub fn parse(json: &str) -> Result<Self, String> {
        let params: Self = gatehouse_plugin_sdk::parse_params(json)?;
        params.check()?;
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
        Ok(())
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
            }
        },
        "dependentRequired": { "max_monthly_cost": ["requests_per_month"] }
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
        let every_param: serde_json::Map<String, Value> = properties
            .keys()
            .map(|name| (name.clone(), json!(1)))
            .collect();
        let parsed = Params::parse(&Value::Object(every_param).to_string());
        assert!(parsed.is_ok(), "{parsed:?}");
        assert_eq!(schema["required"], json!(["max_cost_per_request"]));
    }
}
