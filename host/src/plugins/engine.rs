//! The engine: one wasmtime [`Engine`] per daemon with its pooling
//! allocator, the threads plugin calls run on, and compiling components
//! (or loading them from the compile cache or a precompiled file).

use super::compile_cache::CompileCache;
use super::{
    ADAPTER_SLOTS, CALL_MEMORY_LIMIT, Error, GATE_SLOTS, ON_PLUGIN_THREADS, POOL_INSTANCES,
    Plugins, RESIDENT_BYTES, sandbox, world,
};
use crate::digest::Digest;
use std::collections::BTreeMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

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
            params_answers: Default::default(),
        })
    }

    /// Runs `f` to completion on the calling thread, for callers outside
    /// any async runtime: the CLI, tests and benchmarks.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime().block_on(ON_PLUGIN_THREADS.scope(true, f))
    }

    pub(super) fn runtime(&self) -> &tokio::runtime::Runtime {
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
}
