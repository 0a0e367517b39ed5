//! Gate plugins: WebAssembly components run by wasmtime, one fresh sandbox
//! per call.
//!
//! Rules: one [`Engine`] per daemon; each plugin is compiled once and kept as
//! an `InstancePre`; every call gets a new `Store` with a wall-clock deadline
//! (epoch interruption), a memory cap and no ambient authority (no files,
//! environment, network or inherited stdio). Whatever a plugin does wrong —
//! trap, loop, allocate without end, answer nonsense — comes back as a
//! [`GateError`] that fails the gate closed; it never panics the daemon.
//! Replacing a plugin swaps an `Arc`, so calls in flight finish on the version
//! they started with.

pub mod builtin;
mod sandbox;

use crate::digest::Digest;
use crate::pipeline::release::{Measurement, Outcome};
use sandbox::CallState;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

mod bindings {
    wasmtime::component::bindgen!({
        world: "gate",
        path: "../plugin-sdk/wit",
    });
}

use bindings::gatehouse::plugin::types as wit;

/// Memory one call may use, over all of the plugin's memories.
pub const CALL_MEMORY_LIMIT: usize = 64 * 1024 * 1024;
/// Instances that may be alive at once across all calls.
const POOL_INSTANCES: u32 = 256;
/// Limits on what a verdict may carry, so a plugin cannot flood the store.
const MAX_REASON_BYTES: usize = 4096;
const MAX_MEASUREMENTS: usize = 64;
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginKind {
    Gate,
    Adapter,
}

/// What a plugin says of itself through `describe()`.
#[derive(Debug, Clone)]
pub struct Description {
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    pub summary: String,
    pub params_schema: String,
    pub capabilities: Vec<String>,
}

/// One installed version of a gate plugin.
pub struct GatePlugin {
    pub digest: Digest,
    pub description: Description,
    pre: bindings::GatePre<CallState>,
}

/// A candidate as a gate sees it.
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
}

/// A verdict that passed the host's checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub score: f64,
    pub measurements: Vec<Measurement>,
    pub reason: String,
}

/// Why a gate call produced no verdict. Each fails the gate closed, with this
/// text as the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GateError {
    #[error(
        "gate plugin {plugin:?} is not installed; install it or remove the gate from the pipeline"
    )]
    NotInstalled { plugin: String },
    #[error(
        "timed out after {limit_ms} ms; raise `timeout_ms` in the pipeline or make the plugin faster"
    )]
    Timeout { limit_ms: u64 },
    #[error("ran out of memory (limit {limit_mib} MiB); the plugin allocates too much")]
    OutOfMemory { limit_mib: usize },
    #[error("overflowed its stack; the plugin recurses too deeply")]
    StackOverflow,
    #[error("trapped: {detail}")]
    Trap { detail: String },
    #[error("could not judge: {message}")]
    PluginError { message: String },
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
    #[error("{source_name}: describe() failed: {reason}")]
    Describe {
        source_name: String,
        reason: GateError,
    },
    #[error(
        "{source_name}: plugin {name:?} is an adapter; only gate plugins can be installed here"
    )]
    NotAGate { source_name: String, name: String },
    #[error("the WebAssembly engine could not be set up: {0}")]
    Engine(String),
}

/// The daemon's plugin host: the engine, and the installed gate plugins by name.
pub struct Plugins {
    engine: Engine,
    linker: Linker<CallState>,
    gates: RwLock<BTreeMap<String, Arc<GatePlugin>>>,
}

