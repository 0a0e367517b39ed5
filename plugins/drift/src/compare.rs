//! Comparing one feature's candidate values with its reference values.
//!
//! Numeric features: the population stability index (`stats::psi`, bins cut
//! at the reference's quantiles) and the two-sample Kolmogorov-Smirnov test
//! (`stats::ks_2samp`, two-sided). Categorical features: the Jensen-Shannon
//! distance (`stats::jensen_shannon`, base 2) between the category shares
//! over the union of both sides' categories, and Pearson's chi-squared test
//! of homogeneity (`stats::chi2_contingency`) on the 2 × k table of counts.
//!
//! Rules: a feature drifted when any of its bars is crossed (index above
//! its maximum, p-value below its alpha). A feature with fewer than
//! `min_samples` values on either side is not judged at all: its status is
//! `TooFew`, so small samples never pass for stable. Categories are ordered
//! by name, so the same files always give the same figures.

use std::collections::BTreeSet;

use gatehouse_plugin_sdk::stats::{self, Alternative, TestResult};

use crate::params::{Bars, Feature};
use crate::records::Column;

/// Categories whose share moved most, named in a reason.
pub const SHIFTS_SHOWN: usize = 3;

/// What the comparison found for one feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub candidate_n: usize,
    pub reference_n: usize,
    pub figures: Figures,
    /// The bars crossed, in words: "PSI 0.31 > psi_max 0.2".
    pub crossed: Vec<String>,
    pub status: Status,
}

/// The statistics of one feature.
#[derive(Debug, Clone, PartialEq)]
pub enum Figures {
    Numeric {
        psi: f64,
        ks: TestResult,
        candidate_mean: f64,
        reference_mean: f64,
    },
    Categorical {
        js: f64,
        chi2: TestResult,
        categories: usize,
        /// (category, reference share, candidate share), largest change first.
        shifts: Vec<(String, f64, f64)>,
    },
    /// Too few values to compute anything worth reading.
    None,
}

/// Whether a feature passed its bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Stable,
    Drifted,
    /// Fewer values than `min_samples` on a side.
    TooFew,
}

/// Compares `candidate` with `reference` for `feature`; both columns are of
/// the feature's kind.
pub fn compare(
    feature: &Feature,
    candidate: &Column,
    reference: &Column,
    bins: usize,
    min_samples: usize,
) -> Result<Comparison, String> {
    let (candidate_n, reference_n) = (candidate.len(), reference.len());
    if candidate_n < min_samples || reference_n < min_samples {
        return Ok(Comparison {
            candidate_n,
            reference_n,
            figures: Figures::None,
            crossed: Vec::new(),
            status: Status::TooFew,
        });
    }
    let failed = |e: stats::StatsError| format!("cannot compare feature `{}`: {e}", feature.name);
    let mut crossed = Vec::new();
    let figures = match (feature.bars, candidate, reference) {
        (Bars::Numeric { psi_max, ks_alpha }, Column::Numeric(c), Column::Numeric(r)) => {
            // KS sorts both samples and PSI the reference again; sorted
            // once here, each of those is a linear pass over sorted data.
            let (c, r) = (&stats::sorted(c), &stats::sorted(r));
            let psi = stats::psi(r, c, bins).map_err(failed)?;
            let ks = stats::ks_2samp(c, r, Alternative::TwoSided).map_err(failed)?;
            if psi > psi_max {
                crossed.push(format!("PSI {} > psi_max {psi_max}", fixed(psi)));
            }
            if ks.p_value < ks_alpha {
                crossed.push(format!(
                    "KS p {} < ks_alpha {ks_alpha} (D {})",
                    p_value(ks.p_value),
                    fixed(ks.statistic)
                ));
            }
            Figures::Numeric {
                psi,
                ks,
                candidate_mean: mean(c),
                reference_mean: mean(r),
            }
        }
        (
            Bars::Categorical { js_max, chi2_alpha },
            Column::Categorical(c),
            Column::Categorical(r),
        ) => {
            let names: BTreeSet<&String> = c.keys().chain(r.keys()).collect();
            let count = |counts: &std::collections::HashMap<String, u64>, name: &String| {
                counts.get(name).copied().unwrap_or(0) as f64
            };
            let c_counts: Vec<f64> = names.iter().map(|n| count(c, n)).collect();
            let r_counts: Vec<f64> = names.iter().map(|n| count(r, n)).collect();
            let js = stats::jensen_shannon(&c_counts, &r_counts).map_err(failed)?;
            let chi2 =
                stats::chi2_contingency(&[c_counts.clone(), r_counts.clone()]).map_err(failed)?;
            if js > js_max {
                crossed.push(format!(
                    "Jensen-Shannon distance {} > js_max {js_max}",
                    fixed(js)
                ));
            }
            if chi2.p_value < chi2_alpha {
                crossed.push(format!(
                    "chi-squared p {} < chi2_alpha {chi2_alpha}",
                    p_value(chi2.p_value)
                ));
            }
            let mut shifts: Vec<(String, f64, f64)> = names
                .iter()
                .zip(c_counts.iter().zip(&r_counts))
                .map(|(name, (c, r))| {
                    (
                        (*name).clone(),
                        r / reference_n as f64,
                        c / candidate_n as f64,
                    )
                })
                .collect();
            // Stable sort: ties keep the categories' name order.
            shifts.sort_by(|a, b| (b.2 - b.1).abs().total_cmp(&(a.2 - a.1).abs()));
            shifts.truncate(SHIFTS_SHOWN);
            Figures::Categorical {
                js,
                chi2,
                categories: names.len(),
                shifts,
            }
        }
        _ => {
            return Err(format!(
                "feature `{}` was read as another kind than its params say; this is a defect in the drift gate",
                feature.name
            ));
        }
    };
    let status = if crossed.is_empty() {
        Status::Stable
    } else {
        Status::Drifted
    };
    Ok(Comparison {
        candidate_n,
        reference_n,
        figures,
        crossed,
        status,
    })
}

