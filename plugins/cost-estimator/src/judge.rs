//! Holds a candidate's estimate to the budgets and to the incumbent.
//!
//! Every broken budget goes into the reason, not just the first, each with the
//! figures behind it and what to change. The score is the tightest
//! `limit / estimate` over the budgets, capped at 1: 1.0 within every budget,
//! 0.5 at twice a budget.

use gatehouse_plugin_sdk::Verdict;
use serde_json::Value;

use crate::estimate::{Estimate, OutputTokens, estimate, usd};
use crate::params::Params;

/// Judges `candidate`; `incumbent` is what is live now, parsed or not.
pub fn judge(
    params: &Params,
    candidate: &Value,
    incumbent: Option<Result<Value, String>>,
) -> Verdict {
    let estimate = match estimate(candidate, params, "candidate") {
        Ok(estimate) => estimate,
        Err(problem) => return Verdict::fail(problem).with_score(0.0),
    };
    let cost = estimate.cost();
    let mut failures = Vec::new();
    let mut warnings = Vec::new();
    let mut score = ratio(params.max_cost_per_request, cost);
    let mut measurements = vec![("cost_per_request", cost, "usd")];

    if cost > params.max_cost_per_request {
        failures.push(over_budget(&estimate, params.max_cost_per_request));
    }

    let monthly = params.requests_per_month.map(|requests| {
        let monthly = cost * requests as f64;
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

    let incumbent = incumbent.map(|parsed| parsed.and_then(|v| estimate_incumbent(&v, params)));
    match (incumbent, params.max_increase_pct) {
        (Some(Ok(previous)), limit) => {
            measurements.push(("incumbent_cost_per_request", previous, "usd"));
            let change = change_pct(previous, cost);
            if let Some(change) = change {
                measurements.push(("cost_change_pct", change, "percent"));
            }
            if let Some(limit) = limit
                && change.is_none_or(|change| change > limit)
            {
                failures.push(format!(
                    "estimated cost per request rises from {} (incumbent) to {}, more than max_increase_pct of {limit}%; bring the cost down or raise max_increase_pct",
                    usd(previous),
                    usd(cost)
                ));
            }
        }
        (Some(Err(problem)), Some(_)) => warnings.push(format!(
            "cost increase not checked, the incumbent cannot be priced: {problem}"
        )),
        _ => {}
    }

    let verdict = if !failures.is_empty() {
        Verdict::fail(failures.join("; "))
    } else if !warnings.is_empty() {
        Verdict::warn(format!(
            "{}; {}",
            within_budget(cost, params, monthly),
            warnings.join("; ")
        ))
    } else {
        Verdict::pass(within_budget(cost, params, monthly))
    };
    measurements
        .into_iter()
        .fold(verdict.with_score(score), |v, (name, value, unit)| {
            v.with_measurement(name, value, unit)
        })
}

fn estimate_incumbent(incumbent: &Value, params: &Params) -> Result<f64, String> {
    estimate(incumbent, params, "incumbent").map(|e| e.cost())
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

fn over_budget(estimate: &Estimate, budget: f64) -> String {
    let advice = match estimate.output_tokens_from {
        OutputTokens::MaxTokens => {
            "lower parameters.max_tokens, choose a cheaper model, or raise max_cost_per_request"
        }
        OutputTokens::Expected => "choose a cheaper model or raise max_cost_per_request",
    };
    format!(
        "estimated {} per request exceeds the budget of {}: {}; {advice}",
        usd(estimate.cost()),
        usd(budget),
        estimate.breakdown()
    )
}

fn within_budget(cost: f64, params: &Params, monthly: Option<(u64, f64)>) -> String {
    let mut reason = format!(
        "estimated {} per request, within the budget of {}",
        usd(cost),
        usd(params.max_cost_per_request)
    );
    if let Some((requests, monthly)) = monthly {
        reason.push_str(&format!(
            "; {} per month at {requests} requests",
            usd(monthly)
        ));
    }
    reason
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use gatehouse_plugin_sdk::Outcome;

    fn params(json: &str) -> Params {
        Params::parse(json).expect("valid params")
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
