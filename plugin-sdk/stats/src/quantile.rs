//! Sample quantiles and distribution-free confidence intervals for them.
//!
//! Rules: quantiles interpolate linearly between order statistics exactly
//! as `numpy.quantile(method="linear")` (Hyndman and Fan type 7) does,
//! including NumPy's two-sided interpolation formula, so results agree to
//! the last bit. Intervals are order statistics chosen with the binomial
//! distribution, so they hold for any continuous distribution.

use super::Interval;
use super::binomial::{Binomial, MAX_TRIALS};
use super::error::{StatsError, check_open_unit, check_sorted};

/// The `q` quantile of an ascending, finite sample, `numpy.quantile(sorted,
/// q)` with its default linear method: the value at fractional position
/// (n - 1) q. O(n) (to check the order), O(1) after.
///
/// Errors if `sorted` is empty, not finite, or not ascending, or `q` is
/// not in [0, 1].
pub fn quantile(sorted: &[f64], q: f64) -> Result<f64, StatsError> {
    check_sorted("sorted", sorted)?;
    if !(0.0..=1.0).contains(&q) {
        return Err(StatsError::OutOfRange {
            argument: "q",
            value: q,
            range: "between 0 and 1",
        });
    }
    Ok(quantile_of_sorted(sorted, q))
}

/// The linear quantile of a non-empty ascending slice, for q in [0, 1].
pub(crate) fn quantile_of_sorted(sorted: &[f64], q: f64) -> f64 {
    let last = sorted.len() - 1;
    let position = last as f64 * q;
    if position >= last as f64 {
        return sorted[last];
    }
    let below = position.floor();
    let index = below as usize;
    let (a, b) = (sorted[index], sorted[index + 1]);
    let t = position - below;
    let diff = b - a;
    // NumPy interpolates from the nearer end, which keeps the result
    // monotone in q and exact at t = 1.
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// A two-sided confidence interval for the `q` quantile of the population
/// an ascending sample came from, at level `confidence`, from order
/// statistics alone: `scipy.stats.quantile_test(x, p=q)
/// .confidence_interval(confidence)`.
///
/// With n values and B ~ Binomial(n, q), a = (1 - confidence) / 2, the
/// bounds are the order statistics at 0-based indices `ppf(a) - 1` and
/// `isf(a)` (Conover, Practical Nonparametric Statistics, 3.2). For
/// continuous data the interval covers the true quantile with probability
/// at least `confidence`, whatever the distribution.
///
/// Errors if `sorted` is empty, not finite or not ascending; if `q` or
/// `confidence` is not strictly between 0 and 1; or if the sample is too
/// small for an interval at this confidence (where SciPy returns NaN for a
/// bound): e.g. a 95% interval for the median needs at least 6 values.
pub fn quantile_ci(sorted: &[f64], q: f64, confidence: f64) -> Result<Interval, StatsError> {
    check_sorted("sorted", sorted)?;
    check_open_unit("q", q)?;
    check_open_unit("confidence", confidence)?;
    let n = sorted.len() as u64;
    if n > MAX_TRIALS {
        return Err(StatsError::TooManyTrials {
            trials: n,
            max: MAX_TRIALS,
        });
    }
    let dist = Binomial::new(n, q);
    let alpha = (1.0 - confidence) / 2.0;
    let low_index = dist.ppf(alpha) - 1.0;
    let high_index = dist.isf(alpha);
    if low_index < 0.0 || high_index >= n as f64 {
        return Err(StatsError::SampleTooSmall {
            len: sorted.len(),
            quantile: q,
            confidence,
        });
    }
    Ok(Interval {
        low: sorted[low_index as usize],
        high: sorted[high_index as usize],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates_between_order_statistics() {
        let x = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(quantile(&x, 0.0), Ok(1.0));
        assert_eq!(quantile(&x, 1.0), Ok(8.0));
        assert_eq!(quantile(&x, 0.5), Ok(3.0));
        assert_eq!(quantile(&[7.0], 0.3), Ok(7.0));
    }

    #[test]
    fn unsorted_input_is_rejected_with_the_index() {
        let err = quantile(&[1.0, 3.0, 2.0], 0.5).unwrap_err();
        assert!(
            err.to_string().contains("ascending order at index 2"),
            "{err}"
        );
        assert!(quantile(&[1.0], f64::NAN).is_err());
    }

    #[test]
    fn median_interval_needs_six_values_at_95_percent() {
        let five = [1.0, 2.0, 3.0, 4.0, 5.0];
        let err = quantile_ci(&five, 0.5, 0.95).unwrap_err();
        assert!(err.to_string().contains("too few"), "{err}");
        let six = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let ci = quantile_ci(&six, 0.5, 0.95).unwrap();
        assert_eq!((ci.low, ci.high), (1.0, 6.0));
    }
}
