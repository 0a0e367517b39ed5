//! The anytime-valid test: a mixture sequential probability ratio test
//! (mSPRT) with a normal mixture, after Johari, Pekelis and Walsh, "Always
//! valid inference" (2017), as Lindon, Sanden and Shirikian use it to catch
//! regressions in deployments early ("Rapid regression detection in
//! software deployments through sequential testing", KDD 2022).
//!
//! # The formula
//! Let Δ̂ be the canary's estimate minus the baseline's (difference of mean
//! latencies, mean costs, or error rates) and V its variance. Under
//! H₀: Δ = 0, mixing the likelihood ratio of Δ = θ against Δ = 0 over a
//! normal prior θ ~ N(0, τ²) gives
//!
//! ```text
//! Λ = √(V / (V + τ²)) · exp( τ² Δ̂² / (2 V (V + τ²)) )
//!   = exp( −½ ln(1 + r) + z² r / (2 (1 + r)) ),   z = Δ̂/√V,  r = τ²/V
//! ```
//!
//! Λ is an e-value: under H₀ it is a non-negative martingale with mean 1
//! as data arrive, so by Ville's inequality P(Λ ever reaches 1/α) ≤ α. The
//! always-valid p-value is the running minimum of 1/Λ over every look;
//! stopping the first time it is ≤ α keeps the false-alarm rate ≤ α however
//! often one looks — the property a fixed-horizon test loses under
//! continuous monitoring.
//!
//! For means, V = s²_b/n_b + s²_c/n_c (sample variances, Welch) and
//! τ = `mixture_sd` × the pooled standard deviation, so the test does not
//! depend on units. For error rates, V = p̄(1 − p̄)(1/n_b + 1/n_c) with the
//! pooled rate p̄ (its value under H₀) and τ = `mixture_sd` × √(p̄(1 − p̄)).
//! τ sets which effect is detected fastest; any τ keeps the guarantee.
//!
//! # Assumptions
//! Requests are independent; each arm's mean is close to normal (central
//! limit theorem — hence a minimum sample count before the test may stop
//! a canary); the variance is estimated from the data (plugged in), which
//! makes the guarantee approximate rather than exact in small samples; and
//! traffic is split between the arms at a steady ratio.
//!
//! Direction: the mixture is two-sided. A regression in one direction is
//! declared only when the running minimum of 1/Λ taken over the looks whose
//! estimate lay on that side is ≤ α; that minimum is never below the
//! two-sided one, so each direction's false-alarm rate is also ≤ α.

use super::config::Direction;
use super::observation::Moments;
use serde::{Deserialize, Serialize};

/// Logarithms of e-values are capped here so they stay finite in JSON.
const MAX_LOG_E: f64 = 700.0;

/// What one look of the test found.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SequentialEvidence {
    /// Canary minus baseline.
    pub estimate: f64,
    /// √V, the standard error of the estimate.
    pub std_error: f64,
    /// The estimate in standard errors.
    pub z: f64,
    /// Λ at this look.
    pub e_value: f64,
    /// Always-valid p-value for "the canary is higher", over all looks.
    pub p_increase: f64,
    /// Always-valid p-value for "the canary is lower", over all looks.
    pub p_decrease: f64,
}

impl SequentialEvidence {
    /// The always-valid p-value for a regression in `direction`.
    pub fn p_value(&self, direction: Direction) -> f64 {
        match direction {
            Direction::IncreaseIsBad => self.p_increase,
            Direction::DecreaseIsBad => self.p_decrease,
            Direction::Either => self.p_increase.min(self.p_decrease),
        }
    }
}

/// The log of the normal-mixture likelihood ratio, from the estimate in
/// standard errors (`z`) and the prior-to-sampling variance ratio `r`.
pub fn log_mixture_ratio(z: f64, r: f64) -> f64 {
    if z.is_infinite() {
        return MAX_LOG_E;
    }
    if r.is_nan() || r <= 0.0 || z.is_nan() {
        return 0.0;
    }
    (-0.5 * r.ln_1p() + z * z * r / (2.0 * (1.0 + r))).min(MAX_LOG_E)
}

/// One metric's test across the looks of one canary; remembers the
/// smallest p-value seen in each direction, which is what makes the
/// p-value always valid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MixtureSprt {
    mixture_sd: f64,
    min_p_increase: f64,
    min_p_decrease: f64,
}

impl MixtureSprt {
    pub fn new(mixture_sd: f64) -> MixtureSprt {
        MixtureSprt {
            mixture_sd,
            min_p_increase: 1.0,
            min_p_decrease: 1.0,
        }
    }

    /// Looks at the difference of two means. `None` below two samples per
    /// arm, where no variance can be estimated.
    pub fn look_means(
        &mut self,
        baseline: &Moments,
        canary: &Moments,
    ) -> Option<SequentialEvidence> {
        if baseline.n < 2 || canary.n < 2 {
            return None;
        }
        let (nb, nc) = (baseline.n as f64, canary.n as f64);
        let v = baseline.variance() / nb + canary.variance() / nc;
        let pooled =
            (baseline.sum_squared_deviations() + canary.sum_squared_deviations()) / (nb + nc - 2.0);
        let tau2 = self.mixture_sd.powi(2) * pooled;
        Some(self.look(canary.mean - baseline.mean, v, tau2))
    }

