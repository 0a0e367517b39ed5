//! The verdict: outcome, reason and measurements from every feature's
//! comparison.
//!
//! Order of judgement: a blocking feature that drifted fails the verdict; a
//! blocking feature with too few values makes it inconclusive (never a
//! pass, since the gate could not look); a non-blocking feature that
//! drifted or had too few values makes it warn; otherwise it passes. The
//! reason names every feature that is not stable with the bars it crossed
//! and what moved (category shares, means), then says what to do. The score
//! is the share of features that are stable.

use gatehouse_plugin_sdk::{Outcome, Verdict, sentences};

use crate::compare::{Comparison, Figures, Status, fixed, js_noise_floor, p_value};
use crate::params::{Feature, Params};
use crate::records::{Sample, plural};

/// Both sides as read, for the reason and the record counts.
pub struct Sides<'a> {
    pub candidate: &'a Sample,
    pub reference: &'a Sample,
}

/// The gate's verdict over `features` and their `comparisons`, in order.
pub fn verdict(
    params: &Params,
    features: &[Feature],
    comparisons: &[Comparison],
    sides: &Sides,
) -> Verdict {
    let judged: Vec<(&Feature, &Comparison)> = features.iter().zip(comparisons).collect();
    let is = |blocking: bool, status: Status| {
        judged
            .iter()
            .any(|(f, c)| f.blocking == blocking && c.status == status)
    };
    let outcome = if is(true, Status::Drifted) {
        Outcome::Fail
    } else if is(true, Status::TooFew) {
        Outcome::Inconclusive
    } else if is(false, Status::Drifted) || is(false, Status::TooFew) {
        Outcome::Warn
    } else {
        Outcome::Pass
    };

    let against = format!(
        "{} ({} candidate vs {} reference records, from {})",
        params.candidate, sides.candidate.records, sides.reference.records, params.reference
    );
    let mut parts = Vec::new();
    let drifted: Vec<String> = judged
        .iter()
        .filter(|(_, c)| c.status == Status::Drifted)
        .map(|(f, c)| describe_drift(f, c))
        .collect();
    if !drifted.is_empty() {
        parts.push(format!(
            "{} of {} drifted in {against}: {}",
            drifted.len(),
            plural(judged.len(), "feature"),
            drifted.join("; ")
        ));
    }
    let too_few: Vec<String> = judged
        .iter()
        .filter(|(_, c)| c.status == Status::TooFew)
        .map(|(f, c)| {
            format!(
                "`{}` has {} candidate and {} reference values, fewer than min_samples {}",
                f.name, c.candidate_n, c.reference_n, params.min_samples
            )
        })
        .collect();
    if !too_few.is_empty() {
        parts.push(format!(
            "not judged: {}; attach more records (or lower `min_samples`)",
            too_few.join("; ")
        ));
    }
    let stable: Vec<String> = judged
        .iter()
        .filter(|(_, c)| c.status == Status::Stable)
        .map(|(f, c)| describe_stable(f, c))
        .collect();
    if drifted.is_empty() && too_few.is_empty() {
        parts.push(format!(
            "no drift in {} of {against}: {}",
            plural(judged.len(), "feature"),
            stable.join("; ")
        ));
    } else if !stable.is_empty() {
        parts.push(format!("stable: {}", stable.join("; ")));
    }
    match outcome {
        Outcome::Fail => parts.push(
            "if the change is intended, release with this candidate's features as the new reference or raise the feature's bars in the pipeline; otherwise find what changed the candidate's outputs"
                .to_string(),
        ),
        Outcome::Warn => parts.push(
            "the features above are non-blocking (`blocking = false`); look at them before the release goes further".to_string(),
        ),
        _ => {}
    }

    let stable_share = judged
        .iter()
        .filter(|(_, c)| c.status == Status::Stable)
        .count() as f64
        / judged.len().max(1) as f64;
    let mut verdict = Verdict::new(outcome, sentences(&parts));
    if outcome != Outcome::Pass {
        verdict = verdict.with_score(stable_share);
    }
    verdict = verdict
        .with_measurement(
            "candidate_records",
            sides.candidate.records as f64,
            "records",
        )
        .with_measurement(
            "reference_records",
            sides.reference.records as f64,
            "records",
        )
        .with_measurement("features_drifted", drifted.len() as f64, "features");
    for (feature, c) in judged {
        verdict = measure(verdict, feature, c);
    }
    verdict
}

