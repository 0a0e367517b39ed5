//! Observations and the window that accumulates them, one set of columns per
//! arm.
//!
//! Rules: an observation is checked once, here, when it enters the window
//! (finite, non-negative latency and cost; finite prediction), so the tests
//! downstream can trust every number they see. Each arm keeps its latencies
//! as a plain `f64` column (rank, distribution and quantile tests need them
//! all) and running moments for latency and cost, so a look by the
//! sequential test costs O(1). Request keys are kept so that mirrored traffic
//! (the same key served by both arms) can be compared output for output;
//! each key is paired at most once, on the first time it is seen in each arm.

use super::Error;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Which side of the comparison served a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    /// The configuration that is live now.
    Baseline,
    /// The candidate under test.
    Canary,
}

impl std::fmt::Display for Arm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Arm::Baseline => "baseline",
            Arm::Canary => "canary",
        })
    }
}

/// One request served by one arm, as a serving service reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub arm: Arm,
    /// Identifies the request; the same key on both arms marks mirrored
    /// traffic. Empty when the request was not mirrored.
    pub request_key: String,
    pub latency_ms: f64,
    pub error: bool,
    /// Cost of serving the request, in any unit used consistently by both
    /// arms. Zero on every request means cost is not measured.
    pub cost: f64,
    /// A fingerprint of the output (a label, or a hash of the text).
    pub output_fingerprint: Option<String>,
    /// A numeric output (a score or a regression value).
    pub prediction: Option<f64>,
}

impl Observation {
    /// An observation with only a latency, as most tests need.
    pub fn latency(arm: Arm, latency_ms: f64) -> Observation {
        Observation {
            arm,
            request_key: String::new(),
            latency_ms,
            error: false,
            cost: 0.0,
            output_fingerprint: None,
            prediction: None,
        }
    }

    /// Refuses numbers no test can judge, naming the field.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |field: &'static str, value: f64, rule: &'static str| Error::InvalidObservation {
            field,
            value,
            rule,
        };
        if !self.latency_ms.is_finite() || self.latency_ms < 0.0 {
            return Err(bad("latency_ms", self.latency_ms, "a finite number ≥ 0"));
        }
        if !self.cost.is_finite() || self.cost < 0.0 {
            return Err(bad("cost", self.cost, "a finite number ≥ 0"));
        }
        if let Some(p) = self.prediction.filter(|p| !p.is_finite()) {
            return Err(bad("prediction", p, "a finite number"));
        }
        Ok(())
    }
}

/// Count, mean and sum of squared deviations, updated one value at a time
/// (Welford), so variance stays accurate over long windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    pub n: u64,
    pub mean: f64,
    m2: f64,
}

impl Moments {
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Sample variance (n − 1 in the denominator); zero below two values.
    pub fn variance(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            self.m2 / (self.n - 1) as f64
        }
    }

    pub fn sum_squared_deviations(&self) -> f64 {
        self.m2
    }
}

/// Everything one arm has served so far.
#[derive(Debug, Clone, Default)]
pub struct ArmSamples {
    latency_ms: Vec<f64>,
    latency: Moments,
    cost: Moments,
    cost_recorded: bool,
    errors: u64,
}

impl ArmSamples {
    pub fn count(&self) -> u64 {
        self.latency.n
    }

    pub fn errors(&self) -> u64 {
        self.errors
    }

    pub fn error_rate(&self) -> Option<f64> {
        (self.count() > 0).then(|| self.errors as f64 / self.count() as f64)
    }

    /// Latencies in arrival order.
    pub fn latencies(&self) -> &[f64] {
        &self.latency_ms
    }

    /// Latencies in ascending order (a copy: the window keeps arrival order).
    pub fn sorted_latencies(&self) -> Vec<f64> {
        let mut v = self.latency_ms.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    pub fn latency_moments(&self) -> Moments {
        self.latency
    }

    pub fn cost_moments(&self) -> Moments {
        self.cost
    }

    /// Whether any request on this arm reported a cost above zero.
    pub fn cost_recorded(&self) -> bool {
        self.cost_recorded
    }

    fn push(&mut self, o: &Observation) {
        self.latency_ms.push(o.latency_ms);
        self.latency.push(o.latency_ms);
        self.cost.push(o.cost);
        self.cost_recorded |= o.cost > 0.0;
        self.errors += u64::from(o.error);
    }
}

/// What one arm served, without its latency column: enough for the
/// anytime-valid tests, small enough to keep with the release.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmSummary {
    pub errors: u64,
    pub latency: Moments,
    pub cost: Moments,
    pub cost_recorded: bool,
}

impl ArmSummary {
    pub fn count(&self) -> u64 {
        self.latency.n
    }
}

impl ArmSamples {
    /// This arm's running statistics, for a later comparison.
    pub fn summary(&self) -> ArmSummary {
        ArmSummary {
            errors: self.errors,
            latency: self.latency,
            cost: self.cost,
            cost_recorded: self.cost_recorded,
        }
    }

    /// An arm that served `summary` but kept no latencies: the rank,
    /// distribution and quantile tests cannot use it, the sequential ones can.
    fn from_summary(summary: &ArmSummary) -> ArmSamples {
        ArmSamples {
            latency_ms: Vec::new(),
            latency: summary.latency,
            cost: summary.cost,
            cost_recorded: summary.cost_recorded,
            errors: summary.errors,
        }
    }
}

/// What an arm answered for one request key, until the other arm answers it.
#[derive(Debug, Clone)]
struct KeyedOutput {
    fingerprint: Option<String>,
    prediction: Option<f64>,
    paired: bool,
}

