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
use sandbox::{CallState, Limits};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use world::Api;
use world::v0_1::gatehouse::plugin::types as wit;

/// Memory one call may use, over all of the plugin's memories.
pub const CALL_MEMORY_LIMIT: usize = 64 * 1024 * 1024;
/// Instructions one call may run unless the pipeline says otherwise: about a
/// second of work, far more than judging ten thousand cases needs.
pub const DEFAULT_FUEL: u64 = 2_000_000_000;
/// Memory of a pooled slot kept mapped between calls.
const RESIDENT_BYTES: usize = 2 * 1024 * 1024;
/// Instances that may be alive at once across all calls.
const POOL_INSTANCES: u32 = 512;
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
    pre: InstancePre<CallState>,
    api: Api,
    contexts: sandbox::Contexts,
}

impl Plugin {
    /// The version of `gatehouse:plugin` it was built against.
    pub fn api_version(&self) -> &'static str {
        self.api.version()
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
    #[error("could not be started: {detail}")]
    Instantiate { detail: String },
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
        Ok(Plugins {
            engine,
            linker,
            active: RwLock::new(BTreeMap::new()),
            cache: cache.map(CompileCache::new),
        })
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
                Ok(component) => return Ok(component),
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
        Ok(component)
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
    pub unsafe fn load_precompiled_file(&self, path: &Path) -> wasmtime::Result<Component> {
        // SAFETY: upheld by the caller, see above.
        unsafe { Component::deserialize_file(&self.engine, path) }
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
        let (pre, api) = self.pre(source_name, component)?;
        describe(&self.engine, &pre, &api, source_name)
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
        let (pre, api) = self.pre(source_name, component)?;
        let description = match described {
            Some(d) => d,
            None => describe(&self.engine, &pre, &api, source_name)?,
        };
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
        Ok(Plugin {
            digest,
            description,
            manifest,
            grants: Arc::new(grants),
            pre,
            api,
            contexts: sandbox::Contexts::default(),
        })
    }

