//! Per-metric tests: each turns one metric's samples into a
//! [`MetricResult`].
//!
//! Rules (Kayenta's, per metric): a metric fails only when the change is
//! both *significant* (p ≤ α, on the side the config calls bad) and
//! *large enough to matter* (beyond the metric's effect floor);
//! significant but smaller is marginal. Too few samples is no data, with
//! the count still needed, never a pass.
//!
//! - `error_rate`, `latency_mean`, `cost`: the anytime-valid mSPRT
//!   ([`super::sequential`]), judged at every look.
//! - `latency_centre`: Mann-Whitney U (one-sided toward the bad direction,
//!   two-sided for `either`), effect on the median.
//! - `latency_distribution`: two-sample Kolmogorov-Smirnov, one-sided, so a
//!   canary whose spread or tail grew is caught even when its centre did
//!   not move; the effect is the CDF gap D.
//! - `latency_p95`, `latency_p99`: order-statistic confidence intervals of
//!   the quantile on each arm. At level a, both intervals cover the true
//!   quantiles with probability ≥ 1 − a/2 on the side that matters, so
//!   "canary's lower bound above the baseline's upper bound" happens under
//!   H₀ with probability ≤ a: the smallest such a is the p-value.
//!
//! The fixed-horizon tests (all but the mSPRT) are valid at one look, so
//! they run only at the final look; at an interim look they are deferred.

use super::config::{CanaryConfig, Direction, Metric};
use super::judgement::num;
use super::judgement::{MetricResult, Outcome, Test};
use super::observation::{Moments, Window};
use super::sequential::MixtureSprt;
use gatehouse_stats::{self as stats, Alternative};

/// Both arms' latencies in ascending order, sorted once per look.
pub struct SortedLatencies {
    pub baseline: Vec<f64>,
    pub canary: Vec<f64>,
}

impl SortedLatencies {
    pub fn of(window: &Window) -> SortedLatencies {
        SortedLatencies {
            baseline: window.baseline().sorted_latencies(),
            canary: window.canary().sorted_latencies(),
        }
    }
}

fn counts(window: &Window) -> (u64, u64) {
    (window.baseline().count(), window.canary().count())
}

/// A fixed-horizon metric at an interim look.
pub fn deferred(config: &CanaryConfig, metric: Metric, window: &Window) -> MetricResult {
    let test = match metric {
        Metric::LatencyCentre => Test::MannWhitneyU,
        Metric::LatencyDistribution => Test::KolmogorovSmirnov,
        Metric::LabelDivergence => Test::DisagreementRate,
        Metric::PredictionDivergence => Test::MeanAbsDifference,
        _ => Test::QuantileInterval,
    };
    MetricResult {
        outcome: Outcome::Deferred,
        note: "fixed-horizon test; judged at the final look".to_string(),
        ..MetricResult::untested(config, metric, test, counts(window))
    }
}

/// `error_rate`, `latency_mean` or `cost`, through the metric's own
/// sequential test (which remembers earlier looks).
pub fn judge_sequential(
    config: &CanaryConfig,
    metric: Metric,
    sprt: &mut MixtureSprt,
    window: &Window,
) -> MetricResult {
    let (b, c) = (window.baseline(), window.canary());
    let mut r = MetricResult::untested(config, metric, Test::MixtureSprt, counts(window));
    let settings = config.metric(metric);
    let mean = |m: Moments| (m.n > 0).then_some(m.mean);
    let (vb, vc) = match metric {
        Metric::ErrorRate => (b.error_rate(), c.error_rate()),
        Metric::Cost if !(b.cost_recorded() || c.cost_recorded()) => {
            r.note = "no cost recorded on either arm".to_string();
            return r;
        }
        Metric::Cost => (mean(b.cost_moments()), mean(c.cost_moments())),
        _ => (mean(b.latency_moments()), mean(c.latency_moments())),
    };
    r.baseline = vb;
    r.canary = vc;
    let fewest = b.count().min(c.count());
    let start = config.sequential.min_samples;
    if fewest < start {
        r.note = format!(
            "the anytime-valid test starts at {start} samples per arm; needs {} more",
            start - fewest
        );
        return r;
    }
    let evidence = match metric {
        Metric::ErrorRate => {
            sprt.look_proportions((b.errors(), b.count()), (c.errors(), c.count()))
        }
        Metric::Cost => sprt.look_means(&b.cost_moments(), &c.cost_moments()),
        _ => sprt.look_means(&b.latency_moments(), &c.latency_moments()),
    };
    let (Some(e), Some(vb), Some(vc)) = (evidence, vb, vc) else {
        return r;
    };
    let p = e.p_value(settings.direction);
    r.statistic = Some(e.z);
    r.e_value = Some(e.e_value);
    r.p_value = Some(p);
    (r.effect, r.outcome) = classify(
        settings.direction,
        p <= config.alpha,
        vb,
        vc,
        settings.effect_floor,
    );
    r.note = format!(
        "difference {} ± {} (1 s.e.); always-valid p over every look",
        num(e.estimate),
        num(e.std_error)
    );
    r
}

