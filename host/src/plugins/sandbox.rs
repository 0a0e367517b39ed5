//! One call into a plugin: a fresh store holding only what was granted, a
//! wall-clock deadline, a fuel budget, one memory cap over all the plugin's
//! memories, and the translation of whatever went wrong into a [`GateError`].

use super::GateError;
use super::capabilities::attachments::Attachments;
use super::capabilities::{Grants, clock, files};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Instance, InstancePre, ResourceTable};
use wasmtime::{Engine, ResourceLimiter, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Granularity of deadlines: the engine's epoch advances this often.
const TICK: Duration = Duration::from_millis(2);
/// Table elements one instance may hold.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// What one call may spend.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock time, host calls included.
    pub timeout: Duration,
    /// Instructions, counted deterministically by wasmtime's fuel.
    pub fuel: u64,
    /// Bytes, over all of the plugin's linear memories together.
    pub memory: usize,
}

/// A host call that failed on the host's side (a refused or failed HTTP
/// request, say), kept so that a plugin that then gives up is reported for
/// that reason rather than for its own message or trap.
#[derive(Debug, Clone)]
pub struct HostFailure {
    pub capability: &'static str,
    pub detail: String,
}

/// The state of one call's store.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryBudget,
    pub(super) plugin: String,
    pub(super) log_lines: u32,
    pub(super) grants: Arc<Grants>,
    pub(super) deadline: Instant,
    pub(super) host_failure: Option<HostFailure>,
    /// What an evaluation may read of its submission; empty for other calls.
    pub(super) attachments: Arc<Attachments>,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The shared types interface has no functions to provide.
impl super::world::v0_1::gatehouse::plugin::types::Host for CallState {}

/// Caps the sum of all linear memories, where wasmtime's own limits cap each
/// memory alone: a plugin with two memories must not get twice the budget.
struct MemoryBudget {
    limit: usize,
    used: usize,
}

/// The error a memory grow past the budget traps with.
#[derive(Debug, thiserror::Error)]
#[error("memory cap of {limit} bytes reached")]
struct MemoryCapReached {
    limit: usize,
}

impl ResourceLimiter for MemoryBudget {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let after = self.used.saturating_sub(current).saturating_add(desired);
        if after > self.limit {
            return Err(wasmtime::Error::new(MemoryCapReached { limit: self.limit }));
        }
        self.used = after;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// What a call gave back, and what it cost.
pub struct Called<R> {
    pub value: R,
    pub fuel_used: u64,
    pub host_failure: Option<HostFailure>,
}

/// Advances the engine's epoch until the engine is dropped.
pub fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("gatehouse-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        });
    if let Err(e) = spawned {
        // Without the ticker no deadline fires; say so loudly.
        tracing::error!("cannot start the epoch ticker, plugin timeouts will not fire: {e}");
    }
}

/// Instantiates the plugin in a fresh store and runs `f` within `limits`.
pub fn call<R>(
    engine: &Engine,
    pre: &InstancePre<CallState>,
    plugin: &str,
    grants: &Arc<Grants>,
    limits: Limits,
    f: impl FnOnce(&mut Store<CallState>, &Instance) -> wasmtime::Result<R>,
) -> Result<Called<R>, GateError> {
    let mut wasi = WasiCtxBuilder::new();
    // No arguments, environment, network or inherited stdio, ever; clocks
    // and data directories only when granted.
    clock::prepare(&mut wasi, grants.clock);
    files::prepare(&mut wasi, &grants.files).map_err(|detail| GateError::HostCall {
        capability: "files".into(),
        detail,
    })?;
    let state = CallState {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        memory: MemoryBudget {
            limit: limits.memory,
            used: 0,
        },
        plugin: plugin.to_string(),
        log_lines: 0,
        grants: grants.clone(),
        deadline: Instant::now() + limits.timeout,
        host_failure: None,
        attachments: Arc::default(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.memory);
    let ticks = limits.timeout.as_millis().div_ceil(TICK.as_millis()).max(1) as u64;
    store.set_epoch_deadline(ticks);
    store.epoch_deadline_trap();
    store
        .set_fuel(limits.fuel)
        .map_err(|e| GateError::Instantiate {
            detail: format!("{e:#}"),
        })?;
    let result = pre
        .instantiate(&mut store)
        .map_err(|e| classify(e, &limits, None, true))
        .and_then(|instance| {
            f(&mut store, &instance)
                .map_err(|e| classify(e, &limits, store.data_mut().host_failure.take(), false))
        });
    let fuel_used = limits.fuel - store.get_fuel().unwrap_or(0);
    let value = result?;
    Ok(Called {
        value,
        fuel_used,
        host_failure: store.data_mut().host_failure.take(),
    })
}

fn classify(
    err: wasmtime::Error,
    limits: &Limits,
    host_failure: Option<HostFailure>,
    instantiating: bool,
) -> GateError {
    if let Some(trap) = err.downcast_ref::<Trap>() {
        match trap {
            Trap::Interrupt => {
                return GateError::Timeout {
                    limit_ms: limits.timeout.as_millis() as u64,
                };
            }
            Trap::OutOfFuel => {
                return GateError::FuelExhausted {
                    budget: limits.fuel,
                };
            }
            Trap::StackOverflow => return GateError::StackOverflow,
            _ => {}
        }
    }
    if err.downcast_ref::<MemoryCapReached>().is_some()
        || format!("{err:?}").contains("memory cap of")
    {
        return GateError::OutOfMemory {
            limit_mib: limits.memory >> 20,
        };
    }
    if let Some(failure) = host_failure {
        return GateError::HostCall {
            capability: failure.capability.into(),
            detail: failure.detail,
        };
    }
    if instantiating {
        GateError::Instantiate {
            detail: format!("{err:#}"),
        }
    } else {
        GateError::Trap {
            detail: trap_detail(&err),
        }
    }
}

/// Frames of a trap's wasm backtrace kept in its reason.
const TRAP_FRAMES: usize = 8;

/// The trap's code, then the innermost frames of the guest's stack. Never
/// the host's own stack: a reason lands in the audit log and the CLI.
fn trap_detail(err: &wasmtime::Error) -> String {
    let code = match err.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => err.root_cause().to_string(),
    };
    let frames: Vec<String> = err
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(|trace| {
            trace
                .to_string()
                .lines()
                .filter_map(|line| {
                    // Frame lines read `  3: 0x1a2b - name`; the rest are
                    // headers and source locations.
                    let (index, rest) = line.trim_start().split_once(": ")?;
                    index.parse::<usize>().ok()?;
                    Some(rest.rsplit(" - ").next().unwrap_or(rest).to_string())
                })
                .take(TRAP_FRAMES)
                .collect()
        })
        .unwrap_or_default();
    let detail = if frames.is_empty() {
        code
    } else {
        format!(
            "{code}; wasm backtrace, innermost first: {}",
            frames.join(" <- ")
        )
    };
    super::clip(detail)
}
