//! Gate that sanity checks a model configuration before it ships.
//!
//! The candidate must be a JSON object naming a `model`; where present,
//! `parameters.temperature` must lie in 0..=`max_temperature`,
//! `parameters.max_tokens` must be a whole number in 1..=`max_tokens_limit`,
//! and `prompt_template` must contain the input placeholder (unless
//! `require_placeholder` is false). A configuration without a
//! `prompt_template` is not faulted: not every model call is templated.
//!
//! Every problem is reported, not just the first, so one round of fixes is
//! enough. The verdict fails if there is any; its `problems` measurement counts
//! them and the score is `1 / (1 + problems)`. See [`params`] for the params.

pub mod lint;
pub mod params;

use gatehouse_plugin_sdk::{Description, Gate, GateRequest, Verdict, export_gate};

pub use lint::{judge, problems};
pub use params::Params;

/// The exported gate.
pub struct ConfigLint;

impl Gate for ConfigLint {
    type Params = Params;

    fn describe() -> Description {
        Description::gate(
            "config-lint",
            env!("CARGO_PKG_VERSION"),
            "Checks a model configuration is well formed: model named, sampling parameters in range, prompt template takes the input",
        )
        .with_params_schema(params::schema())
    }

    fn evaluate(request: GateRequest, params: Params) -> Result<Verdict, String> {
        Ok(judge(&request.candidate.bytes, &params))
    }
}

export_gate!(ConfigLint);

#[cfg(test)]
mod tests {
    use gatehouse_plugin_sdk::{Candidate, Outcome, PluginKind, testing};

    use super::*;

    const TRIAGE_V2: &str = include_str!("../../../examples/candidates/triage-v2.json");
    const DEV_PARAMS: &str = r#"{"max_temperature": 1.0, "max_tokens_limit": 4096}"#;

    fn request(candidate: &str, params: &str) -> GateRequest {
        GateRequest {
            candidate: Candidate {
                digest: "0".repeat(64),
                bytes: candidate.as_bytes().to_vec(),
                metadata: Vec::new(),
            },
            incumbent: None,
            stage: "dev".to_owned(),
            params: params.to_owned(),
        }
    }

    #[test]
    fn description_names_the_gate_and_its_params() {
        let description = ConfigLint::describe();
        assert_eq!(description.name, "config-lint");
        assert_eq!(description.kind, PluginKind::Gate);
        let schema: serde_json::Value =
            serde_json::from_str(&description.params_schema).expect("schema is JSON");
        assert_eq!(schema["additionalProperties"], false);
    }

    #[test]
    fn example_candidate_passes_the_example_dev_gate() {
        let verdict =
            testing::evaluate::<ConfigLint>(request(TRIAGE_V2, DEV_PARAMS)).expect("judged");
        assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.reason);
        assert_eq!(verdict.measurement("problems"), Some(0.0));
    }

    #[test]
    fn params_are_optional() {
        assert!(testing::evaluate::<ConfigLint>(request(TRIAGE_V2, "")).is_ok());
        assert!(testing::evaluate::<ConfigLint>(request(TRIAGE_V2, "{}")).is_ok());
    }

    #[test]
    fn invalid_params_are_an_error_naming_the_param() {
        let err =
            testing::evaluate::<ConfigLint>(request(TRIAGE_V2, r#"{"max_temp": 1}"#)).unwrap_err();
        assert!(err.contains("`max_temp`"), "{err}");
    }
}
