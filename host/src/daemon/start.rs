//! Starting a daemon: the pipelines checked before anything is created,
//! the store opened and the stored plugins loaded; then, while it serves,
//! the embedded plugins installed, the pipelines' parameters checked by
//! their plugins, and the releases a stop left open resumed.

use super::{Daemon, Error, Setup, drift, params};
use crate::canary::live::Board;
use crate::configstore::ConfigStore;
use crate::configstore::{ENVIRONMENTS, EnvReads};
use crate::ids::DAEMON;
use crate::pipeline::definition::{BUILTIN_ADAPTER, Catalog, Pipeline, Source};
use crate::pipeline::executor::Runtime;
use crate::pipeline::holds;
use crate::pipeline::release::ReleaseId;
use crate::pipeline::release::ReleaseReads;
use crate::plugins::adapter::Adapters;
use crate::plugins::registry::PluginReads;
use crate::plugins::registry::Registry;
use crate::plugins::signing::Trust;
use crate::plugins::watch::{self as plugin_dir, PluginDir};
use crate::plugins::{self, Plugins};
use crate::store::audit::{Draft, EventKind};
use crate::store::{Lead, Member, Store, StoreSettings};
use crate::telemetry::metrics::Metrics;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The example pipeline, served when no pipeline file is named.
pub const BUNDLED_PIPELINE: &str = include_str!("../../../examples/pipeline.toml");

/// The plugin names a daemon knows before it compiles anything: the
/// embedded ones, those its store holds, and the `.wasm` files of its plugin
/// directory (by file name, of either kind). Pipelines are checked against
/// them as they load (see [`Catalog`]).
pub fn catalog(
    store: Option<&Store>,
    plugin_dir: Option<&std::path::Path>,
) -> Result<Catalog, Error> {
    let mut catalog = Catalog::default();
    for e in plugins::builtin::embedded() {
        match e.kind {
            plugins::PluginKind::Gate => catalog.gates.insert(e.name.to_string()),
            plugins::PluginKind::Adapter => catalog.adapters.insert(e.name.to_string()),
        };
    }
    if let Some(store) = store {
        for r in store.plugin_versions(None)? {
            match r.description.kind {
                plugins::PluginKind::Gate => catalog.gates.insert(r.description.name),
                plugins::PluginKind::Adapter => catalog.adapters.insert(r.description.name),
            };
        }
    }
    if let Some(dir) = plugin_dir
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        for path in entries.flatten().map(|e| e.path()) {
            if path.extension().is_some_and(|x| x == "wasm")
                && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            {
                catalog.gates.insert(stem.to_string());
                catalog.adapters.insert(stem.to_string());
            }
        }
    }
    Ok(catalog)
}

/// Reads and checks the pipeline files (or the bundled one): a mistake in
/// them fails the start at once, before any plugin is compiled. Each comes
/// with its file, to point at a parameter a plugin refuses once it is in.
pub fn load_pipelines(
    files: &[PathBuf],
    catalog: &Catalog,
) -> Result<BTreeMap<String, (Pipeline, Source)>, Error> {
    let sources: Vec<Source> = if files.is_empty() {
        vec![Source {
            file: "examples/pipeline.toml (bundled)".into(),
            text: BUNDLED_PIPELINE.into(),
        }]
    } else {
        files
            .iter()
            .map(|p| Source::read(p))
            .collect::<Result<_, _>>()?
    };
    let mut pipelines = BTreeMap::new();
    for source in sources {
        let p = Pipeline::parse(&source.file, &source.text, catalog)?;
        if pipelines.contains_key(&p.name) {
            return Err(Error::DuplicatePipeline(p.name));
        }
        pipelines.insert(p.name.clone(), (p, source));
    }
    Ok(pipelines)
}

