//! The JSON Schema of the gate's params, reported by `describe`, so that
//! `gatehouse plugin describe` and the plugins API show a pipeline author
//! what the gate accepts without reading its source.
//!
//! Rules: the schema lists exactly the fields [`Params`](super::Params)
//! accepts, with the defaults serde fills in, so the two never disagree
//! about a pipeline file. It informs, it does not judge: `check` still
//! judges every value, including what the schema cannot say (at most one
//! of `outputs` and `live`, a `schema` that compiles).

use serde_json::{Value, json};

use super::{
    DEFAULT_ALPHA, DEFAULT_INCUMBENT_OUTPUTS, DEFAULT_MAX_HTTP_ERRORS, DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_MISSING, DEFAULT_OUTPUTS, DEFAULT_REL_TOL, DEFAULT_RESAMPLES, DEFAULT_SEED,
    MAX_IN_FLIGHT_LIMIT,
};

/// JSON Schema of [`Params`](super::Params), reported by `describe`.
pub fn schema() -> Value {
    let source = |what: &str| {
        json!({
            "description": format!("{what}: `attachment:NAME`, `incumbent-attachment:NAME` or an absolute path in a granted data directory."),
            "type": "string",
            "minLength": 1
        })
    };
    let share = |what: &str, default: Option<f64>| {
        let mut property =
            json!({ "description": what, "type": "number", "minimum": 0, "maximum": 1 });
        if let Some(default) = default {
            property["default"] = json!(default);
        }
        property
    };
    let mut dataset = source("JSON lines of golden cases");
    dataset["examples"] = json!(["attachment:golden.jsonl", "/golden/triage.jsonl"]);
    let mut outputs = source("JSON lines of the candidate's outputs; unused with `live`");
    outputs["default"] = json!(DEFAULT_OUTPUTS);
    let mut incumbent = source(
        "JSON lines of the incumbent's outputs; when present, the gate tests for a regression",
    );
    incumbent["default"] = json!(DEFAULT_INCUMBENT_OUTPUTS);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "golden-eval params",
        "type": "object",
        "additionalProperties": false,
        "required": ["dataset", "threshold"],
        "properties": {
            "dataset": dataset,
            "threshold": share("Least pass rate (or mean score, see metric) that passes.", None),
            "outputs": outputs,
            "live": {
                "description": "Ask the candidate's model (OpenAI-compatible chat completions) for every case instead of reading outputs; needs the `live` build and an `http` grant.",
                "type": "object",
                "additionalProperties": false,
                "required": ["base_url"],
                "properties": {
                    "base_url": { "description": "API root; the gate posts to {base_url}/v1/chat/completions.", "type": "string", "pattern": "^https?://" },
                    "max_in_flight": { "description": "Requests in flight at once.", "type": "integer", "minimum": 1, "maximum": MAX_IN_FLIGHT_LIMIT, "default": DEFAULT_MAX_IN_FLIGHT },
                    "headers": { "description": "Extra request headers, e.g. an API key.", "type": "object", "additionalProperties": { "type": "string" } }
                }
            },
            "scorer": {
                "description": "Scorer of cases that name none.",
                "enum": ["exact", "normalized", "token_f1", "regex", "json_schema", "numeric"],
                "default": "exact"
            },
            "metric": {
                "description": "What threshold is compared with, and the verdict's score.",
                "enum": ["pass_rate", "mean_score"],
                "default": "pass_rate"
            },
            "case_pass": share("Score a case needs to pass; default 1.0, or 0.5 for token_f1.", None),
            "schema": { "description": "JSON Schema for json_schema cases whose expected is not a schema.", "type": ["object", "boolean"] },
            "abs_tol": { "description": "Absolute tolerance of the numeric scorer.", "type": "number", "minimum": 0, "default": 0 },
            "rel_tol": { "description": "Relative tolerance of the numeric scorer.", "type": "number", "minimum": 0, "default": DEFAULT_REL_TOL },
            "incumbent_outputs": incumbent,
            "alpha": { "description": "Significance level of the one-sided regression tests.", "type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5, "default": DEFAULT_ALPHA },
            "bootstrap_resamples": { "description": "Paired bootstrap resamples.", "type": "integer", "minimum": 100, "default": DEFAULT_RESAMPLES },
            "seed": { "description": "Paired bootstrap seed.", "type": "integer", "minimum": 0, "default": DEFAULT_SEED },
            "max_missing": share("Share of cases without an output above which the verdict is inconclusive.", Some(DEFAULT_MAX_MISSING)),
            "max_http_errors": share("Share of failed live requests above which the verdict is inconclusive.", Some(DEFAULT_MAX_HTTP_ERRORS))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;

    #[test]
    fn schema_lists_exactly_the_accepted_params() {
        let schema = schema();
        let properties = schema["properties"].as_object().expect("properties");
        let mut every_param = serde_json::Map::new();
        for name in properties.keys() {
            let value = match name.as_str() {
                "dataset" | "outputs" | "incumbent_outputs" => json!("attachment:x.jsonl"),
                "live" | "schema" => continue,
                "scorer" => json!("token_f1"),
                "metric" => json!("mean_score"),
                "alpha" => json!(0.01),
                "bootstrap_resamples" => json!(500),
                "seed" => json!(7),
                _ => json!(0.5),
            };
            every_param.insert(name.clone(), value);
        }
        let parsed =
            gatehouse_plugin_sdk::params::parse::<Params>(&Value::Object(every_param).to_string());
        assert!(parsed.is_ok(), "{parsed:?}");
        assert_eq!(schema["required"], json!(["dataset", "threshold"]));
        let live = &schema["properties"]["live"]["properties"];
        assert_eq!(live.as_object().map(|o| o.len()), Some(3));
    }
}
