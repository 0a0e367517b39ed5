//! How a canary is judged: which metrics count, which direction is a
//! regression, how large a change must be to matter, and the score bands.
//!
//! Rules: read from TOML with unknown keys refused, every key optional, and
//! the defaults judge a typical model-serving canary sensibly on a first run
//! (Kayenta's 50-sample floor and 95/75 score bands, α = 0.01). A parsed
//! config has been validated: a bad value is refused here with its key
//! named, so the judge never meets one.

use super::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// A quantity compared between the arms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Share of requests that failed; anytime-valid test on proportions.
    ErrorRate,
    /// Mean latency; anytime-valid test on means.
    LatencyMean,
    /// Typical latency; Mann-Whitney U rank test, effect on the median.
    LatencyCentre,
    /// Shape of the latency distribution; two-sample Kolmogorov-Smirnov.
    LatencyDistribution,
    /// 95th percentile latency; order-statistic intervals.
    LatencyP95,
    /// 99th percentile latency; order-statistic intervals.
    LatencyP99,
    /// Mean cost per request; anytime-valid test on means.
    Cost,
    /// How often the arms' output fingerprints differ on mirrored requests.
    LabelDivergence,
    /// Mean absolute difference of numeric predictions on mirrored requests.
    PredictionDivergence,
}

impl Metric {
    pub const ALL: [Metric; 9] = [
        Metric::ErrorRate,
        Metric::LatencyMean,
        Metric::LatencyCentre,
        Metric::LatencyDistribution,
        Metric::LatencyP95,
        Metric::LatencyP99,
        Metric::Cost,
        Metric::LabelDivergence,
        Metric::PredictionDivergence,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::ErrorRate => "error_rate",
            Metric::LatencyMean => "latency_mean",
            Metric::LatencyCentre => "latency_centre",
            Metric::LatencyDistribution => "latency_distribution",
            Metric::LatencyP95 => "latency_p95",
            Metric::LatencyP99 => "latency_p99",
            Metric::Cost => "cost",
            Metric::LabelDivergence => "label_divergence",
            Metric::PredictionDivergence => "prediction_divergence",
        }
    }

    /// Judged by an anytime-valid test, so it may stop a canary at any look.
    pub fn is_sequential(self) -> bool {
        matches!(self, Metric::ErrorRate | Metric::LatencyMean | Metric::Cost)
    }

    fn is_divergence(self) -> bool {
        matches!(self, Metric::LabelDivergence | Metric::PredictionDivergence)
    }

    fn default_config(self) -> MetricConfig {
        let (effect_floor, critical) = match self {
            // Relative: 10% more errors than the baseline.
            Metric::ErrorRate => (0.10, true),
            Metric::LatencyMean => (0.05, true),
            Metric::LatencyCentre => (0.05, false),
            // Absolute: the largest gap between the two CDFs.
            Metric::LatencyDistribution => (0.10, false),
            Metric::LatencyP95 | Metric::LatencyP99 => (0.10, false),
            Metric::Cost => (0.05, false),
            // Divergence tolerances live in [divergence].
            Metric::LabelDivergence | Metric::PredictionDivergence => (0.0, false),
        };
        MetricConfig {
            direction: Direction::IncreaseIsBad,
            effect_floor,
            weight: 1.0,
            critical,
            enabled: true,
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which change of a metric is a regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    IncreaseIsBad,
    DecreaseIsBad,
    /// Any change beyond the floor is a regression (two-sided tests).
    Either,
}

impl Direction {
    /// Whether a signed effect (canary minus baseline) lies on the bad side.
    pub fn is_bad(self, effect: f64) -> bool {
        match self {
            Direction::IncreaseIsBad => effect > 0.0,
            Direction::DecreaseIsBad => effect < 0.0,
            Direction::Either => effect != 0.0,
        }
    }
}

/// What to do when the score lands between the marginal and pass bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnInconclusive {
    /// Keep the canary running and judge again with more data.
    Extend,
    /// Stop where it stands and wait for a person.
    Pause,
    /// Treat it as a failure and roll back.
    Fail,
}

/// How one metric is judged, after defaults are applied.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetricConfig {
    pub direction: Direction,
    /// Smallest change that matters: relative to the baseline for values
    /// (0.05 = 5% worse), the CDF gap for `latency_distribution`.
    pub effect_floor: f64,
    /// Share of the score this metric carries.
    pub weight: f64,
    /// A failure of this metric alone rolls the canary back.
    pub critical: bool,
    pub enabled: bool,
}

/// Kayenta-style score bands, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoreBands {
    /// At or above: promote.
    pub pass: f64,
    /// Below: roll back. Between the two: inconclusive.
    pub marginal: f64,
}