/// `latency_centre`: Mann-Whitney U, effect on the median.
pub fn judge_centre(
    config: &CanaryConfig,
    window: &Window,
    sorted: &SortedLatencies,
) -> MetricResult {
    let metric = Metric::LatencyCentre;
    let mut r = MetricResult::untested(config, metric, Test::MannWhitneyU, counts(window));
    let settings = config.metric(metric);
    if let Some(note) = too_few(config, window) {
        r.note = note;
        return r;
    }
    let (Ok(mb), Ok(mc)) = (
        stats::quantile(&sorted.baseline, 0.5),
        stats::quantile(&sorted.canary, 0.5),
    ) else {
        r.note = "cannot take the medians".to_string();
        return r;
    };
    r.baseline = Some(mb);
    r.canary = Some(mc);
    let alternative = match settings.direction {
        Direction::IncreaseIsBad => Alternative::Greater,
        Direction::DecreaseIsBad => Alternative::Less,
        Direction::Either => Alternative::TwoSided,
    };
    match stats::mann_whitney_u(&sorted.canary, &sorted.baseline, alternative) {
        Ok(t) => {
            r.statistic = Some(t.statistic);
            r.p_value = Some(t.p_value);
            (r.effect, r.outcome) = classify(
                settings.direction,
                t.p_value <= config.alpha,
                mb,
                mc,
                settings.effect_floor,
            );
            r.note = "U of the canary; effect on the median".to_string();
        }
        Err(e) => r.note = format!("rank test not possible: {e}"),
    }
    r
}

/// `latency_distribution`: two-sample Kolmogorov-Smirnov; values shown are
/// standard deviations, the effect is the CDF gap.
pub fn judge_distribution(
    config: &CanaryConfig,
    window: &Window,
    sorted: &SortedLatencies,
) -> MetricResult {
    let metric = Metric::LatencyDistribution;
    let mut r = MetricResult::untested(config, metric, Test::KolmogorovSmirnov, counts(window));
    let settings = config.metric(metric);
    if let Some(note) = too_few(config, window) {
        r.note = note;
        return r;
    }
    r.baseline = Some(window.baseline().latency_moments().variance().sqrt());
    r.canary = Some(window.canary().latency_moments().variance().sqrt());
    // ks_2samp's "less": the first sample's CDF lies below the second's
    // somewhere, i.e. the canary is slower there.
    let alternative = match settings.direction {
        Direction::IncreaseIsBad => Alternative::Less,
        Direction::DecreaseIsBad => Alternative::Greater,
        Direction::Either => Alternative::TwoSided,
    };
    match stats::ks_2samp(&sorted.canary, &sorted.baseline, alternative) {
        Ok(t) => {
            r.statistic = Some(t.statistic);
            r.p_value = Some(t.p_value);
            r.effect = Some(t.statistic);
            r.outcome = if t.p_value > config.alpha {
                Outcome::Pass
            } else if t.statistic >= settings.effect_floor {
                Outcome::Fail
            } else {
                Outcome::Marginal
            };
            r.note = "values are standard deviations; effect is the largest CDF gap".to_string();
        }
        Err(e) => r.note = format!("distribution test not possible: {e}"),
    }
    r
}

