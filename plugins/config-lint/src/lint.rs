//! The checks themselves: each finds problems in one part of the configuration.
//!
//! A field set to `null` counts as absent, as model APIs treat it.

use gatehouse_plugin_sdk::{Verdict, json_kind};
use serde_json::{Map, Value};

use crate::params::{Params, TEMPERATURE_CEILING};

/// Judges a candidate's bytes: fails listing every problem, or passes.
pub fn judge(candidate: &[u8], params: &Params) -> Verdict {
    let (model, problems) = problems(candidate, params);
    let count = problems.len();
    let verdict = match (count, model) {
        (0, Some(model)) => {
            Verdict::pass(format!("configuration for model `{model}` is well formed"))
        }
        (0, None) => Verdict::pass("configuration is well formed"),
        (1, _) => Verdict::fail(format!("1 problem: {}", problems.join("; "))),
        (n, _) => Verdict::fail(format!("{n} problems: {}", problems.join("; "))),
    };
    verdict
        .with_score(1.0 / (1.0 + count as f64))
        .with_measurement("problems", count as f64, "count")
}

/// Every problem found in `candidate`, each saying what to fix, and the model
/// name when there is a usable one.
pub fn problems(candidate: &[u8], params: &Params) -> (Option<String>, Vec<String>) {
    let config = match serde_json::from_slice::<Value>(candidate) {
        Ok(Value::Object(config)) => config,
        Ok(other) => {
            return (
                None,
                vec![format!(
                    "the candidate is {}, not a JSON object; submit the configuration as an object",
                    json_kind(&other)
                )],
            );
        }
        Err(e) => {
            return (
                None,
                vec![format!(
                    "the candidate is not valid JSON ({e}); fix the syntax"
                )],
            );
        }
    };
    let mut problems = Vec::new();
    let model = check_model(&config, &mut problems);
    match present(&config, "parameters") {
        None => {}
        Some(Value::Object(parameters)) => {
            check_temperature(parameters, params, &mut problems);
            check_max_tokens(parameters, params, &mut problems);
        }
        Some(other) => problems.push(format!(
            "`parameters` must be an object, found {}; put sampling settings such as `temperature` in an object",
            json_kind(other)
        )),
    }
    check_prompt_template(&config, params, &mut problems);
    (model, problems)
}

fn present<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|value| !value.is_null())
}

fn check_model(config: &Map<String, Value>, problems: &mut Vec<String>) -> Option<String> {
    match present(config, "model") {
        None => {
            problems.push("`model` is missing; name the model, e.g. \"gpt-4o-mini\"".to_owned())
        }
        Some(Value::String(model)) if model.trim().is_empty() => {
            problems.push("`model` is empty; name the model, e.g. \"gpt-4o-mini\"".to_owned());
        }
        Some(Value::String(model)) => return Some(model.clone()),
        Some(other) => problems.push(format!(
            "`model` must be a string, found {}; name the model, e.g. \"gpt-4o-mini\"",
            json_kind(other)
        )),
    }
    None
}

fn check_temperature(parameters: &Map<String, Value>, params: &Params, problems: &mut Vec<String>) {
    let Some(value) = present(parameters, "temperature") else {
        return;
    };
    let Some(temperature) = value.as_f64() else {
        problems.push(format!(
            "`parameters.temperature` must be a number, found {}",
            json_kind(value)
        ));
        return;
    };
    if !(0.0..=params.max_temperature).contains(&temperature) {
        // Name the gate param only when it, not the API, sets the bound.
        let bound = if params.max_temperature < TEMPERATURE_CEILING {
            format!(
                "the allowed 0..={} (gate param max_temperature)",
                params.max_temperature
            )
        } else {
            "0..=2".to_owned()
        };
        problems.push(format!(
            "`parameters.temperature` is {temperature}, outside {bound}; set it within the range"
        ));
    }
}

fn check_max_tokens(parameters: &Map<String, Value>, params: &Params, problems: &mut Vec<String>) {
    let Some(value) = present(parameters, "max_tokens") else {
        return;
    };
    match value.as_u64() {
        Some(0) | None => problems.push(format!(
            "`parameters.max_tokens` must be a positive whole number, found {value}"
        )),
        Some(tokens) if tokens > params.max_tokens_limit => problems.push(format!(
            "`parameters.max_tokens` is {tokens}, above the limit of {} (gate param max_tokens_limit); lower it",
            params.max_tokens_limit
        )),
        Some(_) => {}
    }
}

