//! Pearson's chi-squared tests: goodness of fit and independence in a
//! contingency table.
//!
//! Rules: match `scipy.stats.chisquare(f_obs, f_exp)` and
//! `scipy.stats.chi2_contingency(table)` (with Yates' correction when the
//! table has one degree of freedom), summing terms in NumPy's order. Where
//! SciPy would return NaN or divide by zero, we return an error that says
//! which category or table line to fix.

use super::TestResult;
use super::error::{StatsError, check_non_negative};
use super::gamma::chi2_sf;
use super::sum::{numpy_sum, numpy_sum_of};

/// SciPy's tolerance for observed and expected totals: sqrt(machine eps).
const TOTALS_TOLERANCE: f64 = 1.490_116_119_384_765_6e-8;

/// Pearson's chi-squared goodness-of-fit test of `observed` counts against
/// `expected` counts (`scipy.stats.chisquare(f_obs, f_exp)`), with
/// `len - 1` degrees of freedom.
///
/// Errors if the slices are empty, of different lengths, or shorter than
/// two categories; if a value is not finite or negative, or an expected
/// count is 0; or if the totals differ by more than 1.5e-8 relative (scale
/// `expected` to the observed total first).
pub fn chisquare(observed: &[f64], expected: &[f64]) -> Result<TestResult, StatsError> {
    check_non_negative("observed", observed)?;
    check_non_negative("expected", expected)?;
    if observed.len() != expected.len() {
        return Err(StatsError::LengthMismatch {
            left: "observed",
            left_len: observed.len(),
            right: "expected",
            right_len: expected.len(),
        });
    }
    if observed.len() < 2 {
        return Err(StatsError::OutOfRange {
            argument: "observed.len()",
            value: observed.len() as f64,
            range: "at least 2 (one category leaves no degrees of freedom)",
        });
    }
    if let Some(index) = expected.iter().position(|&e| e == 0.0) {
        return Err(StatsError::ZeroExpected {
            argument: "expected",
            index,
        });
    }
    let observed_total = numpy_sum(observed);
    let expected_total = numpy_sum(expected);
    let relative = (observed_total - expected_total).abs() / observed_total.min(expected_total);
    // NaN (both totals 0) fails this test too.
    if relative.is_nan() || relative > TOTALS_TOLERANCE {
        return Err(StatsError::TotalsDiffer {
            observed: observed_total,
            expected: expected_total,
        });
    }
    let statistic = pearson(observed, expected);
    Ok(TestResult {
        statistic,
        p_value: chi2_sf(statistic, (observed.len() - 1) as f64),
    })
}

/// The sum of (o - e)^2 / e in NumPy's order.
fn pearson(observed: &[f64], expected: &[f64]) -> f64 {
    numpy_sum_of(observed.iter().zip(expected).map(|(&o, &e)| {
        let d = o - e;
        d * d / e
    }))
}

