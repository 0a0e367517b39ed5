//! One call into a plugin: a fresh store holding only what was granted, a
//! wall-clock deadline, a fuel budget, one memory cap over all the plugin's
//! memories, and the translation of whatever went wrong into a [`GateError`].

use super::GateError;
use super::capabilities::attachments::Attachments;
use super::capabilities::{Grants, clock, files};
use super::world::{Answer, Api, Entry};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use wasmtime::component::{InstancePre, ResourceTable};
use wasmtime::{Engine, ResourceLimiter, Store, Trap, UpdateDeadline};
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
impl super::world::latest::gatehouse::plugin::types::Host for CallState {}

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

/// What the host may still buffer for one call (answers to HTTP requests,
/// say) before handing it to the plugin: the call's memory budget less what
/// the plugin's memories hold when the buffering starts. Shared by the
/// threads that fill it.
#[derive(Clone)]
pub struct HostBudget {
    left: Arc<std::sync::atomic::AtomicUsize>,
    limit: usize,
}

impl HostBudget {
    /// Takes `bytes` from the budget, or says it has not that much left.
    pub fn take(&self, bytes: usize) -> Result<(), super::capabilities::http::OverBudget> {
        use std::sync::atomic::Ordering;
        self.left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(bytes)
            })
            .map(drop)
            .map_err(|_| super::capabilities::http::OverBudget)
    }

    /// The trap that fails the call once the budget is spent.
    pub fn exhausted(&self) -> wasmtime::Error {
        wasmtime::Error::new(MemoryCapReached { limit: self.limit })
    }
}

impl CallState {
    /// A budget for what the host buffers from now on for this call.
    pub fn host_budget(&self) -> HostBudget {
        HostBudget {
            left: Arc::new(self.memory.limit.saturating_sub(self.memory.used).into()),
            limit: self.memory.limit,
        }
    }

    /// Fails the call unless `bytes` more fit in its memory budget now.
    pub fn fits(&self, bytes: usize) -> wasmtime::Result<()> {
        let budget = self.host_budget();
        budget.take(bytes).map_err(|_| budget.exhausted())
    }
}

/// What a call gave back, and what it cost.
pub struct Called<R> {
    pub value: R,
    pub fuel_used: u64,
    pub host_failure: Option<HostFailure>,
}

/// Advances the engine's epoch until the engine is dropped: deadlines and
/// time slices are counted in its ticks.
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

/// Idle contexts one plugin version keeps; more are dropped.
const IDLE_CONTEXTS: usize = 64;

/// The WASI contexts of one plugin version's finished calls, kept for its
/// next calls: building one seeds two random generators and boxes a dozen
/// parts, a tenth of a trivial call.
///
/// Reuse shares nothing between calls: a context holds only the grants
/// (clocks, no arguments, environment or stdio), random generators that just
/// go on, and WASI's insecure seed (for hash tables; it may stay the same),
/// while whatever a call opens (streams, files) lives in its store's
/// resource table, new for each call. Contexts with data
/// directories are never kept: each call opens its directories afresh, so a
/// directory replaced between calls is seen as it is now.
#[derive(Default)]
pub struct Contexts {
    idle: Mutex<Vec<WasiCtx>>,
}

impl Contexts {
    fn take(&self, grants: &Grants) -> Result<WasiCtx, GateError> {
        if let Some(wasi) = self.lock().pop() {
            return Ok(wasi);
        }
        let mut wasi = WasiCtxBuilder::new();
        // No arguments, environment, network or inherited stdio, ever;
        // clocks and data directories only when granted.
        clock::prepare(&mut wasi, grants.clock);
        files::prepare(&mut wasi, &grants.files).map_err(|detail| GateError::HostCall {
            capability: "files".into(),
            detail,
        })?;
        Ok(wasi.build())
    }

