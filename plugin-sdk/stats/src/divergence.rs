//! Distances between distributions: the population stability index and the
//! Jensen-Shannon distance.
//!
//! Rules: PSI bins are fixed by the reference sample alone (its quantiles),
//! so the same reference always gives the same bins whatever the actual
//! sample is. Jensen-Shannon matches `scipy.spatial.distance.jensenshannon`
//! with `base=2`, summing terms in NumPy's order because they cancel.

use super::error::{StatsError, check_non_negative, check_sample};
use super::quantile::quantile_of_sorted;
use super::sort::sorted_copy;
use super::sum::numpy_sum_of;
use std::f64::consts::LN_2;

/// The proportion PSI gives a bin that holds no values of a sample, in
/// place of 0 (whose logarithm is infinite). Only empty bins are changed;
/// proportions are not renormalised. With this value a bin that is empty
/// in one sample and holds 10% of the other adds about 0.68 to the index.
pub const PSI_EMPTY_BIN_PROPORTION: f64 = 1e-4;

/// The most bins [`psi`] accepts; far more than any stable index uses
/// (10 to 20 is usual), and it bounds the memory a bad parameter can claim.
pub const PSI_MAX_BINS: usize = 10_000;

/// Population stability index of `actual` against `reference`:
/// sum over bins of (a - r) ln(a / r), where r and a are the proportions of
/// each sample in the bin.
///
/// The `bins` bins are cut at the reference's quantiles i / bins for
/// i = 1..bins (NumPy's default linear quantiles); bin i holds values v
/// with edge(i - 1) < v <= edge(i), the outer bins are unbounded. Tied
/// reference values can make edges coincide; the bins between them are
/// empty in both samples and add nothing. An empty bin counts as
/// [`PSI_EMPTY_BIN_PROPORTION`]. Common reading: below 0.1 stable, 0.1 to
/// 0.25 drifting, above 0.25 shifted. Cost: O(n log n + m log bins).
///
/// Errors if a sample is empty or not finite, or `bins` is 0 or above
/// [`PSI_MAX_BINS`].
pub fn psi(reference: &[f64], actual: &[f64], bins: usize) -> Result<f64, StatsError> {
    check_sample("reference", reference)?;
    check_sample("actual", actual)?;
    if bins == 0 || bins > PSI_MAX_BINS {
        return Err(StatsError::OutOfRange {
            argument: "bins",
            value: bins as f64,
            range: "between 1 and 10000 (10 is usual)",
        });
    }
    let sorted = sorted_copy(reference);
    let edges: Vec<f64> = (1..bins)
        .map(|i| quantile_of_sorted(&sorted, i as f64 / bins as f64))
        .collect();
    let proportions = |values: &[f64]| -> Vec<f64> {
        let mut counts = vec![0_usize; bins];
        for &v in values {
            counts[edges.partition_point(|&e| e < v)] += 1;
        }
        counts
            .into_iter()
            .map(|c| {
                if c == 0 {
                    PSI_EMPTY_BIN_PROPORTION
                } else {
                    c as f64 / values.len() as f64
                }
            })
            .collect()
    };
    let expected = proportions(reference);
    let observed = proportions(actual);
    Ok(numpy_sum_of(
        observed
            .iter()
            .zip(&expected)
            .map(|(&a, &r)| (a - r) * (a / r).ln()),
    ))
}

/// Jensen-Shannon distance between two discrete distributions given as
/// non-negative weights over the same categories, in bits:
/// `scipy.spatial.distance.jensenshannon(p, q, base=2)`.
///
/// Weights are normalised to sum to 1 first. The result is the square root
/// of the Jensen-Shannon divergence, a metric between 0 (identical) and 1
/// (disjoint support).
///
/// Errors if the slices are empty or of different lengths, a weight is
/// negative or not finite, or either sums to 0.
pub fn jensen_shannon(p: &[f64], q: &[f64]) -> Result<f64, StatsError> {
    check_non_negative("p", p)?;
    check_non_negative("q", q)?;
    if p.len() != q.len() {
        return Err(StatsError::LengthMismatch {
            left: "p",
            left_len: p.len(),
            right: "q",
            right_len: q.len(),
        });
    }
    let p_total = super::sum::numpy_sum(p);
    let q_total = super::sum::numpy_sum(q);
    for (argument, total) in [("p", p_total), ("q", q_total)] {
        if total == 0.0 {
            return Err(StatsError::ZeroTotal { argument });
        }
        if total.is_infinite() {
            return Err(StatsError::OutOfRange {
                argument,
                value: total,
                range: "weights with a finite sum; scale them down",
            });
        }
    }
    let p: Vec<f64> = p.iter().map(|v| v / p_total).collect();
    let q: Vec<f64> = q.iter().map(|v| v / q_total).collect();
    let m: Vec<f64> = p.iter().zip(&q).map(|(a, b)| (a + b) / 2.0).collect();
    let left = numpy_sum_of(p.iter().zip(&m).map(|(&a, &b)| relative_entropy(a, b)));
    let right = numpy_sum_of(q.iter().zip(&m).map(|(&a, &b)| relative_entropy(a, b)));
    let divergence = (left + right) / LN_2;
    // Rounding can leave a tiny negative divergence for near-identical
    // inputs, where SciPy returns NaN; the distance there is 0.
    Ok((divergence / 2.0).max(0.0).sqrt())
}

/// `scipy.special.rel_entr` for a > 0 or a = 0, with b >= a / 2 > 0.
fn relative_entropy(a: f64, b: f64) -> f64 {
    if a > 0.0 && b > 0.0 {
        a * (a / b).ln()
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_samples_are_stable() {
        let x: Vec<f64> = (0..1000).map(|i| f64::from(i).sin()).collect();
        assert_eq!(psi(&x, &x, 10).unwrap(), 0.0);
        assert_eq!(jensen_shannon(&[1.0, 2.0], &[2.0, 4.0]).unwrap(), 0.0);
    }

    #[test]
    fn shifted_sample_has_large_psi() {
        let reference: Vec<f64> = (0..1000).map(f64::from).collect();
        let actual: Vec<f64> = (0..1000).map(|i| f64::from(i) + 500.0).collect();
        assert!(psi(&reference, &actual, 10).unwrap() > 1.0);
    }

    #[test]
    fn disjoint_distributions_are_one_bit_apart() {
        let d = jensen_shannon(&[1.0, 0.0], &[0.0, 3.0]).unwrap();
        assert!((d - 1.0).abs() < 1e-15, "{d}");
    }

    #[test]
    fn bad_weights_say_what_to_fix() {
        let err = jensen_shannon(&[0.0, 0.0], &[1.0, 1.0]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`p` sums to 0; pass at least one positive weight"
        );
        let err = jensen_shannon(&[1.0], &[1.0, 1.0]).unwrap_err();
        assert!(err.to_string().contains("pair up"), "{err}");
        let err = psi(&[1.0], &[1.0], 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`bins` is 0; it must be between 1 and 10000 (10 is usual)"
        );
    }
}
