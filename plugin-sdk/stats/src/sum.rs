//! Floating-point sums in NumPy's order.
//!
//! Rules: where SciPy sums terms that can cancel (the Jensen-Shannon terms,
//! chi-squared terms), we add them in the order `numpy.sum` does (pairwise,
//! eight accumulators per block of at most 128), so that results agree to
//! the last bits rather than only to the accuracy of the sum.

/// `numpy.sum` of a contiguous one-dimensional array.
pub(crate) fn numpy_sum(values: &[f64]) -> f64 {
    0.0 + pairwise(values)
}

/// Sums a slice of terms produced on the fly, in `numpy.sum` order.
pub(crate) fn numpy_sum_of(values: impl Iterator<Item = f64>) -> f64 {
    let terms: Vec<f64> = values.collect();
    numpy_sum(&terms)
}

const BLOCK: usize = 128;

fn pairwise(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 8 {
        let mut sum = 0.0;
        for &v in values {
            sum += v;
        }
        sum
    } else if n <= BLOCK {
        let mut acc = [0.0_f64; 8];
        acc.copy_from_slice(&values[..8]);
        let whole = n - n % 8;
        let mut i = 8;
        while i < whole {
            for (j, slot) in acc.iter_mut().enumerate() {
                *slot += values[i + j];
            }
            i += 8;
        }
        let mut sum =
            ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for &v in &values[whole..] {
            sum += v;
        }
        sum
    } else {
        let mut half = n / 2;
        half -= half % 8;
        pairwise(&values[..half]) + pairwise(&values[half..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_sum_adds_every_value_once() {
        for n in [0_u32, 1, 7, 8, 9, 127, 128, 129, 1000, 4097] {
            let values: Vec<f64> = (0..n).map(f64::from).collect();
            let expected = f64::from(n * n.saturating_sub(1) / 2);
            assert_eq!(numpy_sum(&values), expected, "n = {n}");
        }
    }
}