impl Default for ScoreBands {
    fn default() -> Self {
        ScoreBands {
            pass: 95.0,
            marginal: 75.0,
        }
    }
}

/// The anytime-valid test (see `sequential`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SequentialConfig {
    /// Standard deviation of the normal mixture over effects, in units of
    /// the pooled standard deviation: the effect size it detects fastest.
    pub mixture_sd: f64,
    /// Samples per arm before the test may stop a canary; the plug-in
    /// variance is too unsteady below this.
    pub min_samples: u64,
}

impl Default for SequentialConfig {
    fn default() -> Self {
        SequentialConfig {
            mixture_sd: 0.25,
            min_samples: 20,
        }
    }
}

/// How far the arms' outputs may differ on mirrored requests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DivergenceConfig {
    /// Tolerated share of mirrored requests whose fingerprints differ.
    pub max_label_disagreement: f64,
    /// Tolerated mean absolute difference of numeric predictions.
    pub max_mean_abs_difference: f64,
}

impl Default for DivergenceConfig {
    fn default() -> Self {
        DivergenceConfig {
            max_label_disagreement: 0.02,
            max_mean_abs_difference: 0.05,
        }
    }
}

/// A validated canary configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanaryConfig {
    /// False-alarm rate of each test.
    pub alpha: f64,
    /// Samples per arm before the canary can be judged at all.
    pub min_samples: u64,
    pub on_inconclusive: OnInconclusive,
    pub score: ScoreBands,
    pub sequential: SequentialConfig,
    pub divergence: DivergenceConfig,
    pub metrics: BTreeMap<Metric, MetricConfig>,
}

impl Default for CanaryConfig {
    fn default() -> Self {
        CanaryConfig {
            alpha: 0.01,
            min_samples: 50,
            on_inconclusive: OnInconclusive::Extend,
            score: ScoreBands::default(),
            sequential: SequentialConfig::default(),
            divergence: DivergenceConfig::default(),
            metrics: Metric::ALL.map(|m| (m, m.default_config())).into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    alpha: Option<f64>,
    min_samples: Option<u64>,
    on_inconclusive: Option<OnInconclusive>,
    #[serde(default)]
    score: ScoreBands,
    #[serde(default)]
    sequential: SequentialConfig,
    #[serde(default)]
    divergence: DivergenceConfig,
    #[serde(default)]
    metrics: BTreeMap<Metric, MetricOverride>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricOverride {
    direction: Option<Direction>,
    effect_floor: Option<f64>,
    weight: Option<f64>,
    critical: Option<bool>,
    enabled: Option<bool>,
}

impl CanaryConfig {
    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<CanaryConfig, Error> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadConfig {
            file: file.clone(),
            source,
        })?;
        CanaryConfig::parse(&file, &text)
    }

    /// Parses and validates TOML text; `file` only names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<CanaryConfig, Error> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let start = e.span().map_or(0, |s| s.start);
            let line = text[..start.min(text.len())].matches('\n').count() + 1;
            let near = text.lines().nth(line - 1).unwrap_or("").trim().to_string();
            Error::ConfigSyntax {
                file: file.to_string(),
                line,
                near,
                message: e.message().trim_end().to_string(),
            }
        })?;
        let defaults = CanaryConfig::default();
        let mut config = CanaryConfig {
            alpha: raw.alpha.unwrap_or(defaults.alpha),
            min_samples: raw.min_samples.unwrap_or(defaults.min_samples),
            on_inconclusive: raw.on_inconclusive.unwrap_or(defaults.on_inconclusive),
            score: raw.score,
            sequential: raw.sequential,
            divergence: raw.divergence,
            metrics: defaults.metrics,
        };
        for (metric, o) in raw.metrics {
            if metric.is_divergence() && (o.direction.is_some() || o.effect_floor.is_some()) {
                return Err(invalid(
                    file,
                    format!("metrics.{metric}"),
                    "a divergence metric has no direction or effect_floor; set its tolerance \
                     in [divergence]"
                        .into(),
                ));
            }
            let Some(c) = config.metrics.get_mut(&metric) else {
                continue;
            };
            c.direction = o.direction.unwrap_or(c.direction);
            c.effect_floor = o.effect_floor.unwrap_or(c.effect_floor);
            c.weight = o.weight.unwrap_or(c.weight);
            c.critical = o.critical.unwrap_or(c.critical);
            c.enabled = o.enabled.unwrap_or(c.enabled);
        }
        config.validate(file)?;
        Ok(config)
    }

    /// The settings of one metric (every metric has some).
    pub fn metric(&self, metric: Metric) -> MetricConfig {
        self.metrics
            .get(&metric)
            .copied()
            .unwrap_or_else(|| metric.default_config())
    }

    /// Checks the ranges a TOML type cannot express.
    pub fn validate(&self, file: &str) -> Result<(), Error> {
        let check = |ok: bool, key: &str, problem: &str| {
            if ok {
                Ok(())
            } else {
                Err(invalid(file, key.to_string(), problem.to_string()))
            }
        };
        check(
            self.alpha > 0.0 && self.alpha <= 0.5,
            "alpha",
            "must be in (0, 0.5]; 0.01 or 0.05 are usual",
        )?;
        check(
            self.min_samples >= 2,
            "min_samples",
            "must be at least 2; 50 is Kayenta's floor",
        )?;
        check(
            (0.0..=100.0).contains(&self.score.marginal)
                && (0.0..=100.0).contains(&self.score.pass),
            "score",
            "pass and marginal are percentages in [0, 100]",
        )?;
        check(
            self.score.marginal <= self.score.pass,
            "score.marginal",
            "must not exceed score.pass",
        )?;
        check(
            self.sequential.mixture_sd.is_finite() && self.sequential.mixture_sd > 0.0,
            "sequential.mixture_sd",
            "must be a positive number of standard deviations, e.g. 0.25",
        )?;
        check(
            self.sequential.min_samples >= 2,
            "sequential.min_samples",
            "must be at least 2",
        )?;
        check(
            (0.0..=1.0).contains(&self.divergence.max_label_disagreement),
            "divergence.max_label_disagreement",
            "is a share of requests in [0, 1]",
        )?;
        check(
            self.divergence.max_mean_abs_difference.is_finite()
                && self.divergence.max_mean_abs_difference >= 0.0,
            "divergence.max_mean_abs_difference",
            "must be a finite number ≥ 0",
        )?;
        for (metric, c) in &self.metrics {
            check(
                c.effect_floor.is_finite() && c.effect_floor >= 0.0,
                &format!("metrics.{metric}.effect_floor"),
                "must be a finite number ≥ 0 (0.05 = 5%)",
            )?;
            check(
                c.weight.is_finite() && c.weight >= 0.0,
                &format!("metrics.{metric}.weight"),
                "must be a finite number ≥ 0",
            )?;
        }
        Ok(())
    }
}