/// The Jensen-Shannon distance two samples of `candidate_n` and
/// `reference_n` values over `categories` categories show on average when
/// drawn from one distribution: sqrt((k - 1)(1/m + 1/n) / (8 ln 2)), from
/// the chi-squared approximation of the divergence. A distance near it is
/// sampling noise, not drift.
pub fn js_noise_floor(categories: usize, candidate_n: usize, reference_n: usize) -> f64 {
    let k = categories.saturating_sub(1) as f64;
    let spread = 1.0 / candidate_n as f64 + 1.0 / reference_n as f64;
    (k * spread / (8.0 * std::f64::consts::LN_2)).sqrt()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Three decimals, enough to compare with a threshold.
pub fn fixed(value: f64) -> String {
    format!("{value:.3}")
}

/// A p-value readable at any size: 0.034, 2.1e-9.
pub fn p_value(p: f64) -> String {
    if p >= 0.001 || p == 0.0 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn numeric(psi_max: f64, ks_alpha: f64) -> Feature {
        Feature {
            name: "len".to_string(),
            blocking: true,
            bars: Bars::Numeric { psi_max, ks_alpha },
        }
    }

    fn categorical(js_max: f64, chi2_alpha: f64) -> Feature {
        Feature {
            name: "label".to_string(),
            blocking: true,
            bars: Bars::Categorical { js_max, chi2_alpha },
        }
    }

    fn counts(pairs: &[(&str, u64)]) -> Column {
        Column::Categorical(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect::<HashMap<_, _>>(),
        )
    }

    fn spread(n: usize, shift: f64) -> Column {
        Column::Numeric(
            (0..n)
                .map(|i| (i as f64 * 0.618_034).fract() + shift)
                .collect(),
        )
    }

    #[test]
    fn identical_numeric_samples_are_stable() {
        let c = compare(
            &numeric(0.2, 0.01),
            &spread(200, 0.0),
            &spread(200, 0.0),
            10,
            30,
        )
        .expect("compared");
        assert_eq!(c.status, Status::Stable);
        match c.figures {
            Figures::Numeric { psi, ks, .. } => {
                assert_eq!(psi, 0.0);
                assert_eq!((ks.statistic, ks.p_value), (0.0, 1.0));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn shifted_numbers_cross_psi_and_ks() {
        let c = compare(
            &numeric(0.2, 0.01),
            &spread(200, 0.3),
            &spread(200, 0.0),
            10,
            30,
        )
        .expect("compared");
        assert_eq!(c.status, Status::Drifted);
        assert_eq!(c.crossed.len(), 2, "{:?}", c.crossed);
        assert!(c.crossed[0].starts_with("PSI "), "{:?}", c.crossed);
        assert!(c.crossed[1].starts_with("KS p "), "{:?}", c.crossed);
    }

    #[test]
    fn each_numeric_bar_is_crossed_on_its_own() {
        // A small shift: PSI about 0.18, KS D 0.08 (p near 1e-5).
        let (c, r) = (spread(2000, 0.08), spread(2000, 0.0));
        let only_ks = compare(&numeric(10.0, 0.01), &c, &r, 10, 30).expect("compared");
        assert_eq!(only_ks.status, Status::Drifted);
        assert!(
            only_ks.crossed[0].starts_with("KS p"),
            "{:?}",
            only_ks.crossed
        );
        let only_psi = compare(&numeric(0.01, 0.0), &c, &r, 10, 30).expect("compared");
        assert_eq!(only_psi.status, Status::Drifted);
        assert!(
            only_psi.crossed[0].starts_with("PSI"),
            "{:?}",
            only_psi.crossed
        );
        let neither = compare(&numeric(10.0, 0.0), &c, &r, 10, 30).expect("compared");
        assert_eq!(neither.status, Status::Stable);
    }

    #[test]
    fn moved_category_shares_cross_js_and_chi2() {
        let reference = counts(&[("billing", 100), ("account", 100)]);
        let candidate = counts(&[("billing", 40), ("account", 150), ("outage", 10)]);
        let c = compare(&categorical(0.1, 0.01), &candidate, &reference, 10, 30).expect("compared");
        assert_eq!(c.status, Status::Drifted);
        assert!(
            c.crossed[0].starts_with("Jensen-Shannon distance"),
            "{:?}",
            c.crossed
        );
        assert!(c.crossed[1].starts_with("chi-squared p"), "{:?}", c.crossed);
        match &c.figures {
            Figures::Categorical {
                categories, shifts, ..
            } => {
                assert_eq!(*categories, 3);
                assert_eq!(shifts[0], ("billing".to_string(), 0.5, 0.2));
                assert_eq!(shifts[1], ("account".to_string(), 0.5, 0.75));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_categorical_bar_is_crossed_on_its_own() {
        let reference = counts(&[("a", 500), ("b", 500)]);
        let candidate = counts(&[("a", 560), ("b", 440)]);
        let only_chi2 =
            compare(&categorical(0.5, 0.01), &candidate, &reference, 10, 30).expect("compared");
        assert_eq!(only_chi2.status, Status::Drifted);
        assert!(
            only_chi2.crossed[0].starts_with("chi-squared"),
            "{:?}",
            only_chi2.crossed
        );
        let only_js =
            compare(&categorical(0.01, 0.0), &candidate, &reference, 10, 30).expect("compared");
        assert!(
            only_js.crossed[0].starts_with("Jensen-Shannon"),
            "{:?}",
            only_js.crossed
        );
        assert_eq!(only_js.crossed.len(), 1);
    }

    #[test]
    fn a_single_shared_category_is_stable() {
        let c = compare(
            &categorical(0.1, 0.01),
            &counts(&[("a", 40)]),
            &counts(&[("a", 90)]),
            10,
            30,
        )
        .expect("compared");
        assert_eq!(c.status, Status::Stable);
    }

    #[test]
    fn too_few_values_on_either_side_are_not_judged() {
        let c = compare(
            &numeric(0.2, 0.01),
            &spread(29, 5.0),
            &spread(500, 0.0),
            10,
            30,
        )
        .expect("compared");
        assert_eq!(c.status, Status::TooFew);
        assert_eq!((c.candidate_n, c.reference_n), (29, 500));
        assert_eq!(c.figures, Figures::None);
    }

    #[test]
    fn js_noise_floor_matches_the_chi_squared_approximation() {
        // k - 1 = 4, n = m = 200: sqrt(4 · 0.01 / (8 ln 2)).
        let floor = js_noise_floor(5, 200, 200);
        assert!((floor - (0.04 / (8.0 * std::f64::consts::LN_2)).sqrt()).abs() < 1e-15);
        assert_eq!(js_noise_floor(1, 10, 10), 0.0);
    }

    #[test]
    fn p_values_read_at_any_size() {
        assert_eq!(p_value(0.0341), "0.034");
        assert_eq!(p_value(2.1e-9), "2.1e-9");
        assert_eq!(p_value(1.0), "1.000");
    }
}
