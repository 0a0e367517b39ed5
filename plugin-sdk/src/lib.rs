//! Write Gatehouse gates as WebAssembly components.
//!
//! A gate is a type implementing [`Gate`], exported with [`export_gate!`] from a
//! `cdylib` crate built for `wasm32-wasip2`. The SDK owns the bindings to the
//! `gatehouse:plugin@0.1.0` world (`wit/gate.wit`), so a plugin crate depends on
//! this crate alone, not on `wit-bindgen`.
//!
//! ```
//! use gatehouse_plugin_sdk::{Description, Gate, GateRequest, Verdict, export_gate};
//!
//! struct AlwaysPass;
//!
//! impl Gate for AlwaysPass {
//!     fn describe() -> Description {
//!         Description::gate("always-pass", env!("CARGO_PKG_VERSION"), "Passes every candidate")
//!     }
//!     fn evaluate(_request: GateRequest) -> Result<Verdict, String> {
//!         Ok(Verdict::pass("nothing to check"))
//!     }
//! }
//!
//! export_gate!(AlwaysPass);
//! ```
//!
//! Everything here also compiles for the host's own target, so plugin logic can
//! be unit tested natively; only calls into the host (see [`log`]) differ there.

mod describe;
pub mod log;
mod request;
mod verdict;

#[doc(hidden)]
pub mod bindings {
    //! Generated from `wit/gate.wit`. Plugins use the re-exports at the crate
    //! root; this module is public only for [`export_gate!`](crate::export_gate).
    wit_bindgen::generate!({
        world: "gate",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "__export_gate_bindings",
        default_bindings_module: "::gatehouse_plugin_sdk::bindings",
    });
}

pub use bindings::gatehouse::plugin::types::{
    Candidate, Description, GateRequest, Measurement, Outcome, PluginKind, Verdict,
};
pub use request::{json_kind, parse_params};
/// The JSON crate the SDK parses with, so plugins can name its types.
pub use serde_json;

/// A gate: judges one candidate before it may enter an environment.
///
/// Both functions are associated functions, not methods: the host creates a
/// fresh instance for each call, so a gate keeps no state between calls.
pub trait Gate {
    /// Who the gate is, the JSON Schema of its parameters, what it needs.
    fn describe() -> Description;

    /// Judges `request.candidate`. Return `Err` only when the gate cannot judge
    /// at all (bad parameters, unreadable candidate); the host then fails the
    /// gate closed with the message as its reason. A candidate that is judged
    /// and found wanting is `Ok(Verdict::fail(..))`.
    fn evaluate(request: GateRequest) -> Result<Verdict, String>;
}

impl<T: Gate> bindings::Guest for T {
    fn describe() -> Description {
        <T as Gate>::describe()
    }

    fn evaluate(request: GateRequest) -> Result<Verdict, String> {
        <T as Gate>::evaluate(request)
    }
}

/// Exports a [`Gate`] implementation as the component's `describe` and
/// `evaluate` functions. Invoke once, at the root of a `cdylib` crate.
#[macro_export]
macro_rules! export_gate {
    ($gate:ident) => {
        $crate::bindings::__export_gate_bindings!($gate with_types_in $crate::bindings);
    };
}
