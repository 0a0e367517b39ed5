//! Gate that passes every candidate without looking at it.
//!
//! It does no work of its own, so a call to it costs exactly what the host
//! spends per call (fresh store, instantiation, argument passing, verdict
//! checks): the benchmark in `tests/bench-extism` measures that overhead with
//! it. It ships in no release.

use gatehouse_plugin_sdk::{Description, Gate, GateRequest, Verdict, export_gate};

/// The exported gate.
pub struct NoopGate;

impl Gate for NoopGate {
    type Params = gatehouse_plugin_sdk::params::AnyParams;

    fn describe() -> Description {
        Description::gate(
            "noop-gate",
            env!("CARGO_PKG_VERSION"),
            "Passes every candidate without looking at it",
        )
    }

    fn evaluate(_request: GateRequest, _params: Self::Params) -> Result<Verdict, String> {
        Ok(Verdict::pass("nothing to check"))
    }
}

export_gate!(NoopGate);
