//! Plugins: WebAssembly components run by wasmtime, one fresh sandbox per
//! call.
//!
//! Rules: one [`Engine`] per daemon; each plugin version is compiled once
//! (and the compiled artefact cached by the [`registry`]) and kept as an
//! `InstancePre`; every call gets a new `Store` with a wall-clock deadline
//! (epoch interruption), a fuel budget, one memory cap and only the
//! capabilities both the plugin and its manifest name. Whatever a plugin does
//! wrong — trap, loop, allocate without end, answer nonsense — comes back as
//! a [`GateError`] that fails the gate closed; it never panics the daemon.
//! Activating a version swaps an `Arc`, so calls in flight finish on the
//! version they started with.

pub mod builtin;
pub mod capabilities;
pub mod compile_cache;
pub mod manifest;
pub mod params;
pub mod registry;
pub mod sandbox;
pub mod signing;
#[cfg(test)]
pub(crate) mod testing;
mod verdict;
pub mod watch;
pub mod world;

use crate::digest::Digest;
use crate::pipeline::release::{Measurement, Outcome};
use capabilities::Grants;
pub use capabilities::attachments::Attachments;
use compile_cache::CompileCache;
use manifest::Manifest;
use sandbox::{CallState, Callee, Limits};
use std::collections::BTreeMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use world::latest::gatehouse::plugin::types as wit;
use world::{Answer, Api, Entry};

/// Memory one call may use, over all of the plugin's memories.
pub const CALL_MEMORY_LIMIT: usize = 64 * 1024 * 1024;
/// Instructions one call may run unless the pipeline says otherwise: about a
/// second of work, far more than judging ten thousand cases needs.
pub const DEFAULT_FUEL: u64 = 2_000_000_000;
/// Memory of a pooled slot kept mapped between calls.
const RESIDENT_BYTES: usize = 2 * 1024 * 1024;
/// Instances that may be alive at once across all calls, and so the calls
/// that may run at once: one more waits for a slot.
const POOL_INSTANCES: u32 = 512;
/// Of those, the slots kept for adapters, so that a rollback or a traffic
/// change never waits behind gates, however many are busy.
const ADAPTER_SLOTS: u32 = 64;
const GATE_SLOTS: u32 = POOL_INSTANCES - ADAPTER_SLOTS;
const DESCRIBE_LIMITS: Limits = Limits {
    timeout: Duration::from_secs(2),
    fuel: 100_000_000,
    memory: CALL_MEMORY_LIMIT,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    Gate,
    Adapter,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Gate => "gate",
            PluginKind::Adapter => "adapter",
        }
    }
}

/// What a plugin says of itself through `describe()`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Description {
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    pub summary: String,
    pub params_schema: String,
    pub capabilities: Vec<String>,
}

/// One version of a plugin, compiled, checked and ready to call.
pub struct Plugin {
    pub digest: Digest,
    pub description: Description,
    pub manifest: Manifest,
    pub grants: Arc<Grants>,
    callee: Callee,
}

impl Plugin {
    /// The version of `gatehouse:plugin` it was built against.
    pub fn api_version(&self) -> &'static str {
        self.callee.api.version()
    }
}

/// A candidate as a plugin sees it.
#[derive(Debug, Clone)]
pub struct CandidateView {
    pub digest: Digest,
    pub bytes: Arc<Vec<u8>>,
    pub metadata: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct GateInput {
    pub candidate: CandidateView,
    pub incumbent: Option<CandidateView>,
    pub stage: String,
    pub params: serde_json::Value,
    /// Files attached to the candidate's and the incumbent's submissions.
    pub attachments: Arc<Attachments>,
}

/// A verdict that passed the host's checks, with what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub score: f64,
    pub measurements: Vec<Measurement>,
    pub reason: String,
    /// Instructions the call used, as wasmtime's fuel counts them.
    pub fuel_used: u64,
}

/// What an adapter read back from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveState {
    pub active: Option<String>,
    pub canary: Option<String>,
    pub canary_weight_percent: u8,
    pub detail: String,
}

