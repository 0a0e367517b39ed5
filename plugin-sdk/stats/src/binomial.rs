//! The binomial distribution, SciPy's two-sided binomial test, and the exact
//! McNemar test built on it.
//!
//! Rules: the probability mass uses Loader's saddle-point form (see
//! [`super::gamma`]), accurate to about 1e-14 relative for any number of
//! trials. Tail probabilities are sums of masses taken from the far side of
//! the mode outwards, so every added term is smaller than the last and small
//! tails keep their relative accuracy; the cost is O(sqrt(n p (1 - p))).
//! Trials are capped at [`MAX_TRIALS`] to keep that cost bounded.

use super::error::StatsError;
use super::gamma::{bd0, stirlerr};

/// The most trials [`binomial_test`] and [`mcnemar_exact`] accept (2^32).
/// Summing a tail costs up to about 10 sqrt(trials) steps.
pub const MAX_TRIALS: u64 = 1 << 32;

/// Masses are recomputed from scratch this often while walking a tail, so
/// rounding in the ratio recurrence cannot pile up.
const REANCHOR_EVERY: u32 = 64;

/// Binomial(n, p) with n <= [`MAX_TRIALS`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Binomial {
    n: f64,
    p: f64,
    q: f64,
}

impl Binomial {
    pub(crate) fn new(trials: u64, p: f64) -> Self {
        Self {
            n: trials as f64,
            p,
            q: 1.0 - p,
        }
    }

    /// P(X = k) for integer-valued `k`; zero outside 0..=n.
    pub(crate) fn pmf(&self, k: f64) -> f64 {
        let Self { n, p, q } = *self;
        if k < 0.0 || k > n {
            return 0.0;
        }
        if p == 0.0 {
            return if k == 0.0 { 1.0 } else { 0.0 };
        }
        if q == 0.0 {
            return if k == n { 1.0 } else { 0.0 };
        }
        if k == 0.0 {
            if n == 0.0 {
                return 1.0;
            }
            let log = if p < 0.1 {
                -bd0(n, n * q) - n * p
            } else {
                n * q.ln()
            };
            return log.exp();
        }
        if k == n {
            let log = if q < 0.1 {
                -bd0(n, n * p) - n * q
            } else {
                n * p.ln()
            };
            return log.exp();
        }
        let log = stirlerr(n) - stirlerr(k) - stirlerr(n - k) - bd0(k, n * p) - bd0(n - k, n * q);
        let log_norm = std::f64::consts::TAU.ln() + k.ln() + (-k / n).ln_1p();
        (log - 0.5 * log_norm).exp()
    }

    /// The largest mass point, floor((n + 1) p): masses rise up to it and
    /// fall after it.
    fn mode(&self) -> f64 {
        ((self.n + 1.0) * self.p).floor().min(self.n)
    }

    /// sum of P(X = i) for i = k, k - 1, ..., 0, for k below the mode.
    fn lower_tail(&self, k: f64) -> f64 {
        let ratio = self.q / self.p;
        let mut i = k;
        let mut term = self.pmf(i);
        let mut sum = term;
        let mut steps = 0;
        while i > 0.0 && term > sum * 1e-17 {
            steps += 1;
            term = if steps % REANCHOR_EVERY == 0 {
                self.pmf(i - 1.0)
            } else {
                term * (i / (self.n - i + 1.0)) * ratio
            };
            i -= 1.0;
            sum += term;
        }
        sum
    }

    /// sum of P(X = i) for i = k, k + 1, ..., n, for k above the mode.
    fn upper_tail(&self, k: f64) -> f64 {
        let ratio = self.p / self.q;
        let mut i = k;
        let mut term = self.pmf(i);
        let mut sum = term;
        let mut steps = 0;
        while i < self.n && term > sum * 1e-17 {
            steps += 1;
            term = if steps % REANCHOR_EVERY == 0 {
                self.pmf(i + 1.0)
            } else {
                term * ((self.n - i) / (i + 1.0)) * ratio
            };
            i += 1.0;
            sum += term;
        }
        sum
    }

    /// P(X <= k).
    pub(crate) fn cdf(&self, k: f64) -> f64 {
        if k < 0.0 {
            return 0.0;
        }
        if k >= self.n || self.q == 0.0 {
            return if k >= self.n { 1.0 } else { 0.0 };
        }
        if self.p == 0.0 {
            return 1.0;
        }
        if k < self.mode() {
            self.lower_tail(k)
        } else {
            1.0 - self.upper_tail(k + 1.0)
        }
    }

    /// P(X > k).
    pub(crate) fn sf(&self, k: f64) -> f64 {
        if k < 0.0 {
            return 1.0;
        }
        if k >= self.n || self.p == 0.0 {
            return 0.0;
        }
        if self.q == 0.0 {
            return 1.0;
        }
        if k + 1.0 > self.mode() {
            self.upper_tail(k + 1.0)
        } else {
            1.0 - self.lower_tail(k)
        }
    }

    /// The smallest k with P(X <= k) >= prob (`scipy.stats.binom.ppf`).
    pub(crate) fn ppf(&self, prob: f64) -> f64 {
        self.smallest(|k| self.cdf(k) >= prob)
    }

    /// The smallest k with P(X > k) <= prob (`scipy.stats.binom.isf`).
    pub(crate) fn isf(&self, prob: f64) -> f64 {
        self.smallest(|k| self.sf(k) <= prob)
    }