fn check_prompt_template(config: &Map<String, Value>, params: &Params, problems: &mut Vec<String>) {
    match present(config, "prompt_template") {
        None => {}
        Some(Value::String(template))
            if params.require_placeholder && !template.contains(&params.placeholder) =>
        {
            problems.push(format!(
                "`prompt_template` does not contain the placeholder `{}`, so the input never reaches the model; add it where the input belongs",
                params.placeholder
            ));
        }
        Some(Value::String(_)) => {}
        Some(other) => problems.push(format!(
            "`prompt_template` must be a string, found {}",
            json_kind(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use gatehouse_plugin_sdk::Outcome;
    use serde_json::json;

    use super::*;

    fn lint(config: &Value, params: &Params) -> Vec<String> {
        problems(config.to_string().as_bytes(), params).1
    }

    fn good() -> Value {
        json!({
            "model": "gpt-4o-mini",
            "prompt_template": "Classify this ticket: {{input}}",
            "parameters": { "temperature": 0.2, "max_tokens": 256 },
        })
    }

    #[test]
    fn well_formed_configuration_passes_with_no_problems() {
        let verdict = judge(good().to_string().as_bytes(), &Params::default());
        assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.reason);
        assert_eq!(verdict.measurement("problems"), Some(0.0));
        assert_eq!(verdict.score, 1.0);
        assert!(
            verdict.reason.contains("`gpt-4o-mini`"),
            "{}",
            verdict.reason
        );
    }

    #[test]
    fn every_problem_is_reported_not_just_the_first() {
        let config = json!({
            "model": "",
            "prompt_template": "Classify this ticket",
            "parameters": { "temperature": 2.5, "max_tokens": 0 },
        });
        let verdict = judge(config.to_string().as_bytes(), &Params::default());
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert_eq!(verdict.measurement("problems"), Some(4.0));
        assert_eq!(verdict.score, 0.2);
        assert!(
            verdict.reason.starts_with("4 problems: `model` is empty"),
            "{}",
            verdict.reason
        );
        assert!(
            verdict
                .reason
                .contains("`parameters.temperature` is 2.5, outside 0..=2")
        );
        assert!(
            verdict
                .reason
                .contains("`parameters.max_tokens` must be a positive whole number")
        );
        assert!(verdict.reason.contains("placeholder `{{input}}`"));
    }

    #[test]
    fn non_object_candidate_fails() {
        let verdict = judge(b"[1, 2]", &Params::default());
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict.reason.contains("is an array, not a JSON object"),
            "{}",
            verdict.reason
        );

        let verdict = judge(b"model: gpt", &Params::default());
        assert!(
            verdict.reason.contains("not valid JSON"),
            "{}",
            verdict.reason
        );
        assert_eq!(verdict.measurement("problems"), Some(1.0));
    }

    #[test]
    fn missing_or_mistyped_model_is_named() {
        let problems = lint(&json!({ "parameters": {} }), &Params::default());
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("`model` is missing"));
        let problems = lint(&json!({ "model": 4 }), &Params::default());
        assert!(problems[0].contains("`model` must be a string, found a number"));
    }

    #[test]
    fn narrowed_temperature_limit_is_enforced_and_named() {
        let params = Params {
            max_temperature: 1.0,
            ..Params::default()
        };
        let mut config = good();
        config["parameters"]["temperature"] = json!(1.5);
        let problems = lint(&config, &params);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].contains("0..=1 (gate param max_temperature)"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn negative_temperature_is_a_problem() {
        let mut config = good();
        config["parameters"]["temperature"] = json!(-0.1);
        assert_eq!(lint(&config, &Params::default()).len(), 1);
    }

    #[test]
    fn max_tokens_above_limit_is_a_problem() {
        let params = Params {
            max_tokens_limit: 4096,
            ..Params::default()
        };
        let mut config = good();
        config["parameters"]["max_tokens"] = json!(8192);
        let problems = lint(&config, &params);
        assert!(
            problems[0].contains("above the limit of 4096"),
            "{problems:?}"
        );
        config["parameters"]["max_tokens"] = json!(12.5);
        assert!(lint(&config, &params)[0].contains("positive whole number, found 12.5"));
    }

    #[test]
    fn placeholder_is_configurable_and_optional() {
        let mut config = good();
        config["prompt_template"] = json!("Classify: <ticket>");
        assert_eq!(lint(&config, &Params::default()).len(), 1);
        let custom = Params {
            placeholder: "<ticket>".to_owned(),
            ..Params::default()
        };
        assert!(lint(&config, &custom).is_empty());
        let relaxed = Params {
            require_placeholder: false,
            ..Params::default()
        };
        assert!(lint(&config, &relaxed).is_empty());
    }

    #[test]
    fn absent_and_null_fields_are_not_faulted() {
        let config = json!({ "model": "m", "parameters": { "temperature": null } });
        assert!(lint(&config, &Params::default()).is_empty());
        assert!(lint(&json!({ "model": "m" }), &Params::default()).is_empty());
    }

    #[test]
    fn mistyped_sections_are_named() {
        let config = json!({ "model": "m", "parameters": [1], "prompt_template": 7 });
        let problems = lint(&config, &Params::default());
        assert_eq!(problems.len(), 2);
        assert!(problems[0].contains("`parameters` must be an object, found an array"));
        assert!(problems[1].contains("`prompt_template` must be a string, found a number"));
    }
}