/// `latency_p95` / `latency_p99`: order-statistic intervals compared.
pub fn judge_quantile(
    config: &CanaryConfig,
    metric: Metric,
    q: f64,
    window: &Window,
    sorted: &SortedLatencies,
) -> MetricResult {
    let mut r = MetricResult::untested(config, metric, Test::QuantileInterval, counts(window));
    let settings = config.metric(metric);
    // Below this many samples, the largest observation is not yet an upper
    // confidence bound for the quantile at level α: 1 − qⁿ ≥ 1 − α/2.
    let needed = ((config.alpha / 2.0).ln() / q.ln())
        .ceil()
        .max(config.min_samples as f64) as u64;
    let fewest = window.baseline().count().min(window.canary().count());
    if fewest < needed {
        r.note = format!(
            "a {:.0}th-percentile interval at level {} needs {needed} samples per arm; needs {} more",
            q * 100.0,
            config.alpha,
            needed - fewest
        );
        return r;
    }
    let (Ok(qb), Ok(qc)) = (
        stats::quantile(&sorted.baseline, q),
        stats::quantile(&sorted.canary, q),
    ) else {
        r.note = "cannot take the quantiles".to_string();
        return r;
    };
    r.baseline = Some(qb);
    r.canary = Some(qc);
    let p = match settings.direction {
        Direction::IncreaseIsBad => separation_p(&sorted.baseline, &sorted.canary, q),
        Direction::DecreaseIsBad => separation_p(&sorted.canary, &sorted.baseline, q),
        Direction::Either => (2.0
            * separation_p(&sorted.baseline, &sorted.canary, q).min(separation_p(
                &sorted.canary,
                &sorted.baseline,
                q,
            )))
        .min(1.0),
    };
    r.p_value = Some(p);
    r.statistic = (qb > 0.0).then(|| qc / qb);
    (r.effect, r.outcome) = classify(
        settings.direction,
        p <= config.alpha,
        qb,
        qc,
        settings.effect_floor,
    );
    r.note = "statistic is the ratio canary/baseline; p is the smallest level at which the \
              intervals separate"
        .to_string();
    r
}

/// The smallest level a at which the (1 − a) intervals separate with
/// `high` above `low`; 1 when they never do.
fn separation_p(low: &[f64], high: &[f64], q: f64) -> f64 {
    let separated = |a: f64| match (
        stats::quantile_ci(low, q, 1.0 - a),
        stats::quantile_ci(high, q, 1.0 - a),
    ) {
        (Ok(l), Ok(h)) => h.low > l.high,
        _ => false,
    };
    let (mut lo, mut hi) = (1e-12f64, 0.999f64);
    if !separated(hi) {
        return 1.0;
    }
    if separated(lo) {
        return lo;
    }
    // Separation only gets easier as the level rises (intervals narrow),
    // so bisect on a log scale.
    for _ in 0..40 {
        let mid = (lo.ln() * 0.5 + hi.ln() * 0.5).exp();
        if separated(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

fn too_few(config: &CanaryConfig, window: &Window) -> Option<String> {
    let fewest = window.baseline().count().min(window.canary().count());
    (fewest < config.min_samples).then(|| {
        format!(
            "{fewest} samples on the smaller arm; needs {} more",
            config.min_samples - fewest
        )
    })
}

/// Relative change of the canary against the baseline: 0.2 is 20% higher.
/// `None` when the baseline is zero and the canary is not.
pub fn relative(baseline: f64, canary: f64) -> Option<f64> {
    if baseline != 0.0 {
        Some((canary - baseline) / baseline.abs())
    } else if canary == 0.0 {
        Some(0.0)
    } else {
        None
    }
}

/// The Kayenta rule: significant on the bad side and beyond the floor
/// fails; significant on the bad side but within the floor is marginal.
fn classify(
    direction: Direction,
    significant: bool,
    baseline: f64,
    canary: f64,
    floor: f64,
) -> (Option<f64>, Outcome) {
    let effect = relative(baseline, canary);
    if !significant || !direction.is_bad(canary - baseline) {
        return (effect, Outcome::Pass);
    }
    let beyond = match effect {
        // From zero to anything is beyond any floor.
        None => true,
        Some(e) => match direction {
            Direction::IncreaseIsBad => e >= floor,
            Direction::DecreaseIsBad => -e >= floor,
            Direction::Either => e.abs() >= floor,
        },
    };
    (
        effect,
        if beyond {
            Outcome::Fail
        } else {
            Outcome::Marginal
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_change_handles_a_zero_baseline() {
        assert_eq!(relative(100.0, 120.0), Some(0.2));
        assert_eq!(relative(0.0, 0.0), Some(0.0));
        assert_eq!(relative(0.0, 0.1), None);
    }

    #[test]
    fn significant_change_within_the_floor_is_marginal() {
        let up = Direction::IncreaseIsBad;
        assert_eq!(classify(up, true, 100.0, 103.0, 0.05).1, Outcome::Marginal);
        assert_eq!(classify(up, true, 100.0, 106.0, 0.05).1, Outcome::Fail);
        assert_eq!(classify(up, false, 100.0, 200.0, 0.05).1, Outcome::Pass);
        // Significant, but on the good side.
        assert_eq!(classify(up, true, 100.0, 80.0, 0.05).1, Outcome::Pass);
        assert_eq!(
            classify(Direction::Either, true, 100.0, 80.0, 0.05).1,
            Outcome::Fail
        );
        assert_eq!(classify(up, true, 0.0, 0.01, 0.05).1, Outcome::Fail);
    }
}
