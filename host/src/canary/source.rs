//! A canary's metric source: `[environment.canary.prometheus]`, the
//! metrics a serving service already exports, read back per arm at a step's
//! final look and compared interval by interval.
//!
//! Rules:
//! - **One `query_range` per metric and arm per look**, over the step so
//!   far at `interval_s` resolution; retries of a transient failure are
//!   the only extra requests. Every query, its point count, its attempts and
//!   its error go into the judgement's evidence.
//! - **Each interval's point is one sample**, compared by
//!   `canary::intervals` (paired batch means, exact sign-flip test), which
//!   holds α on autocorrelated series. It is fixed-horizon: final looks
//!   only.
//! - **No data is never a pass.** An empty result, or too few intervals for
//!   the series' autocorrelation, is no data for that metric.
//! - **A failing source makes the look inconclusive**, never a pass and
//!   never a rollback on its own: any query failing fails the look, with
//!   whether retrying later may help (no connection, a timeout, a 5xx or
//!   429) so the executor can look again, up to `consecutive_errors` looks.

use super::Direction;
use super::intervals;
use super::judgement::{Outcome, QueryEvidence, SeriesResult, SourceEvidence};
use super::prometheus::{self, Ask, Vars};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// `[environment.canary.prometheus]`, validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSource {
    /// Prometheus' base URL, e.g. `http://127.0.0.1:9090`.
    pub url: String,
    /// Resolution of the series: one sample per arm per interval. Queries
    /// should use rate windows of about this length, so that intervals do
    /// not overlap.
    /// 10 s when neither this nor `interval_ms` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<u64>,
    /// The same in milliseconds, when set (short canaries in demos and
    /// tests, with a scrape faster than a second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    /// How long one query attempt may take.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Attempts per query, the first included; transient failures only.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Looks in a row whose queries fail before the look is inconclusive
    /// (the step's `on_inconclusive` then acts); one interval apart.
    #[serde(default = "default_consecutive_errors")]
    pub consecutive_errors: u32,
    pub metrics: BTreeMap<String, SeriesMetric>,
}

/// One metric of the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesMetric {
    /// PromQL returning one series; `{{arm}}`, `{{digest}}`,
    /// `{{environment}}` and `{{release}}` are filled in per arm.
    pub query: String,
    #[serde(default = "default_direction")]
    pub direction: Direction,
    /// Smallest relative change of the mean that matters (0.1 = 10%).
    #[serde(default = "default_effect_floor")]
    pub effect_floor: f64,
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// A failure of this metric alone rolls the canary back.
    #[serde(default)]
    pub critical: bool,
}

fn default_timeout_ms() -> u64 {
    5_000
}
fn default_attempts() -> u32 {
    3
}
fn default_consecutive_errors() -> u32 {
    3
}
fn default_direction() -> Direction {
    Direction::IncreaseIsBad
}
fn default_effect_floor() -> f64 {
    0.1
}
fn default_weight() -> f64 {
    1.0
}

