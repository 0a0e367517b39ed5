//! The cost of one request from token counts the pipeline states: the
//! `expected_input_tokens` and `expected_output_tokens` params, or else the
//! configuration's `parameters.max_tokens` (the worst case). Used when the
//! gate has no golden dataset to count on.

use gatehouse_plugin_sdk::json_kind;
use serde_json::Value;

use crate::params::Params;
use crate::pricing::{self, Price, PricingTable};

/// Where the output token count of an estimate came from; decides the advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputTokens {
    /// The `expected_output_tokens` param.
    Expected,
    /// The configuration's `parameters.max_tokens` (worst case).
    MaxTokens,
}

/// Token counts and prices for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub output_tokens_from: OutputTokens,
    /// USD per 1,000 input tokens.
    pub input_price: f64,
    /// USD per 1,000 output tokens.
    pub output_price: f64,
    /// The pricing table's key, when the table gave the prices.
    pub table_key: Option<String>,
    /// The configuration's own pricing disagreeing with the table's.
    pub price_note: Option<String>,
}

impl Estimate {
    /// Estimated USD for one request.
    pub fn cost(&self) -> f64 {
        self.input_tokens as f64 / 1000.0 * self.input_price
            + self.output_tokens as f64 / 1000.0 * self.output_price
    }

    /// "800 input tokens at $0.0600/1k and 2048 output tokens (parameters.max_tokens) at $0.120/1k".
    pub fn breakdown(&self) -> String {
        let source = match self.output_tokens_from {
            OutputTokens::Expected => "",
            OutputTokens::MaxTokens => " (parameters.max_tokens)",
        };
        format!(
            "{} input tokens at {}/1k and {} output tokens{source} at {}/1k{}",
            self.input_tokens,
            usd(self.input_price),
            self.output_tokens,
            usd(self.output_price),
            table_note(self.table_key.as_deref()),
        )
    }
}

/// " (prices from the pricing table's \"gpt-4o*\")", or nothing.
pub fn table_note(key: Option<&str>) -> String {
    key.map(|k| format!(" (prices from the pricing table's {k:?})"))
        .unwrap_or_default()
}

/// Reads the prices and token counts for `config`, the `role` ("candidate" or
/// "incumbent") naming it in messages. The error names the field to fix.
pub fn estimate(config: &Value, params: &Params, role: &str) -> Result<Estimate, String> {
    estimate_with(config, params, None, role)
}

/// [`estimate`], with prices from `table` when it lists the model.
pub fn estimate_with(
    config: &Value,
    params: &Params,
    table: Option<&PricingTable>,
    role: &str,
) -> Result<Estimate, String> {
    check_object(config, role)?;
    let Price {
        input_per_1k,
        output_per_1k,
        table_key,
        disagreement,
    } = pricing::price(config, table, role)?;
    let (output_tokens, output_tokens_from) = match params.expected_output_tokens {
        Some(tokens) => (tokens, OutputTokens::Expected),
        None => (max_tokens(config, role)?, OutputTokens::MaxTokens),
    };
    Ok(Estimate {
        input_tokens: params.input_tokens(),
        output_tokens,
        output_tokens_from,
        input_price: input_per_1k,
        output_price: output_per_1k,
        table_key,
        price_note: disagreement,
    })
}

/// A configuration must be a JSON object to be priced at all.
pub fn check_object(config: &Value, role: &str) -> Result<(), String> {
    if config.is_object() {
        Ok(())
    } else {
        Err(format!(
            "the {role} is {}, not a JSON object; submit the configuration as a JSON object",
            json_kind(config)
        ))
    }
}

fn max_tokens(config: &Value, role: &str) -> Result<u64, String> {
    match config.pointer("/parameters/max_tokens") {
        None | Some(Value::Null) => Err(format!(
            "cannot bound the output cost: the {role} sets no `parameters.max_tokens` and the gate's params set no `expected_output_tokens`; add either"
        )),
        Some(value) => value.as_u64().ok_or_else(|| {
            format!(
                "`parameters.max_tokens` in the {role} must be a whole number of tokens, found {value}; fix it or set `expected_output_tokens` in the gate's params"
            )
        }),
    }
}

