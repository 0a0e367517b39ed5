//! Holds a candidate's estimate to the budgets and to the incumbent.
//!
//! Every broken budget goes into the reason, not just the first, each with the
//! figures behind it and what to change. The score is the tightest
//! `limit / estimate` over the budgets, capped at 1: 1.0 within every budget,
//! 0.5 at twice a budget. Budgets hold the mean cost per request (what the
//! month adds up to); the 95th percentile is measured alongside. The
//! incumbent is priced the same way on the same cases, each configuration
//! with its own tokenizer and prices.

use std::collections::BTreeMap;

use gatehouse_plugin_sdk::Verdict;
use gatehouse_plugin_sdk::golden::{Case, Output};
use serde_json::Value;

use crate::cost::Cost;
use crate::estimate::{check_object, estimate_with, usd};
use crate::params::Params;
use crate::pricing::{self, PricingTable};
use crate::usage::usage;

/// What the gate read from its data sources before judging.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Data {
    /// The golden dataset; without it the params state the token counts.
    pub cases: Option<Vec<Case>>,
    /// The candidate's outputs on the dataset, by case id.
    pub outputs: Option<BTreeMap<String, Output>>,
    /// The incumbent's outputs on the dataset, by case id.
    pub incumbent_outputs: Option<BTreeMap<String, Output>>,
    pub pricing_table: Option<PricingTable>,
}

/// Judges `candidate` from the params alone; `incumbent` is what is live
/// now, parsed or not.
pub fn judge(
    params: &Params,
    candidate: &Value,
    incumbent: Option<Result<Value, String>>,
) -> Verdict {
    judge_with(params, &Data::default(), candidate, incumbent)
}

/// Judges `candidate` with what the gate read from its data sources.
pub fn judge_with(
    params: &Params,
    data: &Data,
    candidate: &Value,
    incumbent: Option<Result<Value, String>>,
) -> Verdict {
    let cost = match cost_of(candidate, params, data, data.outputs.as_ref(), "candidate") {
        Ok(cost) => cost,
        Err(problem) => return Verdict::fail(problem).with_score(0.0),
    };
    let mut failures = Vec::new();
    let mut warnings = Vec::new();
    let mut score = ratio(params.max_cost_per_request, cost.mean);
    let mut measurements = vec![
        ("cost_per_request", cost.mean, "usd"),
        ("cost_per_request_p95", cost.p95, "usd"),
        ("input_tokens_mean", cost.input_tokens_mean, "tokens"),
        ("input_tokens_p95", cost.input_tokens_p95, "tokens"),
        ("output_tokens_mean", cost.output_tokens_mean, "tokens"),
        ("output_tokens_p95", cost.output_tokens_p95, "tokens"),
    ];
    if let Some(tokenizer) = cost.tokenizer {
        // A measurement carries a number: 1 for an exact count, 0 for an
        // approximation, with the tokenizer's name as the unit.
        let exact = if tokenizer.is_exact() { 1.0 } else { 0.0 };
        measurements.push(("tokenizer", exact, tokenizer.name()));
    }

    if cost.mean > params.max_cost_per_request {
        failures.push(over_budget(&cost, params.max_cost_per_request));
    }

    let monthly = params.requests_per_month.map(|requests| {
        let monthly = cost.mean * requests as f64;
        measurements.push(("monthly_cost", monthly, "usd"));
        (requests, monthly)
    });
    if let (Some((requests, monthly)), Some(limit)) = (monthly, params.max_monthly_cost) {
        score = score.min(ratio(limit, monthly));
        if monthly > limit {
            failures.push(format!(
                "estimated {} per month at {requests} requests exceeds max_monthly_cost of {}; lower the cost per request or raise max_monthly_cost",
                usd(monthly),
                usd(limit)
            ));
        }
    }

    let incumbent = incumbent.map(|parsed| {
        parsed.and_then(|v| {
            cost_of(
                &v,
                params,
                data,
                data.incumbent_outputs.as_ref(),
                "incumbent",
            )
            .map(|c| c.mean)
        })
    });
    match (incumbent, params.max_increase_pct) {
        (Some(Ok(previous)), limit) => {
            measurements.push(("incumbent_cost_per_request", previous, "usd"));
            let change = change_pct(previous, cost.mean);
            if let Some(change) = change {
                measurements.push(("cost_change_pct", change, "percent"));
            }
            if let Some(limit) = limit
                && change.is_none_or(|change| change > limit)
            {
                failures.push(format!(
                    "estimated cost per request rises from {} (incumbent) to {}, more than max_increase_pct of {limit}%; bring the cost down or raise max_increase_pct",
                    usd(previous),
                    usd(cost.mean)
                ));
            }
        }
        (Some(Err(problem)), Some(_)) => warnings.push(format!(
            "cost increase not checked, the incumbent cannot be priced: {problem}"
        )),
        _ => {}
    }

    let mut verdict = if !failures.is_empty() {
        let mut reason = failures.join("; ");
        // Counted figures always say how they were counted; the over-budget
        // failure already does.
        if cost.tokenizer.is_some() && cost.mean <= params.max_cost_per_request {
            reason.push_str(&format!("; candidate: {}", cost.breakdown));
        }
        Verdict::fail(reason)
    } else if !warnings.is_empty() {
        Verdict::warn(format!(
            "{}; {}",
            within_budget(&cost, params, monthly),
            warnings.join("; ")
        ))
    } else {
        Verdict::pass(within_budget(&cost, params, monthly))
    };
    for note in &cost.notes {
        verdict.reason.push_str(&format!("; note: {note}"));
    }
    measurements
        .into_iter()
        .fold(verdict.with_score(score), |v, (name, value, unit)| {
            v.with_measurement(name, value, unit)
        })
}

