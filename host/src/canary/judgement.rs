//! The judgement: per-metric evidence, the Kayenta-style score, and the
//! decision with a one-line reason.
//!
//! Rules, in order:
//! 1. No samples at all: inconclusive, with how many are needed.
//! 2. A critical metric that fails rolls back, at any look. At an interim
//!    look only anytime-valid metrics are judged, so only they can stop a
//!    canary early; that is what keeps early stopping honest.
//! 3. Fewer than `min_samples` on either arm: inconclusive, with how many
//!    more each arm needs — never a pass.
//! 4. An interim look with nothing failing: continue.
//! 5. At the final look, a critical metric without data: inconclusive.
//! 6. Score = weight-% of the metrics with data that pass. ≥ `pass`:
//!    promote; < `marginal`: roll back; between: `on_inconclusive` decides
//!    (extend → continue, pause → inconclusive, fail → roll back).
//!
//! A canary with a metric source (Prometheus) adds its series metrics at
//! the final look, scored and ranked with the others. Then:
//! - no observation at all is not rule 1's inconclusive: the series judge
//!   alone, and the observation metrics (all without data) are left out;
//! - a source whose queries failed makes the look inconclusive, whatever
//!   else has data (after rule 2: a critical failure still rolls back);
//! - every series metric is required: one without data (an empty result,
//!   too few intervals) makes the final look inconclusive, critical or
//!   not, instead of leaving the score to the others.
//!
//! Every number is finite or absent, so the judgement serialises to JSON
//! for the audit log without loss.

use super::config::{CanaryConfig, Metric, OnInconclusive, ScoreBands};
use serde::{Deserialize, Serialize};

/// What became of one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No regression beyond the effect floor was found.
    Pass,
    /// Significantly worse, but by less than the effect floor (for
    /// divergence: above the tolerance, but not significantly).
    Marginal,
    /// Significantly worse by at least the effect floor.
    Fail,
    /// Not enough data to test; left out of the score.
    NoData,
    /// A fixed-horizon test at an interim look: judged at the final look.
    Deferred,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Marginal => "marginal",
            Outcome::Fail => "fail",
            Outcome::NoData => "no-data",
            Outcome::Deferred => "deferred",
        }
    }

    fn has_data(self) -> bool {
        matches!(self, Outcome::Pass | Outcome::Marginal | Outcome::Fail)
    }
}

/// The test behind a metric's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Test {
    /// Normal-mixture sequential probability ratio test (anytime-valid).
    MixtureSprt,
    MannWhitneyU,
    KolmogorovSmirnov,
    /// Order-statistic confidence intervals of a quantile, compared.
    QuantileInterval,
    /// One-sided test of a disagreement rate against its tolerance.
    DisagreementRate,
    /// One-sided test of a mean absolute difference against its tolerance.
    MeanAbsDifference,
}

impl Test {
    pub fn name(self) -> &'static str {
        match self {
            Test::MixtureSprt => "mSPRT",
            Test::MannWhitneyU => "Mann-Whitney U",
            Test::KolmogorovSmirnov => "KS 2-sample",
            Test::QuantileInterval => "quantile CI",
            Test::DisagreementRate => "disagreement z",
            Test::MeanAbsDifference => "abs-diff z",
        }
    }
}

/// One metric's evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricResult {
    pub metric: Metric,
    /// The baseline's value: a mean, rate, median, quantile or spread.
    pub baseline: Option<f64>,
    pub canary: Option<f64>,
    pub baseline_n: u64,
    pub canary_n: u64,
    pub test: Test,
    pub statistic: Option<f64>,
    pub p_value: Option<f64>,
    /// For the anytime-valid test: the likelihood ratio Λ at this look.
    pub e_value: Option<f64>,
    /// The significance level the p-value is compared with.
    pub threshold: f64,
    /// Relative change (0.2 = 20% higher), the CDF gap, or the observed
    /// divergence.
    pub effect: Option<f64>,
    pub effect_floor: f64,
    pub outcome: Outcome,
    pub anytime_valid: bool,
    pub weight: f64,
    pub critical: bool,
    /// One line on what was found, or why there is no result.
    pub note: String,
}

