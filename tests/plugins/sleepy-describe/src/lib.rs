//! Gate whose `describe()` sleeps an hour in a WASI `poll`, for the daemon's
//! fault tests: a push or a plugin directory holding it must answer within
//! the describe deadline, and hold nothing else up.

use gatehouse_plugin_sdk::{Description, Gate, GateRequest, Verdict, export_gate};

pub struct SleepyDescribe;

impl Gate for SleepyDescribe {
    type Params = gatehouse_plugin_sdk::params::AnyParams;

    fn describe() -> Description {
        std::thread::sleep(std::time::Duration::from_secs(3600));
        Description::gate(
            "sleepy-describe",
            env!("CARGO_PKG_VERSION"),
            "Sleeps in describe()",
        )
    }

    fn evaluate(_request: GateRequest, _params: Self::Params) -> Result<Verdict, String> {
        Ok(Verdict::pass("sleepy-describe woke up"))
    }
}

export_gate!(SleepyDescribe);