/// Why a plugin call produced no answer. Each fails the gate (or the
/// adapter's step) closed, with this text as the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GateError {
    #[error(
        "is not installed; push it with `gatehouse plugin push` or remove it from the pipeline"
    )]
    NotInstalled { plugin: String },
    #[error("is an adapter, not a gate; use a gate plugin here")]
    WrongKind { plugin: String },
    #[error("is a gate, not an adapter; name an adapter plugin as the environment's adapter")]
    NotAnAdapter { plugin: String },
    #[error(
        "timed out after {limit_ms} ms; raise `timeout_ms` in the pipeline or make the plugin faster"
    )]
    Timeout { limit_ms: u64 },
    #[error(
        "ran out of fuel after {budget} instructions; raise `fuel` in the pipeline or make the plugin do less"
    )]
    FuelExhausted { budget: u64 },
    #[error(
        "ran out of memory (limit {limit_mib} MiB over all its memories); the plugin allocates too much"
    )]
    OutOfMemory { limit_mib: usize },
    #[error("overflowed its stack; the plugin recurses too deeply")]
    StackOverflow,
    #[error("trapped: {detail}")]
    Trap { detail: String },
    #[error("host call `{capability}` failed: {detail}")]
    HostCall { capability: String, detail: String },
    #[error("could not judge: {message}")]
    PluginError { message: String },
    #[error("failed: {message}")]
    AdapterFailed { message: String },
    #[error("returned a malformed verdict: {problem}")]
    MalformedVerdict { problem: String },
    #[error("returned a malformed answer: {problem}")]
    MalformedAnswer { problem: String },
    #[error("could not be started: {detail}")]
    Instantiate { detail: String },
    #[error(
        "could not start: all {slots} {} call slots are busy; retry once the calls in flight finish",
        kind.as_str()
    )]
    Busy { kind: PluginKind, slots: u32 },
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{source_name}: not a loadable plugin component: {detail}; build it for wasm32-wasip2 against gatehouse-plugin-sdk"
    )]
    Compile { source_name: String, detail: String },
    #[error("{source_name}: not a Gatehouse plugin: {detail}")]
    WrongWorld { source_name: String, detail: String },
    #[error("{source_name}: describe() failed: {reason}")]
    Describe {
        source_name: String,
        reason: GateError,
    },
    #[error("{source_name}: {detail}")]
    Refused { source_name: String, detail: String },
    #[error(
        "{source_name}: the host could not prepare its memory image ({detail}); the plugin is fine, retry"
    )]
    Image { source_name: String, detail: String },
    #[error("the WebAssembly engine could not be set up: {0}")]
    Engine(String),
}

/// The daemon's plugin host: the engine, and the active version of each
/// plugin by name.
pub struct Plugins {
    engine: Engine,
    linker: Linker<CallState>,
    active: RwLock<BTreeMap<String, Arc<Plugin>>>,
    cache: Option<CompileCache>,
    /// Where calls run: threads of their own, so that plugins busy to their
    /// deadline never hold up the daemon's API or store work.
    runtime: Option<tokio::runtime::Runtime>,
    /// One permit per pooled instance, split by plugin kind: the gate calls
    /// and the adapter calls that may run at once.
    gate_slots: Arc<Semaphore>,
    adapter_slots: Arc<Semaphore>,
}

tokio::task_local! {
    /// Set while [`Plugins::block_on`] drives a future on the plugin runtime.
    static ON_PLUGIN_THREADS: bool;
}

/// Whether a call waits for a free slot (in order of arrival) or is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    InOrder,
    No,
}

/// Builds a component's copy-on-write memory images now, as it loads, rather
/// than at its first call. On Linux an image is a sealed memfd, and sealing
/// fails (EBUSY) while the kernel still holds a reference to the pages just
/// written, which a busy host shows for moments. Such a failure is retried
/// here for about a second, so it never fails a call, and so a gate closed.
fn prepare_images(source_name: &str, component: Component) -> Result<Component, Error> {
    let mut pause = Duration::from_millis(10);
    let mut attempts = 1;
    loop {
        match component.initialize_copy_on_write_image() {
            Ok(()) => return Ok(component),
            Err(e) if attempts < 8 => {
                tracing::debug!(
                    plugin = source_name,
                    "memory image not ready ({e:#}); retrying"
                );
                std::thread::sleep(pause);
                pause *= 2;
                attempts += 1;
            }
            Err(e) => {
                return Err(Error::Image {
                    source_name: source_name.to_string(),
                    detail: format!("{e:#}"),
                });
            }
        }
    }
}

