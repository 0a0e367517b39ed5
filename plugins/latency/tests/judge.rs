//! The gate end to end on native builds: params in, attachments read,
//! verdict out, with the example candidates' latency samples.

use gatehouse_plugin_sdk::attachments::Owner;
use gatehouse_plugin_sdk::testing::{self, gate_request};
use gatehouse_plugin_sdk::{Gate, Outcome, PluginKind, Verdict};
use latency::Latency;

const V2_LATENCY: &str = include_str!("../../../examples/outputs/triage-v2.latency.jsonl");
const V4_LATENCY: &str =
    include_str!("../../../examples/outputs/triage-v4-regressed.latency.jsonl");
const V2_OUTPUTS: &str = include_str!("../../../examples/outputs/triage-v2.outputs.jsonl");
const EXAMPLE_PARAMS: &str =
    r#"{"p95_ms": 800, "p99_ms": 1000, "max_regression_pct": {"p50": 10, "p99": 25}}"#;

fn evaluate(params: &str) -> Result<Verdict, String> {
    testing::evaluate::<Latency>(gate_request(r#"{"model": "m"}"#, params))
}

fn attach(candidate: Option<&str>, incumbent: Option<&str>) {
    testing::clear_attachments();
    if let Some(candidate) = candidate {
        testing::attach(Owner::Candidate, "latency.jsonl", candidate);
    }
    if let Some(incumbent) = incumbent {
        testing::attach(Owner::Incumbent, "latency.jsonl", incumbent);
    }
}

fn measured(verdict: &Verdict, name: &str) -> f64 {
    verdict
        .measurement(name)
        .unwrap_or_else(|| panic!("no measurement {name} in {:?}", verdict.measurements))
}

/// `n` latencies spread evenly over `from..to` ms, as JSON lines.
fn spread(n: usize, from: f64, to: f64) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"latency_ms\": {}}}\n",
                from + (to - from) * i as f64 / n as f64
            )
        })
        .collect()
}

#[test]
fn example_candidate_meets_the_example_slos_and_its_own_latency() {
    attach(Some(V2_LATENCY), Some(V2_LATENCY));
    let verdict = evaluate(EXAMPLE_PARAMS).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.reason);
    assert_eq!(measured(&verdict, "samples"), 600.0);
    // Reference values from NumPy and scipy.stats.quantile_test.
    assert!((measured(&verdict, "p99") - 682.724).abs() < 1e-9);
    assert_eq!(measured(&verdict, "p99_low"), 661.6);
    assert_eq!(measured(&verdict, "p99_high"), 740.8);
    assert!((measured(&verdict, "p50") - 425.65).abs() < 1e-9);
    assert_eq!(measured(&verdict, "regression_pct[p99]"), 0.0);
    assert!(
        verdict
            .reason
            .starts_with("600 samples from attachment:latency.jsonl: p50 425.6 ms [418.6, 437.2]"),
        "{}",
        verdict.reason
    );
    assert!(
        verdict
            .reason
            .contains("p99 meets the SLO 1000 ms at 95% confidence"),
        "{}",
        verdict.reason
    );
}

#[test]
fn regressed_example_fails_its_slos_and_the_comparison() {
    attach(Some(V4_LATENCY), Some(V2_LATENCY));
    let verdict = evaluate(EXAMPLE_PARAMS).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Fail, "{}", verdict.reason);
    assert!((measured(&verdict, "p99") - 1520.597).abs() < 1e-6);
    assert_eq!(measured(&verdict, "p99_low"), 1389.8);
    assert!((measured(&verdict, "incumbent_p99") - 682.724).abs() < 1e-9);
    // scipy.stats.mannwhitneyu(v4, v2, alternative="greater").pvalue
    assert!((measured(&verdict, "mwu_p") - 0.000_731_496_165_028_890_9).abs() < 1e-12);
    let reason = &verdict.reason;
    assert!(
        reason.contains(
            "p99 1520.6 ms exceeds the SLO 1000 ms; make the candidate faster or raise `p99_ms`"
        ),
        "{reason}"
    );
    assert!(
        reason.contains("p95 948.6 ms exceeds the SLO 800 ms"),
        "{reason}"
    );
    assert!(reason.contains("p99 rose 122.7% over the incumbent's 682.7 ms, more than max_regression_pct 25%, and the shift is significant"), "{reason}");
    assert!(
        reason.contains("p50 is within max_regression_pct 10% of the incumbent's (4.4%)"),
        "{reason}"
    );
}

