//! Capability "clock": the real time through WASI's clocks (`std::time`).
//!
//! Grant: `"clock"` in the manifest's capabilities. Link: WASI's clocks are
//! always linked, since the standard library imports them. Prepare: without
//! the grant both clocks read a fixed instant (the Unix epoch, and zero), so
//! a verdict cannot depend on when it was computed and a plugin cannot time
//! the host.

use std::time::Duration;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtxBuilder};

struct Stopped;

impl HostWallClock for Stopped {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for Stopped {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Stops both clocks unless the clock was granted.
pub fn prepare(wasi: &mut WasiCtxBuilder, granted: bool) {
    if !granted {
        wasi.wall_clock(Stopped);
        wasi.monotonic_clock(Stopped);
    }
}