impl Daemon {
    /// Checks the pipelines, opens the store and loads the stored plugins;
    /// then, in the background while the daemon serves, installs the
    /// embedded ones and resumes every unfinished release (see
    /// [`Daemon::finish_start`]). Must run inside a tokio runtime.
    pub async fn open(setup: &Setup) -> Result<Arc<Daemon>, Error> {
        // Pipelines are checked before anything is created: a new data
        // directory holds no plugins, so it is made only once they pass.
        let me = member(setup);
        let stored = match (&setup.store, setup.data_dir.exists()) {
            (StoreSettings::Sled, false) => None,
            (settings, _) => Some(Store::open_in(settings, &setup.data_dir, me.clone())?),
        };
        let known = catalog(stored.as_ref(), setup.plugin_dir.as_deref())?;
        let (pipelines, sources): (BTreeMap<_, _>, BTreeMap<_, _>) =
            load_pipelines(&setup.pipelines, &known)?
                .into_iter()
                .map(|(name, (p, source))| ((name.clone(), p), (name, source)))
                .unzip();
        let store = match stored {
            Some(store) => store,
            None => Store::open_in(&setup.store, &setup.data_dir, me.clone())?,
        };
        let trust = Trust::new(&setup.signing).map_err(Error::Signing)?;
        // Loading plugins is CPU work; keep it off the reactor.
        let panicked = |e: tokio::task::JoinError| {
            Error::Plugin(plugins::Error::Engine(format!(
                "loading plugins panicked: {e}"
            )))
        };
        let cache = setup.compile_cache.clone();
        let plugins = Arc::new(
            tokio::task::spawn_blocking(move || Plugins::with_compile_cache(cache))
                .await
                .map_err(panicked)??,
        );
        let registry = Arc::new(Registry::new(store.clone(), plugins.clone(), trust));
        let loader = registry.clone();
        tokio::task::spawn_blocking(move || loader.load_active())
            .await
            .map_err(panicked)??;
        let unfinished = store.unfinished_releases()?;
        let mut env_names: BTreeSet<String> = pipelines
            .values()
            .flat_map(|p| p.environments.iter().map(|e| e.name.clone()))
            .collect();
        // Environments of releases started under an older pipeline file stay
        // reachable, so those releases can finish.
        for id in &unfinished {
            if let Some(r) = store.release(*id)? {
                env_names.extend(r.pipeline.environments.iter().map(|e| e.name.clone()));
            }
        }
        let configstore = ConfigStore::open(store.clone(), env_names)?;
        let adapters = Adapters::new(store.clone(), plugins.clone(), registry.clone());
        let daemon = Arc::new(Daemon {
            rt: Arc::new(Runtime {
                store,
                plugins,
                configstore,
                board: Board::default(),
                adapters,
            }),
            registry,
            metrics: Arc::new(Metrics::new(
                env!("CARGO_PKG_VERSION"),
                env!("GATEHOUSE_WASMTIME"),
            )?),
            pipelines,
            running: Mutex::new(HashSet::new()),
            drifted: Mutex::new(BTreeSet::new()),
            closing: watch::channel(false).0,
            misconfigured: watch::channel(None).0,
            member: me,
            leading: watch::channel(false).0,
        });

        let chain = crate::telemetry::chain::spawn(
            daemon.rt.store.clone(),
            crate::telemetry::chain::EVERY,
            daemon.closed(),
        );
        crate::telemetry::metrics::spawn(
            daemon.metrics.clone(),
            daemon.rt.store.clone(),
            chain.clone(),
            daemon.closed(),
        );
        // A daemon whose lease is gone stops: its writes are refused.
        let (store, mut lead) = (daemon.rt.store.clone(), daemon.rt.store.lead());
        tokio::spawn(async move {
            if let Ok(l) = lead.wait_for(|l| matches!(l, Lead::Lost(_))).await
                && let Lead::Lost(why) = &*l
            {
                store.stop(why.clone());
            }
        });
        let rest = Rest {
            grants: setup.grants.clone(),
            plugin_dir: setup.plugin_dir.clone(),
            plugin_dir_poll: setup.plugin_dir_poll,
            drift_check: setup.drift_check,
            unfinished,
            sources,
            notify: setup.notify.clone(),
            links: setup.links.clone(),
            chain,
            took_over: false,
        };
        if daemon.rt.store.lead().borrow().leads() {
            daemon.clone().take_lead(rest).await?;
        } else {
            tokio::spawn(daemon.clone().follow(rest));
        }
        Ok(daemon)
    }