    /// Looks at the difference of two proportions (`events` out of `n`).
    /// `None` when an arm has no samples.
    pub fn look_proportions(
        &mut self,
        baseline: (u64, u64),
        canary: (u64, u64),
    ) -> Option<SequentialEvidence> {
        let ((kb, nb), (kc, nc)) = (baseline, canary);
        if nb == 0 || nc == 0 {
            return None;
        }
        let (kb, nb, kc, nc) = (kb as f64, nb as f64, kc as f64, nc as f64);
        let pooled = (kb + kc) / (nb + nc);
        let spread = pooled * (1.0 - pooled);
        let v = spread * (1.0 / nb + 1.0 / nc);
        let tau2 = self.mixture_sd.powi(2) * spread;
        Some(self.look(kc / nc - kb / nb, v, tau2))
    }

    fn look(&mut self, estimate: f64, v: f64, tau2: f64) -> SequentialEvidence {
        let (z, log_e) = if v > 0.0 {
            let z = estimate / v.sqrt();
            (z, log_mixture_ratio(z, tau2 / v))
        } else if estimate != 0.0 {
            // Both arms constant and different: as strong as evidence gets.
            (estimate.signum() * f64::MAX, MAX_LOG_E)
        } else {
            (0.0, 0.0)
        };
        let p = (-log_e).exp().min(1.0);
        if estimate > 0.0 {
            self.min_p_increase = self.min_p_increase.min(p);
        } else if estimate < 0.0 {
            self.min_p_decrease = self.min_p_decrease.min(p);
        }
        SequentialEvidence {
            estimate,
            std_error: v.max(0.0).sqrt(),
            z,
            e_value: log_e.exp(),
            p_increase: self.min_p_increase,
            p_decrease: self.min_p_decrease,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(values: &[f64]) -> Moments {
        let mut m = Moments::default();
        values.iter().for_each(|&x| m.push(x));
        m
    }

    #[test]
    fn mixture_ratio_matches_the_closed_form() {
        // V = 1, τ² = 3, Δ̂ = 2: √(1/4) · exp(3·4 / (2·1·4)) = 0.5·e^1.5.
        let expected = 0.5 * 1.5f64.exp();
        assert!((log_mixture_ratio(2.0, 3.0).exp() - expected).abs() < 1e-12);
    }

    #[test]
    fn no_difference_gives_no_evidence() {
        let mut t = MixtureSprt::new(0.25);
        let a = moments(&[1.0, 2.0, 3.0, 4.0]);
        let e = t.look_means(&a, &a).unwrap();
        assert_eq!(e.estimate, 0.0);
        assert!(e.e_value < 1.0);
        assert_eq!(e.p_value(Direction::Either), 1.0);
    }

    #[test]
    fn always_valid_p_value_never_rises_between_looks() {
        let mut t = MixtureSprt::new(0.5);
        let baseline = moments(&[10.0, 11.0, 9.0, 10.5, 9.5, 10.0, 10.2, 9.8]);
        let worse = moments(&[12.0, 13.0, 11.0, 12.5, 11.5, 12.0, 12.2, 11.8]);
        let first = t.look_means(&baseline, &worse).unwrap();
        assert!(first.p_increase < 0.01, "{first:?}");
        let second = t.look_means(&baseline, &baseline).unwrap();
        assert_eq!(second.p_increase, first.p_increase);
        assert_eq!(second.p_decrease, 1.0);
    }

    #[test]
    fn a_drop_is_not_evidence_of_an_increase() {
        let mut t = MixtureSprt::new(0.5);
        let baseline = moments(&[12.0, 13.0, 11.0, 12.5, 11.5, 12.0]);
        let better = moments(&[10.0, 11.0, 9.0, 10.5, 9.5, 10.0]);
        let e = t.look_means(&baseline, &better).unwrap();
        assert_eq!(e.p_value(Direction::IncreaseIsBad), 1.0);
        assert!(e.p_value(Direction::DecreaseIsBad) < 0.05);
    }

    #[test]
    fn error_rates_compare_as_proportions() {
        let mut t = MixtureSprt::new(0.25);
        let same = t.look_proportions((5, 500), (5, 500)).unwrap();
        assert_eq!(same.estimate, 0.0);
        let worse = t.look_proportions((5, 500), (60, 500)).unwrap();
        assert!(worse.estimate > 0.1);
        assert!(worse.p_increase < 1e-6, "{worse:?}");
        // No errors anywhere: no variance, no evidence.
        let mut quiet = MixtureSprt::new(0.25);
        let none = quiet.look_proportions((0, 100), (0, 100)).unwrap();
        assert_eq!(none.p_increase, 1.0);
        assert!(quiet.look_proportions((0, 0), (0, 10)).is_none());
    }

    #[test]
    fn constant_but_different_arms_are_conclusive_and_finite() {
        let mut t = MixtureSprt::new(0.25);
        let e = t
            .look_means(&moments(&[5.0; 10]), &moments(&[7.0; 10]))
            .unwrap();
        assert!(e.p_increase < 1e-300, "{e:?}");
        assert!(e.e_value.is_finite());
    }
}