impl MetricResult {
    /// A result with no evidence yet, carrying the metric's settings.
    pub(super) fn untested(
        config: &CanaryConfig,
        metric: Metric,
        test: Test,
        counts: (u64, u64),
    ) -> MetricResult {
        let c = config.metric(metric);
        MetricResult {
            metric,
            baseline: None,
            canary: None,
            baseline_n: counts.0,
            canary_n: counts.1,
            test,
            statistic: None,
            p_value: None,
            e_value: None,
            threshold: config.alpha,
            effect: None,
            effect_floor: c.effect_floor,
            outcome: Outcome::NoData,
            anytime_valid: metric.is_sequential(),
            weight: c.weight,
            critical: c.critical,
            note: String::new(),
        }
    }

    /// One line naming the metric and its evidence, for reasons.
    pub fn summary(&self) -> String {
        let mut s = format!("{} {}", self.metric, self.outcome.name());
        match (self.baseline, self.canary) {
            (Some(b), Some(c)) => s += &format!(": canary {} vs baseline {}", num(c), num(b)),
            (None, Some(c)) => s += &format!(": {}", num(c)),
            _ => {}
        }
        if let Some(e) = self.effect.filter(|_| self.outcome.has_data()) {
            s += &format!(" ({})", effect_text(self.metric, e));
        }
        if let Some(p) = self.p_value.filter(|_| self.outcome.has_data()) {
            s += &format!(", {} p={}", self.test.name(), num(p));
        }
        if !self.outcome.has_data() && !self.note.is_empty() {
            s += &format!(": {}", self.note);
        }
        s
    }
}

/// How an effect reads for people: relative changes as percentages.
pub fn effect_text(metric: Metric, effect: f64) -> String {
    match metric {
        Metric::LatencyDistribution => format!("CDF gap {effect:.3}"),
        Metric::LabelDivergence => format!("{:.2}% disagree", effect * 100.0),
        Metric::PredictionDivergence => format!("mean |Δ| {}", num(effect)),
        _ => format!("{:+.1}%", effect * 100.0),
    }
}

/// A number to about four digits, or in scientific notation when tiny.
pub fn num(x: f64) -> String {
    if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e6) {
        format!("{x:.2e}")
    } else if x.abs() >= 1000.0 {
        format!("{x:.0}")
    } else {
        let digits = 3usize.saturating_sub(x.abs().log10().max(0.0).floor() as usize);
        format!("{x:.digits$}")
    }
}

/// One query a look asked a metric source, and what came back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryEvidence {
    /// The arm as services label it: `active` (the baseline) or `canary`.
    pub arm: String,
    /// The query as sent, its template filled in.
    pub query: String,
    /// Points returned that are numbers.
    pub points: u64,
    /// Points returned that were not (NaN, ±Inf), left out.
    pub dropped: u64,
    /// Attempts it took, retries of transient failures included.
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One metric read from a metric source, compared interval by interval
/// (`canary::intervals`): a fixed-horizon test, judged at final looks only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesResult {
    /// The name it has in `[environment.canary.prometheus.metrics]`.
    pub name: String,
    pub direction: super::Direction,
    /// Each arm's mean over the intervals both reported.
    pub baseline: Option<f64>,
    pub canary: Option<f64>,
    /// Intervals with a number on both arms: the samples.
    pub intervals: u64,
    /// Lag-1 autocorrelation of the differences, as used (clipped).
    pub autocorrelation: Option<f64>,
    /// Batches of contiguous intervals the test compared.
    pub batches: u64,
    /// Exact sign-flip p-value of the batch means, for the bad direction.
    pub p_value: Option<f64>,
    pub threshold: f64,
    /// Relative change of the mean (0.2 = 20% higher); absent when the
    /// baseline's mean is 0.
    pub effect: Option<f64>,
    pub effect_floor: f64,
    pub outcome: Outcome,
    pub weight: f64,
    pub critical: bool,
    /// One query per arm.
    pub queries: Vec<QueryEvidence>,
    pub note: String,
}

