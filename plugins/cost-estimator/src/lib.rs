//! Gate that estimates what a model configuration costs and holds it to a budget.
//!
//! One request costs `input_tokens / 1000 * input_price + output_tokens /
//! 1000 * output_price`. The gate finds each part as follows.
//!
//! - **Token counts**, with a golden dataset (param `dataset`): each case is
//!   one request, its input the configuration's `prompt_template` with
//!   `{{input}}` replaced by the case's input, its output the case's
//!   `expected` answer, or the configuration's own answer from `outputs`
//!   ([`usage`]). They are counted with the model's tokenizer: exact BPE for
//!   OpenAI models (`o200k_base`, `cl100k_base`), characters / 4 for every
//!   other family ([`tokenizer`]), and the verdict says which. The gate
//!   reports the mean and the 95th percentile over the cases. Without a
//!   dataset, the `expected_input_tokens` param (default 500) and
//!   `expected_output_tokens`, or else the configuration's
//!   `parameters.max_tokens` (the worst case), describe one request.
//! - **Prices**: the pricing table (param `pricing_table`, USD per million
//!   tokens by model) when it lists the model, else the configuration's own
//!   `pricing.input_per_1k_tokens` and `pricing.output_per_1k_tokens` (USD
//!   per 1,000 tokens) ([`pricing`]).
//!
//! The verdict fails when the mean cost per request exceeds
//! `max_cost_per_request`, the month (`requests_per_month` requests) exceeds
//! `max_monthly_cost`, or the cost per request rises against the incumbent,
//! priced the same way on the same cases, by more than `max_increase_pct`.
//! A configuration that cannot be priced fails with a reason naming the
//! field to add; bad params or unreadable data sources are an error. The
//! score is the tightest `budget / estimate` ratio, capped at 1. A pipeline
//! gate, e.g.:
//!
//! ```toml
//! [[environment.gate]]
//! plugin = "cost-estimator"
//! params = { max_cost_per_request = 0.01, requests_per_month = 150000, max_increase_pct = 50.0, dataset = "attachment:golden.jsonl", outputs = "attachment:outputs.jsonl", pricing_table = "attachment:pricing.json" }
//! ```
//!
//! See [`params`] for every param.

pub mod cost;
pub mod estimate;
pub mod judge;
pub mod params;
pub mod pricing;
pub mod tokenizer;
pub mod usage;

use gatehouse_plugin_sdk::golden::{self, Output};
use gatehouse_plugin_sdk::{Candidate, Description, Gate, GateRequest, Verdict, data, export_gate};
use std::collections::BTreeMap;

pub use judge::{Data, judge, judge_with};
pub use params::Params;
use pricing::PricingTable;

/// The exported gate.
pub struct CostEstimator;

impl Gate for CostEstimator {
    type Params = Params;

    fn describe() -> Description {
        let description = Description::gate(
            "cost-estimator",
            env!("CARGO_PKG_VERSION"),
            "Estimates cost per request and per month from token counts and prices, and holds it to a budget",
        )
        .with_params_schema(params::schema());
        if params::READS_GRANTED_DIRECTORIES {
            description.with_capability("files")
        } else {
            description
        }
    }

    fn evaluate(request: GateRequest, params: Params) -> Result<Verdict, String> {
        let candidate = request.candidate.json()?;
        let data = read_data(&params)?;
        // An unreadable incumbent must not block a release on its own: the
        // judge only needs it for the comparison, and says when it cannot make one.
        let incumbent = request.incumbent.as_ref().map(Candidate::json);
        Ok(judge_with(&params, &data, &candidate, incumbent))
    }
}

/// Reads every data source the params name. A source that cannot be read
/// is an error: the gate cannot judge without it.
fn read_data(params: &Params) -> Result<Data, String> {
    let outputs = |source: &Option<String>| -> Result<Option<BTreeMap<String, Output>>, String> {
        source.as_deref().map(golden::read_outputs).transpose()
    };
    // The incumbent's release usually attached its outputs under the same
    // name, which makes the comparison like for like without extra params.
    let incumbent_outputs = match (&params.incumbent_outputs, &params.outputs) {
        (Some(_), _) => outputs(&params.incumbent_outputs)?,
        (None, Some(source)) => outputs(
            &source
                .strip_prefix("attachment:")
                .map(|name| format!("incumbent-attachment:{name}"))
                .filter(|own| data::exists(own)),
        )?,
        (None, None) => None,
    };
    Ok(Data {
        cases: params
            .dataset
            .as_deref()
            .map(golden::read_cases)
            .transpose()?,
        outputs: outputs(&params.outputs)?,
        incumbent_outputs,
        pricing_table: params
            .pricing_table
            .as_deref()
            .map(PricingTable::read)
            .transpose()?,
    })
}

