//! The gate end to end on native builds: params in, attachments read,
//! verdict out, with the example triage dataset and candidates' outputs.

use gatehouse_plugin_sdk::attachments::Owner;
use gatehouse_plugin_sdk::testing::{self, gate_request};
use gatehouse_plugin_sdk::{Gate, Outcome, PluginKind, Verdict};
use golden_eval::GoldenEval;

const GOLDEN: &str = include_str!("../../../examples/golden/triage.jsonl");
const V2_OUTPUTS: &str = include_str!("../../../examples/outputs/triage-v2.outputs.jsonl");
const V4_OUTPUTS: &str =
    include_str!("../../../examples/outputs/triage-v4-regressed.outputs.jsonl");
const TRIAGE_V2: &str = include_str!("../../../examples/candidates/triage-v2.json");
const TRIAGE_V4: &str = include_str!("../../../examples/candidates/triage-v4-regressed.json");
const EXAMPLE_PARAMS: &str =
    r#"{"dataset": "attachment:golden.jsonl", "scorer": "normalized", "threshold": 0.9}"#;

fn evaluate(candidate: &str, params: &str) -> Result<Verdict, String> {
    testing::evaluate::<GoldenEval>(gate_request(candidate, params))
}

fn attach_example(outputs: &str, incumbent_outputs: Option<&str>) {
    testing::clear_attachments();
    testing::attach(Owner::Candidate, "golden.jsonl", GOLDEN);
    testing::attach(Owner::Candidate, "outputs.jsonl", outputs);
    if let Some(incumbent) = incumbent_outputs {
        testing::attach(Owner::Incumbent, "outputs.jsonl", incumbent);
    }
}

fn measured(verdict: &Verdict, name: &str) -> f64 {
    verdict
        .measurement(name)
        .unwrap_or_else(|| panic!("no measurement {name} in {:?}", verdict.measurements))
}

#[test]
fn good_example_candidate_passes_the_example_threshold() {
    attach_example(V2_OUTPUTS, None);
    let verdict = evaluate(TRIAGE_V2, EXAMPLE_PARAMS).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.reason);
    assert_eq!(measured(&verdict, "cases"), 223.0);
    assert!((measured(&verdict, "pass_rate") - 214.0 / 223.0).abs() < 1e-12);
    assert_eq!(verdict.score, measured(&verdict, "pass_rate"));
    assert!(
        verdict
            .reason
            .starts_with("pass rate 0.960 (214 of 223 cases) meets the threshold 0.9"),
        "{}",
        verdict.reason
    );
    assert!(
        verdict.reason.contains("not compared with the incumbent"),
        "{}",
        verdict.reason
    );
}

#[test]
fn exact_scoring_does_not_forgive_formatting_slips() {
    attach_example(V2_OUTPUTS, None);
    let params = r#"{"dataset": "attachment:golden.jsonl", "threshold": 0.9}"#;
    let verdict = evaluate(TRIAGE_V2, params).expect("judged");
    assert!((measured(&verdict, "pass_rate") - 212.0 / 223.0).abs() < 1e-12);
}

#[test]
fn regressed_example_candidate_fails_with_billing_weakest() {
    attach_example(V4_OUTPUTS, None);
    let verdict = evaluate(TRIAGE_V4, EXAMPLE_PARAMS).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Fail, "{}", verdict.reason);
    let reason = &verdict.reason;
    assert!(
        reason.starts_with("pass rate 0.816 (182 of 223 cases) is below the threshold 0.9"),
        "{reason}"
    );
    assert!(
        reason.contains("weakest tags by pass rate: billing 0.556 (30 of 54)"),
        "{reason}"
    );
    assert!(
        reason.contains(
            r#"worst failing cases: triage-0006 expected "billing" got "account" score 0.00"#
        ),
        "{reason}"
    );
    assert_eq!(reason.matches(" expected ").count(), 5, "{reason}");
    assert!((measured(&verdict, "pass_rate[billing]") - 30.0 / 54.0).abs() < 1e-12);
    assert!(measured(&verdict, "pass_rate[outage]") > 0.9);
    assert!(measured(&verdict, "pass_rate[non-english]") < 1.0);
}