impl PrometheusSource {
    /// Checks what TOML types cannot; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let key = "[environment.canary.prometheus]";
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!(
                "{key} url {:?} must be an http:// or https:// URL, e.g. \"http://127.0.0.1:9090\"",
                self.url
            ));
        }
        if self.interval_s.is_some() && self.interval_ms.is_some() {
            return Err(format!(
                "{key} has both interval_s and interval_ms; keep one"
            ));
        }
        if self.interval_s.is_some_and(|s| !(1..=3_600).contains(&s)) {
            return Err(format!(
                "{key} interval_s must be between 1 and 3600 seconds"
            ));
        }
        if self
            .interval_ms
            .is_some_and(|ms| !(100..=3_600_000).contains(&ms))
        {
            return Err(format!(
                "{key} interval_ms must be between 100 and 3600000 milliseconds"
            ));
        }
        if self.timeout_ms == 0 {
            return Err(format!("{key} timeout_ms must be above 0"));
        }
        if !(1..=10).contains(&self.attempts) {
            return Err(format!("{key} attempts must be between 1 and 10"));
        }
        if self.consecutive_errors == 0 {
            return Err(format!(
                "{key} consecutive_errors must be at least 1 (1: the first failed look is inconclusive)"
            ));
        }
        if self.metrics.is_empty() {
            return Err(format!(
                "{key} names no metric; add [environment.canary.prometheus.metrics.NAME] with a query"
            ));
        }
        let probe = Vars {
            arm: "canary",
            digest: "0",
            environment: "e",
            release: 1,
        };
        for (name, m) in &self.metrics {
            let at = format!("{key} metrics.{name}");
            if m.query.trim().is_empty() {
                return Err(format!("{at}.query is empty"));
            }
            prometheus::render(&m.query, &probe).map_err(|e| format!("{at}.query: {e}"))?;
            if !(m.effect_floor.is_finite() && m.effect_floor >= 0.0) {
                return Err(format!(
                    "{at}.effect_floor must be a finite number ≥ 0 (0.1 = 10%)"
                ));
            }
            if !(m.weight.is_finite() && m.weight >= 0.0) {
                return Err(format!("{at}.weight must be a finite number ≥ 0"));
            }
        }
        Ok(())
    }

    /// One interval.
    pub fn interval(&self) -> Duration {
        match (self.interval_ms, self.interval_s) {
            (Some(ms), _) => Duration::from_millis(ms),
            (None, Some(s)) => Duration::from_secs(s),
            (None, None) => Duration::from_secs(10),
        }
    }
}

/// What each arm serves, for the queries' templates.
#[derive(Debug, Clone)]
pub struct Arms {
    pub baseline_digest: String,
    pub canary_digest: String,
    pub environment: String,
    pub release: u64,
}

/// One look: every metric's two queries over `start_ms..end_ms`, compared
/// at `alpha`. Returns the evidence and, when a query failed, whether every
/// failure was transient (looking again later may help). Blocking.
pub fn look(
    source: &PrometheusSource,
    arms: &Arms,
    start_ms: i64,
    end_ms: i64,
    alpha: f64,
) -> (SourceEvidence, bool) {
    let mut first_error: Option<String> = None;
    let mut transient = true;
    let mut metrics = Vec::with_capacity(source.metrics.len());
    for (name, metric) in &source.metrics {
        let mut queries = Vec::with_capacity(2);
        let mut series = Vec::with_capacity(2);
        for (arm, digest) in [
            ("active", &arms.baseline_digest),
            ("canary", &arms.canary_digest),
        ] {
            let vars = Vars {
                arm,
                digest,
                environment: &arms.environment,
                release: arms.release,
            };
            let query = match prometheus::render(&metric.query, &vars) {
                Ok(q) => q,
                Err(e) => {
                    // Validated at load; kept for a config stored before.
                    transient = false;
                    first_error.get_or_insert_with(|| format!("{name}: {e}"));
                    queries.push(QueryEvidence {
                        arm: arm.into(),
                        query: metric.query.clone(),
                        points: 0,
                        dropped: 0,
                        attempts: 0,
                        error: Some(e),
                    });
                    continue;
                }
            };
            let asked = prometheus::query_range(&Ask {
                url: &source.url,
                query: &query,
                start_ms,
                end_ms,
                step: source.interval(),
                timeout: Duration::from_millis(source.timeout_ms),
                attempts: source.attempts,
            });
            match asked {
                Ok(f) => {
                    queries.push(QueryEvidence {
                        arm: arm.into(),
                        query,
                        points: f.series.len() as u64,
                        dropped: f.dropped as u64,
                        attempts: f.attempts,
                        error: None,
                    });
                    series.push(f.series);
                }
                Err(e) => {
                    transient &= e.transient;
                    first_error.get_or_insert_with(|| format!("{name}, {arm} arm: {e}"));
                    queries.push(QueryEvidence {
                        arm: arm.into(),
                        query,
                        points: 0,
                        dropped: 0,
                        attempts: e.attempts,
                        error: Some(e.to_string()),
                    });
                }
            }
        }
        metrics.push(judge(name, metric, queries, &series, alpha, source));
    }
    let failed = first_error.is_some();
    let evidence = SourceEvidence {
        url: source.url.clone(),
        start_ms,
        end_ms,
        interval_ms: source.interval().as_millis() as u64,
        looks_failed: u32::from(failed),
        error: first_error,
        metrics,
    };
    (evidence, failed && transient)
}