#[test]
fn regression_alone_fails_the_regressed_example() {
    attach(Some(V4_LATENCY), Some(V2_LATENCY));
    let verdict = evaluate(r#"{"max_regression_pct": 25}"#).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Fail, "{}", verdict.reason);
    assert!(measured(&verdict, "regression_pct[p95]") > 25.0);
    attach(Some(V2_LATENCY), Some(V4_LATENCY));
    let verdict = evaluate(r#"{"max_regression_pct": 25}"#).expect("judged");
    assert_eq!(
        verdict.outcome,
        Outcome::Pass,
        "faster than the incumbent: {}",
        verdict.reason
    );
}

#[test]
fn golden_outputs_serve_as_samples() {
    testing::clear_attachments();
    testing::attach(Owner::Candidate, "outputs.jsonl", V2_OUTPUTS);
    let verdict =
        evaluate(r#"{"samples": "attachment:outputs.jsonl", "p50_ms": 600}"#).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.reason);
    assert_eq!(measured(&verdict, "samples"), 223.0);
}

#[test]
fn too_few_samples_for_p99_are_inconclusive_with_the_number_needed() {
    attach(Some(&spread(30, 100.0, 200.0)), None);
    let verdict = evaluate(r#"{"p99_ms": 1000}"#).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Inconclusive, "{}", verdict.reason);
    assert!(
        verdict
            .reason
            .contains("p99 needs at least 368 samples for a 95% interval, and there are 30"),
        "{}",
        verdict.reason
    );
    assert!(verdict.measurement("p99_high").is_none());
    assert!(verdict.measurement("p50_high").is_some());
}

#[test]
fn a_point_within_the_slo_with_an_interval_beyond_it_is_uncertain() {
    attach(Some(&spread(100, 100.0, 200.0)), None);
    // p50 is 149.5 ms; its 95% interval reaches about 160 ms.
    let verdict = evaluate(r#"{"p50_ms": 155}"#).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Inconclusive, "{}", verdict.reason);
    assert!(
        verdict
            .reason
            .contains("p50 149.5 ms is within the SLO 155 ms, but its 95% interval reaches"),
        "{}",
        verdict.reason
    );
    let verdict = evaluate(r#"{"p50_ms": 155, "when_uncertain": "warn"}"#).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Warn, "{}", verdict.reason);
    let verdict = evaluate(r#"{"p50_ms": 149}"#).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Fail, "{}", verdict.reason);
    let verdict = evaluate(r#"{"p50_ms": 170}"#).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.reason);
}

#[test]
fn each_percentile_slo_is_judged_on_its_own() {
    attach(Some(V2_LATENCY), None);
    for (slo, crossed) in [("p50_ms", 420.0), ("p95_ms", 590.0), ("p99_ms", 680.0)] {
        let verdict = evaluate(&format!(r#"{{"{slo}": {crossed}}}"#)).expect("judged");
        assert_eq!(verdict.outcome, Outcome::Fail, "{slo}: {}", verdict.reason);
        let name = &slo[..3];
        assert!(
            verdict.reason.contains(&format!("{name} "))
                && verdict.reason.contains("exceeds the SLO"),
            "{}",
            verdict.reason
        );
    }
}

#[test]
fn a_rise_the_test_does_not_confirm_only_warns() {
    // Same body, one slow request more in the candidate's tail.
    let incumbent = spread(400, 100.0, 200.0);
    let candidate = format!("{}{{\"latency_ms\": 5000}}\n", spread(399, 100.0, 200.0));
    attach(Some(&candidate), Some(&incumbent));
    let verdict = evaluate(r#"{"max_regression_pct": {"p99": 0.1}}"#).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Warn, "{}", verdict.reason);
    assert!(
        verdict.reason.contains("but the shift is not significant"),
        "{}",
        verdict.reason
    );
}

#[test]
fn comparison_without_incumbent_samples_says_so() {
    attach(Some(V2_LATENCY), None);
    let verdict = evaluate(r#"{"max_regression_pct": 25}"#).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Inconclusive, "{}", verdict.reason);
    assert!(
        verdict
            .reason
            .contains("attach latency.jsonl with every submission"),
        "{}",
        verdict.reason
    );
    let verdict = evaluate(r#"{"p99_ms": 1000, "max_regression_pct": 25}"#).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.reason);
    assert!(
        verdict.reason.contains("Not compared with the incumbent"),
        "{}",
        verdict.reason
    );
}

#[test]
fn missing_samples_are_inconclusive_and_bad_params_are_named() {
    attach(None, None);
    let verdict = evaluate(r#"{"p99_ms": 1000}"#).expect("judged");
    assert_eq!(verdict.outcome, Outcome::Inconclusive, "{}", verdict.reason);
    assert!(
        verdict.reason.contains("\"latency.jsonl\""),
        "{}",
        verdict.reason
    );
    let err = evaluate(r#"{"p99_ms": -1}"#).unwrap_err();
    assert!(err.contains("`p99_ms`"), "{err}");
    let err = evaluate(r#"{"p99": 1000}"#).unwrap_err();
    assert!(err.contains("p99"), "{err}");
}

#[test]
fn live_mode_needs_its_build_and_reports_failed_requests() {
    if cfg!(feature = "live") {
        // Off WebAssembly every request fails, which is what the verdict says.
        let verdict = evaluate(
            r#"{"p99_ms": 1000, "live": {"base_url": "http://127.0.0.1:8089", "requests": 3}}"#,
        )
        .expect("judged");
        assert_eq!(verdict.outcome, Outcome::Inconclusive, "{}", verdict.reason);
        assert!(
            verdict.reason.starts_with("All 3 live requests failed"),
            "{}",
            verdict.reason
        );
        return;
    }
    let err =
        evaluate(r#"{"p99_ms": 1000, "live": {"base_url": "http://127.0.0.1:8089"}}"#).unwrap_err();
    assert!(
        err.contains("--features live") && err.contains("clock"),
        "{err}"
    );
}

#[test]
fn description_asks_only_for_what_the_build_can_use() {
    let description = Latency::describe();
    assert_eq!(description.name, "latency");
    assert_eq!(description.kind, PluginKind::Gate);
    let mut expected = Vec::new();
    if cfg!(feature = "files") {
        expected.push("files");
    }
    if cfg!(feature = "live") {
        expected.extend(["http", "clock"]);
    }
    assert_eq!(description.capabilities, expected);
}
