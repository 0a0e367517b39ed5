//! The daemon's domain: everything a caller can ask of Gatehouse, free of
//! gRPC. `api/` authenticates, parses and maps errors; this module decides.
//! Operators' actions live in [`operate`], the canary's in [`canary`],
//! configuration drift in [`drift`].

mod canary;
mod drift;
pub mod effects;
mod operate;
pub mod params;

pub use canary::{DRILL_WEIGHT_PERCENT, DrillReport, JudgementFeed};
pub use drift::{DriftReport, DriftStatus, Placement};

use crate::canary::live::Board;
use crate::configstore::{self, ConfigStore, LiveConfig};
use crate::pipeline::attachment::{self, AttachmentError};
use crate::pipeline::candidate::{self, CandidateError};
use crate::pipeline::definition::{self, BUILTIN_ADAPTER, Catalog, Pipeline, Source};
use crate::pipeline::executor::{self, DAEMON};
use crate::pipeline::holds;
use crate::pipeline::release::{Phase, Release, ReleaseId};
use crate::plugins::registry::Registry;
use crate::plugins::signing::{SigningSettings, Trust};
use crate::plugins::watch::{self as plugin_dir, PluginDir};
use crate::plugins::{self, Plugins};
use crate::store::audit::{AuditEvent, Draft, EventKind, Verification};
use crate::store::{self, Refusal, Store, refuse};
use crate::telemetry::dora::{self, Dora, Window};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Where the daemon keeps its state and what it serves.
#[derive(Debug, Clone)]
pub struct Setup {
    pub data_dir: PathBuf,
    /// Pipeline files; none means the bundled example pipeline.
    pub pipelines: Vec<PathBuf>,
    /// A directory of plugins (`NAME.wasm`, with `NAME.toml` manifests)
    /// pushed at start and whenever a file changes.
    pub plugin_dir: Option<PathBuf>,
    /// How often the plugin directory is scanned.
    pub plugin_dir_poll: std::time::Duration,
    /// How often every environment is checked for drift; none: never.
    pub drift_check: Option<std::time::Duration>,
    pub signing: SigningSettings,
    /// Where compiled plugins are shared between data directories (see
    /// [`plugins::compile_cache`]); none: compile for each data directory.
    pub compile_cache: Option<PathBuf>,
    /// What embedded plugins that reach out are granted, by name (see
    /// [`plugins::builtin`]).
    pub grants: BTreeMap<String, plugins::manifest::Manifest>,
}