/// Compares one metric's two series (both present only when both queries
/// succeeded).
fn judge(
    name: &str,
    metric: &SeriesMetric,
    queries: Vec<QueryEvidence>,
    series: &[Vec<(i64, f64)>],
    alpha: f64,
    source: &PrometheusSource,
) -> SeriesResult {
    let mut result = SeriesResult {
        name: name.to_string(),
        direction: metric.direction,
        baseline: None,
        canary: None,
        intervals: 0,
        autocorrelation: None,
        batches: 0,
        p_value: None,
        threshold: alpha,
        effect: None,
        effect_floor: metric.effect_floor,
        outcome: Outcome::NoData,
        weight: metric.weight,
        critical: metric.critical,
        queries,
        note: String::new(),
    };
    let [baseline, canary] = series else {
        result.note = "a query failed; see its error".into();
        return result;
    };
    for (arm, s) in [("active", baseline), ("canary", canary)] {
        if s.is_empty() {
            result.note = format!(
                "no data: the query matched no series with a number on the {arm} arm; \
                 check that the service exports it with that label"
            );
            return result;
        }
    }
    // Each side's p-value, at the α its share of a two-sided test gets.
    let side_alpha = if metric.direction == Direction::Either {
        alpha / 2.0
    } else {
        alpha
    };
    let higher = intervals::compare(baseline, canary, side_alpha);
    let lower = intervals::compare(canary, baseline, side_alpha);
    let (up, down) = match (higher, lower) {
        (Ok(up), Ok(down)) => (up, down),
        (Err(e), _) | (_, Err(e)) => {
            result.intervals = e.intervals as u64;
            result.note = format!(
                "not enough data: {} intervals with a number on both arms; this series' \
                 autocorrelation needs {} ({} ms each)",
                e.intervals,
                e.needed,
                source.interval().as_millis()
            );
            return result;
        }
    };
    let p = match metric.direction {
        Direction::IncreaseIsBad => up.p_higher,
        Direction::DecreaseIsBad => down.p_higher,
        Direction::Either => (2.0 * up.p_higher.min(down.p_higher)).min(1.0),
    };
    let (b, c) = (up.baseline_mean, up.canary_mean);
    result.baseline = Some(b);
    result.canary = Some(c);
    result.intervals = up.intervals as u64;
    result.autocorrelation = Some(up.autocorrelation);
    result.batches = up.batches as u64;
    result.p_value = Some(p);
    result.effect = (b != 0.0).then(|| (c - b) / b.abs());
    let beyond_floor = match result.effect {
        Some(e) => metric.direction.is_bad(e) && e.abs() >= metric.effect_floor,
        // From 0 to anything is beyond any relative floor.
        None => metric.direction.is_bad(c - b),
    };
    result.outcome = if p > alpha {
        Outcome::Pass
    } else if beyond_floor {
        Outcome::Fail
    } else {
        Outcome::Marginal
    };
    if result.effect.is_none() {
        result.note = "the baseline's mean is 0, so the change is not relative".into();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(toml_text: &str) -> Result<PrometheusSource, String> {
        let s: PrometheusSource = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        s.validate().map(|()| s)
    }

    #[test]
    fn defaults_fill_in_and_bad_values_name_their_key() {
        let s = source(
            "url = \"http://127.0.0.1:9090\"\n[metrics.error_rate]\nquery = 'x{v=\"{{arm}}\"}'\n",
        )
        .unwrap();
        assert_eq!(s.interval(), Duration::from_secs(10));
        assert_eq!((s.consecutive_errors, s.attempts), (3, 3));
        let m = &s.metrics["error_rate"];
        assert_eq!(m.direction, Direction::IncreaseIsBad);
        assert!(!m.critical);
        let e = source("url = \"127.0.0.1:9090\"\n[metrics.x]\nquery = 'x'\n").unwrap_err();
        assert!(e.contains("http://"), "{e}");
        let e = source("url = \"http://h\"\n[metrics.x]\nquery = 'x{a=\"{{variant}}\"}'\n")
            .unwrap_err();
        assert!(
            e.contains("metrics.x.query") && e.contains("{{arm}}"),
            "{e}"
        );
        let e = source("url = \"http://h\"\nmetrics = {}\n").unwrap_err();
        assert!(e.contains("names no metric"), "{e}");
        let e = source("url = \"http://h\"\nconsecutive_errors = 0\n[metrics.x]\nquery = 'x'\n")
            .unwrap_err();
        assert!(e.contains("consecutive_errors"), "{e}");
        let e = source(
            "url = \"http://h\"\ninterval_s = 1\ninterval_ms = 500\n[metrics.x]\nquery = 'x'\n",
        )
        .unwrap_err();
        assert!(e.contains("keep one"), "{e}");
        let e = source("url = \"http://h\"\nstep = 3\n[metrics.x]\nquery = 'x'\n").unwrap_err();
        assert!(e.contains("step"), "{e}");
    }

    fn series(values: &[f64]) -> Vec<(i64, f64)> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as i64 * 1000, *v))
            .collect()
    }

    fn metric(direction: Direction) -> SeriesMetric {
        SeriesMetric {
            query: "q".into(),
            direction,
            effect_floor: 0.1,
            weight: 1.0,
            critical: true,
        }
    }

    fn judged(direction: Direction, b: &[f64], c: &[f64]) -> SeriesResult {
        let s: PrometheusSource = toml::from_str("url = \"http://h\"\nmetrics = {}\n").unwrap();
        judge(
            "m",
            &metric(direction),
            Vec::new(),
            &[series(b), series(c)],
            0.05,
            &s,
        )
    }

    /// Alternating ±`wobble` around `level`, `n` points.
    fn flat(level: f64, wobble: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| level + if i % 2 == 0 { wobble } else { -wobble })
            .collect()
    }

    #[test]
    fn a_worse_canary_fails_in_its_bad_direction_only() {
        let (b, c) = (flat(1.0, 0.05, 40), flat(1.5, 0.05, 40));
        let r = judged(Direction::IncreaseIsBad, &b, &c);
        assert_eq!(r.outcome, Outcome::Fail, "{r:?}");
        assert!((r.effect.unwrap() - 0.5).abs() < 1e-9);
        assert_eq!(
            judged(Direction::DecreaseIsBad, &b, &c).outcome,
            Outcome::Pass
        );
        assert_eq!(judged(Direction::Either, &b, &c).outcome, Outcome::Fail);
        // Worse, but by less than the floor: marginal.
        let r = judged(Direction::IncreaseIsBad, &b, &flat(1.05, 0.05, 40));
        assert_eq!(r.outcome, Outcome::Marginal, "{r:?}");
    }

    #[test]
    fn from_zero_errors_to_some_fails_and_equal_arms_pass() {
        let r = judged(Direction::IncreaseIsBad, &[0.0; 40], &flat(0.2, 0.05, 40));
        assert_eq!(r.outcome, Outcome::Fail, "{r:?}");
        assert_eq!(r.effect, None);
        let r = judged(Direction::IncreaseIsBad, &[0.0; 40], &[0.0; 40]);
        assert_eq!(r.outcome, Outcome::Pass, "{r:?}");
    }

    #[test]
    fn an_empty_arm_or_a_short_series_is_no_data() {
        let r = judged(Direction::IncreaseIsBad, &flat(1.0, 0.1, 40), &[]);
        assert_eq!(r.outcome, Outcome::NoData);
        assert!(r.note.contains("canary arm"), "{}", r.note);
        let r = judged(
            Direction::IncreaseIsBad,
            &flat(1.0, 0.1, 10),
            &flat(2.0, 0.1, 10),
        );
        assert_eq!(r.outcome, Outcome::NoData);
        assert!(r.note.contains("not enough data"), "{}", r.note);
    }
}
