//! A configuration's cost per request, as the judge weighs it: the mean and
//! the 95th percentile over its requests, with the figures behind them.
//!
//! With a golden dataset each case is one request, so the mean is what an
//! average request costs and the 95th percentile (nearest rank: the smallest
//! cost at least 95% of the cases do not exceed) what a long one does.
//! Without one there is a single request, stated by the params, and both are
//! its cost.

use crate::estimate::{Estimate, OutputTokens, table_note, usd};
use crate::pricing::Price;
use crate::tokenizer::Tokenizer;
use crate::usage::{Tokens, Usage};

/// The cost figures of one configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Cost {
    /// USD per request, on average.
    pub mean: f64,
    /// USD per request, 95th percentile.
    pub p95: f64,
    pub input_tokens_mean: f64,
    pub input_tokens_p95: f64,
    pub output_tokens_mean: f64,
    pub output_tokens_p95: f64,
    /// How the figures were reached, for the reason.
    pub breakdown: String,
    /// What to change when the cost is over budget.
    pub advice: &'static str,
    /// The tokenizer that counted, when one did.
    pub tokenizer: Option<Tokenizer>,
    /// Things a reader should know: a price the table overrode.
    pub notes: Vec<String>,
}

impl Cost {
    /// The cost of the single request the params describe.
    pub fn of_estimate(estimate: &Estimate) -> Self {
        let cost = estimate.cost();
        Self {
            mean: cost,
            p95: cost,
            input_tokens_mean: estimate.input_tokens as f64,
            input_tokens_p95: estimate.input_tokens as f64,
            output_tokens_mean: estimate.output_tokens as f64,
            output_tokens_p95: estimate.output_tokens as f64,
            breakdown: estimate.breakdown(),
            advice: match estimate.output_tokens_from {
                OutputTokens::MaxTokens => {
                    "lower parameters.max_tokens, choose a cheaper model, or raise max_cost_per_request"
                }
                OutputTokens::Expected => "choose a cheaper model or raise max_cost_per_request",
            },
            tokenizer: None,
            notes: estimate.price_note.iter().cloned().collect(),
        }
    }

    /// The cost of `usage`'s requests at `price`.
    pub fn of_usage(usage: &Usage, price: &Price) -> Self {
        let cost = |t: &Tokens| {
            t.input as f64 / 1000.0 * price.input_per_1k
                + t.output as f64 / 1000.0 * price.output_per_1k
        };
        let costs: Vec<f64> = usage.requests.iter().map(cost).collect();
        let inputs: Vec<f64> = usage.requests.iter().map(|t| t.input as f64).collect();
        let outputs: Vec<f64> = usage.requests.iter().map(|t| t.output as f64).collect();
        let (input_mean, input_p95) = (mean(&inputs), p95(&inputs));
        let (output_mean, output_p95) = (mean(&outputs), p95(&outputs));
        let breakdown = format!(
            "mean over {} cases of {input_mean:.1} input tokens (p95 {input_p95}) at {}/1k and {output_mean:.1} output tokens (p95 {output_p95}) at {}/1k{}; {}; {}",
            usage.requests.len(),
            usd(price.input_per_1k),
            usd(price.output_per_1k),
            table_note(price.table_key.as_deref()),
            usage.outputs.describe(),
            usage.tokenizer.describe(),
        );
        Self {
            mean: mean(&costs),
            p95: p95(&costs),
            input_tokens_mean: input_mean,
            input_tokens_p95: input_p95,
            output_tokens_mean: output_mean,
            output_tokens_p95: output_p95,
            breakdown,
            advice: "shorten the prompt template, choose a cheaper model, or raise max_cost_per_request",
            tokenizer: Some(usage.tokenizer),
            notes: price.disagreement.iter().cloned().collect(),
        }
    }
}

/// Arithmetic mean; 0 for no values.
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// 95th percentile by nearest rank: the value at rank ⌈0.95·n⌉ of the
/// sorted values; 0 for no values.
pub fn p95(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (sorted.len() * 95).div_ceil(100);
    rank.checked_sub(1)
        .and_then(|i| sorted.get(i))
        .copied()
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::OutputSources;

    #[test]
    fn p95_is_the_nearest_rank() {
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(p95(&hundred), 95.0);
        let twenty: Vec<f64> = (1..=20).rev().map(f64::from).collect();
        assert_eq!(p95(&twenty), 19.0);
        assert_eq!(p95(&[7.0]), 7.0);
        assert_eq!(p95(&[]), 0.0);
        assert_eq!(mean(&[1.0, 2.0, 6.0]), 3.0);
    }

    #[test]
    fn dataset_cost_is_mean_and_p95_over_cases() {
        let usage = Usage {
            requests: (1..=20)
                .map(|i| Tokens {
                    input: 1000 * i,
                    output: 0,
                })
                .collect(),
            tokenizer: Tokenizer::Approximate,
            outputs: OutputSources {
                reported: 0,
                counted: 0,
                expected: 20,
            },
        };
        let price = Price {
            input_per_1k: 0.001,
            output_per_1k: 1.0,
            table_key: Some("m*".into()),
            disagreement: None,
        };
        let cost = Cost::of_usage(&usage, &price);
        assert!((cost.mean - 0.0105).abs() < 1e-12);
        assert!((cost.p95 - 0.019).abs() < 1e-12);
        assert_eq!(cost.input_tokens_p95, 19000.0);
        assert_eq!(cost.tokenizer, Some(Tokenizer::Approximate));
        assert!(
            cost.breakdown
                .starts_with("mean over 20 cases of 10500.0 input tokens (p95 19000)"),
            "{}",
            cost.breakdown
        );
        assert!(
            cost.breakdown.contains("pricing table's \"m*\""),
            "{}",
            cost.breakdown
        );
        assert!(
            cost.breakdown.contains("characters / 4"),
            "{}",
            cost.breakdown
        );
    }
}