/// Output comparison over request keys served by both arms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Overlap {
    /// Keys served by both arms.
    pub pairs: u64,
    /// Pairs where both arms reported a fingerprint.
    pub label_pairs: u64,
    /// Of those, pairs whose fingerprints differ.
    pub label_disagreements: u64,
    /// Absolute differences of numeric predictions, over pairs where both
    /// arms reported one.
    pub prediction_abs_diff: Moments,
}

/// Observations of both arms over one canary.
#[derive(Debug, Clone, Default)]
pub struct Window {
    baseline: ArmSamples,
    canary: ArmSamples,
    keys: [HashMap<String, KeyedOutput>; 2],
    overlap: Overlap,
}

impl Window {
    pub fn new() -> Window {
        Window::default()
    }

    /// A window whose baseline is fixed to what an earlier window's baseline
    /// served (a historical control); only the canary arm grows.
    pub fn against(baseline: &ArmSummary) -> Window {
        Window {
            baseline: ArmSamples::from_summary(baseline),
            ..Window::default()
        }
    }

    /// Adds one observation; refuses one whose numbers cannot be judged.
    pub fn push(&mut self, o: Observation) -> Result<(), Error> {
        o.validate()?;
        match o.arm {
            Arm::Baseline => self.baseline.push(&o),
            Arm::Canary => self.canary.push(&o),
        }
        if !o.request_key.is_empty() {
            self.pair(o);
        }
        Ok(())
    }

    pub fn arm(&self, arm: Arm) -> &ArmSamples {
        match arm {
            Arm::Baseline => &self.baseline,
            Arm::Canary => &self.canary,
        }
    }

    pub fn baseline(&self) -> &ArmSamples {
        &self.baseline
    }

    pub fn canary(&self) -> &ArmSamples {
        &self.canary
    }

    pub fn overlap(&self) -> &Overlap {
        &self.overlap
    }

    fn pair(&mut self, o: Observation) {
        let (mine, theirs) = match o.arm {
            Arm::Baseline => (0, 1),
            Arm::Canary => (1, 0),
        };
        if self.keys[mine].contains_key(&o.request_key) {
            // A retry or duplicate report: the first answer stands.
            return;
        }
        let mut paired = false;
        if let Some(other) = self.keys[theirs].get_mut(&o.request_key)
            && !other.paired
        {
            other.paired = true;
            paired = true;
            self.overlap.pairs += 1;
            if let (Some(a), Some(b)) = (&other.fingerprint, &o.output_fingerprint) {
                self.overlap.label_pairs += 1;
                self.overlap.label_disagreements += u64::from(a != b);
            }
            if let (Some(a), Some(b)) = (other.prediction, o.prediction) {
                self.overlap.prediction_abs_diff.push((a - b).abs());
            }
        }
        let output = KeyedOutput {
            // Once paired, the outputs are no longer needed: only the key
            // stays, so a duplicate is still recognised.
            fingerprint: if paired { None } else { o.output_fingerprint },
            prediction: if paired { None } else { o.prediction },
            paired,
        };
        self.keys[mine].insert(o.request_key, output);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(arm: Arm, key: &str, label: &str, prediction: f64) -> Observation {
        Observation {
            request_key: key.to_string(),
            output_fingerprint: Some(label.to_string()),
            prediction: Some(prediction),
            ..Observation::latency(arm, 10.0)
        }
    }

    #[test]
    fn window_counts_each_arm_separately() {
        let mut w = Window::new();
        for i in 0..3 {
            w.push(Observation::latency(Arm::Baseline, i as f64))
                .unwrap();
        }
        let mut failed = Observation::latency(Arm::Canary, 7.0);
        failed.error = true;
        w.push(failed).unwrap();
        assert_eq!(w.baseline().count(), 3);
        assert_eq!(w.canary().count(), 1);
        assert_eq!(w.canary().error_rate(), Some(1.0));
        assert_eq!(w.baseline().error_rate(), Some(0.0));
        assert_eq!(w.baseline().latency_moments().mean, 1.0);
        assert_eq!(w.baseline().latency_moments().variance(), 1.0);
    }

    #[test]
    fn negative_or_nan_latency_is_refused_with_the_field_named() {
        let mut w = Window::new();
        let err = w
            .push(Observation::latency(Arm::Canary, -1.0))
            .unwrap_err()
            .to_string();
        assert!(err.contains("latency_ms"), "{err}");
        assert!(w.push(Observation::latency(Arm::Canary, f64::NAN)).is_err());
        assert_eq!(w.canary().count(), 0);
    }

    #[test]
    fn mirrored_keys_pair_once_and_compare_outputs() {
        let mut w = Window::new();
        w.push(keyed(Arm::Baseline, "a", "cat", 0.5)).unwrap();
        w.push(keyed(Arm::Canary, "a", "dog", 0.7)).unwrap();
        w.push(keyed(Arm::Canary, "b", "cat", 0.1)).unwrap();
        w.push(keyed(Arm::Baseline, "b", "cat", 0.1)).unwrap();
        // A duplicate report for an already-paired key is ignored.
        w.push(keyed(Arm::Canary, "a", "cat", 0.5)).unwrap();
        w.push(keyed(Arm::Baseline, "only-baseline", "cat", 0.1))
            .unwrap();
        let o = w.overlap();
        assert_eq!(o.pairs, 2);
        assert_eq!(o.label_pairs, 2);
        assert_eq!(o.label_disagreements, 1);
        assert_eq!(o.prediction_abs_diff.n, 2);
        assert!((o.prediction_abs_diff.mean - 0.1).abs() < 1e-12);
    }
}