impl SeriesResult {
    /// One line naming the metric and its evidence, for reasons.
    pub fn summary(&self) -> String {
        let mut s = format!("{} {}", self.name, self.outcome.name());
        if let (Some(b), Some(c)) = (self.baseline, self.canary) {
            s += &format!(": canary {} vs baseline {}", num(c), num(b));
        }
        if self.outcome.has_data() {
            if let Some(e) = self.effect {
                s += &format!(" ({:+.1}%)", e * 100.0);
            }
            if let Some(p) = self.p_value {
                s += &format!(
                    ", {} intervals in {} batches p={}",
                    self.intervals,
                    self.batches,
                    num(p)
                );
            }
        } else if !self.note.is_empty() {
            s += &format!(": {}", self.note);
        }
        s
    }
}

/// What a look read from a Prometheus source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceEvidence {
    pub url: String,
    /// The range the series cover, and their resolution.
    pub start_ms: i64,
    pub end_ms: i64,
    pub interval_ms: u64,
    /// Looks in a row whose queries failed, this one included.
    pub looks_failed: u32,
    /// Why the source gave nothing to judge, if it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub metrics: Vec<SeriesResult>,
}

/// What the release should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    /// The canary is no worse: promote it.
    Promote,
    /// Nothing failed yet: keep the canary running.
    Continue,
    /// The canary is worse: roll it back.
    RollBack,
    /// Cannot judge. `needed` is how many more samples each arm needs (for
    /// a paused canary: how many more would likely settle it).
    Inconclusive { needed: u64 },
}

/// Where to look when no observation came at all.
pub const REPORT_HINT: &str = "services report what each arm served with \
    `CanaryService.ReportObservations` (see the README, \"Canary and automatic rollback\")";

/// When in a canary's life a judgement is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Look {
    /// While traffic still flows: only anytime-valid tests may stop it.
    Interim,
    /// At the planned end: every test is judged and the score decides.
    Final,
}

/// The evidence and the decision, as written to the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub decision: Decision,
    /// One line, naming the metric that weighed most.
    pub reason: String,
    pub look: Look,
    /// Weighted % of the metrics with data that pass; absent when the
    /// score did not decide.
    pub score: Option<f64>,
    pub bands: ScoreBands,
    pub alpha: f64,
    pub baseline_n: u64,
    pub canary_n: u64,
    /// Request keys served by both arms.
    pub mirrored_pairs: u64,
    pub metrics: Vec<MetricResult>,
    /// What a metric source reported, at a final look of a canary that
    /// names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceEvidence>,
}

impl Judgement {
    pub fn metric(&self, metric: Metric) -> Option<&MetricResult> {
        self.metrics.iter().find(|m| m.metric == metric)
    }
}

/// One metric as the decision weighs it, whichever test judged it.
struct Weighed {
    outcome: Outcome,
    critical: bool,
    weight: f64,
    p_value: Option<f64>,
    summary: String,
}

impl Weighed {
    fn of_metric(m: &MetricResult) -> Weighed {
        Weighed {
            outcome: m.outcome,
            critical: m.critical,
            weight: m.weight,
            p_value: m.p_value,
            summary: m.summary(),
        }
    }

    fn of_series(s: &SeriesResult) -> Weighed {
        Weighed {
            outcome: s.outcome,
            critical: s.critical,
            weight: s.weight,
            p_value: s.p_value,
            summary: format!("{} (prometheus)", s.summary()),
        }
    }
}