    fn pre(
        &self,
        source_name: &str,
        component: &Component,
    ) -> Result<(InstancePre<CallState>, Api), Error> {
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
        Ok((pre, api))
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

    /// Runs one evaluation in a fresh sandbox. Blocking: call it from
    /// `spawn_blocking`.
    pub fn evaluate(
        &self,
        plugin: &Plugin,
        input: &GateInput,
        limits: Limits,
    ) -> Result<Verdict, GateError> {
        let Api::GateV0_1(gate) = &plugin.api else {
            return Err(GateError::WrongKind {
                plugin: plugin.description.name.clone(),
            });
        };
        let request = wit::GateRequest {
            candidate: to_wit(&input.candidate),
            incumbent: input.incumbent.as_ref().map(to_wit),
            stage: input.stage.clone(),
            params: input.params.to_string(),
        };
        let called = sandbox::call(
            &self.engine,
            &plugin.pre,
            &plugin.description.name,
            &plugin.grants,
            &plugin.contexts,
            limits,
            |store, instance| {
                store.data_mut().attachments = input.attachments.clone();
                // SAFETY: `sandbox::call` instantiates `plugin.pre`, the
                // `InstancePre` `plugin.api` was made from.
                unsafe { gate.evaluate(store, instance, &request) }
            },
        )?;
        match called.value {
            Ok(v) => verdict::check(v, called.fuel_used),
            Err(message) => Err(plugin_gave_up(message, called.host_failure)),
        }
    }

    /// Runs one adapter function in a fresh sandbox. Blocking.
    pub fn adapt(
        &self,
        plugin: &Plugin,
        call: AdapterCall,
        limits: Limits,
    ) -> Result<Option<LiveState>, GateError> {
        use world::v0_1::gatehouse::plugin::types::Target;
        let Api::AdapterV0_1(indices) = &plugin.api else {
            return Err(GateError::WrongKind {
                plugin: plugin.description.name.clone(),
            });
        };
        let target = |environment: &str, params: &serde_json::Value| Target {
            environment: environment.to_string(),
            params: params.to_string(),
        };
        let called = sandbox::call(
            &self.engine,
            &plugin.pre,
            &plugin.description.name,
            &plugin.grants,
            &plugin.contexts,
            limits,
            |store, instance| {
                let api = indices.load(&mut *store, instance)?;
                Ok(match &call {
                    AdapterCall::Apply {
                        environment,
                        params,
                        candidate,
                    } => api
                        .call_apply(store, &target(environment, params), &to_wit(candidate))?
                        .map(|()| None),
                    AdapterCall::Current {
                        environment,
                        params,
                    } => api
                        .call_current(store, &target(environment, params))?
                        .map(|s| Some(LiveState::from(s))),
                    AdapterCall::SetTraffic {
                        environment,
                        params,
                        canary,
                        weight_percent,
                    } => api
                        .call_set_traffic(
                            store,
                            &target(environment, params),
                            &to_wit(canary),
                            *weight_percent,
                        )?
                        .map(|()| None),
                    AdapterCall::Rollback {
                        environment,
                        params,
                        restore,
                    } => api
                        .call_rollback(
                            store,
                            &target(environment, params),
                            restore.as_ref().map(to_wit).as_ref(),
                        )?
                        .map(|()| None),
                })
            },
        )?;
        called.value.map_err(
            |message| match plugin_gave_up(message, called.host_failure) {
                GateError::PluginError { message } => GateError::AdapterFailed { message },
                other => other,
            },
        )
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

/// A plugin returned `err`: if a host call failed first, that is the reason.
fn plugin_gave_up(message: String, host_failure: Option<sandbox::HostFailure>) -> GateError {
    match host_failure {
        Some(f) => GateError::HostCall {
            capability: f.capability.into(),
            detail: clip(format!("{}; the plugin said: {message}", f.detail)),
        },
        None => GateError::PluginError {
            message: clip(message),
        },
    }
}

fn describe(
    engine: &Engine,
    pre: &InstancePre<CallState>,
    api: &Api,
    source_name: &str,
) -> Result<Description, Error> {
    let none = Arc::new(Grants::none());
    let call = |f: &dyn Fn(
        &mut wasmtime::Store<CallState>,
        &wasmtime::component::Instance,
    ) -> wasmtime::Result<wit::Description>| {
        let contexts = sandbox::Contexts::default();
        sandbox::call(
            engine,
            pre,
            source_name,
            &none,
            &contexts,
            DESCRIBE_LIMITS,
            f,
        )
    };
    let described = match api {
        Api::GateV0_1(gate) => call(&|store, instance| {
            gate.indices
                .load(&mut *store, instance)?
                .call_describe(store)
        }),
        Api::AdapterV0_1(indices) => {
            call(&|store, instance| indices.load(&mut *store, instance)?.call_describe(store))
        }
    };
    described
        .map(|c| Description::from(c.value))
        .map_err(|reason| Error::Describe {
            source_name: source_name.to_string(),
            reason,
        })
}

fn to_wit(c: &CandidateView) -> wit::Candidate {
    wit::Candidate {
        digest: c.digest.hex(),
        bytes: c.bytes.to_vec(),
        metadata: c.metadata.clone(),
    }
}

impl From<wit::Description> for Description {
    fn from(d: wit::Description) -> Self {
        Description {
            name: d.name,
            version: d.version,
            kind: match d.kind {
                wit::PluginKind::Gate => PluginKind::Gate,
                wit::PluginKind::Adapter => PluginKind::Adapter,
            },
            summary: clip(d.summary),
            params_schema: d.params_schema,
            capabilities: d.capabilities,
        }
    }
}

impl From<wit::LiveState> for LiveState {
    fn from(s: wit::LiveState) -> Self {
        LiveState {
            active: s.active,
            canary: s.canary,
            canary_weight_percent: s.canary_weight_percent.min(100),
            detail: clip(s.detail),
        }
    }
}

/// Limit on any text a plugin hands the host for the record.
const MAX_TEXT_BYTES: usize = 4096;

fn clip(s: String) -> String {
    clip_to(s, MAX_TEXT_BYTES)
}

/// Truncates `s` to at most `max` bytes on a character boundary, marking the cut.
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
