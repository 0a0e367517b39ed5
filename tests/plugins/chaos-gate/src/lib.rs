//! Gate that misbehaves on request, for the daemon's fault tests.
//!
//! Params `{"mode": ..., "delay_ms": N}` pick the behaviour:
//! - `pass`: passes.
//! - `fail`: fails with reason "chaos-gate asked to fail".
//! - `slow`: busy-waits `delay_ms` on the monotonic clock, then passes.
//! - `trap`: panics, which traps the WebAssembly instance.
//! - `loop`: spins forever, for epoch deadlines and timeouts.
//! - `alloc`: grows memory until the host's limit stops it.
//! - `error`: returns the error "chaos-gate asked to error".
//!
//! It judges nothing about the candidate, and ships in no release.

use std::time::{Duration, Instant};

use gatehouse_plugin_sdk::{Description, Gate, GateRequest, Verdict, export_gate};
use serde::Deserialize;
use serde_json::json;

/// What the gate is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Pass,
    Fail,
    Slow,
    Trap,
    Loop,
    Alloc,
    Error,
}

/// Params from the test's pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub mode: Mode,
    /// How long `slow` busy-waits.
    #[serde(default)]
    pub delay_ms: u64,
}

impl gatehouse_plugin_sdk::Params for Params {}

/// The exported gate.
pub struct ChaosGate;

impl Gate for ChaosGate {
    type Params = Params;

    fn describe() -> Description {
        Description::gate(
            "chaos-gate",
            env!("CARGO_PKG_VERSION"),
            "Misbehaves on request (slow, trap, loop, alloc, error) to test the daemon's fault handling",
        )
        // `slow` reads the clock; without it the clock stands still.
        .with_capability("clock")
        .with_params_schema(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": false,
            "required": ["mode"],
            "properties": {
                "mode": { "enum": ["pass", "fail", "slow", "trap", "loop", "alloc", "error"] },
                "delay_ms": { "type": "integer", "minimum": 0, "default": 0 }
            }
        }))
    }

    fn evaluate(_: GateRequest, params: Params) -> Result<Verdict, String> {
        act(&params)
    }
}

export_gate!(ChaosGate);

/// Does what `params` ask; `trap`, `loop` and `alloc` never return.
pub fn act(params: &Params) -> Result<Verdict, String> {
    match params.mode {
        Mode::Pass => Ok(Verdict::pass("chaos-gate asked to pass")),
        Mode::Fail => Ok(Verdict::fail("chaos-gate asked to fail")),
        Mode::Slow => {
            busy_wait(Duration::from_millis(params.delay_ms));
            Ok(Verdict::pass(format!(
                "chaos-gate passed after {} ms",
                params.delay_ms
            )))
        }
        Mode::Trap => panic!("chaos-gate asked to trap"),
        Mode::Loop => loop {
            std::hint::black_box(());
        },
        Mode::Alloc => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                // Touch every page so the memory is really committed.
                hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
            }
        }
        Mode::Error => Err("chaos-gate asked to error".to_owned()),
    }
}

/// Spins rather than sleeps: the point is to hold the instance busy, as a
/// slow gate computing something would.
fn busy_wait(delay: Duration) {
    let start = Instant::now();
    while start.elapsed() < delay {
        std::hint::black_box(());
    }
}

#[cfg(test)]
mod tests {
    use gatehouse_plugin_sdk::{Outcome, parse_params};

    use super::*;

    fn run(params: &str) -> Result<Verdict, String> {
        act(&parse_params(params)?)
    }

    #[test]
    fn pass_and_fail_modes_decide_as_asked() {
        assert_eq!(
            run(r#"{"mode": "pass"}"#).map(|v| v.outcome),
            Ok(Outcome::Pass)
        );
        let failed = run(r#"{"mode": "fail"}"#).map(|v| (v.outcome, v.reason));
        assert_eq!(
            failed,
            Ok((Outcome::Fail, "chaos-gate asked to fail".to_owned()))
        );
    }

    #[test]
    fn error_mode_returns_the_error() {
        assert_eq!(
            run(r#"{"mode": "error"}"#).map(|v| v.outcome),
            Err("chaos-gate asked to error".to_owned())
        );
    }

    #[test]
    fn slow_mode_takes_at_least_the_delay() {
        let start = Instant::now();
        let verdict = run(r#"{"mode": "slow", "delay_ms": 20}"#).map(|v| v.outcome);
        assert_eq!(verdict, Ok(Outcome::Pass));
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    #[should_panic(expected = "chaos-gate asked to trap")]
    fn trap_mode_panics() {
        let _ = run(r#"{"mode": "trap"}"#);
    }

    #[test]
    fn unknown_mode_is_an_error_naming_the_param() {
        let err = run(r#"{"mode": "explode"}"#)
            .map(|v| v.outcome)
            .unwrap_err();
        assert!(err.contains("`mode`"), "{err}");
    }
}
