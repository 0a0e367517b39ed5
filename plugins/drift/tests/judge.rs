//! The gate end to end on native builds: params in, attachments read,
//! verdict out, with the example candidates' feature samples.

use drift::Drift;
use gatehouse_plugin_sdk::attachments::Owner;
use gatehouse_plugin_sdk::testing::{self, gate_request};
use gatehouse_plugin_sdk::{Gate, Outcome, PluginKind, Verdict};

const V2_FEATURES: &str = include_str!("../../../examples/outputs/triage-v2.features.jsonl");
const V4_FEATURES: &str =
    include_str!("../../../examples/outputs/triage-v4-regressed.features.jsonl");
const EXAMPLE_PARAMS: &str = r#"{"features": {
    "output_label": {"kind": "categorical"},
    "output_length": {"kind": "numeric"},
    "confidence": {"kind": "numeric"}
}}"#;

fn evaluate(params: &str) -> Result<Verdict, String> {
    testing::evaluate::<Drift>(gate_request(r#"{"model": "m"}"#, params))
}

fn attach(candidate: Option<&str>, reference: Option<&str>) {
    testing::clear_attachments();
    if let Some(candidate) = candidate {
        testing::attach(Owner::Candidate, "features.jsonl", candidate);
    }
    if let Some(reference) = reference {
        testing::attach(Owner::Incumbent, "features.jsonl", reference);
    }
}

fn measured(verdict: &Verdict, name: &str) -> f64 {
    verdict
        .measurement(name)
        .unwrap_or_else(|| panic!("no measurement {name} in {:?}", verdict.measurements))
}

/// JSON lines of `{"x": v}` for every value.
fn lines(values: impl IntoIterator<Item = f64>) -> String {
    values
        .into_iter()
        .map(|v| format!("{{\"x\": {v}}}\n"))
        .collect()
}

#[test]
fn example_candidate_against_its_own_features_passes() {
    attach(Some(V2_FEATURES), Some(V2_FEATURES));
    let verdict = evaluate(EXAMPLE_PARAMS).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.reason);
    assert_eq!(verdict.score, 1.0);
    assert_eq!(measured(&verdict, "candidate_records"), 2000.0);
    assert_eq!(measured(&verdict, "features_drifted"), 0.0);
    assert_eq!(measured(&verdict, "psi[confidence]"), 0.0);
    assert_eq!(measured(&verdict, "ks_p[output_length]"), 1.0);
    assert_eq!(measured(&verdict, "js[output_label]"), 0.0);
    assert_eq!(measured(&verdict, "chi2_p[output_label]"), 1.0);
    assert!(
        verdict.reason.starts_with("No drift in 3 features"),
        "{}",
        verdict.reason
    );
}

#[test]
fn regressed_example_drifts_in_labels_and_confidence() {
    attach(Some(V4_FEATURES), Some(V2_FEATURES));
    let verdict = evaluate(EXAMPLE_PARAMS).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Fail, "{}", verdict.reason);
    assert_eq!(measured(&verdict, "features_drifted"), 2.0);
    assert!((verdict.score - 1.0 / 3.0).abs() < 1e-12);
    // Reference values from SciPy: jensenshannon(base=2), chi2_contingency, ks_2samp.
    let close = |name: &str, expected: f64| {
        let got = measured(&verdict, name);
        assert!(
            (got - expected).abs() <= 1e-9 * expected,
            "{name}: {got} vs {expected}"
        );
    };
    close("js[output_label]", 0.157_124_792_618_234_87);
    close("chi2_p[output_label]", 3.735_859_931_755_969_6e-21);
    close("ks_d[confidence]", 0.421);
    close("ks_p[confidence]", 3.084_889_499_033_429_7e-159);
    close("ks_p[output_length]", 0.794_826_541_339_837_8);
    let reason = &verdict.reason;
    assert!(reason.starts_with("2 of 3 features drifted in attachment:features.jsonl (2000 candidate vs 2000 reference records"), "{reason}");
    assert!(reason.contains("`output_label` (Jensen-Shannon distance 0.157 > js_max 0.1, chi-squared p 3.7e-21 < chi2_alpha 0.01"), "{reason}");
    assert!(reason.contains("\"billing\" 25.2% →"), "{reason}");
    assert!(reason.contains("`confidence` (PSI"), "{reason}");
    assert!(reason.contains("Stable: `output_length`"), "{reason}");
    assert!(reason.contains("If the change is intended"), "{reason}");
}

#[test]
fn drift_in_a_non_blocking_feature_only_warns() {
    attach(Some(V4_FEATURES), Some(V2_FEATURES));
    let params = r#"{"features": {"confidence": {"kind": "numeric", "blocking": false}, "output_length": {"kind": "numeric"}}}"#;
    let verdict = evaluate(params).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Warn, "{}", verdict.reason);
    assert!(
        verdict.reason.contains("non-blocking"),
        "{}",
        verdict.reason
    );
}