/// The cost of `config` (the `role`) with the dataset when there is one,
/// else with the token counts the params state.
pub fn cost_of(
    config: &Value,
    params: &Params,
    data: &Data,
    outputs: Option<&BTreeMap<String, Output>>,
    role: &str,
) -> Result<Cost, String> {
    let table = data.pricing_table.as_ref();
    match &data.cases {
        None => estimate_with(config, params, table, role).map(|e| Cost::of_estimate(&e)),
        Some(cases) => {
            check_object(config, role)?;
            let price = pricing::price(config, table, role)?;
            let usage = usage(config, cases, outputs, role)?;
            Ok(Cost::of_usage(&usage, &price))
        }
    }
}

/// `limit / actual`, capped at 1; free is always within budget.
fn ratio(limit: f64, actual: f64) -> f64 {
    if actual <= 0.0 {
        1.0
    } else {
        (limit / actual).min(1.0)
    }
}

/// Percent change from `previous` to `now`; none when `previous` is free and
/// `now` is not, since any increase from nothing is unbounded.
fn change_pct(previous: f64, now: f64) -> Option<f64> {
    if previous > 0.0 {
        Some((now - previous) / previous * 100.0)
    } else if now <= 0.0 {
        Some(0.0)
    } else {
        None
    }
}

fn over_budget(cost: &Cost, budget: f64) -> String {
    format!(
        "estimated {} per request exceeds the budget of {}: {}; {}",
        usd(cost.mean),
        usd(budget),
        cost.breakdown,
        cost.advice
    )
}