#[test]
fn significant_regression_fails_the_verdict_even_when_threshold_is_met() {
    attach_example(V4_OUTPUTS, Some(V2_OUTPUTS));
    let params =
        r#"{"dataset": "attachment:golden.jsonl", "scorer": "normalized", "threshold": 0.75}"#;
    let verdict = evaluate(TRIAGE_V4, params).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Fail, "{}", verdict.reason);
    let reason = &verdict.reason;
    assert!(reason.starts_with("significantly worse than the incumbent on 223 paired cases: 33 cases the incumbent passed now fail and 1 improve"), "{reason}");
    assert!(reason.contains("meets the threshold 0.75"), "{reason}");
    assert_eq!(measured(&verdict, "worse_than_incumbent"), 33.0);
    assert_eq!(measured(&verdict, "better_than_incumbent"), 1.0);
    assert!(measured(&verdict, "mcnemar_p") < 1e-6);
    assert!(measured(&verdict, "bootstrap_high") < 0.0);
    assert!(measured(&verdict, "bootstrap_low") <= measured(&verdict, "bootstrap_mean_difference"));
}

#[test]
fn better_candidate_passes_the_comparison_with_its_figures() {
    attach_example(V2_OUTPUTS, Some(V4_OUTPUTS));
    let verdict = evaluate(TRIAGE_V2, EXAMPLE_PARAMS).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.reason);
    assert!(
        verdict.reason.contains("no significant regression against the incumbent on 223 paired cases (1 worse, 33 better"),
        "{}",
        verdict.reason
    );
    assert_eq!(measured(&verdict, "paired_cases"), 223.0);
    assert!(measured(&verdict, "bootstrap_low") > 0.0);
}

#[test]
fn identical_outputs_are_no_regression() {
    attach_example(V2_OUTPUTS, Some(V2_OUTPUTS));
    let verdict = evaluate(TRIAGE_V2, EXAMPLE_PARAMS).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.reason);
    assert_eq!(measured(&verdict, "mcnemar_p"), 1.0);
    assert_eq!(measured(&verdict, "bootstrap_mean_difference"), 0.0);
}

fn without_lines(outputs: &str, every: usize, limit: usize) -> String {
    let mut dropped = 0;
    outputs
        .lines()
        .enumerate()
        .filter(|(i, _)| {
            let drop = i % every == 0 && dropped < limit;
            dropped += usize::from(drop);
            !drop
        })
        .map(|(_, line)| format!("{line}\n"))
        .collect()
}

#[test]
fn a_few_missing_outputs_fail_their_cases_and_are_reported() {
    attach_example(&without_lines(V2_OUTPUTS, 40, 5), None);
    let verdict = evaluate(TRIAGE_V2, EXAMPLE_PARAMS).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.reason);
    assert_eq!(measured(&verdict, "missing"), 5.0);
    assert!(
        verdict
            .reason
            .contains("5 cases had no output and count as failures"),
        "{}",
        verdict.reason
    );
    assert!(
        verdict
            .reason
            .contains("triage-0001 expected \"account\" got no output"),
        "{}",
        verdict.reason
    );
}

#[test]
fn too_many_missing_outputs_make_the_verdict_inconclusive() {
    attach_example(&without_lines(V2_OUTPUTS, 10, 20), None);
    let verdict = evaluate(TRIAGE_V2, EXAMPLE_PARAMS).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Inconclusive, "{}", verdict.reason);
    assert!(
        verdict.reason.starts_with(
            "20 of 223 cases have no output in attachment:outputs.jsonl, more than max_missing 5%"
        ),
        "{}",
        verdict.reason
    );
    assert_eq!(verdict.score, 0.0);
    let lenient = r#"{"dataset": "attachment:golden.jsonl", "scorer": "normalized", "threshold": 0.8, "max_missing": 0.1}"#;
    let verdict = evaluate(TRIAGE_V2, lenient).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.reason);
}

#[test]
fn no_outputs_attached_is_inconclusive_and_lists_attachments() {
    testing::clear_attachments();
    testing::attach(Owner::Candidate, "golden.jsonl", GOLDEN);
    let verdict = evaluate(TRIAGE_V2, EXAMPLE_PARAMS).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Inconclusive);
    assert!(
        verdict.reason.contains("\"outputs.jsonl\""),
        "{}",
        verdict.reason
    );
    assert!(
        verdict.reason.contains("attached: golden.jsonl"),
        "{}",
        verdict.reason
    );
}