fn measure(mut verdict: Verdict, feature: &Feature, c: &Comparison) -> Verdict {
    let name = &feature.name;
    verdict = verdict
        .with_measurement(
            format!("candidate_samples[{name}]"),
            c.candidate_n as f64,
            "values",
        )
        .with_measurement(
            format!("reference_samples[{name}]"),
            c.reference_n as f64,
            "values",
        );
    match &c.figures {
        Figures::Numeric {
            psi,
            ks,
            candidate_mean,
            reference_mean,
        } => verdict
            .with_measurement(format!("psi[{name}]"), *psi, "index")
            .with_measurement(format!("ks_d[{name}]"), ks.statistic, "distance")
            .with_measurement(format!("ks_p[{name}]"), ks.p_value, "p")
            .with_measurement(format!("mean[{name}]"), *candidate_mean, "value")
            .with_measurement(format!("reference_mean[{name}]"), *reference_mean, "value"),
        Figures::Categorical {
            js,
            chi2,
            categories,
            ..
        } => verdict
            .with_measurement(format!("js[{name}]"), *js, "distance")
            .with_measurement(format!("chi2[{name}]"), chi2.statistic, "statistic")
            .with_measurement(format!("chi2_p[{name}]"), chi2.p_value, "p")
            .with_measurement(
                format!("categories[{name}]"),
                *categories as f64,
                "categories",
            ),
        Figures::None => verdict,
    }
}

/// "`confidence` (PSI 0.41 > psi_max 0.2, KS p 3.1e-12 < ks_alpha 0.01 (D 0.33); mean 0.880 → 0.801)".
fn describe_drift(feature: &Feature, c: &Comparison) -> String {
    let mut what = c.crossed.join(", ");
    match &c.figures {
        Figures::Numeric {
            candidate_mean,
            reference_mean,
            ..
        } => {
            what.push_str(&format!(
                "; mean {} → {}",
                short(*reference_mean),
                short(*candidate_mean)
            ));
        }
        Figures::Categorical {
            js,
            chi2,
            categories,
            shifts,
        } => {
            let moved: Vec<String> = shifts
                .iter()
                .map(|(name, r, c)| format!("{name:?} {} → {}", percent(*r), percent(*c)))
                .collect();
            what.push_str(&format!("; {}", moved.join(", ")));
            let floor = js_noise_floor(*categories, c.candidate_n, c.reference_n);
            let js_only = c.crossed.len() == 1 && c.crossed[0].starts_with("Jensen-Shannon");
            if js_only && *js < 2.0 * floor {
                what.push_str(&format!(
                    "; note: samples this small show a distance near {} from chance alone over {} categories (chi-squared p {}), so more records would tell drift from noise",
                    fixed(floor),
                    categories,
                    p_value(chi2.p_value)
                ));
            }
        }
        Figures::None => {}
    }
    let blocking = if feature.blocking {
        ""
    } else {
        ", non-blocking"
    };
    format!("`{}` ({what}{blocking})", feature.name)
}

/// "`output_label` JS 0.021, chi-squared p 0.64".
fn describe_stable(feature: &Feature, c: &Comparison) -> String {
    match &c.figures {
        Figures::Numeric { psi, ks, .. } => format!(
            "`{}` PSI {}, KS p {}",
            feature.name,
            fixed(*psi),
            p_value(ks.p_value)
        ),
        Figures::Categorical { js, chi2, .. } => format!(
            "`{}` JS {}, chi-squared p {}",
            feature.name,
            fixed(*js),
            p_value(chi2.p_value)
        ),
        Figures::None => format!("`{}`", feature.name),
    }
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// A value in four significant digits or so, for means.
fn short(value: f64) -> String {
    if value != 0.0 && (value.abs() >= 1e6 || value.abs() < 1e-3) {
        format!("{value:.3e}")
    } else {
        let text = format!("{value:.4}");
        let text = text.trim_end_matches('0');
        text.trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_numbers_drop_trailing_zeros() {
        assert_eq!(short(14.0), "14");
        assert_eq!(short(0.8801), "0.8801");
        assert_eq!(short(2.5e7), "2.500e7");
        assert_eq!(percent(0.2421), "24.2%");
    }
}