/// Applies the rules in this module's documentation.
pub(super) fn decide(
    config: &CanaryConfig,
    look: Look,
    counts: (u64, u64),
    metrics: &[MetricResult],
    source: Option<&SourceEvidence>,
) -> (Decision, String, Option<f64>) {
    let (nb, nc) = counts;
    let fewest = nb.min(nc);
    let min = config.min_samples;
    let observed = nb > 0 || nc > 0;
    // With a source and no observation, the observation metrics have
    // nothing to say and are left out.
    let mut weighed: Vec<Weighed> = if observed || source.is_none() {
        metrics.iter().map(Weighed::of_metric).collect()
    } else {
        Vec::new()
    };
    if let Some(s) = source {
        weighed.extend(s.metrics.iter().map(Weighed::of_series));
    }
    let worst = worst(&weighed);
    let worst_text = worst.map_or_else(|| "no metric has data".to_string(), |m| m.summary.clone());

    if !observed && source.is_none() {
        return (
            Decision::Inconclusive { needed: min },
            format!(
                "no service has reported observations yet; {REPORT_HINT}; need {min} samples per arm"
            ),
            None,
        );
    }
    if let Some(m) = worst.filter(|m| m.critical && m.outcome == Outcome::Fail) {
        return (
            Decision::RollBack,
            format!("critical metric failed: {}", m.summary),
            None,
        );
    }
    if let Some(error) = source.and_then(|s| s.error.as_ref().map(|e| (s, e))) {
        let (s, e) = error;
        return (
            Decision::Inconclusive { needed: min },
            format!(
                "the metric source failed {} look(s) in a row, so this look is inconclusive: {e}",
                s.looks_failed
            ),
            None,
        );
    }
    if observed && fewest < min {
        let short = if nb < nc { "baseline" } else { "canary" };
        return (
            Decision::Inconclusive {
                needed: min - fewest,
            },
            format!(
                "too few samples: baseline {nb}, canary {nc}; the {short} needs {} more \
                 (min_samples {min})",
                min - fewest
            ),
            None,
        );
    }
    if look == Look::Interim {
        return (
            Decision::Continue,
            format!(
                "no anytime-valid regression after {fewest} samples per arm; worst: {worst_text}"
            ),
            None,
        );
    }
    // A metric the source was asked for is required: one it could not read
    // yet (an empty result, too few intervals) holds the decision back,
    // critical or not, rather than leave the score to the others.
    if let Some(m) = source.and_then(|s| s.metrics.iter().find(|m| !m.outcome.has_data())) {
        return (
            Decision::Inconclusive { needed: min },
            format!("no data yet for {} (prometheus)", m.summary()),
            None,
        );
    }
    if let Some(m) = weighed.iter().find(|m| m.critical && !m.outcome.has_data()) {
        return (
            Decision::Inconclusive { needed: min },
            format!("critical metric has no data: {}", m.summary),
            None,
        );
    }
    let judged = weighed.iter().filter(|m| m.outcome.has_data());
    if judged.clone().next().is_none() {
        return (
            Decision::Inconclusive { needed: min },
            format!("no metric has data, and no data is never a pass: {worst_text}"),
            None,
        );
    }
    let total: f64 = judged.clone().map(|m| m.weight).sum();
    if total <= 0.0 {
        return (
            Decision::Inconclusive { needed: min },
            "no metric with data carries weight; enable one or give it a weight".to_string(),
            None,
        );
    }
    let passed: f64 = judged
        .filter(|m| m.outcome == Outcome::Pass)
        .map(|m| m.weight)
        .sum();
    let score = 100.0 * passed / total;
    let bands = config.score;
    let s = format!("{score:.1}");
    let (decision, why) = if score >= bands.pass {
        (
            Decision::Promote,
            format!("score {s} ≥ pass {}", bands.pass),
        )
    } else if score < bands.marginal {
        (
            Decision::RollBack,
            format!("score {s} < marginal {}", bands.marginal),
        )
    } else {
        let between = format!(
            "score {s} between marginal {} and pass {}",
            bands.marginal, bands.pass
        );
        match config.on_inconclusive {
            OnInconclusive::Extend => (Decision::Continue, format!("{between}; extending")),
            OnInconclusive::Pause => (
                Decision::Inconclusive { needed: fewest },
                format!(
                    "{between}; paused for a person to decide (about {fewest} more per arm may settle it)"
                ),
            ),
            OnInconclusive::Fail => (
                Decision::RollBack,
                format!("{between}; on_inconclusive = fail"),
            ),
        }
    };
    (decision, format!("{why}; worst: {worst_text}"), Some(score))
}