    /// Starts leading: the notification outbox, the start recorded (with
    /// the releases a stop left waiting settled), then, in the background,
    /// plugins installed and every open release resumed.
    async fn take_lead(self: Arc<Self>, mut rest: Rest) -> Result<(), Error> {
        if rest.took_over {
            let store = self.rt.store.clone();
            let reread = tokio::task::block_in_place(|| -> Result<Vec<ReleaseId>, Error> {
                // What the previous leader wrote last, before this one writes.
                store.catch_up()?;
                self.reload_environments(None)?;
                self.registry.load_active()?;
                Ok(store.unfinished_releases()?)
            })?;
            rest.unfinished = reread;
        }
        // The leader logs the audit events; a follower would repeat them.
        crate::telemetry::log::spawn(self.rt.store.subscribe(), self.closed());
        crate::telemetry::notify::spawn(
            rest.notify.clone(),
            self.rt.store.clone(),
            &self.metrics,
            rest.chain.clone(),
            rest.links.clone(),
            self.closing.subscribe(),
        )
        .await?;
        let names: Vec<_> = self.pipelines.keys().cloned().collect();
        let envs = self.rt.configstore.names();
        let unfinished = rest.unfinished.clone();
        let message = match rest.took_over {
            false => format!("daemon started serving pipelines {}", names.join(", ")),
            true => format!(
                "daemon took the lead of the shared store, serving pipelines {}",
                names.join(", ")
            ),
        };
        let member = self.member.clone();
        self.rt
            .store
            .commit(|tx| {
                holds::settle_at_start(tx, &envs, &unfinished)?;
                tx.append(
                    Draft::new(EventKind::DaemonStarted, DAEMON, message.clone()).detail(
                        serde_json::json!({
                            "pipelines": names,
                            "version": env!("CARGO_PKG_VERSION"),
                            "took_over": rest.took_over,
                            "member": member.id,
                            "address": member.grpc,
                        }),
                    ),
                )
            })
            .await?;
        self.leading.send_replace(true);
        tokio::spawn(self.finish_start(rest));
        Ok(())
    }

    /// Follows the leader: keeps the audit bus and the live configurations
    /// up with what it writes, and takes the lead once it is free.
    async fn follow(self: Arc<Self>, mut rest: Rest) {
        let store = self.rt.store.clone();
        let Some(mut changes) = store.follow(&[Store::EVENTS, ENVIRONMENTS]) else {
            return;
        };
        let mut lead = store.lead();
        let mut watching = true;
        let closed = self.closed();
        tokio::pin!(closed);
        loop {
            tokio::select! {
                change = changes.recv(), if watching => {
                    // Without the watch it can still take the lead.
                    let Some((table, key)) = change else {
                        watching = false;
                        continue;
                    };
                    let kept = tokio::task::block_in_place(|| -> Result<(), Error> {
                        if table == Store::EVENTS {
                            store.catch_up()?;
                        } else {
                            let name = String::from_utf8_lossy(&key).into_owned();
                            self.reload_environments((!name.is_empty()).then_some(name))?;
                        }
                        Ok(())
                    });
                    if let Err(e) = kept {
                        tracing::warn!("keeping up with the leader: {e}");
                    }
                }
                leads = lead.wait_for(|l| !matches!(l, Lead::Following { .. })) => {
                    match leads.as_deref() {
                        Ok(Lead::Leading) => break,
                        _ => return,
                    }
                }
                () = &mut closed => return,
            }
        }
        drop(changes);
        rest.took_over = true;
        tracing::info!("this daemon took the lead; resuming what the previous leader left open");
        if let Err(e) = self.clone().take_lead(rest).await {
            self.rt
                .store
                .stop(format!("this daemon could not take the lead: {e}"));
        }
    }

    /// Reads the environment `name` (none: every one served) from the store
    /// and tells its watchers if it changed. Blocking.
    fn reload_environments(&self, name: Option<String>) -> Result<(), Error> {
        let names = match name {
            Some(n) => vec![n],
            None => self.rt.configstore.names(),
        };
        for name in names {
            if let Some(state) = self.rt.store.environment(&name)? {
                self.rt.configstore.publish(state)?;
            }
        }
        Ok(())
    }

