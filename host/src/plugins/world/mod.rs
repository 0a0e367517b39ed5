//! The WIT contract as the host sees it: one `bindgen!` per supported version
//! of `gatehouse:plugin`, linked side by side.
//!
//! A plugin names the version it was built against in its export
//! (`gatehouse:plugin/gate-api@0.1.0`), so the host finds which bindings to
//! use by looking at the component's exports; a later incompatible version
//! adds a module here and a variant to [`Api`], and plugins built today keep
//! working.

use std::sync::atomic::{AtomicBool, Ordering};
use wasmtime::component::{
    Component, ComponentExportIndex, HasSelf, Instance, InstancePre, Linker, TypedFunc,
};

pub mod v0_1;

/// `gatehouse:plugin@0.2.0`, the newest version: what the SDK builds and
/// what the rest of the host speaks.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../plugin-sdk/wit",
        world: "daemon",
        // Every host function is async and may trap: a call runs as a
        // future under its deadline (see `sandbox::call`), so whatever a host
        // function waits on, now or in an import added later, ends when the
        // deadline does.
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

/// The version the host's own code is written against; older versions
/// convert to it in their module.
pub use v0_2 as latest;

use super::PluginKind;
use super::sandbox::CallState;
use latest::gatehouse::plugin::types::{
    Candidate, Description, GateRequest, LiveState, ParamError, Target, Verdict,
};
use wasmtime::component::{ComponentNamedList, Lift, Lower};

/// Host interfaces by capability: a component importing one of these needs
/// the capability linked.
pub const CAPABILITY_IMPORTS: &[(&str, &str)] = &[
    ("gatehouse:plugin/log@", "log"),
    ("gatehouse:plugin/http@", "http"),
];

/// Interfaces a plugin may export, newest version first.
const GATE_V0_2: &str = "gatehouse:plugin/gate-api@0.2.0";
const ADAPTER_V0_2: &str = "gatehouse:plugin/adapter-api@0.2.0";
const GATE_V0_1: &str = "gatehouse:plugin/gate-api@0.1.0";
const ADAPTER_V0_1: &str = "gatehouse:plugin/adapter-api@0.1.0";

/// The functions of one plugin, looked up once per version, ready to be bound
/// to each fresh instance.
pub enum Api {
    GateV0_2(Gate<v0_2::exports::gatehouse::plugin::gate_api::GuestIndices, GateRequest, Verdict>),
    AdapterV0_2(v0_2::exports::gatehouse::plugin::adapter_api::GuestIndices),
    GateV0_1(
        Gate<
            v0_1::exports::gatehouse::plugin::gate_api::GuestIndices,
            v0_1::gatehouse::plugin::types::GateRequest,
            v0_1::gatehouse::plugin::types::Verdict,
        >,
    ),
    AdapterV0_1(v0_1::exports::gatehouse::plugin::adapter_api::GuestIndices),
}

/// A gate of one version. Its `evaluate` is typechecked once per plugin
/// version rather than on every call, as the bindings' `load` would do for
/// every export (a tenth of a trivial call).
pub struct Gate<Indices, Request, Judged> {
    pub indices: Indices,
    evaluate: ComponentExportIndex,
    evaluate_checked: AtomicBool,
    types: std::marker::PhantomData<fn(Request) -> Judged>,
}

