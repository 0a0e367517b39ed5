//! The host's checks on a verdict, so a plugin cannot flood the store or
//! pass off nonsense as a judgement.

use super::world::latest::gatehouse::plugin::types as wit;
use super::{GateError, MAX_TEXT_BYTES, Verdict};
use crate::verdict::{Measurement, Outcome};

const MAX_MEASUREMENTS: usize = 64;

pub fn check(v: wit::Verdict, fuel_used: u64) -> Result<Verdict, GateError> {
    let malformed = |problem: String| Err(GateError::MalformedVerdict { problem });
    if !v.score.is_finite() || !(0.0..=1.0).contains(&v.score) {
        return malformed(format!("score {} is not between 0 and 1", v.score));
    }
    if v.reason.len() > MAX_TEXT_BYTES {
        return malformed(format!(
            "reason is {} bytes, over the {MAX_TEXT_BYTES}-byte limit",
            v.reason.len()
        ));
    }
    if v.measurements.len() > MAX_MEASUREMENTS {
        return malformed(format!(
            "{} measurements, over the limit of {MAX_MEASUREMENTS}",
            v.measurements.len()
        ));
    }
    let mut measurements = Vec::with_capacity(v.measurements.len());
    for m in v.measurements {
        // The name is checked first: every message below quotes it.
        if m.name.is_empty()
            || m.name.len() > 128
            || m.unit.len() > 32
            || m.name.chars().chain(m.unit.chars()).any(char::is_control)
        {
            return malformed(format!(
                "measurement name of {} bytes or unit of {} bytes is empty, too long (at most 128 and 32) or holds control characters; it starts {:?}",
                m.name.len(),
                m.unit.len(),
                super::clip_to(m.name, 40),
            ));
        }
        if !m.value.is_finite() {
            return malformed(format!("measurement {:?} is {}", m.name, m.value));
        }
        measurements.push(Measurement {
            name: m.name,
            value: m.value,
            unit: m.unit,
        });
    }
    Ok(Verdict {
        outcome: match v.outcome {
            wit::Outcome::Pass => Outcome::Pass,
            wit::Outcome::Warn => Outcome::Warn,
            wit::Outcome::Fail => Outcome::Fail,
            wit::Outcome::Inconclusive => Outcome::Inconclusive,
        },
        score: v.score,
        measurements,
        reason: super::plugin_text(v.reason),
        fuel_used,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(score: f64, reason: &str, measurements: Vec<wit::Measurement>) -> wit::Verdict {
        wit::Verdict {
            outcome: wit::Outcome::Pass,
            score,
            measurements,
            reason: reason.into(),
        }
    }

    fn m(name: &str, value: f64) -> wit::Measurement {
        wit::Measurement {
            name: name.into(),
            value,
            unit: "x".into(),
        }
    }

    #[test]
    fn sound_verdict_passes_with_its_fuel() {
        let v = check(verdict(0.5, "ok", vec![m("a", 1.0)]), 42).expect("sound");
        assert_eq!(v.fuel_used, 42);
        assert_eq!(v.measurements.len(), 1);
    }

    #[test]
    fn nonsense_is_malformed_with_the_problem_named() {
        let problem = |v| match check(v, 0) {
            Err(GateError::MalformedVerdict { problem }) => problem,
            other => panic!("expected malformed, got {other:?}"),
        };
        assert!(problem(verdict(f64::NAN, "", vec![])).contains("score NaN"));
        assert!(problem(verdict(1.5, "", vec![])).contains("between 0 and 1"));
        assert!(problem(verdict(1.0, &"x".repeat(5000), vec![])).contains("5000 bytes"));
        assert!(problem(verdict(1.0, "", vec![m("a", f64::INFINITY)])).contains("inf"));
        assert!(problem(verdict(1.0, "", vec![m("a", 1.0); 65])).contains("65 measurements"));
        assert!(problem(verdict(1.0, "", vec![m("", 1.0)])).contains("empty, too long"));
        assert!(problem(verdict(1.0, "", vec![m("a\nb", 1.0)])).contains("control characters"));
        // A huge name with a NaN value: refused for its name, briefly.
        let bell = "\u{7}".repeat(1 << 20);
        let said = problem(verdict(1.0, "", vec![m(&bell, f64::NAN)]));
        assert!(said.contains("1048576 bytes"), "{said}");
        assert!(said.len() < 400, "{} bytes", said.len());
    }

    #[test]
    fn a_reason_keeps_to_one_line() {
        let v = check(verdict(1.0, "ok\nINFO forged\u{1b}[2J", vec![]), 0).expect("sound");
        assert_eq!(v.reason, "ok\\nINFO forged\\u{1b}[2J");
    }
}
