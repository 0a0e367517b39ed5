//! One call into a plugin: a fresh store with nothing granted, a deadline,
//! a memory cap, and the translation of whatever went wrong into a
//! [`GateError`].

use super::GateError;
use super::bindings::gatehouse::plugin::host::{Host, Level};
use super::bindings::{Gate, GatePre};
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Granularity of deadlines: the engine's epoch advances this often.
const TICK: Duration = Duration::from_millis(2);
/// Log lines one call may write; the rest are counted and dropped, so a
/// chatty plugin cannot flood the daemon's log.
const MAX_LOG_LINES: u32 = 100;
const MAX_LOG_LINE_BYTES: usize = 1024;

pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    plugin: String,
    log_lines: u32,
}

impl CallState {
    fn new(plugin: &str) -> CallState {
        CallState {
            // No arguments, environment, preopened directories, network or
            // inherited stdio: a plugin sees only what the call hands it.
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(super::CALL_MEMORY_LIMIT)
                .trap_on_grow_failure(true)
                .build(),
            plugin: plugin.to_string(),
            log_lines: 0,
        }
    }
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
impl super::bindings::gatehouse::plugin::types::Host for CallState {}

impl Host for CallState {
    fn log(&mut self, level: Level, message: String) {
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES {
            if self.log_lines == MAX_LOG_LINES + 1 {
                tracing::warn!(plugin = %self.plugin, "plugin log limit reached; further lines dropped");
            }
            return;
        }
        let mut message = message;
        if message.len() > MAX_LOG_LINE_BYTES {
            let mut end = MAX_LOG_LINE_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        let plugin = self.plugin.as_str();
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
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

/// Instantiates the plugin in a fresh store and runs `f` under `timeout`.
pub fn call<R>(
    engine: &Engine,
    pre: &GatePre<CallState>,
    timeout: Duration,
    plugin: &str,
    f: impl FnOnce(&Gate, &mut Store<CallState>) -> wasmtime::Result<R>,
) -> Result<R, GateError> {
    let mut store = Store::new(engine, CallState::new(plugin));
    store.limiter(|s| &mut s.limits);
    let ticks = timeout.as_millis().div_ceil(TICK.as_millis()).max(1) as u64;
    store.set_epoch_deadline(ticks);
    store.epoch_deadline_trap();
    let gate = pre
        .instantiate(&mut store)
        .map_err(|e| classify(e, timeout, true))?;
    f(&gate, &mut store).map_err(|e| classify(e, timeout, false))
}

fn classify(err: wasmtime::Error, timeout: Duration, instantiating: bool) -> GateError {
    if let Some(trap) = err.downcast_ref::<Trap>() {
        match trap {
            Trap::Interrupt => {
                return GateError::Timeout {
                    limit_ms: timeout.as_millis() as u64,
                };
            }
            Trap::StackOverflow => return GateError::StackOverflow,
            _ => {}
        }
    }
    let detail = format!("{err:?}");
    if detail.contains("forcing trap when growing memory") {
        return GateError::OutOfMemory {
            limit_mib: super::CALL_MEMORY_LIMIT >> 20,
        };
    }
    if instantiating {
        GateError::Instantiate {
            detail: format!("{err:#}"),
        }
    } else {
        // `{:?}` carries the trap code and the wasm backtrace.
        GateError::Trap {
            detail: super::clip(detail),
        }
    }
}
