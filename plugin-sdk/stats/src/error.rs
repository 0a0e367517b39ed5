//! The one error type of [`crate`], and the input checks that raise it.
//!
//! Rules: every public function checks its input here before computing, so
//! arithmetic further in can trust that samples are non-empty and finite.
//! Each message names the argument at fault and says what to change.

use std::fmt;

/// Why a statistic could not be computed. The message names the argument
/// at fault and what to do about it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StatsError {
    /// A sample or distribution has no values.
    Empty { argument: &'static str },
    /// A value is NaN or infinite.
    NotFinite {
        argument: &'static str,
        index: usize,
        value: f64,
    },
    /// Two inputs that must pair up one to one have different lengths.
    LengthMismatch {
        left: &'static str,
        left_len: usize,
        right: &'static str,
        right_len: usize,
    },
    /// A count, weight or expected frequency is negative.
    Negative {
        argument: &'static str,
        index: usize,
        value: f64,
    },
    /// An expected frequency is zero, which no chi-squared test can divide by.
    ZeroExpected {
        argument: &'static str,
        index: usize,
    },
    /// A distribution's weights sum to zero, so it cannot be normalised.
    ZeroTotal { argument: &'static str },
    /// Observed and expected frequencies have different totals.
    TotalsDiffer { observed: f64, expected: f64 },
    /// The rows of a contingency table differ in length.
    RaggedTable {
        row: usize,
        len: usize,
        expected_len: usize,
    },
    /// A contingency table cell is negative, NaN or infinite.
    BadTableCell {
        row: usize,
        column: usize,
        value: f64,
    },
    /// A contingency table has a row or column of zeros.
    EmptyTableLine { line: &'static str, index: usize },
    /// A slice documented as sorted is not in ascending order.
    NotSorted {
        argument: &'static str,
        index: usize,
    },
    /// A scalar parameter is outside the range it must lie in.
    OutOfRange {
        argument: &'static str,
        value: f64,
        range: &'static str,
    },
    /// More successes than trials.
    SuccessesExceedTrials { successes: u64, trials: u64 },
    /// Too many trials for an exact binomial computation.
    TooManyTrials { trials: u64, max: u64 },
    /// The sample is too small for the requested confidence.
    SampleTooSmall {
        len: usize,
        quantile: f64,
        confidence: f64,
    },
}

impl fmt::Display for StatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty { argument } => {
                write!(f, "`{argument}` is empty; pass at least one value")
            }
            Self::NotFinite {
                argument,
                index,
                value,
            } => write!(
                f,
                "`{argument}[{index}]` is {value}; drop or repair non-finite values before computing statistics"
            ),
            Self::LengthMismatch {
                left,
                left_len,
                right,
                right_len,
            } => write!(
                f,
                "`{left}` has {left_len} values but `{right}` has {right_len}; they must pair up one to one"
            ),
            Self::Negative {
                argument,
                index,
                value,
            } => write!(
                f,
                "`{argument}[{index}]` is {value}; counts and weights must not be negative"
            ),
            Self::ZeroExpected { argument, index } => write!(
                f,
                "`{argument}[{index}]` is 0; every expected frequency must be positive, so merge or drop that category"
            ),
            Self::ZeroTotal { argument } => write!(
                f,
                "`{argument}` sums to 0; pass at least one positive weight"
            ),
            Self::TotalsDiffer { observed, expected } => write!(
                f,
                "observed frequencies sum to {observed} but expected frequencies sum to {expected}; \
                 scale `expected` to the observed total"
            ),
            Self::RaggedTable {
                row,
                len,
                expected_len,
            } => write!(
                f,
                "table row {row} has {len} cells but row 0 has {expected_len}; every row needs one cell per column"
            ),
            Self::BadTableCell { row, column, value } => write!(
                f,
                "table cell at row {row}, column {column} is {value}; counts must be finite and not negative"
            ),
            Self::EmptyTableLine { line, index } => write!(
                f,
                "table {line} {index} is all zeros, so its expected frequencies are 0; drop that {line}"
            ),
            Self::NotSorted { argument, index } => write!(
                f,
                "`{argument}` is not in ascending order at index {index}; sort it first (e.g. `sort_by(f64::total_cmp)`)"
            ),
            Self::OutOfRange {
                argument,
                value,
                range,
            } => write!(f, "`{argument}` is {value}; it must be {range}"),
            Self::SuccessesExceedTrials { successes, trials } => write!(
                f,
                "{successes} successes out of {trials} trials; successes cannot exceed trials"
            ),
            Self::TooManyTrials { trials, max } => write!(
                f,
                "{trials} trials is more than the {max} an exact binomial computation supports; \
                 test a random subsample of at most {max} trials"
            ),
            Self::SampleTooSmall {
                len,
                quantile,
                confidence,
            } => write!(
                f,
                "{len} values are too few for a two-sided {confidence} confidence interval of the \
                 {quantile} quantile; collect more values or lower `confidence`"
            ),
        }
    }
}

impl std::error::Error for StatsError {}

/// Rejects an empty sample or one holding NaN or an infinity.
pub(crate) fn check_sample(argument: &'static str, values: &[f64]) -> Result<(), StatsError> {
    if values.is_empty() {
        return Err(StatsError::Empty { argument });
    }
    check_finite(argument, values)
}

/// Rejects NaN and infinities, naming the first offending index.
pub(crate) fn check_finite(argument: &'static str, values: &[f64]) -> Result<(), StatsError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(StatsError::NotFinite {
            argument,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Rejects a sample that is empty, not finite, or not in ascending order.
pub(crate) fn check_sorted(argument: &'static str, values: &[f64]) -> Result<(), StatsError> {
    check_sample(argument, values)?;
    match values.windows(2).position(|pair| pair[1] < pair[0]) {
        Some(index) => Err(StatsError::NotSorted {
            argument,
            index: index + 1,
        }),
        None => Ok(()),
    }
}

/// Rejects negative entries (after [`check_sample`]).
pub(crate) fn check_non_negative(argument: &'static str, values: &[f64]) -> Result<(), StatsError> {
    check_sample(argument, values)?;
    match values.iter().position(|v| *v < 0.0) {
        Some(index) => Err(StatsError::Negative {
            argument,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Rejects a probability-like parameter outside the open interval (0, 1).
pub(crate) fn check_open_unit(argument: &'static str, value: f64) -> Result<(), StatsError> {
    if value > 0.0 && value < 1.0 {
        Ok(())
    } else {
        Err(StatsError::OutOfRange {
            argument,
            value,
            range: "strictly between 0 and 1",
        })
    }
}
