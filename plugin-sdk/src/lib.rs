//! Write Gatehouse gates and environment adapters as WebAssembly components.
//!
//! A gate is a plain function from a [`GateRequest`] to a [`Verdict`], exported
//! with the [`gate!`] macro from a `cdylib` crate built for `wasm32-wasip2`:
//!
//! ```
//! use gatehouse_plugin_sdk::{GateRequest, Verdict, gate};
//!
//! fn judge(request: GateRequest) -> Result<Verdict, String> {
//!     let config = request.candidate.json()?;
//!     match config["parameters"]["temperature"].as_f64() {
//!         Some(t) if t <= 1.0 => Ok(Verdict::pass(format!("temperature {t} is at most 1.0"))),
//!         Some(t) => Ok(Verdict::fail(format!("temperature {t} is above 1.0; lower it"))),
//!         None => Ok(Verdict::fail("no parameters.temperature; set one")),
//!     }
//! }
//!
//! gate! {
//!     name: "max-temperature",
//!     summary: "Fails a configuration whose temperature is above 1.0",
//!     evaluate: judge,
//! }
//! ```
//!
//! A gate with parameters implements [`Gate`], naming a [`Params`] type:
//! the SDK parses and checks the pipeline's parameters into it, answers the
//! host's `check-params` with the same code (so `gatehouse pipeline check`
//! and `serve` refuse a mistake at its line in the pipeline file), and
//! hands the parsed value to `evaluate`.
//!
//! An adapter implements [`Adapter`] and is exported with [`export_adapter!`].
//! The SDK owns the bindings to the `gatehouse:plugin@0.2.0` worlds
//! (`wit/`; the daemon still runs plugins built against 0.1.0, whose
//! parameters it can check only when they run), so a plugin crate depends on this crate alone, not on
//! `wit-bindgen`. Everything here also compiles for the host's own target, so
//! plugin logic can be unit tested natively ([`testing`]); only calls into the
//! host ([`log`], [`http`]) differ there.
//!
//! # What the host allows
//!
//! Each call runs in a fresh sandbox with a deadline (`timeout_ms`, wall
//! time, host calls and sleeps included), a fuel budget and 64 MiB of memory,
//! which also covers what the host buffers for the call (HTTP answers,
//! attachments). What a plugin gives back is bounded before the host keeps
//! it:
//!
//! | What | Limit | Over it |
//! |---|---|---|
//! | verdict `reason` | 4 KiB | malformed verdict, gate fails |
//! | measurements | 64; name 1–128 bytes, unit ≤ 32, no control characters, value finite | malformed verdict |
//! | error strings, `detail`, `summary` | 4 KiB | clipped with `…` |
//! | `describe()` name / version / params schema | 64 B / 64 B / 64 KiB | plugin refused |
//! | `describe()` time | 2 s, waiting on nothing | plugin refused |
//! | `check-params` path / message | 256 B / 4 KiB | clipped with `…` |
//! | adapter `current()` digests | 64 hex characters | malformed answer |
//! | log lines | 100 per call, 1 KiB each | dropped / clipped |
//!
//! Control characters in any text are escaped before the host keeps it, so
//! a plugin cannot forge a line of the daemon's log, the CLI or an export.
//!
//! At most 448 gate calls and 64 adapter calls run at once across the
//! daemon; a call past them waits its turn, so adapters (rollbacks among
//! them) never wait behind gates.

pub mod attachments;
pub mod data;
mod describe;
pub mod golden;
pub mod http;
pub mod log;
pub mod params;
mod request;
/// The statistics (crate `gatehouse-stats`), shared with the daemon's canary judge.
pub use gatehouse_stats as stats;
pub mod testing;
mod verdict;

#[doc(hidden)]
pub mod bindings {
    //! Generated from `wit/`. Plugins use the re-exports at the crate root;
    //! this module is public only for the export macros.
    pub mod gate {
        wit_bindgen::generate!({
            world: "gate",
            path: "wit",
            pub_export_macro: true,
            export_macro_name: "__export_gate_bindings",
            additional_derives: [PartialEq],
            default_bindings_module: "::gatehouse_plugin_sdk::bindings::gate",
        });
    }
    pub mod adapter {
        wit_bindgen::generate!({
            world: "adapter",
            path: "wit",
            with: {
                "gatehouse:plugin/types@0.2.0": crate::bindings::gate::gatehouse::plugin::types,
                "gatehouse:plugin/log@0.2.0": crate::bindings::gate::gatehouse::plugin::log,
                "gatehouse:plugin/http@0.2.0": crate::bindings::gate::gatehouse::plugin::http,
            },
            pub_export_macro: true,
            export_macro_name: "__export_adapter_bindings",
            default_bindings_module: "::gatehouse_plugin_sdk::bindings::adapter",
        });
    }
}

pub use bindings::gate::gatehouse::plugin::types::{
    Candidate, Description, GateRequest, LiveState, Measurement, Outcome, PluginKind, Target,
    Verdict,
};
pub use params::{NoParams, ParamError, Params};
pub use request::{json_kind, parse_params};
/// The JSON crate the SDK parses with, so plugins can name its types.
pub use serde_json;
pub use verdict::sentences;

/// A gate: judges one candidate before it may enter an environment.
///
/// Most gates need only the [`gate!`] macro; implement this trait when the
/// description needs building at run time. Both functions are associated
/// functions, not methods: the host creates a fresh instance for each call,
/// so a gate keeps no state between calls.
pub trait Gate {
    /// The parameters the gate accepts, parsed and checked from
    /// `request.params` before `evaluate` runs; the host asks the same
    /// question (`check-params`) when it loads a pipeline.
    type Params: Params;