export_gate!(CostEstimator);

#[cfg(test)]
mod tests {
    use gatehouse_plugin_sdk::attachments::Owner;
    use gatehouse_plugin_sdk::testing;
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
        assert_eq!(
            description.capabilities.is_empty(),
            !params::READS_GRANTED_DIRECTORIES
        );
        let schema: serde_json::Value =
            serde_json::from_str(&description.params_schema).expect("schema is JSON");
        assert_eq!(schema["required"][0], "max_cost_per_request");
    }

    #[test]
    fn example_candidates_meet_the_example_staging_budget_or_not() {
        let cheap = testing::evaluate::<CostEstimator>(request(TRIAGE_V2, None, STAGING_PARAMS));
        assert_eq!(cheap.map(|v| v.outcome), Ok(Outcome::Pass));

        let dear =
            testing::evaluate::<CostEstimator>(request(TRIAGE_V3, Some(TRIAGE_V2), STAGING_PARAMS))
                .expect("judged");
        assert_eq!(dear.outcome, Outcome::Fail);
        assert!(
            dear.measurement("cost_change_pct")
                .is_some_and(|pct| pct > 100.0)
        );
    }

    /// Three support tickets. Token counts from tiktoken (Python) of
    /// triage-v2's template filled with each input: 36, 42 and 37 in
    /// o200k_base; triage-v3's: 42, 48 and 43 in cl100k_base. The expected
    /// labels are 1, 2 and 2 tokens in both.
    const GOLDEN: &str = r#"{"id": "t1", "input": "I was charged twice for my subscription this month.", "expected": "billing"}
{"id": "t2", "input": "The dashboard is down and the API returns 503 errors since 9am.", "expected": "outage"}
{"id": "t3", "input": "Please add an export to CSV for the usage report.", "expected": "feature-request"}
"#;

    fn attach(owner: Owner, name: &str, contents: &str) {
        testing::attach(owner, name, contents);
    }

    #[test]
    fn dataset_tokens_are_counted_with_the_models_tokenizer() {
        attach(Owner::Candidate, "golden.jsonl", GOLDEN);
        let params = r#"{"max_cost_per_request": 0.01, "dataset": "attachment:golden.jsonl",
            "requests_per_month": 100000}"#;
        let verdict =
            testing::evaluate::<CostEstimator>(request(TRIAGE_V2, None, params)).expect("judged");
        assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.reason);
        let mean_in = (36.0 + 42.0 + 37.0) / 3.0;
        let mean_out = (1.0 + 2.0 + 2.0) / 3.0;
        let near = |name: &str, value: f64| {
            let measured = verdict.measurement(name).unwrap_or(f64::NAN);
            assert!(
                (measured - value).abs() < 1e-9,
                "{name}: {measured} != {value}"
            );
        };
        near("input_tokens_mean", mean_in);
        near("input_tokens_p95", 42.0);
        near("output_tokens_mean", mean_out);
        let cost = mean_in / 1000.0 * 0.00015 + mean_out / 1000.0 * 0.0006;
        near("cost_per_request", cost);
        near(
            "cost_per_request_p95",
            42.0 / 1000.0 * 0.00015 + 2.0 / 1000.0 * 0.0006,
        );
        near("monthly_cost", cost * 100_000.0);
        near("tokenizer", 1.0);
        let tokenizer = verdict.measurements.iter().find(|m| m.name == "tokenizer");
        assert_eq!(tokenizer.map(|m| m.unit.as_str()), Some("o200k_base"));
        assert!(
            verdict.reason.contains("counted with o200k_base"),
            "{}",
            verdict.reason
        );
        assert!(
            verdict.reason.contains("3 expected answers"),
            "{}",
            verdict.reason
        );
    }

    #[test]
    fn incumbent_is_priced_the_same_way_on_the_same_cases() {
        attach(Owner::Candidate, "golden.jsonl", GOLDEN);
        let params = r#"{"max_cost_per_request": 0.01, "dataset": "attachment:golden.jsonl",
            "max_increase_pct": 50}"#;
        let verdict =
            testing::evaluate::<CostEstimator>(request(TRIAGE_V3, Some(TRIAGE_V2), params))
                .expect("judged");
        assert_eq!(verdict.outcome, Outcome::Fail, "{}", verdict.reason);
        let candidate = (42.0 + 48.0 + 43.0) / 3.0 / 1000.0 * 0.06 + 5.0 / 3.0 / 1000.0 * 0.12;
        let incumbent = (36.0 + 42.0 + 37.0) / 3.0 / 1000.0 * 0.00015 + 5.0 / 3.0 / 1000.0 * 0.0006;
        let change = verdict.measurement("cost_change_pct").unwrap_or(f64::NAN);
        assert!(
            (change - (candidate - incumbent) / incumbent * 100.0).abs() < 1e-6,
            "{change}"
        );
        assert!(
            verdict.reason.contains("more than max_increase_pct"),
            "{}",
            verdict.reason
        );
        assert!(verdict.reason.contains("cl100k_base"), "{}", verdict.reason);
    }

    #[test]
    fn pricing_table_prices_a_model_without_its_own_pricing() {
        attach(Owner::Candidate, "golden.jsonl", GOLDEN);
        attach(
            Owner::Candidate,
            "pricing.json",
            include_str!("../../../examples/pricing.json"),
        );
        let claude = r#"{"model": "claude-3-5-haiku-20241022", "prompt_template": "Label this ticket: {{input}}"}"#;
        let params = r#"{"max_cost_per_request": 0.0001, "dataset": "attachment:golden.jsonl",
            "pricing_table": "attachment:pricing.json"}"#;
        let verdict =
            testing::evaluate::<CostEstimator>(request(claude, None, params)).expect("judged");
        // "Label this ticket: " and each input is 70, 82 and 68 characters:
        // 18, 21 and 17 tokens at four characters a token, rounded up.
        let mean_in = (18.0 + 21.0 + 17.0) / 3.0;
        let mean_out = (2.0 + 2.0 + 4.0) / 3.0;
        let cost = mean_in / 1e6 * 0.80 + mean_out / 1e6 * 4.00;
        let measured = verdict.measurement("cost_per_request").unwrap_or(f64::NAN);
        assert!((measured - cost).abs() < 1e-12, "{measured} != {cost}");
        assert_eq!(verdict.measurement("tokenizer"), Some(0.0));
        assert!(
            verdict.reason.contains("characters / 4"),
            "{}",
            verdict.reason
        );
        assert!(
            verdict.reason.contains("\"claude-3-5-haiku*\""),
            "{}",
            verdict.reason
        );
    }

    #[test]
    fn attached_outputs_price_both_sides_with_reported_counts() {
        attach(Owner::Candidate, "golden.jsonl", GOLDEN);
        let outputs = |tokens: u64| {
            ["t1", "t2", "t3"]
                .map(|id| format!(r#"{{"id": "{id}", "output": "x", "output_tokens": {tokens}}}"#))
                .join("\n")
        };
        attach(Owner::Candidate, "outputs.jsonl", &outputs(400));
        attach(Owner::Incumbent, "outputs.jsonl", &outputs(100));
        let params = r#"{"max_cost_per_request": 1, "dataset": "attachment:golden.jsonl",
            "outputs": "attachment:outputs.jsonl"}"#;
        let verdict =
            testing::evaluate::<CostEstimator>(request(TRIAGE_V2, Some(TRIAGE_V2), params))
                .expect("judged");
        assert_eq!(verdict.measurement("output_tokens_mean"), Some(400.0));
        let mean_in = (36.0 + 42.0 + 37.0) / 3.0 / 1000.0 * 0.00015;
        let candidate = mean_in + 0.4 * 0.0006;
        let incumbent = mean_in + 0.1 * 0.0006;
        let measured = verdict
            .measurement("incumbent_cost_per_request")
            .unwrap_or(f64::NAN);
        assert!(
            (measured - incumbent).abs() < 1e-12,
            "{measured} != {incumbent}"
        );
        let change = verdict.measurement("cost_change_pct").unwrap_or(f64::NAN);
        assert!((change - (candidate - incumbent) / incumbent * 100.0).abs() < 1e-6);
        assert!(
            verdict.reason.contains("3 as reported by the provider"),
            "{}",
            verdict.reason
        );
    }

    #[test]
    fn unreadable_dataset_is_an_error_naming_the_source() {
        testing::clear_attachments();
        let params = r#"{"max_cost_per_request": 1, "dataset": "attachment:golden.jsonl"}"#;
        let err = testing::evaluate::<CostEstimator>(request(TRIAGE_V2, None, params)).unwrap_err();
        assert!(err.contains("attachment:golden.jsonl"), "{err}");
    }

    #[test]
    fn invalid_params_are_an_error_naming_the_param() {
        let err =
            testing::evaluate::<CostEstimator>(request(TRIAGE_V2, None, r#"{"max_cost": 1}"#))
                .unwrap_err();
        assert!(err.contains("`max_cost`"), "{err}");
    }

    #[test]
    fn unreadable_candidate_is_an_error() {
        let err = testing::evaluate::<CostEstimator>(request("model = 'x'", None, STAGING_PARAMS))
            .unwrap_err();
        assert!(err.contains("not valid JSON"), "{err}");
    }
}