    /// What a start does once the daemon serves: installs the embedded
    /// plugins (compiling them on a machine's first start, which takes
    /// seconds) and the plugin directory's, then resumes the releases a stop
    /// left open and starts the background checks. Submits, resumed releases
    /// and adapter calls wait for the installs ([`Registry::installed`]);
    /// reads never do.
    async fn finish_start(self: Arc<Self>, rest: Rest) {
        let started = std::time::Instant::now();
        // Marks the installs done however this ends, a panic included, so
        // nothing waits for them forever.
        let installing = Installing(&self.registry);
        if let Err(e) = self.registry.ensure_embedded(DAEMON, &rest.grants).await {
            tracing::error!("the embedded plugins could not be installed: {e}");
        }
        let mut watched = rest.plugin_dir.as_deref().map(PluginDir::new);
        if let Some(dir) = &mut watched {
            dir.scan(&self.registry, false).await;
        }
        // Parameters are checked before anything is released: a refusal
        // stops the start, as a mistake in the file's syntax does.
        let mut refused = Vec::new();
        for p in self.pipelines.values() {
            let Some(source) = rest.sources.get(&p.name) else {
                continue;
            };
            let checked = params::check(p, source, &self.rt.plugins).await;
            for note in checked.unchecked {
                tracing::warn!(pipeline = %p.name, "parameters not checked at load: {note}");
            }
            refused.extend(checked.refused.into_iter().map(|e| e.to_string()));
        }
        if !refused.is_empty() {
            for e in &refused {
                tracing::error!("{e}");
            }
            self.misconfigured.send_replace(Some(refused.join("\n")));
            drop(installing);
            return;
        }
        drop(installing);
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "plugins installed; submits go ahead"
        );
        for p in self.pipelines.values() {
            for m in missing_plugins(p, &self.rt.plugins) {
                tracing::warn!(pipeline = %p.name, user = %m.user, plugin = %m.plugin, "plugin is {}; releases of this pipeline are refused until it is pushed", m.problem);
            }
        }
        for id in rest.unfinished {
            if let Err(e) = self.resume(id, rest.took_over).await {
                tracing::error!(release_id = id.0, "release {id} could not resume: {e}");
            }
        }
        if let Some(dir) = watched {
            plugin_dir::spawn(
                self.registry.clone(),
                dir,
                rest.plugin_dir_poll,
                self.closing.subscribe(),
            );
        }
        if let Some(every) = rest.drift_check {
            drift::spawn_checks(&self, every);
        }
    }
}

/// Marks the start's plugin installs done when dropped.
struct Installing<'a>(&'a Registry);

impl Drop for Installing<'_> {
    fn drop(&mut self) {
        self.0.mark_installed();
    }
}

/// What [`Daemon::finish_start`] does after the daemon serves.
struct Rest {
    grants: BTreeMap<String, plugins::manifest::Manifest>,
    plugin_dir: Option<PathBuf>,
    plugin_dir_poll: std::time::Duration,
    drift_check: Option<std::time::Duration>,
    unfinished: Vec<ReleaseId>,
    /// The pipeline files, by pipeline name.
    sources: BTreeMap<String, Source>,
    notify: Vec<crate::telemetry::notify::Receiver>,
    links: crate::telemetry::notify::Links,
    chain: watch::Receiver<Option<crate::store::audit::Verification>>,
    /// Whether this daemon takes over from another leader (else it starts).
    took_over: bool,
}

/// This daemon as it joins a shared store.
fn member(setup: &Setup) -> Member {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let mut id = [0u8; 16];
    // Without randomness the store makes the id (and fails the same way).
    let id = match getrandom::fill(&mut id) {
        Ok(()) => hex::encode(id),
        Err(_) => String::new(),
    };
    Member {
        id,
        grpc: setup.advertise.clone(),
        http: setup.advertise_http.clone(),
        host,
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").into(),
        since_ms: crate::store::now_ms(),
    }
}

/// A plugin a pipeline names that this daemon cannot call yet.
pub(super) struct MissingPlugin {
    /// Who uses it: `gate "cost"` or `the adapter of "production"`.
    pub(super) user: String,
    pub(super) plugin: String,
    pub(super) problem: String,
}

pub(super) fn missing_plugins(pipeline: &Pipeline, plugins: &Plugins) -> Vec<MissingPlugin> {
    let problem = |e: plugins::GateError| match e {
        plugins::GateError::WrongKind { .. } => "an adapter, not a gate".to_string(),
        plugins::GateError::NotAnAdapter { .. } => "a gate, not an adapter".to_string(),
        _ => "not installed".to_string(),
    };
    let mut missing = Vec::new();
    for env in &pipeline.environments {
        for g in &env.gates {
            if let Err(e) = plugins.gate(&g.plugin) {
                missing.push(MissingPlugin {
                    user: format!("gate {:?}", g.name),
                    plugin: g.plugin.clone(),
                    problem: problem(e),
                });
            }
        }
        if env.adapter != BUILTIN_ADAPTER
            && let Err(e) = plugins.adapter(&env.adapter)
        {
            let problem = match plugins::builtin::find(&env.adapter) {
                Some(embedded) if embedded.needs_grant => format!(
                    "embedded but not granted: grant it under [grants.{0}] in the daemon's config (`gatehouse plugin export {0}` writes a template)",
                    embedded.name
                ),
                _ => problem(e),
            };
            missing.push(MissingPlugin {
                user: format!("the adapter of {:?}", env.name),
                plugin: env.adapter.clone(),
                problem,
            });
        }
    }
    missing
}
