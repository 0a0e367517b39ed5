//! Is the canary worse? Observations from both arms stream into a
//! [`Canary`]; each look returns a [`Judgement`]: per-metric evidence and
//! promote / continue / roll back / inconclusive, with its reason.
//!
//! Rules: domain logic — no gRPC types, no I/O except reading recorded
//! samples ([`recorded`]) and config files; [`live`] keeps the canaries the
//! daemon runs in memory and fires their rollback trigger, [`routing`] is
//! the sticky traffic split services apply. Anytime-valid tests
//! ([`sequential`]) may stop a canary at any look; fixed-horizon tests
//! ([`judge`], [`divergence`]) only speak at the final look, where the
//! Kayenta-style score decides ([`judgement`]). A canary may also read its
//! metrics from Prometheus ([`source`], [`prometheus`]), compared per
//! interval by a test that holds on autocorrelated series ([`intervals`]),
//! at final looks. A final look sorts every
//! latency, so the daemon runs it off the reactor (`spawn_blocking`).

pub mod config;
pub mod divergence;
pub mod intervals;
pub mod judge;
pub mod judgement;
pub mod live;
pub mod observation;
pub mod prometheus;
pub mod recorded;
pub mod routing;
pub mod sequential;
pub mod source;

#[cfg(test)]
mod simulation;
#[cfg(test)]
mod testing;

pub use config::{CanaryConfig, Direction, Metric, MetricConfig, OnInconclusive};
pub use judgement::{
    Decision, Judgement, Look, MetricResult, Outcome, SeriesResult, SourceEvidence, Test,
};
pub use observation::{Arm, ArmSummary, Observation, Window};

use judge::SortedLatencies;
use sequential::MixtureSprt;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field} is {value}; it must be {rule} — fix the value the serving service reports")]
    InvalidObservation {
        field: &'static str,
        value: f64,
        rule: &'static str,
    },
    #[error("cannot read canary config {file}: {source}; check the path")]
    ReadConfig {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}, line {line} (`{near}`): {message}; fix that key")]
    ConfigSyntax {
        file: String,
        line: usize,
        near: String,
        message: String,
    },
    #[error("{file}: `{key}` {problem}")]
    InvalidConfig {
        file: String,
        key: String,
        problem: String,
    },
    #[error("cannot read samples from {file}: {source}; check the path")]
    ReadSamples {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}, line {line}: {problem}")]
    BadSample {
        file: String,
        line: usize,
        problem: String,
    },
}

/// One canary under judgement: its config, its window, and the state of
/// its sequential tests across looks.
#[derive(Debug, Clone)]
pub struct Canary {
    config: CanaryConfig,
    window: Window,
    sequential: BTreeMap<Metric, MixtureSprt>,
}

impl Canary {
    pub fn new(config: CanaryConfig) -> Canary {
        Canary {
            config,
            window: Window::new(),
            sequential: BTreeMap::new(),
        }
    }

    /// A canary judged against what a baseline served earlier (a historical
    /// control), for the watch after full promotion. Only the anytime-valid
    /// metrics can be judged: the baseline kept no latencies to rank.
    pub fn against(config: CanaryConfig, baseline: &ArmSummary) -> Canary {
        Canary {
            config,
            window: Window::against(baseline),
            sequential: BTreeMap::new(),
        }
    }

    /// Adds one observation; refuses (and skips) one that cannot be judged.
    pub fn observe(&mut self, observation: Observation) -> Result<(), Error> {
        self.window.push(observation)
    }

    pub fn config(&self) -> &CanaryConfig {
        &self.config
    }

    pub fn window(&self) -> &Window {
        &self.window
    }

    /// Judges the window as it stands. Every call is a look of the
    /// sequential tests, which is safe: their p-values stay valid however
    /// often one looks.
    pub fn judge(&mut self, look: Look) -> Judgement {
        self.judge_with(look, None)
    }

