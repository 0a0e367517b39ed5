//! Comparison with the incumbent: did a percentile rise by more than its
//! `max_regression_pct`, and is the candidate's latency significantly higher?
//!
//! Rules: a percentile regressed when both hold: its point estimate is more
//! than `max_regression_pct` percent above the incumbent's, and a one-sided
//! Mann-Whitney U test (`stats::mann_whitney_u`, candidate greater) rejects
//! "no shift" at `alpha`. A rise above the bar that the test does not find
//! significant warns: it may be noise, but someone should look. Each side
//! needs as many values as the percentile's interval does (and at least 8
//! for the test's normal approximation); fewer make the comparison of that
//! percentile inconclusive, with the number needed. The test looks at the
//! whole distribution, so a regression confined to the slowest 1% may not
//! be significant; hold the tail with `p99_ms` as well.

use gatehouse_plugin_sdk::stats::{self, Alternative};

use crate::params::Params;
use crate::percentile::{self, Estimate, Percentile};

/// Fewest values per side for the Mann-Whitney normal approximation.
pub const MIN_TEST_SAMPLES: usize = 8;

/// The incumbent's side of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Incumbent {
    pub samples: usize,
    /// Point estimates, by `Percentile::index`.
    pub points: [f64; 3],
    /// One-sided p-value that the candidate's latencies are higher.
    pub mwu_p: f64,
}

/// How one percentile compares with the incumbent's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Regression {
    /// No bar for this percentile.
    Unjudged,
    Within {
        pct: f64,
    },
    Regressed {
        pct: f64,
    },
    /// Above the bar, but the shift is not significant.
    NotSignificant {
        pct: f64,
    },
    /// Too few values on a side: this many are needed on each.
    TooFew {
        needed: usize,
    },
    /// No incumbent samples.
    NoIncumbent,
}

/// The incumbent's percentiles and the Mann-Whitney test, from its sorted
/// samples and the candidate's.
pub fn incumbent(candidate: &[f64], sorted_incumbent: &[f64]) -> Result<Incumbent, String> {
    let failed = |e: stats::StatsError| format!("cannot compare with the incumbent: {e}");
    let mut points = [0.0; 3];
    for p in Percentile::ALL {
        points[p.index()] = stats::quantile(sorted_incumbent, p.q()).map_err(failed)?;
    }
    let mwu =
        stats::mann_whitney_u(candidate, sorted_incumbent, Alternative::Greater).map_err(failed)?;
    Ok(Incumbent {
        samples: sorted_incumbent.len(),
        points,
        mwu_p: mwu.p_value,
    })
}

/// The candidate's rise over the incumbent at `p`, in percent; infinite
/// when the incumbent's is 0 ms and the candidate's is not.
pub fn rise_pct(candidate: f64, incumbent: f64) -> f64 {
    if incumbent > 0.0 {
        (candidate - incumbent) / incumbent * 100.0
    } else if candidate > 0.0 {
        f64::INFINITY
    } else {
        0.0
    }
}

/// Judges percentile `p` of a candidate sample of `samples` values.
pub fn judge(
    params: &Params,
    p: Percentile,
    candidate: &Estimate,
    samples: usize,
    incumbent: Option<&Incumbent>,
) -> Regression {
    let Some(max_pct) = params.max_regression(p) else {
        return Regression::Unjudged;
    };
    let Some(incumbent) = incumbent else {
        return Regression::NoIncumbent;
    };
    let needed = percentile::needed(p, params.confidence).max(MIN_TEST_SAMPLES);
    if samples < needed || incumbent.samples < needed {
        return Regression::TooFew { needed };
    }
    let pct = rise_pct(candidate.point, incumbent.points[p.index()]);
    if pct <= max_pct {
        Regression::Within { pct }
    } else if incumbent.mwu_p < params.alpha {
        Regression::Regressed { pct }
    } else {
        Regression::NotSignificant { pct }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(json: &str) -> Params {
        gatehouse_plugin_sdk::params::parse::<Params>(json).expect("valid params")
    }

    fn point(value: f64) -> Estimate {
        Estimate {
            point: value,
            interval: None,
        }
    }

    fn incumbent_with(p50: f64, mwu_p: f64, samples: usize) -> Incumbent {
        Incumbent {
            samples,
            points: [p50, p50 * 2.0, p50 * 3.0],
            mwu_p,
        }
    }

    #[test]
    fn a_significant_rise_above_the_bar_regresses() {
        let params = params(r#"{"max_regression_pct": {"p50": 10}}"#);
        let inc = incumbent_with(100.0, 0.001, 100);
        assert_eq!(
            judge(&params, Percentile::P50, &point(120.0), 100, Some(&inc)),
            Regression::Regressed { pct: 20.0 }
        );
        assert_eq!(
            judge(&params, Percentile::P50, &point(105.0), 100, Some(&inc)),
            Regression::Within { pct: 5.0 }
        );
        assert_eq!(
            judge(&params, Percentile::P95, &point(1e6), 100, Some(&inc)),
            Regression::Unjudged
        );
    }

    #[test]
    fn a_rise_the_test_does_not_confirm_is_not_a_regression() {
        let params = params(r#"{"max_regression_pct": 10}"#);
        let inc = incumbent_with(100.0, 0.2, 100);
        assert_eq!(
            judge(&params, Percentile::P50, &point(120.0), 100, Some(&inc)),
            Regression::NotSignificant { pct: 20.0 }
        );
    }

    #[test]
    fn too_few_values_on_either_side_say_how_many() {
        let params = params(r#"{"max_regression_pct": 10}"#);
        let inc = incumbent_with(100.0, 0.001, 100);
        assert_eq!(
            judge(&params, Percentile::P99, &point(500.0), 1000, Some(&inc)),
            Regression::TooFew { needed: 368 }
        );
        assert_eq!(
            judge(&params, Percentile::P50, &point(500.0), 7, Some(&inc)),
            Regression::TooFew { needed: 8 }
        );
        assert_eq!(
            judge(&params, Percentile::P50, &point(500.0), 100, None),
            Regression::NoIncumbent
        );
    }

    #[test]
    fn the_test_is_one_sided_towards_slower() {
        let fast: Vec<f64> = (0..50).map(|i| 100.0 + f64::from(i)).collect();
        let slow: Vec<f64> = fast.iter().map(|v| v + 30.0).collect();
        let inc = incumbent(&slow, &fast).expect("compared");
        assert!(inc.mwu_p < 0.001, "{}", inc.mwu_p);
        assert_eq!(inc.points[0], 124.5);
        let inc = incumbent(&fast, &slow).expect("compared");
        assert!(inc.mwu_p > 0.99, "{}", inc.mwu_p);
    }

    #[test]
    fn rise_from_zero_is_infinite() {
        assert_eq!(rise_pct(5.0, 0.0), f64::INFINITY);
        assert_eq!(rise_pct(0.0, 0.0), 0.0);
        assert_eq!(rise_pct(90.0, 100.0), -10.0);
    }
}
