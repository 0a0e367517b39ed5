//! Midranks of two pooled samples, and the tie sizes a rank test corrects for.
//!
//! Rules: each sample is sorted once (O(n log n)) and the two are merged;
//! tied values share the mean of the ranks they span
//! (`scipy.stats.rankdata(method="average")`).

use super::sort::sorted_copy;

/// What a rank test needs from the pooled sample.
pub(crate) struct PooledRanks {
    /// Sum of the midranks (1-based) of the first sample's values.
    pub(crate) first_rank_sum: f64,
    /// Sum of t^3 - t over groups of t tied values.
    pub(crate) tie_term: f64,
}

/// Ranks `first` and `second` together. Both must be finite.
pub(crate) fn pooled_ranks(first: &[f64], second: &[f64]) -> PooledRanks {
    let (xs, ys) = (sorted_copy(first), sorted_copy(second));
    let (mut i, mut j, mut ranked) = (0, 0, 0);
    let mut first_rank_sum = 0.0;
    let mut tie_term = 0.0;
    loop {
        let value = match (xs.get(i), ys.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        let from_first = xs[i..].iter().take_while(|&&v| v == value).count();
        let from_second = ys[j..].iter().take_while(|&&v| v == value).count();
        let t = from_first + from_second;
        // Ranks ranked + 1 ..= ranked + t share their mean.
        let midrank = (2 * ranked + t + 1) as f64 / 2.0;
        first_rank_sum += midrank * from_first as f64;
        let t = t as f64;
        tie_term += t * t * t - t;
        ranked += from_first + from_second;
        i += from_first;
        j += from_second;
    }
    PooledRanks {
        first_rank_sum,
        tie_term,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tied_values_share_their_mean_rank() {
        // Pooled: 1, 2, 2, 2, 3 -> ranks 1, 3, 3, 3, 5.
        let ranks = pooled_ranks(&[2.0, 1.0], &[2.0, 3.0, 2.0]);
        assert_eq!(ranks.first_rank_sum, 4.0);
        assert_eq!(ranks.tie_term, 24.0);
    }

    #[test]
    fn negative_zero_ties_with_zero() {
        let ranks = pooled_ranks(&[-0.0], &[0.0]);
        assert_eq!(ranks.first_rank_sum, 1.5);
        assert_eq!(ranks.tie_term, 6.0);
    }
}