#[test]
fn bad_params_are_errors_naming_the_param() {
    attach_example(V2_OUTPUTS, None);
    let err = evaluate(TRIAGE_V2, r#"{"dataset": "attachment:golden.jsonl"}"#).unwrap_err();
    assert!(err.contains("`threshold`"), "{err}");
    let err = evaluate(
        TRIAGE_V2,
        r#"{"dataset": "attachment:golden.jsonl", "threshold": 0.9, "scorers": "exact"}"#,
    )
    .unwrap_err();
    assert!(err.contains("scorers"), "{err}");
    let err = evaluate(
        TRIAGE_V2,
        r#"{"dataset": "golden.jsonl", "threshold": 0.9}"#,
    )
    .unwrap_err();
    assert!(err.contains("not a data source"), "{err}");
}

#[test]
fn a_bad_case_is_an_error_naming_it() {
    testing::clear_attachments();
    testing::attach(
        Owner::Candidate,
        "golden.jsonl",
        "{\"id\":\"ok\",\"input\":\"i\",\"expected\":\"x\"}\n{\"id\":\"t-9\",\"input\":\"i\",\"expected\":\"[\",\"scorer\":\"regex\"}\n",
    );
    testing::attach(Owner::Candidate, "outputs.jsonl", "");
    let err = evaluate(
        TRIAGE_V2,
        r#"{"dataset": "attachment:golden.jsonl", "threshold": 0.5}"#,
    )
    .unwrap_err();
    assert!(
        err.starts_with("attachment:golden.jsonl: case \"t-9\": invalid regex"),
        "{err}"
    );
}

#[test]
fn mean_score_metric_holds_token_f1_to_the_threshold() {
    testing::clear_attachments();
    testing::attach(
        Owner::Candidate,
        "golden.jsonl",
        concat!(
            "{\"id\":\"q1\",\"input\":\"Who won Super Bowl 50?\",\"expected\":[\"Denver Broncos\",\"The Denver Broncos\"],\"tags\":[\"sports\"]}\n",
            "{\"id\":\"q2\",\"input\":\"Where was it played?\",\"expected\":\"Levi's Stadium in Santa Clara\",\"tags\":[\"places\"]}\n",
        ),
    );
    testing::attach(
        Owner::Candidate,
        "outputs.jsonl",
        "{\"id\":\"q1\",\"output\":\"the Broncos\"}\n{\"id\":\"q2\",\"output\":\"Santa Clara, California\"}\n",
    );
    let params = r#"{"dataset": "attachment:golden.jsonl", "scorer": "token_f1", "metric": "mean_score", "threshold": 0.6}"#;
    let verdict = evaluate(TRIAGE_V2, params).expect("judged");
    // q1: 2/3 against either reference; q2: 2 common of 3 predicted and 5
    // reference tokens ("levis stadium in santa clara"), F1 = 0.5.
    let (q1, q2) = (2.0 / 3.0, 0.5);
    assert!((measured(&verdict, "mean_score") - (q1 + q2) / 2.0).abs() < 1e-12);
    assert_eq!(verdict.outcome, Outcome::Fail, "{}", verdict.reason);
    assert!(
        verdict
            .reason
            .starts_with("mean score 0.583 (pass rate 1.000 (2 of 2 cases))"),
        "{}",
        verdict.reason
    );
    assert!((measured(&verdict, "mean_score[places]") - q2).abs() < 1e-12);
    assert_eq!(measured(&verdict, "pass_rate"), 1.0, "both reach 0.5");
}

#[test]
fn live_mode_without_a_host_cannot_pass() {
    attach_example(V2_OUTPUTS, None);
    let params = r#"{"dataset": "attachment:golden.jsonl", "threshold": 0.9, "live": {"base_url": "http://127.0.0.1:8089"}}"#;
    let result = evaluate(TRIAGE_V2, params);
    if cfg!(feature = "live") {
        let verdict = result.expect("judged");
        assert_eq!(verdict.outcome, Outcome::Inconclusive, "{}", verdict.reason);
        assert_eq!(measured(&verdict, "http_errors"), 223.0);
        assert!(
            verdict.reason.contains("223 of 223 live requests failed"),
            "{}",
            verdict.reason
        );
    } else {
        let err = result.unwrap_err();
        assert!(err.contains("--features live"), "{err}");
    }
}

#[test]
fn description_asks_only_for_what_the_build_uses() {
    let description = GoldenEval::describe();
    assert_eq!(description.name, "golden-eval");
    assert_eq!(description.kind, PluginKind::Gate);
    let mut expected = Vec::new();
    if cfg!(feature = "files") {
        expected.push("files");
    }
    if cfg!(feature = "live") {
        expected.push("http");
    }
    assert_eq!(description.capabilities, expected);
    let schema: serde_json::Value =
        serde_json::from_str(&description.params_schema).expect("schema is JSON");
    assert_eq!(
        schema["required"],
        serde_json::json!(["dataset", "threshold"])
    );
}