impl Setup {
    /// A setup with the defaults for everything but the data directory.
    pub fn new(data_dir: PathBuf) -> Setup {
        Setup {
            data_dir,
            pipelines: Vec::new(),
            plugin_dir: None,
            plugin_dir_poll: std::time::Duration::from_secs(1),
            drift_check: None,
            signing: SigningSettings::default(),
            compile_cache: plugins::compile_cache::default_dir(),
            grants: BTreeMap::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("pipeline {name:?} is not served by this daemon; served pipelines: {known}")]
    UnknownPipeline { name: String, known: String },
    #[error(transparent)]
    Candidate(#[from] CandidateError),
    #[error(transparent)]
    Attachment(#[from] AttachmentError),
    #[error("metadata key {key:?} is invalid: {problem}")]
    Metadata { key: String, problem: String },
    #[error("{0}")]
    IdempotencyKey(String),
    #[error(transparent)]
    Pipeline(#[from] definition::Error),
    #[error(transparent)]
    Plugin(#[from] plugins::Error),
    #[error(transparent)]
    Registry(#[from] plugins::registry::Error),
    #[error("{0}")]
    Signing(String),
    #[error(
        "pipeline {pipeline:?}: {user} is plugin {plugin:?}, which is {problem}; push it with `gatehouse plugin push` or fix the pipeline"
    )]
    MissingPlugin {
        pipeline: String,
        user: String,
        plugin: String,
        problem: String,
    },
    #[error("two pipeline files are both named {0:?}; pipeline names must be unique")]
    DuplicatePipeline(String),
    #[error(transparent)]
    Environment(#[from] configstore::Error),
    #[error(
        "environment {environment:?}: its adapter could not roll it back, so nothing was changed: {detail}; fix the adapter or its target and retry"
    )]
    Adapter { environment: String, detail: String },
    #[error("release {release} has no canary judgement: {why}")]
    NoJudgement { release: u64, why: String },
    #[error("drill refused: environment {environment:?} {problem}")]
    Drill {
        environment: String,
        problem: String,
    },
    #[error(transparent)]
    Store(#[from] store::Error),
}

pub struct Daemon {
    pub store: Store,
    pub plugins: Arc<Plugins>,
    pub registry: Arc<Registry>,
    pub configstore: ConfigStore,
    /// Canaries running now, fed by serving services' reports.
    pub canaries: Board,
    /// Turns for the adapter calls on each environment.
    pub effects: effects::Effects,
    pipelines: BTreeMap<String, Pipeline>,
    /// Releases with a running executor task.
    running: Mutex<HashSet<ReleaseId>>,
    /// Environments last seen drifted, so the audit log records a change of
    /// drift rather than every check.
    drifted: Mutex<BTreeSet<String>>,
    /// Set once the daemon is stopping, so open streams end and a graceful
    /// shutdown does not wait on watchers forever.
    closing: watch::Sender<bool>,
    /// Set when a plugin refused a pipeline's parameters at start: what
    /// to fix, each at its place in the file. The daemon then releases
    /// nothing and its `serve` exits.
    misconfigured: watch::Sender<Option<String>>,
}

/// Where the store's meta tree keeps the release each idempotency key
/// started.
const IDEMPOTENCY_PREFIX: &str = "idempotency/";
const MAX_IDEMPOTENCY_KEY: usize = 128;

fn check_idempotency_key(key: &str) -> Result<(), Error> {
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::IdempotencyKey(format!(
            "idempotency key {:?} must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters without spaces",
            crate::plugins::clip_to(key.to_string(), 40)
        )));
    }
    Ok(())
}

/// The example pipeline, served when no pipeline file is named.
pub const BUNDLED_PIPELINE: &str = include_str!("../../examples/pipeline.toml");

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
        let stored = match setup.data_dir.exists() {
            true => Some(Store::open(&setup.data_dir)?),
            false => None,
        };
        let known = catalog(stored.as_ref(), setup.plugin_dir.as_deref())?;
        let (pipelines, sources): (BTreeMap<_, _>, BTreeMap<_, _>) =
            load_pipelines(&setup.pipelines, &known)?
                .into_iter()
                .map(|(name, (p, source))| ((name.clone(), p), (name, source)))
                .unzip();
        let store = match stored {
            Some(store) => store,
            None => Store::open(&setup.data_dir)?,
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
        let daemon = Arc::new(Daemon {
            store,
            plugins,
            registry,
            configstore,
            canaries: Board::default(),
            effects: effects::Effects::default(),
            pipelines,
            running: Mutex::new(HashSet::new()),
            drifted: Mutex::new(BTreeSet::new()),
            closing: watch::channel(false).0,
            misconfigured: watch::channel(None).0,
        });

        crate::telemetry::log::spawn(daemon.store.subscribe(), daemon.closed());
        let names: Vec<_> = daemon.pipelines.keys().cloned().collect();
        let envs = daemon.configstore.names();
        daemon
            .store
            .commit(|tx| {
                holds::settle_at_start(tx, &envs, &unfinished)?;
                tx.append(
                    Draft::new(EventKind::DaemonStarted, DAEMON, format!("daemon started serving pipelines {}", names.join(", ")))
                        .detail(serde_json::json!({ "pipelines": names, "version": env!("CARGO_PKG_VERSION") })),
                )
            })
            .await?;
        tokio::spawn(daemon.clone().finish_start(Rest {
            grants: setup.grants.clone(),
            plugin_dir: setup.plugin_dir.clone(),
            plugin_dir_poll: setup.plugin_dir_poll,
            drift_check: setup.drift_check,
            unfinished,
            sources,
        }));
        Ok(daemon)
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
            let checked = params::check(p, source, &self.plugins).await;
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
            for m in missing_plugins(p, &self.plugins) {
                tracing::warn!(pipeline = %p.name, user = %m.user, plugin = %m.plugin, "plugin is {}; releases of this pipeline are refused until it is pushed", m.problem);
            }
        }
        for id in rest.unfinished {
            if let Err(e) = self.resume(id).await {
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

    /// Resolves with what to fix if a plugin refuses a pipeline's parameters
    /// as the daemon starts; never resolves otherwise.
    pub fn misconfigured(&self) -> impl std::future::Future<Output = String> + Send + 'static {
        let mut rx = self.misconfigured.subscribe();
        async move {
            let found = match rx.wait_for(Option::is_some).await {
                Ok(found) => found.clone(),
                Err(_) => None,
            };
            match found {
                Some(what) => what,
                None => std::future::pending().await,
            }
        }
    }

    /// Whether a plugin refused a pipeline's parameters at start.
    pub fn is_misconfigured(&self) -> bool {
        self.misconfigured.borrow().is_some()
    }

    /// Tells every open stream to end; the daemon is stopping.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`Daemon::close`] was called.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closing.subscribe();
        async move {
            let _ = rx.wait_for(|closing| *closing).await;
        }
    }

    pub fn pipelines(&self) -> impl Iterator<Item = &Pipeline> {
        self.pipelines.values()
    }

    /// Starts a release of `bytes` down `pipeline`, or returns the release
    /// an earlier submit with the same idempotency key started (open or
    /// finished), or else the unfinished release of the same bytes on it.
    /// Returns (release, deduplicated, known).
    pub async fn submit(
        self: &Arc<Self>,
        actor: &str,
        pipeline: &str,
        bytes: Vec<u8>,
        metadata: BTreeMap<String, String>,
        attachments: BTreeMap<String, Vec<u8>>,
        idempotency_key: Option<&str>,
    ) -> Result<(Release, bool, bool), Error> {
        if let Some(key) = idempotency_key {
            check_idempotency_key(key)?;
        }
        let pipeline = self.pipeline(pipeline)?;
        check_metadata(&metadata)?;
        self.registry.installed().await;
        if let Some(m) = missing_plugins(pipeline, &self.plugins).into_iter().next() {
            return Err(Error::MissingPlugin {
                pipeline: pipeline.name.clone(),
                user: m.user,
                plugin: m.plugin,
                problem: m.problem,
            });
        }
        let candidate = candidate::validate(bytes)?;
        let attachments = attachment::validate(attachments)?;
        let known = self
            .store
            .put_candidate(&candidate.digest, &candidate.bytes)?;
        for (reference, bytes) in &attachments {
            self.store.put_attachment(&reference.digest, bytes)?;
        }
        let attached: Vec<_> = attachments.into_iter().map(|(r, _)| r).collect();
        // The check for an unfinished release of the same bytes and the
        // creation of a new one are one transaction, so two CI retries racing
        // each other still start a single release.
        let (release, deduplicated) = self
            .store
            .commit(|tx| {
                let keyed = idempotency_key.map(|k| format!("{IDEMPOTENCY_PREFIX}{k}"));
                if let Some(key) = &keyed
                    && let Some(id) = tx.meta(key)?
                {
                    let id = ReleaseId(u64::from_be_bytes(
                        id.as_slice().try_into().unwrap_or_default(),
                    ));
                    let existing = tx.release(id)?;
                    if existing.candidate != candidate.digest
                        || existing.pipeline.name != pipeline.name
                    {
                        return refuse(Refusal::Precondition(format!(
                            "idempotency key {:?} was used for release {id} ({} on pipeline {}); make a new key for a different submission",
                            idempotency_key.unwrap_or_default(),
                            existing.candidate.short(),
                            existing.pipeline.name
                        )));
                    }
                    return Ok((existing, true));
                }
                let remember = |id: ReleaseId| match &keyed {
                    Some(key) => tx.put_meta(key, &id.0.to_be_bytes()),
                    None => Ok(()),
                };
                if let Some(existing) = tx.open_release_of(&candidate.digest, &pipeline.name)? {
                    remember(existing)?;
                    return Ok((tx.release(existing)?, true));
                }
                let id = tx.next_release_id()?;
                remember(id)?;
                let mut r = Release::new(
                    id,
                    pipeline.clone(),
                    candidate.digest,
                    metadata.clone(),
                    actor.to_string(),
                    tx.now_ms(),
                );
                r.attachments = attached.clone();
                holds::put_release(tx, &r)?;
                tx.append(
                    Draft::new(
                        EventKind::ReleaseSubmitted,
                        actor,
                        format!(
                            "release {id} submitted: {} on pipeline {}",
                            candidate.digest.short(),
                            pipeline.name
                        ),
                    )
                    .release(id.0, r.phase.name())
                    .detail(serde_json::json!({
                        "digest": candidate.digest,
                        "pipeline": pipeline.name,
                        "metadata": metadata,
                        "attachments": attached,
                        "candidate_known": known,
                    })),
                )?;
                Ok((r, false))
            })
            .await?;
        if !deduplicated {
            self.spawn(release.id);
        }
        Ok((release, deduplicated, known))
    }

    pub fn release(&self, id: ReleaseId) -> Result<Release, Error> {
        self.store.release(id)?.ok_or_else(|| not_found(id))
    }

    /// The latest releases, newest first; of one pipeline, which must be one
    /// this daemon serves (a typo is an error, not an empty list).
    pub fn releases(&self, pipeline: Option<&str>, limit: usize) -> Result<Vec<Release>, Error> {
        if let Some(name) = pipeline {
            self.pipeline(name)?;
        }
        Ok(self.store.releases(pipeline, limit)?)
    }

    /// A served pipeline, or an error naming those there are.
    fn pipeline(&self, name: &str) -> Result<&Pipeline, Error> {
        self.pipelines
            .get(name)
            .ok_or_else(|| Error::UnknownPipeline {
                name: name.to_string(),
                known: self
                    .pipelines
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    pub fn config(&self, env: &str) -> Result<Arc<LiveConfig>, Error> {
        Ok(self.configstore.get(env)?)
    }

    pub fn watch_config(&self, env: &str) -> Result<watch::Receiver<Arc<LiveConfig>>, Error> {
        Ok(self.configstore.watch(env)?)
    }

    pub fn environments(&self) -> Result<Vec<Arc<LiveConfig>>, Error> {
        self.configstore
            .names()
            .iter()
            .map(|n| Ok(self.configstore.get(n)?))
            .collect()
    }

    /// DORA figures of `env` over the `days` before now, from the audit log.
    pub fn dora(&self, env: &str, days: u32) -> Result<Dora, Error> {
        // An unknown name is an error that lists the known ones.
        self.configstore.get(env)?;
        let events = self.store.events_from(1).collect::<Result<Vec<_>, _>>()?;
        Ok(dora::figures(
            &events,
            &Window::last_days(env, days, store::now_ms()),
        ))
    }

    pub fn verify_audit(&self) -> Result<Verification, Error> {
        Ok(self.store.verify_audit()?)
    }

    pub fn events_of(&self, id: ReleaseId) -> Result<Vec<AuditEvent>, Error> {
        self.release(id)?;
        Ok(self.store.events_of(id)?)
    }

    async fn resume(self: &Arc<Self>, id: ReleaseId) -> Result<(), Error> {
        // An operator may have ended it between the start and now.
        let Some(r) = self.store.release(id)?.filter(|r| !r.phase.is_terminal()) else {
            return Ok(());
        };
        let mut message = format!(
            "release {id} resumed after a daemon restart, from {}{}",
            r.phase.name(),
            r.current_environment()
                .map(|e| format!(" in {e}"))
                .unwrap_or_default()
        );
        // Canary windows live in memory only: what was observed is gone.
        match r.phase {
            Phase::Canary { step, .. } => {
                message += &format!(
                    "; canary step {} observes again from its start (its observations were held in memory)",
                    step + 1
                );
            }
            Phase::Promoted { stage } if r.stages[stage].watch_baseline.is_some() => {
                message += "; the watch after promotion starts again";
            }
            _ => {}
        }
        self.store
            .commit(|tx| {
                tx.append(
                    Draft::new(EventKind::ReleaseResumed, DAEMON, message.clone())
                        .release(id.0, r.phase.name()),
                )
            })
            .await?;
        self.spawn(id);
        Ok(())
    }

    fn spawn(self: &Arc<Self>, id: ReleaseId) {
        let fresh = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id);
        if fresh {
            tokio::spawn(executor::drive(self.clone(), id));
        }
    }

    /// Called by the executor when a release's task ends.
    pub(crate) fn finished(&self, id: ReleaseId) {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
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
}

/// Gates of `pipeline` whose plugin is missing or not a gate, with why.
/// A plugin a pipeline names that this daemon cannot call yet.
struct MissingPlugin {
    /// Who uses it: `gate "cost"` or `the adapter of "production"`.
    user: String,
    plugin: String,
    problem: String,
}

fn missing_plugins(pipeline: &Pipeline, plugins: &Plugins) -> Vec<MissingPlugin> {
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

fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), Error> {
    if metadata.len() > 64 {
        return Err(Error::Metadata {
            key: String::new(),
            problem: format!("{} entries, over the limit of 64", metadata.len()),
        });
    }
    for (k, v) in metadata {
        let problem = if k.is_empty() || k.len() > 128 {
            Some("keys must be 1 to 128 bytes")
        } else if v.len() > 4096 {
            Some("values must be at most 4096 bytes")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(Error::Metadata {
                key: k.clone(),
                problem: problem.to_string(),
            });
        }
    }
    Ok(())
}

fn not_found(id: ReleaseId) -> Error {
    Error::Store(store::Error::Refused(Refusal::NotFound(format!(
        "release {id} does not exist; `gatehouse status` lists releases"
    ))))
}