impl<Indices, Request, Judged> Gate<Indices, Request, Judged>
where
    Request: Lower + Sync,
    Judged: Lift + Send + Sync + 'static,
    for<'a> (&'a Request,): ComponentNamedList + Lower,
    (Result<Judged, String>,): ComponentNamedList + Lift,
{
    fn new(
        pre: &InstancePre<CallState>,
        export: &str,
        indices: impl FnOnce(&InstancePre<CallState>) -> wasmtime::Result<Indices>,
    ) -> wasmtime::Result<Self> {
        let component = pre.component();
        let evaluate = component
            .get_export_index(None, export)
            .and_then(|api| component.get_export_index(Some(&api), "evaluate"))
            .ok_or_else(|| wasmtime::format_err!("`{export}` has no `evaluate`"))?;
        Ok(Gate {
            indices: indices(pre)?,
            evaluate,
            evaluate_checked: AtomicBool::new(false),
            types: std::marker::PhantomData,
        })
    }

    /// Calls `evaluate` on `instance`.
    ///
    /// # Safety
    /// `instance` must be an instance of the `InstancePre` this was made
    /// from: the type checked on the first call is taken as the type of
    /// every later call's export.
    async unsafe fn evaluate(
        &self,
        store: &mut wasmtime::Store<CallState>,
        instance: &Instance,
        request: &Request,
    ) -> wasmtime::Result<Result<Judged, String>> {
        let evaluate: TypedFunc<(&Request,), (Result<Judged, String>,)> =
            if self.evaluate_checked.load(Ordering::Acquire) {
                let func = instance
                    .get_func(&mut *store, self.evaluate)
                    .ok_or_else(|| wasmtime::format_err!("`evaluate` is not exported"))?;
                // SAFETY: an export's type is the component's, not the
                // instance's, so every instance of this `InstancePre` (as the
                // caller promises) has the type that was checked against
                // these exact bindings before `evaluate_checked` was set.
                unsafe { TypedFunc::new_unchecked(func) }
            } else {
                let typed = instance.get_typed_func(&mut *store, self.evaluate)?;
                self.evaluate_checked.store(true, Ordering::Release);
                typed
            };
        let (verdict,) = evaluate.call_async(store, (request,)).await?;
        Ok(verdict)
    }
}

/// One call into a plugin, in the terms of the version it was built against.
pub enum Entry {
    Describe,
    CheckParams(String),
    Evaluate(GateRequest),
    Apply(Target, Candidate),
    Current(Target),
    SetTraffic(Target, Candidate, u8),
    Rollback(Target, Option<Candidate>),
}

/// What a call of [`Entry`] gave back.
pub enum Answer {
    Described(Description),
    /// `None`: the plugin's version has no `check-params`.
    ParamsChecked(Option<Result<(), ParamError>>),
    Judged(Result<Verdict, String>),
    Adapted(Result<Option<LiveState>, String>),
}

impl Api {
    /// Runs `entry` on `instance`, an instance of the `InstancePre` this
    /// `Api` was detected on.
    pub(super) async fn run(
        &self,
        store: &mut wasmtime::Store<CallState>,
        instance: &Instance,
        entry: Entry,
    ) -> wasmtime::Result<Answer> {
        let wrong = || wasmtime::format_err!("this call does not exist in the plugin's world");
        let none = |r: Result<(), String>| Answer::Adapted(r.map(|()| None));
        match (self, entry) {
            (Api::GateV0_2(gate), Entry::Describe) => {
                let api = gate.indices.load(&mut *store, instance)?;
                Ok(Answer::Described(api.call_describe(store).await?))
            }
            (Api::GateV0_2(gate), Entry::CheckParams(params)) => {
                let api = gate.indices.load(&mut *store, instance)?;
                let checked = api.call_check_params(store, &params).await?;
                Ok(Answer::ParamsChecked(Some(checked)))
            }
            (Api::GateV0_2(gate), Entry::Evaluate(request)) => {
                // SAFETY: the caller promises `instance` is of the
                // `InstancePre` `gate` was made from.
                let verdict = unsafe { gate.evaluate(store, instance, &request) }.await?;
                Ok(Answer::Judged(verdict))
            }
            (Api::GateV0_1(gate), Entry::Describe) => {
                let api = gate.indices.load(&mut *store, instance)?;
                Ok(Answer::Described(api.call_describe(store).await?.into()))
            }
            (Api::GateV0_1(_), Entry::CheckParams(_)) => Ok(Answer::ParamsChecked(None)),
            (Api::GateV0_1(gate), Entry::Evaluate(request)) => {
                let request = request.into();
                // SAFETY: as above.
                let verdict = unsafe { gate.evaluate(store, instance, &request) }.await?;
                Ok(Answer::Judged(verdict.map(Into::into)))
            }
            (Api::GateV0_2(_) | Api::GateV0_1(_), _) => Err(wrong()),
            (Api::AdapterV0_2(indices), entry) => {
                let api = indices.load(&mut *store, instance)?;
                Ok(match entry {
                    Entry::Describe => Answer::Described(api.call_describe(store).await?),
                    Entry::CheckParams(params) => {
                        Answer::ParamsChecked(Some(api.call_check_params(store, &params).await?))
                    }
                    Entry::Apply(target, candidate) => {
                        none(api.call_apply(store, &target, &candidate).await?)
                    }
                    Entry::Current(target) => {
                        Answer::Adapted(api.call_current(store, &target).await?.map(Some))
                    }
                    Entry::SetTraffic(target, canary, weight) => none(
                        api.call_set_traffic(store, &target, &canary, weight)
                            .await?,
                    ),
                    Entry::Rollback(target, restore) => {
                        none(api.call_rollback(store, &target, restore.as_ref()).await?)
                    }
                    Entry::Evaluate(_) => return Err(wrong()),
                })
            }
            (Api::AdapterV0_1(indices), entry) => {
                let api = indices.load(&mut *store, instance)?;
                Ok(match entry {
                    Entry::Describe => Answer::Described(api.call_describe(store).await?.into()),
                    Entry::CheckParams(_) => Answer::ParamsChecked(None),
                    Entry::Apply(target, candidate) => none(
                        api.call_apply(store, &target.into(), &candidate.into())
                            .await?,
                    ),
                    Entry::Current(target) => Answer::Adapted(
                        api.call_current(store, &target.into())
                            .await?
                            .map(|s| Some(s.into())),
                    ),
                    Entry::SetTraffic(target, canary, weight) => none(
                        api.call_set_traffic(store, &target.into(), &canary.into(), weight)
                            .await?,
                    ),
                    Entry::Rollback(target, restore) => {
                        let restore = restore.map(Into::into);
                        none(
                            api.call_rollback(store, &target.into(), restore.as_ref())
                                .await?,
                        )
                    }
                    Entry::Evaluate(_) => return Err(wrong()),
                })
            }
        }
    }