    /// Who the gate is, the JSON Schema of its parameters, what it needs.
    fn describe() -> Description;

    /// Judges `request.candidate` under `params`. Return `Err` only when the
    /// gate cannot judge at all (an unreadable candidate, a data file
    /// missing); the host then fails the gate closed with the message as its
    /// reason. A candidate that is judged and found wanting is
    /// `Ok(Verdict::fail(..))`.
    fn evaluate(request: GateRequest, params: Self::Params) -> Result<Verdict, String>;
}

/// An environment adapter: places candidates into an environment and reads
/// back what is live there.
///
/// The daemon may repeat any call after a restart, so each must be
/// idempotent: applying the digest that is already live changes nothing.
pub trait Adapter {
    /// The parameters the adapter accepts (`target.params`), as the host's
    /// `check-params` checks them when it loads a pipeline; read them in
    /// each call with [`params::parse`].
    type Params: Params;

    /// Who the adapter is, the JSON Schema of its parameters, what it needs.
    fn describe() -> Description;

    /// Makes `candidate` the configuration `target` serves.
    fn apply(target: Target, candidate: Candidate) -> Result<(), String>;

    /// Reads back what `target` serves now.
    fn current(target: Target) -> Result<LiveState, String>;

    /// Sends `weight_percent` (0 to 100) of traffic to `canary`.
    fn set_traffic(target: Target, canary: Candidate, weight_percent: u8) -> Result<(), String>;

    /// Takes the canary out of traffic and restores `restore`.
    fn rollback(target: Target, restore: Option<Candidate>) -> Result<(), String>;
}

impl<T: Gate> bindings::gate::exports::gatehouse::plugin::gate_api::Guest for T {
    fn describe() -> Description {
        <T as Gate>::describe()
    }

    fn check_params(params: String) -> Result<(), ParamError> {
        params::parse::<T::Params>(&params).map(drop)
    }

    fn evaluate(request: GateRequest) -> Result<Verdict, String> {
        evaluate_with_params::<T>(request)
    }
}

/// What the exported `evaluate` does: parse and check the parameters, then
/// judge. Native tests reach it as [`testing::evaluate`].
fn evaluate_with_params<T: Gate>(request: GateRequest) -> Result<Verdict, String> {
    let params = params::parse::<T::Params>(&request.params)?;
    <T as Gate>::evaluate(request, params)
}

impl<T: Adapter> bindings::adapter::exports::gatehouse::plugin::adapter_api::Guest for T {
    fn describe() -> Description {
        <T as Adapter>::describe()
    }

    fn check_params(params: String) -> Result<(), ParamError> {
        params::parse::<T::Params>(&params).map(drop)
    }

    fn apply(target: Target, candidate: Candidate) -> Result<(), String> {
        <T as Adapter>::apply(target, candidate)
    }

    fn current(target: Target) -> Result<LiveState, String> {
        <T as Adapter>::current(target)
    }

    fn set_traffic(target: Target, canary: Candidate, weight_percent: u8) -> Result<(), String> {
        <T as Adapter>::set_traffic(target, canary, weight_percent)
    }

    fn rollback(target: Target, restore: Option<Candidate>) -> Result<(), String> {
        <T as Adapter>::rollback(target, restore)
    }
}

/// Exports a [`Gate`] implementation as the component's `gate-api`. Invoke
/// once, at the root of a `cdylib` crate.
#[macro_export]
macro_rules! export_gate {
    ($gate:ident) => {
        // Only a component exports the bindings: their symbol names
        // (`gatehouse:plugin/gate-api@0.2.0#evaluate`) are not valid in a
        // native shared library, where the crate is built for unit tests.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::gate::__export_gate_bindings!($gate with_types_in $crate::bindings::gate);
    };
}

/// Exports an [`Adapter`] implementation as the component's `adapter-api`.
/// Invoke once, at the root of a `cdylib` crate.
#[macro_export]
macro_rules! export_adapter {
    ($adapter:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::adapter::__export_adapter_bindings!($adapter with_types_in $crate::bindings::adapter);
    };
}

/// Exports a plain function `fn(GateRequest) -> Result<Verdict, String>` as
/// a gate. `name` and `summary` are required; `params_schema` (a
/// `serde_json::Value`) and `capabilities` (e.g. `["log", "http"]`) are
/// optional, in this order. The version is the crate's. Its parameters may
/// be any JSON object, read by the function itself: a gate whose parameters
/// can be wrong implements [`Gate`] with a [`Params`] type instead.
///
/// The function may also be called directly in native unit tests.
#[macro_export]
macro_rules! gate {
    (
        name: $name:expr,
        summary: $summary:expr,
        $(params_schema: $schema:expr,)?
        $(capabilities: [$($capability:expr),* $(,)?],)?
        evaluate: $evaluate:path $(,)?
    ) => {
        #[doc(hidden)]
        pub struct __GatehouseGate;

        impl $crate::Gate for __GatehouseGate {
            type Params = $crate::params::AnyParams;

            fn describe() -> $crate::Description {
                $crate::Description::gate($name, env!("CARGO_PKG_VERSION"), $summary)
                    $(.with_params_schema($schema))?
                    $($(.with_capability($capability))*)?
            }

            fn evaluate(
                request: $crate::GateRequest,
                _params: Self::Params,
            ) -> ::core::result::Result<$crate::Verdict, ::std::string::String> {
                $evaluate(request)
            }
        }

        $crate::export_gate!(__GatehouseGate);
    };
}
