//! Prediction divergence: on mirrored requests (one key served by both
//! arms), how often the output fingerprints differ and how far numeric
//! predictions move, each against its tolerance from `[divergence]`.
//!
//! Rules: only keys served by both arms count; fewer than `min_samples`
//! such pairs is no data, not a pass. A rate or mean at or below its
//! tolerance passes; above it, a one-sided z-test (normal approximation)
//! asks whether it is *significantly* above: yes fails, no is marginal.
//! A tolerance of zero fails on the first difference seen.

use super::config::{CanaryConfig, Metric};
use super::judgement::{MetricResult, Outcome, Test};
use super::observation::Overlap;
use gatehouse_stats::normal_sf;

/// Judges how often output fingerprints differ on mirrored requests.
pub fn judge_labels(config: &CanaryConfig, overlap: &Overlap) -> MetricResult {
    let tolerance = config.divergence.max_label_disagreement;
    let pairs = overlap.label_pairs;
    let mut r = blank(
        config,
        Metric::LabelDivergence,
        Test::DisagreementRate,
        pairs,
        tolerance,
    );
    if let Some(reason) = too_few(config, pairs, "output fingerprints") {
        r.note = reason;
        return r;
    }
    let rate = overlap.label_disagreements as f64 / pairs as f64;
    let se = (tolerance * (1.0 - tolerance) / pairs as f64).sqrt();
    let (z, p) = one_sided(rate, tolerance, se);
    finish(
        &mut r,
        rate,
        z,
        p,
        format!(
            "{} of {pairs} mirrored outputs differ (tolerance {:.2}%)",
            overlap.label_disagreements,
            tolerance * 100.0
        ),
    );
    r
}

/// Judges the mean absolute difference of numeric predictions on mirrored
/// requests.
pub fn judge_predictions(config: &CanaryConfig, overlap: &Overlap) -> MetricResult {
    let tolerance = config.divergence.max_mean_abs_difference;
    let diffs = overlap.prediction_abs_diff;
    let mut r = blank(
        config,
        Metric::PredictionDivergence,
        Test::MeanAbsDifference,
        diffs.n,
        tolerance,
    );
    if let Some(reason) = too_few(config, diffs.n, "numeric predictions") {
        r.note = reason;
        return r;
    }
    let se = (diffs.variance() / diffs.n as f64).sqrt();
    let (z, p) = one_sided(diffs.mean, tolerance, se);
    finish(
        &mut r,
        diffs.mean,
        z,
        p,
        format!(
            "mean |Δ| over {} mirrored predictions (tolerance {tolerance})",
            diffs.n
        ),
    );
    r
}

fn blank(
    config: &CanaryConfig,
    metric: Metric,
    test: Test,
    pairs: u64,
    tolerance: f64,
) -> MetricResult {
    MetricResult {
        effect_floor: tolerance,
        ..MetricResult::untested(config, metric, test, (pairs, pairs))
    }
}

fn too_few(config: &CanaryConfig, pairs: u64, what: &str) -> Option<String> {
    if pairs == 0 {
        Some(format!("no mirrored requests with {what} on both arms"))
    } else if pairs < config.min_samples {
        Some(format!(
            "{pairs} mirrored requests with {what}; needs {} more",
            config.min_samples - pairs
        ))
    } else {
        None
    }
}

/// z and one-sided p-value for "observed is above tolerance".
fn one_sided(observed: f64, tolerance: f64, se: f64) -> (f64, f64) {
    if se > 0.0 {
        let z = (observed - tolerance) / se;
        (z, normal_sf(z))
    } else if observed > tolerance {
        (f64::MAX, 0.0)
    } else {
        (0.0, 1.0)
    }
}

fn finish(r: &mut MetricResult, observed: f64, z: f64, p: f64, note: String) {
    r.canary = Some(observed);
    r.effect = Some(observed);
    r.statistic = Some(z);
    r.p_value = Some(p);
    r.outcome = if observed <= r.effect_floor {
        Outcome::Pass
    } else if p <= r.threshold {
        Outcome::Fail
    } else {
        Outcome::Marginal
    };
    r.note = note;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canary::observation::{Arm, Observation, Window};

    fn mirrored(n: usize, differ_every: usize, shift: f64) -> Window {
        let mut w = Window::new();
        for i in 0..n {
            let label = |arm| {
                if arm == Arm::Canary && differ_every > 0 && i % differ_every == 0 {
                    "other"
                } else {
                    "same"
                }
            };
            for arm in [Arm::Baseline, Arm::Canary] {
                let extra = if arm == Arm::Canary { shift } else { 0.0 };
                w.push(Observation {
                    request_key: format!("req-{i}"),
                    output_fingerprint: Some(label(arm).to_string()),
                    prediction: Some((i % 10) as f64 / 10.0 + extra),
                    ..Observation::latency(arm, 10.0)
                })
                .unwrap();
            }
        }
        w
    }

    #[test]
    fn identical_outputs_on_mirrored_keys_pass() {
        let c = CanaryConfig::default();
        let w = mirrored(200, 0, 0.0);
        assert_eq!(judge_labels(&c, w.overlap()).outcome, Outcome::Pass);
        assert_eq!(judge_predictions(&c, w.overlap()).outcome, Outcome::Pass);
    }

    #[test]
    fn frequent_label_changes_on_mirrored_keys_fail() {
        let c = CanaryConfig::default();
        let w = mirrored(200, 5, 0.0);
        let r = judge_labels(&c, w.overlap());
        assert_eq!(r.outcome, Outcome::Fail, "{r:?}");
        assert_eq!(r.canary, Some(0.2));
    }

    #[test]
    fn shifted_predictions_on_mirrored_keys_fail() {
        let c = CanaryConfig::default();
        let w = mirrored(200, 0, 0.2);
        let r = judge_predictions(&c, w.overlap());
        assert_eq!(r.outcome, Outcome::Fail, "{r:?}");
        assert!((r.canary.unwrap() - 0.2).abs() < 1e-9);
    }

    #[test]
    fn slightly_over_tolerance_is_marginal_not_failed() {
        let c = CanaryConfig::default();
        // 3 of 100 differ against a 2% tolerance: above it, not significantly.
        let w = mirrored(100, 34, 0.0);
        let r = judge_labels(&c, w.overlap());
        assert_eq!(r.outcome, Outcome::Marginal, "{r:?}");
    }

    #[test]
    fn unmirrored_traffic_is_no_data() {
        let c = CanaryConfig::default();
        let mut w = Window::new();
        w.push(Observation::latency(Arm::Baseline, 1.0)).unwrap();
        let r = judge_labels(&c, w.overlap());
        assert_eq!(r.outcome, Outcome::NoData);
        assert!(r.note.contains("no mirrored requests"), "{}", r.note);
        let few = mirrored(10, 0, 0.0);
        let r = judge_predictions(&c, few.overlap());
        assert_eq!(r.outcome, Outcome::NoData);
        assert!(r.note.contains("needs 40 more"), "{}", r.note);
    }
}
