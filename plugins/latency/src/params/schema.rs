//! The JSON Schema of the gate's params, reported by `describe`, so that
//! `gatehouse plugin describe` and the plugins API show a pipeline author
//! what the gate accepts without reading its source.
//!
//! Rules: the schema lists exactly the fields [`Params`](super::Params)
//! accepts, with the defaults serde fills in, so the two never disagree
//! about a pipeline file. It informs, it does not judge: `check` still
//! judges every value, including what the schema cannot say (at most one
//! of `samples` and `live`).

use serde_json::{Value, json};

use super::{
    DEFAULT_ALPHA, DEFAULT_CONFIDENCE, DEFAULT_INCUMBENT_SAMPLES, DEFAULT_MAX_HTTP_ERRORS,
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_REQUESTS, DEFAULT_SAMPLES, MAX_IN_FLIGHT_LIMIT, MAX_REQUESTS,
};
use crate::percentile::Percentile;

/// JSON Schema of [`Params`](super::Params), reported by `describe`.
pub fn schema() -> Value {
    let source = |what: &str, default: Option<&str>| {
        let mut property = json!({
            "description": format!("{what}: `attachment:NAME`, `incumbent-attachment:NAME` or an absolute path in a granted data directory. JSON lines with `latency_ms` (or bare numbers), or one JSON array of numbers."),
            "type": "string",
            "minLength": 1
        });
        if let Some(default) = default {
            property["default"] = json!(default);
        }
        property
    };
    let slo = |p: Percentile| json!({ "description": format!("SLO of the {} latency, in milliseconds.", p.name()), "type": "number", "exclusiveMinimum": 0 });
    let pct = json!({ "type": "number", "minimum": 0 });
    let mut samples = source("The candidate's latency samples; unused with `live`", None);
    samples["examples"] = json!([DEFAULT_SAMPLES]);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "latency params",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "samples": samples,
            "incumbent_samples": source("The incumbent's latency samples, for the comparison", Some(DEFAULT_INCUMBENT_SAMPLES)),
            "live": {
                "description": "Time requests to the candidate's endpoint instead of reading samples; needs the `live` build and `http` and `clock` grants.",
                "type": "object",
                "additionalProperties": false,
                "required": ["base_url"],
                "properties": {
                    "base_url": { "description": "URL requested as is.", "type": "string", "pattern": "^https?://" },
                    "method": { "enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"], "default": "GET" },
                    "headers": { "description": "Request headers, e.g. an API key.", "type": "object", "additionalProperties": { "type": "string" } },
                    "body": { "description": "JSON body, sent with content-type application/json." },
                    "requests": { "description": "Requests to time.", "type": "integer", "minimum": 1, "maximum": MAX_REQUESTS, "default": DEFAULT_REQUESTS },
                    "max_in_flight": { "description": "Requests in flight at once; above 1 each is timed as the slowest of its wave (an upper bound).", "type": "integer", "minimum": 1, "maximum": MAX_IN_FLIGHT_LIMIT, "default": DEFAULT_MAX_IN_FLIGHT },
                    "max_http_errors": { "description": "Share of failed requests above which the verdict is inconclusive.", "type": "number", "minimum": 0, "maximum": 1, "default": DEFAULT_MAX_HTTP_ERRORS }
                }
            },
            "p50_ms": slo(Percentile::P50),
            "p95_ms": slo(Percentile::P95),
            "p99_ms": slo(Percentile::P99),
            "confidence": { "description": "Confidence of each percentile's distribution-free interval.", "type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "default": DEFAULT_CONFIDENCE },
            "max_regression_pct": {
                "description": "Largest rise over the incumbent's percentile, in percent: one number for all, or per percentile.",
                "oneOf": [
                    pct,
                    { "type": "object", "additionalProperties": false, "properties": { "p50": pct, "p95": pct, "p99": pct } }
                ]
            },
            "alpha": { "description": "Significance level of the one-sided Mann-Whitney test a regression needs.", "type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5, "default": DEFAULT_ALPHA },
            "when_uncertain": { "description": "Outcome when a percentile meets its SLO but its interval reaches past it.", "enum": ["inconclusive", "warn"], "default": "inconclusive" }
        },
        "anyOf": [
            { "required": ["p50_ms"] }, { "required": ["p95_ms"] }, { "required": ["p99_ms"] }, { "required": ["max_regression_pct"] }
        ]
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
                "samples" | "incumbent_samples" => json!("attachment:x.jsonl"),
                "live" => continue,
                "p50_ms" | "p95_ms" | "p99_ms" => json!(500),
                "confidence" => json!(0.9),
                "max_regression_pct" => json!({"p99": 20}),
                "alpha" => json!(0.05),
                "when_uncertain" => json!("warn"),
                other => panic!("schema has a param {other} this test does not know"),
            };
            every_param.insert(name.clone(), value);
        }
        let parsed =
            gatehouse_plugin_sdk::params::parse::<Params>(&Value::Object(every_param).to_string());
        assert!(parsed.is_ok(), "{parsed:?}");
        let live = &schema["properties"]["live"]["properties"];
        assert_eq!(live.as_object().map(|o| o.len()), Some(7));
    }
}
