//! Paired comparison with the incumbent: is the candidate significantly worse
//! on the same cases than what is live now?
//!
//! The incumbent's outputs (what CI attached when it was released) are
//! scored with the same scorers against the current dataset, and paired with
//! the candidate's by case id; cases the incumbent has no output for are left
//! out, while a case the candidate did not answer counts as its failure.
//! Two one-sided tests at `alpha`, and either one finding a regression fails
//! the verdict (a gate errs towards keeping what works):
//!
//! - McNemar's exact test on pass/fail: `worse` counts cases the incumbent
//!   passed and the candidate fails, `better` the reverse. The SDK's
//!   `mcnemar_exact` is two-sided; under the null the discordant split is
//!   Binomial(n, 1/2), which is symmetric, so half the two-sided p-value is
//!   exactly the one-sided p-value in the direction observed. A regression
//!   is `worse > better` with `p / 2 < alpha`.
//! - A paired bootstrap of the mean score difference (candidate minus
//!   incumbent) with a two-sided interval at `1 - 2·alpha`, whose upper bound
//!   is the one-sided `1 - alpha` bound: a regression when it is below 0.
//!   It sees what pass/fail hides, such as F1 scores sliding under a pass
//!   mark they still clear. Its cost is resamples × pairs, so on large
//!   datasets the gate draws at most [`MAX_BOOTSTRAP_DRAWS`] pairs in all,
//!   lowering the resamples (to no fewer than [`MIN_RESAMPLES`]) rather than
//!   running out of fuel; the resamples used are measured.

use gatehouse_plugin_sdk::golden::borrowed::Case;
use gatehouse_plugin_sdk::stats::{self, Bootstrap};

use crate::answers;
use crate::params::Params;
use crate::scorecard::Scorecard;
use crate::scorer::Scorers;

/// Most pairs the bootstrap draws in all (resamples × pairs).
pub const MAX_BOOTSTRAP_DRAWS: u64 = 4_000_000;
/// Fewest resamples the bootstrap is lowered to on large datasets.
pub const MIN_RESAMPLES: u32 = 100;

/// What the comparison with the incumbent found.
#[derive(Debug, Clone, PartialEq)]
pub enum Incumbent {
    /// No incumbent outputs at `source` (a first release, or CI attached
    /// none when the incumbent was released): not compared.
    Absent {
        source: String,
    },
    /// The incumbent's outputs answer none of the dataset's cases.
    NoPairs {
        source: String,
    },
    Compared(Comparison),
}

/// The paired tests' figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Cases both have an answer to (or the candidate failed to give one).
    pub paired: usize,
    /// Cases the incumbent passed and the candidate fails.
    pub worse: u64,
    /// Cases the candidate passes and the incumbent failed.
    pub better: u64,
    /// McNemar's exact two-sided p-value.
    pub mcnemar_p: f64,
    /// Mean score difference, candidate minus incumbent, with its interval.
    pub bootstrap: Bootstrap,
    /// Confidence of the bootstrap interval, `1 - 2·alpha`.
    pub confidence: f64,
    /// Resamples drawn: `bootstrap_resamples`, lowered on large datasets.
    pub resamples: u32,
    pub alpha: f64,
}

impl Comparison {
    /// McNemar finds the candidate significantly worse.
    pub fn worse_by_mcnemar(&self) -> bool {
        self.worse > self.better && self.mcnemar_p / 2.0 < self.alpha
    }

    /// The bootstrap interval of the score difference lies below 0.
    pub fn worse_by_bootstrap(&self) -> bool {
        self.bootstrap.high < 0.0
    }

    /// Either test finds a regression.
    pub fn regressed(&self) -> bool {
        self.worse_by_mcnemar() || self.worse_by_bootstrap()
    }
}

/// Compares the scored candidate with the incumbent's outputs, when present.
pub fn against_incumbent(
    params: &Params,
    cases: &[Case],
    scorers: &mut Scorers,
    card: &Scorecard,
) -> Result<Incumbent, String> {
    let source = params.incumbent_outputs.as_str();
    if !gatehouse_plugin_sdk::data::exists(source) {
        return Ok(Incumbent::Absent {
            source: source.to_string(),
        });
    }
    let bytes = gatehouse_plugin_sdk::data::read(source)?;
    let outputs = answers::outputs(source, &bytes, cases)?;
    let mut candidate = Vec::with_capacity(cases.len());
    let mut incumbent = Vec::with_capacity(cases.len());
    let (mut worse, mut better) = (0u64, 0u64);
    let theirs_by_case = answers::by_case(cases, &outputs);
    for (index, theirs) in theirs_by_case.into_iter().enumerate() {
        let (Some(output), Some(mine)) = (theirs, card.scores.get(index)) else {
            continue;
        };
        let theirs = scorers.score(index, &output.output);
        match (mine.passed, theirs.passed) {
            (false, true) => worse += 1,
            (true, false) => better += 1,
            _ => {}
        }
        candidate.push(mine.value);
        incumbent.push(theirs.value);
    }
    if candidate.is_empty() {
        return Ok(Incumbent::NoPairs {
            source: source.to_string(),
        });
    }
    let mcnemar_p = stats::mcnemar_exact(worse, better)
        .map_err(|e| format!("cannot compare with the incumbent (McNemar test): {e}"))?;
    let confidence = 1.0 - 2.0 * params.alpha;
    let resamples = resamples_for(candidate.len(), params.bootstrap_resamples);
    let bootstrap =
        stats::paired_bootstrap(&candidate, &incumbent, resamples, confidence, params.seed)
            .map_err(|e| format!("cannot compare with the incumbent (paired bootstrap): {e}"))?;
    Ok(Incumbent::Compared(Comparison {
        paired: candidate.len(),
        worse,
        better,
        mcnemar_p,
        bootstrap,
        confidence,
        resamples,
        alpha: params.alpha,
    }))
}

/// `wanted` resamples, lowered so that resamples × `pairs` stays within
/// [`MAX_BOOTSTRAP_DRAWS`], but never below [`MIN_RESAMPLES`] (nor above
/// `wanted`).
pub fn resamples_for(pairs: usize, wanted: u32) -> u32 {
    let affordable = MAX_BOOTSTRAP_DRAWS / (pairs.max(1) as u64);
    let affordable = u32::try_from(affordable).unwrap_or(u32::MAX);
    affordable.max(MIN_RESAMPLES).min(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resamples_are_lowered_only_for_large_datasets() {
        assert_eq!(resamples_for(223, 2000), 2000);
        assert_eq!(resamples_for(2000, 2000), 2000);
        assert_eq!(resamples_for(10_000, 2000), 400);
        assert_eq!(resamples_for(1_000_000, 2000), MIN_RESAMPLES);
        assert_eq!(resamples_for(1_000_000, 100), 100);
        assert_eq!(resamples_for(0, 500), 500);
    }
}
