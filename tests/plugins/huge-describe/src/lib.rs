//! Gate whose `describe()` gives a 1 MiB version and params schema, for the
//! daemon's fault tests: the host must refuse it with a short message and
//! keep none of it.

use gatehouse_plugin_sdk::{Description, Gate, GateRequest, Verdict, export_gate};

const HUGE: usize = 1 << 20;

pub struct HugeDescribe;

impl Gate for HugeDescribe {
    type Params = gatehouse_plugin_sdk::params::AnyParams;

    fn describe() -> Description {
        let mut d = Description::gate("huge-describe", "9".repeat(HUGE), "s".repeat(HUGE));
        d.params_schema = format!("\"{}\"", "x".repeat(HUGE));
        d
    }

    fn evaluate(_request: GateRequest, _params: Self::Params) -> Result<Verdict, String> {
        Ok(Verdict::pass("huge-describe judged"))
    }
}

export_gate!(HugeDescribe);
