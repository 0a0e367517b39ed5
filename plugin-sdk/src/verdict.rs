//! Builders for [`Verdict`]: an outcome, a reason, then optional figures.
//!
//! Each outcome starts at a conventional score (pass and warn 1.0 and 0.5,
//! fail and inconclusive 0.0) that a gate overrides with
//! [`Verdict::with_score`] when it has a finer measure.

use crate::{Measurement, Outcome, Verdict};

impl Verdict {
    /// A verdict with the outcome's conventional score and no measurements.
    pub fn new(outcome: Outcome, reason: impl Into<String>) -> Self {
        let score = match outcome {
            Outcome::Pass => 1.0,
            Outcome::Warn => 0.5,
            Outcome::Fail | Outcome::Inconclusive => 0.0,
        };
        Self {
            outcome,
            score,
            measurements: Vec::new(),
            reason: reason.into(),
        }
    }

    /// The candidate meets the gate's bar.
    pub fn pass(reason: impl Into<String>) -> Self {
        Self::new(Outcome::Pass, reason)
    }

    /// It passes, with something a person should look at.
    pub fn warn(reason: impl Into<String>) -> Self {
        Self::new(Outcome::Warn, reason)
    }

    /// It does not meet the bar; say what to change in `reason`.
    pub fn fail(reason: impl Into<String>) -> Self {
        Self::new(Outcome::Fail, reason)
    }

    /// The gate could not decide; a blocking gate treats this as a failure.
    pub fn inconclusive(reason: impl Into<String>) -> Self {
        Self::new(Outcome::Inconclusive, reason)
    }

    /// Sets the score, clamped into 0.0..=1.0; NaN becomes 0.0 so a broken
    /// calculation never reads as a perfect score.
    pub fn with_score(mut self, score: f64) -> Self {
        self.score = if score.is_nan() {
            0.0
        } else {
            score.clamp(0.0, 1.0)
        };
        self
    }

    /// Adds a named figure, e.g. `("cost_per_request", 0.0021, "usd")`.
    pub fn with_measurement(
        mut self,
        name: impl Into<String>,
        value: f64,
        unit: impl Into<String>,
    ) -> Self {
        self.measurements.push(Measurement {
            name: name.into(),
            value,
            unit: unit.into(),
        });
        self
    }

    /// The value of the first measurement called `name`, if any.
    pub fn measurement(&self, name: &str) -> Option<f64> {
        self.measurements
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.value)
    }

    /// Whether a blocking gate lets the candidate through (pass or warn).
    pub fn admits(&self) -> bool {
        matches!(self.outcome, Outcome::Pass | Outcome::Warn)
    }
}

/// Parts joined as sentences, each ending in a period. A part opening
/// with a plain word is capitalised; one opening with a name (`p99`, a
/// feature in backticks) keeps it as written.
pub fn sentences(parts: &[String]) -> String {
    let mut text = String::new();
    for part in parts.iter().filter(|p| !p.is_empty()) {
        if !text.is_empty() {
            text.push(' ');
        }
        let word = part.split(' ').next().unwrap_or_default();
        let word = word.trim_end_matches(|c: char| c.is_ascii_punctuation());
        let mut chars = part.chars();
        match chars.next() {
            Some(first) if word.chars().all(char::is_alphabetic) => {
                text.extend(first.to_uppercase());
                text.push_str(chars.as_str());
            }
            _ => text.push_str(part),
        }
        text.push('.');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_start_at_conventional_scores() {
        assert_eq!(Verdict::pass("ok").score, 1.0);
        assert_eq!(Verdict::warn("hm").score, 0.5);
        assert_eq!(Verdict::fail("no").score, 0.0);
        assert_eq!(Verdict::inconclusive("?").outcome, Outcome::Inconclusive);
    }

    #[test]
    fn score_is_clamped_and_nan_counts_as_worst() {
        assert_eq!(Verdict::pass("ok").with_score(3.0).score, 1.0);
        assert_eq!(Verdict::pass("ok").with_score(-1.0).score, 0.0);
        assert_eq!(Verdict::pass("ok").with_score(f64::NAN).score, 0.0);
        assert_eq!(Verdict::pass("ok").with_score(0.25).score, 0.25);
    }

    #[test]
    fn measurements_keep_their_order_and_units() {
        let verdict = Verdict::fail("too dear")
            .with_measurement("cost_per_request", 0.02, "usd")
            .with_measurement("monthly_cost", 2000.0, "usd");
        assert_eq!(verdict.measurements.len(), 2);
        assert_eq!(verdict.measurements[1].name, "monthly_cost");
        assert_eq!(verdict.measurements[0].unit, "usd");
        assert_eq!(verdict.measurement("cost_per_request"), Some(0.02));
        assert_eq!(verdict.measurement("latency"), None);
        assert!(!verdict.admits());
    }

    #[test]
    fn parts_become_sentences() {
        let parts = ["no drift".to_string(), "`x` moved".to_string()];
        assert_eq!(sentences(&parts), "No drift. `x` moved.");
        assert_eq!(sentences(&["a".into(), "b c".into()]), "A. B c.");
        assert_eq!(sentences(&["p99 rose".into(), String::new()]), "p99 rose.");
    }
}
