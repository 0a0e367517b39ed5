//! Percentiles of a latency sample, their confidence intervals, and how a
//! percentile is judged against its SLO.
//!
//! Each percentile gets a point estimate (`stats::quantile`, NumPy's
//! linear method) and a two-sided distribution-free interval at the gate's
//! `confidence` (`stats::quantile_ci`, order statistics chosen with the
//! binomial distribution). The rule against an SLO, chosen to fail closed:
//!
//! | sample | outcome |
//! | --- | --- |
//! | too few values for the interval (e.g. fewer than 368 for p99 at 95%) | **too few**: the verdict is inconclusive and says how many are needed |
//! | point estimate above the SLO | **exceeds**: fails, however wide the interval |
//! | point at or below the SLO, interval's upper bound above it | **uncertain**: the sample cannot show the SLO is met; inconclusive, or warn with `when_uncertain = "warn"` |
//! | upper bound at or below the SLO | **meets** |
//!
//! So a candidate passes only when the SLO holds at the chosen confidence,
//! and fails on its point estimate without waiting for certainty that it
//! is slow: a gate errs towards keeping what works.

use gatehouse_plugin_sdk::stats::{self, Interval, StatsError};

/// The percentiles the gate reports and judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Percentile {
    P50,
    P95,
    P99,
}

impl Percentile {
    pub const ALL: [Percentile; 3] = [Percentile::P50, Percentile::P95, Percentile::P99];

    /// As a quantile, 0.5 for p50.
    pub fn q(self) -> f64 {
        match self {
            Percentile::P50 => 0.5,
            Percentile::P95 => 0.95,
            Percentile::P99 => 0.99,
        }
    }

    /// "p50", as measurements name it.
    pub fn name(self) -> &'static str {
        match self {
            Percentile::P50 => "p50",
            Percentile::P95 => "p95",
            Percentile::P99 => "p99",
        }
    }

    /// The param holding its SLO.
    pub fn slo_param(self) -> &'static str {
        match self {
            Percentile::P50 => "p50_ms",
            Percentile::P95 => "p95_ms",
            Percentile::P99 => "p99_ms",
        }
    }

    pub fn index(self) -> usize {
        match self {
            Percentile::P50 => 0,
            Percentile::P95 => 1,
            Percentile::P99 => 2,
        }
    }
}

/// A percentile of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub point: f64,
    /// None when the sample is too small for an interval at the confidence.
    pub interval: Option<Interval>,
}

/// The percentile `p` of an ascending, non-empty, finite sample.
pub fn estimate(sorted: &[f64], p: Percentile, confidence: f64) -> Result<Estimate, String> {
    let failed = |e: StatsError| format!("cannot compute the {} latency: {e}", p.name());
    let point = stats::quantile(sorted, p.q()).map_err(failed)?;
    let interval = match stats::quantile_ci(sorted, p.q(), confidence) {
        Ok(interval) => Some(interval),
        Err(StatsError::SampleTooSmall { .. }) => None,
        Err(e) => return Err(failed(e)),
    };
    Ok(Estimate { point, interval })
}

/// The fewest values that give `p` an interval at `confidence`: the
/// smallest n with q^n <= a and (1 - q)^n < a, a = (1 - confidence) / 2,
/// found by asking `stats::quantile_ci` itself around that estimate.
pub fn needed(p: Percentile, confidence: f64) -> usize {
    let a = (1.0 - confidence) / 2.0;
    let q = p.q().max(1.0 - p.q());
    let estimate = (a.ln() / q.ln()).ceil().max(1.0) as usize;
    let fits = |n: usize| {
        let sample: Vec<f64> = (0..n).map(|i| i as f64).collect();
        stats::quantile_ci(&sample, p.q(), confidence).is_ok()
    };
    let mut n = estimate.saturating_sub(3).max(1);
    while n < estimate + 16 {
        if fits(n) {
            return n;
        }
        n += 1;
    }
    n
}

/// How a percentile stands against its SLO.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Slo {
    Meets,
    Exceeds,
    /// The point meets it, the interval's upper bound does not.
    Uncertain,
    /// No interval: this many values are needed.
    TooFew {
        needed: usize,
    },
}

/// Judges `estimate` of `p` against `slo` milliseconds (module docs).
pub fn against_slo(estimate: &Estimate, p: Percentile, slo: f64, confidence: f64) -> Slo {
    match estimate.interval {
        None => Slo::TooFew {
            needed: needed(p, confidence),
        },
        Some(_) if estimate.point > slo => Slo::Exceeds,
        Some(interval) if interval.high > slo => Slo::Uncertain,
        Some(_) => Slo::Meets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ascending(n: usize) -> Vec<f64> {
        (1..=n).map(|i| i as f64).collect()
    }

    #[test]
    fn needed_is_the_smallest_sample_with_an_interval() {
        for confidence in [0.9, 0.95, 0.99] {
            for p in Percentile::ALL {
                let n = needed(p, confidence);
                let sorted = ascending(n);
                assert!(
                    estimate(&sorted, p, confidence).unwrap().interval.is_some(),
                    "{p:?} {n}"
                );
                let fewer = ascending(n - 1);
                assert!(
                    estimate(&fewer, p, confidence).unwrap().interval.is_none(),
                    "{p:?} {n}"
                );
            }
        }
        assert_eq!(needed(Percentile::P50, 0.95), 6);
        assert_eq!(needed(Percentile::P99, 0.95), 368);
    }

    #[test]
    fn point_above_the_slo_exceeds_whatever_the_interval() {
        let sorted = ascending(1000);
        let p50 = estimate(&sorted, Percentile::P50, 0.95).unwrap();
        assert_eq!(p50.point, 500.5);
        assert_eq!(
            against_slo(&p50, Percentile::P50, 500.0, 0.95),
            Slo::Exceeds
        );
    }

    #[test]
    fn interval_reaching_past_the_slo_is_uncertain() {
        let sorted = ascending(1000);
        let p50 = estimate(&sorted, Percentile::P50, 0.95).unwrap();
        let high = p50.interval.map(|i| i.high).unwrap_or_default();
        assert!(high > 510.0 && high < 540.0, "{high}");
        assert_eq!(
            against_slo(&p50, Percentile::P50, 510.0, 0.95),
            Slo::Uncertain
        );
        assert_eq!(against_slo(&p50, Percentile::P50, high, 0.95), Slo::Meets);
    }

    #[test]
    fn too_few_samples_for_p99_say_how_many_are_needed() {
        let sorted = ascending(30);
        let p99 = estimate(&sorted, Percentile::P99, 0.95).unwrap();
        assert!(p99.interval.is_none());
        assert_eq!(
            against_slo(&p99, Percentile::P99, 1e9, 0.95),
            Slo::TooFew { needed: 368 }
        );
    }
}