impl Drop for Plugins {
    fn drop(&mut self) {
        // Calls still running end at their deadlines on their own threads;
        // this may be dropped inside the daemon's runtime, where waiting is
        // not allowed.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Plugins {
    /// A plugin host that compiles every component it is given.
    pub fn new() -> Result<Plugins, Error> {
        Plugins::with_compile_cache(None)
    }

    /// A plugin host that keeps what it compiles in `cache` (see
    /// [`compile_cache`]) and loads it from there next time.
    pub fn with_compile_cache(cache: Option<PathBuf>) -> Result<Plugins, Error> {
        let engine_error = |e: wasmtime::Error| Error::Engine(format!("{e:#}"));
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.consume_fuel(true);
        config.max_wasm_stack(512 * 1024);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(POOL_INSTANCES)
            .total_stacks(POOL_INSTANCES)
            .total_core_instances(POOL_INSTANCES * 4)
            .total_memories(POOL_INSTANCES * 2)
            .total_tables(POOL_INSTANCES * 4)
            .max_memory_size(CALL_MEMORY_LIMIT)
            // Reset the low pages a call dirties (stack, data) by memset
            // rather than handing them back to the kernel: the next call on
            // the slot then takes no page faults there.
            .linear_memory_keep_resident(RESIDENT_BYTES)
            .table_keep_resident(RESIDENT_BYTES)
            // Where the kernel can say which pages a call dirtied (Linux
            // 6.7+), reset only those instead of the whole resident range:
            // a trivial call costs about a third.
            .pagemap_scan(wasmtime::Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(engine_error)?;
        sandbox::start_epoch_ticker(&engine);

        let mut linker = Linker::new(&engine);
        world::add_to_linker(&mut linker).map_err(engine_error)?;
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("gatehouse-plugin")
            .enable_all()
            .build()
            .map_err(|e| Error::Engine(format!("cannot start the plugin threads: {e}")))?;
        Ok(Plugins {
            engine,
            linker,
            active: RwLock::new(BTreeMap::new()),
            cache: cache.map(CompileCache::new),
            runtime: Some(runtime),
            gate_slots: Arc::new(Semaphore::new(GATE_SLOTS as usize)),
            adapter_slots: Arc::new(Semaphore::new(ADAPTER_SLOTS as usize)),
        })
    }

    /// Gate calls that could start now without waiting.
    pub fn free_gate_slots(&self) -> usize {
        self.gate_slots.available_permits()
    }

    /// Runs one call on the plugin threads, once a slot of the plugin's
    /// kind is free.
    async fn call(
        &self,
        callee: &Callee,
        limits: Limits,
        attachments: Arc<Attachments>,
        entry: Entry,
        wait: Wait,
    ) -> Result<sandbox::Called<Answer>, GateError> {
        let (slots, total) = match callee.api.kind() {
            PluginKind::Gate => (&self.gate_slots, GATE_SLOTS),
            PluginKind::Adapter => (&self.adapter_slots, ADAPTER_SLOTS),
        };
        let busy = GateError::Busy {
            kind: callee.api.kind(),
            slots: total,
        };
        let permit = match wait {
            Wait::InOrder => slots.clone().acquire_owned().await.ok(),
            Wait::No => slots.clone().try_acquire_owned().ok(),
        }
        .ok_or(busy)?;
        let call = sandbox::call(
            self.engine.clone(),
            callee.clone(),
            limits,
            attachments,
            entry,
        );
        // The slot is held until the call ends.
        let call = async move {
            let called = call.await;
            drop(permit);
            called
        };
        if ON_PLUGIN_THREADS.try_with(|on| *on).unwrap_or(false) {
            // Already driven by the plugin runtime ([`Plugins::block_on`]):
            // a hop to another of its threads would only add a wake-up.
            return call.await;
        }
        let task = self.runtime().spawn(call);
        task.await.unwrap_or_else(|e| {
            Err(GateError::Trap {
                detail: format!("the call did not complete: {e}"),
            })
        })
    }

    /// Runs `f` to completion on the calling thread, for callers outside
    /// any async runtime: the CLI, tests and benchmarks.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime().block_on(ON_PLUGIN_THREADS.scope(true, f))
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime
            .as_ref()
            .expect("the plugin runtime lives as long as its `Plugins`")
    }

    /// Whether [`Plugins::compile`] would have to run Cranelift for `wasm`,
    /// rather than load what the compile cache keeps.
    pub fn needs_compiling(&self, wasm: &[u8]) -> bool {
        self.cache
            .as_ref()
            .is_none_or(|c| !c.has(&self.engine_key(), &Digest::of(wasm)))
    }

    /// Compiles a component, or loads it from the compile cache. Blocking:
    /// tens of milliseconds to seconds when it compiles.
    pub fn compile(&self, source_name: &str, wasm: &[u8]) -> Result<Component, Error> {
        let key = self
            .cache
            .as_ref()
            .map(|c| (c, self.engine_key(), Digest::of(wasm)));
        if let Some((cache, engine, digest)) = &key
            && let Some(artefact) = cache.get(engine, digest)
        {
            // SAFETY: the entry is what `precompiled` made on an engine with
            // this compatibility key (it is in the entry's path), its sha256
            // checked out just now, and wasmtime checks its header and the
            // engine's settings before using it. The cache directory is trusted
            // as the data directory is (see `compile_cache`).
            match unsafe { Component::deserialize(&self.engine, &artefact) } {
                Ok(component) => return prepare_images(source_name, component),
                Err(e) => tracing::warn!(
                    plugin = source_name,
                    "compile cache entry does not load ({e:#}); compiling again"
                ),
            }
        }
        let component = Component::new(&self.engine, wasm).map_err(|e| Error::Compile {
            source_name: source_name.to_string(),
            detail: format!("{e:#}"),
        })?;
        if let Some((cache, engine, digest)) = &key
            && let Some(artefact) = self.precompiled(&component)
        {
            cache.put(engine, digest, &artefact);
        }
        prepare_images(source_name, component)
    }

    /// The compiled artefact of `component`, to cache.
    pub fn precompiled(&self, component: &Component) -> Option<Vec<u8>> {
        component.serialize().ok()
    }

    /// Loads a file holding what [`Plugins::precompiled`] made, by mapping it:
    /// nothing is copied, and only the pages a call touches are read.
    ///
    /// # Safety
    /// wasmtime runs the machine code in the file as it is, and reads it
    /// through the mapping for as long as the component lives: the file must
    /// be the unaltered output of `precompiled` on an engine of this build,
    /// and must not be changed in place while mapped (replacing it by a
    /// rename is fine). A file of another engine or that is no artefact at
    /// all is detected and reported as an error, not run.
    pub unsafe fn load_precompiled_file(&self, path: &Path) -> Result<Component, Error> {
        let source_name = path.display().to_string();
        // SAFETY: upheld by the caller, see above.
        let component =
            unsafe { Component::deserialize_file(&self.engine, path) }.map_err(|e| {
                Error::Compile {
                    source_name: source_name.clone(),
                    detail: format!("{e:#}"),
                }
            })?;
        prepare_images(&source_name, component)
    }

    /// Names this engine's build and settings: compiled artefacts are only
    /// valid for the engine that made them.
    pub fn engine_key(&self) -> [u8; 8] {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        hasher.finish().to_be_bytes()
    }

    /// What a compiled component says of itself through `describe()`,
    /// before any grant is decided. Blocking.
    pub fn describe(&self, source_name: &str, component: &Component) -> Result<Description, Error> {
        let callee = self.callee(source_name, component, Arc::new(Grants::none()))?;
        self.block_on(self.describe_callee(&callee, source_name))
    }

    /// Checks a compiled component as a plugin: it exports a world this host
    /// serves, `describe()` answers (unless `described` already holds its
    /// answer, e.g. from the registry), what it asks for is granted, and it
    /// imports nothing it was not given. Blocking.
    pub fn prepare(
        &self,
        source_name: &str,
        digest: Digest,
        component: &Component,
        manifest: Manifest,
        described: Option<Description>,
    ) -> Result<Plugin, Error> {
        let unprivileged = self.callee(source_name, component, Arc::new(Grants::none()))?;
        let description = match described {
            Some(d) => d,
            None => self.block_on(self.describe_callee(&unprivileged, source_name))?,
        };
        let api = &unprivileged.api;
        let refused = |detail: String| Error::Refused {
            source_name: source_name.to_string(),
            detail,
        };
        if description.kind != api.kind() {
            return Err(refused(format!(
                "describe() says it is {:?} but it exports the {} world",
                description.kind.as_str(),
                api.kind().as_str()
            )));
        }
        if description.name.is_empty()
            || description.name.len() > 64
            || !description
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(refused(format!(
                "describe() names it {:?}; a plugin name is 1 to 64 letters, digits, '-' or '_'",
                description.name
            )));
        }
        let grants = manifest
            .grants_for(&description.capabilities)
            .map_err(&refused)?;
        capabilities::check_imports(&world::import_names(component), &grants).map_err(&refused)?;
        let grants = Arc::new(grants);
        Ok(Plugin {
            digest,
            callee: Callee {
                name: description.name.as_str().into(),
                grants: grants.clone(),
                contexts: Arc::default(),
                ..unprivileged
            },
            description,
            manifest,
            grants,
        })
    }