impl Plugins {
    pub fn new() -> Result<Plugins, Error> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.max_wasm_stack(512 * 1024);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(POOL_INSTANCES)
            .total_core_instances(POOL_INSTANCES * 4)
            .total_memories(POOL_INSTANCES * 2)
            .total_tables(POOL_INSTANCES * 4)
            .max_memory_size(CALL_MEMORY_LIMIT);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| Error::Engine(format!("{e:#}")))?;
        sandbox::start_epoch_ticker(&engine);

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| Error::Engine(format!("{e:#}")))?;
        bindings::Gate::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| Error::Engine(format!("{e:#}")))?;
        Ok(Plugins {
            engine,
            linker,
            gates: RwLock::new(BTreeMap::new()),
        })
    }

    /// Compiles and checks a gate plugin, then installs it under the name its
    /// `describe()` gives, replacing any earlier version. Blocking: compiling
    /// takes tens of milliseconds.
    pub fn install(&self, source_name: &str, wasm: &[u8]) -> Result<Arc<GatePlugin>, Error> {
        let compile = |e: wasmtime::Error| Error::Compile {
            source_name: source_name.to_string(),
            detail: format!("{e:#}"),
        };
        let component = Component::new(&self.engine, wasm).map_err(compile)?;
        let pre = self.linker.instantiate_pre(&component).map_err(compile)?;
        let pre = bindings::GatePre::new(pre).map_err(compile)?;
        let description = sandbox::call(
            &self.engine,
            &pre,
            DESCRIBE_TIMEOUT,
            "describe",
            |gate, store| gate.call_describe(store),
        )
        .map_err(|reason| Error::Describe {
            source_name: source_name.to_string(),
            reason,
        })?;
        let description = Description::from(description);
        if description.kind != PluginKind::Gate {
            return Err(Error::NotAGate {
                source_name: source_name.to_string(),
                name: description.name,
            });
        }
        let plugin = Arc::new(GatePlugin {
            digest: Digest::of(wasm),
            description,
            pre,
        });
        self.write()
            .insert(plugin.description.name.clone(), plugin.clone());
        tracing::info!(
            plugin = %plugin.description.name,
            version = %plugin.description.version,
            plugin_digest = %plugin.digest.short(),
            "gate plugin installed"
        );
        Ok(plugin)
    }

    pub fn gate(&self, name: &str) -> Option<Arc<GatePlugin>> {
        self.read().get(name).cloned()
    }

    pub fn gate_names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// Runs one evaluation in a fresh sandbox. Blocking: call it from
    /// `spawn_blocking`.
    pub fn evaluate(
        &self,
        plugin: &GatePlugin,
        input: &GateInput,
        timeout: Duration,
    ) -> Result<Verdict, GateError> {
        let request = wit::GateRequest {
            candidate: to_wit(&input.candidate),
            incumbent: input.incumbent.as_ref().map(to_wit),
            stage: input.stage.clone(),
            params: input.params.to_string(),
        };
        let answer = sandbox::call(
            &self.engine,
            &plugin.pre,
            timeout,
            &plugin.description.name,
            |gate, store| gate.call_evaluate(store, &request),
        )?;
        match answer {
            Ok(v) => check_verdict(v),
            Err(message) => Err(GateError::PluginError {
                message: clip(message),
            }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<GatePlugin>>> {
        self.gates.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<GatePlugin>>> {
        self.gates.write().unwrap_or_else(|p| p.into_inner())
    }
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
            summary: d.summary,
            params_schema: d.params_schema,
            capabilities: d.capabilities,
        }
    }
}

fn check_verdict(v: wit::Verdict) -> Result<Verdict, GateError> {
    let malformed = |problem: String| Err(GateError::MalformedVerdict { problem });
    if !v.score.is_finite() || !(0.0..=1.0).contains(&v.score) {
        return malformed(format!("score {} is not between 0 and 1", v.score));
    }
    if v.reason.len() > MAX_REASON_BYTES {
        return malformed(format!(
            "reason is {} bytes, over the {MAX_REASON_BYTES}-byte limit",
            v.reason.len()
        ));
    }
    if v.measurements.len() > MAX_MEASUREMENTS {
        return malformed(format!(
            "{} measurements, over the limit of {MAX_MEASUREMENTS}",
            v.measurements.len()
        ));
    }
    let mut measurements = Vec::with_capacity(v.measurements.len());
    for m in v.measurements {
        if !m.value.is_finite() {
            return malformed(format!("measurement {:?} is {}", m.name, m.value));
        }
        if m.name.is_empty() || m.name.len() > 128 || m.unit.len() > 32 {
            return malformed(format!(
                "measurement name {:?} or unit {:?} is empty or too long",
                m.name, m.unit
            ));
        }
        measurements.push(Measurement {
            name: m.name,
            value: m.value,
            unit: m.unit,
        });
    }
    Ok(Verdict {
        outcome: match v.outcome {
            wit::Outcome::Pass => Outcome::Pass,
            wit::Outcome::Warn => Outcome::Warn,
            wit::Outcome::Fail => Outcome::Fail,
            wit::Outcome::Inconclusive => Outcome::Inconclusive,
        },
        score: v.score,
        measurements,
        reason: v.reason,
    })
}

fn clip(mut s: String) -> String {
    if s.len() > MAX_REASON_BYTES {
        let mut end = MAX_REASON_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}
