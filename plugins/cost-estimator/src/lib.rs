//! Gate that estimates what a model configuration costs and holds it to a budget.
//!
//! The candidate is a JSON configuration carrying its own price list:
//! `pricing.input_per_1k_tokens` and `pricing.output_per_1k_tokens` (USD per
//! 1,000 tokens). One request costs
//! `input_tokens / 1000 * input_price + output_tokens / 1000 * output_price`,
//! where input tokens come from the `expected_input_tokens` param and output
//! tokens from `expected_output_tokens`, or else the candidate's
//! `parameters.max_tokens` (the worst case). See [`params`] for every param.
//!
//! The verdict fails when the estimate exceeds `max_cost_per_request`, the
//! monthly estimate exceeds `max_monthly_cost`, or the cost rises against the
//! incumbent by more than `max_increase_pct`. A candidate without usable
//! pricing fails with a reason naming the field to add; bad params are an
//! error. The score is the tightest `budget / estimate` ratio, capped at 1.

pub mod estimate;
pub mod judge;
pub mod params;

use gatehouse_plugin_sdk::{Candidate, Description, Gate, GateRequest, Verdict, export_gate};

pub use judge::judge;
pub use params::Params;

/// The exported gate.
pub struct CostEstimator;

impl Gate for CostEstimator {
    fn describe() -> Description {
        Description::gate(
            "cost-estimator",
            env!("CARGO_PKG_VERSION"),
            "Estimates cost per request and per month from the candidate's pricing and holds it to a budget",
        )
        .with_params_schema(params::schema())
    }

    fn evaluate(request: GateRequest) -> Result<Verdict, String> {
        let params = Params::parse(&request.params)?;
        let candidate = request.candidate.json()?;
        // An unreadable incumbent must not block a release on its own: the
        // judge only needs it for the comparison, and says when it cannot make one.
        let incumbent = request.incumbent.as_ref().map(Candidate::json);
        Ok(judge(&params, &candidate, incumbent))
    }
}

export_gate!(CostEstimator);

#[cfg(test)]
mod tests {
    use gatehouse_plugin_sdk::{Outcome, PluginKind};

    use super::*;

    const TRIAGE_V2: &str = include_str!("../../../examples/candidates/triage-v2.json");
    const TRIAGE_V3: &str = include_str!("../../../examples/candidates/triage-v3-expensive.json");
    const STAGING_PARAMS: &str = r#"{"max_cost_per_request": 0.01, "expected_input_tokens": 800,
        "requests_per_month": 150000, "max_monthly_cost": 1500.0}"#;

    fn request(candidate_text: &str, incumbent: Option<&str>, params: &str) -> GateRequest {
        let candidate = |bytes: &str| Candidate {
            digest: "0".repeat(64),
            bytes: bytes.as_bytes().to_vec(),
            metadata: Vec::new(),
        };
        GateRequest {
            candidate: candidate(candidate_text),
            incumbent: incumbent.map(candidate),
            stage: "staging".to_owned(),
            params: params.to_owned(),
        }
    }

    #[test]
    fn description_names_the_gate_and_its_params() {
        let description = CostEstimator::describe();
        assert_eq!(description.name, "cost-estimator");
        assert_eq!(description.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(description.kind, PluginKind::Gate);
        assert!(description.capabilities.is_empty());
        let schema: serde_json::Value =
            serde_json::from_str(&description.params_schema).expect("schema is JSON");
        assert_eq!(schema["required"][0], "max_cost_per_request");
    }

    #[test]
    fn example_candidates_meet_the_example_staging_budget_or_not() {
        let cheap = CostEstimator::evaluate(request(TRIAGE_V2, None, STAGING_PARAMS));
        assert_eq!(cheap.map(|v| v.outcome), Ok(Outcome::Pass));

        let dear = CostEstimator::evaluate(request(TRIAGE_V3, Some(TRIAGE_V2), STAGING_PARAMS))
            .expect("judged");
        assert_eq!(dear.outcome, Outcome::Fail);
        assert!(
            dear.measurement("cost_change_pct")
                .is_some_and(|pct| pct > 100.0)
        );
    }

    #[test]
    fn invalid_params_are_an_error_naming_the_param() {
        let err =
            CostEstimator::evaluate(request(TRIAGE_V2, None, r#"{"max_cost": 1}"#)).unwrap_err();
        assert!(err.contains("`max_cost`"), "{err}");
    }

    #[test]
    fn unreadable_candidate_is_an_error() {
        let err =
            CostEstimator::evaluate(request("model = 'x'", None, STAGING_PARAMS)).unwrap_err();
        assert!(err.contains("not valid JSON"), "{err}");
    }
}