    /// Finds which world and version `pre`'s component exports.
    pub fn detect(pre: &InstancePre<CallState>) -> Result<Api, String> {
        let component = pre.component();
        let exports = |name: &str| component.get_export_index(None, name).is_some();
        let api = if exports(GATE_V0_2) {
            Gate::new(pre, GATE_V0_2, |pre| {
                v0_2::exports::gatehouse::plugin::gate_api::GuestIndices::new(pre)
            })
            .map(Api::GateV0_2)
        } else if exports(ADAPTER_V0_2) {
            v0_2::exports::gatehouse::plugin::adapter_api::GuestIndices::new(pre)
                .map(Api::AdapterV0_2)
        } else if exports(GATE_V0_1) {
            Gate::new(pre, GATE_V0_1, |pre| {
                v0_1::exports::gatehouse::plugin::gate_api::GuestIndices::new(pre)
            })
            .map(Api::GateV0_1)
        } else if exports(ADAPTER_V0_1) {
            v0_1::exports::gatehouse::plugin::adapter_api::GuestIndices::new(pre)
                .map(Api::AdapterV0_1)
        } else {
            return Err(format!(
                "it exports none of `{GATE_V0_2}`, `{ADAPTER_V0_2}` or their 0.1.0 versions; build it with gatehouse-plugin-sdk's `export_gate!` or `export_adapter!`"
            ));
        };
        api.map_err(|e| format!("{e:#}"))
    }

    pub fn kind(&self) -> PluginKind {
        match self {
            Api::GateV0_2(_) | Api::GateV0_1(_) => PluginKind::Gate,
            Api::AdapterV0_2(_) | Api::AdapterV0_1(_) => PluginKind::Adapter,
        }
    }

    pub fn version(&self) -> &'static str {
        match self {
            Api::GateV0_2(_) | Api::AdapterV0_2(_) => "0.2.0",
            Api::GateV0_1(_) | Api::AdapterV0_1(_) => "0.1.0",
        }
    }
}

/// Links every host interface of every supported version. Which of them a
/// plugin may actually import is checked per plugin against its grants
/// ([`super::capabilities::check_imports`]).
pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    v0_2::Daemon::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
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
