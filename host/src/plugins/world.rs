//! The WIT contract as the host sees it: one `bindgen!` per supported version
//! of `gatehouse:plugin`, linked side by side.
//!
//! A plugin names the version it was built against in its export
//! (`gatehouse:plugin/gate-api@0.1.0`), so the host finds which bindings to
//! use by looking at the component's exports; a later incompatible version
//! adds a module here and a variant to [`Api`], and plugins built today keep
//! working.

use wasmtime::component::{Component, HasSelf, InstancePre, Linker};

pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../plugin-sdk/wit",
        world: "daemon",
    });
}

use super::PluginKind;
use super::sandbox::CallState;
use v0_1::exports::gatehouse::plugin::{adapter_api, gate_api};

/// Host interfaces by capability: a component importing one of these needs
/// the capability linked.
pub const CAPABILITY_IMPORTS: &[(&str, &str)] = &[
    ("gatehouse:plugin/log@", "log"),
    ("gatehouse:plugin/http@", "http"),
];

/// Interfaces a plugin may export, newest version first.
const GATE_V0_1: &str = "gatehouse:plugin/gate-api@0.1.0";
const ADAPTER_V0_1: &str = "gatehouse:plugin/adapter-api@0.1.0";

/// The functions of one plugin, looked up once per version, ready to be bound
/// to each fresh instance.
#[derive(Clone)]
pub enum Api {
    GateV0_1(gate_api::GuestIndices),
    AdapterV0_1(adapter_api::GuestIndices),
}

impl Api {
    /// Finds which world and version `pre`'s component exports.
    pub fn detect(pre: &InstancePre<CallState>) -> Result<Api, String> {
        let component = pre.component();
        let exports = |name: &str| component.get_export_index(None, name).is_some();
        if exports(GATE_V0_1) {
            return gate_api::GuestIndices::new(pre)
                .map(Api::GateV0_1)
                .map_err(|e| format!("{e:#}"));
        }
        if exports(ADAPTER_V0_1) {
            return adapter_api::GuestIndices::new(pre)
                .map(Api::AdapterV0_1)
                .map_err(|e| format!("{e:#}"));
        }
        Err(format!(
            "it exports neither `{GATE_V0_1}` nor `{ADAPTER_V0_1}`; build it with gatehouse-plugin-sdk's `gate!` or `export_adapter!`"
        ))
    }

    pub fn kind(&self) -> PluginKind {
        match self {
            Api::GateV0_1(_) => PluginKind::Gate,
            Api::AdapterV0_1(_) => PluginKind::Adapter,
        }
    }

    pub fn version(&self) -> &'static str {
        match self {
            Api::GateV0_1(_) | Api::AdapterV0_1(_) => "0.1.0",
        }
    }
}

/// Links every host interface of every supported version. Which of them a
/// plugin may actually import is checked per plugin against its grants
/// ([`super::capabilities::check_imports`]).
pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    v0_1::Daemon::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    Ok(())
}

/// Names of the component's imports, e.g. `gatehouse:plugin/log@0.1.0`.
pub fn import_names(component: &Component) -> Vec<String> {
    let engine = component.engine().clone();
    component
        .component_type()
        .imports(&engine)
        .map(|(name, _)| name.to_string())
        .collect()
}