    /// The smallest k in 0..=n where a monotone predicate holds (n if none).
    fn smallest(&self, holds: impl Fn(f64) -> bool) -> f64 {
        let (mut lo, mut hi) = (0.0_f64, self.n);
        while lo < hi {
            let mid = lo + ((hi - lo) / 2.0).floor();
            if holds(mid) {
                hi = mid;
            } else {
                lo = mid + 1.0;
            }
        }
        lo
    }
}

/// Two-sided p-value of the exact binomial test of `successes` in `trials`
/// against success probability `p`: `scipy.stats.binomtest(k, n, p).pvalue`.
///
/// Like SciPy, the p-value adds the probabilities of every outcome no more
/// likely than the observed one (with a relative slack of 1e-7 so that
/// outcomes equally likely in exact arithmetic count as equal).
///
/// Errors if `trials` is 0 or above [`MAX_TRIALS`], `successes > trials`,
/// or `p` is not in [0, 1].
pub fn binomial_test(successes: u64, trials: u64, p: f64) -> Result<f64, StatsError> {
    if trials == 0 {
        return Err(StatsError::OutOfRange {
            argument: "trials",
            value: 0.0,
            range: "at least 1",
        });
    }
    if trials > MAX_TRIALS {
        return Err(StatsError::TooManyTrials {
            trials,
            max: MAX_TRIALS,
        });
    }
    if successes > trials {
        return Err(StatsError::SuccessesExceedTrials { successes, trials });
    }
    if !(0.0..=1.0).contains(&p) {
        return Err(StatsError::OutOfRange {
            argument: "p",
            value: p,
            range: "between 0 and 1",
        });
    }
    let dist = Binomial::new(trials, p);
    let n = trials as f64;
    let k = successes as f64;
    let observed = dist.pmf(k);
    let threshold = observed * (1.0 + 1e-7);
    let p_value = if k == p * n {
        1.0
    } else if k < p * n {
        let ix = search_binomial_tail(|x| -dist.pmf(x), -threshold, (p * n).ceil(), n);
        let y = n - ix + if threshold == dist.pmf(ix) { 1.0 } else { 0.0 };
        dist.cdf(k) + dist.sf(n - y)
    } else {
        let ix = search_binomial_tail(|x| dist.pmf(x), threshold, 0.0, (p * n).floor());
        let y = ix + 1.0;
        dist.cdf(y - 1.0) + dist.sf(k - 1.0)
    };
    Ok(p_value.min(1.0))
}

/// SciPy's `_binary_search_for_binom_tst`: in a monotone stretch lo..=hi of
/// `a`, the last index where `a` is at most `d`.
fn search_binomial_tail(a: impl Fn(f64) -> f64, d: f64, mut lo: f64, mut hi: f64) -> f64 {
    while lo < hi {
        let mid = lo + ((hi - lo) / 2.0).floor();
        let value = a(mid);
        if value < d {
            lo = mid + 1.0;
        } else if value > d {
            hi = mid - 1.0;
        } else {
            return mid;
        }
    }
    if a(lo) <= d { lo } else { lo - 1.0 }
}

/// Exact McNemar test on the discordant counts of a paired comparison: `b`
/// pairs where only the first configuration succeeded, `c` where only the
/// second did. Equals `binomtest(min(b, c), b + c, 0.5).pvalue`, and 1 when
/// there are no discordant pairs.
pub fn mcnemar_exact(b: u64, c: u64) -> Result<f64, StatsError> {
    let trials = b.checked_add(c).ok_or(StatsError::TooManyTrials {
        trials: u64::MAX,
        max: MAX_TRIALS,
    })?;
    if trials == 0 {
        return Ok(1.0);
    }
    binomial_test(b.min(c), trials, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masses_sum_to_one_and_tails_complement() {
        let dist = Binomial::new(40, 0.3);
        let total: f64 = (0..=40).map(|k| dist.pmf(f64::from(k))).sum();
        assert!((total - 1.0).abs() < 1e-14);
        for k in 0..=40 {
            let k = f64::from(k);
            assert!((dist.cdf(k) + dist.sf(k) - 1.0).abs() < 1e-14, "k = {k}");
        }
    }

    #[test]
    fn degenerate_probabilities_are_certain() {
        assert_eq!(binomial_test(0, 10, 0.0), Ok(1.0));
        assert_eq!(binomial_test(3, 10, 0.0), Ok(0.0));
        assert_eq!(binomial_test(10, 10, 1.0), Ok(1.0));
        assert_eq!(binomial_test(9, 10, 1.0), Ok(0.0));
    }

    #[test]
    fn impossible_counts_are_rejected_with_the_numbers() {
        let err = binomial_test(11, 10, 0.5).unwrap_err();
        assert!(
            err.to_string().contains("11 successes out of 10 trials"),
            "{err}"
        );
        let err = binomial_test(0, 0, 0.5).unwrap_err();
        assert!(err.to_string().contains("`trials` is 0"), "{err}");
        let err = binomial_test(1, 2, 1.5).unwrap_err();
        assert!(err.to_string().contains("`p` is 1.5"), "{err}");
        assert!(binomial_test(1, MAX_TRIALS + 1, 0.5).is_err());
    }

    #[test]
    fn mcnemar_without_discordant_pairs_is_one() {
        assert_eq!(mcnemar_exact(0, 0), Ok(1.0));
        assert_eq!(mcnemar_exact(3, 5), binomial_test(3, 8, 0.5));
        assert!(mcnemar_exact(u64::MAX, 1).is_err());
    }
}