fn invalid(file: &str, key: String, problem: String) -> Error {
    Error::InvalidConfig {
        file: file.to_string(),
        key,
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_gives_working_defaults() {
        let c = CanaryConfig::parse("canary.toml", "").unwrap();
        assert_eq!(c, CanaryConfig::default());
        assert_eq!(c.min_samples, 50);
        assert_eq!(c.alpha, 0.01);
        assert!(c.metric(Metric::ErrorRate).critical);
        assert_eq!(c.metrics.len(), Metric::ALL.len());
    }

    #[test]
    fn metric_override_keeps_that_metrics_other_defaults() {
        let c = CanaryConfig::parse(
            "canary.toml",
            "alpha = 0.05\non_inconclusive = \"pause\"\n\
             [metrics.latency_p99]\nweight = 2.0\n\
             [metrics.cost]\ndirection = \"either\"\ncritical = true\n",
        )
        .unwrap();
        assert_eq!(c.alpha, 0.05);
        assert_eq!(c.on_inconclusive, OnInconclusive::Pause);
        let p99 = c.metric(Metric::LatencyP99);
        assert_eq!(p99.weight, 2.0);
        assert_eq!(p99.effect_floor, 0.10);
        let cost = c.metric(Metric::Cost);
        assert_eq!(cost.direction, Direction::Either);
        assert!(cost.critical);
    }

    #[test]
    fn unknown_key_is_refused_and_named() {
        let err = CanaryConfig::parse("canary.toml", "alpha = 0.01\nmin_sample = 10\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("min_sample"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn unknown_metric_is_refused_and_named() {
        let err = CanaryConfig::parse("canary.toml", "[metrics.latency_p999]\nweight = 1.0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("latency_p999"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = CanaryConfig::parse("canary.toml", "[score]\npass = \"high\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("pass"), "{err}");
    }

    #[test]
    fn out_of_range_value_names_the_key_and_the_fix() {
        let err = CanaryConfig::parse("canary.toml", "[metrics.latency_mean]\nweight = -1.0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("metrics.latency_mean.weight"), "{err}");
        let err = CanaryConfig::parse("canary.toml", "[score]\npass = 70.0\nmarginal = 80.0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("score.marginal"), "{err}");
    }

    #[test]
    fn divergence_metric_refuses_an_effect_floor() {
        let err = CanaryConfig::parse(
            "canary.toml",
            "[metrics.label_divergence]\neffect_floor = 0.1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("[divergence]"), "{err}");
    }
}