    /// `component` ready to call with `grants`.
    fn callee(
        &self,
        source_name: &str,
        component: &Component,
        grants: Arc<Grants>,
    ) -> Result<Callee, Error> {
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| Error::WrongWorld {
                source_name: source_name.to_string(),
                detail: format!("it imports what this host does not provide: {e:#}"),
            })?;
        let api = Api::detect(&pre).map_err(|detail| Error::WrongWorld {
            source_name: source_name.to_string(),
            detail,
        })?;
        Ok(Callee {
            name: source_name.into(),
            pre,
            api: Arc::new(api),
            grants,
            contexts: Arc::default(),
        })
    }

    /// Asks `callee` who it is, with no grants and a fixed budget. Refused
    /// rather than queued when every slot is busy: it runs for a push,
    /// whose client is waiting.
    async fn describe_callee(
        &self,
        callee: &Callee,
        source_name: &str,
    ) -> Result<Description, Error> {
        let failed = |reason| Error::Describe {
            source_name: source_name.to_string(),
            reason,
        };
        let called = self
            .call(
                callee,
                DESCRIBE_LIMITS,
                Arc::default(),
                Entry::Describe,
                Wait::No,
            )
            .await
            .map_err(|reason| match reason {
                GateError::Timeout { limit_ms } => Error::Refused {
                    source_name: source_name.to_string(),
                    detail: format!(
                        "describe() did not answer within {limit_ms} ms; it must return its description at once, waiting on nothing"
                    ),
                },
                reason => failed(reason),
            })?;
        match called.value {
            Answer::Described(d) => Description::checked(d).map_err(|detail| Error::Refused {
                source_name: source_name.to_string(),
                detail,
            }),
            _ => Err(failed(answered_otherwise())),
        }
    }

    /// Compiles, checks and activates `wasm` under `manifest`: the short way
    /// for embedded plugins, tests and benchmarks. Blocking.
    pub fn install(
        &self,
        source_name: &str,
        wasm: &[u8],
        manifest: Manifest,
    ) -> Result<Arc<Plugin>, Error> {
        let component = self.compile(source_name, wasm)?;
        let plugin =
            Arc::new(self.prepare(source_name, Digest::of(wasm), &component, manifest, None)?);
        self.activate(plugin.clone());
        Ok(plugin)
    }

    /// Makes `plugin` the version calls by its name get from now on; calls in
    /// flight keep the version they hold. Returns the version it replaced.
    pub fn activate(&self, plugin: Arc<Plugin>) -> Option<Arc<Plugin>> {
        tracing::info!(
            plugin = %plugin.description.name,
            version = %plugin.description.version,
            plugin_digest = %plugin.digest.short(),
            "plugin version active"
        );
        self.write().insert(plugin.description.name.clone(), plugin)
    }

    /// The active version of the plugin called `name`.
    pub fn active(&self, name: &str) -> Option<Arc<Plugin>> {
        self.read().get(name).cloned()
    }

    /// The active version of gate `name`, or why there is none.
    pub fn gate(&self, name: &str) -> Result<Arc<Plugin>, GateError> {
        match self.active(name) {
            Some(p) if p.description.kind == PluginKind::Gate => Ok(p),
            Some(_) => Err(GateError::WrongKind {
                plugin: name.to_string(),
            }),
            None => Err(GateError::NotInstalled {
                plugin: name.to_string(),
            }),
        }
    }

    /// The active version of adapter `name`, or why there is none.
    pub fn adapter(&self, name: &str) -> Result<Arc<Plugin>, GateError> {
        match self.active(name) {
            Some(p) if p.description.kind == PluginKind::Adapter => Ok(p),
            Some(_) => Err(GateError::NotAnAdapter {
                plugin: name.to_string(),
            }),
            None => Err(GateError::NotInstalled {
                plugin: name.to_string(),
            }),
        }
    }

    /// Every active plugin, by name.
    pub fn all_active(&self) -> Vec<Arc<Plugin>> {
        self.read().values().cloned().collect()
    }

    /// Runs one evaluation in a fresh sandbox, on the plugin threads, once
    /// a slot is free; it ends by the deadline in `limits` whatever the
    /// plugin does.
    pub async fn evaluate(
        &self,
        plugin: &Plugin,
        input: &GateInput,
        limits: Limits,
    ) -> Result<Verdict, GateError> {
        if plugin.callee.api.kind() != PluginKind::Gate {
            return Err(GateError::WrongKind {
                plugin: plugin.description.name.clone(),
            });
        }
        let request = wit::GateRequest {
            candidate: to_wit(&input.candidate),
            incumbent: input.incumbent.as_ref().map(to_wit),
            stage: input.stage.clone(),
            params: input.params.to_string(),
        };
        let called = self
            .call(
                &plugin.callee,
                limits,
                input.attachments.clone(),
                Entry::Evaluate(request),
                Wait::InOrder,
            )
            .await?;
        match called.value {
            Answer::Judged(Ok(v)) => verdict::check(v, called.fuel_used),
            Answer::Judged(Err(message)) => Err(plugin_gave_up(message, called.host_failure)),
            _ => Err(answered_otherwise()),
        }
    }

    /// [`Plugins::evaluate`] for callers outside an async runtime.
    pub fn evaluate_blocking(
        &self,
        plugin: &Plugin,
        input: &GateInput,
        limits: Limits,
    ) -> Result<Verdict, GateError> {
        self.block_on(self.evaluate(plugin, input, limits))
    }

    /// Runs one adapter function in a fresh sandbox, as
    /// [`Plugins::evaluate`] runs a gate.
    pub async fn adapt(
        &self,
        plugin: &Plugin,
        call: AdapterCall,
        limits: Limits,
    ) -> Result<Option<LiveState>, GateError> {
        use world::latest::gatehouse::plugin::types::Target;
        if plugin.callee.api.kind() != PluginKind::Adapter {
            return Err(GateError::NotAnAdapter {
                plugin: plugin.description.name.clone(),
            });
        }
        let target = |environment: String, params: serde_json::Value| Target {
            environment,
            params: params.to_string(),
        };
        let entry = match call {
            AdapterCall::Apply {
                environment,
                params,
                candidate,
            } => Entry::Apply(target(environment, params), to_wit(&candidate)),
            AdapterCall::Current {
                environment,
                params,
            } => Entry::Current(target(environment, params)),
            AdapterCall::SetTraffic {
                environment,
                params,
                canary,
                weight_percent,
            } => Entry::SetTraffic(target(environment, params), to_wit(&canary), weight_percent),
            AdapterCall::Rollback {
                environment,
                params,
                restore,
            } => Entry::Rollback(target(environment, params), restore.as_ref().map(to_wit)),
        };
        let called = self
            .call(&plugin.callee, limits, Arc::default(), entry, Wait::InOrder)
            .await?;
        let adapter_failed = |message| match plugin_gave_up(message, called.host_failure.clone()) {
            GateError::PluginError { message } => GateError::AdapterFailed { message },
            other => other,
        };
        match called.value {
            Answer::Adapted(Ok(None)) => Ok(None),
            Answer::Adapted(Ok(Some(state))) => LiveState::checked(state)
                .map(Some)
                .map_err(|problem| GateError::MalformedAnswer { problem }),
            Answer::Adapted(Err(message)) => Err(adapter_failed(message)),
            _ => Err(answered_otherwise()),
        }
    }

    /// [`Plugins::adapt`] for callers outside an async runtime.
    pub fn adapt_blocking(
        &self,
        plugin: &Plugin,
        call: AdapterCall,
        limits: Limits,
    ) -> Result<Option<LiveState>, GateError> {
        self.block_on(self.adapt(plugin, call, limits))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Plugin>>> {
        self.active.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Plugin>>> {
        self.active.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// One call of the adapter world.
#[derive(Debug, Clone)]
pub enum AdapterCall {
    Apply {
        environment: String,
        params: serde_json::Value,
        candidate: CandidateView,
    },
    Current {
        environment: String,
        params: serde_json::Value,
    },
    SetTraffic {
        environment: String,
        params: serde_json::Value,
        canary: CandidateView,
        weight_percent: u8,
    },
    Rollback {
        environment: String,
        params: serde_json::Value,
        restore: Option<CandidateView>,
    },
}

impl AdapterCall {
    /// The adapter function called, as the WIT names it.
    pub fn name(&self) -> &'static str {
        match self {
            AdapterCall::Apply { .. } => "apply",
            AdapterCall::Current { .. } => "current",
            AdapterCall::SetTraffic { .. } => "set-traffic",
            AdapterCall::Rollback { .. } => "rollback",
        }
    }

    /// The environment the call acts on.
    pub fn environment(&self) -> &str {
        match self {
            AdapterCall::Apply { environment, .. }
            | AdapterCall::Current { environment, .. }
            | AdapterCall::SetTraffic { environment, .. }
            | AdapterCall::Rollback { environment, .. } => environment,
        }
    }
}

/// A plugin returned `err`: if a host call failed first, that is the reason.
fn plugin_gave_up(message: String, host_failure: Option<sandbox::HostFailure>) -> GateError {
    match host_failure {
        Some(f) => GateError::HostCall {
            capability: f.capability.into(),
            detail: plugin_text(format!("{}; the plugin said: {message}", f.detail)),
        },
        None => GateError::PluginError {
            message: plugin_text(message),
        },
    }
}

/// A plugin answered a call other than the one made: the host's bindings
/// are at fault, never the plugin, but it fails closed all the same.
fn answered_otherwise() -> GateError {
    GateError::MalformedAnswer {
        problem: "the plugin answered a different call".into(),
    }
}

fn to_wit(c: &CandidateView) -> wit::Candidate {
    wit::Candidate {
        digest: c.digest.hex(),
        bytes: c.bytes.to_vec(),
        metadata: c.metadata.clone(),
    }
}

/// Limits on what `describe()` may say, checked before the host keeps any
/// of it (see the WIT's `description`).
pub const MAX_NAME_BYTES: usize = 64;
pub const MAX_VERSION_BYTES: usize = 64;
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;
pub const MAX_CAPABILITIES: usize = 16;

impl Description {
    /// What a plugin's `describe()` said, within the limits: a summary over
    /// [`MAX_TEXT_BYTES`] is clipped, anything else out of bounds refused.
    fn checked(d: wit::Description) -> Result<Description, String> {
        let over = |what: &str, len: usize, max: usize| {
            format!("describe() gives a {what} of {len} bytes; at most {max} are allowed")
        };
        if d.name.len() > MAX_NAME_BYTES {
            return Err(over("name", d.name.len(), MAX_NAME_BYTES));
        }
        if d.version.len() > MAX_VERSION_BYTES {
            return Err(over("version", d.version.len(), MAX_VERSION_BYTES));
        }
        if d.params_schema.len() > MAX_SCHEMA_BYTES {
            return Err(over(
                "params schema",
                d.params_schema.len(),
                MAX_SCHEMA_BYTES,
            ));
        }
        if d.name
            .chars()
            .chain(d.version.chars())
            .any(char::is_control)
        {
            return Err(format!(
                "describe() gives a name or version with control characters ({:?} {:?})",
                clip_to(d.name, MAX_NAME_BYTES),
                clip_to(d.version, MAX_VERSION_BYTES)
            ));
        }
        if d.capabilities.len() > MAX_CAPABILITIES
            || d.capabilities.iter().any(|c| c.len() > MAX_NAME_BYTES)
        {
            return Err(format!(
                "describe() asks for {} capabilities; at most {MAX_CAPABILITIES} known names are allowed",
                d.capabilities.len()
            ));
        }
        Ok(Description {
            name: d.name,
            version: d.version,
            kind: match d.kind {
                wit::PluginKind::Gate => PluginKind::Gate,
                wit::PluginKind::Adapter => PluginKind::Adapter,
            },
            summary: plugin_text(d.summary),
            params_schema: d.params_schema,
            capabilities: d.capabilities,
        })
    }
}

impl LiveState {
    /// What an adapter's `current()` read back, within the limits: each
    /// digest is a digest, the detail is clipped.
    fn checked(s: wit::LiveState) -> Result<LiveState, String> {
        let digest = |arm: &str, d: Option<String>| -> Result<Option<String>, String> {
            let Some(d) = d else { return Ok(None) };
            let bare = d.trim();
            let bare = bare.strip_prefix("sha256:").unwrap_or(bare);
            match bare.parse::<Digest>() {
                Ok(parsed) => Ok(Some(parsed.hex())),
                Err(_) => Err(format!(
                    "current() gives as the {arm} digest {:?} ({} bytes), not 64 hex characters",
                    clip_to(escape_controls(&d), 80),
                    d.len()
                )),
            }
        };
        Ok(LiveState {
            active: digest("active", s.active)?,
            canary: digest("canary", s.canary)?,
            canary_weight_percent: s.canary_weight_percent.min(100),
            detail: plugin_text(s.detail),
        })
    }
}

/// Limit on any text a plugin hands the host for the record.
const MAX_TEXT_BYTES: usize = 4096;

/// Text a plugin supplies, as the host keeps and shows it: at most
/// [`MAX_TEXT_BYTES`], with control characters escaped. Every reason,
/// message, summary and detail from a plugin passes through here.
fn plugin_text(s: String) -> String {
    clip_to(escape_controls(&clip_to(s, MAX_TEXT_BYTES)), MAX_TEXT_BYTES)
}

/// `s` with every control character written as an escape (`\n`, `\u{1b}`),
/// so text a plugin supplies stays on its own line of the daemon's log and
/// of a terminal, and cannot forge a line or move the cursor.
pub fn escape_controls(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().collect()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Truncates `s` to at most `max` bytes on a character boundary, marking the cut.
pub fn clip_to(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod escape_tests {
    use super::escape_controls;

    #[test]
    fn control_characters_are_escaped_and_other_text_is_kept() {
        assert_eq!(
            escape_controls(
                "ok\n2026-12-02T05:00:00Z INFO gatehouse::pipeline: release 1 approved"
            ),
            "ok\\n2026-12-02T05:00:00Z INFO gatehouse::pipeline: release 1 approved"
        );
        assert_eq!(
            escape_controls("\u{1b}[2Jcleared\r"),
            "\\u{1b}[2Jcleared\\r"
        );
        assert_eq!(
            escape_controls("naïve café — 東京 😀"),
            "naïve café — 東京 😀"
        );
    }
}
