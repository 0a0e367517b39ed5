//! Gate that sleeps an hour in a static constructor, which runs when the
//! component is instantiated, before any export is called: for the daemon's
//! fault tests, every call to it must end at its deadline.

use gatehouse_plugin_sdk::{Description, Gate, GateRequest, Verdict, export_gate};

#[cfg(target_arch = "wasm32")]
extern "C" fn sleep_at_start() {
    std::thread::sleep(std::time::Duration::from_secs(3600));
}

/// Run by the module's initialisation (`_initialize` and the constructors it
/// calls), as C++ global constructors are. Only in the component: a native
/// build (for `cargo test`) would sleep at its own start.
#[cfg(target_arch = "wasm32")]
#[used]
#[unsafe(link_section = ".init_array")]
static SLEEP_AT_START: extern "C" fn() = sleep_at_start;

pub struct SleepyStart;

impl Gate for SleepyStart {
    type Params = gatehouse_plugin_sdk::params::AnyParams;

    fn describe() -> Description {
        Description::gate(
            "sleepy-start",
            env!("CARGO_PKG_VERSION"),
            "Sleeps when started",
        )
    }

    fn evaluate(_request: GateRequest, _params: Self::Params) -> Result<Verdict, String> {
        Ok(Verdict::pass("sleepy-start woke up"))
    }
}

export_gate!(SleepyStart);