/// The metric that weighs most against the canary: failures (critical
/// first) before marginals before passes, then by weight, then by evidence.
fn worst(metrics: &[Weighed]) -> Option<&Weighed> {
    let rank = |m: &Weighed| match (m.outcome, m.critical) {
        (Outcome::Fail, true) => 5,
        (Outcome::Fail, false) => 4,
        (Outcome::Marginal, _) => 3,
        (Outcome::Pass, _) => 2,
        (Outcome::NoData, _) => 1,
        (Outcome::Deferred, _) => 0,
    };
    metrics.iter().max_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then(a.weight.total_cmp(&b.weight))
            .then(
                b.p_value
                    .unwrap_or(1.0)
                    .total_cmp(&a.p_value.unwrap_or(1.0)),
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(metric: Metric, outcome: Outcome, critical: bool) -> MetricResult {
        MetricResult {
            metric,
            baseline: Some(100.0),
            canary: Some(130.0),
            baseline_n: 100,
            canary_n: 100,
            test: Test::MannWhitneyU,
            statistic: Some(1.0),
            p_value: Some(if outcome == Outcome::Pass { 0.5 } else { 0.001 }),
            e_value: None,
            threshold: 0.01,
            effect: Some(0.3),
            effect_floor: 0.05,
            outcome,
            anytime_valid: false,
            weight: 1.0,
            critical,
            note: String::new(),
        }
    }

    fn all_pass() -> Vec<MetricResult> {
        Metric::ALL
            .iter()
            .map(|&m| result(m, Outcome::Pass, false))
            .collect()
    }

    #[test]
    fn all_passing_metrics_promote() {
        let c = CanaryConfig::default();
        let (d, reason, score) = decide(&c, Look::Final, (100, 100), &all_pass(), None);
        assert_eq!(d, Decision::Promote, "{reason}");
        assert_eq!(score, Some(100.0));
    }

    #[test]
    fn one_failure_in_nine_is_inconclusive_and_extends_by_default() {
        let c = CanaryConfig::default();
        let mut m = all_pass();
        m[3] = result(Metric::LatencyDistribution, Outcome::Fail, false);
        let (d, reason, _) = decide(&c, Look::Final, (100, 100), &m, None);
        assert_eq!(d, Decision::Continue, "{reason}");
        assert!(reason.contains("latency_distribution"), "{reason}");
        let paused = CanaryConfig {
            on_inconclusive: OnInconclusive::Pause,
            ..c
        };
        let (d, _, _) = decide(&paused, Look::Final, (100, 100), &m, None);
        assert_eq!(d, Decision::Inconclusive { needed: 100 });
    }

    #[test]
    fn low_score_rolls_back_naming_the_worst_metric() {
        let c = CanaryConfig::default();
        let mut m = all_pass();
        for failing in &mut m[1..4] {
            failing.outcome = Outcome::Fail;
            failing.p_value = Some(0.001);
        }
        m[2].weight = 3.0;
        let (d, reason, score) = decide(&c, Look::Final, (100, 100), &m, None);
        assert_eq!(d, Decision::RollBack);
        assert!(score.unwrap() < 75.0);
        assert!(reason.contains("latency_centre"), "{reason}");
    }

    #[test]
    fn interim_look_continues_unless_a_critical_metric_fails() {
        let c = CanaryConfig::default();
        let (d, _, _) = decide(&c, Look::Interim, (100, 100), &all_pass(), None);
        assert_eq!(d, Decision::Continue);
        let mut m = all_pass();
        m[0] = result(Metric::ErrorRate, Outcome::Fail, true);
        let (d, reason, _) = decide(&c, Look::Interim, (30, 30), &m, None);
        assert_eq!(d, Decision::RollBack);
        assert!(
            reason.starts_with("critical metric failed: error_rate"),
            "{reason}"
        );
    }

    #[test]
    fn no_data_and_no_weight_are_inconclusive() {
        let c = CanaryConfig::default();
        let (d, _, _) = decide(&c, Look::Final, (0, 0), &[], None);
        assert_eq!(d, Decision::Inconclusive { needed: 50 });
        let mut m = all_pass();
        m.iter_mut().for_each(|m| m.weight = 0.0);
        let (d, reason, _) = decide(&c, Look::Final, (60, 60), &m, None);
        assert_eq!(d, Decision::Inconclusive { needed: 50 }, "{reason}");
    }

    fn series(name: &str, outcome: Outcome, critical: bool) -> SeriesResult {
        SeriesResult {
            name: name.into(),
            direction: super::super::Direction::IncreaseIsBad,
            baseline: Some(0.01),
            canary: Some(0.01),
            intervals: 40,
            autocorrelation: Some(0.0),
            batches: 9,
            p_value: Some(if outcome == Outcome::Pass { 0.6 } else { 0.002 }),
            threshold: 0.01,
            effect: Some(0.0),
            effect_floor: 0.1,
            outcome,
            weight: 1.0,
            critical,
            queries: Vec::new(),
            note: "no data".into(),
        }
    }

    fn source(metrics: Vec<SeriesResult>, error: Option<&str>) -> SourceEvidence {
        SourceEvidence {
            url: "http://127.0.0.1:9090".into(),
            start_ms: 0,
            end_ms: 60_000,
            interval_ms: 2_000,
            looks_failed: u32::from(error.is_some()),
            error: error.map(str::to_string),
            metrics,
        }
    }

    #[test]
    fn a_source_judges_alone_when_no_service_reports_observations() {
        let c = CanaryConfig::default();
        let none: Vec<MetricResult> = Metric::ALL
            .iter()
            .map(|&m| MetricResult::untested(&c, m, Test::MixtureSprt, (0, 0)))
            .collect();
        let passing = source(
            vec![
                series("error_rate", Outcome::Pass, true),
                series("latency", Outcome::Pass, false),
            ],
            None,
        );
        let (d, reason, score) = decide(&c, Look::Final, (0, 0), &none, Some(&passing));
        assert_eq!(d, Decision::Promote, "{reason}");
        assert_eq!(score, Some(100.0));
        let failing = source(
            vec![
                series("error_rate", Outcome::Fail, true),
                series("latency", Outcome::Pass, false),
            ],
            None,
        );
        let (d, reason, _) = decide(&c, Look::Final, (0, 0), &none, Some(&failing));
        assert_eq!(d, Decision::RollBack, "{reason}");
        assert!(
            reason.starts_with("critical metric failed: error_rate fail")
                && reason.contains("(prometheus)"),
            "{reason}"
        );
        // A metric without data holds the decision back, even when the
        // others pass: never a promotion on what could be read.
        let partial = source(
            vec![
                series("error_rate", Outcome::Pass, true),
                series("latency", Outcome::NoData, false),
            ],
            None,
        );
        let (d, reason, _) = decide(&c, Look::Final, (0, 0), &none, Some(&partial));
        assert_eq!(d, Decision::Inconclusive { needed: 50 }, "{reason}");
        assert!(reason.starts_with("no data yet for latency"), "{reason}");
    }

    #[test]
    fn a_failing_source_makes_the_look_inconclusive_whatever_else_passes() {
        let c = CanaryConfig::default();
        let down = source(
            vec![series("error_rate", Outcome::NoData, false)],
            Some("connection refused"),
        );
        let (d, reason, _) = decide(&c, Look::Final, (100, 100), &all_pass(), Some(&down));
        assert_eq!(d, Decision::Inconclusive { needed: 50 }, "{reason}");
        assert!(reason.contains("connection refused"), "{reason}");
        // A critical failure in what was observed still rolls back.
        let mut m = all_pass();
        m[0] = result(Metric::ErrorRate, Outcome::Fail, true);
        let (d, _, _) = decide(&c, Look::Final, (100, 100), &m, Some(&down));
        assert_eq!(d, Decision::RollBack);
    }

    #[test]
    fn decision_serialises_with_its_kind() {
        let json = serde_json::to_string(&Decision::Inconclusive { needed: 12 }).unwrap();
        assert_eq!(json, r#"{"kind":"inconclusive","needed":12}"#);
        assert_eq!(
            serde_json::to_string(&Decision::RollBack).unwrap(),
            r#"{"kind":"roll_back"}"#
        );
    }

    #[test]
    fn numbers_read_with_about_four_digits() {
        assert_eq!(num(412.04), "412.0");
        assert_eq!(num(0.0123), "0.012");
        assert_eq!(num(0.00012), "1.20e-4");
        assert_eq!(num(12345.6), "12346");
        assert_eq!(num(14654913407.0), "1.47e10");
    }
}