fn within_budget(cost: &Cost, params: &Params, monthly: Option<(u64, f64)>) -> String {
    let mut reason = format!("estimated {} per request", usd(cost.mean));
    if cost.tokenizer.is_some() {
        reason.push_str(&format!(" (p95 {})", usd(cost.p95)));
    }
    reason.push_str(&format!(
        ", within the budget of {}",
        usd(params.max_cost_per_request)
    ));
    if let Some((requests, monthly)) = monthly {
        reason.push_str(&format!(
            "; {} per month at {requests} requests",
            usd(monthly)
        ));
    }
    // Counted figures say how they were counted; stated ones came from
    // the params, which the reader wrote.
    if cost.tokenizer.is_some() {
        reason.push_str(&format!("; {}", cost.breakdown));
    }
    reason
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use gatehouse_plugin_sdk::Outcome;

    fn params(json: &str) -> Params {
        gatehouse_plugin_sdk::params::parse::<Params>(json).expect("valid params")
    }

    fn config(max_tokens: u64, input_price: f64, output_price: f64) -> Value {
        json!({
            "model": "m",
            "prompt_template": "Classify this ticket: {{input}}",
            "parameters": { "temperature": 0.2, "max_tokens": max_tokens },
            "pricing": { "input_per_1k_tokens": input_price, "output_per_1k_tokens": output_price }
        })
    }

    #[test]
    fn cheap_candidate_passes_with_cost_measured() {
        let verdict = judge(
            &params(r#"{"max_cost_per_request": 0.01}"#),
            &config(256, 0.00015, 0.0006),
            None,
        );
        assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.reason);
        assert_eq!(verdict.score, 1.0);
        let cost = verdict
            .measurement("cost_per_request")
            .expect("cost measured");
        assert!((cost - (0.5 * 0.00015 + 0.256 * 0.0006)).abs() < 1e-12);
        assert!(
            verdict.reason.contains("within the budget of $0.0100"),
            "{}",
            verdict.reason
        );
    }

    #[test]
    fn over_budget_candidate_fails_with_reason() {
        let verdict = judge(
            &params(r#"{"max_cost_per_request": 0.01}"#),
            &config(4096, 0.0025, 0.003),
            None,
        );
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert_eq!(
            verdict.reason,
            "estimated $0.0135 per request exceeds the budget of $0.0100: 500 input tokens at \
             $0.00250/1k and 4096 output tokens (parameters.max_tokens) at $0.00300/1k; lower \
             parameters.max_tokens, choose a cheaper model, or raise max_cost_per_request"
        );
        assert!((verdict.score - 0.01 / 0.013538).abs() < 1e-6);
    }

    #[test]
    fn missing_pricing_fails_naming_the_field() {
        let verdict = judge(
            &params(r#"{"max_cost_per_request": 0.01}"#),
            &json!({ "model": "m", "parameters": { "max_tokens": 10 } }),
            None,
        );
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert_eq!(verdict.score, 0.0);
        assert!(
            verdict.reason.contains("pricing.input_per_1k_tokens"),
            "{}",
            verdict.reason
        );
    }

    #[test]
    fn monthly_cost_is_measured_and_held_to_its_budget() {
        let p = params(
            r#"{"max_cost_per_request": 0.01, "expected_input_tokens": 800,
                "requests_per_month": 1000000, "max_monthly_cost": 100}"#,
        );
        let verdict = judge(&p, &config(16, 0.00015, 0.0006), None);
        let monthly = verdict
            .measurement("monthly_cost")
            .expect("monthly measured");
        assert!((monthly - 129.6).abs() < 1e-6);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict
                .reason
                .contains("exceeds max_monthly_cost of $100.00"),
            "{}",
            verdict.reason
        );
        assert!((verdict.score - 100.0 / 129.6).abs() < 1e-9);
    }

    #[test]
    fn every_broken_budget_is_reported() {
        let p = params(
            r#"{"max_cost_per_request": 0.001, "requests_per_month": 1000, "max_monthly_cost": 1}"#,
        );
        let verdict = judge(&p, &config(2048, 0.06, 0.12), None);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict.reason.contains("per request exceeds the budget"),
            "{}",
            verdict.reason
        );
        assert!(verdict.reason.contains("per month"), "{}", verdict.reason);
    }

    #[test]
    fn cost_rise_beyond_limit_fails_against_incumbent() {
        let p = params(r#"{"max_cost_per_request": 1, "max_increase_pct": 50}"#);
        let verdict = judge(
            &p,
            &config(100, 0.002, 0.002),
            Some(Ok(config(100, 0.001, 0.001))),
        );
        assert_eq!(verdict.outcome, Outcome::Fail);
        let change = verdict
            .measurement("cost_change_pct")
            .expect("change measured");
        assert!((change - 100.0).abs() < 1e-9);
        assert!(verdict.measurement("incumbent_cost_per_request").is_some());
        assert!(
            verdict.reason.contains("more than max_increase_pct of 50%"),
            "{}",
            verdict.reason
        );
    }

    #[test]
    fn cost_drop_passes_against_incumbent() {
        let p = params(r#"{"max_cost_per_request": 1, "max_increase_pct": 0}"#);
        let verdict = judge(
            &p,
            &config(100, 0.001, 0.001),
            Some(Ok(config(100, 0.002, 0.002))),
        );
        assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.reason);
        let change = verdict
            .measurement("cost_change_pct")
            .expect("change measured");
        assert!((change + 50.0).abs() < 1e-9);
    }

    #[test]
    fn unpriced_incumbent_warns_when_increase_is_limited() {
        let p = params(r#"{"max_cost_per_request": 1, "max_increase_pct": 10}"#);
        let verdict = judge(
            &p,
            &config(100, 0.001, 0.001),
            Some(Ok(json!({ "model": "old" }))),
        );
        assert_eq!(verdict.outcome, Outcome::Warn);
        assert!(
            verdict.reason.contains("incumbent cannot be priced"),
            "{}",
            verdict.reason
        );
        assert!(verdict.measurement("incumbent_cost_per_request").is_none());
    }

    #[test]
    fn unpriced_incumbent_is_ignored_without_increase_limit() {
        let p = params(r#"{"max_cost_per_request": 1}"#);
        let unreadable = Some(Err("candidate 0123 is not valid JSON".to_owned()));
        let verdict = judge(&p, &config(100, 0.001, 0.001), unreadable);
        assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.reason);
    }

    #[test]
    fn any_cost_after_a_free_incumbent_breaks_an_increase_limit() {
        let p = params(r#"{"max_cost_per_request": 1, "max_increase_pct": 1000}"#);
        let verdict = judge(
            &p,
            &config(100, 0.001, 0.001),
            Some(Ok(config(100, 0.0, 0.0))),
        );
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(verdict.measurement("cost_change_pct").is_none());
    }
}
