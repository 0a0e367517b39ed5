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

pub mod adapter;
pub mod builtin;
mod call;
pub mod capabilities;
pub mod compile_cache;
mod engine;
pub mod manifest;
pub mod params;
pub mod registry;
pub mod sandbox;
pub mod signing;
#[cfg(test)]
pub(crate) mod testing;
mod types;
mod verdict;
pub mod watch;
pub mod world;

use crate::digest::Digest;
use call::answered_otherwise;
pub use capabilities::attachments::Attachments;
use compile_cache::CompileCache;
use manifest::Manifest;
use sandbox::{CallState, Limits};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Semaphore;
pub use types::{
    AdapterCall, CandidateView, Description, Error, GateError, GateInput, LiveState,
    MAX_CAPABILITIES, MAX_NAME_BYTES, MAX_SCHEMA_BYTES, MAX_VERSION_BYTES, Plugin, PluginKind,
    Verdict, clip_to, escape_controls,
};
use types::{MAX_TEXT_BYTES, plugin_text};
use wasmtime::Engine;
use wasmtime::component::Linker;
use world::{Answer, Entry};

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
    /// What each plugin version said of each set of parameters it was
    /// asked about: its answer cannot change (a fresh sandbox each call),
    /// so a release's stage asks again without taking a call slot.
    params_answers: params::Answers,
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
    /// Gate calls that could start now without waiting.
    pub fn free_gate_slots(&self) -> usize {
        self.gate_slots.available_permits()
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

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Plugin>>> {
        self.active.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Plugin>>> {
        self.active.write().unwrap_or_else(|p| p.into_inner())
    }
}