/// Pearson's chi-squared test of independence of the rows and columns of a
/// contingency table of counts (`scipy.stats.chi2_contingency(table)`).
///
/// Expected counts are row total x column total / grand total, with
/// (rows - 1)(columns - 1) degrees of freedom. With exactly one degree of
/// freedom (a 2x2 table), Yates' continuity correction moves each count
/// half a unit towards its expected value (never past it), as SciPy does.
/// A table with a single row or column has no degrees of freedom: the
/// statistic is 0 and the p-value 1.
///
/// Errors if the table is empty or ragged, holds a negative or non-finite
/// count, or has a row or column of zeros.
pub fn chi2_contingency(table_rows: &[Vec<f64>]) -> Result<TestResult, StatsError> {
    let Some(first) = table_rows.first() else {
        return Err(StatsError::Empty {
            argument: "table_rows",
        });
    };
    let columns = first.len();
    for (row, cells) in table_rows.iter().enumerate() {
        if cells.len() != columns {
            return Err(StatsError::RaggedTable {
                row,
                len: cells.len(),
                expected_len: columns,
            });
        }
    }
    if columns == 0 {
        return Err(StatsError::Empty {
            argument: "table_rows[0]",
        });
    }
    for (row, cells) in table_rows.iter().enumerate() {
        if let Some(column) = cells.iter().position(|c| !(c.is_finite() && *c >= 0.0)) {
            return Err(StatsError::BadTableCell {
                row,
                column,
                value: cells[column],
            });
        }
    }
    let flat: Vec<f64> = table_rows.iter().flatten().copied().collect();

    let row_totals: Vec<f64> = table_rows.iter().map(|r| numpy_sum(r)).collect();
    // NumPy sums down the columns row after row.
    let mut column_totals = vec![0.0; columns];
    for cells in table_rows {
        for (total, cell) in column_totals.iter_mut().zip(cells) {
            *total += cell;
        }
    }
    if let Some(index) = row_totals.iter().position(|&t| t == 0.0) {
        return Err(StatsError::EmptyTableLine { line: "row", index });
    }
    if let Some(index) = column_totals.iter().position(|&t| t == 0.0) {
        return Err(StatsError::EmptyTableLine {
            line: "column",
            index,
        });
    }
    let total = numpy_sum(&flat);
    let expected: Vec<f64> = row_totals
        .iter()
        .flat_map(|r| column_totals.iter().map(move |c| r * c / total))
        .collect();

    let dof = (table_rows.len() - 1) * (columns - 1);
    if dof == 0 {
        return Ok(TestResult {
            statistic: 0.0,
            p_value: 1.0,
        });
    }
    let observed: Vec<f64> = if dof == 1 {
        flat.iter()
            .zip(&expected)
            .map(|(&o, &e)| {
                let diff = e - o;
                o + diff.abs().min(0.5) * diff.signum_or_zero()
            })
            .collect()
    } else {
        flat
    };
    let statistic = pearson(&observed, &expected);
    Ok(TestResult {
        statistic,
        p_value: chi2_sf(statistic, dof as f64),
    })
}

/// `numpy.sign`: -1, 0 or 1 (Rust's `signum` gives 1 for +0.0).
trait SignOrZero {
    fn signum_or_zero(self) -> f64;
}

impl SignOrZero for f64 {
    fn signum_or_zero(self) -> f64 {
        if self > 0.0 {
            1.0
        } else if self < 0.0 {
            -1.0
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_fit_has_statistic_zero_and_p_one() {
        let r = chisquare(&[10.0, 20.0, 30.0], &[10.0, 20.0, 30.0]).unwrap();
        assert_eq!((r.statistic, r.p_value), (0.0, 1.0));
    }

    #[test]
    fn mismatched_totals_say_to_rescale() {
        let err = chisquare(&[10.0, 20.0], &[10.0, 10.0]).unwrap_err();
        assert!(err.to_string().contains("scale `expected`"), "{err}");
    }

    #[test]
    fn zero_expected_count_names_the_category() {
        let err = chisquare(&[0.0, 5.0], &[0.0, 5.0]).unwrap_err();
        assert!(err.to_string().starts_with("`expected[0]` is 0"), "{err}");
    }

    #[test]
    fn yates_correction_never_overshoots_the_expected_count() {
        // Expected counts are all 5; observed differ by 0.25, so the
        // correction moves them exactly onto the expectation.
        let r = chi2_contingency(&[vec![5.25, 4.75], vec![4.75, 5.25]]).unwrap();
        assert_eq!(r.statistic, 0.0);
        assert_eq!(r.p_value, 1.0);
    }

    #[test]
    fn table_errors_point_at_the_line() {
        let err = chi2_contingency(&[vec![1.0, 2.0], vec![3.0]]).unwrap_err();
        assert!(
            err.to_string().starts_with("table row 1 has 1 cells"),
            "{err}"
        );
        let err = chi2_contingency(&[vec![1.0, 0.0], vec![3.0, 0.0]]).unwrap_err();
        assert!(
            err.to_string().starts_with("table column 1 is all zeros"),
            "{err}"
        );
        assert!(chi2_contingency(&[]).is_err());
        assert!(chi2_contingency(&[vec![]]).is_err());
    }

    #[test]
    fn single_row_has_no_degrees_of_freedom() {
        let r = chi2_contingency(&[vec![1.0, 2.0, 3.0]]).unwrap();
        assert_eq!((r.statistic, r.p_value), (0.0, 1.0));
    }
}