#[test]
fn first_release_without_reference_is_inconclusive_saying_what_to_attach() {
    attach(Some(V2_FEATURES), None);
    let verdict = evaluate(EXAMPLE_PARAMS).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Inconclusive, "{}", verdict.reason);
    assert!(
        verdict
            .reason
            .contains("attach features.jsonl with every submission"),
        "{}",
        verdict.reason
    );
    assert!(
        verdict.reason.contains("allow_missing_reference"),
        "{}",
        verdict.reason
    );
}

#[test]
fn missing_reference_passes_when_allowed() {
    attach(Some(V2_FEATURES), None);
    let params =
        r#"{"features": {"confidence": {"kind": "numeric"}}, "allow_missing_reference": true}"#;
    let verdict = evaluate(params).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.reason);
    assert!(
        verdict.reason.starts_with("No reference to compare with"),
        "{}",
        verdict.reason
    );
}

#[test]
fn missing_candidate_samples_are_inconclusive() {
    attach(None, Some(V2_FEATURES));
    let verdict = evaluate(EXAMPLE_PARAMS).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Inconclusive, "{}", verdict.reason);
    assert!(
        verdict.reason.contains("\"features.jsonl\""),
        "{}",
        verdict.reason
    );
}

#[test]
fn a_feature_missing_from_the_reference_is_an_error_naming_it() {
    attach(Some(V2_FEATURES), Some(&lines([1.0, 2.0])));
    let err = evaluate(EXAMPLE_PARAMS).unwrap_err();
    assert!(
        err.starts_with("feature `confidence` has no value"),
        "{err}"
    );
    assert!(err.contains("incumbent-attachment:features.jsonl"), "{err}");
}

#[test]
fn bad_params_are_errors_naming_the_param() {
    attach(Some(V2_FEATURES), Some(V2_FEATURES));
    let err = evaluate(r#"{"features": {"confidence": {"kind": "numeric", "js_max": 0.1}}}"#)
        .unwrap_err();
    assert!(err.contains("`features.confidence.js_max`"), "{err}");
    let err =
        evaluate(r#"{"features": {"confidence": {"kind": "numeric"}}, "bins": 0}"#).unwrap_err();
    assert!(err.contains("`bins`"), "{err}");
}

#[test]
fn too_few_values_are_inconclusive_with_the_minimum() {
    attach(
        Some(&lines((0..10).map(f64::from))),
        Some(&lines((0..50).map(f64::from))),
    );
    let verdict = evaluate(r#"{"features": {"x": {"kind": "numeric"}}}"#).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Inconclusive, "{}", verdict.reason);
    assert!(
        verdict
            .reason
            .contains("`x` has 10 candidate and 50 reference values, fewer than min_samples 30"),
        "{}",
        verdict.reason
    );
    let verdict =
        evaluate(r#"{"features": {"x": {"kind": "numeric"}}, "min_samples": 10}"#).expect("judged");
    assert_ne!(verdict.outcome, Outcome::Inconclusive, "{}", verdict.reason);
}

#[test]
fn a_json_array_file_serves_a_single_numeric_feature() {
    let values: Vec<String> = (0..500)
        .map(|i| format!("{}", f64::from(i) * 0.5))
        .collect();
    let array = format!("[{}]", values.join(", "));
    testing::clear_attachments();
    testing::attach(Owner::Candidate, "x.json", array.as_str());
    testing::attach(
        Owner::Candidate,
        "reference.jsonl",
        lines((0..500).map(|i| f64::from(i) * 0.5)),
    );
    let params = r#"{"candidate": "attachment:x.json", "reference": "attachment:reference.jsonl",
        "features": {"x": {"kind": "numeric"}}}"#;
    let verdict = evaluate(params).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.reason);
    assert_eq!(measured(&verdict, "candidate_samples[x]"), 500.0);
    assert_eq!(measured(&verdict, "psi[x]"), 0.0);
}

#[test]
fn hundred_thousand_values_a_side_are_compared() {
    let n = 100_000;
    let candidate: Vec<String> = (0..n)
        .map(|i| format!("{:.6}", (f64::from(i) * 0.618_034).fract()))
        .collect();
    let reference: Vec<String> = (0..n)
        .map(|i| format!("{:.6}", (f64::from(i) * 0.414_214).fract()))
        .collect();
    testing::clear_attachments();
    testing::attach(
        Owner::Candidate,
        "x.json",
        format!("[{}]", candidate.join(",")),
    );
    testing::attach(
        Owner::Incumbent,
        "x.json",
        format!("[{}]", reference.join(",")),
    );
    let params = r#"{"candidate": "attachment:x.json", "reference": "incumbent-attachment:x.json",
        "features": {"x": {"kind": "numeric"}}}"#;
    let verdict = evaluate(params).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.reason);
    assert_eq!(measured(&verdict, "reference_samples[x]"), f64::from(n));
}

#[test]
fn description_asks_only_for_what_the_build_can_use() {
    let description = Drift::describe();
    assert_eq!(description.name, "drift");
    assert_eq!(description.kind, PluginKind::Gate);
    let schema: serde_json::Value =
        serde_json::from_str(&description.params_schema).expect("schema is JSON");
    assert_eq!(schema["required"], serde_json::json!(["features"]));
    let expected: &[&str] = if cfg!(feature = "files") {
        &["files"]
    } else {
        &[]
    };
    assert_eq!(description.capabilities, expected);
}