/// Formats USD with three significant digits and at least cents:
/// `$0.0123`, `$0.000150`, `$1500.00`.
pub fn usd(amount: f64) -> String {
    if !amount.is_finite() || amount <= 0.0 {
        return format!("${amount:.2}");
    }
    // Truncation is intended: the decimal exponent of a finite, positive f64
    // lies well within i32.
    let exponent = amount.log10().floor() as i32;
    let decimals = (2 - exponent).clamp(2, 10) as usize;
    format!("${amount:.decimals$}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn params(json: &str) -> Params {
        gatehouse_plugin_sdk::params::parse::<Params>(json).expect("valid params")
    }

    fn triage() -> Value {
        json!({
            "model": "gpt-4o-mini",
            "parameters": { "temperature": 0.2, "max_tokens": 256 },
            "pricing": { "input_per_1k_tokens": 0.00015, "output_per_1k_tokens": 0.0006 }
        })
    }

    #[test]
    fn output_tokens_default_to_max_tokens() {
        let estimate = estimate(
            &triage(),
            &params(r#"{"max_cost_per_request": 1}"#),
            "candidate",
        )
        .expect("priced candidate");
        assert_eq!(estimate.input_tokens, 500);
        assert_eq!(estimate.output_tokens, 256);
        assert_eq!(estimate.output_tokens_from, OutputTokens::MaxTokens);
        let expected = 500.0 / 1000.0 * 0.00015 + 256.0 / 1000.0 * 0.0006;
        assert!((estimate.cost() - expected).abs() < 1e-12);
    }

    #[test]
    fn expected_output_tokens_override_max_tokens() {
        let p = params(r#"{"max_cost_per_request": 1, "expected_output_tokens": 10}"#);
        let estimate = estimate(&triage(), &p, "candidate").expect("priced candidate");
        assert_eq!(estimate.output_tokens, 10);
        assert_eq!(estimate.output_tokens_from, OutputTokens::Expected);
    }

    #[test]
    fn missing_pricing_names_the_field() {
        let p = params(r#"{"max_cost_per_request": 1}"#);
        let mut config = triage();
        config["pricing"]
            .as_object_mut()
            .expect("pricing object")
            .remove("output_per_1k_tokens");
        let err = estimate(&config, &p, "candidate").unwrap_err();
        assert!(err.contains("`pricing.output_per_1k_tokens`"), "{err}");

        let err = estimate(&json!({ "model": "m" }), &p, "candidate").unwrap_err();
        assert!(err.contains("has no `pricing`"), "{err}");
    }

    #[test]
    fn non_numeric_price_is_reported_with_its_type() {
        let mut config = triage();
        config["pricing"]["input_per_1k_tokens"] = json!("cheap");
        let err = estimate(
            &config,
            &params(r#"{"max_cost_per_request": 1}"#),
            "incumbent",
        )
        .unwrap_err();
        assert!(
            err.contains("`pricing.input_per_1k_tokens` in the incumbent"),
            "{err}"
        );
        assert!(err.contains("found a string"), "{err}");
    }

    #[test]
    fn unbounded_output_asks_for_max_tokens_or_param() {
        let mut config = triage();
        config["parameters"] = json!({});
        let err = estimate(
            &config,
            &params(r#"{"max_cost_per_request": 1}"#),
            "candidate",
        )
        .unwrap_err();
        assert!(err.contains("`parameters.max_tokens`"), "{err}");
        assert!(err.contains("`expected_output_tokens`"), "{err}");
    }

    #[test]
    fn non_object_configuration_is_rejected() {
        let err = estimate(
            &json!([1, 2]),
            &params(r#"{"max_cost_per_request": 1}"#),
            "candidate",
        )
        .unwrap_err();
        assert!(err.contains("is an array, not a JSON object"), "{err}");
    }

    #[test]
    fn usd_keeps_three_significant_digits() {
        assert_eq!(usd(0.0123), "$0.0123");
        assert_eq!(usd(0.01), "$0.0100");
        assert_eq!(usd(0.00015), "$0.000150");
        assert_eq!(usd(1500.0), "$1500.00");
        assert_eq!(usd(0.0), "$0.00");
    }
}
