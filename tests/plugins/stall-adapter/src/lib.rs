//! Adapter that misbehaves on request, for the daemon's fault tests
//! (`tests/e2e/hostile_plugins.rs`).
//!
//! The environment's params pick what it does:
//! - `sleep_ms` with `sleep_in` (a list of `apply`, `current`, `set_traffic`,
//!   `rollback`): those calls sleep that long in a WASI `poll` first, a
//!   blocking host call no epoch interrupts;
//! - `digest_bytes`: `current()` reads back an "active digest" that long
//!   (an adapter must give 64 hex characters).
//!
//! Otherwise every call succeeds and nothing is kept: `current()` reads back
//! nothing live.

use gatehouse_plugin_sdk::{Adapter, Candidate, Description, LiveState, Target, export_adapter};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    sleep_ms: u64,
    sleep_in: Vec<String>,
    digest_bytes: usize,
}

impl gatehouse_plugin_sdk::Params for Params {}

fn params(target: &Target) -> Result<Params, String> {
    Ok(gatehouse_plugin_sdk::params::parse(&target.params)?)
}

/// Sleeps if `call` is one the params name.
fn stall(target: &Target, call: &str) -> Result<Params, String> {
    let p = params(target)?;
    if p.sleep_in.iter().any(|c| c == call) {
        std::thread::sleep(std::time::Duration::from_millis(p.sleep_ms));
    }
    Ok(p)
}

pub struct StallAdapter;

impl Adapter for StallAdapter {
    type Params = Params;

    fn describe() -> Description {
        Description::adapter(
            "stall-adapter",
            env!("CARGO_PKG_VERSION"),
            "Sleeps in the calls its params name, or reads back an oversized digest",
        )
    }

    fn apply(target: Target, _candidate: Candidate) -> Result<(), String> {
        stall(&target, "apply").map(drop)
    }

    fn current(target: Target) -> Result<LiveState, String> {
        let p = stall(&target, "current")?;
        Ok(LiveState {
            active: (p.digest_bytes > 0).then(|| "f".repeat(p.digest_bytes)),
            canary: None,
            canary_weight_percent: 0,
            detail: "stall-adapter keeps nothing".into(),
        })
    }

    fn set_traffic(target: Target, _canary: Candidate, _weight_percent: u8) -> Result<(), String> {
        stall(&target, "set_traffic").map(drop)
    }

    fn rollback(target: Target, _restore: Option<Candidate>) -> Result<(), String> {
        stall(&target, "rollback").map(drop)
    }
}

export_adapter!(StallAdapter);