    /// Judges the window beside what a metric source reported at this look
    /// (final looks only: its test is fixed-horizon).
    pub fn judge_with(&mut self, look: Look, source: Option<SourceEvidence>) -> Judgement {
        let Canary {
            config,
            window,
            sequential,
        } = self;
        let sorted = (look == Look::Final).then(|| SortedLatencies::of(window));
        let mut metrics = Vec::new();
        for metric in Metric::ALL {
            if !config.metric(metric).enabled {
                continue;
            }
            let result = match (metric, &sorted) {
                (m, _) if m.is_sequential() => {
                    let sprt = sequential
                        .entry(m)
                        .or_insert_with(|| MixtureSprt::new(config.sequential.mixture_sd));
                    judge::judge_sequential(config, m, sprt, window)
                }
                (m, None) => judge::deferred(config, m, window),
                (Metric::LatencyCentre, Some(s)) => judge::judge_centre(config, window, s),
                (Metric::LatencyDistribution, Some(s)) => {
                    judge::judge_distribution(config, window, s)
                }
                (Metric::LatencyP95, Some(s)) => {
                    judge::judge_quantile(config, metric, 0.95, window, s)
                }
                (Metric::LatencyP99, Some(s)) => {
                    judge::judge_quantile(config, metric, 0.99, window, s)
                }
                (Metric::LabelDivergence, Some(_)) => {
                    divergence::judge_labels(config, window.overlap())
                }
                (_, Some(_)) => divergence::judge_predictions(config, window.overlap()),
            };
            metrics.push(result);
        }
        let counts = (window.baseline().count(), window.canary().count());
        let (decision, reason, score) =
            judgement::decide(config, look, counts, &metrics, source.as_ref());
        Judgement {
            decision,
            reason,
            look,
            score,
            bands: config.score,
            alpha: config.alpha,
            baseline_n: counts.0,
            canary_n: counts.1,
            mirrored_pairs: window.overlap().pairs,
            metrics,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Rng;
    use super::*;

    /// `n` requests per arm with latencies drawn by `baseline`/`canary`.
    fn canary_with(
        config: CanaryConfig,
        n: usize,
        seed: u64,
        mut baseline: impl FnMut(&mut Rng) -> f64,
        mut canary: impl FnMut(&mut Rng) -> f64,
    ) -> Canary {
        let mut rng = Rng::seeded(seed);
        let mut c = Canary::new(config);
        for _ in 0..n {
            let b = baseline(&mut rng);
            c.observe(Observation::latency(Arm::Baseline, b)).unwrap();
            let x = canary(&mut rng);
            c.observe(Observation::latency(Arm::Canary, x)).unwrap();
        }
        c
    }

    #[test]
    fn too_few_samples_is_inconclusive_with_the_count_still_needed() {
        let mut c = canary_with(
            CanaryConfig::default(),
            30,
            1,
            |r| r.lognormal(100.0, 0.3),
            |r| r.lognormal(100.0, 0.3),
        );
        c.observe(Observation::latency(Arm::Baseline, 90.0))
            .unwrap();
        let j = c.judge(Look::Final);
        assert_eq!(
            j.decision,
            Decision::Inconclusive { needed: 20 },
            "{}",
            j.reason
        );
        assert!(j.reason.contains("canary needs 20 more"), "{}", j.reason);
        let centre = j.metric(Metric::LatencyCentre).unwrap();
        assert_eq!(centre.outcome, Outcome::NoData);
    }

    #[test]
    fn no_data_is_inconclusive_never_a_pass() {
        let mut c = Canary::new(CanaryConfig::default());
        let j = c.judge(Look::Final);
        assert_eq!(j.decision, Decision::Inconclusive { needed: 50 });
        assert!(
            j.reason
                .contains("no service has reported observations yet")
                && j.reason.contains("ReportObservations"),
            "{}",
            j.reason
        );
        assert!(j.metrics.iter().all(|m| m.outcome == Outcome::NoData));
    }

    #[test]
    fn identical_arms_promote() {
        let same = |r: &mut Rng| r.lognormal(80.0, 0.4);
        let mut c = canary_with(CanaryConfig::default(), 600, 2, same, same);
        let j = c.judge(Look::Final);
        assert_eq!(j.decision, Decision::Promote, "{}", j.reason);
        assert_eq!(j.score, Some(100.0));
        // p99 has enough samples at 600 per arm (it needs 528 at α = 0.01).
        assert_eq!(j.metric(Metric::LatencyP99).unwrap().outcome, Outcome::Pass);
    }

    #[test]
    fn variance_only_regression_is_caught_by_distribution_and_tail_tests() {
        let mut c = canary_with(
            CanaryConfig::default(),
            600,
            3,
            |r| (100.0 + 10.0 * r.normal()).max(1.0),
            |r| (100.0 + 25.0 * r.normal()).max(1.0),
        );
        let j = c.judge(Look::Final);
        let outcome = |m| j.metric(m).unwrap().outcome;
        // Same centre: the rank test and the mean see nothing...
        assert_eq!(outcome(Metric::LatencyCentre), Outcome::Pass);
        assert_eq!(outcome(Metric::LatencyMean), Outcome::Pass);
        // ...the distribution and tail tests do.
        assert_eq!(outcome(Metric::LatencyDistribution), Outcome::Fail);
        assert_eq!(outcome(Metric::LatencyP95), Outcome::Fail);
        assert_eq!(outcome(Metric::LatencyP99), Outcome::Fail);
        assert_eq!(j.decision, Decision::RollBack, "{}", j.reason);
    }

    #[test]
    fn latency_regression_rolls_back_at_an_interim_look() {
        let mut c = canary_with(
            CanaryConfig::default(),
            300,
            4,
            |r| r.lognormal(100.0, 0.5),
            |r| r.lognormal(150.0, 0.5),
        );
        let j = c.judge(Look::Interim);
        assert_eq!(j.decision, Decision::RollBack, "{}", j.reason);
        assert!(j.reason.contains("latency_mean"), "{}", j.reason);
        assert_eq!(
            j.metric(Metric::LatencyCentre).unwrap().outcome,
            Outcome::Deferred
        );
    }

    #[test]
    fn critical_metric_failing_fails_the_whole_canary() {
        let run = |critical: bool| {
            let mut config = CanaryConfig::default();
            config
                .metrics
                .entry(Metric::Cost)
                .and_modify(|m| m.critical = critical);
            let mut rng = Rng::seeded(5);
            let mut c = Canary::new(config);
            for _ in 0..600 {
                for (arm, cost) in [(Arm::Baseline, 1.0), (Arm::Canary, 1.3)] {
                    c.observe(Observation {
                        cost: cost * (0.2 * rng.normal()).exp(),
                        ..Observation::latency(arm, rng.lognormal(100.0, 0.3))
                    })
                    .unwrap();
                }
            }
            c.judge(Look::Final)
        };
        let critical = run(true);
        assert_eq!(critical.decision, Decision::RollBack, "{}", critical.reason);
        assert!(
            critical.reason.starts_with("critical metric failed: cost"),
            "{}",
            critical.reason
        );
        // The same failure on a non-critical metric only lowers the score.
        let plain = run(false);
        assert_eq!(plain.decision, Decision::Continue, "{}", plain.reason);
        assert!(
            plain.reason.contains("worst: cost fail"),
            "{}",
            plain.reason
        );
    }

    #[test]
    fn error_spike_rolls_back_before_min_samples() {
        let mut c = Canary::new(CanaryConfig::default());
        for i in 0..40 {
            c.observe(Observation::latency(Arm::Baseline, 10.0))
                .unwrap();
            c.observe(Observation {
                error: i % 2 == 0,
                ..Observation::latency(Arm::Canary, 10.0)
            })
            .unwrap();
        }
        let j = c.judge(Look::Interim);
        assert_eq!(j.decision, Decision::RollBack, "{}", j.reason);
        assert!(j.reason.contains("error_rate"), "{}", j.reason);
    }

    #[test]
    fn judgement_round_trips_through_json() {
        let same = |r: &mut Rng| r.lognormal(50.0, 0.5);
        let mut c = canary_with(CanaryConfig::default(), 120, 6, same, same);
        let j = c.judge(Look::Final);
        let json = serde_json::to_string(&j).unwrap();
        let back: Judgement = serde_json::from_str(&json).unwrap();
        // Equal only if every number was finite: NaN would come back as null.
        assert_eq!(back, j);
    }
}