    fn give_back(&self, wasi: WasiCtx, grants: &Grants) {
        if grants.files.is_empty() {
            let mut idle = self.lock();
            if idle.len() < IDLE_CONTEXTS {
                idle.push(wasi);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<WasiCtx>> {
        // A context is whole whenever it is in the list: a panic elsewhere
        // while the lock was held leaves nothing half-done.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a call needs of one plugin version, cheap to clone into the task
/// that runs it.
#[derive(Clone)]
pub struct Callee {
    pub(super) name: Arc<str>,
    pub(super) pre: InstancePre<CallState>,
    pub(super) api: Arc<Api>,
    pub(super) grants: Arc<Grants>,
    pub(super) contexts: Arc<Contexts>,
}

/// Ticks wasm code runs before it yields to the other tasks of its thread.
const SLICE_TICKS: u64 = 5;

/// Instantiates the plugin in a fresh store and runs `entry` within
/// `limits`.
///
/// The whole call, instantiation included, is one future under
/// `tokio::time::timeout_at` of the call's deadline. Every host function is
/// async (see `world`), so a plugin blocked in one (a WASI `poll` on a
/// sleep, a stream, a file, an HTTP request) is a pending future that the
/// timeout drops when the deadline passes, whichever import it is in. Wasm
/// code itself yields every few epoch ticks, so the timeout is checked
/// while it runs too, and at the deadline the epoch callback traps it.
pub async fn call(
    engine: Engine,
    callee: Callee,
    limits: Limits,
    attachments: Arc<Attachments>,
    entry: Entry,
) -> Result<Called<Answer>, GateError> {
    let deadline = Instant::now() + limits.timeout;
    let state = CallState {
        wasi: callee.contexts.take(&callee.grants)?,
        table: ResourceTable::new(),
        memory: MemoryBudget {
            limit: limits.memory,
            used: 0,
        },
        plugin: callee.name.to_string(),
        log_lines: 0,
        grants: callee.grants.clone(),
        deadline,
        host_failure: None,
        attachments,
    };
    let mut store = Store::new(&engine, state);
    store.limiter(|s| &mut s.memory);
    let ticks = |left: Duration| (left.as_millis().div_ceil(TICK.as_millis()) as u64).max(1);
    store.set_epoch_deadline(ticks(limits.timeout).min(SLICE_TICKS));
    store.epoch_deadline_callback(move |ctx| {
        let left = ctx
            .data()
            .deadline
            .saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(UpdateDeadline::Interrupt);
        }
        Ok(UpdateDeadline::Yield(ticks(left).min(SLICE_TICKS)))
    });
    store
        .set_fuel(limits.fuel)
        .map_err(|e| GateError::Instantiate {
            detail: super::plugin_text(format!("{e:#}")),
        })?;
    let run = async {
        let instance = callee
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| (e, true))?;
        callee
            .api
            .run(&mut store, &instance, entry)
            .await
            .map_err(|e| (e, false))
    };
    let timeout = GateError::Timeout {
        limit_ms: limits.timeout.as_millis() as u64,
    };
    let timed = tokio::time::timeout_at(deadline.into(), run).await;
    let result = match timed {
        // Dropped where it waited: the store is not reused.
        Err(_) => return Err(timeout),
        Ok(Ok(value)) => Ok(value),
        Ok(Err((e, instantiating))) => {
            let failure = store.data_mut().host_failure.take();
            Err(classify(e, &limits, failure, instantiating))
        }
    };
    let fuel_used = limits.fuel - store.get_fuel().unwrap_or(0);
    let state = store.into_data();
    callee.contexts.give_back(state.wasi, &callee.grants);
    Ok(Called {
        value: result?,
        fuel_used,
        host_failure: state.host_failure,
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
            detail: super::plugin_text(format!("{err:#}")),
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
    super::plugin_text(detail)
}

#[cfg(test)]
mod tests {
    use crate::plugins::builtin::{HOSTILE_GATE_PATH, NOOP_GATE_PATH};
    use crate::plugins::manifest::Manifest;
    use crate::plugins::testing::{input, limits};
    use crate::plugins::{Plugin, Plugins};
    use std::path::Path;
    use std::sync::Arc;

    fn idle(plugin: &Plugin) -> usize {
        plugin.callee.contexts.lock().len()
    }

    fn hostile_gate(plugins: &Plugins, data: &Path) -> Arc<Plugin> {
        let manifest = Manifest::parse(&format!(
            "capabilities = [\"log\", \"clock\", \"files\", \"http\"]\n[[files]]\nhost = {:?}\nguest = \"/data\"\n[http]\nallow_hosts = [\"127.0.0.1:9\"]\n",
            data.display().to_string()
        ))
        .expect("manifest");
        let wasm = std::fs::read(HOSTILE_GATE_PATH).expect("hostile-gate.wasm");
        plugins
            .install("hostile-gate.wasm", &wasm, manifest)
            .expect("install")
    }

    #[test]
    fn a_plugin_without_directories_reuses_one_context_across_calls() {
        let plugins = Plugins::new().expect("engine");
        let wasm = std::fs::read(NOOP_GATE_PATH).expect("noop-gate.wasm");
        let noop = plugins
            .install("noop-gate.wasm", &wasm, Manifest::default())
            .expect("install");
        assert_eq!(idle(&noop), 0);
        for _ in 0..3 {
            let verdict = plugins
                .evaluate_blocking(&noop, &input(serde_json::json!({})), limits())
                .expect("verdict");
            assert_eq!(verdict.reason, "nothing to check");
            assert_eq!(idle(&noop), 1, "one call at a time needs one context");
        }
    }

    #[test]
    fn a_directory_replaced_between_calls_is_seen_as_it_is_now() {
        let root = tempfile::tempdir().expect("tempdir");
        let data = root.path().join("data");
        std::fs::create_dir(&data).expect("mkdir");
        std::fs::write(data.join("ok.txt"), "first dataset").expect("write");
        let plugins = Plugins::new().expect("engine");
        let gate = hostile_gate(&plugins, &data);
        let read = || serde_json::json!({"mode": "read_granted", "path": "/data/ok.txt"});
        let first = plugins
            .evaluate_blocking(&gate, &input(read()), limits())
            .expect("first read");
        assert_eq!(first.reason, "read 13 bytes from /data/ok.txt");

        // Swapped as a deployment tool would: the new directory renamed
        // over the old one's path.
        let next = root.path().join("next");
        std::fs::create_dir(&next).expect("mkdir");
        std::fs::write(next.join("ok.txt"), "second").expect("write");
        std::fs::rename(&data, root.path().join("old")).expect("move old");
        std::fs::rename(&next, &data).expect("move new");

        let second = plugins
            .evaluate_blocking(&gate, &input(read()), limits())
            .expect("second read");
        assert_eq!(second.reason, "read 6 bytes from /data/ok.txt");
        assert_eq!(idle(&gate), 0, "contexts with directories are not kept");
    }
}
