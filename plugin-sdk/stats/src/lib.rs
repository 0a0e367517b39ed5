//! Statistics for gates: rank and distribution tests, chi-squared tests,
//! drift indices, quantiles with confidence intervals, exact binomial tests
//! and a paired bootstrap.
//!
//! Every p-value and statistic matches SciPy's (named on each function) to
//! 1e-9 relative or better, in practice 1e-12; `tests/fixtures/stats/`
//! holds SciPy's answers and `plugin-sdk/stats/tests/stats_reference.rs` checks
//! against them. Where SciPy returns NaN (too few values for an interval, a
//! single category) we return an error instead. The code uses nothing
//! outside `std`, so the same arithmetic runs in a WebAssembly gate and in
//! the daemon's canary judge.
//!
//! Rules, for every function here:
//!
//! - It never panics. Empty input, NaN or infinite values, mismatched
//!   lengths and out-of-range parameters return a [`StatsError`] whose
//!   message names the argument and what to change.
//! - It sorts at most once per sample: O(n log n) time, O(n) memory
//!   (two samples of 100,000 values take a few milliseconds natively).
//!   Exceptions are documented on the function (the exact
//!   Kolmogorov-Smirnov p-value, the bootstrap).
//! - Tail probabilities are computed directly, never as `1 - cdf`, so
//!   p-values far below machine epsilon (1e-12, 1e-100) keep their relative
//!   accuracy.
//!
//! ```
//! use gatehouse_stats::{Alternative, mann_whitney_u};
//!
//! let incumbent = [212.0, 198.0, 240.0, 205.0, 221.0, 199.0, 230.0, 215.0];
//! let candidate = [251.0, 262.0, 239.0, 270.0, 248.0, 266.0, 255.0, 259.0];
//! let test = mann_whitney_u(&candidate, &incumbent, Alternative::Greater)?;
//! assert!(test.p_value < 0.01, "candidate latency is higher");
//! # Ok::<(), gatehouse_stats::StatsError>(())
//! ```

mod binomial;
mod bootstrap;
mod chisq;
mod divergence;
mod error;
mod gamma;
mod kolmogorov;
mod ks;
mod ks_exact;
mod mann_whitney;
mod quantile;
mod rank;
mod rng;
mod smirnov;
mod sort;
mod special;
mod sum;

pub use binomial::{MAX_TRIALS, binomial_test, mcnemar_exact};
pub use bootstrap::{Bootstrap, MAX_RESAMPLES, paired_bootstrap};
pub use chisq::{chi2_contingency, chisquare};
pub use divergence::{PSI_EMPTY_BIN_PROPORTION, PSI_MAX_BINS, jensen_shannon, psi};
pub use error::StatsError;
pub use gamma::chi2_sf;
pub use ks::{KS_EXACT_MAX_LEN, ks_2samp};
pub use mann_whitney::mann_whitney_u;
pub use quantile::{quantile, quantile_ci};
pub use sort::sorted_copy as sorted;
pub use special::{normal_cdf, normal_sf};

/// Which departure from the null hypothesis a test looks for, as SciPy's
/// `alternative` argument. Each test documents what `Less` and `Greater`
/// mean for its statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alternative {
    TwoSided,
    Less,
    Greater,
}

/// A test statistic and its p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestResult {
    pub statistic: f64,
    pub p_value: f64,
}

/// A confidence interval, `low <= high`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

#[cfg(test)]
mod reference;
