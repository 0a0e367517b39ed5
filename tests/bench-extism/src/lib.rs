//! Per-call overhead of a trivial plugin call, Gatehouse beside Extism.
//!
//! Both sides call a plugin that does nothing: Gatehouse's `noop-gate` and
//! its Extism equivalent in `guest/`. Whatever a call costs is therefore the
//! host's own overhead. [`ours`] holds all of Gatehouse's side (adapt it
//! there when the host API changes); [`theirs`] holds Extism's; [`Summary`]
//! reduces the timings. The measuring loop is `benches/overhead.rs`.

pub mod ours;
pub mod theirs;

use std::time::Duration;

/// The candidate both sides pass in: a small model configuration.
pub const CANDIDATE: &[u8] =
    br#"{"model":"gpt-4o-mini","parameters":{"temperature":0.7,"max_tokens":512}}"#;
/// The stage both sides name in the request.
pub const STAGE: &str = "canary";
/// The reason both plugins give.
pub const REASON: &str = "nothing to check";

/// Median and 90th percentile of one variant's call times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub median: Duration,
    pub p90: Duration,
    pub calls: usize,
}

impl Summary {
    /// Summarises `samples` (sorted in place); `None` when there are none.
    pub fn of(samples: &mut [Duration]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Some(Summary {
            median: at(0.5),
            p90: at(0.9),
            calls: samples.len(),
        })
    }
}

/// Microseconds, for printing.
pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_picks_median_and_p90() {
        let mut samples: Vec<Duration> = (1..=11).rev().map(Duration::from_micros).collect();
        let s = Summary::of(&mut samples).expect("samples are not empty");
        assert_eq!(s.median, Duration::from_micros(6));
        assert_eq!(s.p90, Duration::from_micros(10));
        assert_eq!(s.calls, 11);
    }

    #[test]
    fn summary_of_nothing_is_none() {
        assert_eq!(Summary::of(&mut []), None);
    }
}
